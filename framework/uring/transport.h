/* uring/transport.h - the uring transport (private to framework/uring/):
 * what the poller offers through mux__poller_ops.transport. */
#ifndef MUX_URING_TRANSPORT_H
#define MUX_URING_TRANSPORT_H

#include "transport.h"

struct mux__poller;
struct mux__ring;

extern const struct mux__transport mux__transport_uring;

/* The ring inside the worker's uring poller (uring/poller.c). */
struct mux__ring *mux__uring_ring(struct mux__poller *p);

#endif
