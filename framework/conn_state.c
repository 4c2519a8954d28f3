/* conn_state.c - the states of conn.h and the one function that changes
 * them, the connection's timer, and its end: end() runs on_close, release()
 * gives the socket back, settle() decides when a live connection is done.
 * Everything here runs on the owning worker thread. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler.h"
#include "conn.h"
#include "connpool.h"
#include "mux/log.h"
#include "server_priv.h"

#define LINGER_MS 5000    /* how long a closed connection waits for the peer's FIN */
#define DRAIN_QUIET_MS 50 /* shutdown: input silence before a connection is closed */

/* ---- states ---- */

static const char *const state_names[] = {
    [CONN_NEW] = "NEW",
    [CONN_PROXY_HEADER] = "PROXY_HEADER",
    [CONN_HANDSHAKE] = "HANDSHAKE",
    [CONN_CONNECTING] = "CONNECTING",
    [CONN_OPEN] = "OPEN",
    [CONN_DRAINING] = "DRAINING",
    [CONN_INPUT_DONE] = "INPUT_DONE",
    [CONN_CLOSING] = "CLOSING",
    [CONN_ABORTING] = "ABORTING",
    [CONN_LINGER] = "LINGER",
    [CONN_CLOSED] = "CLOSED",
};

#define TO(s) (1u << (s))
/* The transitions of conn.h, one row per state. */
static const unsigned allowed[] = {
    [CONN_NEW] = TO(CONN_PROXY_HEADER) | TO(CONN_HANDSHAKE) | TO(CONN_CONNECTING) | TO(CONN_OPEN) |
                 TO(CONN_CLOSED),
    [CONN_PROXY_HEADER] = TO(CONN_HANDSHAKE) | TO(CONN_OPEN) | TO(CONN_CLOSED),
    [CONN_HANDSHAKE] = TO(CONN_OPEN) | TO(CONN_CLOSED),
    [CONN_CONNECTING] = TO(CONN_OPEN) | TO(CONN_ABORTING) | TO(CONN_CLOSED),
    [CONN_OPEN] = TO(CONN_DRAINING) | TO(CONN_INPUT_DONE) | TO(CONN_CLOSING) |
                  TO(CONN_ABORTING) | TO(CONN_CLOSED),
    [CONN_DRAINING] = TO(CONN_INPUT_DONE) | TO(CONN_CLOSING) | TO(CONN_ABORTING) |
                      TO(CONN_LINGER) | TO(CONN_CLOSED),
    [CONN_INPUT_DONE] = TO(CONN_CLOSING) | TO(CONN_ABORTING) | TO(CONN_CLOSED),
    [CONN_CLOSING] = TO(CONN_ABORTING) | TO(CONN_LINGER) | TO(CONN_CLOSED),
    [CONN_ABORTING] = TO(CONN_CLOSED),
    [CONN_LINGER] = TO(CONN_CLOSED),
    [CONN_CLOSED] = 0,
};

/* The only place a connection's state changes. */
void mux__conn_set_state(struct mux_conn *c, enum mux__conn_state to, const char *why)
{
    assert(allowed[c->state] & TO(to));
    if (unlikely(!(allowed[c->state] & TO(to)))) {
        mux_log(MUX_LOG_ERROR, "conn %llu: illegal transition %s -> %s (%s)",
                (unsigned long long)c->id, state_names[c->state], state_names[to], why);
        return;
    }
    if (mux_log_enabled(MUX_LOG_DEBUG))
        mux_log(MUX_LOG_DEBUG, "conn %llu: %s -> %s (%s)", (unsigned long long)c->id,
                state_names[c->state], state_names[to], why);
    c->state = (uint8_t)to;
}

#ifndef NDEBUG
void mux__conn_assert_owner(const struct mux_conn *c)
{
    if (!pthread_equal(pthread_self(), c->w->tid)) {
        mux_log(MUX_LOG_ERROR, "mux_conn_* called for conn %llu off its worker's thread",
                (unsigned long long)c->id);
        abort();
    }
}
#endif

/* ---- interest and the timer ---- */

/* What the state needs from the socket; the transport registers it. */
void mux__conn_update_interest(struct mux_conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    uint32_t want = 0;
    if (c->state == CONN_CONNECTING)
        want = MUX_EV_WRITE; /* writability reports the connect's outcome */
    else if (c->state == CONN_HANDSHAKE || c->state == CONN_LINGER || mux__conn_can_read(c))
        want = MUX_EV_READ;
    if (c->state != CONN_LINGER && c->state != CONN_CONNECTING && c->state != CONN_HANDSHAKE &&
        !mux__outq_empty(&c->out))
        want |= MUX_EV_WRITE;
    int rc = c->t->want(c, want);
    if (rc == 0)
        return;
    if (c->state == CONN_LINGER)
        mux__conn_release(c);
    else
        mux__conn_fail(c, -rc);
}

/* The deadline (mux_conn_set_deadline) bounds the states the app steers. */
static bool deadline_applies(const struct mux_conn *c)
{
    return mux__conn_deadline(c) && c->state >= CONN_OPEN && c->state <= CONN_CLOSING;
}

void mux__conn_arm_timer(struct mux_conn *c, uint64_t due)
{
    if (deadline_applies(c) && (due == 0 || mux__conn_deadline(c) < due))
        due = mux__conn_deadline(c);
    if (due == 0)
        mux__timers_cancel(&c->w->timers, &c->timer);
    else
        mux__timers_arm(&c->w->timers, &c->timer, due);
}

void mux__conn_arm_idle(struct mux_conn *c)
{
    mux__conn_arm_timer(c, c->timeout_ms ? c->last_active + c->timeout_ms : 0);
}

void mux__conn_timeout(struct mux_conn *c)
{
    struct mux__worker *w = c->w;
    if (deadline_applies(c) && w->now_ms >= mux__conn_deadline(c)) {
        mux__conn_end(c, ETIMEDOUT, END_FIN, "deadline");
        return;
    }
    switch ((enum mux__conn_state)c->state) {
    case CONN_LINGER: /* the peer never sent its FIN: close anyway */
        mux__conn_release(c);
        return;
    case CONN_DRAINING: /* the quiet period may be over */
        mux__worker_defer(w, c);
        return;
    case CONN_NEW:
    case CONN_CLOSED:
    case CONN_ABORTING:
        return;
    case CONN_PROXY_HEADER:
        mux__conn_end(c, ETIMEDOUT, END_RESET, "no PROXY header in time");
        return;
    case CONN_HANDSHAKE:
        w->local.tls_failures++;
        mux__conn_end(c, ETIMEDOUT, END_RESET, "no handshake in time");
        return;
    case CONN_CONNECTING:
        mux__conn_end(c, ETIMEDOUT, END_FIN, "connect timeout");
        return;
    case CONN_OPEN:
    case CONN_INPUT_DONE:
    case CONN_CLOSING:
        break;
    }
    uint64_t due = c->last_active + c->timeout_ms;
    if (c->timeout_ms && due <= w->now_ms) {
        mux__conn_end(c, ETIMEDOUT, END_FIN, "idle timeout");
        return;
    }
    mux__conn_arm_idle(c); /* activity since it was armed: lazy re-arm */
}

/* ---- the end of a connection ---- */

static const char *close_reason(int err)
{
    return err ? strerror(err) : "orderly";
}

void mux__conn_end(struct mux_conn *c, int err, enum mux__ending how, const char *why)
{
    struct mux__worker *w = c->w;
    if (mux__conn_finished(c))
        return;
    if ((how == END_LINGER || how == END_LINGER_STRICT) && (c->flags & CONN_EOF_READ))
        how = END_FIN; /* the peer's FIN was read: nothing can follow it */
    /* An orderly end tells the peer so (TLS); errors end without it, so
     * the peer can tell. */
    if (c->t->close_notify && how != END_RESET && (err == 0 || err == ETIMEDOUT))
        c->t->close_notify(c);
    if ((how == END_LINGER || how == END_LINGER_STRICT) && mux__t_shut_write(c, c->t) < 0)
        how = END_FIN;
    if (how == END_RESET)
        mux__t_set_reset(c, c->t);
    bool linger = how == END_LINGER || how == END_LINGER_STRICT;
    if (how == END_LINGER_STRICT)
        c->flags |= CONN_STRICT_LINGER;
    mux__conn_set_state(c, linger ? CONN_LINGER : CONN_CLOSED, why);
    if (mux_log_enabled(MUX_LOG_DEBUG))
        mux_log(MUX_LOG_DEBUG, "conn %llu closed: %s (%s)", (unsigned long long)c->id,
                close_reason(err), why);
    w->local.closed_by[mux__close_reason_index(err)]++;
    if ((c->flags & CONN_ACCEPTED) && mux__conn_handler(c)->on_close)
        mux__conn_handler(c)->on_close(c, err);
    mux__conn_drop_output(c);
    mux__inbuf_free(&c->in, &w->inpool);
    if (!linger) {
        mux__conn_release(c);
        return;
    }
    mux__timers_arm(&w->timers, &c->timer, w->now_ms + LINGER_MS);
    mux__conn_update_interest(c);
}

void mux__conn_release(struct mux_conn *c)
{
    struct mux__worker *w = c->w;
    if (c->state == CONN_LINGER)
        mux__conn_set_state(c, CONN_CLOSED, "linger over");
    assert(c->state == CONN_CLOSED);
    mux_list_remove(&c->pending);
    mux__timers_cancel(&w->timers, &c->timer);
    c->t->release(c);
    close(c->fd);
    c->fd = -1;
    mux__conn_drop_cold(c);
    mux_list_add_tail(&w->dead, &c->pending);
    w->local.open--;
    w->local.closed++;
    if (c->flags & CONN_COUNTED)
        mux__server_release_slot(w->srv);
}

void mux__conn_fail(struct mux_conn *c, int err)
{
    mux__conn_end(c, err, err == ECONNABORTED ? END_RESET : END_FIN, "failure");
}

/* LINGER: input after a shutdown close was never answered: reset instead
 * of hiding it; after an app close it is discarded. */
void mux__conn_linger_input(struct mux_conn *c)
{
    if (!(c->flags & CONN_STRICT_LINGER))
        return;
    mux__t_set_reset(c, c->t);
    c->w->local.late_resets++;
    if (mux_log_enabled(MUX_LOG_DEBUG))
        mux_log(MUX_LOG_DEBUG, "conn %llu: input after the shutdown close: reset",
                (unsigned long long)c->id);
    mux__conn_release(c);
}

void mux__conn_drain(struct mux_conn *c)
{
    if (c->state == CONN_PROXY_HEADER || c->state == CONN_HANDSHAKE)
        mux__worker_defer(c->w, c); /* settle() closes it */
    if (c->state != CONN_OPEN)
        return; /* half-closed, closing or closed: finishing anyway */
    mux__conn_set_state(c, CONN_DRAINING, "server shutdown");
    c->input = INPUT_MAYBE;
    mux__timers_cancel(&c->w->timers, &c->timer); /* the grace period bounds it now */
    mux__worker_defer(c->w, c); /* mux__conn_process reads, answers, closes */
}

void mux__conn_kill(struct mux_conn *c, int err)
{
    if (c->state == CONN_LINGER)
        mux__conn_release(c);
    else if (c->state == CONN_ABORTING)
        mux__conn_end(c, ECONNABORTED, END_RESET, "app abort");
    else if (c->state != CONN_CLOSED)
        mux__conn_end(c, err, END_RESET, "grace period over");
}

void mux__conn_free(struct mux_conn *c)
{
    mux_list_remove(&c->pending);
    if (c->t->free && c->t->free(c))
        return; /* an operation still refers to it: the transport frees it */
    mux__connpool_put(&c->w->conns, c);
}

/* ---- closing when the state's work is done ---- */

static unsigned drain_quiet_ms(const struct mux_conn *c)
{
    unsigned q = c->w->opts->shutdown_grace_ms / 4;
    return q < DRAIN_QUIET_MS ? q : DRAIN_QUIET_MS;
}

/* Nothing left to send, produce or deliver. */
static bool output_done(const struct mux_conn *c)
{
    return mux__outq_empty(&c->out) && !(c->flags & CONN_WANT_WRITABLE);
}

/* DRAINING: may close once everything read was answered and the client has
 * been silent for a while; a last peek makes sure nothing is waiting. */
static bool drained(struct mux_conn *c)
{
    if (!output_done(c) || mux__inbuf_len(&c->in) > 0 || !mux__conn_can_read(c) || c->input != INPUT_EMPTY)
        return false;
    uint64_t due = c->last_input + drain_quiet_ms(c);
    if (c->w->now_ms < due) {
        mux__timers_arm(&c->w->timers, &c->timer, due);
        return false;
    }
    int held = mux__t_held(c, c->t);
    if (held == HELD_PARTIAL)
        return false; /* half a unit came: its rest will, with readiness */
    if (held != HELD_READY && !mux__t_input_waiting(c, c->t))
        return true;
    c->input = INPUT_MAYBE; /* data, FIN or an error: the read path deals with it */
    mux__worker_defer(c->w, c);
    return false;
}

/* mux_conn_shutdown_write: our FIN goes out once the queue is empty. False
 * if that failed and ended the connection. */
static bool shut_write_when_flushed(struct mux_conn *c)
{
    if (c->wr != WR_FIN_PENDING || !mux__outq_empty(&c->out) || c->state < CONN_OPEN ||
        c->state > CONN_INPUT_DONE)
        return true;
    if (c->t->close_notify)
        c->t->close_notify(c); /* the transport's end of data, then TCP's */
    int rc = mux__t_shut_write(c, c->t);
    if (rc < 0) {
        mux__conn_fail(c, -rc);
        return false;
    }
    c->wr = WR_FIN_SENT;
    return true;
}

/* INPUT_DONE: on_eof once everything was offered; closes once flushed
 * (after the app shut its side, when it has on_eof). True if it closed. */
static bool input_done_settled(struct mux_conn *c)
{
    bool held = mux__inbuf_len(&c->in) > 0 && (c->flags & (CONN_READ_PAUSED | CONN_READ_BLOCKED));
    if (!held && mux__conn_handler(c)->on_eof && !(c->flags & CONN_EOF_TOLD)) {
        c->flags |= CONN_EOF_TOLD;
        mux__conn_handler(c)->on_eof(c);
        mux__worker_defer(c->w, c); /* settle again after what it did */
        return false;
    }
    if (output_done(c) && !held && (!mux__conn_handler(c)->on_eof || c->wr != WR_OPEN)) {
        mux__conn_end(c, 0, END_FIN, "peer FIN, output flushed");
        return true;
    }
    return false;
}

void mux__conn_settle(struct mux_conn *c)
{
    if (c->err && c->state >= CONN_OPEN && !mux__conn_finished(c)) {
        mux__conn_fail(c, c->err); /* met inside a call: it ends the connection, not a FIN */
        return;
    }
    if (!shut_write_when_flushed(c))
        return;
    switch ((enum mux__conn_state)c->state) {
    case CONN_PROXY_HEADER:
    case CONN_HANDSHAKE:
        if (c->w->stopping) { /* never handed to the app: nothing to answer */
            mux__conn_end(c, ESHUTDOWN, END_FIN, "shutdown before on_accept");
            return;
        }
        break;
    case CONN_NEW:
    case CONN_CONNECTING:
    case CONN_OPEN:
        break;
    case CONN_DRAINING:
        if (drained(c)) {
            mux__conn_end(c, 0, END_LINGER_STRICT, "shutdown: answered and quiet");
            return;
        }
        break;
    case CONN_INPUT_DONE:
        if (input_done_settled(c))
            return;
        break;
    case CONN_CLOSING:
        if (mux__outq_empty(&c->out)) {
            mux__conn_end(c, 0, END_LINGER, "app close, output flushed");
            return;
        }
        break;
    case CONN_ABORTING:
        mux__conn_end(c, ECONNABORTED, END_RESET, "app abort");
        return;
    case CONN_LINGER:
    case CONN_CLOSED:
        return;
    }
    mux__conn_update_interest(c);
}
