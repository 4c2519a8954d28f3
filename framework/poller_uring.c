/* poller_uring.c - the readiness interface of poller.h on io_uring: each
 * registered fd has one IORING_OP_POLL_ADD in flight, and every wait is one
 * io_uring_enter that submits what changed and reaps what completed.
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
 * The completion path (uring.h, conn_uring.c) shares the ring: operations
 * tagged with bit 63 of user_data come back from wait() as MUX_EV_DONE
 * events, and the ring owns the worker's provided-buffer ring.
 *
 * Without liburing at build time, or when the kernel refuses io_uring,
 * mux__uring_probe() fails and the server falls back to epoll (server.c). */
#include <errno.h>
#include <stdlib.h>

#include "poller.h"

#ifdef MUX_HAVE_LIBURING
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>

#include "mux/log.h"
#include "uring.h"
#include <sys/mman.h>

#ifdef MUX_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#define RING_ENTRIES 1024
#define IGNORED UINT64_MAX /* user_data of cancellations: their results do not matter */
#define OP_TAG (1ull << 63) /* user_data of a struct mux__uop (poll data has fd < 2^31) */

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
    struct io_uring ring;
    int ring_rc; /* 0: not made yet, 1: ready, < 0: could not be made */
    struct slot *slots; /* indexed by fd */
    int nslots;
    struct list ready;  /* reported, waiting to be returned */
    struct list arm;    /* need a poll armed at the next wait */
    struct io_uring_buf_ring *br; /* provided buffers: the ring, then the buffers */
    char *bufs;
    size_t br_size;     /* bytes mapped at br */
    unsigned returned;  /* buffers given back since the last wait */
    struct mux__usend *send_free, *send_all; /* sendmsg blocks (uring.h) */
    bool sleep_in_poll; /* under valgrind: see wait_completions() */
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

/* Single issuer with deferred task work where the kernel has them, else
 * cooperative task work, else plain. */
static int ring_init(struct io_uring *ring)
{
    static const unsigned tries[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN,
        0,
    };
    int rc = -EINVAL;
    /* Under valgrind the worker sleeps in poll(2) on the ring's fd
     * (wait_completions), and deferred task work does not wake a poll. */
    size_t first = RUNNING_ON_VALGRIND ? 1 : 0;
    for (size_t i = first; i < sizeof(tries) / sizeof(tries[0]); i++) {
        struct io_uring_params prm;
        memset(&prm, 0, sizeof(prm));
        prm.flags = tries[i];
        rc = io_uring_queue_init_params(RING_ENTRIES, ring, &prm);
        if (rc != -EINVAL)
            return rc;
    }
    return rc;
}

/* The provided-buffer ring: its entries and the buffers in one anonymous
 * mapping (page aligned, as the kernel wants the ring). */
static int buffers_init(struct mux__poller *p)
{
    size_t ring_bytes = URING_BUFS * sizeof(struct io_uring_buf);
    size_t size = ring_bytes + (size_t)URING_BUFS * URING_BUF_SIZE;
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -errno;
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)m;
    reg.ring_entries = URING_BUFS;
    reg.bgid = URING_BGID;
    int rc = io_uring_register_buf_ring(&p->ring, &reg, 0);
    if (rc < 0) {
        munmap(m, size);
        return rc;
    }
    p->br = m;
    p->br_size = size;
    p->bufs = (char *)m + ring_bytes;
    io_uring_buf_ring_init(p->br);
    for (unsigned i = 0; i < URING_BUFS; i++)
        io_uring_buf_ring_add(p->br, p->bufs + (size_t)i * URING_BUF_SIZE, URING_BUF_SIZE,
                              (unsigned short)i, io_uring_buf_ring_mask(URING_BUFS), (int)i);
    io_uring_buf_ring_advance(p->br, URING_BUFS);
    return 0;
}

/* The ring is made by the first thread that submits (the worker's, not the
 * main thread that created the poller): that thread becomes its single
 * issuer, and it alone is tied to the ring, so tearing the ring down
 * later sends no task work (and no EINTR) to any other thread. */
static int ring_ready(struct mux__poller *p)
{
    if (p->ring_rc == 1)
        return 0;
    if (p->ring_rc < 0)
        return p->ring_rc;
    int rc = ring_init(&p->ring);
    p->ring_rc = rc < 0 ? rc : 1;
    p->sleep_in_poll = RUNNING_ON_VALGRIND != 0;
    if (rc < 0) {
        mux_log(MUX_LOG_ERROR, "io_uring: cannot set up a ring: %s", strerror(-rc));
        return rc;
    }
    rc = buffers_init(p);
    if (rc < 0) /* readiness still works; connections stay on the readiness path */
        mux_log(MUX_LOG_WARN, "io_uring: no provided buffers (%s): readiness only",
                strerror(-rc));
    return 0;
}

/* A free SQE, submitting what is queued when the SQ is full. */
static struct io_uring_sqe *get_sqe(struct mux__poller *p)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);
    while (!sqe) {
        io_uring_submit(&p->ring);
        sqe = io_uring_get_sqe(&p->ring);
    }
    return sqe;
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

/* Cancels every request and runs the cancellations now rather than in
 * the ring's exit work. */
static void cancel_all(struct mux__poller *p)
{
    struct io_uring_sqe *sqe = get_sqe(p);
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, IGNORED);
    io_uring_submit_and_get_events(&p->ring);
}

static void ur_destroy(struct mux__poller *p)
{
    if (p->ring_rc == 1) {
        cancel_all(p);
        io_uring_queue_exit(&p->ring);
    }
    if (p->br)
        munmap(p->br, p->br_size);
    while (p->send_all) {
        struct mux__usend *b = p->send_all;
        p->send_all = b->all;
        free(b);
    }
    free(p->slots);
    free(p);
}

static void *probe_thread(void *arg)
{
    struct io_uring ring;
    int *rc = arg;
    *rc = io_uring_queue_init(2, &ring, 0);
    if (*rc == 0)
        io_uring_queue_exit(&ring);
    return NULL;
}

/* In a thread of its own: a ring's teardown interrupts the next blocking
 * call of each thread that used it, which must not be the caller's. */
int mux__uring_probe(void)
{
    pthread_t t;
    int rc = -ENOSYS;
    if (pthread_create(&t, NULL, probe_thread, &rc) != 0)
        return -EAGAIN;
    pthread_join(t, NULL);
    return rc;
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
    struct io_uring_sqe *sqe = get_sqe(p);
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
    struct io_uring_sqe *sqe = get_sqe(p);
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
        io_uring_submit_and_get_events(&p->ring);
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
    io_uring_for_each_cqe(&p->ring, head, cqe) {
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
    io_uring_cq_advance(&p->ring, n);
    return out;
}

/* One io_uring_enter: submits, runs the deferred task work, and sleeps
 * until a completion or the timeout (ts, or forever when timeout_ms < 0).
 * valgrind 3.19 holds its one-thread-at-a-time lock across
 * io_uring_enter, so a worker asleep there would stop every other thread:
 * under valgrind the sleep is a poll(2) on the ring's fd (readable once a
 * completion is posted; the ring then runs its task work without
 * deferral, see ring_init) between two enters that do not wait. */
static void wait_completions(struct mux__poller *p, int timeout_ms, struct __kernel_timespec *ts)
{
    struct io_uring_cqe *cqe;
    if (!p->sleep_in_poll || timeout_ms == 0) {
        io_uring_submit_and_wait_timeout(&p->ring, &cqe, 1, timeout_ms < 0 ? NULL : ts, NULL);
        return;
    }
    struct __kernel_timespec now = {0, 0};
    io_uring_submit_and_wait_timeout(&p->ring, &cqe, 1, &now, NULL);
    struct pollfd pfd = {.fd = p->ring.ring_fd, .events = POLLIN};
    if (io_uring_cq_ready(&p->ring) == 0 && poll(&pfd, 1, timeout_ms) > 0)
        io_uring_submit_and_wait_timeout(&p->ring, &cqe, 1, &now, NULL);
}

static int ur_wait(struct mux__poller *p, struct mux__poll_event *ev, int max, int timeout_ms)
{
    if (ring_ready(p) < 0) { /* logged; nothing can be watched */
        poll(NULL, 0, timeout_ms);
        return 0;
    }
    if (p->returned) { /* buffers given back: visible to the kernel before the submission */
        io_uring_buf_ring_advance(p->br, (int)p->returned);
        p->returned = 0;
    }
    arm_pending(p);
    struct __kernel_timespec ts = {0, 0};
    bool pending = p->ready.head >= 0 || io_uring_cq_ready(&p->ring) > 0;
    if (!pending && timeout_ms > 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
    }
    wait_completions(p, pending ? 0 : timeout_ms, &ts);
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

/* ---- the completion path's access to the ring (uring.h) ---- */

bool mux__uring_ready(struct mux__poller *p)
{
    return p->ring_rc == 1 && p->br != NULL;
}

struct io_uring_sqe *mux__uring_sqe(struct mux__poller *p)
{
    return get_sqe(p);
}

void mux__uring_tag(struct io_uring_sqe *sqe, struct mux__uop *op)
{
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op | OP_TAG);
}

void mux__uring_submit(struct mux__poller *p)
{
    io_uring_submit(&p->ring);
}

void mux__uring_cancel(struct mux__poller *p, struct mux__uop *op, struct mux__uop *by)
{
    struct io_uring_sqe *sqe = get_sqe(p);
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op | OP_TAG, 0);
    io_uring_sqe_set_data64(sqe, by ? (uint64_t)(uintptr_t)by | OP_TAG : IGNORED);
    op->cancel = 1;
}

char *mux__uring_buffer(struct mux__poller *p, unsigned bid)
{
    return p->bufs + (size_t)bid * URING_BUF_SIZE;
}

/* As many blocks as sends were ever in flight at once; kept until the
 * poller goes (a block is 1 KiB). */
struct mux__usend *mux__uring_send_block(struct mux__poller *p)
{
    struct mux__usend *b = p->send_free;
    if (b) {
        p->send_free = b->next;
        return b;
    }
    b = malloc(sizeof(*b));
    if (b) {
        b->all = p->send_all;
        p->send_all = b;
    }
    return b;
}

void mux__uring_send_block_put(struct mux__poller *p, struct mux__usend *b)
{
    b->next = p->send_free;
    p->send_free = b;
}

void mux__uring_recycle(struct mux__poller *p, unsigned bid)
{
    io_uring_buf_ring_add(p->br, mux__uring_buffer(p, bid), URING_BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(URING_BUFS), (int)p->returned);
    p->returned++;
}

#else /* !MUX_HAVE_LIBURING */

bool mux__uring_ready(struct mux__poller *p)
{
    (void)p;
    return false;
}

/* Never called without liburing (mux__uring_ready() is false). */
struct io_uring_sqe *mux__uring_sqe(struct mux__poller *p)
{
    (void)p;
    abort();
}

void mux__uring_tag(struct io_uring_sqe *sqe, struct mux__uop *op)
{
    (void)sqe, (void)op;
}

void mux__uring_cancel(struct mux__poller *p, struct mux__uop *op, struct mux__uop *by)
{
    (void)p, (void)op, (void)by;
}

void mux__uring_submit(struct mux__poller *p)
{
    (void)p;
}

char *mux__uring_buffer(struct mux__poller *p, unsigned bid)
{
    (void)p, (void)bid;
    return NULL;
}

void mux__uring_recycle(struct mux__poller *p, unsigned bid)
{
    (void)p, (void)bid;
}

struct mux__usend *mux__uring_send_block(struct mux__poller *p)
{
    (void)p;
    return NULL;
}

void mux__uring_send_block_put(struct mux__poller *p, struct mux__usend *b)
{
    (void)p, (void)b;
}

int mux__uring_probe(void)
{
    return -ENOSYS;
}

static int ur_create(struct mux__poller **out, bool edge_triggered)
{
    (void)out;
    (void)edge_triggered;
    return -ENOSYS;
}

static void ur_destroy(struct mux__poller *p)
{
    (void)p;
}

static int ur_add(struct mux__poller *p, int fd, void *ptr, uint32_t ev)
{
    (void)p, (void)fd, (void)ptr, (void)ev;
    return -ENOSYS;
}

static int ur_mod(struct mux__poller *p, int fd, void *ptr, uint32_t ev)
{
    return ur_add(p, fd, ptr, ev);
}

static void ur_del(struct mux__poller *p, int fd)
{
    (void)p, (void)fd;
}

static int ur_wait(struct mux__poller *p, struct mux__poll_event *ev, int max, int timeout_ms)
{
    (void)p, (void)ev, (void)max, (void)timeout_ms;
    return 0;
}

#endif

const struct mux__poller_ops mux__poller_uring = {
    .name = "uring",
    .flags = 0,
    .create = ur_create,
    .destroy = ur_destroy,
    .add = ur_add,
    .mod = ur_mod,
    .del = ur_del,
    .wait = ur_wait,
};
