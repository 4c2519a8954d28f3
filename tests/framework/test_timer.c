/* test_timer.c - the worker's timer heap: ordering, cancel, re-arm. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "timer.h"

static void test_pops_in_deadline_order(void **state)
{
    enum { N = 1000 };
    struct mux__timers ts;
    mux__timers_init(&ts);
    static struct mux__timer t[N];
    unsigned long long x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        t[i].slot = 0;
        assert_int_equal(mux__timers_arm(&ts, &t[i], (x >> 33) % 10000), 0);
    }
    uint64_t last = 0;
    int popped = 0;
    struct mux__timer *p;
    while ((p = mux__timers_pop_due(&ts, UINT64_MAX)) != NULL) {
        assert_true(p->due_ms >= last);
        assert_false(mux__timer_armed(p));
        last = p->due_ms;
        popped++;
    }
    assert_int_equal(popped, N);
    mux__timers_destroy(&ts);
}

static void test_not_due_stays(void **state)
{
    struct mux__timers ts;
    mux__timers_init(&ts);
    struct mux__timer a = {0};
    mux__timers_arm(&ts, &a, 100);
    assert_null(mux__timers_pop_due(&ts, 99));
    assert_int_equal(mux__timers_timeout(&ts, 40), 60);
    assert_ptr_equal(mux__timers_pop_due(&ts, 100), &a);
    assert_int_equal(mux__timers_timeout(&ts, 0), -1);
    mux__timers_destroy(&ts);
}

static void test_cancel_and_rearm(void **state)
{
    struct mux__timers ts;
    mux__timers_init(&ts);
    struct mux__timer a = {0}, b = {0}, c = {0};
    mux__timers_arm(&ts, &a, 10);
    mux__timers_arm(&ts, &b, 20);
    mux__timers_arm(&ts, &c, 30);
    mux__timers_cancel(&ts, &a);
    mux__timers_cancel(&ts, &a); /* harmless twice */
    mux__timers_arm(&ts, &c, 5); /* moved earlier */
    mux__timers_arm(&ts, &b, 50); /* moved later */
    assert_ptr_equal(mux__timers_pop_due(&ts, 100), &c);
    assert_ptr_equal(mux__timers_pop_due(&ts, 100), &b);
    assert_null(mux__timers_pop_due(&ts, 100));
    mux__timers_destroy(&ts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pops_in_deadline_order),
        cmocka_unit_test(test_not_due_stays),
        cmocka_unit_test(test_cancel_and_rearm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
