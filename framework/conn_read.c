/* conn_read.c - a connection's input: reading the socket through the
 * transport (readiness) or taking what it received (completions), the
 * input buffer bounded by max_input, delivery to on_read, the peer's FIN,
 * reading to the end while shutting down, and lingering after the close.
 * Worker thread only. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "compiler.h"
#include "conn.h"
#include "mux/log.h"
#include "proxy_proto.h"

#define ET_READS_PER_EVENT 16 /* edge-triggered read budget before yielding */
#define DRAIN_READS 64        /* reads per connection per turn while shutting down */
#define LINGER_READS 16       /* discarding reads per turn while lingering */

/* on_read, clamped to what it was offered. */
static size_t offer(struct mux_conn *c, const char *data, size_t len)
{
    size_t n = mux__conn_handler(c)->on_read(c, data, len);
    if (unlikely(n > len)) {
        mux_log(MUX_LOG_ERROR, "%s: on_read consumed %zu of %zu bytes; clamped",
                mux__conn_handler(c)->name ? mux__conn_handler(c)->name : "handler", n, len);
        n = len;
    }
    return n;
}

/* Offers buffered input to on_read while it consumes and may be delivered. */
void mux__conn_deliver(struct mux_conn *c)
{
    while (mux__inbuf_len(&c->in) > 0 && mux__conn_can_deliver(c)) {
        size_t n = offer(c, mux__inbuf_data(&c->in), mux__inbuf_len(&c->in));
        mux__inbuf_consume(&c->in, n);
        if (n == 0)
            break;
    }
    if (!mux__conn_finished(c))
        mux__inbuf_release_if_empty(&c->in, &c->w->inpool);
}

/* n bytes were added to the input buffer: count them, then the PROXY
 * header or the handler. */
static void took_input(struct mux_conn *c, size_t n)
{
    c->w->local.bytes_in += n;
    c->last_active = c->last_input = c->w->now_ms;
    if (c->state == CONN_PROXY_HEADER)
        mux__conn_proxy_header(c);
    mux__conn_deliver(c);
}

/* The peer's FIN: deliver what is left, then close once the output is
 * flushed (settle() decides when). */
static void input_done(struct mux_conn *c)
{
    if (c->state == CONN_PROXY_HEADER) { /* gone before its header was complete */
        mux__conn_end(c, ECONNRESET, END_FIN, "EOF before the PROXY header");
        return;
    }
    c->flags |= CONN_PEER_HUP | CONN_EOF_READ;
    mux__conn_set_state(c, CONN_INPUT_DONE, "peer FIN");
    mux__conn_deliver(c);
    mux__worker_defer(c->w, c);
}

/* ---- readiness: the core reads ---- */

/* PROXY_HEADER before a handshake: takes no byte past the header, so the
 * handshake's bytes stay in the socket for the transport. A peek that does
 * not complete the header is all header and is taken whole. */
static ssize_t proxy_read(struct mux_conn *c, char *p, size_t avail)
{
    ssize_t n = c->t->read(c, p, avail, true);
    if (n <= 0)
        return n;
    struct mux__proxy_result r;
    int hdr = mux__proxy_parse(mux__inbuf_data(&c->in), mux__inbuf_len(&c->in) + (size_t)n, &r);
    size_t take = hdr > 0 ? (size_t)hdr - mux__inbuf_len(&c->in) : (size_t)n;
    return c->t->read(c, p, take, false);
}

enum read_result {
    READ_FULL,  /* filled the space offered (or one unit): more may be waiting */
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
    bool exact = c->state == CONN_PROXY_HEADER && c->t->handshake;
    ssize_t n = exact ? proxy_read(c, p, avail) : c->t->read(c, p, avail, false);
    if (n > 0) {
        c->input = INPUT_UNKNOWN;
        mux__inbuf_commit(&c->in, (size_t)n);
        took_input(c, (size_t)n);
        if (!mux__conn_can_read(c))
            return READ_STOP;
        if (mux__t_held(c, c->t) == HELD_READY) { /* bytes no readiness reports */
            c->input = INPUT_MAYBE;
            mux__worker_defer(c->w, c);
        }
        return (size_t)n == avail || c->t->unit_reads ? READ_FULL : READ_SHORT;
    }
    if (n == 0) {
        input_done(c);
        return READ_STOP;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->input = INPUT_EMPTY;
        mux__inbuf_release_if_empty(&c->in, &c->w->inpool);
        return READ_EMPTY;
    }
    if (errno == EINTR)
        return READ_FULL;
    mux__conn_fail(c, errno);
    return READ_STOP;
}

/* Level triggered: one read per readiness event, so a busy client cannot
 * starve the others. Edge triggered: read until drained, at most
 * ET_READS_PER_EVENT times (the rest is picked up from the pending list).
 * A short read is taken as drained unless the poller announced the peer's
 * FIN: data and FIN can arrive in one edge, and the FIN must still be read. */
void mux__conn_readable(struct mux_conn *c)
{
    if (c->input == INPUT_MAYBE)
        c->input = INPUT_UNKNOWN;
    if (!c->w->opts->edge_triggered) {
        read_once(c);
        return;
    }
    for (int i = 0; i < ET_READS_PER_EVENT; i++) {
        enum read_result r = read_once(c);
        if (r == READ_FULL || (r == READ_SHORT && (c->flags & CONN_PEER_HUP)))
            continue;
        return;
    }
    c->input = INPUT_MAYBE;
    mux__worker_defer(c->w, c);
}

/* Shutdown: read until the socket is empty (bounded per turn), so whatever
 * the client sent is answered. */
void mux__conn_drain_input(struct mux_conn *c)
{
    if (c->input == INPUT_MAYBE)
        c->input = INPUT_UNKNOWN;
    for (int i = 0; i < DRAIN_READS; i++) {
        if (!mux__conn_can_read(c))
            return;
        enum read_result r = read_once(c);
        if (r == READ_EMPTY || r == READ_STOP)
            return;
    }
    c->input = INPUT_MAYBE;
    mux__worker_defer(c->w, c); /* more next turn */
}

/* LINGER: discard input until the peer's FIN. */
void mux__conn_linger_read(struct mux_conn *c)
{
    char sink[4096];
    for (int i = 0; i < LINGER_READS; i++) {
        ssize_t n = c->t->read(c, sink, sizeof(sink), false);
        if (n > 0) {
            mux__conn_linger_input(c);
            if (c->state == CONN_CLOSED)
                return;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        mux__conn_release(c); /* EOF or error: done lingering */
        return;
    }
    mux__worker_defer(c->w, c); /* more to discard: next turn, even when edge triggered */
}

/* ---- completions: the transport received ---- */

/* Copies what the handler left into the input buffer, bounded by
 * max_input like a read, plus what the transport says may still arrive
 * after the core stopped reading. False if that ended the connection. */
static bool keep_input(struct mux_conn *c, const char *data, size_t len)
{
    size_t limit = c->w->opts->max_input + mux__t_late_input(c, c->t);
    while (len > 0) {
        size_t avail;
        char *p = mux__inbuf_space(&c->in, &c->w->inpool, limit, &avail);
        if (!p) {
            mux__conn_fail(c, avail == 0 ? EMSGSIZE : ENOMEM);
            return false;
        }
        size_t n = len < avail ? len : avail;
        memcpy(p, data, n);
        mux__inbuf_commit(&c->in, n);
        data += n;
        len -= n;
    }
    return true;
}

/* With nothing buffered, on_read gets the transport's buffer itself; only
 * what it leaves is copied. Input that arrives while reading is stopped
 * (the receive is being cancelled) waits in the input buffer. */
void mux__conn_received(struct mux_conn *c, const char *data, size_t len)
{
    if (c->state == CONN_LINGER) {
        mux__conn_linger_input(c);
        return;
    }
    if (c->state != CONN_PROXY_HEADER && !mux__conn_live(c))
        return; /* closing: no more input is delivered */
    if (mux__inbuf_len(&c->in) == 0 && mux__conn_can_deliver(c)) {
        c->w->local.bytes_in += len;
        c->last_active = c->last_input = c->w->now_ms;
        size_t n = offer(c, data, len);
        if (n == len || !mux__conn_live(c)) {
            if (!mux__conn_finished(c))
                mux__inbuf_release_if_empty(&c->in, &c->w->inpool);
            return;
        }
        if (keep_input(c, data + n, len - n) && n > 0)
            mux__conn_deliver(c); /* (not again after an on_read that took nothing) */
        return;
    }
    if (keep_input(c, data, len))
        took_input(c, len);
}

void mux__conn_received_eof(struct mux_conn *c)
{
    if (c->state == CONN_LINGER) {
        mux__conn_release(c);
        return;
    }
    c->flags |= CONN_PEER_HUP | CONN_EOF_READ; /* closing states: end() needs no linger */
    if (c->state == CONN_PROXY_HEADER || c->state == CONN_OPEN || c->state == CONN_DRAINING)
        input_done(c);
}
