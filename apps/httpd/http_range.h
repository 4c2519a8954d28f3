/* http_range.h - the byte ranges of a Range request header.
 *
 * What one byte-range-spec means against a file of `size` bytes:
 *   "a-b"  -> [a, min(b, size-1)]          (unsatisfiable if a >= size or b < a)
 *   "a-"   -> [a, size-1]                  (unsatisfiable if a >= size)
 *   "-n"   -> the last min(n, size) bytes  (unsatisfiable if n == 0 or size == 0)
 * and what the whole header value turns into:
 *   PARTIAL        the satisfiable ranges, in the order asked (1: a plain
 *                  206; more: 206 multipart/byteranges)
 *   UNSATISFIABLE  none is satisfiable: 416 with "Content-Range: bytes * /size"
 *   NONE           the header is ignored and the whole file is served with
 *                  200 (RFC 9110 14.2 allows ignoring Range), when:
 *                  - another unit, or anything malformed;
 *                  - more than HTTP_RANGES_MAX ranges (nginx's max_ranges);
 *                  - the satisfiable ranges add up to more than the file
 *                    (overlapping or repeated ranges: the multipart answer
 *                    would be bigger than the file; nginx does the same).
 * "b < a" alone gives 416 as nginx does. Spaces and tabs are allowed around
 * numbers, '-' and ','; empty list elements ("bytes=0-5,") are skipped; the
 * unit is case-insensitive.
 */
#ifndef MUX_HTTPD_HTTP_RANGE_H
#define MUX_HTTPD_HTTP_RANGE_H

#include <stddef.h>
#include <stdint.h>

enum http_range_result {
    HTTP_RANGE_NONE = 0,      /* no usable range: serve the whole file, 200 */
    HTTP_RANGE_PARTIAL,       /* 206 with bytes [start, start + len) */
    HTTP_RANGE_UNSATISFIABLE, /* 416 with Content-Range: bytes * / size */
};

#define HTTP_RANGES_MAX 16

struct http_range {
    uint64_t start;
    uint64_t len; /* > 0 */
};

struct http_ranges {
    unsigned count; /* 1..HTTP_RANGES_MAX for PARTIAL */
    struct http_range r[HTTP_RANGES_MAX];
};

/* Parses the Range value v[0..n) against `size`. *out is written only for
 * HTTP_RANGE_PARTIAL. Pure function, no allocation. */
enum http_range_result http_range_parse(const char *v, size_t n, uint64_t size,
                                        struct http_ranges *out);

#endif
