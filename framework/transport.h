/* transport.h - how a connection's bytes move (private): the interface the
 * connection core (conn*.c) drives, chosen once when a connection is
 * created, and its three implementations:
 *
 *   mux__transport_socket  plain sockets on a readiness poller
 *                          (transport_socket.c): read(2), sendmsg, sendfile
 *   mux__transport_tls     TLS over OpenSSL on a readiness poller
 *                          (tls/transport.c), when the server has a
 *                          certificate
 *   the uring transport    completions on the worker's io_uring
 *                          (uring/transport.c), offered by the uring poller
 *                          through mux__poller_ops.transport
 *
 * The layering is a line: worker -> connection core -> transport -> poller
 * and system calls. A transport never calls up into the core: every op
 * returns an outcome, and what a completion transport learns from the
 * kernel comes back as a struct mux__io_event that the core consumes
 * (conn_event.c). A transport may read the connection's fields (it is
 * given the struct), writes only `tp`, `tstate` and `interest`, and the
 * output queue when it writes.
 *
 * Every op runs on the owning worker's thread. Ops marked optional may be
 * NULL; the inline wrappers below give their default. */
#ifndef MUX_TRANSPORT_H
#define MUX_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct mux_conn;
struct mux__worker;
struct mux__poll_event;
struct mux__chunk;

/* What a flush did (or a negative errno). */
enum mux__flush_result {
    FLUSH_DONE,    /* the queue is empty */
    FLUSH_BLOCKED, /* the socket is full, or a send is in flight: wait */
    FLUSH_BUDGET,  /* the per-turn byte budget is spent: go on next turn */
};

/* Input the transport holds that no readiness will report. */
enum mux__held {
    HELD_NONE,
    HELD_READY,   /* whole bytes are ready to be read now */
    HELD_PARTIAL, /* part of a unit (a TLS record) came; its rest comes with readiness */
};

/* What a transport's own wait, ended by readiness, asks the core to redo. */
enum {
    REDO_READ = 1u << 0,  /* a read waited for the other direction */
    REDO_WRITE = 1u << 1, /* a write waited for the other direction */
};

/* One outcome of a completion transport, for the core. */
enum mux__io_kind {
    IO_NONE,  /* nothing for the core */
    IO_DATA,  /* data/len arrived (valid until the transport's done op) */
    IO_EOF,   /* the peer's FIN */
    IO_ERROR, /* the connection failed with err */
    IO_SENT,  /* output went out, or the socket takes bytes again */
};

struct mux__io_event {
    struct mux_conn *c; /* NULL: the event concerned no live connection */
    uint8_t kind;       /* enum mux__io_kind */
    bool recv_ended;    /* the receive ended: the core says again whether it reads */
    int err;
    const char *data;
    size_t len;
    unsigned cookie; /* the transport's: which buffer `data` is */
};

struct mux__transport {
    const char *name;
    /* The transport may hold input that no readiness reports (held()):
     * after a pause or backpressure the core reads again unasked. */
    bool holds_input;
    /* Reads return at most one unit (a record): a short read does not
     * mean the socket is drained, only EAGAIN does. */
    bool unit_reads;

    /* Per-connection setup on c->fd: registers it for `want` (MUX_EV_*)
     * where the transport uses readiness. May replace c->t by another
     * transport (the uring transport falls back to plain sockets when it
     * has no memory). 0 or a negative errno (nothing to undo). */
    int (*start)(struct mux_conn *c, uint32_t want);

    /* Optional: a handshake before the connection is the handler's. One
     * step: 1 done, 0 in progress (wants() says for what), or a negative
     * errno. */
    int (*handshake)(struct mux_conn *c);

    /* As read(2): > 0 bytes, 0 for the peer's end of data, -1 with errno
     * (EAGAIN: nothing now). peek: look without taking, on the raw socket
     * (a PROXY header before a handshake). A completion transport answers
     * EAGAIN: its input arrives as events. */
    ssize_t (*read)(struct mux_conn *c, void *buf, size_t len, bool peek);

    /* Writes (or submits) as much of c->out as the socket takes within the
     * budget, advancing the queue and the byte counters. Never ends the
     * connection: returns an enum mux__flush_result or a negative errno. */
    int (*flush)(struct mux_conn *c);

    /* The readiness the core wants now (MUX_EV_READ / MUX_EV_WRITE): the
     * transport registers it, adding or replacing with its own needs (TLS
     * in a handshake), or arms and cancels its receive (completions).
     * 0 or a negative errno. */
    int (*want)(struct mux_conn *c, uint32_t want);

    /* Optional: both directions are finished; stop watching the socket
     * for good (a level-triggered hang-up would repeat on every wait). */
    void (*unwatch)(struct mux_conn *c);

    /* Optional (HELD_NONE): see enum mux__held. */
    int (*held)(const struct mux_conn *c);

    /* Optional: the poller reported events for c while the transport waits
     * on its own account; returns REDO_* for what can go on. */
    unsigned (*retry)(struct mux_conn *c, uint32_t events);

    /* Completion transports: readiness reported for c (the transport's
     * own writability and error watch), and an operation's completion
     * (pe->ptr is the transport's), each turned into *ev. */
    void (*watch)(struct mux_conn *c, uint32_t events, struct mux__io_event *ev);
    void (*complete)(struct mux__worker *w, const struct mux__poll_event *pe,
                     struct mux__io_event *ev);
    /* After the core consumed ev (gives its buffer back). Optional. */
    void (*done)(struct mux__worker *w, const struct mux__io_event *ev);
    /* Optional (0): bytes beyond max_input that may still arrive after
     * the core stopped reading (a cancelled receive's completions). */
    size_t (*late_input)(const struct mux_conn *c);
    /* Optional (0): freed connections waiting for the kernel on w. */
    unsigned (*orphans)(const struct mux__worker *w);

    /* Drops every queued byte (the output is the core's decision; a
     * transport whose kernel may still read the blocks keeps them). */
    void (*drop_output)(struct mux_conn *c);
    /* Optional: the orderly end of data (TLS close_notify), before our FIN. */
    void (*close_notify)(struct mux_conn *c);

    /* The socket's own actions, which the core asks for by name; each is
     * optional, the default being the system call on c->fd (below).
     * shut_write: our FIN (0 or a negative errno). set_reset: the close
     * that follows sends a reset. input_waiting: true when the socket has
     * data, a FIN or an error to read (a peek that never blocks). A test
     * transport that is no socket (tests/sim/) gives all three. */
    int (*shut_write)(struct mux_conn *c);
    void (*set_reset)(struct mux_conn *c);
    bool (*input_waiting)(struct mux_conn *c);
    /* Optional (NULL, *len 0): the application protocol the handshake
     * chose (TLS ALPN), not NUL-terminated, valid until release. */
    const char *(*alpn)(const struct mux_conn *c, size_t *len);
    /* Before close(c->fd): unregisters, cancels, frees per-connection state
     * that no operation in flight needs. */
    void (*release)(struct mux_conn *c);
    /* Optional (false): c is about to be freed; true when the transport
     * keeps it until its last operation completes (then it frees c). */
    bool (*free)(struct mux_conn *c);
};

extern const struct mux__transport mux__transport_socket;
#ifdef MUX_HAVE_OPENSSL
extern const struct mux__transport mux__transport_tls;
#endif

/* ---- the optional ops' defaults ---- */

static inline int mux__t_handshake(struct mux_conn *c, const struct mux__transport *t)
{
    return t->handshake ? t->handshake(c) : 1;
}

static inline int mux__t_held(const struct mux_conn *c, const struct mux__transport *t)
{
    return t->held ? t->held(c) : HELD_NONE;
}

static inline size_t mux__t_late_input(const struct mux_conn *c, const struct mux__transport *t)
{
    return t->late_input ? t->late_input(c) : 0;
}

/* The defaults: shutdown(SHUT_WR), SO_LINGER 0, recv(MSG_PEEK). */
int mux__socket_shut_write(struct mux_conn *c);
void mux__socket_set_reset(struct mux_conn *c);
bool mux__socket_input_waiting(struct mux_conn *c);

static inline int mux__t_shut_write(struct mux_conn *c, const struct mux__transport *t)
{
    return t->shut_write ? t->shut_write(c) : mux__socket_shut_write(c);
}

static inline void mux__t_set_reset(struct mux_conn *c, const struct mux__transport *t)
{
    if (t->set_reset)
        t->set_reset(c);
    else
        mux__socket_set_reset(c);
}

static inline bool mux__t_input_waiting(struct mux_conn *c, const struct mux__transport *t)
{
    return t->input_waiting ? t->input_waiting(c) : mux__socket_input_waiting(c);
}

static inline const char *mux__t_alpn(const struct mux_conn *c, const struct mux__transport *t,
                                      size_t *len)
{
    *len = 0;
    return t->alpn ? t->alpn(c, len) : NULL;
}

/* ---- plain socket I/O, shared by the transports (transport_socket.c) ---- */

#define MUX__FLUSH_BYTES (1u << 20)    /* bytes per flush, so one fast reader cannot hog the worker */
#define MUX__SENDFILE_CHUNK (1u << 20) /* one budget's worth per call */

/* sendfile for the head file range f, at most *wanted bytes: bytes sent, 0
 * when the socket is full, or a negative errno (-EIO: the file shrank). */
ssize_t mux__socket_send_file(struct mux_conn *c, struct mux__chunk *f, size_t *wanted);

/* Sends the head of c->out once: bytes written, 0 when the socket is
 * full, or a negative errno; *wanted is set to the bytes offered. */
typedef ssize_t (*mux__send_head_fn)(struct mux_conn *c, size_t *wanted);

/* The flush every readiness transport shares: send() until the queue is
 * empty, the socket is full or the per-turn budget is spent. */
int mux__flush_loop(struct mux_conn *c, mux__send_head_fn send);

/* The plain flush (sendmsg of the queue's memory, sendfile for file
 * ranges), with system calls made here and now. */
int mux__socket_flush(struct mux_conn *c);

/* Accounts n bytes written from the head of c->out. */
void mux__socket_sent(struct mux_conn *c, size_t n);

/* Registration with the worker's readiness poller, for readiness
 * transports: start (add) and want (mod when the mask changes). */
int mux__socket_watch(struct mux_conn *c, uint32_t want);
int mux__socket_want(struct mux_conn *c, uint32_t want);
void mux__socket_unwatch(struct mux_conn *c);
void mux__socket_release(struct mux_conn *c);
void mux__socket_drop_output(struct mux_conn *c);

#endif
