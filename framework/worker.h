/* worker.h - a worker thread and the state it owns (private).
 *
 * Everything here except `handoff`, `posts`, `stop_requested` and `pub` is
 * touched by the worker's own thread only. The loop itself is mux__worker_run() in
 * worker.c. */
#ifndef MUX_WORKER_H
#define MUX_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bufpool.h"
#include "connpool.h"
#include "handoff.h"
#include "list.h"
#include "mux/conn.h"
#include "mux/server.h"
#include "poller.h"
#include "post.h"
#include "timer.h"
#include "utimer.h"

/* err as given to on_close -> enum mux_close_reason (mux/server.h). */
unsigned mux__close_reason_index(int err);

/* The counters of struct mux_worker_stats, written by the worker only. */
struct mux__counters {
    uint64_t accepted, open, closed, bytes_in, bytes_out;
    uint64_t bytes_queued, backpressure_pauses;
    uint64_t closed_by[MUX_CLOSE_REASONS];
    uint64_t late_resets; /* input arrived after a shutdown close: reset */
    uint64_t refused;     /* the poller could not watch the fd */
    uint64_t tls_handshakes, tls_failures; /* TLS handshakes completed, failed or timed out */
};

struct mux__worker {
    unsigned index;
    struct mux_server *srv;
    const struct mux_options *opts;    /* = &own_opts */
    struct mux_options own_opts;       /* this worker's copy: reloads replace it between turns */
    _Atomic(struct mux_options *) reload_opts; /* main thread -> worker: a new copy to take */
    const struct mux_handler *handler; /* likewise */
    void *app;
    pthread_t thread;
    pthread_t tid;        /* set by the worker itself: the owner check reads it */

    const struct mux__poller_ops *pops;
    struct mux__poller *poller;
    struct mux__handoff handoff;       /* shared with the acceptor */
    struct mux__timers timers;
    struct mux__bufpool inpool, outpool;
    struct ssl_ctx_st *tls;                      /* TLS context for new connections, or NULL */
    _Atomic(struct ssl_ctx_st *) tls_reload;     /* main thread -> worker: a reloaded one (tls.c) */
    unsigned char *tls_buf;                      /* one TLS record of scratch, allocated on use */

    struct mux__connpool conns; /* every connection not yet freed (local.open: not released) */
    struct mux_list pending; /* connections with deferred work (conn.c) */
    struct mux_list dead;    /* finished, freed at the end of the iteration */

    uint64_t now_ms;          /* monotonic, read once per loop iteration */
    uint64_t last_trim_ms;    /* buffer pools last trimmed */
    uint64_t stop_deadline;   /* when stopping: end of the grace period */
    bool stopping;
    atomic_bool stop_requested; /* set by the main thread, then a wake */
    atomic_bool hurry_requested; /* a second signal: end the grace period now */
    uint64_t refused_logged_ms; /* rate limit for "cannot watch fd" warnings */
    uint64_t refused_unlogged;  /* refusals since the last warning */
    uint64_t wait_error_logged_ms; /* rate limit for "wait failed" errors */
    unsigned batch;             /* events the last wait returned (uring: send directly when few) */
    const struct mux__transport *completion; /* the poller's completion transport, once used */

    /* What apps reach through mux/worker.h (worker_api.c). */
    void *user_data;             /* mux_worker_set_data */
    struct mux__posts posts;     /* shared: any thread posts */
    struct mux__utimers utimers; /* mux_timer_start */
    bool started;                /* the thread ran on_worker_start */
    bool finished;               /* the loop ended: no new timers or connects */

    struct mux__counters local; /* plain counters, this thread only */
    /* Published copy for mux_server_stats(), once per loop turn: a
     * seqlock-free snapshot of relaxed atomics (each counter is monotonic or
     * a gauge, so a torn set of fields is harmless). */
    _Atomic uint64_t pub[sizeof(struct mux__counters) / sizeof(uint64_t)];
};

/* Main thread: set up / tear down (not running). 0 or a negative errno. */
int mux__worker_init(struct mux__worker *w, struct mux_server *srv, unsigned index);
void mux__worker_destroy(struct mux__worker *w);

/* The thread body. */
void *mux__worker_run(void *arg);

/* Any thread: ask the worker to begin its graceful shutdown. */
void mux__worker_request_stop(struct mux__worker *w);

/* Main thread: hand the worker a reloaded configuration (it takes the
 * reloadable keys at its next turn). *o is copied. 0 or -ENOMEM. */
int mux__worker_reload(struct mux__worker *w, const struct mux_options *o);

/* Any thread: end the grace period now (a second SIGINT/SIGTERM). */
void mux__worker_request_hurry(struct mux__worker *w);

/* Any thread: the worker's last published counters. */
void mux__worker_read_stats(const struct mux__worker *w, struct mux__counters *out);

/* Worker thread: the poller refused fd (err); logs at most once a second. */
void mux__worker_refused(struct mux__worker *w, int fd, int err);

/* Worker thread: runs the posts that are ready (bounded per turn; a self
 * wake-up brings the loop back for the rest). */
void mux__worker_run_posts(struct mux__worker *w);

/* Worker thread, after its last connection closed: cancels the app's
 * timers, refuses further posts, runs those already queued, then
 * on_worker_stop. */
void mux__worker_finish(struct mux__worker *w);

/* The public handle and back (the same object). */
static inline struct mux_worker *mux__worker_pub(struct mux__worker *w)
{
    return (struct mux_worker *)w;
}
static inline struct mux__worker *mux__worker_priv(const struct mux_worker *w)
{
    return (struct mux__worker *)w;
}

/* Worker thread: queue c for mux__conn_process() before the next wait. */
void mux__worker_defer(struct mux__worker *w, struct mux_conn *c);

#endif
