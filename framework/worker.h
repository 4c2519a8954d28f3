/* worker.h - a worker thread and the state it owns (private).
 *
 * Everything here except `handoff`, `stop_requested` and `pub` is touched
 * by the worker's own thread only. The loop itself is mux__worker_run() in
 * worker.c. */
#ifndef MUX_WORKER_H
#define MUX_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bufpool.h"
#include "handoff.h"
#include "list.h"
#include "mux/conn.h"
#include "mux/server.h"
#include "poller.h"
#include "timer.h"

struct mux__counters {
    uint64_t accepted, open, closed, bytes_in, bytes_out;
};

struct mux__worker {
    unsigned index;
    struct mux_server *srv;
    const struct mux_options *opts;    /* the server's copy, read-only */
    const struct mux_handler *handler; /* likewise */
    void *app;
    pthread_t thread;

    const struct mux__poller_ops *pops;
    struct mux__poller *poller;
    struct mux__handoff handoff;       /* shared with the acceptor */
    struct mux__timers timers;
    struct mux__bufpool inpool, outpool;

    struct mux_list conns;   /* every connection not yet freed */
    struct mux_list pending; /* connections with deferred work (conn.c) */
    struct mux_list dead;    /* finished, freed at the end of the iteration */

    uint64_t now_ms;          /* monotonic, read once per loop iteration */
    uint64_t last_trim_ms;    /* buffer pools last trimmed */
    uint64_t stop_deadline;   /* when stopping: end of the grace period */
    bool stopping;
    atomic_bool stop_requested; /* set by the main thread, then a wake */

    struct mux__counters local; /* plain counters, this thread only */
    struct {                    /* published copies for mux_server_stats() */
        _Atomic uint64_t accepted, open, closed, bytes_in, bytes_out;
    } pub;
};

/* Main thread: set up / tear down (not running). 0 or a negative errno. */
int mux__worker_init(struct mux__worker *w, struct mux_server *srv, unsigned index);
void mux__worker_destroy(struct mux__worker *w);

/* The thread body. */
void *mux__worker_run(void *arg);

/* Any thread: ask the worker to begin its graceful shutdown. */
void mux__worker_request_stop(struct mux__worker *w);

/* Worker thread: queue c for mux__conn_process() before the next wait. */
void mux__worker_defer(struct mux__worker *w, struct mux_conn *c);

#endif
