/* post.h - a worker's inbox for posts (private): a bounded multi-producer,
 * single-consumer ring of (fn, arg) cells, preallocated, lock-free.
 *
 * Each cell carries a sequence number (the ring of Vyukov's bounded queue):
 * a producer claims a position with one CAS on `tail`, fills the cell and
 * publishes it with a release store of its sequence; the consumer takes
 * cells in position order, so posts from one thread keep their order.
 * Wake-ups: `wake_pending` is set by the first post after the consumer
 * re-armed it, and only that post writes the eventfd, so a burst costs one
 * wake-up. Closing waits for posts already past the `open` check, so a post
 * is either refused or run, never stranded. */
#ifndef MUX_POST_H
#define MUX_POST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "mux/worker.h"

struct mux__post_cell {
    atomic_size_t seq;
    mux_post_fn fn;
    void *arg;
};

struct mux__posts {
    _Alignas(64) atomic_size_t tail; /* next position to claim: producers */
    _Alignas(64) size_t head;        /* next position to run: consumer only */
    size_t mask;
    struct mux__post_cell *cells;
    _Alignas(64) atomic_bool wake_pending; /* an eventfd write is on its way */
    atomic_bool open;                      /* posts accepted */
    atomic_uint inflight;                  /* producers between the open check and publish */
};

/* capacity rounded up to a power of two. *q must be zeroed beforehand
 * (the server's calloc does it): a post may race with this init, and sees
 * the queue closed until mux__posts_open. Starts closed. 0 or -ENOMEM. */
int mux__posts_init(struct mux__posts *q, size_t capacity);

/* Frees the ring; the queue must be closed and drained. */
void mux__posts_destroy(struct mux__posts *q);

/* Consumer side, before its thread can receive: accept posts from now on. */
void mux__posts_open(struct mux__posts *q);

/* Any thread. 0, -EAGAIN (full) or -ESHUTDOWN (closed). On 0, *wake says
 * whether the caller must wake the consumer. */
int mux__posts_push(struct mux__posts *q, mux_post_fn fn, void *arg, bool *wake);

/* Consumer: re-arm wake-ups; call before draining after each wake. */
void mux__posts_rearm(struct mux__posts *q);

/* Consumer: the oldest post, or false when none is ready. */
bool mux__posts_pop(struct mux__posts *q, mux_post_fn *fn, void **arg);

/* Consumer: refuse new posts and wait for producers past the open check
 * (a few instructions each), so after this every accepted post is in the
 * ring and can be drained. */
void mux__posts_close(struct mux__posts *q);

#endif
