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
    char log_file[256];          /* "" = stderr; reopened on SIGUSR1 */
    char metrics_listen[MUX_ADDR_MAX]; /* "" = off; else HOST:PORT serving GET /metrics */
    bool proxy_protocol;         /* connections start with a PROXY v1/v2 header */
    char tls_cert[256];          /* "" = plain TCP; else a PEM certificate chain: every
                                    listener speaks TLS 1.2/1.3 (re-read on SIGHUP) */
    char tls_key[256];           /* the PEM private key of tls_cert */
    char tls_alpn[64];           /* ALPN protocols offered over TLS, comma-separated in the
                                    server's order of preference ("http/1.1"); "" = none.
                                    Not a config key: the program sets it (mux_app.tls_alpn) */
    bool handle_signals;         /* run() handles SIGINT/SIGTERM/SIGHUP/SIGUSR1 (not a config key) */
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

/* What run() does on SIGHUP and SIGUSR1 (with o.handle_signals). Called on
 * run()'s thread, never concurrently with anything else of the caller's. */
struct mux_control {
    /* SIGHUP: fill *o with the configuration to run with now (re-read the
     * files, re-apply overrides); it starts as a copy of the current one.
     * Return 0, or a negative errno with *err filled: the server then keeps
     * its configuration and logs the error. Keys that can change live
     * (idle_timeout_ms for new connections, max_connections, max_input,
     * write_high_water, write_low_water, shutdown_grace_ms, tcp_nodelay,
     * log_level, log_file) take effect on every worker; a change to any other
     * key is logged as needing a restart and ignored. NULL: SIGHUP only logs. */
    int (*reload)(void *arg, struct mux_options *o, struct mux_error *err);
    /* SIGUSR1, after the framework reopened its own log file (log_file). */
    void (*reopen_logs)(void *arg);
};

/* Main thread, before run(). *ctl is copied; arg is passed back. */
void mux_server_set_control(struct mux_server *s, const struct mux_control *ctl, void *arg);

/* The metrics listener's real "HOST:PORT" once listen() bound it. Returns 0,
 * or -ENOENT when metrics are off. */
int mux_server_metrics_addr(const struct mux_server *s, char *buf, size_t size);

/* Any thread, and async-signal-safe (one eventfd write). Makes run() begin
 * the graceful shutdown. */
void mux_server_stop(struct mux_server *s);

/* Main thread, after run() returned (or if it never ran). */
void mux_server_free(struct mux_server *s);

/* Why connections closed: the index into mux_worker_stats.closed_by. */
enum mux_close_reason {
    MUX_CLOSE_ORDERLY,   /* on_close err 0 */
    MUX_CLOSE_RESET,     /* ECONNRESET, EPIPE: the peer reset */
    MUX_CLOSE_TIMEOUT,   /* ETIMEDOUT: idle timeout */
    MUX_CLOSE_MAX_INPUT, /* EMSGSIZE */
    MUX_CLOSE_ABORTED,   /* ECONNABORTED: mux_conn_abort */
    MUX_CLOSE_SHUTDOWN,  /* ESHUTDOWN: the grace period ended */
    MUX_CLOSE_ERROR,     /* anything else (refused by on_accept, I/O errors) */
    MUX_CLOSE_REASONS
};

/* "orderly", "reset", "timeout", "max_input", "aborted", "shutdown", "error". */
const char *mux_close_reason_name(unsigned reason);

/* Counters for one worker; relaxed snapshots, published once per loop
 * iteration. */
struct mux_worker_stats {
    uint64_t accepted;   /* connections handed to this worker */
    uint64_t open;       /* connections open now */
    uint64_t closed;
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t bytes_queued;        /* output queued and not yet written, now */
    uint64_t backpressure_pauses; /* reads paused by write_high_water */
    uint64_t closed_by[MUX_CLOSE_REASONS];
    uint64_t late_resets;         /* shutdown: input after our close, reset */
    uint64_t refused;             /* the poller could not watch the fd */
    uint64_t tls_handshakes;      /* TLS handshakes completed */
    uint64_t tls_handshake_failures; /* TLS handshakes failed or timed out (closed, no on_close) */
};

struct mux_stats {
    unsigned workers;
    uint64_t rejected;       /* refused by max_connections or fd exhaustion */
    uint64_t fd_exhaustion;  /* times accept hit EMFILE/ENFILE */
    uint64_t reloads;        /* configuration reloads applied */
    struct mux_worker_stats worker[]; /* `workers` entries */
};

/* Any thread. Returns a malloc'd snapshot (free() it), or NULL. */
struct mux_stats *mux_server_stats(const struct mux_server *s);

/* Workers the server runs (after mux_server_new). */
unsigned mux_server_workers(const struct mux_server *s);

/* Any thread, after mux_server_new: the poller backend the workers use,
 * a static string owned by the library. It is o.poller, except for
 * "uring" where the kernel refuses io_uring: then "epoll" (and
 * mux_server_new logged a warning). */
const char *mux_server_poller(const struct mux_server *s);

#ifdef __cplusplus
}
#endif
#endif
