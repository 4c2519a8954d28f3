/* clock.c - the worker's clock of clock.h. */
#include <time.h>

#include "clock.h"

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#ifdef MUX_FAULT_INJECTION
static uint64_t (*source)(void) = monotonic_ms;

uint64_t mux__clock_ms(void)
{
    return source();
}

void mux__clock_set_source(uint64_t (*fn)(void))
{
    source = fn ? fn : monotonic_ms;
}
#else
uint64_t mux__clock_ms(void)
{
    return monotonic_ms();
}
#endif
