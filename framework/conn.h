/* conn.h - struct mux_conn and the connection lifecycle (private).
 *
 * States, as flags, and what moves between them:
 *   open ........ reads and delivers; READ_PAUSED (app) or READ_BLOCKED
 *                 (output above high water) stop reading for a while
 *   PEER_EOF .... the peer's FIN: no more reads; on_writable may still
 *                 refill; closes once the output is flushed and the app no
 *                 longer wants on_writable
 *   DRAINING .... server shutdown: keeps reading and answering until the
 *                 socket is empty (QUIET), then closes as PEER_EOF does
 *   CLOSING ..... mux_conn_close(): flush, then close
 *   LINGER ...... on_close ran; our FIN is sent (shutdown SHUT_WR) and
 *                 input is discarded until the peer's FIN, so an unread
 *                 byte cannot turn the close into a reset that destroys
 *                 replies still in flight
 *   CLOSED ...... on_close ran; the fd is gone or lingering; freed at the
 *                 end of the loop iteration, so events already fetched for
 *                 it in the same batch are recognised and dropped. */
#ifndef MUX_CONN_PRIV_H
#define MUX_CONN_PRIV_H

#include <stdint.h>

#include "inbuf.h"
#include "list.h"
#include "outq.h"
#include "timer.h"
#include "worker.h"

enum {
    CONN_READ_PAUSED = 1u << 0,
    CONN_READ_BLOCKED = 1u << 1,
    CONN_WANT_WRITABLE = 1u << 2,
    CONN_PEER_EOF = 1u << 3,
    CONN_DRAINING = 1u << 4,
    CONN_CLOSING = 1u << 5,
    CONN_LINGER = 1u << 6,
    CONN_CLOSED = 1u << 7,
    CONN_ACCEPTED = 1u << 8,  /* on_accept ran: on_close is owed */
    CONN_READ_AGAIN = 1u << 9, /* edge-triggered: the socket may hold more input */
    CONN_COUNTED = 1u << 10,  /* holds a max_connections slot */
    CONN_ABORTED = 1u << 11,  /* mux_conn_abort(): reset from the loop */
    CONN_QUIET = 1u << 12,    /* the last read found the socket empty (EAGAIN) */
};

struct mux_conn {
    int fd;
    uint32_t flags;
    uint32_t interest; /* MUX_EV_* registered with the poller */
    struct mux__worker *w;
    struct mux__inbuf in;
    struct mux__outq out;
    void *data;
    uint64_t id;
    struct mux__timer timer;
    unsigned timeout_ms;   /* idle timeout, 0 = none */
    uint64_t last_active;  /* worker clock at the last read or write progress */
    struct mux_list node;    /* in w->conns, then w->dead */
    struct mux_list pending; /* in w->pending while work is deferred */
};

/* Worker thread. Takes over an accepted fd: registers it, runs on_accept. */
void mux__conn_open(struct mux__worker *w, int fd);

/* Worker thread. Readiness from the poller. */
void mux__conn_handle(struct mux_conn *c, uint32_t events);

/* Worker thread. Deferred work: buffered input after a resume, output
 * flush, water marks, on_writable, closes that wait for the flush. */
void mux__conn_process(struct mux_conn *c);

/* Worker thread. The connection's timer fired. */
void mux__conn_timeout(struct mux_conn *c);

/* Worker thread. Server shutdown: keep reading and answering until the
 * socket is empty, then close once the output is flushed. */
void mux__conn_drain(struct mux_conn *c);

/* Worker thread. Grace period over: close now with ESHUTDOWN. */
void mux__conn_kill(struct mux_conn *c, int err);

/* Worker thread. Frees a connection from w->dead. */
void mux__conn_free(struct mux_conn *c);

/* Failure: drop output, close now, on_close(c, err). */
void mux__conn_fail(struct mux_conn *c, int err);

/* Registers the interest the flags and queue call for, if it changed. */
void mux__conn_update_interest(struct mux_conn *c);

/* Write path (conn_write.c): flush is I/O only; after_write applies the
 * water marks and may call on_writable; write_ready does both, failing the
 * connection on a write error, and returns false once it is closed. */
int mux__conn_flush(struct mux_conn *c);
void mux__conn_after_write(struct mux_conn *c);
bool mux__conn_write_ready(struct mux_conn *c);

/* Input may be delivered to on_read now. */
static inline bool mux__conn_can_deliver(const struct mux_conn *c)
{
    return !(c->flags & (CONN_READ_PAUSED | CONN_READ_BLOCKED | CONN_CLOSING | CONN_CLOSED));
}

/* The socket should be read now. */
static inline bool mux__conn_can_read(const struct mux_conn *c)
{
    return mux__conn_can_deliver(c) && !(c->flags & CONN_PEER_EOF);
}

#endif
