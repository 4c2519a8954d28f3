/* test_lifecycle.c - the connection lifecycle at its edges, in-process, on
 * the poller named by MUX_TEST_POLLER (ctest runs it on every backend):
 *  - every public call made from on_close, for every way a connection ends;
 *  - no worker burns CPU while reading is stopped and the peer half-closes
 *    (paused by the app, or blocked by output above write_high_water);
 *  - a paused connection notices the peer's reset at once;
 *  - data and FIN in one segment still end in a close (edge triggered);
 *  - close-after-flush and peer-EOF closes when the last bytes leave on a
 *    writability event, for memory and file output;
 *  - a streaming on_writable producer with close, half-close and shutdown;
 *  - write_low_water = 0 and one 20 MiB send;
 *  - shutdown: streaming clients are answered or reset, never a FIN over
 *    unanswered bytes; a second stop request ends the grace period. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "inproc.h"

enum mode {
    M_ECHO,        /* echo everything */
    M_PAUSE,       /* pause reading at the first byte, consume nothing */
    M_BIG_REPLY,   /* first read: send `big` pattern bytes in one call */
    M_BIG_FILE,    /* first read: the same bytes as a file range */
    M_PRODUCER,    /* on_writable streams `big` pattern bytes; input discarded */
    M_CLOSE_CALLS, /* echo; on_close calls every public function */
};

struct app {
    enum mode mode;
    size_t big;
    bool close_after;      /* M_BIG_*, M_PRODUCER: mux_conn_close when done */
    atomic_bool abort_on_read;  /* M_CLOSE_CALLS: abort at the first read (set by the test thread) */
    atomic_bool close_on_read;  /* M_CLOSE_CALLS: close at the first read (set by the test thread) */
    const char *file_path; /* M_BIG_FILE */
    pthread_mutex_t lock;
    int accepts, closes, double_closes, bad_calls;
    int pauses;   /* M_PAUSE: connections that stopped reading */
    int last_err; /* of the latest on_close */
};

struct per_conn {
    int closed;
    size_t produced;
    bool replied;
};

static unsigned char pattern(size_t i)
{
    return (unsigned char)((i * 2654435761u) >> 13);
}

static int on_accept(struct mux_conn *c)
{
    struct app *a = mux_conn_app(c);
    mux_conn_set_data(c, calloc(1, sizeof(struct per_conn)));
    pthread_mutex_lock(&a->lock);
    a->accepts++;
    pthread_mutex_unlock(&a->lock);
    if (a->mode == M_PRODUCER)
        mux_conn_want_writable(c, true);
    return 0;
}

static void send_pattern(struct mux_conn *c, size_t from, size_t len)
{
    unsigned char *buf = malloc(len);
    for (size_t i = 0; i < len; i++)
        buf[i] = pattern(from + i);
    assert_int_equal(mux_conn_send(c, buf, len), 0);
    free(buf);
}

static size_t on_read(struct mux_conn *c, const char *data, size_t len)
{
    struct app *a = mux_conn_app(c);
    struct per_conn *pc = mux_conn_data(c);
    switch (a->mode) {
    case M_PAUSE:
        mux_conn_pause_read(c);
        pthread_mutex_lock(&a->lock);
        a->pauses++;
        pthread_mutex_unlock(&a->lock);
        return 0;
    case M_BIG_REPLY:
    case M_BIG_FILE:
        if (!pc->replied) {
            pc->replied = true;
            if (a->mode == M_BIG_REPLY) {
                send_pattern(c, 0, a->big);
            } else {
                int fd = open(a->file_path, O_RDONLY | O_CLOEXEC);
                assert_true(fd >= 0);
                assert_int_equal(mux_conn_sendfile(c, fd, 0, a->big), 0);
            }
            if (a->close_after)
                mux_conn_close(c);
        }
        return len;
    case M_PRODUCER:
        return len;
    case M_CLOSE_CALLS:
        if (a->abort_on_read) {
            mux_conn_abort(c);
            return len;
        }
        mux_conn_send(c, data, len); /* echo, as M_ECHO */
        if (a->close_on_read)
            mux_conn_close(c);
        return len;
    case M_ECHO:
        mux_conn_send(c, data, len);
        return len;
    }
    return len;
}

static void on_writable(struct mux_conn *c)
{
    struct app *a = mux_conn_app(c);
    struct per_conn *pc = mux_conn_data(c);
    if (a->mode != M_PRODUCER)
        return;
    size_t n = a->big - pc->produced < 8192 ? a->big - pc->produced : 8192;
    send_pattern(c, pc->produced, n);
    pc->produced += n;
    if (pc->produced == a->big) {
        mux_conn_want_writable(c, false);
        if (a->close_after)
            mux_conn_close(c);
    }
}

/* Every public call, from inside on_close: each must be harmless. */
static void call_everything(struct app *a, struct mux_conn *c)
{
    int bad = 0;
    bad += mux_conn_send(c, "x", 1) != -EPIPE;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int rc = mux_conn_sendfile(c, fd, 0, 1);
    bad += rc != -EPIPE;
    if (rc < 0)
        close(fd); /* on error the caller still owns it */
    mux_conn_pause_read(c);
    mux_conn_resume_read(c);
    mux_conn_pause_read(c);
    mux_conn_want_writable(c, true);
    mux_conn_want_writable(c, false);
    mux_conn_want_writable(c, true);
    mux_conn_set_timeout(c, 1);
    mux_conn_close(c);
    mux_conn_abort(c);
    mux_conn_close(c);
    bad += mux_conn_pending(c) != 0;
    char peer[80];
    mux_conn_peer_str(c, peer, sizeof(peer));
    (void)mux_conn_worker(c);
    (void)mux_conn_id(c);
    (void)mux_conn_fd(c);
    if (bad) {
        pthread_mutex_lock(&a->lock);
        a->bad_calls += bad;
        pthread_mutex_unlock(&a->lock);
    }
}

static void on_close(struct mux_conn *c, int err)
{
    struct app *a = mux_conn_app(c);
    struct per_conn *pc = mux_conn_data(c);
    if (a->mode == M_CLOSE_CALLS)
        call_everything(a, c);
    pthread_mutex_lock(&a->lock);
    if (pc->closed++)
        a->double_closes++;
    a->closes++;
    a->last_err = err;
    pthread_mutex_unlock(&a->lock);
    free(pc);
    mux_conn_set_data(c, NULL);
}

static const struct mux_handler handler = {
    .name = "lifecycle",
    .on_accept = on_accept,
    .on_read = on_read,
    .on_writable = on_writable,
    .on_close = on_close,
};

/* ---- fixture ---- */

struct fx {
    struct app app;
    struct mux_options opts;
    struct th_inproc srv;
    char file[64];
};

static struct fx *fx_new(enum mode mode)
{
    struct fx *f = calloc(1, sizeof(*f));
    pthread_mutex_init(&f->app.lock, NULL);
    f->app.mode = mode;
    mux_options_init(&f->opts);
    snprintf(f->opts.listen[0], sizeof(f->opts.listen[0]), "127.0.0.1:0");
    f->opts.workers = 1;
    f->opts.shutdown_grace_ms = 10000;
    const char *lv = getenv("MUX_TEST_LOG"); /* e.g. "debug" to follow every state change */
    f->opts.log_level = lv ? mux_log_level_parse(lv) : MUX_LOG_WARN;
    th_options_poller(&f->opts);
    mux_log_setup(f->opts.log_level, "test");
    return f;
}

static void fx_start(struct fx *f)
{
    assert_int_equal(th_inproc_start(&f->srv, &f->opts, &handler, &f->app), 0);
}

static uint64_t open_conns(struct fx *f)
{
    struct mux_stats *st = mux_server_stats(f->srv.s);
    uint64_t sum = 0;
    for (unsigned i = 0; i < st->workers; i++)
        sum += st->worker[i].open;
    free(st);
    return sum;
}

/* Bounded wait until the server holds `n` sockets (lingering ones count:
 * this is about descriptors). The counters are published once per loop
 * turn and nothing signals a change, so this polls, bounded. */
static int wait_open_conns(struct fx *f, uint64_t n, int timeout_ms)
{
    long long deadline = th_now_ms() + (long long)timeout_ms * th_slowdown();
    do {
        if (open_conns(f) == n)
            return 0;
        struct timespec ts = {.tv_nsec = 1000000};
        nanosleep(&ts, NULL);
    } while (th_now_ms() < deadline);
    return -1;
}

/* Stops the server; every accepted connection got exactly one on_close. */
static void fx_finish(struct fx *f)
{
    assert_int_equal(th_inproc_stop(&f->srv), 0);
    assert_int_equal(f->app.accepts, f->app.closes);
    assert_int_equal(f->app.double_closes, 0);
    assert_int_equal(f->app.bad_calls, 0);
    if (f->file[0])
        unlink(f->file);
    pthread_mutex_destroy(&f->app.lock);
    free(f);
}

static int connect_srv(struct fx *f)
{
    int fd = th_connect_tcp(f->srv.host, f->srv.port);
    assert_true(fd >= 0);
    return fd;
}

static void reset_close(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

/* CPU time of the whole process in ms (the test thread sleeps meanwhile). */
static long long cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

/* Measures CPU burnt over a quiet window: a spinning worker uses about the
 * whole window, an idle one next to nothing. */
static void assert_idle(int window_ms)
{
    long long before = cpu_ms();
    struct timespec ts = {.tv_sec = window_ms / 1000, .tv_nsec = (window_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    long long used = cpu_ms() - before;
    if (used > window_ms / 4)
        fail_msg("the process used %lld ms of CPU in a quiet %d ms window (a spin)", used,
                 window_ms);
}

/* Reads pattern bytes [from, len) and checks each. */
static void expect_pattern(int fd, size_t from, size_t len, int timeout_ms)
{
    size_t got = from, chunk = 64 << 10;
    char *buf = malloc(chunk);
    while (got < len) {
        size_t want = len - got < chunk ? len - got : chunk;
        ssize_t n = th_read_exact(fd, buf, want, timeout_ms);
        if (n != (ssize_t)want)
            fail_msg("got %zu of %zu bytes, then %zd", got, len, n);
        for (size_t i = 0; i < want; i++)
            if ((unsigned char)buf[i] != pattern(got + i))
                fail_msg("byte %zu is wrong", got + i);
        got += want;
    }
    free(buf);
}

/* Reads `len` pattern bytes (checked) then expects EOF, within timeout. */
static void expect_pattern_then_eof(int fd, size_t len, int timeout_ms)
{
    expect_pattern(fd, 0, len, timeout_ms);
    assert_int_equal(th_wait_eof(fd, timeout_ms), 0);
}

/* ---- every call from on_close, for every way a connection ends ---- */

static void test_calls_in_on_close(void **state)
{
    struct fx *f = fx_new(M_CLOSE_CALLS);
    f->opts.idle_timeout_ms = 200;
    fx_start(f);
    /* peer FIN, peer reset, idle timeout */
    int a = connect_srv(f), b = connect_srv(f), t = connect_srv(f);
    char buf[4];
    assert_int_equal(th_write_all(a, "hi", 2, 5000), 0);
    assert_int_equal(th_read_exact(a, buf, 2, 5000), 2);
    shutdown(a, SHUT_WR);
    assert_int_equal(th_wait_eof(a, 5000), 0);
    assert_int_equal(th_write_all(b, "hi", 2, 5000), 0);
    assert_int_equal(th_read_exact(b, buf, 2, 5000), 2);
    reset_close(b);
    assert_int_equal(th_wait_eof(t, 5000), 0); /* the idle timeout closes it */
    close(a);
    close(t);
    /* app close, then app abort */
    f->app.close_on_read = true;
    int c = connect_srv(f);
    assert_int_equal(th_write_all(c, "hi", 2, 5000), 0);
    assert_int_equal(th_read_exact(c, buf, 2, 5000), 2);
    assert_int_equal(th_wait_eof(c, 5000), 0);
    close(c);
    f->app.close_on_read = false;
    f->app.abort_on_read = true;
    int d = connect_srv(f);
    assert_int_equal(th_write_all(d, "hi", 2, 5000), 0);
    assert_int_equal(th_wait_eof(d, 5000), -ECONNRESET);
    close(d);
    f->app.abort_on_read = false;
    assert_int_equal(wait_open_conns(f, 0, 5000), 0);
    /* shutdown with connections open */
    int e = connect_srv(f), g = connect_srv(f);
    assert_int_equal(th_write_all(e, "hi", 2, 5000), 0);
    assert_int_equal(th_read_exact(e, buf, 2, 5000), 2);
    fx_finish(f);
    close(e);
    close(g);
}

/* ---- no spin while not reading ---- */

static void test_paused_peer_half_close_no_spin(void **state)
{
    struct fx *f = fx_new(M_PAUSE);
    f->opts.shutdown_grace_ms = 300; /* paused to the end: the grace period closes it */
    fx_start(f);
    int fd = connect_srv(f);
    assert_int_equal(th_write_all(fd, "x", 1, 5000), 0);
    shutdown(fd, SHUT_WR);
    assert_int_equal(wait_open_conns(f, 1, 5000), 0);
    assert_idle(400);
    close(fd);
    fx_finish(f);
}

/* Bounded wait until the app's counter reaches n (read under its lock). */
static int wait_count(struct fx *f, const int *counter, int n, int timeout_ms)
{
    long long deadline = th_now_ms() + (long long)timeout_ms * th_slowdown();
    do {
        pthread_mutex_lock(&f->app.lock);
        int v = *counter;
        pthread_mutex_unlock(&f->app.lock);
        if (v >= n)
            return 0;
        struct timespec ts = {.tv_nsec = 1000000};
        nanosleep(&ts, NULL);
    } while (th_now_ms() < deadline);
    return -1;
}

/* A reset reaches a connection that stopped reading at once (epoll and
 * poll report it as an error; on uring nothing is being received then),
 * not at the idle timeout or the shutdown. */
static void test_paused_peer_reset(void **state)
{
    if (th_poller_is("select"))
        skip(); /* select cannot watch for errors alone (poller_select.c) */
    struct fx *f = fx_new(M_PAUSE);
    f->opts.idle_timeout_ms = 60000;
    fx_start(f);
    int fd = connect_srv(f);
    assert_int_equal(th_write_all(fd, "x", 1, 5000), 0);
    assert_int_equal(wait_count(f, &f->app.pauses, 1, 5000), 0);
    reset_close(fd);
    if (wait_count(f, &f->app.closes, 1, 3000) != 0)
        fail_msg("a paused connection did not notice the peer's reset");
    assert_int_equal(f->app.last_err, ECONNRESET);
    assert_int_equal(wait_open_conns(f, 0, 5000), 0);
    fx_finish(f);
}

static void test_blocked_peer_half_close_no_spin(void **state)
{
    struct fx *f = fx_new(M_BIG_REPLY);
    f->app.big = 16 << 20; /* far above write_high_water: reading stops */
    fx_start(f);
    int fd = connect_srv(f);
    assert_int_equal(th_write_all(fd, "x", 1, 5000), 0);
    shutdown(fd, SHUT_WR);
    /* wait until the reply is really queued and stuck: some bytes arrive */
    char b;
    assert_int_equal(th_read_exact(fd, &b, 1, 5000), 1);
    assert_idle(400);
    /* reading it all ends in the close the half-close asked for */
    expect_pattern(fd, 1, f->app.big, 10000);
    assert_int_equal(th_wait_eof(fd, 5000), 0);
    close(fd);
    fx_finish(f);
}

/* ---- data and FIN together ---- */

static void test_data_and_fin_in_one_segment(void **state)
{
    struct fx *f = fx_new(M_ECHO);
    fx_start(f);
    for (int i = 0; i < 50; i++) {
        int fd = connect_srv(f);
        char msg[32], back[32];
        int len = snprintf(msg, sizeof(msg), "message %d", i);
        /* MSG_MORE holds the data back so the FIN leaves with it */
        assert_int_equal(send(fd, msg, (size_t)len, MSG_MORE), len);
        shutdown(fd, SHUT_WR);
        assert_int_equal(th_read_exact(fd, back, (size_t)len, 5000), len);
        assert_memory_equal(msg, back, (size_t)len);
        assert_int_equal(th_wait_eof(fd, 5000), 0);
        close(fd);
    }
    assert_int_equal(wait_open_conns(f, 0, 5000), 0);
    fx_finish(f);
}

/* ---- closes that wait for the last bytes to leave on writability ---- */

static void big_then_eof(enum mode mode, bool close_after, bool half_close)
{
    struct fx *f = fx_new(mode);
    f->app.big = 24 << 20; /* more than the socket buffers hold */
    f->app.close_after = close_after;
    if (mode == M_BIG_FILE) {
        snprintf(f->file, sizeof(f->file), "/tmp/mux-lifecycle-%d", (int)getpid());
        int fd = open(f->file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        char *buf = malloc(f->app.big);
        for (size_t i = 0; i < f->app.big; i++)
            buf[i] = (char)pattern(i);
        assert_int_equal(write(fd, buf, f->app.big), (ssize_t)f->app.big);
        free(buf);
        close(fd);
        f->app.file_path = f->file;
    }
    fx_start(f);
    int fd = connect_srv(f);
    assert_int_equal(th_write_all(fd, "GET", 3, 5000), 0);
    if (half_close)
        shutdown(fd, SHUT_WR);
    expect_pattern_then_eof(fd, f->app.big, 10000);
    close(fd);
    assert_int_equal(wait_open_conns(f, 0, 5000), 0);
    fx_finish(f);
}

static void test_close_after_big_send(void **state)
{
    big_then_eof(M_BIG_REPLY, true, false);
}

static void test_close_after_big_file(void **state)
{
    big_then_eof(M_BIG_FILE, true, false);
}

static void test_peer_eof_then_big_send(void **state)
{
    big_then_eof(M_BIG_REPLY, false, true);
}

static void test_peer_eof_then_big_file(void **state)
{
    big_then_eof(M_BIG_FILE, false, true);
}

/* ---- a streaming producer ---- */

static void test_producer_then_close(void **state)
{
    struct fx *f = fx_new(M_PRODUCER);
    f->app.big = 3 << 20;
    f->app.close_after = true;
    fx_start(f);
    int fd = connect_srv(f);
    expect_pattern_then_eof(fd, f->app.big, 10000);
    close(fd);
    fx_finish(f);
}

static void test_producer_after_half_close(void **state)
{
    struct fx *f = fx_new(M_PRODUCER);
    f->app.big = 3 << 20;
    fx_start(f);
    int fd = connect_srv(f);
    assert_int_equal(th_write_all(fd, "bye", 3, 5000), 0);
    shutdown(fd, SHUT_WR); /* the producer still finishes, then the close follows */
    expect_pattern_then_eof(fd, f->app.big, 10000);
    close(fd);
    fx_finish(f);
}

static void *stop_server(void *arg)
{
    struct fx *f = arg;
    mux_server_stop(f->srv.s);
    return NULL;
}

static void test_producer_during_shutdown(void **state)
{
    struct fx *f = fx_new(M_PRODUCER);
    f->app.big = 3 << 20;
    fx_start(f);
    int fd = connect_srv(f);
    char b;
    assert_int_equal(th_read_exact(fd, &b, 1, 5000), 1);
    assert_int_equal(b, (char)pattern(0));
    pthread_t t;
    pthread_create(&t, NULL, stop_server, f);
    /* the producer is not cut off: it wants on_writable, so it may finish */
    expect_pattern(fd, 1, f->app.big, 10000);
    assert_int_equal(th_wait_eof(fd, 10000), 0);
    pthread_join(t, NULL);
    close(fd);
    fx_finish(f);
}

/* ---- boundaries of the write path ---- */

static void test_low_water_zero(void **state)
{
    struct fx *f = fx_new(M_ECHO);
    f->opts.write_high_water = 1;
    f->opts.write_low_water = 0;
    fx_start(f);
    struct th_load l = {.host = f->srv.host, .port = f->srv.port, .conns = 8,
                         .bytes_per_conn = 1 << 20, .max_fragment = 65536,
                         .xform = TH_XFORM_ECHO, .seed = 7, .timeout_ms = 30000};
    assert_int_equal(th_load_run(&l), 0);
    assert_int_equal(l.completed, 8);
    fx_finish(f);
}

static void test_one_huge_send(void **state)
{
    struct fx *f = fx_new(M_BIG_REPLY);
    f->app.big = 20 << 20; /* one mux_conn_send: many more chunks than one writev takes */
    fx_start(f);
    int fd = connect_srv(f);
    assert_int_equal(th_write_all(fd, "x", 1, 5000), 0);
    expect_pattern(fd, 0, f->app.big, 10000);
    close(fd);
    fx_finish(f);
}

/* ---- shutdown ---- */

#define STREAMERS 100

struct streamer {
    int fd;
    size_t sent, received;
    unsigned long long rng_tx, rng_rx;
    bool stop_sending, done;
    int outcome; /* 0 orderly EOF, else -errno */
};

/* After an EOF with bytes unanswered, the server must reset the connection
 * on its own (bounded wait, and without sending anything more that would
 * provoke a reset anyway): that is how it says "not answered". */
static bool reset_follows(int fd)
{
    struct pollfd p = {.fd = fd, .events = 0};
    long long deadline = th_now_ms() + 1000LL * th_slowdown();
    while (th_now_ms() < deadline) {
        if (poll(&p, 1, 50) > 0 && (p.revents & POLLERR))
            return true;
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err)
            return true;
    }
    return false;
}

static void streamer_step(struct streamer *s, bool stopping)
{
    char buf[8192], want[8192];
    if (!s->stop_sending) {
        size_t n = 1 + (s->rng_tx % sizeof(buf));
        unsigned long long st = s->rng_tx;
        th_fill_random(buf, n, &st);
        ssize_t w = send(s->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            unsigned long long st2 = s->rng_tx;
            th_fill_random(buf, (size_t)w, &st2); /* advance by what was taken */
            s->rng_tx = st2;
            s->sent += (size_t)w;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            s->done = true; /* the reset showed up on a write: seen */
            s->outcome = -errno;
            return;
        }
        (void)stopping;
    }
    ssize_t r = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r > 0) {
        th_fill_random(want, (size_t)r, &s->rng_rx);
        assert_memory_equal(buf, want, (size_t)r); /* a correct prefix, always */
        s->received += (size_t)r;
    } else if (r == 0) {
        s->done = true;
        s->outcome = 0;
        if (s->received < s->sent && !reset_follows(s->fd))
            fail_msg("silent loss: orderly EOF after %zu of %zu bytes answered", s->received,
                     s->sent);
    } else if (errno != EAGAIN && errno != EINTR) {
        s->done = true;
        s->outcome = -errno;
    }
}

/* Clients stream random bytes (echoed) when the stop request comes; half of
 * them stop sending then and wait for the rest of their answers, the others
 * keep streaming. Nobody may see an orderly FIN over unanswered bytes. */
static void test_shutdown_never_loses_silently(void **state)
{
    struct fx *f = fx_new(M_ECHO);
    f->opts.workers = 2;
    f->opts.shutdown_grace_ms = 1500;
    fx_start(f);
    struct streamer *s = calloc(STREAMERS, sizeof(*s));
    unsigned long long seed = (unsigned long long)th_now_ms();
    printf("seed %llu\n", seed);
    for (int i = 0; i < STREAMERS; i++) {
        s[i].fd = connect_srv(f);
        s[i].rng_tx = s[i].rng_rx = seed + (unsigned long long)i * 7919;
        fcntl(s[i].fd, F_SETFL, O_NONBLOCK);
    }
    long long stop_at = th_now_ms() + 200, deadline = stop_at + 20000LL * th_slowdown();
    pthread_t t;
    bool stopped = false;
    int done = 0;
    while (done < STREAMERS && th_now_ms() < deadline) {
        if (!stopped && th_now_ms() >= stop_at) {
            pthread_create(&t, NULL, stop_server, f);
            stopped = true;
            for (int i = 0; i < STREAMERS; i += 2)
                s[i].stop_sending = true;
        }
        done = 0;
        for (int i = 0; i < STREAMERS; i++) {
            if (!s[i].done)
                streamer_step(&s[i], stopped);
            done += s[i].done;
        }
    }
    assert_int_equal(done, STREAMERS);
    for (int i = 0; i < STREAMERS; i += 2) { /* the quiet ones got every answer */
        assert_int_equal(s[i].outcome, 0);
        assert_int_equal(s[i].received, s[i].sent);
    }
    pthread_join(t, NULL);
    for (int i = 0; i < STREAMERS; i++)
        close(s[i].fd);
    free(s);
    fx_finish(f);
}

/* A second stop request during the grace period ends it at once. */
static void test_second_stop_ends_grace(void **state)
{
    struct fx *f = fx_new(M_BIG_REPLY);
    f->app.big = 32 << 20; /* never read: cannot finish */
    f->opts.shutdown_grace_ms = 60000;
    fx_start(f);
    int fd = connect_srv(f);
    assert_int_equal(th_write_all(fd, "x", 1, 5000), 0);
    char b;
    assert_int_equal(th_read_exact(fd, &b, 1, 5000), 1);
    long long t0 = th_now_ms();
    mux_server_stop(f->srv.s);
    /* the listener closes once the shutdown has begun */
    long long deadline = t0 + 5000LL * th_slowdown();
    int probe;
    while ((probe = th_connect_tcp(f->srv.host, f->srv.port)) >= 0 && th_now_ms() < deadline)
        close(probe);
    assert_true(probe < 0);
    fx_finish(f); /* the second request */
    assert_true(th_now_ms() - t0 < 10000LL * th_slowdown());
    assert_int_equal(th_wait_eof(fd, 5000), -ECONNRESET);
    close(fd);
}

/* Debug builds: a mux_conn_* call off the owning worker's thread aborts
 * at once (in a forked child, so the abort ends only the child). */
#ifndef NDEBUG
static _Atomic(struct mux_conn *) grabbed;

static int grab_accept(struct mux_conn *c)
{
    atomic_store(&grabbed, c);
    return 0;
}

static size_t grab_read(struct mux_conn *c, const char *data, size_t len)
{
    return len;
}
#endif

static void test_off_thread_call_aborts(void **state)
{
#ifdef NDEBUG
    skip(); /* the owner check is a debug-build assertion */
#else
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct mux_options o;
        mux_options_init(&o);
        snprintf(o.listen[0], sizeof(o.listen[0]), "127.0.0.1:0");
        o.workers = 1;
        o.log_level = MUX_LOG_ERROR;
        static const struct mux_handler h = {.on_accept = grab_accept, .on_read = grab_read};
        struct th_inproc srv;
        if (th_inproc_start(&srv, &o, &h, NULL) < 0)
            _exit(3);
        int fd = th_connect_tcp(srv.host, srv.port);
        long long deadline = th_now_ms() + 5000;
        while (!atomic_load(&grabbed) && th_now_ms() < deadline)
            sched_yield();
        if (fd < 0 || !atomic_load(&grabbed))
            _exit(4);
        mux_conn_close(atomic_load(&grabbed)); /* the wrong thread: must abort */
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
#endif
}

int main(void)
{
    const char *only = getenv("MUX_TEST_ONLY"); /* run one test by name */
    if (only)
        cmocka_set_test_filter(only);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calls_in_on_close),
        cmocka_unit_test(test_paused_peer_half_close_no_spin),
        cmocka_unit_test(test_paused_peer_reset),
        cmocka_unit_test(test_blocked_peer_half_close_no_spin),
        cmocka_unit_test(test_data_and_fin_in_one_segment),
        cmocka_unit_test(test_close_after_big_send),
        cmocka_unit_test(test_close_after_big_file),
        cmocka_unit_test(test_peer_eof_then_big_send),
        cmocka_unit_test(test_peer_eof_then_big_file),
        cmocka_unit_test(test_producer_then_close),
        cmocka_unit_test(test_producer_after_half_close),
        cmocka_unit_test(test_producer_during_shutdown),
        cmocka_unit_test(test_low_water_zero),
        cmocka_unit_test(test_one_huge_send),
        cmocka_unit_test(test_shutdown_never_loses_silently),
        cmocka_unit_test(test_second_stop_ends_grace),
        cmocka_unit_test(test_off_thread_call_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
