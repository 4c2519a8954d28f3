/* conn_io.c - the hot path of a load thread: queue requests into a
 * connection's ring (no allocation), write them with one writev per
 * connection per event batch, read replies into the thread's shared buffer
 * and verify them as they stream in, recording latency per completed reply;
 * hand a connection to conn_end() when its --reconnect share is answered, the
 * server announced a close, or it reset or closed the connection. */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "tls.h"

#define FLUSH_IOV 64      /* iovecs per writev */
#define READS_PER_EVENT 4 /* fairness: reads per readable event */
#define TLS_READS_PER_EVENT 16 /* a TLS read returns one record (<= 16 KiB) */

/* May connection c issue one more request due at t? Charges the -n budget. */
static bool may_issue(struct sthread *th, struct sconn *c, uint64_t t)
{
    if (th->phase != PH_RUN || c->state != CS_UP || c->rx.closing)
        return false;
    if (ring_outstanding(&c->ring) >= th->o->pipeline) /* ring capacity >= pipeline */
        return false;
    if (th->o->reconnect && c->issued >= th->o->reconnect)
        return false; /* --reconnect: this connection has had its share */
    if (!th->ref_seen && !proto_may_send(th->proto, &c->rx))
        return false; /* another connection fetches the reference body */
    if (t >= th->measure_start) {
        if (th->budget == 0)
            return false;
        if (th->budget != UINT64_MAX)
            th->budget--;
    }
    return true;
}

static void push_request(struct sthread *th, struct sconn *c, uint64_t t_start)
{
    struct req *r = ring_at(&c->ring, c->ring.tail);
    proto_request(th->proto, c->id, c->seq++, r);
    r->t_start = t_start;
    c->issued++;
    if (ring_outstanding(&c->ring) == 0)
        c->since = th->now;
    c->ring.tail++;
    th->inflight++;
}

static void mark_dirty(struct sthread *th, struct sconn *c)
{
    if (!c->dirty) {
        c->dirty = true;
        th->dirty[th->ndirty++] = (uint32_t)(c - th->conns);
    }
}

void conn_refill(struct sthread *th, struct sconn *c)
{
    bool queued = false;
    if (th->open_loop) {
        for (;;) {
            uint64_t due = sched_due(&th->sched, c->index, c->sched_i);
            if (due > th->now || !may_issue(th, c, due))
                break;
            push_request(th, c, due);
            c->sched_i++;
            queued = true;
        }
    } else {
        while (may_issue(th, c, th->now)) {
            push_request(th, c, th->now);
            queued = true;
        }
    }
    if (queued)
        mark_dirty(th, c);
}

/* Builds the iovecs for ring[unsent, tail). Returns the count. */
static int gather(struct sthread *th, struct sconn *c, struct iovec *iov, size_t *total)
{
    int n = 0;
    *total = 0;
    for (uint32_t i = c->ring.unsent; i != c->ring.tail && n < FLUSH_IOV; i++, n++) {
        const struct req *r = ring_at(&c->ring, i);
        size_t skip = i == c->ring.unsent ? c->ring.unsent_off : 0;
        iov[n].iov_base = (char *)proto_req_bytes(th->proto, r) + skip;
        iov[n].iov_len = r->len - skip;
        *total += iov[n].iov_len;
    }
    return n;
}

/* Moves the unsent cursor over `n` written bytes. */
static void advance(struct sconn *c, size_t n)
{
    while (n > 0) {
        const struct req *r = ring_at(&c->ring, c->ring.unsent);
        size_t left = r->len - c->ring.unsent_off;
        if (n < left) {
            c->ring.unsent_off += (uint32_t)n;
            return;
        }
        n -= left;
        c->ring.unsent++;
        c->ring.unsent_off = 0;
    }
}

/* --tls: one record of the unsent requests (copied together when there
 * are several), or exactly the blocked one again. Returns bytes written, 0
 * when blocked (interest set), -1 when the connection ended. */
static ssize_t tls_write(struct sthread *th, struct sconn *c, const struct iovec *iov, int n,
                         size_t *total)
{
    const void *buf = iov[0].iov_base;
    size_t len = iov[0].iov_len < STLS_RECORD ? iov[0].iov_len : STLS_RECORD;
    if (n > 1 && len < STLS_RECORD) {
        len = 0;
        for (int i = 0; i < n && len < STLS_RECORD; i++) {
            size_t k = iov[i].iov_len < STLS_RECORD - len ? iov[i].iov_len : STLS_RECORD - len;
            memcpy(th->wbuf + len, iov[i].iov_base, k);
            len += k;
        }
        buf = th->wbuf;
    }
    if (c->tls_wlen && c->tls_wlen < len)
        len = c->tls_wlen; /* a retried write must offer the same bytes */
    *total = len;
    size_t w = 0;
    enum stls_io r = stls_write(c->ssl, buf, len, &w);
    c->tls_wlen = 0;
    c->tls_flush_on_in = false;
    switch (r) {
    case STLS_OK:
        return (ssize_t)w;
    case STLS_WANT_WRITE:
        c->tls_wlen = (uint32_t)len;
        conn_set_out(th, c, true);
        return 0;
    case STLS_WANT_READ:
        c->tls_wlen = (uint32_t)len;
        c->tls_flush_on_in = true;
        return 0;
    default:
        conn_end(th, c, END_RESET);
        return -1;
    }
}

void conn_flush(struct sthread *th, struct sconn *c)
{
    struct iovec iov[FLUSH_IOV];
    while (c->state == CS_UP && c->ring.unsent != c->ring.tail) {
        size_t total;
        int n = gather(th, c, iov, &total);
        if (c->ssl) {
            ssize_t w = tls_write(th, c, iov, n, &total);
            if (w <= 0)
                return;
            if (th->now >= th->measure_start)
                stat_add(&th->st.bytes_tx, (uint64_t)w);
            advance(c, (size_t)w);
            continue; /* a full record went out: the socket may take more */
        }
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                conn_set_out(th, c, true);
                return;
            }
            if (errno == EINTR)
                continue;
            conn_end(th, c, END_RESET);
            return;
        }
        if (th->now >= th->measure_start)
            stat_add(&th->st.bytes_tx, (uint64_t)w);
        advance(c, (size_t)w);
        if ((size_t)w < total) {
            conn_set_out(th, c, true);
            return;
        }
    }
    if (c->want_out && c->state == CS_UP)
        conn_set_out(th, c, false);
}

void conn_verify_failed(struct sthread *th, struct sconn *c, const char *msg,
                        enum conn_end why)
{
    stat_add(&th->st.verify_failures, 1);
    if (client_may_report())
        fprintf(stderr, "mux-stress: verify failed on connection %u: %s\n", c->id, msg);
    conn_end(th, c, why);
}

/* Pops `done` answered requests, recording the measured ones. */
static void complete(struct sthread *th, struct sconn *c, uint32_t done)
{
    for (uint32_t k = 0; k < done; k++) {
        const struct req *r = ring_at(&c->ring, c->ring.head);
        if (r->t_start >= th->measure_start) {
            hist_record(&th->hist, th->now > r->t_start ? th->now - r->t_start : 0);
            stat_add(&th->st.requests, 1);
        }
        c->ring.head++;
    }
    if (done == 0)
        return;
    c->got_reply = true;
    th->inflight -= done;
    if ((int32_t)(c->ring.unsent - c->ring.head) < 0) { /* answered before fully sent */
        c->ring.unsent = c->ring.head;
        c->ring.unsent_off = 0;
    }
    if (th->now >= th->measure_start)
        __atomic_store_n(&th->st.last_done, th->now, __ATOMIC_RELAXED);
}

/* After replies completed: is the connection finished by design? Either
 * --reconnect's share is answered, or the server announced Connection:
 * close (requests pipelined after that one go back to the budget). */
static bool recycle_due(const struct sthread *th, const struct sconn *c)
{
    if (c->rx.closing)
        return true;
    return th->o->reconnect && c->issued >= th->o->reconnect && ring_outstanding(&c->ring) == 0;
}

/* Verifies one chunk of reply bytes. false if the connection is gone. */
static bool consume(struct sthread *th, struct sconn *c, const char *buf, size_t n)
{
    struct verify_err err;
    uint32_t done = 0;
    int rc = proto_feed(th->proto, &c->rx, &c->ring, buf, n, &done, &err);
    complete(th, c, done);
    c->since = th->now;
    if (rc < 0) {
        conn_verify_failed(th, c, err.msg, END_FAILED);
        return false;
    }
    if (!th->ref_seen && proto_ready(th->proto))
        client_ref_ready(th); /* this connection's reply became the reference */
    if (recycle_due(th, c)) {
        conn_end(th, c, END_RECYCLE);
        return false;
    }
    conn_refill(th, c);
    return true;
}

static void on_eof(struct sthread *th, struct sconn *c)
{
    struct verify_err err;
    uint32_t done = 0;
    int rc = proto_eof(th->proto, &c->rx, &c->ring, &done, &err);
    complete(th, c, done);
    if (rc < 0) {
        conn_verify_failed(th, c, err.msg, END_FAILED);
        return;
    }
    if (done && !th->ref_seen && proto_ready(th->proto))
        client_ref_ready(th);
    conn_end(th, c, c->rx.closing ? END_RECYCLE : END_CLOSED);
}

/* --tls: records until the socket is empty (bounded). */
static void tls_readable(struct sthread *th, struct sconn *c)
{
    c->tls_read_on_out = false;
    for (int i = 0; i < TLS_READS_PER_EVENT && c->state == CS_UP; i++) {
        size_t n = 0;
        switch (stls_read(c->ssl, th->rbuf, th->rbuf_size, &n)) {
        case STLS_OK:
            if (th->now >= th->measure_start)
                stat_add(&th->st.bytes_rx, (uint64_t)n);
            if (!consume(th, c, th->rbuf, n))
                return;
            continue;
        case STLS_WANT_READ:
            break;
        case STLS_WANT_WRITE:
            c->tls_read_on_out = true;
            conn_set_out(th, c, true);
            break;
        case STLS_EOF:
            on_eof(th, c);
            return;
        case STLS_ERROR:
            if (client_may_report()) {
                char why[256];
                fprintf(stderr, "mux-stress: connection %u: TLS: %s\n", c->id,
                        stls_last_error(c->ssl, why, sizeof(why)));
            }
            conn_end(th, c, END_RESET);
            return;
        }
        break;
    }
    if (c->state == CS_UP && c->tls_flush_on_in)
        conn_flush(th, c); /* the blocked write waited for this read */
}

void conn_readable(struct sthread *th, struct sconn *c)
{
    if (c->ssl) {
        tls_readable(th, c);
        return;
    }
    for (int i = 0; i < READS_PER_EVENT && c->state == CS_UP; i++) {
        ssize_t n = read(c->fd, th->rbuf, th->rbuf_size);
        if (n > 0) {
            if (th->now >= th->measure_start)
                stat_add(&th->st.bytes_rx, (uint64_t)n);
            if (!consume(th, c, th->rbuf, (size_t)n) || (size_t)n < th->rbuf_size)
                return;
        } else if (n == 0) {
            on_eof(th, c);
            return;
        } else if (errno == EINTR) {
            continue;
        } else {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_end(th, c, END_RESET);
            return;
        }
    }
}
