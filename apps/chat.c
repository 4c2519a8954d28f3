/* mux-chat: every line a client sends goes to every connected client, on
 * every worker, the sender included; each sender's lines arrive in order.
 *
 * How it uses the worker API (mux/worker.h):
 *  - per-worker state (on_worker_start / mux_worker_data): the worker's
 *    clients, the lines read during this loop turn, and an outbox per
 *    destination worker for posts that found its queue full;
 *  - a 0 ms timer: the lines read in one turn become one batch, posted once
 *    per worker when the turn's I/O is done (one allocation and one post per
 *    worker per turn, not per line);
 *  - posts (mux_server_post): the batch, shared and reference-counted, runs
 *    deliver() on each worker, which sends it to that worker's clients.
 * A sender's lines are read by its own worker and leave it in order, and a
 * worker's posts to another run in the order posted, so order holds.
 * A client whose undelivered output passes chat.max_queue is dropped, so a
 * reader that stalls never holds the others back. */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mux/mux.h>

struct chat_opts {
    size_t max_line;  /* bytes, newline included */
    size_t max_queue; /* undelivered output per client */
};

static struct chat_opts opts = {.max_line = 4096, .max_queue = 1u << 20};

#define KEY(n, field) .group = "chat", .name = n, .type = MUX_CFG_SIZE, \
                      .offset = offsetof(struct chat_opts, field)

static const struct mux_config_key chat_keys[] = {
    {KEY("max_line", max_line), .min = 2, .max = 1LL << 24,
     .doc = "longest line in bytes (newline included); a longer one closes its sender"},
    {KEY("max_queue", max_queue), .min = 1024, .max = 1LL << 30,
     .doc = "undelivered output per client in bytes; past it the client is disconnected"},
    {0},
};

/* Lines from one worker's turn, shared by every worker it is posted to. */
struct batch {
    atomic_uint refs;
    size_t len, cap;
    char data[];
};

static void batch_unref(struct batch *b)
{
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        free(b);
}

struct client {
    struct mux_conn *c;
    struct client *prev, *next;
};

/* A batch that one destination's full queue refused, waiting for a retry. */
struct pending {
    struct batch *b;
    struct pending *next;
};

struct outbox {
    struct pending *head, *tail;
};

struct chat_worker {
    struct client clients;   /* circular list head */
    struct batch *turn;      /* lines read in this loop turn, or NULL */
    uint64_t flush_timer;    /* 0 when no flush is scheduled */
    uint64_t retry_timer;    /* 0 when no outbox holds anything */
    unsigned nworkers;
    struct outbox out[];     /* one per destination worker */
};

/* ---- delivery (runs on every worker) ---- */

static void deliver(struct mux_worker *w, void *arg)
{
    struct chat_worker *cw = mux_worker_data(w);
    struct batch *b = arg;
    const struct chat_opts *o = mux_worker_app(w);
    for (struct client *k = cw->clients.next; k != &cw->clients; k = k->next) {
        if (mux_conn_send(k->c, b->data, b->len) < 0)
            continue; /* closing already */
        if (mux_conn_pending(k->c) > o->max_queue)
            mux_conn_abort(k->c); /* a reader this slow is dropped, not waited for */
    }
    batch_unref(b);
}

/* ---- sending a batch to every worker ---- */

static void outbox_push(struct outbox *ob, struct batch *b)
{
    struct pending *p = malloc(sizeof(*p));
    if (!p) { /* cannot even queue it: this destination misses the batch */
        batch_unref(b);
        return;
    }
    *p = (struct pending){.b = b};
    if (ob->tail)
        ob->tail->next = p;
    else
        ob->head = p;
    ob->tail = p;
}

/* Posts what waits for destination k, in order; false while k is full. */
static bool outbox_flush(struct mux_worker *w, unsigned k, struct outbox *ob)
{
    while (ob->head) {
        struct pending *p = ob->head;
        int rc = mux_server_post(mux_worker_server(w), k, deliver, p->b);
        if (rc == -EAGAIN)
            return false;
        if (rc < 0)
            batch_unref(p->b); /* that worker has stopped: nobody to deliver to */
        ob->head = p->next;
        if (!ob->head)
            ob->tail = NULL;
        free(p);
    }
    return true;
}

static void retry_outboxes(struct mux_worker *w, void *arg)
{
    struct chat_worker *cw = arg;
    bool all = true;
    for (unsigned k = 0; k < cw->nworkers; k++)
        all &= outbox_flush(w, k, &cw->out[k]);
    if (all) {
        mux_timer_cancel(w, cw->retry_timer);
        cw->retry_timer = 0;
    }
}

/* End of the turn: the batch goes to every worker (behind anything still
 * waiting for that worker, so order holds). */
static void flush_turn(struct mux_worker *w, void *arg)
{
    struct chat_worker *cw = arg;
    struct batch *b = cw->turn;
    cw->turn = NULL;
    cw->flush_timer = 0;
    atomic_store_explicit(&b->refs, cw->nworkers, memory_order_relaxed);
    bool waiting = false;
    for (unsigned k = 0; k < cw->nworkers; k++) {
        struct outbox *ob = &cw->out[k];
        if (!ob->head) {
            int rc = mux_server_post(mux_worker_server(w), k, deliver, b);
            if (rc == 0)
                continue;
            if (rc != -EAGAIN) {
                batch_unref(b);
                continue;
            }
        }
        outbox_push(ob, b);
        waiting = true;
    }
    if (waiting && !cw->retry_timer)
        cw->retry_timer = mux_timer_start(w, 1, 1, retry_outboxes, cw);
}

/* Appends one line to this turn's batch. false when out of memory. */
static bool add_line(struct mux_worker *w, struct chat_worker *cw, const char *line, size_t len)
{
    struct batch *b = cw->turn;
    if (!b || b->len + len > b->cap) {
        size_t cap = b ? b->cap : 4096;
        while (cap < (b ? b->len : 0) + len)
            cap *= 2;
        struct batch *nb = realloc(b, sizeof(*nb) + cap);
        if (!nb)
            return false;
        if (!b)
            nb->len = 0;
        nb->cap = cap;
        cw->turn = b = nb;
    }
    memcpy(b->data + b->len, line, len);
    b->len += len;
    if (!cw->flush_timer)
        cw->flush_timer = mux_timer_start(w, 0, 0, flush_turn, cw);
    return true;
}

/* ---- the connection handler ---- */

static int chat_accept(struct mux_conn *c)
{
    struct chat_worker *cw = mux_worker_data(mux_conn_worker_ctx(c));
    struct client *k = malloc(sizeof(*k));
    if (!k)
        return ENOMEM;
    k->c = c;
    k->next = &cw->clients;
    k->prev = cw->clients.prev;
    cw->clients.prev->next = k;
    cw->clients.prev = k;
    mux_conn_set_data(c, k);
    return 0;
}

/* Takes every complete line; a line longer than max_line closes the sender
 * (what it sent before that still went out). */
static size_t chat_read(struct mux_conn *c, const char *data, size_t len)
{
    struct mux_worker *w = mux_conn_worker_ctx(c);
    const struct chat_opts *o = mux_conn_app(c);
    size_t used = 0;
    for (;;) {
        const char *nl = memchr(data + used, '\n', len - used);
        size_t line = nl ? (size_t)(nl - (data + used)) + 1 : len - used;
        if (line > o->max_line || (!nl && line >= o->max_line)) {
            mux_conn_close(c);
            return len;
        }
        if (!nl)
            return used; /* the partial line waits for its end */
        if (!add_line(w, mux_worker_data(w), data + used, line)) {
            mux_conn_abort(c);
            return len;
        }
        used += line;
    }
}

static void chat_close(struct mux_conn *c, int err)
{
    struct client *k = mux_conn_data(c);
    (void)err;
    if (!k)
        return;
    k->prev->next = k->next;
    k->next->prev = k->prev;
    free(k);
}

static void chat_worker_start(struct mux_worker *w)
{
    unsigned n = mux_server_workers(mux_worker_server(w));
    struct chat_worker *cw = calloc(1, sizeof(*cw) + n * sizeof(cw->out[0]));
    if (!cw)
        abort(); /* at start-up, before any client: nothing to lose */
    cw->nworkers = n;
    cw->clients.next = cw->clients.prev = &cw->clients;
    mux_worker_set_data(w, cw);
}

/* Last on the thread: timers are gone, so what is still held is freed. */
static void chat_worker_stop(struct mux_worker *w)
{
    struct chat_worker *cw = mux_worker_data(w);
    free(cw->turn);
    for (unsigned k = 0; k < cw->nworkers; k++)
        while (cw->out[k].head) {
            struct pending *p = cw->out[k].head;
            cw->out[k].head = p->next;
            batch_unref(p->b);
            free(p);
        }
    free(cw);
}

static int chat_setup(void *o, void **app, struct mux_error *err)
{
    (void)err;
    *app = o;
    return 0;
}

static const struct mux_handler chat_handler = {
    .name = "chat",
    .on_accept = chat_accept,
    .on_read = chat_read,
    .on_close = chat_close,
    .on_worker_start = chat_worker_start,
    .on_worker_stop = chat_worker_stop,
};

int main(int argc, char **argv)
{
    const struct mux_app app = {
        .name = "mux-chat",
        .summary = "Chat server: every line a client sends goes to every client.",
        .handler = &chat_handler,
        .keys = chat_keys,
        .opts = &opts,
        .setup = chat_setup,
    };
    return mux_app_main(argc, argv, &app);
}
