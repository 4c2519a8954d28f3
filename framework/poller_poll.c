/* poller_poll.c - poll(2) backend: a dense pollfd array plus an fd -> index
 * map. Every wait hands the kernel the whole array, so its cost grows with
 * the number of watched fds (the point the seeds make against it). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "poller.h"

struct mux__poller {
    struct pollfd *fds;
    void **ptrs;     /* parallel to fds */
    int *index;      /* fd -> position in fds, -1 if absent */
    int n, cap;      /* entries in fds */
    int index_cap;   /* entries in index */
    int next;        /* where the next scan starts (see pl_wait) */
};

static int pl_create(struct mux__poller **out, bool edge_triggered)
{
    struct mux__poller *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    *out = p;
    return 0;
}

static void pl_destroy(struct mux__poller *p)
{
    free(p->fds);
    free(p->ptrs);
    free(p->index);
    free(p);
}

static short to_poll(uint32_t ev)
{
    short e = 0;
    if (ev & MUX_EV_READ) /* read-hangup only while reading: see poller.h */
        e |= POLLIN | POLLRDHUP;
    if (ev & MUX_EV_WRITE)
        e |= POLLOUT;
    return e;
}

static int grow(struct mux__poller *p, int fd)
{
    if (fd >= p->index_cap) {
        int cap = p->index_cap ? p->index_cap : 64;
        while (cap <= fd)
            cap *= 2;
        int *index = realloc(p->index, (size_t)cap * sizeof(*index));
        if (!index)
            return -ENOMEM;
        for (int i = p->index_cap; i < cap; i++)
            index[i] = -1;
        p->index = index;
        p->index_cap = cap;
    }
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 64;
        struct pollfd *fds = realloc(p->fds, (size_t)cap * sizeof(*fds));
        if (!fds)
            return -ENOMEM;
        p->fds = fds;
        void **ptrs = realloc(p->ptrs, (size_t)cap * sizeof(*ptrs));
        if (!ptrs)
            return -ENOMEM;
        p->ptrs = ptrs;
        p->cap = cap;
    }
    return 0;
}

static int pl_add(struct mux__poller *p, int fd, void *ptr, uint32_t ev)
{
    if (fd < 0)
        return -EBADF;
    int rc = grow(p, fd);
    if (rc < 0)
        return rc;
    if (p->index[fd] >= 0)
        return -EEXIST;
    p->index[fd] = p->n;
    p->fds[p->n] = (struct pollfd){.fd = fd, .events = to_poll(ev)};
    p->ptrs[p->n] = ptr;
    p->n++;
    return 0;
}

static int pl_mod(struct mux__poller *p, int fd, void *ptr, uint32_t ev)
{
    if (fd < 0 || fd >= p->index_cap || p->index[fd] < 0)
        return -ENOENT;
    int i = p->index[fd];
    p->fds[i].events = to_poll(ev);
    p->ptrs[i] = ptr;
    return 0;
}

static void pl_del(struct mux__poller *p, int fd)
{
    if (fd < 0 || fd >= p->index_cap || p->index[fd] < 0)
        return;
    int i = p->index[fd], last = p->n - 1;
    p->fds[i] = p->fds[last];
    p->ptrs[i] = p->ptrs[last];
    p->index[p->fds[i].fd] = i;
    p->index[fd] = -1;
    p->n--;
}

static uint32_t from_poll(short r)
{
    uint32_t e = 0;
    if (r & (POLLIN | POLLRDHUP))
        e |= MUX_EV_READ;
    if (r & POLLRDHUP)
        e |= MUX_EV_RDHUP;
    if (r & POLLOUT)
        e |= MUX_EV_WRITE;
    if (r & (POLLERR | POLLNVAL))
        e |= MUX_EV_ERROR;
    if (r & POLLHUP)
        e |= MUX_EV_HUP;
    return e;
}

/* The scan starts where the last one stopped: with more fds ready than
 * max, the ones past a full batch come first next time instead of
 * starving behind the array's head. */
static int pl_wait(struct mux__poller *p, struct mux__poll_event *ev, int max, int timeout_ms)
{
    int ready = poll(p->fds, (nfds_t)p->n, timeout_ms);
    if (ready < 0)
        return errno == EINTR ? 0 : -errno;
    if (ready == 0)
        return 0;
    int out = 0, i = p->next < p->n ? p->next : 0;
    for (int k = 0; k < p->n && out < max && ready > 0; k++, i = i + 1 < p->n ? i + 1 : 0) {
        short r = p->fds[i].revents;
        if (!r)
            continue;
        ready--;
        ev[out].ptr = p->ptrs[i];
        ev[out].events = from_poll(r);
        out++;
    }
    p->next = i;
    return out;
}

const struct mux__poller_ops mux__poller_poll = {
    .name = "poll",
    .flags = 0,
    .create = pl_create,
    .destroy = pl_destroy,
    .add = pl_add,
    .mod = pl_mod,
    .del = pl_del,
    .wait = pl_wait,
};
