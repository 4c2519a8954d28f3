/* conn_write.c - the write path. Handlers queue output (mux_conn_send*);
 * the worker flushes it with one gather write (sendmsg over the queue's
 * iovec, MSG_NOSIGNAL so a vanished peer is an EPIPE, not a signal) or
 * sendfile for file ranges; over TLS, records through tls.c instead. I/O only: what the results mean for the
 * connection (water marks, on_writable, closing, EPOLLOUT interest) is
 * decided in conn.c. */
#include <errno.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "compiler.h"
#include "conn.h"
#include "mux/log.h"
#include "tls.h"

#define MAX_IOV 64
#define FLUSH_BYTES (1u << 20)   /* bytes per flush, so one fast reader cannot hog the worker */
#define SENDFILE_CHUNK (1u << 20) /* one budget's worth per call */

/* sendfile for the head file range (*wanted bytes). Returns bytes sent, 0
 * on EAGAIN, or a negative errno. */
ssize_t mux__conn_send_file_head(struct mux_conn *c, struct mux__chunk *f, size_t *wanted)
{
    size_t want = *wanted;
    off_t off = f->offset;
    ssize_t n = sendfile(c->fd, f->fd, &off, want);
    if (n > 0)
        return n;
    if (n == 0)
        return -EIO; /* the file shrank under us: the promised length cannot be sent */
    if (errno == EAGAIN || errno == EINTR)
        return 0;
    return -errno;
}

static ssize_t send_memory(struct mux_conn *c, size_t *wanted)
{
    struct iovec iov[MAX_IOV];
    int cnt = mux__outq_iov(&c->out, iov, MAX_IOV, wanted);
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)cnt};
    /* Headers followed by a file range: hold them back (MSG_MORE) so they
     * leave in the same segments as the file's first bytes. */
    int more = mux__outq_file_follows(&c->out, cnt) ? MSG_MORE : 0;
    ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT | more);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EINTR)
        return 0;
    return -errno;
}

/* I/O only: writes as much of the queue as the socket takes, within the
 * budget. Never calls back into the handler. */
int mux__conn_flush(struct mux_conn *c)
{
    if (c->u) /* completion path: a sendmsg submitted with the next wait */
        return mux__uring_conn_flush(c);
    return mux__conn_flush_now(c);
}

int mux__conn_flush_now(struct mux_conn *c)
{
    size_t sent_total = 0;
    while (!mux__outq_empty(&c->out)) {
        struct mux__chunk *f = mux__outq_head_file(&c->out);
        size_t wanted = f ? (f->remaining < SENDFILE_CHUNK ? f->remaining : SENDFILE_CHUNK) : 0;
        ssize_t n = c->ssl ? mux__tls_send(c, &wanted)
                    : f    ? mux__conn_send_file_head(c, f, &wanted)
                           : send_memory(c, &wanted);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return FLUSH_BLOCKED;
        mux__outq_advance(&c->out, &c->w->outpool, (size_t)n);
        c->w->local.bytes_out += (uint64_t)n;
        c->w->local.bytes_queued -= (uint64_t)n;
        c->last_active = c->w->now_ms;
        sent_total += (size_t)n;
        if ((size_t)n < wanted)
            return FLUSH_BLOCKED; /* short write: the socket buffer is full */
        if (sent_total >= FLUSH_BYTES)
            return mux__outq_empty(&c->out) ? FLUSH_DONE : FLUSH_BUDGET;
    }
    return FLUSH_DONE;
}

/* ---- the public calls (mux/conn.h) that queue output ---- */

/* After queueing: above the high-water mark reading stops until the queue
 * drains (conn.c resumes it). */
static void queued(struct mux_conn *c, size_t len)
{
    c->w->local.bytes_queued += len;
    if (!(c->flags & CONN_READ_BLOCKED) &&
        mux__conn_out_cost(c) > c->w->opts->write_high_water) {
        c->flags |= CONN_READ_BLOCKED;
        c->w->local.backpressure_pauses++;
    }
    mux__worker_defer(c->w, c);
}

MUX_API int mux_conn_send(struct mux_conn *c, const void *buf, size_t len)
{
    MUX_ASSERT_OWNER(c);
    if (!mux__conn_can_send(c))
        return -EPIPE;
    if (len == 0)
        return 0;
    if (mux__outq_append(&c->out, &c->w->outpool, buf, len) < 0)
        return -ENOMEM;
    /* A handler producing a lot in one callback: start writing now so the
     * queue does not balloon before the loop regains control. An error
     * surfaces again at the next flush, from the loop. */
    c->w->local.bytes_queued += len;
    if (c->state != CONN_CONNECTING && mux__conn_out_cost(c) > c->w->opts->write_high_water)
        (void)mux__conn_flush(c);
    queued(c, 0);
    return 0;
}

MUX_API int mux_conn_sendfile(struct mux_conn *c, int fd, off_t offset, size_t len)
{
    MUX_ASSERT_OWNER(c);
    if (!mux__conn_can_send(c))
        return -EPIPE;
    if (fd < 0 || offset < 0)
        return -EINVAL;
    if (len == 0) {
        close(fd);
        return 0;
    }
    if (mux__outq_append_file(&c->out, &c->w->outpool, fd, offset, len) < 0)
        return -ENOMEM;
    queued(c, len);
    return 0;
}

MUX_API size_t mux_conn_pending(const struct mux_conn *c)
{
    MUX_ASSERT_OWNER(c);
    return c->out.bytes;
}

MUX_API void mux_conn_want_writable(struct mux_conn *c, bool on)
{
    MUX_ASSERT_OWNER(c);
    if (!mux__conn_can_send(c))
        return;
    if (on)
        c->flags |= CONN_WANT_WRITABLE;
    else
        c->flags &= ~CONN_WANT_WRITABLE;
    /* on: fires soon if already below low water; off: a close may wait on it */
    mux__worker_defer(c->w, c);
}
