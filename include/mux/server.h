/* mux/server.h - server lifecycle: options, listen, run, stop, stats.
 *
 * The usual sequence, all on the main thread:
 *     mux_options_init(&o);  (optionally mux_config_load(&o, ...))
 *     s = mux_server_new(&o, &handler, app, &err);
 *     mux_server_listen(s, &err);
 *     mux_server_run(s);     returns after SIGINT/SIGTERM or mux_server_stop()
 *     mux_server_free(s);
 * mux_app_main() (app.h) wraps all of it with the common command line.
 * Per-worker state and hooks, timers, posts to workers (mux_server_post)
 * and outbound connections are in worker.h.
 */
#ifndef MUX_SERVER_H
#define MUX_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MUX_MAX_LISTEN 8
#define MUX_ADDR_MAX 128

/* Every key of the config group `server`; see apps/mux.conf for the
 * documented defaults (mux_options_init fills them). */
struct mux_options {
    char listen[MUX_MAX_LISTEN][MUX_ADDR_MAX]; /* "127.0.0.1:7000", "[::1]:0" */
    unsigned nlisten;
    unsigned workers;            /* 0 = one per online CPU */
    int backlog;
    char poller[16];             /* "epoll" | "poll" | "select" */
    bool edge_triggered;         /* epoll only */
    unsigned max_connections;    /* across all workers */
    unsigned idle_timeout_ms;    /* 0 = none */
    size_t read_buffer;          /* bytes read per readiness event */
    size_t max_input;            /* cap on unconsumed input per connection */
    size_t write_high_water;     /* queued output above this pauses reading */
    size_t write_low_water;      /* ... at or below this resumes it */
    unsigned shutdown_grace_ms;  /* how long open connections may finish */
    bool tcp_nodelay;
    bool reuseport;
    int log_level;               /* enum mux_log_level */
    bool handle_signals;         /* run() waits for SIGINT/SIGTERM (not a config key) */
};

/* Fills every field with its documented default. */
void mux_options_init(struct mux_options *o);

struct mux_server; /* opaque */

/* Main thread. Validates and copies *o and *handler; `app` stays owned by
 * the caller, must outlive the server and is returned by mux_conn_app().
 * Returns NULL with *err filled on invalid options. */
struct mux_server *mux_server_new(const struct mux_options *o, const struct mux_handler *handler,
                                  void *app, struct mux_error *err);

/* Main thread. Binds every listen address. Returns 0, or a negative errno
 * (-EADDRINUSE, ...) with *err filled. With o.handle_signals it first
 * blocks SIGINT and SIGTERM in the calling thread and keeps them for run()
 * (a signalfd), so a signal sent as soon as the address is announced always
 * takes the graceful path; run() returning or mux_server_free() restores the
 * thread's signal mask. */
int mux_server_listen(struct mux_server *s, struct mux_error *err);

/* Number of bound listeners, and the real "HOST:PORT" of listener i (the
 * kernel's port when 0 was asked). Returns 0 or a negative errno. */
unsigned mux_server_listen_count(const struct mux_server *s);
int mux_server_local_addr(const struct mux_server *s, unsigned i, char *buf, size_t size);

/* Main thread (or the one thread that owns the server). Starts the acceptor
 * and the workers, waits for SIGINT/SIGTERM (when o.handle_signals) or
 * mux_server_stop(), then shuts down gracefully (docs/architecture.md,
 * "Shutdown"): stop accepting; each connection is answered for as long as
 * its client keeps sending, within shutdown_grace_ms, and closed once its
 * output is flushed and its input has been silent for a moment; input that
 * arrives after that close, and every connection still open when the grace
 * period ends, gets a reset (never a silent FIN); on_close runs once per
 * connection; every thread is joined. A second SIGINT/SIGTERM or
 * mux_server_stop() during the grace period ends it at once. Returns 0, or
 * a negative errno when the threads could not be started. SIGPIPE is
 * ignored process-wide. Other threads of the program should block SIGINT
 * and SIGTERM too, or they may receive the signal instead. */
int mux_server_run(struct mux_server *s);

/* Any thread, and async-signal-safe (one eventfd write). Makes run() begin
 * the graceful shutdown. */
void mux_server_stop(struct mux_server *s);

/* Main thread, after run() returned (or if it never ran). */
void mux_server_free(struct mux_server *s);

/* Counters for one worker; relaxed snapshots, published once per loop
 * iteration. */
struct mux_worker_stats {
    uint64_t accepted;   /* connections handed to this worker */
    uint64_t open;       /* connections open now */
    uint64_t closed;
    uint64_t bytes_in;
    uint64_t bytes_out;
};

struct mux_stats {
    unsigned workers;
    uint64_t rejected;   /* refused by max_connections or fd exhaustion */
    struct mux_worker_stats worker[]; /* `workers` entries */
};

/* Any thread. Returns a malloc'd snapshot (free() it), or NULL. */
struct mux_stats *mux_server_stats(const struct mux_server *s);

/* Workers the server runs (after mux_server_new). */
unsigned mux_server_workers(const struct mux_server *s);

#ifdef __cplusplus
}
#endif
#endif
