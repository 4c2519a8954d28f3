/* fault.c - the fault switch of fault.h (test builds only). */
#include "fault.h"

#ifdef MUX_FAULT_INJECTION
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static const char *const site_names[FAULT_SITES] = {"alloc", "send"};

static struct {
    unsigned long every, skip; /* every-th after skip; every 0: only the skip-th ("#K") */
    bool on;
} plan[FAULT_SITES];
static _Atomic unsigned long counts[FAULT_SITES];
static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_bool active;
static mux__fault_fn hook;
static void *hook_arg;

/* "alloc=N[+K]|#K,send=M[+K]|#K"; anything else is ignored. */
static void parse(const char *spec)
{
    bool any = false;
    for (int s = 0; s < FAULT_SITES; s++) {
        plan[s].on = false;
        atomic_store(&counts[s], 0);
        const char *p = spec ? strstr(spec, site_names[s]) : NULL;
        if (!p || p[strlen(site_names[s])] != '=')
            continue;
        p += strlen(site_names[s]) + 1;
        char *end;
        if (*p == '#') {
            plan[s].every = 0;
            plan[s].skip = strtoul(p + 1, NULL, 10);
            plan[s].on = plan[s].skip > 0;
        } else {
            plan[s].every = strtoul(p, &end, 10);
            plan[s].skip = *end == '+' ? strtoul(end + 1, NULL, 10) : 0;
            plan[s].on = plan[s].every > 0;
        }
        any |= plan[s].on;
    }
    atomic_store(&active, any);
}

static void read_env(void)
{
    parse(getenv("MUX_FAULT"));
}

void mux__fault_plan(const char *spec)
{
    pthread_once(&once, read_env);
    parse(spec);
}

void mux__fault_set_hook(mux__fault_fn fn, void *arg)
{
    hook = fn;
    hook_arg = arg;
}

bool mux__fault(enum mux__fault_site site)
{
    if (hook)
        return hook(site, hook_arg);
    pthread_once(&once, read_env);
    if (!atomic_load_explicit(&active, memory_order_relaxed) || !plan[site].on)
        return false;
    unsigned long n = atomic_fetch_add_explicit(&counts[site], 1, memory_order_relaxed) + 1;
    if (plan[site].every == 0)
        return n == plan[site].skip;
    return n > plan[site].skip && (n - plan[site].skip) % plan[site].every == 0;
}
#endif
