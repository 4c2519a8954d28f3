/* test_response.c - http_plan_response(): status decisions (conditionals,
 * Range, If-Range), the head's fields, error pages, keep-alive, and the
 * entity-tag helpers. Table driven where the inputs vary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first */
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_date.h"
#include "http_response.h"

#define DATE "Tue, 14 Nov 2023 22:13:20 GMT"
#define NOW 1700000000 /* DATE */
#define MTIME 784111777 /* Sun, 06 Nov 1994 08:49:37 GMT */
#define LASTMOD "Sun, 06 Nov 1994 08:49:37 GMT"
#define ETAG "\"2ebc98a1-a\"" /* mtime 0x2ebc98a1, size 10 */

static const struct http_file_facts file10 = {
    .size = 10, .mtime = MTIME, .content_type = "text/plain; charset=utf-8"};

struct result {
    char buf[HTTP_RESPONSE_HEAD_MAX];
    struct http_plan plan;
    int rc;
};

static struct http_span span(const char *s)
{
    struct http_span sp = {s, s != NULL ? strlen(s) : 0};
    return sp;
}

/* The value of header `name` in the head, or NULL. */
static const char *field(const struct result *r, const char *name)
{
    static char value[256];
    char key[64];
    snprintf(key, sizeof key, "\r\n%s: ", name);
    const char *p = strstr(r->buf, key);
    if (p == NULL)
        return NULL;
    p += strlen(key);
    const char *e = strstr(p, "\r\n");
    snprintf(value, sizeof value, "%.*s", (int)(e - p), p);
    return value;
}

/* Every line ends in CRLF, and the head ends with an empty line. */
static size_t check_head_shape(const struct result *r)
{
    const char *end = strstr(r->buf, "\r\n\r\n");
    assert_non_null(end);
    size_t head = (size_t)(end - r->buf) + 4;
    for (size_t i = 0; i < head; i++) {
        if (r->buf[i] == '\n')
            assert_true(i > 0 && r->buf[i - 1] == '\r');
        if (r->buf[i] == '\r')
            assert_true(r->buf[i + 1] == '\n');
    }
    return head;
}

static void plan(struct result *r, const struct http_response_in *in)
{
    memset(r->buf, 0, sizeof r->buf);
    r->rc = http_plan_response(in, r->buf, sizeof r->buf - 1, &r->plan);
    assert_int_equal(r->rc, 0);
    check_head_shape(r);
}

static struct http_response_in file_in(enum http_method m, const struct http_request_info *req)
{
    struct http_response_in in = {
        .status = 200, .method = m, .keep_alive = true, .req = req, .file = &file10, .date = DATE,
        .now = NOW};
    return in;
}

static void test_plain_get(void **state)
{
    struct http_request_info req = {.method = HTTP_METHOD_GET, .minor_version = 1};
    struct http_response_in in = file_in(HTTP_METHOD_GET, &req);
    struct result r;
    plan(&r, &in);
    assert_int_equal(r.plan.status, 200);
    assert_memory_equal(r.buf, "HTTP/1.1 200 OK\r\n", 17);
    assert_string_equal(field(&r, "Server"), "mux");
    assert_string_equal(field(&r, "Date"), DATE);
    assert_string_equal(field(&r, "Content-Type"), "text/plain; charset=utf-8");
    assert_string_equal(field(&r, "Content-Length"), "10");
    assert_string_equal(field(&r, "Last-Modified"), LASTMOD);
    assert_string_equal(field(&r, "ETag"), ETAG);
    assert_string_equal(field(&r, "Accept-Ranges"), "bytes");
    assert_string_equal(field(&r, "Connection"), "keep-alive");
    assert_null(field(&r, "Content-Range"));
    assert_int_equal(r.plan.head_len, strlen(r.buf));
    assert_int_equal(r.plan.file_offset, 0);
    assert_int_equal(r.plan.file_len, 10);
    assert_true(r.plan.keep_alive);

    in.method = HTTP_METHOD_HEAD;
    in.keep_alive = false;
    plan(&r, &in);
    assert_int_equal(r.plan.status, 200);
    assert_string_equal(field(&r, "Content-Length"), "10");
    assert_string_equal(field(&r, "Connection"), "close");
    assert_int_equal(r.plan.file_len, 0);
    assert_false(r.plan.keep_alive);
    assert_int_equal(r.plan.head_len, strlen(r.buf));

    in.req = NULL; /* no request facts: plain 200 */
    in.method = HTTP_METHOD_GET;
    plan(&r, &in);
    assert_int_equal(r.plan.status, 200);
}

struct cond_case {
    enum http_method method;
    const char *inm, *ims, *range, *if_range;
    int status;
    uint64_t offset, len; /* file range planned */
    const char *content_range;
};

static const struct cond_case conds[] = {
    {HTTP_METHOD_GET, ETAG, NULL, NULL, NULL, 304, 0, 0, NULL},
    {HTTP_METHOD_HEAD, ETAG, NULL, NULL, NULL, 304, 0, 0, NULL},
    {HTTP_METHOD_GET, "W/" ETAG, NULL, NULL, NULL, 304, 0, 0, NULL}, /* weak comparison */
    {HTTP_METHOD_GET, "*", NULL, NULL, NULL, 304, 0, 0, NULL},
    {HTTP_METHOD_GET, "\"x\", " ETAG, NULL, NULL, NULL, 304, 0, 0, NULL},
    {HTTP_METHOD_GET, "\"x\",W/\"y\"," ETAG " ", NULL, NULL, NULL, 304, 0, 0, NULL},
    {HTTP_METHOD_GET, "\"x\"", NULL, NULL, NULL, 200, 0, 10, NULL},
    {HTTP_METHOD_GET, "\"2ebc98a1-a", NULL, NULL, NULL, 200, 0, 10, NULL},
    {HTTP_METHOD_GET, "2ebc98a1-a", NULL, NULL, NULL, 200, 0, 10, NULL},
    /* If-None-Match wins over If-Modified-Since. */
    {HTTP_METHOD_GET, "\"x\"", LASTMOD, NULL, NULL, 200, 0, 10, NULL},
    {HTTP_METHOD_GET, NULL, LASTMOD, NULL, NULL, 304, 0, 0, NULL},
    {HTTP_METHOD_GET, NULL, "Sunday, 06-Nov-94 08:49:37 GMT", NULL, NULL, 304, 0, 0, NULL},
    {HTTP_METHOD_GET, NULL, "Mon, 07 Nov 1994 00:00:00 GMT", NULL, NULL, 304, 0, 0, NULL},
    {HTTP_METHOD_GET, NULL, "Sun, 06 Nov 1994 08:49:36 GMT", NULL, NULL, 200, 0, 10, NULL},
    {HTTP_METHOD_GET, NULL, "yesterday", NULL, NULL, 200, 0, 10, NULL},
    /* A date after the current time (NOW) is invalid: ignored (RFC 9110). */
    {HTTP_METHOD_GET, NULL, "Tue, 14 Nov 2023 22:13:20 GMT", NULL, NULL, 304, 0, 0, NULL},
    {HTTP_METHOD_GET, NULL, "Tue, 14 Nov 2023 22:13:21 GMT", NULL, NULL, 200, 0, 10, NULL},
    {HTTP_METHOD_GET, NULL, "Fri, 31 Dec 9999 23:59:59 GMT", NULL, NULL, 200, 0, 10, NULL},
    /* Range */
    {HTTP_METHOD_GET, NULL, NULL, "bytes=2-5", NULL, 206, 2, 4, "bytes 2-5/10"},
    {HTTP_METHOD_GET, NULL, NULL, "bytes=-3", NULL, 206, 7, 3, "bytes 7-9/10"},
    {HTTP_METHOD_GET, NULL, NULL, "bytes=0-", NULL, 206, 0, 10, "bytes 0-9/10"},
    {HTTP_METHOD_HEAD, NULL, NULL, "bytes=2-5", NULL, 206, 2, 0, "bytes 2-5/10"},
    {HTTP_METHOD_GET, NULL, NULL, "bytes=10-", NULL, 416, 0, 0, "bytes */10"},
    {HTTP_METHOD_GET, NULL, NULL, "bytes=0-1,4-5", NULL, 206, 0, 0, NULL}, /* multipart */
    {HTTP_METHOD_GET, NULL, NULL, "bytes=0-5,4-9", NULL, 200, 0, 10, NULL}, /* > the file */
    {HTTP_METHOD_GET, NULL, NULL, "lines=1-2", NULL, 200, 0, 10, NULL},
    /* If-Range */
    {HTTP_METHOD_GET, NULL, NULL, "bytes=2-5", ETAG, 206, 2, 4, "bytes 2-5/10"},
    {HTTP_METHOD_GET, NULL, NULL, "bytes=2-5", "\"other\"", 200, 0, 10, NULL},
    {HTTP_METHOD_GET, NULL, NULL, "bytes=2-5", "W/" ETAG, 200, 0, 10, NULL}, /* strong only */
    {HTTP_METHOD_GET, NULL, NULL, "bytes=2-5", ETAG ", " ETAG, 200, 0, 10, NULL},
    {HTTP_METHOD_GET, NULL, NULL, "bytes=2-5", LASTMOD, 206, 2, 4, "bytes 2-5/10"},
    {HTTP_METHOD_GET, NULL, NULL, "bytes=2-5", "Mon, 07 Nov 1994 00:00:00 GMT", 200, 0, 10, NULL},
    {HTTP_METHOD_GET, NULL, NULL, "bytes=2-5", "junk", 200, 0, 10, NULL},
    {HTTP_METHOD_GET, NULL, NULL, "bytes=10-", "\"other\"", 200, 0, 10, NULL},
    /* Conditionals come before Range. */
    {HTTP_METHOD_GET, ETAG, NULL, "bytes=2-5", NULL, 304, 0, 0, NULL},
    {HTTP_METHOD_GET, NULL, LASTMOD, "bytes=10-", NULL, 304, 0, 0, NULL},
};

static void test_conditionals_and_ranges(void **state)
{
    for (size_t i = 0; i < sizeof conds / sizeof conds[0]; i++) {
        const struct cond_case *c = &conds[i];
        struct http_request_info req = {
            .method = c->method, .minor_version = 1, .keep_alive = true};
        req.if_none_match = span(c->inm);
        req.if_modified_since = span(c->ims);
        req.range = span(c->range);
        req.if_range = span(c->if_range);
        struct http_response_in in = file_in(c->method, &req);
        struct result r;
        plan(&r, &in);
        if (r.plan.status != c->status || r.plan.file_offset != c->offset ||
            r.plan.file_len != c->len)
            fail_msg("case %zu: status %d range %llu+%llu", i, r.plan.status,
                     (unsigned long long)r.plan.file_offset, (unsigned long long)r.plan.file_len);
        const char *cr = field(&r, "Content-Range");
        if ((cr == NULL) != (c->content_range == NULL) ||
            (cr != NULL && strcmp(cr, c->content_range) != 0))
            fail_msg("case %zu: Content-Range %s", i, cr ? cr : "(none)");
        assert_true(r.plan.keep_alive);
        if (c->status == 304) {
            assert_null(field(&r, "Content-Length"));
            assert_null(field(&r, "Content-Type"));
            assert_string_equal(field(&r, "ETag"), ETAG);
            assert_string_equal(field(&r, "Last-Modified"), LASTMOD);
            assert_int_equal(r.plan.head_len, strlen(r.buf));
        }
        if (c->status == 206 && c->content_range != NULL) {
            char want[32];
            snprintf(want, sizeof want, "%llu",
                     (unsigned long long)(c->method == HTTP_METHOD_HEAD ? 4 : c->len));
            assert_string_equal(field(&r, "Content-Length"), want);
        }
        if (c->status == 416) {
            assert_string_equal(field(&r, "Content-Type"), "text/html; charset=utf-8");
            size_t head = check_head_shape(&r);
            char want[32];
            snprintf(want, sizeof want, "%zu", r.plan.head_len - head);
            assert_string_equal(field(&r, "Content-Length"), want);
        }
    }
}

struct error_case {
    int status;
    bool keep_alive_in;
    bool keep_alive_out;
};

static const struct error_case errors[] = {
    {400, true, false}, {403, true, true},  {404, true, true},  {404, false, false},
    {405, true, true},  {408, true, false}, {414, true, false}, {431, true, false},
    {500, true, false}, {501, true, false}, {505, true, false}, {503, true, true},
};

static void test_error_pages(void **state)
{
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        for (int head = 0; head < 2; head++) {
            struct http_response_in in = {.status = errors[i].status,
                                          .method = head ? HTTP_METHOD_HEAD : HTTP_METHOD_GET,
                                          .keep_alive = errors[i].keep_alive_in,
                                          .date = DATE};
            struct result r;
            plan(&r, &in);
            char line[64];
            snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", errors[i].status,
                     http_reason(errors[i].status));
            assert_memory_equal(r.buf, line, strlen(line));
            assert_int_equal(r.plan.status, errors[i].status);
            assert_int_equal(r.plan.keep_alive, errors[i].keep_alive_out);
            assert_string_equal(field(&r, "Connection"),
                                errors[i].keep_alive_out ? "keep-alive" : "close");
            assert_int_equal(r.plan.file_len, 0);
            size_t hl = check_head_shape(&r);
            const char *cl = field(&r, "Content-Length");
            assert_non_null(cl);
            size_t body = (size_t)strtoul(cl, NULL, 10);
            assert_true(body > 0);
            if (head) {
                assert_int_equal(r.plan.head_len, hl);
            } else {
                assert_int_equal(r.plan.head_len, hl + body);
                char title[64];
                snprintf(title, sizeof title, "<h1>%d %s</h1>", errors[i].status,
                         http_reason(errors[i].status));
                assert_non_null(strstr(r.buf + hl, title));
            }
            if (errors[i].status == 405)
                assert_string_equal(field(&r, "Allow"), "GET, HEAD");
            else
                assert_null(field(&r, "Allow"));
            assert_null(field(&r, "ETag"));
        }
    }
}

static void test_redirect(void **state)
{
    struct http_response_in in = {.status = 301,
                                  .method = HTTP_METHOD_GET,
                                  .keep_alive = true,
                                  .location = span("/sub/"),
                                  .date = DATE};
    struct result r;
    plan(&r, &in);
    assert_int_equal(r.plan.status, 301);
    assert_string_equal(field(&r, "Location"), "/sub/");
    assert_true(r.plan.keep_alive);
}

static void test_buffer_too_small(void **state)
{
    struct http_response_in in = file_in(HTTP_METHOD_GET, NULL);
    char buf[HTTP_RESPONSE_HEAD_MAX];
    struct http_plan p;
    assert_int_equal(http_plan_response(&in, buf, 40, &p), -ENOSPC);
    assert_int_equal(http_plan_response(&in, buf, 0, &p), -ENOSPC);
    in.status = 404;
    assert_int_equal(http_plan_response(&in, buf, 100, &p), -ENOSPC);
    /* The worst case fits the documented size. */
    in.status = 431;
    in.file = NULL;
    assert_int_equal(http_plan_response(&in, buf, sizeof buf, &p), 0);
}

static void test_caller_bugs(void **state)
{
    struct http_response_in in = {
        .status = 200, .method = HTTP_METHOD_GET, .keep_alive = true, .date = DATE};
    struct result r;
    plan(&r, &in); /* 200 without a file */
    assert_int_equal(r.plan.status, 500);
    in.status = 304;
    in.file = &file10;
    plan(&r, &in);
    assert_int_equal(r.plan.status, 500);
    in.status = 200;
    in.date = NULL; /* falls back to the current time */
    plan(&r, &in);
    assert_int_equal(strlen(field(&r, "Date")), HTTP_DATE_LEN);
}

static void test_reasons(void **state)
{
    assert_string_equal(http_reason(200), "OK");
    assert_string_equal(http_reason(206), "Partial Content");
    assert_string_equal(http_reason(304), "Not Modified");
    assert_string_equal(http_reason(416), "Range Not Satisfiable");
    assert_string_equal(http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(http_reason(299), "Unknown");
    assert_true(http_status_closes(400));
    assert_false(http_status_closes(404));
    assert_false(http_status_closes(200));
}

struct etag_case {
    const char *list;
    bool strong;
    bool match;
};

static const struct etag_case etags[] = {
    {ETAG, false, true},
    {ETAG, true, true},
    {"W/" ETAG, false, true},
    {"W/" ETAG, true, false},
    {"*", false, true},
    {" * ", false, true},
    {"*, \"x\"", false, false},
    {"\"x\" , " ETAG, false, true},
    {",," ETAG ",,", false, true},
    {"\"x\"," ETAG, false, true},
    {"\"x\"" ETAG, false, false},        /* no separator: malformed */
    {"\"x\" junk, " ETAG, false, false}, /* stops at the malformed part */
    {"\"2ebc98a1-a\"x", false, true},    /* match found before the junk */
    {"", false, false},
    {"\"", false, false},
    {"W/", false, false},
    {"\"2ebc98a1-b\"", false, false},
};

static void test_etag_lists(void **state)
{
    char tag[HTTP_ETAG_MAX];
    size_t n = http_etag(10, MTIME, tag);
    assert_string_equal(tag, ETAG);
    assert_int_equal(n, strlen(ETAG));
    for (size_t i = 0; i < sizeof etags / sizeof etags[0]; i++) {
        bool got =
            http_etag_list_match(etags[i].list, strlen(etags[i].list), tag, n, etags[i].strong);
        if (got != etags[i].match)
            fail_msg("case %zu (%s): %d", i, etags[i].list, got);
    }
    /* The largest values still fit. */
    n = http_etag(UINT64_MAX, (time_t)INT64_MAX, tag);
    assert_int_equal(n, strlen(tag));
    assert_true(n < HTTP_ETAG_MAX);
}

/* Several ranges: multipart/byteranges, and a Content-Length that counts
 * exactly the part heads, the ranges and the closing delimiter. */
static void test_multipart(void **state)
{
    struct http_request_info req = {.method = HTTP_METHOD_GET, .minor_version = 1,
                                    .keep_alive = true, .range = span("bytes=0-1,-3,4-4")};
    struct http_response_in in = file_in(HTTP_METHOD_GET, &req);
    in.boundary = 42;
    struct result r;
    plan(&r, &in);
    assert_int_equal(r.plan.status, 206);
    assert_int_equal(r.plan.file_len, 0);
    assert_int_equal(r.plan.parts, 3);
    assert_string_equal(field(&r, "Content-Type"),
                        "multipart/byteranges; boundary=00000000000000000042");
    assert_null(field(&r, "Content-Range"));
    char body[1024];
    const char *file = "0123456789";
    size_t len = 0;
    for (unsigned i = 0; i < r.plan.parts; i++) {
        size_t n = http_part_head(&r.plan, i, body + len, sizeof body - len);
        assert_true(n > 0 && n <= HTTP_PART_HEAD_MAX);
        len += n;
        memcpy(body + len, file + r.plan.part[i].start, r.plan.part[i].len);
        len += r.plan.part[i].len;
    }
    size_t n = http_parts_tail(&r.plan, body + len, sizeof body - len);
    assert_int_equal(n, HTTP_BOUNDARY_LEN + 8);
    len += n;
    body[len] = '\0';
    const char *want = "\r\n--00000000000000000042\r\nContent-Type: text/plain; charset=utf-8\r\n"
                       "Content-Range: bytes 0-1/10\r\n\r\n01"
                       "\r\n--00000000000000000042\r\nContent-Type: text/plain; charset=utf-8\r\n"
                       "Content-Range: bytes 7-9/10\r\n\r\n789"
                       "\r\n--00000000000000000042\r\nContent-Type: text/plain; charset=utf-8\r\n"
                       "Content-Range: bytes 4-4/10\r\n\r\n4"
                       "\r\n--00000000000000000042--\r\n";
    assert_string_equal(body, want);
    char cl[32];
    snprintf(cl, sizeof cl, "%zu", len);
    assert_string_equal(field(&r, "Content-Length"), cl);
    assert_int_equal(http_part_head(&r.plan, 3, body, sizeof body), 0);
    assert_int_equal(http_part_head(&r.plan, 0, body, 20), 0);
    assert_int_equal(http_parts_tail(&r.plan, body, 10), 0);

    /* HEAD: same Content-Length, no parts to send. */
    in.method = HTTP_METHOD_HEAD;
    plan(&r, &in);
    assert_int_equal(r.plan.status, 206);
    assert_int_equal(r.plan.parts, 0);
    assert_string_equal(field(&r, "Content-Length"), cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_get),        cmocka_unit_test(test_conditionals_and_ranges),
        cmocka_unit_test(test_multipart),
        cmocka_unit_test(test_error_pages),      cmocka_unit_test(test_redirect),
        cmocka_unit_test(test_buffer_too_small), cmocka_unit_test(test_caller_bugs),
        cmocka_unit_test(test_reasons),          cmocka_unit_test(test_etag_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
