/* test_integration.c - mux-stress end to end: against broken_server in its
 * correct modes it must exit 0 with every request verified; in the faulty
 * modes that corrupt bytes (flipped, dropped, stalled bytes, wrong protocol,
 * bad HTTP lengths) it must exit 1 and say so in --json (the modes that
 * break connections are test_faults.c); churn (--reconnect), URL targets,
 * wrk-style durations and counts, output files checked before the run,
 * CSV and plots; usage errors exit 2. When the sample servers are built
 * (MUX_ECHO_BIN etc.), it drives them too. Every run is bounded (-n or a
 * short -d, and a capture timeout). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"

static void test_echo_correct(void **state)
{
    const char *args[] = {"-c", "8", "-t", "2", "-p", "4", "-s", "512", "-n", fx_count("20000", "200"), NULL};
    struct res r = fx_broken_run(NULL, args, 0);
    assert_true(r.requests == atof(fx_count("20000", "200")));
    assert_true(r.verify_failures == 0);
    assert_true(r.rps > 0 && r.p99 > 0);
}

static void test_upper_correct(void **state)
{
    const char *srv[] = {"--upper", NULL};
    const char *args[] = {"--proto", "upper", "-c", "4",     "-p", "2",
                          "-s",      "100",   "-n", fx_count("20000", "200"), NULL};
    struct res r = fx_broken_run(srv, args, 0);
    assert_true(r.requests == atof(fx_count("20000", "200")));
}

static void test_upper_against_echo_fails(void **state)
{
    const char *args[] = {"--proto", "upper", "-c", "2", "-n", fx_count("20000", "200"), NULL};
    struct res r = fx_broken_run(NULL, args, 1);
    assert_true(r.verify_failures > 0);
    assert_non_null(strstr(fx_out, "verify failed"));
}

static void test_flip_caught(void **state)
{
    const char *srv[] = {"--flip-every", "5003", NULL};
    const char *args[] = {"-c", "4", "-p", "4", "-s", "256", "-n", fx_count("20000", "200"), NULL};
    struct res r = fx_broken_run(srv, args, 1);
    assert_true(r.verify_failures > 0);
}

static void test_upper_flip_caught(void **state)
{
    const char *srv[] = {"--upper", "--flip-every", "3001", NULL};
    const char *args[] = {"--proto", "upper", "-c", "2", "-s", "64", "-n", fx_count("20000", "200"), NULL};
    struct res r = fx_broken_run(srv, args, 1);
    assert_true(r.verify_failures > 0);
}

static void test_drop_caught_pipelined(void **state)
{
    const char *srv[] = {"--drop-every", "4001", NULL};
    const char *args[] = {"-c", "4", "-p", "8", "-s", "128", "-n", fx_count("20000", "200"), NULL};
    struct res r = fx_broken_run(srv, args, 1);
    assert_true(r.verify_failures > 0);
}

/* Closed loop, one request in flight, the last byte of every second reply
 * dropped: no byte is ever wrong, the reply is just one byte short forever,
 * and only the reply timeout can notice. (A byte dropped anywhere else shows
 * up as a mismatch at once, see test_drop_caught_pipelined.) */
static void test_drop_caught_by_timeout(void **state)
{
    const char *srv[] = {"--drop-every", "200", NULL};
    const char *args[] = {"-c",        "2",
                          "-p",        "1",
                          "-s",        "100",
                          "-d",        fx_valgrind() ? "4" : "1",
                          "--timeout", fx_valgrind() ? "1" : "0.2",
                          NULL};
    struct res r = fx_broken_run(srv, args, 1);
    assert_true(r.timeouts > 0);
    assert_true(r.verify_failures >= r.timeouts);
}

/* The server stops answering after ten replies per connection: the reply
 * timeout (well inside -d) catches it. */
static void test_stall_times_out(void **state)
{
    const char *srv[] = {"--stall-after", "1000", NULL};
    const char *args[] = {"-c",        "2", "-s", "100", "-d", fx_valgrind() ? "5" : "1",
                          "--timeout", fx_valgrind() ? "3" : "0.3", NULL};
    struct res r = fx_broken_run(srv, args, 1);
    assert_true(r.timeouts > 0);
}

/* Content-Length and chunked bodies pass; a short body fails. Two threads:
 * the reference body fetched by one connection gates both. */
static void test_http_modes(void **state)
{
    const char *cl[] = {"--http", "1000", NULL};
    const char *chunked[] = {"--http", "777", "--chunked", NULL};
    const char *bad[] = {"--http", "1000", "--bad-len-every", "7", NULL};
    const char *args[] = {"--proto", "http", "--path", "/index.html", "-c", "4", "-t", "2",
                          "-p", "3", "-n", fx_valgrind() ? "100" : "5000", NULL};
    struct res r = fx_broken_run(cl, args, 0);
    assert_true(r.requests == (fx_valgrind() ? 100 : 5000));
    fx_broken_run(chunked, args, 0);
    r = fx_broken_run(bad, args, 1);
    assert_true(r.verify_failures > 0);
}

static void test_open_loop_rate(void **state)
{
    const char *args[] = {"-c", "4", "-t",       "2",   "--rate", fx_valgrind() ? "200" : "2000",
                          "-d", "1", "--warmup", "0.2", NULL};
    struct res r = fx_broken_run(NULL, args, 0);
    double want = fx_valgrind() ? 200 : 2000;
    assert_true(r.requests > want * 0.6 && r.requests < want * 1.4);
}

static void test_idle_and_localhost(void **state)
{
    struct th_child c;
    char target[96], local[96];
    fx_start(&c, BROKEN_BIN, "127.0.0.1:0", NULL, target, sizeof(target));
    snprintf(local, sizeof(local), "localhost:%d", c.port);
    const char *args[] = {"--idle", "16", "-c", "2", "-n", fx_count("20000", "200"), NULL};
    struct res r = fx_stress(local, args);
    fx_stop(&c);
    assert_int_equal(r.rc, 0);
    assert_true(r.requests == atof(fx_count("20000", "200")));
}

static void test_ipv6(void **state)
{
    struct th_child c;
    char target[96];
    const char *argv[] = {BROKEN_BIN, "-l", "[::1]:0", NULL};
    if (th_child_start(&c, (char *const *)argv, 10000) < 0)
        skip(); /* no IPv6 loopback here */
    snprintf(target, sizeof(target), "[::1]:%d", c.port);
    const char *args[] = {"-c", "2", "-n", fx_count("20000", "200"), NULL};
    struct res r = fx_stress(target, args);
    fx_stop(&c);
    assert_int_equal(r.rc, 0);
}

/* A port nobody listens on: connect errors counted, run ends, exit 1. */
static void test_refused(void **state)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    char target[64];
    snprintf(target, sizeof(target), "127.0.0.1:%d", ntohs(a.sin_port));
    const char *args[] = {"-c", "2", "-n", "10", NULL};
    struct res r = fx_stress(target, args);
    close(fd);
    assert_int_equal(r.rc, 1);
    assert_true(r.connect_errors >= 2);
    assert_true(r.requests == 0);
}

static void test_usage_errors(void **state)
{
    const char *none[] = {NULL};
    const char *proto[] = {"--proto", "smtp", NULL};
    const char *conns[] = {"-c", "abc", NULL};
    const char *zero[] = {"-p", "0", NULL};
    const char *unknown[] = {"--frobnicate", NULL};
    assert_int_equal(fx_stress(NULL, none).rc, 2);
    assert_int_equal(fx_stress("127.0.0.1:1", proto).rc, 2);
    assert_int_equal(fx_stress("127.0.0.1:1", conns).rc, 2);
    assert_int_equal(fx_stress("127.0.0.1:1", zero).rc, 2);
    assert_int_equal(fx_stress("127.0.0.1:1", unknown).rc, 2);
    assert_int_equal(fx_stress("[::1:80", none).rc, 2);
    assert_int_equal(fx_stress("127.0.0.1:99999", none).rc, 2);
    assert_int_equal(fx_stress("127.0.0.1", none).rc, 2);
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = 0, ch;
    if (!f)
        return -1;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

/* --csv rows; --plot with gnuplot hidden from PATH still exits 0 and says so. */
static void test_csv_and_missing_gnuplot(void **state)
{
    char csv[160], png[160];
    snprintf(csv, sizeof(csv), "%s/run.csv", fx_tmpdir);
    snprintf(png, sizeof(png), "%s/run.png", fx_tmpdir);
    const char *args[] = {"-c", "2", "-d", "2.2", "--csv", csv, "--plot", png, NULL};
    char *saved = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    setenv("PATH", "/nonexistent", 1);
    struct res r = fx_broken_run(NULL, args, 0);
    if (saved) {
        setenv("PATH", saved, 1);
        free(saved);
    }
    assert_true(count_lines(csv) >= 3); /* header + 2 seconds (+ the partial one) */
    assert_non_null(strstr(fx_out, "gnuplot is not installed"));
    assert_int_equal(access(png, F_OK), -1);
    (void)r;
}

/* --plot renders by extension, and a 1-second run (one or two CSV rows)
 * draws without a single gnuplot warning. */
static void plot_one(const char *name, const char *magic)
{
    char file[160];
    fx_path(file, sizeof(file), name);
    const char *args[] = {"-c", "2", "-d", "1s", "--plot", file, NULL};
    fx_broken_run(NULL, args, 0);
    for (char *p = fx_out; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    assert_null(strstr(fx_out, "warning"));
    assert_null(strstr(fx_out, "--plot"));
    FILE *f = fopen(file, "rb");
    assert_non_null(f);
    char head[512] = "";
    size_t n = fread(head, 1, sizeof(head) - 1, f);
    fclose(f);
    assert_true(n > 100);
    assert_non_null(memmem(head, n, magic, strlen(magic)));
}

static void test_plot(void **state)
{
    if (fx_valgrind() || access("/usr/bin/gnuplot", X_OK) != 0)
        skip();
    plot_one("plot.png", "PNG");
    plot_one("plot.svg", "<svg");
}

/* --reconnect 1: a new connection per request, every reply verified;
 * connects and connections_per_sec in the JSON. --reconnect 3 with -p 2
 * reuses each connection for three requests. */
static void test_reconnect(void **state)
{
    const char *n = fx_count("2000", "100");
    const char *churn[] = {"-c", "4", "--reconnect", "1", "-n", n, NULL};
    struct res r = fx_broken_run(NULL, churn, 0);
    assert_true(r.requests == atof(n));
    /* one connection per request; at most c - 1 more were already connecting
     * when the last request was issued, none is opened after it */
    assert_true(r.connects >= atof(n) && r.connects <= atof(n) + 3);
    assert_true(r.conns_per_sec > 0);
    assert_non_null(strstr(fx_out, "new connection every 1 request"));
    assert_non_null(strstr(fx_out, "  connect    p50 "));
    const char *three[] = {"-c", "4", "-p", "2", "--reconnect", "3", "-n", n, NULL};
    r = fx_broken_run(NULL, three, 0);
    assert_true(r.requests == atof(n));
    assert_true(r.connects >= atof(n) / 3 && r.connects <= atof(n) / 3 + 4);
    const char *http_srv[] = {"--http", "300", NULL};
    const char *http[] = {"--proto", "http", "-c", "3", "--reconnect", "1", "-n", n, NULL};
    r = fx_broken_run(http_srv, http, 0);
    assert_true(r.requests == atof(n) && r.connects >= atof(n));
}

/* wrk habits: counts 1k, durations 500ms, a URL target implying http. */
static void test_wrk_syntax(void **state)
{
    const char *n1k[] = {"-c", "3", "-n", "1k", NULL};
    struct res r = fx_broken_run(NULL, n1k, 0);
    assert_true(r.requests == 1000);
    const char *ms[] = {"-c", "2", "-d", "300ms", NULL};
    r = fx_broken_run(NULL, ms, 0);
    assert_true(r.duration > 0.29 && r.duration < 0.31);
    if (!fx_valgrind())
        assert_true(r.elapsed_ms < 3000);
    struct th_child c;
    char target[96], url[160];
    const char *srv[] = {"--http", "123", NULL};
    fx_start(&c, BROKEN_BIN, "127.0.0.1:0", srv, target, sizeof(target));
    snprintf(url, sizeof(url), "http://%s/some/path?q=1", target);
    const char *args[] = {"-c", "2", "-p", "2", "-n", "500", NULL};
    r = fx_stress(url, args);
    assert_int_equal(r.rc, 0);
    assert_true(r.requests == 500);
    assert_non_null(strstr(fx_out, "GET /some/path?q=1"));
    const char *echo[] = {"--proto", "echo", "-n", "10", NULL};
    assert_int_equal(fx_stress(url, echo).rc, 2); /* a URL is http */
    const char *path[] = {"--path", "/x", "-n", "10", NULL};
    assert_int_equal(fx_stress(url, path).rc, 2); /* two paths */
    snprintf(url, sizeof(url), "https://%s/", target); /* TLS to a plain server */
    const char *tls[] = {"--insecure", "-c", "2", "-n", "10", "--timeout", "200ms", NULL};
    r = fx_stress(url, tls);
    assert_int_equal(r.rc, 1);
    assert_true(r.connect_errors >= 2 && r.requests == 0);
    assert_non_null(strstr(fx_out, "TLS handshake"));
    if (!fx_valgrind()) /* given up after 5 failed attempts with back-off */
        assert_true(r.elapsed_ms < 5000);
    fx_stop(&c);
}

/* Output files that cannot be written are refused before anything is sent
 * (exit 2, no connection made: the target port is not even listening). */
static void test_outputs_checked_first(void **state)
{
    char dir[160], file[200];
    fx_path(dir, sizeof(dir), "");
    const char *cases[][2] = {
        {"--json", "/nonexistent-dir/r.json"}, {"--csv", "/nonexistent-dir/r.csv"},
        {"--plot", "/nonexistent-dir/r.png"},  {"--json", dir},
        {"--plot", "out.jpg"},                 {"--csv", "/etc/hostname/r.csv"},
    };
    size_t ncases = fx_valgrind() ? 2 : sizeof(cases) / sizeof(cases[0]); /* startup is slow */
    for (size_t i = 0; i < ncases; i++) {
        const char *args[] = {cases[i][0], cases[i][1], "-n", "10", NULL};
        struct res r = fx_stress("127.0.0.1:1", args);
        assert_int_equal(r.rc, 2);
        assert_non_null(strstr(fx_out, cases[i][1]));
        assert_null(strstr(fx_out, "connect to"));
    }
    fx_path(file, sizeof(file), "same.out");
    const char *same[] = {"--csv", file, "--plot", "x.png", "--json", file, "-n", "1", NULL};
    assert_int_equal(fx_stress("127.0.0.1:1", same).rc, 2);
    assert_non_null(strstr(fx_out, "the same file"));
}

/* The sample servers, when built. */
static void app_run(const char *bin, const char *proto)
{
    if (!bin[0])
        skip();
    struct th_child c;
    char target[96];
    fx_start(&c, bin, "127.0.0.1:0", NULL, target, sizeof(target));
    const char *args[] = {"--proto", proto, "-c",   "8",  "-t",    "2", "-p",
                          "4",       "-s",  "1000", "-n", fx_count("20000", "200"), NULL};
    struct res r = fx_stress(target, args);
    fx_stop(&c);
    assert_int_equal(r.rc, 0);
    assert_true(r.requests == atof(fx_count("20000", "200")));
}

static void test_mux_echo(void **state)
{
    app_run(MUX_ECHO_BIN, "echo");
}

static void test_mux_upper(void **state)
{
    app_run(MUX_UPPER_BIN, "upper");
}

static void test_mux_queue(void **state)
{
    app_run(MUX_QUEUE_BIN, "upper");
}

/* mux-httpd serving one 1234-byte file, when built. */
/* mux-echo under connection churn, when built. */
static void test_mux_echo_churn(void **state)
{
    if (!MUX_ECHO_BIN[0])
        skip();
    struct th_child c;
    char target[96];
    fx_start(&c, MUX_ECHO_BIN, "127.0.0.1:0", NULL, target, sizeof(target));
    const char *args[] = {"-c", "8", "-t", "2", "--reconnect", "1", "-n",
                          fx_count("3000", "200"), NULL};
    struct res r = fx_stress(target, args);
    fx_stop(&c);
    assert_int_equal(r.rc, 0);
    assert_true(r.connects >= atof(fx_count("3000", "200")));
}

static void test_mux_httpd(void **state)
{
    if (!MUX_HTTPD_BIN[0])
        skip();
    char root[128], file[160];
    snprintf(root, sizeof(root), "%s/www", fx_tmpdir);
    snprintf(file, sizeof(file), "%s/index.html", root);
    mkdir(root, 0755);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    for (int i = 0; i < 1234; i++)
        fputc('a' + i % 26, f);
    fclose(f);
    struct th_child c;
    char target[96];
    const char *extra[] = {"-r", root, NULL};
    fx_start(&c, MUX_HTTPD_BIN, "127.0.0.1:0", extra, target, sizeof(target));
    const char *args[] = {"--proto", "http", "--path", "/index.html", "-c", "4", "-p", "4",
                          "--expect-file", file, "-n", fx_count("20000", "200"), NULL};
    struct res r = fx_stress(target, args);
    fx_stop(&c);
    unlink(file);
    rmdir(root);
    assert_int_equal(r.rc, 0);
    assert_true(r.requests == atof(fx_count("20000", "200")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_correct),
        cmocka_unit_test(test_upper_correct),
        cmocka_unit_test(test_upper_against_echo_fails),
        cmocka_unit_test(test_flip_caught),
        cmocka_unit_test(test_upper_flip_caught),
        cmocka_unit_test(test_drop_caught_pipelined),
        cmocka_unit_test(test_drop_caught_by_timeout),
        cmocka_unit_test(test_stall_times_out),
        cmocka_unit_test(test_http_modes),
        cmocka_unit_test(test_open_loop_rate),
        cmocka_unit_test(test_idle_and_localhost),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_csv_and_missing_gnuplot),
        cmocka_unit_test(test_plot),
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_wrk_syntax),
        cmocka_unit_test(test_outputs_checked_first),
        cmocka_unit_test(test_mux_echo_churn),
        cmocka_unit_test(test_mux_echo),
        cmocka_unit_test(test_mux_upper),
        cmocka_unit_test(test_mux_queue),
        cmocka_unit_test(test_mux_httpd),
    };
    return cmocka_run_group_tests(tests, fx_group_setup, fx_group_teardown);
}
