/* test_uring_limits.c - io_uring when the kernel's resources run out
 * (skipped where io_uring is refused):
 *  - receive buffers: one uring worker, 128 clients each sending 256 KiB
 *    at once, far more than the worker's 1024 provided 2 KiB buffers hold;
 *    receives that find none (-ENOBUFS) must wait and go on, so every
 *    echo completes and every close is orderly (on_close(c, 0));
 *  - the completion queue: more quiet sockets (armed multishot: a peer's
 *    half-close the caller did not ask to see) than the CQ has entries are
 *    woken at once, so the kernel ends the multishot polls it cannot post
 *    for (a completion without IORING_CQE_F_MORE); each must be armed
 *    again, so every socket still reports writability when it comes.
 * Seed: MUX_TEST_SEED. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "inproc.h"
#include "poller.h"
#include "seed.h"

static bool uring_available(void)
{
    int rc = mux__poller_probe("uring");
    if (rc < 0)
        print_message("io_uring unavailable (%s): skipped\n", strerror(-rc));
    return rc == 0;
}

/* ---- out of receive buffers ---- */

static atomic_int closes, closes_ok;

static size_t echo_read(struct mux_conn *c, const char *data, size_t len)
{
    return mux_conn_send(c, data, len) == 0 ? len : 0;
}

static void echo_close(struct mux_conn *c, int err)
{
    (void)c;
    atomic_fetch_add(&closes, 1);
    if (err == 0)
        atomic_fetch_add(&closes_ok, 1);
    else
        fprintf(stderr, "on_close: %s\n", strerror(err));
}

static const struct mux_handler echo = {
    .name = "uring-burst",
    .on_read = echo_read,
    .on_close = echo_close,
};

static void test_receive_buffers_run_out(void **state)
{
    (void)state;
    if (!uring_available())
        skip();
    unsigned long long seed = th_seed_rng("MUX_TEST_SEED");
    struct mux_options o;
    th_inproc_options(&o);
    snprintf(o.poller, sizeof o.poller, "uring");
    o.edge_triggered = false;
    o.workers = 1;
    struct th_inproc srv;
    assert_int_equal(th_inproc_start(&srv, &o, &echo, NULL), 0);
    assert_string_equal(mux_server_poller(srv.s), "uring");
    enum { CONNS = 128 };
    struct th_load l = {
        .host = srv.host,
        .port = srv.port,
        .conns = CONNS,
        .bytes_per_conn = 256 * 1024,
        .max_fragment = 256 * 1024, /* all of it in one send where the socket takes it */
        .xform = TH_XFORM_ECHO,
        .seed = seed,
        .timeout_ms = 30000,
    };
    int rc = th_load_run(&l);
    if (rc != 0)
        fail_msg("%d of %d echoes completed (%d errors, %d mismatches)", l.completed, CONNS,
                 l.errors, l.mismatches);
    long long end = th_now_ms() + 10000LL * th_slowdown();
    while (atomic_load(&closes) < CONNS && th_now_ms() < end)
        poll(NULL, 0, 1); /* polling a counter the worker bumps: no event to wait on */
    assert_int_equal(atomic_load(&closes), CONNS);
    assert_int_equal(atomic_load(&closes_ok), CONNS);
    assert_int_equal(th_inproc_stop(&srv), 0);
}

/* ---- multishot polls the kernel ended ---- */

/* The ring's completion queue has 2048 entries (ring.c: 1024 SQ entries).
 * NOISY always-writable fds, each re-armed one-shot at every wait and
 * completing inside that submission, fill it before the task work that
 * posts the quiet sockets' completions runs (a few at a time) in the same
 * io_uring_enter: those find it full, and the kernel ends their polls. */
enum { QUIET = 300, NOISY = 2300, MAX_EVENTS = 4096 };

struct pair {
    int mine, peer; /* mine is watched for writability; its peer reads nothing at first */
    int reported;
};

static struct pair pairs[QUIET];
static int noisy[NOISY];
static int noisy_tag; /* the registered pointer of every noisy fd */

/* Fills the socket's send buffer (small, so little memory). */
static void fill(int fd)
{
    static const char junk[4096];
    while (send(fd, junk, sizeof junk, MSG_DONTWAIT) > 0)
        ;
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

/* `waits` waits; a pair reporting anything but `events` (0: nothing at
 * all) fails. Returns how many pairs reported for the first time. */
static int collect(const struct mux__poller_ops *ops, struct mux__poller *p, uint32_t events,
                   int waits, int timeout_ms)
{
    static struct mux__poll_event ev[MAX_EVENTS];
    int seen = 0;
    for (int i = 0; i < waits; i++) {
        int n = ops->wait(p, ev, MAX_EVENTS, timeout_ms);
        assert_true(n >= 0);
        for (int k = 0; k < n; k++) {
            if (ev[k].ptr == &noisy_tag)
                continue;
            struct pair *pr = ev[k].ptr;
            if (events == 0)
                fail_msg("pair %d reported %#x while nothing it asks for happened",
                         (int)(pr - pairs), ev[k].events);
            assert_true(ev[k].events & events);
            if (pr->reported++ == 0)
                seen++;
        }
    }
    return seen;
}

static bool enough_fds(rlim_t want)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur >= want)
        return true;
    print_message("RLIMIT_NOFILE %llu is too small: skipped\n", (unsigned long long)rl.rlim_cur);
    return false;
}

static void test_cq_overflow_quiet_polls(void **state)
{
    (void)state;
    if (!uring_available() || !enough_fds(2 * QUIET + NOISY + 64))
        skip();
    const struct mux__poller_ops *ops = mux__poller_find("uring");
    assert_non_null(ops);
    struct mux__poller *p;
    assert_int_equal(ops->create(&p, false), 0);
    for (int i = 0; i < QUIET; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv),
                         0);
        int small = 4096;
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        pairs[i] = (struct pair){.mine = sv[0], .peer = sv[1]};
        fill(sv[0]);
        assert_int_equal(ops->add(p, sv[0], &pairs[i], MUX_EV_WRITE), 0);
    }
    assert_int_equal(collect(ops, p, 0, 2, 0), 0); /* full sockets: nothing to report */
    /* A read-side shutdown of our own end wakes each poll with RDHUP only,
     * which a caller watching writability may not see: every poll turns
     * quiet (multishot). The kernel posts those completions a few per
     * wait, hence the many waits. */
    for (int i = 0; i < QUIET; i++)
        assert_int_equal(shutdown(pairs[i].mine, SHUT_RD), 0);
    assert_int_equal(collect(ops, p, 0, QUIET / 5 + 20, 1), 0);
    for (int i = 0; i < NOISY; i++) {
        noisy[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        assert_true(noisy[i] >= 0);
        assert_int_equal(ops->add(p, noisy[i], &noisy_tag, MUX_EV_WRITE), 0);
    }
    collect(ops, p, 0, 2, 0); /* the noisy ones report, and are armed again at each wait */
    /* Every quiet poll woken again with nothing to see, while the noisy
     * completions fill the queue at every wait. */
    for (int i = 0; i < QUIET; i++)
        assert_int_equal(shutdown(pairs[i].mine, SHUT_RD), 0);
    assert_int_equal(collect(ops, p, 0, QUIET / 5 + 20, 1), 0);
    for (int i = 0; i < NOISY; i++) {
        ops->del(p, noisy[i]);
        close(noisy[i]);
    }
    /* Room in every socket: each must report writability. */
    for (int i = 0; i < QUIET; i++) {
        char buf[65536];
        while (recv(pairs[i].peer, buf, sizeof buf, MSG_DONTWAIT) > 0)
            ;
    }
    int seen = 0;
    long long end = th_now_ms() + 3000LL * th_slowdown();
    while (seen < QUIET && th_now_ms() < end)
        seen += collect(ops, p, MUX_EV_WRITE, 1, 10);
    if (seen < QUIET) {
        int first = -1;
        for (int i = 0; i < QUIET && first < 0; i++)
            if (!pairs[i].reported)
                first = i;
        fail_msg("%d of %d sockets never reported writability after the CQ overflowed "
                 "(first: pair %d)",
                 QUIET - seen, QUIET, first);
    }
    for (int i = 0; i < QUIET; i++) {
        ops->del(p, pairs[i].mine);
        close(pairs[i].mine);
        close(pairs[i].peer);
    }
    ops->destroy(p);
}

int main(void)
{
    mux_log_setup(MUX_LOG_WARN, "test");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_receive_buffers_run_out),
        cmocka_unit_test(test_cq_overflow_quiet_polls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
