/* clock.h - the worker's clock (private): CLOCK_MONOTONIC in milliseconds.
 * Test builds (MUX_FAULT_INJECTION) let a test replace it with a virtual
 * clock (tests/sim/), so the loop's timers run on simulated time. */
#ifndef MUX_CLOCK_H
#define MUX_CLOCK_H

#include <stdint.h>

/* Milliseconds of a monotonic clock. Any thread. */
uint64_t mux__clock_ms(void);

/* Tests: read the time from fn instead (NULL restores the real clock).
 * Set it while no worker runs. Exists only in a build with
 * MUX_FAULT_INJECTION. */
void mux__clock_set_source(uint64_t (*fn)(void));

#endif
