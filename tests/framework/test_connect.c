/* test_connect.c - outbound connections (mux_worker_connect), in-process,
 * on the poller named by MUX_TEST_POLLER (ctest runs every backend):
 *  - success: bytes queued while connecting go out once connected, on_connect
 *    runs once, replies flow back, the peer's close ends it with on_close 0;
 *  - refused (a closed port) and timed out (a listener whose accept queue is
 *    full, loopback only): on_close(ECONNREFUSED / ETIMEDOUT), no on_connect;
 *  - every public call in CONNECTING: close and shutdown_write wait for the
 *    connect and the flush, abort resets, the rest are harmless;
 *  - half-close with on_eof: the peer's FIN is reported, the handler answers
 *    and shuts its side;
 *  - server shutdown with a connect in progress;
 *  - numeric address parsing (names refused: a lookup would block). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "inproc.h"

enum action {
    A_SEND,        /* send "hello" while connecting */
    A_SEND_CLOSE,  /* ... then mux_conn_close */
    A_SEND_SHUTWR, /* ... then mux_conn_shutdown_write */
    A_ABORT,       /* mux_conn_abort while connecting */
    A_CALLS,       /* every other call while connecting, nothing else */
    A_EOF_REPLY,   /* on_eof: send "pong", shut down writing */
};

struct scen {
    struct sockaddr_storage addr;
    socklen_t len;
    unsigned timeout_ms;
    enum action action;
    atomic_int started, connects, closes, close_err, calls_bad, eofs;
    pthread_mutex_t lock;
    char got[64];
    size_t ngot;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

static void signal_all(void)
{
    pthread_mutex_lock(&lock);
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

static int wait_for(atomic_int *flag, int want, int timeout_ms)
{
    long long deadline = th_now_ms() + (long long)timeout_ms * th_slowdown();
    pthread_mutex_lock(&lock);
    while (atomic_load(flag) < want && th_now_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&cond, &lock, &ts);
    }
    pthread_mutex_unlock(&lock);
    return atomic_load(flag) >= want ? 0 : -1;
}

static void oc_connect(struct mux_conn *c)
{
    struct scen *s = mux_conn_data(c);
    atomic_fetch_add(&s->connects, 1);
    signal_all();
}

static size_t oc_read(struct mux_conn *c, const char *d, size_t n)
{
    struct scen *s = mux_conn_data(c);
    pthread_mutex_lock(&s->lock);
    size_t room = sizeof(s->got) - 1 - s->ngot;
    size_t k = n < room ? n : room;
    memcpy(s->got + s->ngot, d, k);
    s->ngot += k;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static void oc_eof(struct mux_conn *c)
{
    struct scen *s = mux_conn_data(c);
    atomic_fetch_add(&s->eofs, 1);
    if (s->action == A_EOF_REPLY) {
        mux_conn_send(c, "pong", 4);
        mux_conn_shutdown_write(c);
        if (mux_conn_send(c, "late", 4) != -EPIPE)
            atomic_fetch_add(&s->calls_bad, 1);
    }
}

static void oc_close(struct mux_conn *c, int err)
{
    struct scen *s = mux_conn_data(c);
    if (mux_conn_send(c, "x", 1) != -EPIPE)
        atomic_fetch_add(&s->calls_bad, 1);
    mux_conn_close(c);
    mux_conn_shutdown_write(c);
    mux_conn_abort(c);
    atomic_store(&s->close_err, err);
    atomic_fetch_add(&s->closes, 1);
    signal_all();
}

static const struct mux_handler out_handler = {
    .name = "outbound",
    .on_connect = oc_connect,
    .on_read = oc_read,
    .on_close = oc_close,
};

static const struct mux_handler out_handler_eof = {
    .name = "outbound-eof",
    .on_connect = oc_connect,
    .on_read = oc_read,
    .on_eof = oc_eof,
    .on_close = oc_close,
};

/* Every call that is not a close, while connecting. */
static void calls_while_connecting(struct scen *s, struct mux_conn *c)
{
    int bad = 0;
    bad += mux_conn_send(c, "queued", 6) != 0;
    bad += mux_conn_pending(c) != 6;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (mux_conn_sendfile(c, fd, 0, 0) != 0) /* empty range: closed at once */
        bad++;
    mux_conn_want_writable(c, true);
    mux_conn_want_writable(c, false);
    mux_conn_pause_read(c);
    mux_conn_resume_read(c);
    mux_conn_set_timeout(c, 50); /* the idle timeout, for after the connect */
    char peer[80];
    mux_conn_peer_str(c, peer, sizeof(peer));
    bad += !mux_conn_is_outbound(c);
    bad += mux_conn_fd(c) < 0;
    bad += mux_conn_worker_ctx(c) == NULL;
    bad += mux_conn_data(c) != s;
    if (bad)
        atomic_fetch_add(&s->calls_bad, bad);
}

static void do_connect(struct mux_worker *w, void *arg)
{
    struct scen *s = arg;
    struct mux_conn *c = NULL;
    const struct mux_handler *h = s->action == A_EOF_REPLY ? &out_handler_eof : &out_handler;
    int rc = mux_worker_connect(w, (struct sockaddr *)&s->addr, s->len, h, s, s->timeout_ms, &c);
    if (rc < 0) {
        atomic_store(&s->close_err, -rc);
        atomic_fetch_add(&s->calls_bad, 1);
        signal_all();
        return;
    }
    switch (s->action) {
    case A_SEND:
        mux_conn_send(c, "hello", 5);
        break;
    case A_SEND_CLOSE:
        mux_conn_send(c, "hello", 5);
        mux_conn_close(c);
        break;
    case A_SEND_SHUTWR:
        mux_conn_send(c, "hello", 5);
        mux_conn_shutdown_write(c);
        break;
    case A_ABORT:
        mux_conn_send(c, "hello", 5);
        mux_conn_abort(c);
        break;
    case A_CALLS:
        calls_while_connecting(s, c);
        break;
    case A_EOF_REPLY:
        break;
    }
}

static void on_start(struct mux_worker *w)
{
    struct scen *s = mux_worker_app(w);
    atomic_store(&s->started, 1);
    signal_all();
}

static const struct mux_handler server_handler = {
    .name = "unused",
    .on_read = oc_read,
    .on_worker_start = on_start,
};

static void run_scenario(struct th_inproc *t, struct scen *s, unsigned grace_ms)
{
    struct mux_options o;
    mux_options_init(&o);
    snprintf(o.listen[0], sizeof(o.listen[0]), "127.0.0.1:0");
    o.workers = 1;
    o.log_level = MUX_LOG_WARN;
    o.shutdown_grace_ms = grace_ms;
    th_options_poller(&o);
    pthread_mutex_init(&s->lock, NULL);
    assert_int_equal(th_inproc_start(t, &o, &server_handler, s), 0);
    assert_int_equal(wait_for(&s->started, 1, 5000), 0);
    assert_int_equal(mux_server_post(t->s, 0, do_connect, s), 0);
}

static void finish(struct th_inproc *t, struct scen *s)
{
    assert_int_equal(th_inproc_stop(t), 0);
    assert_int_equal(atomic_load(&s->calls_bad), 0);
    pthread_mutex_destroy(&s->lock);
}

/* A blocking listener on 127.0.0.1:0; its address into s. */
static int listener(struct scen *s, int backlog)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, backlog), 0);
    s->len = sizeof(s->addr);
    getsockname(fd, (struct sockaddr *)&s->addr, &s->len);
    return fd;
}

static int accept_one(int lfd)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 5000 * th_slowdown()), 1);
    return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

/* ---- success, and the calls that wait for the connect ---- */

static void check_hello_then(int peer, bool expect_eof)
{
    char buf[8];
    assert_int_equal(th_read_exact(peer, buf, 5, 5000), 5);
    assert_memory_equal(buf, "hello", 5);
    if (expect_eof)
        assert_int_equal(th_wait_eof(peer, 5000), 0);
}

static void test_connect_send_reply(void **state)
{
    struct scen s = {.action = A_SEND, .timeout_ms = 5000};
    struct th_inproc t;
    int lfd = listener(&s, 16);
    run_scenario(&t, &s, 2000);
    int peer = accept_one(lfd);
    check_hello_then(peer, false);
    assert_int_equal(wait_for(&s.connects, 1, 5000), 0);
    assert_int_equal(th_write_all(peer, "world", 5, 5000), 0);
    close(peer); /* peer FIN: no on_eof, so it closes once flushed */
    assert_int_equal(wait_for(&s.closes, 1, 5000), 0);
    assert_int_equal(atomic_load(&s.close_err), 0);
    assert_int_equal(s.ngot, 5);
    assert_memory_equal(s.got, "world", 5);
    assert_int_equal(atomic_load(&s.connects), 1);
    close(lfd);
    finish(&t, &s);
}

static void test_close_while_connecting_flushes(void **state)
{
    struct scen s = {.action = A_SEND_CLOSE, .timeout_ms = 5000};
    struct th_inproc t;
    int lfd = listener(&s, 16);
    run_scenario(&t, &s, 2000);
    int peer = accept_one(lfd);
    check_hello_then(peer, true);
    close(peer);
    assert_int_equal(wait_for(&s.closes, 1, 5000), 0);
    assert_int_equal(atomic_load(&s.close_err), 0);
    assert_int_equal(atomic_load(&s.connects), 1);
    close(lfd);
    finish(&t, &s);
}

static void test_shutdown_write_while_connecting(void **state)
{
    struct scen s = {.action = A_SEND_SHUTWR, .timeout_ms = 5000};
    struct th_inproc t;
    int lfd = listener(&s, 16);
    run_scenario(&t, &s, 2000);
    int peer = accept_one(lfd);
    check_hello_then(peer, true); /* our FIN after the bytes ... */
    assert_int_equal(th_write_all(peer, "bye", 3, 5000), 0); /* ... and reading goes on */
    shutdown(peer, SHUT_WR);
    assert_int_equal(wait_for(&s.closes, 1, 5000), 0);
    assert_int_equal(atomic_load(&s.close_err), 0);
    assert_int_equal(s.ngot, 3);
    assert_memory_equal(s.got, "bye", 3);
    close(peer);
    close(lfd);
    finish(&t, &s);
}

static void test_eof_reply(void **state)
{
    struct scen s = {.action = A_EOF_REPLY, .timeout_ms = 5000};
    struct th_inproc t;
    int lfd = listener(&s, 16);
    run_scenario(&t, &s, 2000);
    int peer = accept_one(lfd);
    assert_int_equal(th_write_all(peer, "ping", 4, 5000), 0);
    shutdown(peer, SHUT_WR);
    char buf[4];
    assert_int_equal(th_read_exact(peer, buf, 4, 5000), 4);
    assert_memory_equal(buf, "pong", 4);
    assert_int_equal(th_wait_eof(peer, 5000), 0);
    assert_int_equal(wait_for(&s.closes, 1, 5000), 0);
    assert_int_equal(atomic_load(&s.close_err), 0);
    assert_int_equal(atomic_load(&s.eofs), 1);
    assert_int_equal(s.ngot, 4);
    assert_memory_equal(s.got, "ping", 4);
    close(peer);
    close(lfd);
    finish(&t, &s);
}

/* ---- failures ---- */

static void test_refused(void **state)
{
    struct scen s = {.action = A_SEND, .timeout_ms = 5000};
    struct th_inproc t;
    close(listener(&s, 1)); /* a port nobody listens on any more */
    run_scenario(&t, &s, 2000);
    assert_int_equal(wait_for(&s.closes, 1, 5000), 0);
    assert_int_equal(atomic_load(&s.close_err), ECONNREFUSED);
    assert_int_equal(atomic_load(&s.connects), 0);
    finish(&t, &s);
}

/* A listener that answers no SYN: backlog 0 and its accept queue filled by
 * connections nobody accepts (the kernel drops further SYNs). Returns the
 * listener; the fillers go to fill[]. */
static int blackhole(struct scen *s, int fill[], int *nfill)
{
    int lfd = listener(s, 0);
    *nfill = 0;
    for (int i = 0; i < 8; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        connect(fd, (struct sockaddr *)&s->addr, s->len);
        fill[(*nfill)++] = fd;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 200) == 0)
            return lfd; /* this one hangs: the queue is full */
    }
    fail_msg("could not fill the accept queue of a backlog-0 listener");
    return -1;
}

static void test_timeout_and_calls_while_connecting(void **state)
{
    struct scen s = {.action = A_CALLS, .timeout_ms = 150};
    struct th_inproc t;
    int fill[8], nfill;
    int lfd = blackhole(&s, fill, &nfill);
    long long t0 = th_now_ms();
    run_scenario(&t, &s, 2000);
    assert_int_equal(wait_for(&s.closes, 1, 5000), 0);
    assert_true(th_now_ms() - t0 >= 150);
    assert_int_equal(atomic_load(&s.close_err), ETIMEDOUT);
    assert_int_equal(atomic_load(&s.connects), 0);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    close(lfd);
    finish(&t, &s);
}

static void test_abort_while_connecting(void **state)
{
    struct scen s = {.action = A_ABORT, .timeout_ms = 0};
    struct th_inproc t;
    int fill[8], nfill;
    int lfd = blackhole(&s, fill, &nfill);
    run_scenario(&t, &s, 2000);
    assert_int_equal(wait_for(&s.closes, 1, 5000), 0);
    assert_int_equal(atomic_load(&s.close_err), ECONNABORTED);
    assert_int_equal(atomic_load(&s.connects), 0);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    close(lfd);
    finish(&t, &s);
}

static void test_shutdown_while_connecting(void **state)
{
    struct scen s = {.action = A_SEND, .timeout_ms = 0};
    struct th_inproc t;
    int fill[8], nfill;
    int lfd = blackhole(&s, fill, &nfill);
    run_scenario(&t, &s, 200);
    /* the connect is in progress; the grace period ends it */
    assert_int_equal(th_inproc_stop(&t), 0);
    assert_int_equal(atomic_load(&s.closes), 1);
    assert_int_equal(atomic_load(&s.close_err), ESHUTDOWN);
    assert_int_equal(atomic_load(&s.connects), 0);
    assert_int_equal(atomic_load(&s.calls_bad), 0);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    close(lfd);
    pthread_mutex_destroy(&s.lock);
}

static void test_parse_numeric(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char msg[256];
    assert_int_equal(mux_addr_parse_numeric("127.0.0.1:80", &ss, &len, msg, sizeof(msg)), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(mux_addr_parse_numeric("[::1]:8080", &ss, &len, msg, sizeof(msg)), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(mux_addr_parse_numeric("localhost:80", &ss, &len, msg, sizeof(msg)), -EINVAL);
    assert_non_null(strstr(msg, "names are not resolved"));
    const char *bad[] = {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:8x", "[::1]80",
                         "[::1]:", ":80", "1.2.3:80", "[127.0.0.1]:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (mux_addr_parse_numeric(bad[i], &ss, &len, msg, sizeof(msg)) != -EINVAL)
            fail_msg("\"%s\" accepted", bad[i]);
}

int main(void)
{
    mux_log_setup(MUX_LOG_WARN, "test");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_numeric),
        cmocka_unit_test(test_connect_send_reply),
        cmocka_unit_test(test_close_while_connecting_flushes),
        cmocka_unit_test(test_shutdown_write_while_connecting),
        cmocka_unit_test(test_eof_reply),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_timeout_and_calls_while_connecting),
        cmocka_unit_test(test_abort_while_connecting),
        cmocka_unit_test(test_shutdown_while_connecting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
