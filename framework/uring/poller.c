/* uring/poller.c - the readiness interface of poller.h on the worker's
 * io_uring: each registered fd has one IORING_OP_POLL_ADD in flight, and
 * every wait is one io_uring_enter that submits what changed and reaps
 * what completed.
 *
 * Level triggered, as poller.h asks. A one-shot poll completes once; an fd
 * reported by a wait is re-armed at the start of the next one, and a poll
 * armed on a ready fd completes inside that same submission, so a lasting
 * readiness is reported on every wait at one SQE per report and no extra
 * system call. (A multishot poll fires per wake-up, not per wait: it would
 * need the same re-check to be level triggered, so it buys nothing there.)
 *
 * The kernel always adds RDHUP, ERR and HUP to a poll's mask. An fd that is
 * not read from must not report the peer's FIN, and a one-shot re-armed on
 * it would complete at once on every wait: when a completion carries
 * nothing the caller may see, the fd is armed multishot instead ("quiet"),
 * which completes only on a new wake-up (a reset, writability that was
 * asked for), until mod() changes the interest.
 *
 * Stale completions (of a poll cancelled by mod/del, or of a previous fd
 * with the same number) are told apart by a generation in user_data.
 * del() submits the cancellation at once, so the caller's close(fd)
 * really releases the socket.
 *
 * The uring transport (uring/transport.c) shares the ring: operations
 * tagged with URING_OP_TAG come back from wait() as MUX_EV_DONE events.
 * The poller offers that transport (ops.transport) once the ring and its
 * buffers are set up. Where the kernel refuses io_uring, ops.probe fails
 * and the server falls back to epoll (server.c). */
#include <errno.h>
#include <stdlib.h>

#include <poll.h>
#include <string.h>

#include "poller.h"
#include "uring/ring.h"
#include "uring/transport.h"

#define IGNORED URING_IGNORED
#define OP_TAG URING_OP_TAG

enum { ARM_NONE, ARM_ONESHOT, ARM_MULTI };
enum { IN_NONE, IN_READY, IN_ARM }; /* which list a slot is on */

struct slot {
    void *ptr;
    uint32_t interest; /* MUX_EV_* */
    uint32_t revents;  /* reported, not yet returned by wait */
    uint32_t gen;      /* of the poll in flight: user_data = fd << 32 | gen */
    uint8_t used, armed, quiet, list;
    int prev, next;    /* links of the list the slot is on */
};

struct list {
    int head, tail;
};

struct mux__poller {
    struct mux__ring r; /* first: the transport reaches it from the poller */
    struct slot *slots; /* indexed by fd */
    int nslots;
    struct list ready;  /* reported, waiting to be returned */
    struct list arm;    /* need a poll armed at the next wait */
};

static void list_push(struct mux__poller *p, struct list *l, int fd, uint8_t which)
{
    struct slot *s = &p->slots[fd];
    s->list = which;
    s->next = -1;
    s->prev = l->tail;
    if (l->tail >= 0)
        p->slots[l->tail].next = fd;
    else
        l->head = fd;
    l->tail = fd;
}

static void list_unlink(struct mux__poller *p, int fd)
{
    struct slot *s = &p->slots[fd];
    if (s->list == IN_NONE)
        return;
    struct list *l = s->list == IN_READY ? &p->ready : &p->arm;
    if (s->prev >= 0)
        p->slots[s->prev].next = s->next;
    else
        l->head = s->next;
    if (s->next >= 0)
        p->slots[s->next].prev = s->prev;
    else
        l->tail = s->prev;
    s->list = IN_NONE;
}

static int ur_create(struct mux__poller **out, bool edge_triggered)
{
    (void)edge_triggered; /* level triggered only (MUX_POLLER_CAN_EDGE unset) */
    struct mux__poller *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->ready = p->arm = (struct list){-1, -1};
    *out = p;
    return 0;
}

static void ur_destroy(struct mux__poller *p)
{
    mux__ring_destroy(&p->r);
    free(p->slots);
    free(p);
}

static int grow(struct mux__poller *p, int fd)
{
    if (fd < p->nslots)
        return 0;
    int n = p->nslots ? p->nslots : 64;
    while (n <= fd)
        n *= 2;
    struct slot *s = realloc(p->slots, (size_t)n * sizeof(*s));
    if (!s)
        return -ENOMEM;
    memset(s + p->nslots, 0, (size_t)(n - p->nslots) * sizeof(*s));
    p->slots = s;
    p->nslots = n;
    return 0;
}

static uint64_t poll_data(int fd, uint32_t gen)
{
    return (uint64_t)fd << 32 | gen;
}

static unsigned to_poll(uint32_t ev)
{
    unsigned m = 0;
    if (ev & MUX_EV_READ)
        m |= POLLIN | POLLRDHUP;
    if (ev & MUX_EV_WRITE)
        m |= POLLOUT;
    return m;
}

/* What of a poll result the caller may see (see poller.h). */
static uint32_t from_poll(unsigned r, uint32_t interest)
{
    uint32_t e = 0;
    if ((interest & MUX_EV_READ) && (r & (POLLIN | POLLRDHUP)))
        e |= MUX_EV_READ;
    if ((interest & MUX_EV_READ) && (r & POLLRDHUP))
        e |= MUX_EV_RDHUP;
    if ((interest & MUX_EV_WRITE) && (r & POLLOUT))
        e |= MUX_EV_WRITE;
    if (r & (POLLERR | POLLNVAL))
        e |= MUX_EV_ERROR;
    if (r & POLLHUP)
        e |= MUX_EV_HUP;
    return e;
}

static void arm(struct mux__poller *p, int fd)
{
    struct slot *s = &p->slots[fd];
    struct io_uring_sqe *sqe = mux__ring_sqe(&p->r);
    s->gen++;
    if (s->quiet)
        io_uring_prep_poll_multishot(sqe, fd, to_poll(s->interest));
    else
        io_uring_prep_poll_add(sqe, fd, to_poll(s->interest));
    io_uring_sqe_set_data64(sqe, poll_data(fd, s->gen));
    s->armed = s->quiet ? ARM_MULTI : ARM_ONESHOT;
}

/* Cancels the poll in flight; its completion, if any, is stale from now. */
static void disarm(struct mux__poller *p, int fd)
{
    struct slot *s = &p->slots[fd];
    if (s->armed == ARM_NONE)
        return;
    struct io_uring_sqe *sqe = mux__ring_sqe(&p->r);
    /* An async cancel, not POLL_REMOVE: a removal that finds the poll's
     * task work pending (a wake-up that did not match) fails with
     * -EALREADY and leaves a multishot poll armed, holding the socket
     * open after close(); a cancel marks the poll, whatever it is doing. */
    io_uring_prep_cancel64(sqe, poll_data(fd, s->gen), 0);
    io_uring_sqe_set_data64(sqe, IGNORED);
    s->gen++;
    s->armed = ARM_NONE;
}

static int ur_add(struct mux__poller *p, int fd, void *ptr, uint32_t ev)
{
    if (fd < 0)
        return -EBADF;
    int rc = grow(p, fd);
    if (rc < 0)
        return rc;
    struct slot *s = &p->slots[fd];
    if (s->used)
        return -EEXIST;
    s->used = 1;
    s->ptr = ptr;
    s->interest = ev;
    s->revents = 0;
    s->quiet = 0;
    s->armed = ARM_NONE;
    list_push(p, &p->arm, fd, IN_ARM);
    return 0;
}

static int ur_mod(struct mux__poller *p, int fd, void *ptr, uint32_t ev)
{
    if (fd < 0 || fd >= p->nslots || !p->slots[fd].used)
        return -ENOENT;
    struct slot *s = &p->slots[fd];
    s->ptr = ptr;
    s->interest = ev;
    s->revents = 0; /* what was seen under the old interest is re-polled */
    s->quiet = 0;
    disarm(p, fd);
    list_unlink(p, fd);
    list_push(p, &p->arm, fd, IN_ARM);
    return 0;
}

static void ur_del(struct mux__poller *p, int fd)
{
    if (fd < 0 || fd >= p->nslots || !p->slots[fd].used)
        return;
    struct slot *s = &p->slots[fd];
    bool was_armed = s->armed != ARM_NONE;
    disarm(p, fd);
    list_unlink(p, fd);
    s->used = 0;
    s->revents = 0;
    s->ptr = NULL;
    /* The poll holds a reference to the file: cancel it (and run the
     * cancellation's task work) before the caller's close(). */
    if (was_armed)
        io_uring_submit_and_get_events(&p->r.ring);
}

/* One poll completion: a stale one is dropped, a fresh one noted. */
static void reap(struct mux__poller *p, const struct io_uring_cqe *cqe)
{
    uint64_t d = cqe->user_data;
    if (d == IGNORED)
        return;
    int fd = (int)(d >> 32);
    if (fd < 0 || fd >= p->nslots)
        return;
    struct slot *s = &p->slots[fd];
    if (!s->used || s->gen != (uint32_t)d || s->armed == ARM_NONE)
        return;
    if (s->armed == ARM_ONESHOT || !(cqe->flags & IORING_CQE_F_MORE))
        s->armed = ARM_NONE;
    uint32_t e = cqe->res < 0 ? (cqe->res == -ECANCELED ? 0 : MUX_EV_ERROR)
                              : from_poll((unsigned)cqe->res, s->interest);
    if (e == 0) {
        if (cqe->res >= 0)
            s->quiet = 1; /* only what the caller may not see: wait for a change */
        if (s->armed == ARM_NONE && s->list == IN_NONE)
            list_push(p, &p->arm, fd, IN_ARM);
        return;
    }
    if (s->armed == ARM_MULTI) /* a change while quiet: back to level triggered */
        disarm(p, fd);
    s->quiet = 0;
    s->revents |= e;
    if (s->list == IN_ARM)
        list_unlink(p, fd);
    if (s->list == IN_NONE)
        list_push(p, &p->ready, fd, IN_READY);
}

static void arm_pending(struct mux__poller *p)
{
    while (p->arm.head >= 0) {
        int fd = p->arm.head;
        list_unlink(p, fd);
        if (p->slots[fd].used && p->slots[fd].armed == ARM_NONE)
            arm(p, fd);
    }
}

/* Poll completions are noted (they cost no output slot); operation
 * completions are returned as MUX_EV_DONE, at most max of them: the rest
 * stay in the CQ for the next wait. Returns the events written. */
static int reap_all(struct mux__poller *p, struct mux__poll_event *ev, int max)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    int out = 0;
    io_uring_for_each_cqe(&p->r.ring, head, cqe) {
        if (cqe->user_data != IGNORED && (cqe->user_data & OP_TAG)) {
            if (out == max)
                break;
            ev[out].ptr = (void *)(uintptr_t)(cqe->user_data & ~OP_TAG);
            ev[out].events = MUX_EV_DONE;
            ev[out].res = cqe->res;
            ev[out].cflags = cqe->flags;
            out++;
        } else {
            reap(p, cqe);
        }
        n++;
    }
    io_uring_cq_advance(&p->r.ring, n);
    return out;
}

static int ur_wait(struct mux__poller *p, struct mux__poll_event *ev, int max, int timeout_ms)
{
    if (mux__ring_ready(&p->r) < 0) { /* logged once; nothing can be watched */
        poll(NULL, 0, timeout_ms);
        return 0;
    }
    arm_pending(p);
    bool pending = p->ready.head >= 0 || io_uring_cq_ready(&p->r.ring) > 0;
    mux__ring_wait(&p->r, pending ? 0 : timeout_ms);
    int n = reap_all(p, ev, max);
    while (n < max && p->ready.head >= 0) {
        int fd = p->ready.head;
        struct slot *s = &p->slots[fd];
        list_unlink(p, fd);
        ev[n].ptr = s->ptr;
        ev[n].events = s->revents;
        s->revents = 0;
        n++;
        if (s->armed == ARM_NONE) /* level triggered: asked again next wait */
            list_push(p, &p->arm, fd, IN_ARM);
    }
    return n;
}


static const struct mux__transport *ur_transport(struct mux__poller *p)
{
    return mux__ring_has_buffers(&p->r) ? &mux__transport_uring : NULL;
}

const struct mux__poller_ops mux__poller_uring = {
    .name = "uring",
    .flags = 0,
    .probe = mux__ring_probe,
    .transport = ur_transport,
    .create = ur_create,
    .destroy = ur_destroy,
    .add = ur_add,
    .mod = ur_mod,
    .del = ur_del,
    .wait = ur_wait,
};

struct mux__ring *mux__uring_ring(struct mux__poller *p)
{
    return &p->r;
}
