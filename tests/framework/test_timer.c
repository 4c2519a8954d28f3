/* test_timer.c - the worker's timer heap: ordering, cancel, re-arm; and
 * random operations (arm, re-arm earlier and later, cancel, pop) checked
 * against a plain array model after every step. The seed is printed;
 * MUX_TEST_SEED=<n> replays a run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "timer.h"
#include "seed.h"

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

/* ---- Randomized against a model ---- */


static unsigned long long test_seed(void)
{
    return th_seed_rng("MUX_TEST_SEED");
}

enum { NT = 200 }; /* past the heap's first 64 slots: growth is exercised */

struct model {
    bool armed[NT];
    uint64_t due[NT];
};

/* Every slot points back at its timer, every parent is due no later than
 * its children, and exactly the model's armed timers are in the heap. */
static void check_heap(const struct mux__timers *ts, const struct mux__timer *t,
                       const struct model *m)
{
    unsigned armed = 0;
    for (int i = 0; i < NT; i++) {
        assert_int_equal(mux__timer_armed(&t[i]), m->armed[i]);
        if (!m->armed[i])
            continue;
        armed++;
        assert_true(t[i].slot >= 1 && t[i].slot <= ts->n);
        assert_ptr_equal(ts->heap[t[i].slot - 1], &t[i]);
        assert_true(t[i].due_ms == m->due[i]);
    }
    assert_int_equal(ts->n, armed);
    for (unsigned i = 1; i < ts->n; i++)
        if (ts->heap[(i - 1) / 2]->due_ms > ts->heap[i]->due_ms)
            fail_msg("heap order broken at %u: parent %llu > child %llu", i,
                     (unsigned long long)ts->heap[(i - 1) / 2]->due_ms,
                     (unsigned long long)ts->heap[i]->due_ms);
}

/* The earliest armed deadline in the model, or -1. */
static int model_min(const struct model *m)
{
    int best = -1;
    for (int i = 0; i < NT; i++)
        if (m->armed[i] && (best < 0 || m->due[i] < m->due[best]))
            best = i;
    return best;
}

/* Pops with the clock at now: the heap gives a timer due at the model's
 * earliest deadline, or nothing when nothing is due. */
static void check_pop(struct mux__timers *ts, struct mux__timer *t, struct model *m, uint64_t now)
{
    int best = model_min(m);
    struct mux__timer *p = mux__timers_pop_due(ts, now);
    if (best < 0 || m->due[best] > now) {
        assert_null(p);
        return;
    }
    assert_non_null(p);
    int i = (int)(p - t);
    assert_true(i >= 0 && i < NT && m->armed[i]);
    assert_true(m->due[i] == m->due[best]); /* ties may come in any order */
    assert_false(mux__timer_armed(p));
    m->armed[i] = false;
}

static void check_timeout(const struct mux__timers *ts, const struct model *m, uint64_t now)
{
    int best = model_min(m);
    int want = best < 0 ? -1 : m->due[best] <= now ? 0
             : m->due[best] - now > 60000 ? 60000 : (int)(m->due[best] - now);
    assert_int_equal(mux__timers_timeout(ts, now), want);
}

static void random_step(struct mux__timers *ts, struct mux__timer *t, struct model *m,
                        uint64_t *now)
{
    int i = (int)(th_rand() % NT);
    unsigned op = (unsigned)(th_rand() % 8);
    /* Deadlines in a narrow window make ties and reorders common. */
    uint64_t span = th_rand() % 4 == 0 ? 100000 : 64;
    if (op < 2 || (op < 5 && !m->armed[i])) { /* arm anew, or move anywhere */
        m->due[i] = *now + th_rand() % span;
    } else if (op < 4) { /* move earlier, possibly to "now" */
        m->due[i] = m->due[i] > *now ? *now + th_rand() % (m->due[i] - *now + 1) : *now;
    } else if (op < 5) { /* move later */
        m->due[i] += 1 + th_rand() % span;
    } else if (op < 6) {
        mux__timers_cancel(ts, &t[i]);
        m->armed[i] = false;
        return;
    } else {
        *now += th_rand() % 8;
        check_timeout(ts, m, *now);
        check_pop(ts, t, m, *now);
        return;
    }
    assert_int_equal(mux__timers_arm(ts, &t[i], m->due[i]), 0);
    m->armed[i] = true;
}

static void test_random_ops_match_a_model(void **state)
{
    th_rng = test_seed();
    static struct mux__timer t[NT];
    struct model m;
    enum { ROUNDS = 20, STEPS = 5000 };
    for (int r = 0; r < ROUNDS; r++) {
        struct mux__timers ts;
        mux__timers_init(&ts);
        memset(t, 0, sizeof(t));
        memset(&m, 0, sizeof(m));
        uint64_t now = th_rand() % 2 ? 0 : UINT64_MAX - (1ULL << 40); /* near the top too */
        for (int s = 0; s < STEPS; s++) {
            random_step(&ts, t, &m, &now);
            if (s % 16 == 0 || r == 0)
                check_heap(&ts, t, &m);
        }
        check_heap(&ts, t, &m);
        now = UINT64_MAX; /* drain: everything comes out in order */
        while (model_min(&m) >= 0)
            check_pop(&ts, t, &m, now);
        assert_null(mux__timers_pop_due(&ts, now));
        mux__timers_destroy(&ts);
    }
}

/* Moving the one timer that is at the bottom of a deep heap to the front. */
static void test_move_earlier_reaches_the_top(void **state)
{
    enum { N = 127 };
    static struct mux__timer t[N];
    struct mux__timers ts;
    mux__timers_init(&ts);
    memset(t, 0, sizeof(t));
    for (int i = 0; i < N; i++)
        assert_int_equal(mux__timers_arm(&ts, &t[i], 1000 + (uint64_t)i), 0);
    assert_int_equal(mux__timers_arm(&ts, &t[N - 1], 5), 0); /* last leaf -> earliest */
    assert_int_equal(mux__timers_timeout(&ts, 0), 5);
    assert_ptr_equal(mux__timers_pop_due(&ts, 5), &t[N - 1]);
    assert_int_equal(mux__timers_arm(&ts, &t[0], 5000), 0); /* root -> latest */
    uint64_t last = 0;
    struct mux__timer *p;
    int n = 0;
    while ((p = mux__timers_pop_due(&ts, UINT64_MAX)) != NULL) {
        assert_true(p->due_ms >= last);
        last = p->due_ms;
        n++;
    }
    assert_int_equal(n, N - 1);
    assert_true(last == 5000);
    mux__timers_destroy(&ts);
}

/* destroy() leaves the timers it held disarmed (their owners may re-arm). */
static void test_destroy_disarms(void **state)
{
    struct mux__timers ts;
    mux__timers_init(&ts);
    struct mux__timer a = {0}, b = {0};
    mux__timers_arm(&ts, &a, 1);
    mux__timers_arm(&ts, &b, 2);
    mux__timers_destroy(&ts);
    assert_false(mux__timer_armed(&a));
    assert_false(mux__timer_armed(&b));
    assert_int_equal(mux__timers_timeout(&ts, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pops_in_deadline_order),
        cmocka_unit_test(test_not_due_stays),
        cmocka_unit_test(test_cancel_and_rearm),
        cmocka_unit_test(test_random_ops_match_a_model),
        cmocka_unit_test(test_move_earlier_reaches_the_top),
        cmocka_unit_test(test_destroy_disarms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
