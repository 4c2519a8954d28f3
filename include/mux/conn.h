/* mux/conn.h - the page a protocol author reads: the handler vtable and the
 * calls a handler may make on its connection.
 *
 * Threading and lifetime rules (they hold for everything in this file):
 *  - A connection belongs to exactly one worker thread for its whole life.
 *    Every callback for it runs on that thread, and every mux_conn_* call on
 *    it must be made on that thread (from one of its callbacks, or from a
 *    callback of another connection of the same worker). Handlers therefore
 *    need no locks for per-connection state.
 *  - A struct mux_conn * is valid from the start of on_accept until on_close
 *    returns. Keep no copy of it beyond that point.
 *  - No callback is ever invoked from inside a mux_conn_* call (nor a
 *    mux_worker_* call, worker.h), whatever fails inside it: close, resume
 *    and want-writable take effect when control returns to the worker loop,
 *    and a failure met inside a call (out of memory, an I/O error while a
 *    large send is written at once) ends the connection from the loop
 *    afterwards, with on_close(c, err). So every call below is safe inside
 *    any callback, and the handler may go on using its per-connection
 *    state after any call returns.
 */
#ifndef MUX_CONN_H
#define MUX_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mux_conn; /* opaque */
struct mux_worker; /* worker.h */

/* The protocol: fill one of these with designated initializers and hand it
 * to mux_server_new() (or mux_app_main()). The framework copies the table. */
struct mux_handler {
    const char *name; /* for logs */

    /* Optional. Runs once on the owning worker before any read. Return 0 to
     * keep the connection, or a positive errno to refuse it (the socket is
     * closed and on_close(c, that errno) still runs, so cleanup has one
     * home). Typical use: allocate state and mux_conn_set_data(). */
    int (*on_accept)(struct mux_conn *c);

    /* Required. `data` is owned by the framework and valid only during the
     * call. Return how many bytes were consumed (0..len); the rest stays
     * buffered and is offered again, at the front, together with later
     * bytes. While it consumes something and bytes remain, on_read is called
     * again at once, so a handler may consume one message per call.
     * Unconsumed input reaching server.max_input closes the connection with
     * EMSGSIZE. After the peer half-closes, what is buffered is offered once
     * more; queued output is still flushed before the close. */
    size_t (*on_read)(struct mux_conn *c, const char *data, size_t len);

    /* Optional. Fires only while the handler asked for it with
     * mux_conn_want_writable(c, true) and the queued output is at or below
     * server.write_low_water. Refill with mux_conn_send*() or turn the
     * request off; if the handler does neither, the framework turns it off
     * so the loop never spins. */
    void (*on_writable)(struct mux_conn *c);

    /* Optional. Exactly once for every connection whose on_accept ran
     * (refused ones included). err is 0 for an orderly close, else a
     * positive errno: ECONNRESET (peer reset), ETIMEDOUT (idle timeout),
     * EMSGSIZE (max_input), ECONNABORTED (mux_conn_abort), ESHUTDOWN (the
     * shutdown grace period expired), or what a read/write failed with.
     * Free user data here. No output calls are allowed from here. */
    void (*on_close)(struct mux_conn *c, int err);

    /* Optional. An outbound connection (mux_worker_connect, worker.h) is
     * established; input starts flowing and queued output goes out. Runs
     * instead of on_accept, once, and never for a failed connect (that one
     * gets on_close with the error). */
    void (*on_connect)(struct mux_conn *c);

    /* Optional. The peer half-closed (its FIN was read) and every buffered
     * byte has been offered to on_read. Without this callback the
     * connection closes by itself once its output is flushed. With it, the
     * connection stays open for output until the handler ends its side:
     * mux_conn_shutdown_write() (then it closes once flushed) or
     * mux_conn_close(). A proxy uses it to pass a half-close on. */
    void (*on_eof)(struct mux_conn *c);

    /* Optional worker hooks (worker.h). on_worker_start runs on each
     * worker thread before it serves any connection, timer or post;
     * on_worker_stop after all of them, last on that thread. Only the
     * server's handler has them (a handler given to mux_worker_connect
     * does not). */
    void (*on_worker_start)(struct mux_worker *w);
    void (*on_worker_stop)(struct mux_worker *w);
};

/* Copies len bytes from buf into the connection's output queue (the caller
 * keeps ownership of buf). Queued bytes are written with one gather write
 * when the worker loop regains control, or sooner once a lot is queued.
 * Never blocks and never drops bytes: backpressure works by pausing reads
 * above server.write_high_water, not by failing sends.
 * Returns 0, or -EPIPE once the connection is closing or failed, or
 * -ENOMEM when the bytes could not be queued: then nothing was queued and
 * the connection fails (on_close(c, ENOMEM), from the loop, never inside
 * this call), so the peer never gets a stream with a hole in it. */
int mux_conn_send(struct mux_conn *c, const void *buf, size_t len);

/* Queues len bytes of the open file `fd` starting at `offset`, after the
 * bytes already queued; they go out with sendfile(2). On success the
 * framework owns fd and closes it when the range is sent or the connection
 * ends; on error (negative errno) the caller still owns it. -ENOMEM fails
 * the connection as for mux_conn_send. */
int mux_conn_sendfile(struct mux_conn *c, int fd, off_t offset, size_t len);

/* Bytes queued and not yet written (file ranges included). */
size_t mux_conn_pending(const struct mux_conn *c);

/* Ask for (on = true) or stop on_writable callbacks. Idempotent. */
void mux_conn_want_writable(struct mux_conn *c, bool on);

/* Stop / restart delivering input. Idempotent. While paused the socket is
 * not read and buffered input stays buffered; resuming re-offers buffered
 * input from the loop, so no wake-up is lost even when edge-triggered. */
void mux_conn_pause_read(struct mux_conn *c);
void mux_conn_resume_read(struct mux_conn *c);

/* Graceful close: stop reading, flush everything queued, then close and
 * call on_close(c, 0). Idempotent. */
void mux_conn_close(struct mux_conn *c);

/* Half-close: once everything queued is flushed, send our FIN (shutdown
 * SHUT_WR) and keep reading. Sends return -EPIPE from now on and
 * on_writable stops. The connection closes when the peer has finished too
 * (its FIN read, then on_close(c, 0)). Idempotent. */
void mux_conn_shutdown_write(struct mux_conn *c);

/* Immediate close: drop queued output, reset the connection (RST), and call
 * on_close(c, ECONNABORTED). */
void mux_conn_abort(struct mux_conn *c);

/* Per-connection user pointer; the framework never reads or frees it. */
void mux_conn_set_data(struct mux_conn *c, void *data);
void *mux_conn_data(const struct mux_conn *c);

/* The server-wide pointer given to mux_server_new(). Shared by all workers,
 * so treat it as read-only once the server runs. */
void *mux_conn_app(const struct mux_conn *c);

/* Peer address. Returns 0 or a negative errno. */
int mux_conn_peer(const struct mux_conn *c, struct sockaddr_storage *out, socklen_t *len);

/* Peer address as "HOST:PORT" ("[v6]:PORT"), written into buf; returns buf. */
const char *mux_conn_peer_str(const struct mux_conn *c, char *buf, size_t size);

/* Index (0..workers-1) of the worker that owns the connection. */
unsigned mux_conn_worker(const struct mux_conn *c);

/* A process-unique id, for logs. */
uint64_t mux_conn_id(const struct mux_conn *c);

/* The socket descriptor, for setsockopt and the like. Never close it, and
 * over TLS (server.tls_cert) never read or write it: it carries records. */
int mux_conn_fd(const struct mux_conn *c);

/* The application protocol the TLS handshake chose by ALPN (RFC 7301),
 * e.g. "h2" or "http/1.1": *len bytes, NOT NUL-terminated. NULL with
 * *len = 0 on a connection without TLS, when the client offered no ALPN
 * or none of the server's protocols (mux_options.tls_alpn), and before
 * the handshake completed (on_accept runs after it, so from on_accept on
 * the answer is final). The bytes belong to the framework and stay valid
 * until on_close returns; copy them to keep them longer. Owning worker's
 * thread, from any callback, on_close included. */
const char *mux_conn_alpn(const struct mux_conn *c, size_t *len);

/* Override the idle timeout for this connection (ms, 0 = none). The timer
 * restarts from now; any read or write progress restarts it again. */
void mux_conn_set_timeout(struct mux_conn *c, unsigned ms);

/* An absolute deadline: the connection is closed with on_close(c,
 * ETIMEDOUT) `ms` milliseconds from this call (worker clock) unless the
 * deadline is set again (it then counts from the new call) or cleared
 * (ms = 0). Unlike the idle timeout, neither input nor output pushes it
 * back: a request-header timeout that a client trickling one byte a
 * second cannot extend (nginx's client_header_timeout). It runs beside the
 * idle timeout; whichever comes first closes the connection. While the
 * server shuts down the grace period bounds the connection as well.
 * Worker thread, from any callback; harmless after on_close. */
void mux_conn_set_deadline(struct mux_conn *c, unsigned ms);

#ifdef __cplusplus
}
#endif
#endif
