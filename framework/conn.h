/* conn.h - struct mux_conn and the connection core (private).
 *
 * The core is split by concept, each file one part of a connection's life:
 *   conn_state.c  the states below, set_state() (the only writer of
 *                 c->state), timers, and the end: end(), release(),
 *                 settle() (the one place that decides a connection is done)
 *   conn_open.c   accept, PROXY header, handshake, outbound connect
 *   conn_read.c   input: reads, delivery to on_read, EOF, drain, linger
 *   conn_write.c  output: the send calls and what flushing means
 *   conn_event.c  the worker's entry points: readiness, deferred work,
 *                 completions (the transport's struct mux__io_event)
 *   conn_api.c    the public mux_conn_* calls that are not about output
 * The bytes move through the connection's transport (transport.h), chosen
 * when it is created; nothing here knows which one it is.
 *
 * A connection is always in exactly one state:
 *
 *   NEW ......... only between calloc and the first set_state().
 *   PROXY_HEADER  server.proxy_protocol: reading the PROXY v1/v2 header that
 *                 must open the connection; on_accept has not run yet, so a
 *                 bad or missing header closes it without on_close.
 *   HANDSHAKE ... the transport's handshake (TLS), driven by the readiness
 *                 it asks for, after the PROXY header when both are on;
 *                 on_accept runs once it completed. A failed handshake, or
 *                 one not done by the deadline (the idle timeout, else
 *                 HANDSHAKE_MS), closes it without on_close.
 *   CONNECTING .. an outbound connect (mux_worker_connect) is in progress:
 *                 nothing is read or written; sends queue, and close,
 *                 shutdown_write, pause and want_writable are recorded and
 *                 applied once connected (c->connect holds what connect()
 *                 said at once). Ends connected (OPEN, on_connect), failed
 *                 or timed out (CLOSED, on_close(c, err)), or aborted.
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
 *   NEW -> PROXY_HEADER | HANDSHAKE | CONNECTING | OPEN | CLOSED
 *   PROXY_HEADER -> HANDSHAKE | OPEN | CLOSED
 *   HANDSHAKE -> OPEN | CLOSED
 *   CONNECTING -> OPEN | ABORTING | CLOSED
 *   OPEN -> DRAINING | INPUT_DONE | CLOSING | ABORTING | CLOSED
 *   DRAINING -> INPUT_DONE | CLOSING | ABORTING | LINGER | CLOSED
 *   INPUT_DONE -> CLOSING | ABORTING | CLOSED
 *   CLOSING -> ABORTING | LINGER | CLOSED
 *   ABORTING -> CLOSED
 *   LINGER -> CLOSED
 *
 * Two small machines run inside the states: the write side (c->wr: open,
 * FIN pending after mux_conn_shutdown_write, FIN sent) and what the core
 * knows of the socket's input (c->input: unknown, maybe more that no event
 * will report, empty).
 *
 * The promise of mux/conn.h: no handler callback runs inside a mux_conn_*
 * or mux_worker_* call. Those calls only record what was asked and queue
 * the connection for deferred work (mux__worker_defer); a failure met
 * inside one (a flush at the high-water mark) is kept in c->err and ends
 * the connection from the loop. on_close runs exactly once, on the way
 * into LINGER or CLOSED, and only for a connection whose on_accept ran (or
 * that mux_worker_connect returned). */
#ifndef MUX_CONN_PRIV_H
#define MUX_CONN_PRIV_H

#include <stdint.h>

#include "inbuf.h"
#include "list.h"
#include "outq.h"
#include "timer.h"
#include "transport.h"
#include "worker.h"

enum mux__conn_state {
    CONN_NEW,
    CONN_PROXY_HEADER,
    CONN_HANDSHAKE,
    CONN_CONNECTING,
    CONN_OPEN,
    CONN_DRAINING,
    CONN_INPUT_DONE,
    CONN_CLOSING,
    CONN_ABORTING,
    CONN_LINGER,
    CONN_CLOSED,
};

/* The write side, within OPEN, DRAINING and INPUT_DONE. */
enum mux__write_side {
    WR_OPEN,        /* output flows */
    WR_FIN_PENDING, /* mux_conn_shutdown_write: our FIN goes once flushed; sends -EPIPE */
    WR_FIN_SENT,    /* ... and it went */
};

/* What the core knows of input waiting in the socket. */
enum mux__input_hint {
    INPUT_UNKNOWN, /* the last read got data */
    INPUT_MAYBE,   /* there may be input that no event will report: read unasked */
    INPUT_EMPTY,   /* the last read found the socket empty */
};

/* CONNECTING: what connect() answered at once. */
enum mux__connect {
    CONNECT_WAIT,   /* in progress: writability reports the outcome */
    CONNECT_AT_ONCE, /* succeeded at once (reported from the loop) */
    CONNECT_FAILED, /* failed at once with c->err (likewise) */
};

/* Conditions that hold within a state (only OPEN, DRAINING and INPUT_DONE
 * look at the first three). */
enum {
    CONN_READ_PAUSED = 1u << 0,   /* the app paused input */
    CONN_READ_BLOCKED = 1u << 1,  /* output above write_high_water */
    CONN_WANT_WRITABLE = 1u << 2, /* the app asked for on_writable */
    CONN_PEER_HUP = 1u << 3,      /* the poller saw the peer's FIN coming */
    CONN_EOF_READ = 1u << 4,      /* the read path got the peer's FIN */
    CONN_EOF_TOLD = 1u << 5,      /* on_eof ran */
    CONN_ACCEPTED = 1u << 6,      /* on_accept ran: on_close is owed */
    CONN_COUNTED = 1u << 7,       /* holds a max_connections slot */
    CONN_OUTBOUND = 1u << 8,      /* made by mux_worker_connect */
    CONN_CLOSE_ASKED = 1u << 9,   /* CONNECTING: mux_conn_close, applied once connected */
    CONN_STRICT_LINGER = 1u << 10, /* LINGER after a shutdown close: late input resets */
};

/* c->interest: a readiness transport took the socket out of the poller. */
#define MUX__UNWATCHED (1u << 31)

/* What a connection holds is what an idle one costs, so it is kept small
 * (136 bytes, from the worker's connpool.c, which adds none): input and
 * output are a pointer each while empty, and what few connections need
 * (an outbound handler, a deadline, a PROXY address) is in c->cold, made on
 * first use. Fields are ordered so no padding is left. */
struct mux_conn {
    int fd;
    uint32_t interest;  /* readiness transports: MUX_EV_* registered with the poller */
    int err;            /* CONNECTING's failure, or one met inside a call: ends it from the loop */
    unsigned timeout_ms; /* idle timeout, 0 = none */
    uint8_t state;      /* enum mux__conn_state: set_state() only */
    uint8_t wr;         /* enum mux__write_side */
    uint8_t input;      /* enum mux__input_hint */
    uint8_t connect;    /* enum mux__connect */
    uint8_t tstate;     /* the transport's own bits */
    uint8_t slot;       /* index in its connpool block */
    uint16_t flags;
    const struct mux__transport *t;
    void *tp;           /* the transport's per-connection state, or NULL */
    struct mux__worker *w;
    void *data;
    uint64_t id;
    struct mux__inbuf in;
    struct mux__outq out;
    struct mux__timer timer; /* idle timeout; deadline; drain quiet check; linger limit */
    uint64_t last_active;    /* worker clock at the last read or write progress */
    uint64_t last_input;     /* worker clock at the last byte read */
    struct mux_list pending; /* in w->pending while work is deferred, in w->dead once released */
    struct mux__conn_cold *cold; /* or NULL */
};

struct mux__peer {
    struct sockaddr_storage addr;
    socklen_t len;
};

/* The rarely needed part of a connection, allocated on first use and
 * freed when the socket is released. */
struct mux__conn_cold {
    const struct mux_handler *h; /* mux_worker_connect's handler, or NULL: the server's */
    uint64_t deadline;           /* mux_conn_set_deadline: worker clock, 0 = none */
    struct mux__peer *proxied;   /* the address a PROXY header carried, or NULL */
};

/* c->cold, made if missing; NULL when out of memory (conn_open.c). */
struct mux__conn_cold *mux__conn_cold(struct mux_conn *c);
/* Frees c->cold (at release). */
void mux__conn_drop_cold(struct mux_conn *c);

/* The handler whose callbacks c runs. */
static inline const struct mux_handler *mux__conn_handler(const struct mux_conn *c)
{
    return c->cold && c->cold->h ? c->cold->h : c->w->handler;
}

/* mux_conn_set_deadline's time, 0 = none. */
static inline uint64_t mux__conn_deadline(const struct mux_conn *c)
{
    return c->cold ? c->cold->deadline : 0;
}

/* ---- the worker's entry points ---- */

/* Takes over an accepted fd with transport t: registers it, runs on_accept. */
void mux__conn_open(struct mux__worker *w, int fd, const struct mux__transport *t);

/* Starts an outbound connect (mux_worker_connect). */
int mux__conn_connect(struct mux__worker *w, const struct sockaddr *addr, socklen_t len,
                      const struct mux_handler *h, void *data, unsigned timeout_ms,
                      struct mux_conn **out);

/* Readiness from the poller (conn_event.c). */
void mux__conn_handle(struct mux_conn *c, uint32_t events);

/* A completion (MUX_EV_DONE) for the worker's completion transport t. */
void mux__conn_complete(struct mux__worker *w, const struct mux__transport *t,
                        const struct mux__poll_event *pe);

/* Deferred work: buffered input after a resume, output flush, water
 * marks, on_writable, closes that wait for the flush. */
void mux__conn_process(struct mux_conn *c);

/* The connection's timer fired. */
void mux__conn_timeout(struct mux_conn *c);

/* Server shutdown: OPEN -> DRAINING. */
void mux__conn_drain(struct mux_conn *c);

/* Grace period over: reset now, on_close(c, err). */
void mux__conn_kill(struct mux_conn *c, int err);

/* Frees a connection from w->dead. */
void mux__conn_free(struct mux_conn *c);

/* ---- shared by the core's files ---- */

/* The ways a connection ends (conn_state.c). */
enum mux__ending {
    END_FIN,           /* close(): an orderly FIN */
    END_RESET,         /* SO_LINGER 0, close(): the peer sees a reset */
    END_LINGER,        /* FIN, then discard input until the peer's FIN */
    END_LINGER_STRICT, /* FIN, then reset if input still arrives */
};

void mux__conn_set_state(struct mux_conn *c, enum mux__conn_state to, const char *why);
/* Runs on_close once and either starts lingering or releases the socket. */
void mux__conn_end(struct mux_conn *c, int err, enum mux__ending how, const char *why);
/* Failure: drop output, close now, on_close(c, err). */
void mux__conn_fail(struct mux_conn *c, int err);
/* Gives the descriptor back; the struct is freed after the loop turn. */
void mux__conn_release(struct mux_conn *c);
/* Closes it if its state's work is over, else registers what it needs. */
void mux__conn_settle(struct mux_conn *c);
/* Registers the readiness the state needs (through the transport). */
void mux__conn_update_interest(struct mux_conn *c);
/* The idle timer (with the deadline) from last_active. */
void mux__conn_arm_idle(struct mux_conn *c);
/* The connection's timer at due, or earlier at its deadline. */
void mux__conn_arm_timer(struct mux_conn *c, uint64_t due);
/* LINGER: input arrived; after a shutdown close it resets (conn_read.c). */
void mux__conn_linger_input(struct mux_conn *c);

/* conn_open.c */
void mux__conn_proxy_header(struct mux_conn *c);
void mux__conn_handshake(struct mux_conn *c);
void mux__conn_connect_done(struct mux_conn *c, uint32_t events);
void mux__conn_connect_at_once(struct mux_conn *c);

/* conn_read.c */
void mux__conn_deliver(struct mux_conn *c);
void mux__conn_readable(struct mux_conn *c);
void mux__conn_drain_input(struct mux_conn *c);
void mux__conn_linger_read(struct mux_conn *c);
void mux__conn_received(struct mux_conn *c, const char *data, size_t len);
void mux__conn_received_eof(struct mux_conn *c);

/* conn_write.c: flushes and applies the results (water marks,
 * on_writable). Loop context only. False once the connection finished. */
bool mux__conn_write_ready(struct mux_conn *c);

/* ---- predicates ---- */

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
    return mux__conn_live(c) && c->wr == WR_OPEN && c->err == 0;
}

/* on_close has run. */
static inline bool mux__conn_finished(const struct mux_conn *c)
{
    return c->state >= CONN_LINGER;
}

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
    c->w->local.bytes_queued -= mux__outq_bytes(&c->out);
    c->t->drop_output(c);
}

/* Debug builds: every mux_conn_* call runs on the owning worker's thread. */
#ifndef NDEBUG
void mux__conn_assert_owner(const struct mux_conn *c);
#define MUX_ASSERT_OWNER(c) mux__conn_assert_owner(c)
#else
#define MUX_ASSERT_OWNER(c) ((void)0)
#endif

#endif
