/* server_priv.h - struct mux_server, shared by server.c, acceptor.c and the
 * workers (private). After mux_server_run() starts the threads, everything
 * here is read-only except the atomics. */
#ifndef MUX_SERVER_PRIV_H
#define MUX_SERVER_PRIV_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "mux/server.h"
#include "tls/tls.h"
#include "worker.h"

struct mux__listener {
    int fd;
    char addr[MUX_ADDR_MAX]; /* the real HOST:PORT */
};

struct mux__acceptor {
    pthread_t thread;
    int epfd;
    int wake_fd;     /* eventfd: stop */
    int timer_fd;    /* timerfd: resume after fd exhaustion */
    int reserve_fd;  /* spare fd given up to shed connections on EMFILE */
    unsigned next;   /* round-robin cursor */
    bool paused;
    bool drain_on_stop; /* reuseport: take what is queued before closing */
};

struct mux_server {
    struct mux_options opts;
    struct mux_handler handler;
    void *app;
    unsigned nworkers;
    const char *poller; /* the backend the workers use: opts.poller, or epoll (fallback) */
    struct mux__worker *workers;
    struct mux__listener listeners[MUX_MAX_LISTEN];
    unsigned nlisteners;
    struct mux__acceptor acceptor;
    int stop_fd;                   /* eventfd: mux_server_stop() */
    int exit_fd;                   /* eventfd: a worker thread finished */
    atomic_uint workers_exited;
    int sig_fd;                    /* signalfd for SIGINT/SIGTERM, or -1 */
    bool signals_blocked;          /* listen() blocked them; old_mask restores */
    sigset_t old_mask;
    atomic_uint open_conns;        /* max_connections accounting */
    atomic_uint max_conns;         /* opts.max_connections, reloadable */
    _Atomic uint64_t rejected;
    _Atomic uint64_t fd_exhaustion;
    _Atomic uint64_t reloads;
    struct mux_control ctl;        /* SIGHUP / SIGUSR1 callbacks */
    void *ctl_arg;
    struct mux__metrics *metrics;  /* --metrics, or NULL */
    struct ssl_ctx_st *tls;        /* the TLS context (tls_cert), or NULL; replaced on SIGHUP */
    struct mux__alpn alpn;         /* opts.tls_alpn, wire format; outlives every context */
};

/* metrics.c, main thread: bind opts.metrics_listen (listen()), serve it on a
 * thread of its own while run() runs, stop and free. */
int mux__metrics_open(struct mux_server *s, struct mux_error *err);
int mux__metrics_start(struct mux_server *s);
void mux__metrics_stop(struct mux_server *s);
void mux__metrics_free(struct mux_server *s);

/* notify.c: the service manager protocol (sd_notify), a no-op outside
 * systemd or when built without libsystemd. */
void mux__notify(const char *state);

/* Worker thread, last thing it does: tells the main thread it is done. */
void mux__server_worker_exited(struct mux_server *s);

/* Worker thread: a connection gave its max_connections slot back. */
void mux__server_release_slot(struct mux_server *s);

/* Acceptor lifecycle (acceptor.c), main thread. */
int mux__acceptor_start(struct mux_server *s);
void mux__acceptor_stop(struct mux_server *s);

#endif
