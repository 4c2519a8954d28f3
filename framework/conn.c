/* conn.c - a connection's life on its worker: the states of conn.h and the
 * one function that changes them, the read path that feeds on_read, the
 * decisions taken on the write path's results (water marks, on_writable,
 * when to close), timeouts, shutdown, linger and free. The write I/O itself
 * is conn_write.c. Everything here runs on the owning worker thread. */
#include <assert.h>
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
#include "proxy_proto.h"
#include "server_priv.h"
#include "tls.h"

#define LINGER_MS 5000        /* how long a closed connection waits for the peer's FIN */
#define DRAIN_QUIET_MS 50     /* shutdown: input silence before a connection is closed */
#define ET_READS_PER_EVENT 16 /* edge-triggered read budget before yielding */
#define DRAIN_READS 64        /* reads per connection per turn while shutting down */
#define LINGER_READS 16       /* discarding reads per turn while lingering */
#define PROXY_HEADER_MS 10000 /* a PROXY header must arrive within this (or the idle timeout) */
/* io_uring: what a cancelled receive may still bring, at most the worker's
 * provided buffers (one loop turn's completions cannot hold more). */
#define LATE_INPUT ((size_t)URING_BUFS * URING_BUF_SIZE)

static _Atomic uint64_t next_conn_id = 1;

/* ---- states ---- */

static const char *const state_names[] = {
    [CONN_PROXY_HEADER] = "PROXY_HEADER", [CONN_TLS_HANDSHAKE] = "TLS_HANDSHAKE",
    [CONN_CONNECTING] = "CONNECTING", [CONN_OPEN] = "OPEN",
    [CONN_DRAINING] = "DRAINING", [CONN_INPUT_DONE] = "INPUT_DONE",
    [CONN_CLOSING] = "CLOSING",   [CONN_ABORTING] = "ABORTING", [CONN_LINGER] = "LINGER",
    [CONN_CLOSED] = "CLOSED",
};

#define TO(s) (1u << (s))
/* The transitions of conn.h, one row per state. */
static const unsigned allowed[] = {
    [CONN_PROXY_HEADER] = TO(CONN_TLS_HANDSHAKE) | TO(CONN_OPEN) | TO(CONN_CLOSED),
    [CONN_TLS_HANDSHAKE] = TO(CONN_OPEN) | TO(CONN_CLOSED),
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
static void set_state(struct mux_conn *c, enum mux__conn_state to, const char *why)
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

/* ---- poller interest and timers ---- */

static void fail(struct mux_conn *c, int err);
static void release(struct mux_conn *c);
static void accepted(struct mux_conn *c);
static void deliver(struct mux_conn *c);
static void start_tls(struct mux_conn *c);

/* Completion path: a receive is armed while the connection reads, except
 * while buffered input waits for deferred work to deliver it (after a
 * resume): what a cancelled receive left there must go first, or the
 * buffer would keep growing past max_input. */
static bool uring_wants_input(const struct mux_conn *c)
{
    if (c->state == CONN_LINGER)
        return true;
    return mux__conn_can_read(c) && !(c->in.len > 0 && mux_list_linked(&c->pending));
}

static void update_interest(struct mux_conn *c)
{
    if (c->state == CONN_CLOSED || (c->flags & CONN_UNPOLLED))
        return;
    if (c->u) { /* completion path: only reading is armed; output is submitted as it comes */
        mux__uring_conn_want_read(c, uring_wants_input(c));
        return;
    }
    uint32_t want = 0;
    if (c->state == CONN_CONNECTING)
        want = MUX_EV_WRITE; /* writability reports the connect's outcome */
    else if (c->state == CONN_TLS_HANDSHAKE)
        want = c->flags & CONN_TLS_WANT_WRITE ? MUX_EV_WRITE : MUX_EV_READ;
    else if (c->state == CONN_LINGER || mux__conn_can_read(c))
        want |= MUX_EV_READ;
    if (c->state != CONN_LINGER && c->state != CONN_CONNECTING && !mux__outq_empty(&c->out))
        want |= MUX_EV_WRITE;
    if (c->state >= CONN_OPEN && c->state < CONN_LINGER) /* OpenSSL's own needs (tls.c) */
        want |= (c->flags & CONN_TLS_WANT_WRITE ? MUX_EV_WRITE : 0u) |
                (c->flags & CONN_TLS_WANT_READ ? MUX_EV_READ : 0u);
    if (want == c->interest)
        return;
    int rc = c->w->pops->mod(c->w->poller, c->fd, c, want);
    if (rc == 0)
        c->interest = want;
    else if (c->state == CONN_LINGER)
        release(c);
    else
        fail(c, -rc);
}

static void arm_idle_timer(struct mux_conn *c)
{
    if (c->timeout_ms == 0) {
        mux__timers_cancel(&c->w->timers, &c->timer);
        return;
    }
    mux__timers_arm(&c->w->timers, &c->timer, c->last_active + c->timeout_ms);
}

/* ---- the end of a connection ---- */

enum ending {
    END_FIN,           /* close(): an orderly FIN */
    END_RESET,         /* SO_LINGER 0, close(): the peer sees a reset */
    END_LINGER,        /* FIN, then discard input until the peer's FIN */
    END_LINGER_STRICT, /* FIN, then reset if input still arrives */
};

static const char *close_reason(int err)
{
    return err ? strerror(err) : "orderly";
}

/* Runs on_close once and either starts lingering or releases the socket. */
static void end(struct mux_conn *c, int err, enum ending how, const char *why)
{
    struct mux__worker *w = c->w;
    if (mux__conn_finished(c))
        return;
    if ((how == END_LINGER || how == END_LINGER_STRICT) && (c->flags & CONN_EOF_READ))
        how = END_FIN; /* the peer's FIN was read: nothing can follow it */
    if (c->ssl && how != END_RESET && (err == 0 || err == ETIMEDOUT))
        mux__tls_close_notify(c); /* an orderly end; errors end without it, so the peer can tell */
    if ((how == END_LINGER || how == END_LINGER_STRICT) && shutdown(c->fd, SHUT_WR) < 0)
        how = END_FIN;
    if (how == END_RESET) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    bool linger = how == END_LINGER || how == END_LINGER_STRICT;
    if (how == END_LINGER_STRICT)
        c->flags |= CONN_STRICT_LINGER;
    set_state(c, linger ? CONN_LINGER : CONN_CLOSED, why);
    if (mux_log_enabled(MUX_LOG_DEBUG))
        mux_log(MUX_LOG_DEBUG, "conn %llu closed: %s (%s)", (unsigned long long)c->id,
                close_reason(err), why);
    w->local.closed_by[mux__close_reason_index(err)]++;
    if ((c->flags & CONN_ACCEPTED) && c->h->on_close)
        c->h->on_close(c, err);
    mux__conn_drop_output(c);
    mux__inbuf_free(&c->in, &w->inpool);
    if (!linger) {
        release(c);
        return;
    }
    mux__timers_arm(&w->timers, &c->timer, w->now_ms + LINGER_MS);
    update_interest(c);
}

/* Gives the descriptor back; the struct is freed after the loop turn. */
static void release(struct mux_conn *c)
{
    struct mux__worker *w = c->w;
    if (c->state == CONN_LINGER)
        set_state(c, CONN_CLOSED, "linger over");
    assert(c->state == CONN_CLOSED);
    mux_list_remove(&c->pending);
    mux__timers_cancel(&w->timers, &c->timer);
    if (c->u)
        mux__uring_conn_release(c); /* the ops hold the socket until cancelled */
    else if (!(c->flags & CONN_UNPOLLED))
        w->pops->del(w->poller, c->fd);
    if (c->ssl)
        mux__tls_free(c);
    close(c->fd);
    c->fd = -1;
    free(c->proxied);
    c->proxied = NULL;
    mux_list_remove(&c->node);
    mux_list_add_tail(&w->dead, &c->node);
    w->local.open--;
    w->local.closed++;
    if (c->flags & CONN_COUNTED)
        mux__server_release_slot(w->srv);
}

/* Failure: drop output, close now, on_close(c, err). */
static void fail(struct mux_conn *c, int err)
{
    end(c, err, err == ECONNABORTED ? END_RESET : END_FIN, "failure");
}

/* ---- open ---- */

/* A connection on fd in `state`, in the worker's list and counters. */
static struct mux_conn *conn_new(struct mux__worker *w, int fd, const struct mux_handler *h,
                                 enum mux__conn_state state)
{
    struct mux_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->fd = fd;
    c->w = w;
    c->h = h;
    c->id = atomic_fetch_add_explicit(&next_conn_id, 1, memory_order_relaxed);
    c->state = (uint8_t)state;
    c->last_active = c->last_input = w->now_ms;
    c->timeout_ms = w->opts->idle_timeout_ms;
    mux_list_init(&c->pending);
    mux_list_add_tail(&w->conns, &c->node);
    w->local.open++;
    if (w->opts->tcp_nodelay) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return c;
}

void mux__conn_open(struct mux__worker *w, int fd)
{
    struct mux_conn *c = conn_new(w, fd, w->handler, CONN_OPEN);
    if (!c) {
        mux_log(MUX_LOG_ERROR, "out of memory for a new connection");
        close(fd);
        mux__server_release_slot(w->srv);
        return;
    }
    c->flags = CONN_COUNTED;
    w->local.accepted++;
    /* TLS connections stay on the readiness path (OpenSSL reads and writes
     * the socket itself), also under the uring poller. */
    bool completion = !w->tls && mux__uring_conn_start(c);
    int rc = completion ? 0 : w->pops->add(w->poller, fd, c, MUX_EV_READ);
    if (rc < 0) {
        mux__worker_refused(w, fd, -rc);
        end(c, -rc, END_FIN, "cannot watch"); /* on_accept never ran: no on_close */
        return;
    }
    c->interest = MUX_EV_READ;
    if (w->opts->proxy_protocol) { /* on_accept waits for the header (then the handshake) */
        c->state = CONN_PROXY_HEADER;
        unsigned t = w->opts->idle_timeout_ms;
        mux__timers_arm(&w->timers, &c->timer,
                        w->now_ms + (t && t < PROXY_HEADER_MS ? t : PROXY_HEADER_MS));
        return;
    }
    if (w->tls) { /* on_accept waits for the handshake */
        start_tls(c);
        return;
    }
    arm_idle_timer(c);
    accepted(c);
}

/* -> TLS_HANDSHAKE, with its deadline. The first step runs on readiness. */
static void start_tls(struct mux_conn *c)
{
    struct mux__worker *w = c->w;
    int rc = mux__tls_start(c);
    if (rc < 0) {
        end(c, -rc, END_RESET, "no TLS session");
        return;
    }
    if (c->state == CONN_PROXY_HEADER)
        set_state(c, CONN_TLS_HANDSHAKE, "PROXY header");
    else
        c->state = CONN_TLS_HANDSHAKE; /* a new connection's first state */
    unsigned t = w->opts->idle_timeout_ms;
    mux__timers_arm(&w->timers, &c->timer, w->now_ms + (t ? t : MUX__TLS_HANDSHAKE_MS));
}

/* TLS_HANDSHAKE: one step; once complete the connection is the handler's.
 * A failure closes it without on_close (tls.c counts it). */
static void tls_handshake(struct mux_conn *c)
{
    int rc = mux__tls_handshake(c);
    if (rc == 0) {
        update_interest(c);
        return;
    }
    if (rc < 0) {
        end(c, -rc, END_FIN, "TLS handshake failed");
        return;
    }
    set_state(c, CONN_OPEN, "TLS handshake");
    c->last_active = c->last_input = c->w->now_ms;
    arm_idle_timer(c);
    /* Data may have come with the client's last flight: nothing will report it. */
    c->flags |= CONN_READ_AGAIN;
    mux__worker_defer(c->w, c);
    accepted(c);
}

/* The connection is the handler's from here: on_accept, then input. */
static void accepted(struct mux_conn *c)
{
    struct mux__worker *w = c->w;
    if (mux_log_enabled(MUX_LOG_DEBUG)) {
        char peer[MUX_ADDR_MAX];
        mux_log(MUX_LOG_DEBUG, "conn %llu open: %s on worker %u", (unsigned long long)c->id,
                mux_conn_peer_str(c, peer, sizeof(peer)), w->index);
    }
    c->flags |= CONN_ACCEPTED;
    if (c->h->on_accept) {
        int rc = c->h->on_accept(c);
        if (rc != 0) {
            fail(c, rc > 0 ? rc : ECONNREFUSED);
            return;
        }
    }
    if (w->stopping) /* handed over just before the shutdown began */
        mux__conn_drain(c);
}

/* PROXY_HEADER: is the header complete in what was read so far? Then the
 * connection opens with the address it carries; a bad header closes it. */
static void proxy_header(struct mux_conn *c)
{
    struct mux__proxy_result r;
    int n = mux__proxy_parse(mux__inbuf_data(&c->in), c->in.len, &r);
    if (n == 0)
        return;
    if (n < 0) {
        mux_log(MUX_LOG_DEBUG, "conn %llu: no valid PROXY header: closed",
                (unsigned long long)c->id);
        end(c, EPROTO, END_RESET, "bad PROXY header");
        return;
    }
    mux__inbuf_consume(&c->in, (size_t)n);
    if (r.has_addrs) {
        c->proxied = malloc(sizeof(*c->proxied));
        if (!c->proxied) {
            end(c, ENOMEM, END_RESET, "out of memory");
            return;
        }
        c->proxied->addr = r.src;
        c->proxied->len = r.src_len;
    }
    if (c->w->tls) { /* the ClientHello follows, still in the socket (proxy_read) */
        mux__timers_cancel(&c->w->timers, &c->timer);
        start_tls(c);
        mux__worker_defer(c->w, c);
        return;
    }
    set_state(c, CONN_OPEN, "PROXY header");
    c->last_active = c->w->now_ms;
    arm_idle_timer(c);
    accepted(c);
}

/* ---- outbound: connect ---- */

int mux__conn_connect(struct mux__worker *w, const struct sockaddr *addr, socklen_t len,
                      const struct mux_handler *h, void *data, unsigned timeout_ms,
                      struct mux_conn **out)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct mux_conn *c = conn_new(w, fd, h, CONN_CONNECTING);
    if (!c) {
        close(fd);
        return -ENOMEM;
    }
    c->flags = CONN_OUTBOUND;
    c->data = data;
    if (connect(fd, addr, len) == 0)
        c->flags |= CONN_CONNECTED; /* reported from the loop, never from here */
    else if (errno != EINPROGRESS)
        c->connect_err = errno;
    int rc = w->pops->add(w->poller, fd, c, MUX_EV_WRITE);
    if (rc < 0) {
        end(c, -rc, END_FIN, "cannot watch"); /* not returned yet: no on_close owed */
        return rc;
    }
    c->interest = MUX_EV_WRITE;
    c->flags |= CONN_ACCEPTED; /* from here on_close is owed */
    if (timeout_ms)
        mux__timers_arm(&w->timers, &c->timer, w->now_ms + timeout_ms);
    if (c->flags & CONN_CONNECTED || c->connect_err)
        mux__worker_defer(w, c);
    if (mux_log_enabled(MUX_LOG_DEBUG))
        mux_log(MUX_LOG_DEBUG, "conn %llu connecting on worker %u", (unsigned long long)c->id,
                w->index);
    *out = c;
    return 0;
}

/* CONNECTING -> OPEN: what was asked meanwhile takes effect now. */
static void connected(struct mux_conn *c)
{
    struct mux__worker *w = c->w;
    set_state(c, CONN_OPEN, "connected");
    c->last_active = c->last_input = w->now_ms;
    mux__timers_cancel(&w->timers, &c->timer);
    arm_idle_timer(c);
    if (c->h->on_connect)
        c->h->on_connect(c);
    if (c->state == CONN_OPEN && (c->flags & CONN_CLOSE_ASKED)) {
        set_state(c, CONN_CLOSING, "app close while connecting");
        c->flags &= ~CONN_WANT_WRITABLE;
    }
    if (w->stopping)
        mux__conn_drain(c);
    mux__worker_defer(w, c); /* flush what was queued, start reading */
}

/* CONNECTING: the poller reported the outcome (writable, error or hangup). */
static void connect_done(struct mux_conn *c, uint32_t events)
{
    int err = 0;
    socklen_t elen = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
        err = errno;
    if (!err && (events & (MUX_EV_ERROR | MUX_EV_HUP)))
        err = ECONNREFUSED;
    if (err)
        end(c, err, END_FIN, "connect failed");
    else
        connected(c);
}

/* CONNECTING, from the deferred pass: connect() gave its answer at once. */
static void connect_immediate(struct mux_conn *c)
{
    if (c->connect_err)
        end(c, c->connect_err, END_FIN, "connect failed");
    else if (c->flags & CONN_CONNECTED)
        connected(c);
}

/* ---- the read path ---- */

/* Offers buffered input to on_read while it consumes and may be delivered. */
static void deliver(struct mux_conn *c)
{
    while (c->in.len > 0 && mux__conn_can_deliver(c)) {
        size_t len = c->in.len;
        size_t n = c->h->on_read(c, mux__inbuf_data(&c->in), len);
        if (unlikely(n > len)) {
            mux_log(MUX_LOG_ERROR, "%s: on_read consumed %zu of %zu bytes; clamped",
                    c->h->name ? c->h->name : "handler", n, len);
            n = len;
        }
        mux__inbuf_consume(&c->in, n);
        if (n == 0)
            break;
    }
    if (!mux__conn_finished(c))
        mux__inbuf_release_if_empty(&c->in, &c->w->inpool);
}

/* The peer's FIN: deliver what is left, then close once the output is
 * flushed (settle() decides when). */
static void input_done(struct mux_conn *c)
{
    if (c->state == CONN_PROXY_HEADER) { /* gone before its header was complete */
        end(c, ECONNRESET, END_FIN, "EOF before the PROXY header");
        return;
    }
    c->flags |= CONN_PEER_HUP | CONN_EOF_READ;
    set_state(c, CONN_INPUT_DONE, "peer FIN");
    deliver(c);
    mux__worker_defer(c->w, c);
}

/* PROXY_HEADER before TLS: takes no byte past the header, so the
 * ClientHello stays in the socket for OpenSSL. A peek that does not
 * complete the header is all header and is taken whole. */
static ssize_t proxy_read(struct mux_conn *c, char *p, size_t avail)
{
    ssize_t n = recv(c->fd, p, avail, MSG_PEEK);
    if (n <= 0)
        return n;
    struct mux__proxy_result r;
    int hdr = mux__proxy_parse(mux__inbuf_data(&c->in), c->in.len + (size_t)n, &r);
    size_t take = hdr > 0 ? (size_t)hdr - c->in.len : (size_t)n;
    return recv(c->fd, p, take, 0);
}

/* read(2) for this connection: plain, TLS, or a PROXY header before TLS. */
static ssize_t conn_read(struct mux_conn *c, char *p, size_t avail)
{
    if (c->ssl)
        return mux__tls_read(c, p, avail);
    if (c->state == CONN_PROXY_HEADER && c->w->tls)
        return proxy_read(c, p, avail);
    return read(c->fd, p, avail);
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
    if (c->u) /* completion path: the multishot receive reads, in order */
        return READ_STOP;
    size_t avail;
    char *p = mux__inbuf_space(&c->in, &c->w->inpool, c->w->opts->max_input, &avail);
    if (!p) {
        fail(c, avail == 0 ? EMSGSIZE : ENOMEM);
        return READ_STOP;
    }
    ssize_t n = conn_read(c, p, avail);
    if (n > 0) {
        c->flags &= ~CONN_QUIET;
        mux__inbuf_commit(&c->in, (size_t)n);
        c->w->local.bytes_in += (uint64_t)n;
        c->last_active = c->last_input = c->w->now_ms;
        if (c->state == CONN_PROXY_HEADER)
            proxy_header(c);
        deliver(c);
        if (!mux__conn_can_read(c))
            return READ_STOP;
        if (c->ssl) { /* one record per read: only EAGAIN says the socket is empty */
            if (mux__tls_pending(c)) {
                c->flags |= CONN_READ_AGAIN; /* decrypted bytes no readiness reports */
                mux__worker_defer(c->w, c);
            }
            return READ_FULL;
        }
        return (size_t)n == avail ? READ_FULL : READ_SHORT;
    }
    if (n == 0) {
        input_done(c);
        return READ_STOP;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->flags |= CONN_QUIET;
        mux__inbuf_release_if_empty(&c->in, &c->w->inpool);
        return READ_EMPTY;
    }
    if (errno == EINTR)
        return READ_FULL;
    fail(c, errno);
    return READ_STOP;
}

/* Level triggered: one read per readiness event, so a busy client cannot
 * starve the others. Edge triggered: read until drained, at most
 * ET_READS_PER_EVENT times (the rest is picked up from the pending list).
 * A short read is taken as drained unless the poller announced the peer's
 * FIN: data and FIN can arrive in one edge, and the FIN must still be read. */
static void on_readable(struct mux_conn *c)
{
    c->flags &= ~CONN_READ_AGAIN;
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
    c->flags |= CONN_READ_AGAIN;
    mux__worker_defer(c->w, c);
}

/* Shutdown: read until the socket is empty (bounded per turn), so whatever
 * the client sent is answered. */
static void drain_input(struct mux_conn *c)
{
    c->flags &= ~CONN_READ_AGAIN;
    for (int i = 0; i < DRAIN_READS; i++) {
        if (!mux__conn_can_read(c))
            return;
        enum read_result r = read_once(c);
        if (r == READ_EMPTY || r == READ_STOP)
            return;
    }
    c->flags |= CONN_READ_AGAIN;
    mux__worker_defer(c->w, c); /* more next turn */
}

/* LINGER: discard input until the peer's FIN; after a shutdown close, input
 * that still arrives was never answered, so reset instead of hiding it. */
static void linger_read(struct mux_conn *c)
{
    if (c->u) /* completion path: mux__conn_received() sees what arrives */
        return;
    char sink[4096];
    for (int i = 0; i < LINGER_READS; i++) {
        ssize_t n = c->ssl ? mux__tls_read(c, sink, sizeof(sink)) : read(c->fd, sink, sizeof(sink));
        if (n > 0 && (c->flags & CONN_STRICT_LINGER)) {
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            c->w->local.late_resets++;
            if (mux_log_enabled(MUX_LOG_DEBUG))
                mux_log(MUX_LOG_DEBUG, "conn %llu: input after the shutdown close: reset",
                        (unsigned long long)c->id);
            release(c);
            return;
        }
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        release(c); /* EOF or error: done lingering */
        return;
    }
    mux__worker_defer(c->w, c); /* more to discard: next turn, even when edge triggered */
}

static int socket_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    return err ? err : ECONNRESET;
}

/* ---- the write path's results ---- */

/* Water marks and on_writable once the queue is at or below the low-water
 * mark. Loop context only (never inside another callback). */
static void after_write(struct mux_conn *c)
{
    const struct mux_options *o = c->w->opts;
    if (mux__conn_out_cost(c) > o->write_low_water)
        return;
    if (c->flags & CONN_READ_BLOCKED) {
        c->flags &= ~CONN_READ_BLOCKED;
        if (o->edge_triggered || c->ssl) /* input may wait with no edge (or in OpenSSL) to tell */
            c->flags |= CONN_READ_AGAIN;
        if (c->in.len > 0 || o->edge_triggered || c->ssl)
            mux__worker_defer(c->w, c); /* deliver what waited */
    }
    if (!(c->flags & CONN_WANT_WRITABLE) || !mux__conn_can_send(c))
        return;
    if (!c->h->on_writable) {
        c->flags &= ~CONN_WANT_WRITABLE;
        return;
    }
    size_t before = mux__conn_out_cost(c);
    c->h->on_writable(c);
    if (mux__conn_out_cost(c) == before && (c->flags & CONN_WANT_WRITABLE))
        c->flags &= ~CONN_WANT_WRITABLE; /* neither refilled nor turned off: the loop would spin */
}

/* Flushes and applies the results. False once the connection is finished. */
static bool write_ready(struct mux_conn *c)
{
    if (!mux__outq_empty(&c->out)) {
        int rc = mux__conn_flush(c);
        if (rc < 0) {
            fail(c, -rc);
            return false;
        }
        if (rc == FLUSH_BUDGET)
            mux__worker_defer(c->w, c); /* more next turn, even when edge triggered */
    }
    after_write(c);
    return !mux__conn_finished(c);
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
    /* (The completion path never learns that the socket is empty: the peek
     * alone decides there.) */
    if (!output_done(c) || c->in.len > 0 || !mux__conn_can_read(c) ||
        (!c->u && !(c->flags & CONN_QUIET)))
        return false;
    uint64_t due = c->last_input + drain_quiet_ms(c);
    if (c->w->now_ms < due) {
        mux__timers_arm(&c->w->timers, &c->timer, due);
        return false;
    }
    if (c->ssl && mux__tls_partial(c))
        return false; /* half a record came: its rest will, with readiness */
    char b;
    ssize_t n = c->ssl && mux__tls_pending(c) ? 1 : recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return true;
    c->flags &= ~CONN_QUIET; /* data, FIN or an error: the read path deals with it */
    c->flags |= CONN_READ_AGAIN;
    mux__worker_defer(c->w, c);
    return false;
}

/* mux_conn_shutdown_write: our FIN goes out once the queue is empty. False
 * if that failed and ended the connection. */
static bool shut_write_when_flushed(struct mux_conn *c)
{
    if ((c->flags & (CONN_SHUT_WR | CONN_WR_DONE)) != CONN_SHUT_WR || !mux__outq_empty(&c->out) ||
        c->state < CONN_OPEN || c->state > CONN_INPUT_DONE)
        return true;
    if (c->ssl)
        mux__tls_close_notify(c); /* TLS's end of data, then TCP's */
    if (shutdown(c->fd, SHUT_WR) < 0) {
        fail(c, errno);
        return false;
    }
    c->flags |= CONN_WR_DONE;
    return true;
}

/* The one place that decides whether a live connection is done: closes it
 * when its state's work is over, else registers the interest it needs. */
static void settle(struct mux_conn *c)
{
    if (!shut_write_when_flushed(c))
        return;
    switch ((enum mux__conn_state)c->state) {
    case CONN_PROXY_HEADER:
    case CONN_TLS_HANDSHAKE:
        if (c->w->stopping) { /* never handed to the app: nothing to answer */
            end(c, ESHUTDOWN, END_FIN, "shutdown before on_accept");
            return;
        }
        break;
    case CONN_CONNECTING:
    case CONN_OPEN:
        break;
    case CONN_DRAINING:
        if (drained(c)) {
            end(c, 0, END_LINGER_STRICT, "shutdown: answered and quiet");
            return;
        }
        break;
    case CONN_INPUT_DONE: {
        bool held = c->in.len > 0 && (c->flags & (CONN_READ_PAUSED | CONN_READ_BLOCKED));
        if (!held && c->h->on_eof && !(c->flags & CONN_EOF_TOLD)) {
            c->flags |= CONN_EOF_TOLD;
            c->h->on_eof(c);
            mux__worker_defer(c->w, c); /* settle again after what it did */
            break;
        }
        if (output_done(c) && !held && (!c->h->on_eof || (c->flags & CONN_SHUT_WR))) {
            end(c, 0, END_FIN, "peer FIN, output flushed");
            return;
        }
        break;
    }
    case CONN_CLOSING:
        if (mux__outq_empty(&c->out)) {
            end(c, 0, END_LINGER, "app close, output flushed");
            return;
        }
        break;
    case CONN_ABORTING:
        end(c, ECONNABORTED, END_RESET, "app abort");
        return;
    case CONN_LINGER:
    case CONN_CLOSED:
        return;
    }
    update_interest(c);
}

/* Both directions are finished (our FIN after mux_conn_shutdown_write,
 * the peer's read): the socket has nothing left to report but a hang-up
 * that a level-triggered poller would repeat on every wait, so it leaves
 * the poller while the handler finishes with the buffered input. */
static void stop_polling(struct mux_conn *c)
{
    if (c->flags & CONN_UNPOLLED)
        return;
    c->w->pops->del(c->w->poller, c->fd);
    c->flags |= CONN_UNPOLLED;
    c->interest = 0;
}

/* Completion path: the readiness poller watches such a connection only
 * while its socket is full (conn_uring.c). */
static void writable_again(struct mux_conn *c, uint32_t events)
{
    mux__uring_conn_writable(c);
    if (c->state == CONN_LINGER) { /* the receive reports the end; a watch left from a pause goes */
        if (events & (MUX_EV_ERROR | MUX_EV_HUP))
            mux__uring_conn_unpoll(c);
        return;
    }
    if (events & MUX_EV_ERROR) {
        fail(c, socket_error(c->fd));
        return;
    }
    if ((events & MUX_EV_HUP) && !(events & MUX_EV_WRITE)) {
        /* A reset comes with an error. A hang-up alone after our FIN is the
         * peer's FIN: what it sent before is read when reading resumes. */
        if (c->flags & CONN_WR_DONE)
            mux__uring_conn_unpoll(c);
        else
            fail(c, ECONNRESET);
        return;
    }
    if (events & MUX_EV_WRITE)
        mux__conn_sent(c);
}

/* OpenSSL asked for the other direction (a read that must write first,
 * a write that must read first): once it is ready, retry from the
 * deferred pass, which reads (READ_AGAIN) and flushes. */
static void tls_retry(struct mux_conn *c, uint32_t events)
{
    if ((c->flags & CONN_TLS_WANT_WRITE) && (events & MUX_EV_WRITE)) {
        c->flags &= ~CONN_TLS_WANT_WRITE;
        c->flags |= CONN_READ_AGAIN;
        mux__worker_defer(c->w, c);
    }
    if ((c->flags & CONN_TLS_WANT_READ) && (events & (MUX_EV_READ | MUX_EV_HUP))) {
        c->flags &= ~CONN_TLS_WANT_READ;
        mux__worker_defer(c->w, c);
    }
}

/* ---- the loop's entry points ---- */

void mux__conn_handle(struct mux_conn *c, uint32_t events)
{
    if (c->u) { /* completion path (LINGER included) */
        if (c->state != CONN_CLOSED)
            writable_again(c, events);
        return;
    }
    if (c->state == CONN_LINGER) {
        linger_read(c);
        return;
    }
    if (c->state == CONN_CLOSED) /* stale: closed earlier in this batch */
        return;
    if (c->state == CONN_CONNECTING) {
        connect_done(c, events);
        return;
    }
    if (c->state == CONN_TLS_HANDSHAKE) { /* errors and hang-ups surface in OpenSSL's I/O */
        tls_handshake(c);
        return;
    }
    if (c->flags & (CONN_TLS_WANT_WRITE | CONN_TLS_WANT_READ))
        tls_retry(c, events);
    if (events & MUX_EV_RDHUP)
        c->flags |= CONN_PEER_HUP;
    if (events & MUX_EV_ERROR) {
        fail(c, socket_error(c->fd));
        return;
    }
    if ((events & MUX_EV_WRITE) && !write_ready(c))
        return;
    if (events & (MUX_EV_READ | MUX_EV_HUP)) {
        if (mux__conn_can_read(c))
            on_readable(c);
        else if ((events & MUX_EV_HUP) && (c->flags & (CONN_EOF_READ | CONN_WR_DONE)) ==
                                              (CONN_EOF_READ | CONN_WR_DONE))
            stop_polling(c); /* both FINs exchanged: an orderly end, nothing more to wait for */
        else if (events & MUX_EV_HUP) /* both directions gone while we do not read */
            fail(c, ECONNRESET);
    }
    if (mux__conn_finished(c))
        return;
    if (c->state == CONN_DRAINING)
        mux__worker_defer(c->w, c); /* read on until empty, then maybe close */
    /* Deferred work (a send queued by on_read, most often) flushes before
     * the next wait and settles then: doing it here too would cost an
     * epoll_ctl to add EPOLLOUT and another to drop it. */
    if (!mux_list_linked(&c->pending))
        settle(c);
}

void mux__conn_process(struct mux_conn *c)
{
    switch ((enum mux__conn_state)c->state) {
    case CONN_CONNECTING:
        connect_immediate(c);
        if (c->state == CONN_CONNECTING)
            settle(c);
        return; /* connected() deferred the rest */
    case CONN_CLOSED:
        return;
    case CONN_LINGER:
        linger_read(c);
        return;
    case CONN_TLS_HANDSHAKE:
        tls_handshake(c);
        if (c->state == CONN_TLS_HANDSHAKE)
            settle(c);
        return; /* done: tls_handshake() deferred the rest */
    case CONN_DRAINING:
        if (mux__conn_can_read(c) && (c->flags & (CONN_READ_AGAIN | CONN_QUIET)) != CONN_QUIET)
            drain_input(c);
        break;
    default:
        if ((c->flags & CONN_READ_AGAIN) && mux__conn_can_read(c))
            on_readable(c);
        break;
    }
    if (mux__conn_finished(c))
        return;
    deliver(c);
    if (mux__conn_finished(c) || !write_ready(c))
        return;
    settle(c);
}

void mux__conn_timeout(struct mux_conn *c)
{
    switch ((enum mux__conn_state)c->state) {
    case CONN_LINGER: /* the peer never sent its FIN: close anyway */
        release(c);
        return;
    case CONN_DRAINING: /* the quiet period may be over */
        mux__worker_defer(c->w, c);
        return;
    case CONN_CLOSED:
        return;
    case CONN_PROXY_HEADER:
        end(c, ETIMEDOUT, END_RESET, "no PROXY header in time");
        return;
    case CONN_TLS_HANDSHAKE:
        c->w->local.tls_failures++;
        end(c, ETIMEDOUT, END_RESET, "no TLS handshake in time");
        return;
    case CONN_CONNECTING:
        end(c, ETIMEDOUT, END_FIN, "connect timeout");
        return;
    default:
        break;
    }
    uint64_t due = c->last_active + c->timeout_ms;
    if (c->timeout_ms && due > c->w->now_ms) { /* activity since it was armed: lazy re-arm */
        mux__timers_arm(&c->w->timers, &c->timer, due);
        return;
    }
    if (c->timeout_ms)
        end(c, ETIMEDOUT, END_FIN, "idle timeout");
}

void mux__conn_drain(struct mux_conn *c)
{
    if (c->state == CONN_PROXY_HEADER || c->state == CONN_TLS_HANDSHAKE)
        mux__worker_defer(c->w, c); /* settle() closes it */
    if (c->state != CONN_OPEN)
        return; /* half-closed, closing or closed: finishing anyway */
    set_state(c, CONN_DRAINING, "server shutdown");
    c->flags &= ~CONN_QUIET;
    c->flags |= CONN_READ_AGAIN;
    mux__timers_cancel(&c->w->timers, &c->timer); /* the grace period bounds it now */
    mux__worker_defer(c->w, c); /* mux__conn_process reads, answers, closes */
}

void mux__conn_kill(struct mux_conn *c, int err)
{
    if (c->state == CONN_LINGER)
        release(c);
    else if (c->state == CONN_ABORTING)
        end(c, ECONNABORTED, END_RESET, "app abort");
    else if (c->state != CONN_CLOSED)
        end(c, err, END_RESET, "grace period over");
}

void mux__conn_free(struct mux_conn *c)
{
    mux_list_remove(&c->node);
    if (c->u && mux__uring_conn_free(c))
        return; /* an op still refers to it: its last completion frees it */
    free(c);
}

/* ---- the completion path's results (conn_uring.c) ---- */

static void settle_unless_pending(struct mux_conn *c)
{
    if (!mux__conn_finished(c) && !mux_list_linked(&c->pending))
        settle(c);
}

/* LINGER: input after a shutdown close resets; else it is discarded. */
static void linger_input(struct mux_conn *c)
{
    if (!(c->flags & CONN_STRICT_LINGER))
        return;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    c->w->local.late_resets++;
    release(c);
}

/* Copies what the handler left into the input buffer, bounded by
 * max_input like a read; while reading is paused or blocked, completions
 * the cancelled receive still delivers may add up to LATE_INPUT beyond it
 * (once: a connection that paused receives one buffer per submission
 * from then on, conn_uring.c).
 * False if that ended the connection. */
static bool keep_input(struct mux_conn *c, const char *data, size_t len)
{
    size_t limit = c->w->opts->max_input;
    /* (reading may have resumed before the cancelled receive's last
     * completion: what it brings is still late) */
    if ((!mux__conn_can_read(c) && c->state != CONN_INPUT_DONE) || (c->u && c->u->recv.cancel))
        limit += LATE_INPUT;
    while (len > 0) {
        size_t avail;
        char *p = mux__inbuf_space(&c->in, &c->w->inpool, limit, &avail);
        if (!p) {
            fail(c, avail == 0 ? EMSGSIZE : ENOMEM);
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

/* With nothing buffered, on_read gets the kernel's buffer itself; only what
 * it leaves is copied. Input that arrives after a pause (the receive is
 * being cancelled) waits in the input buffer. */
void mux__conn_received(struct mux_conn *c, const char *data, size_t len)
{
    if (c->state == CONN_LINGER) {
        linger_input(c);
        return;
    }
    if (c->state != CONN_PROXY_HEADER && !mux__conn_live(c))
        return; /* closing: no more input is delivered */
    c->w->local.bytes_in += len;
    c->last_active = c->last_input = c->w->now_ms;
    size_t n = 0;
    if (c->in.len == 0 && mux__conn_can_deliver(c)) {
        n = c->h->on_read(c, data, len);
        if (unlikely(n > len)) {
            mux_log(MUX_LOG_ERROR, "%s: on_read consumed %zu of %zu bytes; clamped",
                    c->h->name ? c->h->name : "handler", n, len);
            n = len;
        }
        if (n == len || (c->state != CONN_PROXY_HEADER && !mux__conn_live(c)))
            goto out;
    }
    if (!keep_input(c, data + n, len - n))
        return;
    if (c->state == CONN_PROXY_HEADER)
        proxy_header(c);
    if (n > 0 || c->state != CONN_PROXY_HEADER)
        deliver(c); /* (not again after an on_read that took nothing) */
out:
    if (!mux__conn_finished(c))
        mux__inbuf_release_if_empty(&c->in, &c->w->inpool);
    settle_unless_pending(c);
}

void mux__conn_received_eof(struct mux_conn *c)
{
    if (c->state == CONN_LINGER) {
        release(c);
        return;
    }
    c->flags |= CONN_PEER_HUP | CONN_EOF_READ; /* closing states: end() needs no linger */
    if (c->state == CONN_PROXY_HEADER || c->state == CONN_OPEN || c->state == CONN_DRAINING)
        input_done(c);
    settle_unless_pending(c);
}

void mux__conn_io_failed(struct mux_conn *c, int err)
{
    if (c->state == CONN_LINGER)
        release(c);
    else if (!mux__conn_finished(c))
        fail(c, err);
}

void mux__conn_sent(struct mux_conn *c)
{
    if (mux__conn_finished(c) || !write_ready(c))
        return;
    settle_unless_pending(c);
}

void mux__conn_recv_ended(struct mux_conn *c)
{
    if (c->state != CONN_CLOSED)
        mux__uring_conn_want_read(c, uring_wants_input(c));
}

/* ---- the public calls (mux/conn.h) that are not about writing ---- */

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
    if (c->w->opts->edge_triggered || c->ssl) /* the edge may have passed, or OpenSSL holds input */
        c->flags |= CONN_READ_AGAIN;
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
    set_state(c, CONN_CLOSING, "app close");
    c->flags &= ~CONN_WANT_WRITABLE;
    mux__worker_defer(c->w, c);
}

MUX_API void mux_conn_shutdown_write(struct mux_conn *c)
{
    MUX_ASSERT_OWNER(c);
    if (!mux__conn_live(c) || (c->flags & CONN_SHUT_WR))
        return;
    c->flags |= CONN_SHUT_WR;
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
    set_state(c, CONN_ABORTING, "app abort");
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
    if (c->proxied) { /* the client behind the load balancer */
        memcpy(out, &c->proxied->addr, c->proxied->len);
        *len = c->proxied->len;
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
        arm_idle_timer(c);
}
