/* httpd.h - what mux-httpd's main.c and its handler (httpd_conn.c) share:
 * the `httpd` config group's options and the server-wide, read-only state
 * built from them in setup(). */
#ifndef MUX_HTTPD_HTTPD_H
#define MUX_HTTPD_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mux/mux.h>

#include "http_date.h"
#include "http_path.h"

#define HTTPD_ROOT_MAX 4096

/* The `httpd` group (every key documented in apps/httpd.conf). */
struct httpd_opts {
    char root[HTTPD_ROOT_MAX];     /* document root directory */
    unsigned header_timeout_ms;    /* whole request head must arrive within this; 0 = none */
    unsigned keepalive_timeout_ms; /* idle time between requests; 0 = none */
    bool access_log;               /* one line per request (stderr or access_log_file) */
    char access_log_file[HTTPD_ROOT_MAX]; /* "" = stderr; reopened on SIGUSR1 */
    bool symlinks;                 /* follow symlinks that stay inside the root */
    bool dir_redirect;             /* "/dir" -> 301 "/dir/" (as nginx) */
    size_t max_body;               /* largest request body skipped; more is 413 */
};

/* Built by setup(), freed by teardown(); shared by every worker and only
 * read while the server runs (mux_conn_app()). */
struct httpd_app {
    struct httpd_opts opts;
    struct http_root root;
};

/* What one worker keeps for all its connections (mux_worker_data): made in
 * on_worker_start, freed in on_worker_stop, used on that worker's thread
 * only, so nothing in it is locked. */
struct h2_stream;
struct h2_mem;

struct httpd_worker {
    struct http_cache *cache;   /* the open-file cache; NULL if it could not be made */
    /* HTTP/2 stream records of closed streams, kept with their buffers for
     * the next streams of any connection of this worker (httpd_h2.c), so a
     * request costs no malloc of ours; a bounded list, freed at the stop. */
    struct h2_stream *h2_spare;
    unsigned h2_spare_count;
    size_t h2_spare_bodies;     /* bytes of body buffers the spares keep */
    struct h2_mem *h2_mem;      /* nghttp2's small blocks (httpd_h2_mem.c); made on first use */
    struct http_date_cache date; /* the Date value of the current second */
    uint64_t date_next_ms;      /* worker clock (mux_worker_now_ms) when it goes stale */
    uint64_t boundary_state;    /* splitmix64 state of the multipart boundaries */
};

/* The handler table (httpd_conn.c). */
extern const struct mux_handler httpd_handler;

#endif
