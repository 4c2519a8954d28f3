/* sim_net.c - the simulated network: byte FIFOs, the "sim" poller backend
 * (whose wait is the scheduler's step) and the "sim" transport, a readiness
 * transport whose reads and writes move bytes between a connection and its
 * simulated peer. How many bytes move, and whether a call finds the
 * socket full or empty for no reason, is the scheduler's to decide. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conn.h"
#include "fault.h"
#include "poller.h"
#include "sim.h"
#include "transport.h"

/* ---- byte FIFOs ---- */

void sim_bytes_push(struct sim_bytes *b, const void *data, size_t n)
{
    if (b->head + b->len + n > b->cap) {
        if (b->len > 0)
            memmove(b->buf, b->buf + b->head, b->len);
        b->head = 0;
        if (b->len + n > b->cap) {
            size_t cap = b->cap ? b->cap : 256;
            while (cap < b->len + n)
                cap *= 2;
            b->buf = realloc(b->buf, cap);
            if (!b->buf)
                abort();
            b->cap = cap;
        }
    }
    memcpy(b->buf + b->head + b->len, data, n);
    b->len += n;
}

size_t sim_bytes_take(struct sim_bytes *b, void *out, size_t n, bool peek)
{
    if (n > b->len)
        n = b->len;
    if (out && n > 0)
        memcpy(out, b->buf + b->head, n);
    if (!peek) {
        b->head += n;
        b->len -= n;
        if (b->len == 0)
            b->head = 0;
    }
    return n;
}

void sim_bytes_free(struct sim_bytes *b)
{
    free(b->buf);
    memset(b, 0, sizeof(*b));
}

void sim_net_init_sock(struct sim_sock *s, unsigned index)
{
    memset(s, 0, sizeof(*s));
    s->index = index;
    s->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->fd < 0)
        abort();
}

/* ---- the transport ---- */

static struct sim_sock *sock_of(const struct mux_conn *c)
{
    struct sim_sock *s = sim_sock_by_fd(c->fd);
    if (!s)
        abort(); /* a connection on a descriptor the world never made */
    return s;
}

static ssize_t sim_read(struct mux_conn *c, void *buf, size_t len, bool peek)
{
    struct sim_sock *s = sock_of(c);
    ssize_t rc;
    if (s->reset_to_server) {
        errno = ECONNRESET;
        rc = -1;
    } else if (s->c2s.len > 0 && !sim_chance(20)) {
        size_t n = s->c2s.len < len ? s->c2s.len : len;
        if (sim_chance(300))
            n = 1 + (size_t)sim_below(n); /* a short read */
        rc = (ssize_t)sim_bytes_take(&s->c2s, buf, n, peek);
        if (!peek) {
            s->c2s_room += (size_t)rc;
            s->last_io = sim_world_now();
        }
    } else if (s->c2s.len == 0 && s->c2s_fin) {
        rc = 0;
    } else {
        errno = EAGAIN; /* empty, or (rarely) a spurious EAGAIN */
        rc = -1;
    }
    sim_trace(0x52000000ull ^ ((uint64_t)s->index << 40) ^ (uint64_t)(rc + 1));
    sim_say("server reads client %u%s: %zd", s->index, peek ? " (peek)" : "", rc);
    return rc;
}

/* Copies n bytes of the queue's head (memory or a file range) to out. */
static bool copy_head(struct mux_conn *c, char *out, size_t n)
{
    struct mux__chunk *f = mux__outq_head_file(&c->out);
    if (f)
        return pread(f->fd, out, n, f->offset) == (ssize_t)n;
    struct iovec iov[64];
    size_t total = 0;
    int cnt = mux__outq_iov(&c->out, iov, 64, &total);
    for (int i = 0; i < cnt && n > 0; i++) {
        size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;
        memcpy(out, iov[i].iov_base, k);
        out += k;
        n -= k;
    }
    return n == 0;
}

/* The head of the queue into the peer's receive buffer, as far as it
 * takes: bytes written, 0 when full, or a negative errno. */
static ssize_t sim_send_head(struct mux_conn *c, size_t *wanted)
{
    struct sim_sock *s = sock_of(c);
    if (mux__fault(FAULT_SEND))
        return -EIO;
    if (s->reset_to_server)
        return -EPIPE;
    struct mux__chunk *f = mux__outq_head_file(&c->out);
    if (f) {
        *wanted = f->remaining < MUX__SENDFILE_CHUNK ? f->remaining : MUX__SENDFILE_CHUNK;
    } else {
        struct iovec iov[64];
        mux__outq_iov(&c->out, iov, 64, wanted);
    }
    size_t n = *wanted < s->s2c_room ? *wanted : s->s2c_room;
    if (n > 0 && sim_chance(30))
        n = 0; /* full for no reason the server can see */
    if (n > 1 && sim_chance(300))
        n = 1 + (size_t)sim_below(n); /* a short write */
    sim_trace(0x57000000ull ^ ((uint64_t)s->index << 40) ^ n);
    sim_say("server writes client %u: %zu of %zu", s->index, n, *wanted);
    if (n == 0)
        return 0;
    char *tmp = malloc(n);
    if (!tmp)
        abort();
    if (!copy_head(c, tmp, n)) {
        free(tmp);
        return -EIO; /* a file range that shrank */
    }
    sim_bytes_push(&s->s2c, tmp, n);
    free(tmp);
    s->s2c_room -= n;
    s->last_io = sim_world_now();
    return (ssize_t)n;
}

static int sim_flush(struct mux_conn *c)
{
    return mux__flush_loop(c, sim_send_head);
}

static int sim_shut_write(struct mux_conn *c)
{
    struct sim_sock *s = sock_of(c);
    if (s->reset_to_server)
        return -ENOTCONN;
    s->s2c_fin = true;
    sim_trace(0x46000000ull ^ s->index);
    return 0;
}

static void sim_set_reset(struct mux_conn *c)
{
    struct sim_sock *s = sock_of(c);
    s->reset_on_close = true;
    sim_world_reset_asked(s);
}

static bool sim_input_waiting(struct mux_conn *c)
{
    struct sim_sock *s = sock_of(c);
    return s->reset_to_server || s->c2s.len > 0 || s->c2s_fin;
}

/* The server closes its end: unread input, or a reset close, resets the
 * peer (as TCP does); otherwise the peer sees our FIN. */
static void sim_release(struct mux_conn *c)
{
    struct sim_sock *s = sock_of(c);
    mux__socket_release(c);
    s->released = true;
    if (s->c2s.len > 0)
        s->reset_on_close = true;
    if (!s->reset_on_close)
        s->s2c_fin = true;
    sim_trace(0x43000000ull ^ ((uint64_t)s->index << 8) ^ s->reset_on_close);
}

static const struct mux__transport sim_transport = {
    .name = "sim",
    .start = mux__socket_watch,
    .read = sim_read,
    .flush = sim_flush,
    .want = mux__socket_want,
    .unwatch = mux__socket_unwatch,
    .drop_output = mux__socket_drop_output,
    .release = sim_release,
    .shut_write = sim_shut_write,
    .set_reset = sim_set_reset,
    .input_waiting = sim_input_waiting,
};

/* ---- the poller ---- */

#define REAL_MAX 8

/* Descriptors that are not simulated sockets (the worker's wake eventfd):
 * their readiness is real, and read with a poll() that never blocks. */
struct mux__poller {
    int fd[REAL_MAX];
    void *ptr[REAL_MAX];
    unsigned n;
};

static int sp_create(struct mux__poller **out, bool edge)
{
    (void)edge;
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

static void sp_destroy(struct mux__poller *p)
{
    free(p);
}

static int sp_add(struct mux__poller *p, int fd, void *ptr, uint32_t events)
{
    struct sim_sock *s = sim_sock_by_fd(fd);
    if (s) {
        if (s->watched)
            return -EEXIST;
        s->watched = true;
        s->ptr = ptr;
        s->interest = events;
        return 0;
    }
    if (p->n == REAL_MAX)
        return -ENOSPC;
    p->fd[p->n] = fd;
    p->ptr[p->n++] = ptr;
    return 0;
}

static int sp_mod(struct mux__poller *p, int fd, void *ptr, uint32_t events)
{
    (void)p;
    struct sim_sock *s = sim_sock_by_fd(fd);
    if (!s || !s->watched)
        return -ENOENT;
    s->ptr = ptr;
    s->interest = events;
    return 0;
}

static void sp_del(struct mux__poller *p, int fd)
{
    struct sim_sock *s = sim_sock_by_fd(fd);
    if (s) {
        s->watched = false;
        return;
    }
    for (unsigned i = 0; i < p->n; i++)
        if (p->fd[i] == fd) {
            p->fd[i] = p->fd[--p->n];
            p->ptr[i] = p->ptr[p->n];
            return;
        }
}

/* The real descriptors that are readable now, as events at ev. */
static int real_events(struct mux__poller *p, struct mux__poll_event *ev, int max)
{
    struct pollfd pf[REAL_MAX];
    for (unsigned i = 0; i < p->n; i++)
        pf[i] = (struct pollfd){.fd = p->fd[i], .events = POLLIN};
    int k = 0;
    if (p->n == 0 || poll(pf, p->n, 0) <= 0)
        return 0;
    for (unsigned i = 0; i < p->n && k < max; i++)
        if (pf[i].revents & POLLIN)
            ev[k++] = (struct mux__poll_event){.ptr = p->ptr[i], .events = MUX_EV_READ};
    return k;
}

static int sp_wait(struct mux__poller *p, struct mux__poll_event *ev, int max, int timeout_ms)
{
    /* A wake already pending is a reason not to let the clock run. */
    int k = real_events(p, ev, max);
    int n = sim_world_step(ev + k, max - k, k > 0 ? 0 : timeout_ms);
    if (k == 0)
        k = real_events(p, ev + n, max - n); /* what the world's step woke */
    else
        memmove(ev + n, ev, 0); /* (already in place before the world's events) */
    return n + k;
}

static const struct mux__transport *sp_transport(struct mux__poller *p)
{
    (void)p;
    return &sim_transport;
}

const struct mux__poller_ops sim_poller = {
    .name = "sim",
    .transport = sp_transport,
    .create = sp_create,
    .destroy = sp_destroy,
    .add = sp_add,
    .mod = sp_mod,
    .del = sp_del,
    .wait = sp_wait,
};
