/* utimer.h - the timers apps start (mux_timer_start), private. They live in
 * their own heap next to the connections' (timer.h), so the loop can tell
 * the kinds apart without a tag. Records sit in fixed-size chunks (stable
 * addresses for the heap's pointers, one allocation per 256 timers) and are
 * recycled through a free list; an id is the record's index plus a
 * generation bumped on every reuse, so a stale id is recognised, never
 * mistaken for the timer now in its slot. One thread only. */
#ifndef MUX_UTIMER_H
#define MUX_UTIMER_H

#include <stdbool.h>
#include <stdint.h>

#include "mux/worker.h"
#include "timer.h"

struct mux__utimer {
    struct mux__timer node; /* in the heap while armed */
    mux_timer_fn fn;
    void *arg;
    unsigned repeat_ms;
    uint32_t gen;       /* the id's upper half; bumped when the record is freed */
    uint32_t index;     /* its place in the chunks */
    uint32_t next_free; /* free list: index + 1, 0 = end */
    bool live;          /* started and neither cancelled nor fired (one-shot) */
};

struct mux__utimers {
    struct mux__timers heap;
    struct mux__utimer **chunks;
    uint32_t nchunks;
    uint32_t free_head; /* index + 1, 0 = none */
    bool closed;        /* the worker stopped: no new timers */
};

void mux__utimers_init(struct mux__utimers *ts);
void mux__utimers_destroy(struct mux__utimers *ts);

/* An id, or 0 (out of memory, or closed). */
uint64_t mux__utimers_start(struct mux__utimers *ts, uint64_t now_ms, unsigned delay_ms,
                            unsigned repeat_ms, mux_timer_fn fn, void *arg);

/* true when a live timer was cancelled. */
bool mux__utimers_cancel(struct mux__utimers *ts, uint64_t id);

/* Runs the timers due at now_ms (at most the number armed when called, so a
 * callback that starts a 0 ms timer cannot keep the loop here). */
void mux__utimers_run(struct mux__utimers *ts, uint64_t now_ms, struct mux_worker *w);

/* Milliseconds until the next one (0 if due), or -1 if none. */
int mux__utimers_timeout(const struct mux__utimers *ts, uint64_t now_ms);

/* Worker stop: cancels every live timer without running it, refuses new
 * ones. */
void mux__utimers_close(struct mux__utimers *ts);

#endif
