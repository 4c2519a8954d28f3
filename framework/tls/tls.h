/* tls/tls.h - TLS for accepted connections (private): the server's OpenSSL
 * context (tls/context.c) and the TLS transport (tls/transport.c, declared
 * in transport.h as mux__transport_tls). Built without OpenSSL, only
 * mux__tls_alpn_parse() and mux__tls_ctx_new() exist (the latter refuses a
 * TLS configuration with a clear error) and the worker calls below are
 * no-ops, so the rest of the framework never tests for it.
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
struct mux__worker;

#define MUX__TLS_RECORD 16384 /* the largest TLS plaintext record */

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

#ifdef MUX_HAVE_OPENSSL
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

/* OpenSSL's reason for the first queued error, and the queue cleared. */
const char *mux__tls_reason(char *buf, size_t size);
#else
/* Without OpenSSL no context is ever made (mux__tls_ctx_new refuses). */
static inline void mux__tls_ctx_free(struct ssl_ctx_st *ctx) { (void)ctx; }
static inline void mux__tls_worker_init(struct mux__worker *w, struct ssl_ctx_st *ctx)
{
    (void)w, (void)ctx;
}
static inline void mux__tls_worker_reload(struct mux__worker *w, struct ssl_ctx_st *ctx)
{
    (void)w, (void)ctx;
}
static inline void mux__tls_worker_take(struct mux__worker *w) { (void)w; }
static inline void mux__tls_worker_destroy(struct mux__worker *w) { (void)w; }
#endif

#endif
