/* tls.h - mux-stress over TLS (--tls, https:// targets): one client
 * SSL_CTX for the run, one SSL per connection, driven by the load thread's
 * readiness like the plain socket (never blocking). Every handshake is a
 * full one (no session resumption), so --reconnect 1 measures new TLS
 * handshakes per second. Without OpenSSL at build time stls_available() is
 * false and the options refuse --tls. */
#ifndef STRESS_TLS_H
#define STRESS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "options.h"

struct ssl_st;

#define STLS_RECORD (16 * 1024) /* plaintext of one full TLS record */

/* Outcome of a TLS call on a non-blocking socket. */
enum stls_io {
    STLS_OK,         /* progress (bytes moved, or the handshake is done) */
    STLS_WANT_READ,  /* retry when the socket is readable */
    STLS_WANT_WRITE, /* retry when the socket is writable */
    STLS_EOF,        /* the server's close_notify, or its FIN */
    STLS_ERROR,      /* a protocol, certificate or socket error: see stls_last_error */
};

bool stls_available(void);

/* Main thread, before the load threads start. Builds the shared client
 * context from o (--insecure, --cacert, ALPN http/1.1 for http). 0, or -1
 * after printing why. */
int stls_init(const struct stress_opts *o);
void stls_cleanup(void);

/* A client SSL on connected socket fd, SNI and host-name check from o. */
struct ssl_st *stls_new(int fd, const struct stress_opts *o);
void stls_free(struct ssl_st *ssl, bool close_notify);

enum stls_io stls_handshake(struct ssl_st *ssl);
/* *n: bytes read or written when STLS_OK. */
enum stls_io stls_read(struct ssl_st *ssl, void *buf, size_t len, size_t *n);
enum stls_io stls_write(struct ssl_st *ssl, const void *buf, size_t len, size_t *n);

/* The calling thread's last TLS error as text (certificate verification
 * failures included). */
const char *stls_last_error(struct ssl_st *ssl, char *buf, size_t len);

#endif
