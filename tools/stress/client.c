/* client.c - the event loop of one load thread: wait, dispatch, open-loop
 * pacing, one flush per connection per batch, housekeeping (reply and
 * connect timeouts, reconnects), and the run phases (client.h): run ->
 * drain -> done, with --idle framed by the idle ramp and check (idle.c).
 * The drain is bounded (options_drain_grace() after -d or a signal,
 * --timeout after the last -n request), so are the ramp and the check, so a
 * run always ends whatever the server does. Connections live in
 * conn_life.c, bytes move in conn_io.c. */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "clock.h"
#include "tls.h"

#define MAX_EVENTS 256
#define HOUSE_NS (50 * NS_PER_MS) /* timeouts and retries checked this often */
#define RBUF_SIZE (128 * 1024)

/* epoll data of the shared eventfds (the stop one is NULL); aligned, so
 * never tagged like an idle connection's index (idle.h, IDLE_TAG) */
static uint64_t go_marker, start_marker, check_marker;

static void refill_all(struct sthread *th)
{
    for (uint32_t i = 0; i < th->nbusy; i++)
        if (th->conns[i].state == CS_UP)
            conn_refill(th, &th->conns[i]);
}

void client_ref_ready(struct sthread *th)
{
    if (th->ref_seen)
        return;
    th->ref_seen = true;
    uint64_t one = 1;
    if (write(th->go_fd, &one, sizeof(one)) < 0) /* wake the other threads */
        perror("mux-stress: eventfd");
    refill_all(th);
}

static void start_run(struct sthread *th);
static void start_check(struct sthread *th);

/* The shared eventfds stay readable once written, so each is unwatched
 * when seen. true if ev was one of them. */
static bool dispatch_marker(struct sthread *th, struct epoll_event *ev)
{
    void *p = ev->data.ptr;
    if (!p) {
        th->stop_seen = true;
        epoll_ctl(th->epfd, EPOLL_CTL_DEL, th->stop_fd, NULL);
    } else if (p == &go_marker) {
        epoll_ctl(th->epfd, EPOLL_CTL_DEL, th->go_fd, NULL);
        th->ref_seen = true;
        refill_all(th);
    } else if (p == &start_marker) {
        epoll_ctl(th->epfd, EPOLL_CTL_DEL, th->start_fd, NULL);
        start_run(th);
    } else if (p == &check_marker) {
        epoll_ctl(th->epfd, EPOLL_CTL_DEL, th->check_fd, NULL);
        start_check(th);
    } else {
        return false;
    }
    return true;
}

static void dispatch(struct sthread *th, struct epoll_event *ev)
{
    if (ev->data.u64 & IDLE_TAG) {
        idle_event(th, (uint32_t)(ev->data.u64 >> 1), ev->events);
        return;
    }
    if (dispatch_marker(th, ev))
        return;
    struct sconn *c = ev->data.ptr;
    if (c->state == CS_CONNECTING) {
        conn_connect_done(th, c);
        return;
    }
    if (c->state == CS_HANDSHAKE) {
        conn_handshake(th, c);
        return;
    }
    int fd = c->fd;
    bool out = ev->events & EPOLLOUT;
    if ((ev->events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || (out && c->tls_read_on_out))
        conn_readable(th, c);
    if (out && c->fd == fd && c->state == CS_UP)
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

static void check_timeout(struct sthread *th, struct sconn *c)
{
    if ((c->state == CS_CONNECTING || c->state == CS_HANDSHAKE) &&
        th->now - c->since > th->timeout_ns) {
        conn_connect_timeout(th, c);
    } else if (c->state == CS_UP && ring_outstanding(&c->ring) &&
               th->now - c->since > th->timeout_ns) {
        char msg[128];
        stat_add(&th->st.timeouts, 1);
        snprintf(msg, sizeof(msg), "no reply for %.3g s (request %llu and %u more outstanding)",
                 th->o->timeout, (unsigned long long)ring_at(&c->ring, c->ring.head)->seq,
                 ring_outstanding(&c->ring) - 1);
        conn_verify_failed(th, c, msg, END_TIMEOUT);
    }
}

/* Every HOUSE_NS: reply and connect timeouts, reconnects, and (while an
 * http run waits for its reference body) another try to claim its fetch. */
static void housekeep(struct sthread *th)
{
    uint32_t dead = 0;
    for (uint32_t i = 0; i < th->nbusy; i++) {
        struct sconn *c = &th->conns[i];
        check_timeout(th, c);
        if (c->state == CS_WAIT && th->phase == PH_RUN && th->budget != 0 &&
            c->retry_at <= th->now)
            conn_start(th, c);
        dead += c->state == CS_DEAD;
    }
    idle_housekeep(th);
    if (!th->ref_seen && proto_ready(th->proto))
        client_ref_ready(th);
    else if (!th->ref_seen)
        refill_all(th);
    if (dead == th->nbusy && th->phase == PH_RUN) {
        th->phase = PH_DRAIN;
        th->drain_deadline = th->now;
    }
    th->next_house = th->now + HOUSE_NS;
}

/* This thread reached a phase main waits for (ramp over, run over, done). */
static void tell_main(struct sthread *th)
{
    uint64_t one = 1;
    if (write(th->done_fd, &one, sizeof(one)) < 0)
        perror("mux-stress: eventfd");
}

/* main released the run (start_fd): its times are set. */
static void start_run(struct sthread *th)
{
    if (th->phase != PH_READY || !__atomic_load_n(&th->released, __ATOMIC_ACQUIRE))
        return;
    th->phase = PH_RUN;
    th->ref_seen = proto_ready(th->proto);
    for (uint32_t i = 0; i < th->nbusy; i++)
        conn_start(th, &th->conns[i]);
}

/* main released the idle check (check_fd): every thread's run is over. */
static void start_check(struct sthread *th)
{
    if (th->phase != PH_HOLD)
        return;
    th->phase = PH_CHECK;
    if (idle_check_begin(th) < 0) {
        fprintf(stderr, "mux-stress: idle check: out of memory\n");
        stat_add(&th->st.idle_unverified, th->idle.n);
        th->phase = PH_DONE;
    }
}

/* Issuing stops at the end of -d, on a signal, or when the -n budget is
 * spent; then replies still owed get a bounded grace. */
static void update_phase(struct sthread *th)
{
    if (th->phase == PH_RAMP && idle_ramp_done(th)) {
        th->phase = PH_READY;
        tell_main(th);
    }
    if (th->phase == PH_RUN) {
        bool ended = th->stop_seen || th->now >= th->end_time;
        if (ended || th->budget == 0) {
            uint64_t d = th->now + (ended ? th->grace_ns : th->timeout_ns + HOUSE_NS);
            if (th->end_time != UINT64_MAX && d > th->end_time + th->grace_ns)
                d = th->end_time + th->grace_ns > th->now ? th->end_time + th->grace_ns
                                                          : th->now;
            th->phase = PH_DRAIN;
            th->drain_deadline = d;
        }
    }
    if (th->phase == PH_DRAIN && (th->inflight == 0 || th->now >= th->drain_deadline)) {
        th->phase = th->phased ? PH_HOLD : PH_DONE;
        if (th->phased)
            tell_main(th);
    }
    if (th->phase == PH_CHECK && idle_check_done(th))
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
    if (th->phase == PH_RAMP && idle_ramp_next(th) < d)
        d = idle_ramp_next(th);
    if (th->phase == PH_CHECK && th->idle.check_end < d)
        d = th->idle.check_end;
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
        if (th->phase == PH_RAMP)
            idle_ramp(th);
        else if (th->phase == PH_CHECK)
            idle_check_step(th);
        flush_dirty(th);
        if (th->now >= th->next_house)
            housekeep(th);
        update_phase(th);
    }
}

/* The run is over: replies still owed now were never answered. */
static void close_all(struct sthread *th)
{
    for (uint32_t i = 0; i < th->nbusy; i++) {
        struct sconn *c = &th->conns[i];
        uint32_t owed = c->state == CS_UP ? ring_sent(&c->ring) : 0;
        if (owed) {
            stat_add(&th->st.lost, owed);
            stat_add(&th->st.lost_at_end, owed);
        }
        conn_close_fd(th, c);
        c->state = CS_WAIT;
    }
    idle_close_all(th);
}

void *client_run(void *arg)
{
    struct sthread *th = arg;
    if (th->open_loop)
        prctl(PR_SET_TIMERSLACK, 1000UL); /* 1 us: wake on the grid, not 50 us late */
    th->now = now_ns();
    th->next_house = th->now + HOUSE_NS;
    th->phase = th->phased ? PH_RAMP : PH_READY;
    if (!th->phased)
        start_run(th); /* main set the times before it started the thread */
    else
        idle_ramp(th);
    flush_dirty(th);
    run_loop(th);
    close_all(th);
    tell_main(th);
    return NULL;
}

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t c = 1;
    while (c < n)
        c <<= 1;
    return c;
}

static int watch(struct sthread *th, int fd, void *ptr)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = ptr};
    return epoll_ctl(th->epfd, EPOLL_CTL_ADD, fd, &ev);
}

int client_init(struct sthread *th, uint32_t nbusy, uint32_t nidle, uint32_t first_id,
                uint64_t idle_before)
{
    uint32_t cap = pow2_at_least(th->o->pipeline);
    th->nbusy = nbusy;
    th->budget = UINT64_MAX;
    th->end_time = UINT64_MAX;
    th->rbuf_size = RBUF_SIZE;
    th->timeout_ns = (uint64_t)(th->o->timeout * 1e9);
    th->grace_ns = (uint64_t)(options_drain_grace(th->o) * 1e9);
    hist_init(&th->hist);
    hist_init(&th->conn_hist);
    th->conns = calloc(nbusy ? nbusy : 1, sizeof(*th->conns));
    th->slots = calloc((size_t)(nbusy ? nbusy : 1) * cap, sizeof(*th->slots));
    th->dirty = calloc(nbusy ? nbusy : 1, sizeof(*th->dirty));
    th->rbuf = malloc(th->rbuf_size);
    th->wbuf = th->o->tls ? malloc(STLS_RECORD) : NULL;
    th->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!th->conns || !th->slots || !th->dirty || !th->rbuf || th->epfd < 0 ||
        (th->o->tls && !th->wbuf) || idle_init(th, nidle, first_id + nbusy, idle_before) < 0)
        return -1;
    for (uint32_t i = 0; i < nbusy; i++) {
        struct sconn *c = &th->conns[i];
        c->fd = -1;
        c->state = CS_WAIT;
        c->id = first_id + i;
        c->index = i;
        c->ring.slot = th->slots + (size_t)i * cap;
        c->ring.mask = cap - 1;
        c->rx.conn = c->id;
        proto_rx_reset(&c->rx);
    }
    if (watch(th, th->stop_fd, NULL) < 0)
        return -1;
    if (th->phased &&
        (watch(th, th->start_fd, &start_marker) < 0 || watch(th, th->check_fd, &check_marker) < 0))
        return -1;
    return proto_ready(th->proto) ? 0 : watch(th, th->go_fd, &go_marker);
}

void client_free(struct sthread *th)
{
    if (th->epfd >= 0)
        close(th->epfd);
    free(th->conns);
    free(th->slots);
    free(th->dirty);
    free(th->rbuf);
    free(th->wbuf);
    idle_free(th);
}
