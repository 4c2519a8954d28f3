/* http_response.c - response planning and head formatting (see
 * http_response.h). The head is built with a bounded appender that records
 * overflow instead of writing past the buffer, so every path checks the
 * capacity once, at the end.
 */
#include "http_response.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "http_date.h"

struct out {
    char *buf;
    size_t cap;
    size_t len;
    bool overflow;
};

static void add(struct out *o, const char *s, size_t n)
{
    if (o->overflow || n > o->cap - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void adds(struct out *o, const char *s)
{
    add(o, s, strlen(s));
}

/* Decimal digits by hand: snprintf showed up in the profile of small
 * responses (three numbers per head). */
static void addu(struct out *o, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    add(o, tmp + i, sizeof tmp - i);
}

static void header(struct out *o, const char *name, const char *value, size_t n)
{
    adds(o, name);
    add(o, ": ", 2);
    add(o, value, n);
    add(o, "\r\n", 2);
}

static const struct {
    int status;
    const char *reason;
} reasons[] = {
    {200, "OK"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {304, "Not Modified"},
    {400, "Bad Request"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {416, "Range Not Satisfiable"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {503, "Service Unavailable"},
    {505, "HTTP Version Not Supported"},
};

const char *http_reason(int status)
{
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        if (reasons[i].status == status)
            return reasons[i].reason;
    }
    return "Unknown";
}

bool http_status_closes(int status)
{
    switch (status) {
    case 400:
    case 408:
    case 413:
    case 414:
    case 431:
    case 500:
    case 501:
    case 505:
        return true;
    default:
        return false;
    }
}

size_t http_etag(uint64_t size, time_t mtime, char out[HTTP_ETAG_MAX])
{
    int n = snprintf(out, HTTP_ETAG_MAX, "\"%" PRIx64 "-%" PRIx64 "\"", (uint64_t)mtime, size);
    return (size_t)n;
}

/* ---- entity-tag lists ----------------------------------------------- */

struct tag {
    const char *opaque; /* between the quotes */
    size_t len;
    bool weak;
};

/* entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, at v[*i]. */
static bool read_tag(const char *v, size_t n, size_t *i, struct tag *t)
{
    t->weak = *i + 1 < n && v[*i] == 'W' && v[*i + 1] == '/';
    if (t->weak)
        *i += 2;
    if (*i >= n || v[*i] != '"')
        return false;
    size_t start = ++*i;
    while (*i < n && v[*i] != '"')
        ++*i;
    if (*i >= n)
        return false;
    t->opaque = v + start;
    t->len = *i - start;
    ++*i;
    return true;
}

static bool tags_equal(const struct tag *a, const struct tag *b, bool strong)
{
    if (strong && (a->weak || b->weak))
        return false;
    return a->len == b->len && memcmp(a->opaque, b->opaque, a->len) == 0;
}

static bool skip_sep(const char *v, size_t n, size_t *i)
{
    while (*i < n && (v[*i] == ' ' || v[*i] == '\t' || v[*i] == ','))
        ++*i;
    return *i < n;
}

bool http_etag_list_match(const char *v, size_t n, const char *etag, size_t len, bool strong)
{
    struct tag ours;
    size_t i = 0;
    if (!read_tag(etag, len, &i, &ours))
        return false;
    i = 0;
    if (skip_sep(v, n, &i) && v[i] == '*') {
        size_t j = i + 1;
        return !skip_sep(v, n, &j); /* "*" alone */
    }
    while (skip_sep(v, n, &i)) {
        struct tag t;
        if (!read_tag(v, n, &i, &t))
            return false;
        if (tags_equal(&t, &ours, strong))
            return true;
        if (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            return false;
    }
    return false;
}

/* ---- the decision --------------------------------------------------- */

struct validators {
    char etag[HTTP_ETAG_MAX];
    size_t etag_len;
    char last_modified[HTTP_DATE_LEN + 1];
};

static bool not_modified(const struct http_request_info *req, const struct http_file_facts *f,
                         const struct validators *val, time_t now)
{
    if (req->if_none_match.ptr != NULL)
        return http_etag_list_match(req->if_none_match.ptr, req->if_none_match.len, val->etag,
                                    val->etag_len, false);
    time_t since;
    if (req->if_modified_since.ptr != NULL &&
        http_date_parse(req->if_modified_since.ptr, req->if_modified_since.len, &since) == 0 &&
        since <= now) /* a date in the future is invalid: ignored */
        return f->mtime <= since;
    return false;
}

/* If-Range: an entity-tag compared strongly, or a date equal to ours. */
static bool if_range_holds(const struct http_span *v, const struct validators *val, time_t mtime)
{
    if (v->ptr == NULL)
        return true;
    if (v->len > 0 && (v->ptr[0] == '"' || v->ptr[0] == 'W')) {
        size_t i = 0;
        struct tag t, ours;
        if (!read_tag(v->ptr, v->len, &i, &t) || i != v->len)
            return false;
        i = 0;
        if (!read_tag(val->etag, val->etag_len, &i, &ours))
            return false; /* our own ETag always parses; this keeps -O3 sure of it */
        return tags_equal(&t, &ours, true);
    }
    time_t when;
    return http_date_parse(v->ptr, v->len, &when) == 0 && when == mtime;
}

/* Status 200 for a file becomes 200, 206, 304 or 416; *ranges is set
 * (the whole file unless 206). */
static int decide_file_status(const struct http_response_in *in, const struct validators *val,
                              struct http_ranges *ranges)
{
    const struct http_request_info *req = in->req;
    const struct http_file_facts *f = in->file;

    ranges->count = 1;
    ranges->r[0] = (struct http_range){0, f->size};
    if (req == NULL)
        return 200;
    if (not_modified(req, f, val, in->now != 0 ? in->now : time(NULL)))
        return 304;
    if (req->range.ptr == NULL || !if_range_holds(&req->if_range, val, f->mtime))
        return 200;
    switch (http_range_parse(req->range.ptr, req->range.len, f->size, ranges)) {
    case HTTP_RANGE_PARTIAL:
        return 206;
    case HTTP_RANGE_UNSATISFIABLE:
        return 416;
    default:
        return 200;
    }
}

static bool is_file_status(int status)
{
    return status == 200 || status == 206 || status == 304;
}

/* ---- writing -------------------------------------------------------- */

static size_t error_page(int status, char *page, size_t cap)
{
    const char *reason = http_reason(status);
    int n = snprintf(page, cap,
                     "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>\n"
                     "<body><h1>%d %s</h1><hr>mux</body></html>\n",
                     status, reason, status, reason);
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

static void status_line(struct out *o, int status, const char *date)
{
    adds(o, "HTTP/1.1 ");
    addu(o, (uint64_t)status);
    add(o, " ", 1);
    adds(o, http_reason(status));
    adds(o, "\r\nServer: mux\r\n");
    header(o, "Date", date, strlen(date));
}

static const char *type_of(const struct http_file_facts *f)
{
    return f->content_type != NULL ? f->content_type : "application/octet-stream";
}

/* "\r\n--B\r\nContent-Type: T\r\nContent-Range: bytes a-b/size\r\n\r\n" */
static void part_head(struct out *o, const struct http_plan *plan, const struct http_range *r)
{
    adds(o, "\r\n--");
    adds(o, plan->boundary);
    adds(o, "\r\nContent-Type: ");
    adds(o, plan->part_type);
    adds(o, "\r\nContent-Range: bytes ");
    addu(o, r->start);
    add(o, "-", 1);
    addu(o, r->start + r->len - 1);
    add(o, "/", 1);
    addu(o, plan->file_size);
    adds(o, "\r\n\r\n");
}

/* Bytes of the whole multipart body: part heads, ranges and the tail. */
static uint64_t multipart_length(const struct http_plan *plan, const struct http_ranges *rs)
{
    char scratch[HTTP_PART_HEAD_MAX];
    uint64_t total = 2 + 2 + HTTP_BOUNDARY_LEN + 2 + 2; /* "\r\n--B--\r\n" */
    for (unsigned i = 0; i < rs->count; i++) {
        struct out o = {scratch, sizeof scratch, 0, false};
        part_head(&o, plan, &rs->r[i]);
        total += o.len + rs->r[i].len;
    }
    return total;
}

size_t http_part_head(const struct http_plan *plan, unsigned i, char *buf, size_t cap)
{
    struct out o = {buf, cap, 0, false};
    if (i >= plan->parts)
        return 0;
    part_head(&o, plan, &plan->part[i]);
    return o.overflow ? 0 : o.len;
}

size_t http_parts_tail(const struct http_plan *plan, char *buf, size_t cap)
{
    struct out o = {buf, cap, 0, false};
    adds(&o, "\r\n--");
    adds(&o, plan->boundary);
    adds(&o, "--\r\n");
    return o.overflow ? 0 : o.len;
}

static void file_headers(struct out *o, int status, const struct http_file_facts *f,
                         const struct validators *val, const struct http_range *r,
                         const struct http_plan *multi, uint64_t multi_len)
{
    if (multi != NULL) {
        adds(o, "Content-Type: multipart/byteranges; boundary=");
        adds(o, multi->boundary);
        adds(o, "\r\nContent-Length: ");
        addu(o, multi_len);
        add(o, "\r\n", 2);
    } else if (status != 304) {
        adds(o, "Content-Type: ");
        adds(o, type_of(f));
        adds(o, "\r\nContent-Length: ");
        addu(o, r->len);
        add(o, "\r\n", 2);
    }
    header(o, "Last-Modified", val->last_modified, HTTP_DATE_LEN);
    header(o, "ETag", val->etag, val->etag_len);
    if (status == 206 && multi == NULL) {
        adds(o, "Content-Range: bytes ");
        addu(o, r->start);
        add(o, "-", 1);
        addu(o, r->start + r->len - 1);
        add(o, "/", 1);
        addu(o, f->size);
        add(o, "\r\n", 2);
    }
    if (status != 304)
        adds(o, "Accept-Ranges: bytes\r\n");
}

static void page_headers(struct out *o, const struct http_response_in *in, int status,
                         size_t page_len)
{
    adds(o, "Content-Type: text/html; charset=utf-8\r\nContent-Length: ");
    addu(o, page_len);
    add(o, "\r\n", 2);
    if (status == 405)
        adds(o, "Allow: GET, HEAD\r\n");
    if (status == 301)
        header(o, "Location", in->location.ptr, in->location.len);
    if (status == 416 && in->file != NULL) {
        adds(o, "Content-Range: bytes */");
        addu(o, in->file->size);
        add(o, "\r\n", 2);
    }
}

int http_plan_response(const struct http_response_in *in, char *buf, size_t cap,
                       struct http_plan *plan)
{
    struct out o = {buf, cap, 0, false};
    struct validators val;
    struct http_ranges ranges = {.count = 1};
    int status = in->status;
    char now_date[HTTP_DATE_LEN + 1];
    const char *date = in->date;
    if (date == NULL) {
        http_date_format(time(NULL), now_date);
        date = now_date;
    }

    ranges.r[0] = (struct http_range){0, 0};
    if (status == 200 && in->file != NULL) {
        const struct http_file_facts *f = in->file;
        if (f->etag != NULL && f->etag_len < HTTP_ETAG_MAX) {
            memcpy(val.etag, f->etag, f->etag_len);
            val.etag_len = f->etag_len;
        } else {
            val.etag_len = http_etag(f->size, f->mtime, val.etag);
        }
        if (f->last_modified != NULL)
            memcpy(val.last_modified, f->last_modified, HTTP_DATE_LEN + 1);
        else
            http_date_format(f->mtime, val.last_modified);
        status = decide_file_status(in, &val, &ranges);
    } else if (is_file_status(status)) {
        status = 500; /* a file status without a file: a caller bug */
    }
    const struct http_range range = ranges.r[0];
    const struct http_plan *multi = NULL;
    uint64_t multi_len = 0;
    plan->parts = 0;
    if (status == 206 && ranges.count > 1) {
        snprintf(plan->boundary, sizeof plan->boundary, "%020" PRIu64, in->boundary);
        plan->file_size = in->file->size;
        plan->part_type = type_of(in->file);
        plan->parts = ranges.count;
        memcpy(plan->part, ranges.r, ranges.count * sizeof ranges.r[0]);
        multi = plan;
        multi_len = multipart_length(plan, &ranges);
    }

    char page[320];
    size_t page_len = is_file_status(status) ? 0 : error_page(status, page, sizeof page);
    bool keep_alive = in->keep_alive && !http_status_closes(status);

    status_line(&o, status, date);
    if (is_file_status(status))
        file_headers(&o, status, in->file, &val, &range, multi, multi_len);
    else
        page_headers(&o, in, status, page_len);
    adds(&o, keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n");
    if (in->method != HTTP_METHOD_HEAD)
        add(&o, page, page_len);
    if (o.overflow)
        return -ENOSPC;

    plan->status = status;
    plan->head_len = o.len;
    plan->file_offset = range.start;
    plan->file_len = (status == 200 || status == 206) && in->method != HTTP_METHOD_HEAD &&
                             multi == NULL
                         ? range.len
                         : 0;
    plan->keep_alive = keep_alive;
    if (in->method == HTTP_METHOD_HEAD)
        plan->parts = 0; /* the length was announced; no body */
    return 0;
}
