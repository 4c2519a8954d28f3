/* httpd_h2.c - HTTP/2 connections of mux-httpd on libnghttp2.
 *
 * nghttp2 does the framing, HPACK, stream states, flow-control windows and
 * the protocol's abuse limits; this file connects it to the framework and
 * to the request planner both HTTP versions share (httpd_plan.h):
 *
 *  - Input: on_read hands the bytes to nghttp2_session_mem_recv. A request
 *    is answered when its HEADERS (with any CONTINUATION) are complete:
 *    httpd_decide + httpd_plan exactly as for HTTP/1.1, and the HTTP/1.1
 *    head the plan writes is turned into HTTP/2 fields (":status", names
 *    lower-cased, Connection dropped), so both versions send the same
 *    fields, statuses, ranges and conditional answers.
 *  - Bodies are never copied out of the file: DATA frames use
 *    NGHTTP2_DATA_FLAG_NO_COPY, and send_data queues the 9-byte frame
 *    header with mux_conn_send and the file range with mux_conn_sendfile on
 *    a dup of the stream's descriptor (the framework owns each dup).
 *    Small bodies (error pages, part heads, files the cache holds in
 *    memory, up to 16 KiB) are copied once into the stream.
 *  - Output is pulled from nghttp2 only while mux_conn_pending() is below
 *    H2_OUT_MAX: the send callbacks answer NGHTTP2_ERR_WOULDBLOCK above it,
 *    reading pauses (so a client that does not read cannot make nghttp2
 *    queue frames for it without bound), and on_writable resumes both.
 *    nghttp2 only produces DATA a stream's and the connection's windows
 *    allow, so a client that opens a small window holds at most that.
 */
#include "httpd_h2.h"
#include "httpd_h2_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "http_cache.h"
#include "http_parse.h"
#include "http_response.h"
#include "httpd.h"
#include "httpd_log.h"
#include "httpd_plan.h"

#define H2_MAX_STREAMS 100        /* SETTINGS_MAX_CONCURRENT_STREAMS */
#define H2_HEADER_LIST_MAX 24576  /* SETTINGS_MAX_HEADER_LIST_SIZE: a request line + 16 KiB */
#define H2_OUT_MAX (64u << 10)    /* pull no more frames while this much is queued */
#define H2_SEGS (2 * HTTP_RANGES_MAX + 2)

/* One piece of a response body: bytes of the stream's mem, or a range of
 * its file. */
struct h2_seg {
    bool file;
    uint64_t off;
    uint64_t len;
};

/* A position in the segments. */
struct h2_cursor {
    unsigned seg;
    uint64_t pos;
};

enum { F_METHOD, F_PATH, F_INM, F_IMS, F_RANGE, F_IF_RANGE, F_COUNT };

/* Spare stream records a worker keeps (struct httpd_worker): at most
 * H2_SPARE_MAX records (~1 KiB each, with header values up to
 * H2_SPARE_HDR) and H2_SPARE_BODIES bytes of body buffers (each at most
 * H2_SPARE_MEM), so at most ~4 MiB per worker. A connection's 100 streams
 * open in one read and close over a few flushes, on 100 connections. */
#define H2_SPARE_MAX 1024
#define H2_SPARE_HDR 1024u
#define H2_SPARE_MEM (16u << 10)
#define H2_SPARE_BODIES (2u << 20)

struct h2_stream {
    struct h2_stream *prev, *next; /* the connection's open streams; next: the spare list */
    int32_t id;
    size_t list_size;            /* header list size so far (RFC 9113 6.5.2) */
    struct {
        size_t off, len;
        unsigned count;
    } field[F_COUNT];
    char *hdr;                   /* the values kept, back to back */
    size_t hdr_len, hdr_cap;
    char *mem;                   /* small body bytes */
    size_t mem_len, mem_cap;
    int fd;                      /* a dup of the file's descriptor, or -1 */
    unsigned nseg;
    struct h2_cursor read, sent; /* framed so far / queued so far */
    struct h2_seg seg[H2_SEGS];  /* last: a recycled record clears what is before it */
};

/* Where the input stands in the frame stream, to time request heads: a
 * frame is under way from its first byte to its last, a header block from
 * its HEADERS to the frame with END_HEADERS. nghttp2 takes every byte we
 * offer, so it cannot tell us; this scan of the frame headers costs a few
 * instructions per frame. */
struct h2_in {
    uint32_t skip;  /* bytes of the preface or of a frame's payload still to come */
    uint8_t hdr[9]; /* a frame header being read */
    uint8_t have;
    bool block;     /* a header block is open (HEADERS without END_HEADERS) */
};

struct h2_conn {
    struct mux_conn *c;
    struct httpd_worker *hw; /* where closed streams' records go */
    nghttp2_session *s;
    bool blocked; /* output above H2_OUT_MAX: reading paused until on_writable */
    bool closing;
    bool armed;   /* the header deadline (mux_conn_set_deadline) is set */
    bool upgraded; /* Upgrade: h2c: stream 1 is answered once the client's preface comes */
    struct h2_in in;
    struct h2_stream *streams; /* every stream with our state (freed by httpd_h2_free) */
};

static const char *const wanted[F_COUNT] = {":method",           ":path", "if-none-match",
                                            "if-modified-since", "range", "if-range"};

int httpd_h2_sniff(const char *data, size_t len)
{
    size_t n = len < H2_PREFACE_LEN ? len : H2_PREFACE_LEN;
    if (memcmp(data, H2_PREFACE, n) != 0)
        return 0;
    return n == H2_PREFACE_LEN ? 1 : -2;
}

/* ---- streams -------------------------------------------------------- */

static void stream_free(struct h2_stream *st)
{
    if (st->fd >= 0)
        close(st->fd);
    free(st->hdr);
    free(st->mem);
    free(st);
}

/* A closed stream's record goes to its worker's spare list (buffers kept,
 * emptied) while the list has room, else it is freed. */
static void stream_recycle(struct httpd_worker *hw, struct h2_stream *st)
{
    if (hw == NULL || hw->h2_spare_count >= H2_SPARE_MAX || st->hdr_cap > H2_SPARE_HDR) {
        stream_free(st);
        return;
    }
    if (st->fd >= 0)
        close(st->fd);
    if (st->mem_cap > H2_SPARE_MEM || hw->h2_spare_bodies + st->mem_cap > H2_SPARE_BODIES) {
        free(st->mem); /* the record is kept, its body buffer is not */
        st->mem = NULL;
        st->mem_cap = 0;
    }
    char *hdr = st->hdr, *mem = st->mem;
    size_t hdr_cap = st->hdr_cap, mem_cap = st->mem_cap;
    memset(st, 0, offsetof(struct h2_stream, seg)); /* the segments are rewritten before use */
    st->hdr = hdr;
    st->hdr_cap = hdr_cap;
    st->mem = mem;
    st->mem_cap = mem_cap;
    st->fd = -1;
    st->next = hw->h2_spare;
    hw->h2_spare = st;
    hw->h2_spare_count++;
    hw->h2_spare_bodies += mem_cap;
}

/* An empty stream record: a spare of the worker, or a new one. */
static struct h2_stream *stream_get(struct httpd_worker *hw)
{
    struct h2_stream *st = hw != NULL ? hw->h2_spare : NULL;
    if (st == NULL) {
        st = calloc(1, sizeof(*st));
        if (st != NULL)
            st->fd = -1;
        return st;
    }
    hw->h2_spare = st->next;
    hw->h2_spare_count--;
    hw->h2_spare_bodies -= st->mem_cap;
    st->next = NULL;
    return st;
}

void httpd_h2_worker_free(struct httpd_worker *hw)
{
    httpd_h2_mem_free(hw->h2_mem);
    hw->h2_mem = NULL;
    while (hw->h2_spare != NULL) {
        struct h2_stream *st = hw->h2_spare;
        hw->h2_spare = st->next;
        stream_free(st);
    }
    hw->h2_spare_count = 0;
    hw->h2_spare_bodies = 0;
}

/* Appends to a growable buffer; false when out of memory. */
static bool grow_append(char **buf, size_t *len, size_t *cap, const void *p, size_t n)
{
    if (*len + n > *cap) {
        size_t ncap = *cap ? *cap : 256;
        while (ncap < *len + n)
            ncap *= 2;
        char *nb = realloc(*buf, ncap);
        if (nb == NULL)
            return false;
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
    return true;
}

static struct http_span field_of(const struct h2_stream *st, int f)
{
    struct http_span s = {NULL, 0};
    if (st->field[f].count > 0) {
        s.ptr = st->hdr + st->field[f].off;
        s.len = st->field[f].len;
    }
    return s;
}

static bool add_seg(struct h2_stream *st, bool file, uint64_t off, uint64_t len)
{
    if (len == 0)
        return true;
    if (st->nseg == H2_SEGS)
        return false;
    st->seg[st->nseg++] = (struct h2_seg){file, off, len};
    return true;
}

static bool add_mem(struct h2_stream *st, const void *p, size_t n)
{
    size_t off = st->mem_len;
    return grow_append(&st->mem, &st->mem_len, &st->mem_cap, p, n) && add_seg(st, false, off, n);
}

/* A range of the file: copied when the cache holds it in memory, else from
 * the stream's own dup of the cache's descriptor. */
static bool add_file(struct h2_stream *st, const struct http_cached *f, uint64_t off, uint64_t len)
{
    if (len == 0)
        return true;
    if (f->data != NULL)
        return add_mem(st, f->data + off, (size_t)len);
    if (st->fd < 0)
        st->fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);
    return st->fd >= 0 && add_seg(st, true, off, len);
}

/* The body the plan calls for, as segments (see queue_body in
 * httpd_conn.c for the HTTP/1.1 twin). */
static bool plan_body(struct h2_stream *st, const struct http_cached *f,
                      const struct http_plan *plan)
{
    if (plan->parts == 0)
        return add_file(st, f, plan->file_offset, plan->file_len);
    char part[HTTP_PART_HEAD_MAX];
    for (unsigned i = 0; i < plan->parts; i++) {
        size_t n = http_part_head(plan, i, part, sizeof part);
        if (n == 0 || !add_mem(st, part, n) ||
            !add_file(st, f, plan->part[i].start, plan->part[i].len))
            return false;
    }
    size_t n = http_parts_tail(plan, part, sizeof part);
    return n > 0 && add_mem(st, part, n);
}

/* ---- responses ------------------------------------------------------ */

#define H2_FIELDS 24

/* The HTTP/1.1 head in buf[0..head) as HTTP/2 fields: ":status", then every
 * field but Connection with its name lower-cased (in place). */
static size_t head_fields(char *buf, size_t head, nghttp2_nv *nv, size_t max)
{
    char *p = memchr(buf, '\n', head), *end = buf + head;
    size_t n = 0;
    nv[n++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)buf + 9, 7, 3, NGHTTP2_NV_FLAG_NONE};
    while (p != NULL && ++p < end && *p != '\r' && n < max) {
        char *colon = memchr(p, ':', (size_t)(end - p));
        char *eol = memchr(p, '\r', (size_t)(end - p));
        if (colon == NULL || eol == NULL || colon > eol)
            break;
        for (char *q = p; q < colon; q++)
            *q = (char)(*q >= 'A' && *q <= 'Z' ? *q + 32 : *q);
        size_t name_len = (size_t)(colon - p);
        char *value = colon + 2;
        if (!(name_len == 10 && memcmp(p, "connection", 10) == 0))
            nv[n++] = (nghttp2_nv){(uint8_t *)p, (uint8_t *)value, name_len,
                                   (size_t)(eol - value), NGHTTP2_NV_FLAG_NONE};
        p = eol + 1;
    }
    return n;
}

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *user);

static void log_stream(struct h2_conn *h, const struct h2_stream *st, int status, uint64_t bytes)
{
    char peer[80];
    struct http_span m = field_of(st, F_METHOD), t = field_of(st, F_PATH);
    struct httpd_log_entry e = {
        .peer = mux_conn_peer_str(h->c, peer, sizeof peer),
        .when = time(NULL),
        .method = m.ptr,
        .method_len = m.len,
        .target = t.ptr,
        .target_len = t.len,
        .major_version = 2,
        .status = status,
        .bytes = bytes,
    };
    if (e.method == NULL || e.target == NULL)
        e.method = NULL;
    httpd_log_write(&e);
}

/* Answers the request of stream st: the same decision and plan as
 * HTTP/1.1, the head sent as HEADERS, the body as DATA. */
static int respond(struct h2_conn *h, struct h2_stream *st)
{
    struct http_span m = field_of(st, F_METHOD), path = field_of(st, F_PATH);
    enum http_method method = HTTP_METHOD_OTHER;
    if (m.len == 3 && memcmp(m.ptr, "GET", 3) == 0)
        method = HTTP_METHOD_GET;
    else if (m.len == 4 && memcmp(m.ptr, "HEAD", 4) == 0)
        method = HTTP_METHOD_HEAD;
    struct http_request_info info = {
        .method = method,
        .minor_version = 1,
        .keep_alive = true,
        .if_none_match = field_of(st, F_INM),
        .if_modified_since = field_of(st, F_IMS),
        .if_range = field_of(st, F_IF_RANGE),
    };
    if (st->field[F_RANGE].count == 1) /* Range is a singleton field */
        info.range = field_of(st, F_RANGE);
    struct httpd_decision d;
    if (path.ptr == NULL) /* nghttp2's checks make this unreachable for GET and HEAD */
        d = (struct httpd_decision){.status = method == HTTP_METHOD_OTHER ? 405 : 400};
    else
        httpd_decide(h->c, method, path.ptr, path.len, &d);
    char buf[HTTPD_HEAD_BUF];
    struct http_plan plan;
    if (httpd_plan(h->c, &d, method, &info, buf, sizeof buf, &plan) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    char *head_end = memmem(buf, plan.head_len, "\r\n\r\n", 4);
    if (head_end == NULL)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    size_t head = (size_t)(head_end - buf) + 4;
    bool ok = true;
    if (head < plan.head_len) /* an error page (never after HEAD) */
        ok = add_mem(st, buf + head, plan.head_len - head);
    else if (d.file != NULL && (plan.file_len > 0 || plan.parts > 0))
        ok = plan_body(st, d.file, &plan);
    if (!ok)
        return nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, st->id,
                                         NGHTTP2_INTERNAL_ERROR);
    nghttp2_nv nv[H2_FIELDS];
    size_t n = head_fields(buf, head, nv, H2_FIELDS);
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = body_read};
    int rc = nghttp2_submit_response(h->s, st->id, nv, n, st->nseg > 0 ? &prd : NULL);
    if (rc == 0 && ((const struct httpd_app *)mux_conn_app(h->c))->opts.access_log) {
        uint64_t bytes = head;
        for (unsigned i = 0; i < st->nseg; i++)
            bytes += st->seg[i].len;
        log_stream(h, st, plan.status, bytes);
    }
    return rc;
}

/* ---- nghttp2 callbacks ---------------------------------------------- */

/* Takes up to max bytes at cursor k (never across a segment). */
static uint64_t take(const struct h2_stream *st, struct h2_cursor *k, uint64_t max,
                     const struct h2_seg **seg, uint64_t *pos)
{
    while (k->seg < st->nseg && k->pos == st->seg[k->seg].len) {
        k->seg++;
        k->pos = 0;
    }
    if (k->seg == st->nseg)
        return 0;
    *seg = &st->seg[k->seg];
    *pos = k->pos;
    uint64_t n = (*seg)->len - k->pos;
    if (n > max)
        n = max;
    k->pos += n;
    return n;
}

static bool at_end(const struct h2_stream *st, const struct h2_cursor *k)
{
    return k->seg == st->nseg || (k->seg + 1 == st->nseg && k->pos == st->seg[k->seg].len);
}

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *user)
{
    struct h2_stream *st = src->ptr;
    const struct h2_seg *seg;
    uint64_t pos;
    uint64_t n = take(st, &st->read, length, &seg, &pos);
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (at_end(st, &st->read))
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static bool over(const struct h2_conn *h)
{
    return mux_conn_pending(h->c) > H2_OUT_MAX;
}

static ssize_t send_frames(nghttp2_session *s, const uint8_t *data, size_t len, int flags,
                           void *user)
{
    struct h2_conn *h = user;
    if (over(h) && !h->closing)
        return NGHTTP2_ERR_WOULDBLOCK;
    return mux_conn_send(h->c, data, len) == 0 ? (ssize_t)len : NGHTTP2_ERR_CALLBACK_FAILURE;
}

/* A DATA frame: its header, the pad length, the bytes (a file range goes
 * as sendfile), the padding. */
static int send_data(nghttp2_session *s, nghttp2_frame *frame, const uint8_t *framehd,
                     size_t length, nghttp2_data_source *src, void *user)
{
    struct h2_conn *h = user;
    struct h2_stream *st = src->ptr;
    if (over(h))
        return NGHTTP2_ERR_WOULDBLOCK;
    size_t pad = frame->data.padlen;
    if (mux_conn_send(h->c, framehd, 9) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (pad > 0) {
        uint8_t b = (uint8_t)(pad - 1);
        if (mux_conn_send(h->c, &b, 1) < 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    while (length > 0) {
        const struct h2_seg *seg;
        uint64_t pos, n = take(st, &st->sent, length, &seg, &pos);
        if (n == 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        if (!seg->file) {
            if (mux_conn_send(h->c, st->mem + seg->off + pos, (size_t)n) < 0)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        } else {
            int fd = fcntl(st->fd, F_DUPFD_CLOEXEC, 0);
            if (fd < 0)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
            if (mux_conn_sendfile(h->c, fd, (off_t)(seg->off + pos), (size_t)n) < 0) {
                close(fd);
                return NGHTTP2_ERR_CALLBACK_FAILURE;
            }
        }
        length -= (size_t)n;
    }
    if (pad > 1) {
        static const uint8_t zeros[256];
        if (mux_conn_send(h->c, zeros, pad - 1) < 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

/* Our state for stream id, in the connection's list. NULL when out of
 * memory. */
static struct h2_stream *stream_new(struct h2_conn *h, int32_t id)
{
    struct h2_stream *st = stream_get(h->hw);
    if (st == NULL)
        return NULL;
    st->id = id;
    if (nghttp2_session_set_stream_user_data(h->s, id, st) != 0) {
        stream_recycle(h->hw, st);
        return NULL;
    }
    st->next = h->streams;
    if (h->streams != NULL)
        h->streams->prev = st;
    h->streams = st;
    return st;
}

static int begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (stream_new(user, frame->hd.stream_id) == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* the stream is reset */
    return 0;
}

/* Keeps the value if it is one of the fields the planner reads (names
 * compared without case: HTTP/2 sends them lower-case, HTTP/1.1 any). */
static int keep_field(struct h2_stream *st, const uint8_t *name, size_t namelen,
                      const uint8_t *value, size_t valuelen)
{
    for (int f = 0; f < F_COUNT; f++) {
        if (strlen(wanted[f]) != namelen || strncasecmp(wanted[f], (const char *)name, namelen))
            continue;
        if (st->field[f].count++ > 0)
            return 0; /* the first one counts, as in HTTP/1.1 */
        st->field[f].off = st->hdr_len;
        st->field[f].len = valuelen;
        if (!grow_append(&st->hdr, &st->hdr_len, &st->hdr_cap, value, valuelen))
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        return 0;
    }
    return 0;
}

/* Keeps the fields the planner reads; a header list over
 * H2_HEADER_LIST_MAX (an HPACK bomb decodes to that) resets the stream. */
static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (st == NULL || frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    st->list_size += namelen + valuelen + 32;
    if (st->list_size > H2_HEADER_LIST_MAX)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return keep_field(st, name, namelen, value, valuelen);
}

static int frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *user)
{
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (st == NULL)
        return 0;
    int rc = respond(user, st);
    return rc == 0 || nghttp2_is_fatal(rc) == 0 ? 0 : rc;
}

static int stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *user)
{
    struct h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    struct h2_conn *h = user;
    if (st != NULL) {
        nghttp2_session_set_stream_user_data(s, id, NULL);
        if (st->prev != NULL)
            st->prev->next = st->next;
        else
            h->streams = st->next;
        if (st->next != NULL)
            st->next->prev = st->prev;
        stream_recycle(h->hw, st);
    }
    return 0;
}

/* ---- the connection ------------------------------------------------- */

/* Follows the frame headers in data[0..len). */
static void in_scan(struct h2_in *in, const uint8_t *p, size_t len)
{
    while (len > 0) {
        if (in->skip > 0) {
            size_t k = in->skip < len ? in->skip : len;
            in->skip -= (uint32_t)k;
            p += k;
            len -= k;
            continue;
        }
        size_t k = sizeof in->hdr - in->have < len ? sizeof in->hdr - in->have : len;
        memcpy(in->hdr + in->have, p, k);
        in->have += (uint8_t)k;
        p += k;
        len -= k;
        if (in->have < sizeof in->hdr)
            return;
        in->have = 0;
        uint8_t type = in->hdr[3], flags = in->hdr[4];
        if (type == NGHTTP2_HEADERS || type == NGHTTP2_CONTINUATION)
            in->block = !(flags & NGHTTP2_FLAG_END_HEADERS);
        in->skip = (uint32_t)in->hdr[0] << 16 | (uint32_t)in->hdr[1] << 8 | in->hdr[2];
    }
}

/* The header deadline runs while a frame or a header block is under way
 * (from its first byte: a client trickling a HEADERS frame, or
 * CONTINUATIONs that never end the block, cannot push it back) and while
 * no bytes are being withheld from us by our own pause (blocked: then the
 * idle timeout, which output progress restarts, bounds the connection). */
static void time_heads(struct h2_conn *h)
{
    const struct h2_in *in = &h->in;
    bool pending = !h->blocked && !h->closing && (in->skip > 0 || in->have > 0 || in->block);
    if (pending == h->armed)
        return;
    h->armed = pending;
    const struct httpd_app *app = mux_conn_app(h->c);
    mux_conn_set_deadline(h->c, pending ? app->opts.header_timeout_ms : 0);
}

/* Pulls frames from nghttp2 into the output queue while it takes them;
 * above H2_OUT_MAX reading pauses until on_writable. Closes the
 * connection once nghttp2 wants neither to read nor to write (after a
 * GOAWAY, ours or the peer's). */
static void pump(struct h2_conn *h)
{
    int rc = nghttp2_session_send(h->s);
    if (rc != 0) {
        mux_conn_abort(h->c); /* a send callback failed: the stream of frames is broken */
        h->closing = true;
        return;
    }
    if (nghttp2_session_want_write(h->s) && over(h)) {
        if (!h->blocked) {
            h->blocked = true;
            mux_conn_pause_read(h->c);
            mux_conn_want_writable(h->c, true);
            time_heads(h);
        }
        return;
    }
    if (!nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s)) {
        h->closing = true;
        mux_conn_close(h->c);
    }
}

/* A protocol error, a flood or an abuse limit: GOAWAY (nghttp2 has queued
 * one for most errors; for the others, ENHANCE_YOUR_CALM), then close
 * once it is flushed. */
static void fail(struct h2_conn *h, int err)
{
    uint32_t code = err == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR;
    nghttp2_session_terminate_session(h->s, code);
    h->closing = true; /* the GOAWAY goes out even above H2_OUT_MAX */
    nghttp2_session_send(h->s);
    mux_conn_close(h->c);
}

/* The session with our SETTINGS queued (not sent yet). */
static struct h2_conn *session_new(struct mux_conn *c, bool armed)
{
    struct h2_conn *h = calloc(1, sizeof(*h));
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;
    if (h == NULL || nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0)
        goto fail;
    h->c = c;
    h->hw = httpd_worker_of(c);
    h->armed = armed;
    h->in.skip = H2_PREFACE_LEN; /* nghttp2 checks it; we only count it */
    nghttp2_session_callbacks_set_send_callback(cb, send_frames);
    nghttp2_session_callbacks_set_send_data_callback(cb, send_data);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, stream_close);
    /* The abuse limits nghttp2 1.52 (Debian, with the 2023/2024 fixes) has. */
    nghttp2_option_set_max_settings(opt, 32);            /* entries in one SETTINGS */
    nghttp2_option_set_max_outbound_ack(opt, 1000);      /* queued PING/SETTINGS ACKs */
    nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33); /* Rapid Reset */
    nghttp2_option_set_max_continuations(opt, 8);        /* CONTINUATION flood */
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    nghttp2_option_set_max_send_header_block_length(opt, 64u << 10);
    if (h->hw != NULL && h->hw->h2_mem == NULL)
        h->hw->h2_mem = httpd_h2_mem_new(); /* NULL: malloc, as without it */
    nghttp2_mem *mem = httpd_h2_mem_of(h->hw != NULL ? h->hw->h2_mem : NULL);
    if (nghttp2_session_server_new3(&h->s, cb, h, opt, mem) != 0)
        goto fail;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_MAX_STREAMS},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, H2_HEADER_LIST_MAX},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    if (nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0)
        goto fail;
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    return h;
fail:
    if (h != NULL && h->s != NULL)
        nghttp2_session_del(h->s);
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    free(h);
    return NULL;
}

struct h2_conn *httpd_h2_new(struct mux_conn *c, bool armed)
{
    struct h2_conn *h = session_new(c, armed);
    if (h != NULL)
        pump(h); /* our SETTINGS first: the server preface needs no client bytes */
    return h;
}

/* ---- Upgrade: h2c (RFC 7540 3.2) ------------------------------------ */

/* base64url (RFC 4648 5) without padding, or with it: bytes written to
 * out, or -1 for a byte outside the alphabet, a bad length or no room. */
static ssize_t b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
    while (n > 0 && in[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return -1;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        int v = ch >= 'A' && ch <= 'Z'   ? ch - 'A'
                : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26
                : ch >= '0' && ch <= '9' ? ch - '0' + 52
                : ch == '-'              ? 62
                : ch == '_'              ? 63
                                         : -1;
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (w == cap)
                return -1;
            out[w++] = (uint8_t)(acc >> bits);
        }
    }
    return (ssize_t)w;
}

bool httpd_h2_upgrade_wanted(const struct http_request *req, const struct http_request_info *info)
{
    if (req->minor_version != 1 || info->body_len > 0 || info->chunked)
        return false; /* 1.0 ignores Upgrade; a body would have to be read first */
    const struct http_header *up = http_header_find(req, "upgrade");
    if (up == NULL || !http_token_list_has(up->value, up->value_len, "h2c"))
        return false;
    bool upgrade = false, settings = false;
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http_header *f = &req->headers[i];
        if (f->name_len != 10 || strncasecmp(f->name, "connection", 10) != 0)
            continue;
        upgrade |= http_token_list_has(f->value, f->value_len, "upgrade");
        settings |= http_token_list_has(f->value, f->value_len, "http2-settings");
    }
    /* Exactly one HTTP2-Settings, named as a connection option (3.2.1). */
    return upgrade && settings && http_header_count(req, "http2-settings") == 1;
}

/* Stream 1 carries the upgraded request: its fields as HTTP/2 would have
 * sent them; answered as any stream once the client speaks HTTP/2 (a
 * client such as curl keeps only 32 KiB that come right after the 101). */
static int upgrade_stream(struct h2_conn *h, const struct http_request *req)
{
    struct h2_stream *st = stream_new(h, 1);
    if (st == NULL)
        return NGHTTP2_ERR_NOMEM;
    if (keep_field(st, (const uint8_t *)":method", 7, (const uint8_t *)req->method,
                   req->method_len) != 0 ||
        keep_field(st, (const uint8_t *)":path", 5, (const uint8_t *)req->target,
                   req->target_len) != 0)
        return NGHTTP2_ERR_NOMEM;
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http_header *f = &req->headers[i];
        if (keep_field(st, (const uint8_t *)f->name, f->name_len, (const uint8_t *)f->value,
                       f->value_len) != 0)
            return NGHTTP2_ERR_NOMEM;
    }
    h->upgraded = true;
    return 0;
}

/* The client's preface has come after an upgrade: stream 1's answer (if
 * the client did not reset the stream meanwhile). */
static int answer_upgrade(struct h2_conn *h)
{
    h->upgraded = false;
    struct h2_stream *st = nghttp2_session_get_stream_user_data(h->s, 1);
    int rc = st != NULL ? respond(h, st) : 0;
    return rc == 0 || nghttp2_is_fatal(rc) == 0 ? 0 : rc;
}

int httpd_h2_upgrade(struct mux_conn *c, const struct http_request *req, struct h2_conn **out)
{
    static const char switching[] = "HTTP/1.1 101 Switching Protocols\r\n"
                                    "Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
    const struct http_header *f = http_header_find(req, "http2-settings");
    uint8_t payload[6 * 32]; /* max_settings entries */
    ssize_t n = b64url_decode(f->value, f->value_len, payload, sizeof payload);
    if (n < 0 || n % 6 != 0)
        return 0; /* not a SETTINGS payload: no upgrade (3.2.1), HTTP/1.1 it is */
    struct h2_conn *h = session_new(c, false);
    if (h == NULL)
        return -ENOMEM;
    int rc = nghttp2_session_upgrade2(h->s, payload, (size_t)n, req->method_id == HTTP_METHOD_HEAD,
                                      NULL);
    if (rc != 0) {
        httpd_h2_free(h);
        return rc == NGHTTP2_ERR_NOMEM ? -ENOMEM : 0; /* bad values: HTTP/1.1 */
    }
    if (mux_conn_send(c, switching, sizeof switching - 1) < 0 || upgrade_stream(h, req) != 0) {
        httpd_h2_free(h);
        return -ENOMEM;
    }
    pump(h); /* our SETTINGS and the ACK of the client's */
    *out = h;
    return 1;
}

size_t httpd_h2_read(struct h2_conn *h, const char *data, size_t len)
{
    if (h->closing)
        return len;
    if (h->blocked)
        return 0; /* paused: on_writable resumes */
    ssize_t n = nghttp2_session_mem_recv(h->s, (const uint8_t *)data, len);
    if (n >= 0 && h->upgraded)
        n = answer_upgrade(h);
    if (n < 0) {
        fail(h, (int)n);
        return len;
    }
    in_scan(&h->in, (const uint8_t *)data, len);
    pump(h);
    time_heads(h);
    return len;
}

void httpd_h2_writable(struct h2_conn *h)
{
    if (!h->blocked || h->closing)
        return;
    h->blocked = false;
    mux_conn_want_writable(h->c, false);
    mux_conn_resume_read(h->c);
    pump(h);
    time_heads(h);
}

void httpd_h2_free(struct h2_conn *h)
{
    if (h == NULL)
        return;
    nghttp2_session_del(h->s); /* runs no callback */
    while (h->streams != NULL) {
        struct h2_stream *st = h->streams;
        h->streams = st->next;
        stream_recycle(h->hw, st);
    }
    free(h);
}
