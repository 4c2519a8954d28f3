/* mux/worker.h - what a server beyond request/response needs from its
 * workers: per-worker state and hooks, timers, messages between threads,
 * and outbound connections.
 *
 * Threading rules (they hold for everything in this file unless a
 * declaration says "any thread"):
 *  - A struct mux_worker * stands for one worker thread. It is handed to the
 *    worker hooks, to timer and post callbacks, and is reachable from every
 *    connection callback with mux_conn_worker_ctx(). It is valid from
 *    on_worker_start until on_worker_stop returns.
 *  - mux_worker_* calls, timers and connects must be made on that worker's
 *    own thread (from one of its callbacks). Posts are the one way in from
 *    other threads.
 *  - As in conn.h, no callback ever runs inside one of these calls.
 *
 * The worker hooks are fields of struct mux_handler (conn.h):
 * on_worker_start(w) runs on each worker thread before it serves anything,
 * on_worker_stop(w) after its last on_close, its last timer and its last
 * post, as the last thing on that thread. mux_app passes them on with the
 * handler, so a sample app sets them like any callback.
 */
#ifndef MUX_WORKER_PUBLIC_H
#define MUX_WORKER_PUBLIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mux_conn;
struct mux_handler;
struct mux_server;
struct mux_worker; /* opaque: one worker thread */

/* ---- the worker and its state ---- */

/* The worker that owns c (its thread is the one calling). */
struct mux_worker *mux_conn_worker_ctx(const struct mux_conn *c);

/* Index 0..workers-1. Any thread. */
unsigned mux_worker_index(const struct mux_worker *w);

/* The server the worker belongs to (for mux_server_post). Any thread. */
struct mux_server *mux_worker_server(const struct mux_worker *w);

/* The server-wide pointer given to mux_server_new() (as mux_conn_app). */
void *mux_worker_app(const struct mux_worker *w);

/* Per-worker user pointer, NULL until set; the framework never reads or
 * frees it. Typical use: allocate in on_worker_start, free in
 * on_worker_stop. Owning worker's thread only. */
void mux_worker_set_data(struct mux_worker *w, void *data);
void *mux_worker_data(const struct mux_worker *w);

/* The worker's clock: monotonic milliseconds, read once per loop turn (so
 * all callbacks of one turn see the same value). */
uint64_t mux_worker_now_ms(const struct mux_worker *w);

/* ---- timers ---- */

/* Runs on the worker that started the timer. */
typedef void (*mux_timer_fn)(struct mux_worker *w, void *arg);

/* Starts a timer on w: fn(w, arg) runs once after delay_ms, and then every
 * repeat_ms if repeat_ms > 0, until cancelled. delay_ms = 0 runs it in the
 * current loop turn's timer pass (after the I/O callbacks). A timer costs
 * O(log n) in the worker's heap and no system call. The framework does not
 * own arg.
 * Returns an id (never 0) for mux_timer_cancel, or 0 when out of memory or
 * when the worker has stopped (from on_worker_stop or a late post).
 * At worker stop (after its last connection closed, before the final posts
 * and on_worker_stop) every live timer is cancelled without running: free
 * what its arg holds in on_worker_stop. */
uint64_t mux_timer_start(struct mux_worker *w, unsigned delay_ms, unsigned repeat_ms,
                         mux_timer_fn fn, void *arg);

/* Cancels a timer so it never runs again. Safe with any id: one that has
 * already fired (one-shot), been cancelled, or belongs to a timer whose
 * slot was reused is recognised and ignored. Safe inside the timer's own
 * callback and from on_close. Returns true when a live timer was cancelled. */
bool mux_timer_cancel(struct mux_worker *w, uint64_t id);

/* ---- messages between threads ---- */

/* Runs on the worker it was posted to. */
typedef void (*mux_post_fn)(struct mux_worker *w, void *arg);

/* Posts in each worker's bounded queue (8192 entries, allocated once). */
#define MUX_POST_QUEUE 8192

/* Any thread, including other workers and threads mux does not know; never
 * blocks and never allocates. Queues fn(w, arg) to run on worker `worker`,
 * in that worker's loop. Every accepted post runs exactly once (none are
 * merged); posts from one thread to one worker run in the order posted; a
 * burst of posts costs the worker one wake-up.
 * Returns 0 (the worker now owns the call; arg must stay valid until fn
 * runs), or, with nothing queued and arg still the caller's:
 *   -EAGAIN     the worker's queue is full (retry later, e.g. from a timer);
 *   -ESHUTDOWN  the worker is not running: mux_server_run() has not started
 *               it yet, or it has finished its shutdown;
 *   -EINVAL     no such worker.
 * Posts queued when a worker stops still run, after its connections closed
 * and before on_worker_stop; posts arriving after that are refused with
 * -ESHUTDOWN, so none is ever lost. */
int mux_server_post(struct mux_server *s, unsigned worker, mux_post_fn fn, void *arg);

/* Posts fn(w, arg) to workers 0, 1, ... in turn, stopping at the first one
 * that refuses. Returns how many accepted it (all of them on success):
 * workers 0..n-1 will run fn once each; the others were not posted to. */
unsigned mux_server_post_all(struct mux_server *s, mux_post_fn fn, void *arg);

/* ---- outbound connections ---- */

/* Parses a numeric "IPv4:PORT" or "[IPv6]:PORT" (no name lookup: a name
 * would block the worker). Returns 0, or -EINVAL with a reason in msg. */
int mux_addr_parse_numeric(const char *host_port, struct sockaddr_storage *out,
                           socklen_t *len, char *msg, size_t msg_size);

/* Opens a connection from worker w to addr, without blocking. The new
 * connection belongs to w and is served by `handler` (NULL: the server's;
 * the table must outlive the connection), exactly like an accepted one:
 * same buffers, backpressure, half-close and close rules (conn.h). Its
 * user data starts as `data`.
 * While the connect is in progress the connection may already be used:
 * sends are queued and go out once connected, and close, abort, pause,
 * shutdown_write and want_writable take effect then. Then, from the loop,
 * never inside this call:
 *   - connected: on_connect(c) runs (on_accept does not), and input flows;
 *   - failed: on_close(c, err) with ECONNREFUSED, ETIMEDOUT (no answer
 *     within timeout_ms; 0 = the kernel's limit), ENETUNREACH, ... and the
 *     queued bytes are dropped.
 * on_close runs exactly once for every connection this call returned.
 * Returns 0 with *out set, or a negative errno and no connection (and no
 * callback): -EAFNOSUPPORT, -EMFILE, -ENOMEM, -ERANGE (fd too large for
 * the select poller), -ESHUTDOWN (the worker has stopped). */
int mux_worker_connect(struct mux_worker *w, const struct sockaddr *addr, socklen_t addr_len,
                       const struct mux_handler *handler, void *data, unsigned timeout_ms,
                       struct mux_conn **out);

/* True for a connection made with mux_worker_connect. */
bool mux_conn_is_outbound(const struct mux_conn *c);

#ifdef __cplusplus
}
#endif
#endif
