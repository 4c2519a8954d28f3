/* mux-queue: the pull model of the seeds' per-connection message queues.
 *
 * Each chunk received becomes a message (upper-cased, like mux-upper) in a
 * bounded per-connection queue. The handler writes nothing from on_read: it
 * asks for on_writable and drains its own queue from there, as the socket
 * takes it. When the queue is full it pauses reading, so a client that does
 * not read its replies cannot make the server buffer without bound.
 *
 * Message slots live in one slab per connection, allocated when the first
 * message arrives and released whenever the queue drains, so idle
 * connections hold nothing. */
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <mux/mux.h>

struct queue_opts {
    unsigned depth;        /* messages queued at most per connection */
    size_t message_size;   /* bytes per message at most */
};

static struct queue_opts opts = {.depth = 16, .message_size = 4096};

static const struct mux_config_key queue_keys[] = {
    {.group = "queue", .name = "depth", .type = MUX_CFG_UINT,
     .offset = offsetof(struct queue_opts, depth), .min = 1, .max = 4096,
     .doc = "messages queued per connection before reading pauses"},
    {.group = "queue", .name = "message_size", .type = MUX_CFG_SIZE,
     .offset = offsetof(struct queue_opts, message_size), .min = 64, .max = 1 << 20,
     .doc = "bytes per queued message at most"},
    {0},
};

static const struct mux_app_flag queue_flags[] = {
    {.long_name = "depth", .key = "queue.depth", .arg_name = "N"},
    {0},
};

struct msg {
    size_t len;
};

struct queue {
    const struct queue_opts *o;
    char *slab;       /* depth * message_size bytes while messages are queued */
    struct msg *msgs; /* depth entries, same lifetime as slab */
    unsigned head, count;
};

static int queue_accept(struct mux_conn *c)
{
    struct queue *q = calloc(1, sizeof(*q));
    if (!q)
        return 12; /* ENOMEM: refuse the connection */
    q->o = mux_conn_app(c);
    mux_conn_set_data(c, q);
    return 0;
}

static char *slot(struct queue *q, unsigned i)
{
    return q->slab + (size_t)(i % q->o->depth) * q->o->message_size;
}

static void release_slab(struct queue *q)
{
    free(q->slab);
    free(q->msgs);
    q->slab = NULL;
    q->msgs = NULL;
    q->head = 0;
}

static size_t queue_read(struct mux_conn *c, const char *data, size_t len)
{
    struct queue *q = mux_conn_data(c);
    if (!q->slab) {
        q->slab = malloc(q->o->depth * q->o->message_size);
        q->msgs = malloc(q->o->depth * sizeof(*q->msgs));
        if (!q->slab || !q->msgs) {
            release_slab(q);
            mux_conn_abort(c);
            return len;
        }
    }
    size_t used = 0;
    while (used < len && q->count < q->o->depth) {
        size_t n = len - used < q->o->message_size ? len - used : q->o->message_size;
        unsigned tail = q->head + q->count;
        char *dst = slot(q, tail);
        for (size_t i = 0; i < n; i++) {
            char ch = data[used + i];
            dst[i] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch;
        }
        q->msgs[tail % q->o->depth].len = n;
        q->count++;
        used += n;
    }
    if (q->count == q->o->depth)
        mux_conn_pause_read(c); /* full: the rest stays in the framework's buffer */
    mux_conn_want_writable(c, true);
    return used;
}

/* The framework has room (its queue is at or below write_low_water): hand
 * over at least one message, and more while its queue stays short. Sending
 * nothing while messages wait would read as "no more output" and turn
 * on_writable off. */
static void queue_writable(struct mux_conn *c)
{
    struct queue *q = mux_conn_data(c);
    bool first = true;
    while (q->count > 0 && (first || mux_conn_pending(c) < 2 * q->o->message_size)) {
        first = false;
        unsigned i = q->head % q->o->depth;
        mux_conn_send(c, slot(q, q->head), q->msgs[i].len);
        q->head = (q->head + 1) % q->o->depth;
        q->count--;
    }
    if (q->count < q->o->depth)
        mux_conn_resume_read(c);
    if (q->count == 0) {
        release_slab(q);
        mux_conn_want_writable(c, false);
    }
}

static void queue_close(struct mux_conn *c, int err)
{
    struct queue *q = mux_conn_data(c);
    if (q)
        release_slab(q);
    free(q);
}

static const struct mux_handler queue_handler = {
    .name = "queue",
    .on_accept = queue_accept,
    .on_read = queue_read,
    .on_writable = queue_writable,
    .on_close = queue_close,
};

static int queue_setup(void *o, void **app, struct mux_error *err)
{
    *app = o; /* read-only from here on: every worker reads the limits */
    return 0;
}

int main(int argc, char **argv)
{
    const struct mux_app app = {
        .name = "mux-queue",
        .summary = "Queued-writes server: like mux-upper, but replies are drained from a\n"
                   "bounded per-connection message queue in on_writable (pull model).",
        .handler = &queue_handler,
        .keys = queue_keys,
        .opts = &opts,
        .flags = queue_flags,
        .setup = queue_setup,
    };
    return mux_app_main(argc, argv, &app);
}
