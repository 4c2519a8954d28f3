/* seed.h - the randomized tests' generator, the one copy of it: xorshift64
 * on a state of the caller's (th_xorshift), or on the process-wide th_rng;
 * seeds read from an environment variable when set (to replay a run) or
 * from the clock and pid, and printed either way. Header-only. */
#ifndef MUX_TEST_SEED_H
#define MUX_TEST_SEED_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* One step of xorshift64 on *s (which must not be 0); returns the new state. */
static inline unsigned long long th_xorshift(unsigned long long *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A seed: $env when set, else from the clock and the pid. Printed as
 * "seed=N (replay: ENV=N)". */
static inline unsigned long long th_seed(const char *env)
{
    const char *v = getenv(env);
    unsigned long long seed = v ? strtoull(v, NULL, 0)
                                : (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32);
    printf("seed=%llu (replay: %s=%llu)\n", seed, env, seed);
    fflush(stdout);
    return seed;
}

/* The process-wide stream, for a test with one generator. */
static unsigned long long th_rng = 1;

static inline unsigned long long th_rand(void)
{
    return th_xorshift(&th_rng);
}

/* Seeds th_rng from th_seed(env); returns the seed. */
static inline unsigned long long th_seed_rng(const char *env)
{
    unsigned long long seed = th_seed(env);
    th_rng = seed ? seed : 1;
    return seed;
}

#endif
