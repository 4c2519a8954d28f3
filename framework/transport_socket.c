/* transport_socket.c - plain sockets on a readiness poller: read(2), one
 * gather write of the output queue (sendmsg over its iovec, MSG_NOSIGNAL
 * so a vanished peer is an EPIPE, not a signal), sendfile for file ranges.
 * The registration helpers and the flush are shared with the other
 * transports (transport.h). */
#include <errno.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "fault.h"
#include "poller.h"

#define MAX_IOV 64

ssize_t mux__socket_send_file(struct mux_conn *c, struct mux__chunk *f, size_t *wanted)
{
    if (mux__fault(FAULT_SEND))
        return -EIO;
    off_t off = f->offset;
    ssize_t n = sendfile(c->fd, f->fd, &off, *wanted);
    if (n > 0) {
        /* Short: the socket is full, or the file ended early (it shrank).
         * Only the next call can tell (EAGAIN, or 0 and -EIO below), so do
         * not claim a full socket: edge triggered, none would be reported. */
        *wanted = (size_t)n;
        return n;
    }
    if (n == 0)
        return -EIO; /* the file shrank under us: the promised length cannot be sent */
    if (errno == EAGAIN || errno == EINTR)
        return 0;
    return -errno;
}

static ssize_t send_memory(struct mux_conn *c, size_t *wanted)
{
    if (mux__fault(FAULT_SEND))
        return -EIO;
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

void mux__socket_sent(struct mux_conn *c, size_t n)
{
    mux__outq_advance(&c->out, &c->w->outpool, n);
    c->w->local.bytes_out += (uint64_t)n;
    c->w->local.bytes_queued -= (uint64_t)n;
    c->last_active = c->w->now_ms;
}

/* The head of the queue, one system call: sendfile for a file range,
 * else one gather write of the memory in front of it. */
static ssize_t send_head(struct mux_conn *c, size_t *wanted)
{
    struct mux__chunk *f = mux__outq_head_file(&c->out);
    if (!f)
        return send_memory(c, wanted);
    *wanted = f->remaining < MUX__SENDFILE_CHUNK ? f->remaining : MUX__SENDFILE_CHUNK;
    return mux__socket_send_file(c, f, wanted);
}

int mux__flush_loop(struct mux_conn *c, mux__send_head_fn send)
{
    size_t sent_total = 0;
    while (!mux__outq_empty(&c->out)) {
        size_t wanted = 0;
        ssize_t n = send(c, &wanted);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return FLUSH_BLOCKED;
        mux__socket_sent(c, (size_t)n);
        sent_total += (size_t)n;
        if ((size_t)n < wanted)
            return FLUSH_BLOCKED; /* short write: the socket buffer is full */
        if (sent_total >= MUX__FLUSH_BYTES)
            return mux__outq_empty(&c->out) ? FLUSH_DONE : FLUSH_BUDGET;
    }
    return FLUSH_DONE;
}

int mux__socket_flush(struct mux_conn *c)
{
    return mux__flush_loop(c, send_head);
}

/* ---- registration with the readiness poller ---- */

/* The poller's registration counts as an allocation (the kernel's, for
 * epoll) for the fault switch. */
static int poller_call(struct mux_conn *c, bool add, uint32_t want)
{
    struct mux__worker *w = c->w;
    if (mux__fault(FAULT_ALLOC))
        return -ENOMEM;
    return add ? w->pops->add(w->poller, c->fd, c, want) : w->pops->mod(w->poller, c->fd, c, want);
}

int mux__socket_watch(struct mux_conn *c, uint32_t want)
{
    int rc = poller_call(c, true, want);
    c->interest = rc == 0 ? want : MUX__UNWATCHED; /* (nothing to delete on release) */
    return rc;
}

int mux__socket_want(struct mux_conn *c, uint32_t want)
{
    if (want == c->interest || (c->interest & MUX__UNWATCHED))
        return 0;
    int rc = poller_call(c, false, want);
    if (rc == 0)
        c->interest = want;
    return rc;
}

void mux__socket_unwatch(struct mux_conn *c)
{
    if (c->interest & MUX__UNWATCHED)
        return;
    c->w->pops->del(c->w->poller, c->fd);
    c->interest = MUX__UNWATCHED;
}

void mux__socket_release(struct mux_conn *c)
{
    mux__socket_unwatch(c);
}

void mux__socket_drop_output(struct mux_conn *c)
{
    mux__outq_clear(&c->out, &c->w->outpool);
}

/* ---- the socket's own actions (the defaults of transport.h) ---- */

int mux__socket_shut_write(struct mux_conn *c)
{
    return shutdown(c->fd, SHUT_WR) < 0 ? -errno : 0;
}

void mux__socket_set_reset(struct mux_conn *c)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

bool mux__socket_input_waiting(struct mux_conn *c)
{
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

/* ---- the transport ---- */

static int sock_start(struct mux_conn *c, uint32_t want)
{
    return mux__socket_watch(c, want);
}

static ssize_t sock_read(struct mux_conn *c, void *buf, size_t len, bool peek)
{
    return peek ? recv(c->fd, buf, len, MSG_PEEK) : read(c->fd, buf, len);
}

const struct mux__transport mux__transport_socket = {
    .name = "socket",
    .start = sock_start,
    .read = sock_read,
    .flush = mux__socket_flush,
    .want = mux__socket_want,
    .unwatch = mux__socket_unwatch,
    .drop_output = mux__socket_drop_output,
    .release = mux__socket_release,
};
