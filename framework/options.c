/* options.c - the `server` config group: one row per key with its default,
 * range and documentation. apps/mux.conf mirrors this table. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "compiler.h"
#include "mux/log.h"
#include "net.h"
#include "options.h"
#include "tls/tls.h"
#include "poller.h"

#define KEY(name_, type_, min_, max_, doc_)                                                    \
    {.group = "server", .name = #name_, .type = type_,                                        \
     .offset = offsetof(struct mux_options, name_), .size = sizeof(((struct mux_options *)0)->name_), \
     .min = min_, .max = max_, .doc = doc_}

static const char *const poller_names[] = {"epoll", "poll", "select", "uring", NULL};

MUX_API const struct mux_config_key mux_server_keys[] = {
    {.group = "server", .name = "listen", .type = MUX_CFG_LISTEN, .offset = 0,
     .doc = "address or list of addresses to listen on; port 0 = any free port"},
    KEY(workers, MUX_CFG_UINT, 0, 1024, "worker threads; 0 = one per online CPU"),
    KEY(backlog, MUX_CFG_INT, 1, 65535, "listen(2) backlog"),
    {.group = "server", .name = "poller", .type = MUX_CFG_STRING,
     .offset = offsetof(struct mux_options, poller), .size = sizeof(((struct mux_options *)0)->poller),
     .choices = poller_names, .doc = "I/O backend: epoll, poll, select or uring (io_uring; epoll where refused)"},
    KEY(edge_triggered, MUX_CFG_BOOL, 0, 1, "epoll in edge-triggered mode (EPOLLET); epoll only"),
    KEY(max_connections, MUX_CFG_UINT, 1, 10000000, "open connections at most, all workers together"),
    KEY(idle_timeout_ms, MUX_CFG_UINT, 0, 86400000, "close a connection idle this long; 0 = never"),
    KEY(read_buffer, MUX_CFG_SIZE, 512, 64 << 20, "bytes read per readiness event"),
    KEY(max_input, MUX_CFG_SIZE, 512, 1LL << 30, "unconsumed input per connection at most"),
    KEY(write_high_water, MUX_CFG_SIZE, 1, 1LL << 30, "queued output above this pauses reading"),
    KEY(write_low_water, MUX_CFG_SIZE, 0, 1LL << 30, "queued output at or below this resumes it"),
    KEY(shutdown_grace_ms, MUX_CFG_UINT, 0, 3600000, "time open connections get to finish on shutdown"),
    KEY(tcp_nodelay, MUX_CFG_BOOL, 0, 1, "disable Nagle's algorithm on accepted sockets"),
    KEY(reuseport, MUX_CFG_BOOL, 0, 1, "set SO_REUSEPORT on listen sockets"),
    {.group = "server", .name = "log_level", .type = MUX_CFG_LEVEL,
     .offset = offsetof(struct mux_options, log_level), .doc = "error, warn, info or debug"},
    {.group = "server", .name = "log_file", .type = MUX_CFG_STRING,
     .offset = offsetof(struct mux_options, log_file), .size = sizeof(((struct mux_options *)0)->log_file),
     .doc = "log to this file instead of stderr (reopened on SIGUSR1); \"\" = stderr"},
    {.group = "server", .name = "metrics_listen", .type = MUX_CFG_STRING,
     .offset = offsetof(struct mux_options, metrics_listen),
     .size = sizeof(((struct mux_options *)0)->metrics_listen),
     .doc = "HOST:PORT serving GET /metrics (Prometheus text); \"\" = off"},
    KEY(proxy_protocol, MUX_CFG_BOOL, 0, 1, "connections start with a PROXY protocol v1/v2 header"),
    {.group = "server", .name = "tls_cert", .type = MUX_CFG_STRING,
     .offset = offsetof(struct mux_options, tls_cert), .size = sizeof(((struct mux_options *)0)->tls_cert),
     .doc = "PEM certificate chain: every listener speaks TLS 1.2/1.3; \"\" = plain TCP"},
    {.group = "server", .name = "tls_key", .type = MUX_CFG_STRING,
     .offset = offsetof(struct mux_options, tls_key), .size = sizeof(((struct mux_options *)0)->tls_key),
     .doc = "PEM private key of tls_cert"},
    {0},
};

MUX_API void mux_options_init(struct mux_options *o)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->listen[0], sizeof(o->listen[0]), "127.0.0.1:7000");
    o->nlisten = 1;
    o->workers = 0;
    o->backlog = 511;
    snprintf(o->poller, sizeof(o->poller), "epoll");
    o->edge_triggered = false;
    o->max_connections = 10000;
    o->idle_timeout_ms = 60000;
    o->read_buffer = 16 << 10;
    o->max_input = 1 << 20;
    o->write_high_water = 256 << 10;
    o->write_low_water = 64 << 10;
    o->shutdown_grace_ms = 5000;
    o->tcp_nodelay = true;
    o->reuseport = false;
    o->log_level = MUX_LOG_INFO;
    o->handle_signals = true;
}

static int fail(struct mux_error *err, const char *key, const char *msg)
{
    memset(err, 0, sizeof(*err));
    snprintf(err->key, sizeof(err->key), "server.%s", key);
    snprintf(err->message, sizeof(err->message), "%s", msg);
    return -EINVAL;
}

int mux__options_check(const struct mux_options *o, struct mux_error *err)
{
    if (o->write_low_water > o->write_high_water)
        return fail(err, "write_low_water", "must not exceed write_high_water");
    if (o->max_input < o->read_buffer)
        return fail(err, "max_input", "must be at least read_buffer");
    if (o->nlisten < 1 || o->nlisten > MUX_MAX_LISTEN)
        return fail(err, "listen", "needs 1 to 8 addresses");
    const struct mux__poller_ops *ops = mux__poller_find(o->poller);
    if (o->edge_triggered && !(ops && (ops->flags & MUX_POLLER_CAN_EDGE)))
        return fail(err, "edge_triggered", "needs poller = \"epoll\"");
    struct mux__alpn alpn;
    const char *why;
    if (mux__tls_alpn_parse(o->tls_alpn, &alpn, &why) < 0)
        return fail(err, "tls_alpn", why);
    if (o->metrics_listen[0]) {
        struct sockaddr_storage ss;
        socklen_t len;
        char msg[200];
        if (mux__addr_parse(o->metrics_listen, &ss, &len, msg, sizeof(msg)) < 0)
            return fail(err, "metrics_listen", msg);
    }
    return 0;
}

unsigned mux__options_workers(const struct mux_options *o)
{
    if (o->workers)
        return o->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

size_t mux__key_size(const struct mux_config_key *k)
{
    switch (k->type) {
    case MUX_CFG_STRING: return k->size;
    case MUX_CFG_BOOL: return sizeof(bool);
    case MUX_CFG_SIZE: return sizeof(size_t);
    case MUX_CFG_LISTEN: return offsetof(struct mux_options, nlisten) + sizeof(unsigned);
    case MUX_CFG_INT:
    case MUX_CFG_UINT:
    case MUX_CFG_LEVEL: return sizeof(int);
    }
    return 0;
}
