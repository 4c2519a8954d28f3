/* fuzz_echo.c - mux-echo's handler (apps/echo.c, as it is) in a real server
 * loop, fed the fuzz input as a conversation over a socketpair: the bytes
 * are a program of sends (fragments cut from the input itself), reads,
 * pauses and a half-close. A worker of an in-process server (epoll, one
 * worker) takes the socket through its handoff queue, as the acceptor would
 * hand it an accepted one.
 *
 * Properties: every byte sent comes back, in order, nothing more; after our
 * FIN the server finishes the replies and closes (EOF within the deadline);
 * the server stays up for the next input; nothing leaks (LeakSanitizer,
 * valgrind). */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"
#include "inproc.h"
#include "server_priv.h"

#define main mux_echo_main
#include "echo.c"
#undef main

#define DEADLINE_MS 3000
#define MAX_SENT (256u * 1024)

static struct th_inproc srv;
static atomic_bool worker_up;
static struct mux_handler handler;

static void worker_started(struct mux_worker *w)
{
    (void)w;
    atomic_store(&worker_up, true);
}

static void stop_server(void)
{
    th_inproc_stop(&srv);
}

static void start_server(void)
{
    handler = echo_handler;
    handler.on_worker_start = worker_started;
    struct mux_options o;
    mux_options_init(&o);
    snprintf(o.listen[0], sizeof(o.listen[0]), "127.0.0.1:0");
    o.workers = 1;
    o.read_buffer = 1024; /* small: more reads, more backpressure */
    o.write_high_water = 4096;
    o.write_low_water = 1024;
    o.log_level = MUX_LOG_ERROR;
    mux_log_setup(MUX_LOG_ERROR, "fuzz");
    CHECK(th_inproc_start(&srv, &o, &handler, NULL) == 0);
    for (int i = 0; i < 5000 && !atomic_load(&worker_up); i++)
        usleep(1000); /* once, at start-up: the worker thread comes up */
    CHECK(atomic_load(&worker_up));
    atexit(stop_server);
}

static long long ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct talk {
    int fd;
    uint8_t sent[MAX_SENT];
    size_t nsent, nread;
};

/* Reads what is there (waiting up to wait_ms for the first byte) and checks
 * it against what was sent. Returns bytes read, 0 at EOF, -1 if nothing. */
static ssize_t take(struct talk *t, int wait_ms)
{
    struct pollfd p = {.fd = t->fd, .events = POLLIN};
    if (poll(&p, 1, wait_ms) <= 0)
        return -1;
    uint8_t buf[8192];
    ssize_t n = read(t->fd, buf, sizeof(buf));
    if (n < 0)
        return errno == EAGAIN ? -1 : 0;
    CHECK(t->nread + (size_t)n <= t->nsent); /* nothing we did not send */
    CHECK(memcmp(buf, t->sent + t->nread, (size_t)n) == 0);
    t->nread += (size_t)n;
    return n;
}

static void give(struct talk *t, const uint8_t *p, size_t n)
{
    long long end = ms_now() + DEADLINE_MS;
    while (n > 0 && t->nsent + n <= MAX_SENT) {
        ssize_t k = send(t->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            memcpy(t->sent + t->nsent, p, (size_t)k);
            t->nsent += (size_t)k;
            p += k;
            n -= (size_t)k;
        } else {
            CHECK(k < 0 && errno == EAGAIN); /* the server never closes on an echo client */
            take(t, 10); /* full both ways: drain our side */
            CHECK(ms_now() < end);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct talk t;
    if (!atomic_load(&worker_up))
        start_server();
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    struct mux__worker *w = &srv.s->workers[0];
    CHECK(mux__handoff_push(&w->handoff, sv[1]));
    mux__handoff_wake(&w->handoff);
    t.fd = sv[0];
    t.nsent = t.nread = 0;
    bool fin = false;
    for (size_t i = 0; i < size && !fin;) {
        uint8_t op = data[i++];
        size_t n = 1 + (op >> 3);
        if (n > size - i)
            n = size - i;
        switch (op & 7) {
        case 5: take(&t, 1); break;
        case 6: shutdown(t.fd, SHUT_WR), fin = true; break;
        case 7: break; /* a pause: let the server run ahead */
        default: give(&t, data + i, n), i += n; break;
        }
    }
    if (!fin)
        shutdown(t.fd, SHUT_WR);
    long long end = ms_now() + DEADLINE_MS;
    ssize_t r;
    while ((r = take(&t, 50)) != 0)
        CHECK(ms_now() < end); /* EOF must come: the server answers and closes */
    CHECK(t.nread == t.nsent);
    close(t.fd);
    return 0;
}
