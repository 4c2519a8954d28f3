/* test_ops.c - operating a mux server, as an operator and a supervisor do:
 *  - the PROXY protocol (v1 and v2): the handler sees the carried address;
 *    a missing, bad or slow header closes the connection without on_close;
 *  - -t/--test-config: valid, invalid, nothing bound;
 *  - SIGHUP: a live key (idle_timeout_ms) takes effect, a restart-only key
 *    (workers) is logged and kept, a broken file keeps the old config;
 *  - SIGUSR1: the log file is reopened after a rotation;
 *  - --metrics: Prometheus text counted from real traffic (promtool check
 *    metrics when installed);
 *  - the soft RLIMIT_NOFILE is raised toward the hard limit;
 *  - sd_notify: READY=1, RELOADING=1 then READY=1, STOPPING=1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
#include "inproc.h"

/* ---- PROXY protocol, in process ---- */

struct papp {
    pthread_mutex_t lock;
    int accepts, closes;
};

static int p_accept(struct mux_conn *c)
{
    struct papp *a = mux_conn_app(c);
    pthread_mutex_lock(&a->lock);
    a->accepts++;
    pthread_mutex_unlock(&a->lock);
    char peer[80], line[100];
    int n = snprintf(line, sizeof(line), "%s\n", mux_conn_peer_str(c, peer, sizeof(peer)));
    mux_conn_send(c, line, (size_t)n);
    return 0;
}

static size_t p_read(struct mux_conn *c, const char *data, size_t len)
{
    mux_conn_send(c, data, len);
    return len;
}

static void p_close(struct mux_conn *c, int err)
{
    struct papp *a = mux_conn_app(c);
    pthread_mutex_lock(&a->lock);
    a->closes++;
    pthread_mutex_unlock(&a->lock);
}

static const struct mux_handler p_handler = {
    .on_accept = p_accept, .on_read = p_read, .on_close = p_close};

static void proxy_server(struct th_inproc *srv, struct papp *a)
{
    struct mux_options o;
    mux_options_init(&o);
    snprintf(o.listen[0], sizeof(o.listen[0]), "127.0.0.1:0");
    o.workers = 1;
    o.proxy_protocol = true;
    o.idle_timeout_ms = 300; /* also the PROXY header's deadline */
    o.log_level = MUX_LOG_ERROR;
    th_options_poller(&o);
    pthread_mutex_init(&a->lock, NULL);
    assert_int_equal(th_inproc_start(srv, &o, &p_handler, a), 0);
}

/* Sends hdr (byte by byte when split) then "ping"; expects the peer line the
 * handler writes, then the echo. */
static void expect_peer(struct th_inproc *srv, const void *hdr, size_t len, bool split,
                        const char *want_peer)
{
    int fd = th_connect_tcp(srv->host, srv->port);
    assert_true(fd >= 0);
    const char *p = hdr;
    for (size_t i = 0; i < len; i += split ? 1 : len)
        assert_int_equal(th_write_all(fd, p + i, split ? 1 : len, 5000), 0);
    assert_int_equal(th_write_all(fd, "ping", 4, 5000), 0);
    char buf[128];
    size_t want = strlen(want_peer) + 1 + 4;
    assert_int_equal(th_read_exact(fd, buf, want, 5000), (ssize_t)want);
    buf[want] = '\0';
    char expect[128];
    snprintf(expect, sizeof(expect), "%s\nping", want_peer);
    assert_string_equal(buf, expect);
    close(fd);
}

static void test_proxy_v1_and_v2(void **state)
{
    struct th_inproc srv;
    struct papp a = {0};
    proxy_server(&srv, &a);
    const char v1[] = "PROXY TCP4 203.0.113.7 192.0.2.1 40001 80\r\n";
    expect_peer(&srv, v1, sizeof(v1) - 1, false, "203.0.113.7:40001");
    expect_peer(&srv, v1, sizeof(v1) - 1, true, "203.0.113.7:40001");
    const char v1six[] = "PROXY TCP6 2001:db8::5 2001:db8::1 5000 443\r\n";
    expect_peer(&srv, v1six, sizeof(v1six) - 1, false, "[2001:db8::5]:5000");
    /* v2, PROXY over TCP/IPv4: 198.51.100.9:1234 -> 192.0.2.1:80 */
    unsigned char v2[28] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
                            0x21, 0x11, 0x00, 0x0C, 198, 51, 100, 9, 192, 0, 2, 1, 0x04, 0xD2,
                            0x00, 0x50};
    expect_peer(&srv, v2, sizeof(v2), false, "198.51.100.9:1234");
    expect_peer(&srv, v2, sizeof(v2), true, "198.51.100.9:1234");
    /* v2 LOCAL (a health check): the real peer stands */
    unsigned char local[16] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54,
                               0x0A, 0x20, 0x00, 0x00, 0x00};
    int fd = th_connect_tcp(srv.host, srv.port);
    assert_int_equal(th_write_all(fd, local, sizeof(local), 5000), 0);
    char buf[64];
    assert_int_equal(th_read_exact(fd, buf, 10, 5000), 10);
    assert_memory_equal(buf, "127.0.0.1:", 10);
    close(fd);
    pthread_mutex_lock(&a.lock);
    int accepts = a.accepts;
    pthread_mutex_unlock(&a.lock);
    assert_int_equal(th_inproc_stop(&srv), 0);
    assert_int_equal(a.closes, accepts);
    assert_int_equal(accepts, 6);
}

static void test_proxy_refuses_bad_or_slow(void **state)
{
    struct th_inproc srv;
    struct papp a = {0};
    proxy_server(&srv, &a);
    static const char *const bad[] = {"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
                                      "PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n",
                                      "PROXY  TCP4 1.2.3.4 5.6.7.8 1 80\r\n", "proxy tcp4\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int fd = th_connect_tcp(srv.host, srv.port);
        assert_true(fd >= 0);
        th_write_all(fd, bad[i], strlen(bad[i]), 5000);
        int rc = th_wait_eof(fd, 5000); /* closed, nothing sent */
        assert_true(rc == 0 || rc == -ECONNRESET);
        close(fd);
    }
    /* a client that sends half a header and stalls is closed by the deadline */
    int fd = th_connect_tcp(srv.host, srv.port);
    assert_int_equal(th_write_all(fd, "PROXY TCP4 1.2", 14, 5000), 0);
    int rc = th_wait_eof(fd, 5000);
    assert_true(rc == 0 || rc == -ECONNRESET);
    close(fd);
    assert_int_equal(th_inproc_stop(&srv), 0);
    assert_int_equal(a.accepts, 0); /* the handler never saw them */
    assert_int_equal(a.closes, 0);
}

/* ---- the programs ---- */

static char tmpdir[64];

static const char *tmp_path(const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", tmpdir, name);
    return buf;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *slurp(const char *path)
{
    static char buf[65536];
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* Waits (bounded) until the file contains `needle`. The server writes its
 * log asynchronously to us; polling the file is the only observation. */
static bool wait_for_text(const char *path, const char *needle, int timeout_ms)
{
    long long deadline = th_now_ms() + (long long)timeout_ms * th_slowdown();
    while (th_now_ms() < deadline) {
        const char *t = slurp(path);
        if (t && strstr(t, needle))
            return true;
        struct timespec ts = {.tv_nsec = 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return false;
}

static void test_test_config(void **state)
{
    char good[128], bad[128], out[4096];
    write_file(tmp_path("good.conf", good, sizeof(good)),
               "server = { listen = \"127.0.0.1:1\"; idle_timeout_ms = 5000; };\n");
    write_file(tmp_path("bad.conf", bad, sizeof(bad)),
               "server = {\n  idle_timeout_ms = 4294967396;\n};\n");
    char *argv1[] = {MUX_ECHO_BIN, "-t", "-c", good, NULL};
    assert_int_equal(th_run_capture(argv1, out, sizeof(out), 10000), 0);
    assert_non_null(strstr(out, "valid"));
    assert_null(strstr(out, "listening"));
    char *argv2[] = {MUX_ECHO_BIN, "--test-config", "-c", bad, NULL};
    assert_int_equal(th_run_capture(argv2, out, sizeof(out), 10000), 2);
    assert_non_null(strstr(out, ":2: server.idle_timeout_ms"));
    /* nothing bound: port 1 needs root, and -t must not even try it, so the
     * same config checks fine as any user; here we check a port in use */
    int hold = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(hold, (struct sockaddr *)&sa, sizeof(sa)), 0);
    listen(hold, 1);
    socklen_t len = sizeof(sa);
    getsockname(hold, (struct sockaddr *)&sa, &len);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sa.sin_port));
    char *argv3[] = {MUX_ECHO_BIN, "-t", "-l", addr, NULL};
    assert_int_equal(th_run_capture(argv3, out, sizeof(out), 10000), 0);
    char *argv4[] = {MUX_ECHO_BIN, "-l", addr, NULL}; /* really binding fails: exit 1 */
    assert_int_equal(th_run_capture(argv4, out, sizeof(out), 10000), 1);
    close(hold);
}

static void start_echo(struct th_child *c, const char *conf, const char *log, const char *extra)
{
    char *argv[16];
    int n = 0;
    argv[n++] = MUX_ECHO_BIN;
    argv[n++] = "-c";
    argv[n++] = (char *)conf;
    argv[n++] = "-l";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--log-file";
    argv[n++] = (char *)log;
    if (extra) {
        argv[n++] = (char *)extra;
        argv[n++] = "127.0.0.1:0";
    }
    argv[n] = NULL;
    assert_int_equal(th_child_start(c, argv, 10000), 0);
}

/* Connects and waits for the idle timeout to close the connection;
 * returns how long it took (ms). */
static long long idle_close_ms(const struct th_child *c)
{
    int fd = th_connect_tcp(c->host, c->port);
    assert_true(fd >= 0);
    assert_int_equal(th_write_all(fd, "x", 1, 5000), 0);
    char b;
    assert_int_equal(th_read_exact(fd, &b, 1, 5000), 1);
    long long t0 = th_now_ms();
    assert_int_equal(th_wait_eof(fd, 20000), 0);
    close(fd);
    return th_now_ms() - t0;
}

static void test_sighup_reload(void **state)
{
    char conf[128], log[128];
    tmp_path("reload.conf", conf, sizeof(conf));
    tmp_path("reload.log", log, sizeof(log));
    write_file(conf, "server = { idle_timeout_ms = 10000; workers = 2; };\n");
    struct th_child c;
    start_echo(&c, conf, log, NULL);
    write_file(conf, "server = { idle_timeout_ms = 200; workers = 3; };\n");
    kill(c.pid, SIGHUP);
    assert_true(wait_for_text(log, "configuration reloaded", 5000));
    assert_true(wait_for_text(log, "server.workers changed; it takes a restart", 100));
    long long took = idle_close_ms(&c); /* the new timeout, not 10 s */
    assert_true(took < 5000);
    /* a broken file: logged, the old configuration stays */
    write_file(conf, "server = { idle_timeout_ms = \"soon\"; };\n");
    kill(c.pid, SIGHUP);
    assert_true(wait_for_text(log, "reload failed, configuration unchanged", 5000));
    assert_true(idle_close_ms(&c) < 5000);
    assert_int_equal(th_child_stop(&c, SIGTERM, 15000), 0);
}

static void test_sigusr1_reopens_log(void **state)
{
    char conf[128], log[128], old[128];
    tmp_path("usr1.conf", conf, sizeof(conf));
    tmp_path("usr1.log", log, sizeof(log));
    tmp_path("usr1.log.1", old, sizeof(old));
    write_file(conf, "server = { log_level = \"info\"; };\n");
    struct th_child c;
    start_echo(&c, conf, log, NULL);
    assert_int_equal(rename(log, old), 0); /* what logrotate does */
    kill(c.pid, SIGUSR1);
    assert_true(wait_for_text(log, "log files reopened", 5000)); /* a new file */
    kill(c.pid, SIGHUP); /* and later lines go there too */
    assert_true(wait_for_text(log, "configuration reloaded", 5000));
    assert_null(strstr(slurp(old), "configuration reloaded"));
    assert_int_equal(th_child_stop(&c, SIGTERM, 15000), 0);
}

/* GET path from HOST:PORT with a raw socket; returns the body (static). */
static const char *http_get(const char *hostport, const char *path, int *status)
{
    static char buf[1 << 17];
    char host[64];
    snprintf(host, sizeof(host), "%s", hostport);
    char *colon = strrchr(host, ':');
    *colon = '\0';
    int fd = th_connect_tcp(host, atoi(colon + 1));
    assert_true(fd >= 0);
    char req[128];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    assert_int_equal(th_write_all(fd, req, (size_t)n, 5000), 0);
    size_t len = 0;
    ssize_t r;
    while ((r = th_read_exact(fd, buf + len, 1, 5000)) == 1 && len < sizeof(buf) - 1)
        len++;
    buf[len] = '\0';
    close(fd);
    *status = atoi(buf + 9);
    const char *body = strstr(buf, "\r\n\r\n");
    return body ? body + 4 : "";
}

static unsigned long long metric(const char *text, const char *name_and_labels)
{
    unsigned long long sum = 0;
    const char *p = text;
    size_t n = strlen(name_and_labels);
    while ((p = strstr(p, name_and_labels)) != NULL) {
        if ((p == text || p[-1] == '\n') && (p[n] == ' ' || p[n] == '{'))
            sum += strtoull(strchr(p + n, ' ') + 1, NULL, 10);
        p += n;
    }
    return sum;
}

static void test_metrics(void **state)
{
    char conf[128], log[128];
    tmp_path("metrics.conf", conf, sizeof(conf));
    tmp_path("metrics.log", log, sizeof(log));
    write_file(conf, "server = { workers = 2; };\n");
    struct th_child c;
    start_echo(&c, conf, log, "--metrics");
    const char *m = strstr(c.ready, "metrics=");
    assert_non_null(m);
    char maddr[64];
    sscanf(m + 8, "%63[^,)]", maddr);
    struct th_load l = {.host = c.host, .port = c.port, .conns = 20, .bytes_per_conn = 5000,
                         .max_fragment = 700, .xform = TH_XFORM_ECHO, .seed = 3,
                         .timeout_ms = 30000};
    assert_int_equal(th_load_run(&l), 0);
    /* the counters are published once per worker loop turn: poll, bounded */
    long long deadline = th_now_ms() + 5000LL * th_slowdown();
    const char *text;
    int status;
    do {
        text = http_get(maddr, "/metrics", &status);
        assert_int_equal(status, 200);
    } while (metric(text, "mux_connections_closed_total") < 20 && th_now_ms() < deadline);
    assert_true(metric(text, "mux_connections_accepted_total") >= 20);
    assert_int_equal(metric(text, "mux_bytes_received_total"), 20 * 5000);
    assert_int_equal(metric(text, "mux_bytes_sent_total"), 20 * 5000);
    assert_int_equal(metric(text, "mux_connections_open"), 0);
    assert_non_null(strstr(text, "mux_connections_closed_total{worker=\"0\",reason=\"orderly\"}"));
    assert_non_null(strstr(text, "mux_connections_rejected_total 0"));
    http_get(maddr, "/other", &status);
    assert_int_equal(status, 404);
    /* promtool, when installed, checks the exposition format itself */
    char path[128];
    FILE *f = fopen(tmp_path("metrics.txt", path, sizeof(path)), "w");
    fputs(text, f);
    fclose(f);
    char cmd[256], out[4096];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    if (access("/usr/bin/promtool", X_OK) == 0) {
        int rc = th_run_capture(argv, out, sizeof(out), 30000);
        if (rc != 0)
            fail_msg("promtool check metrics: %s", out);
    } else {
        print_message("promtool not installed: format not checked\n");
    }
    assert_int_equal(th_child_stop(&c, SIGTERM, 15000), 0);
}

static void test_raises_fd_limit(void **state)
{
    /* soft 128, hard 4096: the server raises the soft limit for its
     * max_connections (10000 by default cannot fit: a warning) */
    char conf[128], log[128];
    tmp_path("rlimit.conf", conf, sizeof(conf));
    tmp_path("rlimit.log", log, sizeof(log));
    write_file(conf, "server = { max_connections = 1000; workers = 1; };\n");
    char *argv[] = {"/usr/bin/prlimit", "--nofile=128:4096", MUX_ECHO_BIN, "-c", conf, "-l",
                    "127.0.0.1:0", "--log-file", log, "--log-level", "info", NULL};
    if (access(argv[0], X_OK) != 0)
        skip();
    struct th_child c;
    assert_int_equal(th_child_start(&c, argv, 10000), 0);
    assert_true(wait_for_text(log, "raised the open file limit from 128", 5000));
    /* 300 clients at once: more than 128 descriptors */
    struct th_load l = {.host = c.host, .port = c.port, .conns = 300, .bytes_per_conn = 100,
                         .max_fragment = 100, .xform = TH_XFORM_ECHO, .seed = 5,
                         .timeout_ms = 30000};
    assert_int_equal(th_load_run(&l), 0);
    assert_int_equal(th_child_stop(&c, SIGTERM, 15000), 0);
    /* a max_connections that cannot fit is warned about */
    write_file(conf, "server = { max_connections = 100000; workers = 1; };\n");
    assert_int_equal(th_child_start(&c, argv, 10000), 0);
    assert_true(wait_for_text(log, "max_connections = 100000 needs about", 5000));
    assert_int_equal(th_child_stop(&c, SIGTERM, 15000), 0);
}

static void test_sd_notify(void **state)
{
    char sock[128], conf[128], log[128];
    tmp_path("notify.sock", sock, sizeof(sock));
    tmp_path("notify.conf", conf, sizeof(conf));
    tmp_path("notify.log", log, sizeof(log));
    write_file(conf, "server = { workers = 1; };\n");
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%.100s", sock);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    setenv("NOTIFY_SOCKET", sock, 1);
    struct th_child c;
    start_echo(&c, conf, log, NULL);
    unsetenv("NOTIFY_SOCKET");
    char msgs[1024] = "";
    const char *expect[] = {"READY=1", "RELOADING=1", "READY=1", "STOPPING=1"};
    for (int i = 0; i < 4; i++) {
        if (i == 1)
            kill(c.pid, SIGHUP);
        if (i == 3)
            kill(c.pid, SIGTERM);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000 * th_slowdown()) != 1) {
#ifndef MUX_HAVE_SYSTEMD_TEST
            if (i == 0) { /* built without libsystemd: no notifications at all */
                print_message("no sd_notify (built without libsystemd)\n");
                th_child_stop(&c, SIGTERM, 15000);
                close(fd);
                unlink(sock);
                skip();
            }
#endif
            fail_msg("no notification %d (%s); got so far: %s", i, expect[i], msgs);
        }
        char m[256];
        ssize_t n = recv(fd, m, sizeof(m) - 1, 0);
        assert_true(n > 0);
        m[n] = '\0';
        strncat(msgs, m, sizeof(msgs) - strlen(msgs) - 2);
        strcat(msgs, "|");
        assert_memory_equal(m, expect[i], strlen(expect[i]));
    }
    assert_int_equal(th_child_wait(&c, 15000), 0);
    close(fd);
    unlink(sock);
}

static int setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/mux-ops-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proxy_v1_and_v2),
        cmocka_unit_test(test_proxy_refuses_bad_or_slow),
        cmocka_unit_test(test_test_config),
        cmocka_unit_test(test_sighup_reload),
        cmocka_unit_test(test_sigusr1_reopens_log),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_raises_fd_limit),
        cmocka_unit_test(test_sd_notify),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
