/* test_http_parse.c - the incremental HTTP response parser: every response
 * fed whole, split at every byte boundary and one byte at a time must give
 * the same result; chunked bodies, bodiless statuses, interim responses and
 * close-delimited bodies; malformed input rejected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http_resp.h"

struct expect {
    int status;
    uint64_t body;
};

/* Feeds s in pieces (split points first..), expecting exactly one response
 * ending at the end of s. */
static void feed_split(const char *s, size_t len, size_t cut, struct expect e)
{
    struct http_resp r;
    http_resp_init(&r);
    size_t off = 0;
    size_t pieces[2] = {cut, len - cut};
    for (int k = 0; k < 2; k++) {
        size_t end = off + pieces[k];
        while (off < end) {
            ssize_t n = http_resp_feed(&r, s + off, end - off);
            if (n < 0)
                fail_msg("cut %zu: error %s", cut, r.err);
            off += (size_t)n;
            if (http_resp_done(&r))
                break;
            if (n == 0)
                fail_msg("no progress at %zu", off);
        }
    }
    assert_true(http_resp_done(&r));
    assert_int_equal(off, len);
    assert_int_equal(r.status, e.status);
    assert_int_equal(r.body_len, e.body);
}

static void feed_bytewise(const char *s, size_t len, struct expect e)
{
    struct http_resp r;
    http_resp_init(&r);
    for (size_t i = 0; i < len; i++) {
        assert_false(http_resp_done(&r));
        ssize_t n = http_resp_feed(&r, s + i, 1);
        if (n != 1)
            fail_msg("byte %zu: %zd (%s)", i, n, r.err ? r.err : "");
    }
    assert_true(http_resp_done(&r));
    assert_int_equal(r.status, e.status);
    assert_int_equal(r.body_len, e.body);
}

static void check_all_ways(const char *s, struct expect e)
{
    size_t len = strlen(s);
    for (size_t cut = 0; cut <= len; cut++)
        feed_split(s, len, cut, e);
    feed_bytewise(s, len, e);
}

static void test_content_length(void **state)
{
    check_all_ways("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
                   (struct expect){200, 5});
    check_all_ways("HTTP/1.1 200 OK\r\ncontent-length:0\r\n\r\n", (struct expect){200, 0});
    check_all_ways("HTTP/1.0 404 Not Found\nContent-Length: 3\n\nnop", (struct expect){404, 3});
}

static void test_chunked(void **state)
{
    check_all_ways("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5;name=val\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                   "0\r\nX-Trailer: yes\r\n\r\n",
                   (struct expect){200, 31});
    check_all_ways("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                   (struct expect){200, 0});
}

static void test_bodiless_and_interim(void **state)
{
    check_all_ways("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
                   (struct expect){204, 0});
    check_all_ways("HTTP/1.1 304 Not Modified\r\n\r\n", (struct expect){304, 0});
    check_all_ways("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                   (struct expect){200, 2});
}

static void test_pipelined_stops_at_boundary(void **state)
{
    const char *two = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
                      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nz";
    struct http_resp r;
    http_resp_init(&r);
    size_t len = strlen(two);
    ssize_t n = http_resp_feed(&r, two, len);
    assert_int_equal(n, strlen("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"));
    assert_true(http_resp_done(&r));
    assert_false(r.close);
    http_resp_init(&r);
    assert_int_equal(http_resp_feed(&r, two + n, len - (size_t)n), len - (size_t)n);
    assert_true(http_resp_done(&r));
    assert_true(r.close);
    assert_int_equal(r.body_len, 1);
}

static void test_until_close(void **state)
{
    struct http_resp r;
    http_resp_init(&r);
    const char *s = "HTTP/1.0 200 OK\r\n\r\nsome body";
    assert_int_equal(http_resp_feed(&r, s, strlen(s)), strlen(s));
    assert_false(http_resp_done(&r));
    assert_int_equal(http_resp_eof(&r), 1);
    assert_true(http_resp_done(&r));
    assert_int_equal(r.body_len, 9);
    assert_true(r.close);
    http_resp_init(&r);
    assert_int_equal(http_resp_eof(&r), 0); /* nothing in progress */
}

static void test_cut_short(void **state)
{
    struct http_resp r;
    http_resp_init(&r);
    const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    assert_int_equal(http_resp_feed(&r, s, strlen(s)), strlen(s));
    assert_int_equal(http_resp_eof(&r), -1);
    assert_non_null(r.err);
}

static void expect_bad(const char *s)
{
    struct http_resp r;
    http_resp_init(&r);
    size_t len = strlen(s), off = 0;
    while (off < len) {
        ssize_t n = http_resp_feed(&r, s + off, len - off);
        if (n < 0) {
            assert_non_null(r.err);
            assert_int_equal(http_resp_feed(&r, "x", 1), -1); /* stays failed */
            return;
        }
        if (http_resp_done(&r))
            fail_msg("accepted: %s", s);
        off += (size_t)n;
    }
    fail_msg("no error for: %s", s);
}

static void test_bad_input(void **state)
{
    expect_bad("HTTP/2 200 OK\r\n\r\n");
    expect_bad("HTTP/1.1 20 OK\r\n\r\n");
    expect_bad("HTTP/1.1 2000 OK\r\n\r\n");
    expect_bad("HTTP/1.1 999 Nope\r\n\r\n");
    expect_bad("SSH-2.0-OpenSSH\r\n\r\n");
    expect_bad("HTTP/1.1 200 OK\r\nNoColonHere\r\n\r\n");
    expect_bad("HTTP/1.1 200 OK\r\n: empty name\r\n\r\n");
    expect_bad("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n");
    expect_bad("HTTP/1.1 200 OK\r\n folded: x\r\n\r\n");
    expect_bad("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n");
    expect_bad("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n");
    expect_bad("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n");
    expect_bad("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    expect_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    expect_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n");
    expect_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n");
    expect_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n");
}

static void test_header_limit(void **state)
{
    size_t n = HTTP_HEADER_MAX + 100;
    char *s = malloc(n + 64);
    assert_non_null(s);
    strcpy(s, "HTTP/1.1 200 OK\r\nX-Big: ");
    size_t off = strlen(s);
    memset(s + off, 'a', n - off);
    strcpy(s + n, "\r\n\r\n");
    expect_bad(s);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_bodiless_and_interim),
        cmocka_unit_test(test_pipelined_stops_at_boundary),
        cmocka_unit_test(test_until_close),
        cmocka_unit_test(test_cut_short),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_header_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
