/* utimer.c - app timers: ids, the free list and firing (see utimer.h). */
#include <stdlib.h>

#include "compiler.h"
#include "utimer.h"

#define CHUNK 256u

void mux__utimers_init(struct mux__utimers *ts)
{
    mux__timers_init(&ts->heap);
    ts->chunks = NULL;
    ts->nchunks = 0;
    ts->free_head = 0;
    ts->closed = false;
}

void mux__utimers_destroy(struct mux__utimers *ts)
{
    mux__timers_destroy(&ts->heap);
    for (uint32_t i = 0; i < ts->nchunks; i++)
        free(ts->chunks[i]);
    free(ts->chunks);
    mux__utimers_init(ts);
}

static struct mux__utimer *rec(const struct mux__utimers *ts, uint32_t index)
{
    return &ts->chunks[index / CHUNK][index % CHUNK];
}

/* One more chunk of free records. */
static bool grow(struct mux__utimers *ts)
{
    struct mux__utimer **chunks = realloc(ts->chunks, (ts->nchunks + 1) * sizeof(*chunks));
    if (!chunks)
        return false;
    ts->chunks = chunks;
    struct mux__utimer *c = calloc(CHUNK, sizeof(*c));
    if (!c)
        return false;
    ts->chunks[ts->nchunks++] = c;
    uint32_t base = (ts->nchunks - 1) * CHUNK;
    for (uint32_t i = CHUNK; i-- > 0;) {
        c[i].gen = 1;
        c[i].index = base + i;
        c[i].next_free = ts->free_head;
        ts->free_head = base + i + 1;
    }
    return true;
}

static void release(struct mux__utimers *ts, struct mux__utimer *t, uint32_t index)
{
    t->live = false;
    t->gen++;
    if (t->gen == 0)
        t->gen = 1;
    t->next_free = ts->free_head;
    ts->free_head = index + 1;
}

uint64_t mux__utimers_start(struct mux__utimers *ts, uint64_t now_ms, unsigned delay_ms,
                            unsigned repeat_ms, mux_timer_fn fn, void *arg)
{
    if (ts->closed || !fn || (!ts->free_head && !grow(ts)))
        return 0;
    uint32_t index = ts->free_head - 1;
    struct mux__utimer *t = rec(ts, index);
    if (mux__timers_arm(&ts->heap, &t->node, now_ms + delay_ms) < 0)
        return 0;
    ts->free_head = t->next_free;
    t->fn = fn;
    t->arg = arg;
    t->repeat_ms = repeat_ms;
    t->live = true;
    return (uint64_t)t->gen << 32 | (index + 1);
}

/* The live record an id names, or NULL. */
static struct mux__utimer *lookup(const struct mux__utimers *ts, uint64_t id, uint32_t *index)
{
    uint32_t low = (uint32_t)id;
    if (low == 0 || low > ts->nchunks * CHUNK)
        return NULL;
    struct mux__utimer *t = rec(ts, low - 1);
    if (!t->live || t->gen != (uint32_t)(id >> 32))
        return NULL;
    *index = low - 1;
    return t;
}

bool mux__utimers_cancel(struct mux__utimers *ts, uint64_t id)
{
    uint32_t index;
    struct mux__utimer *t = lookup(ts, id, &index);
    if (!t)
        return false;
    mux__timers_cancel(&ts->heap, &t->node);
    release(ts, t, index);
    return true;
}

void mux__utimers_run(struct mux__utimers *ts, uint64_t now_ms, struct mux_worker *w)
{
    unsigned budget = ts->heap.n;
    struct mux__timer *node;
    while (budget-- > 0 && (node = mux__timers_pop_due(&ts->heap, now_ms)) != NULL) {
        struct mux__utimer *t = container_of(node, struct mux__utimer, node);
        mux_timer_fn fn = t->fn;
        void *arg = t->arg;
        if (t->repeat_ms) {
            /* re-armed before the call, so cancelling it inside works */
            mux__timers_arm(&ts->heap, &t->node, now_ms + t->repeat_ms);
        } else {
            /* freed before the call: its id is stale inside, cancel is a no-op */
            release(ts, t, t->index);
        }
        fn(w, arg);
    }
}

int mux__utimers_timeout(const struct mux__utimers *ts, uint64_t now_ms)
{
    return mux__timers_timeout(&ts->heap, now_ms);
}

void mux__utimers_close(struct mux__utimers *ts)
{
    struct mux__timer *node;
    while ((node = mux__timers_pop_due(&ts->heap, UINT64_MAX)) != NULL) {
        struct mux__utimer *t = container_of(node, struct mux__utimer, node);
        release(ts, t, t->index);
    }
    ts->closed = true;
}
