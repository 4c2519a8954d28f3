/* http_resp.c - state machine behind http_resp.h. Lines (status, headers,
 * chunk sizes, trailers) are collected into a small fixed buffer; bodies and
 * chunk data are only counted. */
#include "http_resp.h"

#include <string.h>
#include <strings.h>

enum {
    HR_STATUS,      /* reading the status line */
    HR_HEADER,      /* reading header lines */
    HR_BODY,        /* counting Content-Length bytes */
    HR_CHUNK_SIZE,  /* reading a chunk-size line */
    HR_CHUNK_DATA,  /* counting chunk bytes */
    HR_CHUNK_END,   /* the CRLF after chunk data */
    HR_TRAILER,     /* trailer lines after the last chunk */
    HR_UNTIL_CLOSE, /* body delimited by the connection closing */
    HR_DONE,
    HR_ERROR,
};

#define CHUNK_LINE_MAX 4096

void http_resp_init(struct http_resp *r)
{
    memset(r, 0, sizeof(*r));
    r->state = HR_STATUS;
}

bool http_resp_done(const struct http_resp *r)
{
    return r->state == HR_DONE;
}

bool http_resp_idle(const struct http_resp *r)
{
    return r->state == HR_STATUS && r->line_total == 0 && r->header_bytes == 0;
}

static ssize_t fail(struct http_resp *r, const char *why)
{
    r->state = HR_ERROR;
    r->err = why;
    return -1;
}

/* Collects bytes up to '\n'. Returns 1 with a complete line in r->line (CR
 * stripped, NUL-terminated), 0 when all of p was taken without a newline, or
 * -1 when a limit was exceeded. *used = bytes taken from p. */
static int take_line(struct http_resp *r, const char *p, size_t n, size_t *used, bool header)
{
    const char *nl = memchr(p, '\n', n);
    size_t take = nl ? (size_t)(nl - p) + 1 : n;
    size_t seg = nl ? take - 1 : take;
    size_t room = HTTP_LINE_KEEP - 1 - r->line_len;
    size_t keep = seg < room ? seg : room;
    memcpy(r->line + r->line_len, p, keep);
    r->line_len += (uint32_t)keep;
    r->truncated |= keep < seg;
    r->line_total += (uint32_t)(seg > UINT32_MAX - r->line_total ? 0 : seg);
    *used = take;
    if (header) {
        r->header_bytes += (uint32_t)take;
        if (r->header_bytes > HTTP_HEADER_MAX)
            return -1;
    } else if (r->line_total > CHUNK_LINE_MAX) {
        return -1;
    }
    if (!nl)
        return 0;
    if (r->line_len > 0 && r->line[r->line_len - 1] == '\r' && !r->truncated)
        r->line_len--;
    r->line[r->line_len] = '\0';
    return 1;
}

static void line_reset(struct http_resp *r)
{
    r->line_len = 0;
    r->line_total = 0;
    r->truncated = false;
}

static int parse_status(struct http_resp *r)
{
    const char *l = r->line;
    if (strncmp(l, "HTTP/1.", 7) || (l[7] != '0' && l[7] != '1') || l[8] != ' ')
        return -1;
    r->minor = l[7] - '0';
    for (int i = 9; i < 12; i++)
        if (l[i] < '0' || l[i] > '9')
            return -1;
    if (l[12] != ' ' && l[12] != '\0')
        return -1;
    r->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    return r->status >= 100 && r->status <= 599 ? 0 : -1;
}

static int parse_length(struct http_resp *r, const char *v)
{
    uint64_t n = 0;
    if (*v == '\0')
        return -1;
    for (; *v; v++) {
        if (*v < '0' || *v > '9' || n > (UINT64_MAX - 9) / 10)
            return -1;
        n = n * 10 + (uint64_t)(*v - '0');
    }
    if (r->have_length && r->content_length != n)
        return -1;
    r->have_length = true;
    r->content_length = n;
    return 0;
}

static bool ends_with_token(const char *v, const char *tok)
{
    size_t lv = strlen(v), lt = strlen(tok);
    return lv >= lt && !strcasecmp(v + lv - lt, tok) &&
           (lv == lt || v[lv - lt - 1] == ' ' || v[lv - lt - 1] == ',');
}

/* One "Name: value" line. */
static int parse_header(struct http_resp *r)
{
    char *l = r->line;
    char *colon = strchr(l, ':');
    if (!colon || colon == l || l[0] == ' ' || l[0] == '\t')
        return -1;
    for (char *q = l; q < colon; q++)
        if (*q <= ' ' || *q >= 127)
            return -1;
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    char *end = v + strlen(v);
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        *--end = '\0';
    bool interesting = !strcasecmp(l, "content-length") || !strcasecmp(l, "transfer-encoding");
    if (interesting && r->truncated)
        return -1;
    if (!strcasecmp(l, "content-length"))
        return parse_length(r, v);
    if (!strcasecmp(l, "transfer-encoding"))
        r->chunked = ends_with_token(v, "chunked");
    else if (!strcasecmp(l, "connection")) {
        r->close |= strcasestr(v, "close") != NULL;
        r->keep_alive |= strcasestr(v, "keep-alive") != NULL;
    }
    return 0;
}

/* The blank line after the headers: choose how the body is delimited. */
static void headers_done(struct http_resp *r)
{
    if (r->minor == 0 && !r->keep_alive)
        r->close = true;
    if (r->status < 200) { /* interim response: the real one follows */
        int minor = r->minor;
        http_resp_init(r);
        r->minor = minor;
        return;
    }
    if (r->status == 204 || r->status == 304)
        r->state = HR_DONE;
    else if (r->chunked)
        r->state = HR_CHUNK_SIZE;
    else if (r->have_length) {
        r->remaining = r->content_length;
        r->state = r->content_length ? HR_BODY : HR_DONE;
    } else
        r->state = HR_UNTIL_CLOSE;
}

static int parse_chunk_size(struct http_resp *r)
{
    const char *l = r->line;
    uint64_t n = 0;
    int digits = 0;
    for (; *l; l++, digits++) {
        int d = (*l >= '0' && *l <= '9')   ? *l - '0'
                : (*l >= 'a' && *l <= 'f') ? *l - 'a' + 10
                : (*l >= 'A' && *l <= 'F') ? *l - 'A' + 10
                                           : -1;
        if (d < 0)
            break;
        if (digits >= 15)
            return -1;
        n = n * 16 + (uint64_t)d;
    }
    while (*l == ' ' || *l == '\t')
        l++;
    if (digits == 0 || (*l != '\0' && *l != ';'))
        return -1;
    r->remaining = n;
    r->state = n ? HR_CHUNK_DATA : HR_TRAILER;
    r->header_bytes = 0;
    return 0;
}

/* Handles one complete line in the current state. */
static int on_line(struct http_resp *r)
{
    switch (r->state) {
    case HR_STATUS:
        if (parse_status(r) < 0)
            return -1;
        r->state = HR_HEADER;
        return 0;
    case HR_HEADER:
        if (r->line_len == 0 && !r->truncated) {
            headers_done(r);
            return 0;
        }
        return parse_header(r);
    case HR_CHUNK_SIZE:
        return parse_chunk_size(r);
    case HR_CHUNK_END:
        if (r->line_len != 0 || r->truncated)
            return -1;
        r->state = HR_CHUNK_SIZE;
        return 0;
    case HR_TRAILER:
        if (r->line_len == 0 && !r->truncated)
            r->state = HR_DONE;
        return 0;
    }
    return -1;
}

/* Body or chunk bytes at p: counted, and shown to fn. -1 if fn rejects. */
static ssize_t count_body(struct http_resp *r, const char *p, size_t n, http_body_fn fn,
                          void *ctx)
{
    size_t take = n < r->remaining ? n : (size_t)r->remaining;
    if (r->state == HR_UNTIL_CLOSE)
        take = n;
    if (fn && take && fn(ctx, p, take, r->body_len) != 0)
        return fail(r, "body rejected");
    r->body_len += take;
    if (r->state == HR_UNTIL_CLOSE)
        return (ssize_t)take;
    r->remaining -= take;
    if (r->remaining == 0)
        r->state = r->state == HR_BODY ? HR_DONE : HR_CHUNK_END;
    return (ssize_t)take;
}

ssize_t http_resp_feed_body(struct http_resp *r, const char *p, size_t n, http_body_fn fn,
                            void *ctx)
{
    size_t off = 0;
    while (off < n && r->state != HR_DONE) {
        if (r->state == HR_ERROR)
            return -1;
        if (r->state == HR_BODY || r->state == HR_CHUNK_DATA || r->state == HR_UNTIL_CLOSE) {
            ssize_t k = count_body(r, p + off, n - off, fn, ctx);
            if (k < 0)
                return -1;
            off += (size_t)k;
            continue;
        }
        size_t used;
        bool header = r->state == HR_STATUS || r->state == HR_HEADER || r->state == HR_TRAILER;
        int got = take_line(r, p + off, n - off, &used, header);
        off += used;
        if (got < 0)
            return fail(r, header ? "header block too large" : "chunk line too long");
        if (got == 0)
            break;
        if (on_line(r) < 0)
            return fail(r, r->state == HR_STATUS   ? "bad status line"
                           : r->state == HR_HEADER ? "bad header line"
                                                   : "bad chunk framing");
        line_reset(r);
    }
    return (ssize_t)off;
}

ssize_t http_resp_feed(struct http_resp *r, const char *p, size_t n)
{
    return http_resp_feed_body(r, p, n, NULL, NULL);
}

int http_resp_eof(struct http_resp *r)
{
    if (r->state == HR_UNTIL_CLOSE) {
        r->state = HR_DONE;
        return 1;
    }
    if (http_resp_idle(r) || r->state == HR_DONE)
        return 0;
    r->state = HR_ERROR;
    r->err = "response cut short by close";
    return -1;
}
