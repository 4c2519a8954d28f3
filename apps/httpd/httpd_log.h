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
    int major_version;    /* 2: "HTTP/2.0"; anything else: "HTTP/1.<minor>" */
    int status;
    uint64_t bytes;       /* response bytes queued: head + body */
};

/* Writes the line with its '\n' into out[0..cap) (cap >= 128) and returns
 * its length (< cap; out is NUL-terminated). */
size_t httpd_log_format(const struct httpd_log_entry *e, char *out, size_t cap);

/* Formats e and writes it with one write(2): to the file opened by
 * httpd_log_open(), else to stderr. Any thread. */
void httpd_log_write(const struct httpd_log_entry *e);

/* Main thread: send the access log to `path` (appending, created 0644).
 * 0 or a negative errno. */
int httpd_log_open(const char *path);

/* Main thread (SIGUSR1): reopen the same path after a rotation; workers
 * writing meanwhile reach the old or the new file, never a closed one
 * (dup2 onto the same descriptor). 0 or a negative errno. */
int httpd_log_reopen(void);

#endif
