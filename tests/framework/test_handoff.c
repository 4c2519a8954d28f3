/* test_handoff.c - the acceptor-to-worker ring: order, capacity, and a
 * producer thread racing a consumer (run under TSan in CI). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>

#include "handoff.h"

static void test_fifo_and_full(void **state)
{
    struct mux__handoff h;
    assert_int_equal(mux__handoff_init(&h, 4), 0);
    assert_int_equal(mux__handoff_pop(&h), -1);
    for (int i = 0; i < 4; i++)
        assert_true(mux__handoff_push(&h, 100 + i));
    assert_false(mux__handoff_push(&h, 999)); /* full: refused, not overwritten */
    for (int i = 0; i < 4; i++)
        assert_int_equal(mux__handoff_pop(&h), 100 + i);
    assert_int_equal(mux__handoff_pop(&h), -1);
    mux__handoff_destroy(&h);
}

enum { TOTAL = 200000, BATCH = 37 };

static void *producer(void *arg)
{
    struct mux__handoff *h = arg;
    int next = 0;
    while (next < TOTAL) {
        int pushed = 0;
        while (pushed < BATCH && next < TOTAL && mux__handoff_push(h, next)) {
            next++;
            pushed++;
        }
        if (pushed)
            mux__handoff_wake(h); /* one wake per batch */
        else
            sched_yield();
    }
    return NULL;
}

static void test_spsc_threads_keep_order(void **state)
{
    struct mux__handoff h;
    assert_int_equal(mux__handoff_init(&h, 64), 0);
    pthread_t t;
    pthread_create(&t, NULL, producer, &h);
    int expect = 0;
    while (expect < TOTAL) {
        struct pollfd p = {.fd = h.wake_fd, .events = POLLIN};
        assert_true(poll(&p, 1, 10000) == 1); /* a wake always follows a push */
        mux__handoff_ack(&h);
        int v;
        while ((v = mux__handoff_pop(&h)) >= 0)
            assert_int_equal(v, expect++);
    }
    pthread_join(t, NULL);
    assert_int_equal(mux__handoff_pop(&h), -1);
    mux__handoff_destroy(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_full),
        cmocka_unit_test(test_spsc_threads_keep_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
