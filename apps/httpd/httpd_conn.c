/* httpd_conn.c - mux-httpd's handler: the request pipeline of docs/httpd.md
 * on top of the framework's callbacks.
 *
 * Per connection it keeps only a few words (struct hconn): no buffer. The
 * framework holds unconsumed input and re-offers it, so a partial head is
 * simply not consumed (the parser is stateless), and each complete request
 * is answered in order before the next one is looked at. A response is its
 * head (copied into the output queue) plus, for a file, a sendfile range
 * whose fd the framework takes over. A big body raises the queue above
 * write_high_water, which pauses delivery: pipelined requests wait behind it.
 *
 * Per worker (struct httpd_worker, the worker's user data): the open-file
 * cache, the Date value of the current second and the multipart-boundary
 * generator, made in on_worker_start and freed in on_worker_stop.
 *
 * Timeouts, both the framework's:
 *   head    from the first byte of a request head (or the accept) until the
 *           head is complete: header_timeout_ms on mux_conn_set_deadline,
 *           which trickling bytes cannot push back (slowloris);
 *   idle    keepalive_timeout_ms on mux_conn_set_timeout, set once at the
 *           accept and restarted by the framework on any read or write
 *           progress (a slow download keeps it alive). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http_cache.h"
#include "http_date.h"
#include "http_parse.h"
#include "http_path.h"
#include "http_response.h"
#include "httpd.h"
#include "httpd_log.h"
#include "httpd_plan.h"
#ifdef MUX_HTTPD_H2
#include "httpd_h2.h"
#endif

enum tmode { TM_HEAD, TM_IDLE };

/* Bodies up to this many bytes are copied into the output queue (pread)
 * instead of queued as a sendfile range: no descriptor stays open for them,
 * and their bytes count fully against the write water marks. */
#define SMALL_BODY (16u << 10)

/* Parsing stops while this many file ranges (each holding a descriptor) are
 * queued, and resumes from on_writable. One request adds at most
 * HTTP_RANGES_MAX, so a connection holds at most FILES_PAUSE - 1 +
 * HTTP_RANGES_MAX descriptors besides its socket. */
#define FILES_PAUSE 8
#define FILES_RING 32 /* >= FILES_PAUSE - 1 + HTTP_RANGES_MAX */

/* Owned by the connection: allocated in on_accept, freed in on_close. */
struct hconn {
    uint64_t skip;        /* request body bytes still to discard */
    /* A chunked body spanning reads: its decoder, and a copy of its
     * request's head (answered once the body is complete). */
    struct http_chunked chunk;
    char *held;
    size_t held_len;
    struct h2_conn *h2;   /* the connection speaks HTTP/2 (httpd_h2.c) */
    bool http1;           /* HTTP/1.1 for good: ALPN chose it, or a head was parsed */
    uint32_t last_len;    /* bytes offered at the previous incomplete parse */
    uint8_t mode;         /* enum tmode */
    bool paused;          /* parsing stopped: too many file ranges queued */
    bool grace;           /* resumed with them still queued: one more request */
    /* Queued file ranges, as the positions in the stream of every byte
     * this connection queued (queued) where each one ends: a range is
     * still queued while its end is past what was sent, which is queued
     * minus mux_conn_pending(). */
    uint64_t queued;
    uint64_t file_end[FILES_RING];
    unsigned file_head, file_count;
};

/* One request and what it is answered with. */
struct exchange {
    const struct http_request *req;       /* NULL when the head did not parse */
    enum http_method method;              /* HEAD: no body, whatever the status */
    const struct http_request_info *info; /* NULL when not checked */
    int status;
    const struct http_cached *file;       /* status 200: from the worker's cache */
    struct http_span location;            /* 301 */
};


static const struct httpd_opts *opts_of(struct mux_conn *c)
{
    return &((const struct httpd_app *)mux_conn_app(c))->opts;
}

/* ---- timeouts ------------------------------------------------------- */

/* A request head is under way: the header deadline runs from its first
 * byte, and later bytes do not push it back (mux_conn_set_deadline). */
static void head_pending(struct mux_conn *c, struct hconn *h)
{
    if (h->mode == TM_HEAD)
        return;
    h->mode = TM_HEAD;
    mux_conn_set_deadline(c, opts_of(c)->header_timeout_ms); /* 0: none */
}

/* The head is complete: only the keep-alive timeout runs. Set only on a
 * change, so a busy keep-alive connection costs no timer operation per
 * request. */
static void go_idle(struct mux_conn *c, struct hconn *h)
{
    if (h->mode == TM_IDLE)
        return;
    h->mode = TM_IDLE;
    mux_conn_set_deadline(c, 0);
}

/* ---- answering ------------------------------------------------------ */

static void log_exchange(struct mux_conn *c, const struct exchange *x, int status,
                         uint64_t bytes)
{
    char peer[80];
    struct httpd_log_entry e = {
        .peer = mux_conn_peer_str(c, peer, sizeof peer),
        .when = time(NULL),
        .status = status,
        .bytes = bytes,
    };
    if (x->req != NULL) {
        e.method = x->req->method;
        e.method_len = x->req->method_len;
        e.target = x->req->target;
        e.target_len = x->req->target_len;
        e.minor_version = x->req->minor_version;
    }
    httpd_log_write(&e);
}

/* ---- output accounting -------------------------------------------- */

static bool queue_bytes(struct mux_conn *c, struct hconn *h, const void *p, size_t n)
{
    if (mux_conn_send(c, p, n) < 0)
        return false;
    h->queued += n;
    return true;
}

/* Drops the file ranges the framework has finished sending. */
static unsigned files_queued(struct mux_conn *c, struct hconn *h)
{
    /* Should the framework ever report more pending than bytes (a cost per
     * file range), count nothing as sent yet: conservative, and exact
     * again once the queue is empty. */
    uint64_t pending = mux_conn_pending(c);
    uint64_t sent = pending <= h->queued ? h->queued - pending : 0;
    while (h->file_count > 0 && h->file_end[h->file_head] <= sent) {
        h->file_head = (h->file_head + 1) % FILES_RING;
        h->file_count--;
    }
    return h->file_count;
}

/* Queues a sendfile range of fd (which the framework then owns). */
static bool queue_file(struct mux_conn *c, struct hconn *h, int fd, uint64_t off, uint64_t len)
{
    if (mux_conn_sendfile(c, fd, (off_t)off, len) < 0)
        return false;
    h->queued += len;
    if (h->file_count == FILES_RING) {
        /* Only reachable with write_low_water above FILES_PAUSE * SMALL_BODY
         * (see httpd_writable): forget the oldest; the water marks still
         * bound the queue. */
        h->file_head = (h->file_head + 1) % FILES_RING;
        h->file_count--;
    }
    h->file_end[(h->file_head + h->file_count) % FILES_RING] = h->queued;
    h->file_count++;
    return true;
}

/* Queues len bytes of the file at off: from the cached content, copied
 * with pread when small, else as a sendfile range of a duplicate of the
 * cache's descriptor. */
static bool queue_range(struct mux_conn *c, struct hconn *h, const struct http_cached *f,
                        uint64_t off, uint64_t len)
{
    if (f->data != NULL)
        return queue_bytes(c, h, f->data + off, len);
    if (len <= SMALL_BODY) {
        char buf[SMALL_BODY];
        ssize_t n = pread(f->fd, buf, len, (off_t)off);
        return n == (ssize_t)len && queue_bytes(c, h, buf, len);
    }
    int dup_fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0)
        return false;
    if (queue_file(c, h, dup_fd, off, len))
        return true;
    close(dup_fd);
    return false;
}

/* The body the plan calls for: one range, or a multipart/byteranges body
 * (every part head and range, then the tail). */
static bool queue_body(struct mux_conn *c, struct hconn *h, const struct http_cached *f,
                       const struct http_plan *plan)
{
    if (plan->parts == 0)
        return plan->file_len == 0 || queue_range(c, h, f, plan->file_offset, plan->file_len);
    char part[HTTP_PART_HEAD_MAX];
    for (unsigned i = 0; i < plan->parts; i++) {
        size_t n = http_part_head(plan, i, part, sizeof part);
        if (n == 0 || !queue_bytes(c, h, part, n) ||
            !queue_range(c, h, f, plan->part[i].start, plan->part[i].len))
            return false;
    }
    size_t n = http_parts_tail(plan, part, sizeof part);
    return n > 0 && queue_bytes(c, h, part, n);
}

/* Queues the response, logs it, and closes the
 * connection after the flush when the response says so. Returns false when
 * the connection is closing. */
static bool respond(struct mux_conn *c, const struct exchange *x)
{
    struct hconn *h = mux_conn_data(c);
    struct httpd_decision d = {.status = x->status, .file = x->file, .location = x->location};
    char buf[HTTPD_HEAD_BUF];
    struct http_plan plan;
    if (httpd_plan(c, &d, x->method, x->info, buf, sizeof buf, &plan) < 0) {
        mux_conn_abort(c); /* cannot happen with HEAD_BUF; never send half a head */
        return false;
    }
    uint64_t before = h->queued;
    bool ok = queue_bytes(c, h, buf, plan.head_len);
    if (ok && x->file != NULL)
        ok = queue_body(c, h, x->file, &plan);
    if (!ok) {
        mux_conn_abort(c); /* the head promised a body that cannot follow */
        return false;
    }
    if (opts_of(c)->access_log)
        log_exchange(c, x, plan.status, h->queued - before);
    if (!plan.keep_alive) {
        mux_conn_close(c);
        return false;
    }
    return true;
}

/* Steps 5-9 of the pipeline: method, path, file (the planner shared with
 * HTTP/2), response. */
static bool serve(struct mux_conn *c, struct exchange *x)
{
    struct httpd_decision d;
    httpd_decide(c, x->method, x->req->target, x->req->target_len, &d);
    x->status = d.status;
    x->file = d.file;
    x->location = d.location;
    return respond(c, x);
}

/* ---- chunked request bodies ----------------------------------------- */

/* The decoder's verdict on the body of x: complete (answer x), or broken
 * (400 or 413 instead, and close). Returns false when closing. */
static bool chunked_done(struct mux_conn *c, struct exchange *x, int rc)
{
    if (rc < 0) {
        x->status = -rc;
        respond(c, x);
        return false;
    }
    return serve(c, x);
}

/* A chunked body follows the head of x. Decoded (and dropped) as far as it
 * is here; if it is all here, x is answered at once. Otherwise the head is
 * copied (at most the parser's limits, ~24 KiB) and the answer waits for
 * the body's end (continue_chunked), so a malformed body still gets its
 * 400 and nothing after it is read as a request. */
static size_t start_chunked(struct mux_conn *c, struct hconn *h, struct exchange *x,
                            const char *data, size_t head_len, size_t len)
{
    size_t used;
    http_chunked_init(&h->chunk);
    int rc = http_chunked_decode(&h->chunk, data + head_len, len - head_len, opts_of(c)->max_body,
                                 &used);
    if (rc != HTTP_PARSE_INCOMPLETE) {
        if (!chunked_done(c, x, rc))
            return len;
        go_idle(c, h);
        return head_len + used;
    }
    h->held = malloc(head_len);
    if (h->held == NULL) {
        x->status = 500;
        respond(c, x);
        return len;
    }
    memcpy(h->held, data, head_len);
    h->held_len = head_len;
    go_idle(c, h); /* the body runs on the keep-alive timeout, as a Content-Length one */
    return head_len + used;
}

/* More of a held request's chunked body. */
static size_t continue_chunked(struct mux_conn *c, struct hconn *h, const char *data, size_t len)
{
    size_t used;
    int rc = http_chunked_decode(&h->chunk, data, len, opts_of(c)->max_body, &used);
    if (rc == HTTP_PARSE_INCOMPLETE)
        return used;
    struct http_header hdrs[HTTP_MAX_HEADERS];
    struct http_request req = {.headers = hdrs, .max_headers = HTTP_MAX_HEADERS};
    struct http_request_info info;
    struct exchange x = {.req = &req, .info = &info};
    /* The copy parsed and passed the checks before: it does again. */
    if (http_parse_request(h->held, h->held_len, &req, 0, NULL) != (int)h->held_len ||
        http_request_check(&req, &info) != 0) {
        mux_conn_abort(c);
        return len;
    }
    x.method = req.method_id;
    bool open = chunked_done(c, &x, rc);
    free(h->held);
    h->held = NULL;
    return open ? used : len;
}

#ifdef MUX_HTTPD_H2
/* Upgrade: h2c asked for (httpd_h2_upgrade_wanted): on a cleartext
 * connection, 101 and HTTP/2 from the byte after this head on (the client
 * preface comes next), the request answered as stream 1; over TLS (ALPN
 * chose a protocol) or with a bad HTTP2-Settings, answered as HTTP/1.1. */
static size_t upgrade_h2(struct mux_conn *c, struct hconn *h, const struct http_request *req,
                         struct exchange *x, size_t head_len, size_t len)
{
    size_t alpn_len;
    int rc = 0;
    go_idle(c, h);
    if (mux_conn_alpn(c, &alpn_len) == NULL)
        rc = httpd_h2_upgrade(c, req, &h->h2);
    if (rc < 0) {
        mux_conn_abort(c);
        return len;
    }
    if (rc > 0)
        return head_len;
    return serve(c, x) ? head_len : len;
}
#endif

/* A complete head of head_len bytes at data. Returns what on_read returns. */
static size_t handle_request(struct mux_conn *c, struct hconn *h, const struct http_request *req,
                             const char *data, size_t head_len, size_t len)
{
    struct http_request_info info;
    struct exchange x = {.req = req, .method = req->method_id, .info = &info};
    int rc = http_request_check(req, &info);
    if (rc < 0) {
        x.status = -rc; /* 400 or 501: closes */
        respond(c, &x);
        return len;
    }
    if (info.body_len > opts_of(c)->max_body) {
        x.status = 413;
        respond(c, &x);
        return len;
    }
#ifdef MUX_HTTPD_H2
    if (httpd_h2_upgrade_wanted(req, &info))
        return upgrade_h2(c, h, req, &x, head_len, len);
#endif
    if (info.chunked)
        return start_chunked(c, h, &x, data, head_len, len);
    /* A body (GET may carry one) is read and dropped; start on it now. */
    size_t avail = len - head_len;
    size_t now = info.body_len < avail ? (size_t)info.body_len : avail;
    h->skip = info.body_len - now;
    if (!serve(c, &x))
        return len;
    go_idle(c, h);
    return head_len + now;
}

/* ---- the callbacks -------------------------------------------------- */

/* What ALPN chose decides the protocol: "h2" is HTTP/2 from the first
 * byte (our SETTINGS go at once; a client that sends anything but the
 * preface gets nghttp2's GOAWAY), "http/1.1" is HTTP/1.1 only (a preface
 * is answered 505 like any HTTP/2.0 request line). Without ALPN (plain
 * TCP, or a TLS client that offered none) the first bytes decide: the
 * preface is h2c with prior knowledge. Returns what on_accept returns. */
static int choose_protocol(struct mux_conn *c, struct hconn *h)
{
    size_t len;
    const char *alpn = mux_conn_alpn(c, &len);
    if (alpn == NULL)
        return 0;
#ifdef MUX_HTTPD_H2
    if (len == 2 && memcmp(alpn, "h2", 2) == 0) {
        h->h2 = httpd_h2_new(c, true);
        return h->h2 != NULL ? 0 : ENOMEM;
    }
#endif
    h->http1 = true;
    return 0;
}

static int httpd_accept(struct mux_conn *c)
{
    if (httpd_worker_of(c) == NULL)
        return ENOMEM; /* the worker has no state (httpd_worker_start) */
    struct hconn *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return ENOMEM;
    mux_conn_set_data(c, h);
    mux_conn_set_timeout(c, opts_of(c)->keepalive_timeout_ms);
    h->mode = TM_IDLE;
    head_pending(c, h); /* the first request is expected now */
    return choose_protocol(c, h);
}

#ifdef MUX_HTTPD_H2
/* The first bytes are the HTTP/2 connection preface (h2c with prior
 * knowledge): from here on the connection is HTTP/2. */
static size_t start_h2(struct mux_conn *c, struct hconn *h, const char *data, size_t len)
{
    h->h2 = httpd_h2_new(c, h->mode == TM_HEAD); /* it times the heads from here on */
    if (h->h2 == NULL) {
        mux_conn_abort(c);
        return len;
    }
    return httpd_h2_read(h->h2, data, len);
}
#endif

static size_t httpd_read(struct mux_conn *c, const char *data, size_t len)
{
    struct hconn *h = mux_conn_data(c);
#ifdef MUX_HTTPD_H2
    if (h->h2 != NULL)
        return httpd_h2_read(h->h2, data, len);
    if (!h->http1) {
        int p = httpd_h2_sniff(data, len);
        if (p == 1)
            return start_h2(c, h, data, len);
        if (p == HTTP_PARSE_INCOMPLETE) {
            head_pending(c, h);
            return 0;
        }
    }
#endif
    if (h->skip > 0) {
        size_t n = h->skip < len ? (size_t)h->skip : len;
        h->skip -= n;
        return n;
    }
    if (h->held != NULL)
        return continue_chunked(c, h, data, len);
    if (files_queued(c, h) >= FILES_PAUSE && !h->grace) {
        /* A client that pipelines and does not read: answer no more until
         * the queued files drain (on_writable), so it cannot pin fds. */
        h->paused = true;
        mux_conn_pause_read(c);
        mux_conn_want_writable(c, true);
        return 0;
    }
    struct http_header hdrs[HTTP_MAX_HEADERS];
    struct http_request req = {.headers = hdrs, .max_headers = HTTP_MAX_HEADERS};
    size_t hint = h->last_len <= len ? h->last_len : 0;
    int rc = http_parse_request(data, len, &req, hint, NULL);
    if (rc == HTTP_PARSE_INCOMPLETE) {
        h->last_len = len > UINT32_MAX ? 0 : (uint32_t)len;
        head_pending(c, h);
        return 0;
    }
    h->last_len = 0;
    h->grace = false;
    h->http1 = true;
    if (rc < 0) {
        /* 400, 414, 431, 505: closes. The method is known once its token
         * is: a HEAD gets the status and its Content-Length, no page. */
        struct exchange x = {.status = http_parse_status(rc), .method = req.method_id};
        respond(c, &x);
        return len;
    }
    return handle_request(c, h, &req, data, (size_t)rc, len);
}

/* The output drained to write_low_water. Each queued file range is more
 * than SMALL_BODY bytes, so with the default water marks fewer than
 * FILES_PAUSE remain by now. With a low-water mark above FILES_PAUSE *
 * SMALL_BODY some may remain: one more request is then answered before the
 * next check, so the connection never stalls and the water marks still
 * bound what it holds. */
static void httpd_writable(struct mux_conn *c)
{
    struct hconn *h = mux_conn_data(c);
#ifdef MUX_HTTPD_H2
    if (h->h2 != NULL) {
        httpd_h2_writable(h->h2);
        return;
    }
#endif
    if (!h->paused)
        return;
    h->grace = files_queued(c, h) >= FILES_PAUSE;
    h->paused = false;
    mux_conn_want_writable(c, false);
    mux_conn_resume_read(c);
}

static void httpd_close(struct mux_conn *c, int err)
{
    struct hconn *h = mux_conn_data(c);
    if (h != NULL) {
        free(h->held);
#ifdef MUX_HTTPD_H2
        httpd_h2_free(h->h2);
#endif
    }
    free(h);
    mux_conn_set_data(c, NULL);
}

const struct mux_handler httpd_handler = {
    .name = "httpd",
    .on_accept = httpd_accept,
    .on_read = httpd_read,
    .on_writable = httpd_writable,
    .on_close = httpd_close,
    .on_worker_start = httpd_worker_start,
    .on_worker_stop = httpd_worker_stop,
};
