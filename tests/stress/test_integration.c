/* test_integration.c - mux-stress end to end: against broken_server in its
 * correct modes it must exit 0 with every request verified; in each faulty
 * mode (flipped, dropped, stalled bytes, wrong protocol, bad HTTP lengths) it
 * must exit 1 and say so in --json; usage errors exit 2. When the sample
 * servers are built (MUX_ECHO_BIN etc.), it drives them too.
 * Every run is bounded (-n or a short -d, and a capture timeout). */
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

#include "harness.h"

#define MAX_ARGS 40

static char tmpdir[64];
static char json_path[128];
static char out[65536];

struct res {
    int rc;
    double requests, verify_failures, timeouts, connect_errors, resets, rps, p99;
};

static bool valgrind(void)
{
    return getenv("MUX_UNDER_VALGRIND") != NULL;
}

/* Requests per run: small under valgrind. */
static const char *count(void)
{
    return valgrind() ? "200" : "20000";
}

static double json_num(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(json, pat);
    return p ? strtod(p + strlen(pat), NULL) : -1;
}

static void read_json(struct res *r)
{
    char buf[4096] = "";
    FILE *f = fopen(json_path, "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    r->requests = json_num(buf, "requests");
    r->verify_failures = json_num(buf, "verify_failures");
    r->timeouts = json_num(buf, "timeouts");
    r->connect_errors = json_num(buf, "connect_errors");
    r->resets = json_num(buf, "resets");
    r->rps = json_num(buf, "requests_per_sec");
    r->p99 = json_num(buf, "p99");
}

/* Runs mux-stress with args and "HOST:PORT"; target may be NULL. */
static struct res stress(const char *target, const char *const *args)
{
    char *argv[MAX_ARGS];
    int n = 0;
    argv[n++] = (char *)STRESS_BIN;
    argv[n++] = "-q";
    argv[n++] = "--json";
    argv[n++] = json_path;
    for (; *args && n < MAX_ARGS - 2; args++)
        argv[n++] = (char *)*args;
    if (target)
        argv[n++] = (char *)target;
    argv[n] = NULL;
    unlink(json_path);
    struct res r;
    memset(&r, 0, sizeof(r));
    r.rc = mux_run_capture(argv, out, sizeof(out), 30000);
    read_json(&r);
    fprintf(stderr, "--- mux-stress exit %d, requests %.0f, verify_failures %.0f\n%s", r.rc,
            r.requests, r.verify_failures, out);
    return r;
}

/* Starts a server binary with -l ADDR and extra args; fills target. */
static void start(struct mux_child *c, const char *bin, const char *listen,
                  const char *const *extra, char *target, size_t size)
{
    char *argv[MAX_ARGS];
    int n = 0;
    argv[n++] = (char *)bin;
    argv[n++] = "-l";
    argv[n++] = (char *)listen;
    argv[n++] = "-w";
    argv[n++] = "2";
    for (; extra && *extra && n < MAX_ARGS - 1; extra++)
        argv[n++] = (char *)*extra;
    argv[n] = NULL;
    assert_int_equal(mux_child_start(c, argv, 10000), 0);
    if (strchr(c->host, ':'))
        snprintf(target, size, "[%s]:%d", c->host, c->port);
    else
        snprintf(target, size, "%s:%d", c->host, c->port);
}

static void stop(struct mux_child *c)
{
    assert_int_equal(mux_child_stop(c, SIGTERM, 10000), 0);
}

/* One broken_server run: server flags, stress flags, expected exit. */
static struct res broken_run(const char *const *srv, const char *const *args, int want_rc)
{
    struct mux_child c;
    char target[96];
    start(&c, BROKEN_BIN, "127.0.0.1:0", srv, target, sizeof(target));
    struct res r = stress(target, args);
    stop(&c);
    assert_int_equal(r.rc, want_rc);
    return r;
}

static void test_echo_correct(void **state)
{
    const char *args[] = {"-c", "8", "-t", "2", "-p", "4", "-s", "512", "-n", count(), NULL};
    struct res r = broken_run(NULL, args, 0);
    assert_true(r.requests == atof(count()));
    assert_true(r.verify_failures == 0);
    assert_true(r.rps > 0 && r.p99 > 0);
}

static void test_upper_correct(void **state)
{
    const char *srv[] = {"--upper", NULL};
    const char *args[] = {"--proto", "upper", "-c", "4",     "-p", "2",
                          "-s",      "100",   "-n", count(), NULL};
    struct res r = broken_run(srv, args, 0);
    assert_true(r.requests == atof(count()));
}

static void test_upper_against_echo_fails(void **state)
{
    const char *args[] = {"--proto", "upper", "-c", "2", "-n", count(), NULL};
    struct res r = broken_run(NULL, args, 1);
    assert_true(r.verify_failures > 0);
    assert_non_null(strstr(out, "verify failed"));
}

static void test_flip_caught(void **state)
{
    const char *srv[] = {"--flip-every", "5003", NULL};
    const char *args[] = {"-c", "4", "-p", "4", "-s", "256", "-n", count(), NULL};
    struct res r = broken_run(srv, args, 1);
    assert_true(r.verify_failures > 0);
}

static void test_upper_flip_caught(void **state)
{
    const char *srv[] = {"--upper", "--flip-every", "3001", NULL};
    const char *args[] = {"--proto", "upper", "-c", "2", "-s", "64", "-n", count(), NULL};
    struct res r = broken_run(srv, args, 1);
    assert_true(r.verify_failures > 0);
}

static void test_drop_caught_pipelined(void **state)
{
    const char *srv[] = {"--drop-every", "4001", NULL};
    const char *args[] = {"-c", "4", "-p", "8", "-s", "128", "-n", count(), NULL};
    struct res r = broken_run(srv, args, 1);
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
                          "-d",        valgrind() ? "4" : "1",
                          "--timeout", valgrind() ? "1" : "0.2",
                          NULL};
    struct res r = broken_run(srv, args, 1);
    assert_true(r.timeouts > 0);
    assert_true(r.verify_failures >= r.timeouts);
}

static void test_stall_times_out(void **state)
{
    const char *srv[] = {"--stall-after", "1000", NULL};
    const char *args[] = {"-c", "2", "-s", "100", "-d", "1", "--timeout", valgrind() ? "3" : "0.3",
                          NULL};
    struct res r = broken_run(srv, args, 1);
    assert_true(r.timeouts > 0);
}

static void test_resets_counted_not_fatal(void **state)
{
    const char *srv[] = {"--reset-every", "10000", NULL};
    const char *args[] = {"-c", "4", "-s", "100", "-d", valgrind() ? "2" : "0.5", NULL};
    struct res r = broken_run(srv, args, 0);
    assert_true(r.resets > 0);
    assert_true(r.requests > 0);
    assert_true(r.verify_failures == 0);
}

static void test_http_modes(void **state)
{
    const char *cl[] = {"--http", "1000", NULL};
    const char *chunked[] = {"--http", "777", "--chunked", NULL};
    const char *bad[] = {"--http", "1000", "--bad-len-every", "7", NULL};
    const char *args[] = {"--proto", "http", "--path", "/index.html", "-c",
                          "4",       "-p",   "3",      "-n",          valgrind() ? "100" : "5000",
                          NULL};
    struct res r = broken_run(cl, args, 0);
    assert_true(r.requests == (valgrind() ? 100 : 5000));
    broken_run(chunked, args, 0);
    r = broken_run(bad, args, 1);
    assert_true(r.verify_failures > 0);
}

static void test_open_loop_rate(void **state)
{
    const char *args[] = {"-c", "4", "-t",       "2",   "--rate", valgrind() ? "200" : "2000",
                          "-d", "1", "--warmup", "0.2", NULL};
    struct res r = broken_run(NULL, args, 0);
    double want = valgrind() ? 200 : 2000;
    assert_true(r.requests > want * 0.6 && r.requests < want * 1.4);
}

static void test_idle_and_localhost(void **state)
{
    struct mux_child c;
    char target[96], local[96];
    start(&c, BROKEN_BIN, "127.0.0.1:0", NULL, target, sizeof(target));
    snprintf(local, sizeof(local), "localhost:%d", c.port);
    const char *args[] = {"--idle", "16", "-c", "2", "-n", count(), NULL};
    struct res r = stress(local, args);
    stop(&c);
    assert_int_equal(r.rc, 0);
    assert_true(r.requests == atof(count()));
}

static void test_ipv6(void **state)
{
    struct mux_child c;
    char target[96];
    const char *argv[] = {BROKEN_BIN, "-l", "[::1]:0", NULL};
    if (mux_child_start(&c, (char *const *)argv, 10000) < 0)
        skip(); /* no IPv6 loopback here */
    snprintf(target, sizeof(target), "[::1]:%d", c.port);
    const char *args[] = {"-c", "2", "-n", count(), NULL};
    struct res r = stress(target, args);
    stop(&c);
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
    struct res r = stress(target, args);
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
    assert_int_equal(stress(NULL, none).rc, 2);
    assert_int_equal(stress("127.0.0.1:1", proto).rc, 2);
    assert_int_equal(stress("127.0.0.1:1", conns).rc, 2);
    assert_int_equal(stress("127.0.0.1:1", zero).rc, 2);
    assert_int_equal(stress("127.0.0.1:1", unknown).rc, 2);
    assert_int_equal(stress("[::1:80", none).rc, 2);
    assert_int_equal(stress("127.0.0.1:99999", none).rc, 2);
    assert_int_equal(stress("127.0.0.1", none).rc, 2);
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
    snprintf(csv, sizeof(csv), "%s/run.csv", tmpdir);
    snprintf(png, sizeof(png), "%s/run.png", tmpdir);
    const char *args[] = {"-c", "2", "-d", "2.2", "--csv", csv, "--plot", png, NULL};
    char *saved = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    setenv("PATH", "/nonexistent", 1);
    struct res r = broken_run(NULL, args, 0);
    if (saved) {
        setenv("PATH", saved, 1);
        free(saved);
    }
    assert_true(count_lines(csv) >= 3); /* header + 2 seconds (+ the partial one) */
    assert_non_null(strstr(out, "gnuplot is not installed"));
    assert_int_equal(access(png, F_OK), -1);
    (void)r;
}

static void test_plot(void **state)
{
    if (valgrind() || access("/usr/bin/gnuplot", X_OK) != 0)
        skip();
    char png[160];
    snprintf(png, sizeof(png), "%s/plot.png", tmpdir);
    const char *args[] = {"-c", "2", "-d", "2.1", "--plot", png, NULL};
    broken_run(NULL, args, 0);
    struct stat st;
    assert_int_equal(stat(png, &st), 0);
    assert_true(st.st_size > 1000);
}

/* The sample servers, when built. */
static void app_run(const char *bin, const char *proto)
{
    if (!bin[0])
        skip();
    struct mux_child c;
    char target[96];
    start(&c, bin, "127.0.0.1:0", NULL, target, sizeof(target));
    const char *args[] = {"--proto", proto, "-c",   "8",  "-t",    "2", "-p",
                          "4",       "-s",  "1000", "-n", count(), NULL};
    struct res r = stress(target, args);
    stop(&c);
    assert_int_equal(r.rc, 0);
    assert_true(r.requests == atof(count()));
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
static void test_mux_httpd(void **state)
{
    if (!MUX_HTTPD_BIN[0])
        skip();
    char root[128], file[160];
    snprintf(root, sizeof(root), "%s/www", tmpdir);
    snprintf(file, sizeof(file), "%s/index.html", root);
    mkdir(root, 0755);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    for (int i = 0; i < 1234; i++)
        fputc('a' + i % 26, f);
    fclose(f);
    struct mux_child c;
    char target[96];
    const char *extra[] = {"-r", root, NULL};
    start(&c, MUX_HTTPD_BIN, "127.0.0.1:0", extra, target, sizeof(target));
    const char *args[] = {"--proto", "http", "--path", "/index.html", "-c", "4",
                          "-p",      "4",    "-n",     count(),       NULL};
    struct res r = stress(target, args);
    stop(&c);
    unlink(file);
    rmdir(root);
    assert_int_equal(r.rc, 0);
    assert_true(r.requests == atof(count()));
}

static int group_setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/stress_it_XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(json_path, sizeof(json_path), "%s/run.json", tmpdir);
    return 0;
}

static int group_teardown(void **state)
{
    const char *files[] = {"run.json", "run.csv", "run.png", "plot.png"};
    char p[192];
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", tmpdir, files[i]);
        unlink(p);
    }
    rmdir(tmpdir);
    return 0;
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
        cmocka_unit_test(test_resets_counted_not_fatal),
        cmocka_unit_test(test_http_modes),
        cmocka_unit_test(test_open_loop_rate),
        cmocka_unit_test(test_idle_and_localhost),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_csv_and_missing_gnuplot),
        cmocka_unit_test(test_plot),
        cmocka_unit_test(test_mux_echo),
        cmocka_unit_test(test_mux_upper),
        cmocka_unit_test(test_mux_queue),
        cmocka_unit_test(test_mux_httpd),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
