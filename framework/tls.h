/* tls.h - TLS for accepted connections (private): the server's OpenSSL
 * context, and the calls the connection code makes at its I/O sites when a
 * connection has an SSL object (c->ssl). Built without OpenSSL, every entry
 * point is a stub and a TLS configuration is refused by
 * mux__tls_ctx_new(), so the rest of the framework never tests for it.
 *
 * Threads: contexts are built and freed on the main thread and shared by
 * reference (OpenSSL's reference counts are atomic); each worker holds its
 * own reference and takes a reloaded one between loop turns. Every per
 * connection call runs on the owning worker's thread. */
#ifndef MUX_TLS_H
#define MUX_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "mux/config.h"
#include "mux/server.h"

struct ssl_ctx_st; /* SSL_CTX */
struct mux_conn;
struct mux__worker;
struct mux__chunk;

#define MUX__TLS_RECORD 16384           /* the largest TLS plaintext record */
#define MUX__TLS_HANDSHAKE_MS 10000     /* handshake deadline without an idle timeout */

/* ALPN protocol list in wire format (length-prefixed names), in the
 * server's order of preference. */
struct mux__alpn {
    unsigned char wire[256];
    unsigned len; /* 0 = no ALPN */
};

/* Any thread. "http/1.1,h2" -> wire format. 0, or -EINVAL with *msg set
 * (an empty name, a name over 255 bytes, a list over 255 bytes). */
int mux__tls_alpn_parse(const char *list, struct mux__alpn *out, const char **msg);

/* Main thread. The server context for o->tls_cert and o->tls_key (both
 * set), TLS 1.2 and 1.3, offering *alpn (which must outlive the context).
 * Returns 0 with *out set, or -EINVAL with *err naming the key, the file
 * and OpenSSL's reason. */
int mux__tls_ctx_new(const struct mux_options *o, const struct mux__alpn *alpn,
                     struct ssl_ctx_st **out, struct mux_error *err);

/* Any thread: drops a reference (NULL is ignored). */
void mux__tls_ctx_free(struct ssl_ctx_st *ctx);

/* Worker lifecycle. init (main thread, before the thread runs) takes a
 * reference to ctx (NULL: no TLS); reload (main thread) hands over a new
 * context, which take (worker thread, between loop turns) installs: live
 * connections keep the one they started with; destroy drops everything. */
void mux__tls_worker_init(struct mux__worker *w, struct ssl_ctx_st *ctx);
void mux__tls_worker_reload(struct mux__worker *w, struct ssl_ctx_st *ctx);
void mux__tls_worker_take(struct mux__worker *w);
void mux__tls_worker_destroy(struct mux__worker *w);

/* ---- per connection, worker thread ---- */

/* Creates c->ssl on c->fd, server side. 0 or -ENOMEM. */
int mux__tls_start(struct mux_conn *c);

/* One step of the handshake. 1 done; 0 in progress (CONN_TLS_WANT_WRITE
 * says which readiness it waits for); or a negative errno (EPROTO for
 * garbage and protocol failures, ECONNRESET for a peer gone). Counts
 * completions and failures in the worker's counters. */
int mux__tls_handshake(struct mux_conn *c);

/* Decrypted input into buf, as read(2) would answer: > 0 bytes, 0 for the
 * peer's close_notify, -1 with errno (EAGAIN: nothing decryptable now, and
 * CONN_TLS_WANT_WRITE set if OpenSSL must write first; ECONNRESET: the TCP
 * stream ended without close_notify; EPROTO: a protocol error). */
ssize_t mux__tls_read(struct mux_conn *c, void *buf, size_t len);

/* Decrypted bytes buffered inside OpenSSL, which no readiness will report. */
bool mux__tls_pending(const struct mux_conn *c);

/* Part of a record read and not decryptable yet: the rest comes with
 * readiness. */
bool mux__tls_partial(const struct mux_conn *c);

/* Writes the queue's head as one record of at most MUX__TLS_RECORD bytes:
 * memory chunks and file ranges (read with pread) gathered together in the
 * worker's scratch buffer, or a lone memory chunk written in place; under
 * kernel TLS a file range at the head goes with SSL_sendfile. *wanted is
 * set to the bytes offered. Returns bytes written, 0 when the socket is
 * full (CONN_TLS_WANT_READ set if OpenSSL must read first), or a negative
 * errno. A retry after 0 offers the same head again (the queue only grows
 * at its tail), as OpenSSL requires. */
ssize_t mux__tls_send(struct mux_conn *c, size_t *wanted);

/* Sends close_notify (once, best effort, never blocking) if the handshake
 * completed and no fatal TLS error happened. Before our FIN. */
void mux__tls_close_notify(struct mux_conn *c);

/* Frees c->ssl (no I/O). */
void mux__tls_free(struct mux_conn *c);

#endif
