/* httpd_plan.h - the request planner both protocol versions call: what a
 * request is answered with (status, file, Location, then the head, the
 * range or the multipart parts), decided once for HTTP/1.1 (httpd_conn.c)
 * and HTTP/2 (httpd_h2.c), so both give the same files, headers, status
 * codes, ranges and conditional answers. Also the per-worker state they
 * share (struct httpd_worker, httpd.h). */
#ifndef MUX_HTTPD_HTTPD_PLAN_H
#define MUX_HTTPD_HTTPD_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include <mux/mux.h>

#include "http_cache.h"
#include "http_parse.h"
#include "http_response.h"
#include "httpd.h"

/* A head, an error page, or a 301 with a Location up to a request line. */
#define HTTPD_HEAD_BUF (HTTP_RESPONSE_HEAD_MAX + HTTP_MAX_REQUEST_LINE + 8)

/* Which file or status a request gets. */
struct httpd_decision {
    int status;                     /* 200 (serve file), 301, 4xx, 500 */
    const struct http_cached *file; /* status 200: valid until the worker's
                                       next cache call (copy or dup what is
                                       kept longer) */
    struct http_span location;      /* 301: into loc */
    char loc[HTTP_MAX_REQUEST_LINE + 2];
};

/* The decision for method m on target (as sent, percent-encoded): 405 for
 * other methods, then path safety (400/403/414), then the worker's file
 * cache (403/404/500, or 301 to the directory with its slash). */
void httpd_decide(struct mux_conn *c, enum http_method m, const char *target, size_t target_len,
                  struct httpd_decision *d);

/* The response plan for a decision: conditionals and Range applied, the
 * HTTP/1.1 head (and error page unless HEAD) written into buf[0..cap)
 * (HTTPD_HEAD_BUF suffices). info: the request's facts, NULL when its head
 * did not parse. 0, or -ENOSPC. */
int httpd_plan(struct mux_conn *c, const struct httpd_decision *d, enum http_method m,
               const struct http_request_info *info, char *buf, size_t cap,
               struct http_plan *plan);

/* The worker hooks that make and free struct httpd_worker. */
void httpd_worker_start(struct mux_worker *w);
void httpd_worker_stop(struct mux_worker *w);

/* The connection's worker state; NULL only when its worker got no memory
 * for it (connections are then refused). */
struct httpd_worker *httpd_worker_of(struct mux_conn *c);

#endif
