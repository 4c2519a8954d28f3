/* client.c - the event loop of one load thread and the life cycle of its
 * connections: non-blocking connect completed on EPOLLOUT (SO_ERROR checked),
 * reconnect with back-off after errors, reply timeouts, the run phases
 * (run -> drain -> done) and open-loop pacing. Bytes move in conn_io.c. */
#include "client.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "clock.h"

#define MAX_EVENTS 256
#define HOUSE_NS (50 * NS_PER_MS)      /* timeouts and retries checked this often */
#define RETRY_BASE_NS (50 * NS_PER_MS) /* connect back-off: 50 ms doubling ... */
#define RETRY_MAX_NS NS_PER_SEC        /* ... up to 1 s */
#define MAX_CONNECT_FAILS 5            /* -n runs give a connection up after this */
#define RBUF_SIZE (128 * 1024)

static int reports_left = 10; /* verification failure messages */
static int connect_reports_left = 3;

static bool take_report(int *left)
{
    if (__atomic_load_n(left, __ATOMIC_RELAXED) < 0)
        return false;
    int n = __atomic_fetch_sub(left, 1, __ATOMIC_RELAXED);
    if (n == 0)
        fprintf(stderr, "mux-stress: (further messages of this kind suppressed)\n");
    return n > 0;
}

bool client_may_report(void)
{
    return take_report(&reports_left);
}

static void epoll_set(struct sthread *th, struct sconn *c, int op, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    epoll_ctl(th->epfd, op, c->fd, &ev);
}

void conn_set_out(struct sthread *th, struct sconn *c, bool on)
{
    if (c->want_out == on)
        return;
    c->want_out = on;
    epoll_set(th, c, EPOLL_CTL_MOD, EPOLLIN | (on ? EPOLLOUT : 0));
}

static void close_fd(struct sthread *th, struct sconn *c)
{
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    c->want_out = false;
}

static void connect_failed(struct sthread *th, struct sconn *c, int err)
{
    close_fd(th, c);
    stat_add(&th->st.connect_errors, 1);
    if (take_report(&connect_reports_left))
        fprintf(stderr, "mux-stress: connect to %s: %s\n", th->o->target, strerror(err));
    c->fails++;
    if (c->fails >= MAX_CONNECT_FAILS && th->end_time == UINT64_MAX) {
        c->state = CS_DEAD;
        return;
    }
    uint64_t backoff = RETRY_BASE_NS << (c->fails < 6 ? c->fails - 1 : 5);
    c->state = CS_WAIT;
    c->retry_at = th->now + (backoff < RETRY_MAX_NS ? backoff : RETRY_MAX_NS);
}

static void on_connected(struct sthread *th, struct sconn *c)
{
    c->state = CS_UP;
    c->fails = 0;
    c->since = th->now;
    ring_clear(&c->ring);
    proto_rx_reset(&c->rx);
    stat_add(&th->st.conns_up, 1);
    conn_refill(th, c);
}

static void conn_start(struct sthread *th, struct sconn *c)
{
    int fd = socket(th->addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        connect_failed(th, c, errno);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    c->since = th->now;
    int rc = connect(fd, th->addr, th->addrlen);
    if (rc < 0 && errno != EINPROGRESS) {
        connect_failed(th, c, errno);
        return;
    }
    c->want_out = rc < 0;
    epoll_set(th, c, EPOLL_CTL_ADD, rc < 0 ? EPOLLOUT : EPOLLIN);
    if (rc == 0)
        on_connected(th, c);
    else
        c->state = CS_CONNECTING;
}

/* The non-blocking connect finished: SO_ERROR says how. */
static void connect_done(struct sthread *th, struct sconn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err) {
        connect_failed(th, c, err);
        return;
    }
    c->want_out = false;
    epoll_set(th, c, EPOLL_CTL_MOD, EPOLLIN);
    on_connected(th, c);
}

void conn_lost(struct sthread *th, struct sconn *c, bool reset)
{
    if (reset)
        stat_add(&th->st.resets, 1);
    if (c->state == CS_UP)
        stat_add(&th->st.conns_up, (uint64_t)-1);
    close_fd(th, c);
    th->inflight -= ring_outstanding(&c->ring);
    ring_clear(&c->ring);
    proto_rx_reset(&c->rx);
    c->state = CS_WAIT;
    c->retry_at = th->now;
    if (th->phase == PH_RUN)
        conn_start(th, c);
}

static void dispatch(struct sthread *th, struct epoll_event *ev)
{
    struct sconn *c = ev->data.ptr;
    if (!c) { /* the stop eventfd: stays readable, so stop watching it */
        th->stop_seen = true;
        epoll_ctl(th->epfd, EPOLL_CTL_DEL, th->stop_fd, NULL);
        return;
    }
    if (c->state == CS_CONNECTING) {
        connect_done(th, c);
        return;
    }
    int fd = c->fd;
    if (ev->events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        conn_readable(th, c);
    if ((ev->events & EPOLLOUT) && c->fd == fd && c->state == CS_UP)
        conn_flush(th, c);
}

static void flush_dirty(struct sthread *th)
{
    for (uint32_t i = 0; i < th->ndirty; i++) {
        struct sconn *c = &th->conns[th->dirty[i]];
        c->dirty = false;
        if (c->state == CS_UP && !c->want_out)
            conn_flush(th, c);
    }
    th->ndirty = 0;
}

static void check_timeout(struct sthread *th, struct sconn *c, uint64_t limit)
{
    if (c->state == CS_CONNECTING && th->now - c->since > limit) {
        connect_failed(th, c, ETIMEDOUT);
    } else if (c->state == CS_UP && ring_outstanding(&c->ring) && th->now - c->since > limit) {
        char msg[128];
        stat_add(&th->st.timeouts, 1);
        snprintf(msg, sizeof(msg), "no reply for %.3g s (request %llu and %u more outstanding)",
                 th->o->timeout, (unsigned long long)ring_at(&c->ring, c->ring.head)->seq,
                 ring_outstanding(&c->ring) - 1);
        conn_verify_failed(th, c, msg);
    }
}

/* Every HOUSE_NS: reply and connect timeouts, reconnects. */
static void housekeep(struct sthread *th)
{
    uint64_t limit = (uint64_t)(th->o->timeout * 1e9);
    uint32_t dead = 0;
    for (uint32_t i = 0; i < th->nall; i++) {
        struct sconn *c = &th->conns[i];
        check_timeout(th, c, limit);
        if (c->state == CS_WAIT && th->phase == PH_RUN && c->retry_at <= th->now)
            conn_start(th, c);
        dead += c->state == CS_DEAD && !c->idle;
    }
    if (dead == th->nbusy && th->phase == PH_RUN) {
        th->phase = PH_DRAIN;
        th->drain_deadline = th->now;
    }
    th->next_house = th->now + HOUSE_NS;
}

static void update_phase(struct sthread *th)
{
    if (th->phase == PH_RUN && (th->stop_seen || th->now >= th->end_time || th->budget == 0)) {
        th->phase = PH_DRAIN;
        th->drain_deadline = th->now + (uint64_t)(th->o->timeout * 1e9) + HOUSE_NS;
    }
    if (th->phase == PH_DRAIN && (th->inflight == 0 || th->now >= th->drain_deadline))
        th->phase = PH_DONE;
}

static uint64_t next_deadline(const struct sthread *th)
{
    uint64_t d = th->next_house;
    if (th->phase == PH_RUN && th->end_time < d)
        d = th->end_time;
    if (th->phase == PH_RUN && th->open_loop && sched_next_time(&th->sched) < d)
        d = sched_next_time(&th->sched);
    if (th->phase == PH_DRAIN && th->drain_deadline < d)
        d = th->drain_deadline;
    return d;
}

/* Open loop: epoll_pwait2 for a nanosecond timeout, so sends leave on the
 * grid. Otherwise (or where the kernel lacks it) epoll_wait with the timeout
 * rounded up to a millisecond: it only paces housekeeping. */
static int wait_events(struct sthread *th, struct epoll_event *ev, uint64_t deadline)
{
    static int have_pwait2 = 1;
    uint64_t t = deadline > th->now ? deadline - th->now : 0;
    if (th->open_loop && __atomic_load_n(&have_pwait2, __ATOMIC_RELAXED)) {
        struct timespec ts = {.tv_sec = (time_t)(t / NS_PER_SEC),
                              .tv_nsec = (long)(t % NS_PER_SEC)};
        int n = epoll_pwait2(th->epfd, ev, MAX_EVENTS, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n < 0 ? 0 : n;
        __atomic_store_n(&have_pwait2, 0, __ATOMIC_RELAXED);
    }
    int n = epoll_wait(th->epfd, ev, MAX_EVENTS, (int)((t + NS_PER_MS - 1) / NS_PER_MS));
    return n < 0 ? 0 : n;
}

static void run_loop(struct sthread *th)
{
    struct epoll_event ev[MAX_EVENTS];
    while (th->phase != PH_DONE) {
        int n = wait_events(th, ev, next_deadline(th));
        th->now = now_ns(); /* the one clock read of this batch */
        for (int i = 0; i < n; i++)
            dispatch(th, &ev[i]);
        if (th->open_loop && th->phase == PH_RUN) {
            int64_t k;
            while ((k = sched_take(&th->sched, th->now)) >= 0)
                conn_refill(th, &th->conns[k]);
        }
        flush_dirty(th);
        if (th->now >= th->next_house)
            housekeep(th);
        update_phase(th);
    }
}

void *client_run(void *arg)
{
    struct sthread *th = arg;
    if (th->open_loop)
        prctl(PR_SET_TIMERSLACK, 1000UL); /* 1 us: wake on the grid, not 50 us late */
    th->now = now_ns();
    th->next_house = th->now + HOUSE_NS;
    for (uint32_t i = 0; i < th->nall; i++)
        conn_start(th, &th->conns[i]);
    flush_dirty(th);
    run_loop(th);
    for (uint32_t i = 0; i < th->nall; i++) {
        if (th->conns[i].state == CS_UP)
            stat_add(&th->st.conns_up, (uint64_t)-1);
        close_fd(th, &th->conns[i]);
    }
    uint64_t one = 1;
    if (write(th->done_fd, &one, sizeof(one)) < 0)
        perror("mux-stress: eventfd");
    return NULL;
}

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t c = 1;
    while (c < n)
        c <<= 1;
    return c;
}

int client_init(struct sthread *th, uint32_t nbusy, uint32_t nidle, uint32_t first_id)
{
    uint32_t cap = pow2_at_least(th->o->pipeline);
    th->nbusy = nbusy;
    th->nall = nbusy + nidle;
    th->budget = UINT64_MAX;
    th->end_time = UINT64_MAX;
    th->rbuf_size = RBUF_SIZE;
    hist_init(&th->hist);
    th->conns = calloc(th->nall ? th->nall : 1, sizeof(*th->conns));
    th->slots = calloc((size_t)(th->nall ? th->nall : 1) * cap, sizeof(*th->slots));
    th->dirty = calloc(th->nall ? th->nall : 1, sizeof(*th->dirty));
    th->rbuf = malloc(th->rbuf_size);
    th->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!th->conns || !th->slots || !th->dirty || !th->rbuf || th->epfd < 0)
        return -1;
    for (uint32_t i = 0; i < th->nall; i++) {
        struct sconn *c = &th->conns[i];
        c->fd = -1;
        c->state = CS_WAIT;
        c->id = first_id + i;
        c->index = i;
        c->idle = i >= nbusy;
        c->ring.slot = th->slots + (size_t)i * cap;
        c->ring.mask = cap - 1;
        proto_rx_reset(&c->rx);
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    return epoll_ctl(th->epfd, EPOLL_CTL_ADD, th->stop_fd, &ev);
}

void client_free(struct sthread *th)
{
    if (th->epfd >= 0)
        close(th->epfd);
    free(th->conns);
    free(th->slots);
    free(th->dirty);
    free(th->rbuf);
}
