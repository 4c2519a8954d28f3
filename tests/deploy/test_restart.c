/* test_restart.c - the zero-downtime restart of docs/deploy.md: under
 * continuous connection churn (client threads opening a connection, sending
 * a random payload, reading its echo back in full, closing, again and
 * again), a new mux-echo starts with --reuseport on the old one's port, the
 * old one gets SIGTERM and exits; this, several times over. Not one
 * connection may fail: refused, reset, short or wrong echo.
 *
 * The kernel's net.ipv4.tcp_migrate_req = 1 moves connections still in the
 * closing listener's SYN or accept queue to the other listener of the port;
 * the test sets it for its run and restores the old value after. Without
 * it (not root, no such file, or MUX_TEST_NO_MIGRATE=1) the failures are
 * counted and reported and the test is skipped, not passed.
 * Random payloads; MUX_TEST_SEED=<n> replays the sizes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "deploy_util.h"
#include "harness.h"

#define MIGRATE_PATH "/proc/sys/net/ipv4/tcp_migrate_req"
#define CLIENTS 4
#define RESTARTS 5

static unsigned long long seed;
static char migrate_old[16]; /* the value to restore, "" = untouched */

/* ---- the churn clients ---- */

enum failure { F_CONNECT, F_WRITE, F_READ, F_SHORT, F_MISMATCH, F_KINDS };
static const char *const failure_name[] = {"connect", "write", "read error", "short echo",
                                           "wrong echo"};

struct churn {
    int port;
    atomic_bool stop;
    atomic_ullong done;             /* connections whose echo came back whole */
    atomic_ullong failed[F_KINDS];
    atomic_int reported;            /* details printed for the first few */
    long long t0;
};

static void record(struct churn *ch, int fd, enum failure f, int err, size_t len, ssize_t got)
{
    atomic_fetch_add(&ch->failed[f], 1);
    struct sockaddr_in me = {0};
    socklen_t mlen = sizeof(me);
    if (fd >= 0)
        getsockname(fd, (struct sockaddr *)&me, &mlen);
    if (atomic_fetch_add(&ch->reported, 1) < 10)
        print_message("failure at +%lld ms: client port %d: %s (%s), %zu bytes sent, %zd back\n",
                      th_now_ms() - ch->t0, ntohs(me.sin_port), failure_name[f],
                      err ? strerror(err) : "-", len, got);
}

/* One connection: connect, send len bytes, read them back, close. */
static void one_connection(struct churn *ch, unsigned long long *state)
{
    char out[1024], in[1024];
    size_t len = 1 + (size_t)(*state % sizeof(out));
    th_fill_random(out, len, state);
    int fd = th_connect_tcp("127.0.0.1", ch->port);
    if (fd < 0) {
        record(ch, -1, F_CONNECT, errno, len, -1);
        return;
    }
    if (th_write_all(fd, out, len, 10000 * th_slowdown()) != 0) {
        record(ch, fd, F_WRITE, errno, len, -1);
    } else {
        ssize_t got = th_read_exact(fd, in, len, 10000 * th_slowdown());
        if (got < 0)
            record(ch, fd, F_READ, errno, len, got);
        else if ((size_t)got < len)
            record(ch, fd, F_SHORT, 0, len, got);
        else if (memcmp(in, out, len) != 0)
            record(ch, fd, F_MISMATCH, 0, len, got);
        else
            atomic_fetch_add(&ch->done, 1);
    }
    close(fd);
}

struct client {
    pthread_t tid;
    struct churn *ch;
    unsigned long long state;
};

static void *client_run(void *arg)
{
    struct client *c = arg;
    /* bounded: the main thread stops it; the count and time caps hold
     * should the main thread fail first */
    long long deadline = th_now_ms() + 120000LL * th_slowdown();
    for (int i = 0; i < 1000000 && !atomic_load(&c->ch->stop) && th_now_ms() < deadline; i++)
        one_connection(c->ch, &c->state);
    return NULL;
}

static unsigned long long failures(struct churn *ch)
{
    unsigned long long n = 0;
    for (int f = 0; f < F_KINDS; f++)
        n += atomic_load(&ch->failed[f]);
    return n;
}

/* Waits (bounded) until `more` further connections completed. */
static void churn_on(struct churn *ch, unsigned long long more)
{
    unsigned long long want = atomic_load(&ch->done) + more;
    long long deadline = th_now_ms() + 20000LL * th_slowdown();
    while (atomic_load(&ch->done) < want && th_now_ms() < deadline) {
        struct timespec ts = {.tv_nsec = 2 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_true(atomic_load(&ch->done) >= want);
}

/* ---- the servers ---- */

struct server {
    struct th_child c;
    char metrics[64];
};

/* MUX_RESTART_LOGS=DIR: each server logs every connection (debug) to
 * DIR/server-N.log, to follow a failed connection (its client port). */
static void start_server(struct server *s, int port)
{
    static int n;
    char listen[64], log[256];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    const char *dir = getenv("MUX_RESTART_LOGS");
    snprintf(log, sizeof(log), "%s/server-%d.log", dir ? dir : "", ++n);
    char *argv[] = {MUX_ECHO_BIN, "-l", listen, "-w", "2", "--reuseport", "--metrics",
                    "127.0.0.1:0", "--log-level", dir ? "debug" : "warn", dir ? "--log-file" : NULL,
                    log, NULL};
    assert_int_equal(th_child_start(&s->c, argv, 10000), 0);
    assert_int_equal(deploy_ready_metrics(s->c.ready, s->metrics, sizeof(s->metrics)), 0);
}

/* Bounded wait until the server has accepted a connection: the kernel
 * spreads the port's connections over both listeners, so the old one is
 * stopped with connections of its own in flight. */
static void expect_accepting(struct server *s)
{
    static char text[1 << 16];
    long long deadline = th_now_ms() + 10000LL * th_slowdown();
    unsigned long long acc = 0;
    while (th_now_ms() < deadline) {
        assert_int_equal(deploy_metrics(s->metrics, text, sizeof(text)), 0);
        if ((acc = deploy_metric(text, "mux_connections_accepted_total")) > 0)
            break;
        struct timespec ts = {.tv_nsec = 5 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_true(acc > 0);
}

/* ---- tcp_migrate_req ---- */

static bool migrate_on(void)
{
    if (getenv("MUX_TEST_NO_MIGRATE"))
        return false;
    char buf[16];
    if (geteuid() != 0 || !deploy_slurp(MIGRATE_PATH, buf, sizeof(buf)))
        return false;
    if (deploy_write_file(MIGRATE_PATH, "1\n") != 0)
        return false;
    snprintf(migrate_old, sizeof(migrate_old), "%s", buf);
    return true;
}

static void migrate_restore(void)
{
    if (migrate_old[0] && deploy_write_file(MIGRATE_PATH, migrate_old) != 0)
        fprintf(stderr, "could not restore %s to %s", MIGRATE_PATH, migrate_old);
    migrate_old[0] = '\0';
}

/* ---- the test ---- */

static void test_restart_under_churn(void **state)
{
    bool migrate = migrate_on();
    print_message("%s = %s\n", MIGRATE_PATH,
                  migrate ? "1 (set for this test)" : "unchanged (not root, absent or disabled)");
    int slow = th_slowdown();
    unsigned long long phase = slow > 1 ? 30 : 600; /* connections between steps */

    struct server cur, next;
    start_server(&cur, 0);
    static struct churn ch;
    memset(&ch, 0, sizeof(ch));
    ch.port = cur.c.port;
    ch.t0 = th_now_ms();
    struct client cl[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        cl[i] = (struct client){.ch = &ch, .state = seed + 7919ULL * (unsigned long long)i + 1};
        assert_int_equal(pthread_create(&cl[i].tid, NULL, client_run, &cl[i]), 0);
    }
    for (int r = 0; r < RESTARTS; r++) {
        churn_on(&ch, phase);
        start_server(&next, cur.c.port);
        expect_accepting(&next);
        churn_on(&ch, phase);
        long long t = th_now_ms();
        assert_int_equal(th_child_stop(&cur.c, SIGTERM, 15000), 0);
        print_message("restart %d at +%lld ms: old server gone in %lld ms; %llu connections, "
                      "%llu failed so far\n",
                      r + 1, t - ch.t0, th_now_ms() - t, atomic_load(&ch.done), failures(&ch));
        cur = next;
    }
    churn_on(&ch, phase);
    atomic_store(&ch.stop, true);
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(cl[i].tid, NULL);
    assert_int_equal(th_child_stop(&cur.c, SIGTERM, 15000), 0);
    migrate_restore();

    unsigned long long failed = failures(&ch);
    print_message("%d restarts, %llu connections echoed in full, %llu failed", RESTARTS,
                  atomic_load(&ch.done), failed);
    for (int f = 0; f < F_KINDS; f++)
        if (atomic_load(&ch.failed[f]))
            print_message(" (%s: %llu)", failure_name[f], atomic_load(&ch.failed[f]));
    print_message("\n");
    if (!migrate) {
        print_message("SKIPPED: without net.ipv4.tcp_migrate_req = 1 (needs root) zero "
                      "failures is not asserted; %llu failed\n",
                      failed);
        skip();
    }
    assert_int_equal(failed, 0);
}

static int setup(void **state)
{
    const char *s = getenv("MUX_TEST_SEED");
    seed = s ? strtoull(s, NULL, 10) : (unsigned long long)time(NULL);
    print_message("seed %llu (MUX_TEST_SEED=%llu reproduces)\n", seed, seed);
    seed = seed * 2654435761ULL + 1;
    return 0;
}

static int teardown(void **state)
{
    migrate_restore(); /* also when an assertion ended the test early */
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_under_churn),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
