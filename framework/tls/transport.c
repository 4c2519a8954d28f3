/* tls/transport.c - the TLS transport (transport.h): OpenSSL on the
 * connection's socket (a socket BIO), so readiness means what it means
 * without TLS and kernel TLS can take over the records when the kernel
 * offers it. The non-blocking handshake, record reads, records gathered
 * from the output queue (SSL_sendfile under kernel TLS), close_notify.
 * The readiness OpenSSL waits for on its own (a read that must write, a
 * write that must read) lives in c->tstate. Worker thread only. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "conn.h"
#include "fault.h"
#include "mux/log.h"
#include "poller.h"
#include "tls/tls.h"

/* c->tstate */
enum {
    TLS_WANT_WRITE = 1u << 0, /* the handshake or a read waits for writability */
    TLS_WANT_READ = 1u << 1,  /* a write waits for readability */
    TLS_FATAL = 1u << 2,      /* a fatal error: no close_notify */
};


static SSL *ssl_of(const struct mux_conn *c)
{
    return c->tp;
}

/* The session on c->fd, server side, registered for `want`. */
static int tls_start(struct mux_conn *c, uint32_t want)
{
    SSL *ssl = mux__fault(FAULT_ALLOC) ? NULL : SSL_new(c->w->tls);
    if (!ssl || SSL_set_fd(ssl, c->fd) != 1) {
        SSL_free(ssl);
        ERR_clear_error();
        c->interest = MUX__UNWATCHED;
        return -ENOMEM;
    }
    SSL_set_accept_state(ssl);
    c->tp = ssl;
    int rc = mux__socket_watch(c, want);
    if (rc < 0) {
        SSL_free(ssl);
        c->tp = NULL;
    }
    return rc;
}

/* A failed call: the errno it stands for (0 = retry, flags set). */
static int io_error(struct mux_conn *c, int ret, bool writing)
{
    int sys = errno;
    int e = SSL_get_error(ssl_of(c), ret);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        if (writing)
            c->tstate |= TLS_WANT_READ;
        return 0;
    case SSL_ERROR_WANT_WRITE:
        if (!writing)
            c->tstate |= TLS_WANT_WRITE;
        return 0;
    case SSL_ERROR_ZERO_RETURN: /* reads handle it before; a write cannot go on */
        return EPIPE;
    case SSL_ERROR_SYSCALL:
        c->tstate |= TLS_FATAL;
        ERR_clear_error();
        return sys && sys != EAGAIN ? sys : ECONNRESET;
    default: {
        c->tstate |= TLS_FATAL;
        unsigned long err = ERR_peek_last_error();
        if (mux_log_enabled(MUX_LOG_DEBUG)) {
            char why[256];
            mux_log(MUX_LOG_DEBUG, "conn %llu: TLS: %s", (unsigned long long)c->id,
                    mux__tls_reason(why, sizeof(why)));
        }
        ERR_clear_error();
        /* A TCP end without close_notify is a truncation, not an EOF. */
        if (ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
            return ECONNRESET;
        return EPROTO;
    }
    }
}

/* One step: 1 done; 0 in progress (TLS_WANT_WRITE says which readiness
 * it waits for); or a negative errno (EPROTO for garbage and protocol
 * failures, ECONNRESET for a peer gone). Counts completions and failures
 * in the worker's counters. */
static int tls_handshake(struct mux_conn *c)
{
    c->tstate &= ~TLS_WANT_WRITE;
    ERR_clear_error();
    int ret = SSL_do_handshake(ssl_of(c));
    if (ret == 1) {
        c->w->local.tls_handshakes++;
        return 1;
    }
    int e = SSL_get_error(ssl_of(c), ret);
    if (e == SSL_ERROR_WANT_READ)
        return 0;
    if (e == SSL_ERROR_WANT_WRITE) {
        c->tstate |= TLS_WANT_WRITE;
        return 0;
    }
    int err = io_error(c, ret, false);
    c->w->local.tls_failures++;
    return -(err ? err : EPROTO);
}

/* Decrypted input, as read(2) answers: 0 for the peer's close_notify,
 * -1 with EAGAIN when nothing is decryptable now (TLS_WANT_WRITE set if
 * OpenSSL must write first), ECONNRESET when the TCP stream ended without
 * close_notify, EPROTO for a protocol error. Before the handshake (a PROXY
 * header) the socket is read as it is. */
static ssize_t tls_read(struct mux_conn *c, void *buf, size_t len, bool peek)
{
    if (peek || c->state == CONN_PROXY_HEADER)
        return recv(c->fd, buf, len, peek ? MSG_PEEK : 0);
    c->tstate &= ~TLS_WANT_WRITE;
    ERR_clear_error();
    size_t n = 0;
    int ret = SSL_read_ex(ssl_of(c), buf, len, &n);
    if (ret == 1)
        return (ssize_t)n;
    if (SSL_get_error(ssl_of(c), ret) == SSL_ERROR_ZERO_RETURN)
        return 0; /* close_notify: the orderly end of the peer's data */
    int err = io_error(c, ret, false);
    errno = err ? err : EAGAIN;
    return -1;
}

/* Decrypted bytes buffered inside OpenSSL (which no readiness reports),
 * or part of a record read and not decryptable yet. */
static int tls_held(const struct mux_conn *c)
{
    SSL *ssl = ssl_of(c);
    if (SSL_pending(ssl) > 0)
        return HELD_READY;
    return SSL_has_pending(ssl) ? HELD_PARTIAL : HELD_NONE;
}

/* One SSL_write_ex; returns as send_record. */
static ssize_t write_record(struct mux_conn *c, const void *buf, size_t len)
{
    c->tstate &= ~TLS_WANT_READ;
    ERR_clear_error();
    size_t n = 0;
    if (mux__fault(FAULT_SEND))
        return -EIO;
    int ret = SSL_write_ex(ssl_of(c), buf, len, &n);
    if (ret == 1)
        return (ssize_t)n;
    int err = io_error(c, ret, true);
    return err ? -err : 0;
}

/* Kernel TLS carries the connection: the kernel encrypts file ranges
 * (SSL_sendfile), no copy here. */
static bool ktls_send(const struct mux_conn *c)
{
    return BIO_get_ktls_send(SSL_get_wbio(ssl_of(c)));
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
    for (const struct mux__chunk *k = mux__outq_head(&c->out); k && n < MUX__TLS_RECORD; k = k->next) {
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

/* The worker's one record-sized scratch buffer (coalescing, file reads). */
static unsigned char *scratch(struct mux__worker *w)
{
    if (!w->tls_buf)
        w->tls_buf = malloc(MUX__TLS_RECORD);
    return w->tls_buf;
}

/* Writes the queue's head as one record of at most MUX__TLS_RECORD bytes:
 * memory chunks and file ranges (read with pread) gathered together in the
 * worker's scratch buffer, or a lone memory chunk written in place; under
 * kernel TLS a file range at the head goes with SSL_sendfile. *wanted is
 * set to the bytes offered. Returns bytes written, 0 when the socket is
 * full (TLS_WANT_READ set if OpenSSL must read first), or a negative
 * errno. A retry after 0 offers the same head again (the queue only grows
 * at its tail), as OpenSSL requires. */
static ssize_t send_record(struct mux_conn *c, size_t *wanted)
{
    const struct mux__chunk *head = mux__outq_head(&c->out);
    bool ktls = ktls_send(c);
    if (head->fd >= 0 && ktls) {
        size_t want = head->remaining < (1u << 20) ? head->remaining : (1u << 20);
        *wanted = want;
        c->tstate &= ~TLS_WANT_READ;
        ERR_clear_error();
        ossl_ssize_t n = SSL_sendfile(ssl_of(c), head->fd, head->offset, want, 0);
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

/* close_notify (once, best effort, never blocking) if the handshake
 * completed and no fatal TLS error happened. */
static void tls_close_notify(struct mux_conn *c)
{
    if ((c->tstate & TLS_FATAL) || !SSL_is_init_finished(ssl_of(c)) ||
        (SSL_get_shutdown(ssl_of(c)) & SSL_SENT_SHUTDOWN))
        return;
    ERR_clear_error();
    if (SSL_shutdown(ssl_of(c)) < 0) /* the alert could not be written: the FIN still goes */
        ERR_clear_error();
}

static int tls_flush(struct mux_conn *c)
{
    return mux__flush_loop(c, send_record);
}

/* OpenSSL's own needs join the core's: a read that must write first, a
 * write that must read first; in the handshake they are all there is. */
static int tls_want(struct mux_conn *c, uint32_t want)
{
    uint32_t own = (c->tstate & TLS_WANT_WRITE ? MUX_EV_WRITE : 0u) |
                   (c->tstate & TLS_WANT_READ ? MUX_EV_READ : 0u);
    if (c->state == CONN_HANDSHAKE)
        want = own & MUX_EV_WRITE ? MUX_EV_WRITE : MUX_EV_READ;
    else if (c->state >= CONN_OPEN && c->state < CONN_LINGER)
        want |= own;
    return mux__socket_want(c, want);
}

/* The readiness OpenSSL waited for came: what waited goes again. */
static unsigned tls_retry(struct mux_conn *c, uint32_t events)
{
    unsigned redo = 0;
    if ((c->tstate & TLS_WANT_WRITE) && (events & MUX_EV_WRITE)) {
        c->tstate &= ~TLS_WANT_WRITE;
        redo |= REDO_READ;
    }
    if ((c->tstate & TLS_WANT_READ) && (events & (MUX_EV_READ | MUX_EV_HUP))) {
        c->tstate &= ~TLS_WANT_READ;
        redo |= REDO_WRITE;
    }
    return redo;
}

/* What ALPN chose, once the handshake is done (OpenSSL keeps the bytes
 * in the session, freed with it in tls_release). */
static const char *tls_alpn(const struct mux_conn *c, size_t *len)
{
    SSL *ssl = ssl_of(c);
    const unsigned char *p = NULL;
    unsigned n = 0;
    if (ssl == NULL || !SSL_is_init_finished(ssl))
        return NULL;
    SSL_get0_alpn_selected(ssl, &p, &n);
    if (p == NULL || n == 0)
        return NULL;
    *len = n;
    return (const char *)p;
}

static void tls_release(struct mux_conn *c)
{
    mux__socket_release(c);
    SSL_free(ssl_of(c));
    c->tp = NULL;
}

const struct mux__transport mux__transport_tls = {
    .name = "tls",
    .holds_input = true,
    .unit_reads = true,
    .start = tls_start,
    .handshake = tls_handshake,
    .read = tls_read,
    .flush = tls_flush,
    .want = tls_want,
    .unwatch = mux__socket_unwatch,
    .held = tls_held,
    .retry = tls_retry,
    .drop_output = mux__socket_drop_output,
    .close_notify = tls_close_notify,
    .alpn = tls_alpn,
    .release = tls_release,
};

