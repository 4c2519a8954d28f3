/* units.c - durations, counts and sizes (see units.h). Every parser starts
 * from strtod on the digits, so "1.5k" and "0.5s" work alike, and rejects
 * signs, blanks, hex, exponents, inf and nan (strtod would take them). */
#include "units.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The leading decimal number of s; *end points after it. -1 if none. */
static int number(const char *s, double *v, const char **end)
{
    if (!s || !((*s >= '0' && *s <= '9') || *s == '.'))
        return -1; /* no sign, blank, "inf" or "nan" */
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        return -1;
    char *e;
    errno = 0;
    *v = strtod(s, &e);
    if (errno || e == s || !isfinite(*v) || strspn(s, "0123456789.") != (size_t)(e - s))
        return -1; /* no exponents: "1e3" is not how anyone writes 1k */
    *end = e;
    return 0;
}

int parse_duration(const char *s, double *out)
{
    static const struct {
        const char *suffix;
        double secs;
    } unit[] = {{"", 1}, {"s", 1}, {"ms", 1e-3}, {"us", 1e-6}, {"m", 60}, {"h", 3600}};
    double v;
    const char *end;
    if (number(s, &v, &end) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(unit) / sizeof(unit[0]); i++)
        if (!strcmp(end, unit[i].suffix)) {
            v *= unit[i].secs;
            if (v > 1e7)
                return -1;
            *out = v;
            return 0;
        }
    return -1;
}

/* k/m/g (either case) -> factor^1..3; "" -> 1; else 0. */
static double multiplier(const char *suffix, double factor)
{
    if (suffix[0] == '\0')
        return 1;
    if (suffix[1] != '\0')
        return 0;
    switch (suffix[0]) {
    case 'k':
    case 'K':
        return factor;
    case 'm':
    case 'M':
        return factor * factor;
    case 'g':
    case 'G':
        return factor * factor * factor;
    default:
        return 0;
    }
}

static int whole(const char *s, double factor, uint64_t max, uint64_t *out)
{
    double v;
    const char *end;
    if (number(s, &v, &end) < 0)
        return -1;
    double m = multiplier(end, factor);
    if (m == 0)
        return -1;
    v *= m;
    if (v != floor(v) || v > (double)max || v >= 18446744073709551616.0)
        return -1;
    *out = (uint64_t)v;
    return 0;
}

int parse_count(const char *s, uint64_t max, uint64_t *out)
{
    return whole(s, 1000, max, out);
}

int parse_bytes(const char *s, uint64_t max, uint64_t *out)
{
    return whole(s, 1024, max, out);
}

int parse_metric(const char *s, double *out)
{
    double v;
    const char *end;
    if (number(s, &v, &end) < 0)
        return -1;
    double m = multiplier(end, 1000);
    if (m == 0)
        return -1;
    *out = v * m;
    return 0;
}
