/* test_parse.c - the request parser at a PROT_NONE page edge: every
 * boundary split of valid requests, malformed input -> exact status,
 * limits -> 414 / 431, the helpers above the syntax (Transfer-Encoding
 * rules included), and the chunked body decoder: every split and byte by
 * byte, each smuggling shape -> 400, the size bounds -> 413. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first */
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "guard_page.h"
#include "http_parse.h"

#define CAP 80
#define S(lit) lit, sizeof(lit) - 1

/* A parse of s[0..n) placed at a page edge; the mapping stays alive until
 * done() so the results can be inspected. */
struct run {
    struct guarded g;
    struct http_header hdrs[CAP];
    struct http_request req;
    int rc;
};

static int run_ex(struct run *r, const char *s, size_t n, size_t cap, size_t last_len,
                  const struct http_limits *lim)
{
    memset(&r->req, 0, sizeof r->req);
    r->req.headers = r->hdrs;
    r->req.max_headers = cap;
    const char *buf = guard_copy(&r->g, s, n);
    r->rc = http_parse_request(buf, n, &r->req, last_len, lim);
    return r->rc;
}

static int run(struct run *r, const char *s, size_t n)
{
    return run_ex(r, s, n, CAP, 0, NULL);
}

static void done(struct run *r)
{
    guard_free(&r->g);
}

/* Status of parsing s[0..n) at a page edge, mapping freed. */
static int status_of(const char *s, size_t n, size_t cap, const struct http_limits *lim)
{
    struct run r;
    int rc = run_ex(&r, s, n, cap, 0, lim);
    done(&r);
    return rc;
}

static void assert_span(const char *p, size_t n, const char *want)
{
    assert_int_equal(n, strlen(want));
    assert_memory_equal(p, want, n);
}

static void test_simple_get(void **state)
{
    static const char in[] = "GET /a/b.html?x=1 HTTP/1.1\r\nHost: example.com\r\n"
                             "User-Agent:  curl/8.0 \t\r\nX-Empty:\r\nAccept:*/*\r\n\r\n";
    struct run r;
    assert_int_equal(run(&r, S(in)), (int)strlen(in));
    assert_span(r.req.method, r.req.method_len, "GET");
    assert_int_equal(r.req.method_id, HTTP_METHOD_GET);
    assert_span(r.req.target, r.req.target_len, "/a/b.html?x=1");
    assert_int_equal(r.req.minor_version, 1);
    assert_int_equal(r.req.num_headers, 4);
    assert_span(r.hdrs[0].name, r.hdrs[0].name_len, "Host");
    assert_span(r.hdrs[0].value, r.hdrs[0].value_len, "example.com");
    assert_span(r.hdrs[1].value, r.hdrs[1].value_len, "curl/8.0");
    assert_span(r.hdrs[2].name, r.hdrs[2].name_len, "X-Empty");
    assert_int_equal(r.hdrs[2].value_len, 0);
    assert_span(r.hdrs[3].value, r.hdrs[3].value_len, "*/*");
    done(&r);
}

static void test_head_http10_bare_lf(void **state)
{
    struct run r;
    assert_int_equal(run(&r, S("HEAD /x HTTP/1.0\nA: b\n\n")), 23);
    assert_int_equal(r.req.method_id, HTTP_METHOD_HEAD);
    assert_int_equal(r.req.minor_version, 0);
    assert_int_equal(r.req.num_headers, 1);
    done(&r);
    assert_int_equal(status_of(S("POST / HTTP/1.1\r\n\r\n"), CAP, NULL), 19);
    assert_int_equal(run(&r, S("get / HTTP/1.2\r\n\r\n")), 18);
    assert_int_equal(r.req.method_id, HTTP_METHOD_OTHER); /* methods are case-sensitive */
    assert_int_equal(r.req.minor_version, 1);             /* 1.2 is served as 1.1 */
    done(&r);
}

static void test_leading_empty_lines(void **state)
{
    struct run r;
    static const char in[] = "\r\n\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(run(&r, S(in)), (int)strlen(in));
    assert_span(r.req.target, r.req.target_len, "/");
    done(&r);
}

static const char *const valid[] = {
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "HEAD /index.html HTTP/1.0\r\n\r\n",
    ("GET /x?y=z HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1.0\r\nAccept: */*\r\n"
     "Connection: keep-alive\r\n\r\n"),
    "GET / HTTP/1.1\nHost: a\n\n",
    "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET / HTTP/1.1\r\nHost:   a  \r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n",
    "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\nX: \xff\x80 q\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\nHost: a\r\nRange: bytes=0-1\r\nIf-None-Match: \"x\"\r\n\r\n",
};

/* The fields of two successful parses are the same (offsets into their
 * own buffers). */
static void assert_same_parse(const struct run *a, const char *abuf, const struct run *b,
                              const char *bbuf)
{
    assert_int_equal(a->req.target - abuf, b->req.target - bbuf);
    assert_int_equal(a->req.target_len, b->req.target_len);
    assert_int_equal(a->req.method_len, b->req.method_len);
    assert_int_equal(a->req.minor_version, b->req.minor_version);
    assert_int_equal(a->req.num_headers, b->req.num_headers);
    for (size_t i = 0; i < a->req.num_headers; i++) {
        assert_int_equal(a->hdrs[i].value - abuf, b->hdrs[i].value - bbuf);
        assert_int_equal(a->hdrs[i].value_len, b->hdrs[i].value_len);
        assert_int_equal(a->hdrs[i].name_len, b->hdrs[i].name_len);
    }
}

/* Every prefix of a valid request is incomplete, never an error. */
static void test_every_split_is_incomplete(void **state)
{
    for (size_t v = 0; v < sizeof valid / sizeof valid[0]; v++) {
        size_t n = strlen(valid[v]);
        struct run full;
        assert_int_equal(run(&full, valid[v], n), (int)n);
        for (size_t k = 0; k < n; k++) {
            struct run part;
            int rc = run(&part, valid[v], k);
            if (rc != HTTP_PARSE_INCOMPLETE)
                fail_msg("request %zu split at %zu: %d", v, k, rc);
            done(&part);
        }
        done(&full);
    }
}

/* Two-piece delivery: first k bytes (incomplete), then all of it, with the
 * last_len hint; the result equals a one-shot parse. */
static void test_every_split_resumes(void **state)
{
    for (size_t v = 0; v < sizeof valid / sizeof valid[0]; v++) {
        size_t n = strlen(valid[v]);
        struct run full;
        assert_int_equal(run(&full, valid[v], n), (int)n);
        for (size_t k = 1; k < n; k++) {
            struct run a, b;
            assert_int_equal(run(&a, valid[v], k), HTTP_PARSE_INCOMPLETE);
            assert_int_equal(run_ex(&b, valid[v], n, CAP, k, NULL), (int)n);
            assert_same_parse(&full, full.g.data, &b, b.g.data);
            done(&a);
            done(&b);
        }
        done(&full);
    }
}

/* Byte-at-a-time delivery with last_len always set. */
static void test_byte_by_byte(void **state)
{
    for (size_t v = 0; v < sizeof valid / sizeof valid[0]; v++) {
        size_t n = strlen(valid[v]);
        size_t last = 0;
        for (size_t k = 1; k <= n; k++) {
            struct run r;
            int rc = run_ex(&r, valid[v], k, CAP, last, NULL);
            assert_int_equal(rc, k == n ? (int)n : HTTP_PARSE_INCOMPLETE);
            done(&r);
            last = k;
        }
    }
}

static void test_pipelined(void **state)
{
    static const char in[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
                             "HEAD /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\n";
    struct run r;
    int first = run(&r, S(in));
    assert_int_equal(first, 28);
    done(&r);
    int second = run(&r, in + first, strlen(in) - (size_t)first);
    assert_int_equal(second, 29);
    assert_span(r.req.target, r.req.target_len, "/2");
    done(&r);
    assert_int_equal(run(&r, in + first + second, strlen(in) - (size_t)(first + second)),
                     HTTP_PARSE_INCOMPLETE);
    done(&r);
}

struct bad_case {
    const char *in;
    size_t len; /* 0: strlen */
    int status;
};

static const struct bad_case bad[] = {
    {"GET  / HTTP/1.1\r\n\r\n", 0, 400},    /* two spaces */
    {"GET / HTTP/1.1 \r\n\r\n", 0, 400},    /* trailing space */
    {" GET / HTTP/1.1\r\n\r\n", 0, 400},    /* leading space */
    {"GET\t/ HTTP/1.1\r\n\r\n", 0, 400},    /* tab as separator */
    {"G@T / HTTP/1.1\r\n\r\n", 0, 400},     /* not a token */
    {"GET /\x01 HTTP/1.1\r\n\r\n", 0, 400}, /* control in target */
    {"GET /\0 HTTP/1.1\r\n\r\n", 20, 400},  /* NUL in target */
    {"GET /\x7f HTTP/1.1\r\n\r\n", 0, 400}, /* DEL in target */
    {"GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 29, 400},
    {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 0, 400}, /* space before colon */
    {"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 0, 400},
    {"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 0, 400}, /* obs-fold */
    {"GET / HTTP/1.1\r\nHost: a\r\n\tfolded\r\n\r\n", 0, 400},
    {"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 0, 400},
    {"GET / HTTP/1.1\r\n: a\r\n\r\n", 0, 400},    /* empty name */
    {"GET / HTTP/1.1\r\nHost a\r\n\r\n", 0, 400}, /* no colon */
    {"GET / HTTP/1.1\r\nHo\x01st: a\r\n\r\n", 0, 400},
    {"GET / HTTP/1.1\r\nHost:\x0b a\r\n\r\n", 0, 400},
    {"GET / HTTP/1.1\r\nX: \x7f\r\n\r\n", 0, 400},
    {"GET / HTTP/1.1\rHost: a\r\n\r\n", 0, 400}, /* bare CR */
    {"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", 0, 400},
    {"GET / HTTP/1.1\r\nHost: a\r\n\r\r\n", 0, 400},
    {"\r\rGET / HTTP/1.1\r\n\r\n", 0, 400},
    {"GET / http/1.1\r\n\r\n", 0, 400},
    {"GET / HTTP/1.10\r\n\r\n", 0, 400},
    {"GET / HTTP/11\r\n\r\n", 0, 400},
    {"GET / HTTP/1.x\r\n\r\n", 0, 400},
    {"GET / HTTPS/1.1\r\n\r\n", 0, 400},
    {"GET /\r\n\r\n", 0, 400},                                /* HTTP/0.9 */
    {"GET  HTTP/1.1\r\n\r\n", 0, 400},                        /* empty target */
    {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 0, 400}, /* TLS hello, incomplete */
    {"GET / HTTP/2.0\r\n\r\n", 0, 505},
    {"GET / HTTP/0.9\r\n\r\n", 0, 505},
    {"GET / HTTP/3.1\r\nHost: a\r\n\r\n", 0, 505},
};

static void test_malformed(void **state)
{
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = bad[i].len ? bad[i].len : strlen(bad[i].in);
        int rc = status_of(bad[i].in, n, CAP, NULL);
        if (http_parse_status(rc) != bad[i].status)
            fail_msg("case %zu: got %d, want %d", i, rc, bad[i].status);
        /* No prefix gives another error, and none is taken as complete. */
        for (size_t k = 0; k < n; k++) {
            rc = status_of(bad[i].in, k, CAP, NULL);
            if (rc != HTTP_PARSE_INCOMPLETE && http_parse_status(rc) != bad[i].status)
                fail_msg("case %zu prefix %zu: got %d", i, k, rc);
        }
    }
}

/* Fills buf with a request whose target makes the line `line_len` long. */
static size_t long_line(char *buf, size_t line_len, const char *tail)
{
    size_t n = 0;
    memcpy(buf, "GET /", 5);
    n = 5;
    size_t target_rest = line_len - strlen("GET / HTTP/1.1");
    memset(buf + n, 'a', target_rest);
    n += target_rest;
    memcpy(buf + n, " HTTP/1.1", 9);
    n += 9;
    memcpy(buf + n, tail, strlen(tail));
    return n + strlen(tail);
}

static void test_request_line_limit(void **state)
{
    static char buf[HTTP_MAX_REQUEST_LINE + HTTP_MAX_HEADER_BYTES + 1];
    size_t n = long_line(buf, HTTP_MAX_REQUEST_LINE, "\r\nHost: a\r\n\r\n");
    assert_int_equal(status_of(buf, n, CAP, NULL), (int)n);
    n = long_line(buf, HTTP_MAX_REQUEST_LINE + 1, "\r\nHost: a\r\n\r\n");
    assert_int_equal(status_of(buf, n, CAP, NULL), HTTP_PARSE_URI_TOO_LONG);
    /* Detected before the line ends: the target alone is over the limit. */
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'b', HTTP_MAX_REQUEST_LINE);
    assert_int_equal(status_of(buf, HTTP_MAX_REQUEST_LINE + 1, CAP, NULL), HTTP_PARSE_INCOMPLETE);
    assert_int_equal(status_of(buf, HTTP_MAX_REQUEST_LINE + 3, CAP, NULL), HTTP_PARSE_URI_TOO_LONG);
    /* With the last_len hint the error may come later, but it comes. */
    struct run r;
    assert_int_equal(run_ex(&r, buf, HTTP_MAX_REQUEST_LINE + 5, CAP, 100, NULL),
                     HTTP_PARSE_INCOMPLETE);
    done(&r);
    memset(buf + 5, 'b', sizeof buf - 5);
    assert_int_equal(run_ex(&r, buf, sizeof buf, CAP, 100, NULL), HTTP_PARSE_URI_TOO_LONG);
    done(&r);

    /* A custom, small limit. */
    struct http_limits lim = {.max_request_line = 16, .max_headers = 4, .max_header_bytes = 64};
    assert_int_equal(status_of(S("GET /12 HTTP/1.1\r\n\r\n"), CAP, &lim), 20);
    assert_int_equal(status_of(S("GET /123 HTTP/1.1\r\n\r\n"), CAP, &lim), HTTP_PARSE_URI_TOO_LONG);
    /* Too many empty lines before the request is garbage. */
    char blanks[40];
    memset(blanks, '\n', sizeof blanks);
    assert_int_equal(status_of(blanks, sizeof blanks, CAP, &lim), HTTP_PARSE_BAD_REQUEST);
}

static size_t with_headers(char *buf, size_t count, size_t value_len)
{
    size_t n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");
    for (size_t i = 0; i < count; i++) {
        n += (size_t)sprintf(buf + n, "X-%04zu: ", i);
        memset(buf + n, 'v', value_len);
        n += value_len;
        buf[n++] = '\r';
        buf[n++] = '\n';
    }
    buf[n++] = '\r';
    buf[n++] = '\n';
    return n;
}

static void test_header_count_limit(void **state)
{
    static char buf[64 * 1024];
    size_t n = with_headers(buf, HTTP_MAX_HEADERS, 1);
    assert_int_equal(status_of(buf, n, CAP, NULL), (int)n);
    n = with_headers(buf, HTTP_MAX_HEADERS + 1, 1);
    assert_int_equal(status_of(buf, n, CAP, NULL), HTTP_PARSE_HEADERS_TOO_LARGE);
    /* The caller's smaller array is a limit too. */
    n = with_headers(buf, 5, 1);
    assert_int_equal(status_of(buf, n, 5, NULL), (int)n);
    assert_int_equal(status_of(buf, n, 4, NULL), HTTP_PARSE_HEADERS_TOO_LARGE);
    /* Reported before the head is complete. */
    assert_int_equal(status_of(buf, n - 2, 4, NULL), HTTP_PARSE_HEADERS_TOO_LARGE);
}

static void test_header_bytes_limit(void **state)
{
    static char buf[64 * 1024];
    /* Each line is "X-nnnn: " + value + CRLF = 10 + value bytes. */
    size_t per_line = HTTP_MAX_HEADER_BYTES / 4;
    size_t n = with_headers(buf, 4, per_line - 10);
    assert_int_equal(status_of(buf, n, CAP, NULL), (int)n);
    n = with_headers(buf, 4, per_line - 10 + 1);
    assert_int_equal(status_of(buf, n, CAP, NULL), HTTP_PARSE_HEADERS_TOO_LARGE);
    /* One endless header line, still incomplete. */
    n = with_headers(buf, 1, 3 * per_line * 4);
    assert_int_equal(status_of(buf, n - 4, CAP, NULL), HTTP_PARSE_HEADERS_TOO_LARGE);
    assert_int_equal(status_of(buf, HTTP_MAX_HEADER_BYTES, CAP, NULL), HTTP_PARSE_INCOMPLETE);
}

/* ---- helpers ------------------------------------------------------- */

struct check_case {
    const char *in;
    int rc;
    bool keep_alive;
    uint64_t body_len;
};

#define TE(v) "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " v "\r\n\r\n"

static const struct check_case checks[] = {
    {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, true, 0},
    {"GET / HTTP/1.1\r\n\r\n", -400, true, 0},                       /* no Host */
    {"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", -400, true, 0}, /* two Hosts */
    {"GET / HTTP/1.0\r\n\r\n", 0, false, 0},
    {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 0, true, 0},
    {"GET / HTTP/1.0\r\nConnection: foo, keep-alive\r\n\r\n", 0, true, 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 0, false, 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, CLOSE\r\n\r\n", 0, false, 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", 0, true, 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nConnection: x\r\nConnection: close\r\n\r\n", 0, false, 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", 0, true, 5},
    {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 0, true, 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n", 0, true,
     UINT64_C(9223372036854775807)},
    {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775808\r\n\r\n", -400, true, 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", -400, true, 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", -400, true, 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", -400, true, 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", -400, true, 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", -400, true, 0},
    {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", -400, true, 0},
};

static void test_request_check(void **state)
{
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        struct run r;
        struct http_request_info info;
        size_t n = strlen(checks[i].in);
        assert_int_equal(run(&r, checks[i].in, n), (int)n);
        int rc = http_request_check(&r.req, &info);
        if (rc != checks[i].rc || info.keep_alive != checks[i].keep_alive ||
            (rc == 0 && (info.body_len != checks[i].body_len || info.chunked)))
            fail_msg("check case %zu: rc %d keep_alive %d body %llu", i, rc, info.keep_alive,
                     (unsigned long long)info.body_len);
        done(&r);
    }
}

/* Transfer-Encoding: what a smuggler would use is 400, an unknown coding
 * before a final chunked is 501, chunked alone is a chunked body. */
static const struct {
    const char *in;
    int rc;
    bool chunked;
} te_checks[] = {
    {"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 0, true},
    {TE("chunked"), 0, true},
    {TE("Chunked"), 0, true},
    {TE(" , chunked ,"), 0, true},
    {"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n"
     "\r\n", -400, false},
    {"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n"
     "\r\n", -400, false},
    {"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -400, false},
    {TE("chunked, chunked"), -400, false},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
     "Transfer-Encoding: chunked\r\n\r\n", -400, false},
    {TE("chunked, gzip"), -400, false},
    {TE("gzip"), -400, false},
    {TE("identity"), -400, false},
    {TE(""), -400, false},
    {TE(","), -400, false},
    {TE("chunked;q=1"), -400, false},
    {TE("\"chunked\""), -400, false},
    {TE("chunked x"), -400, false},
    {TE("chunk"), -400, false},
    {TE("gzip, chunked"), -501, false},
    {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
     "Transfer-Encoding: chunked\r\n\r\n", -501, false},
};

static void test_transfer_encoding(void **state)
{
    for (size_t i = 0; i < sizeof te_checks / sizeof te_checks[0]; i++) {
        struct run r;
        struct http_request_info info;
        size_t n = strlen(te_checks[i].in);
        assert_int_equal(run(&r, te_checks[i].in, n), (int)n);
        int rc = http_request_check(&r.req, &info);
        if (rc != te_checks[i].rc || (rc == 0 && (info.chunked != te_checks[i].chunked ||
                                                  info.body_len != 0)))
            fail_msg("TE case %zu: rc %d chunked %d", i, rc, info.chunked);
        done(&r);
    }
}

static void test_request_info_spans(void **state)
{
    static const char in[] = "GET / HTTP/1.1\r\nhost: a\r\nif-none-match: \"a\", \"b\"\r\n"
                             "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                             "RANGE: bytes=1-2\r\nIf-Range: \"a\"\r\n\r\n";
    struct run r;
    struct http_request_info info;
    assert_int_equal(run(&r, S(in)), (int)strlen(in));
    assert_int_equal(http_request_check(&r.req, &info), 0);
    assert_int_equal(info.method, HTTP_METHOD_GET);
    assert_int_equal(info.minor_version, 1);
    assert_span(info.if_none_match.ptr, info.if_none_match.len, "\"a\", \"b\"");
    assert_span(info.if_modified_since.ptr, info.if_modified_since.len,
                "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_span(info.range.ptr, info.range.len, "bytes=1-2");
    assert_span(info.if_range.ptr, info.if_range.len, "\"a\"");
    done(&r);

    static const char two[] = "GET / HTTP/1.1\r\nHost: a\r\nRange: bytes=1-2\r\n"
                              "Range: bytes=3-4\r\n\r\n";
    assert_int_equal(run(&r, S(two)), (int)strlen(two));
    assert_int_equal(http_request_check(&r.req, &info), 0);
    assert_null(info.range.ptr); /* a repeated Range is ignored */
    assert_null(info.if_none_match.ptr);
    done(&r);
}

static void test_header_lookup(void **state)
{
    static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nx-a: 2\r\nX-AB: 3\r\n\r\n";
    struct run r;
    assert_int_equal(run(&r, S(in)), (int)strlen(in));
    const struct http_header *h = http_header_find(&r.req, "x-A");
    assert_non_null(h);
    assert_span(h->value, h->value_len, "1");
    assert_int_equal(http_header_count(&r.req, "X-a"), 2);
    assert_int_equal(http_header_count(&r.req, "X-AB"), 1);
    assert_null(http_header_find(&r.req, "X"));
    assert_null(http_header_find(&r.req, "X-ABC"));
    done(&r);
}

static void test_token_list(void **state)
{
    assert_true(http_token_list_has(S("close"), "close"));
    assert_true(http_token_list_has(S(" Upgrade ,\tClose "), "close"));
    assert_true(http_token_list_has(S(",,keep-alive,"), "Keep-Alive"));
    assert_false(http_token_list_has(S("closed"), "close"));
    assert_false(http_token_list_has(S("clos"), "close"));
    assert_false(http_token_list_has(S(""), "close"));
    assert_false(http_token_list_has(S(" , ,"), "close"));
    assert_false(http_token_list_has(S("keep-alive close"), "close"));
}

/* The method is known as soon as its token is, even when the head fails
 * later (a HEAD's error page then goes without a body). */
static void test_method_on_error(void **state)
{
    struct run r;
    assert_int_equal(run(&r, S("HEAD / HTTP/1.1\r\nBad Header\r\n\r\n")), HTTP_PARSE_BAD_REQUEST);
    assert_int_equal(r.req.method_id, HTTP_METHOD_HEAD);
    done(&r);
    assert_int_equal(run(&r, S("HEAD /x HTTP/3.0\r\n\r\n")), HTTP_PARSE_BAD_VERSION);
    assert_int_equal(r.req.method_id, HTTP_METHOD_HEAD);
    done(&r);
    assert_int_equal(run(&r, S("HEAD /\x01")), HTTP_PARSE_BAD_REQUEST);
    assert_int_equal(r.req.method_id, HTTP_METHOD_HEAD);
    done(&r);
    assert_int_equal(run(&r, S("HEA")), HTTP_PARSE_INCOMPLETE);
    assert_int_equal(r.req.method_id, HTTP_METHOD_OTHER);
    done(&r);
    assert_int_equal(run(&r, S("HE\x01D / HTTP/1.1\r\n")), HTTP_PARSE_BAD_REQUEST);
    assert_int_equal(r.req.method_id, HTTP_METHOD_OTHER);
    done(&r);
}

/* ---- chunked bodies ------------------------------------------------ */

#define NEXT "GET / HTTP/1.1\r\n" /* what follows every body below */

static const char *const good_bodies[] = {
    "5\r\nhello\r\n0\r\n\r\n",
    "0\r\n\r\n",
    "000\r\n\r\n",
    "A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n",
    "0005\r\nhello\r\n1\r\n\n\r\n0\r\n\r\n", /* an LF inside chunk data is data */
    "5;a=b;c=\"x y\\\"z\" ; d ;e = f\r\nhello\r\n0;last\r\n\r\n",
    "5\t;x\r\nhello\r\n0\r\n\r\n",
    "3\r\n\r\n\r\r\n0\r\nX-Trailer: 1\r\nY:\r\nZ: a b \r\n\r\n",
};

static int decode_at_edge(struct http_chunked *d, const char *s, size_t n, uint64_t max,
                          size_t *used)
{
    struct guarded g;
    const char *buf = guard_copy(&g, s, n);
    int rc = http_chunked_decode(d, buf, n, max, used);
    guard_free(&g);
    return rc;
}

/* Feeds s[0..n) the way the framework offers it: what was not consumed
 * comes again, at the front, with `step` more bytes. Returns the result
 * and the bytes consumed in all. */
static int decode_in_steps(const char *s, size_t n, size_t first, size_t step, uint64_t max,
                           size_t *total)
{
    struct http_chunked d;
    http_chunked_init(&d);
    size_t off = 0, have = first < n ? first : n;
    for (;;) {
        size_t used = 0;
        int rc = decode_at_edge(&d, s + off, have - off, max, &used);
        assert_true(used <= have - off);
        off += used;
        if (rc != HTTP_PARSE_INCOMPLETE || have == n) {
            *total = off;
            return rc;
        }
        have = have + step < n ? have + step : n;
    }
}

static void test_chunked_good(void **state)
{
    char buf[512];
    for (size_t i = 0; i < sizeof good_bodies / sizeof good_bodies[0]; i++) {
        size_t body = strlen(good_bodies[i]);
        size_t n = (size_t)snprintf(buf, sizeof buf, "%s" NEXT, good_bodies[i]);
        size_t total;
        if (decode_in_steps(buf, n, n, 1, 1000, &total) != 1 || total != body)
            fail_msg("body %zu: not decoded in one piece", i);
        for (size_t k = 0; k <= n; k++) {
            if (decode_in_steps(buf, n, k, n, 1000, &total) != 1 || total != body)
                fail_msg("body %zu split at %zu", i, k);
        }
        if (decode_in_steps(buf, n, 0, 1, 1000, &total) != 1 || total != body)
            fail_msg("body %zu byte by byte", i);
        /* Every proper prefix of the body is incomplete. */
        for (size_t k = 0; k < body; k++) {
            if (decode_in_steps(buf, k, k, 1, 1000, &total) != HTTP_PARSE_INCOMPLETE)
                fail_msg("body %zu prefix %zu", i, k);
        }
    }
    /* Complete means complete: it stays so, and consumes nothing more. */
    struct http_chunked d;
    size_t used;
    http_chunked_init(&d);
    assert_int_equal(decode_at_edge(&d, S("0\r\n\r\n" NEXT), 1000, &used), 1);
    assert_int_equal(used, 5);
    assert_int_equal(decode_at_edge(&d, S(NEXT), 1000, &used), 1);
    assert_int_equal(used, 0);
    /* A partial line is never consumed; data is, as it comes. */
    http_chunked_init(&d);
    assert_int_equal(decode_at_edge(&d, S("5\r\nhel"), 1000, &used), HTTP_PARSE_INCOMPLETE);
    assert_int_equal(used, 6);
    assert_int_equal(decode_at_edge(&d, S("lo\r\n0;x=\"y"), 1000, &used), HTTP_PARSE_INCOMPLETE);
    assert_int_equal(used, 4);
}

static void test_chunked_bad(void **state)
{
    static const char *const bad_bodies[] = {
        "0x5\r\nhello\r\n0\r\n\r\n", /* a 0x prefix */
        "+5\r\nhello\r\n0\r\n\r\n",
        "-5\r\nhello\r\n0\r\n\r\n",
        " 5\r\nhello\r\n0\r\n\r\n", /* whitespace before the size */
        "\t5\r\nhello\r\n0\r\n\r\n",
        "\r\n",                       /* no size */
        ";x\r\n",
        "5 \r\nhello\r\n0\r\n\r\n", /* whitespace with no extension after it */
        "g\r\n",
        "5\nhello\r\n0\r\n\r\n", /* bare LF */
        "5\rhello\r\n0\r\n\r\n", /* bare CR */
        "5\r\nhello\n0\r\n\r\n", /* data not followed by CRLF */
        "5\r\nhello\r0\r\n\r\n",
        "5\r\nhelloX\r\n0\r\n\r\n",
        "5\r\nhello0\r\n\r\n",
        "5\r\nhello\r\n0\n\r\n",
        "5\r\nhello\r\n0\r\n\n",     /* bare LF ending the trailers */
        "0\r\nX: 1\n\r\n",
        "0\r\nX: 1\rY: 2\r\n\r\n",
        "0\r\nbad header: 1\r\n\r\n",
        "0\r\n folded\r\n\r\n",
        "0\r\nnocolon\r\n\r\n",
        "0\r\nX: a\x01b\r\n\r\n",
        "8000000000000000\r\n",      /* 2^63 */
        "ffffffffffffffffff\r\n",
        "100000000000000000000005\r\nhello\r\n0\r\n\r\n", /* wraps to 5 in 64 bits */
        "5;\r\nhello\r\n0\r\n\r\n",
        "5;=b\r\nhello\r\n0\r\n\r\n",
        "5;a=\r\nhello\r\n0\r\n\r\n",
        "5;a=\"x\r\nhello\r\n0\r\n\r\n",
        "5;a b\r\nhello\r\n0\r\n\r\n",
        "5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n",
        "5,6\r\nhello\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad_bodies / sizeof bad_bodies[0]; i++) {
        size_t n = strlen(bad_bodies[i]), total;
        int rc = decode_in_steps(bad_bodies[i], n, n, 1, 1000, &total);
        if (rc != HTTP_PARSE_BAD_REQUEST)
            fail_msg("bad body %zu: rc %d", i, rc);
        rc = decode_in_steps(bad_bodies[i], n, 0, 1, 1000, &total);
        if (rc != HTTP_PARSE_BAD_REQUEST)
            fail_msg("bad body %zu byte by byte: rc %d", i, rc);
    }
    size_t total;
    assert_int_equal(decode_in_steps(S("5\0\r\nhello\r\n0\r\n\r\n"), 100, 1, 1000, &total),
                     HTTP_PARSE_BAD_REQUEST); /* a NUL after the size */
    /* A failed decoder stays failed. */
    struct http_chunked d;
    size_t used;
    http_chunked_init(&d);
    assert_int_equal(decode_at_edge(&d, S("0x1\r\n"), 1000, &used), HTTP_PARSE_BAD_REQUEST);
    assert_int_equal(decode_at_edge(&d, S("0\r\n\r\n"), 1000, &used), HTTP_PARSE_BAD_REQUEST);
    assert_int_equal(used, 0);
}

static void test_chunked_limits(void **state)
{
    size_t total;
    /* A chunk line of HTTP_CHUNK_LINE_MAX bytes passes, one more is 400,
     * also while its CRLF has not arrived. */
    static const char rest[] = "\r\nx\r\n0\r\n\r\n";
    static char line[HTTP_CHUNK_LINE_MAX + 64];
    memset(line, 'a', sizeof line);
    memcpy(line, "1;", 2);
    memcpy(line + HTTP_CHUNK_LINE_MAX, rest, sizeof rest - 1);
    size_t n = HTTP_CHUNK_LINE_MAX + sizeof rest - 1;
    assert_int_equal(decode_in_steps(line, n, n, 1, 10, &total), 1);
    assert_int_equal(total, n);
    memcpy(line + HTTP_CHUNK_LINE_MAX + 1, rest, sizeof rest - 1);
    assert_int_equal(decode_in_steps(line, n + 1, n + 1, 1, 10, &total), HTTP_PARSE_BAD_REQUEST);
    assert_int_equal(decode_in_steps(line, HTTP_CHUNK_LINE_MAX + 2, 100000, 1, 10, &total),
                     HTTP_PARSE_BAD_REQUEST);
    /* Data beyond max_data is 413, as soon as a chunk size announces it. */
    assert_int_equal(decode_in_steps(S("5\r\n"), 5, 1, 4, &total), -413);
    assert_int_equal(decode_in_steps(S("5\r\nhello\r\n0\r\n\r\n"), 5, 1, 5, &total), 1);
    assert_int_equal(decode_in_steps(S("3\r\nabc\r\n2\r\nde\r\n"), 100, 1, 4, &total), -413);
    assert_int_equal(decode_in_steps(S("7fffffffffffffff\r\n"), 100, 1, 1u << 20, &total), -413);
    /* Framing beyond the data plus HTTP_CHUNK_FRAMING_SLACK is 413: tiny
     * chunks with long extensions, or a huge trailer section. */
    size_t big = 4 * HTTP_CHUNK_FRAMING_SLACK;
    char *flood = malloc(big + 16);
    assert_non_null(flood);
    n = 0;
    while (n + 4010 < big) {
        n += (size_t)sprintf(flood + n, "1;");
        memset(flood + n, 'e', 4000);
        n += 4000;
        n += (size_t)sprintf(flood + n, "\r\nx\r\n");
    }
    assert_int_equal(decode_in_steps(flood, n, n, 1, 1u << 30, &total), -413);
    n = (size_t)sprintf(flood, "0\r\n");
    while (n + 30 < big)
        n += (size_t)sprintf(flood + n, "X-Trailer: 0123456789\r\n");
    assert_int_equal(decode_in_steps(flood, n, n, 1, 1u << 30, &total), -413);
    free(flood);
}

static void test_parse_status(void **state)
{
    assert_int_equal(http_parse_status(HTTP_PARSE_INCOMPLETE), 0);
    assert_int_equal(http_parse_status(HTTP_PARSE_BAD_REQUEST), 400);
    assert_int_equal(http_parse_status(HTTP_PARSE_URI_TOO_LONG), 414);
    assert_int_equal(http_parse_status(HTTP_PARSE_HEADERS_TOO_LARGE), 431);
    assert_int_equal(http_parse_status(HTTP_PARSE_BAD_VERSION), 505);
    assert_int_equal(http_parse_status(HTTP_PARSE_NOT_IMPLEMENTED), 501);
    assert_int_equal(http_parse_status(120), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_head_http10_bare_lf),
        cmocka_unit_test(test_leading_empty_lines),
        cmocka_unit_test(test_every_split_is_incomplete),
        cmocka_unit_test(test_every_split_resumes),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_request_line_limit),
        cmocka_unit_test(test_header_count_limit),
        cmocka_unit_test(test_header_bytes_limit),
        cmocka_unit_test(test_request_check),
        cmocka_unit_test(test_transfer_encoding),
        cmocka_unit_test(test_request_info_spans),
        cmocka_unit_test(test_header_lookup),
        cmocka_unit_test(test_token_list),
        cmocka_unit_test(test_parse_status),
        cmocka_unit_test(test_method_on_error),
        cmocka_unit_test(test_chunked_good),
        cmocka_unit_test(test_chunked_bad),
        cmocka_unit_test(test_chunked_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
