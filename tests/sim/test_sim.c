/* test_sim.c - explores seeds of the simulation (sim.h) for a time budget,
 * or replays one.
 *
 *   MUX_SIM_SECONDS=N  the budget (default 60)
 *   MUX_SIM_SEED=N     replays seed N: prints its decisions and its trace
 *                      hash, runs it twice and checks the hashes agree
 *   MUX_SIM_BASE=N     the first seed explored (default: from the clock,
 *                      printed)
 *   MUX_SIM_LOG=LEVEL  the framework's log level (default: none)
 *
 * Every seed must end with every invariant kept; a failure prints the seed
 * and the step and how to replay it. Every 256th seed runs twice, and the
 * two traces must hash alike (the simulation is deterministic). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sim.h"

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int replay(uint64_t seed)
{
    struct sim_result a, b;
    sim_run_seed(seed, true, &a);
    sim_run_seed(seed, false, &b);
    printf("seed %llu: %s, %llu steps, %u clients, trace hash %016llx (again: %016llx)\n",
           (unsigned long long)seed, sim_app_names[a.app], (unsigned long long)a.steps, a.clients,
           (unsigned long long)a.hash, (unsigned long long)b.hash);
    if (a.failed)
        printf("FAILED: %s\n", a.why);
    if (a.hash != b.hash) {
        printf("FAILED: two runs of one seed gave two traces\n");
        return 1;
    }
    return a.failed ? 1 : 0;
}

int main(void)
{
    const char *lv = getenv("MUX_SIM_LOG");
    mux_log_setup(lv ? mux_log_level_parse(lv) : -1, "sim");
    const char *one = getenv("MUX_SIM_SEED");
    if (one)
        return replay(strtoull(one, NULL, 0));

    const char *sec = getenv("MUX_SIM_SECONDS");
    double budget = sec ? atof(sec) : 60;
    const char *b = getenv("MUX_SIM_BASE");
    uint64_t base = b ? strtoull(b, NULL, 0)
                      : ((uint64_t)time(NULL) << 20) ^ ((uint64_t)getpid() << 4);
    printf("sim: exploring for %.0f s from seed %llu (MUX_SIM_BASE=%llu)\n", budget,
           (unsigned long long)base, (unsigned long long)base);
    fflush(stdout);
    double t0 = seconds_now(), t = t0;
    uint64_t n = 0, steps = 0, per_app[SIM_APPS] = {0};
    unsigned failures = 0;
    while (t - t0 < budget) {
        uint64_t seed = base + n;
        struct sim_result r;
        sim_run_seed(seed, false, &r);
        n++;
        steps += r.steps;
        per_app[r.app]++;
        if (!r.failed && n % 256 == 1) {
            struct sim_result again;
            sim_run_seed(seed, false, &again);
            if (again.hash != r.hash) {
                r.failed = true;
                snprintf(r.why, sizeof(r.why), "two runs of one seed gave two traces "
                         "(%016llx, %016llx)", (unsigned long long)r.hash,
                         (unsigned long long)again.hash);
            }
        }
        if (r.failed) {
            failures++;
            printf("sim: seed %llu FAILED (%s): %s\n  replay: MUX_SIM_SEED=%llu %s\n",
                   (unsigned long long)seed, sim_app_names[r.app], r.why,
                   (unsigned long long)seed, "build/tests/sim/test_sim");
            break;
        }
        if ((n & 63) == 0)
            t = seconds_now();
    }
    t = seconds_now();
    printf("sim: %llu seeds, %u failures, %.0f seeds/s, %.0f steps/s (", (unsigned long long)n,
           failures, (double)n / (t - t0), (double)steps / (t - t0));
    for (int a = 0; a < SIM_APPS; a++)
        printf("%s%s %llu", a ? ", " : "", sim_app_names[a], (unsigned long long)per_app[a]);
    printf(")\n");
    return failures ? 1 : 0;
}
