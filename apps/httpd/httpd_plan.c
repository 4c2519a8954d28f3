/* httpd_plan.c - the request planner shared by HTTP/1.1 and HTTP/2, and
 * the per-worker state it reads (see httpd_plan.h). */
#include "httpd_plan.h"
#ifdef MUX_HTTPD_H2
#include "httpd_h2.h"
#endif

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http_date.h"
#include "http_path.h"

/* ---- per-worker state ---------------------------------------------- */

struct httpd_worker *httpd_worker_of(struct mux_conn *c)
{
    return mux_worker_data(mux_conn_worker_ctx(c));
}

/* The Date value, rebuilt once per wall-clock second: the worker's clock
 * (read once per loop turn, no syscall) says when the second it was made
 * in is over; only then is the wall clock read. */
static const char *date_now(struct mux_conn *c, struct httpd_worker *hw)
{
    uint64_t now = mux_worker_now_ms(mux_conn_worker_ctx(c));
    if (hw->date.value[0] == '\0' || now >= hw->date_next_ms) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        http_date_cached(&hw->date, ts.tv_sec);
        hw->date_next_ms = now + 1000 - (uint64_t)(ts.tv_nsec / 1000000);
    }
    return hw->date.value;
}

/* A multipart boundary: unpredictable enough that a file cannot be made to
 * contain it, cheap, and per worker (no lock). */
static uint64_t next_boundary(struct httpd_worker *hw)
{
    hw->boundary_state += 0x9e3779b97f4a7c15u; /* splitmix64 */
    uint64_t z = hw->boundary_state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Before the worker serves anything. Without memory for its state the
 * worker refuses its connections (httpd_conn.c); without a file cache it
 * answers 500. */
void httpd_worker_start(struct mux_worker *w)
{
    struct httpd_worker *hw = calloc(1, sizeof(*hw));
    if (hw == NULL) {
        mux_log(MUX_LOG_ERROR, "worker %u: out of memory for its state", mux_worker_index(w));
        return;
    }
    hw->cache = http_cache_new();
    if (hw->cache == NULL)
        mux_log(MUX_LOG_ERROR, "worker %u: out of memory for the file cache",
                mux_worker_index(w));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    hw->boundary_state = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^
                         ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)hw ^
                         mux_worker_index(w);
    mux_worker_set_data(w, hw);
}

void httpd_worker_stop(struct mux_worker *w)
{
    struct httpd_worker *hw = mux_worker_data(w);
    mux_worker_set_data(w, NULL);
    if (hw != NULL) {
        http_cache_free(hw->cache);
#ifdef MUX_HTTPD_H2
        httpd_h2_worker_free(hw);
#endif
    }
    free(hw);
}

/* ---- the decision --------------------------------------------------- */

/* 301 to the directory with a trailing slash, the query kept (a fragment
 * after it dropped). The path comes from the normalised rel, never from
 * the raw target (open redirect). */
static void redirect_dir(const char *target, size_t target_len, const char *rel,
                         struct httpd_decision *d)
{
    const char *query = target, *end = target + target_len;
    while (query < end && *query != '?' && *query != '#')
        query++;
    size_t qlen = query < end && *query == '?' ? (size_t)(end - query) : 0;
    if (qlen > 0) {
        const char *hash = memchr(query, '#', qlen);
        if (hash != NULL)
            qlen = (size_t)(hash - query);
    }
    int n = http_path_location(rel, strlen(rel), query, qlen, d->loc, sizeof d->loc);
    if (n < 0) {
        d->status = -n;
        return;
    }
    d->status = 301;
    d->location = (struct http_span){d->loc, (size_t)n};
}

void httpd_decide(struct mux_conn *c, enum http_method m, const char *target, size_t target_len,
                  struct httpd_decision *d)
{
    d->file = NULL;
    d->location = (struct http_span){NULL, 0};
    if (m == HTTP_METHOD_OTHER) {
        d->status = 405;
        return;
    }
    char rel[HTTP_PATH_MAX + 1];
    int rc = http_path_normalize(target, target_len, rel, sizeof rel);
    if (rc < 0) {
        d->status = -rc;
        return;
    }
    const struct httpd_app *app = mux_conn_app(c);
    struct http_cache *cache = httpd_worker_of(c)->cache;
    if (cache == NULL) { /* out of memory at the worker's start */
        d->status = 500;
        return;
    }
    uint64_t now_sec = mux_worker_now_ms(mux_conn_worker_ctx(c)) / 1000;
    rc = http_cache_get(cache, &app->root, rel, (int64_t)now_sec, &d->file);
    if (rc == -301) {
        d->file = NULL;
        redirect_dir(target, target_len, rel, d);
        return;
    }
    if (rc < 0) {
        d->file = NULL;
        d->status = -rc;
        return;
    }
    d->status = 200;
}

int httpd_plan(struct mux_conn *c, const struct httpd_decision *d, enum http_method m,
               const struct http_request_info *info, char *buf, size_t cap,
               struct http_plan *plan)
{
    struct httpd_worker *hw = httpd_worker_of(c);
    struct http_response_in in = {
        .status = d->status,
        .method = m,
        .keep_alive = info != NULL && info->keep_alive,
        .req = info,
        .location = d->location,
        .date = date_now(c, hw),
    };
    if (d->file != NULL) {
        in.file = &d->file->facts;
        in.boundary = next_boundary(hw);
    }
    return http_plan_response(&in, buf, cap, plan);
}
