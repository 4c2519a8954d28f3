/* test_fuzz.c - the randomized lifecycle fuzzer: what nobody thought of.
 *
 * A handler makes random API calls in every callback (on_close and on_eof
 * included; shutdown_write among them), consumes random amounts in on_read,
 * calls into other connections of its worker, and starts and cancels
 * worker timers whose callbacks make the same calls; clients behave randomly (fragments down to one byte,
 * half-close, reset, stop reading, read slowly, vanish mid-write, connect
 * and say nothing). The protocol keeps every byte checkable: clients send
 * the pattern stream P(0), P(1), ... and the server answers with the bytes
 * it consumed, in order, by mux_conn_send or by mux_conn_sendfile from a
 * file holding the same pattern. Invariants:
 *   - on_close exactly once per accepted connection, no callback after it,
 *     and every call made from it is harmless;
 *   - every byte on_read is offered is the right one (input handling);
 *   - every byte a client reads is a correct prefix of what it sent;
 *   - no CPU is burnt while every client is quiet (a measured window);
 *   - descriptors back to the baseline at the end; the server stops with 0.
 * Backend: MUX_TEST_POLLER. Seed: MUX_FUZZ_SEED (printed), length:
 * MUX_FUZZ_SECONDS (default 8). A failure prints the seed to replay with.
 * Every mux_* call the handler makes is wrapped (CALL): a callback that
 * runs inside one is a violation (the promise of mux/conn.h), and with
 * MUX_FAULT set (fault.h: every N-th allocation or send fails) that must
 * hold on the failure paths too, on_close still exactly once.
 * MUX_FUZZ_TLS=1: the server speaks TLS (a certificate made at start) and
 * the clients are OpenSSL clients doing the same things over it (some
 * never start their handshake; half-close sends close_notify first; TLS
 * 1.3 key updates now and then). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "inproc.h"
#include "mux/worker.h"

#ifdef FUZZ_HAVE_OPENSSL
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "seed.h"
static SSL_CTX *client_ctx; /* non-NULL: TLS mode */
#else
typedef struct ssl_st SSL;
#endif

#define STREAM_MAX (4u << 20) /* bytes a client sends at most on one connection */
#define CLIENTS 64            /* connections open at once */
#define MAX_WORKERS 4
#define MAX_LIVE 1024         /* per worker: connections a handler can reach */

static uint64_t seed;

static unsigned char P(uint64_t i)
{
    uint64_t x = i * 0x9E3779B97F4A7C15ull;
    return (unsigned char)(x >> 56);
}

static uint64_t rnd(uint64_t *s)
{
    unsigned long long x = *s;
    th_xorshift(&x);
    return *s = x;
}

static uint64_t below(uint64_t *s, uint64_t n)
{
    return n ? rnd(s) % n : 0;
}

/* ---- server side ---- */

struct sconn {
    struct mux_conn *c;
    uint64_t consumed, emitted;
    int closes;
    bool closed;
    struct sconn *all_next; /* every sconn, freed after the server stopped */
};

#define TIMERS 16 /* per worker: slots for timer ids (no allocation per timer) */

struct wstate {             /* touched by one worker thread only */
    uint64_t rng;
    unsigned in_call;       /* inside a mux_* call made by a callback: no callback may run now */
    struct sconn *live[MAX_LIVE];
    unsigned nlive;
    struct mux_worker *worker;
    uint64_t timer_ids[TIMERS]; /* ids started from this slot, maybe stale */
};

struct app {
    const unsigned char *pattern; /* mmap of the pattern file */
    int pattern_fd;
    struct wstate w[MAX_WORKERS];
    pthread_mutex_t lock;         /* the counters and the all-list */
    struct sconn *all;
    uint64_t accepts, closes, violations, calls;
    atomic_bool quiet;            /* set by the test thread before the quiet window */
    char why[256];                /* the first violation */
};

static void violation(struct app *a, const char *fmt, ...)
{
    pthread_mutex_lock(&a->lock);
    if (a->violations++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(a->why, sizeof(a->why), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&a->lock);
}

static struct wstate *ws(struct mux_conn *c)
{
    struct app *a = mux_conn_app(c);
    return &a->w[mux_conn_worker(c)];
}

/* A mux_* call made from a callback: the promise of mux/conn.h is that no
 * callback runs inside it, whatever fails there (MUX_FAULT). */
#define CALL(w, expr) ((w)->in_call++, (expr), (w)->in_call--)

/* Every callback starts here: none may run inside a call. */
static void callback_entry(struct app *a, struct wstate *w, const char *cb)
{
    if (w->in_call)
        violation(a, "%s ran inside a mux_* call", cb);
}

static bool faults_on(void)
{
    const char *f = getenv("MUX_FAULT");
    return f && f[0];
}

static void unregister(struct wstate *w, struct sconn *s)
{
    for (unsigned i = 0; i < w->nlive; i++)
        if (w->live[i] == s) {
            w->live[i] = w->live[--w->nlive];
            return;
        }
}

/* Answers up to n owed bytes, by copy or by file range. */
static void emit(struct app *a, struct sconn *s, uint64_t n, bool by_file, bool closed)
{
    uint64_t owed = s->consumed - s->emitted;
    if (n > owed)
        n = owed;
    if (n == 0)
        return;
    int rc;
    struct wstate *w = ws(s->c);
    if (by_file) {
        int fd = dup(a->pattern_fd);
        CALL(w, rc = mux_conn_sendfile(s->c, fd, (off_t)s->emitted, n));
        if (rc < 0)
            close(fd);
    } else {
        CALL(w, rc = mux_conn_send(s->c, a->pattern + s->emitted, n));
    }
    if (rc == 0 && closed)
        violation(a, "a send after on_close was accepted");
    if (rc == 0)
        s->emitted += n;
    else if (rc != -EPIPE && !(rc == -ENOMEM && faults_on()))
        violation(a, "send: %s", strerror(-rc));
}

static void random_calls(struct mux_conn *c, struct sconn *s, bool in_close);

/* A timer: calls on a random live connection of its worker, and sometimes
 * cancels itself or another timer (ids may be stale: that must be harmless). */
static void on_timer(struct mux_worker *wk, void *arg)
{
    struct app *a = mux_worker_app(wk);
    struct wstate *w = &a->w[mux_worker_index(wk)];
    uint64_t *slot = arg;
    callback_entry(a, w, "a timer");
    if (atomic_load(&a->quiet)) { /* the quiet window: timers stop themselves */
        CALL(w, mux_timer_cancel(wk, *slot));
        return;
    }
    if (w->nlive > 0) {
        struct sconn *o = w->live[below(&w->rng, w->nlive)];
        if (o->closed)
            violation(a, "a timer found a closed connection registered");
        else
            random_calls(o->c, o, false);
    }
    if (below(&w->rng, 3) == 0)
        CALL(w, mux_timer_cancel(wk, *slot));
    if (below(&w->rng, 4) == 0)
        CALL(w, mux_timer_cancel(wk, w->timer_ids[below(&w->rng, TIMERS)]));
}

static void random_timer(struct wstate *w)
{
    if (!w->worker)
        return;
    uint64_t *slot = &w->timer_ids[below(&w->rng, TIMERS)];
    if (below(&w->rng, 2))
        CALL(w, mux_timer_cancel(w->worker, *slot));
    unsigned first = (unsigned)below(&w->rng, 50);
    unsigned every = below(&w->rng, 3) == 0 ? 1 + (unsigned)below(&w->rng, 100) : 0;
    CALL(w, *slot = mux_timer_start(w->worker, first, every, on_timer, slot));
}

/* A few random calls on s (and sometimes on another live connection). */
static void random_calls(struct mux_conn *c, struct sconn *s, bool in_close)
{
    struct app *a = mux_conn_app(c);
    struct wstate *w = ws(c);
    int n = (int)below(&w->rng, 4);
    for (int i = 0; i < n; i++) {
        uint64_t r = below(&w->rng, 100);
        if (r < 30) {
            emit(a, s, 1 + below(&w->rng, 1 << 16), below(&w->rng, 4) == 0, in_close);
        } else if (r < 40) {
            CALL(w, mux_conn_pause_read(c));
        } else if (r < 55) {
            CALL(w, mux_conn_resume_read(c));
        } else if (r < 65) {
            CALL(w, mux_conn_want_writable(c, true));
        } else if (r < 70) {
            CALL(w, mux_conn_want_writable(c, false));
        } else if (r < 72) {
            CALL(w, mux_conn_close(c));
        } else if (r < 73) {
            CALL(w, mux_conn_abort(c));
        } else if (r < 74) {
            CALL(w, mux_conn_shutdown_write(c));
        } else if (r < 75) {
            static const unsigned t[] = {0, 0, 300, 1000, 3000};
            CALL(w, mux_conn_set_timeout(c, t[below(&w->rng, 5)]));
        } else if (r < 76) {
            static const unsigned d[] = {0, 50, 400, 2000};
            CALL(w, mux_conn_set_deadline(c, d[below(&w->rng, 4)]));
        } else if (r < 78) {
            random_timer(w);
        } else if (r < 85 && w->nlive > 0) { /* another connection of this worker */
            struct sconn *o = w->live[below(&w->rng, w->nlive)];
            if (o->closed)
                violation(a, "a closed connection is still registered");
            else if (below(&w->rng, 2))
                CALL(w, mux_conn_resume_read(o->c));
            else
                emit(a, o, 1 + below(&w->rng, 4096), false, false);
        } else {
            char peer[80];
            CALL(w, mux_conn_peer_str(c, peer, sizeof(peer)));
            if (mux_conn_data(c) != s || mux_conn_app(c) != a)
                violation(a, "user data or app pointer changed");
            CALL(w, (void)mux_conn_pending(c));
            CALL(w, (void)mux_conn_id(c));
            CALL(w, (void)mux_conn_fd(c));
        }
    }
}

static struct sconn *enter(struct mux_conn *c, const char *cb)
{
    callback_entry(mux_conn_app(c), ws(c), cb);
    struct sconn *s = mux_conn_data(c);
    if (s->closed)
        violation(mux_conn_app(c), "%s after on_close", cb);
    return s;
}

static int f_accept(struct mux_conn *c)
{
    struct app *a = mux_conn_app(c);
    struct wstate *w = ws(c);
    callback_entry(a, w, "on_accept");
    struct sconn *s = calloc(1, sizeof(*s));
    s->c = c;
    mux_conn_set_data(c, s);
    pthread_mutex_lock(&a->lock);
    a->accepts++;
    s->all_next = a->all;
    a->all = s;
    pthread_mutex_unlock(&a->lock);
    if (w->nlive < MAX_LIVE)
        w->live[w->nlive++] = s;
    random_calls(c, s, false);
    return below(&w->rng, 50) == 0 ? ECONNREFUSED : 0; /* sometimes refuse */
}

static size_t f_read(struct mux_conn *c, const char *data, size_t len)
{
    struct app *a = mux_conn_app(c);
    struct sconn *s = enter(c, "on_read");
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)data[i] != P(s->consumed + i)) {
            violation(a, "on_read offered a wrong byte at %llu",
                      (unsigned long long)(s->consumed + i));
            break;
        }
    struct wstate *w = ws(c);
    uint64_t r = below(&w->rng, 10);
    size_t take = r < 5 ? len : r < 8 ? (size_t)below(&w->rng, len + 1) : (r == 8 ? 1 : 0);
    s->consumed += take;
    if (below(&w->rng, 3))
        emit(a, s, s->consumed - s->emitted, below(&w->rng, 5) == 0, false);
    random_calls(c, s, false);
    return take;
}

static void f_writable(struct mux_conn *c)
{
    struct app *a = mux_conn_app(c);
    struct sconn *s = enter(c, "on_writable");
    struct wstate *w = ws(c);
    emit(a, s, 1 + below(&w->rng, 1 << 15), below(&w->rng, 3) == 0, false);
    random_calls(c, s, false);
}

/* With on_eof the connection stays open for output after the peer's FIN
 * until the handler ends its side; the random calls may or may not. */
static void f_eof(struct mux_conn *c)
{
    struct sconn *s = enter(c, "on_eof");
    random_calls(c, s, false);
    struct wstate *w = ws(c);
    if (below(&w->rng, 2))
        CALL(w, mux_conn_shutdown_write(c));
    else if (below(&w->rng, 2))
        CALL(w, mux_conn_close(c));
}

static void f_worker_start(struct mux_worker *wk)
{
    struct app *a = mux_worker_app(wk);
    a->w[mux_worker_index(wk)].worker = wk;
}

static void f_close(struct mux_conn *c, int err)
{
    struct app *a = mux_conn_app(c);
    struct sconn *s = enter(c, "on_close");
    unregister(ws(c), s);
    s->closes++;
    random_calls(c, s, true); /* all harmless from here */
    s->closed = true;
    pthread_mutex_lock(&a->lock);
    a->closes++;
    pthread_mutex_unlock(&a->lock);
}

static const struct mux_handler fuzz_handler = {
    .name = "fuzz",
    .on_accept = f_accept,
    .on_read = f_read,
    .on_writable = f_writable,
    .on_close = f_close,
    .on_eof = f_eof,
    .on_worker_start = f_worker_start,
};

/* ---- client side ---- */

enum cmode { C_NORMAL, C_SILENT, C_NO_READ, C_SLOW };

struct client {
    int fd;
    enum cmode mode;
    uint64_t sent, received, send_limit, half_close_at;
    long long end_at;  /* when it goes away */
    bool rst_at_end, half_closed;
    size_t max_frag;
    SSL *ssl;          /* TLS mode */
    size_t wpend;      /* TLS: a write to retry with this length (OpenSSL's rule) */
    bool no_handshake; /* TLS: connects and never speaks TLS */
};

/* ---- TLS mode ---- */

#ifdef FUZZ_HAVE_OPENSSL
static char cert_path[64], key_path[64];

/* A throwaway self-signed P-256 certificate and key, as PEM files. */
static void make_cert(void)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    assert_non_null(pkey);
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);
    snprintf(cert_path, sizeof(cert_path), "/tmp/mux-fuzz-cert-XXXXXX");
    snprintf(key_path, sizeof(key_path), "/tmp/mux-fuzz-key-XXXXXX");
    int cfd = mkstemp(cert_path), kfd = mkstemp(key_path);
    assert_true(cfd >= 0 && kfd >= 0);
    FILE *cf = fdopen(cfd, "w"), *kf = fdopen(kfd, "w");
    assert_true(PEM_write_X509(cf, x) == 1);
    assert_true(PEM_write_PrivateKey(kf, pkey, NULL, NULL, 0, NULL, NULL) == 1);
    fclose(cf);
    fclose(kf);
    X509_free(x);
    EVP_PKEY_free(pkey);
    signal(SIGPIPE, SIG_IGN); /* OpenSSL's client writes are plain write()s */
    client_ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(client_ctx);
    SSL_CTX_set_mode(client_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

static void drop_cert(void)
{
    unlink(cert_path);
    unlink(key_path);
    SSL_CTX_free(client_ctx);
    client_ctx = NULL;
}

static bool tls_mode(void)
{
    return client_ctx != NULL;
}

static void tls_attach(struct client *cl, uint64_t *rng)
{
    cl->no_handshake = cl->mode == C_SILENT && below(rng, 2) == 0;
    cl->ssl = SSL_new(client_ctx);
    assert_non_null(cl->ssl);
    SSL_set_fd(cl->ssl, cl->fd);
    SSL_set_connect_state(cl->ssl);
}

/* TLS I/O in the plain calls' terms: > 0 bytes, 0 would block, -1 ended
 * (EOF, close_notify or an error). A write must be retried with the same
 * length. */
static ssize_t tls_io(struct client *cl, void *buf, size_t len, bool writing)
{
    if (cl->no_handshake)
        return 0;
    ERR_clear_error();
    size_t n = 0;
    int ret = writing ? SSL_write_ex(cl->ssl, buf, len, &n) : SSL_read_ex(cl->ssl, buf, len, &n);
    if (ret == 1)
        return (ssize_t)n;
    int e = SSL_get_error(cl->ssl, ret);
    ERR_clear_error();
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* Now and then a TLS 1.3 key update that asks the server for its own: the
 * server's next read must write, whatever its socket's state. */
static void tls_maybe_key_update(struct client *cl, uint64_t *rng)
{
    if (!cl->no_handshake && !cl->wpend && below(rng, 64) == 0 &&
        SSL_is_init_finished(cl->ssl) && SSL_version(cl->ssl) == TLS1_3_VERSION)
        SSL_key_update(cl->ssl, SSL_KEY_UPDATE_REQUESTED); /* sent with the next write */
}

static void tls_half_close(struct client *cl)
{
    if (cl->ssl && !cl->no_handshake && SSL_is_init_finished(cl->ssl)) {
        ERR_clear_error();
        SSL_shutdown(cl->ssl); /* close_notify, then the FIN */
        ERR_clear_error();
    }
}

static void tls_detach(struct client *cl, bool notify)
{
    if (!cl->ssl)
        return;
    if (notify)
        tls_half_close(cl);
    SSL_free(cl->ssl);
    cl->ssl = NULL;
}
#else
static void make_cert(void) {}
static void drop_cert(void) {}
static bool tls_mode(void) { return false; }
static void tls_attach(struct client *cl, uint64_t *rng) { (void)cl, (void)rng; }
static ssize_t tls_io(struct client *cl, void *buf, size_t len, bool writing)
{
    (void)cl, (void)buf, (void)len, (void)writing;
    return -1;
}
static void tls_half_close(struct client *cl) { (void)cl; }
static void tls_maybe_key_update(struct client *cl, uint64_t *rng) { (void)cl, (void)rng; }
static void tls_detach(struct client *cl, bool notify) { (void)cl, (void)notify; }
#endif

static void client_open(struct client *cl, const struct th_inproc *srv, uint64_t *rng)
{
    memset(cl, 0, sizeof(*cl));
    cl->fd = th_connect_tcp(srv->host, srv->port);
    if (cl->fd < 0)
        return;
    fcntl(cl->fd, F_SETFL, O_NONBLOCK);
    cl->mode = (enum cmode)below(rng, 4);
    cl->send_limit = below(rng, 4) == 0 ? below(rng, 64) : below(rng, STREAM_MAX);
    cl->half_close_at = below(rng, 3) == 0 ? below(rng, cl->send_limit + 1) : UINT64_MAX;
    cl->end_at = th_now_ms() + 20 + (long long)below(rng, 1500);
    cl->rst_at_end = below(rng, 3) == 0;
    cl->max_frag = below(rng, 4) == 0 ? 1 : 1 + below(rng, 32768);
    if (tls_mode())
        tls_attach(cl, rng);
}

static void client_close(struct client *cl)
{
    if (cl->fd < 0)
        return;
    if (cl->rst_at_end) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(cl->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    tls_detach(cl, !cl->rst_at_end && (cl->sent & 1)); /* close_notify, or a truncation */
    close(cl->fd);
    cl->fd = -1;
}

/* One step; returns -1 once a wrong byte arrived. */
static int client_step(struct client *cl, uint64_t *rng, bool quiet)
{
    if (cl->fd < 0)
        return 0;
    unsigned char buf[32768];
    if (!quiet && cl->mode != C_SILENT && !cl->half_closed && cl->sent < cl->send_limit) {
        size_t n = 1 + (size_t)below(rng, cl->max_frag);
        if (n > cl->send_limit - cl->sent)
            n = (size_t)(cl->send_limit - cl->sent);
        if (cl->wpend)
            n = cl->wpend;
        for (size_t i = 0; i < n; i++)
            buf[i] = P(cl->sent + i);
        ssize_t w;
        if (cl->ssl) {
            tls_maybe_key_update(cl, rng);
            w = tls_io(cl, buf, n, true);
            cl->wpend = w == 0 ? n : 0;
            if (w < 0)
                errno = EPIPE;
        } else {
            w = send(cl->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        if (w > 0)
            cl->sent += (uint64_t)w;
        else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            client_close(cl);
            return 0;
        }
    }
    if (!quiet && !cl->half_closed && cl->sent >= cl->half_close_at && !cl->wpend) {
        tls_half_close(cl);
        shutdown(cl->fd, SHUT_WR);
        cl->half_closed = true;
    }
    bool reads = cl->mode != C_NO_READ && !(cl->mode == C_SLOW && below(rng, 8) != 0);
    if (reads) {
        size_t want = cl->mode == C_SLOW ? 1 + (size_t)below(rng, 512) : sizeof(buf);
        ssize_t r;
        if (cl->ssl) {
            r = tls_io(cl, buf, want, false);
            if (r == 0) {
                r = -1;
                errno = EAGAIN;
            } else if (r < 0) {
                r = 0; /* close_notify, EOF or an error: the end */
            }
        } else {
            r = recv(cl->fd, buf, want, MSG_DONTWAIT);
        }
        if (r > 0) {
            for (ssize_t i = 0; i < r; i++)
                if (buf[i] != P(cl->received + (uint64_t)i)) {
                    fprintf(stderr, "client: wrong byte at %llu\n",
                            (unsigned long long)(cl->received + (uint64_t)i));
                    return -1;
                }
            cl->received += (uint64_t)r;
            if (cl->received > cl->sent)
                return -1; /* answered more than was asked */
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
            client_close(cl);
            return 0;
        }
    }
    if (!quiet && th_now_ms() >= cl->end_at)
        client_close(cl);
    return 0;
}

/* ---- the run ---- */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static long long cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

static void options(struct mux_options *o, uint64_t *rng)
{
    mux_options_init(o);
    snprintf(o->listen[0], sizeof(o->listen[0]), "127.0.0.1:0");
    o->workers = 1 + (unsigned)below(rng, 2);
    o->log_level = MUX_LOG_ERROR;
    o->read_buffer = 512 + (size_t)below(rng, 16384);
    o->max_input = o->read_buffer * (1 + (size_t)below(rng, 8));
    o->write_high_water = 1 + (size_t)below(rng, 256 << 10);
    o->write_low_water = below(rng, 3) == 0 ? 0 : (size_t)below(rng, o->write_high_water + 1);
    o->idle_timeout_ms = below(rng, 2) ? 0 : 500 + (unsigned)below(rng, 3000);
    o->shutdown_grace_ms = 500 + (unsigned)below(rng, 1000);
    th_options_poller(o);
}

static int make_pattern_file(void)
{
    char path[] = "/tmp/mux-fuzz-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    unsigned char *buf = malloc(STREAM_MAX);
    for (uint64_t i = 0; i < STREAM_MAX; i++)
        buf[i] = P(i);
    assert_int_equal(write(fd, buf, STREAM_MAX), (ssize_t)STREAM_MAX);
    free(buf);
    return fd;
}

struct stopper {
    struct th_inproc *srv;
    int rc;
    atomic_bool done;
};

static void *stop_thread(void *arg)
{
    struct stopper *st = arg;
    st->rc = th_inproc_stop(st->srv);
    atomic_store(&st->done, true);
    return NULL;
}

static void test_lifecycle_fuzz(void **state)
{
    const char *e = getenv("MUX_FUZZ_SECONDS");
    int seconds = e ? atoi(e) : 8;
    uint64_t rng = seed;
    int fds_before = count_fds();
    struct app *a = calloc(1, sizeof(*a));
    pthread_mutex_init(&a->lock, NULL);
    a->pattern_fd = make_pattern_file();
    a->pattern = mmap(NULL, STREAM_MAX, PROT_READ, MAP_SHARED, a->pattern_fd, 0);
    assert_true(a->pattern != MAP_FAILED);
    for (int i = 0; i < MAX_WORKERS; i++)
        a->w[i].rng = seed * 31 + (uint64_t)i + 1;
    struct mux_options o;
    options(&o, &rng);
    mux_log_setup(MUX_LOG_ERROR, "fuzz");
    const char *tls = getenv("MUX_FUZZ_TLS");
    if (tls && strcmp(tls, "1") == 0) {
#ifndef FUZZ_HAVE_OPENSSL
        skip(); /* built without OpenSSL */
#endif
        make_cert();
#ifdef FUZZ_HAVE_OPENSSL
        snprintf(o.tls_cert, sizeof(o.tls_cert), "%s", cert_path);
        snprintf(o.tls_key, sizeof(o.tls_key), "%s", key_path);
#endif
    }

    struct th_inproc srv;
    assert_int_equal(th_inproc_start(&srv, &o, &fuzz_handler, a), 0);
    struct client *cl = calloc(CLIENTS, sizeof(*cl));
    for (int i = 0; i < CLIENTS; i++)
        cl[i].fd = -1;
    unsigned long long opened = 0, bytes = 0;
    long long end = th_now_ms() + (long long)seconds * 1000;
    int bad = 0;
    struct pollfd pf[CLIENTS];
    while (th_now_ms() < end && !bad) {
        for (int i = 0; i < CLIENTS; i++) {
            if (cl[i].fd < 0) {
                bytes += cl[i].received;
                client_open(&cl[i], &srv, &rng);
                opened++;
            }
            pf[i] = (struct pollfd){.fd = cl[i].fd, .events = POLLIN | POLLOUT};
        }
        poll(pf, CLIENTS, 5);
        for (int i = 0; i < CLIENTS && !bad; i++)
            bad = client_step(&cl[i], &rng, false) < 0;
    }
    assert_false(bad);

    /* Quiet: every client stays connected and does nothing; the server's
     * workers must not burn CPU meanwhile (open, paused, half-closed,
     * blocked and lingering connections all sit still). */
    atomic_store(&a->quiet, true);
    long long cpu0 = cpu_ms();
    struct timespec ts = {.tv_nsec = 400 * 1000000L};
    nanosleep(&ts, NULL);
    long long used = cpu_ms() - cpu0;
    pthread_mutex_lock(&a->lock);
    unsigned long long accepted = a->accepts;
    pthread_mutex_unlock(&a->lock);
    print_message("fuzz: seed %llu, %ds, %s%s%s, %u workers: %llu connections, %llu bytes "
                  "verified by clients, %llu accepted, quiet-window CPU %lld ms\n",
                  (unsigned long long)seed, seconds, o.poller, o.edge_triggered ? "-et" : "",
                  tls_mode() ? " over TLS" : "", o.workers, opened, bytes, accepted, used);
    if (used > 100)
        fail_msg("seed %llu: %lld ms of CPU in a quiet 400 ms window (a spin)",
                 (unsigned long long)seed, used);

    /* Stop: either after every client went away, or (every other seed) in
     * the middle of their traffic, the clients going on meanwhile. */
    if (below(&rng, 2)) {
        struct stopper st = {.srv = &srv};
        atomic_init(&st.done, false);
        pthread_t t;
        pthread_create(&t, NULL, stop_thread, &st);
        long long limit = th_now_ms() + o.shutdown_grace_ms + 10000LL;
        while (!atomic_load(&st.done) && th_now_ms() < limit && !bad) {
            for (int i = 0; i < CLIENTS; i++)
                pf[i] = (struct pollfd){.fd = cl[i].fd, .events = POLLIN | POLLOUT};
            poll(pf, CLIENTS, 5);
            for (int i = 0; i < CLIENTS && !bad; i++)
                bad = client_step(&cl[i], &rng, false) < 0;
        }
        pthread_join(t, NULL);
        assert_false(bad);
        assert_int_equal(st.rc, 0);
        for (int i = 0; i < CLIENTS; i++)
            client_close(&cl[i]);
        print_message("fuzz: stopped with clients connected\n");
    } else {
        for (int i = 0; i < CLIENTS; i++)
            client_close(&cl[i]);
        assert_int_equal(th_inproc_stop(&srv), 0);
    }
    free(cl);
    if (a->violations)
        fail_msg("seed %llu: %llu violation(s), first: %s", (unsigned long long)seed,
                 (unsigned long long)a->violations, a->why);
    assert_int_equal(a->accepts, a->closes);
    for (struct sconn *s = a->all; s;) {
        struct sconn *next = s->all_next;
        assert_int_equal(s->closes, 1);
        free(s);
        s = next;
    }
    munmap((void *)a->pattern, STREAM_MAX);
    close(a->pattern_fd);
    if (tls_mode())
        drop_cert();
    assert_int_equal(count_fds(), fds_before);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

int main(void)
{
    const char *s = getenv("MUX_FUZZ_SEED");
    seed = s ? strtoull(s, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
    if (seed == 0)
        seed = 1;
    printf("fuzz seed %llu (replay: MUX_FUZZ_SEED=%llu)\n", (unsigned long long)seed,
           (unsigned long long)seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
