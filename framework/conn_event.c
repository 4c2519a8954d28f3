/* conn_event.c - the worker loop's entry points into the connection core:
 * readiness from the poller, deferred work, and the outcomes of a
 * completion transport (struct mux__io_event). Each one ends by settling
 * the connection (conn_state.c) unless deferred work will. */
#include <errno.h>
#include <sys/socket.h>

#include "conn.h"
#include "poller.h"

static int socket_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    return err ? err : ECONNRESET;
}

static void settle_unless_pending(struct mux_conn *c)
{
    if (!mux__conn_finished(c) && !mux_list_linked(&c->pending))
        mux__conn_settle(c);
}

/* ---- completion transports ---- */

/* One outcome of the transport, applied. */
static void consume(struct mux_conn *c, const struct mux__io_event *ev)
{
    if (c->state == CONN_CLOSED)
        return;
    switch ((enum mux__io_kind)ev->kind) {
    case IO_NONE:
        break;
    case IO_DATA:
        mux__conn_received(c, ev->data, ev->len);
        break;
    case IO_EOF:
        mux__conn_received_eof(c);
        break;
    case IO_ERROR:
        if (c->state == CONN_LINGER)
            mux__conn_release(c);
        else
            mux__conn_fail(c, ev->err);
        break;
    case IO_SENT:
        if (!mux__conn_finished(c))
            mux__conn_write_ready(c);
        break;
    }
    if (ev->recv_ended)
        mux__conn_update_interest(c); /* armed again if it still reads */
    if (ev->kind != IO_NONE)
        settle_unless_pending(c);
}

void mux__conn_complete(struct mux__worker *w, const struct mux__transport *t,
                        const struct mux__poll_event *pe)
{
    struct mux__io_event ev = {0};
    t->complete(w, pe, &ev);
    if (ev.c)
        consume(ev.c, &ev);
    if (t->done)
        t->done(w, &ev);
}

/* ---- readiness ---- */

/* The transport waited for the other direction (TLS): retry what waited,
 * from the deferred pass. */
static void retry(struct mux_conn *c, uint32_t events)
{
    unsigned redo = c->t->retry(c, events);
    if (redo & REDO_READ)
        c->input = INPUT_MAYBE;
    if (redo)
        mux__worker_defer(c->w, c);
}

/* Both directions are finished (our FIN after mux_conn_shutdown_write,
 * the peer's read): the socket has nothing left to report but a hang-up
 * that a level-triggered poller would repeat on every wait. */
static bool both_fins(const struct mux_conn *c)
{
    return (c->flags & CONN_EOF_READ) && c->wr == WR_FIN_SENT;
}

void mux__conn_handle(struct mux_conn *c, uint32_t events)
{
    if (c->state == CONN_CLOSED) /* stale: closed earlier in this batch */
        return;
    if (c->t->watch) { /* a completion transport's own waits (LINGER included) */
        struct mux__io_event ev = {.c = c};
        c->t->watch(c, events, &ev);
        consume(c, &ev);
        return;
    }
    switch ((enum mux__conn_state)c->state) {
    case CONN_LINGER:
        mux__conn_linger_read(c);
        return;
    case CONN_CONNECTING:
        mux__conn_connect_done(c, events);
        return;
    case CONN_HANDSHAKE: /* errors and hang-ups surface in the transport's I/O */
        mux__conn_handshake(c);
        return;
    default:
        break;
    }
    if (c->t->retry)
        retry(c, events);
    if (events & MUX_EV_RDHUP)
        c->flags |= CONN_PEER_HUP;
    if (events & MUX_EV_ERROR) {
        mux__conn_fail(c, socket_error(c->fd));
        return;
    }
    if ((events & MUX_EV_WRITE) && !mux__conn_write_ready(c))
        return;
    if (events & (MUX_EV_READ | MUX_EV_HUP)) {
        if (mux__conn_can_read(c))
            mux__conn_readable(c);
        else if ((events & MUX_EV_HUP) && both_fins(c) && c->t->unwatch)
            c->t->unwatch(c); /* an orderly end, nothing more to wait for */
        else if (events & MUX_EV_HUP) /* both directions gone while we do not read */
            mux__conn_fail(c, ECONNRESET);
    }
    if (mux__conn_finished(c))
        return;
    if (c->state == CONN_DRAINING)
        mux__worker_defer(c->w, c); /* read on until empty, then maybe close */
    /* Deferred work (a send queued by on_read, most often) flushes before
     * the next wait and settles then: doing it here too would cost an
     * epoll_ctl to add EPOLLOUT and another to drop it. */
    if (!mux_list_linked(&c->pending))
        mux__conn_settle(c);
}

/* ---- deferred work ---- */

void mux__conn_process(struct mux_conn *c)
{
    if (c->err && c->state >= CONN_OPEN && !mux__conn_finished(c)) {
        mux__conn_fail(c, c->err); /* met inside a call: reported from here */
        return;
    }
    switch ((enum mux__conn_state)c->state) {
    case CONN_CONNECTING:
        mux__conn_connect_at_once(c);
        if (c->state == CONN_CONNECTING)
            mux__conn_settle(c);
        return; /* connected() deferred the rest */
    case CONN_NEW:
    case CONN_CLOSED:
        return;
    case CONN_LINGER:
        mux__conn_linger_read(c);
        return;
    case CONN_HANDSHAKE:
        mux__conn_handshake(c);
        if (c->state == CONN_HANDSHAKE)
            mux__conn_settle(c);
        return; /* done: it deferred the rest */
    case CONN_DRAINING:
        if (mux__conn_can_read(c) && c->input != INPUT_EMPTY)
            mux__conn_drain_input(c);
        break;
    default:
        if (c->input == INPUT_MAYBE && mux__conn_can_read(c))
            mux__conn_readable(c);
        break;
    }
    if (mux__conn_finished(c))
        return;
    mux__conn_deliver(c);
    if (mux__conn_finished(c) || !mux__conn_write_ready(c))
        return;
    mux__conn_settle(c);
}
