/* inproc.h - run a mux server inside the test process on a thread, so tests
 * can use their own handlers and read mux_server_stats(). */
#ifndef MUX_TEST_INPROC_H
#define MUX_TEST_INPROC_H

#include <pthread.h>

#include <mux/mux.h>

struct th_inproc {
    struct mux_server *s;
    pthread_t thread;
    char host[64];
    int port;
    int run_rc;
};

/* Listens (opts->listen as given, e.g. "127.0.0.1:0") and starts run() on a
 * thread with signal handling off. 0 or -1. */
int th_inproc_start(struct th_inproc *t, struct mux_options *opts,
                    const struct mux_handler *h, void *app);

/* mux_server_stop(), join, free. Returns run()'s result. */
int th_inproc_stop(struct th_inproc *t);

/* Sets o->poller (and o->edge_triggered) to the variant under test
 * (th_poller(), harness.h). */
void th_options_poller(struct mux_options *o);

/* Join and free a server the caller already stopped (mux_server_stop):
 * a second stop would end its grace period. Returns run()'s result. */
int th_inproc_join(struct th_inproc *t);

/* mux_options_init, listening on 127.0.0.1:0, with the poller (and edge
 * triggering for epoll-et) of th_poller(). */
void th_inproc_options(struct mux_options *o);

#endif
