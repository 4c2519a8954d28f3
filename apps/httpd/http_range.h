/* http_range.h - the single byte range of a Range request header.
 *
 * mux-httpd serves one range per response (RFC 7233). What a header value
 * turns into, against a file of `size` bytes:
 *   "bytes=a-b"  -> PARTIAL [a, min(b, size-1)]     (416 if a >= size or b < a)
 *   "bytes=a-"   -> PARTIAL [a, size-1]             (416 if a >= size)
 *   "bytes=-n"   -> PARTIAL the last min(n, size) bytes (416 if n == 0 or
 *                   size == 0)
 *   several ranges, another unit, or anything malformed -> NONE: the header
 *   is ignored and the whole file is served with 200 (nginx does this for
 *   forms it does not support; RFC 7233 3.1 allows ignoring Range).
 * "b < a" gives 416 as nginx does; RFC 7233 would also allow ignoring it.
 * Spaces and tabs are allowed around numbers, '-' and ','; empty list
 * elements ("bytes=0-5,") are skipped; the unit is case-insensitive.
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

struct http_range {
    uint64_t start;
    uint64_t len; /* > 0 for PARTIAL */
};

/* Parses the Range value v[0..n) against `size`. *r is written only for
 * HTTP_RANGE_PARTIAL. Pure function, no allocation. */
enum http_range_result http_range_parse(const char *v, size_t n, uint64_t size,
                                        struct http_range *r);

#endif
