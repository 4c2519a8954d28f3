/* test_linger.c - an app's mux_conn_close while the client is still
 * sending, in-process, on the poller named by MUX_TEST_POLLER (every
 * backend). The handler answers a request with a reply larger than the
 * socket buffers hold and closes; the client reads the reply slowly (a
 * small receive buffer) and keeps sending all the while, so input is
 * waiting when the close has flushed and lingers. The protocol chose to
 * close, so that input is discarded, never answered with a reset: the
 * client gets the whole reply, then a clean EOF, every one of its writes
 * succeeds, and the server counts no late reset. (Only a shutdown's close
 * resets on late input: test_drain and test_lifecycle.) Seed: MUX_TEST_SEED. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "inproc.h"
#include "seed.h"

#define MAX_REPLY (2u << 20)

struct app {
    size_t reply;
    atomic_int closes, closes_ok;
};

static unsigned char pattern(size_t i)
{
    return (unsigned char)((i * 2654435761u) >> 11);
}

static size_t on_read(struct mux_conn *c, const char *data, size_t len)
{
    struct app *a = mux_conn_app(c);
    if (!mux_conn_data(c) && memchr(data, '\n', len)) { /* the request: reply, close */
        mux_conn_set_data(c, c);
        unsigned char buf[16384];
        for (size_t off = 0; off < a->reply; off += sizeof buf) {
            size_t n = a->reply - off < sizeof buf ? a->reply - off : sizeof buf;
            for (size_t i = 0; i < n; i++)
                buf[i] = pattern(off + i);
            assert_int_equal(mux_conn_send(c, buf, n), 0);
        }
        mux_conn_close(c);
    }
    return len; /* what follows the request is not ours to answer */
}

static void on_close(struct mux_conn *c, int err)
{
    struct app *a = mux_conn_app(c);
    (void)c;
    atomic_fetch_add(&a->closes, 1);
    if (err == 0)
        atomic_fetch_add(&a->closes_ok, 1);
}

static const struct mux_handler handler = {
    .name = "linger-test",
    .on_read = on_read,
    .on_close = on_close,
};

static uint64_t late_resets(struct th_inproc *srv)
{
    struct mux_stats *st = mux_server_stats(srv->s);
    assert_non_null(st);
    uint64_t n = 0;
    for (unsigned i = 0; i < st->workers; i++)
        n += st->worker[i].late_resets;
    free(st);
    return n;
}

/* The client: reads the reply at most `chunk` bytes per wake-up and
 * writes junk whenever the socket takes it, until the reply and the EOF
 * are in. Fails on a wrong byte, an error, or the deadline. */
static void client(struct th_inproc *srv, size_t reply, size_t chunk)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int rcv = 4096; /* the kernel doubles it: the reply cannot sit in it whole */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct sockaddr_storage ss;
    socklen_t sl;
    assert_int_equal(th_sockaddr(srv->host, srv->port, &ss, &sl), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&ss, sl), 0);
    assert_int_equal(th_write_all(fd, "GET\n", 4, 5000), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    static unsigned char junk[16384], buf[65536];
    memset(junk, 'j', sizeof junk);
    size_t got = 0, sent = 0;
    bool eof = false;
    long long end = th_now_ms() + 20000LL * th_slowdown();
    while (!eof) {
        if (th_now_ms() > end)
            fail_msg("%zu of %zu reply bytes and no EOF in time (%zu junk bytes sent)", got,
                     reply, sent);
        struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT};
        assert_true(poll(&p, 1, 100) >= 0);
        if (p.revents & POLLOUT) {
            ssize_t w = send(fd, junk, sizeof junk, MSG_NOSIGNAL);
            if (w < 0 && errno != EAGAIN)
                fail_msg("a write after %zu reply bytes failed: %s (the server reset a "
                         "connection its app closed)", got, strerror(errno));
            if (w > 0)
                sent += (size_t)w;
        }
        if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t r = recv(fd, buf, chunk, 0);
        if (r < 0 && errno == EAGAIN)
            continue;
        if (r < 0)
            fail_msg("%s after %zu of %zu reply bytes (%zu junk bytes sent)", strerror(errno),
                     got, reply, sent);
        if (r == 0) {
            eof = true;
            break;
        }
        for (ssize_t i = 0; i < r; i++)
            if (got + (size_t)i >= reply || buf[i] != pattern(got + (size_t)i))
                fail_msg("reply byte %zu wrong or past the end", got + (size_t)i);
        got += (size_t)r;
    }
    if (got != reply)
        fail_msg("EOF after %zu of %zu reply bytes", got, reply);
    shutdown(fd, SHUT_WR); /* ends the server's linger */
    char b;
    long long t = th_now_ms() + 10000LL * th_slowdown();
    ssize_t r;
    while ((r = recv(fd, &b, 1, 0)) < 0 && errno == EAGAIN && th_now_ms() < t) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 100);
    }
    if (r != 0)
        fail_msg("after the EOF: %s", r < 0 ? strerror(errno) : "more bytes");
    close(fd);
}

static void test_app_close_with_late_input(void **state)
{
    (void)state;
    th_seed_rng("MUX_TEST_SEED");
    static struct app a;
    memset(&a, 0, sizeof a);
    struct mux_options o;
    th_inproc_options(&o);
    o.workers = 1;
    struct th_inproc srv;
    assert_int_equal(th_inproc_start(&srv, &o, &handler, &a), 0);
    int rounds = 3;
    for (int i = 0; i < rounds; i++) {
        a.reply = 256 * 1024 + (size_t)(th_rand() % (MAX_REPLY - 256 * 1024));
        size_t chunk = 512 + (size_t)(th_rand() % 4096);
        client(&srv, a.reply, chunk);
    }
    long long end = th_now_ms() + 5000LL * th_slowdown();
    while (atomic_load(&a.closes) < rounds && th_now_ms() < end)
        poll(NULL, 0, 1); /* polling a counter the worker bumps: no event to wait on */
    assert_int_equal(atomic_load(&a.closes), rounds);
    assert_int_equal(atomic_load(&a.closes_ok), rounds);
    uint64_t resets = late_resets(&srv);
    assert_int_equal(th_inproc_stop(&srv), 0);
    if (resets != 0)
        fail_msg("%llu late resets counted after app closes", (unsigned long long)resets);
}

int main(void)
{
    printf("poller %s\n", th_poller());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_app_close_with_late_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
