/* http_range.c - Range header parsing (rules in http_range.h).
 *
 * Parsing happens in two steps per element: the syntax of a
 * byte-range-spec (first-pos, last-pos, suffix) and then its meaning
 * against the file size, so malformed input never depends on the size.
 */
#include "http_range.h"

#include <stdbool.h>
#include <strings.h>

#define NO_POS UINT64_MAX

struct cursor {
    const char *p;
    const char *end;
};

static void skip_ows(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

/* 1*DIGIT below UINT64_MAX into *out; NO_POS when there are no digits.
 * Returns false on overflow. */
static bool read_pos(struct cursor *c, uint64_t *out)
{
    uint64_t x = 0;
    const char *start = c->p;
    for (; c->p < c->end && *c->p >= '0' && *c->p <= '9'; c->p++) {
        uint64_t d = (uint64_t)(*c->p - '0');
        if (x > (UINT64_MAX - 1 - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *out = c->p == start ? NO_POS : x;
    return true;
}

/* One byte-range-spec: [first] "-" [last], at least one of them. */
static bool read_spec(struct cursor *c, uint64_t *first, uint64_t *last)
{
    skip_ows(c);
    if (!read_pos(c, first))
        return false;
    skip_ows(c);
    if (c->p == c->end || *c->p != '-')
        return false;
    c->p++;
    skip_ows(c);
    if (!read_pos(c, last))
        return false;
    skip_ows(c);
    return *first != NO_POS || *last != NO_POS;
}

/* Skips list separators; true if a further non-empty element follows. */
static bool more_elements(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ',' || *c->p == ' ' || *c->p == '\t'))
        c->p++;
    return c->p < c->end;
}

/* The meaning of one spec: false when it is unsatisfiable. */
static bool resolve(uint64_t first, uint64_t last, uint64_t size, struct http_range *r)
{
    if (first == NO_POS) { /* suffix: the last `last` bytes */
        if (last == 0 || size == 0)
            return false;
        r->len = last < size ? last : size;
        r->start = size - r->len;
        return true;
    }
    if (first >= size || (last != NO_POS && last < first))
        return false;
    if (last == NO_POS || last >= size)
        last = size - 1;
    r->start = first;
    r->len = last - first + 1;
    return true;
}

enum http_range_result http_range_parse(const char *v, size_t n, uint64_t size,
                                        struct http_ranges *out)
{
    struct cursor c = {v, v + n};
    struct http_ranges got = {0};
    unsigned specs = 0;
    uint64_t total = 0;

    if (n < 6 || strncasecmp(v, "bytes", 5) != 0)
        return HTTP_RANGE_NONE;
    c.p += 5;
    skip_ows(&c);
    if (c.p == c.end || *c.p != '=')
        return HTTP_RANGE_NONE;
    c.p++;
    if (!more_elements(&c))
        return HTTP_RANGE_NONE;
    do {
        uint64_t first, last;
        if (!read_spec(&c, &first, &last) || (c.p < c.end && *c.p != ','))
            return HTTP_RANGE_NONE;
        if (++specs > HTTP_RANGES_MAX)
            return HTTP_RANGE_NONE; /* too many: serve the whole file */
        struct http_range *r = &got.r[got.count];
        if (resolve(first, last, size, r)) {
            if (r->len > size - total)
                return HTTP_RANGE_NONE; /* overlapping ranges: bigger than the file */
            total += r->len;
            got.count++;
        }
    } while (more_elements(&c));
    if (got.count == 0)
        return HTTP_RANGE_UNSATISFIABLE;
    *out = got;
    return HTTP_RANGE_PARTIAL;
}
