/* conn.c - a connection's life on its worker: open, the read path that
 * feeds on_read, deferred work, timeouts, close, linger and free. The write
 * path is conn_write.c. Everything here runs on the owning worker thread. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include "compiler.h"
#include "conn.h"
#include "mux/log.h"
#include "net.h"
#include "server_priv.h"

#define LINGER_MS 2000      /* how long a closed connection waits for the peer's FIN */
#define ET_READS_PER_EVENT 16 /* edge-triggered read budget before yielding */
#define DRAIN_READS 64        /* reads per connection per turn while shutting down */

static _Atomic uint64_t next_conn_id = 1;

static void finish(struct mux_conn *c, int err);

void mux__conn_update_interest(struct mux_conn *c)
{
    if (c->flags & CONN_CLOSED && !(c->flags & CONN_LINGER))
        return;
    uint32_t want = 0;
    if (mux__conn_can_read(c) || (c->flags & CONN_LINGER))
        want |= MUX_EV_READ;
    if (!mux__outq_empty(&c->out))
        want |= MUX_EV_WRITE;
    if (want == c->interest)
        return;
    int rc = c->w->pops->mod(c->w->poller, c->fd, c, want);
    if (rc < 0)
        mux__conn_fail(c, -rc);
    else
        c->interest = want;
}

static void arm_idle_timer(struct mux_conn *c)
{
    if (c->timeout_ms == 0) {
        mux__timers_cancel(&c->w->timers, &c->timer);
        return;
    }
    mux__timers_arm(&c->w->timers, &c->timer, c->last_active + c->timeout_ms);
}

void mux__conn_open(struct mux__worker *w, int fd)
{
    struct mux_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        mux_log(MUX_LOG_ERROR, "out of memory for a new connection");
        close(fd);
        mux__server_release_slot(w->srv);
        return;
    }
    c->fd = fd;
    c->w = w;
    c->id = atomic_fetch_add_explicit(&next_conn_id, 1, memory_order_relaxed);
    c->flags = CONN_COUNTED;
    c->last_active = w->now_ms;
    c->timeout_ms = w->opts->idle_timeout_ms;
    mux_list_init(&c->pending);
    mux_list_add_tail(&w->conns, &c->node);
    w->local.accepted++;
    w->local.open++;

    if (w->opts->tcp_nodelay) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    int rc = w->pops->add(w->poller, fd, c, MUX_EV_READ);
    if (rc < 0) {
        if (rc == -ERANGE)
            mux_log(MUX_LOG_WARN, "fd %d >= FD_SETSIZE (%d): the select poller cannot watch it; "
                    "connection refused", fd, FD_SETSIZE);
        else
            mux_log(MUX_LOG_WARN, "cannot watch fd %d: %s", fd, strerror(-rc));
        finish(c, -rc); /* on_accept never ran: no on_close */
        return;
    }
    c->interest = MUX_EV_READ;
    arm_idle_timer(c);

    c->flags |= CONN_ACCEPTED;
    if (w->handler->on_accept) {
        rc = w->handler->on_accept(c);
        if (rc != 0) {
            mux__conn_fail(c, rc > 0 ? rc : ECONNREFUSED);
            return;
        }
    }
    if (w->stopping) /* handed over just before the shutdown began */
        mux__conn_drain(c);
}

/* Offers buffered input to on_read while it consumes and may be delivered. */
static void deliver(struct mux_conn *c)
{
    while (c->in.len > 0 && mux__conn_can_deliver(c)) {
        size_t len = c->in.len;
        size_t n = c->w->handler->on_read(c, mux__inbuf_data(&c->in), len);
        if (unlikely(n > len)) {
            mux_log(MUX_LOG_ERROR, "%s: on_read consumed %zu of %zu bytes; clamped",
                    c->w->handler->name ? c->w->handler->name : "handler", n, len);
            n = len;
        }
        mux__inbuf_consume(&c->in, n);
        if (n == 0)
            break;
    }
    mux__inbuf_release_if_empty(&c->in, &c->w->inpool);
}

/* The peer will send nothing more: deliver what is left, then close once
 * the output is flushed (mux__conn_process decides when). */
static void peer_eof(struct mux_conn *c)
{
    c->flags |= CONN_PEER_EOF;
    deliver(c);
    mux__worker_defer(c->w, c);
}

enum read_result {
    READ_FULL,  /* filled the space offered: more may be waiting */
    READ_SHORT, /* got data, less than offered: probably drained */
    READ_EMPTY, /* EAGAIN: the socket is empty */
    READ_STOP,  /* EOF, error, or the connection stopped reading */
};

/* One read into the input buffer, delivered at once. */
static enum read_result read_once(struct mux_conn *c)
{
    size_t avail;
    char *p = mux__inbuf_space(&c->in, &c->w->inpool, c->w->opts->max_input, &avail);
    if (!p) {
        mux__conn_fail(c, avail == 0 ? EMSGSIZE : ENOMEM);
        return READ_STOP;
    }
    ssize_t n = read(c->fd, p, avail);
    if (n > 0) {
        c->flags &= ~CONN_QUIET;
        mux__inbuf_commit(&c->in, (size_t)n);
        c->w->local.bytes_in += (uint64_t)n;
        c->last_active = c->w->now_ms;
        deliver(c);
        if (!mux__conn_can_read(c))
            return READ_STOP;
        return (size_t)n == avail ? READ_FULL : READ_SHORT;
    }
    if (n == 0) {
        peer_eof(c);
        return READ_STOP;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->flags |= CONN_QUIET;
        mux__inbuf_release_if_empty(&c->in, &c->w->inpool);
        return READ_EMPTY;
    }
    if (errno == EINTR)
        return READ_FULL;
    mux__conn_fail(c, errno);
    return READ_STOP;
}

/* Level triggered: one read per readiness event, so a busy client cannot
 * starve the others. Edge triggered: read until drained, but at most
 * ET_READS_PER_EVENT times; the rest is picked up from the pending list. */
static void on_readable(struct mux_conn *c)
{
    c->flags &= ~CONN_READ_AGAIN;
    if (!c->w->opts->edge_triggered) {
        read_once(c);
        return;
    }
    for (int i = 0; i < ET_READS_PER_EVENT; i++)
        if (read_once(c) != READ_FULL)
            return;
    c->flags |= CONN_READ_AGAIN;
    mux__worker_defer(c->w, c);
}

/* Shutdown: read until the socket is empty (bounded per turn), so whatever
 * the client sent before the shutdown began is answered. Returns true once
 * the socket was found empty. */
static bool drain_input(struct mux_conn *c)
{
    for (int i = 0; i < DRAIN_READS; i++) {
        if (!mux__conn_can_read(c))
            return false;
        enum read_result r = read_once(c);
        if (r == READ_EMPTY)
            return true;
        if (r == READ_STOP)
            return false;
    }
    mux__worker_defer(c->w, c); /* more next iteration */
    return false;
}

/* After our FIN: discard input until the peer's FIN, then really close. */
static void linger_read(struct mux_conn *c)
{
    char sink[4096];
    for (int i = 0; i < 16; i++) {
        ssize_t n = read(c->fd, sink, sizeof(sink));
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        finish(c, 0); /* EOF or error: done lingering */
        return;
    }
}

static int socket_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    return err ? err : ECONNRESET;
}

void mux__conn_handle(struct mux_conn *c, uint32_t events)
{
    if (c->flags & CONN_LINGER) {
        linger_read(c);
        return;
    }
    if (c->flags & CONN_CLOSED) /* stale: closed earlier in this batch */
        return;
    if (events & MUX_EV_ERROR) {
        mux__conn_fail(c, socket_error(c->fd));
        return;
    }
    if ((events & MUX_EV_WRITE) && !mux__conn_write_ready(c))
        return;
    if (events & (MUX_EV_READ | MUX_EV_HUP)) {
        if (mux__conn_can_read(c))
            on_readable(c);
        else if (events & MUX_EV_HUP) /* both directions gone while we do not read */
            mux__conn_fail(c, ECONNRESET);
    }
    if (c->flags & CONN_CLOSED)
        return;
    if (c->flags & CONN_DRAINING)
        mux__worker_defer(c->w, c); /* re-check whether it can close now */
    /* Deferred work (a send queued by on_read, most often) flushes before
     * the next wait and registers the interest then: doing it here too
     * would cost an epoll_ctl to add EPOLLOUT and another to drop it. */
    if (!mux_list_linked(&c->pending))
        mux__conn_update_interest(c);
}

/* Input is finished (peer FIN or shutdown) or the app closed: is the
 * connection done? */
static bool ready_to_close(const struct mux_conn *c)
{
    if (!mux__outq_empty(&c->out))
        return false;
    if (c->flags & CONN_CLOSING)
        return true;
    if (!(c->flags & (CONN_PEER_EOF | CONN_DRAINING)))
        return false;
    if (c->flags & CONN_WANT_WRITABLE)
        return false; /* the app still has output to produce */
    if ((c->flags & (CONN_DRAINING | CONN_PEER_EOF | CONN_QUIET)) == CONN_DRAINING)
        return false; /* shutting down, but the client may still have bytes for us */
    return !(c->in.len > 0 && (c->flags & (CONN_READ_PAUSED | CONN_READ_BLOCKED)));
}

/* Orderly close. When the peer has not sent its FIN yet, close our side
 * first and linger, so unread input cannot make the kernel reset the
 * connection and throw away replies still in flight. */
static void close_orderly(struct mux_conn *c)
{
    if (c->flags & CONN_PEER_EOF || shutdown(c->fd, SHUT_WR) < 0) {
        finish(c, 0);
        return;
    }
    c->flags |= CONN_LINGER;
    finish(c, 0);
}

void mux__conn_process(struct mux_conn *c)
{
    if (c->flags & CONN_CLOSED)
        return;
    if (c->flags & CONN_ABORTED) {
        mux__conn_fail(c, ECONNABORTED);
        return;
    }
    if ((c->flags & CONN_DRAINING) && mux__conn_can_read(c))
        drain_input(c);
    else if ((c->flags & CONN_READ_AGAIN) && mux__conn_can_read(c))
        on_readable(c);
    if (c->flags & CONN_CLOSED)
        return;
    deliver(c);
    if (!mux__conn_write_ready(c))
        return;
    if (ready_to_close(c)) {
        close_orderly(c);
        return;
    }
    mux__conn_update_interest(c);
}

void mux__conn_timeout(struct mux_conn *c)
{
    if (c->flags & CONN_LINGER) {
        c->flags &= ~CONN_LINGER; /* the peer never sent its FIN: close anyway */
        finish(c, 0);
        return;
    }
    uint64_t due = c->last_active + c->timeout_ms;
    if (c->timeout_ms && due > c->w->now_ms) { /* activity since it was armed: lazy re-arm */
        mux__timers_arm(&c->w->timers, &c->timer, due);
        return;
    }
    if (c->timeout_ms)
        mux__conn_fail(c, ETIMEDOUT);
}

void mux__conn_drain(struct mux_conn *c)
{
    if (c->flags & (CONN_CLOSED | CONN_DRAINING))
        return;
    c->flags |= CONN_DRAINING;
    c->flags &= ~CONN_QUIET;
    mux__worker_defer(c->w, c); /* mux__conn_process reads, answers, closes */
}

void mux__conn_kill(struct mux_conn *c, int err)
{
    if (c->flags & CONN_LINGER) {
        c->flags &= ~CONN_LINGER;
        finish(c, 0);
    } else if (!(c->flags & CONN_CLOSED)) {
        mux__conn_fail(c, err);
    }
}

void mux__conn_fail(struct mux_conn *c, int err)
{
    if (c->flags & CONN_CLOSED)
        return;
    mux__outq_clear(&c->out, &c->w->outpool);
    if (err == ECONNABORTED) { /* abort: reset instead of FIN */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    if (mux_log_enabled(MUX_LOG_DEBUG))
        mux_log(MUX_LOG_DEBUG, "conn %llu closed: %s", (unsigned long long)c->id, strerror(err));
    finish(c, err);
}

/* Runs on_close once, then either starts lingering (CONN_LINGER set by the
 * caller) or releases the socket; the struct is freed after the batch. */
static void finish(struct mux_conn *c, int err)
{
    struct mux__worker *w = c->w;
    if (!(c->flags & CONN_CLOSED)) {
        c->flags |= CONN_CLOSED;
        mux_list_remove(&c->pending);
        if (c->flags & CONN_ACCEPTED && w->handler->on_close)
            w->handler->on_close(c, err);
        mux__outq_clear(&c->out, &w->outpool);
        mux__inbuf_free(&c->in, &w->inpool);
        if (c->flags & CONN_LINGER) {
            c->timeout_ms = 0;
            mux__timers_arm(&w->timers, &c->timer, w->now_ms + LINGER_MS);
            mux__conn_update_interest(c);
            return;
        }
    }
    mux__timers_cancel(&w->timers, &c->timer);
    w->pops->del(w->poller, c->fd);
    close(c->fd);
    c->fd = -1;
    c->flags &= ~CONN_LINGER;
    mux_list_remove(&c->node);
    mux_list_add_tail(&w->dead, &c->node);
    w->local.open--;
    w->local.closed++;
    if (c->flags & CONN_COUNTED)
        mux__server_release_slot(w->srv);
}

void mux__conn_free(struct mux_conn *c)
{
    mux_list_remove(&c->node);
    free(c);
}

/* ---- the public calls (mux/conn.h) that are not about writing ---- */

MUX_API void mux_conn_pause_read(struct mux_conn *c)
{
    c->flags |= CONN_READ_PAUSED;
    mux__worker_defer(c->w, c);
}

MUX_API void mux_conn_resume_read(struct mux_conn *c)
{
    if (!(c->flags & CONN_READ_PAUSED))
        return;
    c->flags &= ~CONN_READ_PAUSED;
    if (c->w->opts->edge_triggered)
        c->flags |= CONN_READ_AGAIN; /* the edge may have passed while paused */
    mux__worker_defer(c->w, c);
}

MUX_API void mux_conn_close(struct mux_conn *c)
{
    if (c->flags & (CONN_CLOSED | CONN_CLOSING))
        return;
    c->flags |= CONN_CLOSING;
    c->flags &= ~CONN_WANT_WRITABLE;
    mux__worker_defer(c->w, c);
}

MUX_API void mux_conn_abort(struct mux_conn *c)
{
    if (c->flags & CONN_CLOSED)
        return;
    /* on_close must not run inside a mux_conn_* call: drop the output now,
     * reset from the loop. */
    mux__outq_clear(&c->out, &c->w->outpool);
    c->flags |= CONN_CLOSING | CONN_ABORTED;
    c->flags &= ~CONN_WANT_WRITABLE;
    mux__worker_defer(c->w, c);
}

MUX_API void mux_conn_set_data(struct mux_conn *c, void *data)
{
    c->data = data;
}

MUX_API void *mux_conn_data(const struct mux_conn *c)
{
    return c->data;
}

MUX_API void *mux_conn_app(const struct mux_conn *c)
{
    return c->w->app;
}

MUX_API int mux_conn_peer(const struct mux_conn *c, struct sockaddr_storage *out, socklen_t *len)
{
    *len = sizeof(*out);
    return getpeername(c->fd, (struct sockaddr *)out, len) < 0 ? -errno : 0;
}

MUX_API const char *mux_conn_peer_str(const struct mux_conn *c, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (mux_conn_peer(c, &ss, &len) < 0) {
        snprintf(buf, size, "?");
        return buf;
    }
    return mux__addr_format((struct sockaddr *)&ss, len, buf, size);
}

MUX_API unsigned mux_conn_worker(const struct mux_conn *c)
{
    return c->w->index;
}

MUX_API uint64_t mux_conn_id(const struct mux_conn *c)
{
    return c->id;
}

MUX_API int mux_conn_fd(const struct mux_conn *c)
{
    return c->fd;
}

MUX_API void mux_conn_set_timeout(struct mux_conn *c, unsigned ms)
{
    if (c->flags & CONN_CLOSED)
        return;
    c->timeout_ms = ms;
    c->last_active = c->w->now_ms;
    arm_idle_timer(c);
}
