/* http_date.h - HTTP-date formatting, parsing, and a per-second cache.
 *
 * Formatting produces the IMF-fixdate of RFC 7231 7.1.1.1, e.g.
 * "Sun, 06 Nov 1994 08:49:37 GMT", always HTTP_DATE_LEN bytes. Parsing
 * accepts the three formats a recipient must accept: IMF-fixdate, the
 * obsolete RFC 850 form ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime
 * ("Sun Nov  6 08:49:37 1994"). Anything else, extra bytes included, is
 * invalid (the caller then ignores the header, RFC 7232 3.3). The weekday
 * must be a real day name but is not checked against the date.
 * No locale, no TZ, no libc time conversion: pure arithmetic.
 */
#ifndef MUX_HTTPD_HTTP_DATE_H
#define MUX_HTTPD_HTTP_DATE_H

#include <stddef.h>
#include <time.h>

#define HTTP_DATE_LEN 29 /* strlen("Sun, 06 Nov 1994 08:49:37 GMT") */

/* Writes the IMF-fixdate of t plus a NUL into out. Times before year 1 or
 * after 9999 are clamped to those years' ends. Returns HTTP_DATE_LEN. */
size_t http_date_format(time_t t, char out[HTTP_DATE_LEN + 1]);

/* Parses s[0..n). Returns 0 and sets *t, or -1 when s is not an HTTP-date.
 * Two-digit RFC 850 years 70..99 are 19xx and 00..69 are 20xx. */
int http_date_parse(const char *s, size_t n, time_t *t);

/* A formatted Date value that is rebuilt only when the second changes.
 * Zero-initialise it. Not locked: one per worker (mux-httpd keeps it in
 * its struct httpd_worker). */
struct http_date_cache {
    time_t sec;
    char value[HTTP_DATE_LEN + 1];
};

/* The Date value for `now` (seconds since the epoch), from the cache. */
const char *http_date_cached(struct http_date_cache *c, time_t now);

#endif
