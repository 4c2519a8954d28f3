/* test_connpool.c - the worker's connection pool: random gets and puts
 * against a model (the set of live connections), checking after every step
 * that iteration visits exactly the live ones once each, that no two live
 * connections overlap, that a got connection is zeroed, and that blocks are
 * given back; plus the size an idle connection costs (seed printed,
 * MUX_TEST_SEED replays). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "connpool.h"
#include "seed.h"

#define MAX_LIVE 3000

static int by_address(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

/* Iteration sees the model's set exactly, and live connections are apart. */
static void check(const struct mux__connpool *p, struct mux_conn **live, size_t n)
{
    static struct mux_conn *seen[MAX_LIVE];
    size_t k = 0;
    for (struct mux_conn *c = mux__connpool_next(p, NULL); c; c = mux__connpool_next(p, c)) {
        assert_true(k < n);
        seen[k++] = c;
    }
    assert_int_equal(k, n);
    assert_int_equal(p->live, n);
    struct mux_conn *model[MAX_LIVE];
    memcpy(model, live, n * sizeof(*live));
    qsort(seen, n, sizeof(*seen), by_address);
    qsort(model, n, sizeof(*model), by_address);
    for (size_t i = 0; i < n; i++) {
        assert_ptr_equal(seen[i], model[i]);
        if (i > 0) /* no overlap */
            assert_true((char *)seen[i] >= (char *)(seen[i - 1] + 1));
    }
}

static void test_random_against_model(void **state)
{
    (void)state;
    th_seed_rng("MUX_TEST_SEED");
    static struct mux_conn *live[MAX_LIVE];
    for (int round = 0; round < 20; round++) {
        struct mux__connpool p;
        mux__connpool_init(&p);
        size_t n = 0;
        size_t target = 1 + th_rand() % MAX_LIVE;
        for (int step = 0; step < 4000; step++) {
            bool grow = n < target ? th_rand() % 4 != 0 : th_rand() % 4 == 0;
            if (n == MAX_LIVE)
                grow = false;
            if (grow || n == 0) {
                struct mux_conn *c = mux__connpool_get(&p);
                assert_non_null(c);
                uint8_t slot = c->slot;
                c->slot = 0;
                static const struct mux_conn zero;
                assert_memory_equal(c, &zero, sizeof(zero)); /* zeroed (but its slot) */
                c->slot = slot;
                c->fd = (int)n; /* written: ASan checks the memory is the slot's */
                live[n++] = c;
            } else {
                size_t i = th_rand() % n;
                mux__connpool_put(&p, live[i]);
                live[i] = live[--n];
            }
            if (step % 97 == 0 || n == 0)
                check(&p, live, n);
        }
        while (n > 0)
            mux__connpool_put(&p, live[--n]);
        check(&p, live, 0);
        assert_null(p.all); /* every block given back but the spare */
        mux__connpool_destroy(&p);
        assert_null(p.spare);
    }
}

/* Interleaved gets reuse the slots freed before new blocks are made. */
static void test_reuses_freed_slots(void **state)
{
    (void)state;
    struct mux__connpool p;
    mux__connpool_init(&p);
    struct mux_conn *a = mux__connpool_get(&p), *b = mux__connpool_get(&p);
    mux__connpool_put(&p, a);
    assert_ptr_equal(mux__connpool_get(&p), a);
    mux__connpool_put(&p, a);
    mux__connpool_put(&p, b);
    assert_null(p.all);
    assert_non_null(p.spare); /* kept: an open-close loop does not churn malloc */
    mux__connpool_destroy(&p);
}

/* What an idle connection costs the framework: the budget behind the
 * 150-byte figure of docs/bench.md (the pool adds no header, the timer
 * heap 8 bytes). */
static void test_size_budget(void **state)
{
    (void)state;
    assert_true(sizeof(struct mux_conn) <= 136);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_reuses_freed_slots),
        cmocka_unit_test(test_size_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
