/* uring.h - what the completion path (conn_uring.c) uses of the uring
 * poller's ring (private). One thread only: the worker that owns the
 * poller, after its first wait (the ring is made there).
 *
 * An operation is a struct mux__uop embedded in whatever it works for; its
 * completion comes back from wait() as a MUX_EV_DONE event whose ptr is the
 * op. Provided buffers: one ring of URING_BUFS buffers of URING_BUF_SIZE
 * bytes per worker (group URING_BGID); a completion that used one names it
 * in its cflags, and the buffer belongs to the caller until it is given
 * back with mux__uring_recycle(). */
#ifndef MUX_URING_H
#define MUX_URING_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "poller.h"

#define URING_BGID 0
#define URING_BUF_SIZE 2048u
#define URING_BUFS 1024u /* a power of two; 2 MiB per worker */

struct mux__uop {
    uint8_t kind;    /* the owner's: what the op is */
    uint8_t armed;   /* in flight: a completion without F_MORE is still due */
    uint8_t cancel;  /* a cancellation was submitted */
    void *owner;
};

struct io_uring_sqe;

/* What a sendmsg reads until it completes: lent from a per-worker pool
 * for that time only, so an idle connection holds none. */
#define URING_MAX_IOV 64
struct mux__usend {
    struct mux__usend *next; /* in the pool's free list */
    struct mux__usend *all;  /* every block the pool made */
    struct msghdr msg;
    struct iovec iov[URING_MAX_IOV];
};

/* A block (NULL when out of memory), and giving it back. */
struct mux__usend *mux__uring_send_block(struct mux__poller *p);
void mux__uring_send_block_put(struct mux__poller *p, struct mux__usend *b);

/* The completion path can be used: the ring and its buffers are set up. */
bool mux__uring_ready(struct mux__poller *p);

/* A free SQE (never NULL: a full SQ is submitted first). The caller preps
 * it; mux__uring_tag() sets user_data so the completion comes back as op. */
struct io_uring_sqe *mux__uring_sqe(struct mux__poller *p);
void mux__uring_tag(struct io_uring_sqe *sqe, struct mux__uop *op);

/* Submits the queued SQEs now (before the caller closes an fd they name). */
void mux__uring_submit(struct mux__poller *p);

/* Asks the kernel to cancel op (its completion still comes, -ECANCELED or
 * a last result). The cancellation's own result comes back as `by` when
 * given (then submitted by the caller's accounting), else is ignored. */
void mux__uring_cancel(struct mux__poller *p, struct mux__uop *op, struct mux__uop *by);

/* Buffer bid of the provided ring, and giving it back. */
char *mux__uring_buffer(struct mux__poller *p, unsigned bid);
void mux__uring_recycle(struct mux__poller *p, unsigned bid);

#endif
