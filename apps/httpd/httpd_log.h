/* httpd_log.h - the access log line of mux-httpd (common log format with
 * the peer's port), formatted without allocation so a worker can write it
 * with one write(2):
 *   127.0.0.1:40312 - - [24/Nov/2026:10:00:00 +0000] "GET /a.css HTTP/1.1" 200 1234
 * Bytes of the method and target that are not printable ASCII, and '"' and
 * '\\', are written as \xHH (as nginx does), so a log line can never be
 * split or forged by a request. */
#ifndef MUX_HTTPD_HTTPD_LOG_H
#define MUX_HTTPD_HTTPD_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Longest line written; a longer target is cut and ends in "...". */
#define HTTPD_LOG_LINE_MAX 2048

struct httpd_log_entry {
    const char *peer;     /* "HOST:PORT" */
    time_t when;          /* seconds since the epoch (printed in UTC) */
    const char *method;   /* NULL when the request line did not parse */
    size_t method_len;
    const char *target;
    size_t target_len;
    int minor_version;
    int status;
    uint64_t bytes;       /* response bytes queued: head + body */
};

/* Writes the line with its '\n' into out[0..cap) (cap >= 128) and returns
 * its length (< cap; out is NUL-terminated). */
size_t httpd_log_format(const struct httpd_log_entry *e, char *out, size_t cap);

/* Formats e and writes it to fd 2 with one write(2). */
void httpd_log_write(const struct httpd_log_entry *e);

#endif
