/* test_range.c - Range header values against file sizes, table driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first */
#include <cmocka.h>

#include <string.h>

#include "http_range.h"

struct range_case {
    const char *v;
    uint64_t size;
    enum http_range_result want;
    uint64_t start, len; /* for PARTIAL: the first range */
    unsigned count;      /* for PARTIAL: how many ranges */
};

#define P HTTP_RANGE_PARTIAL
#define U HTTP_RANGE_UNSATISFIABLE
#define N HTTP_RANGE_NONE

static const struct range_case cases[] = {
    {"bytes=0-0", 10, P, 0, 1, 1},
    {"bytes=0-9", 10, P, 0, 10, 1},
    {"bytes=2-5", 10, P, 2, 4, 1},
    {"bytes=5-", 10, P, 5, 5, 1},
    {"bytes=9-", 10, P, 9, 1, 1},
    {"bytes=0-", 10, P, 0, 10, 1},
    {"bytes=3-100", 10, P, 3, 7, 1}, /* end clamped */
    {"bytes=0-18446744073709551614", 10, P, 0, 10, 1},
    {"bytes=-3", 10, P, 7, 3, 1},
    {"bytes=-10", 10, P, 0, 10, 1},
    {"bytes=-100", 10, P, 0, 10, 1}, /* suffix longer than the file */
    {"bytes=-1", 1, P, 0, 1, 1},
    {"BYTES=1-2", 10, P, 1, 2, 1}, /* unit is case-insensitive */
    {"bytes = 1 - 2", 10, P, 1, 2, 1},
    {"bytes=\t1-2\t", 10, P, 1, 2, 1},
    {"bytes=1-2,", 10, P, 1, 2, 1}, /* empty list elements */
    {"bytes=,1-2", 10, P, 1, 2, 1},
    {"bytes=, ,1-2, ,", 10, P, 1, 2, 1},
    {"bytes=10-", 10, U, 0, 0, 1}, /* start at the end */
    {"bytes=10-20", 10, U, 0, 0, 1},
    {"bytes=5-2", 10, U, 0, 0, 1}, /* last < first, as nginx */
    {"bytes=-0", 10, U, 0, 0, 1},
    {"bytes=0-", 0, U, 0, 0, 1}, /* empty file */
    {"bytes=-5", 0, U, 0, 0, 1},
    {"bytes=0-0", 0, U, 0, 0, 1},
    {"bytes=0-1,3-4", 10, P, 0, 2, 2}, /* multi-range */
    {"bytes=0-1, 3-4", 10, P, 0, 2, 2},
    {"bytes=3-4,0-1", 10, P, 3, 2, 2}, /* in the order asked */
    {"bytes=0-4,5-9", 10, P, 0, 5, 2}, /* exactly the file */
    {"bytes=0-4,4-8", 10, P, 0, 5, 2}, /* overlapping, but no bigger than the file */
    {"bytes=0-5,4-9", 10, N, 0, 0, 1},    /* overlapping and bigger: whole file */
    {"bytes=0-,0-", 10, N, 0, 0, 1},
    {"bytes=-10,-1", 10, N, 0, 0, 1},
    {"bytes=20-,2-3", 10, P, 2, 2, 1}, /* unsatisfiable ones are dropped */
    {"bytes=20-,2-3,-2", 10, P, 2, 2, 2},
    {"bytes=20-,30-", 10, U, 0, 0, 1},
    {"bytes=5-2,1-1", 10, P, 1, 1, 1},
    {"bytes=0-1,garbage", 10, N, 0, 0, 1},
    {"bytes=0-1,2-", 10, P, 0, 2, 2},
    {"bytes=0-0,1-1,2-2,3-3,4-4,5-5,6-6,7-7,8-8,9-9,0-0,0-0,0-0,0-0,0-0,0-0", 100, P, 0, 1, 16},
    {"bytes=0-0,1-1,2-2,3-3,4-4,5-5,6-6,7-7,8-8,9-9,0-0,0-0,0-0,0-0,0-0,0-0,0-0", 100, N, 0, 0, 1},
    {"bytes=99-,99-,99-,99-,99-,99-,99-,99-,99-,99-,99-,99-,99-,99-,99-,99-,99-", 10, N, 0, 0, 1},
    {"bytes=-9223372036854775807,-9223372036854775807", 9223372036854775807ull, N, 0, 0, 1},
    {"bytes=-", 10, N, 0, 0, 1},
    {"bytes=", 10, N, 0, 0, 1},
    {"bytes=,", 10, N, 0, 0, 1},
    {"bytes=a-b", 10, N, 0, 0, 1},
    {"bytes=1", 10, N, 0, 0, 1},
    {"bytes=1-2x", 10, N, 0, 0, 1},
    {"bytes=1-2 3", 10, N, 0, 0, 1},
    {"bytes=+1-2", 10, N, 0, 0, 1},
    {"bytes=--1", 10, N, 0, 0, 1},
    {"bytes=1--2", 10, N, 0, 0, 1},
    {"bytes=18446744073709551615-", 10, N, 0, 0, 1}, /* overflow */
    {"bytes=99999999999999999999-", 10, N, 0, 0, 1},
    {"bytes=-99999999999999999999", 10, N, 0, 0, 1},
    {"bytes 1-2", 10, N, 0, 0, 1},
    {"bytesx=1-2", 10, N, 0, 0, 1},
    {"items=1-2", 10, N, 0, 0, 1},
    {"byte=1-2", 10, N, 0, 0, 1},
    {"", 10, N, 0, 0, 1},
    {"bytes", 10, N, 0, 0, 1},
};

static void test_range_table(void **state)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct http_ranges rs = {.count = 777, .r[0] = {12345, 67890}};
        enum http_range_result got =
            http_range_parse(cases[i].v, strlen(cases[i].v), cases[i].size, &rs);
        const struct http_range r = rs.r[0];
        unsigned want_count = cases[i].count;
        if (got != cases[i].want)
            fail_msg("case %zu (%s, %llu): got %d want %d", i, cases[i].v,
                     (unsigned long long)cases[i].size, got, cases[i].want);
        if (got == P && (r.start != cases[i].start || r.len != cases[i].len))
            fail_msg("case %zu (%s): [%llu,+%llu)", i, cases[i].v, (unsigned long long)r.start,
                     (unsigned long long)r.len);
        if (got == P && rs.count != want_count)
            fail_msg("case %zu (%s): %u ranges", i, cases[i].v, rs.count);
        if (got != P && (r.start != 12345 || r.len != 67890 || rs.count != 777))
            fail_msg("case %zu: range written without PARTIAL", i);
    }
}

/* The value need not be NUL-terminated: only v[0..n) is read. */
static void test_range_not_terminated(void **state)
{
    const char v[] = "bytes=1-23456";
    struct http_ranges r;
    assert_int_equal(http_range_parse(v, 8, 100, &r), P); /* "bytes=1-" */
    assert_int_equal(r.count, 1);
    assert_int_equal(r.r[0].start, 1);
    assert_int_equal(r.r[0].len, 99);
}

/* Every result lies inside the file. */
static void test_range_bounds(void **state)
{
    static const char *const vals[] = {"bytes=0-",      "bytes=-1",       "bytes=-7",
                                       "bytes=3-5",     "bytes=6-100",    "bytes=0-2,-3",
                                       "bytes=1-1,5-,-2", "bytes=9-,0-0,30-"};
    for (uint64_t size = 0; size < 40; size++) {
        for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
            struct http_ranges r;
            if (http_range_parse(vals[i], strlen(vals[i]), size, &r) != P)
                continue;
            uint64_t total = 0;
            assert_true(r.count >= 1 && r.count <= HTTP_RANGES_MAX);
            for (unsigned k = 0; k < r.count; k++) {
                assert_true(r.r[k].len > 0);
                assert_true(r.r[k].start + r.r[k].len <= size);
                total += r.r[k].len;
            }
            assert_true(total <= size);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_range_table),
        cmocka_unit_test(test_range_not_terminated),
        cmocka_unit_test(test_range_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
