/* conn.h - struct mux_conn and the connection lifecycle (private).
 *
 * A connection is always in exactly one state; every change goes through
 * set_state() in conn.c, which checks it against the table below and logs
 * it at debug level.
 *
 *   PROXY_HEADER  server.proxy_protocol: reading the PROXY v1/v2 header that
 *                 must open the connection; on_accept has not run yet, so a
 *                 bad or missing header closes it without on_close.
 *   TLS_HANDSHAKE server.tls_cert: the TLS handshake, driven by readiness
 *                 (read or write, as OpenSSL asks), after the PROXY header
 *                 when both are on; on_accept runs once it completed. A
 *                 failed handshake, or one not done by the deadline (the
 *                 idle timeout, else MUX__TLS_HANDSHAKE_MS), closes it
 *                 without on_close. From OPEN on, the read and write paths
 *                 go through tls.c and every other state is unchanged.
 *   CONNECTING .. an outbound connect (mux_worker_connect) is in progress:
 *                 nothing is read or written; sends queue, and close,
 *                 shutdown_write, pause and want_writable are recorded and
 *                 applied once connected. Ends connected (OPEN, on_connect),
 *                 failed or timed out (CLOSED, on_close(c, err)), or
 *                 aborted.
 *   OPEN ........ reads and delivers input (unless READ_PAUSED by the app or
 *                 READ_BLOCKED by output above write_high_water), writes.
 *   DRAINING .... server shutdown: as OPEN, and closes once the output is
 *                 flushed and the socket has been empty for DRAIN_QUIET_MS.
 *   INPUT_DONE .. the peer's FIN was read: buffered input is offered once
 *                 more, output (and on_writable refills) still flows; closes
 *                 once flushed and the app no longer wants on_writable. A
 *                 handler with on_eof is told instead, and the connection
 *                 closes once flushed after the app shut its side too.
 *   CLOSING ..... mux_conn_close(): no more input is delivered; closes once
 *                 the output is flushed.
 *   ABORTING .... mux_conn_abort(): output dropped; the loop resets it.
 *   LINGER ...... on_close ran; our FIN is out (shutdown SHUT_WR) and the
 *                 socket is read until the peer's FIN, so unread input
 *                 cannot turn the close into a reset that destroys replies
 *                 in flight. After an app close late input is discarded (the
 *                 protocol chose to close); after a shutdown close it resets
 *                 the connection, so the client sees that it was not
 *                 answered instead of an orderly end.
 *   CLOSED ...... on_close ran and the fd is closed; freed at the end of the
 *                 loop iteration, so events already fetched for it in the
 *                 same batch are recognised and dropped.
 *
 *   PROXY_HEADER -> TLS_HANDSHAKE | OPEN | CLOSED
 *   TLS_HANDSHAKE -> OPEN | CLOSED
 *   CONNECTING -> OPEN | ABORTING | CLOSED
 *   OPEN -> DRAINING | INPUT_DONE | CLOSING | ABORTING | CLOSED
 *   DRAINING -> INPUT_DONE | CLOSING | ABORTING | LINGER | CLOSED
 *   INPUT_DONE -> CLOSING | ABORTING | CLOSED
 *   CLOSING -> ABORTING | LINGER | CLOSED
 *   ABORTING -> CLOSED
 *   LINGER -> CLOSED
 *
 * mux_conn_shutdown_write() is a condition, not a state (SHUT_WR, then
 * WR_DONE once the FIN is out after the flush): it holds in OPEN, DRAINING
 * and INPUT_DONE, reading goes on, and sends return -EPIPE.
 *
 * on_close runs exactly once, on the way into LINGER or CLOSED, and only for
 * a connection whose on_accept ran (or that mux_worker_connect returned). Every public call checks the state, so
 * each one is harmless in every callback, on_close included. */
#ifndef MUX_CONN_PRIV_H
#define MUX_CONN_PRIV_H

#include <stdint.h>

#include "conn_uring.h"
#include "inbuf.h"
#include "list.h"
#include "outq.h"
#include "timer.h"
#include "worker.h"

enum mux__conn_state {
    CONN_PROXY_HEADER,
    CONN_TLS_HANDSHAKE,
    CONN_CONNECTING,
    CONN_OPEN,
    CONN_DRAINING,
    CONN_INPUT_DONE,
    CONN_CLOSING,
    CONN_ABORTING,
    CONN_LINGER,
    CONN_CLOSED,
};

/* Conditions that hold within a state (only OPEN, DRAINING and INPUT_DONE
 * look at the first four). */
enum {
    CONN_READ_PAUSED = 1u << 0,   /* the app paused input */
    CONN_READ_BLOCKED = 1u << 1,  /* output above write_high_water */
    CONN_WANT_WRITABLE = 1u << 2, /* the app asked for on_writable */
    CONN_READ_AGAIN = 1u << 3,    /* the socket may hold input no event will report */
    CONN_QUIET = 1u << 4,         /* the last read found the socket empty */
    CONN_PEER_HUP = 1u << 5,      /* the poller saw the peer's FIN coming */
    CONN_ACCEPTED = 1u << 6,      /* on_accept ran: on_close is owed */
    CONN_COUNTED = 1u << 7,       /* holds a max_connections slot */
    CONN_STRICT_LINGER = 1u << 8, /* LINGER after a shutdown close: late input resets */
    CONN_EOF_READ = 1u << 9,      /* read() returned the peer's FIN */
    CONN_OUTBOUND = 1u << 10,     /* made by mux_worker_connect */
    CONN_CONNECTED = 1u << 11,    /* CONNECTING: connect() succeeded at once */
    CONN_CLOSE_ASKED = 1u << 12,  /* CONNECTING: mux_conn_close, applied once connected */
    CONN_SHUT_WR = 1u << 13,      /* mux_conn_shutdown_write: no more output */
    CONN_WR_DONE = 1u << 14,      /* ... and our FIN is out */
    CONN_EOF_TOLD = 1u << 15,     /* on_eof ran */
    CONN_UNPOLLED = 1u << 16,     /* both FINs exchanged: out of the poller for good */
    CONN_TLS_WANT_WRITE = 1u << 17, /* TLS: the handshake or a read waits for writability */
    CONN_TLS_WANT_READ = 1u << 18,  /* TLS: a write waits for readability */
    CONN_TLS_FATAL = 1u << 19,      /* TLS: a fatal error; no close_notify */
};

struct mux_conn {
    int fd;
    uint8_t state;     /* enum mux__conn_state */
    uint32_t flags;
    uint32_t interest; /* MUX_EV_* registered with the poller */
    struct mux__worker *w;
    const struct mux_handler *h; /* the server's, or the one given to mux_worker_connect */
    struct mux__inbuf in;
    struct mux__outq out;
    void *data;
    uint64_t id;
    struct mux__timer timer; /* idle timeout; drain quiet check; linger limit */
    unsigned timeout_ms;     /* idle timeout, 0 = none */
    uint64_t last_active;    /* worker clock at the last read or write progress */
    uint64_t last_input;     /* worker clock at the last byte read */
    struct mux_list node;    /* in w->conns, then w->dead */
    struct mux_list pending; /* in w->pending while work is deferred */
    struct mux__peer *proxied; /* the address a PROXY header carried, or NULL */
    int connect_err;         /* CONNECTING: connect() failed at once with this */
    struct mux__uconn *u;    /* the completion path's I/O state (conn_uring.h), or NULL:
                                the readiness path */
    struct ssl_st *ssl;      /* TLS (tls.c), or NULL */
};

struct mux__peer {
    struct sockaddr_storage addr;
    socklen_t len;
};

/* Worker thread. Takes over an accepted fd: registers it, runs on_accept. */
void mux__conn_open(struct mux__worker *w, int fd);

/* Worker thread. Starts an outbound connect (mux_worker_connect). */
int mux__conn_connect(struct mux__worker *w, const struct sockaddr *addr, socklen_t len,
                      const struct mux_handler *h, void *data, unsigned timeout_ms,
                      struct mux_conn **out);

/* Worker thread. Readiness from the poller. */
void mux__conn_handle(struct mux_conn *c, uint32_t events);

/* Worker thread. Deferred work: buffered input after a resume, output
 * flush, water marks, on_writable, closes that wait for the flush. */
void mux__conn_process(struct mux_conn *c);

/* Worker thread. The connection's timer fired. */
void mux__conn_timeout(struct mux_conn *c);

/* Worker thread. Server shutdown: OPEN -> DRAINING. */
void mux__conn_drain(struct mux_conn *c);

/* Worker thread. Grace period over: reset now, on_close(c, err). */
void mux__conn_kill(struct mux_conn *c, int err);

/* Worker thread. Frees a connection from w->dead. */
void mux__conn_free(struct mux_conn *c);

/* Input may be delivered to on_read now. */
static inline bool mux__conn_can_deliver(const struct mux_conn *c)
{
    return c->state >= CONN_OPEN && c->state <= CONN_INPUT_DONE &&
           !(c->flags & (CONN_READ_PAUSED | CONN_READ_BLOCKED));
}

/* The socket should be read now. */
static inline bool mux__conn_can_read(const struct mux_conn *c)
{
    return (c->state == CONN_PROXY_HEADER || (c->state >= CONN_OPEN && c->state <= CONN_DRAINING)) &&
           !(c->flags & (CONN_READ_PAUSED | CONN_READ_BLOCKED));
}

/* Neither closing nor closed: the app may still steer it (close, pause,
 * shut down its writing). */
static inline bool mux__conn_live(const struct mux_conn *c)
{
    return c->state >= CONN_CONNECTING && c->state <= CONN_INPUT_DONE;
}

/* Output may still be queued (and on_writable may fire). */
static inline bool mux__conn_can_send(const struct mux_conn *c)
{
    return c->state >= CONN_CONNECTING && c->state <= CONN_INPUT_DONE &&
           !(c->flags & CONN_SHUT_WR);
}

/* on_close has run. */
static inline bool mux__conn_finished(const struct mux_conn *c)
{
    return c->state >= CONN_LINGER;
}

/* ---- the write path (conn_write.c): I/O only, never a callback ---- */

enum mux__flush_result {
    FLUSH_DONE,    /* the queue is empty */
    FLUSH_BLOCKED, /* the socket is full: wait for writability */
    FLUSH_BUDGET,  /* the per-turn byte budget is spent: go on next turn */
};

/* Writes as much of the queue as the socket takes within the budget.
 * Returns an enum mux__flush_result, or a negative errno. */
int mux__conn_flush(struct mux_conn *c);

/* The same with system calls made here and now (sendmsg, sendfile, or
 * OpenSSL's writes): the readiness path, and the completion path's
 * direct sends. */
int mux__conn_flush_now(struct mux_conn *c);

/* What the queued output costs against the water marks: its bytes, plus a
 * pool block and a descriptor's worth for each file range, so many tiny
 * file responses cannot hold unbounded descriptors and blocks. */
static inline size_t mux__conn_out_cost(const struct mux_conn *c)
{
    return mux__outq_cost(&c->out, c->w->outpool.block_size);
}

/* Drops every queued byte and file range (and their count). */
static inline void mux__conn_drop_output(struct mux_conn *c)
{
    c->w->local.bytes_queued -= c->out.bytes;
    if (c->u) /* a sendmsg in flight may still read it */
        mux__uring_conn_drop_output(c);
    else
        mux__outq_clear(&c->out, &c->w->outpool);
}

/* sendfile for the head file range, at most *wanted bytes: bytes sent, 0
 * when the socket is full, or a negative errno (conn_write.c). */
ssize_t mux__conn_send_file_head(struct mux_conn *c, struct mux__chunk *f, size_t *wanted);

/* Debug builds: every mux_conn_* call runs on the owning worker's thread. */
#ifndef NDEBUG
void mux__conn_assert_owner(const struct mux_conn *c);
#define MUX_ASSERT_OWNER(c) mux__conn_assert_owner(c)
#else
#define MUX_ASSERT_OWNER(c) ((void)0)
#endif

#endif
