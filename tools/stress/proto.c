/* proto.c - request building and reply verification for echo, upper and
 * http (see proto.h). Verification is memcmp against a precomputed expected
 * pattern, so checking every byte costs about as much as reading it. */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t proto_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* upper: half lowercase letters, a quarter uppercase, a quarter any byte
 * (digits, punctuation, controls, bytes >= 0x80 must come back unchanged). */
static uint8_t pattern_byte(enum proto_kind kind, uint64_t r)
{
    if (kind == PROTO_ECHO)
        return (uint8_t)r;
    switch ((r >> 8) & 3) {
    case 0:
    case 1:
        return (uint8_t)('a' + (r & 0xff) % 26);
    case 2:
        return (uint8_t)('A' + (r & 0xff) % 26);
    default:
        return (uint8_t)r;
    }
}

static int init_patterns(struct proto *p, uint64_t seed)
{
    p->pattern_len = (size_t)p->size + PATTERN_SLACK;
    p->tx = malloc(p->pattern_len);
    p->rx = p->kind == PROTO_UPPER ? malloc(p->pattern_len) : p->tx;
    if (!p->tx || !p->rx)
        return -1;
    uint64_t s = seed;
    for (size_t i = 0; i < p->pattern_len; i++) {
        s = proto_mix(s);
        p->tx[i] = pattern_byte(p->kind, s);
    }
    if (p->kind == PROTO_UPPER)
        for (size_t i = 0; i < p->pattern_len; i++) {
            uint8_t b = p->tx[i];
            p->rx[i] = (b >= 'a' && b <= 'z') ? (uint8_t)(b - 32) : b;
        }
    return 0;
}

static int init_http(struct proto *p, const struct stress_opts *o)
{
    const char *fmt = "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: mux-stress\r\n"
                      "Connection: keep-alive\r\n\r\n";
    int n = snprintf(NULL, 0, fmt, o->path, o->authority);
    p->http_req = malloc((size_t)n + 1);
    if (!p->http_req)
        return -1;
    snprintf(p->http_req, (size_t)n + 1, fmt, o->path, o->authority);
    p->http_req_len = (uint32_t)n;
    return 0;
}

int proto_init(struct proto *p, const struct stress_opts *o, uint64_t seed)
{
    memset(p, 0, sizeof(*p));
    p->kind = o->proto;
    p->size = o->size;
    body_ref_init(&p->ref);
    int rc = p->kind == PROTO_HTTP ? init_http(p, o) : init_patterns(p, seed);
    if (rc < 0)
        proto_free(p);
    return rc;
}

void proto_free(struct proto *p)
{
    if (p->rx != p->tx)
        free(p->rx);
    free(p->tx);
    free(p->http_req);
    body_ref_free(&p->ref);
    p->tx = p->rx = NULL;
    p->http_req = NULL;
}

int proto_expect_file(struct proto *p, const char *path)
{
    body_ref_free(&p->ref);
    return body_ref_load(&p->ref, path);
}

void proto_conn_ended(struct proto *p, const struct proto_rx *rx)
{
    if (p->kind == PROTO_HTTP)
        body_ref_release(&p->ref, rx->conn);
}

void proto_request(const struct proto *p, uint32_t conn, uint64_t seq, struct req *r)
{
    r->seq = seq;
    if (p->kind == PROTO_HTTP) {
        r->off = 0;
        r->len = p->http_req_len;
        return;
    }
    r->off = (uint32_t)(proto_mix(((uint64_t)conn << 40) ^ seq) % (PATTERN_SLACK + 1));
    r->len = p->size;
}

const void *proto_req_bytes(const struct proto *p, const struct req *r)
{
    return p->kind == PROTO_HTTP ? (const void *)p->http_req : (const void *)(p->tx + r->off);
}

void proto_rx_reset(struct proto_rx *rx)
{
    rx->pos = 0; /* rx->conn stays */
    rx->closing = false;
    http_resp_init(&rx->http);
}

static void mismatch(struct verify_err *err, const struct req *r, uint32_t pos, const char *got,
                     const uint8_t *want, size_t n)
{
    size_t i = 0;
    while (i < n && (uint8_t)got[i] == want[i])
        i++;
    snprintf(err->msg, sizeof(err->msg),
             "request %llu: reply byte %u of %u is 0x%02x, expected 0x%02x",
             (unsigned long long)r->seq, pos + (uint32_t)i, r->len, (uint8_t)got[i], want[i]);
}

static int unexpected(struct verify_err *err, size_t n)
{
    snprintf(err->msg, sizeof(err->msg), "%zu reply bytes arrived with no request outstanding", n);
    return -1;
}

static int stream_feed(struct proto *p, struct proto_rx *rx, const struct reqring *ring,
                       const char *data, size_t len, uint32_t *done, struct verify_err *err)
{
    uint32_t i = ring->head, pos = rx->pos;
    while (len > 0) {
        if (i == ring->tail) {
            rx->pos = pos;
            return unexpected(err, len);
        }
        const struct req *r = ring_at(ring, i);
        size_t n = r->len - pos < len ? r->len - pos : len;
        const uint8_t *want = p->rx + r->off + pos;
        if (memcmp(data, want, n) != 0) {
            mismatch(err, r, pos, data, want, n);
            return -1;
        }
        data += n, len -= n, pos += (uint32_t)n;
        if (pos == r->len)
            i++, pos = 0, (*done)++;
    }
    rx->pos = pos;
    return 0;
}

/* A complete http response: status 200 and the reference body's length
 * (its bytes were compared as they came); the first one becomes the
 * reference when there is none yet. */
static int http_check(struct proto *p, struct proto_rx *rx, const struct req *r,
                      struct verify_err *err)
{
    const struct http_resp *h = &rx->http;
    struct body_ref *ref = &p->ref;
    rx->closing |= h->close;
    if (h->status != 200) {
        snprintf(err->msg, sizeof(err->msg), "request %llu: status %d, expected 200",
                 (unsigned long long)r->seq, h->status);
        return -1;
    }
    if (!body_ref_ready(ref)) { /* only the owner gets here: see body_ref.h */
        body_ref_publish(ref);
        return 0;
    }
    if (h->body_len != ref->len) {
        snprintf(err->msg, sizeof(err->msg), "request %llu: body of %llu bytes, expected %zu (%s)",
                 (unsigned long long)r->seq, (unsigned long long)h->body_len, ref->len,
                 ref->source);
        return -1;
    }
    return 0;
}

struct body_ctx {
    struct proto *p;
    struct proto_rx *rx;
    const struct req *r;
    struct verify_err *err;
    bool failed;
};

static int body_fail(struct body_ctx *b)
{
    b->failed = true;
    return -1;
}

/* Body bytes [off, off+n) against the ready reference. */
static int body_compare(struct body_ctx *b, const char *data, size_t n, uint64_t off)
{
    const struct body_ref *ref = &b->p->ref;
    size_t in = off < ref->len ? (size_t)(ref->len - off) : 0;
    size_t cmp = n < in ? n : in;
    const char *want = ref->data + off;
    if (cmp && memcmp(data, want, cmp) != 0) {
        size_t i = 0;
        while (data[i] == want[i])
            i++;
        snprintf(b->err->msg, sizeof(b->err->msg),
                 "request %llu: body byte %llu of %zu is 0x%02x, expected 0x%02x (%s)",
                 (unsigned long long)b->r->seq, (unsigned long long)(off + i), ref->len,
                 (uint8_t)data[i], (uint8_t)want[i], ref->source);
        return body_fail(b);
    }
    if (n > cmp) {
        snprintf(b->err->msg, sizeof(b->err->msg),
                 "request %llu: body longer than the expected %zu bytes (%s)",
                 (unsigned long long)b->r->seq, ref->len, ref->source);
        return body_fail(b);
    }
    return 0;
}

static int on_body(void *arg, const char *data, size_t n, uint64_t off)
{
    struct body_ctx *b = arg;
    struct body_ref *ref = &b->p->ref;
    if (b->rx->http.status != 200)
        return 0; /* http_check fails it on the status */
    if (body_ref_ready(ref))
        return body_compare(b, data, n, off);
    if (!body_ref_is_owner(ref, b->rx->conn))
        snprintf(b->err->msg, sizeof(b->err->msg),
                 "request %llu: a response arrived before the reference body (internal error)",
                 (unsigned long long)b->r->seq);
    else if (body_ref_append(ref, data, n) == 0)
        return 0;
    else
        snprintf(b->err->msg, sizeof(b->err->msg),
                 "request %llu: the first body is over %u MiB, too large to keep as the "
                 "reference (use --expect-file)",
                 (unsigned long long)b->r->seq, BODY_REF_CAPTURE_MAX >> 20);
    return body_fail(b);
}

static int http_feed(struct proto *p, struct proto_rx *rx, const struct reqring *ring,
                     const char *data, size_t len, uint32_t *done, struct verify_err *err)
{
    while (len > 0) {
        uint32_t i = ring->head + *done;
        if (i == ring->tail)
            return unexpected(err, len);
        struct body_ctx b = {p, rx, ring_at(ring, i), err, false};
        ssize_t k = http_resp_feed_body(&rx->http, data, len, on_body, &b);
        if (k < 0) {
            if (!b.failed)
                snprintf(err->msg, sizeof(err->msg), "request %llu: bad response: %s",
                         (unsigned long long)b.r->seq, rx->http.err);
            return -1;
        }
        data += k, len -= (size_t)k;
        if (!http_resp_done(&rx->http))
            continue;
        if (http_check(p, rx, b.r, err) < 0)
            return -1;
        (*done)++;
        http_resp_init(&rx->http);
    }
    return 0;
}

int proto_feed(struct proto *p, struct proto_rx *rx, const struct reqring *ring, const char *data,
               size_t len, uint32_t *done, struct verify_err *err)
{
    *done = 0;
    if (p->kind == PROTO_HTTP)
        return http_feed(p, rx, ring, data, len, done, err);
    return stream_feed(p, rx, ring, data, len, done, err);
}

int proto_eof(struct proto *p, struct proto_rx *rx, const struct reqring *ring, uint32_t *done,
              struct verify_err *err)
{
    *done = 0;
    if (p->kind != PROTO_HTTP || ring_outstanding(ring) == 0)
        return 0;
    if (http_resp_eof(&rx->http) <= 0)
        return 0; /* nothing, or a response cut short: unanswered */
    rx->closing = true; /* a close-delimited body ended here */
    if (http_check(p, rx, ring_at(ring, ring->head), err) < 0)
        return -1;
    *done = 1;
    http_resp_init(&rx->http);
    return 0;
}
