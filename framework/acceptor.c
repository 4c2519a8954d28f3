/* acceptor.c - the acceptor thread: accept4 on every listen socket until
 * EAGAIN, enforce max_connections, hand each fd round-robin to a worker and
 * wake each worker once per batch. On EMFILE/ENFILE it sheds the pending
 * connections with a reserve fd, then stops accepting for a moment instead
 * of spinning, and resumes on a timer. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "mux/log.h"
#include "server_priv.h"

#define ACCEPTS_PER_LISTENER 256 /* per wake-up, so listeners share the thread */
#define EMFILE_PAUSE_MS 100

static char stop_marker, timer_marker;

static int open_reserve(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void set_listening(struct mux_server *s, bool on)
{
    struct mux__acceptor *a = &s->acceptor;
    for (unsigned i = 0; i < s->nlisteners; i++) {
        struct epoll_event e = {.events = on ? EPOLLIN : 0, .data.ptr = &s->listeners[i]};
        epoll_ctl(a->epfd, EPOLL_CTL_MOD, s->listeners[i].fd, &e);
    }
    a->paused = !on;
}

/* Out of fds: accept-and-close what is queued using the reserve fd, then
 * pause accepting until the timer fires. */
static void shed_and_pause(struct mux_server *s, int listen_fd)
{
    struct mux__acceptor *a = &s->acceptor;
    mux_log(MUX_LOG_WARN, "out of file descriptors: refusing connections for %d ms",
            EMFILE_PAUSE_MS);
    atomic_fetch_add_explicit(&s->fd_exhaustion, 1, memory_order_relaxed);
    if (a->reserve_fd >= 0) {
        close(a->reserve_fd);
        a->reserve_fd = -1;
    }
    for (int i = 0; i < ACCEPTS_PER_LISTENER; i++) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            break;
        close(fd);
        atomic_fetch_add_explicit(&s->rejected, 1, memory_order_relaxed);
    }
    a->reserve_fd = open_reserve();
    struct itimerspec its = {.it_value = {.tv_nsec = EMFILE_PAUSE_MS * 1000000L}};
    timerfd_settime(a->timer_fd, 0, &its, NULL);
    set_listening(s, false);
}

/* Takes a max_connections slot; false when the server is full. */
static bool take_slot(struct mux_server *s)
{
    unsigned cur = atomic_load_explicit(&s->open_conns, memory_order_relaxed);
    do {
        if (cur >= atomic_load_explicit(&s->max_conns, memory_order_relaxed))
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&s->open_conns, &cur, cur + 1,
                                                    memory_order_relaxed, memory_order_relaxed));
    return true;
}

void mux__server_release_slot(struct mux_server *s)
{
    atomic_fetch_sub_explicit(&s->open_conns, 1, memory_order_relaxed);
}

/* Round-robin; a worker whose ring is full is skipped. */
static bool hand_off(struct mux_server *s, int fd, bool *woken)
{
    struct mux__acceptor *a = &s->acceptor;
    for (unsigned tries = 0; tries < s->nworkers; tries++) {
        unsigned k = a->next;
        a->next = (a->next + 1) % s->nworkers;
        if (mux__handoff_push(&s->workers[k].handoff, fd)) {
            woken[k] = true;
            return true;
        }
    }
    return false;
}

static void refuse(struct mux_server *s, int fd)
{
    atomic_fetch_add_explicit(&s->rejected, 1, memory_order_relaxed);
    close(fd); /* the client sees the connection closed at once */
}

/* Accepts up to ACCEPTS_PER_LISTENER connections; returns how many it took
 * off the queue (refused ones included). */
static int accept_batch(struct mux_server *s, struct mux__listener *l, bool *woken)
{
    int i;
    for (i = 0; i < ACCEPTS_PER_LISTENER; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                shed_and_pause(s, l->fd);
            else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                mux_log(MUX_LOG_WARN, "accept on %s: %s", l->addr, strerror(errno));
            if (errno != EINTR && errno != ECONNABORTED)
                return i;
            continue;
        }
        if (!take_slot(s)) {
            if (mux_log_enabled(MUX_LOG_DEBUG))
                mux_log(MUX_LOG_DEBUG, "max_connections (%u) reached: refused",
                        atomic_load_explicit(&s->max_conns, memory_order_relaxed));
            refuse(s, fd);
        } else if (!hand_off(s, fd, woken)) {
            mux_log(MUX_LOG_WARN, "every worker's handoff queue is full: refused");
            mux__server_release_slot(s);
            refuse(s, fd);
        }
    }
    return i;
}

/* Stopping with SO_REUSEPORT: a new process shares the port and takes the
 * new connections, but those already queued on our listener would be reset
 * when it closes. Take them all (they are served within the grace period);
 * with net.ipv4.tcp_migrate_req = 1 the kernel moves the few that complete
 * their handshake after this to the other listener. */
static void drain_queues(struct mux_server *s, bool *woken)
{
    for (unsigned i = 0; i < s->nlisteners; i++)
        for (int rounds = 0; rounds < 64; rounds++)
            if (accept_batch(s, &s->listeners[i], woken) < ACCEPTS_PER_LISTENER)
                break;
}

static void *acceptor_run(void *arg)
{
    struct mux_server *s = arg;
    struct mux__acceptor *a = &s->acceptor;
    bool woken[s->nworkers];
    for (;;) {
        struct epoll_event ev[MUX_MAX_LISTEN + 2];
        int n = epoll_wait(a->epfd, ev, MUX_MAX_LISTEN + 2, -1);
        memset(woken, 0, sizeof(woken));
        for (int i = 0; i < n; i++) {
            void *p = ev[i].data.ptr;
            if (p == &stop_marker) {
                if (a->drain_on_stop && !a->paused) {
                    drain_queues(s, woken);
                    for (unsigned k = 0; k < s->nworkers; k++)
                        if (woken[k])
                            mux__handoff_wake(&s->workers[k].handoff);
                }
                return NULL;
            }
            if (p == &timer_marker) {
                uint64_t ticks;
                ssize_t r = read(a->timer_fd, &ticks, sizeof(ticks));
                (void)r;
                set_listening(s, true);
            } else if (!a->paused) {
                accept_batch(s, p, woken);
            }
        }
        for (unsigned k = 0; k < s->nworkers; k++)
            if (woken[k])
                mux__handoff_wake(&s->workers[k].handoff); /* one wake per batch */
    }
}

static int watch(int epfd, int fd, void *ptr)
{
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = ptr};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

static void close_fds(struct mux__acceptor *a)
{
    int *fds[] = {&a->epfd, &a->wake_fd, &a->timer_fd, &a->reserve_fd};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (*fds[i] >= 0) {
            close(*fds[i]);
            *fds[i] = -1;
        }
}

int mux__acceptor_start(struct mux_server *s)
{
    struct mux__acceptor *a = &s->acceptor;
    a->next = 0;
    a->paused = false;
    a->drain_on_stop = s->opts.reuseport; /* read here: reloads rewrite s->opts */
    a->epfd = epoll_create1(EPOLL_CLOEXEC);
    a->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    a->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    a->reserve_fd = open_reserve();
    int rc = 0;
    if (a->epfd < 0 || a->wake_fd < 0 || a->timer_fd < 0 || a->reserve_fd < 0)
        rc = -errno;
    if (!rc)
        rc = watch(a->epfd, a->wake_fd, &stop_marker);
    if (!rc)
        rc = watch(a->epfd, a->timer_fd, &timer_marker);
    for (unsigned i = 0; !rc && i < s->nlisteners; i++)
        rc = watch(a->epfd, s->listeners[i].fd, &s->listeners[i]);
    if (!rc)
        rc = -pthread_create(&a->thread, NULL, acceptor_run, s);
    if (rc)
        close_fds(a);
    return rc;
}

/* Stops accepting: after this returns no fd will be handed to a worker. */
void mux__acceptor_stop(struct mux_server *s)
{
    struct mux__acceptor *a = &s->acceptor;
    uint64_t one = 1;
    ssize_t r = write(a->wake_fd, &one, sizeof(one));
    (void)r;
    pthread_join(a->thread, NULL);
    close_fds(a);
}
