/* test_worker.c - the worker API of mux/worker.h, in-process:
 *  - hooks: on_worker_start / on_worker_stop once per worker, on its own
 *    thread, with the per-worker pointer reachable from posts;
 *  - timers: random one-shot delays fire once each, never early, in
 *    deadline order; cancelled ones never fire; a repeating timer cancels
 *    itself; stale ids are ignored; cancel from on_close; at stop live
 *    timers are dropped and nothing runs after on_worker_stop;
 *  - posts: the ring alone (one wake per batch, FIFO, full, closed); several
 *    threads and a worker posting to every worker at once (exactly once, in
 *    order per sender); a full queue refuses with -EAGAIN and loses
 *    nothing; posts pending at shutdown run before on_worker_stop, later
 *    ones get -ESHUTDOWN.
 * Seeded where random (MUX_TEST_SEED replays); run under TSan in CI. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "inproc.h"
#include "post.h"
#include "seed.h"

/* ---- a small rendezvous: the test thread waits for worker-side events ---- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

static void signal_all(void)
{
    pthread_mutex_lock(&lock);
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

/* Waits (bounded) until *flag >= want. */
static int wait_for(atomic_int *flag, int want, int timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    long long ns = dl.tv_nsec + (long long)(timeout_ms * th_slowdown() % 1000) * 1000000;
    dl.tv_sec += timeout_ms * th_slowdown() / 1000 + ns / 1000000000;
    dl.tv_nsec = ns % 1000000000;
    pthread_mutex_lock(&lock);
    int rc = 0;
    while (atomic_load(flag) < want && rc == 0)
        rc = pthread_cond_timedwait(&cond, &lock, &dl);
    pthread_mutex_unlock(&lock);
    return atomic_load(flag) >= want ? 0 : -1;
}

static unsigned long long seed;

static unsigned long long rnd(void)
{
    return th_xorshift(&seed);
}

static size_t noop_read(struct mux_conn *c, const char *d, size_t n)
{
    (void)c;
    (void)d;
    return n;
}

static void start(struct th_inproc *t, struct mux_handler *h, unsigned workers, void *app)
{
    struct mux_options o;
    mux_options_init(&o);
    snprintf(o.listen[0], sizeof(o.listen[0]), "127.0.0.1:0");
    o.workers = workers;
    o.log_level = MUX_LOG_WARN;
    o.shutdown_grace_ms = 2000;
    if (!h->on_read)
        h->on_read = noop_read;
    assert_int_equal(th_inproc_start(t, &o, h, app), 0);
}

/* Posts from the test thread, retrying while the queue is full or run()
 * has not started the workers yet (bounded). */
static void post(struct th_inproc *t, unsigned k, mux_post_fn fn, void *arg)
{
    long long deadline = th_now_ms() + 10000;
    int rc;
    while (((rc = mux_server_post(t->s, k, fn, arg)) == -EAGAIN || rc == -ESHUTDOWN) &&
           th_now_ms() < deadline)
        sched_yield();
    assert_int_equal(rc, 0);
}

/* ---- hooks ---- */

struct hooks_app {
    atomic_int started, stopped, checked, errors;
    pthread_t threads[4];
};

struct per_worker {
    unsigned index;
    pthread_t thread;
};

static void hk_start(struct mux_worker *w)
{
    struct hooks_app *a = mux_worker_app(w);
    struct per_worker *pw = malloc(sizeof(*pw));
    pw->index = mux_worker_index(w);
    pw->thread = pthread_self();
    if (mux_worker_data(w) != NULL)
        atomic_fetch_add(&a->errors, 1);
    mux_worker_set_data(w, pw);
    atomic_fetch_add(&a->started, 1);
}

static void hk_stop(struct mux_worker *w)
{
    struct hooks_app *a = mux_worker_app(w);
    struct per_worker *pw = mux_worker_data(w);
    if (!pw || pw->index != mux_worker_index(w) || !pthread_equal(pw->thread, pthread_self()))
        atomic_fetch_add(&a->errors, 1);
    free(pw);
    atomic_fetch_add(&a->stopped, 1);
}

static void hk_check(struct mux_worker *w, void *arg)
{
    struct hooks_app *a = arg;
    struct per_worker *pw = mux_worker_data(w);
    if (!pw || pw->index != mux_worker_index(w) || !pthread_equal(pw->thread, pthread_self()))
        atomic_fetch_add(&a->errors, 1);
    atomic_fetch_add(&a->checked, 1);
    signal_all();
}

static void test_hooks(void **state)
{
    struct hooks_app a = {0};
    struct mux_handler h = {.on_worker_start = hk_start, .on_worker_stop = hk_stop};
    struct th_inproc t;
    start(&t, &h, 3, &a);
    assert_int_equal(wait_for(&a.started, 3, 5000), 0);
    assert_int_equal(mux_server_post_all(t.s, hk_check, &a), 3);
    assert_int_equal(wait_for(&a.checked, 3, 5000), 0);
    assert_int_equal(mux_server_post(t.s, 3, hk_check, &a), -EINVAL);
    assert_int_equal(th_inproc_stop(&t), 0);
    assert_int_equal(atomic_load(&a.started), 3);
    assert_int_equal(atomic_load(&a.stopped), 3);
    assert_int_equal(atomic_load(&a.errors), 0);
}

/* ---- timers: random one-shots, cancels, order ---- */

enum { NT = 300 };

struct order_app {
    struct mux_worker *w;
    uint64_t ids[NT];
    uint64_t due[NT];
    int fired[NT];
    bool cancelled[NT];
    int cancel_target[NT]; /* fired timer i cancels this one (or -1) */
    uint64_t last_due;
    int early, out_of_order, double_fire, fired_cancelled;
    atomic_int done;
};

struct order_arg {
    struct order_app *a;
    int i;
};
static struct order_arg order_args[NT + 1];

static void order_fire(struct mux_worker *w, void *arg)
{
    struct order_arg *oa = arg;
    struct order_app *a = oa->a;
    int i = oa->i;
    uint64_t now = mux_worker_now_ms(w);
    if (i == NT) { /* the sentinel, due after every other */
        atomic_store(&a->done, 1);
        signal_all();
        return;
    }
    if (a->fired[i]++)
        a->double_fire++;
    if (a->cancelled[i])
        a->fired_cancelled++;
    if (now < a->due[i])
        a->early++;
    if (a->due[i] < a->last_due)
        a->out_of_order++;
    a->last_due = a->due[i];
    int j = a->cancel_target[i];
    if (j >= 0 && !a->cancelled[j] && !a->fired[j]) {
        if (!mux_timer_cancel(w, a->ids[j]))
            a->fired_cancelled++; /* it was live: cancel must say so */
        a->cancelled[j] = true;
    }
}

static void order_setup(struct mux_worker *w, void *arg)
{
    struct order_app *a = arg;
    uint64_t now = mux_worker_now_ms(w);
    uint64_t max_due = now;
    for (int i = 0; i < NT; i++) {
        unsigned delay = (unsigned)(rnd() % 80);
        order_args[i] = (struct order_arg){a, i};
        a->due[i] = now + delay;
        a->cancel_target[i] = rnd() % 4 == 0 ? (int)(rnd() % NT) : -1;
        a->ids[i] = mux_timer_start(w, delay, 0, order_fire, &order_args[i]);
        if (a->due[i] > max_due)
            max_due = a->due[i];
    }
    for (int i = 0; i < NT; i++)
        if (rnd() % 3 == 0) {
            bool ok = mux_timer_cancel(w, a->ids[i]);
            a->cancelled[i] = true;
            if (!ok || mux_timer_cancel(w, a->ids[i])) /* live once, then stale */
                a->fired_cancelled++;
        }
    order_args[NT] = (struct order_arg){a, NT};
    mux_timer_start(w, (unsigned)(max_due - now) + 5, 0, order_fire, &order_args[NT]);
}

static void test_timer_order_and_cancel(void **state)
{
    struct order_app *a = calloc(1, sizeof(*a));
    struct mux_handler h = {0};
    struct th_inproc t;
    start(&t, &h, 1, a);
    post(&t, 0, order_setup, a);
    assert_int_equal(wait_for(&a->done, 1, 10000), 0);
    assert_int_equal(th_inproc_stop(&t), 0);
    int fired = 0, should = 0;
    for (int i = 0; i < NT; i++) {
        fired += a->fired[i] > 0;
        should += !a->cancelled[i];
        if (!a->cancelled[i] && !a->fired[i])
            fail_msg("timer %d neither fired nor was cancelled", i);
    }
    assert_int_equal(fired, should);
    assert_int_equal(a->early, 0);
    assert_int_equal(a->out_of_order, 0);
    assert_int_equal(a->double_fire, 0);
    assert_int_equal(a->fired_cancelled, 0);
    free(a);
}

/* ---- repeating, self-cancel, stale ids ---- */

struct rep_app {
    uint64_t rep_id, once_id, old_id, new_id;
    int rep_count, once_count, new_count, errors;
    atomic_int done;
};

static void rep_sentinel(struct mux_worker *w, void *arg)
{
    struct rep_app *a = arg;
    (void)w;
    atomic_store(&a->done, 1);
    signal_all();
}

static void rep_new(struct mux_worker *w, void *arg)
{
    struct rep_app *a = arg;
    (void)w;
    a->new_count++;
}

static void rep_once(struct mux_worker *w, void *arg)
{
    struct rep_app *a = arg;
    a->once_count++;
    if (mux_timer_cancel(w, a->once_id)) /* already fired: a stale id */
        a->errors++;
    /* the freed slot is reused now; the old id must not reach the new timer */
    a->old_id = a->once_id;
    a->new_id = mux_timer_start(w, 5, 0, rep_new, a);
    if (a->new_id == a->old_id || mux_timer_cancel(w, a->old_id))
        a->errors++;
    mux_timer_start(w, 40, 0, rep_sentinel, a);
}

static void rep_tick(struct mux_worker *w, void *arg)
{
    struct rep_app *a = arg;
    if (++a->rep_count == 3) {
        if (!mux_timer_cancel(w, a->rep_id)) /* inside its own callback */
            a->errors++;
        a->once_id = mux_timer_start(w, 0, 0, rep_once, a);
    }
}

static void rep_setup(struct mux_worker *w, void *arg)
{
    struct rep_app *a = arg;
    a->rep_id = mux_timer_start(w, 1, 2, rep_tick, a);
    if (a->rep_id == 0 || mux_timer_start(w, 1, 0, NULL, a) != 0)
        a->errors++;
}

static void test_timer_repeat_and_stale_ids(void **state)
{
    struct rep_app a = {0};
    struct mux_handler h = {0};
    struct th_inproc t;
    start(&t, &h, 1, &a);
    post(&t, 0, rep_setup, &a);
    assert_int_equal(wait_for(&a.done, 1, 10000), 0);
    assert_int_equal(th_inproc_stop(&t), 0);
    assert_int_equal(a.rep_count, 3);
    assert_int_equal(a.once_count, 1);
    assert_int_equal(a.new_count, 1);
    assert_int_equal(a.errors, 0);
}

/* ---- timers and connections; timers at worker stop ---- */

struct conn_timer_app {
    atomic_int ticks_after_stop, stopped, errors, closes, cancelled_live, setups;
};

struct ct_conn {
    struct mux_conn *c;
    uint64_t id;
};

static void ct_tick(struct mux_worker *w, void *arg)
{
    struct ct_conn *cc = arg;
    (void)w;
    mux_conn_send(cc->c, "tick", 4);
    mux_conn_close(cc->c);
}

static int ct_accept(struct mux_conn *c)
{
    struct ct_conn *cc = calloc(1, sizeof(*cc));
    cc->c = c;
    cc->id = mux_timer_start(mux_conn_worker_ctx(c), 30, 0, ct_tick, cc);
    mux_conn_set_data(c, cc);
    return 0;
}

static size_t ct_read(struct mux_conn *c, const char *d, size_t n)
{
    (void)d;
    mux_conn_close(c); /* before the timer: on_close cancels it */
    return n;
}

static void ct_close(struct mux_conn *c, int err)
{
    struct conn_timer_app *a = mux_conn_app(c);
    struct ct_conn *cc = mux_conn_data(c);
    (void)err;
    if (mux_timer_cancel(mux_conn_worker_ctx(c), cc->id))
        atomic_fetch_add(&a->cancelled_live, 1);
    free(cc);
    atomic_fetch_add(&a->closes, 1);
    signal_all();
}

static void ct_forever(struct mux_worker *w, void *arg)
{
    struct conn_timer_app *a = arg;
    (void)w;
    if (atomic_load(&a->stopped))
        atomic_fetch_add(&a->ticks_after_stop, 1);
}

static void ct_start(struct mux_worker *w)
{
    struct conn_timer_app *a = mux_worker_app(w);
    if (!mux_timer_start(w, 1, 1, ct_forever, a) || !mux_timer_start(w, 3600000, 0, ct_forever, a))
        atomic_fetch_add(&a->errors, 1);
    atomic_fetch_add(&a->setups, 1);
    signal_all();
}

static void ct_stop(struct mux_worker *w)
{
    struct conn_timer_app *a = mux_worker_app(w);
    atomic_store(&a->stopped, 1);
    if (mux_timer_start(w, 0, 0, ct_forever, a) != 0) /* refused after the stop */
        atomic_fetch_add(&a->errors, 1);
}

static void test_timers_with_conns_and_stop(void **state)
{
    struct conn_timer_app a = {0};
    struct mux_handler h = {.on_accept = ct_accept, .on_read = ct_read, .on_close = ct_close,
                            .on_worker_start = ct_start, .on_worker_stop = ct_stop};
    struct th_inproc t;
    start(&t, &h, 1, &a);
    assert_int_equal(wait_for(&a.setups, 1, 5000), 0);
    int ticked = th_connect_tcp(t.host, t.port);
    int closer = th_connect_tcp(t.host, t.port);
    assert_true(ticked >= 0 && closer >= 0);
    assert_int_equal(th_write_all(closer, "x", 1, 5000), 0);
    char buf[8];
    assert_int_equal(th_read_exact(ticked, buf, 4, 5000), 4);
    assert_memory_equal(buf, "tick", 4);
    assert_int_equal(th_wait_eof(ticked, 5000), 0);
    assert_int_equal(th_wait_eof(closer, 5000), 0);
    assert_int_equal(wait_for(&a.closes, 2, 5000), 0);
    assert_int_equal(atomic_load(&a.cancelled_live), 1); /* the closer's; the other had fired */
    close(ticked);
    close(closer);
    assert_int_equal(th_inproc_stop(&t), 0);
    assert_int_equal(atomic_load(&a.ticks_after_stop), 0);
    assert_int_equal(atomic_load(&a.errors), 0);
}

/* ---- the posts ring alone ---- */

static void nop_post(struct mux_worker *w, void *arg)
{
    (void)w;
    (void)arg;
}

static void test_ring_wake_fifo_full_closed(void **state)
{
    struct mux__posts q;
    memset(&q, 0, sizeof(q));
    assert_int_equal(mux__posts_init(&q, 8), 0);
    bool wake = false;
    assert_int_equal(mux__posts_push(&q, nop_post, NULL, &wake), -ESHUTDOWN); /* not open yet */
    mux__posts_open(&q);
    int wakes = 0;
    for (uintptr_t i = 0; i < 8; i++) {
        wake = false;
        assert_int_equal(mux__posts_push(&q, nop_post, (void *)i, &wake), 0);
        wakes += wake;
    }
    assert_int_equal(wakes, 1); /* one wake-up for the batch */
    assert_int_equal(mux__posts_push(&q, nop_post, NULL, &wake), -EAGAIN);
    mux__posts_rearm(&q);
    mux_post_fn fn;
    void *arg;
    for (uintptr_t i = 0; i < 8; i++) {
        assert_true(mux__posts_pop(&q, &fn, &arg));
        assert_ptr_equal(fn, nop_post);
        assert_int_equal((uintptr_t)arg, i);
    }
    assert_false(mux__posts_pop(&q, &fn, &arg));
    wake = false;
    assert_int_equal(mux__posts_push(&q, nop_post, NULL, &wake), 0);
    assert_true(wake); /* re-armed: the next post wakes again */
    mux__posts_close(&q);
    assert_int_equal(mux__posts_push(&q, nop_post, NULL, &wake), -ESHUTDOWN);
    assert_true(mux__posts_pop(&q, &fn, &arg)); /* the one before the close is still there */
    assert_false(mux__posts_pop(&q, &fn, &arg));
    mux__posts_destroy(&q);
}

/* ---- posts under contention ---- */

enum { PRODUCERS = 4, PER_PRODUCER = 20000, WORKERS = 2, WORKER_PRODUCER = PRODUCERS };

struct cont_app {
    struct th_inproc *t;
    /* per destination worker, per sender: the next expected sequence */
    uint32_t next[WORKERS][PRODUCERS + 1];
    int disorder[WORKERS];
    atomic_int finished, started;
};
static struct cont_app cont;

static void cont_fn(struct mux_worker *w, void *arg)
{
    uintptr_t v = (uintptr_t)arg;
    unsigned k = mux_worker_index(w);
    unsigned p = (unsigned)(v >> 24);
    uint32_t seq = (uint32_t)(v & 0xffffff);
    if (seq != cont.next[k][p]) {
        if (cont.disorder[k]++ < 5)
            fprintf(stderr, "worker %u sender %u: got %u, expected %u\n", k, p, seq,
                    cont.next[k][p]);
    }
    cont.next[k][p] = seq + 1;
    if (seq + 1 == PER_PRODUCER) {
        atomic_fetch_add(&cont.finished, 1);
        signal_all();
    }
}

static void *cont_producer(void *arg)
{
    uintptr_t p = (uintptr_t)arg;
    long long deadline = th_now_ms() + 20000LL * th_slowdown();
    for (uint32_t seq = 0; seq < PER_PRODUCER; seq++)
        for (unsigned k = 0; k < WORKERS; k++)
            while (mux_server_post(cont.t->s, k, cont_fn, (void *)(p << 24 | seq)) == -EAGAIN &&
                   th_now_ms() < deadline)
                sched_yield();
    return NULL;
}

/* Worker 0 as a sender too: it posts to both workers (itself included)
 * from a timer, as far as the queues take, then again on the next tick. */
static uint32_t worker_seq;
static uint64_t worker_timer;

static void cont_worker_tick(struct mux_worker *w, void *arg)
{
    (void)arg;
    while (worker_seq < PER_PRODUCER) {
        uintptr_t v = (uintptr_t)WORKER_PRODUCER << 24 | worker_seq;
        /* all-or-retry per sequence number keeps each destination's order */
        static unsigned posted_to;
        while (posted_to < WORKERS &&
               mux_server_post(mux_worker_server(w), posted_to, cont_fn, (void *)v) == 0)
            posted_to++;
        if (posted_to < WORKERS)
            return; /* full: next tick */
        posted_to = 0;
        worker_seq++;
    }
    mux_timer_cancel(w, worker_timer);
}

static void cont_worker_start(struct mux_worker *w, void *arg)
{
    (void)arg;
    worker_timer = mux_timer_start(w, 0, 1, cont_worker_tick, NULL);
}

static void cont_started(struct mux_worker *w)
{
    (void)w;
    atomic_fetch_add(&cont.started, 1);
    signal_all();
}

static void test_posts_under_contention(void **state)
{
    memset(&cont, 0, sizeof(cont));
    worker_seq = 0;
    struct mux_handler h = {.on_worker_start = cont_started};
    struct th_inproc t;
    cont.t = &t;
    start(&t, &h, WORKERS, NULL);
    assert_int_equal(wait_for(&cont.started, WORKERS, 5000), 0); /* posts are accepted now */
    post(&t, 0, cont_worker_start, NULL);
    pthread_t th[PRODUCERS];
    for (uintptr_t p = 0; p < PRODUCERS; p++)
        pthread_create(&th[p], NULL, cont_producer, (void *)p);
    for (int p = 0; p < PRODUCERS; p++)
        pthread_join(th[p], NULL);
    assert_int_equal(wait_for(&cont.finished, (PRODUCERS + 1) * WORKERS, 20000), 0);
    assert_int_equal(th_inproc_stop(&t), 0);
    for (int k = 0; k < WORKERS; k++) {
        assert_int_equal(cont.disorder[k], 0);
        for (int p = 0; p <= PRODUCERS; p++)
            assert_int_equal(cont.next[k][p], PER_PRODUCER); /* each exactly once */
    }
}

/* ---- a full queue, and shutdown with posts pending ---- */

struct gate_app {
    atomic_int entered, open, ran, order_errors, ran_at_stop, stopped, late;
    int next;
};

static void gate_fn(struct mux_worker *w, void *arg)
{
    struct gate_app *a = arg;
    (void)w;
    atomic_store(&a->entered, 1);
    signal_all();
    long long deadline = th_now_ms() + 10000LL * th_slowdown();
    while (!atomic_load(&a->open) && th_now_ms() < deadline)
        sched_yield(); /* test only: holds the worker so its queue fills */
}

static struct gate_app *gate_app_for_counted;

static void counted_fn(struct mux_worker *w, void *arg)
{
    struct gate_app *a = gate_app_for_counted;
    (void)w;
    if ((intptr_t)arg != a->next++)
        atomic_fetch_add(&a->order_errors, 1);
    if (atomic_load(&a->stopped))
        atomic_fetch_add(&a->late, 1);
    atomic_fetch_add(&a->ran, 1);
    signal_all();
}

static void gate_stop(struct mux_worker *w)
{
    struct gate_app *a = mux_worker_app(w);
    atomic_store(&a->ran_at_stop, atomic_load(&a->ran));
    atomic_store(&a->stopped, 1);
}

static void test_full_queue(void **state)
{
    struct gate_app a = {0};
    gate_app_for_counted = &a;
    struct mux_handler h = {0};
    struct th_inproc t;
    start(&t, &h, 1, &a);
    post(&t, 0, gate_fn, &a);
    assert_int_equal(wait_for(&a.entered, 1, 5000), 0);
    int accepted = 0, rc;
    while ((rc = mux_server_post(t.s, 0, counted_fn, (void *)(intptr_t)accepted)) == 0)
        accepted++;
    assert_int_equal(rc, -EAGAIN);
    assert_int_equal(accepted, MUX_POST_QUEUE);
    atomic_store(&a.open, 1);
    assert_int_equal(wait_for(&a.ran, accepted, 10000), 0);
    /* room again */
    assert_int_equal(mux_server_post(t.s, 0, counted_fn, (void *)(intptr_t)accepted), 0);
    assert_int_equal(wait_for(&a.ran, accepted + 1, 5000), 0);
    assert_int_equal(th_inproc_stop(&t), 0);
    assert_int_equal(atomic_load(&a.order_errors), 0);
}

static void test_posts_pending_at_shutdown(void **state)
{
    struct gate_app a = {0};
    gate_app_for_counted = &a;
    struct mux_handler h = {.on_worker_stop = gate_stop};
    struct th_inproc t;
    start(&t, &h, 1, &a);
    post(&t, 0, gate_fn, &a);
    assert_int_equal(wait_for(&a.entered, 1, 5000), 0);
    enum { K = 1000 };
    for (intptr_t i = 0; i < K; i++)
        assert_int_equal(mux_server_post(t.s, 0, counted_fn, (void *)i), 0);
    mux_server_stop(t.s); /* the worker is busy: the posts are still queued */
    atomic_store(&a.open, 1);
    pthread_join(t.thread, NULL);
    assert_int_equal(t.run_rc, 0);
    assert_int_equal(atomic_load(&a.ran), K);
    assert_int_equal(atomic_load(&a.ran_at_stop), K); /* all before on_worker_stop */
    assert_int_equal(atomic_load(&a.late), 0);
    assert_int_equal(atomic_load(&a.order_errors), 0);
    assert_int_equal(mux_server_post(t.s, 0, counted_fn, NULL), -ESHUTDOWN);
    mux_server_free(t.s);
}

int main(void)
{
    const char *s = getenv("MUX_TEST_SEED");
    seed = s ? strtoull(s, NULL, 0) : (unsigned long long)time(NULL) * 2654435761ull;
    if (!seed)
        seed = 1;
    printf("seed %llu (MUX_TEST_SEED replays)\n", seed);
    mux_log_setup(MUX_LOG_WARN, "test");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hooks),
        cmocka_unit_test(test_timer_order_and_cancel),
        cmocka_unit_test(test_timer_repeat_and_stale_ids),
        cmocka_unit_test(test_timers_with_conns_and_stop),
        cmocka_unit_test(test_ring_wake_fifo_full_closed),
        cmocka_unit_test(test_posts_under_contention),
        cmocka_unit_test(test_full_queue),
        cmocka_unit_test(test_posts_pending_at_shutdown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
