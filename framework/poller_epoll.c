/* poller_epoll.c - the default backend: one epoll instance per worker, level
 * triggered, or edge triggered (EPOLLET) when configured. Cost per wait
 * grows with the ready fds, not with the watched ones. */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "poller.h"

#define BATCH 256

struct mux__poller {
    int epfd;
    uint32_t edge; /* EPOLLET or 0 */
    struct epoll_event events[BATCH];
};

static int ep_create(struct mux__poller **out, bool edge_triggered)
{
    struct mux__poller *p = malloc(sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (p->epfd < 0) {
        int e = errno;
        free(p);
        return -e;
    }
    p->edge = edge_triggered ? EPOLLET : 0;
    *out = p;
    return 0;
}

static void ep_destroy(struct mux__poller *p)
{
    close(p->epfd);
    free(p);
}

static uint32_t to_epoll(const struct mux__poller *p, uint32_t ev)
{
    uint32_t e = p->edge;
    if (ev & MUX_EV_READ) /* read-hangup only while reading: see poller.h */
        e |= EPOLLIN | EPOLLRDHUP;
    if (ev & MUX_EV_WRITE)
        e |= EPOLLOUT;
    return e;
}

static int ep_ctl(struct mux__poller *p, int op, int fd, void *ptr, uint32_t ev)
{
    struct epoll_event e = {.events = to_epoll(p, ev), .data.ptr = ptr};
    return epoll_ctl(p->epfd, op, fd, &e) < 0 ? -errno : 0;
}

static int ep_add(struct mux__poller *p, int fd, void *ptr, uint32_t ev)
{
    return ep_ctl(p, EPOLL_CTL_ADD, fd, ptr, ev);
}

static int ep_mod(struct mux__poller *p, int fd, void *ptr, uint32_t ev)
{
    return ep_ctl(p, EPOLL_CTL_MOD, fd, ptr, ev);
}

static void ep_del(struct mux__poller *p, int fd)
{
    epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static int ep_wait(struct mux__poller *p, struct mux__poll_event *ev, int max, int timeout_ms)
{
    int n = epoll_wait(p->epfd, p->events, max < BATCH ? max : BATCH, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        uint32_t e = p->events[i].events, out = 0;
        if (e & (EPOLLIN | EPOLLRDHUP))
            out |= MUX_EV_READ;
        if (e & EPOLLRDHUP)
            out |= MUX_EV_RDHUP;
        if (e & EPOLLOUT)
            out |= MUX_EV_WRITE;
        if (e & EPOLLERR)
            out |= MUX_EV_ERROR;
        if (e & EPOLLHUP)
            out |= MUX_EV_HUP;
        ev[i].ptr = p->events[i].data.ptr;
        ev[i].events = out;
    }
    return n;
}

const struct mux__poller_ops mux__poller_epoll = {
    .name = "epoll",
    .flags = MUX_POLLER_CAN_EDGE,
    .create = ep_create,
    .destroy = ep_destroy,
    .add = ep_add,
    .mod = ep_mod,
    .del = ep_del,
    .wait = ep_wait,
};
