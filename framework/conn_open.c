/* conn_open.c - how a connection begins: an accepted socket (with its
 * PROXY header and its transport's handshake, when configured) or an
 * outbound connect, up to the moment it is the handler's (on_accept or
 * on_connect). Worker thread only. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "connpool.h"
#include "mux/log.h"
#include "net.h"
#include "proxy_proto.h"
#include "server_priv.h"

#define PROXY_HEADER_MS 10000 /* a PROXY header must arrive within this (or the idle timeout) */
#define HANDSHAKE_MS 10000    /* a handshake must complete within this without an idle timeout */

static _Atomic uint64_t next_conn_id = 1;

struct mux__conn_cold *mux__conn_cold(struct mux_conn *c)
{
    if (!c->cold)
        c->cold = calloc(1, sizeof(*c->cold));
    return c->cold;
}

void mux__conn_drop_cold(struct mux_conn *c)
{
    if (!c->cold)
        return;
    free(c->cold->proxied);
    free(c->cold);
    c->cold = NULL;
}

/* A connection on fd, in the worker's pool and counters, in state NEW; a
 * handler other than the server's is kept in its cold part. */
static struct mux_conn *conn_new(struct mux__worker *w, int fd, const struct mux_handler *h,
                                 const struct mux__transport *t)
{
    struct mux_conn *c = mux__connpool_get(&w->conns);
    if (!c)
        return NULL;
    c->w = w;
    if (h != w->handler && (!mux__conn_cold(c) || !(c->cold->h = h))) {
        mux__connpool_put(&w->conns, c);
        return NULL;
    }
    c->fd = fd;
    c->t = t;
    c->id = atomic_fetch_add_explicit(&next_conn_id, 1, memory_order_relaxed);
    c->last_active = c->last_input = w->now_ms;
    c->timeout_ms = w->opts->idle_timeout_ms;
    mux_list_init(&c->pending);
    w->local.open++;
    if (w->opts->tcp_nodelay) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return c;
}

/* The earlier of a phase's own limit and the idle timeout. */
static uint64_t phase_deadline(const struct mux_conn *c, unsigned limit)
{
    unsigned t = c->w->opts->idle_timeout_ms;
    return c->w->now_ms + (t && t < limit ? t : limit);
}

/* The connection is the handler's from here: on_accept, then input. */
static void accepted(struct mux_conn *c)
{
    struct mux__worker *w = c->w;
    if (mux_log_enabled(MUX_LOG_DEBUG)) {
        char peer[MUX_ADDR_MAX];
        mux_log(MUX_LOG_DEBUG, "conn %llu open: %s on worker %u (%s)", (unsigned long long)c->id,
                mux_conn_peer_str(c, peer, sizeof(peer)), w->index, c->t->name);
    }
    c->flags |= CONN_ACCEPTED;
    if (mux__conn_handler(c)->on_accept) {
        int rc = mux__conn_handler(c)->on_accept(c);
        if (rc != 0) {
            mux__conn_fail(c, rc > 0 ? rc : ECONNREFUSED);
            return;
        }
    }
    if (w->stopping) /* handed over just before the shutdown began */
        mux__conn_drain(c);
}

/* -> OPEN with a fresh idle timer, then on_accept. */
static void open_accepted(struct mux_conn *c, const char *why)
{
    mux__conn_set_state(c, CONN_OPEN, why);
    c->last_active = c->last_input = c->w->now_ms;
    mux__conn_arm_idle(c);
    accepted(c);
}

/* -> HANDSHAKE with its deadline; the first step runs on readiness (or
 * from the deferred pass, when the bytes may be in already). */
static void start_handshake(struct mux_conn *c, const char *why)
{
    unsigned t = c->w->opts->idle_timeout_ms;
    mux__conn_set_state(c, CONN_HANDSHAKE, why);
    mux__timers_arm(&c->w->timers, &c->timer, c->w->now_ms + (t ? t : HANDSHAKE_MS));
}

void mux__conn_open(struct mux__worker *w, int fd, const struct mux__transport *t)
{
    struct mux_conn *c = conn_new(w, fd, w->handler, t);
    if (!c) {
        mux_log(MUX_LOG_ERROR, "out of memory for a new connection");
        close(fd);
        mux__server_release_slot(w->srv);
        return;
    }
    c->flags = CONN_COUNTED;
    w->local.accepted++;
    int rc = t->start(c, MUX_EV_READ);
    if (rc < 0) {
        mux__worker_refused(w, fd, -rc);
        mux__conn_end(c, -rc, END_FIN, "cannot watch"); /* on_accept never ran: no on_close */
        return;
    }
    if (w->opts->proxy_protocol) { /* on_accept waits for the header (then the handshake) */
        mux__conn_set_state(c, CONN_PROXY_HEADER, "accepted, PROXY header first");
        mux__timers_arm(&w->timers, &c->timer, phase_deadline(c, PROXY_HEADER_MS));
        return;
    }
    if (c->t->handshake) { /* on_accept waits for the handshake */
        start_handshake(c, "accepted");
        return;
    }
    open_accepted(c, "accepted");
}

/* HANDSHAKE: one step; once complete the connection is the handler's. A
 * failure closes it without on_close (the transport counts it). */
void mux__conn_handshake(struct mux_conn *c)
{
    int rc = mux__t_handshake(c, c->t);
    if (rc == 0) {
        mux__conn_update_interest(c);
        return;
    }
    if (rc < 0) {
        mux__conn_end(c, -rc, END_FIN, "handshake failed");
        return;
    }
    mux__timers_cancel(&c->w->timers, &c->timer);
    /* Data may have come with the client's last flight: nothing will report it. */
    c->input = INPUT_MAYBE;
    mux__worker_defer(c->w, c);
    open_accepted(c, "handshake done");
}

/* PROXY_HEADER: is the header complete in what was read so far? Then the
 * connection opens with the address it carries; a bad header closes it. */
void mux__conn_proxy_header(struct mux_conn *c)
{
    struct mux__proxy_result r;
    int n = mux__proxy_parse(mux__inbuf_data(&c->in), mux__inbuf_len(&c->in), &r);
    if (n == 0)
        return;
    if (n < 0) {
        mux_log(MUX_LOG_DEBUG, "conn %llu: no valid PROXY header: closed",
                (unsigned long long)c->id);
        mux__conn_end(c, EPROTO, END_RESET, "bad PROXY header");
        return;
    }
    mux__inbuf_consume(&c->in, (size_t)n);
    if (r.has_addrs) {
        struct mux__conn_cold *cold = mux__conn_cold(c);
        struct mux__peer *peer = cold ? malloc(sizeof(*peer)) : NULL;
        if (!peer) {
            mux__conn_end(c, ENOMEM, END_RESET, "out of memory");
            return;
        }
        peer->addr = r.src;
        peer->len = r.src_len;
        cold->proxied = peer;
    }
    if (c->t->handshake) { /* the handshake's first bytes follow, still in the socket */
        mux__timers_cancel(&c->w->timers, &c->timer);
        start_handshake(c, "PROXY header");
        mux__worker_defer(c->w, c);
        return;
    }
    open_accepted(c, "PROXY header");
}

/* ---- outbound: connect ---- */

int mux__conn_connect(struct mux__worker *w, const struct sockaddr *addr, socklen_t len,
                      const struct mux_handler *h, void *data, unsigned timeout_ms,
                      struct mux_conn **out)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct mux_conn *c = conn_new(w, fd, h, &mux__transport_socket);
    if (!c) {
        close(fd);
        return -ENOMEM;
    }
    c->flags = CONN_OUTBOUND;
    c->data = data;
    mux__conn_set_state(c, CONN_CONNECTING, "connect");
    if (connect(fd, addr, len) == 0) {
        c->connect = CONNECT_AT_ONCE; /* reported from the loop, never from here */
    } else if (errno != EINPROGRESS) {
        c->connect = CONNECT_FAILED;
        c->err = errno;
    }
    int rc = c->t->start(c, MUX_EV_WRITE);
    if (rc < 0) {
        mux__conn_end(c, -rc, END_FIN, "cannot watch"); /* not returned yet: no on_close owed */
        return rc;
    }
    c->flags |= CONN_ACCEPTED; /* from here on_close is owed */
    if (timeout_ms)
        mux__timers_arm(&w->timers, &c->timer, w->now_ms + timeout_ms);
    if (c->connect != CONNECT_WAIT)
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
    mux__conn_set_state(c, CONN_OPEN, "connected");
    c->last_active = c->last_input = w->now_ms;
    mux__timers_cancel(&w->timers, &c->timer);
    mux__conn_arm_idle(c);
    if (mux__conn_handler(c)->on_connect)
        mux__conn_handler(c)->on_connect(c);
    if (c->state == CONN_OPEN && (c->flags & CONN_CLOSE_ASKED)) {
        mux__conn_set_state(c, CONN_CLOSING, "app close while connecting");
        c->flags &= ~CONN_WANT_WRITABLE;
    }
    if (w->stopping)
        mux__conn_drain(c);
    mux__worker_defer(w, c); /* flush what was queued, start reading */
}

void mux__conn_connect_done(struct mux_conn *c, uint32_t events)
{
    int err = 0;
    socklen_t elen = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
        err = errno;
    if (!err && (events & (MUX_EV_ERROR | MUX_EV_HUP)))
        err = ECONNREFUSED;
    if (err)
        mux__conn_end(c, err, END_FIN, "connect failed");
    else
        connected(c);
}

void mux__conn_connect_at_once(struct mux_conn *c)
{
    if (c->connect == CONNECT_FAILED)
        mux__conn_end(c, c->err, END_FIN, "connect failed");
    else if (c->connect == CONNECT_AT_ONCE)
        connected(c);
}
