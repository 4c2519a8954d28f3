/* http_parse.h - the HTTP/1.x request-head parser of mux-httpd.
 *
 * Shaped like picohttpparser: stateless per call, zero-copy (every string
 * points into the caller's buffer), no allocation, a caller-provided header
 * array. The caller accumulates bytes and calls again with the longer buffer
 * until the head is complete; nothing is remembered between calls except the
 * optional `last_len` hint. Everything above the syntax (Host rules, body
 * framing, keep-alive) is decided by http_request_check().
 *
 * Return convention of the parser (stated once, used everywhere below):
 *   > 0   the head is complete; the value is its length in bytes, including
 *         the blank line that ends it (a body, if any, follows).
 *   -2    incomplete: call again with more bytes.
 *   < -2  an error, the negated HTTP status to answer with:
 *         -400 malformed request line or header, -414 request line too
 *         long, -431 header section too large or too many fields,
 *         -505 HTTP major version other than 1.
 * http_request_check() returns 0 or -400 / -501 in the same style.
 */
#ifndef MUX_HTTPD_HTTP_PARSE_H
#define MUX_HTTPD_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_PARSE_INCOMPLETE (-2)
#define HTTP_PARSE_BAD_REQUEST (-400)
#define HTTP_PARSE_URI_TOO_LONG (-414)
#define HTTP_PARSE_HEADERS_TOO_LARGE (-431)
#define HTTP_PARSE_BAD_VERSION (-505)
#define HTTP_PARSE_NOT_IMPLEMENTED (-501)

/* Compile-time defaults; override per server with struct http_limits. */
#ifndef HTTP_MAX_REQUEST_LINE
#define HTTP_MAX_REQUEST_LINE 8192 /* bytes, without the line ending */
#endif
#ifndef HTTP_MAX_HEADERS
#define HTTP_MAX_HEADERS 64 /* header fields */
#endif
#ifndef HTTP_MAX_HEADER_BYTES
#define HTTP_MAX_HEADER_BYTES 16384 /* header lines with their endings */
#endif

struct http_limits {
    size_t max_request_line;
    size_t max_headers;
    size_t max_header_bytes;
};

enum http_method {
    HTTP_METHOD_OTHER = 0, /* any other token: the server answers 405 */
    HTTP_METHOD_GET,
    HTTP_METHOD_HEAD,
};

/* One header field. name has no surrounding whitespace (whitespace before
 * the colon is an error); value has leading and trailing SP/HTAB trimmed and
 * may be empty. Neither is NUL-terminated. */
struct http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

struct http_request {
    /* In: the caller's array and its capacity. The effective header-count
     * limit is min(max_headers, limits->max_headers). */
    struct http_header *headers;
    size_t max_headers;

    /* Out, valid when the parser returned > 0 (and only while the buffer
     * lives). On other returns the fields are unspecified. */
    const char *method;
    size_t method_len;
    enum http_method method_id;
    const char *target; /* request-target as sent, percent-encoded */
    size_t target_len;
    int minor_version; /* HTTP/1.<minor>; 0 or 1 (2..9 are treated as 1) */
    size_t num_headers;
};

/* Parses the request head at the start of buf[0..len).
 * req: headers/max_headers in, the rest out (see struct).
 * last_len: 0, or the len of the previous call on the same growing buffer
 *   that returned -2. With it, a call whose new bytes contain no line feed
 *   returns -2 without rescanning, as long as the buffer is below the
 *   largest legal head; a syntax error inside such a partial line is then
 *   reported when its line feed arrives (or the size limit is reached)
 *   instead of at once. Pass 0 for exact early errors.
 * limits: NULL for the compile-time defaults.
 * Leading empty lines (CRLF or LF) are skipped and counted in the result.
 * Bare LF is accepted as a line ending (as nginx and RFC 7230 3.5 allow); a
 * CR not followed by LF is an error. Returns as described at the top. */
int http_parse_request(const char *buf, size_t len, struct http_request *req, size_t last_len,
                       const struct http_limits *limits);

/* The HTTP status for a negative parser or check result (-2 gives 0). */
int http_parse_status(int rc);

/* First header named `name` (NUL-terminated, ASCII case-insensitive), or
 * NULL. */
const struct http_header *http_header_find(const struct http_request *req, const char *name);

/* How many header fields are named `name`. */
size_t http_header_count(const struct http_request *req, const char *name);

/* True when the comma-separated list v[0..n) (OWS allowed around elements,
 * empty elements ignored) contains `token`, case-insensitively. */
bool http_token_list_has(const char *v, size_t n, const char *token);

#define HTTP_CONN_CLOSE 0x1u
#define HTTP_CONN_KEEP_ALIVE 0x2u
/* HTTP_CONN_* bits of every Connection header of the request. */
unsigned http_connection_flags(const struct http_request *req);

/* A header value, or {NULL, 0} when the header is absent. */
struct http_span {
    const char *ptr;
    size_t len;
};

/* The request facts the rest of the server needs, see http_request_check. */
struct http_request_info {
    enum http_method method;
    int minor_version;
    bool keep_alive;   /* what the client asked for (1.1 default on, 1.0 off) */
    uint64_t body_len; /* Content-Length the caller must skip after the head */
    struct http_span if_none_match;
    struct http_span if_modified_since;
    struct http_span range;
    struct http_span if_range;
};

/* Semantic checks of a parsed head and extraction of its facts.
 * Returns 0, or:
 *   -400: HTTP/1.1 without Host, more than one Host, a Content-Length that
 *         is not a plain decimal number (or does not fit 63 bits), or more
 *         than one Content-Length;
 *   -501: any Transfer-Encoding (chunked request bodies are not supported,
 *         so the body length is unknown: answer and close).
 * info->keep_alive is filled even on error (the caller closes anyway). */
int http_request_check(const struct http_request *req, struct http_request_info *info);

#endif
