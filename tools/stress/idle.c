/* idle.c - the compact idle connections of a load thread (see idle.h): the
 * paced ramp, the silent hold (edge-triggered, so an idle connection costs
 * no wake-up until the server does something to it), and the check after
 * the run. Every read and write here goes through io_read()/io_write(), so
 * --tls connections take the same paths. */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "clock.h"
#include "source.h"
#include "tls.h"

#define PASS_PAUSE_NS (100 * NS_PER_MS) /* between retry passes */
#define BURST_NS (5 * NS_PER_MS)        /* tokens saved up at most */
#define IDLE_BATCH 32 /* connects per loop turn: completions are seen in between */
#define CHECK_NS_EACH 20000ull          /* check bound: 20 us per sampled connection, */
#define CHECK_SLACK_NS NS_PER_SEC       /* plus --timeout plus this */

static struct idle_set *set(struct sthread *th)
{
    return &th->idle;
}

int idle_init(struct sthread *th, uint32_t n, uint32_t first_id, uint64_t first_global)
{
    struct idle_set *s = set(th);
    memset(s, 0, sizeof(*s));
    hist_init(&s->conn_hist);
    s->n = n;
    s->first_id = first_id;
    s->first_global = first_global;
    s->ppm = th->o->idle_verify_ppm;
    s->per_ns = th->o->connect_rate / (double)th->o->threads / 1e9;
    if (n == 0)
        return 0;
    s->c = malloc((size_t)n * sizeof(*s->c));
    s->pend = malloc(IDLE_PENDING * sizeof(*s->pend));
    s->tls = th->o->tls ? calloc(n, sizeof(*s->tls)) : NULL;
    if (!s->c || !s->pend || (th->o->tls && !s->tls))
        return -1;
    for (uint32_t i = 0; i < n; i++)
        s->c[i] = (struct iconn){.fd = -1, .state = IS_WAIT};
    s->bytes = (size_t)n * sizeof(*s->c) + IDLE_PENDING * sizeof(*s->pend) + sizeof(s->conn_hist) +
               (s->tls ? (size_t)n * sizeof(*s->tls) : 0);
    return 0;
}

void idle_free(struct sthread *th)
{
    struct idle_set *s = set(th);
    free(s->c);
    free(s->tls);
    free(s->pend);
    free(s->chk);
    free(s->chk_free);
    s->c = NULL;
    s->tls = NULL;
    s->pend = NULL;
    s->chk = NULL;
    s->chk_free = NULL;
}

static uint32_t conn_id(const struct idle_set *s, uint32_t idx)
{
    return s->first_id + idx;
}

/* Is the connection up (counted in idle_open)? */
static bool is_up(const struct iconn *c)
{
    return c->state == IS_OPEN || c->state == IS_CHECKING || c->state == IS_VERIFIED;
}

static void close_fd(struct idle_set *s, uint32_t idx)
{
    struct iconn *c = &s->c[idx];
    if (s->tls && s->tls[idx]) {
        stls_free(s->tls[idx], is_up(c)); /* close_notify when the session was up */
        s->tls[idx] = NULL;
    }
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
}

/* --- I/O, plain or TLS --- */

enum io { IO_DATA, IO_AGAIN, IO_EOF, IO_ERR };

static enum io io_read(struct sthread *th, uint32_t idx, size_t *n)
{
    struct idle_set *s = set(th);
    if (s->tls) {
        switch (stls_read(s->tls[idx], th->rbuf, th->rbuf_size, n)) {
        case STLS_OK:
            return IO_DATA;
        case STLS_WANT_READ:
        case STLS_WANT_WRITE: /* a key update: the next edge drives it on */
            return IO_AGAIN;
        case STLS_EOF:
            return IO_EOF;
        default:
            return IO_ERR;
        }
    }
    for (;;) {
        ssize_t r = read(s->c[idx].fd, th->rbuf, th->rbuf_size);
        if (r > 0) {
            *n = (size_t)r;
            return IO_DATA;
        }
        if (r == 0)
            return IO_EOF;
        if (errno != EINTR)
            return errno == EAGAIN || errno == EWOULDBLOCK ? IO_AGAIN : IO_ERR;
    }
}

static enum io io_write(struct sthread *th, uint32_t idx, const void *p, size_t len, size_t *n)
{
    struct idle_set *s = set(th);
    if (s->tls) {
        switch (stls_write(s->tls[idx], p, len, n)) {
        case STLS_OK:
            return IO_DATA;
        case STLS_WANT_READ:
        case STLS_WANT_WRITE:
            return IO_AGAIN; /* retried with the same bytes on the next edge */
        default:
            return IO_ERR;
        }
    }
    for (;;) {
        ssize_t w = write(s->c[idx].fd, p, len);
        if (w >= 0) {
            *n = (size_t)w;
            return IO_DATA;
        }
        if (errno != EINTR)
            return errno == EAGAIN || errno == EWOULDBLOCK ? IO_AGAIN : IO_ERR;
    }
}

/* --- ramp --- */

static void pend_remove(struct idle_set *s, struct iconn *c)
{
    uint32_t k = c->slot;
    s->pend[k] = s->pend[--s->npend];
    if (k < s->npend)
        s->c[s->pend[k].idx].slot = (uint16_t)k;
}

/* A connect attempt (or its TLS handshake) failed: counted, and tried again
 * in a later pass. */
static void connect_failed(struct sthread *th, uint32_t idx, const char *why)
{
    struct idle_set *s = set(th);
    struct iconn *c = &s->c[idx];
    if (c->state == IS_CONNECTING || c->state == IS_HANDSHAKE)
        pend_remove(s, c);
    close_fd(s, idx);
    stat_add(&th->st.connect_errors, 1);
    client_report_connect_error(th, why);
    if (c->tries >= IDLE_TRIES || s->ramp_over) {
        c->state = IS_GAVE_UP;
        stat_add(&th->st.idle_gave_up, 1);
    } else {
        c->state = IS_WAIT;
        s->retry++;
    }
}

static void hold_read(struct sthread *th, uint32_t idx);

static void opened(struct sthread *th, uint32_t idx)
{
    struct idle_set *s = set(th);
    struct iconn *c = &s->c[idx];
    uint64_t t = now_ns();
    hist_record(&s->conn_hist, t - s->pend[c->slot].t);
    pend_remove(s, c);
    c->state = IS_OPEN;
    stat_add(&th->st.idle_open, 1);
    stat_add(&th->st.idle_connects, 1);
    if (s->tls)
        hold_read(th, idx); /* session tickets may sit in the socket: no new edge */
}

static void handshake(struct sthread *th, uint32_t idx)
{
    struct idle_set *s = set(th);
    char why[256] = "TLS handshake: ";
    switch (stls_handshake(s->tls[idx])) {
    case STLS_OK:
        opened(th, idx);
        return;
    case STLS_WANT_READ:
    case STLS_WANT_WRITE:
        return; /* edge-triggered: the next edge brings it on */
    default:
        stls_last_error(s->tls[idx], why + strlen(why), sizeof(why) - strlen(why));
        connect_failed(th, idx, why);
    }
}

/* The TCP connect is done: open, or start the TLS handshake. */
static void tcp_connected(struct sthread *th, uint32_t idx)
{
    struct idle_set *s = set(th);
    if (!s->tls) {
        opened(th, idx);
        return;
    }
    s->tls[idx] = stls_new(s->c[idx].fd, th->o);
    if (!s->tls[idx]) {
        connect_failed(th, idx, "TLS: cannot create a session (out of memory?)");
        return;
    }
    s->c[idx].state = IS_HANDSHAKE;
    handshake(th, idx);
}

static void start_connect(struct sthread *th, uint32_t idx)
{
    struct idle_set *s = set(th);
    struct iconn *c = &s->c[idx];
    c->tries++;
    c->fd = socket(th->addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        connect_failed(th, idx, strerror(errno));
        return;
    }
    c->slot = (uint16_t)s->npend;
    s->pend[s->npend++] = (struct idle_pending){.idx = idx, .t = now_ns()};
    c->state = IS_CONNECTING;
    if (source_bind(c->fd, &th->o->source, conn_id(s, idx)) < 0) {
        connect_failed(th, idx, strerror(errno));
        return;
    }
    int rc = connect(c->fd, th->addr, th->addrlen);
    if (rc < 0 && errno != EINPROGRESS) {
        connect_failed(th, idx, strerror(errno));
        return;
    }
    /* Edge-triggered: EPOLLOUT once when the connect completes, then only
     * what the server does (input, close, reset) wakes this thread. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u64 = (uint64_t)idx << 1 | IDLE_TAG};
    if (epoll_ctl(th->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        connect_failed(th, idx, strerror(errno));
        return;
    }
    if (rc == 0)
        tcp_connected(th, idx);
}

/* The next index to connect in this pass, or -1 when the pass is over. */
static int64_t next_to_connect(struct idle_set *s)
{
    while (s->cursor < s->n) {
        uint32_t i = s->cursor++;
        if (s->c[i].state == IS_WAIT) {
            if (s->pass > 0)
                s->retry--;
            return i;
        }
    }
    return -1;
}

static void refill(struct idle_set *s, uint64_t now)
{
    double burst = s->per_ns * (double)BURST_NS;
    s->tokens += (double)(now - s->tok_t) * s->per_ns;
    if (s->tokens > (burst > 1 ? burst : 1))
        s->tokens = burst > 1 ? burst : 1;
    s->tok_t = now;
}

void idle_ramp(struct sthread *th)
{
    struct idle_set *s = set(th);
    if (th->stop_seen && !s->ramp_over) {
        s->ramp_over = true; /* a signal: what is not open stays closed */
        for (uint32_t i = 0; i < s->n; i++)
            if (s->c[i].state == IS_WAIT)
                s->c[i].state = IS_GAVE_UP;
        s->retry = 0;
    }
    if (s->ramp_over)
        return;
    if (s->cursor == s->n && s->retry > 0 && s->npend == 0 && s->pass < IDLE_TRIES) {
        s->cursor = 0; /* a pass for the connections whose attempt failed */
        s->pass++;
        s->pass_at = th->now + PASS_PAUSE_NS;
    }
    if (th->now < s->pass_at)
        return;
    refill(s, th->now);
    for (int k = 0; k < IDLE_BATCH && s->tokens >= 1 && s->npend < IDLE_PENDING; k++) {
        int64_t i = next_to_connect(s);
        if (i < 0)
            break;
        s->tokens -= 1;
        start_connect(th, (uint32_t)i);
    }
}

bool idle_ramp_done(const struct sthread *th)
{
    const struct idle_set *s = &th->idle;
    return s->npend == 0 && (s->ramp_over || (s->cursor == s->n && s->retry == 0));
}

uint64_t idle_ramp_next(const struct sthread *th)
{
    const struct idle_set *s = &th->idle;
    if (s->ramp_over || s->npend >= IDLE_PENDING || (s->cursor == s->n && s->retry == 0))
        return UINT64_MAX;
    if (s->cursor == s->n)
        return s->npend ? UINT64_MAX : th->now; /* a retry pass starts when all are back */
    if (th->now < s->pass_at)
        return s->pass_at;
    double wait = s->tokens >= 1 ? 0 : (1 - s->tokens) / s->per_ns;
    return th->now + (uint64_t)wait;
}

/* --- hold --- */

/* The server closed or reset an idle connection, or sent it bytes unasked:
 * it is lost (one lost request: the check it was owed). */
static void lost(struct sthread *th, uint32_t idx, const char *what)
{
    struct idle_set *s = set(th);
    struct iconn *c = &s->c[idx];
    if (is_up(c))
        stat_add(&th->st.idle_open, (uint64_t)-1);
    close_fd(s, idx);
    c->state = IS_LOST;
    stat_add(&th->st.idle_lost, 1);
    if (client_may_report_loss())
        fprintf(stderr, "mux-stress: idle connection %u %s\n", conn_id(s, idx), what);
}

/* Readable while open and silent: until the socket is empty (TLS records
 * without data, such as session tickets, are fine); anything else ends it. */
static void hold_read(struct sthread *th, uint32_t idx)
{
    for (;;) {
        size_t n = 0;
        switch (io_read(th, idx, &n)) {
        case IO_DATA:
            if (n == 0)
                continue;
            lost(th, idx, "received bytes it never asked for");
            return;
        case IO_AGAIN:
            return;
        case IO_EOF:
            lost(th, idx, "closed by the server");
            return;
        case IO_ERR:
            lost(th, idx, "reset by the server");
            return;
        }
    }
}

/* --- check --- */

static void check_release(struct idle_set *s, struct iconn *c)
{
    s->chk_free[s->nfree++] = c->slot;
}

static void check_failed(struct sthread *th, uint32_t idx, const char *msg, bool timeout)
{
    struct idle_set *s = set(th);
    struct iconn *c = &s->c[idx];
    check_release(s, c);
    stat_add(&th->st.verify_failures, 1);
    if (timeout)
        stat_add(&th->st.timeouts, 1);
    if (client_may_report())
        fprintf(stderr, "mux-stress: verify failed on idle connection %u: %s\n",
                conn_id(s, idx), msg);
    stat_add(&th->st.idle_open, (uint64_t)-1);
    close_fd(s, idx);
    c->state = IS_FAILED;
}

static void check_answered(struct sthread *th, uint32_t idx, struct idle_check *k)
{
    struct idle_set *s = set(th);
    struct iconn *c = &s->c[idx];
    check_release(s, c);
    stat_add(&th->st.idle_verified, 1);
    c->state = IS_VERIFIED;
    if (k->rx.closing) { /* http: the server announced its close */
        stat_add(&th->st.idle_open, (uint64_t)-1);
        close_fd(s, idx);
    }
}

/* Writes what is left of the check request. false if the connection ended. */
static bool check_write(struct sthread *th, uint32_t idx, struct idle_check *k)
{
    while (k->ring.unsent != k->ring.tail) {
        const char *p = (const char *)proto_req_bytes(th->proto, &k->req) + k->ring.unsent_off;
        size_t w = 0;
        switch (io_write(th, idx, p, k->req.len - k->ring.unsent_off, &w)) {
        case IO_AGAIN:
            return true; /* the next edge (room, or TLS input) retries */
        case IO_DATA:
            break;
        default:
            check_release(set(th), &set(th)->c[idx]);
            lost(th, idx, "reset by the server before its check");
            return false;
        }
        k->ring.unsent_off += (uint32_t)w;
        if (k->ring.unsent_off == k->req.len) {
            k->ring.unsent = k->ring.tail;
            k->ring.unsent_off = 0;
        }
    }
    return true;
}

/* The server closed a connection being checked: a close-delimited http
 * reply may complete here; anything else leaves the check unanswered. */
static void check_eof(struct sthread *th, uint32_t idx, struct idle_check *k, const char *what)
{
    struct verify_err err;
    uint32_t done = 0;
    if (proto_eof(th->proto, &k->rx, &k->ring, &done, &err) < 0) {
        check_failed(th, idx, err.msg, false);
    } else if (done) {
        check_answered(th, idx, k); /* and closed: rx.closing is set */
    } else {
        check_release(set(th), &set(th)->c[idx]);
        lost(th, idx, what);
    }
}

/* Reads until the socket is empty (edge-triggered) and verifies. */
static void check_read(struct sthread *th, uint32_t idx)
{
    struct idle_set *s = set(th);
    struct idle_check *k = &s->chk[s->c[idx].slot];
    for (;;) {
        size_t n = 0;
        switch (io_read(th, idx, &n)) {
        case IO_AGAIN:
            return;
        case IO_EOF:
            check_eof(th, idx, k, "closed by the server during its check");
            return;
        case IO_ERR:
            check_eof(th, idx, k, "reset by the server during its check");
            return;
        case IO_DATA:
            break;
        }
        struct verify_err err;
        uint32_t done = 0;
        if (proto_feed(th->proto, &k->rx, &k->ring, th->rbuf, n, &done, &err) < 0) {
            check_failed(th, idx, err.msg, false);
            return;
        }
        if (done) {
            k->ring.head += done;
            check_answered(th, idx, k);
            if (s->c[idx].fd >= 0)
                hold_read(th, idx); /* more bytes than the reply (edge-triggered) */
            return;
        }
    }
}

static void start_check(struct sthread *th, uint32_t idx)
{
    struct idle_set *s = set(th);
    struct iconn *c = &s->c[idx];
    uint16_t slot = s->chk_free[--s->nfree];
    struct idle_check *k = &s->chk[slot];
    memset(k, 0, sizeof(*k));
    k->idx = idx;
    k->t = th->now;
    proto_request(th->proto, conn_id(s, idx), 0, &k->req);
    if (th->proto->kind != PROTO_HTTP && k->req.len > IDLE_CHECK_BYTES)
        k->req.len = IDLE_CHECK_BYTES;
    k->ring.slot = &k->req;
    k->ring.mask = 0;
    k->ring.tail = 1;
    k->rx.conn = conn_id(s, idx);
    proto_rx_reset(&k->rx);
    c->slot = slot;
    c->state = IS_CHECKING;
    stat_add(&th->st.idle_checked, 1);
    check_write(th, idx, k);
}

int idle_check_begin(struct sthread *th)
{
    struct idle_set *s = set(th);
    uint64_t sampled = 0;
    for (uint32_t i = 0; i < s->n; i++)
        sampled += idle_sampled(s->first_global + i, s->ppm);
    s->nchk = sampled < IDLE_CHECKS ? (uint32_t)sampled : IDLE_CHECKS;
    s->check_end = th->now + th->timeout_ns + CHECK_SLACK_NS + sampled * CHECK_NS_EACH;
    if (th->proto->kind == PROTO_HTTP && !proto_ready(th->proto))
        s->nchk = 0; /* no reference body: the run failed already ("nothing measured") */
    if (s->nchk == 0)
        return 0;
    s->chk = calloc(s->nchk, sizeof(*s->chk)); /* housekeeping reads unused slots too */
    s->chk_free = malloc(s->nchk * sizeof(*s->chk_free));
    if (!s->chk || !s->chk_free)
        return -1;
    for (uint32_t i = 0; i < s->nchk; i++)
        s->chk_free[i] = (uint16_t)(s->nchk - 1 - i);
    s->nfree = s->nchk;
    s->bytes += s->nchk * (sizeof(*s->chk) + sizeof(*s->chk_free));
    return 0;
}

void idle_check_step(struct sthread *th)
{
    struct idle_set *s = set(th);
    while (s->nfree > 0 && s->vcursor < s->n && th->now < s->check_end) {
        uint32_t i = s->vcursor++;
        if (s->c[i].state == IS_OPEN && idle_sampled(s->first_global + i, s->ppm))
            start_check(th, i);
    }
}

bool idle_check_done(struct sthread *th)
{
    struct idle_set *s = set(th);
    if (s->nchk == 0 || (s->vcursor == s->n && s->nfree == s->nchk))
        return true;
    if (th->now < s->check_end)
        return false;
    uint64_t left = 0; /* the bound passed: in flight or never sent */
    for (uint32_t i = 0; i < s->n; i++) {
        struct iconn *c = &s->c[i];
        if (c->state == IS_CHECKING ||
            (i >= s->vcursor && c->state == IS_OPEN && idle_sampled(s->first_global + i, s->ppm)))
            left++;
    }
    stat_add(&th->st.idle_unverified, left);
    return true;
}

/* --- events and housekeeping --- */

void idle_event(struct sthread *th, uint32_t idx, uint32_t events)
{
    struct idle_set *s = set(th);
    struct iconn *c = &s->c[idx];
    if (c->fd < 0)
        return;
    if (c->state == IS_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err || (events & EPOLLHUP)) {
            connect_failed(th, idx, strerror(err ? err : ECONNREFUSED));
            return;
        }
        tcp_connected(th, idx);
        if (c->state != IS_OPEN || s->tls || !(events & (EPOLLIN | EPOLLRDHUP)))
            return;
    } else if (c->state == IS_HANDSHAKE) {
        handshake(th, idx);
        return;
    }
    if (c->state == IS_CHECKING) {
        if (events & EPOLLOUT && !check_write(th, idx, &s->chk[c->slot]))
            return;
        if (s->tls || (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
            check_read(th, idx); /* TLS: a write may have waited for input */
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        hold_read(th, idx);
}

void idle_housekeep(struct sthread *th)
{
    struct idle_set *s = set(th);
    for (uint32_t k = 0; k < s->npend;) {
        struct idle_pending *p = &s->pend[k];
        if (th->now < p->t || th->now - p->t <= th->timeout_ns) {
            k++;
            continue;
        }
        connect_failed(th, p->idx, s->c[p->idx].state == IS_HANDSHAKE
                                       ? "TLS handshake: no answer within --timeout"
                                       : strerror(ETIMEDOUT)); /* moves the last entry to k */
    }
    for (uint32_t k = 0; s->chk && k < s->nchk; k++) {
        struct idle_check *v = &s->chk[k];
        struct iconn *c = &s->c[v->idx];
        if (c->state != IS_CHECKING || c->slot != k || th->now - v->t <= th->timeout_ns)
            continue;
        char msg[96];
        snprintf(msg, sizeof(msg), "no reply to its check within %.3g s", th->o->timeout);
        check_failed(th, v->idx, msg, true);
    }
}

void idle_close_all(struct sthread *th)
{
    struct idle_set *s = set(th);
    for (uint32_t i = 0; i < s->n; i++) {
        struct iconn *c = &s->c[i];
        if (c->state == IS_CONNECTING || c->state == IS_HANDSHAKE)
            pend_remove(s, c);
        close_fd(s, i);
    }
}
