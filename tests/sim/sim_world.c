/* sim_world.c - one seed's world: the clients and their scripts, the
 * scheduler that runs at every wait of the worker (one step), the
 * invariants checked at every step and at the end, and the trace hash.
 *
 * A client sends a script of bytes (a function of the seed, so nothing is
 * stored), reads what comes back and checks every byte against what the
 * app must answer, half-closes, stops and resumes reading, resets. The
 * server is the real worker (mux__worker_run) with the app's handler. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "fault.h"
#include "poller.h"
#include "server_priv.h"
#include "sim.h"
#include "worker.h"

#define MAX_CLIENTS 8
#define MAX_STEPS 6000  /* a seed that needs more is stuck: livelock or a lost wake */
#define END_STEPS 3000  /* steps allowed after the hurry that follows */
#define START_MS 1000000

struct sim_client {
    struct sim_sock sock; /* first: a sim_sock is its client */
    uint64_t content;     /* seeds the script's bytes */
    size_t script;        /* bytes it sends in all */
    size_t sent, received;
    size_t owed; /* bytes the app queued for it */
    bool fin_sent, reading, saw_eof, saw_reset, gone;
    bool accepted, closed, app_ended;
    bool refused; /* the app's last on_read took nothing: it waits for more */
    /* chat: the script is lines "K.SEQ:payload\n", kept whole (buf), each
     * line's start in line_at; what arrives is checked line by line */
    char *buf;
    uint32_t *line_at;
    uint32_t nlines;
    char line[256];
    size_t line_len;
    int64_t last_seq[MAX_CLIENTS];
    int close_err;
    struct mux_conn *conn;
};

struct sim_world {
    uint64_t seed, rng, hash, steps, now;
    bool verbose;
    enum sim_app app;
    struct mux_server *srv;
    struct mux__worker *w;
    struct sim_client cl[MAX_CLIENTS];
    unsigned ncl, max_clients;
    uint64_t stop_step, stop_time;
    bool stop_sent, hurry_sent;
    unsigned fault_alloc, fault_send; /* per mille */
    unsigned accepts, closes;
    bool failed;
    char why[512];
};

struct sim_world *sim_cur;
int sim_api_depth;

/* ---- the generator, the trace, failures ---- */

uint64_t sim_below(uint64_t n)
{
    return n ? sim_next(&sim_cur->rng) % n : 0;
}

bool sim_chance(unsigned per_mille)
{
    return sim_below(1000) < per_mille;
}

void sim_trace(uint64_t v)
{
    struct sim_world *W = sim_cur;
    for (int i = 0; i < 8; i++) {
        W->hash ^= (v >> (8 * i)) & 0xff;
        W->hash *= 0x100000001b3ULL; /* FNV-1a */
    }
}

void sim_fail(const char *fmt, ...)
{
    struct sim_world *W = sim_cur;
    if (W->failed)
        return;
    W->failed = true;
    int n = snprintf(W->why, sizeof(W->why), "step %llu (t=%llu ms): ",
                     (unsigned long long)W->steps, (unsigned long long)(W->now - START_MS));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(W->why + n, sizeof(W->why) - (size_t)n, fmt, ap);
    va_end(ap);
}

bool sim_failed(void)
{
    return sim_cur->failed;
}

void sim_say(const char *fmt, ...)
{
    if (!sim_cur->verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    printf("  [%llu t=%llu] ", (unsigned long long)sim_cur->steps,
           (unsigned long long)(sim_cur->now - START_MS));
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

#define say sim_say

uint64_t sim_world_now(void)
{
    return sim_cur->now;
}

static uint64_t world_clock(void)
{
    return sim_cur->now;
}

/* The fault switch asks the seed: ENOMEM from a pool or the poller, EIO
 * from a send, each at the seed's rate. */
static bool world_fault(enum mux__fault_site site, void *arg)
{
    struct sim_world *W = arg;
    unsigned pm = site == FAULT_ALLOC ? W->fault_alloc : W->fault_send;
    bool fail = pm && sim_chance(pm);
    if (fail)
        sim_trace(0xFA000000ull ^ (unsigned)site);
    return fail;
}

/* ---- clients ---- */

struct sim_sock *sim_sock_by_fd(int fd)
{
    struct sim_world *W = sim_cur;
    for (unsigned i = 0; i < W->ncl; i++)
        if (W->cl[i].sock.fd == fd && !W->cl[i].sock.released)
            return &W->cl[i].sock;
    return NULL;
}

static struct sim_client *client_of(const struct mux_conn *c)
{
    struct sim_sock *s = sim_sock_by_fd(mux_conn_fd(c));
    if (!s)
        sim_fail("a callback for a connection on no simulated socket (fd %d)", mux_conn_fd(c));
    return (struct sim_client *)s;
}

/* Byte i of a client's script: letters of both cases, digits, spaces and
 * newlines, from a hash of (content, i). */
static char script_byte(const struct sim_client *k, size_t i)
{
    if (k->buf)
        return k->buf[i];
    static const char alphabet[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \n\r.";
    uint64_t x = k->content + (uint64_t)i * 0x9E3779B97F4A7C15ULL;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 29;
    return alphabet[x % (sizeof(alphabet) - 1)];
}

/* A chat client's script: about k->script bytes of short lines. */
static void chat_script(struct sim_world *W, struct sim_client *k)
{
    size_t want = k->script, len = 0, cap = want + 128;
    uint32_t nmax = (uint32_t)(want / 8 + 2);
    k->buf = malloc(cap);
    k->line_at = malloc((nmax + 1) * sizeof(*k->line_at));
    if (!k->buf || !k->line_at)
        abort();
    k->nlines = 0;
    while (len < want && k->nlines < nmax) {
        k->line_at[k->nlines] = (uint32_t)len;
        int n = snprintf(k->buf + len, cap - len, "%u.%u:", k->sock.index, k->nlines);
        len += (size_t)n;
        size_t payload = sim_below(60);
        for (size_t i = 0; i < payload && len < cap - 1; i++)
            k->buf[len++] = (char)('a' + sim_below(26));
        k->buf[len++] = '\n';
        k->nlines++;
        if (cap - len < 80)
            break;
    }
    k->line_at[k->nlines] = (uint32_t)len;
    k->script = len;
}

/* chat: one whole line arrived at k: it must be a line some client sent,
 * and from each sender in the order sent. */
static void chat_line(struct sim_world *W, struct sim_client *k)
{
    unsigned from, seq;
    if (sscanf(k->line, "%u.%u:", &from, &seq) != 2 || from >= W->ncl ||
        seq >= W->cl[from].nlines) {
        sim_fail("client %u: a line nobody sent: %.*s", k->sock.index, (int)k->line_len, k->line);
        return;
    }
    const struct sim_client *s = &W->cl[from];
    size_t at = s->line_at[seq], n = s->line_at[seq + 1] - at;
    if (n != k->line_len || memcmp(s->buf + at, k->line, n) != 0)
        sim_fail("client %u: line %u.%u arrived changed: \"%.*s\", sent \"%.*s\"", k->sock.index,
                 from, seq, (int)k->line_len - 1, k->line, (int)n - 1, s->buf + at);
    else if ((int64_t)seq <= k->last_seq[from])
        sim_fail("client %u: line %u.%u after line %u.%lld (out of order or twice)",
                 k->sock.index, from, seq, from, (long long)k->last_seq[from]);
    k->last_seq[from] = seq;
}

static void chat_bytes(struct sim_world *W, struct sim_client *k, const char *p, size_t n)
{
    for (size_t i = 0; i < n && !W->failed; i++) {
        if (k->line_len == sizeof(k->line)) {
            sim_fail("client %u: a line longer than any sent", k->sock.index);
            return;
        }
        k->line[k->line_len++] = p[i];
        if (p[i] == '\n') {
            chat_line(W, k);
            k->line_len = 0;
        }
    }
}

static void new_client(struct sim_world *W)
{
    struct sim_client *k = &W->cl[W->ncl];
    memset(k, 0, sizeof(*k));
    sim_net_init_sock(&k->sock, W->ncl);
    W->ncl++;
    k->content = sim_next(&W->rng);
    unsigned shape = (unsigned)sim_below(10);
    k->script = shape == 0 ? 0 : shape < 6 ? 1 + sim_below(512) : 1 + sim_below(96 * 1024);
    if (W->app == SIM_CHAT)
        chat_script(W, k);
    k->reading = true;
    for (unsigned j = 0; j < MAX_CLIENTS; j++)
        k->last_seq[j] = -1;
    k->sock.c2s_room = 1024 + sim_below(128 * 1024);
    k->sock.s2c_window = k->sock.s2c_room = 1 + sim_below(96 * 1024);
    say("client %u connects: script %zu bytes, windows %zu/%zu", k->sock.index, k->script,
        k->sock.c2s_room, k->sock.s2c_room);
    sim_trace(0xC1000000ull ^ k->script);
    if (!mux__handoff_push(&W->w->handoff, k->sock.fd))
        sim_fail("the handoff queue refused a connection");
    mux__handoff_wake(&W->w->handoff);
}

static void client_send(struct sim_client *k)
{
    size_t n = k->script - k->sent;
    if (n > k->sock.c2s_room)
        n = k->sock.c2s_room;
    if (n > 8192)
        n = 8192;
    if (n == 0)
        return;
    if (sim_chance(500))
        n = 1 + (size_t)sim_below(n);
    if (k->sock.released) { /* data to a closed socket: the kernel answers with a reset */
        k->saw_reset = true;
        k->gone = true;
        return;
    }
    char buf[8192];
    for (size_t i = 0; i < n; i++)
        buf[i] = script_byte(k, k->sent + i);
    sim_bytes_push(&k->sock.c2s, buf, n);
    k->sock.c2s_room -= n;
    k->sent += n;
    sim_trace(0x53000000ull ^ ((uint64_t)k->sock.index << 32) ^ n);
}

/* Reads up to n bytes of the reply and checks each one. */
static void client_read(struct sim_world *W, struct sim_client *k, size_t n)
{
    char buf[8192];
    if (n > sizeof(buf))
        n = sizeof(buf);
    n = sim_bytes_take(&k->sock.s2c, buf, n, false);
    k->sock.s2c_room += n;
    if (W->app == SIM_CHAT)
        chat_bytes(W, k, buf, n);
    for (size_t i = 0; i < n && W->app != SIM_CHAT; i++) {
        size_t at = k->received + i;
        if (at >= k->sent) {
            sim_fail("client %u: reply byte %zu arrived, but only %zu were sent (%s)",
                     k->sock.index, at, k->sent, sim_app_names[W->app]);
            break;
        }
        char want = sim_app_transform(W->app, script_byte(k, at));
        if (buf[i] != want) {
            sim_fail("client %u: reply byte %zu is 0x%02x, expected 0x%02x (%s)", k->sock.index,
                     at, (unsigned char)buf[i], (unsigned char)want, sim_app_names[W->app]);
            break;
        }
    }
    k->received += n;
    if (k->sock.s2c.len == 0 && k->sock.s2c_fin && !k->saw_eof) {
        k->saw_eof = true;
        say("client %u: EOF after %zu of %zu bytes", k->sock.index, k->received, k->sent);
    }
    sim_trace(0x4B000000ull ^ ((uint64_t)k->sock.index << 32) ^ n);
}

static void client_reset(struct sim_client *k)
{
    say("client %u resets", k->sock.index);
    k->gone = true;
    k->saw_reset = true;
    if (!k->sock.released)
        k->sock.reset_to_server = true;
    sim_bytes_take(&k->sock.s2c, NULL, k->sock.s2c.len, false);
}

/* One thing a client does, picked at random. */
static void client_act(struct sim_world *W, struct sim_client *k)
{
    if (k->gone)
        return;
    unsigned r = (unsigned)sim_below(1000);
    if (r < 450 && !k->fin_sent && k->sent < k->script) {
        client_send(k);
    } else if (r < 850 && k->reading && k->sock.s2c.len > 0) {
        client_read(W, k, sim_chance(500) ? k->sock.s2c.len : 1 + sim_below(k->sock.s2c.len));
    } else if (r < 900 && !k->fin_sent && k->sent == k->script && !k->sock.released) {
        k->fin_sent = true;
        k->sock.c2s_fin = true;
        say("client %u sends its FIN after %zu bytes", k->sock.index, k->sent);
        sim_trace(0x46490000ull ^ k->sock.index);
    } else if (r < 915) {
        k->reading = !k->reading;
        say("client %u %s reading", k->sock.index, k->reading ? "resumes" : "stops");
    } else if (r < 918) {
        client_reset(k);
    } else if (k->saw_eof && k->fin_sent && k->sock.released) {
        k->gone = true; /* done: both directions ended cleanly */
    } else if (k->sock.s2c.len == 0 && k->sock.s2c_fin && !k->saw_eof) {
        client_read(W, k, 0);
    }
}

/* The reset the server's close sent reaches its client. */
static void deliver_resets(struct sim_world *W)
{
    for (unsigned i = 0; i < W->ncl; i++) {
        struct sim_client *k = &W->cl[i];
        if (k->sock.released && k->sock.reset_on_close && !k->saw_reset) {
            say("client %u sees the server's reset", i);
            k->saw_reset = true;
            sim_bytes_take(&k->sock.s2c, NULL, k->sock.s2c.len, false);
        }
    }
}

/* ---- the callbacks' reports (sim_apps.c) ---- */

void sim_world_callback(const char *name)
{
    if (sim_api_depth != 0)
        sim_fail("%s ran inside a mux_* call", name);
}

void sim_world_accepted(struct mux_conn *c)
{
    struct sim_client *k = client_of(c);
    if (!k)
        return;
    if (k->accepted)
        sim_fail("client %u: on_accept twice", k->sock.index);
    k->accepted = true;
    k->conn = c;
    sim_cur->accepts++;
}

void sim_world_closed(struct mux_conn *c, int err)
{
    struct sim_client *k = client_of(c);
    if (!k)
        return;
    if (!k->accepted)
        sim_fail("client %u: on_close without on_accept", k->sock.index);
    if (k->closed)
        sim_fail("client %u: on_close twice", k->sock.index);
    k->closed = true;
    k->close_err = err;
    unsigned idle = sim_cur->w->opts->idle_timeout_ms;
    if (err == ETIMEDOUT && sim_cur->app != SIM_RANDOM &&
        sim_cur->now < k->sock.last_io + idle)
        sim_fail("client %u: idle timeout after %llu ms of quiet, the timeout is %u ms",
                 k->sock.index, (unsigned long long)(sim_cur->now - k->sock.last_io), idle);
    k->conn = NULL;
    sim_cur->closes++;
    say("client %u: on_close(%s)", k->sock.index, err ? strerror(err) : "orderly");
    sim_trace(0xCC000000ull ^ ((uint64_t)k->sock.index << 16) ^ (unsigned)err);
}

void sim_world_offered(struct mux_conn *c, size_t used)
{
    struct sim_client *k = client_of(c);
    if (k)
        k->refused = used == 0;
}

void sim_world_queued(struct mux_conn *c, size_t n)
{
    struct sim_client *k = client_of(c);
    if (k)
        k->owed += n;
}

/* A reset close is the answer to an abort, an error, or a shutdown that
 * could not finish; never to a connection the app closed in order. */
void sim_world_reset_asked(struct sim_sock *s)
{
    struct sim_client *k = (struct sim_client *)s;
    say("the server resets client %u", s->index);
    if (k->closed && k->close_err == 0 && !sim_cur->stop_sent)
        sim_fail("client %u: reset after an orderly close, with no shutdown", s->index);
}

void sim_world_app_ended(struct mux_conn *c)
{
    struct sim_client *k = client_of(c);
    if (k)
        k->app_ended = true;
}

/* ---- invariants ---- */

static unsigned o_grace(const struct sim_world *W)
{
    return W->w->opts->shutdown_grace_ms;
}

/* What an app may keep queued for one connection, whatever its peer does:
 * a reply to one read above the high-water mark (reading stops there);
 * chat queues everyone's lines and drops a client past its max_queue. */
static size_t out_bound_per_conn(const struct sim_world *W)
{
    const struct mux_options *o = W->w->opts;
    size_t bound = o->write_high_water + o->max_input + 4 * 4096;
    if (W->app == SIM_CHAT)
        bound += (1u << 20) + 64 * 1024; /* chat.max_queue, and one turn's batch */
    return bound;
}

/* Every step: bounded memory under any peer; nothing released that still
 * owes on_close; a connection that ended gave its buffers back. */
static void check_step(struct sim_world *W)
{
    const struct mux_options *o = W->w->opts;
    size_t live = 0;
    for (unsigned i = 0; i < W->ncl; i++) {
        struct sim_client *k = &W->cl[i];
        if (k->sock.released && k->accepted && !k->closed)
            sim_fail("client %u: its socket was closed but on_close never ran", i);
        if (!k->conn)
            continue;
        live++;
        size_t bound = out_bound_per_conn(W);
        if (mux__outq_bytes(&k->conn->out) > bound)
            sim_fail("client %u: %zu bytes queued, more than the bound %zu (not reading: %d)", i,
                     mux__outq_bytes(&k->conn->out), bound, !k->reading);
    }
    size_t out_bytes = (size_t)W->w->outpool.in_use * W->w->outpool.block_size;
    size_t out_bound = (live + 1) * (out_bound_per_conn(W) + 8 * W->w->outpool.block_size);
    if (out_bytes > out_bound)
        sim_fail("%zu bytes of output blocks in use for %zu connections (bound %zu)", out_bytes,
                 live, out_bound);
    if (W->w->inpool.in_use > live * (o->max_input / o->read_buffer + 2))
        sim_fail("%u input blocks in use for %zu connections", W->w->inpool.in_use, live);
}

/* The worker is about to wait with nothing deferred: whatever can move
 * must be watched for, and input the app would take must have been given
 * to it (a lost wake-up otherwise: the connection would stall). */
static void check_idle(struct sim_world *W)
{
    for (unsigned i = 0; i < W->ncl; i++) {
        struct sim_client *k = &W->cl[i];
        struct mux_conn *c = k->conn;
        if (!c || (c->interest & MUX__UNWATCHED) || c->err)
            continue;
        if (!k->refused && mux__inbuf_len(&c->in) > 0 && mux__conn_can_deliver(c))
            sim_fail("client %u: %zu bytes of input buffered, not delivered, and the worker "
                     "waits", i, mux__inbuf_len(&c->in));
        if (c->state >= CONN_OPEN && c->state <= CONN_CLOSING && !mux__outq_empty(&c->out) &&
            !(c->interest & MUX_EV_WRITE))
            sim_fail("client %u: %zu bytes queued and nothing watches for writability", i,
                     mux__outq_bytes(&c->out));
        if ((c->flags & CONN_READ_BLOCKED) && mux__conn_out_cost(c) <= W->w->opts->write_low_water)
            sim_fail("client %u: reading stays blocked with %zu bytes queued (low water %zu)", i,
                     mux__outq_bytes(&c->out), W->w->opts->write_low_water);
        if (mux__conn_can_read(c) && (k->sock.c2s.len > 0 || k->sock.c2s_fin) &&
            !(c->interest & MUX_EV_READ))
            sim_fail("client %u: input waits in the socket and nothing watches for it", i);
    }
}

/* After the worker returned. */
static void check_end(struct sim_world *W, uint64_t exit_time)
{
    struct mux__worker *w = W->w;
    deliver_resets(W);
    if (w->conns.live != 0)
        sim_fail("the worker ended with %zu connections not freed", w->conns.live);
    if (w->timers.n != 0)
        sim_fail("%u connection timers still armed at the end", w->timers.n);
    if (w->inpool.in_use || w->outpool.in_use)
        sim_fail("buffers not returned: %u input, %u output blocks", w->inpool.in_use,
                 w->outpool.in_use);
    if (W->stop_sent && exit_time > W->stop_time + o_grace(W) + 10)
        sim_fail("shutdown took %llu ms, the grace period is %u ms",
                 (unsigned long long)(exit_time - W->stop_time), o_grace(W));
    for (unsigned i = 0; i < W->ncl; i++) {
        struct sim_client *k = &W->cl[i];
        if (!k->sock.released)
            sim_fail("client %u: the server never closed its socket", i);
        if (k->accepted != k->closed)
            sim_fail("client %u: on_accept %d, on_close %d", i, k->accepted, k->closed);
        while (!k->gone && !k->saw_reset && k->sock.s2c.len > 0 && !W->failed)
            client_read(W, k, k->sock.s2c.len); /* what is left in flight */
        /* Loss is allowed only with a reason: a reset seen, an error or
         * timeout given to on_close, the app's own close, or a client that
         * gave up first. */
        bool intact = k->accepted && k->close_err == 0 && !k->saw_reset;
        if (intact && k->received != k->owed)
            sim_fail("client %u: the connection ended orderly after %zu of the %zu bytes the "
                     "app queued arrived", i, k->received, k->owed);
        bool lossless = intact && !k->app_ended && W->app != SIM_CHAT; /* chat: not an echo */
        if (lossless && k->received != k->sent)
            sim_fail("client %u: the connection ended orderly after %zu of %zu bytes were "
                     "answered", i, k->received, k->sent);
    }
}

/* ---- the step ---- */

/* What the world does this step: maybe a new client, a few client
 * actions, the stop request. */
static void world_act(struct sim_world *W)
{
    if (!W->stop_sent && W->ncl < W->max_clients && sim_chance(W->ncl == 0 ? 600 : 40))
        new_client(W);
    unsigned actions = (unsigned)sim_below(4);
    for (unsigned a = 0; a < actions && W->ncl > 0; a++)
        client_act(W, &W->cl[sim_below(W->ncl)]);
    if (!W->stop_sent && W->steps >= W->stop_step) {
        W->stop_sent = true;
        say("the server is told to stop (grace %u ms)", o_grace(W));
        sim_trace(0x5707);
        mux__worker_request_stop(W->w);
    } else if (W->stop_sent && !W->hurry_sent && sim_chance(2)) {
        W->hurry_sent = true;
        say("a second stop signal: hurry");
        mux__worker_request_hurry(W->w);
    }
}

/* The readiness of the simulated sockets, as a level-triggered poller
 * reports it; the scheduler leaves some out (they come next time). */
static int world_events(struct sim_world *W, struct mux__poll_event *ev, int max)
{
    int n = 0;
    unsigned first = W->ncl ? (unsigned)sim_below(W->ncl) : 0;
    for (unsigned j = 0; j < W->ncl && n < max; j++) {
        struct sim_sock *s = &W->cl[(first + j) % W->ncl].sock;
        if (!s->watched || s->released)
            continue;
        uint32_t e = 0;
        if (s->reset_to_server)
            e |= MUX_EV_ERROR | MUX_EV_HUP;
        if ((s->interest & MUX_EV_READ) && (s->c2s.len > 0 || s->c2s_fin || s->reset_to_server))
            e |= MUX_EV_READ | (s->c2s_fin ? MUX_EV_RDHUP : 0);
        if ((s->interest & MUX_EV_WRITE) && (s->s2c_room > 0 || s->reset_to_server))
            e |= MUX_EV_WRITE;
        if (s->c2s_fin && s->s2c_fin && s->c2s.len == 0)
            e |= MUX_EV_HUP;
        if (!e || sim_chance(80))
            continue;
        ev[n++] = (struct mux__poll_event){.ptr = s->ptr, .events = e};
        sim_trace(0xEE000000ull ^ ((uint64_t)s->index << 16) ^ e);
    }
    return n;
}

/* How far the clock moves during this wait: a little when something is
 * ready, up to the timeout (and a few ms late, as a loaded machine is)
 * when nothing is. */
static void world_clock_jump(struct sim_world *W, int timeout_ms, bool ready)
{
    uint64_t jump = 0;
    if (ready || timeout_ms == 0)
        jump = sim_chance(150) ? sim_below(3) : 0;
    else if (timeout_ms > 0)
        jump = sim_chance(200) ? sim_below((uint64_t)timeout_ms) /* woken early */
                               : (uint64_t)timeout_ms + (sim_chance(200) ? sim_below(4) : 0);
    else
        jump = sim_below(2000); /* waits for ever: time passes until the world acts */
    if (timeout_ms >= 0 && !ready && jump > (uint64_t)timeout_ms + 3)
        jump = (uint64_t)timeout_ms + 3;
    W->now += jump;
    sim_trace(0x71000000ull ^ jump);
}

static bool world_quiet(const struct sim_world *W)
{
    if (W->ncl < W->max_clients)
        return false; /* more clients may come */
    for (unsigned i = 0; i < W->ncl; i++) {
        const struct sim_client *k = &W->cl[i];
        if (!k->gone && ((!k->fin_sent && k->sent < k->script) ||
                         (k->reading && k->sock.s2c.len > 0)))
            return false;
    }
    return true;
}

int sim_world_step(struct mux__poll_event *ev, int max, int timeout_ms)
{
    struct sim_world *W = sim_cur;
    W->steps++;
    sim_trace(0x7700000000ull ^ (uint64_t)(int64_t)timeout_ms);
    check_step(W);
    if (timeout_ms != 0)
        check_idle(W);
    deliver_resets(W);
    if (W->steps == MAX_STEPS) {
        sim_fail("no end after %d steps (stopping: %d): a livelock or a lost wake-up", MAX_STEPS,
                 W->stop_sent);
        mux__worker_request_hurry(W->w);
    }
    if (W->steps > MAX_STEPS + END_STEPS) {
        fprintf(stderr, "sim: seed %llu: the worker did not end after a hurry: %s\n",
                (unsigned long long)W->seed, W->why);
        abort();
    }
    if (W->failed && !W->hurry_sent) { /* end the seed quickly */
        W->hurry_sent = true;
        if (!W->stop_sent)
            W->stop_sent = true;
        mux__worker_request_stop(W->w);
        mux__worker_request_hurry(W->w);
    }
    world_act(W);
    if (timeout_ms < 0 && world_quiet(W) && !W->stop_sent)
        W->stop_step = W->steps + 1; /* nothing more will happen: stop next step */
    bool stopping_now = W->stop_sent && W->stop_time == 0;
    int n = world_events(W, ev, max);
    world_clock_jump(W, timeout_ms, n > 0 || stopping_now);
    if (stopping_now)
        W->stop_time = W->now; /* the worker sees the request when this wait returns */
    return n;
}

/* ---- one seed ---- */

static void world_options(struct sim_world *W, struct mux_options *o)
{
    mux_options_init(o);
    snprintf(o->poller, sizeof(o->poller), "sim");
    o->workers = 1;
    o->handle_signals = false;
    size_t rb[] = {256, 1024, 4096, 16384};
    o->read_buffer = rb[sim_below(4)];
    o->max_input = o->read_buffer * (1 + sim_below(8));
    o->write_high_water = 512 + sim_below(64 * 1024);
    o->write_low_water = sim_below(o->write_high_water + 1);
    unsigned idle[] = {0, 0, 50, 300, 2000};
    o->idle_timeout_ms = idle[sim_below(5)];
    o->shutdown_grace_ms = 20 + (unsigned)sim_below(3000);
    o->tcp_nodelay = false;
}

void sim_run_seed(uint64_t seed, bool verbose, struct sim_result *out)
{
    struct sim_world *W = calloc(1, sizeof(*W));
    if (!W)
        abort();
    sim_cur = W;
    W->seed = seed;
    W->rng = seed * 0x9E3779B97F4A7C15ULL + 1;
    W->hash = 0xcbf29ce484222325ULL;
    W->verbose = verbose;
    W->now = START_MS;
    W->app = (enum sim_app)sim_below(SIM_APPS);
    W->max_clients = 1 + (unsigned)sim_below(MAX_CLIENTS);
    W->stop_step = 20 + sim_below(600);
    if (sim_chance(400)) {
        W->fault_alloc = (unsigned)sim_below(40);
        W->fault_send = (unsigned)sim_below(40);
    }
    struct mux_options o;
    world_options(W, &o);
    void *app = NULL;
    const struct mux_handler *h = sim_app_handler(W->app, &app);
    if (verbose)
        printf("seed %llu: app %s, %u clients at most, read_buffer %zu, max_input %zu, water "
               "%zu/%zu, idle %u ms, grace %u ms, faults alloc %u send %u per mille, stop at "
               "step %llu\n",
               (unsigned long long)seed, sim_app_names[W->app], W->max_clients, o.read_buffer,
               o.max_input, o.write_low_water, o.write_high_water, o.idle_timeout_ms,
               o.shutdown_grace_ms, W->fault_alloc, W->fault_send,
               (unsigned long long)W->stop_step);
    mux__clock_set_source(world_clock);
    mux__poller_set_test(&sim_poller);
    struct mux_error err;
    W->srv = mux_server_new(&o, h, app, &err);
    if (!W->srv) {
        fprintf(stderr, "sim: mux_server_new: %s\n", err.message);
        abort();
    }
    W->w = &W->srv->workers[0];
    if (mux__worker_init(W->w, W->srv, 0) < 0)
        abort();
    mux__fault_set_hook(world_fault, W);
    mux__worker_run(W->w);
    mux__fault_set_hook(NULL, NULL);
    check_end(W, W->now);
    mux__worker_destroy(W->w);
    mux_server_free(W->srv);
    mux__poller_set_test(NULL);
    mux__clock_set_source(NULL);

    out->hash = W->hash;
    out->steps = W->steps;
    out->clients = W->ncl;
    out->app = W->app;
    out->failed = W->failed;
    snprintf(out->why, sizeof(out->why), "%s", W->why);
    for (unsigned i = 0; i < W->ncl; i++) {
        if (!W->cl[i].sock.released)
            close(W->cl[i].sock.fd); /* (a released one the server closed) */
        free(W->cl[i].buf);
        free(W->cl[i].line_at);
        sim_bytes_free(&W->cl[i].sock.c2s);
        sim_bytes_free(&W->cl[i].sock.s2c);
    }
    sim_cur = NULL;
    free(W);
}
