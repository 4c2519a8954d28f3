/* server.c - the server's lifecycle on the main thread: validate options,
 * bind, start the workers and the acceptor, wait for SIGINT/SIGTERM or
 * mux_server_stop(), then the graceful shutdown:
 *   stop accepting -> each worker drains its connections (answer what was
 *   read, flush, close, on_close once) for up to shutdown_grace_ms -> join. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "compiler.h"
#include "mux/log.h"
#include "mux/mux.h"
#include "net.h"
#include "options.h"
#include "server_priv.h"

MUX_API const char *mux_version(void)
{
    return MUX_VERSION_STRING;
}

static void error_msg(struct mux_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void error_msg(struct mux_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    memset(err, 0, sizeof(*err));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

/* The backend asked for where it works here (a backend with a probe may
 * be refused by the kernel, or missing from this build); else one warning
 * and epoll, which always works. */
static const char *pick_poller(const char *name)
{
    int rc = mux__poller_probe(name);
    if (rc == 0)
        return name;
    mux_log(MUX_LOG_WARN, "poller %s is not available (%s): using epoll", name,
            rc == -EINVAL ? "not in this build" : strerror(-rc));
    return "epoll";
}

MUX_API struct mux_server *mux_server_new(const struct mux_options *o,
                                          const struct mux_handler *handler, void *app,
                                          struct mux_error *err)
{
    if (!handler || !handler->on_read) {
        error_msg(err, "the handler needs an on_read callback");
        return NULL;
    }
    if (mux__options_check(o, err) < 0)
        return NULL;
    struct mux_server *s = calloc(1, sizeof(*s));
    if (!s) {
        error_msg(err, "out of memory");
        return NULL;
    }
    s->opts = *o;
    s->poller = pick_poller(s->opts.poller);
    const char *msg;
    mux__tls_alpn_parse(o->tls_alpn, &s->alpn, &msg); /* checked above */
    if ((o->tls_cert[0] || o->tls_key[0]) && mux__tls_ctx_new(o, &s->alpn, &s->tls, err) < 0) {
        free(s);
        return NULL;
    }
    s->handler = *handler;
    s->app = app;
    s->nworkers = mux__options_workers(o);
    /* Allocated once here and never moved, so mux_server_stats() may read
     * the workers' published counters from any thread at any time. */
    s->workers = calloc(s->nworkers, sizeof(*s->workers));
    s->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    s->exit_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    s->sig_fd = -1;
    atomic_init(&s->open_conns, 0);
    atomic_init(&s->rejected, 0);
    atomic_init(&s->workers_exited, 0);
    atomic_init(&s->max_conns, o->max_connections);
    atomic_init(&s->fd_exhaustion, 0);
    atomic_init(&s->reloads, 0);
    if (!s->workers || s->stop_fd < 0 || s->exit_fd < 0) {
        error_msg(err, "cannot allocate the server: %s", strerror(errno));
        if (s->stop_fd >= 0)
            close(s->stop_fd);
        if (s->exit_fd >= 0)
            close(s->exit_fd);
        mux__tls_ctx_free(s->tls);
        free(s->workers);
        free(s);
        return NULL;
    }
    return s;
}

/* From listen() on, SIGINT/SIGTERM (and SIGHUP, SIGUSR1) wait in a signalfd: a supervisor that
 * signals as soon as it sees the ready line always gets the graceful path. */
static int take_signals(struct mux_server *s, struct mux_error *err)
{
    if (!s->opts.handle_signals || s->signals_blocked)
        return 0;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, &s->old_mask); /* inherited by every thread run() starts */
    s->signals_blocked = true;
    s->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (s->sig_fd < 0) {
        error_msg(err, "signalfd: %s", strerror(errno));
        return -errno;
    }
    return 0;
}

static void give_back_signals(struct mux_server *s)
{
    if (s->sig_fd >= 0) {
        close(s->sig_fd);
        s->sig_fd = -1;
    }
    if (s->signals_blocked) {
        pthread_sigmask(SIG_SETMASK, &s->old_mask, NULL);
        s->signals_blocked = false;
    }
}

/* Descriptors a server needs beyond its connections: listeners, pollers,
 * eventfds, the reserve fd, logs, files being sent, a little slack. */
static rlim_t fds_needed(const struct mux_server *s)
{
    return (rlim_t)s->opts.max_connections + 16 * (rlim_t)s->nworkers + 64;
}

/* fs.nr_open: the most a privileged process may raise its hard limit to. */
static rlim_t nr_open(void)
{
    unsigned long long n = 0;
    FILE *f = fopen("/proc/sys/fs/nr_open", "r");
    if (f) {
        if (fscanf(f, "%llu", &n) != 1)
            n = 0;
        fclose(f);
    }
    return (rlim_t)n;
}

/* A hard limit below what max_connections needs is raised toward it, up
 * to fs.nr_open, when the process may (root with CAP_SYS_RESOURCE); else
 * it stays, and the warning below names it. */
static void raise_hard_limit(struct rlimit *rl, rlim_t want)
{
    if (rl->rlim_max == RLIM_INFINITY || rl->rlim_max >= want)
        return;
    rlim_t cap = nr_open();
    struct rlimit more = {.rlim_cur = rl->rlim_cur, .rlim_max = cap && cap < want ? cap : want};
    if (more.rlim_max > rl->rlim_max && setrlimit(RLIMIT_NOFILE, &more) == 0)
        *rl = more;
}

/* Raises the soft RLIMIT_NOFILE toward the hard one (as redis and memcached
 * do) and warns when max_connections still cannot fit. */
static void raise_fd_limit(const struct mux_server *s)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    rlim_t want = fds_needed(s);
    if (rl.rlim_cur < want)
        raise_hard_limit(&rl, want);
    if (rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            mux_log(MUX_LOG_INFO, "raised the open file limit from %llu to %llu",
                    (unsigned long long)old, (unsigned long long)rl.rlim_cur);
        else
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < want)
        mux_log(MUX_LOG_WARN, "max_connections = %u needs about %llu descriptors but the limit "
                "is %llu (hard %llu): raise it (ulimit -n; as root up to fs.nr_open) or lower "
                "max_connections",
                s->opts.max_connections, (unsigned long long)want,
                (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
}

MUX_API int mux_server_listen(struct mux_server *s, struct mux_error *err)
{
    int rc = take_signals(s, err);
    if (rc < 0)
        return rc;
    raise_fd_limit(s);
    for (unsigned i = 0; i < s->opts.nlisten; i++) {
        const char *text = s->opts.listen[i];
        struct sockaddr_storage ss;
        socklen_t len;
        char msg[256];
        if (mux__addr_parse(text, &ss, &len, msg, sizeof(msg)) < 0) {
            error_msg(err, "%s", msg);
            return -EINVAL;
        }
        int fd = mux__listen_socket(&ss, len, s->opts.backlog, s->opts.reuseport);
        if (fd < 0) {
            error_msg(err, "cannot listen on %s: %s", text, strerror(-fd));
            return fd;
        }
        struct mux__listener *l = &s->listeners[s->nlisteners++];
        l->fd = fd;
        len = sizeof(ss);
        getsockname(fd, (struct sockaddr *)&ss, &len);
        mux__addr_format((struct sockaddr *)&ss, len, l->addr, sizeof(l->addr));
    }
    struct mux_error merr = {0};
    rc = mux__metrics_open(s, &merr);
    if (rc < 0) {
        error_msg(err, "%s", merr.message);
        return rc;
    }
    return 0;
}

MUX_API unsigned mux_server_listen_count(const struct mux_server *s)
{
    return s->nlisteners;
}

MUX_API int mux_server_local_addr(const struct mux_server *s, unsigned i, char *buf, size_t size)
{
    if (i >= s->nlisteners)
        return -ENOENT;
    snprintf(buf, size, "%s", s->listeners[i].addr);
    return 0;
}

MUX_API unsigned mux_server_workers(const struct mux_server *s)
{
    return s->nworkers;
}

MUX_API const char *mux_server_poller(const struct mux_server *s)
{
    return s->poller;
}

static void close_listeners(struct mux_server *s)
{
    for (unsigned i = 0; i < s->nlisteners; i++)
        if (s->listeners[i].fd >= 0) {
            close(s->listeners[i].fd);
            s->listeners[i].fd = -1;
        }
}

static int start_workers(struct mux_server *s)
{
    unsigned inited = 0, started = 0;
    int rc = 0;
    for (; inited < s->nworkers && rc == 0; inited += rc == 0)
        rc = mux__worker_init(&s->workers[inited], s, inited);
    for (; rc == 0 && started < s->nworkers; started += rc == 0)
        rc = -pthread_create(&s->workers[started].thread, NULL, mux__worker_run,
                             &s->workers[started]);
    if (rc == 0)
        return 0;
    for (unsigned i = 0; i < started; i++) {
        mux__worker_request_stop(&s->workers[i]);
        pthread_join(s->workers[i].thread, NULL);
    }
    for (unsigned i = 0; i < inited; i++)
        mux__worker_destroy(&s->workers[i]);
    return rc;
}

void mux__server_worker_exited(struct mux_server *s)
{
    atomic_fetch_add_explicit(&s->workers_exited, 1, memory_order_release);
    uint64_t one = 1;
    ssize_t r = write(s->exit_fd, &one, sizeof(one));
    (void)r;
}

/* ---- reload (SIGHUP) ---- */

/* Keys whose new value reaches live workers; any other change needs a
 * restart. */
static bool reloadable(const char *key)
{
    static const char *const live[] = {"idle_timeout_ms", "max_connections", "max_input",
                                       "write_high_water", "write_low_water",
                                       "shutdown_grace_ms", "tcp_nodelay", "log_level",
                                       "log_file", "tls_cert", "tls_key", NULL};
    for (const char *const *k = live; *k; k++)
        if (strcmp(*k, key) == 0)
            return true;
    return false;
}

static bool key_changed(const struct mux_config_key *k, const struct mux_options *a,
                        const struct mux_options *b)
{
    return memcmp((const char *)a + k->offset, (const char *)b + k->offset, mux__key_size(k)) != 0;
}

/* Copies what may change live from *n into the running configuration and
 * logs the rest as needing a restart. */
static void merge_reload(struct mux_options *run, const struct mux_options *n)
{
    struct mux_options next = *run;
    for (const struct mux_config_key *k = mux_server_keys; k->name; k++) {
        if (!key_changed(k, run, n))
            continue;
        if (!reloadable(k->name)) {
            mux_log(MUX_LOG_WARN, "reload: server.%s changed; it takes a restart (kept)", k->name);
            continue;
        }
        memcpy((char *)&next + k->offset, (const char *)n + k->offset, mux__key_size(k));
        mux_log(MUX_LOG_INFO, "reload: server.%s changed", k->name);
    }
    *run = next;
}

/* SIGHUP re-reads the certificate and key (renewed files, or new paths)
 * into a new context for new connections; live ones keep theirs. A bad
 * one is logged and the running one kept. TLS cannot be turned on or off
 * live: the listeners' protocol would change under connected clients. */
static void reload_tls(struct mux_server *s, struct mux_options *run)
{
    if (!s->tls != !(run->tls_cert[0] || run->tls_key[0])) {
        mux_log(MUX_LOG_WARN, "reload: turning TLS %s takes a restart (kept)",
                s->tls ? "off" : "on");
        memcpy(run->tls_cert, s->opts.tls_cert, sizeof(run->tls_cert));
        memcpy(run->tls_key, s->opts.tls_key, sizeof(run->tls_key));
        return;
    }
    if (!s->tls)
        return;
    struct ssl_ctx_st *ctx;
    struct mux_error err = {0};
    if (mux__tls_ctx_new(run, &s->alpn, &ctx, &err) < 0) {
        char buf[768];
        mux_log(MUX_LOG_ERROR, "reload: %s; the running certificate is kept",
                mux_error_str(&err, buf, sizeof(buf)));
        memcpy(run->tls_cert, s->opts.tls_cert, sizeof(run->tls_cert));
        memcpy(run->tls_key, s->opts.tls_key, sizeof(run->tls_key));
        return;
    }
    for (unsigned i = 0; i < s->nworkers; i++)
        mux__tls_worker_reload(&s->workers[i], ctx);
    mux__tls_ctx_free(s->tls);
    s->tls = ctx;
    mux_log(MUX_LOG_INFO, "reload: TLS certificate %s and key %s loaded", run->tls_cert,
            run->tls_key);
}

static void reload(struct mux_server *s)
{
    if (!s->ctl.reload) {
        mux_log(MUX_LOG_WARN, "SIGHUP: no configuration to reload; ignored");
        return;
    }
    mux__notify("RELOADING=1");
    struct mux_options n = s->opts;
    struct mux_error err = {0};
    int rc = s->ctl.reload(s->ctl_arg, &n, &err);
    if (rc == 0)
        rc = mux__options_check(&n, &err);
    if (rc < 0) {
        char buf[768];
        mux_log(MUX_LOG_ERROR, "reload failed, configuration unchanged: %s",
                mux_error_str(&err, buf, sizeof(buf)));
        mux__notify("READY=1");
        return;
    }
    struct mux_options run = s->opts;
    merge_reload(&run, &n);
    if (strcmp(run.log_file, s->opts.log_file) != 0 && mux_log_set_file(run.log_file) < 0) {
        mux_log(MUX_LOG_ERROR, "reload: cannot open log file %s; kept %s", run.log_file,
                s->opts.log_file[0] ? s->opts.log_file : "stderr");
        snprintf(run.log_file, sizeof(run.log_file), "%s", s->opts.log_file);
    }
    mux_log_setup(run.log_level, NULL);
    reload_tls(s, &run);
    atomic_store_explicit(&s->max_conns, run.max_connections, memory_order_relaxed);
    s->opts = run;
    for (unsigned i = 0; i < s->nworkers; i++)
        if (mux__worker_reload(&s->workers[i], &run) < 0)
            mux_log(MUX_LOG_ERROR, "reload: out of memory for worker %u", i);
    atomic_fetch_add_explicit(&s->reloads, 1, memory_order_relaxed);
    mux_log(MUX_LOG_INFO, "configuration reloaded");
    mux__notify("READY=1");
}

static void reopen_logs(struct mux_server *s)
{
    int rc = mux_log_reopen();
    if (rc < 0)
        mux_log(MUX_LOG_ERROR, "SIGUSR1: cannot reopen %s: %s", s->opts.log_file, strerror(-rc));
    if (s->ctl.reopen_logs)
        s->ctl.reopen_logs(s->ctl_arg);
    mux_log(MUX_LOG_INFO, "SIGUSR1: log files reopened");
}

MUX_API void mux_server_set_control(struct mux_server *s, const struct mux_control *ctl, void *arg)
{
    s->ctl = *ctl;
    s->ctl_arg = arg;
}

/* ---- waiting for signals ---- */

/* Reads what woke us on fd (the stop eventfd or the signalfd). Returns true
 * for a stop request (SIGINT, SIGTERM, mux_server_stop()); handles SIGHUP
 * (reload, unless stopping) and SIGUSR1 (reopen logs) itself. */
static bool stop_requested(struct mux_server *s, int fd, bool is_signal, bool stopping)
{
    if (!is_signal) {
        uint64_t v;
        return read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v);
    }
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
        return false;
    int sig = (int)si.ssi_signo;
    if (sig == SIGHUP) {
        if (stopping)
            mux_log(MUX_LOG_INFO, "SIGHUP during shutdown: ignored");
        else
            reload(s);
        return false;
    }
    if (sig == SIGUSR1) {
        reopen_logs(s);
        return false;
    }
    if (!stopping)
        mux_log(MUX_LOG_INFO, "%s: shutting down (grace %u ms)", strsignal(sig),
                s->opts.shutdown_grace_ms);
    return true;
}

/* Blocks until SIGINT/SIGTERM or mux_server_stop(). */
static void wait_for_stop(struct mux_server *s)
{
    struct pollfd p[2] = {{.fd = s->stop_fd, .events = POLLIN}, {.fd = s->sig_fd, .events = POLLIN}};
    for (;;) {
        if (poll(p, s->sig_fd >= 0 ? 2 : 1, -1) < 0 && errno != EINTR)
            return;
        if ((p[0].revents && stop_requested(s, s->stop_fd, false, false)) ||
            (s->sig_fd >= 0 && p[1].revents && stop_requested(s, s->sig_fd, true, false)))
            return;
    }
}

/* Graceful shutdown: every worker drains; a second SIGINT/SIGTERM (or
 * mux_server_stop()) ends the grace period at once. Then joins them. */
static void stop_workers(struct mux_server *s)
{
    for (unsigned i = 0; i < s->nworkers; i++)
        mux__worker_request_stop(&s->workers[i]);
    struct pollfd p[3] = {{.fd = s->exit_fd, .events = POLLIN},
                          {.fd = s->stop_fd, .events = POLLIN},
                          {.fd = s->sig_fd, .events = POLLIN}};
    bool hurried = false;
    while (atomic_load_explicit(&s->workers_exited, memory_order_acquire) < s->nworkers) {
        if (poll(p, s->sig_fd >= 0 ? 3 : 2, -1) < 0 && errno != EINTR)
            break;
        if (p[0].revents) {
            uint64_t v;
            ssize_t r = read(s->exit_fd, &v, sizeof(v));
            (void)r;
        }
        bool again = (p[1].revents && stop_requested(s, s->stop_fd, false, true)) ||
                     (s->sig_fd >= 0 && p[2].revents && stop_requested(s, s->sig_fd, true, true));
        if (again && !hurried) {
            mux_log(MUX_LOG_WARN, "second stop request: ending the grace period now");
            for (unsigned i = 0; i < s->nworkers; i++)
                mux__worker_request_hurry(&s->workers[i]);
            hurried = true;
        }
    }
    for (unsigned i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i].thread, NULL);
    for (unsigned i = 0; i < s->nworkers; i++)
        mux__worker_destroy(&s->workers[i]);
}

MUX_API int mux_server_run(struct mux_server *s)
{
    signal(SIGPIPE, SIG_IGN);
    struct mux_error err;
    int rc = take_signals(s, &err); /* when run() is called without listen() first */
    if (rc == 0)
        rc = start_workers(s);
    if (rc == 0) {
        rc = mux__acceptor_start(s);
        if (rc == 0)
            rc = mux__metrics_start(s);
        if (rc == 0) {
            mux__notify("READY=1");
            wait_for_stop(s);
            mux__notify("STOPPING=1");
        }
        mux__acceptor_stop(s);
        close_listeners(s); /* new clients are refused from here on */
        stop_workers(s);
        mux__metrics_stop(s);
    }
    give_back_signals(s);
    if (rc < 0)
        mux_log(MUX_LOG_ERROR, "cannot start the server threads: %s", strerror(-rc));
    return rc;
}

MUX_API void mux_server_stop(struct mux_server *s)
{
    uint64_t one = 1;
    ssize_t r = write(s->stop_fd, &one, sizeof(one));
    (void)r;
}

MUX_API void mux_server_free(struct mux_server *s)
{
    if (!s)
        return;
    close_listeners(s);
    mux__metrics_free(s);
    give_back_signals(s);
    close(s->stop_fd);
    close(s->exit_fd);
    mux__tls_ctx_free(s->tls);
    free(s->workers);
    free(s);
}

MUX_API struct mux_stats *mux_server_stats(const struct mux_server *s)
{
    struct mux_stats *st = calloc(1, sizeof(*st) + s->nworkers * sizeof(st->worker[0]));
    if (!st)
        return NULL;
    st->workers = s->nworkers;
    st->rejected = atomic_load_explicit(&s->rejected, memory_order_relaxed);
    st->fd_exhaustion = atomic_load_explicit(&s->fd_exhaustion, memory_order_relaxed);
    st->reloads = atomic_load_explicit(&s->reloads, memory_order_relaxed);
    for (unsigned i = 0; i < s->nworkers; i++) {
        struct mux__counters c;
        mux__worker_read_stats(&s->workers[i], &c);
        struct mux_worker_stats *o = &st->worker[i];
        o->accepted = c.accepted;
        o->open = c.open;
        o->closed = c.closed;
        o->bytes_in = c.bytes_in;
        o->bytes_out = c.bytes_out;
        o->bytes_queued = c.bytes_queued;
        o->backpressure_pauses = c.backpressure_pauses;
        memcpy(o->closed_by, c.closed_by, sizeof(o->closed_by));
        o->late_resets = c.late_resets;
        o->refused = c.refused;
        o->tls_handshakes = c.tls_handshakes;
        o->tls_handshake_failures = c.tls_failures;
    }
    return st;
}
