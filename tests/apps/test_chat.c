/* test_chat.c - mux-chat as a user runs it (child process, 2 workers, the
 * poller from MUX_TEST_POLLER; ctest runs every backend):
 *  - broadcast: every line of every client reaches every client (sender
 *    included, across workers), each sender's lines in the order sent, sent
 *    in random fragments (seed printed, MUX_TEST_SEED replays);
 *  - a line longer than chat.max_line closes its sender, the others go on;
 *  - a client that never reads is disconnected once its undelivered output
 *    passes chat.max_queue, and the readers still get everything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "seed.h"

static unsigned long long seed;

static unsigned long long rnd(void)
{
    return th_xorshift(&seed);
}

static void start_chat(struct th_child *c, const char *config)
{
    char *argv[12];
    int n = 0;
    argv[n++] = MUX_CHAT_BIN;
    n = th_server_args(argv, n);
    if (config) {
        argv[n++] = "-c";
        argv[n++] = (char *)config;
    }
    argv[n] = NULL;
    assert_int_equal(th_child_start(c, argv, 10000), 0);
}

static void write_config(char *path, size_t size, const char *text)
{
    snprintf(path, size, "/tmp/test_chat.%d.conf", (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A client registered with the server: it has seen its own hello line. */
static int join(struct th_child *srv, int id)
{
    int fd = th_connect_tcp(srv->host, srv->port);
    assert_true(fd >= 0);
    char hello[32], buf[64];
    int n = snprintf(hello, sizeof(hello), "hello %d\n", id);
    assert_int_equal(th_write_all(fd, hello, (size_t)n, 5000), 0);
    /* read lines until our own hello comes back (others' may come first) */
    size_t have = 0;
    long long deadline = th_now_ms() + 5000LL * th_slowdown();
    for (;;) {
        assert_true(th_now_ms() < deadline);
        assert_int_equal(th_read_exact(fd, buf + have, 1, 5000), 1);
        if (buf[have] != '\n') {
            have++;
            assert_true(have < sizeof(buf) - 1);
            continue;
        }
        buf[have + 1] = '\0';
        if (strcmp(buf, hello) == 0)
            return fd;
        have = 0;
    }
}

/* ---- broadcast and order ---- */

enum { CLIENTS = 6, LINES = 300 };

struct peer {
    int fd;
    char *out;
    size_t out_len, out_off;
    char line[64];
    size_t line_len;
    int next_from[CLIENTS]; /* next line number expected from each sender */
    int received, bad;
};

static void on_line(struct peer *p)
{
    int from, num;
    p->line[p->line_len] = '\0';
    if (sscanf(p->line, "msg %d %d", &from, &num) != 2)
        return; /* a hello from the join phase */
    if (from < 0 || from >= CLIENTS || num != p->next_from[from])
        p->bad++;
    else
        p->next_from[from]++;
    p->received++;
}

static void test_broadcast_in_order(void **state)
{
    struct th_child srv;
    start_chat(&srv, NULL);
    struct peer peers[CLIENTS] = {{0}};
    for (int i = 0; i < CLIENTS; i++) {
        peers[i].fd = join(&srv, i);
        fcntl(peers[i].fd, F_SETFL, O_NONBLOCK);
        peers[i].out = malloc(LINES * 32);
        for (int j = 0; j < LINES; j++)
            peers[i].out_len += (size_t)sprintf(peers[i].out + peers[i].out_len, "msg %d %d\n", i, j);
    }
    long long deadline = th_now_ms() + 20000LL * th_slowdown();
    int done = 0;
    while (done < CLIENTS && th_now_ms() < deadline) {
        struct pollfd pf[CLIENTS];
        for (int i = 0; i < CLIENTS; i++)
            pf[i] = (struct pollfd){.fd = peers[i].fd,
                                    .events = POLLIN | (peers[i].out_off < peers[i].out_len ? POLLOUT : 0)};
        poll(pf, CLIENTS, 100);
        done = 0;
        for (int i = 0; i < CLIENTS; i++) {
            struct peer *p = &peers[i];
            if ((pf[i].revents & POLLOUT) && p->out_off < p->out_len) {
                size_t frag = 1 + rnd() % 200;
                size_t left = p->out_len - p->out_off;
                ssize_t n = write(p->fd, p->out + p->out_off, frag < left ? frag : left);
                if (n > 0)
                    p->out_off += (size_t)n;
            }
            char buf[4096];
            ssize_t n;
            while ((n = read(p->fd, buf, sizeof(buf))) > 0)
                for (ssize_t k = 0; k < n; k++) {
                    if (buf[k] == '\n') {
                        on_line(p);
                        p->line_len = 0;
                    } else if (p->line_len < sizeof(p->line) - 1) {
                        p->line[p->line_len++] = buf[k];
                    }
                }
            done += p->received == CLIENTS * LINES;
        }
    }
    for (int i = 0; i < CLIENTS; i++) {
        if (peers[i].received != CLIENTS * LINES || peers[i].bad)
            fail_msg("client %d: %d of %d lines, %d out of order (seed %llu)", i,
                     peers[i].received, CLIENTS * LINES, peers[i].bad, seed);
        close(peers[i].fd);
        free(peers[i].out);
    }
    assert_int_equal(th_child_stop(&srv, SIGTERM, 10000), 0);
}

/* ---- max_line ---- */

static void test_long_line_closes_sender(void **state)
{
    char conf[64];
    write_config(conf, sizeof(conf), "chat = { max_line = 64; };\n");
    struct th_child srv;
    start_chat(&srv, conf);
    int a = join(&srv, 1), b = join(&srv, 2);
    char line[80];
    memset(line, 'x', sizeof(line));
    line[64] = '\n'; /* 65 bytes with the newline: one too many */
    assert_int_equal(th_write_all(a, line, 65, 5000), 0);
    assert_int_equal(th_wait_eof(a, 5000), 0);
    /* b is unaffected and never saw the long line */
    line[63] = '\n'; /* exactly 64: allowed */
    assert_int_equal(th_write_all(b, line, 64, 5000), 0);
    char got[64];
    assert_int_equal(th_read_exact(b, got, 64, 5000), 64);
    assert_memory_equal(got, line, 64);
    close(a);
    close(b);
    assert_int_equal(th_child_stop(&srv, SIGTERM, 10000), 0);
    unlink(conf);
}

/* ---- max_queue ---- */

/* Bytes of 'y' lines: every byte but those of "hello N\n" lines. */
static size_t payload_bytes(const char *buf, size_t n, char *prev)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        k += buf[i] == 'y' || (buf[i] == '\n' && *prev == 'y');
        *prev = buf[i];
    }
    return k;
}

static void test_slow_reader_dropped(void **state)
{
    char conf[64];
    write_config(conf, sizeof(conf), "chat = { max_queue = \"64k\"; };\n");
    struct th_child srv;
    start_chat(&srv, conf);
    long rss0 = th_peak_rss_kib(srv.pid);
    int slow = join(&srv, 1), sender = join(&srv, 2), reader = join(&srv, 3);
    int small = 4096;
    setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    /* 8 MiB of lines: far more than the slow client's socket buffers and
     * max_queue together */
    enum { TOTAL = 8 << 20 };
    char line[128];
    memset(line, 'y', sizeof(line));
    line[127] = '\n';
    fcntl(sender, F_SETFL, O_NONBLOCK);
    fcntl(reader, F_SETFL, O_NONBLOCK);
    size_t sent = 0, off = 0, got_reader = 0, got_sender = 0;
    char prev_sender = 0, prev_reader = 0;
    long long deadline = th_now_ms() + 30000LL * th_slowdown();
    while ((got_reader < TOTAL || got_sender < TOTAL) && th_now_ms() < deadline) {
        bool room = sent < TOTAL && sent - got_reader < (32 << 10) && sent - got_sender < (32 << 10);
        struct pollfd pf[2] = {{.fd = sender, .events = POLLIN | (room ? POLLOUT : 0)},
                               {.fd = reader, .events = POLLIN}};
        poll(pf, 2, 100);
        /* the readers keep up: at most 32 KiB in flight (chat does not slow
         * a sender down; a reader that falls max_queue behind is dropped) */
        if (room) {
            ssize_t n = write(sender, line + off, sizeof(line) - off);
            if (n > 0) {
                off += (size_t)n;
                sent += (size_t)n;
                off %= sizeof(line);
            }
        }
        char buf[65536];
        ssize_t n;
        /* count the payload lines' bytes; a hello of a later joiner may come too */
        while ((n = read(sender, buf, sizeof(buf))) > 0)
            got_sender += payload_bytes(buf, (size_t)n, &prev_sender);
        while ((n = read(reader, buf, sizeof(buf))) > 0)
            got_reader += payload_bytes(buf, (size_t)n, &prev_reader);
    }
    assert_int_equal(got_reader, TOTAL);
    assert_int_equal(got_sender, TOTAL);
    /* the slow one was cut off: draining it ends (reset or EOF) well short
     * of everything */
    size_t slow_got = 0;
    char buf[65536];
    for (;;) {
        struct pollfd p = {.fd = slow, .events = POLLIN};
        assert_int_equal(poll(&p, 1, 5000 * th_slowdown()), 1);
        ssize_t n = read(slow, buf, sizeof(buf));
        if (n <= 0)
            break;
        slow_got += (size_t)n;
    }
    assert_true(slow_got < TOTAL);
    /* the 8 MiB never piled up for the slow client (not measurable under
     * ASan, whose quarantine holds freed memory, nor under valgrind, whose
     * own memory grows by about 30 MiB here; slow_got above is the proof) */
    long rss = th_peak_rss_kib(srv.pid);
    printf("slow reader dropped after %zu bytes; server peak RSS grew by %ld KiB\n", slow_got,
           rss - rss0);
    if (!TH_UNDER_SANITIZER && !th_under_valgrind() && rss - rss0 > TOTAL / 1024 * 3 / 4)
        fail_msg("server peak RSS grew by %ld KiB", rss - rss0);
    close(slow);
    close(sender);
    close(reader);
    assert_int_equal(th_child_stop(&srv, SIGTERM, 10000), 0);
    unlink(conf);
}

int main(void)
{
    const char *s = getenv("MUX_TEST_SEED");
    seed = s ? strtoull(s, NULL, 0) : (unsigned long long)time(NULL) * 2654435761ull;
    if (!seed)
        seed = 1;
    printf("seed %llu (MUX_TEST_SEED replays)\n", seed);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broadcast_in_order),
        cmocka_unit_test(test_long_line_closes_sender),
        cmocka_unit_test(test_slow_reader_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
