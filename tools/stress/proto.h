/* proto.h - the protocol operations of mux-stress: build request number N of
 * a connection (zero-copy: a pointer into a shared read-only buffer) and
 * verify reply bytes, arriving in any segmentation, against the connection's
 * outstanding requests.
 *
 * echo/upper: request N is `size` bytes taken at a pseudo-random offset (a
 * hash of connection and N) of a random pattern, so consecutive requests
 * differ and a server replaying stale bytes is caught. The reply must be the
 * same bytes (upper: ASCII a-z upper-cased), byte for byte, in order.
 * http: a keep-alive GET; each reply must parse, have status 200 and a body
 * equal, byte for byte, to the reference (body_ref.h): --expect-file, or the
 * run's first response. */
#ifndef STRESS_PROTO_H
#define STRESS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "body_ref.h"
#include "http_resp.h"
#include "options.h"
#include "reqring.h"

#define PATTERN_SLACK 4096 /* distinct payload offsets per request */

/* Shared by all threads; read-only after proto_init except `ref` (see
 * body_ref.h for its thread rules). */
struct proto {
    enum proto_kind kind;
    uint32_t size;      /* echo/upper request bytes */
    size_t pattern_len; /* size + PATTERN_SLACK */
    uint8_t *tx;        /* request pattern */
    uint8_t *rx;        /* expected reply pattern (tx, or tx upper-cased) */
    char *http_req;     /* the GET request */
    uint32_t http_req_len;
    struct body_ref ref; /* http: the body every response must carry */
};

/* Per-connection verifier state. */
struct proto_rx {
    uint64_t conn; /* the connection's run-wide id (set once, kept by reset) */
    uint32_t pos;  /* echo/upper: reply bytes of the head request seen */
    bool closing; /* http: the server announced Connection: close */
    struct http_resp http;
};

struct verify_err {
    char msg[200];
};

/* Builds the patterns or the HTTP request. 0 or -1 (out of memory). */
int proto_init(struct proto *p, const struct stress_opts *o, uint64_t seed);
void proto_free(struct proto *p);

/* http: every body must equal the file at path (--expect-file). 0, or -1
 * with errno set. */
int proto_expect_file(struct proto *p, const char *path);

/* May connection rx->conn send a request now? False only in http runs
 * without --expect-file while another connection fetches the reference. */
static inline bool proto_may_send(struct proto *p, const struct proto_rx *rx)
{
    return p->kind != PROTO_HTTP || body_ref_ready(&p->ref) ||
           body_ref_may_send(&p->ref, rx->conn);
}

/* True once requests of every connection may flow (see proto_may_send). */
static inline bool proto_ready(const struct proto *p)
{
    return p->kind != PROTO_HTTP || body_ref_ready(&p->ref);
}

/* rx's connection ended: gives up a reference capture it was doing. */
void proto_conn_ended(struct proto *p, const struct proto_rx *rx);

/* Fills r (off, len, seq) for request `seq` of connection slot `conn`. */
void proto_request(const struct proto *p, uint32_t conn, uint64_t seq, struct req *r);

/* The wire bytes of r. */
const void *proto_req_bytes(const struct proto *p, const struct req *r);

/* Resets rx for a new connection (rx->conn is kept). */
void proto_rx_reset(struct proto_rx *rx);

/* Verifies reply bytes against the requests ring[head, tail). On return
 * *done holds how many requests from head are now completely answered (the
 * caller pops them before the next call). Returns 0, or -1 on the first
 * verification failure (err filled; bytes after it are not examined). */
int proto_feed(struct proto *p, struct proto_rx *rx, const struct reqring *ring, const char *data,
               size_t len, uint32_t *done, struct verify_err *err);

/* The server closed the connection. *done as above (a close-delimited http
 * body completes here). Returns 0, or -1 if that completed response failed
 * verification. Requests outstanding beyond *done were never answered: the
 * caller counts them as lost, unless rx->closing says the server announced
 * the close (http), when they may be sent again. */
int proto_eof(struct proto *p, struct proto_rx *rx, const struct reqring *ring, uint32_t *done,
              struct verify_err *err);

/* splitmix64: the one hash/PRNG step used for patterns and offsets. */
uint64_t proto_mix(uint64_t x);

#endif
