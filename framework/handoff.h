/* handoff.h - the acceptor-to-worker queue (private): the only cross-thread
 * data path. A single-producer single-consumer ring of accepted fds plus an
 * eventfd the acceptor writes once per batch. Slots are preallocated, so a
 * handoff never allocates; a full ring refuses the fd instead. */
#ifndef MUX_HANDOFF_H
#define MUX_HANDOFF_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct mux__handoff {
    _Alignas(64) atomic_size_t head; /* next slot to pop: written by the worker */
    _Alignas(64) atomic_size_t tail; /* next slot to fill: written by the acceptor */
    _Alignas(64) size_t mask;
    int *slots;
    int wake_fd; /* eventfd, EFD_NONBLOCK */
};

/* capacity is rounded up to a power of two. 0 or a negative errno. */
int mux__handoff_init(struct mux__handoff *h, size_t capacity);

/* Closes fds still queued and the eventfd. Only when both sides stopped. */
void mux__handoff_destroy(struct mux__handoff *h);

/* Producer (acceptor) only. false when full. */
bool mux__handoff_push(struct mux__handoff *h, int fd);

/* Any thread: wakes the consumer (one eventfd write). Async-signal-safe. */
void mux__handoff_wake(struct mux__handoff *h);

/* Consumer (worker) only: the next fd, or -1 when empty. */
int mux__handoff_pop(struct mux__handoff *h);

/* Consumer only: resets the eventfd after a wake-up. */
void mux__handoff_ack(struct mux__handoff *h);

#endif
