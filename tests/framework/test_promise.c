/* test_promise.c - the promise of mux/conn.h under faults: no handler
 * callback runs inside any mux_conn_* or mux_worker_* call, and on_close
 * runs exactly once, whatever fails inside a call.
 *
 * The handler makes every public call from every callback (on_accept,
 * on_connect, on_read, on_writable, on_eof, on_close, a timer), among them
 * a send far above write_high_water to a client with a tiny receive buffer
 * (so the framework flushes inside mux_conn_send and finds the socket
 * full) and an outbound connect back to the server. Each call is wrapped:
 * a callback that starts while one is running is a violation. The
 * scenario runs once without faults and then once per fault plan of
 * framework/fault.h: the K-th allocation alone fails (K = 1..ALLOC_MAX),
 * the K-th send alone fails (K = 1..SEND_MAX), and every 3rd allocation /
 * every 2nd send. Backend: MUX_TEST_POLLER. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "harness.h"
#include "inproc.h"
#include "mux/worker.h"

#define BIG (4u << 20)  /* one send, far above write_high_water */
#define CLIENTS 3       /* per scenario */
#define MAX_CONNS 16    /* live connections a timer can find */
#define MAX_CONNECTS 2  /* outbound connects per scenario */
#define ALLOC_MAX 24
#define SEND_MAX 12

static char big[BIG];

struct pc {
    struct mux_conn *c;
    uint64_t id;
    int closes;
    int writables;
    int mode; /* how the handler ends it: 0 close, 1 shutdown_write, 2 abort, 3 leave it */
};

struct app {
    int file_fd;
    struct mux_worker *wk;
    struct sockaddr_storage self;
    socklen_t self_len;
    unsigned in_call;     /* worker thread only (one worker) */
    bool in_timer;        /* a timer's calls start no timer (no endless chain) */
    struct pc *live[MAX_CONNS];
    int connects;
    pthread_mutex_t lock; /* the counters below, read by the test thread */
    int accepts, closes, violations;
    char why[256];
};

static struct app app;

static void violation(const char *fmt, ...)
{
    pthread_mutex_lock(&app.lock);
    if (app.violations++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(app.why, sizeof(app.why), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&app.lock);
}

#define CALL(expr) (app.in_call++, (expr), app.in_call--)

static void entry(const char *cb)
{
    if (app.in_call)
        violation("%s ran inside a mux_* call", cb);
}

static void track(struct pc *p, bool on)
{
    for (int i = 0; i < MAX_CONNS; i++) {
        if (on && !app.live[i]) {
            app.live[i] = p;
            return;
        }
        if (!on && app.live[i] == p) {
            app.live[i] = NULL;
            return;
        }
    }
}

static void every_call(struct mux_conn *c, struct pc *p, bool closed, const char *where);

static void on_timer(struct mux_worker *w, void *arg)
{
    (void)w;
    entry("a timer");
    uint64_t id = (uint64_t)(uintptr_t)arg;
    for (int i = 0; i < MAX_CONNS; i++)
        if (app.live[i] && app.live[i]->id == id)
            { app.in_timer = true; every_call(app.live[i]->c, app.live[i], false, "timer"); app.in_timer = false; }
}

/* Every public call on c; from on_close (closed) each must be harmless. */
static void every_call(struct mux_conn *c, struct pc *p, bool closed, const char *where)
{
    int rc;
    CALL(rc = mux_conn_send(c, "0123456789abcdef", 16));
    if (closed && rc == 0)
        violation("%s: a send after on_close was accepted", where);
    CALL(rc = mux_conn_send(c, big, BIG));
    int fd = dup(app.file_fd);
    CALL(rc = mux_conn_sendfile(c, fd, 0, 65536));
    if (rc < 0)
        close(fd);
    char peer[80];
    CALL((void)mux_conn_pending(c));
    CALL(mux_conn_want_writable(c, true));
    CALL(mux_conn_pause_read(c));
    CALL(mux_conn_resume_read(c));
    CALL(mux_conn_set_timeout(c, 10000));
    CALL(mux_conn_set_deadline(c, 20000));
    CALL(mux_conn_peer_str(c, peer, sizeof(peer)));
    CALL((void)mux_conn_fd(c));
    size_t alpn_len;
    CALL((void)mux_conn_alpn(c, &alpn_len));
    CALL((void)mux_conn_is_outbound(c));
    if (!closed && !app.in_timer) {
        uint64_t t;
        CALL(t = mux_timer_start(app.wk, 1, 0, on_timer, (void *)(uintptr_t)p->id));
        (void)t;
    }
    if (!closed && app.connects < MAX_CONNECTS && !mux_conn_is_outbound(c)) {
        app.connects++;
        struct mux_conn *out = NULL;
        struct pc *q = calloc(1, sizeof(*q));
        q->mode = 3;
        CALL(rc = mux_worker_connect(app.wk, (struct sockaddr *)&app.self, app.self_len, NULL, q,
                                     2000, &out));
        if (rc < 0)
            free(q);
        else
            q->c = out;
    }
}

static int h_accept(struct mux_conn *c)
{
    entry("on_accept");
    struct pc *p = calloc(1, sizeof(*p));
    p->c = c;
    p->id = mux_conn_id(c);
    p->mode = (int)(p->id % 3);
    mux_conn_set_data(c, p);
    track(p, true);
    pthread_mutex_lock(&app.lock);
    app.accepts++;
    pthread_mutex_unlock(&app.lock);
    CALL(mux_conn_send(c, "hi", 2));
    CALL(mux_conn_set_timeout(c, 10000));
    return 0;
}

static void h_connect(struct mux_conn *c)
{
    entry("on_connect");
    struct pc *p = mux_conn_data(c);
    p->c = c;
    p->id = mux_conn_id(c);
    track(p, true);
    pthread_mutex_lock(&app.lock);
    app.accepts++; /* on_close is owed from here */
    pthread_mutex_unlock(&app.lock);
    every_call(c, p, false, "on_connect");
    CALL(mux_conn_close(c));
}

static size_t h_read(struct mux_conn *c, const char *data, size_t len)
{
    (void)data;
    entry("on_read");
    struct pc *p = mux_conn_data(c);
    every_call(c, p, false, "on_read");
    return len;
}

static void h_writable(struct mux_conn *c)
{
    entry("on_writable");
    struct pc *p = mux_conn_data(c);
    if (++p->writables > 2 || p->mode == 3) {
        CALL(mux_conn_want_writable(c, false));
        if (p->mode == 0)
            CALL(mux_conn_close(c));
        else if (p->mode == 1)
            CALL(mux_conn_shutdown_write(c));
        else if (p->mode == 2)
            CALL(mux_conn_abort(c));
        return;
    }
    CALL(mux_conn_send(c, "more", 4));
}

static void h_eof(struct mux_conn *c)
{
    entry("on_eof");
    struct pc *p = mux_conn_data(c);
    every_call(c, p, false, "on_eof");
    CALL(mux_conn_close(c));
}

static void h_close(struct mux_conn *c, int err)
{
    (void)err;
    entry("on_close");
    struct pc *p = mux_conn_data(c);
    if (!p) { /* an outbound connect that failed before on_connect */
        violation("on_close without user data");
        return;
    }
    if (++p->closes > 1)
        violation("on_close ran twice for conn %llu", (unsigned long long)p->id);
    track(p, false);
    bool counted = p->id != 0; /* an outbound connect that never connected was not counted */
    every_call(c, p, true, "on_close");
    pthread_mutex_lock(&app.lock);
    if (counted)
        app.closes++;
    pthread_mutex_unlock(&app.lock);
    free(p);
    mux_conn_set_data(c, NULL);
}

static void h_worker_start(struct mux_worker *w)
{
    app.wk = w;
}

static const struct mux_handler handler = {
    .name = "promise",
    .on_accept = h_accept,
    .on_connect = h_connect,
    .on_read = h_read,
    .on_writable = h_writable,
    .on_eof = h_eof,
    .on_close = h_close,
    .on_worker_start = h_worker_start,
};

static void options(struct mux_options *o)
{
    mux_options_init(o);
    snprintf(o->listen[0], sizeof(o->listen[0]), "127.0.0.1:0");
    o->workers = 1;
    o->log_level = MUX_LOG_ERROR;
    o->write_high_water = 64 << 10;
    o->write_low_water = 16 << 10;
    o->shutdown_grace_ms = 300;
    th_options_poller(o);
}

/* A client with a tiny receive buffer: says hello, then reads until the
 * server ends the connection (or 10 s), half-closing after a while. */
static int client(const struct th_inproc *srv)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_storage ss;
    socklen_t len;
    assert_int_equal(th_sockaddr(srv->host, srv->port, &ss, &len), 0);
    if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static int accepts_closes_equal(void)
{
    pthread_mutex_lock(&app.lock);
    int eq = app.accepts == app.closes;
    pthread_mutex_unlock(&app.lock);
    return eq;
}

/* One scenario under `plan`; fails the test on a violation. */
static void scenario(const char *plan)
{
    struct mux_options o;
    options(&o);
    pthread_mutex_lock(&app.lock);
    app.accepts = app.closes = 0;
    pthread_mutex_unlock(&app.lock);
    app.connects = 0;
    memset(app.live, 0, sizeof(app.live));
    mux__fault_plan(plan);
    struct th_inproc srv;
    assert_int_equal(th_inproc_start(&srv, &o, &handler, &app), 0);
    assert_int_equal(th_sockaddr(srv.host, srv.port, &app.self, &app.self_len), 0);
    int fds[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        fds[i] = client(&srv);
        if (fds[i] >= 0 && write(fds[i], "hello", 5) < 0) {
            close(fds[i]);
            fds[i] = -1;
        }
    }
    /* Read until every client is ended by the server, half-closing each
     * once it has read some (on_eof then runs its calls too). */
    long long end = th_now_ms() + 10000;
    size_t got[CLIENTS] = {0};
    int open = 0;
    for (int i = 0; i < CLIENTS; i++)
        open += fds[i] >= 0;
    char buf[65536];
    while (open > 0 && th_now_ms() < end) {
        struct pollfd pf[CLIENTS];
        for (int i = 0; i < CLIENTS; i++)
            pf[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        poll(pf, CLIENTS, 50);
        for (int i = 0; i < CLIENTS; i++) {
            if (fds[i] < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(fds[i], buf, sizeof(buf));
            if (n > 0) {
                if (got[i] < (1u << 20) && got[i] + (size_t)n >= (1u << 20))
                    shutdown(fds[i], SHUT_WR);
                got[i] += (size_t)n;
                continue;
            }
            if (n < 0 && errno == EAGAIN)
                continue;
            close(fds[i]);
            fds[i] = -1;
            open--;
        }
    }
    for (int i = 0; i < CLIENTS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    assert_int_equal(th_inproc_stop(&srv), 0); /* every connection is ended by now */
    mux__fault_plan("");
    if (app.violations)
        fail_msg("MUX_FAULT=%s, %s: %s", plan, th_poller(), app.why);
    pthread_mutex_lock(&app.lock);
    int accepts = app.accepts, closes = app.closes;
    pthread_mutex_unlock(&app.lock);
    if (!accepts_closes_equal())
        fail_msg("MUX_FAULT=%s: %d on_accept/on_connect but %d on_close", plan, accepts, closes);
}

static void test_promise_under_faults(void **state)
{
    (void)state;
    char plan[32];
    const char *one = getenv("MUX_PROMISE_PLAN"); /* replay one plan */
    if (one) {
        scenario(one);
        return;
    }
    scenario("");
    for (int k = 1; k <= ALLOC_MAX; k++) {
        snprintf(plan, sizeof(plan), "alloc=#%d", k);
        scenario(plan);
    }
    for (int k = 1; k <= SEND_MAX; k++) {
        snprintf(plan, sizeof(plan), "send=#%d", k);
        scenario(plan);
    }
    scenario("alloc=3");
    scenario("send=2");
    scenario("alloc=5,send=3");
    print_message("promise: %d fault plans on %s, no callback inside a call, on_close once\n",
                  1 + ALLOC_MAX + SEND_MAX + 3, th_poller());
}

int main(void)
{
    pthread_mutex_init(&app.lock, NULL);
    char path[] = "/tmp/mux-promise-XXXXXX";
    app.file_fd = mkstemp(path);
    assert_true(app.file_fd >= 0);
    unlink(path);
    memset(big, 'x', sizeof(big));
    assert_int_equal(write(app.file_fd, big, 65536), 65536);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_promise_under_faults),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    close(app.file_fd);
    return rc;
}
