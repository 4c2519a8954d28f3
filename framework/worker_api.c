/* worker_api.c - the public calls of mux/worker.h that are about the worker
 * itself: its identity and user pointer, timers, posts, and the end of its
 * life (mux__worker_finish). Outbound connections are in connect.c. */
#include <errno.h>

#include "compiler.h"
#include "conn.h"
#include "mux/worker.h"
#include "server_priv.h"
#include "worker.h"

#define W(w) mux__worker_priv(w)

MUX_API struct mux_worker *mux_conn_worker_ctx(const struct mux_conn *c)
{
    return mux__worker_pub(c->w);
}

MUX_API unsigned mux_worker_index(const struct mux_worker *w)
{
    return W(w)->index;
}

MUX_API struct mux_server *mux_worker_server(const struct mux_worker *w)
{
    return W(w)->srv;
}

MUX_API void *mux_worker_app(const struct mux_worker *w)
{
    return W(w)->app;
}

MUX_API void mux_worker_set_data(struct mux_worker *w, void *data)
{
    W(w)->user_data = data;
}

MUX_API void *mux_worker_data(const struct mux_worker *w)
{
    return W(w)->user_data;
}

MUX_API uint64_t mux_worker_now_ms(const struct mux_worker *w)
{
    return W(w)->now_ms;
}

/* ---- timers ---- */

MUX_API uint64_t mux_timer_start(struct mux_worker *w, unsigned delay_ms, unsigned repeat_ms,
                                 mux_timer_fn fn, void *arg)
{
    return mux__utimers_start(&W(w)->utimers, W(w)->now_ms, delay_ms, repeat_ms, fn, arg);
}

MUX_API bool mux_timer_cancel(struct mux_worker *w, uint64_t id)
{
    return mux__utimers_cancel(&W(w)->utimers, id);
}

/* ---- posts ---- */

MUX_API int mux_server_post(struct mux_server *s, unsigned worker, mux_post_fn fn, void *arg)
{
    if (!s || worker >= s->nworkers || !fn)
        return -EINVAL;
    struct mux__worker *w = &s->workers[worker];
    bool wake = false;
    int rc = mux__posts_push(&w->posts, fn, arg, &wake);
    if (rc == 0 && wake)
        mux__handoff_wake(&w->handoff);
    return rc;
}

MUX_API unsigned mux_server_post_all(struct mux_server *s, mux_post_fn fn, void *arg)
{
    unsigned n = 0;
    while (s && n < s->nworkers && mux_server_post(s, n, fn, arg) == 0)
        n++;
    return n;
}

/* Bounded per turn so a flood of posts cannot starve the connections. */
void mux__worker_run_posts(struct mux__worker *w)
{
    mux__posts_rearm(&w->posts);
    mux_post_fn fn;
    void *arg;
    for (size_t i = 0; i <= w->posts.mask; i++) {
        if (!mux__posts_pop(&w->posts, &fn, &arg))
            return;
        fn(mux__worker_pub(w), arg);
    }
    mux__handoff_wake(&w->handoff); /* more: come back next turn */
}

void mux__worker_finish(struct mux__worker *w)
{
    if (w->finished)
        return;
    w->finished = true;
    mux__utimers_close(&w->utimers);
    mux__posts_close(&w->posts);
    mux_post_fn fn;
    void *arg;
    while (mux__posts_pop(&w->posts, &fn, &arg))
        fn(mux__worker_pub(w), arg);
    if (w->started && w->handler->on_worker_stop)
        w->handler->on_worker_stop(mux__worker_pub(w));
}
