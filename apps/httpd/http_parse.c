/* http_parse.c - HTTP/1.x request-head parser (see http_parse.h).
 *
 * The parser walks the buffer once per call with a cursor (struct scan)
 * whose end may be clipped to a limit window: if the head is still
 * incomplete when the clipped end is reached, the limit is exceeded and the
 * matching status (414 or 431) is returned at once, so a client cannot make
 * the server buffer more than the limits allow. Syntax errors in the bytes
 * already received are reported at once too, even if the line is
 * incomplete (a TLS hello sent to the plain port gets its 400 immediately).
 *
 * Why not a library parser: the maintained C parsers (picohttpparser,
 * llhttp) are not packaged in Debian, so using them means vendoring code we
 * would have to track by hand; the old nodejs http-parser is unmaintained.
 * The subset a static file server needs (request line, header fields, and a
 * chunked request body decoded only to be discarded) is a few hundred
 * lines, strict where the RFCs say MUST, fuzzed in
 * tests/httpd/fuzz_http_parse.c and tested at a PROT_NONE page edge in
 * tests/httpd/test_parse.c.
 */
#include "http_parse.h"

#include <string.h>

/* Upper bound for every configurable limit, so head lengths fit in an int. */
#define LIMIT_CEILING ((size_t)1 << 24)

static const struct http_limits default_limits = {
    .max_request_line = HTTP_MAX_REQUEST_LINE,
    .max_headers = HTTP_MAX_HEADERS,
    .max_header_bytes = HTTP_MAX_HEADER_BYTES,
};

/* A cursor over buf: p is the next byte, end the first byte not to read. */
struct scan {
    const char *p;
    const char *end;
};

/* RFC 7230 tchar: the characters of a token (methods, field names). */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Bytes allowed in a request-target: visible ASCII and obs-text (UTF-8 in
 * paths is common); no controls, no space, no DEL. */
static bool is_target_char(unsigned char c)
{
    return c > 0x20 && c != 0x7f;
}

/* field-vchar, SP, HTAB and obs-text; no other controls, no NUL, no DEL. */
static bool is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Clips s->end to at most `window` bytes after s->p; returns the old end. */
static const char *clip(struct scan *s, size_t window)
{
    const char *end = s->end;
    if ((size_t)(end - s->p) > window)
        s->end = s->p + window;
    return end;
}

/* CRLF or a bare LF. A CR followed by anything else is malformed. */
static int scan_eol(struct scan *s)
{
    if (s->p == s->end)
        return HTTP_PARSE_INCOMPLETE;
    if (*s->p == '\n') {
        s->p++;
        return 0;
    }
    if (*s->p != '\r')
        return HTTP_PARSE_BAD_REQUEST;
    if (s->p + 1 == s->end)
        return HTTP_PARSE_INCOMPLETE;
    if (s->p[1] != '\n')
        return HTTP_PARSE_BAD_REQUEST;
    s->p += 2;
    return 0;
}

/* RFC 7230 3.5: empty lines before the request line are ignored. */
static int skip_empty_lines(struct scan *s)
{
    while (s->p < s->end && (*s->p == '\r' || *s->p == '\n')) {
        int rc = scan_eol(s);
        if (rc != 0)
            return rc;
    }
    return s->p < s->end ? 0 : HTTP_PARSE_INCOMPLETE;
}

/* Scans bytes accepted by `ok` up to a single SP; the span must be
 * non-empty. Stores it in *tok / *tok_len and steps over the SP. */
static int scan_word(struct scan *s, bool (*ok)(unsigned char), const char **tok, size_t *tok_len)
{
    const char *start = s->p;
    for (; s->p < s->end; s->p++) {
        unsigned char c = (unsigned char)*s->p;
        if (c == ' ') {
            if (s->p == start)
                return HTTP_PARSE_BAD_REQUEST;
            *tok = start;
            *tok_len = (size_t)(s->p - start);
            s->p++;
            return 0;
        }
        if (!ok(c))
            return HTTP_PARSE_BAD_REQUEST;
    }
    return HTTP_PARSE_INCOMPLETE;
}

/* "HTTP/" DIGIT "." DIGIT, checked byte by byte as far as bytes exist, so
 * a wrong protocol name is rejected before the line is complete. */
static int scan_version(struct scan *s, int *major, int *minor)
{
    static const char shape[] = "HTTP/9.9"; /* '9' stands for any digit */
    size_t avail = (size_t)(s->end - s->p);
    size_t n = min_size(avail, 8);

    for (size_t i = 0; i < n; i++) {
        char c = s->p[i];
        bool good = shape[i] == '9' ? (c >= '0' && c <= '9') : c == shape[i];
        if (!good)
            return HTTP_PARSE_BAD_REQUEST;
    }
    if (avail < 8)
        return HTTP_PARSE_INCOMPLETE;
    *major = s->p[5] - '0';
    *minor = s->p[7] - '0';
    s->p += 8;
    return 0;
}

static enum http_method method_id(const char *m, size_t n)
{
    if (n == 3 && memcmp(m, "GET", 3) == 0)
        return HTTP_METHOD_GET;
    if (n == 4 && memcmp(m, "HEAD", 4) == 0)
        return HTTP_METHOD_HEAD;
    return HTTP_METHOD_OTHER;
}

/* method SP request-target SP HTTP-version EOL, within max_line bytes
 * (line ending excluded). The caller has clipped s->end to max_line + 2. */
static int parse_request_line(struct scan *s, struct http_request *req, size_t max_line)
{
    const char *start = s->p;
    int major = 0;
    int rc = scan_word(s, is_tchar, &req->method, &req->method_len);
    if (rc == 0) {
        req->method_id = method_id(req->method, req->method_len);
        rc = scan_word(s, is_target_char, &req->target, &req->target_len);
    }
    if (rc == 0)
        rc = scan_version(s, &major, &req->minor_version);
    const char *line_end = s->p;
    if (rc == 0)
        rc = scan_eol(s);
    if (rc != 0)
        return rc;
    if ((size_t)(line_end - start) > max_line)
        return HTTP_PARSE_URI_TOO_LONG;
    if (major != 1)
        return HTTP_PARSE_BAD_VERSION;
    if (req->minor_version > 1)
        req->minor_version = 1; /* RFC 7230 2.6: 1.x talks to us as 1.1 */
    return 0;
}

/* field-name ":" OWS field-value OWS EOL. Whitespace before the colon is
 * an error (RFC 7230 3.2.4); is_tchar() rejects it along with CR/LF/NUL. */
static int parse_header_line(struct scan *s, struct http_header *h)
{
    const char *name = s->p;
    for (;; s->p++) {
        if (s->p == s->end)
            return HTTP_PARSE_INCOMPLETE;
        if (*s->p == ':')
            break;
        if (!is_tchar((unsigned char)*s->p))
            return HTTP_PARSE_BAD_REQUEST;
    }
    if (s->p == name)
        return HTTP_PARSE_BAD_REQUEST;
    h->name = name;
    h->name_len = (size_t)(s->p - name);
    s->p++;
    while (s->p < s->end && is_ows(*s->p))
        s->p++;
    const char *value = s->p;
    for (; s->p < s->end && *s->p != '\r' && *s->p != '\n'; s->p++) {
        if (!is_value_char((unsigned char)*s->p))
            return HTTP_PARSE_BAD_REQUEST;
    }
    const char *vend = s->p;
    while (vend > value && is_ows(vend[-1]))
        vend--;
    h->value = value;
    h->value_len = (size_t)(vend - value);
    return scan_eol(s);
}

/* Header lines up to the empty line. The caller has clipped s->end to
 * max_header_bytes + 2 (room for the final empty line). */
static int parse_headers(struct scan *s, struct http_request *req, const struct http_limits *lim)
{
    const char *start = s->p;
    size_t max_count = min_size(req->max_headers, lim->max_headers);

    req->num_headers = 0;
    for (;;) {
        if (s->p == s->end)
            return HTTP_PARSE_INCOMPLETE;
        if (*s->p == '\r' || *s->p == '\n')
            return scan_eol(s); /* the empty line: end of head */
        if (is_ows(*s->p))
            return HTTP_PARSE_BAD_REQUEST; /* obs-fold, or space before the first field */
        if (req->num_headers == max_count)
            return HTTP_PARSE_HEADERS_TOO_LARGE;
        int rc = parse_header_line(s, &req->headers[req->num_headers]);
        if (rc != 0)
            return rc;
        if ((size_t)(s->p - start) > lim->max_header_bytes)
            return HTTP_PARSE_HEADERS_TOO_LARGE;
        req->num_headers++;
    }
}

/* With a last_len hint: no new line feed means no new complete line, so the
 * result is still -2 unless the buffer is large enough to break a limit. */
static bool still_incomplete(const char *buf, size_t len, size_t last_len,
                             const struct http_limits *lim)
{
    if (last_len == 0 || last_len >= len)
        return false;
    if (len > lim->max_request_line + lim->max_header_bytes)
        return false;
    return memchr(buf + last_len, '\n', len - last_len) == NULL;
}

static void clamp_limits(const struct http_limits *in, struct http_limits *out)
{
    out->max_request_line = min_size(in->max_request_line, LIMIT_CEILING);
    out->max_headers = min_size(in->max_headers, LIMIT_CEILING);
    out->max_header_bytes = min_size(in->max_header_bytes, LIMIT_CEILING);
}

int http_parse_request(const char *buf, size_t len, struct http_request *req, size_t last_len,
                       const struct http_limits *limits)
{
    struct http_limits lim;
    clamp_limits(limits ? limits : &default_limits, &lim);
    req->method_id = HTTP_METHOD_OTHER; /* until the method token is complete */
    if (still_incomplete(buf, len, last_len, &lim))
        return HTTP_PARSE_INCOMPLETE;

    /* Leading empty lines get a window of their own; too many is garbage. */
    struct scan s = {buf, buf + len};
    const char *end = clip(&s, lim.max_request_line + 2);
    int rc = skip_empty_lines(&s);
    if (rc == HTTP_PARSE_INCOMPLETE && s.end != end)
        return HTTP_PARSE_BAD_REQUEST;
    if (rc != 0)
        return rc;

    s.end = end;
    end = clip(&s, lim.max_request_line + 2);
    rc = parse_request_line(&s, req, lim.max_request_line);
    if (rc == HTTP_PARSE_INCOMPLETE && s.end != end)
        return HTTP_PARSE_URI_TOO_LONG;
    if (rc != 0)
        return rc;

    s.end = end;
    end = clip(&s, lim.max_header_bytes + 2);
    rc = parse_headers(&s, req, &lim);
    if (rc == HTTP_PARSE_INCOMPLETE && s.end != end)
        return HTTP_PARSE_HEADERS_TOO_LARGE;
    if (rc != 0)
        return rc;
    return (int)(s.p - buf);
}

int http_parse_status(int rc)
{
    return rc <= -100 ? -rc : 0;
}

/* ---- helpers over a parsed request ---------------------------------- */

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

static bool equal_nocase(const char *a, size_t n, const char *b)
{
    size_t i = 0;
    for (; i < n && b[i] != '\0'; i++) {
        if (lower(a[i]) != lower(b[i]))
            return false;
    }
    return i == n && b[i] == '\0';
}

const struct http_header *http_header_find(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http_header *h = &req->headers[i];
        if (equal_nocase(h->name, h->name_len, name))
            return h;
    }
    return NULL;
}

size_t http_header_count(const struct http_request *req, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < req->num_headers; i++) {
        if (equal_nocase(req->headers[i].name, req->headers[i].name_len, name))
            n++;
    }
    return n;
}

bool http_token_list_has(const char *v, size_t n, const char *token)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (is_ows(v[i]) || v[i] == ','))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',')
            i++;
        size_t stop = i;
        while (stop > start && is_ows(v[stop - 1]))
            stop--;
        if (stop > start && equal_nocase(v + start, stop - start, token))
            return true;
    }
    return false;
}

unsigned http_connection_flags(const struct http_request *req)
{
    unsigned flags = 0;
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http_header *h = &req->headers[i];
        if (!equal_nocase(h->name, h->name_len, "Connection"))
            continue;
        if (http_token_list_has(h->value, h->value_len, "close"))
            flags |= HTTP_CONN_CLOSE;
        if (http_token_list_has(h->value, h->value_len, "keep-alive"))
            flags |= HTTP_CONN_KEEP_ALIVE;
    }
    return flags;
}

/* 1*DIGIT that fits in 63 bits; no sign, no spaces, no lists. */
static int parse_content_length(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    if (n == 0)
        return HTTP_PARSE_BAD_REQUEST;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return HTTP_PARSE_BAD_REQUEST;
        if (x > (UINT64_C(0x7fffffffffffffff) - (uint64_t)(v[i] - '0')) / 10)
            return HTTP_PARSE_BAD_REQUEST;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return 0;
}

/* RFC 9112 6.1 and 6.3 over every Transfer-Encoding field (one list):
 * the codings must be tokens, chunked exactly once and last; any other
 * coding before it is one we do not implement. */
static int transfer_coding(const struct http_request *req)
{
    size_t codings = 0, chunked = 0;
    bool last_chunked = false;
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http_header *h = &req->headers[i];
        if (!equal_nocase(h->name, h->name_len, "Transfer-Encoding"))
            continue;
        size_t k = 0;
        while (k < h->value_len) {
            while (k < h->value_len && (is_ows(h->value[k]) || h->value[k] == ','))
                k++; /* empty elements are ignored (RFC 9110 5.6.1) */
            if (k == h->value_len)
                break;
            size_t start = k;
            while (k < h->value_len && is_tchar((unsigned char)h->value[k]))
                k++;
            size_t stop = k;
            while (k < h->value_len && is_ows(h->value[k]))
                k++;
            if (stop == start || (k < h->value_len && h->value[k] != ','))
                return HTTP_PARSE_BAD_REQUEST; /* parameters, quotes, junk */
            last_chunked = equal_nocase(h->value + start, stop - start, "chunked");
            chunked += last_chunked;
            codings++;
        }
    }
    if (codings == 0 || chunked != 1 || !last_chunked)
        return HTTP_PARSE_BAD_REQUEST;
    return codings == 1 ? 0 : HTTP_PARSE_NOT_IMPLEMENTED;
}

/* Body framing: a chunked body (Transfer-Encoding, which must come alone:
 * with a Content-Length too the two framings could disagree), or one
 * Content-Length at most, as nginx requires. */
static int body_length(const struct http_request *req, struct http_request_info *info)
{
    info->body_len = 0;
    size_t n = http_header_count(req, "Content-Length");
    if (http_header_find(req, "Transfer-Encoding") != NULL) {
        if (n > 0 || req->minor_version == 0)
            return HTTP_PARSE_BAD_REQUEST;
        int rc = transfer_coding(req);
        info->chunked = rc == 0;
        return rc;
    }
    if (n == 0)
        return 0;
    if (n > 1)
        return HTTP_PARSE_BAD_REQUEST;
    const struct http_header *h = http_header_find(req, "Content-Length");
    return parse_content_length(h->value, h->value_len, &info->body_len);
}

static struct http_span span_of(const struct http_request *req, const char *name)
{
    const struct http_header *h = http_header_find(req, name);
    struct http_span s = {NULL, 0};
    if (h != NULL) {
        s.ptr = h->value;
        s.len = h->value_len;
    }
    return s;
}

int http_request_check(const struct http_request *req, struct http_request_info *info)
{
    unsigned conn = http_connection_flags(req);

    memset(info, 0, sizeof *info);
    info->method = req->method_id;
    info->minor_version = req->minor_version;
    info->keep_alive =
        !(conn & HTTP_CONN_CLOSE) && (req->minor_version >= 1 || (conn & HTTP_CONN_KEEP_ALIVE));

    size_t hosts = http_header_count(req, "Host");
    if (hosts > 1 || (hosts == 0 && req->minor_version >= 1))
        return HTTP_PARSE_BAD_REQUEST;
    int rc = body_length(req, info);
    if (rc != 0)
        return rc;

    info->if_none_match = span_of(req, "If-None-Match");
    info->if_modified_since = span_of(req, "If-Modified-Since");
    if (http_header_count(req, "Range") == 1) /* Range is a singleton field */
        info->range = span_of(req, "Range");
    info->if_range = span_of(req, "If-Range");
    return 0;
}

/* ---- chunked bodies ------------------------------------------------- */

enum { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER, CH_DONE, CH_FAILED };

void http_chunked_init(struct http_chunked *d)
{
    memset(d, 0, sizeof *d);
}

/* A line ending in CRLF within the first max + 2 bytes of p[0..n). Sets
 * *line (its length without CRLF). A bare LF, or a CR not followed by LF,
 * is 400 at once; no CRLF within the window is 400 too. */
static int find_crlf(const char *p, size_t n, size_t max, size_t *line)
{
    size_t window = min_size(n, max + 2);
    for (size_t i = 0; i < window; i++) {
        if (p[i] == '\n')
            return HTTP_PARSE_BAD_REQUEST;
        if (p[i] != '\r')
            continue;
        if (i + 1 == n)
            return HTTP_PARSE_INCOMPLETE;
        if (p[i + 1] != '\n' || i > max)
            return HTTP_PARSE_BAD_REQUEST;
        *line = i;
        return 0;
    }
    return n < max + 2 ? HTTP_PARSE_INCOMPLETE : HTTP_PARSE_BAD_REQUEST;
}

static bool is_hex(char c, unsigned *v)
{
    if (c >= '0' && c <= '9')
        *v = (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
        *v = (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
        *v = (unsigned)(c - 'A' + 10);
    else
        return false;
    return true;
}

/* quoted-string at *i (RFC 9110 5.6.4): qdtext and quoted-pairs. */
static bool quoted_string(const char *p, size_t n, size_t *i)
{
    if (*i >= n || p[*i] != '"')
        return false;
    for (++*i; *i < n; ++*i) {
        unsigned char c = (unsigned char)p[*i];
        if (c == '"') {
            ++*i;
            return true;
        }
        if (c == '\\') {
            if (++*i == n)
                return false;
            c = (unsigned char)p[*i];
        }
        if (!is_value_char(c))
            return false;
    }
    return false;
}

/* chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ) */
static bool chunk_ext(const char *p, size_t n, size_t i)
{
    while (i < n) {
        while (i < n && is_ows(p[i]))
            i++;
        if (i == n || p[i++] != ';')
            return false; /* also whitespace after the size with nothing after it */
        while (i < n && is_ows(p[i]))
            i++;
        size_t start = i;
        while (i < n && is_tchar((unsigned char)p[i]))
            i++;
        if (i == start)
            return false;
        size_t j = i;
        while (j < n && is_ows(p[j]))
            j++;
        if (j == n || p[j] != '=')
            continue;
        for (i = j + 1; i < n && is_ows(p[i]);)
            i++;
        start = i;
        while (i < n && is_tchar((unsigned char)p[i]))
            i++;
        if (i == start && !quoted_string(p, n, &i))
            return false;
    }
    return true;
}

/* chunk-size [ chunk-ext ]: 1*HEXDIG below 2^63, nothing before it. */
static int chunk_size_line(const char *p, size_t n, uint64_t *size)
{
    uint64_t x = 0;
    size_t i = 0;
    unsigned v;
    for (; i < n && is_hex(p[i], &v); i++) {
        if (x > (UINT64_C(0x7fffffffffffffff) - v) / 16)
            return HTTP_PARSE_BAD_REQUEST;
        x = x * 16 + v;
    }
    if (i == 0 || !chunk_ext(p, n, i))
        return HTTP_PARSE_BAD_REQUEST;
    *size = x;
    return 0;
}

/* field-name ":" OWS field-value OWS, as in the head (no obs-fold). */
static bool trailer_field(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i == n || p[i] != ':')
        return false;
    for (i++; i < n; i++) {
        if (!is_value_char((unsigned char)p[i]))
            return false;
    }
    return true;
}

/* One step at p[0..n): consumes a whole line, or data, or the CRLF after
 * data. Returns 0 with *used set, -2, or an error. */
static int chunk_step(struct http_chunked *d, const char *p, size_t n, size_t *used)
{
    size_t line;
    int rc;
    switch (d->state) {
    case CH_DATA:
        *used = d->remaining < n ? (size_t)d->remaining : n;
        d->remaining -= *used;
        d->data += *used;
        if (d->remaining == 0)
            d->state = CH_DATA_END;
        return 0;
    case CH_DATA_END: /* n >= 1 */
        if (p[0] != '\r')
            return HTTP_PARSE_BAD_REQUEST;
        if (n < 2)
            return HTTP_PARSE_INCOMPLETE;
        if (p[1] != '\n')
            return HTTP_PARSE_BAD_REQUEST;
        *used = 2;
        d->state = CH_SIZE;
        return 0;
    case CH_SIZE:
        rc = find_crlf(p, n, HTTP_CHUNK_LINE_MAX, &line);
        if (rc == 0)
            rc = chunk_size_line(p, line, &d->remaining);
        if (rc != 0)
            return rc;
        *used = line + 2;
        d->state = d->remaining > 0 ? CH_DATA : CH_TRAILER;
        return 0;
    default: /* CH_TRAILER */
        rc = find_crlf(p, n, HTTP_MAX_HEADER_BYTES, &line);
        if (rc != 0)
            return rc;
        if (line > 0 && !trailer_field(p, line))
            return HTTP_PARSE_BAD_REQUEST;
        *used = line + 2;
        if (line == 0)
            d->state = CH_DONE;
        return 0;
    }
}

int http_chunked_decode(struct http_chunked *d, const char *buf, size_t len, uint64_t max_data,
                        size_t *used)
{
    size_t off = 0;
    int rc = 0;
    while (d->state < CH_DONE) {
        if (off == len) {
            rc = HTTP_PARSE_INCOMPLETE;
            break;
        }
        size_t n = 0;
        bool data = d->state == CH_DATA;
        rc = chunk_step(d, buf + off, len - off, &n);
        if (rc != 0)
            break;
        off += n;
        if (!data)
            d->framing += n;
        if (d->data + d->remaining > max_data ||
            d->framing > d->data + HTTP_CHUNK_FRAMING_SLACK) {
            rc = -413;
            break;
        }
    }
    *used = off;
    if (d->state == CH_DONE)
        return 1;
    if (d->state == CH_FAILED)
        return d->error;
    if (rc != HTTP_PARSE_INCOMPLETE) {
        d->state = CH_FAILED;
        d->error = (int16_t)rc;
    }
    return rc;
}
