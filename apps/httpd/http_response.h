/* http_response.h - deciding and writing a response head.
 *
 * http_plan_response() is a pure function from the request facts (struct
 * http_request_info), the file facts (size, mtime, type) and the status the
 * caller decided so far, to the final status, the head bytes and the file
 * range to send. It applies the conditional-request and Range rules, so
 * they are unit-tested without sockets. No allocation, no syscalls (except
 * time() when no Date or current time is passed).
 *
 * Order of evaluation for a file (RFC 7232 section 6, as nginx):
 *   1. If-None-Match present: any tag equal under weak comparison, or "*",
 *      gives 304; If-Modified-Since is then not looked at.
 *   2. Else If-Modified-Since, when it is a valid HTTP-date not later than
 *      the server's current time and the file's mtime is not after it,
 *      gives 304. (nginx's default is an exact match; mux follows the RFC's
 *      "not modified since".) A date in the future is invalid and ignored
 *      (RFC 9110 13.1.3): the file is served.
 *   3. Range, unless If-Range is present and does not match (a strong
 *      comparison with the ETag, or exact equality with Last-Modified):
 *      206 with Content-Range for one range, 206 multipart/byteranges for
 *      several, 416 with "Content-Range: bytes * /size", or the whole file
 *      (see http_range.h).
 * A multipart body is, per range, the part head (http_part_head(): CRLF,
 * "--" boundary, Content-Type, Content-Range, empty line) and its bytes,
 * then the closing delimiter (http_parts_tail()); the head's
 * Content-Length counts all of it.
 * The ETag is strong: "<mtime hex>-<size hex>", as nginx makes it.
 */
#ifndef MUX_HTTPD_HTTP_RESPONSE_H
#define MUX_HTTPD_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "http_parse.h"
#include "http_range.h"

/* Big enough for every head plus its error page, except that a 301 also
 * needs room for its Location value. */
#define HTTP_RESPONSE_HEAD_MAX 1024
#define HTTP_ETAG_MAX 40 /* "\"" 16 hex "-" 16 hex "\"" + NUL */
#define HTTP_BOUNDARY_LEN 20 /* multipart boundary: 20 decimal digits */
#define HTTP_PART_HEAD_MAX 256 /* one part head of a multipart body */

struct http_file_facts {
    uint64_t size;
    time_t mtime;
    const char *content_type; /* e.g. from mime_type_for() */
    /* Optional, already formatted from size and mtime (a cache keeps them):
     * http_etag() output and the Last-Modified HTTP-date. NULL: formatted
     * here. */
    const char *etag;
    size_t etag_len;
    const char *last_modified;
};

struct http_response_in {
    /* 200: serve `file` (may become 206, 304 or 416). Anything else: send
     * that status with a small HTML page (301 with Location, 405 with
     * Allow: GET, HEAD, ...). */
    int status;
    enum http_method method;             /* HEAD: headers only, no body of any kind */
    bool keep_alive;                     /* what the request allows (info->keep_alive) */
    const struct http_request_info *req; /* NULL when the head did not parse */
    const struct http_file_facts *file;  /* required when status is 200 */
    struct http_span location;           /* 301 only: the Location value */
    const char *date;                    /* the Date value (HTTP_DATE_LEN bytes); NULL:
                                            formatted from time() */
    time_t now;                          /* the current time; 0: time(NULL) */
    uint64_t boundary;                   /* multipart boundary (any value, best
                                            unpredictable: it must not occur in
                                            the file) */
};

struct http_plan {
    int status;           /* the status actually sent */
    size_t head_len;      /* bytes of the caller's buffer to send first: the
                             head, and the error page unless HEAD */
    uint64_t file_offset; /* then file_len bytes of the file from here */
    uint64_t file_len;    /* 0: no file data */
    bool keep_alive;      /* false: close the connection after sending */
    /* Multipart (206 with several ranges, GET only): `parts` > 0 and the
     * body is built from these instead of file_offset/file_len. */
    unsigned parts;
    struct http_range part[HTTP_RANGES_MAX];
    uint64_t file_size;
    const char *part_type; /* the file's Content-Type, for every part */
    char boundary[HTTP_BOUNDARY_LEN + 1];
};

/* Writes the response head (and an error page) into buf[0..cap) and fills
 * *plan. Returns 0, or -ENOSPC when cap is too small (nothing usable was
 * written). cap = HTTP_RESPONSE_HEAD_MAX + location.len always suffices. */
int http_plan_response(const struct http_response_in *in, char *buf, size_t cap,
                       struct http_plan *plan);

/* Writes the head of part i (< plan->parts) into buf (HTTP_PART_HEAD_MAX
 * bytes suffice); returns its length, or 0 when it does not fit in cap. */
size_t http_part_head(const struct http_plan *plan, unsigned i, char *buf, size_t cap);

/* Writes the closing delimiter of a multipart body; returns its length
 * (HTTP_BOUNDARY_LEN + 8), or 0 when cap is too small. */
size_t http_parts_tail(const struct http_plan *plan, char *buf, size_t cap);

/* Reason phrase of a status ("Not Found"); "Unknown" for others. */
const char *http_reason(int status);

/* True for statuses after which mux closes the connection (the request
 * framing may be unknown: 400, 408, 413, 414, 431, 500, 501, 505). */
bool http_status_closes(int status);

/* Writes the ETag of a file (quotes included) into out; returns its length. */
size_t http_etag(uint64_t size, time_t mtime, char out[HTTP_ETAG_MAX]);

/* True when the If-None-Match style list v[0..n) is "*" or contains an
 * entity-tag equal to etag[0..len) under weak comparison (W/ ignored on
 * both sides) or, with strong = true, under strong comparison (no W/ on
 * either side). A malformed list matches nothing past the malformed part. */
bool http_etag_list_match(const char *v, size_t n, const char *etag, size_t len, bool strong);

#endif
