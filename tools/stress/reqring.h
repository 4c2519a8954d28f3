/* reqring.h - the per-connection ring of outstanding requests. It is both the
 * send queue (entries not yet fully written) and the verify queue (entries
 * written and awaiting their reply), so a request costs no allocation:
 *
 *     head ........ unsent ........ tail
 *     [awaiting reply][not yet fully written][free ...]
 *
 * Capacity is the pipeline depth rounded up to a power of two; indices are
 * free-running uint32_t and wrap harmlessly. */
#ifndef STRESS_REQRING_H
#define STRESS_REQRING_H

#include <stdint.h>

struct req {
    uint64_t t_start; /* ns: intended send time (open loop) or queue time */
    uint64_t seq;     /* request number on this connection slot */
    uint32_t off;     /* echo/upper: offset of the payload in the pattern */
    uint32_t len;     /* bytes on the wire */
};

struct reqring {
    struct req *slot;
    uint32_t mask;       /* capacity - 1 */
    uint32_t head;       /* oldest request awaiting its reply */
    uint32_t unsent;     /* first request not completely written */
    uint32_t tail;       /* next free slot */
    uint32_t unsent_off; /* bytes of slot[unsent] already written */
};

static inline uint32_t ring_outstanding(const struct reqring *r)
{
    return r->tail - r->head;
}

/* Requests with at least one byte on the wire that are still unanswered. */
static inline uint32_t ring_sent(const struct reqring *r)
{
    return r->unsent - r->head + (r->unsent != r->tail && r->unsent_off > 0);
}

static inline struct req *ring_at(const struct reqring *r, uint32_t i)
{
    return &r->slot[i & r->mask];
}

static inline void ring_clear(struct reqring *r)
{
    r->head = r->unsent = r->tail = 0;
    r->unsent_off = 0;
}

#endif
