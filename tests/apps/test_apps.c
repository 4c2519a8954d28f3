/* test_apps.c - the sample servers as a user runs them: child processes
 * started with the common flags, found through their ready line, stopped
 * by PID with SIGTERM. Every byte of every connection is verified, on every
 * poller backend; a slow reader streams tens of MiB through while the
 * server's peak RSS stays bounded; SIGTERM with data in flight loses
 * nothing; the CLI contract (exit codes, errors naming file and line).
 * The poller comes from MUX_TEST_POLLER ("epoll", "epoll-et", "poll",
 * "select"; default epoll), so ctest runs the file once per backend. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <linux/io_uring.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

struct app {
    const char *name;
    const char *path;
    enum th_xform xform;
};

static const struct app apps[] = {
    {"echo", MUX_ECHO_BIN, TH_XFORM_ECHO},
    {"upper", MUX_UPPER_BIN, TH_XFORM_UPPER},
    {"queue", MUX_QUEUE_BIN, TH_XFORM_UPPER},
};

static const char *backend(void)
{
    return th_poller();
}

/* argv for an app on a given backend ("epoll", "epoll-et", "poll", "select"). */
static void start_app(struct th_child *c, const struct app *a, const char *backend,
                      const char *extra1, const char *extra2)
{
    char *argv[12];
    int n = 0;
    argv[n++] = (char *)a->path;
    argv[n++] = "-l";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "-w";
    argv[n++] = "2";
    argv[n++] = "--poller";
    argv[n++] = strcmp(backend, "epoll-et") == 0 ? "epoll" : (char *)backend;
    if (strcmp(backend, "epoll-et") == 0)
        argv[n++] = "--edge";
    if (extra1)
        argv[n++] = (char *)extra1;
    if (extra2)
        argv[n++] = (char *)extra2;
    argv[n] = NULL;
    assert_int_equal(th_child_start(c, argv, 10000), 0);
}

static void stop_app(struct th_child *c)
{
    assert_int_equal(th_child_stop(c, SIGTERM, 15000), 0); /* graceful: exit 0 */
}

static void many_clients(const struct app *a, const char *backend)
{
    struct th_child c;
    start_app(&c, a, backend, NULL, NULL);
    /* select cannot watch fds >= 1024, so it gets fewer clients. */
    int conns = th_under_valgrind() ? 64 : strcmp(backend, "select") == 0 ? 400 : 1000;
    struct th_load l = {.host = c.host, .port = c.port, .conns = conns,
                         .bytes_per_conn = th_under_valgrind() ? 4096 : 16384,
                         .max_fragment = 2000, .xform = a->xform, .seed = 1234,
                         .timeout_ms = 60000};
    int rc = th_load_run(&l);
    print_message("%s/%s: %d connections, %llu bytes verified\n", a->name, backend,
                  l.completed, l.verified_bytes);
    assert_int_equal(rc, 0);
    assert_int_equal(l.verified_bytes, (unsigned long long)conns * l.bytes_per_conn);
    stop_app(&c);
}

static void test_many_clients(void **state)
{
    for (size_t i = 0; i < sizeof(apps) / sizeof(apps[0]); i++)
        many_clients(&apps[i], backend());
}

/* Streams `total` bytes through the server while reading the replies at a
 * limited rate; verifies every byte; returns the server's peak RSS (KiB). */
static long slow_reader(const struct app *a, size_t total)
{
    struct th_child c;
    start_app(&c, a, backend(), NULL, NULL);
    long base_rss = th_peak_rss_kib(c.pid);
    int fd = th_connect_tcp(c.host, c.port);
    assert_true(fd >= 0);
    int small = 64 << 10; /* small socket buffers so backpressure reaches the server */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));

    unsigned long long wseed = 42, rseed = 42;
    size_t sent = 0, got = 0, wlen = 0, woff = 0; /* wbuf[woff, wlen) is unsent */
    char wbuf[65536], expect[65536], rbuf[65536];
    long long deadline = th_now_ms() + 120000LL * th_slowdown();
    while (got < total && th_now_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0)};
        assert_true(poll(&p, 1, 5000 * th_slowdown()) > 0);
        if ((p.revents & POLLOUT) && sent < total) {
            if (woff == wlen) { /* next block of the stream */
                wlen = total - sent < sizeof(wbuf) ? total - sent : sizeof(wbuf);
                woff = 0;
                th_fill_random(wbuf, wlen, &wseed);
            }
            ssize_t w = send(fd, wbuf + woff, wlen - woff, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w <= 0 && errno != EAGAIN)
                fail_msg("%s: send failed after %zu bytes sent, %zu received: %s", a->name,
                         sent, got, strerror(errno));
            if (w > 0) {
                woff += (size_t)w;
                sent += (size_t)w;
            }
        }
        if (p.revents & POLLIN) {
            /* The slow part: at most 16 KiB per turn, one turn per ms. */
            ssize_t r = recv(fd, rbuf, 16384, MSG_DONTWAIT);
            assert_true(r > 0 || (r < 0 && errno == EAGAIN));
            if (r > 0) {
                th_fill_random(expect, (size_t)r, &rseed);
                for (ssize_t i = 0; i < r; i++) {
                    unsigned char e = (unsigned char)expect[i];
                    if (a->xform == TH_XFORM_UPPER && e >= 'a' && e <= 'z')
                        e = (unsigned char)(e - 'a' + 'A');
                    if ((unsigned char)rbuf[i] != e)
                        fail_msg("byte %zu differs", got + (size_t)i);
                }
                got += (size_t)r;
            }
            struct timespec ts = {.tv_nsec = 1000000}; /* throttle, not synchronisation */
            nanosleep(&ts, NULL);
        }
    }
    assert_int_equal(got, total);
    long peak = th_peak_rss_kib(c.pid);
    close(fd);
    stop_app(&c);
    print_message("%s slow reader: %zu MiB verified, peak RSS %ld KiB (at start %ld KiB)\n",
                  a->name, total >> 20, peak, base_rss);
    return peak - base_rss;
}

static void test_slow_reader_bounded_memory(void **state)
{
    size_t total = th_under_valgrind() ? (8u << 20) : (48u << 20);
    for (size_t i = 0; i < sizeof(apps) / sizeof(apps[0]); i++) {
        long growth = slow_reader(&apps[i], total);
        /* Backpressure bounds what the server holds to about the high water
         * mark plus one read per connection; 48 MiB would show. Not under
         * a sanitizer with uring: its 2 KiB receive buffers make mux-queue
         * fill and free its 64 KiB slab far more often, ASan's quarantine
         * keeps every freed one, and TSan adds shadow pages for the 2 MiB
         * buffer ring (the plain build checks the bound). */
        if (TH_UNDER_SANITIZER && strcmp(backend(), "uring") == 0)
            continue;
        assert_true(growth < (th_under_valgrind() ? 64 * 1024 : 16 * 1024));
    }
}

/* SIGTERM while every client has bytes in the server that were not yet
 * answered: all of them must come back, then an orderly EOF, exit 0. */
static void test_sigterm_with_data_in_flight(void **state)
{
    for (size_t ai = 0; ai < sizeof(apps) / sizeof(apps[0]); ai++) {
        const struct app *a = &apps[ai];
        struct th_child c;
        start_app(&c, a, backend(), NULL, NULL);
        enum { CLIENTS = 20, BYTES = 100000 };
        int fds[CLIENTS];
        static char data[CLIENTS][BYTES], first[CLIENTS][100], back[BYTES];
        unsigned long long seed = 5;
        for (int i = 0; i < CLIENTS; i++) {
            fds[i] = th_connect_tcp(c.host, c.port);
            th_fill_random(data[i], BYTES, &seed);
            assert_int_equal(th_write_all(fds[i], data[i], BYTES, 5000), 0);
            /* The first bytes came back: the server has the connection and is
             * answering; the rest of the 100000 are in flight. */
            assert_int_equal(th_read_exact(fds[i], first[i], 100, 5000), 100);
        }
        kill(c.pid, SIGTERM);
        for (int i = 0; i < CLIENTS; i++) {
            memcpy(back, first[i], 100);
            assert_int_equal(th_read_exact(fds[i], back + 100, BYTES - 100, 10000), BYTES - 100);
            for (int k = 0; k < BYTES; k++) {
                unsigned char e = (unsigned char)data[i][k];
                if (a->xform == TH_XFORM_UPPER && e >= 'a' && e <= 'z')
                    e = (unsigned char)(e - 'a' + 'A');
                if ((unsigned char)back[k] != e)
                    fail_msg("%s client %d byte %d differs", a->name, i, k);
            }
            assert_int_equal(th_wait_eof(fds[i], 10000), 0); /* FIN, not RST */
            close(fds[i]);
        }
        assert_int_equal(th_child_wait(&c, 15000), 0);
    }
}

static int run(char *const argv[], char *out, size_t size)
{
    return th_run_capture(argv, out, size, 10000);
}

static void test_cli_contract(void **state)
{
    char out[8192];
    char *help[] = {MUX_ECHO_BIN, "-h", NULL};
    assert_int_equal(run(help, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "--listen"));
    char *version[] = {MUX_ECHO_BIN, "-V", NULL};
    assert_int_equal(run(version, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "mux-echo"));
    char *bad_flag[] = {MUX_ECHO_BIN, "--no-such-flag", NULL};
    assert_int_equal(run(bad_flag, out, sizeof(out)), 2);
    char *bad_workers[] = {MUX_ECHO_BIN, "-w", "many", NULL};
    assert_int_equal(run(bad_workers, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "server.workers"));
    char *bad_poller[] = {MUX_ECHO_BIN, "--poller", "kqueue", NULL};
    assert_int_equal(run(bad_poller, out, sizeof(out)), 2);

    /* A wrong config line: exit 2 naming file, line and key, nothing bound. */
    char path[] = "/tmp/mux-test-XXXXXX.conf";
    int fd = mkstemps(path, 5);
    const char *cfg = "server = {\n  workers = 2;\n  idle_timeout_ms = -5;\n};\n";
    assert_int_equal(write(fd, cfg, strlen(cfg)), (ssize_t)strlen(cfg));
    close(fd);
    char *bad_cfg[] = {MUX_ECHO_BIN, "-c", path, NULL};
    assert_int_equal(run(bad_cfg, out, sizeof(out)), 2);
    char where[600];
    snprintf(where, sizeof(where), "%s:3: server.idle_timeout_ms", path);
    assert_non_null(strstr(out, where));
    unlink(path);

    /* Address in use: exit 1 with a message. */
    struct th_child c;
    start_app(&c, &apps[0], backend(), NULL, NULL);
    char addr[128];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", c.port);
    char *busy[] = {MUX_ECHO_BIN, "-l", addr, NULL};
    assert_int_equal(run(busy, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "in use"));
    /* The ready line: "listening on HOST:PORT (details)". */
    assert_int_equal(strncmp(c.ready, "listening on 127.0.0.1:", 23), 0);
    assert_non_null(strstr(c.ready, "workers=2"));
    stop_app(&c);
}

static void test_ipv6_and_two_listeners(void **state)
{
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    if (probe < 0) {
        skip();
    }
    close(probe);
    char *argv[] = {MUX_UPPER_BIN, "-l", "[::1]:0", "-l", "127.0.0.1:0", "-w", "1", NULL};
    struct th_child c;
    if (th_child_start(&c, argv, 10000) < 0)
        skip(); /* no IPv6 loopback on this machine */
    assert_string_equal(c.host, "::1");
    assert_non_null(strstr(c.ready, "also 127.0.0.1:"));
    int fd = th_connect_tcp("::1", c.port);
    assert_true(fd >= 0);
    char buf[8];
    assert_int_equal(th_write_all(fd, "abc1", 4, 2000), 0);
    assert_int_equal(th_read_exact(fd, buf, 4, 2000), 4);
    assert_memory_equal(buf, "ABC1", 4);
    close(fd);
    stop_app(&c);
}

/* Lines of the log file that contain needle; the file is removed. */
static int count_log_lines(const char *log, const char *needle)
{
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    unlink(log);
    return n;
}

/* select cannot watch fds >= FD_SETSIZE: such connections are refused
 * (closed) with a log line, and everyone else is still served. */
static void test_select_refuses_fds_beyond_fd_setsize(void **state)
{
    if (strcmp(backend(), "select") != 0)
        skip(); /* runs in the select pass */
    /* stderr to a file (through sh), to count the refusal warnings */
    char log[64];
    snprintf(log, sizeof(log), "/tmp/mux-select-%d.log", (int)getpid());
    char script[128];
    snprintf(script, sizeof(script), "exec \"$0\" \"$@\" 2>%s", log);
    char *argv[] = {"/bin/sh", "-c", script, (char *)apps[0].path, "-l", "127.0.0.1:0",
                    "-w", "2", "--poller", "select", NULL};
    struct th_child c;
    assert_int_equal(th_child_start(&c, argv, 10000), 0);
    enum { N = 1100 };
    static int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = th_connect_tcp(c.host, c.port);
        assert_true(fds[i] >= 0);
    }
    /* Every connection stays open until each has its answer: a connection
     * still in the listen backlog when an earlier one closed would get that
     * one's low fd number and be served, and the refusals would depend on
     * how far the acceptor had got. The byte also completes a handshake
     * whose last ACK an overflowing backlog dropped. */
    bool sent[N];
    for (int i = 0; i < N; i++)
        sent[i] = th_write_all(fds[i], "x", 1, 5000) == 0;
    int served = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        char ch;
        if (sent[i] && th_read_exact(fds[i], &ch, 1, 5000) == 1) {
            assert_int_equal(ch, 'x');
            served++;
        } else {
            refused++;
        }
    }
    for (int i = 0; i < N; i++)
        close(fds[i]);
    print_message("select: %d served, %d refused (fd >= FD_SETSIZE)\n", served, refused);
    assert_true(served >= 1000);
    assert_true(refused >= 1);
    assert_int_equal(served + refused, N);
    int fd = th_connect_tcp(c.host, c.port); /* the server keeps running */
    char buf[4];
    assert_int_equal(th_write_all(fd, "ok", 2, 5000), 0);
    assert_int_equal(th_read_exact(fd, buf, 2, 5000), 2);
    close(fd);
    stop_app(&c);
    /* one warning per second at most, not one per refused connection */
    int warnings = count_log_lines(log, "FD_SETSIZE");
    print_message("select: %d refusal warning line(s)\n", warnings);
    assert_true(warnings >= 1);
    assert_true(warnings <= 5);
}

/* Does io_uring work for this process? (What the server's own probe asks.) */
static bool uring_works(void)
{
#ifndef TEST_HAVE_LIBURING
    return false; /* this build has no io_uring poller */
#endif
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    int fd = (int)syscall(__NR_io_uring_setup, 2, &p);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/* Echoes one message through the child; the server serves. */
static void echo_once(const struct th_child *c)
{
    int fd = th_connect_tcp(c->host, c->port);
    assert_true(fd >= 0);
    char buf[5];
    assert_int_equal(th_write_all(fd, "hello", 5, 5000), 0);
    assert_int_equal(th_read_exact(fd, buf, 5, 5000), 5);
    assert_memory_equal(buf, "hello", 5);
    close(fd);
}

/* --poller uring: the ready line names io_uring where the kernel takes it;
 * with io_uring_setup refused (a seccomp filter, as in a container) one
 * warning, epoll in the ready line, and the server serves. */
static void test_uring_or_epoll_fallback(void **state)
{
    if (strcmp(backend(), "epoll") != 0 || th_under_valgrind())
        skip(); /* once is enough; valgrind stalls on io_uring_enter (tests/CMakeLists.txt) */
    struct th_child c;
    char *argv[] = {(char *)apps[0].path, "-l", "127.0.0.1:0", "-w", "2", "--poller", "uring", NULL};
    assert_int_equal(th_child_start(&c, argv, 10000), 0);
    print_message("ready line: %s\n", c.ready);
    assert_non_null(strstr(c.ready, uring_works() ? "poller=uring" : "poller=epoll"));
    echo_once(&c);
    stop_app(&c);

    char log[64], script[160];
    snprintf(log, sizeof(log), "/tmp/mux-nouring-%d.log", (int)getpid());
    snprintf(script, sizeof(script), "exec \"$0\" \"$@\" 2>%s", log);
    char *refused[] = {"/bin/sh", "-c", script, NO_URING_BIN, (char *)apps[0].path, "-l",
                       "127.0.0.1:0", "-w", "2", "--poller", "uring", NULL};
    assert_int_equal(th_child_start(&c, refused, 10000), 0);
    print_message("ready line without io_uring: %s\n", c.ready);
    assert_non_null(strstr(c.ready, "poller=epoll"));
    echo_once(&c);
    stop_app(&c);
    int warnings = count_log_lines(log, "poller uring is not available");
    assert_int_equal(warnings, 1); /* one for the server, not one per worker */
}

/* A supervisor that sends SIGTERM the moment it reads the ready line always
 * gets the graceful path: exit 0, never death by the default action. */
static void test_sigterm_right_after_ready_line(void **state)
{
    int rounds = th_under_valgrind() ? 4 : 40;
    for (int i = 0; i < rounds; i++) {
        struct th_child c;
        start_app(&c, &apps[i % 3], backend(), NULL, NULL);
        int rc = th_child_stop(&c, SIGTERM, 15000);
        if (rc != 0)
            fail_msg("round %d (%s): exit %d instead of 0", i, apps[i % 3].name, rc);
    }
}

/* The most the kernel can buffer for one direction of a loopback connection
 * whose receiver never reads: the sender's send buffer grows up to
 * tcp_wmem's maximum (autotuning), plus the receive buffer `rcvbuf`. */
static size_t kernel_can_hold(int rcvbuf)
{
    long lo = 0, def = 0, max = 0;
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_wmem", "r");
    if (!f || fscanf(f, "%ld %ld %ld", &lo, &def, &max) != 3 || max <= 0)
        max = 64L << 20; /* unknown: assume a generous limit */
    if (f)
        fclose(f);
    return (size_t)max + (size_t)rcvbuf;
}

/* A second SIGTERM during the grace period ends it at once: a client that
 * never reads its reply would otherwise hold the server for the whole
 * shutdown_grace_ms. The client sends more than the kernel can buffer of
 * the echo, so the server is certain to still hold unsent output when the
 * shutdown begins (it cannot finish); the high water mark is above what is
 * sent, so the server reads all of it and the client's write completes. */
static void test_second_sigterm_ends_grace(void **state)
{
    int rcvbuf = 64 << 10;
    size_t total = kernel_can_hold(2 * rcvbuf) + (1u << 20);
    char conf[64];
    snprintf(conf, sizeof(conf), "/tmp/mux-grace-%d.conf", (int)getpid());
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "server = { shutdown_grace_ms = 60000; write_high_water = %zu; };\n", 2 * total);
    fclose(f);
    struct th_child c;
    start_app(&c, &apps[0], backend(), "-c", conf);
    struct sockaddr_storage ss;
    socklen_t slen;
    assert_int_equal(th_sockaddr(c.host, c.port, &ss, &slen), 0);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    /* before connect(), so the advertised window stays this small */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    assert_int_equal(connect(fd, (struct sockaddr *)&ss, slen), 0);
    char *big = calloc(1, total);
    assert_non_null(big);
    /* the echo fills both directions; this client never reads */
    assert_int_equal(th_write_all(fd, big, total, 20000), 0);
    free(big);
    kill(c.pid, SIGTERM);
    /* the listener closes once the shutdown has begun */
    long long deadline = th_now_ms() + 10000LL * th_slowdown();
    int probe;
    while ((probe = th_connect_tcp(c.host, c.port)) >= 0 && th_now_ms() < deadline)
        close(probe);
    assert_true(probe < 0);
    long long t0 = th_now_ms();
    assert_int_equal(th_child_stop(&c, SIGTERM, 10000), 0); /* not 60 s */
    print_message("second SIGTERM: exited after %lld ms (%zu bytes sent)\n",
                  th_now_ms() - t0, total);
    assert_int_equal(th_wait_eof(fd, 5000), -ECONNRESET); /* cut off, visibly */
    unlink(conf);
    close(fd);
}

/* CPU time (user + system) a process has used, in clock ticks, or -1. */
static long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* fields after the command name */
    long utime, stime;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &utime,
                     &stime) != 2)
        return -1;
    return utime + stime;
}

/* Out of file descriptors: connections beyond the limit are closed at once
 * (no hang), existing ones keep being served, the acceptor does not spin,
 * and once fds free up new connections are served again. */
static void test_fd_exhaustion_sheds_and_recovers(void **state)
{
    if (strcmp(backend(), "epoll") != 0)
        skip(); /* the acceptor does not depend on the poller: once is enough */
    /* valgrind skips prlimit (tests/CMakeLists.txt), so the server runs natively here. */
    char *argv[] = {"/usr/bin/prlimit", "--nofile=64:64",
                    MUX_ECHO_BIN, "-l", "127.0.0.1:0", "-w", "2", NULL};
    if (access(argv[0], X_OK) != 0)
        skip();
    struct th_child c;
    assert_int_equal(th_child_start(&c, argv, 10000), 0);
    long cpu_before = cpu_ticks(c.pid);
    enum { N = 150 };
    int fds[N], served = 0, shed = 0;
    for (int i = 0; i < N; i++) {
        fds[i] = th_connect_tcp(c.host, c.port);
        assert_true(fds[i] >= 0);
        char ch;
        if (th_write_all(fds[i], "e", 1, 5000) == 0 && th_read_exact(fds[i], &ch, 1, 5000) == 1) {
            served++;
        } else {
            shed++; /* closed by the server: EOF or reset, promptly */
            close(fds[i]);
            fds[i] = -1;
        }
    }
    print_message("fd limit: %d served, %d shed\n", served, shed);
    assert_true(served > 10);
    assert_true(shed > 0);
    /* One more client while at the limit: a server that leaves it in the
     * backlog and retries accept() in a loop would burn the whole window. */
    long t0 = cpu_ticks(c.pid);
    int extra = th_connect_tcp(c.host, c.port);
    int eof = th_wait_eof(extra, 700); /* shed: EOF/reset soon; else the window passes */
    long spent = cpu_ticks(c.pid) - t0;
    print_message("fd limit: extra client %s, %ld ticks of server CPU meanwhile\n",
                  eof == -ETIMEDOUT ? "left waiting" : "shed", spent);
    assert_true(spent < 25 * th_slowdown());
    close(extra);
    for (int i = 0; i < N; i++) /* the ones held open are still served */
        if (fds[i] >= 0) {
            char ch;
            assert_int_equal(th_write_all(fds[i], "f", 1, 5000), 0);
            assert_int_equal(th_read_exact(fds[i], &ch, 1, 5000), 1);
            assert_int_equal(ch, 'f');
            close(fds[i]);
        }
    /* Recovery: once the server has seen the closes, new clients are served
     * again. The acceptor retries every 100 ms, so allow a few attempts. */
    int ok = 0;
    for (int attempt = 0; attempt < 50 && !ok; attempt++) {
        int fd = th_connect_tcp(c.host, c.port);
        char ch;
        ok = fd >= 0 && th_write_all(fd, "g", 1, 2000) == 0 && th_read_exact(fd, &ch, 1, 2000) == 1;
        if (fd >= 0)
            close(fd);
    }
    assert_true(ok);
    long cpu = cpu_ticks(c.pid) - cpu_before;
    print_message("fd limit: server used %ld ticks of CPU for the whole scenario\n", cpu);
    assert_true(cpu < 100 * th_slowdown()); /* < 1 s: no busy loop at the limit */
    stop_app(&c);
}

int main(void)
{
    /* 1000 clients plus the server's own fds: lift the soft limit. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_contract),
        cmocka_unit_test(test_many_clients),
        cmocka_unit_test(test_slow_reader_bounded_memory),
        cmocka_unit_test(test_sigterm_with_data_in_flight),
        cmocka_unit_test(test_ipv6_and_two_listeners),
        cmocka_unit_test(test_select_refuses_fds_beyond_fd_setsize),
        cmocka_unit_test(test_fd_exhaustion_sheds_and_recovers),
        cmocka_unit_test(test_sigterm_right_after_ready_line),
        cmocka_unit_test(test_second_sigterm_ends_grace),
        cmocka_unit_test(test_uring_or_epoll_fallback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
