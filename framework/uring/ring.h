/* uring/ring.h - a worker's io_uring (private to framework/uring/): the
 * ring, its provided receive buffers, the pool of sendmsg blocks, and the
 * operations submitted on it. The readiness poller (uring/poller.c) and
 * the uring transport (uring/transport.c) share one ring per worker. Built
 * only with liburing. One thread only: the worker that owns the poller,
 * after its first wait (the ring is made there).
 *
 * An operation is a struct mux__uop embedded in whatever it works for; its
 * completion comes back from the poller's wait() as a MUX_EV_DONE event
 * whose ptr is the op. Provided buffers: one ring of URING_BUFS buffers of
 * URING_BUF_SIZE bytes per worker (group URING_BGID); a completion that
 * used one names it in its cflags, and the buffer belongs to the caller
 * until it is given back with mux__ring_recycle(). */
#ifndef MUX_URING_RING_H
#define MUX_URING_RING_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define URING_BGID 0
#define URING_BUF_SIZE 2048u
#define URING_BUFS 1024u /* a power of two; 2 MiB per worker */
#define URING_MAX_IOV 64

/* The newer features a ring may use (mux__ring.feats), each probed when
 * the ring is made and left out where the kernel refuses it (or the
 * test-only switch says so, uring/features.c). */
enum {
    URING_F_DEFER = 1u << 0,   /* IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN (6.1) */
    URING_F_REGRING = 1u << 1, /* the ring fd registered: enters skip the fd lookup (5.18) */
    URING_F_DIRECT = 1u << 2,  /* connections as direct descriptors (uring/direct.c) */
    URING_F_INC = 1u << 3,     /* provided buffers consumed incrementally (6.12) */
};

/* False when the test-only switch (MUX_URING_WITHOUT) turns feature off. */
bool mux__uring_allowed(unsigned feature);
/* Logs once per process which features `used` has and which it lacks. */
void mux__uring_log_features(unsigned used);

#define URING_IGNORED UINT64_MAX /* user_data of requests whose results do not matter */
#define URING_OP_TAG (1ull << 63) /* user_data of a struct mux__uop (poll data has fd < 2^31) */

/* An operation's life; mux__uop_set() is the only writer. */
enum mux__uop_state {
    UOP_IDLE,       /* nothing in flight */
    UOP_ARMED,      /* in flight: a completion without F_MORE is still due */
    UOP_CANCELLING, /* ... and a cancellation was submitted */
    UOP_ORPHANED,   /* ... and its owner was freed: the last completion frees it */
};

struct mux__uop {
    uint8_t kind;  /* the owner's: what the op is */
    uint8_t state; /* enum mux__uop_state */
    void *owner;
};

/* Changes op's state, logging at debug level. */
void mux__uop_set(struct mux__uop *op, enum mux__uop_state to, const char *why);

static inline bool mux__uop_busy(const struct mux__uop *op)
{
    return op->state != UOP_IDLE;
}

/* What a sendmsg reads until it completes: lent from the pool for that
 * time only, so an idle connection holds none. */
struct mux__usend {
    struct mux__usend *next; /* in the pool's free list */
    struct mux__usend *all;  /* every block the pool made */
    struct msghdr msg;
    struct iovec iov[URING_MAX_IOV];
};

struct mux__ring {
    struct io_uring ring;
    int rc;             /* 0: not made yet, 1: ready, < 0: could not be made */
    unsigned feats;     /* URING_F_* in use */
    struct io_uring_buf_ring *br; /* provided buffers: the ring, then the buffers */
    char *bufs;
    size_t br_size;     /* bytes mapped at br */
    unsigned returned;  /* buffers given back since the last wait */
    struct mux__usend *send_free, *send_all;
    bool sleep_in_poll; /* under valgrind: see mux__ring_wait() */
    unsigned orphans;   /* connections freed while an op of theirs was in flight */
};

/* Makes the ring on first use (the calling thread becomes its single
 * issuer). 0 or a negative errno (logged). */
int mux__ring_ready(struct mux__ring *r);

/* Cancels everything and tears the ring down. */
void mux__ring_destroy(struct mux__ring *r);

/* The provided buffers are there: receives can use them. */
static inline bool mux__ring_has_buffers(const struct mux__ring *r)
{
    return r->rc == 1 && r->br != NULL;
}

/* A free SQE (never NULL: a full SQ is submitted first). */
struct io_uring_sqe *mux__ring_sqe(struct mux__ring *r);

/* user_data so the completion comes back as op. */
static inline void mux__ring_tag(struct io_uring_sqe *sqe, struct mux__uop *op)
{
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op | URING_OP_TAG);
}

/* Submits the queued SQEs now (before the caller closes an fd they name). */
void mux__ring_submit(struct mux__ring *r);

/* Asks the kernel to cancel op (its completion still comes, -ECANCELED or
 * a last result); op -> CANCELLING. The cancellation's own result comes
 * back as `by` when given, else is ignored. */
void mux__ring_cancel(struct mux__ring *r, struct mux__uop *op, struct mux__uop *by);

/* Provided buffer bid, and giving it back. */
char *mux__ring_buffer(struct mux__ring *r, unsigned bid);
void mux__ring_recycle(struct mux__ring *r, unsigned bid);

/* A sendmsg block (NULL when out of memory), and giving it back. */
struct mux__usend *mux__ring_send_block(struct mux__ring *r);
void mux__ring_send_block_put(struct mux__ring *r, struct mux__usend *b);

/* One io_uring_enter: publishes recycled buffers, submits, and sleeps
 * until a completion or timeout_ms (-1: forever, 0: no sleep). */
void mux__ring_wait(struct mux__ring *r, int timeout_ms);

/* 0 when io_uring works here, else a negative errno. Any thread. */
int mux__ring_probe(void);

#endif
