/* mux-proxy: a TCP reverse proxy. Each client gets an outbound connection
 * to a backend, taken round-robin; bytes flow both ways unchanged.
 *
 * One handler serves both sides of a pair (client and backend), which is
 * what the worker API's outbound connections allow:
 *  - mux_worker_connect from on_accept; the client's input stays paused
 *    (and buffered) until on_connect, so a refused or timed-out backend can
 *    be replaced by the next one without losing a byte;
 *  - backpressure: when one side's queued output passes HIGH_WATER the
 *    other side stops reading, and on_writable resumes it, so a side that
 *    does not read bounds the memory of the pair;
 *  - half-close: on_eof of one side becomes mux_conn_shutdown_write of the
 *    other, and each closes once both directions are done;
 *  - a backend that fails is marked down on this worker and a timer marks
 *    it up again after RETRY_MS; new clients skip it meanwhile. */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mux/mux.h>

#define HIGH_WATER (256u << 10) /* output queued for one side before the other pauses */
#define RETRY_MS 2000           /* a failed backend is skipped this long */

struct proxy_opts {
    /* proxy.backends is an address list, stored by the config layer in the
     * listen fields of a struct mux_options (only those are used). */
    struct mux_options backends;
    unsigned connect_timeout_ms;
};

static struct proxy_opts opts = {.connect_timeout_ms = 1000};

static const struct mux_config_key proxy_keys[] = {
    {.group = "proxy", .name = "backends", .type = MUX_CFG_LISTEN,
     .offset = offsetof(struct proxy_opts, backends),
     .doc = "backend address (numeric HOST:PORT), or a list of them"},
    {.group = "proxy", .name = "connect_timeout_ms", .type = MUX_CFG_UINT,
     .offset = offsetof(struct proxy_opts, connect_timeout_ms), .min = 1, .max = 600000,
     .doc = "a backend that has not accepted within this is skipped"},
    {0},
};

static const struct mux_app_flag proxy_flags[] = {
    {.short_name = 'b', .long_name = "backend", .key = "proxy.backends", .arg_name = "HOST:PORT"},
    {0},
};

/* The server-wide, read-only configuration (plus the round-robin cursor). */
struct proxy {
    unsigned nbackends;
    struct sockaddr_storage addr[MUX_MAX_LISTEN];
    socklen_t addr_len[MUX_MAX_LISTEN];
    unsigned connect_timeout_ms;
    atomic_uint next;
};

/* Per worker: which backends failed recently. */
struct proxy_worker {
    bool down[MUX_MAX_LISTEN];
};

/* One client and its backend connection. */
struct pair {
    struct mux_conn *client, *backend;
    unsigned start;   /* round-robin position of this client */
    unsigned tried;   /* bit per backend tried for it */
    unsigned current; /* the backend being connected or used */
    bool connected;
};

static struct mux_conn *other_side(const struct pair *p, const struct mux_conn *c)
{
    return c == p->client ? p->backend : p->client;
}

/* ---- backends: choose, connect, mark down ---- */

static void backend_up(struct mux_worker *w, void *arg)
{
    (void)w;
    *(bool *)arg = false;
}

static void mark_down(struct mux_worker *w, unsigned b)
{
    struct proxy_worker *pw = mux_worker_data(w);
    if (pw->down[b])
        return;
    pw->down[b] = true;
    mux_timer_start(w, RETRY_MS, 0, backend_up, &pw->down[b]);
}

/* The next backend this client has not tried, in round-robin order,
 * preferring ones not marked down (a mark is a hint: when all untried ones
 * are down, one is tried anyway). False when every one was tried. */
static bool pick(const struct proxy *px, const struct proxy_worker *pw, const struct pair *p,
                 unsigned *b)
{
    for (int pass = 0; pass < 2; pass++)
        for (unsigned i = 0; i < px->nbackends; i++) {
            unsigned cand = (p->start + i) % px->nbackends;
            if (!(p->tried & (1u << cand)) && (pass == 1 || !pw->down[cand])) {
                *b = cand;
                return true;
            }
        }
    return false;
}

static const struct mux_handler proxy_handler;

/* Starts a connect to the next untried backend. 0, or the last error. */
static int connect_next(struct mux_worker *w, struct pair *p)
{
    const struct proxy *px = mux_worker_app(w);
    const struct proxy_worker *pw = mux_worker_data(w);
    int rc = ECONNREFUSED;
    unsigned b;
    while (pick(px, pw, p, &b)) {
        p->tried |= 1u << b;
        p->current = b;
        rc = -mux_worker_connect(w, (const struct sockaddr *)&px->addr[b], px->addr_len[b],
                                 &proxy_handler, p, px->connect_timeout_ms, &p->backend);
        if (rc == 0)
            return 0;
        p->backend = NULL;
        mark_down(w, b);
    }
    return rc;
}

/* ---- the handler: both sides ---- */

static int proxy_accept(struct mux_conn *client)
{
    struct mux_worker *w = mux_conn_worker_ctx(client);
    const struct proxy *px = mux_worker_app(w);
    struct pair *p = calloc(1, sizeof(*p));
    if (!p)
        return ENOMEM;
    p->client = client;
    p->start = atomic_fetch_add_explicit((atomic_uint *)&px->next, 1, memory_order_relaxed) %
               px->nbackends;
    mux_conn_set_data(client, p);
    mux_conn_pause_read(client); /* its bytes wait in its buffer until a backend answers */
    return connect_next(w, p);   /* nonzero refuses: on_close frees p */
}

static void proxy_connect(struct mux_conn *backend)
{
    struct pair *p = mux_conn_data(backend);
    p->connected = true;
    if (p->client)
        mux_conn_resume_read(p->client);
}

static size_t proxy_read(struct mux_conn *c, const char *data, size_t len)
{
    struct pair *p = mux_conn_data(c);
    struct mux_conn *to = other_side(p, c);
    if (!to || mux_conn_send(to, data, len) < 0) {
        mux_conn_close(c); /* the other side is gone: nothing can be passed on */
        return len;
    }
    if (mux_conn_pending(to) > HIGH_WATER) {
        mux_conn_pause_read(c);
        mux_conn_want_writable(to, true); /* its on_writable resumes us */
    }
    return len;
}

static void proxy_writable(struct mux_conn *c)
{
    struct pair *p = mux_conn_data(c);
    struct mux_conn *from = other_side(p, c);
    if (from)
        mux_conn_resume_read(from);
    mux_conn_want_writable(c, false);
}

/* One side finished sending: pass the half-close on. */
static void proxy_eof(struct mux_conn *c)
{
    struct pair *p = mux_conn_data(c);
    struct mux_conn *to = other_side(p, c);
    if (to)
        mux_conn_shutdown_write(to);
    else
        mux_conn_shutdown_write(c);
}

static void proxy_close(struct mux_conn *c, int err)
{
    struct pair *p = mux_conn_data(c);
    if (!p)
        return;
    struct mux_worker *w = mux_conn_worker_ctx(c);
    if (c == p->backend) {
        p->backend = NULL;
        if (!p->connected && p->client) { /* refused or timed out: the next one */
            mark_down(w, p->current);
            if (connect_next(w, p) != 0)
                mux_conn_close(p->client);
            return;
        }
    } else {
        p->client = NULL;
    }
    struct mux_conn *o = p->client ? p->client : p->backend;
    if (!o) {
        free(p);
        return;
    }
    if (err == 0 && p->connected)
        mux_conn_close(o); /* after flushing what is queued for it */
    else
        mux_conn_abort(o); /* pass a reset on as a reset */
}

static void proxy_worker_start(struct mux_worker *w)
{
    struct proxy_worker *pw = calloc(1, sizeof(*pw));
    if (!pw)
        abort(); /* at start-up, before any client */
    mux_worker_set_data(w, pw);
}

static void proxy_worker_stop(struct mux_worker *w)
{
    free(mux_worker_data(w)); /* its timers were cancelled with the worker */
}

static const struct mux_handler proxy_handler = {
    .name = "proxy",
    .on_accept = proxy_accept,
    .on_connect = proxy_connect,
    .on_read = proxy_read,
    .on_writable = proxy_writable,
    .on_eof = proxy_eof,
    .on_close = proxy_close,
    .on_worker_start = proxy_worker_start,
    .on_worker_stop = proxy_worker_stop,
};

/* ---- configuration ---- */

/* -b may be repeated: the flags are taken out of argv here (and replace
 * proxy.backends); the mux_app_flag row is what --help shows. */
static char flag_backends[MUX_MAX_LISTEN][MUX_ADDR_MAX];
static unsigned nflag_backends;
static bool too_many_backends;

static void keep_backend(const char *addr)
{
    if (nflag_backends == MUX_MAX_LISTEN) {
        too_many_backends = true;
        return;
    }
    snprintf(flag_backends[nflag_backends++], MUX_ADDR_MAX, "%s", addr);
}

static int take_backend_flags(int argc, char **argv)
{
    int out = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            while (i < argc)
                argv[out++] = argv[i++];
            break;
        }
        if ((strcmp(a, "-b") == 0 || strcmp(a, "--backend") == 0) && i + 1 < argc)
            keep_backend(argv[++i]);
        else if (strncmp(a, "--backend=", 10) == 0)
            keep_backend(a + 10);
        else if (strncmp(a, "-b", 2) == 0 && a[2])
            keep_backend(a + 2);
        else
            argv[out++] = argv[i];
    }
    argv[out] = NULL;
    return out;
}

static int setup_error(struct mux_error *err, const char *fmt, const char *arg)
{
    snprintf(err->key, sizeof(err->key), "proxy.backends");
    snprintf(err->message, sizeof(err->message), fmt, arg);
    return -EINVAL;
}

static int proxy_setup(void *o, void **app, struct mux_error *err)
{
    struct proxy_opts *po = o;
    if (too_many_backends)
        return setup_error(err, "at most %s backends", "8");
    if (nflag_backends) {
        for (unsigned i = 0; i < nflag_backends; i++)
            memcpy(po->backends.listen[i], flag_backends[i], MUX_ADDR_MAX);
        po->backends.nlisten = nflag_backends;
    }
    if (po->backends.nlisten == 0)
        return setup_error(err, "no backend: give -b HOST:PORT or %s", "proxy.backends");
    struct proxy *px = calloc(1, sizeof(*px));
    if (!px)
        return setup_error(err, "%s", "out of memory");
    for (unsigned i = 0; i < po->backends.nlisten; i++) {
        char msg[200];
        if (mux_addr_parse_numeric(po->backends.listen[i], &px->addr[i], &px->addr_len[i], msg,
                                   sizeof(msg)) < 0) {
            free(px);
            return setup_error(err, "%s", msg);
        }
    }
    px->nbackends = po->backends.nlisten;
    px->connect_timeout_ms = po->connect_timeout_ms;
    atomic_init(&px->next, 0);
    *app = px;
    return 0;
}

static void proxy_teardown(void *app)
{
    free(app);
}

int main(int argc, char **argv)
{
    argc = take_backend_flags(argc, argv);
    const struct mux_app app = {
        .name = "mux-proxy",
        .summary = "TCP reverse proxy: clients go round-robin to the backends (-b).",
        .handler = &proxy_handler,
        .keys = proxy_keys,
        .opts = &opts,
        .flags = proxy_flags,
        .setup = proxy_setup,
        .teardown = proxy_teardown,
    };
    return mux_app_main(argc, argv, &app);
}
