/* uring/ring.c - a worker's io_uring (uring/ring.h): setup with the
 * kernel's single-issuer features where it has them, the provided-buffer
 * ring, the sendmsg block pool, submission, cancellation and the wait. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fault.h"
#include "mux/log.h"
#include "uring/ring.h"

#ifdef MUX_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#define RING_ENTRIES 1024

static const char *const uop_names[] = {
    [UOP_IDLE] = "idle", [UOP_ARMED] = "armed", [UOP_CANCELLING] = "cancelling",
    [UOP_ORPHANED] = "orphaned",
};

void mux__uop_set(struct mux__uop *op, enum mux__uop_state to, const char *why)
{
    if (mux_log_enabled(MUX_LOG_DEBUG) && op->state != to)
        mux_log(MUX_LOG_DEBUG, "uring: op %p (kind %u): %s -> %s (%s)", (void *)op,
                (unsigned)op->kind, uop_names[op->state], uop_names[to], why);
    op->state = (uint8_t)to;
}

/* Single issuer with deferred task work where the kernel has them (and
 * the switch allows), else cooperative task work, else plain; the
 * completion queue 8x the submission queue, so a turn's completions for
 * thousands of connections do not spill into the kernel's overflow list.
 * Sets URING_F_DEFER when the first kind was made. */
static int ring_init(struct mux__ring *p)
{
    static const unsigned tries[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
        IORING_SETUP_COOP_TASKRUN,
        0,
    };
    int rc = -EINVAL;
    /* Under valgrind the worker sleeps in poll(2) on the ring's fd
     * (mux__ring_wait), and deferred task work does not wake a poll. */
    bool defer = !RUNNING_ON_VALGRIND && mux__uring_allowed(URING_F_DEFER);
    for (size_t i = defer ? 0 : 1; i < sizeof(tries) / sizeof(tries[0]); i++) {
        struct io_uring_params prm;
        memset(&prm, 0, sizeof(prm));
        prm.flags = tries[i] | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
        prm.cq_entries = RING_ENTRIES * 8;
        rc = io_uring_queue_init_params(RING_ENTRIES, &p->ring, &prm);
        if (rc == 0 && i == 0)
            p->feats |= URING_F_DEFER;
        if (rc == 0 && i > 0 && defer)
            mux_log(MUX_LOG_INFO, "io_uring: no deferred task work here, using %s",
                    tries[i] ? "cooperative task work" : "plain task work");
        if (rc != -EINVAL)
            return rc;
    }
    return rc;
}

/* Registering the ring's fd lets every io_uring_enter skip the fd table
 * lookup (liburing then enters by the registered index). */
static void register_ring_fd(struct mux__ring *p)
{
    if (!mux__uring_allowed(URING_F_REGRING))
        return;
    int rc = io_uring_register_ring_fd(&p->ring);
    if (rc == 1)
        p->feats |= URING_F_REGRING;
    else
        mux_log(MUX_LOG_INFO, "io_uring: ring fd not registered (%s)",
                strerror(rc < 0 ? -rc : EINVAL));
}

/* The provided-buffer ring: its entries and the buffers in one anonymous
 * mapping (page aligned, as the kernel wants the ring). */
static int buffers_init(struct mux__ring *p)
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
int mux__ring_ready(struct mux__ring *p)
{
    if (p->rc == 1)
        return 0;
    if (p->rc < 0)
        return p->rc;
    int rc = ring_init(p);
    p->rc = rc < 0 ? rc : 1;
    p->sleep_in_poll = RUNNING_ON_VALGRIND != 0;
    if (rc < 0) {
        mux_log(MUX_LOG_ERROR, "io_uring: cannot set up a ring: %s", strerror(-rc));
        return rc;
    }
    register_ring_fd(p);
    rc = buffers_init(p);
    if (rc < 0) /* readiness still works; connections stay on the readiness path */
        mux_log(MUX_LOG_WARN, "io_uring: no provided buffers (%s): readiness only",
                strerror(-rc));
    mux__uring_log_features(p->feats);
    return 0;
}

/* A free SQE, submitting what is queued when the SQ is full. */
struct io_uring_sqe *mux__ring_sqe(struct mux__ring *p)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);
    while (!sqe) {
        io_uring_submit(&p->ring);
        sqe = io_uring_get_sqe(&p->ring);
    }
    return sqe;
}

void mux__ring_destroy(struct mux__ring *p)
{
    if (p->rc == 1) { /* cancel everything and run the cancellations now, not in the exit work */
        struct io_uring_sqe *sqe = mux__ring_sqe(p);
        io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_ANY);
        io_uring_sqe_set_data64(sqe, URING_IGNORED);
        io_uring_submit_and_get_events(&p->ring);
        io_uring_queue_exit(&p->ring);
    }
    if (p->br)
        munmap(p->br, p->br_size);
    while (p->send_all) {
        struct mux__usend *b = p->send_all;
        p->send_all = b->all;
        free(b);
    }
}

void mux__ring_submit(struct mux__ring *p)
{
    io_uring_submit(&p->ring);
}

void mux__ring_cancel(struct mux__ring *p, struct mux__uop *op, struct mux__uop *by)
{
    struct io_uring_sqe *sqe = mux__ring_sqe(p);
    io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op | URING_OP_TAG, 0);
    io_uring_sqe_set_data64(sqe, by ? (uint64_t)(uintptr_t)by | URING_OP_TAG : URING_IGNORED);
    if (op->state == UOP_ARMED)
        mux__uop_set(op, UOP_CANCELLING, "cancel");
}

char *mux__ring_buffer(struct mux__ring *p, unsigned bid)
{
    return p->bufs + (size_t)bid * URING_BUF_SIZE;
}

void mux__ring_recycle(struct mux__ring *p, unsigned bid)
{
    io_uring_buf_ring_add(p->br, mux__ring_buffer(p, bid), URING_BUF_SIZE, (unsigned short)bid,
                          io_uring_buf_ring_mask(URING_BUFS), (int)p->returned);
    p->returned++;
}

/* As many blocks as sends were ever in flight at once; kept until the
 * ring goes (a block is 1 KiB). */
struct mux__usend *mux__ring_send_block(struct mux__ring *p)
{
    struct mux__usend *b = p->send_free;
    if (mux__fault(FAULT_ALLOC))
        return NULL;
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

void mux__ring_send_block_put(struct mux__ring *p, struct mux__usend *b)
{
    b->next = p->send_free;
    p->send_free = b;
}

/* Submits, runs the deferred task work, and sleeps until a completion or
 * the timeout (forever when timeout_ms < 0), in one io_uring_enter.
 * valgrind 3.19 holds its one-thread-at-a-time lock across
 * io_uring_enter, so a worker asleep there would stop every other thread:
 * under valgrind the sleep is a poll(2) on the ring's fd (readable once a
 * completion is posted; the ring then runs its task work without
 * deferral, see ring_init) between two enters that do not wait. */
void mux__ring_wait(struct mux__ring *p, int timeout_ms)
{
    if (p->returned) { /* buffers given back: visible to the kernel before the submission */
        io_uring_buf_ring_advance(p->br, (int)p->returned);
        p->returned = 0;
    }
    struct __kernel_timespec tsv = {0, 0}, *ts = &tsv;
    if (timeout_ms > 0) {
        tsv.tv_sec = timeout_ms / 1000;
        tsv.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
    }
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
int mux__ring_probe(void)
{
    pthread_t t;
    int rc = -ENOSYS;
    if (pthread_create(&t, NULL, probe_thread, &rc) != 0)
        return -EAGAIN;
    pthread_join(t, NULL);
    return rc;
}

