/* load.c - many verified clients in one poll loop (harness.h th_load_run). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "seed.h"

struct lconn {
    int fd;
    unsigned char *payload;
    size_t sent, received;
    bool done;
};

static unsigned char transform(enum th_xform x, unsigned char ch)
{
    if (x == TH_XFORM_UPPER && ch >= 'a' && ch <= 'z')
        return (unsigned char)(ch - 'a' + 'A');
    return ch;
}

static int connect_nonblocking(const char *host, int port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (th_sockaddr(host, port, &ss, &len) < 0)
        return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}


/* One step of sending: a random-sized fragment. */
static int send_some(struct th_load *l, struct lconn *c, unsigned long long *rng)
{
    size_t left = l->bytes_per_conn - c->sent;
    size_t frag = 1 + (size_t)(th_xorshift(rng) % l->max_fragment);
    ssize_t n = send(c->fd, c->payload + c->sent, frag < left ? frag : left,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR || errno == ENOTCONN ? 0 : -1;
    c->sent += (size_t)n;
    return 0;
}

/* Reads what is there and verifies it. 1 mismatch, -1 error, 0 fine. */
static int recv_some(struct th_load *l, struct lconn *c)
{
    unsigned char buf[16384];
    ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (n == 0)
        return -1; /* EOF before everything came back */
    if (c->received + (size_t)n > c->sent)
        return 1; /* more bytes than were sent */
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] != transform(l->xform, c->payload[c->received + (size_t)i]))
            return 1;
    c->received += (size_t)n;
    l->verified_bytes += (unsigned long long)n;
    return 0;
}

static void finish_conn(struct lconn *c, struct pollfd *p)
{
    close(c->fd);
    c->fd = -1;
    c->done = true;
    p->fd = -1;
}

int th_load_run(struct th_load *l)
{
    struct lconn *cs = calloc((size_t)l->conns, sizeof(*cs));
    struct pollfd *ps = calloc((size_t)l->conns, sizeof(*ps));
    unsigned long long rng = l->seed | 1;
    l->verified_bytes = 0;
    l->completed = l->mismatches = l->errors = 0;
    int active = 0;
    for (int i = 0; i < l->conns; i++) {
        cs[i].payload = malloc(l->bytes_per_conn);
        th_fill_random(cs[i].payload, l->bytes_per_conn, &rng);
        cs[i].fd = connect_nonblocking(l->host, l->port);
        ps[i].fd = cs[i].fd;
        if (cs[i].fd < 0) {
            l->errors++;
            cs[i].done = true;
        } else {
            active++;
        }
    }
    long long deadline = th_now_ms() + (long long)l->timeout_ms * th_slowdown();
    while (active > 0 && th_now_ms() < deadline) {
        for (int i = 0; i < l->conns; i++)
            ps[i].events = cs[i].done ? 0 : (short)(POLLIN | (cs[i].sent < l->bytes_per_conn ? POLLOUT : 0));
        int n = poll(ps, (nfds_t)l->conns, 100);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < l->conns && n > 0; i++) {
            struct lconn *c = &cs[i];
            if (c->done || !ps[i].revents)
                continue;
            int rc = 0;
            if (ps[i].revents & POLLOUT)
                rc = send_some(l, c, &rng);
            if (rc == 0 && (ps[i].revents & (POLLIN | POLLHUP | POLLERR)))
                rc = recv_some(l, c);
            if (rc == 0 && c->received == l->bytes_per_conn) {
                l->completed++;
            } else if (rc == 0) {
                continue;
            } else if (rc > 0) {
                l->mismatches++;
            } else {
                l->errors++;
            }
            finish_conn(c, &ps[i]);
            active--;
        }
    }
    for (int i = 0; i < l->conns; i++) {
        if (!cs[i].done) {
            close(cs[i].fd);
            l->errors++;
        }
        free(cs[i].payload);
    }
    free(cs);
    free(ps);
    if (l->completed != l->conns)
        fprintf(stderr, "load: %d/%d completed, %d mismatched, %d errors\n", l->completed,
                l->conns, l->mismatches, l->errors);
    return l->completed == l->conns ? 0 : -1;
}
