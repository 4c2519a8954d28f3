/* metrics.c - GET /metrics in the Prometheus text exposition format, on a
 * listener and a thread of its own (server.metrics_listen, --metrics), so
 * scraping never touches a worker: it reads the counters the workers
 * publish once per loop turn (mux_server_stats). One scrape at a time,
 * each bounded by a 2 s I/O timeout; then the connection is closed. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "compiler.h"
#include "mux/log.h"
#include "net.h"
#include "server_priv.h"

#define REQUEST_MAX 4096
#define IO_TIMEOUT_S 2

struct mux__metrics {
    int listen_fd;
    int stop_fd; /* eventfd */
    pthread_t thread;
    bool running;
    char addr[MUX_ADDR_MAX];
};

/* A growing text buffer for the response body. */
struct text {
    char *p;
    size_t len, cap;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = t->p ? vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap) : -1;
        va_end(ap);
        if (n >= 0 && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 8192;
        char *p = realloc(t->p, cap);
        if (!p)
            return; /* the scrape gets a truncated body rather than a crash */
        t->p = p;
        t->cap = cap;
    }
}

static void family(struct text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One line per worker for a counter of struct mux_worker_stats. */
#define PER_WORKER(t, st, name, type, help, field)                                          \
    do {                                                                                    \
        family(t, name, type, help);                                                        \
        for (unsigned i_ = 0; i_ < (st)->workers; i_++)                                     \
            put(t, "%s{worker=\"%u\"} %llu\n", name, i_,                                    \
                (unsigned long long)(st)->worker[i_].field);                                \
    } while (0)

static void render(const struct mux_server *s, struct text *t)
{
    struct mux_stats *st = mux_server_stats(s);
    if (!st)
        return;
    PER_WORKER(t, st, "mux_connections_accepted_total", "counter",
               "Connections handed to the worker.", accepted);
    PER_WORKER(t, st, "mux_connections_open", "gauge", "Connections open now.", open);
    family(t, "mux_connections_closed_total", "counter", "Connections closed, by reason.");
    for (unsigned i = 0; i < st->workers; i++)
        for (unsigned r = 0; r < MUX_CLOSE_REASONS; r++)
            put(t, "mux_connections_closed_total{worker=\"%u\",reason=\"%s\"} %llu\n", i,
                mux_close_reason_name(r), (unsigned long long)st->worker[i].closed_by[r]);
    PER_WORKER(t, st, "mux_bytes_received_total", "counter", "Bytes read from clients.",
               bytes_in);
    PER_WORKER(t, st, "mux_bytes_sent_total", "counter", "Bytes written to clients.", bytes_out);
    PER_WORKER(t, st, "mux_output_queued_bytes", "gauge",
               "Output queued and not yet written.", bytes_queued);
    PER_WORKER(t, st, "mux_backpressure_pauses_total", "counter",
               "Times reading paused because queued output passed write_high_water.",
               backpressure_pauses);
    PER_WORKER(t, st, "mux_connections_timed_out_total", "counter",
               "Connections closed by the idle timeout.", closed_by[MUX_CLOSE_TIMEOUT]);
    PER_WORKER(t, st, "mux_shutdown_late_resets_total", "counter",
               "Connections reset because input arrived after their shutdown close.",
               late_resets);
    PER_WORKER(t, st, "mux_connections_unwatchable_total", "counter",
               "Connections closed because the poller could not watch them.", refused);
    PER_WORKER(t, st, "mux_tls_handshakes_total", "counter", "TLS handshakes completed.",
               tls_handshakes);
    PER_WORKER(t, st, "mux_tls_handshake_failures_total", "counter",
               "TLS handshakes that failed or timed out (closed before on_accept).",
               tls_handshake_failures);
    family(t, "mux_connections_rejected_total", "counter",
           "Connections refused by max_connections or descriptor exhaustion.");
    put(t, "mux_connections_rejected_total %llu\n", (unsigned long long)st->rejected);
    family(t, "mux_fd_exhaustion_total", "counter", "Times accept failed for want of descriptors.");
    put(t, "mux_fd_exhaustion_total %llu\n", (unsigned long long)st->fd_exhaustion);
    family(t, "mux_config_reloads_total", "counter", "Configuration reloads applied (SIGHUP).");
    put(t, "mux_config_reloads_total %llu\n", (unsigned long long)st->reloads);
    free(st);
}

static bool write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static void respond(int fd, const char *status, const char *type, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n", status, type, len);
    if (write_all(fd, head, (size_t)n))
        write_all(fd, body, len);
}

/* Reads the request head (bounded in size and time) and answers it. */
static void serve(const struct mux_server *s, int fd)
{
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    char req[REQUEST_MAX + 1];
    size_t len = 0;
    while (len < REQUEST_MAX) {
        ssize_t n = recv(fd, req + len, REQUEST_MAX - len, 0);
        if (n <= 0)
            return;
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
            break;
    }
    bool get = strncmp(req, "GET ", 4) == 0, head = strncmp(req, "HEAD ", 5) == 0;
    const char *path = req + (get ? 4 : 5);
    if (!get && !head) {
        respond(fd, "405 Method Not Allowed", "text/plain", "GET /metrics\n", 13);
        return;
    }
    if (strncmp(path, "/metrics ", 9) != 0 && strncmp(path, "/metrics?", 9) != 0) {
        respond(fd, "404 Not Found", "text/plain", "GET /metrics\n", 13);
        return;
    }
    struct text t = {0};
    render(s, &t);
    respond(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8", head ? "" : t.p,
            head ? 0 : t.len);
    free(t.p);
}

static void *metrics_run(void *arg)
{
    struct mux_server *s = arg;
    struct mux__metrics *m = s->metrics;
    struct pollfd p[2] = {{.fd = m->listen_fd, .events = POLLIN}, {.fd = m->stop_fd, .events = POLLIN}};
    for (;;) {
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (!p[0].revents)
            continue;
        int fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue; /* EAGAIN, EMFILE: the next scrape tries again */
        serve(s, fd);
        close(fd);
    }
    return NULL;
}

int mux__metrics_open(struct mux_server *s, struct mux_error *err)
{
    if (!s->opts.metrics_listen[0] || s->metrics)
        return 0;
    struct sockaddr_storage ss;
    socklen_t len;
    char msg[256];
    if (mux__addr_parse(s->opts.metrics_listen, &ss, &len, msg, sizeof(msg)) < 0) {
        snprintf(err->message, sizeof(err->message), "metrics_listen: %.200s", msg);
        return -EINVAL;
    }
    int fd = mux__listen_socket(&ss, len, 64, false);
    if (fd < 0) {
        snprintf(err->message, sizeof(err->message), "cannot listen on %.128s (metrics): %s",
                 s->opts.metrics_listen, strerror(-fd));
        return fd;
    }
    struct mux__metrics *m = calloc(1, sizeof(*m));
    if (!m) {
        close(fd);
        return -ENOMEM;
    }
    m->listen_fd = fd;
    m->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    len = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &len);
    mux__addr_format((struct sockaddr *)&ss, len, m->addr, sizeof(m->addr));
    s->metrics = m;
    return 0;
}

int mux__metrics_start(struct mux_server *s)
{
    struct mux__metrics *m = s->metrics;
    if (!m)
        return 0;
    int rc = -pthread_create(&m->thread, NULL, metrics_run, s);
    m->running = rc == 0;
    return rc;
}

void mux__metrics_stop(struct mux_server *s)
{
    struct mux__metrics *m = s->metrics;
    if (!m || !m->running)
        return;
    uint64_t one = 1;
    ssize_t r = write(m->stop_fd, &one, sizeof(one));
    (void)r;
    pthread_join(m->thread, NULL);
    m->running = false;
}

void mux__metrics_free(struct mux_server *s)
{
    struct mux__metrics *m = s->metrics;
    if (!m)
        return;
    mux__metrics_stop(s);
    close(m->listen_fd);
    close(m->stop_fd);
    free(m);
    s->metrics = NULL;
}

MUX_API int mux_server_metrics_addr(const struct mux_server *s, char *buf, size_t size)
{
    if (!s->metrics)
        return -ENOENT;
    snprintf(buf, size, "%s", s->metrics->addr);
    return 0;
}
