/* conn_write.c - a connection's output: the public calls that queue it
 * (mux_conn_send*), and what a flush's result means for the connection
 * (water marks, on_writable, failures). The transport does the I/O. */
#include <errno.h>
#include <unistd.h>

#include "compiler.h"
#include "conn.h"
#include "mux/log.h"

/* Water marks and on_writable once the queue is at or below the low-water
 * mark. Loop context only (never inside another callback). */
static void after_write(struct mux_conn *c)
{
    const struct mux_options *o = c->w->opts;
    if (mux__conn_out_cost(c) > o->write_low_water)
        return;
    if (c->flags & CONN_READ_BLOCKED) {
        c->flags &= ~CONN_READ_BLOCKED;
        /* input may wait with no edge (or inside the transport) to tell */
        bool unreported = o->edge_triggered || c->t->holds_input;
        if (unreported)
            c->input = INPUT_MAYBE;
        if (mux__inbuf_len(&c->in) > 0 || unreported)
            mux__worker_defer(c->w, c); /* deliver what waited */
    }
    if (!(c->flags & CONN_WANT_WRITABLE) || !mux__conn_can_send(c))
        return;
    if (!mux__conn_handler(c)->on_writable) {
        c->flags &= ~CONN_WANT_WRITABLE;
        return;
    }
    size_t before = mux__conn_out_cost(c);
    mux__conn_handler(c)->on_writable(c);
    if (mux__conn_out_cost(c) == before && (c->flags & CONN_WANT_WRITABLE))
        c->flags &= ~CONN_WANT_WRITABLE; /* neither refilled nor turned off: the loop would spin */
}

bool mux__conn_write_ready(struct mux_conn *c)
{
    if (!mux__outq_empty(&c->out)) {
        int rc = c->t->flush(c);
        if (rc < 0) {
            mux__conn_fail(c, -rc);
            return false;
        }
        if (rc == FLUSH_BUDGET)
            mux__worker_defer(c->w, c); /* more next turn, even when edge triggered */
    }
    after_write(c);
    return !mux__conn_finished(c);
}

/* ---- the public calls (mux/conn.h) that queue output ---- */

/* After queueing: above the high-water mark reading stops until the queue
 * drains (after_write resumes it). */
static void queued(struct mux_conn *c)
{
    if (!(c->flags & CONN_READ_BLOCKED) &&
        mux__conn_out_cost(c) > c->w->opts->write_high_water) {
        c->flags |= CONN_READ_BLOCKED;
        c->w->local.backpressure_pauses++;
    }
    mux__worker_defer(c->w, c);
}

/* Out of memory for output: the stream would have a hole where these
 * bytes belong, so the connection fails (from the loop, with ENOMEM). */
static int send_failed(struct mux_conn *c)
{
    if (c->err == 0)
        c->err = ENOMEM;
    mux__worker_defer(c->w, c);
    return -ENOMEM;
}

MUX_API int mux_conn_send(struct mux_conn *c, const void *buf, size_t len)
{
    MUX_ASSERT_OWNER(c);
    if (!mux__conn_can_send(c))
        return -EPIPE;
    if (len == 0)
        return 0;
    if (mux__outq_append(&c->out, &c->w->outpool, buf, len) < 0)
        return send_failed(c);
    c->w->local.bytes_queued += len;
    /* A handler producing a lot in one callback: start writing now so the
     * queue does not balloon before the loop regains control. A failure is
     * kept and ends the connection from the loop (never from inside this
     * call: the handler goes on using the connection after it returns). */
    if (c->state != CONN_CONNECTING && c->err == 0 &&
        mux__conn_out_cost(c) > c->w->opts->write_high_water) {
        int rc = c->t->flush(c);
        if (rc < 0)
            c->err = -rc;
    }
    queued(c);
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
        return send_failed(c);
    c->w->local.bytes_queued += len;
    queued(c);
    return 0;
}

MUX_API size_t mux_conn_pending(const struct mux_conn *c)
{
    MUX_ASSERT_OWNER(c);
    return mux__outq_bytes(&c->out);
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
