/* test_posts.c - mux_server_post at the edge of a full queue, lap after
 * lap, from several threads at once:
 *  - while the worker is held busy, producers fill its queue: exactly
 *    MUX_POST_QUEUE posts are accepted in all (the ring's cells are all
 *    free when the hold starts), every later one is refused; released,
 *    the worker runs each accepted post exactly once and no refused one.
 *    Repeated over several laps, the queue's head at a random offset each
 *    time, so a full check that is off by one lap shows as one post too
 *    many or too few, or as one run twice;
 *  - a slow worker and producers retrying every -EAGAIN, so the ring stays
 *    full while cells are handed back and claimed again: each post runs
 *    exactly once, in order per producer.
 * A producer that can never return (a livelock in a full ring) trips the
 * watchdog (SIGALRM), which names the phase. Seed: MUX_TEST_SEED. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "inproc.h"
#include "seed.h"

#define MAX_PRODUCERS 6
#define ID_SPACE (1u << 20) /* ids: producer << 17 | sequence */
#define ID_SEQ_BITS 17

static struct {
    struct th_inproc t;
    atomic_int gate_in, gate_open;
    atomic_uint ran;                /* posts run (after their mark) */
    unsigned char runs[ID_SPACE];   /* times each id ran: worker 0 writes */
    uint32_t next_seq[MAX_PRODUCERS]; /* phase 2: the next sequence per producer */
    atomic_uint disorder;
    atomic_uint spin;               /* phase 2: work per post */
    const char *phase;
} fx;

static void watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "test_posts: no progress: a producer or the worker is stuck "
                              "(livelock at a full queue?) in phase ";
    ssize_t rc = write(2, msg, sizeof msg - 1);
    rc = write(2, fx.phase, strlen(fx.phase));
    rc = write(2, "\n", 1);
    (void)rc;
    _exit(1);
}

static void arm_watchdog(const char *phase, unsigned s)
{
    fx.phase = phase;
    alarm(s * (unsigned)th_slowdown());
}

static void gate(struct mux_worker *w, void *arg)
{
    (void)w;
    (void)arg;
    atomic_store(&fx.gate_in, 1);
    long long end = th_now_ms() + 20000LL * th_slowdown();
    while (!atomic_load(&fx.gate_open) && th_now_ms() < end)
        sched_yield(); /* test only: holds the worker so its queue fills */
}

static void counted(struct mux_worker *w, void *arg)
{
    (void)w;
    uint32_t id = (uint32_t)(uintptr_t)arg;
    fx.runs[id]++;
    unsigned p = id >> ID_SEQ_BITS, seq = id & ((1u << ID_SEQ_BITS) - 1);
    if (seq != fx.next_seq[p])
        atomic_fetch_add(&fx.disorder, 1);
    fx.next_seq[p] = seq + 1;
    for (unsigned i = atomic_load_explicit(&fx.spin, memory_order_relaxed); i > 0; i--)
        atomic_signal_fence(memory_order_seq_cst); /* a slow handler */
    atomic_fetch_add(&fx.ran, 1); /* after the write above: the test reads runs[] after this */
}

static void noise(struct mux_worker *w, void *arg)
{
    (void)w;
    (void)arg;
    atomic_fetch_add(&fx.ran, 1);
}

/* Waits (bounded) until `ran` reaches want. */
static bool ran_reaches(unsigned want, int timeout_ms)
{
    long long end = th_now_ms() + (long long)timeout_ms * th_slowdown();
    while (atomic_load(&fx.ran) < want) {
        if (th_now_ms() > end)
            return false;
        sched_yield(); /* polling a counter the worker bumps: no event to wait on */
    }
    return true;
}

/* Posts that must go in: the queue has room (or soon has). */
static void post_surely(mux_post_fn fn, void *arg)
{
    long long end = th_now_ms() + 10000LL * th_slowdown();
    int rc;
    while ((rc = mux_server_post(fx.t.s, 0, fn, arg)) == -EAGAIN && th_now_ms() < end)
        sched_yield();
    assert_int_equal(rc, 0);
}

static size_t discard(struct mux_conn *c, const char *data, size_t len)
{
    (void)c;
    (void)data;
    return len;
}

static const struct mux_handler handler = {.name = "posts", .on_read = discard};

/* Starts the server and waits until worker 0 runs posts (before that they
 * are refused with -ESHUTDOWN). */
static void start(unsigned workers)
{
    struct mux_options o;
    th_inproc_options(&o);
    o.workers = workers;
    o.log_level = MUX_LOG_WARN;
    assert_int_equal(th_inproc_start(&fx.t, &o, &handler, NULL), 0);
    long long end = th_now_ms() + 10000LL * th_slowdown();
    int rc;
    while ((rc = mux_server_post(fx.t.s, 0, noise, NULL)) == -ESHUTDOWN && th_now_ms() < end)
        sched_yield();
    assert_int_equal(rc, 0);
    assert_true(ran_reaches(1, 5000));
}

/* ---- phase 1: fill to capacity while the worker is held ---- */

struct filler {
    pthread_t th;
    unsigned p;
    uint32_t first;         /* first sequence this lap */
    uint32_t accepted;      /* ids first .. first+accepted-1 went in */
    uint32_t refused_id;    /* the id of its first refusal */
    int refusal;            /* that post's result */
    atomic_int *go;
};

static void *fill(void *arg)
{
    struct filler *f = arg;
    while (!atomic_load(f->go))
        sched_yield(); /* start together */
    for (uint32_t s = f->first;; s++) {
        uint32_t id = f->p << ID_SEQ_BITS | s;
        int rc = mux_server_post(fx.t.s, 0, counted, (void *)(uintptr_t)id);
        if (rc != 0) {
            f->refused_id = id;
            f->refusal = rc;
            return NULL;
        }
        f->accepted++;
    }
}

static void test_full_by_one_lap(void **state)
{
    (void)state;
    th_seed_rng("MUX_TEST_SEED");
    memset(&fx, 0, sizeof fx);
    signal(SIGALRM, watchdog);
    start(2); /* posts go to worker 0; worker 1 is there to be left alone */
    uint32_t seq[MAX_PRODUCERS] = {0};
    int laps = 3 + (int)(th_rand() % 3);
    unsigned expect_ran = 1;
    for (int lap = 0; lap < laps; lap++) {
        arm_watchdog("fill", 10);
        /* Move the queue's head to a random place in the ring. */
        unsigned skew = (unsigned)(th_rand() % MUX_POST_QUEUE);
        for (unsigned i = 0; i < skew; i++)
            post_surely(noise, NULL);
        atomic_store(&fx.gate_in, 0);
        atomic_store(&fx.gate_open, 0);
        post_surely(gate, NULL);
        expect_ran += skew;
        long long end = th_now_ms() + 10000LL * th_slowdown();
        while (!atomic_load(&fx.gate_in) && th_now_ms() < end)
            sched_yield();
        assert_true(atomic_load(&fx.gate_in)); /* held: every cell is free now */
        int n = 2 + (int)(th_rand() % (MAX_PRODUCERS - 1));
        struct filler f[MAX_PRODUCERS];
        atomic_int go = 0;
        for (int p = 0; p < n; p++) {
            f[p] = (struct filler){.p = (unsigned)p, .first = seq[p], .go = &go};
            assert_int_equal(pthread_create(&f[p].th, NULL, fill, &f[p]), 0);
        }
        atomic_store(&go, 1);
        unsigned accepted = 0;
        for (int p = 0; p < n; p++) {
            pthread_join(f[p].th, NULL);
            assert_int_equal(f[p].refusal, -EAGAIN);
            accepted += f[p].accepted;
        }
        if (accepted != MUX_POST_QUEUE)
            fail_msg("lap %d (head skewed by %u, %d producers): %u posts accepted into a queue "
                     "of %d held by a busy worker",
                     lap, skew, n, accepted, MUX_POST_QUEUE);
        atomic_store(&fx.gate_open, 1);
        expect_ran += accepted;
        if (!ran_reaches(expect_ran, 10000))
            fail_msg("lap %d: %u of %u posts ran", lap, atomic_load(&fx.ran), expect_ran);
        for (int p = 0; p < n; p++) {
            for (uint32_t s = f[p].first; s < f[p].first + f[p].accepted; s++)
                if (fx.runs[f[p].p << ID_SEQ_BITS | s] != 1)
                    fail_msg("lap %d: post %u of producer %d ran %d times", lap, s, p,
                             fx.runs[f[p].p << ID_SEQ_BITS | s]);
            if (fx.runs[f[p].refused_id] != 0)
                fail_msg("lap %d: a refused post of producer %d ran", lap, p);
            /* the refused id is skipped: the next lap goes on after it */
            seq[p] = f[p].first + f[p].accepted + 1;
            fx.next_seq[p] = seq[p];
            assert_true(seq[p] + MUX_POST_QUEUE < (1u << ID_SEQ_BITS));
        }
    }
    alarm(0);
    assert_int_equal(atomic_load(&fx.disorder), 0);
    assert_int_equal(th_inproc_stop(&fx.t), 0);
}

/* ---- phase 2: full most of the time, cells reused under contention ---- */

/* Posts per producer (a sequence fits ID_SEQ_BITS); fewer under valgrind. */
static uint32_t per_producer(void)
{
    return 120000u / (uint32_t)th_slowdown();
}

static void *stream(void *arg)
{
    unsigned p = (unsigned)(uintptr_t)arg;
    for (uint32_t s = 0; s < per_producer(); s++) {
        uint32_t id = p << ID_SEQ_BITS | s;
        int rc;
        while ((rc = mux_server_post(fx.t.s, 0, counted, (void *)(uintptr_t)id)) == -EAGAIN)
            ; /* retry at once: keeps the queue full while the worker hands cells back */
        if (rc != 0)
            return (void *)(intptr_t)rc;
    }
    return NULL;
}

static void test_full_under_contention(void **state)
{
    (void)state;
    th_seed_rng("MUX_TEST_SEED");
    memset(&fx, 0, sizeof fx);
    signal(SIGALRM, watchdog);
    atomic_store(&fx.spin, 20 + (unsigned)(th_rand() % 100));
    start(1);
    arm_watchdog("contention", 20);
    int n = 2 + (int)(th_rand() % (MAX_PRODUCERS - 1));
    pthread_t th[MAX_PRODUCERS];
    for (int p = 0; p < n; p++)
        assert_int_equal(pthread_create(&th[p], NULL, stream, (void *)(uintptr_t)p), 0);
    for (int p = 0; p < n; p++) {
        void *rc;
        pthread_join(th[p], &rc);
        assert_null(rc);
    }
    unsigned want = 1 + (unsigned)n * per_producer();
    if (!ran_reaches(want, 20000))
        fail_msg("%u of %u posts ran", atomic_load(&fx.ran), want);
    alarm(0);
    assert_int_equal(th_inproc_stop(&fx.t), 0);
    for (int p = 0; p < n; p++)
        for (uint32_t s = 0; s < per_producer(); s++)
            if (fx.runs[(unsigned)p << ID_SEQ_BITS | s] != 1)
                fail_msg("post %u of producer %d ran %d times", s, p,
                         fx.runs[(unsigned)p << ID_SEQ_BITS | s]);
    assert_int_equal(atomic_load(&fx.disorder), 0);
    assert_int_equal(atomic_load(&fx.ran), want); /* nothing ran twice or out of nowhere */
}

int main(void)
{
    mux_log_setup(MUX_LOG_WARN, "test");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_by_one_lap),
        cmocka_unit_test(test_full_under_contention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
