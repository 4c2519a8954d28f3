/* schedule.c - the open-loop grid of schedule.h. Times are computed from the
 * ticket number each time (not accumulated), so rounding never drifts. */
#include "schedule.h"

void sched_init(struct schedule *s, uint64_t start_ns, double rate_per_conn, uint32_t nconns)
{
    s->start = start_ns;
    s->nconns = nconns ? nconns : 1;
    s->step = 1e9 / rate_per_conn / (double)s->nconns;
    s->ticket = 0;
}

static uint64_t ticket_time(const struct schedule *s, uint64_t t)
{
    return s->start + (uint64_t)((double)t * s->step);
}

uint64_t sched_due(const struct schedule *s, uint32_t k, uint64_t i)
{
    return ticket_time(s, i * s->nconns + k);
}

uint64_t sched_next_time(const struct schedule *s)
{
    return ticket_time(s, s->ticket);
}

int64_t sched_take(struct schedule *s, uint64_t now)
{
    if (ticket_time(s, s->ticket) > now)
        return -1;
    return (int64_t)(s->ticket++ % s->nconns);
}
