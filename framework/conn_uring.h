/* conn_uring.h - the completion path of a connection (private): on a
 * worker running the uring poller, a plain accepted connection is read by
 * a multishot receive into the worker's provided buffers and written by
 * one sendmsg of its queue per loop turn, instead of readiness + read/
 * write. conn.c keeps every decision (states, water marks, closing);
 * conn_uring.c does the I/O and feeds its results back through the
 * mux__conn_* entry points below. Worker thread only.
 *
 * Memory: a connection with an operation in flight is never freed, and the
 * output blocks a sendmsg reads stay pinned until it completes (dropped
 * output is parked in `pinned`); release() cancels what is in flight and
 * mux__conn_free() leaves the connection to the last completion. */
#ifndef MUX_CONN_URING_H
#define MUX_CONN_URING_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "outq.h"
#include "uring.h"

enum { UOP_RECV, UOP_SEND, UOP_STOP_RECV };

struct mux__uconn {
    struct mux__uop recv, send;
    struct mux__uop stop;     /* the cancellation of recv, while it is in flight */
    bool polled;              /* registered with the readiness poller (for writability) */
    bool want_out;            /* ... and waiting for it: no flush until it comes */
    bool single;              /* reading was paused once: single-shot receives from now on */
    unsigned inflight;        /* ops whose last completion is still due */
    bool orphan;              /* freed by the loop: the last completion frees it */
    size_t sending;           /* bytes of the sendmsg in flight */
    struct mux__outq pinned;  /* output dropped while a sendmsg reads it */
    struct mux__usend *snd;   /* the sendmsg's header and iovec, while one is in flight */
};

struct mux_conn;
struct mux__worker;

/* On open: true if c now runs on the completion path (c->u set, reading
 * started); false leaves it to the readiness path. */
bool mux__uring_conn_start(struct mux_conn *c);

/* Reading wanted or not (from conn.c's update_interest). */
void mux__uring_conn_want_read(struct mux_conn *c, bool on);

/* mux__conn_flush() for c: submits one sendmsg of the queue (or sends the
 * head file range). Returns an enum mux__flush_result or a negative errno. */
int mux__uring_conn_flush(struct mux_conn *c);

/* Output dropped (close, abort): parks what a sendmsg in flight reads. */
void mux__uring_conn_drop_output(struct mux_conn *c);

/* The readiness poller reported c (it waited for writability): stop
 * asking; and unregister it for good. */
void mux__uring_conn_writable(struct mux_conn *c);
void mux__uring_conn_unpoll(struct mux_conn *c);

/* Before close(fd): cancels every op. */
void mux__uring_conn_release(struct mux_conn *c);

/* From mux__conn_free(): true if c waits for its last completion, which
 * frees it; false when nothing is in flight (c->u is freed, the caller
 * frees c). */
bool mux__uring_conn_free(struct mux_conn *c);

/* A MUX_EV_DONE event from the worker loop. */
void mux__uring_complete(struct mux__worker *w, struct mux__uop *op, int res, unsigned cflags);

/* ---- conn.c's entry points for the results (conn.c) ---- */

/* Bytes received (the buffer is the kernel's: copied only if not consumed). */
void mux__conn_received(struct mux_conn *c, const char *data, size_t len);
/* The peer's FIN. */
void mux__conn_received_eof(struct mux_conn *c);
/* A receive or send failed with err. */
void mux__conn_io_failed(struct mux_conn *c, int err);
/* A send completed (the queue was advanced) or the socket became writable. */
void mux__conn_sent(struct mux_conn *c);
/* The multishot receive ended: armed again if the connection still reads. */
void mux__conn_recv_ended(struct mux_conn *c);

#endif
