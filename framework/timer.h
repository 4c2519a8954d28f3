/* timer.h - a worker's timers: a binary min-heap of deadlines (private).
 * Idle timeouts re-arm lazily: activity only records a timestamp, and the
 * heap is touched when the old deadline fires (see conn.c), so a busy
 * connection costs no heap work per message. One thread only. */
#ifndef MUX_TIMER_H
#define MUX_TIMER_H

#include <stdbool.h>
#include <stdint.h>

struct mux__timer {
    uint64_t due_ms;
    unsigned slot; /* heap index + 1; 0 while not armed */
};

struct mux__timers {
    struct mux__timer **heap;
    unsigned n, cap;
};

void mux__timers_init(struct mux__timers *ts);
void mux__timers_destroy(struct mux__timers *ts);

static inline bool mux__timer_armed(const struct mux__timer *t)
{
    return t->slot != 0;
}

/* Arms t for due_ms, or moves it there if armed. 0 or -ENOMEM. */
int mux__timers_arm(struct mux__timers *ts, struct mux__timer *t, uint64_t due_ms);

/* Disarms t; harmless when not armed. */
void mux__timers_cancel(struct mux__timers *ts, struct mux__timer *t);

/* Removes and returns the earliest timer if it is due at now_ms, else NULL. */
struct mux__timer *mux__timers_pop_due(struct mux__timers *ts, uint64_t now_ms);

/* Milliseconds until the earliest deadline (0 if due), or -1 if none. */
int mux__timers_timeout(const struct mux__timers *ts, uint64_t now_ms);

#endif
