/* uring/features.c - which of the newer io_uring features a worker's ring
 * uses (uring/ring.h, URING_F_*): their names, the one startup line that
 * says which are in use, and the test-only switch that pretends some are
 * missing, so every fallback runs in the suite on a kernel that has them
 * all.
 *
 * MUX_URING_WITHOUT="defer,regring,direct,inc" (any subset, or "all") in
 * the environment of a test build (MUX_FAULT_INJECTION) makes the rings
 * behave as if the kernel had refused those; other builds ignore it. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mux/log.h"
#include "uring/ring.h"

static const struct {
    unsigned bit;
    const char *name; /* the switch's word */
    const char *what; /* the startup line's */
} features[] = {
    {URING_F_DEFER, "defer", "single issuer + deferred task work"},
    {URING_F_REGRING, "regring", "registered ring fd"},
    {URING_F_DIRECT, "direct", "direct descriptors"},
    {URING_F_INC, "inc", "incremental buffer consumption"},
};
#define NFEATURES (sizeof(features) / sizeof(features[0]))

#ifdef MUX_FAULT_INJECTION
/* The features MUX_URING_WITHOUT names (words separated by commas). */
static unsigned switched_off(void)
{
    const char *s = getenv("MUX_URING_WITHOUT");
    unsigned off = 0;
    while (s && *s) {
        size_t n = strcspn(s, ",");
        for (size_t i = 0; i < NFEATURES; i++)
            if ((n == 3 && strncmp(s, "all", 3) == 0) ||
                (strlen(features[i].name) == n && strncmp(s, features[i].name, n) == 0))
                off |= features[i].bit;
        s += n + (s[n] == ',');
    }
    return off;
}
#else
static unsigned switched_off(void)
{
    return 0;
}
#endif

bool mux__uring_allowed(unsigned feature)
{
    return !(switched_off() & feature);
}

/* One line per process (every worker's ring is set up alike): which
 * features run, and which the kernel (or the switch) left out. */
void mux__uring_log_features(unsigned used)
{
    static atomic_bool logged;
    if (atomic_exchange(&logged, true))
        return;
    char on[160] = "", off[160] = "";
    for (size_t i = 0; i < NFEATURES; i++) {
        char *to = (used & features[i].bit) ? on : off;
        size_t len = strlen(to);
        snprintf(to + len, sizeof(on) - len, "%s%s", len ? ", " : "", features[i].what);
    }
    mux_log(MUX_LOG_INFO, "io_uring: using %s%s%s", on[0] ? on : "no optional feature",
            off[0] ? "; without " : "", off);
}
