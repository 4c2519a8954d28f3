/* tls/context.c - the server's TLS context over OpenSSL 3 (certificate
 * chain, key, TLS 1.2/1.3, ALPN, session tickets), each worker's reference
 * to it and its reloads, and the ALPN list's wire format. The per
 * connection transport is tls/transport.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler.h"
#include "mux/log.h"
#include "tls/tls.h"

static void set_err(struct mux_error *err, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(struct mux_error *err, const char *key, const char *fmt, ...)
{
    if (!err)
        return;
    memset(err, 0, sizeof(*err));
    snprintf(err->key, sizeof(err->key), "%s", key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

int mux__tls_alpn_parse(const char *list, struct mux__alpn *out, const char **msg)
{
    out->len = 0;
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || n > 255) {
            *msg = "protocol names must be 1 to 255 bytes, separated by commas";
            return -EINVAL;
        }
        if (out->len + 1 + n > sizeof(out->wire) - 1) {
            *msg = "the protocol list is longer than 255 bytes";
            return -EINVAL;
        }
        out->wire[out->len++] = (unsigned char)n;
        memcpy(out->wire + out->len, p, n);
        out->len += (unsigned)n;
        p += n + (end != NULL);
        if (end && !*p) {
            *msg = "protocol names must be 1 to 255 bytes, separated by commas";
            return -EINVAL;
        }
    }
    return 0;
}

#ifdef MUX_HAVE_OPENSSL

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "worker.h"

/* ---- the server context (main thread) ---- */

/* OpenSSL's reason for a failure (the first error queued: the cause, not
 * the layers that passed it on), and the queue cleared. */
const char *mux__tls_reason(char *buf, size_t size)
{
    unsigned long e = ERR_peek_error();
    const char *lib = e ? ERR_lib_error_string(e) : NULL;
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    if (why)
        snprintf(buf, size, "%s%s%s", lib ? lib : "", lib ? ": " : "", why);
    else
        snprintf(buf, size, "OpenSSL error %#lx", e);
    ERR_clear_error();
    return buf;
}

/* An encrypted key would make OpenSSL prompt on the terminal: refuse. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0;
}

/* The first of the server's protocols that the client offers; no overlap
 * goes on without ALPN (the client then speaks its default). */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    (void)ssl;
    const struct mux__alpn *a = arg;
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, a->wire, a->len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static int load_files(SSL_CTX *ctx, const struct mux_options *o, struct mux_error *err)
{
    char why[256];
    if (!o->tls_cert[0] || !o->tls_key[0]) {
        set_err(err, o->tls_cert[0] ? "server.tls_key" : "server.tls_cert",
                "TLS needs both server.tls_cert and server.tls_key");
        return -EINVAL;
    }
    if (access(o->tls_cert, R_OK) < 0) {
        set_err(err, "server.tls_cert", "cannot read %s: %s", o->tls_cert, strerror(errno));
        return -EINVAL;
    }
    if (access(o->tls_key, R_OK) < 0) {
        set_err(err, "server.tls_key", "cannot read %s: %s", o->tls_key, strerror(errno));
        return -EINVAL;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert) != 1) {
        set_err(err, "server.tls_cert", "no PEM certificate chain in %s: %s", o->tls_cert,
                mux__tls_reason(why, sizeof(why)));
        return -EINVAL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, o->tls_key, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ERR_peek_error();
        bool other = ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH;
        set_err(err, "server.tls_key", other ? "the key in %s does not match the certificate: %s"
                                             : "no usable PEM private key in %s: %s",
                o->tls_key, mux__tls_reason(why, sizeof(why)));
        return -EINVAL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        set_err(err, "server.tls_key", "the key in %s does not match the certificate in %s: %s",
                o->tls_key, o->tls_cert, mux__tls_reason(why, sizeof(why)));
        return -EINVAL;
    }
    return 0;
}

int mux__tls_ctx_new(const struct mux_options *o, const struct mux__alpn *alpn,
                     struct ssl_ctx_st **out, struct mux_error *err)
{
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        set_err(err, "server.tls_cert", "cannot create a TLS context: %s",
                mux__tls_reason(why, sizeof(why)));
        return -ENOMEM;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_default_passwd_cb(ctx, no_password);
    /* RELEASE_BUFFERS: an idle connection holds no record buffers.
     * ACCEPT_MOVING_WRITE_BUFFER: a write retried after WANT_WRITE is
     * regathered from the queue, possibly into another buffer (the bytes
     * are the same). ENABLE_KTLS: the kernel encrypts when it can. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_RENEGOTIATION);
    /* Resumption: TLS 1.3 tickets and TLS 1.2 tickets are on by default;
     * the id context also lets TLS 1.2 clients resume by session id. */
    static const unsigned char sid[] = "mux";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
    if (alpn && alpn->len)
        SSL_CTX_set_alpn_select_cb(ctx, select_alpn, (void *)alpn);
    int rc = load_files(ctx, o, err);
    if (rc < 0) {
        SSL_CTX_free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

void mux__tls_ctx_free(struct ssl_ctx_st *ctx)
{
    SSL_CTX_free(ctx);
}

/* ---- workers ---- */

void mux__tls_worker_init(struct mux__worker *w, struct ssl_ctx_st *ctx)
{
    if (ctx)
        SSL_CTX_up_ref(ctx);
    w->tls = ctx;
    atomic_init(&w->tls_reload, NULL);
    w->tls_buf = NULL;
}

void mux__tls_worker_reload(struct mux__worker *w, struct ssl_ctx_st *ctx)
{
    SSL_CTX_up_ref(ctx);
    SSL_CTX_free(atomic_exchange_explicit(&w->tls_reload, ctx, memory_order_acq_rel));
}

void mux__tls_worker_take(struct mux__worker *w)
{
    SSL_CTX *n = atomic_exchange_explicit(&w->tls_reload, NULL, memory_order_acq_rel);
    if (!n)
        return;
    SSL_CTX_free(w->tls); /* connections made with it hold their own reference */
    w->tls = n;
}

void mux__tls_worker_destroy(struct mux__worker *w)
{
    SSL_CTX_free(atomic_exchange(&w->tls_reload, NULL));
    SSL_CTX_free(w->tls);
    w->tls = NULL;
    free(w->tls_buf);
    w->tls_buf = NULL;
}

#else /* !MUX_HAVE_OPENSSL: TLS refused at configuration time */

int mux__tls_ctx_new(const struct mux_options *o, const struct mux__alpn *alpn,
                     struct ssl_ctx_st **out, struct mux_error *err)
{
    (void)o, (void)alpn;
    *out = NULL;
    set_err(err, "server.tls_cert", "TLS is not available: mux was built without OpenSSL 3");
    return -EINVAL;
}

#endif
