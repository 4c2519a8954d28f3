/* http_resp.h - incremental HTTP/1.x response parser for the http verifier.
 *
 * Bytes may arrive split at any point: the parser keeps its whole state in
 * struct http_resp (no allocation, no pointers into caller buffers) and does
 * not keep the body: it counts it and can show it to a callback. Understands Content-Length, chunked
 * transfer coding (extensions and trailers skipped), bodiless statuses
 * (1xx interim responses are skipped, 204, 304) and bodies delimited by close.
 * Rejects malformed status lines, header lines, lengths and chunk framing. */
#ifndef STRESS_HTTP_RESP_H
#define STRESS_HTTP_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HTTP_LINE_KEEP 256          /* bytes of each line kept for parsing */
#define HTTP_HEADER_MAX (64 * 1024) /* status line + headers (or trailers) */

struct http_resp {
    uint8_t state;         /* private: enum in http_resp.c */
    bool chunked;          /* Transfer-Encoding ends in chunked */
    bool have_length;      /* Content-Length seen */
    bool close;            /* Connection: close (or HTTP/1.0 without keep-alive) */
    bool keep_alive;       /* Connection: keep-alive seen */
    bool truncated;        /* private: current line longer than line[] */
    int minor;             /* HTTP/1.<minor> */
    int status;            /* status code of the (final) response */
    uint32_t line_len;     /* private: bytes in line[] */
    uint32_t line_total;   /* private: real length of the current line */
    uint32_t header_bytes; /* private: bytes of this header or trailer block */
    uint64_t content_length;
    uint64_t remaining; /* private: body or chunk bytes still expected */
    uint64_t body_len;  /* body bytes of this response so far */
    const char *err;    /* static message after an error */
    char line[HTTP_LINE_KEEP];
};

/* Prepares r for the first response. */
void http_resp_init(struct http_resp *r);

/* Consumes bytes of the stream. Returns how many were consumed; it stops
 * right after the end of a response, so check http_resp_done() and, after
 * taking the result, call http_resp_init() and feed the rest. Returns -1 on
 * malformed input (r->err says why; the stream cannot be resynchronised). */
ssize_t http_resp_feed(struct http_resp *r, const char *p, size_t n);

/* Receives the body bytes of a response in order, chunk framing removed:
 * p[0..n) are body bytes off..off+n-1. A nonzero return rejects them. */
typedef int (*http_body_fn)(void *ctx, const char *p, size_t n, uint64_t off);

/* http_resp_feed that also hands every body byte to fn (may be NULL). When
 * fn rejects bytes it returns -1 with r->err = "body rejected". */
ssize_t http_resp_feed_body(struct http_resp *r, const char *p, size_t n, http_body_fn fn,
                            void *ctx);

/* True once a complete response has been parsed. */
bool http_resp_done(const struct http_resp *r);

/* True when no byte of a response has been seen yet. */
bool http_resp_idle(const struct http_resp *r);

/* The peer closed the stream. Returns 1 if this ended a close-delimited
 * body (the response is now done), 0 if no response was in progress, -1 if a
 * response was cut short (r->err set). */
int http_resp_eof(struct http_resp *r);

#endif
