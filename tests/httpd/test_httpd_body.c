/* test_httpd_body.c - request bodies against a running mux-httpd over raw
 * sockets: chunked bodies (RFC 9112 section 7) discarded and the request
 * answered on a kept-alive connection, in one write, split at every kind
 * of boundary and pipelined; every smuggling shape of Transfer-Encoding
 * and of chunk framing answered 400 (or 501) and closed, with nothing
 * after it taken for a request; max_body for chunked bodies (413); and a
 * HEAD whose head does not parse gets its 400 without the page
 * (RFC 9110 9.3.2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "httpd_fixture.h"

static struct fixture fx;
static struct th_child srv;

static int setup(void **state)
{
    if (fx_create(&fx) < 0)
        return -1;
    return fx_start(&srv, &fx, MUX_HTTPD_BIN, 1, "httpd = { max_body = 100000; };\n", NULL);
}

static int teardown(void **state)
{
    fx_down(&fx, &srv);
    return 0;
}

static void test_graceful_exit(void **state)
{
    assert_int_equal(fx_stop(&srv), 0);
}

#define POST_CHUNKED "POST /hello.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
#define GET_HELLO "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"

static void expect_405(struct hc *h)
{
    struct hresp r;
    char v[64];
    assert_int_equal(hc_recv(h, &r, false, 10000), 0);
    assert_int_equal(r.status, 405);
    assert_non_null(hr_field(&r, "Allow", v, sizeof v));
    assert_string_equal(v, "GET, HEAD");
    assert_non_null(hr_field(&r, "Connection", v, sizeof v));
    assert_string_equal(v, "keep-alive");
    hr_free(&r);
}

static void expect_hello(struct hc *h)
{
    struct hresp r;
    assert_int_equal(hc_recv(h, &r, false, 10000), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 12);
    assert_memory_equal(r.body, "hello world\n", 12);
    hr_free(&r);
}

/* Nothing arrives from the server within ms (it is still waiting). */
static bool silent_for(struct hc *h, int ms)
{
    struct pollfd p = {.fd = h->fd, .events = POLLIN};
    return h->off == h->len && poll(&p, 1, ms) == 0;
}

static void test_chunked_post(void **state)
{
    struct hc h;
    assert_int_equal(hc_open(&h, srv.port), 0);
    /* In one write: answered, and the connection stays usable. */
    assert_int_equal(hc_send(&h, POST_CHUNKED "5\r\nhello\r\n6;ext=\"v\"\r\n world\r\n"
     "0\r\n\r\n"), 0);
    expect_405(&h);
    assert_int_equal(hc_send(&h, GET_HELLO), 0);
    expect_hello(&h);
    /* A GET may carry a chunked body too: the file is served after it. */
    assert_int_equal(hc_send(&h, "GET /hello.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
                                 "chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n"), 0);
    expect_hello(&h);
    /* HEAD with a body: the head only, then the next request. */
    assert_int_equal(hc_send(&h, "HEAD /hello.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
                                 "chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n" GET_HELLO), 0);
    struct hresp r;
    assert_int_equal(hc_recv(&h, &r, true, 10000), 0);
    assert_int_equal(r.status, 200);
    hr_free(&r);
    expect_hello(&h);
    hc_close(&h);
}

/* The body arrives in pieces cut inside the size, the extension, the data,
 * the CRLF after it and the trailers: no answer before its end, then the
 * answer. */
static void test_chunked_in_pieces(void **state)
{
    static const char *const pieces[] = {
        POST_CHUNKED, "1", "0;a", "=b\r", "\n0123456789ABCDEF", "\r", "\n2\r\nxy\r\n0\r\nTr",
        "ailer: v\r\n", "\r",
    };
    struct hc h;
    assert_int_equal(hc_open(&h, srv.port), 0);
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        assert_int_equal(hc_send(&h, pieces[i]), 0);
        if (!silent_for(&h, 50))
            fail_msg("answered before the body ended (after piece %zu)", i);
    }
    assert_int_equal(hc_send(&h, "\n"), 0);
    expect_405(&h);
    /* Byte by byte, a bigger body (64 chunks of 1 KiB) in three writes each. */
    char *body = malloc(70000);
    assert_non_null(body);
    size_t n = (size_t)sprintf(body, "%s", POST_CHUNKED);
    for (int i = 0; i < 64; i++) {
        n += (size_t)sprintf(body + n, "400\r\n");
        memset(body + n, 'a' + i % 26, 1024);
        n += 1024;
        n += (size_t)sprintf(body + n, "\r\n");
    }
    n += (size_t)sprintf(body + n, "0\r\n\r\n" GET_HELLO);
    for (size_t off = 0; off < n;) {
        size_t part = n - off < 3000 ? n - off : 3000;
        assert_int_equal(th_write_all(h.fd, body + off, part, 10000), 0);
        off += part;
    }
    free(body);
    expect_405(&h);
    expect_hello(&h);
    hc_close(&h);
}

/* Pipelined: chunked requests among plain ones, all in one write, answered
 * in order. The body of the first one looks like a request: it is not. */
static void test_chunked_pipelined(void **state)
{
    struct hc h;
    struct hresp r;
    assert_int_equal(hc_open(&h, srv.port), 0);
    const char *reqs = POST_CHUNKED "1f\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n\r\n0\r\n\r\n"
                       GET_HELLO
                       "PUT /hello.txt HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "0\r\n\r\n"
                       "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
                       GET_HELLO;
    assert_int_equal(hc_send(&h, reqs), 0);
    expect_405(&h);
    expect_hello(&h);
    expect_405(&h);
    assert_int_equal(hc_recv(&h, &r, false, 10000), 0);
    assert_int_equal(r.status, 404);
    hr_free(&r);
    expect_hello(&h);
    assert_true(silent_for(&h, 100)); /* nothing more: the body was no request */
    hc_close(&h);
}

/* req (with a valid-looking request after it) gets `status`, then the
 * close: the request after it is never answered. */
static void expect_refused(const char *req, int status)
{
    struct hc h;
    struct hresp r;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s%s", req, GET_HELLO);
    assert_int_equal(hc_open(&h, srv.port), 0);
    assert_int_equal(hc_send(&h, buf), 0);
    if (hc_recv(&h, &r, false, 10000) < 0)
        fail_msg("no response to %.80s", req);
    if (r.status != status)
        fail_msg("%.80s: status %d, want %d", req, r.status, status);
    char v[32];
    assert_non_null(hr_field(&r, "Connection", v, sizeof v));
    assert_string_equal(v, "close");
    hr_free(&r);
    if (!hc_closed(&h, FX_MS(5000)))
        fail_msg("%.80s: not closed after the %d", req, status);
    hc_close(&h);
}

#define TE_HEAD(v) "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: " v "\r\n\r\n"

static void test_smuggling_refused(void **state)
{
    static const char *const framing[] = {
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
        "0\r\n\r\n",
        TE_HEAD("chunked, chunked") "0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked"
        "\r\n\r\n0\r\n\r\n",
        TE_HEAD("chunked, gzip") "0\r\n\r\n",
        TE_HEAD("gzip") "0\r\n\r\n",
        TE_HEAD("chunked;x=1") "0\r\n\r\n",
        TE_HEAD("\"chunked\"") "0\r\n\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof framing / sizeof framing[0]; i++)
        expect_refused(framing[i], 400);
    expect_refused(TE_HEAD("gzip, chunked") "0\r\n\r\n", 501); /* framed, not decoded */

    static const char *const chunks[] = {
        "0x5\r\nhello\r\n0\r\n\r\n",  "+5\r\nhello\r\n0\r\n\r\n",   "-5\r\nhello\r\n0\r\n\r\n",
        " 5\r\nhello\r\n0\r\n\r\n",   "5 \r\nhello\r\n0\r\n\r\n",   "\r\n0\r\n\r\n",
        "5\nhello\r\n0\r\n\r\n",      "5\rhello\r\n0\r\n\r\n",      "5\r\nhelloXX0\r\n\r\n",
        "5\r\nhello\n0\r\n\r\n",      "5\r\nhello\r\n0\r\n\n",      "5;\r\nhello\r\n0\r\n\r\n",
        "10000000000000005\r\nhello\r\n0\r\n\r\n",                  "8000000000000000\r\n",
        "0\r\nbad trailer\r\n\r\n",   "0\r\n folded: x\r\n\r\n",
    };
    char req[512];
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        snprintf(req, sizeof req, "%s%s", POST_CHUNKED, chunks[i]);
        expect_refused(req, 400);
    }
    /* A head whose answer waits for its body: the 400 still comes when the
     * bad chunk line arrives in a later write. */
    struct hc h;
    struct hresp r;
    assert_int_equal(hc_open(&h, srv.port), 0);
    assert_int_equal(hc_send(&h, POST_CHUNKED "3\r\nabc\r\n"), 0);
    assert_true(silent_for(&h, 50));
    assert_int_equal(hc_send(&h, "0x0\r\n\r\n" GET_HELLO), 0);
    assert_int_equal(hc_recv(&h, &r, false, 10000), 0);
    assert_int_equal(r.status, 400);
    hr_free(&r);
    assert_true(hc_closed(&h, FX_MS(5000)));
    hc_close(&h);
}

/* max_body (100000 here) bounds a chunked body: a chunk announcing more is
 * refused at its size line, several adding up to more when they do. */
static void test_chunked_too_big(void **state)
{
    expect_refused(POST_CHUNKED "186a1\r\n", 413); /* 100001 */
    struct hc h;
    struct hresp r;
    assert_int_equal(hc_open(&h, srv.port), 0);
    char *body = malloc(130000);
    assert_non_null(body);
    size_t n = (size_t)sprintf(body, "%s", POST_CHUNKED);
    for (int i = 0; i < 4; i++) { /* 4 x 30000 bytes */
        n += (size_t)sprintf(body + n, "7530\r\n");
        memset(body + n, 'z', 30000);
        n += 30000;
        n += (size_t)sprintf(body + n, "\r\n");
        if (n > 110000)
            break;
    }
    assert_int_equal(th_write_all(h.fd, body, n, 10000), 0);
    free(body);
    assert_int_equal(hc_recv(&h, &r, false, 10000), 0);
    assert_int_equal(r.status, 413);
    hr_free(&r);
    assert_true(hc_closed(&h, FX_MS(5000)));
    hc_close(&h);
    /* Exactly max_body in data is fine. */
    assert_int_equal(hc_open(&h, srv.port), 0);
    body = malloc(110000);
    assert_non_null(body);
    n = (size_t)sprintf(body, "%s186a0\r\n", POST_CHUNKED);
    memset(body + n, 'y', 100000);
    n += 100000;
    n += (size_t)sprintf(body + n, "\r\n0\r\n\r\n");
    assert_int_equal(th_write_all(h.fd, body, n, 10000), 0);
    free(body);
    expect_405(&h);
    hc_close(&h);
}

/* RFC 9110 9.3.2: the answer to a HEAD has no content, whatever its
 * status, also when the head did not parse. */
static void test_head_parse_error(void **state)
{
    static const char *const heads[] = {
        "HEAD / HTTP/1.1\r\nBad Header\r\n\r\n",
        "HEAD / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        "HEAD / HTTP/2.0\r\nHost: t\r\n\r\n",
        "HEAD / HTTP/1.1\r\n\r\n", /* no Host */
    };
    static const int want[] = {400, 400, 505, 400};
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        struct hc h;
        struct hresp r;
        char v[32];
        assert_int_equal(hc_open(&h, srv.port), 0);
        assert_int_equal(hc_send(&h, heads[i]), 0);
        assert_int_equal(hc_recv(&h, &r, true, 10000), 0);
        assert_int_equal(r.status, want[i]);
        assert_non_null(hr_field(&r, "Content-Length", v, sizeof v));
        assert_true(atoi(v) > 0); /* the length of the page a GET would get */
        hr_free(&r);
        if (!hc_closed(&h, FX_MS(5000))) /* false too when page bytes follow */
            fail_msg("%s: body bytes after the head, or no close", heads[i]);
        hc_close(&h);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunked_post),
        cmocka_unit_test(test_chunked_in_pieces),
        cmocka_unit_test(test_chunked_pipelined),
        cmocka_unit_test(test_smuggling_refused),
        cmocka_unit_test(test_chunked_too_big),
        cmocka_unit_test(test_head_parse_error),
        cmocka_unit_test(test_graceful_exit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
