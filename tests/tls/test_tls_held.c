/* test_tls_held.c - decrypted input that OpenSSL holds and no readiness
 * reports, in-process over TLS, on the poller named by MUX_TEST_POLLER
 * (every backend). OpenSSL decrypts a record whole; when the framework
 * offers less room than the record (read_buffer), the rest stays inside
 * OpenSSL while the socket is empty. Each case ends with the client silent,
 * waiting for its answer, so only the framework's own re-read can deliver:
 *  - backpressure: the first read's answer is a blob far above
 *    write_high_water, so reading stops with the rest of the record held;
 *    the client reads everything and sends nothing more: the held bytes
 *    must be delivered and answered;
 *  - a pause: the handler pauses at the first read and resumes from a
 *    timer: likewise;
 *  - one pending byte: records of read_buffer + 1 + m * (read_buffer - 1)
 *    bytes and a handler that consumes all but the last byte of what it is
 *    offered (unless that byte ends the message) leave exactly one byte
 *    inside OpenSSL after the reads: it must come without new input.
 * The certificate is made at run time with OpenSSL's API; the client is
 * OpenSSL on a blocking socket whose reads time out (a stall fails the
 * test, never hangs it). Seed: MUX_TEST_SEED. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "harness.h"
#include "inproc.h"
#include "seed.h"

#define BLOB (8u << 20) /* far above write_high_water and what the sockets buffer */
#define STALL_MS 3000   /* a read waiting this long means the answer is stuck */

static struct {
    char dir[64], cert[96], key[96];
} fx;

/* ---- the server's handler ---- */

enum mode {
    M_BLOB,  /* first read: a blob, then echo (backpressure at once) */
    M_PAUSE, /* first read: echo, pause, resume from a timer */
    M_ALL_BUT_ONE, /* echo all but the last byte offered, unless it is '\n' */
};

struct app {
    enum mode mode;
    atomic_int blocked_reads; /* M_BLOB: first reads that left the connection blocked */
};

struct per_conn {
    struct mux_conn *c;
    bool first_done;
    uint64_t timer;
};

static unsigned char blob_byte(size_t i)
{
    return (unsigned char)((i * 2654435761u) >> 9);
}

static int on_accept(struct mux_conn *c)
{
    struct per_conn *pc = calloc(1, sizeof(*pc));
    if (!pc)
        return -1;
    pc->c = c;
    mux_conn_set_data(c, pc);
    return 0;
}

static void resume(struct mux_worker *w, void *arg)
{
    (void)w;
    struct per_conn *pc = arg;
    pc->timer = 0;
    mux_conn_resume_read(pc->c);
}

static size_t echo(struct mux_conn *c, const char *data, size_t n)
{
    if (n)
        assert_int_equal(mux_conn_send(c, data, n), 0);
    return n;
}

static size_t on_read(struct mux_conn *c, const char *data, size_t len)
{
    struct app *a = mux_conn_app(c);
    struct per_conn *pc = mux_conn_data(c);
    switch (a->mode) {
    case M_ALL_BUT_ONE:
        return echo(c, data, data[len - 1] == '\n' ? len : len - 1);
    case M_BLOB:
        if (!pc->first_done) {
            pc->first_done = true;
            unsigned char *b = malloc(BLOB);
            assert_non_null(b);
            for (size_t i = 0; i < BLOB; i++)
                b[i] = blob_byte(i);
            assert_int_equal(mux_conn_send(c, b, BLOB), 0);
            free(b);
            size_t n = echo(c, data, len);
            if (mux_conn_pending(c) > 0)
                atomic_fetch_add(&a->blocked_reads, 1);
            return n;
        }
        return echo(c, data, len);
    case M_PAUSE:
        if (!pc->first_done) {
            pc->first_done = true;
            mux_conn_pause_read(c);
            pc->timer = mux_timer_start(mux_conn_worker_ctx(c), 50 + (unsigned)(len % 100), 0,
                                        resume, pc);
            assert_true(pc->timer != 0);
        }
        return echo(c, data, len);
    }
    return len;
}

static void on_close(struct mux_conn *c, int err)
{
    (void)err;
    struct per_conn *pc = mux_conn_data(c);
    if (pc->timer)
        mux_timer_cancel(mux_conn_worker_ctx(c), pc->timer);
    free(pc);
}

static const struct mux_handler handler = {
    .name = "tls-held",
    .on_accept = on_accept,
    .on_read = on_read,
    .on_close = on_close,
};

static void start(struct th_inproc *srv, struct app *a, size_t read_buffer)
{
    struct mux_options o;
    th_inproc_options(&o);
    o.workers = 1;
    o.read_buffer = read_buffer;
    o.write_high_water = 16 << 10;
    o.write_low_water = 4 << 10;
    snprintf(o.tls_cert, sizeof o.tls_cert, "%s", fx.cert);
    snprintf(o.tls_key, sizeof o.tls_key, "%s", fx.key);
    assert_int_equal(th_inproc_start(srv, &o, &handler, a), 0);
}

/* ---- the client ---- */

struct client {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
};

static void client_open(struct client *cl, const struct th_inproc *srv, int rcvbuf)
{
    cl->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(cl->fd >= 0);
    if (rcvbuf)
        setsockopt(cl->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    int one = 1;
    setsockopt(cl->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {.tv_sec = STALL_MS / 1000 * th_slowdown()};
    setsockopt(cl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(cl->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_storage ss;
    socklen_t sl;
    assert_int_equal(th_sockaddr(srv->host, srv->port, &ss, &sl), 0);
    assert_int_equal(connect(cl->fd, (struct sockaddr *)&ss, sl), 0);
    cl->ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(cl->ctx);
    SSL_CTX_set_verify(cl->ctx, SSL_VERIFY_NONE, NULL); /* our own throwaway certificate */
    cl->ssl = SSL_new(cl->ctx);
    SSL_set_fd(cl->ssl, cl->fd);
    if (SSL_connect(cl->ssl) != 1)
        fail_msg("TLS handshake failed");
}

static void client_close(struct client *cl)
{
    SSL_shutdown(cl->ssl);
    SSL_free(cl->ssl);
    SSL_CTX_free(cl->ctx);
    close(cl->fd);
}

/* One record of len bytes (len <= 16384). */
static void client_send(struct client *cl, const void *buf, size_t len)
{
    size_t n = 0;
    assert_true(len <= 16384);
    assert_int_equal(SSL_write_ex(cl->ssl, buf, len, &n), 1);
    assert_int_equal(n, len);
}

/* Reads exactly len bytes; false when a read timed out or failed. */
static bool client_read(struct client *cl, unsigned char *buf, size_t len, size_t *got)
{
    *got = 0;
    while (*got < len) {
        size_t n = 0;
        if (SSL_read_ex(cl->ssl, buf + *got, len - *got, &n) != 1) {
            ERR_clear_error();
            return false;
        }
        *got += n;
    }
    return true;
}

/* ---- the cases ---- */

static void held_after_stop(enum mode mode)
{
    static struct app a;
    memset(&a, 0, sizeof a);
    a.mode = mode;
    size_t rb = 512 + (size_t)(th_rand() % 2048);
    size_t rec = rb + 1 + (size_t)(th_rand() % (16384 - rb - 1)); /* more than one read */
    struct th_inproc srv;
    start(&srv, &a, rb);
    struct client cl;
    client_open(&cl, &srv, mode == M_BLOB ? 8192 : 0);
    static unsigned char msg[16384], got[16384];
    th_fill_random(msg, rec, &th_rng);
    client_send(&cl, msg, rec); /* then nothing more */
    size_t n;
    if (mode == M_BLOB) {
        static unsigned char blob[BLOB];
        if (!client_read(&cl, blob, BLOB, &n))
            fail_msg("%zu of %u blob bytes", n, BLOB);
        for (size_t i = 0; i < BLOB; i++)
            if (blob[i] != blob_byte(i))
                fail_msg("blob byte %zu differs", i);
        assert_int_equal(atomic_load(&a.blocked_reads), 1); /* the case happened */
    }
    if (!client_read(&cl, got, rec, &n))
        fail_msg("%zu of the %zu bytes of one record answered (read_buffer %zu): the rest, held "
                 "inside OpenSSL, never came after the %s",
                 n, rec, rb, mode == M_BLOB ? "backpressure" : "pause");
    assert_memory_equal(got, msg, rec);
    client_close(&cl);
    assert_int_equal(th_inproc_stop(&srv), 0);
}

static void test_held_after_backpressure(void **state)
{
    (void)state;
    held_after_stop(M_BLOB);
}

static void test_held_after_pause(void **state)
{
    (void)state;
    held_after_stop(M_PAUSE);
}

static void test_one_pending_byte(void **state)
{
    (void)state;
    static struct app a;
    memset(&a, 0, sizeof a);
    a.mode = M_ALL_BUT_ONE;
    size_t rb = 512 + (size_t)(th_rand() % 2048);
    struct th_inproc srv;
    start(&srv, &a, rb);
    struct client cl;
    client_open(&cl, &srv, 0);
    static unsigned char msg[16384], got[16384];
    int messages = 6 + (int)(th_rand() % 6);
    for (int i = 0; i < messages; i++) {
        /* The first read takes rb, each later one rb - 1 (one byte held by
         * the handler): m more reads leave exactly one byte in OpenSSL. */
        size_t mmax = (16384 - rb - 1) / (rb - 1);
        size_t m = i == 0 ? 0 : (size_t)(th_rand() % (mmax + 1));
        size_t len = rb + 1 + m * (rb - 1);
        th_fill_random(msg, len, &th_rng);
        for (size_t j = 0; j < len; j++)
            if (msg[j] == '\n')
                msg[j] = 'n';
        msg[len - 1] = '\n';
        client_send(&cl, msg, len);
        size_t n;
        if (!client_read(&cl, got, len, &n))
            fail_msg("message %d (one record of %zu = %zu + 1 + %zu * %zu bytes): %zu answered; "
                     "the last byte, left inside OpenSSL, never came",
                     i, len, rb, m, rb - 1, n);
        assert_memory_equal(got, msg, len);
    }
    client_close(&cl);
    assert_int_equal(th_inproc_stop(&srv), 0);
}

/* ---- the certificate ---- */

static bool make_cert(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!k || !x)
        return false;
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, k);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    bool ok = X509_sign(x, k, EVP_sha256()) > 0;
    FILE *f = fopen(fx.cert, "w");
    ok = ok && f && PEM_write_X509(f, x);
    if (f)
        fclose(f);
    f = fopen(fx.key, "w");
    ok = ok && f && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    if (f)
        fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
    return ok;
}

static int group_setup(void **state)
{
    (void)state;
    th_seed_rng("MUX_TEST_SEED");
    printf("poller %s\n", th_poller());
    snprintf(fx.dir, sizeof fx.dir, "/tmp/mux-tls-held-XXXXXX");
    if (!mkdtemp(fx.dir))
        return -1;
    snprintf(fx.cert, sizeof fx.cert, "%s/cert.pem", fx.dir);
    snprintf(fx.key, sizeof fx.key, "%s/key.pem", fx.dir);
    mux_log_setup(MUX_LOG_WARN, "test");
    return make_cert() ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    unlink(fx.cert);
    unlink(fx.key);
    rmdir(fx.dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_held_after_backpressure),
        cmocka_unit_test(test_held_after_pause),
        cmocka_unit_test(test_one_pending_byte),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
