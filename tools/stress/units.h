/* units.h - the value syntaxes of the mux-stress command line, as wrk
 * users type them: durations "500ms", "5s", "2m", "1h" (a plain number is
 * seconds), counts "1k" = 1000, "2m" = 2000000, "1g" (SI, x1000; a fraction
 * is fine when the result is whole: "1.5k"), byte sizes "4k" = 4096 (x1024).
 * Pure functions: no output, so options.c words the error. */
#ifndef STRESS_UNITS_H
#define STRESS_UNITS_H

#include <stdint.h>

/* Seconds in *out. 0, or -1 if s is not a non-negative finite duration
 * (at most 1e7 s). */
int parse_duration(const char *s, double *out);

/* A whole count in [0, max] in *out. 0, or -1. */
int parse_count(const char *s, uint64_t max, uint64_t *out);

/* A non-negative number with an optional k/m/g (x1000) suffix, e.g. a rate
 * "2.5k". 0, or -1. */
int parse_metric(const char *s, double *out);

/* Bytes in [0, max]: k/m/g are KiB/MiB/GiB. 0, or -1. */
int parse_bytes(const char *s, uint64_t max, uint64_t *out);

#endif
