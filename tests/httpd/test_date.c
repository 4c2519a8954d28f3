/* test_date.c - HTTP-date formatting, the three accepted formats, invalid
 * dates, round trips against gmtime_r, and the per-second cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first */
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "http_date.h"

struct fmt_case {
    time_t t;
    const char *s;
};

static const struct fmt_case fmts[] = {
    {0, "Thu, 01 Jan 1970 00:00:00 GMT"},
    {784111777, "Sun, 06 Nov 1994 08:49:37 GMT"},
    {951782400, "Tue, 29 Feb 2000 00:00:00 GMT"},
    {1700000000, "Tue, 14 Nov 2023 22:13:20 GMT"},
    {2147483647, "Tue, 19 Jan 2038 03:14:07 GMT"},
    {4102444800, "Fri, 01 Jan 2100 00:00:00 GMT"},
    {-1, "Wed, 31 Dec 1969 23:59:59 GMT"},
    {-86400, "Wed, 31 Dec 1969 00:00:00 GMT"},
    {253402300799, "Fri, 31 Dec 9999 23:59:59 GMT"},
    {253402300800, "Fri, 31 Dec 9999 23:59:59 GMT"}, /* clamped */
    {INT64_MAX, "Fri, 31 Dec 9999 23:59:59 GMT"},
    {INT64_MIN, "Mon, 01 Jan 0001 00:00:00 GMT"},
};

static void test_format_table(void **state)
{
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        char out[HTTP_DATE_LEN + 1];
        assert_int_equal(http_date_format(fmts[i].t, out), HTTP_DATE_LEN);
        assert_string_equal(out, fmts[i].s);
    }
}

struct parse_case {
    const char *s;
    int rc;
    time_t t;
};

static const struct parse_case parses[] = {
    {"Sun, 06 Nov 1994 08:49:37 GMT", 0, 784111777},
    {"Sunday, 06-Nov-94 08:49:37 GMT", 0, 784111777},
    {"Sun Nov  6 08:49:37 1994", 0, 784111777},
    {"Sun Nov 06 08:49:37 1994", 0, 784111777},
    {"Thu, 01 Jan 1970 00:00:00 GMT", 0, 0},
    {"Tuesday, 14-Nov-23 22:13:20 GMT", 0, 1700000000}, /* two-digit year < 70: 20xx */
    {"Thursday, 01-Jan-70 00:00:00 GMT", 0, 0},
    {"Tue, 29 Feb 2000 00:00:00 GMT", 0, 951782400},
    {"Mon, 06 Nov 1994 08:49:37 GMT", 0, 784111777},  /* weekday not cross-checked */
    {"Sat, 31 Dec 2016 23:59:60 GMT", 0, 1483228800}, /* leap second */
    {"Sun, 06 Nov 1994 08:49:37 UTC", -1, 0},
    {"Sun, 06 Nov 1994 08:49:37 GMT ", -1, 0},
    {" Sun, 06 Nov 1994 08:49:37 GMT", -1, 0},
    {"Sun, 6 Nov 1994 08:49:37 GMT", -1, 0},
    {"Sun, 06 Nov 94 08:49:37 GMT", -1, 0},
    {"Sun, 06 nov 1994 08:49:37 GMT", -1, 0},
    {"Xyz, 06 Nov 1994 08:49:37 GMT", -1, 0},
    {"Sun, 06 Now 1994 08:49:37 GMT", -1, 0},
    {"Sun, 32 Jan 1994 08:49:37 GMT", -1, 0},
    {"Sun, 00 Jan 1994 08:49:37 GMT", -1, 0},
    {"Sun, 29 Feb 1900 08:49:37 GMT", -1, 0},
    {"Sun, 31 Apr 1994 08:49:37 GMT", -1, 0},
    {"Sun, 06 Nov 1994 24:00:00 GMT", -1, 0},
    {"Sun, 06 Nov 1994 08:60:00 GMT", -1, 0},
    {"Sun, 06 Nov 1994 08:49:61 GMT", -1, 0},
    {"Sun, 06 Nov 0000 08:49:37 GMT", -1, 0},
    {"Sun, 06 Nov 1994 8:49:37 GMT", -1, 0},
    {"Sun, 06 Nov 1994 08:49 GMT", -1, 0},
    {"Sun, 06 Nov 1994", -1, 0},
    {"Sun,06 Nov 1994 08:49:37 GMT", -1, 0},
    {"Sun, 06-Nov-94 08:49:37 GMT", -1, 0}, /* short name in RFC 850 form */
    {"Sunday, 06 Nov 1994 08:49:37 GMT", -1, 0},
    {"Sun Nov  6 08:49:37 1994 GMT", -1, 0},
    {"Sun Nov 6 08:49:37 1994", -1, 0},
    {"1994-11-06T08:49:37Z", -1, 0},
    {"", -1, 0},
    {"garbage", -1, 0},
};

static void test_parse_table(void **state)
{
    for (size_t i = 0; i < sizeof parses / sizeof parses[0]; i++) {
        time_t t = 42;
        int rc = http_date_parse(parses[i].s, strlen(parses[i].s), &t);
        if (rc != parses[i].rc || (rc == 0 && t != parses[i].t))
            fail_msg("case %zu (%s): rc %d t %lld", i, parses[i].s, rc, (long long)t);
    }
}

/* Format then parse is the identity, and matches gmtime_r, over a wide
 * spread of times (every ~9.5 days across 1900-2300, plus odd seconds). */
static void test_round_trip(void **state)
{
    for (int64_t t = INT64_C(-2208988800); t < INT64_C(10413792000); t += 820123) {
        char out[HTTP_DATE_LEN + 1];
        time_t back;
        http_date_format((time_t)t, out);
        assert_int_equal(http_date_parse(out, HTTP_DATE_LEN, &back), 0);
        assert_int_equal((int64_t)back, t);
        struct tm tm;
        time_t tt = (time_t)t;
        assert_non_null(gmtime_r(&tt, &tm));
        char ref[64];
        strftime(ref, sizeof ref, "%d %b %Y %H:%M:%S", &tm); /* C locale in tests */
        assert_memory_equal(out + 5, ref, 20);
    }
}

static void test_cache(void **state)
{
    struct http_date_cache c;
    memset(&c, 0, sizeof c);
    const char *a = http_date_cached(&c, 784111777);
    assert_string_equal(a, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_ptr_equal(http_date_cached(&c, 784111777), a);
    assert_string_equal(http_date_cached(&c, 784111778), "Sun, 06 Nov 1994 08:49:38 GMT");
    /* A zeroed cache asked for time 0 still formats. */
    memset(&c, 0, sizeof c);
    assert_string_equal(http_date_cached(&c, 0), "Thu, 01 Jan 1970 00:00:00 GMT");

    time_t t = time(NULL), parsed;
    const char *now = http_date_cached(&c, t);
    assert_int_equal(strlen(now), HTTP_DATE_LEN);
    assert_int_equal(http_date_parse(now, HTTP_DATE_LEN, &parsed), 0);
    assert_true(parsed == t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_table),
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
