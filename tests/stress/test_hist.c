/* test_hist.c - the latency histogram against brute force: percentiles of
 * random data sets must match a sorted array within the documented relative
 * error (2^-8), min/max/mean exactly; merge and diff keep counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hist.h"
#include "harness.h"
#include "seed.h"

/* A fixed stream (th_rng's start): the histogram checks need no seed. */

static size_t sample_count(void)
{
    return th_under_valgrind() ? 5000 : 200000;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void check_percentiles(const struct hist *h, uint64_t *v, size_t n)
{
    static const double qs[] = {0.0001, 0.01, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999, 1.0};
    qsort(v, n, sizeof(*v), cmp_u64);
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        double r = qs[i] * (double)n;
        size_t rank = (size_t)r;
        if ((double)rank < r || rank == 0)
            rank++;
        uint64_t truth = v[rank - 1], est = hist_percentile(h, qs[i]);
        double err = est > truth ? (double)(est - truth) : (double)(truth - est);
        if (err > (double)truth * HIST_REL_ERROR)
            fail_msg("q=%g: histogram %llu, sorted %llu (error %.5f > %.5f)", qs[i],
                     (unsigned long long)est, (unsigned long long)truth, err / (double)truth,
                     HIST_REL_ERROR);
    }
    assert_int_equal(h->total, n);
    assert_int_equal(h->min, v[0]);
    assert_int_equal(h->max, v[n - 1]);
}

/* Fills, records and checks one distribution. */
static void run_distribution(uint64_t (*gen)(void))
{
    size_t n = sample_count();
    uint64_t *v = malloc(n * sizeof(*v));
    struct hist *h = malloc(sizeof(*h));
    assert_non_null(v);
    assert_non_null(h);
    hist_init(h);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = gen();
        sum += v[i];
        hist_record(h, v[i]);
    }
    assert_true(hist_mean(h) == (double)sum / (double)n);
    check_percentiles(h, v, n);
    free(v);
    free(h);
}

static uint64_t gen_uniform(void)
{
    return th_rand() % 1000000;
}

static uint64_t gen_log_uniform(void) /* 1 ns .. ~17 s, every octave equally likely */
{
    unsigned e = (unsigned)(th_rand() % 34);
    return (1ull << e) + th_rand() % (1ull << e);
}

static uint64_t gen_small(void) /* the exact region and its edge */
{
    return th_rand() % 600;
}

static uint64_t gen_bimodal(void) /* fast replies with rare 50 ms stalls */
{
    return th_rand() % 1000 == 0 ? 50000000 + th_rand() % 1000000 : 20000 + th_rand() % 5000;
}

static void test_uniform(void **state)
{
    run_distribution(gen_uniform);
}

static void test_log_uniform(void **state)
{
    run_distribution(gen_log_uniform);
}

static void test_small_values_exact(void **state)
{
    run_distribution(gen_small);
}

static void test_bimodal(void **state)
{
    run_distribution(gen_bimodal);
}

static void test_bucket_bounds(void **state)
{
    for (size_t i = 0; i + 1 < HIST_BUCKETS; i++) {
        uint64_t lo = hist_bucket_lo(i), hi = hist_bucket_hi(i);
        assert_true(lo <= hi);
        assert_int_equal(hist_bucket_lo(i + 1), hi + 1);
        assert_int_equal(hist_bucket(lo), i);
        assert_int_equal(hist_bucket(hi), i);
        if (lo >= HIST_EXACT) /* width relative to the lower bound is 2^-7 */
            assert_true((double)(hi - lo + 1) / (double)lo <= 2 * HIST_REL_ERROR);
    }
    assert_int_equal(hist_bucket(UINT64_MAX), HIST_BUCKETS - 1);
    assert_int_equal(hist_bucket(1ull << 50), HIST_BUCKETS - 1);
}

static void test_empty_and_huge(void **state)
{
    struct hist *h = malloc(sizeof(*h));
    assert_non_null(h);
    hist_init(h);
    assert_int_equal(hist_percentile(h, 0.99), 0);
    assert_true(hist_mean(h) == 0.0);
    hist_record(h, 1ull << 50);
    hist_record(h, 7);
    assert_int_equal(hist_percentile(h, 1.0), 1ull << 50);
    assert_int_equal(hist_percentile(h, 0.5), 7);
    free(h);
}

static void test_merge_and_diff(void **state)
{
    struct hist *parts = calloc(4, sizeof(*parts));
    struct hist *all = malloc(sizeof(*all)), *merged = malloc(sizeof(*merged));
    struct hist *early = malloc(sizeof(*early)), *d = malloc(sizeof(*d));
    assert_true(parts && all && merged && early && d);
    for (int k = 0; k < 4; k++)
        hist_init(&parts[k]);
    hist_init(all);
    hist_init(early);
    for (int i = 0; i < 40000; i++) {
        uint64_t v = gen_log_uniform();
        hist_record(&parts[i % 4], v);
        hist_record(all, v);
        if (i == 9999)
            hist_merge(early, all);
    }
    hist_init(merged);
    for (int k = 0; k < 4; k++)
        hist_merge(merged, &parts[k]);
    assert_memory_equal(merged->counts, all->counts, sizeof(all->counts));
    assert_int_equal(merged->total, all->total);
    assert_int_equal(merged->max, all->max);
    assert_int_equal(merged->min, all->min);
    assert_int_equal(hist_percentile(merged, 0.99), hist_percentile(all, 0.99));
    hist_diff(d, all, early);
    assert_int_equal(d->total, 30000);
    assert_true(d->max <= all->max);
    free(parts);
    free(all);
    free(merged);
    free(early);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_bounds),  cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_log_uniform),    cmocka_unit_test(test_small_values_exact),
        cmocka_unit_test(test_bimodal),        cmocka_unit_test(test_empty_and_huge),
        cmocka_unit_test(test_merge_and_diff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
