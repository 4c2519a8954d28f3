/* tls.c - the TLS client side of mux-stress (see tls.h). */
#include "tls.h"

#include <stdio.h>
#include <string.h>

#ifdef STRESS_HAVE_TLS
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

static SSL_CTX *ctx;

bool stls_available(void)
{
    return true;
}

static int ctx_error(const char *what)
{
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    fprintf(stderr, "mux-stress: %s: %s\n", what, buf);
    SSL_CTX_free(ctx);
    ctx = NULL;
    return -1;
}

int stls_init(const struct stress_opts *o)
{
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return ctx_error("TLS context");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* Full handshakes only: no tickets kept, no sessions cached. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    /* The write path retries a blocked record from the ring, where the
     * bytes are the same but the address may differ. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (o->insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (o->cacert ? SSL_CTX_load_verify_locations(ctx, o->cacert, NULL) != 1
                      : SSL_CTX_set_default_verify_paths(ctx) != 1)
            return ctx_error(o->cacert ? o->cacert : "the system's CA certificates");
    }
    if (o->proto == PROTO_HTTP) {
        static const unsigned char alpn[] = "\x08http/1.1";
        if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0)
            return ctx_error("ALPN");
    }
    return 0;
}

void stls_cleanup(void)
{
    SSL_CTX_free(ctx);
    ctx = NULL;
}

static bool is_ip_literal(const char *host)
{
    unsigned char a[16];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

SSL *stls_new(int fd, const struct stress_opts *o)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return NULL;
    bool ip = is_ip_literal(o->host);
    int ok = SSL_set_fd(ssl, fd);
    if (ok && !ip)
        ok = SSL_set_tlsext_host_name(ssl, o->host); /* SNI is for names only */
    if (ok && !o->insecure)
        ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), o->host)
                : SSL_set1_host(ssl, o->host);
    if (!ok) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_connect_state(ssl);
    return ssl;
}

void stls_free(SSL *ssl, bool close_notify)
{
    if (!ssl)
        return;
    if (close_notify)
        SSL_shutdown(ssl); /* sends ours; the server's is not waited for */
    SSL_free(ssl);
}

static enum stls_io result(SSL *ssl, int rc)
{
    switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        return STLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return STLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return STLS_EOF;
    case SSL_ERROR_SSL:
        /* The server's FIN without close_notify: the socket's end, like a
         * plain FIN (the protocol decides whether a reply was cut). */
        if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            ERR_clear_error();
            return STLS_EOF;
        }
        return STLS_ERROR;
    default:
        return STLS_ERROR;
    }
}

enum stls_io stls_handshake(SSL *ssl)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(ssl);
    return rc == 1 ? STLS_OK : result(ssl, rc);
}

enum stls_io stls_read(SSL *ssl, void *buf, size_t len, size_t *n)
{
    ERR_clear_error();
    return SSL_read_ex(ssl, buf, len, n) == 1 ? STLS_OK : result(ssl, 0);
}

enum stls_io stls_write(SSL *ssl, const void *buf, size_t len, size_t *n)
{
    ERR_clear_error();
    return SSL_write_ex(ssl, buf, len, n) == 1 ? STLS_OK : result(ssl, 0);
}

const char *stls_last_error(SSL *ssl, char *buf, size_t len)
{
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    unsigned long e = ERR_peek_last_error();
    if (v != X509_V_OK)
        snprintf(buf, len, "certificate verify failed: %s", X509_verify_cert_error_string(v));
    else if (e)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "%s", errno ? strerror(errno) : "connection closed during TLS");
    ERR_clear_error();
    return buf;
}

#else /* no OpenSSL: --tls is refused by the options */

bool stls_available(void)
{
    return false;
}

int stls_init(const struct stress_opts *o)
{
    (void)o;
    fprintf(stderr, "mux-stress: built without OpenSSL: TLS is not available\n");
    return -1;
}

void stls_cleanup(void)
{
}

struct ssl_st *stls_new(int fd, const struct stress_opts *o)
{
    (void)fd, (void)o;
    return NULL;
}

void stls_free(struct ssl_st *ssl, bool close_notify)
{
    (void)ssl, (void)close_notify;
}

enum stls_io stls_handshake(struct ssl_st *ssl)
{
    (void)ssl;
    return STLS_ERROR;
}

enum stls_io stls_read(struct ssl_st *ssl, void *buf, size_t len, size_t *n)
{
    (void)ssl, (void)buf, (void)len, (void)n;
    return STLS_ERROR;
}

enum stls_io stls_write(struct ssl_st *ssl, const void *buf, size_t len, size_t *n)
{
    (void)ssl, (void)buf, (void)len, (void)n;
    return STLS_ERROR;
}

const char *stls_last_error(struct ssl_st *ssl, char *buf, size_t len)
{
    (void)ssl;
    snprintf(buf, len, "TLS not available");
    return buf;
}
#endif
