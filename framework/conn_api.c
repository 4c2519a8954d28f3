/* conn_api.c - the public mux_conn_* calls (mux/conn.h) that are not
 * about output: they record what the handler asked and leave the work to
 * the loop (mux__worker_defer), so no callback ever runs inside them. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "compiler.h"
#include "conn.h"
#include "net.h"


MUX_API void mux_conn_pause_read(struct mux_conn *c)
{
    MUX_ASSERT_OWNER(c);
    if (!mux__conn_live(c) || (c->flags & CONN_READ_PAUSED))
        return;
    c->flags |= CONN_READ_PAUSED;
    mux__worker_defer(c->w, c); /* drop the read interest */
}

MUX_API void mux_conn_resume_read(struct mux_conn *c)
{
    MUX_ASSERT_OWNER(c);
    if (!mux__conn_live(c) || !(c->flags & CONN_READ_PAUSED))
        return;
    c->flags &= ~CONN_READ_PAUSED;
    if (c->w->opts->edge_triggered || c->t->holds_input) /* the edge may have passed, or the
                                                               transport holds input */
        c->input = INPUT_MAYBE;
    mux__worker_defer(c->w, c);
}

MUX_API void mux_conn_close(struct mux_conn *c)
{
    MUX_ASSERT_OWNER(c);
    if (!mux__conn_live(c))
        return;
    if (c->state == CONN_CONNECTING) { /* CLOSING needs a connected socket to flush */
        c->flags |= CONN_CLOSE_ASKED;
        c->flags &= ~CONN_WANT_WRITABLE;
        return;
    }
    mux__conn_set_state(c, CONN_CLOSING, "app close");
    c->flags &= ~CONN_WANT_WRITABLE;
    mux__worker_defer(c->w, c);
}

MUX_API void mux_conn_shutdown_write(struct mux_conn *c)
{
    MUX_ASSERT_OWNER(c);
    if (!mux__conn_live(c) || c->wr != WR_OPEN)
        return;
    c->wr = WR_FIN_PENDING;
    c->flags &= ~CONN_WANT_WRITABLE;
    mux__worker_defer(c->w, c); /* settle() sends the FIN once flushed */
}

MUX_API bool mux_conn_is_outbound(const struct mux_conn *c)
{
    return c->flags & CONN_OUTBOUND;
}

MUX_API void mux_conn_abort(struct mux_conn *c)
{
    MUX_ASSERT_OWNER(c);
    if (c->state >= CONN_ABORTING)
        return;
    /* on_close must not run inside a mux_conn_* call: drop the output now,
     * reset from the loop. */
    mux__conn_drop_output(c);
    mux__conn_set_state(c, CONN_ABORTING, "app abort");
    c->flags &= ~CONN_WANT_WRITABLE;
    mux__worker_defer(c->w, c);
}

MUX_API void mux_conn_set_data(struct mux_conn *c, void *data)
{
    MUX_ASSERT_OWNER(c);
    c->data = data;
}

MUX_API void *mux_conn_data(const struct mux_conn *c)
{
    MUX_ASSERT_OWNER(c);
    return c->data;
}

MUX_API void *mux_conn_app(const struct mux_conn *c)
{
    return c->w->app;
}

MUX_API int mux_conn_peer(const struct mux_conn *c, struct sockaddr_storage *out, socklen_t *len)
{
    MUX_ASSERT_OWNER(c);
    *len = sizeof(*out);
    const struct mux__peer *proxied = c->cold ? c->cold->proxied : NULL;
    if (proxied) { /* the client behind the load balancer */
        memcpy(out, &proxied->addr, proxied->len);
        *len = proxied->len;
        return 0;
    }
    if (c->fd < 0)
        return -EBADF;
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
    MUX_ASSERT_OWNER(c);
    return c->fd;
}

MUX_API const char *mux_conn_alpn(const struct mux_conn *c, size_t *len)
{
    MUX_ASSERT_OWNER(c);
    return mux__t_alpn(c, c->t, len);
}

MUX_API void mux_conn_set_timeout(struct mux_conn *c, unsigned ms)
{
    MUX_ASSERT_OWNER(c);
    if (mux__conn_finished(c))
        return;
    c->timeout_ms = ms;
    c->last_active = c->w->now_ms;
    /* The drain owns the timer (the grace period bounds it); so does the
     * connect timeout, and the idle timer starts once connected. */
    if (c->state != CONN_DRAINING && c->state != CONN_CONNECTING)
        mux__conn_arm_idle(c);
}

MUX_API void mux_conn_set_deadline(struct mux_conn *c, unsigned ms)
{
    MUX_ASSERT_OWNER(c);
    if (mux__conn_finished(c))
        return;
    if (!ms && !c->cold)
        return; /* no deadline to clear */
    struct mux__conn_cold *cold = mux__conn_cold(c);
    if (!cold) { /* ended from the loop, like any failure inside a call */
        c->err = ENOMEM;
        mux__worker_defer(c->w, c);
        return;
    }
    cold->deadline = ms ? c->w->now_ms + ms : 0;
    /* Before OPEN the connect or handshake limit owns the timer; the
     * deadline joins once the connection is the handler's. The drain owns
     * it too, and the timeout handler checks the deadline first there. */
    if (c->state >= CONN_OPEN && c->state <= CONN_CLOSING && c->state != CONN_DRAINING)
        mux__conn_arm_idle(c);
    else if (c->state == CONN_DRAINING && ms)
        mux__timers_arm(&c->w->timers, &c->timer, cold->deadline);
}
