/* fault.h - test-only fault injection (private). Built in when the build
 * has tests (MUX_FAULT_INJECTION); otherwise every check is a constant
 * false and costs nothing.
 *
 * MUX_FAULT="alloc=N,send=M" in the environment (read once, at the first
 * check) makes every N-th allocation of the framework's I/O memory (pool
 * blocks, io_uring send blocks, poller registrations) fail with ENOMEM and
 * every M-th send (sendmsg, sendfile, a TLS record write, an io_uring send
 * submission) fail with EIO. "alloc=N" or "send=M" alone is fine; "+K"
 * after a number (alloc=7+3) skips the first K checks; "#K" (send=#5)
 * fails the K-th check only. Counters are
 * process-wide and atomic: with several workers, which call fails depends
 * on the schedule, as a real ENOMEM would. */
#ifndef MUX_FAULT_H
#define MUX_FAULT_H

#include <stdbool.h>

enum mux__fault_site {
    FAULT_ALLOC,
    FAULT_SEND,
    FAULT_SITES,
};

/* Tests: replaces the plan (the MUX_FAULT syntax; "" for none) and
 * restarts the counts. Call it while no worker runs. Exists only in a
 * build with MUX_FAULT_INJECTION (the tests that use it are built only
 * there). */
void mux__fault_plan(const char *spec);

/* Tests: every check asks fn(site, arg) instead of the plan (NULL: back
 * to the plan). For a test that decides faults itself, e.g. from its own
 * seeded generator (tests/sim/). Set it while no worker runs. Likewise
 * only in a MUX_FAULT_INJECTION build. */
typedef bool (*mux__fault_fn)(enum mux__fault_site site, void *arg);
void mux__fault_set_hook(mux__fault_fn fn, void *arg);

#ifdef MUX_FAULT_INJECTION
/* True when this call at site must fail. Any thread. */
bool mux__fault(enum mux__fault_site site);
#else
static inline bool mux__fault(enum mux__fault_site site)
{
    (void)site;
    return false;
}
#endif

#endif
