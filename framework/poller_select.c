/* poller_select.c - select(2) backend. An fd_set holds fds below FD_SETSIZE
 * (1024) only: add() refuses any other fd with -ERANGE rather than writing
 * past the set. Each wait copies both sets and scans 0..maxfd.
 * select has no set for errors alone: an fd watched for neither reading
 * nor writing (a paused connection) learns of a reset only when it is
 * watched again or its timeout fires. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include "poller.h"

struct mux__poller {
    fd_set rd, wr;
    void *ptrs[FD_SETSIZE];
    unsigned char used[FD_SETSIZE];
    int maxfd;
    int next; /* where the next scan starts (see sl_wait) */
};

static int sl_create(struct mux__poller **out, bool edge_triggered)
{
    struct mux__poller *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    FD_ZERO(&p->rd);
    FD_ZERO(&p->wr);
    p->maxfd = -1;
    *out = p;
    return 0;
}

static void sl_destroy(struct mux__poller *p)
{
    free(p);
}

static void set_interest(struct mux__poller *p, int fd, uint32_t ev)
{
    if (ev & MUX_EV_READ)
        FD_SET(fd, &p->rd);
    else
        FD_CLR(fd, &p->rd);
    if (ev & MUX_EV_WRITE)
        FD_SET(fd, &p->wr);
    else
        FD_CLR(fd, &p->wr);
}

static int sl_add(struct mux__poller *p, int fd, void *ptr, uint32_t ev)
{
    if (fd < 0 || fd >= FD_SETSIZE)
        return -ERANGE;
    if (p->used[fd])
        return -EEXIST;
    p->used[fd] = 1;
    p->ptrs[fd] = ptr;
    set_interest(p, fd, ev);
    if (fd > p->maxfd)
        p->maxfd = fd;
    return 0;
}

static int sl_mod(struct mux__poller *p, int fd, void *ptr, uint32_t ev)
{
    if (fd < 0 || fd >= FD_SETSIZE || !p->used[fd])
        return -ENOENT;
    p->ptrs[fd] = ptr;
    set_interest(p, fd, ev);
    return 0;
}

static void sl_del(struct mux__poller *p, int fd)
{
    if (fd < 0 || fd >= FD_SETSIZE || !p->used[fd])
        return;
    p->used[fd] = 0;
    FD_CLR(fd, &p->rd);
    FD_CLR(fd, &p->wr);
    while (p->maxfd >= 0 && !p->used[p->maxfd])
        p->maxfd--;
}

static int sl_wait(struct mux__poller *p, struct mux__poll_event *ev, int max, int timeout_ms)
{
    fd_set rd = p->rd, wr = p->wr;
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    int ready = select(p->maxfd + 1, &rd, &wr, NULL, timeout_ms < 0 ? NULL : &tv);
    if (ready < 0)
        return errno == EINTR ? 0 : -errno;
    if (ready == 0)
        return 0;
    /* Start where the last scan stopped, so fds past a full batch are not
     * starved by lower ones that stay ready. */
    int out = 0, fd = p->next <= p->maxfd ? p->next : 0;
    for (int k = 0; k <= p->maxfd && out < max; k++, fd = fd < p->maxfd ? fd + 1 : 0) {
        uint32_t e = 0;
        if (FD_ISSET(fd, &rd))
            e |= MUX_EV_READ;
        if (FD_ISSET(fd, &wr))
            e |= MUX_EV_WRITE;
        if (!e)
            continue;
        ev[out].ptr = p->ptrs[fd];
        ev[out].events = e;
        out++;
    }
    p->next = fd;
    return out;
}

const struct mux__poller_ops mux__poller_select = {
    .name = "select",
    .flags = MUX_POLLER_FD_LIMIT,
    .create = sl_create,
    .destroy = sl_destroy,
    .add = sl_add,
    .mod = sl_mod,
    .del = sl_del,
    .wait = sl_wait,
};
