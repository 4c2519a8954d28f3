/* seed.h - the randomized tests' generator: xorshift64, seeded from
 * MUX_TEST_SEED when set (to replay a run) or from the clock and pid, the
 * seed printed either way. Header-only: each test file has its own state. */
#ifndef MUX_TEST_SEED_H
#define MUX_TEST_SEED_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static unsigned long long rng;

static inline unsigned long long next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Picks, prints and installs the seed; returns it. */
static inline unsigned long long seed_rng(void)
{
    const char *env = getenv("MUX_TEST_SEED");
    unsigned long long seed = env ? strtoull(env, NULL, 0)
                                  : (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32);
    printf("seed=%llu (replay: MUX_TEST_SEED=%llu)\n", seed, seed);
    fflush(stdout);
    rng = seed ? seed : 1;
    return rng;
}

#endif
