/* test_poller.c - the contract of framework/poller.h, for every backend:
 * epoll level and edge triggered, poll, select. Event mapping (READ,
 * WRITE, RDHUP on the peer's half-close, ERROR/HUP on a reset), edge vs
 * level (edge: once per change; level: on every wait while it lasts; uring
 * is skipped where the kernel refuses io_uring), no
 * read-side report for an fd not registered for MUX_EV_READ (a level
 * backend would spin on the peer's FIN otherwise), mod/del, fairness when
 * more fds are ready than one wait returns, select's FD_SETSIZE limit.
 * Every wait is bounded; the kernel's side is confirmed with a plain
 * poll(2) on the fd before the backend is asked, never by sleeping. */
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
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "poller.h"

struct backend {
    const char *label, *name;
    bool edge;
    bool rdhup;                  /* can tell the peer's half-close apart */
    bool errors_without_interest; /* ERROR/HUP even with no interest */
};

/* select(2) sees a reset or a FIN only as readability of a watched fd. */
static const struct backend backends[] = {
    {"epoll", "epoll", false, true, true},
    {"epoll-et", "epoll", true, true, true},
    {"poll", "poll", false, true, true},
    {"select", "select", false, false, false},
    {"uring", "uring", false, true, true},
};
#define NBACKENDS (sizeof(backends) / sizeof(backends[0]))

enum { NTAGS = 400 };
static int tags[NTAGS]; /* registered pointers are &tags[i] */

struct ctx {
    const struct backend *b;
    const struct mux__poller_ops *ops;
    struct mux__poller *p;
};

static void ctx_open(struct ctx *c, const struct backend *b)
{
    c->b = b;
    c->ops = mux__poller_find(b->name);
    assert_non_null(c->ops);
    assert_int_equal(!!(c->ops->flags & MUX_POLLER_CAN_EDGE), strcmp(b->name, "epoll") == 0);
    assert_int_equal(c->ops->create(&c->p, b->edge), 0);
    print_message("  [%s]\n", b->label);
}

/* io_uring may be refused here (seccomp, io_uring_disabled, no liburing):
 * then the server uses epoll instead and there is no backend to test. */
static bool available(const struct backend *b)
{
    if (strcmp(b->name, "uring") != 0)
        return true;
    static int known = -1;
    if (known < 0) {
        int rc = mux__poller_probe(b->name);
        known = rc == 0;
        if (rc < 0)
            print_message("  [uring] unavailable (%s): skipped\n", strerror(-rc));
    }
    return known;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One wait of up to timeout_ms returning at most max events: ORs each
 * tag's events into ev[] and counts its reports (once per wait at most). */
static int wait_into(struct ctx *c, int max, int timeout_ms, uint32_t *ev, int *count)
{
    struct mux__poll_event out[NTAGS];
    assert_true(max <= NTAGS);
    int n = c->ops->wait(c->p, out, max, timeout_ms);
    assert_true(n >= 0 && n <= max);
    bool seen[NTAGS] = {false};
    for (int i = 0; i < n; i++) {
        int t = (int)((int *)out[i].ptr - tags);
        assert_true(t >= 0 && t < NTAGS);
        assert_false(seen[t]); /* one report per fd per wait */
        seen[t] = true;
        assert_true(out[i].events != 0);
        ev[t] |= out[i].events;
        if (count)
            count[t]++;
    }
    return n;
}

/* Events for tag t from one wait with timeout 0 (what is ready now). */
static uint32_t events_now(struct ctx *c, int t)
{
    uint32_t ev[NTAGS] = {0};
    wait_into(c, NTAGS, 0, ev, NULL);
    return ev[t];
}

/* Waits (bounded) until tag t is reported; returns its events. */
static uint32_t events_within(struct ctx *c, int t, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    uint32_t ev[NTAGS] = {0};
    for (long long left = timeout_ms; !ev[t] && left >= 0; left = deadline - now_ms())
        wait_into(c, NTAGS, (int)left, ev, NULL);
    return ev[t];
}

/* The kernel's view, independent of the backend: waits (bounded) until
 * plain poll(2) reports one of `want` on fd. */
static void settle(int fd, short want)
{
    struct pollfd pfd = {.fd = fd, .events = want};
    long long deadline = now_ms() + 5000;
    int rc;
    do /* EINTR: tearing down an io_uring ring interrupts its thread once */
        rc = poll(&pfd, 1, (int)(deadline - now_ms()));
    while ((rc == 0 || (rc < 0 && errno == EINTR)) && now_ms() < deadline);
    assert_true(rc == 1 && (pfd.revents & (want | POLLERR | POLLHUP)));
}

/* A connected loopback TCP pair, both non-blocking. */
static void tcp_pair(int *a, int *b)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_true(l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
    *b = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(*b, (struct sockaddr *)&sa, sizeof(sa)), 0);
    *a = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    assert_true(*a >= 0);
    assert_int_equal(fcntl(*b, F_SETFL, O_NONBLOCK), 0);
    close(l);
}

static void send_byte(int fd)
{
    assert_int_equal(write(fd, "x", 1), 1);
}

static void drain(int fd)
{
    char buf[4096];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
}

/* RST instead of FIN. */
static void reset_close(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(fd);
}

/* ---- the tests; each runs every backend ---- */

#define EACH_BACKEND(i)                                                                            \
    for (size_t i = 0; i < NBACKENDS; i++)                                                         \
        if (available(&backends[i]))

/* READ when the peer writes; edge: once per arrival, level: every wait
 * until the bytes are read. */
static void read_edge_vs_level(const struct backend *b)
{
    struct ctx c;
    ctx_open(&c, b);
    int a, peer;
    tcp_pair(&a, &peer);
    assert_int_equal(c.ops->add(c.p, a, &tags[0], MUX_EV_READ), 0);
    assert_int_equal(events_now(&c, 0), 0); /* nothing to read yet */
    send_byte(peer);
    settle(a, POLLIN);
    assert_int_equal(events_within(&c, 0, 2000), MUX_EV_READ);
    for (int i = 0; i < 3; i++) /* the byte is still there */
        assert_int_equal(events_now(&c, 0), b->edge ? 0 : MUX_EV_READ);
    send_byte(peer); /* a new arrival is a new edge */
    settle(a, POLLIN);
    assert_int_equal(events_within(&c, 0, 2000), MUX_EV_READ);
    drain(a);
    assert_int_equal(events_now(&c, 0), 0);
    c.ops->del(c.p, a);
    c.ops->destroy(c.p);
    close(a);
    close(peer);
}

static void test_read_edge_vs_level(void **state)
{
    EACH_BACKEND(i)
        read_edge_vs_level(&backends[i]);
}

/* WRITE while the socket takes bytes; mod() switches interest and the
 * pointer that comes back; edge: mod re-arms one report. */
static void write_and_mod(const struct backend *b)
{
    struct ctx c;
    ctx_open(&c, b);
    int a, peer;
    tcp_pair(&a, &peer);
    assert_int_equal(c.ops->add(c.p, a, &tags[1], MUX_EV_WRITE), 0);
    assert_int_equal(events_within(&c, 1, 2000), MUX_EV_WRITE);
    assert_int_equal(events_now(&c, 1), b->edge ? 0 : MUX_EV_WRITE);
    assert_int_equal(c.ops->mod(c.p, a, &tags[2], MUX_EV_READ), 0);
    assert_int_equal(events_now(&c, 1) | events_now(&c, 2), 0); /* writable, but not asked */
    send_byte(peer);
    settle(a, POLLIN);
    assert_int_equal(events_within(&c, 2, 2000), MUX_EV_READ);
    assert_int_equal(c.ops->mod(c.p, a, &tags[3], MUX_EV_READ | MUX_EV_WRITE), 0);
    uint32_t ev[NTAGS] = {0};
    wait_into(&c, NTAGS, 0, ev, NULL);
    assert_int_equal(ev[2], 0); /* the old pointer is gone */
    assert_int_equal(ev[3], MUX_EV_READ | MUX_EV_WRITE);
    c.ops->del(c.p, a); /* del: nothing more, though still readable */
    assert_int_equal(events_now(&c, 3), 0);
    c.ops->destroy(c.p);
    close(a);
    close(peer);
}

static void test_write_mod_del(void **state)
{
    EACH_BACKEND(i)
        write_and_mod(&backends[i]);
}

/* The peer's shutdown(SHUT_WR) while reading: READ, with RDHUP where the
 * backend can tell. */
static void peer_half_close_while_reading(const struct backend *b)
{
    struct ctx c;
    ctx_open(&c, b);
    int a, peer;
    tcp_pair(&a, &peer);
    assert_int_equal(c.ops->add(c.p, a, &tags[4], MUX_EV_READ), 0);
    assert_int_equal(shutdown(peer, SHUT_WR), 0);
    settle(a, POLLRDHUP);
    uint32_t want = MUX_EV_READ | (b->rdhup ? MUX_EV_RDHUP : 0);
    assert_int_equal(events_within(&c, 4, 2000), want);
    assert_int_equal(events_now(&c, 4), b->edge ? 0 : want);
    char x;
    assert_int_equal(read(a, &x, 1), 0); /* the EOF the event announced */
    c.ops->del(c.p, a);
    c.ops->destroy(c.p);
    close(a);
    close(peer);
}

static void test_peer_half_close_while_reading(void **state)
{
    EACH_BACKEND(i)
        peer_half_close_while_reading(&backends[i]);
}

/* Not reading (paused, or output above the high-water mark) and the peer
 * half-closes, with or without unread bytes: no READ, no RDHUP, on no
 * wait. A level backend that asked for read-hangup anyway would report it
 * on every wait: a worker spinning at 100% CPU. */
static void half_close_not_reading(const struct backend *b, uint32_t interest, bool data)
{
    struct ctx c;
    ctx_open(&c, b);
    int a, peer;
    tcp_pair(&a, &peer);
    assert_int_equal(c.ops->add(c.p, a, &tags[5], interest), 0);
    if (data)
        send_byte(peer);
    assert_int_equal(shutdown(peer, SHUT_WR), 0);
    settle(a, POLLRDHUP);
    for (int i = 0; i < 4; i++) {
        uint32_t ev = events_now(&c, 5);
        assert_int_equal(ev & ~interest, 0);
    }
    c.ops->del(c.p, a);
    c.ops->destroy(c.p);
    close(a);
    close(peer);
}

static void test_half_close_not_reported_without_read(void **state)
{
    EACH_BACKEND(i) {
        half_close_not_reading(&backends[i], 0, false);
        half_close_not_reading(&backends[i], 0, true);
        half_close_not_reading(&backends[i], MUX_EV_WRITE, false);
        half_close_not_reading(&backends[i], MUX_EV_WRITE, true);
    }
}

/* A reset: ERROR/HUP whatever was asked for (select: readable, when
 * reading); never READ when not asked for. */
static void reset_reported(const struct backend *b, uint32_t interest)
{
    struct ctx c;
    ctx_open(&c, b);
    int a, peer;
    tcp_pair(&a, &peer);
    assert_int_equal(c.ops->add(c.p, a, &tags[6], interest), 0);
    reset_close(peer);
    settle(a, POLLHUP);
    if (b->errors_without_interest || interest) {
        uint32_t ev = events_within(&c, 6, 2000);
        if (b->errors_without_interest)
            assert_true(ev & (MUX_EV_ERROR | MUX_EV_HUP));
        else
            assert_true(ev & interest);
        if (!(interest & MUX_EV_READ))
            assert_int_equal(ev & (MUX_EV_READ | MUX_EV_RDHUP), 0);
        if (!(interest & MUX_EV_WRITE))
            assert_int_equal(ev & MUX_EV_WRITE, 0);
    }
    c.ops->del(c.p, a);
    c.ops->destroy(c.p);
    close(a);
}

static void test_reset_reports_error_or_hangup(void **state)
{
    EACH_BACKEND(i) {
        reset_reported(&backends[i], 0);
        reset_reported(&backends[i], MUX_EV_READ);
        reset_reported(&backends[i], MUX_EV_WRITE);
    }
}

/* More fds ready than one wait returns: every one is reported within a
 * bounded number of waits (level: no fd starves behind the first ones;
 * edge: each exactly once). */
static void many_ready(const struct backend *b)
{
    enum { N = 300, MAX = 16 };
    struct ctx c;
    ctx_open(&c, b);
    int sv[N][2];
    for (int i = 0; i < N; i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv[i]), 0);
        assert_int_equal(c.ops->add(c.p, sv[i][0], &tags[i], MUX_EV_READ), 0);
        if (i % 3 != 2) /* two thirds become readable */
            send_byte(sv[i][1]);
    }
    uint32_t ev[NTAGS] = {0};
    int count[NTAGS] = {0};
    int waits = 0, reported = 0;
    for (; waits < (2 * N / 3) / MAX + 3; waits++) {
        wait_into(&c, MAX, 0, ev, count);
        reported = 0;
        for (int i = 0; i < N; i++)
            reported += ev[i] != 0;
        if (reported == N - N / 3)
            break;
    }
    print_message("    %d ready fds reported within %d waits of at most %d\n", reported,
                  waits + 1, MAX);
    for (int i = 0; i < N; i++) {
        assert_int_equal(ev[i], i % 3 != 2 ? MUX_EV_READ : 0);
        if (b->edge)
            assert_true(count[i] <= 1);
    }
    for (int i = 0; i < N; i++) {
        c.ops->del(c.p, sv[i][0]);
        close(sv[i][0]);
        close(sv[i][1]);
    }
    c.ops->destroy(c.p);
}

static void test_many_ready_none_starves(void **state)
{
    EACH_BACKEND(i)
        many_ready(&backends[i]);
}

/* An fd number at or past FD_SETSIZE: select refuses it with -ERANGE (it
 * cannot be put in an fd_set); the others take it and report on it. */
static void test_fd_setsize_limit(void **state)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur <= FD_SETSIZE + 1 && rl.rlim_max > FD_SETSIZE + 1) {
        rl.rlim_cur = FD_SETSIZE + 64 < rl.rlim_max ? FD_SETSIZE + 64 : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int a, peer;
    tcp_pair(&a, &peer);
    int high = fcntl(a, F_DUPFD_CLOEXEC, FD_SETSIZE);
    if (high < 0) {
        print_message("cannot get an fd >= %d (limit %llu): skipped\n", FD_SETSIZE,
                      (unsigned long long)rl.rlim_cur);
        close(a);
        close(peer);
        skip();
    }
    EACH_BACKEND(i) {
        struct ctx c;
        ctx_open(&c, &backends[i]);
        if (c.ops->flags & MUX_POLLER_FD_LIMIT) {
            assert_int_equal(c.ops->add(c.p, high, &tags[7], MUX_EV_READ), -ERANGE);
            assert_int_equal(c.ops->mod(c.p, high, &tags[7], MUX_EV_READ), -ENOENT);
            c.ops->del(c.p, high); /* harmless */
        } else {
            assert_int_equal(c.ops->add(c.p, high, &tags[7], MUX_EV_READ), 0);
            send_byte(peer);
            settle(high, POLLIN);
            assert_int_equal(events_within(&c, 7, 2000), MUX_EV_READ);
            drain(high);
            c.ops->del(c.p, high);
        }
        c.ops->destroy(c.p);
    }
    close(high);
    close(a);
    close(peer);
}

/* Adding an fd twice, changing or removing one never added. */
static void test_add_twice_and_unknown_fds(void **state)
{
    EACH_BACKEND(i) {
        struct ctx c;
        ctx_open(&c, &backends[i]);
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(c.ops->mod(c.p, sv[0], &tags[8], MUX_EV_READ), -ENOENT);
        c.ops->del(c.p, sv[0]); /* harmless */
        assert_int_equal(c.ops->add(c.p, sv[0], &tags[8], MUX_EV_READ), 0);
        assert_int_equal(c.ops->add(c.p, sv[0], &tags[8], MUX_EV_READ), -EEXIST);
        c.ops->del(c.p, sv[0]);
        assert_int_equal(c.ops->add(c.p, sv[0], &tags[9], MUX_EV_WRITE), 0); /* again after del */
        assert_int_equal(events_within(&c, 9, 2000), MUX_EV_WRITE);
        c.ops->del(c.p, sv[0]);
        c.ops->destroy(c.p);
        close(sv[0]);
        close(sv[1]);
    }
}

/* Nothing ready: wait returns 0 after its timeout, not before. An EINTR
 * also returns 0 early (the teardown of each io_uring ring this thread used
 * causes one, later), so the wait is repeated until one lasts, for 3 s at
 * most: a backend that never waits still fails. */
static void test_wait_times_out(void **state)
{
    EACH_BACKEND(i) {
        struct ctx c;
        ctx_open(&c, &backends[i]);
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        assert_int_equal(c.ops->add(c.p, sv[0], &tags[10], MUX_EV_READ), 0);
        struct mux__poll_event ev[4];
        bool full = false;
        for (long long end = now_ms() + 3000; !full && now_ms() < end;) {
            long long t0 = now_ms();
            assert_int_equal(c.ops->wait(c.p, ev, 4, 30), 0);
            full = now_ms() - t0 >= 29;
        }
        assert_true(full);
        c.ops->del(c.p, sv[0]);
        c.ops->destroy(c.p);
        close(sv[0]);
        close(sv[1]);
    }
}

/* A half-closed fd that is not read stays silent, yet a later reset and
 * writability that was asked for still come through (uring arms such an
 * fd multishot to wait for a change instead of completing at once). */
static void quiet_then_change(const struct backend *b)
{
    struct ctx c;
    ctx_open(&c, b);
    int a, peer;
    tcp_pair(&a, &peer);
    assert_int_equal(c.ops->add(c.p, a, &tags[11], 0), 0);
    assert_int_equal(shutdown(peer, SHUT_WR), 0);
    settle(a, POLLRDHUP);
    for (int i = 0; i < 4; i++)
        assert_int_equal(events_now(&c, 11), 0);
    assert_int_equal(c.ops->mod(c.p, a, &tags[11], MUX_EV_WRITE), 0);
    assert_int_equal(events_within(&c, 11, 2000), MUX_EV_WRITE); /* a change of interest */
    assert_int_equal(c.ops->mod(c.p, a, &tags[11], 0), 0);
    assert_int_equal(events_now(&c, 11), 0);
    reset_close(peer);
    settle(a, POLLHUP);
    uint32_t ev = events_within(&c, 11, 2000);
    if (b->errors_without_interest)
        assert_true(ev & (MUX_EV_ERROR | MUX_EV_HUP));
    assert_int_equal(ev & (MUX_EV_READ | MUX_EV_RDHUP | MUX_EV_WRITE), 0);
    c.ops->del(c.p, a);
    c.ops->destroy(c.p);
    close(a);
}

static void test_quiet_fd_reports_a_change(void **state)
{
    EACH_BACKEND(i)
        quiet_then_change(&backends[i]);
}

/* del() then close(): the peer sees the FIN without another wait (a
 * backend holding the file in a pending request would delay it). */
static void test_close_after_del_reaches_peer(void **state)
{
    EACH_BACKEND(i) {
        struct ctx c;
        ctx_open(&c, &backends[i]);
        int a, peer;
        tcp_pair(&a, &peer);
        assert_int_equal(c.ops->add(c.p, a, &tags[12], MUX_EV_READ), 0);
        assert_int_equal(events_now(&c, 12), 0); /* armed */
        c.ops->del(c.p, a);
        close(a);
        settle(peer, POLLRDHUP);
        char x;
        assert_int_equal(read(peer, &x, 1), 0);
        c.ops->destroy(c.p);
        close(peer);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_edge_vs_level),
        cmocka_unit_test(test_write_mod_del),
        cmocka_unit_test(test_peer_half_close_while_reading),
        cmocka_unit_test(test_half_close_not_reported_without_read),
        cmocka_unit_test(test_reset_reports_error_or_hangup),
        cmocka_unit_test(test_many_ready_none_starves),
        cmocka_unit_test(test_fd_setsize_limit),
        cmocka_unit_test(test_add_twice_and_unknown_fds),
        cmocka_unit_test(test_wait_times_out),
        cmocka_unit_test(test_quiet_fd_reports_a_change),
        cmocka_unit_test(test_close_after_del_reaches_peer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
