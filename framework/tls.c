/* tls.c - TLS over OpenSSL 3 for accepted connections: the server context
 * (certificate chain, key, TLS 1.2/1.3, ALPN, session tickets), the
 * non-blocking handshake, record I/O for the read and write paths, and
 * close_notify. The socket stays the connection's fd: OpenSSL reads and
 * writes it directly (a socket BIO), so readiness means the same thing as
 * without TLS, and kernel TLS can take over the records when the kernel
 * offers it. The connection states and what the results mean are decided
 * in conn.c; this file only does the I/O. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler.h"
#include "conn.h"
#include "mux/log.h"
#include "tls.h"

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

#include "outq.h"
#include "worker.h"

/* ---- the server context (main thread) ---- */

/* OpenSSL's reason for a failure (the first error queued: the cause, not
 * the layers that passed it on), and the queue cleared. */
static const char *ssl_reason(char *buf, size_t size)
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
                ssl_reason(why, sizeof(why)));
        return -EINVAL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, o->tls_key, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ERR_peek_error();
        bool other = ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH;
        set_err(err, "server.tls_key", other ? "the key in %s does not match the certificate: %s"
                                             : "no usable PEM private key in %s: %s",
                o->tls_key, ssl_reason(why, sizeof(why)));
        return -EINVAL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        set_err(err, "server.tls_key", "the key in %s does not match the certificate in %s: %s",
                o->tls_key, o->tls_cert, ssl_reason(why, sizeof(why)));
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
                ssl_reason(why, sizeof(why)));
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

/* The worker's one record-sized scratch buffer (coalescing, file reads). */
static unsigned char *scratch(struct mux__worker *w)
{
    if (!w->tls_buf)
        w->tls_buf = malloc(MUX__TLS_RECORD);
    return w->tls_buf;
}

/* ---- connections ---- */

int mux__tls_start(struct mux_conn *c)
{
    SSL *ssl = SSL_new(c->w->tls);
    if (!ssl || SSL_set_fd(ssl, c->fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        return -ENOMEM;
    }
    SSL_set_accept_state(ssl);
    c->ssl = ssl;
    return 0;
}

/* A failed call: the errno it stands for (0 = retry, flags set). */
static int io_error(struct mux_conn *c, int ret, bool writing)
{
    int sys = errno;
    int e = SSL_get_error(c->ssl, ret);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        if (writing)
            c->flags |= CONN_TLS_WANT_READ;
        return 0;
    case SSL_ERROR_WANT_WRITE:
        if (!writing)
            c->flags |= CONN_TLS_WANT_WRITE;
        return 0;
    case SSL_ERROR_ZERO_RETURN: /* reads handle it before; a write cannot go on */
        return EPIPE;
    case SSL_ERROR_SYSCALL:
        c->flags |= CONN_TLS_FATAL;
        ERR_clear_error();
        return sys && sys != EAGAIN ? sys : ECONNRESET;
    default: {
        c->flags |= CONN_TLS_FATAL;
        unsigned long err = ERR_peek_last_error();
        if (mux_log_enabled(MUX_LOG_DEBUG)) {
            char why[256];
            mux_log(MUX_LOG_DEBUG, "conn %llu: TLS: %s", (unsigned long long)c->id,
                    ssl_reason(why, sizeof(why)));
        }
        ERR_clear_error();
        /* A TCP end without close_notify is a truncation, not an EOF. */
        if (ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
            return ECONNRESET;
        return EPROTO;
    }
    }
}

int mux__tls_handshake(struct mux_conn *c)
{
    c->flags &= ~CONN_TLS_WANT_WRITE;
    ERR_clear_error();
    int ret = SSL_do_handshake(c->ssl);
    if (ret == 1) {
        c->w->local.tls_handshakes++;
        return 1;
    }
    int e = SSL_get_error(c->ssl, ret);
    if (e == SSL_ERROR_WANT_READ)
        return 0;
    if (e == SSL_ERROR_WANT_WRITE) {
        c->flags |= CONN_TLS_WANT_WRITE;
        return 0;
    }
    int err = io_error(c, ret, false);
    c->w->local.tls_failures++;
    return -(err ? err : EPROTO);
}

ssize_t mux__tls_read(struct mux_conn *c, void *buf, size_t len)
{
    c->flags &= ~CONN_TLS_WANT_WRITE;
    ERR_clear_error();
    size_t n = 0;
    int ret = SSL_read_ex(c->ssl, buf, len, &n);
    if (ret == 1)
        return (ssize_t)n;
    if (SSL_get_error(c->ssl, ret) == SSL_ERROR_ZERO_RETURN)
        return 0; /* close_notify: the orderly end of the peer's data */
    int err = io_error(c, ret, false);
    errno = err ? err : EAGAIN;
    return -1;
}

bool mux__tls_pending(const struct mux_conn *c)
{
    return SSL_pending(c->ssl) > 0;
}

bool mux__tls_partial(const struct mux_conn *c)
{
    return SSL_pending(c->ssl) == 0 && SSL_has_pending(c->ssl);
}

/* One SSL_write_ex; returns as mux__tls_send. */
static ssize_t write_record(struct mux_conn *c, const void *buf, size_t len)
{
    c->flags &= ~CONN_TLS_WANT_READ;
    ERR_clear_error();
    size_t n = 0;
    int ret = SSL_write_ex(c->ssl, buf, len, &n);
    if (ret == 1)
        return (ssize_t)n;
    int err = io_error(c, ret, true);
    return err ? -err : 0;
}

/* Kernel TLS carries the connection: the kernel encrypts file ranges
 * (SSL_sendfile), no copy here. */
static bool ktls_send(const struct mux_conn *c)
{
    return BIO_get_ktls_send(SSL_get_wbio(c->ssl));
}

/* Copies the queue's head into buf as one record's plaintext: memory as it
 * is, file ranges read with pread (under kernel TLS it stops at the first
 * file range, which SSL_sendfile sends). A response's headers and the
 * start of its file, or many small pipelined responses, leave as one
 * record and one write instead of one each. Returns the bytes gathered, or
 * a negative errno when nothing could be. */
static ssize_t gather_record(const struct mux_conn *c, unsigned char *buf, bool ktls)
{
    size_t n = 0;
    for (const struct mux__chunk *k = c->out.head; k && n < MUX__TLS_RECORD; k = k->next) {
        size_t room = MUX__TLS_RECORD - n;
        if (k->fd < 0) {
            size_t m = k->end - k->start < room ? k->end - k->start : room;
            memcpy(buf + n, k->data + k->start, m);
            n += m;
            continue;
        }
        if (ktls)
            break;
        size_t want = k->remaining < room ? k->remaining : room;
        ssize_t r = want ? pread(k->fd, buf + n, want, k->offset) : 0;
        if (r <= 0 && want && n == 0)
            return r < 0 ? -errno : -EIO; /* -EIO: the file shrank under us */
        if (r < 0 || (size_t)r < want)
            break; /* send what is gathered; the next call reports the problem */
        n += (size_t)r;
    }
    return (ssize_t)n;
}

ssize_t mux__tls_send(struct mux_conn *c, size_t *wanted)
{
    const struct mux__chunk *head = c->out.head;
    bool ktls = ktls_send(c);
    if (head->fd >= 0 && ktls) {
        size_t want = head->remaining < (1u << 20) ? head->remaining : (1u << 20);
        *wanted = want;
        c->flags &= ~CONN_TLS_WANT_READ;
        ERR_clear_error();
        ossl_ssize_t n = SSL_sendfile(c->ssl, head->fd, head->offset, want, 0);
        if (n > 0)
            return n;
        int err = io_error(c, (int)n, true);
        return err ? -err : 0;
    }
    size_t len = head->end - head->start;
    if (head->fd < 0 && (len >= MUX__TLS_RECORD || !head->next)) { /* no copy needed */
        *wanted = len < MUX__TLS_RECORD ? len : MUX__TLS_RECORD;
        return write_record(c, head->data + head->start, *wanted);
    }
    unsigned char *buf = scratch(c->w);
    if (!buf)
        return -ENOMEM;
    ssize_t n = gather_record(c, buf, ktls);
    if (n <= 0)
        return n < 0 ? n : -EIO;
    *wanted = (size_t)n;
    return write_record(c, buf, (size_t)n);
}

void mux__tls_close_notify(struct mux_conn *c)
{
    if ((c->flags & CONN_TLS_FATAL) || !SSL_is_init_finished(c->ssl) ||
        (SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN))
        return;
    ERR_clear_error();
    if (SSL_shutdown(c->ssl) < 0) /* the alert could not be written: the FIN still goes */
        ERR_clear_error();
}

void mux__tls_free(struct mux_conn *c)
{
    SSL_free(c->ssl);
    c->ssl = NULL;
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

void mux__tls_ctx_free(struct ssl_ctx_st *ctx) { (void)ctx; }
void mux__tls_worker_init(struct mux__worker *w, struct ssl_ctx_st *ctx) { (void)w, (void)ctx; }
void mux__tls_worker_reload(struct mux__worker *w, struct ssl_ctx_st *ctx) { (void)w, (void)ctx; }
void mux__tls_worker_take(struct mux__worker *w) { (void)w; }
void mux__tls_worker_destroy(struct mux__worker *w) { (void)w; }
int mux__tls_start(struct mux_conn *c) { (void)c; return -ENOTSUP; }
int mux__tls_handshake(struct mux_conn *c) { (void)c; return -ENOTSUP; }
ssize_t mux__tls_read(struct mux_conn *c, void *buf, size_t len)
{
    (void)c, (void)buf, (void)len;
    errno = ENOTSUP;
    return -1;
}
bool mux__tls_pending(const struct mux_conn *c) { (void)c; return false; }
bool mux__tls_partial(const struct mux_conn *c) { (void)c; return false; }
ssize_t mux__tls_send(struct mux_conn *c, size_t *wanted) { (void)c, (void)wanted; return -ENOTSUP; }
void mux__tls_close_notify(struct mux_conn *c) { (void)c; }
void mux__tls_free(struct mux_conn *c) { (void)c; }

#endif
