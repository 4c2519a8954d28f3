/* schedule.h - open-loop pacing (--rate). Every connection of a thread sends
 * on a fixed grid: request i of connection k is due at
 *     start + (i * n + k) * interval / n
 * where n is the thread's connection count and interval = total connections /
 * rate, so the thread as a whole emits evenly spaced requests. The due time is
 * fixed in advance and never moves when the server is slow: latency is
 * measured from it, so stalls are not hidden (no coordinated omission).
 *
 * The "ticket" cursor walks that grid in time order so the thread knows when
 * to wake next and which connection is due, at O(1) per request. */
#ifndef STRESS_SCHEDULE_H
#define STRESS_SCHEDULE_H

#include <stdint.h>

struct schedule {
    uint64_t start;  /* ns, the grid origin */
    double step;     /* ns between consecutive tickets of the thread */
    uint32_t nconns; /* connections on the grid */
    uint64_t ticket; /* next ticket not yet handed out */
};

/* rate_per_conn > 0 requests/s for each of nconns connections. */
void sched_init(struct schedule *s, uint64_t start_ns, double rate_per_conn, uint32_t nconns);

/* Due time of request i of connection k. */
uint64_t sched_due(const struct schedule *s, uint32_t k, uint64_t i);

/* Due time of the next ticket. */
uint64_t sched_next_time(const struct schedule *s);

/* If the next ticket is due at or before now, returns its connection index
 * and advances; else returns -1. */
int64_t sched_take(struct schedule *s, uint64_t now);

#endif
