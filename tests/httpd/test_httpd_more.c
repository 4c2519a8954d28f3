/* test_httpd_more.c - mux-httpd behaviour that needs its own server
 * configuration: the request-header timeout (slowloris, also against a
 * client trickling one byte at a time), the keep-alive idle timeout, the
 * access log, symlinks = false, the command line (root checks, help) and
 * the shipped example config apps/httpd.conf. */
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
#include <time.h>
#include <unistd.h>

#include "httpd_fixture.h"

static struct fixture fx;

static int setup(void **state)
{
    return fx_create(&fx);
}

static int teardown(void **state)
{
    fx_destroy(&fx);
    return 0;
}

/* Milliseconds until the server closes h (EOF or reset), or -1 when it is
 * still open after limit_ms. Data from the server fails the test. */
static long long ms_until_closed(struct hc *h, int limit_ms)
{
    long long start = th_now_ms();
    if (!hc_closed(h, FX_MS(limit_ms)))
        return -1;
    return th_now_ms() - start;
}

static void test_header_timeout(void **state)
{
    struct th_child c;
    assert_int_equal(fx_start(&c, &fx, MUX_HTTPD_BIN, 1,
                              "httpd = { header_timeout_ms = 300; keepalive_timeout_ms = 1500; };\n",
                              NULL),
                     0);
    int slow = th_slowdown();
    struct hc h;

    /* Half a head, then silence: closed after about 300 ms, no response. */
    assert_int_equal(hc_open(&h, c.port), 0);
    assert_int_equal(hc_send(&h, "GET /hello.txt HTTP/1.1\r\nHo"), 0);
    long long t = ms_until_closed(&h, 5000);
    print_message("half a head: closed after %lld ms\n", t);
    assert_true(t >= 0 && t < 300 + 1000LL * slow);
    hc_close(&h);

    /* One byte every 50 ms: each byte is progress, but the head as a whole
     * must still arrive within 300 ms. */
    assert_int_equal(hc_open(&h, c.port), 0);
    const char *head = "GET /hello.txt HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaa"
                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    long long start = th_now_ms();
    bool closed = false;
    for (size_t i = 0; head[i] != '\0' && !closed; i++) {
        if (send(h.fd, &head[i], 1, MSG_NOSIGNAL) != 1) {
            closed = true;
            break;
        }
        closed = hc_closed(&h, 50); /* the client's pace; returns early on EOF */
    }
    long long took = th_now_ms() - start;
    print_message("trickling client: closed=%d after %lld ms\n", closed, took);
    assert_true(closed || hc_closed(&h, FX_MS(1000)));
    assert_true(took < 300 + 2000LL * slow);
    hc_close(&h);

    /* Between requests the keep-alive timeout applies, not the header one. */
    struct hresp r;
    assert_int_equal(hc_open(&h, c.port), 0);
    assert_int_equal(hc_send(&h, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    assert_int_equal(hc_recv(&h, &r, false, 5000), 0);
    hr_free(&r);
    assert_false(hc_closed(&h, 600)); /* > header_timeout_ms: still open */
    assert_int_equal(hc_send(&h, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    assert_int_equal(hc_recv(&h, &r, false, 5000), 0);
    assert_int_equal(r.status, 200);
    hr_free(&r);
    t = ms_until_closed(&h, 5000);
    print_message("idle keep-alive: closed after %lld ms\n", t);
    assert_true(t >= 800 && t < 1500 + 2000LL * slow);
    hc_close(&h);
    assert_int_equal(fx_stop(&c), 0);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* --access-log FILE, and SIGUSR1 after a rotation: lines go to the new file. */
static void test_access_log_file_and_reopen(void **state)
{
    char log[256], rotated[256], conf[600];
    snprintf(log, sizeof log, "%s/acc.log", fx.dir);
    snprintf(rotated, sizeof rotated, "%s/acc.log.1", fx.dir);
    snprintf(conf, sizeof conf, "httpd = { access_log_file = \"%s\"; };\n", log);
    struct th_child c;
    assert_int_equal(fx_start(&c, &fx, MUX_HTTPD_BIN, 1, conf, NULL), 0);
    struct hresp r;
    assert_int_equal(hc_once(c.port, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r, false), 0);
    hr_free(&r);
    assert_int_equal(rename(log, rotated), 0);
    kill(c.pid, SIGUSR1);
    /* the reopen happens on the server's main thread: poll for the new file */
    long long deadline = th_now_ms() + 5000LL * th_slowdown();
    while (access(log, F_OK) != 0 && th_now_ms() < deadline) {
        struct timespec ts = {.tv_nsec = 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(access(log, F_OK), 0);
    assert_int_equal(hc_once(c.port, "GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n", &r, false), 0);
    hr_free(&r);
    assert_int_equal(fx_stop(&c), 0);
    char *old_text = read_text(rotated), *new_text = read_text(log);
    assert_non_null(old_text);
    assert_non_null(new_text);
    assert_non_null(strstr(old_text, "\"GET /hello.txt HTTP/1.1\" 200 "));
    assert_null(strstr(old_text, "/index.html"));
    assert_non_null(strstr(new_text, "\"GET /index.html HTTP/1.1\" 200 "));
    assert_null(strstr(new_text, "/hello.txt"));
    free(old_text);
    free(new_text);
}

static void test_access_log(void **state)
{
    char log[256];
    snprintf(log, sizeof log, "%s/access.log", fx.dir);
    struct th_child c;
    assert_int_equal(fx_start(&c, &fx, MUX_HTTPD_BIN, 2, "httpd = { access_log = true; };\n", log),
                     0);
    struct hresp r;
    assert_int_equal(hc_once(c.port, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r, false), 0);
    hr_free(&r);
    assert_int_equal(hc_once(c.port, "GET /no\"pe%0a HTTP/1.1\r\nHost: t\r\n\r\n", &r, false), 0);
    hr_free(&r);
    assert_int_equal(hc_once(c.port, "GARBAGE\r\n\r\n", &r, false), 0);
    hr_free(&r);
    assert_int_equal(fx_stop(&c), 0); /* every line is written before the exit */
    char *text = read_text(log);
    assert_non_null(text);
    print_message("%s", text);
    assert_non_null(strstr(text, "127.0.0.1:"));
    assert_non_null(strstr(text, "\"GET /hello.txt HTTP/1.1\" 200 "));
    assert_non_null(strstr(text, "\"GET /no\\x22pe%0a HTTP/1.1\" 404 "));
    assert_non_null(strstr(text, "\"-\" 400 "));
    assert_non_null(strstr(text, " +0000] "));
    free(text);
}

static void test_symlinks_off(void **state)
{
    struct th_child c;
    assert_int_equal(fx_start(&c, &fx, MUX_HTTPD_BIN, 1, "httpd = { symlinks = false; };\n", NULL),
                     0);
    struct hresp r;
    assert_int_equal(hc_once(c.port, "GET /link.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r, false), 0);
    assert_int_equal(r.status, 403);
    hr_free(&r);
    assert_int_equal(hc_once(c.port, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r, false), 0);
    assert_int_equal(r.status, 200);
    hr_free(&r);
    assert_int_equal(fx_stop(&c), 0);
}

static void test_cli(void **state)
{
    char out[8192], path[300];
    char *help[] = {MUX_HTTPD_BIN, "-h", NULL};
    assert_int_equal(th_run_capture(help, out, sizeof out, 10000), 0);
    assert_non_null(strstr(out, "--root"));
    assert_non_null(strstr(out, "httpd.root"));

    snprintf(path, sizeof path, "%s/no-such-dir", fx.dir);
    char *missing[] = {MUX_HTTPD_BIN, "-r", path, "-l", "127.0.0.1:0", NULL};
    assert_int_equal(th_run_capture(missing, out, sizeof out, 10000), 2);
    assert_non_null(strstr(out, "httpd.root"));
    assert_non_null(strstr(out, "No such file"));

    snprintf(path, sizeof path, "%s/hello.txt", fx.root);
    char *file[] = {MUX_HTTPD_BIN, "--root", path, "-l", "127.0.0.1:0", NULL};
    assert_int_equal(th_run_capture(file, out, sizeof out, 10000), 2);
    assert_non_null(strstr(out, "Not a directory"));

    const char *text = "httpd = {\n  header_timeout_ms = -1;\n};\n";
    const char *conf = fx_write(&fx, false, "bad.conf", text, strlen(text));
    assert_non_null(conf);
    snprintf(path, sizeof path, "%s", conf);
    char *bad[] = {MUX_HTTPD_BIN, "-c", path, "-r", fx.root, "-l", "127.0.0.1:0", NULL};
    assert_int_equal(th_run_capture(bad, out, sizeof out, 10000), 2);
    assert_non_null(strstr(out, ":2: httpd.header_timeout_ms"));
}

/* Per-worker state (struct httpd_worker): each worker's Date follows the
 * wall clock second by second, and multipart boundaries never repeat. */
static void test_worker_state(void **state)
{
    struct th_child c;
    assert_int_equal(fx_start(&c, &fx, MUX_HTTPD_BIN, 2, NULL, NULL), 0);
    struct hresp r;
    char date[64], first[64] = "", type[200], seen[8][200];
    bool advanced = false;
    long long deadline = th_now_ms() + 5000LL * th_slowdown();
    for (int i = 0; i < 200000 && !advanced && th_now_ms() < deadline; i++) {
        time_t before = time(NULL);
        assert_int_equal(hc_once(c.port, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r, false),
                         0);
        time_t after = time(NULL);
        assert_non_null(hr_field(&r, "Date", date, sizeof date));
        hr_free(&r);
        struct tm tm;
        assert_non_null(strptime(date, "%a, %d %b %Y %H:%M:%S GMT", &tm));
        time_t t = timegm(&tm);
        if (t < before || t > after + 1) /* time() is the coarse clock: a tick behind */
            fail_msg("Date %s outside [%lld, %lld]", date, (long long)before, (long long)after);
        if (first[0] == '\0')
            snprintf(first, sizeof first, "%s", date);
        advanced = strcmp(first, date) != 0;
    }
    assert_true(advanced); /* a new second gave a new Date within 5 s */
    for (int i = 0; i < 8; i++) { /* fresh connections: both workers */
        assert_int_equal(hc_once(c.port, "GET /data.bin HTTP/1.1\r\nHost: t\r\n"
                                         "Range: bytes=0-0,2-2\r\n\r\n", &r, false), 0);
        assert_int_equal(r.status, 206);
        assert_non_null(hr_field(&r, "Content-Type", type, sizeof type));
        hr_free(&r);
        snprintf(seen[i], sizeof seen[i], "%s", type);
        for (int k = 0; k < i; k++)
            assert_string_not_equal(seen[k], seen[i]);
    }
    assert_int_equal(fx_stop(&c), 0);
}

/* The shipped example config loads and serves (its listen is overridden). */
static void test_example_config(void **state)
{
    char *argv[] = {MUX_HTTPD_BIN, "-c", MUX_HTTPD_CONF, "-r", fx.root, "-l", "127.0.0.1:0",
                    "-w", "1", NULL};
    struct th_child c;
    assert_int_equal(th_child_start(&c, argv, 10000), 0);
    struct hresp r;
    assert_int_equal(hc_once(c.port, "GET /sub HTTP/1.1\r\nHost: t\r\n\r\n", &r, false), 0);
    assert_int_equal(r.status, 301); /* dir_redirect = true */
    hr_free(&r);
    assert_int_equal(fx_stop(&c), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_timeout),
        cmocka_unit_test(test_access_log),
        cmocka_unit_test(test_access_log_file_and_reopen),
        cmocka_unit_test(test_symlinks_off),
        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_example_config),
        cmocka_unit_test(test_worker_state),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
