/* worker.c - a worker thread and THE loop:
 *
 *   wait for readiness (timeout: next timer, 0 if work is pending)
 *   -> dispatch each event to its connection (or drain the handoff queue)
 *   -> run deferred work (flushes, resumed input, closes)
 *   -> fire due timers
 *   -> free connections closed during this iteration
 *
 * Connections never leave the worker, so nothing here takes a lock. */
#include <errno.h>
#include <stdlib.h>
#include <sys/select.h>
#include <string.h>

#include "clock.h"
#include "compiler.h"
#include "conn.h"
#include "transport.h"
#include "mux/log.h"
#include "server_priv.h"
#include "tls/tls.h"
#include "worker.h"

#define EVENTS_PER_WAIT 256
#define OUTQ_CHUNK (16u << 10)
#define POOL_KEEP 64 /* free blocks a worker keeps per pool at the least */
#define TRIM_EVERY_MS 1000 /* pools give back what the last period did not need */

/* The wake eventfd is registered with this pointer instead of a conn. */
static char wake_marker;

int mux__worker_init(struct mux__worker *w, struct mux_server *srv, unsigned index)
{
    /* *w is zeroed by the server's calloc; the published counters are not
     * written here because mux_server_stats() may read them at any time. */
    w->index = index;
    w->srv = srv;
    w->own_opts = srv->opts;
    w->opts = &w->own_opts;
    atomic_init(&w->reload_opts, NULL);
    w->handler = &srv->handler;
    w->app = srv->app;
    w->pops = mux__poller_find(srv->poller);
    if (!w->pops)
        return -EINVAL;
    mux__connpool_init(&w->conns);
    mux_list_init(&w->pending);
    mux_list_init(&w->dead);
    mux__timers_init(&w->timers);
    mux__bufpool_init(&w->inpool, MUX__INBUF_BLOCK(srv->opts.read_buffer), POOL_KEEP);
    mux__bufpool_init(&w->outpool, OUTQ_CHUNK, POOL_KEEP);
    atomic_init(&w->stop_requested, false);
    atomic_init(&w->hurry_requested, false);
    mux__utimers_init(&w->utimers);
    int rc = mux__posts_init(&w->posts, MUX_POST_QUEUE);
    if (rc < 0)
        return rc;
    rc = mux__handoff_init(&w->handoff, 4096);
    if (rc < 0)
        goto fail_posts;
    rc = w->pops->create(&w->poller, srv->opts.edge_triggered);
    if (rc < 0)
        goto fail_handoff;
    rc = w->pops->add(w->poller, w->handoff.wake_fd, &wake_marker, MUX_EV_READ);
    if (rc < 0)
        goto fail_poller;
    mux__posts_open(&w->posts); /* posts wait in the ring until the thread runs */
    mux__tls_worker_init(w, srv->tls);
    return 0;
fail_poller:
    w->pops->destroy(w->poller);
fail_handoff:
    mux__handoff_destroy(&w->handoff);
fail_posts:
    mux__posts_destroy(&w->posts);
    return rc;
}

void mux__worker_destroy(struct mux__worker *w)
{
    free(atomic_exchange(&w->reload_opts, NULL));
    mux__tls_worker_destroy(w);
    w->pops->destroy(w->poller);
    mux__handoff_destroy(&w->handoff);
    mux__timers_destroy(&w->timers);
    mux__worker_finish(w); /* a worker whose thread never ran: posts queued to it still run */
    mux__utimers_destroy(&w->utimers);
    mux__posts_destroy(&w->posts);
    mux__bufpool_destroy(&w->inpool);
    mux__bufpool_destroy(&w->outpool);
    mux__connpool_destroy(&w->conns);
}

void mux__worker_request_stop(struct mux__worker *w)
{
    atomic_store_explicit(&w->stop_requested, true, memory_order_release);
    mux__handoff_wake(&w->handoff);
}

int mux__worker_reload(struct mux__worker *w, const struct mux_options *o)
{
    struct mux_options *copy = malloc(sizeof(*copy));
    if (!copy)
        return -ENOMEM;
    *copy = *o;
    free(atomic_exchange_explicit(&w->reload_opts, copy, memory_order_acq_rel));
    mux__handoff_wake(&w->handoff);
    return 0;
}

/* A reload: the whole copy is replaced; the keys that cannot change live
 * were kept equal to the running ones by the main thread. Water marks and
 * max_input apply from now on, idle_timeout_ms to new connections. */
static void take_reload(struct mux__worker *w)
{
    mux__tls_worker_take(w); /* a reloaded certificate, for new connections */
    struct mux_options *n = atomic_exchange_explicit(&w->reload_opts, NULL, memory_order_acq_rel);
    if (!n)
        return;
    w->own_opts = *n;
    free(n);
}

void mux__worker_request_hurry(struct mux__worker *w)
{
    atomic_store_explicit(&w->hurry_requested, true, memory_order_release);
    mux__handoff_wake(&w->handoff);
}

MUX_API const char *mux_close_reason_name(unsigned reason)
{
    static const char *const names[MUX_CLOSE_REASONS] = {
        "orderly", "reset", "timeout", "max_input", "aborted", "shutdown", "error"};
    return reason < MUX_CLOSE_REASONS ? names[reason] : "?";
}

unsigned mux__close_reason_index(int err)
{
    switch (err) {
    case 0: return MUX_CLOSE_ORDERLY;
    case ECONNRESET: case EPIPE: return MUX_CLOSE_RESET;
    case ETIMEDOUT: return MUX_CLOSE_TIMEOUT;
    case EMSGSIZE: return MUX_CLOSE_MAX_INPUT;
    case ECONNABORTED: return MUX_CLOSE_ABORTED;
    case ESHUTDOWN: return MUX_CLOSE_SHUTDOWN;
    default: return MUX_CLOSE_ERROR;
    }
}

#define REFUSED_LOG_MS 1000

void mux__worker_refused(struct mux__worker *w, int fd, int err)
{
    w->local.refused++;
    w->refused_unlogged++;
    if (w->refused_logged_ms && w->now_ms - w->refused_logged_ms < REFUSED_LOG_MS)
        return;
    if (err == ERANGE)
        mux_log(MUX_LOG_WARN, "worker %u: fd %d >= FD_SETSIZE (%d): the select poller cannot "
                "watch it; %llu connection(s) refused", w->index, fd, FD_SETSIZE,
                (unsigned long long)w->refused_unlogged);
    else
        mux_log(MUX_LOG_WARN, "worker %u: cannot watch fd %d: %s; %llu connection(s) refused",
                w->index, fd, strerror(err), (unsigned long long)w->refused_unlogged);
    w->refused_logged_ms = w->now_ms ? w->now_ms : 1;
    w->refused_unlogged = 0;
}

void mux__worker_defer(struct mux__worker *w, struct mux_conn *c)
{
    if (c->state == CONN_CLOSED)
        return; /* nothing left to do, and it is freed after this turn */
    if (!mux_list_linked(&c->pending))
        mux_list_add_tail(&w->pending, &c->pending);
}

static void publish_stats(struct mux__worker *w)
{
    const uint64_t *src = (const uint64_t *)&w->local;
    for (size_t i = 0; i < MUX_ARRAY_SIZE(w->pub); i++)
        atomic_store_explicit(&w->pub[i], src[i], memory_order_relaxed);
}

void mux__worker_read_stats(const struct mux__worker *w, struct mux__counters *out)
{
    uint64_t *dst = (uint64_t *)out;
    for (size_t i = 0; i < MUX_ARRAY_SIZE(w->pub); i++)
        dst[i] = atomic_load_explicit(&w->pub[i], memory_order_relaxed);
}

static void begin_stop(struct mux__worker *w)
{
    w->stopping = true;
    w->stop_deadline = w->now_ms + w->opts->shutdown_grace_ms;
    struct mux_conn *c = NULL;
    while ((c = mux__connpool_next(&w->conns, c)) != NULL)
        mux__conn_drain(c);
}

/* The transport a new accepted connection gets: TLS when the server has
 * a certificate (a readiness transport, on every poller), else the
 * poller's completion transport where it offers one, else plain sockets. */
static const struct mux__transport *accept_transport(struct mux__worker *w)
{
#ifdef MUX_HAVE_OPENSSL
    if (w->tls)
        return &mux__transport_tls;
#endif
    const struct mux__transport *t = w->pops->transport ? w->pops->transport(w->poller) : NULL;
    if (!t)
        return &mux__transport_socket;
    w->completion = t;
    return t;
}

/* New connections from the acceptor, and the stop request. */
static void on_wake(struct mux__worker *w)
{
    mux__handoff_ack(&w->handoff); /* before draining, so no push is missed */
    take_reload(w);
    int fd;
    while ((fd = mux__handoff_pop(&w->handoff)) >= 0)
        mux__conn_open(w, fd, accept_transport(w));
    mux__worker_run_posts(w);
    if (!w->stopping && atomic_load_explicit(&w->stop_requested, memory_order_acquire))
        begin_stop(w);
    if (w->stopping && atomic_load_explicit(&w->hurry_requested, memory_order_acquire))
        w->stop_deadline = w->now_ms; /* the loop ends this turn and resets the rest */
}

/* Deferred work queued during this iteration. Work deferred while it runs
 * goes to the next iteration, so a handler that keeps refilling cannot
 * monopolise the loop. */
static void run_pending(struct mux__worker *w)
{
    struct mux_list batch;
    mux_list_move_all(&w->pending, &batch);
    while (!mux_list_empty(&batch)) {
        struct mux_conn *c = mux_list_entry(batch.next, struct mux_conn, pending);
        mux_list_remove(&c->pending);
        mux__conn_process(c);
    }
}

static void run_timers(struct mux__worker *w)
{
    struct mux__timer *t;
    while ((t = mux__timers_pop_due(&w->timers, w->now_ms)) != NULL)
        mux__conn_timeout(container_of(t, struct mux_conn, timer));
    mux__utimers_run(&w->utimers, w->now_ms, mux__worker_pub(w));
}

static void trim_pools(struct mux__worker *w)
{
    if (w->now_ms - w->last_trim_ms < TRIM_EVERY_MS)
        return;
    w->last_trim_ms = w->now_ms;
    mux__bufpool_trim(&w->inpool);
    mux__bufpool_trim(&w->outpool);
}

static void free_dead(struct mux__worker *w)
{
    while (!mux_list_empty(&w->dead))
        mux__conn_free(mux_list_entry(w->dead.next, struct mux_conn, pending));
}

static void kill_all(struct mux__worker *w, int err)
{
    while (w->local.open > 0) { /* on_close may connect anew: those go too */
        struct mux_conn *c = NULL;
        while ((c = mux__connpool_next(&w->conns, c)) != NULL)
            if (c->state != CONN_CLOSED)
                mux__conn_kill(c, err);
    }
    free_dead(w);
}

/* A completion transport: connections freed while an operation of theirs
 * was in flight (cancelled by the release) are freed by its completion;
 * collect those before the poller goes. Bounded: a second at most. */
static void reap_orphans(struct mux__worker *w, struct mux__poll_event *ev)
{
    const struct mux__transport *t = w->completion;
    for (int i = 0; i < 100 && t && t->orphans && t->orphans(w) > 0; i++) {
        int n = w->pops->wait(w->poller, ev, EVENTS_PER_WAIT, 10);
        for (int k = 0; k < n; k++)
            if (ev[k].events & MUX_EV_DONE)
                mux__conn_complete(w, t, &ev[k]);
    }
}

#define WAIT_ERROR_LOG_MS 1000

/* The poller's wait itself failed (not EINTR): a bug or a broken
 * descriptor, nothing a connection did. Logged at most once a second;
 * the loop goes on (timers and shutdown still run). */
static void wait_failed(struct mux__worker *w, int err)
{
    if (w->wait_error_logged_ms && w->now_ms - w->wait_error_logged_ms < WAIT_ERROR_LOG_MS)
        return;
    mux_log(MUX_LOG_ERROR, "worker %u: %s wait failed: %s", w->index, w->pops->name,
            strerror(err));
    w->wait_error_logged_ms = w->now_ms ? w->now_ms : 1;
}

static int wait_timeout(struct mux__worker *w)
{
    if (!mux_list_empty(&w->pending))
        return 0;
    int t = mux__timers_timeout(&w->timers, w->now_ms);
    int u = mux__utimers_timeout(&w->utimers, w->now_ms);
    if (u >= 0 && (t < 0 || u < t))
        t = u;
    if (w->stopping) {
        int left = w->stop_deadline > w->now_ms ? (int)(w->stop_deadline - w->now_ms) : 0;
        if (t < 0 || left < t)
            t = left;
    }
    return t;
}

void *mux__worker_run(void *arg)
{
    struct mux__worker *w = arg;
    struct mux__poll_event ev[EVENTS_PER_WAIT];
    w->tid = pthread_self();
    w->now_ms = mux__clock_ms();
    w->started = true;
    if (w->handler->on_worker_start)
        w->handler->on_worker_start(mux__worker_pub(w));

    while (!(w->stopping && (w->local.open == 0 || w->now_ms >= w->stop_deadline))) {
        int n = w->pops->wait(w->poller, ev, EVENTS_PER_WAIT, wait_timeout(w));
        w->batch = n > 0 ? (unsigned)n : 0;
        w->now_ms = mux__clock_ms();
        if (n < 0)
            wait_failed(w, -n);
        for (int i = 0; i < n; i++) {
            if (ev[i].events & MUX_EV_DONE) /* the poller's completion transport */
                mux__conn_complete(w, w->completion, &ev[i]);
            else if (ev[i].ptr == &wake_marker)
                on_wake(w);
            else
                mux__conn_handle(ev[i].ptr, ev[i].events);
        }
        run_pending(w);
        run_timers(w);
        free_dead(w);
        trim_pools(w);
        publish_stats(w);
    }
    if (w->local.open > 0)
        mux_log(MUX_LOG_WARN, "worker %u: shutdown grace period over, closing the rest",
                w->index);
    kill_all(w, ESHUTDOWN);
    reap_orphans(w, ev);
    mux__worker_finish(w);
    publish_stats(w);
    mux__server_worker_exited(w->srv);
    return NULL;
}
