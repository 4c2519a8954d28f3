/* inproc.h - run a mux server inside the test process on a thread, so tests
 * can use their own handlers and read mux_server_stats(). */
#ifndef MUX_TEST_INPROC_H
#define MUX_TEST_INPROC_H

#include <pthread.h>

#include <mux/mux.h>

struct test_server {
    struct mux_server *s;
    pthread_t thread;
    char host[64];
    int port;
    int run_rc;
};

/* Listens (opts->listen as given, e.g. "127.0.0.1:0") and starts run() on a
 * thread with signal handling off. 0 or -1. */
int test_server_start(struct test_server *t, struct mux_options *opts,
                      const struct mux_handler *h, void *app);

/* mux_server_stop(), join, free. Returns run()'s result. */
int test_server_stop(struct test_server *t);

/* Join and free a server the caller already stopped (mux_server_stop):
 * a second stop would end its grace period. Returns run()'s result. */
int test_server_join(struct test_server *t);

/* The poller variant this run tests: MUX_TEST_POLLER (epoll, epoll-et,
 * poll, select, uring), default epoll. */
const char *test_poller_name(void);

/* mux_options_init, listening on 127.0.0.1:0, with the poller (and edge
 * triggering for epoll-et) of test_poller_name(). */
void test_server_options(struct mux_options *o);

#endif
