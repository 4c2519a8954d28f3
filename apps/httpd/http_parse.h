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
 * http_request_check() returns 0 or -400 / -501 in the same style, and
 * http_chunked_decode() (a chunked request body, RFC 9112 section 7.1)
 * 1, -2, -400 or -413.
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
     * lives). On other returns the fields are unspecified, except
     * method_id: it is set as soon as the method token is complete (so an
     * error page after a HEAD goes without a body, RFC 9110 9.3.2) and is
     * HTTP_METHOD_OTHER before that. */
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
    bool chunked;      /* a chunked body follows instead (http_chunked_decode) */
    struct http_span if_none_match;
    struct http_span if_modified_since;
    struct http_span range;
    struct http_span if_range;
};

/* Semantic checks of a parsed head and extraction of its facts.
 * Returns 0, or:
 *   -400: HTTP/1.1 without Host, more than one Host, a Content-Length that
 *         is not a plain decimal number (or does not fit 63 bits), or more
 *         than one Content-Length; and every Transfer-Encoding a request
 *         smuggler would use (RFC 9112 6.1, 6.3): together with
 *         Content-Length, in an HTTP/1.0 request, an empty or malformed
 *         coding list, chunked more than once, or chunked not last (so an
 *         unknown coding alone, "gzip", is 400 too: the length is unknown);
 *   -501: a coding other than chunked before a final chunked ("gzip,
 *         chunked"): well framed, but not a coding we decode.
 * A valid "Transfer-Encoding: chunked" sets info->chunked (body_len 0).
 * info->keep_alive is filled even on error (the caller closes anyway). */
int http_request_check(const struct http_request *req, struct http_request_info *info);

/* ---- chunked request bodies (RFC 9112 section 7.1) ------------------ */

/* A chunk-size line (size and extensions, without CRLF) longer than this
 * is 400. */
#define HTTP_CHUNK_LINE_MAX 4096
/* Framing bytes (chunk lines, CRLFs, trailer fields) a body may carry
 * beyond its data bytes; more is 413 (a body of tiny chunks or a huge
 * trailer section costs its sender as much as it costs us). */
#define HTTP_CHUNK_FRAMING_SLACK (64u << 10)

/* The decoder's state between calls: zero it (or http_chunked_init). */
struct http_chunked {
    uint64_t remaining;  /* data bytes left in the current chunk */
    uint64_t data;       /* data bytes so far */
    uint64_t framing;    /* every other byte so far */
    uint8_t state;
    int16_t error;       /* the status once failed */
};

void http_chunked_init(struct http_chunked *d);

/* Decodes (and discards) the chunked body continuing at buf[0..len).
 * Unlike the head parser it keeps state in *d, but it never consumes half
 * a line: *used is what the caller may drop; the rest must be offered
 * again, at the front, with later bytes. Returns:
 *    1    the body is complete: it ended *used bytes into buf (what follows
 *         is the next request);
 *   -2    more bytes needed;
 *   -400  malformed: a chunk size that is not 1*HEXDIG ("0x1", "+1", " 1",
 *         ""), one that does not fit 63 bits, bad extension syntax, a line
 *         longer than HTTP_CHUNK_LINE_MAX, a bare LF or bare CR in a chunk
 *         line or a trailer line, chunk data not followed by CRLF, a
 *         malformed trailer field (trailers are parsed and ignored);
 *   -413  more than max_data data bytes, or more framing than the data plus
 *         HTTP_CHUNK_FRAMING_SLACK.
 * Chunk extensions are checked for syntax and ignored. After 1 or an error
 * the decoder stays put (further calls return the same). */
int http_chunked_decode(struct http_chunked *d, const char *buf, size_t len, uint64_t max_data,
                        size_t *used);

#endif
