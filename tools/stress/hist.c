/* hist.c - log-linear latency histogram; see hist.h for the error bound.
 * Recording is a few shifts and one counter bump: no allocation, no locks. */
#include "hist.h"

#include <string.h>

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

size_t hist_bucket(uint64_t v)
{
    if (v < HIST_EXACT)
        return (size_t)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    if (e >= HIST_MAX_EXP)
        return HIST_BUCKETS - 1;
    size_t sub = (size_t)(v >> (e - HIST_SUB_BITS)) & ((1u << HIST_SUB_BITS) - 1);
    return HIST_EXACT + (size_t)(e - HIST_SUB_BITS - 1) * (1u << HIST_SUB_BITS) + sub;
}

uint64_t hist_bucket_lo(size_t i)
{
    if (i < HIST_EXACT)
        return i;
    size_t k = i - HIST_EXACT;
    unsigned e = (unsigned)(k >> HIST_SUB_BITS) + HIST_SUB_BITS + 1;
    uint64_t sub = k & ((1u << HIST_SUB_BITS) - 1);
    return (1ull << e) + (sub << (e - HIST_SUB_BITS));
}

uint64_t hist_bucket_hi(size_t i)
{
    if (i < HIST_EXACT)
        return i;
    if (i == HIST_BUCKETS - 1)
        return UINT64_MAX;
    return hist_bucket_lo(i + 1) - 1;
}

void hist_record(struct hist *h, uint64_t v)
{
    size_t i = hist_bucket(v);
    STORE(&h->counts[i], h->counts[i] + 1);
    STORE(&h->total, h->total + 1);
    STORE(&h->sum, h->sum + v);
    if (v > h->max)
        STORE(&h->max, v);
    if (v < h->min)
        STORE(&h->min, v);
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        dst->counts[i] += LOAD(&src->counts[i]);
    dst->total += LOAD(&src->total);
    dst->sum += LOAD(&src->sum);
    uint64_t mx = LOAD(&src->max), mn = LOAD(&src->min);
    if (mx > dst->max)
        dst->max = mx;
    if (mn < dst->min)
        dst->min = mn;
}

void hist_diff(struct hist *dst, const struct hist *a, const struct hist *b)
{
    hist_init(dst);
    size_t first = HIST_BUCKETS, last = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        uint64_t n = a->counts[i] - b->counts[i];
        dst->counts[i] = n;
        if (n) {
            if (first == HIST_BUCKETS)
                first = i;
            last = i;
        }
    }
    dst->total = a->total - b->total;
    dst->sum = a->sum - b->sum;
    if (dst->total == 0)
        return;
    dst->min = hist_bucket_lo(first);
    dst->max = last == HIST_BUCKETS - 1 ? a->max : hist_bucket_hi(last);
    if (dst->max > a->max)
        dst->max = a->max;
}

uint64_t hist_percentile(const struct hist *h, double q)
{
    if (h->total == 0)
        return 0;
    double r = q * (double)h->total;
    uint64_t rank = (uint64_t)r;
    if ((double)rank < r || rank == 0)
        rank++;
    if (rank > h->total)
        rank = h->total;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen < rank)
            continue;
        uint64_t lo = hist_bucket_lo(i), hi = hist_bucket_hi(i);
        uint64_t mid = i == HIST_BUCKETS - 1 ? h->max : lo + (hi - lo) / 2;
        if (mid > h->max)
            mid = h->max;
        if (mid < h->min)
            mid = h->min;
        return mid;
    }
    return h->max;
}

double hist_mean(const struct hist *h)
{
    return h->total ? (double)h->sum / (double)h->total : 0.0;
}
