/* conn_uring.c - the completion path's I/O (see conn_uring.h): multishot
 * receive with buffer selection, one sendmsg per connection per loop turn,
 * file ranges by sendfile with a poll for writability when the socket is
 * full, cancellation and deferred freeing. Everything is submitted with
 * the worker's next wait (one io_uring_enter per loop turn). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#ifdef MUX_HAVE_LIBURING
#include <liburing.h>
#include <poll.h>
#endif

#include "conn.h"
#include "conn_uring.h"
#include "mux/log.h"

#ifdef MUX_HAVE_LIBURING

static struct mux__poller *ring_of(const struct mux_conn *c)
{
    return c->w->poller;
}

#define DIRECT_SEND_BATCH 4 /* events per wait at most for direct sends */

bool mux__uring_conn_start(struct mux_conn *c)
{
    struct mux__worker *w = c->w;
    if (w->pops != &mux__poller_uring || !mux__uring_ready(w->poller))
        return false;
    struct mux__uconn *u = calloc(1, sizeof(*u));
    if (!u)
        return false; /* the readiness path needs no more memory */
    u->recv = (struct mux__uop){.kind = UOP_RECV, .owner = c};
    u->send = (struct mux__uop){.kind = UOP_SEND, .owner = c};
    u->stop = (struct mux__uop){.kind = UOP_STOP_RECV, .owner = c};
    c->u = u;
    mux__uring_conn_want_read(c, true);
    return true;
}

static void submitted(struct mux__uconn *u, struct mux__uop *op)
{
    op->armed = 1;
    op->cancel = 0;
    u->inflight++;
}

/* Multishot while the connection has never stopped reading; one buffer per
 * submission once it has, so a pause is overrun by one buffer at most. */
static void arm_recv(struct mux_conn *c)
{
    struct io_uring_sqe *sqe = mux__uring_sqe(ring_of(c));
    if (c->u->single)
        io_uring_prep_recv(sqe, c->fd, NULL, 0, 0);
    else
        io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = URING_BGID;
    mux__uring_tag(sqe, &c->u->recv);
    submitted(c->u, &c->u->recv);
}

/* With no receive in flight, nothing would tell a peer's reset before
 * the connection reads again: the readiness poller watches the socket
 * with no interest, which reports only errors and hang-ups
 * (writable_again in conn.c), as epoll does for a paused connection. It
 * stays registered (a data wake-up does not match it, so it costs
 * nothing) until the connection is released. */
static void watch_errors(struct mux_conn *c)
{
    struct mux__uconn *u = c->u;
    if (u->polled)
        return;
    /* Without memory for it, a reset is only noticed later. */
    u->polled = c->w->pops->add(c->w->poller, c->fd, c, 0) == 0;
}

/* Cancels the receive; the cancellation's result comes back (stop_done):
 * one that found the receive running must be asked again. */
static void stop_recv(struct mux_conn *c)
{
    struct mux__uconn *u = c->u;
    if (u->stop.armed) { /* one is in flight already: this one's result is not needed */
        mux__uring_cancel(ring_of(c), &u->recv, NULL);
        return;
    }
    mux__uring_cancel(ring_of(c), &u->recv, &u->stop);
    submitted(u, &u->stop);
}

/* A receive cancelled while its completions were still coming is armed
 * again from its last completion (recv_done), not here. */
void mux__uring_conn_want_read(struct mux_conn *c, bool on)
{
    struct mux__uop *r = &c->u->recv;
    if (on && !r->armed && c->fd >= 0) {
        arm_recv(c);
    } else if (!on && r->armed && !r->cancel) {
        stop_recv(c);
        c->u->single = c->state != CONN_LINGER;
        if (c->state != CONN_LINGER)
            watch_errors(c);
    }
}

/* The sendmsg of the queue's memory in front of the first file range.
 * False without memory for its header block (nothing submitted). */
static bool submit_send(struct mux_conn *c)
{
    struct mux__uconn *u = c->u;
    if (!u->snd && !(u->snd = mux__uring_send_block(ring_of(c))))
        return false;
    struct mux__usend *b = u->snd;
    size_t total;
    int cnt = mux__outq_iov(&c->out, b->iov, URING_MAX_IOV, &total);
    memset(&b->msg, 0, sizeof(b->msg));
    b->msg.msg_iov = b->iov;
    b->msg.msg_iovlen = (size_t)cnt;
    /* Headers followed by a file range leave in the same segments as its
     * first bytes (as on the readiness path). */
    int more = mux__outq_file_follows(&c->out, cnt) ? MSG_MORE : 0;
    struct io_uring_sqe *sqe = mux__uring_sqe(ring_of(c));
    io_uring_prep_sendmsg(sqe, c->fd, &b->msg, (unsigned)(MSG_NOSIGNAL | more));
    mux__uring_tag(sqe, &u->send);
    u->sending = total;
    submitted(u, &u->send);
    return true;
}

/* The socket is full (a sendmsg came back with -EAGAIN, or sendfile
 * could not go on): the readiness poller on the same ring says when it
 * takes bytes again. (A plain poll op would not do: the kernel adds RDHUP
 * to every poll, so after the peer's FIN it would complete at once,
 * again and again; the poller handles that.) */
static void wait_writable(struct mux_conn *c)
{
    struct mux__uconn *u = c->u;
    struct mux__worker *w = c->w;
    int rc = u->polled ? w->pops->mod(w->poller, c->fd, c, MUX_EV_WRITE)
                       : w->pops->add(w->poller, c->fd, c, MUX_EV_WRITE);
    if (rc < 0) {
        mux__conn_io_failed(c, -rc);
        return;
    }
    u->polled = true;
    u->want_out = true;
}

void mux__uring_conn_writable(struct mux_conn *c)
{
    struct mux__uconn *u = c->u;
    if (u->want_out && c->w->pops->mod(c->w->poller, c->fd, c, 0) == 0)
        u->want_out = false;
}

void mux__uring_conn_unpoll(struct mux_conn *c)
{
    if (c->u->polled)
        c->w->pops->del(c->w->poller, c->fd);
    c->u->polled = false;
    c->u->want_out = false;
}

int mux__uring_conn_flush(struct mux_conn *c)
{
    struct mux__uconn *u = c->u;
    if (u->send.armed || u->want_out)
        return FLUSH_BLOCKED; /* the completion or the writability goes on */
    /* A light turn (few connections had work): a reply submitted to the
     * ring would leave only at the next io_uring_enter and cost one more
     * loop turn for its completion, which at low concurrency is latency
     * nobody shares; send it now instead. Busy turns batch their sends in
     * the ring, one system call for all. What the socket does not take
     * goes the ring's way below. */
    if (c->w->batch <= DIRECT_SEND_BATCH) {
        int rc = mux__conn_flush_now(c);
        if (rc != FLUSH_BLOCKED || mux__outq_empty(&c->out))
            return rc;
    }
    for (int i = 0; i < 16 && !mux__outq_empty(&c->out); i++) {
        struct mux__chunk *f = mux__outq_head_file(&c->out);
        if (!f) {
            if (submit_send(c))
                return FLUSH_BLOCKED;
            int rc = mux__conn_flush_now(c); /* no memory for the block: the loop sends */
            if (rc == FLUSH_BLOCKED && !mux__outq_empty(&c->out))
                wait_writable(c);
            return rc;
        }
        size_t want = f->remaining < (1u << 20) ? f->remaining : (1u << 20); /* as the readiness path */
        ssize_t n = mux__conn_send_file_head(c, f, &want);
        if (n < 0)
            return (int)n;
        if (n == 0) {
            wait_writable(c);
            return FLUSH_BLOCKED;
        }
        mux__outq_advance(&c->out, &c->w->outpool, (size_t)n);
        c->w->local.bytes_out += (uint64_t)n;
        c->w->local.bytes_queued -= (uint64_t)n;
        c->last_active = c->w->now_ms;
    }
    return mux__outq_empty(&c->out) ? FLUSH_DONE : FLUSH_BUDGET;
}

void mux__uring_conn_drop_output(struct mux_conn *c)
{
    struct mux__uconn *u = c->u;
    if (!u->send.armed || mux__outq_empty(&c->out)) {
        mux__outq_clear(&c->out, &c->w->outpool);
        return;
    }
    /* The kernel may still read these blocks: park them until the send
     * completes. */
    struct mux__outq *p = &u->pinned;
    if (p->tail)
        p->tail->next = c->out.head;
    else
        p->head = c->out.head;
    p->tail = c->out.tail;
    p->bytes += c->out.bytes;
    p->files += c->out.files;
    memset(&c->out, 0, sizeof(c->out));
}

void mux__uring_conn_release(struct mux_conn *c)
{
    struct mux__uconn *u = c->u;
    mux__uring_conn_unpoll(c);
    bool armed = u->recv.armed || u->send.armed;
    if (u->recv.armed && !u->recv.cancel)
        stop_recv(c);
    if (u->send.armed && !u->send.cancel)
        mux__uring_cancel(ring_of(c), &u->send, NULL);
    /* An SQE names the fd by number: submitted after close(), it would
     * find the next socket given that number. */
    if (armed)
        mux__uring_submit(ring_of(c));
}

bool mux__uring_conn_free(struct mux_conn *c)
{
    if (c->u->inflight > 0) {
        c->u->orphan = true;
        c->w->orphans++;
        return true;
    }
    mux__outq_clear(&c->u->pinned, &c->w->outpool);
    if (c->u->snd)
        mux__uring_send_block_put(ring_of(c), c->u->snd);
    free(c->u);
    c->u = NULL;
    return false;
}

static void free_orphan(struct mux_conn *c)
{
    c->w->orphans--;
    mux__outq_clear(&c->u->pinned, &c->w->outpool);
    if (c->u->snd)
        mux__uring_send_block_put(ring_of(c), c->u->snd);
    free(c->u);
    free(c);
}

/* ---- completions ---- */

static void recv_done(struct mux_conn *c, int res, unsigned cflags)
{
    struct mux__poller *p = ring_of(c);
    if (cflags & IORING_CQE_F_BUFFER) {
        unsigned bid = cflags >> IORING_CQE_BUFFER_SHIFT;
        if (res > 0 && c->state != CONN_CLOSED)
            mux__conn_received(c, mux__uring_buffer(p, bid), (size_t)res);
        mux__uring_recycle(p, bid);
    } else if (res == 0 && c->state != CONN_CLOSED) {
        mux__conn_received_eof(c);
    } else if (res < 0 && res != -ENOBUFS && res != -ECANCELED && res != -EAGAIN &&
               c->state != CONN_CLOSED) {
        mux__conn_io_failed(c, -res);
    }
    /* -ENOBUFS: the buffers are all out; they come back before the next
     * submission, and the data waits in the socket meanwhile. -EAGAIN: the
     * kernel stopped waiting. Either way the receive ended and is armed
     * again (mux__conn_recv_ended). */
}

static void send_done(struct mux_conn *c, int res)
{
    struct mux__uconn *u = c->u;
    if (u->pinned.head) { /* dropped while in flight: nothing to account */
        mux__outq_clear(&u->pinned, &c->w->outpool);
        return;
    }
    if (c->state == CONN_CLOSED || mux__conn_finished(c))
        return;
    if (res == -EAGAIN) { /* the kernel gave up waiting for room (the socket is O_NONBLOCK) */
        wait_writable(c);
        return;
    }
    if (res < 0) {
        if (res != -ECANCELED)
            mux__conn_io_failed(c, -res);
        return;
    }
    mux__outq_advance(&c->out, &c->w->outpool, (size_t)res);
    c->w->local.bytes_out += (uint64_t)res;
    c->w->local.bytes_queued -= (uint64_t)res;
    c->last_active = c->w->now_ms;
    mux__conn_sent(c);
}

/* The receive's cancellation came back. -EALREADY: it found the receive
 * running and left it so, and a multishot receive would go on filling
 * the input buffer of a connection that stopped reading; unless reading
 * is wanted again meanwhile, it is cancelled anew. */
static void stop_done(struct mux_conn *c, int res)
{
    struct mux__uconn *u = c->u;
    mux_log(MUX_LOG_DEBUG, "uring: conn %llu: receive cancellation: %d", (unsigned long long)c->id, res);
    if (res != -EALREADY || !u->recv.armed)
        return;
    u->recv.cancel = 0;
    if (u->orphan || c->state == CONN_CLOSED) /* released: it must end (by op, not by fd) */
        stop_recv(c);
    else
        mux__conn_recv_ended(c);
}

void mux__uring_complete(struct mux__worker *w, struct mux__uop *op, int res, unsigned cflags)
{
    struct mux_conn *c = op->owner;
    struct mux__uconn *u = c->u;
    (void)w;
    bool last = op->kind != UOP_RECV || !(cflags & IORING_CQE_F_MORE);
    if (last) {
        op->armed = 0;
        u->inflight--;
    }
    switch (op->kind) {
    case UOP_RECV:
        recv_done(c, res, cflags);
        break;
    case UOP_SEND:
        send_done(c, res);
        break;
    case UOP_STOP_RECV:
        stop_done(c, res);
        break;
    }
    /* (cleared only now: the last completion of a cancelled receive still
     * brings late input, conn.c keep_input; re-arming clears it too) */
    if (last && !op->armed)
        op->cancel = 0;
    if (op->kind == UOP_SEND && !op->armed && u->snd) { /* no next send from send_done */
        mux__uring_send_block_put(ring_of(c), u->snd);
        u->snd = NULL;
    }
    if (u->orphan) {
        if (u->inflight == 0)
            free_orphan(c);
        return;
    }
    /* A multishot receive ended (buffers out, cancelled, or the kernel's
     * choice) while the connection still reads: again. */
    if (last && op->kind == UOP_RECV && c->state != CONN_CLOSED)
        mux__conn_recv_ended(c);
}

#else /* !MUX_HAVE_LIBURING: the uring poller never runs, nothing here is reached */

bool mux__uring_conn_start(struct mux_conn *c)
{
    (void)c;
    return false;
}

void mux__uring_conn_want_read(struct mux_conn *c, bool on)
{
    (void)c, (void)on;
}

int mux__uring_conn_flush(struct mux_conn *c)
{
    (void)c;
    return -ENOSYS;
}

void mux__uring_conn_drop_output(struct mux_conn *c)
{
    (void)c;
}

void mux__uring_conn_release(struct mux_conn *c)
{
    (void)c;
}

void mux__uring_conn_writable(struct mux_conn *c)
{
    (void)c;
}

void mux__uring_conn_unpoll(struct mux_conn *c)
{
    (void)c;
}

bool mux__uring_conn_free(struct mux_conn *c)
{
    (void)c;
    return false;
}

void mux__uring_complete(struct mux__worker *w, struct mux__uop *op, int res, unsigned cflags)
{
    (void)w, (void)op, (void)res, (void)cflags;
}

#endif
