/* sim_apps.c - the handlers under test: the sample apps' own (included
 * as they are, sim_app_*.c) and a random one, each wrapped so that every
 * callback reports to the world (on_accept / on_close counted, none inside
 * a mux_* call). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

#include "sim_api.h"

extern const struct mux_handler *const sim_echo_handler;
extern const struct mux_handler *const sim_upper_handler;
extern const struct mux_handler *const sim_queue_handler;
extern void *const sim_queue_app;
extern const struct mux_handler *const sim_chat_handler;
extern void *const sim_chat_app;

const char *const sim_app_names[SIM_APPS] = {"echo", "upper", "queue", "chat", "random"};

char sim_app_transform(enum sim_app app, char b)
{
    if (app == SIM_UPPER || app == SIM_QUEUE)
        return (b >= 'a' && b <= 'z') ? (char)(b - 'a' + 'A') : b;
    return b;
}

/* ---- the random handler: echoes what it consumes, and calls the public
 * API at random from every callback ---- */

struct rnd {
    uint64_t timer; /* a pending resume, or 0 */
};

static void rnd_resume(struct mux_worker *w, void *arg)
{
    (void)w;
    sim_world_callback("timer");
    struct mux_conn *c = arg;
    struct rnd *r = mux_conn_data(c);
    r->timer = 0;
    mux_conn_resume_read(c);
}

/* Something at random, from any callback. */
static void rnd_poke(struct mux_conn *c)
{
    struct rnd *r = mux_conn_data(c);
    unsigned x = (unsigned)sim_below(1000);
    if (x < 40 && !r->timer) {
        mux_conn_pause_read(c);
        r->timer = mux_timer_start(mux_conn_worker_ctx(c), (unsigned)sim_below(300), 0,
                                   rnd_resume, c);
        if (!r->timer)
            mux_conn_resume_read(c);
    } else if (x < 70) {
        mux_conn_want_writable(c, sim_chance(500));
    } else if (x < 80) {
        mux_conn_set_deadline(c, sim_chance(300) ? 0 : (unsigned)sim_below(800));
    } else if (x < 90) {
        mux_conn_set_timeout(c, (unsigned)sim_below(1500));
    } else if (x < 96) {
        mux_conn_close(c);
    } else if (x < 99) {
        mux_conn_shutdown_write(c);
    } else if (x < 100) {
        mux_conn_abort(c);
    }
}

static int rnd_accept(struct mux_conn *c)
{
    struct rnd *r = calloc(1, sizeof(*r));
    if (!r)
        return ENOMEM;
    mux_conn_set_data(c, r);
    if (sim_chance(20)) {
        sim_world_app_ended(c);
        return ECONNREFUSED;
    }
    rnd_poke(c);
    return 0;
}

static size_t rnd_read(struct mux_conn *c, const char *data, size_t len)
{
    unsigned x = (unsigned)sim_below(1000);
    size_t k = x < 850 ? len : x < 900 ? 0 /* waits for more */ : (size_t)sim_below(len + 1);
    if (k < len)
        sim_world_app_ended(c); /* what it leaves may never be taken */
    if (k > 0 && mux_conn_send(c, data, k) < 0)
        sim_world_app_ended(c);
    rnd_poke(c);
    return k;
}

static void rnd_writable(struct mux_conn *c)
{
    if (sim_chance(500))
        mux_conn_want_writable(c, false);
    rnd_poke(c);
}

static void rnd_eof(struct mux_conn *c)
{
    if (sim_chance(700))
        mux_conn_shutdown_write(c);
    else
        rnd_poke(c);
}

static void rnd_close(struct mux_conn *c, int err)
{
    (void)err;
    struct rnd *r = mux_conn_data(c);
    if (!r)
        return;
    if (r->timer && !mux_timer_cancel(mux_conn_worker_ctx(c), r->timer))
        sim_fail("a pending timer could not be cancelled in on_close");
    free(r);
}

static const struct mux_handler rnd_handler = {
    .name = "random",
    .on_accept = rnd_accept,
    .on_read = rnd_read,
    .on_writable = rnd_writable,
    .on_close = rnd_close,
    .on_eof = rnd_eof,
};

/* ---- the wrapper ---- */

static const struct mux_handler *inner;
static struct mux_handler wrapped;

static int w_accept(struct mux_conn *c)
{
    sim_world_callback("on_accept");
    sim_world_accepted(c);
    return inner->on_accept ? inner->on_accept(c) : 0;
}

static size_t w_read(struct mux_conn *c, const char *data, size_t len)
{
    sim_world_callback("on_read");
    if (len == 0)
        sim_fail("on_read with no bytes");
    size_t used = inner->on_read(c, data, len);
    if (used > len)
        sim_fail("on_read consumed %zu of %zu", used, len);
    sim_world_offered(c, used);
    return used;
}

static void w_writable(struct mux_conn *c)
{
    sim_world_callback("on_writable");
    inner->on_writable(c);
}

static void w_close(struct mux_conn *c, int err)
{
    sim_world_callback("on_close");
    sim_world_closed(c, err);
    if (inner->on_close)
        inner->on_close(c, err);
}

static void w_eof(struct mux_conn *c)
{
    sim_world_callback("on_eof");
    inner->on_eof(c);
}

const struct mux_handler *sim_app_handler(enum sim_app app, void **app_ptr)
{
    *app_ptr = NULL;
    switch (app) {
    case SIM_ECHO: inner = sim_echo_handler; break;
    case SIM_UPPER: inner = sim_upper_handler; break;
    case SIM_QUEUE:
        inner = sim_queue_handler;
        *app_ptr = sim_queue_app;
        break;
    case SIM_CHAT:
        inner = sim_chat_handler;
        *app_ptr = sim_chat_app;
        break;
    default: inner = &rnd_handler; break;
    }
    wrapped = *inner;
    wrapped.on_accept = w_accept;
    wrapped.on_read = w_read;
    wrapped.on_close = w_close;
    wrapped.on_writable = inner->on_writable ? w_writable : NULL;
    wrapped.on_eof = inner->on_eof ? w_eof : NULL;
    return &wrapped;
}
