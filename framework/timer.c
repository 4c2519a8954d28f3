/* timer.c - binary min-heap of timer pointers keyed by deadline. Each timer
 * knows its slot, so cancel and re-arm are O(log n) without a search. */
#include <errno.h>
#include <stdlib.h>

#include "timer.h"

void mux__timers_init(struct mux__timers *ts)
{
    ts->heap = NULL;
    ts->n = ts->cap = 0;
}

void mux__timers_destroy(struct mux__timers *ts)
{
    for (unsigned i = 0; i < ts->n; i++)
        ts->heap[i]->slot = 0;
    free(ts->heap);
    mux__timers_init(ts);
}

static void place(struct mux__timers *ts, unsigned i, struct mux__timer *t)
{
    ts->heap[i] = t;
    t->slot = i + 1;
}

static void sift_up(struct mux__timers *ts, unsigned i)
{
    struct mux__timer *t = ts->heap[i];
    while (i > 0) {
        unsigned parent = (i - 1) / 2;
        if (ts->heap[parent]->due_ms <= t->due_ms)
            break;
        place(ts, i, ts->heap[parent]);
        i = parent;
    }
    place(ts, i, t);
}

static void sift_down(struct mux__timers *ts, unsigned i)
{
    struct mux__timer *t = ts->heap[i];
    for (;;) {
        unsigned child = 2 * i + 1;
        if (child >= ts->n)
            break;
        if (child + 1 < ts->n && ts->heap[child + 1]->due_ms < ts->heap[child]->due_ms)
            child++;
        if (t->due_ms <= ts->heap[child]->due_ms)
            break;
        place(ts, i, ts->heap[child]);
        i = child;
    }
    place(ts, i, t);
}

int mux__timers_arm(struct mux__timers *ts, struct mux__timer *t, uint64_t due_ms)
{
    if (t->slot) {
        uint64_t old = t->due_ms;
        t->due_ms = due_ms;
        if (due_ms < old)
            sift_up(ts, t->slot - 1);
        else
            sift_down(ts, t->slot - 1);
        return 0;
    }
    if (ts->n == ts->cap) {
        unsigned cap = ts->cap ? ts->cap * 2 : 64;
        struct mux__timer **heap = realloc(ts->heap, cap * sizeof(*heap));
        if (!heap)
            return -ENOMEM;
        ts->heap = heap;
        ts->cap = cap;
    }
    t->due_ms = due_ms;
    place(ts, ts->n++, t);
    sift_up(ts, ts->n - 1);
    return 0;
}

void mux__timers_cancel(struct mux__timers *ts, struct mux__timer *t)
{
    if (!t->slot)
        return;
    unsigned i = t->slot - 1;
    t->slot = 0;
    struct mux__timer *last = ts->heap[--ts->n];
    if (i == ts->n)
        return;
    place(ts, i, last);
    if (i > 0 && ts->heap[(i - 1) / 2]->due_ms > last->due_ms)
        sift_up(ts, i);
    else
        sift_down(ts, i);
}

struct mux__timer *mux__timers_pop_due(struct mux__timers *ts, uint64_t now_ms)
{
    if (ts->n == 0 || ts->heap[0]->due_ms > now_ms)
        return NULL;
    struct mux__timer *t = ts->heap[0];
    mux__timers_cancel(ts, t);
    return t;
}

int mux__timers_timeout(const struct mux__timers *ts, uint64_t now_ms)
{
    if (ts->n == 0)
        return -1;
    uint64_t due = ts->heap[0]->due_ms;
    if (due <= now_ms)
        return 0;
    uint64_t d = due - now_ms;
    return d > 60000 ? 60000 : (int)d;
}
