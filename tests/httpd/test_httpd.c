/* test_httpd.c - mux-httpd as a user runs it: a child process serving a
 * temporary document root, talked to over raw sockets on 127.0.0.1.
 * Keep-alive, pipelining, HEAD, conditionals, ranges, every error status,
 * HTTP/1.0, a 24 MiB file byte for byte, a client vanishing mid-download,
 * many concurrent keep-alive clients. Timeouts, the access log and the CLI
 * are in test_httpd_more.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd_fixture.h"

static struct fixture fx;
static struct th_child srv;

static int setup(void **state)
{
    return fx_up(&fx, &srv, MUX_HTTPD_BIN);
}

static int teardown(void **state)
{
    fx_down(&fx, &srv);
    return 0;
}

/* Last: SIGTERM gives exit 0 (under the sanitizers also: no report). */
static void test_graceful_exit(void **state)
{
    assert_int_equal(fx_stop(&srv), 0);
}

static void get(struct hc *h, const char *req, struct hresp *r, bool no_body)
{
    assert_int_equal(hc_send(h, req), 0);
    assert_int_equal(hc_recv(h, r, no_body, 10000), 0);
}

static void expect_file(const struct hresp *r, const char *rel)
{
    size_t len;
    char *want = fx_slurp(&fx, rel, &len);
    assert_non_null(want);
    assert_int_equal(r->status, 200);
    assert_int_equal(r->body_len, len);
    assert_memory_equal(r->body, want, len);
    free(want);
}

static void expect_field(const struct hresp *r, const char *name, const char *value)
{
    char v[256];
    if (hr_field(r, name, v, sizeof v) == NULL)
        fail_msg("no %s field in:\n%s", name, r->head);
    assert_string_equal(v, value);
}

static void test_keepalive_reuse(void **state)
{
    struct hc h;
    struct hresp r;
    assert_int_equal(hc_open(&h, srv.port), 0);
    const char *files[] = {"hello.txt", "data.bin", "style.css", "hello.txt", "medium.bin"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char req[256];
        snprintf(req, sizeof req, "GET /%s HTTP/1.1\r\nHost: t\r\n\r\n", files[i]);
        get(&h, req, &r, false);
        expect_file(&r, files[i]);
        expect_field(&r, "Connection", "keep-alive");
        hr_free(&r);
    }
    get(&h, "GET / HTTP/1.1\r\nHost: t\r\n\r\n", &r, false); /* directory -> index.html */
    expect_file(&r, "index.html");
    expect_field(&r, "Content-Type", "text/html; charset=utf-8");
    hr_free(&r);
    hc_close(&h);
}

static void test_fields(void **state)
{
    struct hc h;
    struct hresp r;
    assert_int_equal(hc_open(&h, srv.port), 0);
    get(&h, "GET /style.css HTTP/1.1\r\nHost: t\r\n\r\n", &r, false);
    expect_file(&r, "style.css");
    expect_field(&r, "Content-Type", "text/css; charset=utf-8");
    char v[128];
    assert_non_null(hr_field(&r, "Date", v, sizeof v));
    assert_int_equal(strlen(v), 29);
    assert_non_null(hr_field(&r, "Last-Modified", v, sizeof v));
    assert_non_null(strstr(v, " GMT"));
    assert_non_null(hr_field(&r, "ETag", v, sizeof v));
    assert_int_equal(v[0], '"');
    hr_free(&r);
    get(&h, "GET /pixel.png HTTP/1.1\r\nHost: t\r\n\r\n", &r, false);
    expect_field(&r, "Content-Type", "image/png");
    hr_free(&r);
    get(&h, "GET /sub/a%20b.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r, false);
    expect_file(&r, "sub/a b.txt");
    hr_free(&r);
    get(&h, "GET /sub HTTP/1.1\r\nHost: t\r\n\r\n", &r, false); /* as nginx */
    assert_int_equal(r.status, 301);
    expect_field(&r, "Location", "/sub/");
    hr_free(&r);
    get(&h, "GET /link.txt?x=1 HTTP/1.1\r\nHost: t\r\n\r\n", &r, false);
    expect_file(&r, "hello.txt"); /* a symlink inside the root, query ignored */
    hr_free(&r);
    hc_close(&h);
}

static void test_pipelining(void **state)
{
    struct hc h;
    struct hresp r;
    assert_int_equal(hc_open(&h, srv.port), 0);
    assert_int_equal(hc_send(&h, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                                 "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
                                 "GET /medium.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                                 "HEAD /data.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                                 "GET /data.bin HTTP/1.1\r\nHost: t\r\n\r\n"),
                     0);
    assert_int_equal(hc_recv(&h, &r, false, 10000), 0);
    expect_file(&r, "hello.txt");
    hr_free(&r);
    assert_int_equal(hc_recv(&h, &r, false, 10000), 0);
    assert_int_equal(r.status, 404);
    hr_free(&r);
    assert_int_equal(hc_recv(&h, &r, false, 10000), 0);
    expect_file(&r, "medium.bin");
    hr_free(&r);
    assert_int_equal(hc_recv(&h, &r, true, 10000), 0);
    assert_int_equal(r.status, 200);
    expect_field(&r, "Content-Length", "4096");
    hr_free(&r);
    assert_int_equal(hc_recv(&h, &r, false, 10000), 0);
    expect_file(&r, "data.bin");
    hr_free(&r);
    /* One byte per write: the head is assembled across many reads. */
    const char *slow = "GET /data.bin HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n\r\n";
    for (size_t i = 0; slow[i] != '\0'; i++)
        assert_int_equal(th_write_all(h.fd, &slow[i], 1, 5000), 0);
    assert_int_equal(hc_recv(&h, &r, false, 10000), 0);
    expect_file(&r, "data.bin");
    hr_free(&r);
    /* A GET body is read and dropped, the next request still parses. */
    get(&h, "GET /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde", &r, false);
    expect_file(&r, "hello.txt");
    hr_free(&r);
    get(&h, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r, false);
    expect_file(&r, "hello.txt");
    hr_free(&r);
    hc_close(&h);
}

static void test_head(void **state)
{
    struct hc h;
    struct hresp r;
    assert_int_equal(hc_open(&h, srv.port), 0);
    get(&h, "HEAD /medium.bin HTTP/1.1\r\nHost: t\r\n\r\n", &r, true);
    assert_int_equal(r.status, 200);
    char v[32];
    snprintf(v, sizeof v, "%u", FX_MEDIUM_SIZE);
    expect_field(&r, "Content-Length", v);
    hr_free(&r);
    get(&h, "HEAD /nope HTTP/1.1\r\nHost: t\r\n\r\n", &r, true);
    assert_int_equal(r.status, 404);
    hr_free(&r);
    /* No body bytes followed the heads: the next response starts clean. */
    get(&h, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r, false);
    expect_file(&r, "hello.txt");
    hr_free(&r);
    hc_close(&h);
}

static void test_conditional(void **state)
{
    struct hc h;
    struct hresp r;
    char etag[64], lm[64], req[512];
    assert_int_equal(hc_open(&h, srv.port), 0);
    get(&h, "GET /data.bin HTTP/1.1\r\nHost: t\r\n\r\n", &r, false);
    assert_non_null(hr_field(&r, "ETag", etag, sizeof etag));
    assert_non_null(hr_field(&r, "Last-Modified", lm, sizeof lm));
    hr_free(&r);
    snprintf(req, sizeof req, "GET /data.bin HTTP/1.1\r\nHost: t\r\nIf-None-Match: %s\r\n\r\n",
             etag);
    get(&h, req, &r, false);
    assert_int_equal(r.status, 304);
    expect_field(&r, "ETag", etag);
    hr_free(&r);
    snprintf(req, sizeof req,
             "GET /data.bin HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: %s\r\n\r\n", lm);
    get(&h, req, &r, false);
    assert_int_equal(r.status, 304);
    hr_free(&r);
    get(&h, "GET /data.bin HTTP/1.1\r\nHost: t\r\n"
            "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n", &r, false);
    expect_file(&r, "data.bin");
    hr_free(&r);
    get(&h, "GET /data.bin HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"other\"\r\n\r\n", &r, false);
    expect_file(&r, "data.bin");
    hr_free(&r);
    hc_close(&h);
}

static void test_ranges(void **state)
{
    struct hc h;
    struct hresp r;
    size_t len;
    char *data = fx_slurp(&fx, "data.bin", &len);
    assert_int_equal(hc_open(&h, srv.port), 0);
    get(&h, "GET /data.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=10-19\r\n\r\n", &r, false);
    assert_int_equal(r.status, 206);
    expect_field(&r, "Content-Range", "bytes 10-19/4096");
    assert_int_equal(r.body_len, 10);
    assert_memory_equal(r.body, data + 10, 10);
    hr_free(&r);
    get(&h, "GET /data.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=-5\r\n\r\n", &r, false);
    assert_int_equal(r.status, 206);
    expect_field(&r, "Content-Range", "bytes 4091-4095/4096");
    assert_memory_equal(r.body, data + 4091, 5);
    hr_free(&r);
    get(&h, "GET /data.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=5000-\r\n\r\n", &r, false);
    assert_int_equal(r.status, 416);
    expect_field(&r, "Content-Range", "bytes */4096");
    hr_free(&r);
    get(&h, "GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=20000000-20000099\r\n\r\n", &r,
        false);
    assert_int_equal(r.status, 206);
    assert_int_equal(r.body_len, 100);
    hr_free(&r);
    get(&h, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r, false); /* still usable */
    expect_file(&r, "hello.txt");
    hr_free(&r);
    free(data);
    hc_close(&h);
}

/* A request answered with `status`; `closes`: the server closes after it. */
static void expect_status(const char *req, int status, bool closes)
{
    struct hc h;
    struct hresp r;
    assert_int_equal(hc_open(&h, srv.port), 0);
    assert_int_equal(hc_send(&h, req), 0);
    if (hc_recv(&h, &r, false, 10000) < 0)
        fail_msg("no response to %.60s", req);
    if (r.status != status)
        fail_msg("%.60s: status %d, want %d", req, r.status, status);
    assert_null(strstr(r.body ? r.body : "", "secret"));
    hr_free(&r);
    if (closes) {
        assert_true(hc_closed(&h, FX_MS(5000)));
    } else {
        get(&h, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r, false);
        expect_file(&r, "hello.txt");
        hr_free(&r);
    }
    hc_close(&h);
}

static void test_not_found_and_forbidden(void **state)
{
    expect_status("GET /nope.txt HTTP/1.1\r\nHost: t\r\n\r\n", 404, false);
    expect_status("GET /hello.txt/x HTTP/1.1\r\nHost: t\r\n\r\n", 404, false);
    const char *forbidden[] = {
        "/../outside.txt", "/%2e%2e/outside.txt", "/sub/%2E%2E/%2e%2e/outside.txt",
        "/sub/..%2f..%2foutside.txt", "/a%00b", "/escape.txt", "/abs.txt", "/empty/",
        "http://t/../outside.txt",
    };
    for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++) {
        char req[256];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", forbidden[i]);
        expect_status(req, 403, false);
    }
    expect_status("GET /..\\outside.txt HTTP/1.1\r\nHost: t\r\n\r\n", 404, false);
}

static void test_method_not_allowed(void **state)
{
    struct hc h;
    struct hresp r;
    assert_int_equal(hc_open(&h, srv.port), 0);
    get(&h, "POST /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc", &r, false);
    assert_int_equal(r.status, 405);
    expect_field(&r, "Allow", "GET, HEAD");
    hr_free(&r);
    get(&h, "DELETE /nope HTTP/1.1\r\nHost: t\r\n\r\n", &r, false);
    assert_int_equal(r.status, 405);
    hr_free(&r);
    get(&h, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r, false);
    expect_file(&r, "hello.txt");
    hr_free(&r);
    hc_close(&h);
}

static void test_closing_errors(void **state)
{
    char *req = malloc(40000);
    snprintf(req, 40000, "GET /%0*d HTTP/1.1\r\nHost: t\r\n\r\n", 9000, 0);
    expect_status(req, 414, true);
    snprintf(req, 40000, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: %0*d\r\n\r\n", 20000, 0);
    expect_status(req, 431, true);
    free(req);
    expect_status("GET  / HTTP/1.1\r\nHost: t\r\n\r\n", 400, true);
    expect_status("GET / HTTP/1.1 junk\r\nHost: t\r\n\r\n", 400, true);
    expect_status("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", 400, true);
    expect_status("GET / HTTP/1.1\r\n\r\n", 400, true); /* no Host on 1.1 */
    expect_status("GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501,
                  true); /* chunked bodies: test_httpd_body.c */
    expect_status("GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505, true);
    expect_status("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 5000000\r\n\r\n", 413, true);
    expect_status("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, true); /* TLS hello */
}

static void test_http10(void **state)
{
    struct hc h;
    struct hresp r;
    assert_int_equal(hc_open(&h, srv.port), 0);
    get(&h, "GET /hello.txt HTTP/1.0\r\n\r\n", &r, false);
    expect_file(&r, "hello.txt");
    expect_field(&r, "Connection", "close");
    hr_free(&r);
    assert_true(hc_closed(&h, FX_MS(5000)));
    hc_close(&h);

    assert_int_equal(hc_open(&h, srv.port), 0);
    for (int i = 0; i < 3; i++) {
        get(&h, "GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r, false);
        expect_file(&r, "hello.txt");
        expect_field(&r, "Connection", "keep-alive");
        hr_free(&r);
    }
    get(&h, "GET /hello.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r, false);
    expect_field(&r, "Connection", "close");
    hr_free(&r);
    assert_true(hc_closed(&h, FX_MS(5000)));
    hc_close(&h);
}

static void test_big_file(void **state)
{
    struct hc h;
    struct hresp r;
    assert_int_equal(hc_open(&h, srv.port), 0);
    get(&h, "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n", &r, false);
    expect_file(&r, "big.bin");
    hr_free(&r);
    get(&h, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r, false);
    expect_file(&r, "hello.txt");
    hr_free(&r);
    hc_close(&h);
}

/* One client resets mid-download while another downloads the same file
 * on the same worker (-w 1 server); the second gets every byte. */
static void test_client_vanishes_mid_download(void **state)
{
    struct th_child one;
    assert_int_equal(fx_start(&one, &fx, MUX_HTTPD_BIN, 1, NULL, NULL), 0);
    struct hc *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    struct hresp *r = malloc(sizeof *r);
    assert_int_equal(hc_open(a, one.port), 0);
    assert_int_equal(hc_open(b, one.port), 0);
    assert_int_equal(hc_send(a, "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    assert_int_equal(hc_send(b, "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    char part[65536];
    assert_int_equal(th_read_exact(a->fd, part, sizeof part, 10000), (ssize_t)sizeof part);
    struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* vanish: RST */
    setsockopt(a->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    hc_close(a);
    assert_int_equal(hc_recv(b, r, false, 30000), 0);
    expect_file(r, "big.bin");
    hr_free(r);
    hc_close(b);
    assert_int_equal(hc_once(one.port, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", r, false), 0);
    expect_file(r, "hello.txt");
    hr_free(r);
    free(a);
    free(b);
    free(r);
    assert_int_equal(fx_stop(&one), 0);
}

struct worker_arg {
    int id, requests, failures;
};

/* The files the concurrent clients fetch and their expected bodies, set
 * before the threads start and only read by them. */
static const char *conc_files[] = {"hello.txt", "data.bin", "style.css", "medium.bin",
                                   "pixel.png"};
static char *conc_want[5];
static size_t conc_len[5];

static void *client_thread(void *p)
{
    struct worker_arg *w = p;
    struct hc *h = malloc(sizeof *h);
    struct hresp *r = malloc(sizeof *r);
    if (h == NULL || r == NULL || hc_open(h, srv.port) < 0) {
        w->failures = w->requests;
        goto out;
    }
    for (int i = 0; i < w->requests; i++) {
        int k = (w->id + i) % 5;
        char req[128];
        snprintf(req, sizeof req, "GET /%s HTTP/1.1\r\nHost: t\r\n\r\n", conc_files[k]);
        if (hc_send(h, req) < 0 || hc_recv(h, r, false, 30000) < 0) {
            w->failures += w->requests - i;
            break;
        }
        if (r->status != 200 || r->body_len != conc_len[k] ||
            memcmp(r->body, conc_want[k], conc_len[k]) != 0)
            w->failures++;
        hr_free(r);
    }
    hc_close(h);
out:
    free(h);
    free(r);
    return NULL;
}

static void test_concurrent_clients(void **state)
{
    enum { MAXC = 50 };
    int conns = th_under_valgrind() ? 10 : MAXC, requests = th_under_valgrind() ? 5 : 20;
    for (int k = 0; k < 5; k++)
        assert_non_null(conc_want[k] = fx_slurp(&fx, conc_files[k], &conc_len[k]));
    pthread_t t[MAXC];
    struct worker_arg args[MAXC];
    for (int i = 0; i < conns; i++) {
        args[i] = (struct worker_arg){.id = i, .requests = requests};
        assert_int_equal(pthread_create(&t[i], NULL, client_thread, &args[i]), 0);
    }
    int failures = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(t[i], NULL);
        failures += args[i].failures;
    }
    for (int k = 0; k < 5; k++)
        free(conc_want[k]);
    print_message("%d connections x %d requests, %d failures\n", conns, requests, failures);
    assert_int_equal(failures, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keepalive_reuse),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_conditional),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_not_found_and_forbidden),
        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_closing_errors),
        cmocka_unit_test(test_http10),
        cmocka_unit_test(test_big_file),
        cmocka_unit_test(test_client_vanishes_mid_download),
        cmocka_unit_test(test_concurrent_clients),
        cmocka_unit_test(test_graceful_exit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
