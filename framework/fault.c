/* fault.c - the fault switch of fault.h (test builds only). */
#include "fault.h"

#ifdef MUX_FAULT_INJECTION
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static const char *const site_names[FAULT_SITES] = {"alloc", "send"};

static struct {
    unsigned long every, skip;
} plan[FAULT_SITES];
static _Atomic unsigned long counts[FAULT_SITES];
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool active;

/* "alloc=N[+K],send=M[+K]"; anything else is ignored. */
static void read_plan(void)
{
    const char *spec = getenv("MUX_FAULT");
    if (!spec)
        return;
    for (int s = 0; s < FAULT_SITES; s++) {
        const char *p = strstr(spec, site_names[s]);
        if (!p || p[strlen(site_names[s])] != '=')
            continue;
        char *end;
        plan[s].every = strtoul(p + strlen(site_names[s]) + 1, &end, 10);
        if (*end == '+')
            plan[s].skip = strtoul(end + 1, NULL, 10);
        if (plan[s].every)
            active = true;
    }
}

bool mux__fault(enum mux__fault_site site)
{
    pthread_once(&once, read_plan);
    if (!active || !plan[site].every)
        return false;
    unsigned long n = atomic_fetch_add_explicit(&counts[site], 1, memory_order_relaxed) + 1;
    return n > plan[site].skip && (n - plan[site].skip) % plan[site].every == 0;
}
#endif
