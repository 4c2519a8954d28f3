/* test_proxy.c - mux-proxy as a user runs it (child process, 2 workers, the
 * poller from MUX_TEST_POLLER; ctest runs every backend):
 *  - bytes unchanged both ways through the proxy to two mux-echo backends
 *    and a dead one (skipped), many connections, random fragments;
 *  - half-close passed on in both directions (the backend is the test);
 *  - a client that does not read: the backend is paused, the proxy's memory
 *    stays bounded, and every byte arrives once the client reads; the same
 *    for a backend that does not read;
 *  - a blackholed backend is skipped after proxy.connect_timeout_ms;
 *    every backend dead: the client is closed;
 *  - a backend name instead of a number: exit 2 naming the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"


static unsigned long long seed;

/* argv for mux-proxy on the test's backend, with extra args. */
static void start_proxy(struct th_child *c, const char *const extra[])
{
    char *argv[24];
    int n = 0;
    argv[n++] = MUX_PROXY_BIN;
    n = th_server_args(argv, n);
    for (int i = 0; extra[i]; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    assert_int_equal(th_child_start(c, argv, 10000), 0);
}

static void start_echo(struct th_child *c)
{
    char *argv[] = {MUX_ECHO_BIN, "-l", "127.0.0.1:0", "-w", "1", NULL};
    assert_int_equal(th_child_start(c, argv, 10000), 0);
}

static void addr_of(const struct th_child *c, char *buf, size_t size)
{
    snprintf(buf, size, "%.40s:%d", c->host, c->port);
}

/* A blocking listener on loopback; its "HOST:PORT" into buf. */
static int listener(char *buf, size_t size, int backlog)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, backlog), 0);
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    snprintf(buf, size, "127.0.0.1:%d", ntohs(a.sin_port));
    return fd;
}

static int accept_one(int lfd)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 5000 * th_slowdown()), 1);
    return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

static void dead_addr(char *buf, size_t size)
{
    close(listener(buf, size, 1)); /* nobody listens there any more */
}

/* ---- bytes unchanged, dead backend skipped ---- */

static void test_echo_through_proxy(void **state)
{
    struct th_child e1, e2, px;
    start_echo(&e1);
    start_echo(&e2);
    char a1[64], a2[64], dead[64];
    addr_of(&e1, a1, sizeof(a1));
    addr_of(&e2, a2, sizeof(a2));
    dead_addr(dead, sizeof(dead));
    const char *extra[] = {"-b", a1, "--backend", dead, "-b", a2, NULL};
    start_proxy(&px, extra);
    struct th_load l = {.host = px.host, .port = px.port, .conns = 60,
                         .bytes_per_conn = 200000, .max_fragment = 9000,
                         .xform = TH_XFORM_ECHO, .seed = seed, .timeout_ms = 30000};
    if (th_load_run(&l) != 0)
        fail_msg("%d of %d connections verified, %d mismatches, %d errors (seed %llu)",
                 l.completed, l.conns, l.mismatches, l.errors, seed);
    assert_int_equal(th_child_stop(&px, SIGTERM, 10000), 0);
    assert_int_equal(th_child_stop(&e1, SIGTERM, 10000), 0);
    assert_int_equal(th_child_stop(&e2, SIGTERM, 10000), 0);
}

/* ---- half-close, both directions ---- */

static void test_half_close_client_first(void **state)
{
    char baddr[64];
    int lfd = listener(baddr, sizeof(baddr), 16);
    struct th_child px;
    const char *extra[] = {"-b", baddr, NULL};
    start_proxy(&px, extra);
    int c = th_connect_tcp(px.host, px.port);
    int b = accept_one(lfd);
    assert_int_equal(th_write_all(c, "request", 7, 5000), 0);
    shutdown(c, SHUT_WR);
    char buf[16];
    assert_int_equal(th_read_exact(b, buf, 7, 5000), 7);
    assert_memory_equal(buf, "request", 7);
    assert_int_equal(th_wait_eof(b, 5000), 0); /* the client's FIN was passed on */
    assert_int_equal(th_write_all(b, "response", 8, 5000), 0); /* ... and the way back is open */
    close(b);
    assert_int_equal(th_read_exact(c, buf, 8, 5000), 8);
    assert_memory_equal(buf, "response", 8);
    assert_int_equal(th_wait_eof(c, 5000), 0);
    close(c);
    close(lfd);
    assert_int_equal(th_child_stop(&px, SIGTERM, 10000), 0);
}

static void test_half_close_backend_first(void **state)
{
    char baddr[64];
    int lfd = listener(baddr, sizeof(baddr), 16);
    struct th_child px;
    const char *extra[] = {"-b", baddr, NULL};
    start_proxy(&px, extra);
    int c = th_connect_tcp(px.host, px.port);
    int b = accept_one(lfd);
    assert_int_equal(th_write_all(b, "banner", 6, 5000), 0);
    shutdown(b, SHUT_WR);
    char buf[16];
    assert_int_equal(th_read_exact(c, buf, 6, 5000), 6);
    assert_memory_equal(buf, "banner", 6);
    assert_int_equal(th_wait_eof(c, 5000), 0);
    assert_int_equal(th_write_all(c, "more", 4, 5000), 0);
    close(c);
    assert_int_equal(th_read_exact(b, buf, 4, 5000), 4);
    assert_memory_equal(buf, "more", 4);
    assert_int_equal(th_wait_eof(b, 5000), 0);
    close(b);
    close(lfd);
    assert_int_equal(th_child_stop(&px, SIGTERM, 10000), 0);
}

/* ---- a side that does not read ---- */

static unsigned char pat(size_t i)
{
    return (unsigned char)((i * 2654435761u) >> 11);
}

/* Writes pattern bytes to fd until it stays full for quiet_ms; returns how
 * many were written. */
static size_t flood_until_blocked(int fd, size_t max, int quiet_ms)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    unsigned char buf[65536];
    size_t sent = 0;
    while (sent < max) {
        size_t n = max - sent < sizeof(buf) ? max - sent : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = pat(sent + i);
        ssize_t w = write(fd, buf, n);
        if (w > 0) {
            sent += (size_t)w;
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, quiet_ms) == 0)
            break; /* blocked: the proxy stopped reading */
    }
    return sent;
}

/* Reads `len` pattern bytes from `from` while writing the rest of the
 * pattern (from `sent` on) into `to`, until total bytes are through. */
static void drain_and_finish(int to, size_t sent, int from, size_t total)
{
    fcntl(from, F_SETFL, fcntl(from, F_GETFL) | O_NONBLOCK);
    size_t got = 0;
    unsigned char buf[65536];
    long long deadline = th_now_ms() + 30000LL * th_slowdown();
    while (got < total && th_now_ms() < deadline) {
        if (sent < total) {
            size_t n = total - sent < sizeof(buf) ? total - sent : sizeof(buf);
            for (size_t i = 0; i < n; i++)
                buf[i] = pat(sent + i);
            ssize_t w = write(to, buf, n);
            if (w > 0)
                sent += (size_t)w;
        }
        ssize_t r = read(from, buf, sizeof(buf));
        if (r > 0) {
            for (ssize_t i = 0; i < r; i++)
                if (buf[i] != pat(got + (size_t)i))
                    fail_msg("byte %zu is wrong", got + (size_t)i);
            got += (size_t)r;
        } else if (r == 0) {
            break;
        } else {
            struct pollfd p[2] = {{.fd = from, .events = POLLIN},
                                  {.fd = to, .events = sent < total ? POLLOUT : 0}};
            poll(p, 2, 100);
        }
    }
    assert_int_equal(got, total);
}

static void one_side_stalls(bool client_stalls)
{
    char baddr[64];
    int lfd = listener(baddr, sizeof(baddr), 16);
    struct th_child px;
    const char *extra[] = {"-b", baddr, NULL};
    start_proxy(&px, extra);
    long rss0 = th_peak_rss_kib(px.pid);
    int c = th_connect_tcp(px.host, px.port);
    int b = accept_one(lfd);
    int writer = client_stalls ? b : c, reader = client_stalls ? c : b;
    enum { TOTAL = 64 << 20 };
    size_t sent = flood_until_blocked(writer, TOTAL, 300 * th_slowdown());
    /* kernel buffers on both hops and the proxy's high-water mark: a few
     * MiB, not the 64 MiB offered */
    if (sent >= 24u << 20)
        fail_msg("%zu bytes went in while nobody read", sent);
    long rss = th_peak_rss_kib(px.pid);
    if (!TH_UNDER_SANITIZER && rss - rss0 > 16 * 1024) /* ASan quarantine, TSan shadow pages */
        fail_msg("proxy peak RSS grew by %ld KiB", rss - rss0);
    drain_and_finish(writer, sent, reader, TOTAL);
    close(c);
    close(b);
    close(lfd);
    assert_int_equal(th_child_stop(&px, SIGTERM, 10000), 0);
}

static void test_client_not_reading(void **state)
{
    one_side_stalls(true);
}

static void test_backend_not_reading(void **state)
{
    one_side_stalls(false);
}

/* ---- failing backends ---- */

static void test_blackholed_backend_skipped(void **state)
{
    char hole[64], conf[64];
    int lfd = listener(hole, sizeof(hole), 0);
    /* fill its accept queue: further SYNs are dropped */
    int fill[8], nfill = 0;
    for (; nfill < 8; nfill++) {
        fill[nfill] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_storage ss;
        socklen_t len;
        char *colon = strrchr(hole, ':');
        th_sockaddr("127.0.0.1", atoi(colon + 1), &ss, &len);
        connect(fill[nfill], (struct sockaddr *)&ss, len);
        struct pollfd p = {.fd = fill[nfill], .events = POLLOUT};
        if (poll(&p, 1, 200) == 0) {
            nfill++;
            break;
        }
    }
    struct th_child e, px;
    start_echo(&e);
    char ea[64];
    addr_of(&e, ea, sizeof(ea));
    snprintf(conf, sizeof(conf), "/tmp/test_proxy.%d.conf", (int)getpid());
    FILE *f = fopen(conf, "w");
    fprintf(f, "proxy = { backends = [\"%s\", \"%s\"]; connect_timeout_ms = 150; };\n", hole, ea);
    fclose(f);
    const char *extra[] = {"-c", conf, NULL};
    start_proxy(&px, extra);
    /* every client is answered, some after the blackhole's timeout */
    for (int i = 0; i < 4; i++) {
        int c = th_connect_tcp(px.host, px.port);
        char buf[5];
        assert_int_equal(th_write_all(c, "hello", 5, 5000), 0);
        assert_int_equal(th_read_exact(c, buf, 5, 5000), 5);
        assert_memory_equal(buf, "hello", 5);
        close(c);
    }
    assert_int_equal(th_child_stop(&px, SIGTERM, 10000), 0);
    assert_int_equal(th_child_stop(&e, SIGTERM, 10000), 0);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    close(lfd);
    unlink(conf);
}

static void test_all_backends_dead(void **state)
{
    char d1[64], d2[64];
    dead_addr(d1, sizeof(d1));
    dead_addr(d2, sizeof(d2));
    struct th_child px;
    const char *extra[] = {"-b", d1, "-b", d2, NULL};
    start_proxy(&px, extra);
    int c = th_connect_tcp(px.host, px.port);
    assert_int_equal(th_write_all(c, "x", 1, 5000), 0);
    int rc = th_wait_eof(c, 5000);
    assert_true(rc == 0 || rc == -ECONNRESET); /* closed, not left hanging */
    close(c);
    assert_int_equal(th_child_stop(&px, SIGTERM, 10000), 0);
}

static void test_bad_backend_exit_2(void **state)
{
    char out[2048];
    char *argv[] = {MUX_PROXY_BIN, "-l", "127.0.0.1:0", "-b", "localhost:80", NULL};
    assert_int_equal(th_run_capture(argv, out, sizeof(out), 10000), 2);
    assert_non_null(strstr(out, "proxy.backends"));
    char *none[] = {MUX_PROXY_BIN, "-l", "127.0.0.1:0", NULL};
    assert_int_equal(th_run_capture(none, out, sizeof(out), 10000), 2);
    assert_non_null(strstr(out, "no backend"));
}

int main(void)
{
    const char *s = getenv("MUX_TEST_SEED");
    seed = s ? strtoull(s, NULL, 0) : (unsigned long long)time(NULL) * 2654435761ull;
    if (!seed)
        seed = 1;
    printf("seed %llu (MUX_TEST_SEED replays)\n", seed);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_through_proxy),
        cmocka_unit_test(test_half_close_client_first),
        cmocka_unit_test(test_half_close_backend_first),
        cmocka_unit_test(test_client_not_reading),
        cmocka_unit_test(test_backend_not_reading),
        cmocka_unit_test(test_blackholed_backend_skipped),
        cmocka_unit_test(test_all_backends_dead),
        cmocka_unit_test(test_bad_backend_exit_2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
