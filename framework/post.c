/* post.c - the posts ring of post.h. Memory order: a producer's cell writes
 * happen before its release store of the cell's seq; the consumer reads the
 * cell after an acquire load of that seq. The consumer hands the cell back
 * with a release store of seq + capacity, which the next producer of that
 * slot acquires before reusing it. */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>

#include "post.h"

int mux__posts_init(struct mux__posts *q, size_t capacity)
{
    size_t cap = 2;
    while (cap < capacity)
        cap <<= 1;
    q->cells = malloc(cap * sizeof(*q->cells));
    if (!q->cells)
        return -ENOMEM;
    for (size_t i = 0; i < cap; i++)
        atomic_init(&q->cells[i].seq, i);
    q->mask = cap - 1;
    q->head = 0;
    /* tail, wake_pending, open and inflight keep the zeroes *q came with:
     * a post racing with this init touches only those (and sees it closed) */
    return 0;
}

void mux__posts_destroy(struct mux__posts *q)
{
    free(q->cells);
    q->cells = NULL;
}

void mux__posts_open(struct mux__posts *q)
{
    atomic_store(&q->open, true); /* publishes the ring to producers */
}

/* Claims a position and fills it. false when the ring is full. */
static bool enqueue(struct mux__posts *q, mux_post_fn fn, void *arg)
{
    size_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
    struct mux__post_cell *cell;
    for (;;) {
        cell = &q->cells[pos & q->mask];
        size_t seq = atomic_load_explicit(&cell->seq, memory_order_acquire);
        intptr_t diff = (intptr_t)seq - (intptr_t)pos;
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed))
                break;
        } else if (diff < 0) {
            return false; /* the cell still holds a post from one lap ago */
        } else {
            pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
        }
    }
    cell->fn = fn;
    cell->arg = arg;
    atomic_store_explicit(&cell->seq, pos + 1, memory_order_release);
    return true;
}

int mux__posts_push(struct mux__posts *q, mux_post_fn fn, void *arg, bool *wake)
{
    /* seq_cst pairs with close(): either it sees us in flight, or we see it closed. */
    atomic_fetch_add(&q->inflight, 1);
    int rc = 0;
    if (!atomic_load(&q->open))
        rc = -ESHUTDOWN;
    else if (!enqueue(q, fn, arg))
        rc = -EAGAIN;
    else /* acq_rel: our cell is visible to the consumer that clears the flag */
        *wake = !atomic_exchange_explicit(&q->wake_pending, true, memory_order_acq_rel);
    atomic_fetch_sub_explicit(&q->inflight, 1, memory_order_release);
    return rc;
}

void mux__posts_rearm(struct mux__posts *q)
{
    /* An RMW: it reads the last producer's exchange, so that producer's
     * cell is visible to the pops that follow. Any post published after
     * this finds the flag clear and wakes us again. */
    atomic_exchange_explicit(&q->wake_pending, false, memory_order_acq_rel);
}

bool mux__posts_pop(struct mux__posts *q, mux_post_fn *fn, void **arg)
{
    struct mux__post_cell *cell = &q->cells[q->head & q->mask];
    size_t seq = atomic_load_explicit(&cell->seq, memory_order_acquire);
    if (seq != q->head + 1)
        return false; /* empty, or the next producer has not published yet */
    *fn = cell->fn;
    *arg = cell->arg;
    atomic_store_explicit(&cell->seq, q->head + q->mask + 1, memory_order_release);
    q->head++;
    return true;
}

void mux__posts_close(struct mux__posts *q)
{
    atomic_store(&q->open, false);
    while (atomic_load(&q->inflight) != 0)
        sched_yield(); /* a producer is between its open check and its publish */
}
