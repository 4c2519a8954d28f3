/* conn_life.c - the life cycle of one load connection: non-blocking connect
 * completed on EPOLLOUT (SO_ERROR checked, latency recorded), the end of a
 * connection and what it costs (resets, server closes, lost requests), and
 * when it reopens: at once after a connection that got replies, with
 * back-off after one that never did (so a server that refuses or drops
 * every connection is not hammered in a tight loop, and a -n run gives it
 * up after MAX_CONNECT_FAILS). Bytes move in conn_io.c, the loop is client.c. */
#include "client.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "clock.h"
#include "source.h"
#include "tls.h"

#define RETRY_BASE_NS (50 * NS_PER_MS) /* back-off: 50 ms doubling ... */
#define RETRY_MAX_NS NS_PER_SEC        /* ... up to 1 s */
#define MAX_CONNECT_FAILS 5            /* -n runs give a connection up after this */

static int connect_reports_left = 3;
static int loss_reports_left = 5;

static bool take_report(int *left)
{
    if (__atomic_load_n(left, __ATOMIC_RELAXED) < 0)
        return false;
    int n = __atomic_fetch_sub(left, 1, __ATOMIC_RELAXED);
    if (n == 0)
        fprintf(stderr, "mux-stress: (further messages of this kind suppressed)\n");
    return n > 0;
}

static int reports_left = 10; /* verification failure messages */

bool client_may_report(void)
{
    return take_report(&reports_left);
}

bool client_may_report_loss(void)
{
    return take_report(&loss_reports_left);
}

void client_report_connect_error(struct sthread *th, const char *why)
{
    if (take_report(&connect_reports_left))
        fprintf(stderr, "mux-stress: connect to %s: %s\n", th->o->target, why);
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

void conn_close_fd(struct sthread *th, struct sconn *c)
{
    stls_free(c->ssl, c->state == CS_UP); /* close_notify when the session was up */
    c->ssl = NULL;
    c->tls_wlen = 0;
    c->tls_read_on_out = c->tls_flush_on_in = false;
    if (c->state == CS_UP)
        stat_add(&th->st.conns_up, (uint64_t)-1);
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    c->want_out = false;
}

/* One more failure in a row: wait longer before the next attempt; a -n run
 * (no end time) gives the connection up after MAX_CONNECT_FAILS. */
static void back_off(struct sthread *th, struct sconn *c)
{
    c->fails = c->fails < 255 ? c->fails + 1 : 255;
    if (c->fails >= MAX_CONNECT_FAILS && th->end_time == UINT64_MAX) {
        c->state = CS_DEAD;
        return;
    }
    uint64_t backoff = RETRY_BASE_NS << (c->fails < 6 ? c->fails - 1 : 5);
    c->state = CS_WAIT;
    c->retry_at = th->now + (backoff < RETRY_MAX_NS ? backoff : RETRY_MAX_NS);
}

static void failed_as(struct sthread *th, struct sconn *c, const char *why)
{
    conn_close_fd(th, c);
    stat_add(&th->st.connect_errors, 1);
    client_report_connect_error(th, why);
    back_off(th, c);
}

static void connect_failed(struct sthread *th, struct sconn *c, int err)
{
    failed_as(th, c, strerror(err));
}

/* Connected, and with --tls the handshake is done: ready for requests.
 * The connect latency includes the handshake. */
static void on_connected(struct sthread *th, struct sconn *c)
{
    uint64_t t = now_ns(); /* fresh: connect latency is tens of us on loopback */
    c->state = CS_UP;
    c->since = th->now;
    c->issued = 0;
    c->got_reply = false;
    ring_clear(&c->ring);
    proto_rx_reset(&c->rx);
    stat_add(&th->st.conns_up, 1);
    if (t >= th->measure_start) {
        hist_record(&th->conn_hist, t > c->connect_t ? t - c->connect_t : 0);
        stat_add(&th->st.connects, 1);
    }
    conn_refill(th, c);
}

void conn_handshake(struct sthread *th, struct sconn *c)
{
    switch (stls_handshake(c->ssl)) {
    case STLS_OK:
        if (c->want_out) {
            c->want_out = false;
            epoll_set(th, c, EPOLL_CTL_MOD, EPOLLIN);
        }
        on_connected(th, c);
        return;
    case STLS_WANT_READ:
        conn_set_out(th, c, false);
        return;
    case STLS_WANT_WRITE:
        conn_set_out(th, c, true);
        return;
    case STLS_EOF:
    case STLS_ERROR:
        break;
    }
    char why[256] = "TLS handshake: ";
    stls_last_error(c->ssl, why + strlen(why), sizeof(why) - strlen(why));
    failed_as(th, c, why);
}

/* The TCP connection is up: requests may flow, or the TLS handshake starts. */
static void tcp_connected(struct sthread *th, struct sconn *c)
{
    if (!th->o->tls) {
        on_connected(th, c);
        return;
    }
    c->ssl = stls_new(c->fd, th->o);
    if (!c->ssl) {
        failed_as(th, c, "TLS: cannot create a session (out of memory?)");
        return;
    }
    c->state = CS_HANDSHAKE;
    conn_handshake(th, c);
}

void conn_start(struct sthread *th, struct sconn *c)
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
    c->connect_t = now_ns();
    if (source_bind(fd, &th->o->source, c->id) < 0) {
        connect_failed(th, c, errno);
        return;
    }
    int rc = connect(fd, th->addr, th->addrlen);
    if (rc < 0 && errno != EINPROGRESS) {
        connect_failed(th, c, errno);
        return;
    }
    c->want_out = rc < 0;
    epoll_set(th, c, EPOLL_CTL_ADD, rc < 0 ? EPOLLOUT : EPOLLIN);
    if (rc == 0)
        tcp_connected(th, c);
    else
        c->state = CS_CONNECTING;
}

void conn_connect_done(struct sthread *th, struct sconn *c)
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
    tcp_connected(th, c);
}

void conn_connect_timeout(struct sthread *th, struct sconn *c)
{
    if (c->state == CS_HANDSHAKE)
        failed_as(th, c, "TLS handshake: no answer within --timeout");
    else
        connect_failed(th, c, ETIMEDOUT);
}

/* Gives requests [from, tail) back to the -n budget: they will be sent
 * again (never written, or the server announced it would not answer them). */
static void refund(struct sthread *th, struct sconn *c, uint32_t from)
{
    if (th->budget == UINT64_MAX)
        return;
    for (uint32_t i = from; i != c->ring.tail; i++)
        th->budget += ring_at(&c->ring, i)->t_start >= th->measure_start;
}

/* Counts what an end costs: resets, server closes and the requests cut. */
static void count_end(struct sthread *th, struct sconn *c, enum conn_end why)
{
    uint32_t sent = ring_sent(&c->ring);
    const char *what = why == END_RESET ? "reset by the server" : "closed by the server";
    if (why == END_RESET)
        stat_add(&th->st.resets, 1);
    else if (why == END_CLOSED && sent == 0)
        stat_add(&th->st.quiet_closes, 1); /* e.g. an idle or keep-alive timeout */
    else if (why == END_CLOSED)
        stat_add(&th->st.closed, 1);
    if ((why == END_RESET || why == END_CLOSED) && sent > 0) {
        stat_add(&th->st.lost, sent);
        if (client_may_report_loss())
            fprintf(stderr, "mux-stress: connection %u %s with %u request%s unanswered\n", c->id,
                    what, sent, sent == 1 ? "" : "s");
    }
    if (why == END_RECYCLE)
        refund(th, c, c->ring.head);
    else
        refund(th, c, c->ring.head + sent);
}

void conn_end(struct sthread *th, struct sconn *c, enum conn_end why)
{
    count_end(th, c, why);
    proto_conn_ended(th->proto, &c->rx);
    conn_close_fd(th, c);
    th->inflight -= ring_outstanding(&c->ring);
    ring_clear(&c->ring);
    proto_rx_reset(&c->rx);
    bool useful = c->got_reply || why == END_RECYCLE;
    c->got_reply = false;
    if (why == END_TIMEOUT && th->end_time == UINT64_MAX) {
        c->state = CS_DEAD; /* -n: a server that stopped answering ends the run */
        return;
    }
    if (!useful) {
        back_off(th, c);
        return;
    }
    c->fails = 0;
    c->state = CS_WAIT;
    c->retry_at = th->now;
    if (th->phase == PH_RUN && th->budget != 0) /* a spent -n opens nothing new */
        conn_start(th, c);
}
