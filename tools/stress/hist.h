/* hist.h - latency histogram with log-linear buckets (HdrHistogram-like).
 *
 * Values (nanoseconds) below 256 are counted exactly. Above, each power of two
 * [2^e, 2^(e+1)) is split into 128 equal sub-buckets of width 2^(e-7), so a
 * bucket's width is at most 2^-7 of its lower bound. Percentiles report the
 * bucket midpoint, so a reported percentile differs from the true sample of
 * the same rank by at most 2^-8 (0.39%) of it (exact below 256 ns). Values
 * at or above 2^40 ns (~18 minutes) land in the last bucket; max is exact.
 *
 * Thread rule: one writer thread per histogram (hist_record). Other threads may
 * read it at any time with hist_merge(): counters are written and read with
 * relaxed atomics, so a concurrent snapshot is approximate but race-free. */
#ifndef STRESS_HIST_H
#define STRESS_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 7                        /* 2^7 sub-buckets per octave */
#define HIST_EXACT (1u << (HIST_SUB_BITS + 1)) /* 256: values below are exact */
#define HIST_MAX_EXP 40                        /* values >= 2^40 clamp */
#define HIST_BUCKETS (HIST_EXACT + (HIST_MAX_EXP - HIST_SUB_BITS - 1) * (1u << HIST_SUB_BITS))
#define HIST_REL_ERROR (1.0 / (1u << (HIST_SUB_BITS + 1))) /* 2^-8 */

struct hist {
    uint64_t total; /* number of values recorded */
    uint64_t sum;   /* sum of values (for the mean) */
    uint64_t min;   /* exact; UINT64_MAX when empty */
    uint64_t max;   /* exact; 0 when empty */
    uint64_t counts[HIST_BUCKETS];
};

/* Empties h. */
void hist_init(struct hist *h);

/* Records one value. Only the owning thread may call it. */
void hist_record(struct hist *h, uint64_t v);

/* dst += src. src may be written concurrently by its owner (relaxed loads). */
void hist_merge(struct hist *dst, const struct hist *src);

/* dst = a - b, for two snapshots of the same histogram taken in that order
 * (b earlier). min/max of the difference are bucket bounds, not exact. */
void hist_diff(struct hist *dst, const struct hist *a, const struct hist *b);

/* The value at quantile q (0 < q <= 1): the midpoint of the bucket holding the
 * sample of rank ceil(q * total), clamped to [min, max]. 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double q);

/* Mean of the recorded values, 0 when empty. */
double hist_mean(const struct hist *h);

/* Bucket index of v, and the inclusive value range [lo, hi] of bucket i. */
size_t hist_bucket(uint64_t v);
uint64_t hist_bucket_lo(size_t i);
uint64_t hist_bucket_hi(size_t i);

#endif
