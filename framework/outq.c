/* outq.c - output chunk queue: append by copying into the tail chunk, export
 * an iovec, advance after partial writes. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "outq.h"

static size_t chunk_capacity(const struct mux__bufpool *pool)
{
    return pool->block_size - sizeof(struct mux__chunk);
}

static struct mux__chunk *new_chunk(struct mux__bufpool *pool)
{
    struct mux__chunk *c = mux__bufpool_get(pool);
    if (!c)
        return NULL;
    c->next = NULL;
    c->start = c->end = 0;
    c->fd = -1;
    c->offset = 0;
    c->remaining = 0;
    return c;
}

static void link_tail(struct mux__outq *q, struct mux__chunk *c)
{
    if (q->tail)
        q->tail->next = c;
    else
        q->head = c;
    q->tail = c;
}

int mux__outq_append(struct mux__outq *q, struct mux__bufpool *pool, const void *buf, size_t len)
{
    const char *p = buf;
    size_t cap = chunk_capacity(pool);
    struct mux__chunk *first_new = NULL, *old_tail = q->tail;
    size_t old_tail_end = old_tail ? old_tail->end : 0;

    while (len > 0) {
        struct mux__chunk *t = q->tail;
        if (!t || t->fd >= 0 || t->end == cap) {
            t = new_chunk(pool);
            if (!t)
                goto oom;
            if (!first_new)
                first_new = t;
            link_tail(q, t);
        }
        size_t n = cap - t->end < len ? cap - t->end : len;
        memcpy(t->data + t->end, p, n);
        t->end += n;
        p += n;
        len -= n;
        q->bytes += n;
    }
    return 0;

oom: /* undo, so a failed send queues nothing */
    for (struct mux__chunk *c = first_new; c;) {
        struct mux__chunk *next = c->next;
        q->bytes -= c->end - c->start;
        mux__bufpool_put(pool, c);
        c = next;
    }
    if (old_tail) {
        q->bytes -= old_tail->end - old_tail_end;
        old_tail->end = old_tail_end;
        old_tail->next = NULL;
    } else {
        q->head = NULL;
    }
    q->tail = old_tail;
    return -ENOMEM;
}

int mux__outq_append_file(struct mux__outq *q, struct mux__bufpool *pool, int fd, off_t offset,
                          size_t len)
{
    struct mux__chunk *c = new_chunk(pool);
    if (!c)
        return -ENOMEM;
    c->fd = fd;
    c->offset = offset;
    c->remaining = len;
    link_tail(q, c);
    q->bytes += len;
    q->files++;
    return 0;
}

int mux__outq_iov(const struct mux__outq *q, struct iovec *iov, int max, size_t *total)
{
    int n = 0;
    *total = 0;
    for (const struct mux__chunk *c = q->head; c && c->fd < 0 && n < max; c = c->next) {
        iov[n].iov_base = (char *)c->data + c->start;
        iov[n].iov_len = c->end - c->start;
        *total += iov[n].iov_len;
        n++;
    }
    return n;
}

static void pop_head(struct mux__outq *q, struct mux__bufpool *pool)
{
    struct mux__chunk *c = q->head;
    q->head = c->next;
    if (!q->head)
        q->tail = NULL;
    if (c->fd >= 0) {
        close(c->fd);
        q->files--;
    }
    mux__bufpool_put(pool, c);
}

void mux__outq_advance(struct mux__outq *q, struct mux__bufpool *pool, size_t n)
{
    q->bytes -= n;
    while (n > 0 && q->head) {
        struct mux__chunk *c = q->head;
        if (c->fd >= 0) {
            size_t k = n < c->remaining ? n : c->remaining;
            c->offset += (off_t)k;
            c->remaining -= k;
            n -= k;
        } else {
            size_t k = n < c->end - c->start ? n : c->end - c->start;
            c->start += k;
            n -= k;
        }
        if ((c->fd >= 0 && c->remaining == 0) || (c->fd < 0 && c->start == c->end))
            pop_head(q, pool);
    }
    /* A zero-length file range finishes as soon as it reaches the head. */
    while (q->head && q->head->fd >= 0 && q->head->remaining == 0)
        pop_head(q, pool);
}

void mux__outq_clear(struct mux__outq *q, struct mux__bufpool *pool)
{
    while (q->head)
        pop_head(q, pool);
    q->bytes = 0;
}
