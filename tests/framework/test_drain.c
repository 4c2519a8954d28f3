/* test_drain.c - graceful shutdown against input the handler holds back,
 * in-process, on the poller named by MUX_TEST_POLLER (every backend):
 *  - a handler that paused reading with input buffered (part of it
 *    consumed, the rest left) when the server is told to stop, and that
 *    resumes within the grace period from a timer: every byte is delivered
 *    and answered, then the close is orderly (FIN, on_close(c, 0));
 *  - a handler that waits for the rest of a message (a partial line stays
 *    buffered, reading not paused): the client is never told "done" with a
 *    FIN; the grace period's end resets it (on_close(c, ESHUTDOWN)).
 * The drain closes a connection once it has been quiet for 50 ms, so each
 * case holds its input far longer than that. Seed: MUX_TEST_SEED. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "inproc.h"
#include "seed.h"

#define MAX_CONNS 8
#define MAX_MSG (48 * 1024) /* fits the socket buffers while the server holds it */

enum mode {
    M_STEP,  /* echo one line, pause, resume from a timer 100-200 ms later */
    M_LINES, /* echo whole lines only; a partial line stays buffered */
    M_LATER, /* take a line, pause, answer it (and resume) from a timer 200-400 ms later */
};

struct app {
    enum mode mode;
    unsigned long long seed;
    atomic_int paused;     /* pauses with input buffered */
    atomic_int lines;      /* lines answered (M_STEP) */
    atomic_int resumed;
    atomic_int closes, closes_ok, closes_shutdown, closes_other;
    atomic_ulong delivered; /* bytes on_read consumed */
};

struct per_conn {
    struct mux_conn *c;
    uint64_t timer;
    unsigned steps;
    char line[64]; /* M_LATER: the line to answer */
    size_t line_len;
};

/* A per-connection random number from the seed, without shared state
 * between the workers. */
static unsigned long long mix(unsigned long long x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
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
    struct app *a = mux_conn_app(pc->c);
    pc->timer = 0;
    atomic_fetch_add(&a->resumed, 1);
    if (pc->line_len) { /* M_LATER: the answer, produced while the connection drains */
        assert_int_equal(mux_conn_send(pc->c, pc->line, pc->line_len), 0);
        pc->line_len = 0;
    }
    mux_conn_resume_read(pc->c);
}

static size_t echo(struct mux_conn *c, const char *data, size_t n)
{
    struct app *a = mux_conn_app(c);
    if (n > 0)
        assert_int_equal(mux_conn_send(c, data, n), 0);
    atomic_fetch_add(&a->delivered, n);
    return n;
}

static size_t on_read(struct mux_conn *c, const char *data, size_t len)
{
    struct app *a = mux_conn_app(c);
    struct per_conn *pc = mux_conn_data(c);
    if (a->mode == M_LINES) {
        const char *nl = memrchr(data, '\n', len);
        return echo(c, data, nl ? (size_t)(nl - data) + 1 : 0);
    }
    if (a->mode == M_LATER) {
        const char *end = memchr(data, '\n', len);
        if (!end)
            return 0;
        size_t n = (size_t)(end - data) + 1;
        assert_true(n <= sizeof pc->line);
        memcpy(pc->line, data, n);
        pc->line_len = n;
        mux_conn_pause_read(c); /* busy with it: nothing more is read meanwhile */
        unsigned ms = 200 + (unsigned)(mix(a->seed ^ mux_conn_id(c)) % 200);
        pc->timer = mux_timer_start(mux_conn_worker_ctx(c), ms, 0, resume, pc);
        assert_true(pc->timer != 0);
        atomic_fetch_add(&a->paused, 1);
        atomic_fetch_add(&a->delivered, n);
        return n;
    }
    /* M_STEP: one line per step, then a pause that outlasts the drain's
     * quiet period, with the following lines left buffered. */
    const char *nl = memchr(data, '\n', len);
    if (!nl)
        return 0; /* the rest of the line is still coming */
    unsigned long long r = mix(a->seed ^ (mux_conn_id(c) << 8) ^ pc->steps++);
    unsigned step_ms = 100 + (unsigned)(r % 100);
    mux_conn_pause_read(c);
    pc->timer = mux_timer_start(mux_conn_worker_ctx(c), step_ms, 0, resume, pc);
    assert_true(pc->timer != 0);
    if ((size_t)(nl - data) + 1 < len)
        atomic_fetch_add(&a->paused, 1); /* paused with input buffered */
    atomic_fetch_add(&a->lines, 1);
    return echo(c, data, (size_t)(nl - data) + 1);
}

static void on_close(struct mux_conn *c, int err)
{
    struct app *a = mux_conn_app(c);
    struct per_conn *pc = mux_conn_data(c);
    if (pc->timer)
        mux_timer_cancel(mux_conn_worker_ctx(c), pc->timer);
    free(pc);
    atomic_fetch_add(&a->closes, 1);
    if (err == 0)
        atomic_fetch_add(&a->closes_ok, 1);
    else if (err == ESHUTDOWN)
        atomic_fetch_add(&a->closes_shutdown, 1);
    else
        atomic_fetch_add(&a->closes_other, 1);
}

static const struct mux_handler handler = {
    .name = "drain-test",
    .on_accept = on_accept,
    .on_read = on_read,
    .on_close = on_close,
};

static void start(struct th_inproc *srv, struct app *a, unsigned grace_ms)
{
    struct mux_options o;
    th_inproc_options(&o);
    o.workers = 2;
    o.shutdown_grace_ms = grace_ms * (unsigned)th_slowdown();
    assert_int_equal(th_inproc_start(srv, &o, &handler, a), 0);
}

/* K lines in one write; the handler answers one per step and pauses in
 * between with the next lines buffered. The stop comes after the first
 * answer: every line is still answered, then an orderly EOF. */
static void test_paused_input_answered(void **state)
{
    (void)state;
    static struct app a;
    memset(&a, 0, sizeof a);
    a.mode = M_STEP;
    a.seed = th_seed_rng("MUX_TEST_SEED");
    int n = 1 + (int)(th_rand() % MAX_CONNS);
    struct th_inproc srv;
    start(&srv, &a, 5000);
    int fd[MAX_CONNS];
    size_t len[MAX_CONNS], first[MAX_CONNS];
    static unsigned char msg[MAX_CONNS][MAX_MSG], got[MAX_MSG];
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        int k = 3 + (int)(th_rand() % 4); /* lines */
        len[i] = 0;
        first[i] = 0;
        for (int l = 0; l < k; l++) {
            size_t ll = 1 + (size_t)(th_rand() % (MAX_MSG / 6 - 1));
            th_fill_random(msg[i] + len[i], ll, &th_rng);
            for (size_t j = 0; j < ll; j++)
                if (msg[i][len[i] + j] == '\n')
                    msg[i][len[i] + j] = 'n';
            len[i] += ll;
            msg[i][len[i]++] = '\n';
            if (l == 0)
                first[i] = len[i];
        }
        fd[i] = th_connect_tcp(srv.host, srv.port);
        assert_true(fd[i] >= 0);
        assert_int_equal(th_write_all(fd[i], msg[i], len[i], 5000), 0);
        total += len[i];
    }
    for (int i = 0; i < n; i++) /* each handler is in its first pause now */
        assert_int_equal(th_read_exact(fd[i], got, first[i], 5000 * th_slowdown()),
                         (ssize_t)first[i]);
    mux_server_stop(srv.s);
    for (int i = 0; i < n; i++) {
        size_t rest = len[i] - first[i];
        ssize_t r = th_read_exact(fd[i], got, rest, 10000 * th_slowdown());
        if (r != (ssize_t)rest)
            fail_msg("conn %d: %zd of the %zu bytes buffered at the stop answered before the "
                     "close (%d lines answered in all)",
                     i, r, rest, atomic_load(&a.lines));
        assert_memory_equal(got, msg[i] + first[i], rest);
        int eof = th_wait_eof(fd[i], 10000 * th_slowdown());
        if (eof != 0)
            fail_msg("conn %d: not an orderly end after the answer: %s", i, strerror(-eof));
        close(fd[i]);
    }
    assert_int_equal(th_inproc_join(&srv), 0);
    assert_true(atomic_load(&a.paused) >= n); /* the case happened: paused over input */
    assert_int_equal(atomic_load(&a.closes), n);
    assert_int_equal(atomic_load(&a.closes_ok), n);
    assert_int_equal(atomic_load(&a.delivered), total);
}

/* A partial line is buffered (the handler waits for its end) when the
 * stop comes: the client must not get a FIN as if it were answered; the
 * grace period's end resets it. */
static void test_partial_input_not_closed_orderly(void **state)
{
    (void)state;
    static struct app a;
    memset(&a, 0, sizeof a);
    a.mode = M_LINES;
    a.seed = th_seed_rng("MUX_TEST_SEED");
    struct th_inproc srv;
    unsigned grace = 600 + (unsigned)(th_rand() % 400);
    start(&srv, &a, grace);
    int fd = th_connect_tcp(srv.host, srv.port);
    assert_true(fd >= 0);
    char line[64], tail[32];
    size_t ll = 1 + (size_t)(th_rand() % (sizeof line - 2));
    size_t tl = 1 + (size_t)(th_rand() % sizeof tail);
    memset(line, 'a' + (int)(th_rand() % 26), ll);
    line[ll++] = '\n';
    memset(tail, 'x', tl); /* no newline: never complete */
    assert_int_equal(th_write_all(fd, line, ll, 5000), 0);
    char got[64];
    assert_int_equal(th_read_exact(fd, got, ll, 5000), (ssize_t)ll);
    assert_memory_equal(got, line, ll);
    assert_int_equal(th_write_all(fd, tail, tl, 5000), 0);
    long long t0 = th_now_ms();
    mux_server_stop(srv.s);
    int end = th_wait_eof(fd, (int)(grace + 5000) * th_slowdown());
    long long took = th_now_ms() - t0;
    if (end == 0)
        fail_msg("orderly FIN %lld ms after the stop over %zu buffered bytes never answered",
                 took, tl);
    assert_true(end == -ECONNRESET || end == -EPIPE);
    close(fd);
    assert_int_equal(th_inproc_join(&srv), 0);
    assert_int_equal(atomic_load(&a.closes_shutdown), 1);
    assert_int_equal(atomic_load(&a.closes_ok), 0);
}

/* The handler took a request, paused and answers it from a timer: the
 * drain must wait for it (a paused handler may still be producing), so
 * the answer arrives before the orderly EOF. */
static void test_paused_handler_answers_later(void **state)
{
    (void)state;
    static struct app a;
    memset(&a, 0, sizeof a);
    a.mode = M_LATER;
    a.seed = th_seed_rng("MUX_TEST_SEED");
    struct th_inproc srv;
    start(&srv, &a, 5000);
    int fd = th_connect_tcp(srv.host, srv.port);
    assert_true(fd >= 0);
    char line[64], got[64];
    size_t ll = 1 + (size_t)(th_rand() % (sizeof line - 2));
    th_fill_random(line, ll, &th_rng);
    for (size_t j = 0; j < ll; j++)
        line[j] = (char)('a' + (unsigned char)line[j] % 26);
    line[ll++] = '\n';
    assert_int_equal(th_write_all(fd, line, ll, 5000), 0);
    long long end = th_now_ms() + 5000LL * th_slowdown();
    while (atomic_load(&a.paused) < 1 && th_now_ms() < end) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL); /* polling a counter the worker bumps: no event to wait on */
    }
    assert_int_equal(atomic_load(&a.paused), 1);
    mux_server_stop(srv.s); /* while the handler is busy with the request */
    ssize_t r = th_read_exact(fd, got, ll, 10000 * th_slowdown());
    if (r != (ssize_t)ll)
        fail_msg("%zd of %zu answer bytes before the close: the drain closed a paused handler "
                 "that was still answering", r, ll);
    assert_memory_equal(got, line, ll);
    assert_int_equal(th_wait_eof(fd, 10000 * th_slowdown()), 0);
    close(fd);
    assert_int_equal(th_inproc_join(&srv), 0);
    assert_int_equal(atomic_load(&a.closes_ok), 1);
}

int main(void)
{
    printf("poller %s\n", th_poller());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paused_input_answered),
        cmocka_unit_test(test_partial_input_not_closed_orderly),
        cmocka_unit_test(test_paused_handler_answers_later),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
