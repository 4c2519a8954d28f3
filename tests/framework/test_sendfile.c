/* test_sendfile.c - a file range (mux_conn_sendfile) whose file shrinks
 * while it is served, in-process, on the poller named by MUX_TEST_POLLER
 * (every backend). The handler queues the whole file for a slow reader;
 * the test truncates the file once the reader has taken a prefix, then
 * reads as fast as it can. The promised length can no longer be sent, so
 * the connection must end (EOF or reset) within 1 s, with fewer bytes than
 * promised, and the worker must not spin meanwhile: its thread's CPU time
 * (CLOCK_THREAD_CPUTIME of the worker, taken in on_accept) from the
 * truncation to the end stays far below the wall time. A worker that took
 * sendfile's 0 for "try again" would report writability to itself until
 * the idle timeout at 100 % CPU. Seed: MUX_TEST_SEED. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "inproc.h"
#include "seed.h"

#define FILE_SIZE (24u << 20)

struct app {
    char path[128];
    atomic_int cpu_clock_set;
    clockid_t cpu_clock; /* the worker thread's CPU clock */
    atomic_int closes;
    atomic_int last_err;
};

static int on_accept(struct mux_conn *c)
{
    struct app *a = mux_conn_app(c);
    if (pthread_getcpuclockid(pthread_self(), &a->cpu_clock) != 0)
        return -1;
    atomic_store(&a->cpu_clock_set, 1);
    return 0;
}

static size_t on_read(struct mux_conn *c, const char *data, size_t len)
{
    struct app *a = mux_conn_app(c);
    if (!mux_conn_data(c) && memchr(data, '\n', len)) {
        mux_conn_set_data(c, c);
        int fd = open(a->path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(mux_conn_sendfile(c, fd, 0, FILE_SIZE), 0);
    }
    return len;
}

static void on_close(struct mux_conn *c, int err)
{
    struct app *a = mux_conn_app(c);
    atomic_store(&a->last_err, err);
    atomic_fetch_add(&a->closes, 1);
}

static const struct mux_handler handler = {
    .name = "sendfile-test",
    .on_accept = on_accept,
    .on_read = on_read,
    .on_close = on_close,
};

static long long cpu_ms(clockid_t clk)
{
    struct timespec ts;
    assert_int_equal(clock_gettime(clk, &ts), 0);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void make_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    static unsigned char block[1 << 16];
    for (size_t i = 0; i < sizeof block; i++)
        block[i] = (unsigned char)(i * 7);
    for (size_t off = 0; off < FILE_SIZE; off += sizeof block)
        assert_int_equal(write(fd, block, sizeof block), (ssize_t)sizeof block);
    close(fd);
}

static void test_file_shrinks_while_served(void **state)
{
    (void)state;
    th_seed_rng("MUX_TEST_SEED");
    static struct app a;
    memset(&a, 0, sizeof a);
    snprintf(a.path, sizeof a.path, "/tmp/mux-sendfile-%d", (int)getpid());
    make_file(a.path);
    struct mux_options o;
    th_inproc_options(&o);
    o.workers = 1;
    o.idle_timeout_ms = 20000; /* far beyond the 1 s the test allows */
    o.shutdown_grace_ms = 500;
    struct th_inproc srv;
    assert_int_equal(th_inproc_start(&srv, &o, &handler, &a), 0);

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rcv = 16384; /* a slow reader: the server's socket fills */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct sockaddr_storage ss;
    socklen_t sl;
    assert_int_equal(th_sockaddr(srv.host, srv.port, &ss, &sl), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&ss, sl), 0);
    assert_int_equal(th_write_all(fd, "GET\n", 4, 5000), 0);
    static unsigned char buf[1 << 16];
    size_t prefix = 4096 + (size_t)(th_rand() % (1u << 20)), got = 0;
    while (got < prefix) {
        ssize_t r = th_read_exact(fd, buf, sizeof buf < prefix - got ? sizeof buf : prefix - got,
                                   5000 * th_slowdown());
        assert_true(r > 0);
        got += (size_t)r;
    }
    assert_true(atomic_load(&a.cpu_clock_set));
    /* Shrink it to somewhere before, or a little after, what was read. */
    off_t to = (off_t)(th_rand() % (got + 65536));
    long long cpu0 = cpu_ms(a.cpu_clock), t0 = th_now_ms();
    assert_int_equal(truncate(a.path, to), 0);
    int end = 1;
    long long limit = t0 + 1000LL * th_slowdown();
    while (end > 0 && th_now_ms() < limit) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(limit - th_now_ms());
        if (poll(&p, 1, left > 0 ? left : 0) <= 0)
            continue;
        ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0)
            end = 0;
        else if (errno != EAGAIN)
            end = -errno;
    }
    long long wall = th_now_ms() - t0, cpu = cpu_ms(a.cpu_clock) - cpu0;
    printf("truncated to %lld after %zu bytes read: ended (%s) after %lld ms, worker CPU %lld ms\n",
           (long long)to, got, end > 0 ? "not" : end == 0 ? "EOF" : strerror(-end), wall, cpu);
    if (end > 0)
        fail_msg("still open %lld ms after the file shrank (%zu bytes read), the worker used "
                 "%lld ms of CPU meanwhile",
                 wall, got, cpu);
    assert_true(got < FILE_SIZE);
    /* Reading the buffered tail costs the worker little; spinning costs the wall time. */
    if (cpu > 100 + wall / 4)
        fail_msg("the worker used %lld ms of CPU in the %lld ms until the end", cpu, wall);
    close(fd);
    long long until = th_now_ms() + 5000LL * th_slowdown();
    while (atomic_load(&a.closes) < 1 && th_now_ms() < until)
        poll(NULL, 0, 1); /* polling a counter the worker bumps: no event to wait on */
    assert_int_equal(atomic_load(&a.closes), 1);
    assert_true(atomic_load(&a.last_err) != 0); /* the promised bytes never went: not orderly */
    assert_int_equal(th_inproc_stop(&srv), 0);
    unlink(a.path);
}

int main(void)
{
    printf("poller %s\n", th_poller());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_shrinks_while_served),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
