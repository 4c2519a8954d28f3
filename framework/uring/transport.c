/* uring/transport.c - the uring transport (transport.h): a plain accepted
 * connection on a worker running the uring poller is read by a multishot
 * receive into the worker's provided buffers and written by one sendmsg of
 * its queue per loop turn (or directly, on a light turn), instead of
 * readiness + read/write. File ranges go by sendfile; a full socket waits
 * for writability on the readiness poller of the same ring. Everything is
 * submitted with the worker's next wait (one io_uring_enter per turn).
 *
 * Each operation has a named state (uring/ring.h: idle, armed, cancelling,
 * orphaned). Results become struct mux__io_event outcomes for the core;
 * nothing here calls into it.
 *
 * Memory: a connection with an operation in flight is never freed, and the
 * output blocks a sendmsg reads stay pinned until it completes (dropped
 * output is parked in `pinned`); release cancels what is in flight, and
 * free leaves the connection to the last completion, which frees it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conn.h"
#include "connpool.h"
#include "fault.h"
#include "mux/log.h"
#include "poller.h"
#include "uring/ring.h"
#include "uring/transport.h"

#define DIRECT_SEND_BATCH 4 /* events per wait at most for direct sends */
/* What a cancelled receive may still bring, at most the worker's provided
 * buffers (one loop turn's completions cannot hold more). */
#define LATE_INPUT ((size_t)URING_BUFS * URING_BUF_SIZE)

enum { OP_RECV, OP_SEND, OP_STOP_RECV };

struct uconn {
    struct mux__uop recv, send;
    struct mux__uop stop;    /* the cancellation of recv, while it is in flight */
    bool polled;             /* registered with the readiness poller (writability, errors) */
    bool want_out;           /* ... and waiting for writability: no flush until it comes */
    bool single;             /* reading was stopped once: single-shot receives from now on */
    bool released;           /* the socket was given back: nothing is armed again */
    bool orphan;             /* freed by the core: the last completion frees it */
    bool late;               /* the data event being consumed came from a cancelled receive */
    struct mux__outq pinned; /* output dropped while a sendmsg reads it */
    struct mux__usend *snd;  /* the sendmsg's header and iovec, while one is in flight */
};

static struct uconn *uc(const struct mux_conn *c)
{
    return c->tp;
}

static struct mux__ring *ring_of(const struct mux_conn *c)
{
    return mux__uring_ring(c->w->poller);
}

static bool busy(const struct uconn *u)
{
    return mux__uop_busy(&u->recv) || mux__uop_busy(&u->send) || mux__uop_busy(&u->stop);
}

static void submitted(struct mux__uop *op, const char *why)
{
    mux__uop_set(op, UOP_ARMED, why);
}

/* ---- reading ---- */

/* Multishot while the connection has never stopped reading; one buffer per
 * submission once it has, so a pause is overrun by one buffer at most. */
static void arm_recv(struct mux_conn *c)
{
    struct io_uring_sqe *sqe = mux__ring_sqe(ring_of(c));
    if (uc(c)->single)
        io_uring_prep_recv(sqe, c->fd, NULL, 0, 0);
    else
        io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = URING_BGID;
    mux__ring_tag(sqe, &uc(c)->recv);
    submitted(&uc(c)->recv, "receive");
}

/* With no receive in flight, nothing would tell a peer's reset before
 * the connection reads again: the readiness poller watches the socket
 * with no interest, which reports only errors and hang-ups (watch()), as
 * epoll does for a paused connection. It stays registered (a data
 * wake-up does not match it, so it costs nothing) until the release. */
static void watch_errors(struct mux_conn *c)
{
    struct uconn *u = uc(c);
    if (u->polled)
        return;
    /* Without memory for it, a reset is only noticed later. */
    u->polled = c->w->pops->add(c->w->poller, c->fd, c, 0) == 0;
}

/* Cancels the receive; the cancellation's result comes back (stop_done):
 * one that found the receive running must be asked again. */
static void stop_recv(struct mux_conn *c)
{
    struct uconn *u = uc(c);
    if (mux__uop_busy(&u->stop)) { /* one is in flight already: this one's result is not needed */
        mux__ring_cancel(ring_of(c), &u->recv, NULL);
        return;
    }
    mux__ring_cancel(ring_of(c), &u->recv, &u->stop);
    submitted(&u->stop, "receive cancellation");
}

/* Reading is wanted while the core wants MUX_EV_READ, except while
 * buffered input waits for deferred work to deliver it (after a resume):
 * what a cancelled receive left there must go first, or the buffer would
 * keep growing past max_input. A receive cancelled while its completions
 * were still coming is armed again from its last completion. */
static int ur_want(struct mux_conn *c, uint32_t want)
{
    struct uconn *u = uc(c);
    bool linger = c->state == CONN_LINGER;
    bool on = (want & MUX_EV_READ) && (linger || !(mux__inbuf_len(&c->in) > 0 && mux_list_linked(&c->pending)));
    if (on && u->recv.state == UOP_IDLE && !u->released) {
        arm_recv(c);
    } else if (!on && u->recv.state == UOP_ARMED) {
        stop_recv(c);
        u->single = !linger;
        if (!linger)
            watch_errors(c);
    }
    return 0;
}

static ssize_t ur_read(struct mux_conn *c, void *buf, size_t len, bool peek)
{
    (void)c, (void)buf, (void)len, (void)peek;
    errno = EAGAIN; /* input arrives as completions */
    return -1;
}

static size_t ur_late_input(const struct mux_conn *c)
{
    const struct uconn *u = uc(c);
    /* (reading may have resumed before the cancelled receive's last
     * completion: what it brings is still late) */
    bool stopped = !mux__conn_can_read(c) && c->state != CONN_INPUT_DONE;
    return stopped || u->recv.state == UOP_CANCELLING || u->late ? LATE_INPUT : 0;
}

/* ---- writing ---- */

/* The sendmsg of the queue's memory in front of the first file range.
 * -ENOMEM without memory for its header block (nothing submitted). */
static int submit_send(struct mux_conn *c)
{
    struct uconn *u = uc(c);
    if (mux__fault(FAULT_SEND))
        return -EIO;
    if (!u->snd && !(u->snd = mux__ring_send_block(ring_of(c))))
        return -ENOMEM;
    struct mux__usend *b = u->snd;
    size_t total;
    int cnt = mux__outq_iov(&c->out, b->iov, URING_MAX_IOV, &total);
    memset(&b->msg, 0, sizeof(b->msg));
    b->msg.msg_iov = b->iov;
    b->msg.msg_iovlen = (size_t)cnt;
    /* Headers followed by a file range leave in the same segments as its
     * first bytes (as on the readiness path). */
    int more = mux__outq_file_follows(&c->out, cnt) ? MSG_MORE : 0;
    struct io_uring_sqe *sqe = mux__ring_sqe(ring_of(c));
    io_uring_prep_sendmsg(sqe, c->fd, &b->msg, (unsigned)(MSG_NOSIGNAL | more));
    mux__ring_tag(sqe, &u->send);
    submitted(&u->send, "sendmsg");
    return 0;
}

/* The socket is full (a sendmsg came back with -EAGAIN, or sendfile
 * could not go on): the readiness poller on the same ring says when it
 * takes bytes again. (A plain poll op would not do: the kernel adds RDHUP
 * to every poll, so after the peer's FIN it would complete at once,
 * again and again; the poller handles that.) 0 or a negative errno. */
static int wait_writable(struct mux_conn *c)
{
    struct uconn *u = uc(c);
    struct mux__worker *w = c->w;
    if (mux__fault(FAULT_ALLOC))
        return -ENOMEM;
    int rc = u->polled ? w->pops->mod(w->poller, c->fd, c, MUX_EV_WRITE)
                       : w->pops->add(w->poller, c->fd, c, MUX_EV_WRITE);
    if (rc < 0)
        return rc;
    u->polled = true;
    u->want_out = true;
    return 0;
}

static void unpoll(struct mux_conn *c)
{
    struct uconn *u = uc(c);
    if (u->polled)
        c->w->pops->del(c->w->poller, c->fd);
    u->polled = false;
    u->want_out = false;
}

/* Memory: one sendmsg submitted with the next wait. Without memory for
 * its block the loop sends here and now. */
static int flush_memory(struct mux_conn *c)
{
    int rc = submit_send(c);
    if (rc == 0)
        return FLUSH_BLOCKED;
    if (rc != -ENOMEM)
        return rc;
    rc = mux__socket_flush(c);
    if (rc == FLUSH_BLOCKED && !mux__outq_empty(&c->out)) {
        int w = wait_writable(c);
        if (w < 0)
            return w;
    }
    return rc;
}

static int ur_flush(struct mux_conn *c)
{
    struct uconn *u = uc(c);
    if (mux__uop_busy(&u->send) || u->want_out)
        return FLUSH_BLOCKED; /* the completion or the writability goes on */
    /* A light turn (few connections had work): a reply submitted to the
     * ring would leave only at the next io_uring_enter and cost one more
     * loop turn for its completion, which at low concurrency is latency
     * nobody shares; send it now instead. Busy turns batch their sends in
     * the ring, one system call for all. What the socket does not take
     * goes the ring's way below. */
    if (c->w->batch <= DIRECT_SEND_BATCH) {
        int rc = mux__socket_flush(c);
        if (rc != FLUSH_BLOCKED || mux__outq_empty(&c->out))
            return rc;
    }
    for (int i = 0; i < 16 && !mux__outq_empty(&c->out); i++) {
        struct mux__chunk *f = mux__outq_head_file(&c->out);
        if (!f)
            return flush_memory(c);
        size_t want = f->remaining < MUX__SENDFILE_CHUNK ? f->remaining : MUX__SENDFILE_CHUNK;
        ssize_t n = mux__socket_send_file(c, f, &want);
        if (n < 0)
            return (int)n;
        if (n == 0) {
            int rc = wait_writable(c);
            return rc < 0 ? rc : FLUSH_BLOCKED;
        }
        mux__socket_sent(c, (size_t)n);
    }
    return mux__outq_empty(&c->out) ? FLUSH_DONE : FLUSH_BUDGET;
}

static void ur_drop_output(struct mux_conn *c)
{
    struct uconn *u = uc(c);
    if (!mux__uop_busy(&u->send) || mux__outq_empty(&c->out)) {
        mux__outq_clear(&c->out, &c->w->outpool);
        return;
    }
    /* The kernel may still read these blocks: park them until the send
     * completes. */
    mux__outq_splice(&u->pinned, &c->out);
}

/* ---- life ---- */

static int ur_start(struct mux_conn *c, uint32_t want)
{
    struct uconn *u = mux__fault(FAULT_ALLOC) ? NULL : calloc(1, sizeof(*u));
    if (!u) { /* the readiness path needs no more memory */
        c->t = &mux__transport_socket;
        return c->t->start(c, want);
    }
    u->recv = (struct mux__uop){.kind = OP_RECV, .owner = c};
    u->send = (struct mux__uop){.kind = OP_SEND, .owner = c};
    u->stop = (struct mux__uop){.kind = OP_STOP_RECV, .owner = c};
    c->tp = u;
    return ur_want(c, want);
}

static void ur_release(struct mux_conn *c)
{
    struct uconn *u = uc(c);
    unpoll(c);
    bool armed = mux__uop_busy(&u->recv) || mux__uop_busy(&u->send);
    if (u->recv.state == UOP_ARMED)
        stop_recv(c);
    if (u->send.state == UOP_ARMED)
        mux__ring_cancel(ring_of(c), &u->send, NULL);
    u->released = true;
    /* An SQE names the fd by number: submitted after close(), it would
     * find the next socket given that number. */
    if (armed)
        mux__ring_submit(ring_of(c));
}

static void free_state(struct mux__ring *r, struct mux_conn *c)
{
    struct uconn *u = uc(c);
    mux__outq_clear(&u->pinned, &c->w->outpool);
    if (u->snd)
        mux__ring_send_block_put(r, u->snd);
    free(u);
    c->tp = NULL;
}

static void orphan_op(struct mux__uop *op)
{
    if (mux__uop_busy(op))
        mux__uop_set(op, UOP_ORPHANED, "connection freed");
}

static bool ur_free(struct mux_conn *c)
{
    struct uconn *u = uc(c);
    if (busy(u)) {
        orphan_op(&u->recv);
        orphan_op(&u->send);
        orphan_op(&u->stop);
        u->orphan = true;
        ring_of(c)->orphans++;
        return true;
    }
    free_state(ring_of(c), c);
    return false;
}

/* ---- what the kernel reports ---- */

static void ur_watch(struct mux_conn *c, uint32_t events, struct mux__io_event *ev)
{
    struct uconn *u = uc(c);
    if (u->want_out && c->w->pops->mod(c->w->poller, c->fd, c, 0) == 0)
        u->want_out = false;
    if (c->state == CONN_LINGER) { /* the receive reports the end; a watch left from a pause goes */
        if (events & (MUX_EV_ERROR | MUX_EV_HUP))
            unpoll(c);
        return;
    }
    if (events & MUX_EV_ERROR) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        ev->kind = IO_ERROR;
        ev->err = err ? err : ECONNRESET;
        return;
    }
    if ((events & MUX_EV_HUP) && !(events & MUX_EV_WRITE)) {
        /* A reset comes with an error. A hang-up alone after our FIN is the
         * peer's FIN: what it sent before is read when reading resumes. */
        if (c->wr == WR_FIN_SENT) {
            unpoll(c);
        } else {
            ev->kind = IO_ERROR;
            ev->err = ECONNRESET;
        }
        return;
    }
    if (events & MUX_EV_WRITE)
        ev->kind = IO_SENT;
}

static void recv_done(struct mux_conn *c, struct uconn *u, const struct mux__poll_event *pe,
                      bool late, struct mux__io_event *ev)
{
    int res = pe->res;
    if (pe->cflags & IORING_CQE_F_BUFFER) {
        unsigned bid = pe->cflags >> IORING_CQE_BUFFER_SHIFT;
        if (res > 0 && !u->orphan) {
            ev->kind = IO_DATA;
            ev->data = mux__ring_buffer(ring_of(c), bid);
            ev->len = (size_t)res;
            ev->cookie = bid + 1;
            u->late = late;
        } else {
            mux__ring_recycle(ring_of(c), bid);
        }
    } else if (res == 0) {
        ev->kind = IO_EOF;
    } else if (res < 0 && res != -ENOBUFS && res != -ECANCELED && res != -EAGAIN) {
        ev->kind = IO_ERROR;
        ev->err = -res;
    }
    /* -ENOBUFS: the buffers are all out; they come back before the next
     * submission, and the data waits in the socket meanwhile. -EAGAIN: the
     * kernel stopped waiting. Either way the receive ended and is armed
     * again (recv_ended). */
}

static void send_done(struct mux_conn *c, struct uconn *u, int res, struct mux__io_event *ev)
{
    if (!mux__outq_empty(&u->pinned)) { /* dropped while in flight: nothing to account */
        mux__outq_clear(&u->pinned, &c->w->outpool);
        return;
    }
    if (u->orphan || u->released || mux__conn_finished(c))
        return;
    if (res == -EAGAIN) { /* the kernel gave up waiting for room (the socket is O_NONBLOCK) */
        int rc = wait_writable(c);
        if (rc < 0) {
            ev->kind = IO_ERROR;
            ev->err = -rc;
        }
        return;
    }
    if (res < 0) {
        if (res != -ECANCELED) {
            ev->kind = IO_ERROR;
            ev->err = -res;
        }
        return;
    }
    mux__socket_sent(c, (size_t)res);
    ev->kind = IO_SENT;
}

/* The receive's cancellation came back. -EALREADY: it found the receive
 * running and left it so, and a multishot receive would go on filling
 * the input buffer of a connection that stopped reading; unless reading
 * is wanted again meanwhile, it is cancelled anew. */
static void stop_done(struct mux_conn *c, struct uconn *u, int res, struct mux__io_event *ev)
{
    mux_log(MUX_LOG_DEBUG, "uring: conn %llu: receive cancellation: %d", (unsigned long long)c->id,
            res);
    if (res != -EALREADY || !mux__uop_busy(&u->recv))
        return;
    if (u->recv.state == UOP_CANCELLING)
        mux__uop_set(&u->recv, UOP_ARMED, "cancellation found it running");
    if (u->orphan || u->released) { /* it must end (by op, not by fd) */
        stop_recv(c);
        if (u->orphan)
            orphan_op(&u->stop);
    } else
        ev->recv_ended = true; /* the core says again whether it reads */
}

static void ur_complete(struct mux__worker *w, const struct mux__poll_event *pe,
                        struct mux__io_event *ev)
{
    struct mux__uop *op = pe->ptr;
    struct mux_conn *c = op->owner;
    struct uconn *u = uc(c);
    struct mux__ring *r = mux__uring_ring(w->poller);
    bool last = op->kind != OP_RECV || !(pe->cflags & IORING_CQE_F_MORE);
    bool late = op->state == UOP_CANCELLING;
    if (last)
        mux__uop_set(op, UOP_IDLE, "completed");
    switch (op->kind) {
    case OP_RECV:
        recv_done(c, u, pe, late, ev);
        break;
    case OP_SEND:
        send_done(c, u, pe->res, ev);
        break;
    case OP_STOP_RECV:
        stop_done(c, u, pe->res, ev);
        break;
    }
    if (op->kind == OP_SEND && !mux__uop_busy(&u->send) && u->snd) { /* no next send */
        mux__ring_send_block_put(r, u->snd);
        u->snd = NULL;
    }
    if (u->orphan) {
        if (!busy(u)) {
            r->orphans--;
            free_state(r, c);
            mux__connpool_put(&c->w->conns, c);
        }
        ev->c = NULL;
        ev->kind = IO_NONE;
        return;
    }
    /* A multishot receive ended (buffers out, cancelled, or the kernel's
     * choice) while the connection still reads: again. */
    if (last && op->kind == OP_RECV && !u->released)
        ev->recv_ended = true;
    ev->c = c;
}

static void ur_done(struct mux__worker *w, const struct mux__io_event *ev)
{
    if (!ev->cookie)
        return;
    mux__ring_recycle(mux__uring_ring(w->poller), ev->cookie - 1);
    if (ev->c && ev->c->tp)
        uc(ev->c)->late = false;
}

static unsigned ur_orphans(const struct mux__worker *w)
{
    return mux__uring_ring(w->poller)->orphans;
}

const struct mux__transport mux__transport_uring = {
    .name = "uring",
    .start = ur_start,
    .read = ur_read,
    .flush = ur_flush,
    .want = ur_want,
    .watch = ur_watch,
    .complete = ur_complete,
    .done = ur_done,
    .late_input = ur_late_input,
    .orphans = ur_orphans,
    .drop_output = ur_drop_output,
    .release = ur_release,
    .free = ur_free,
};
