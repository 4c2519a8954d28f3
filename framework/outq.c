/* outq.c - output chunk queue: append by copying into the tail chunk, export
 * an iovec, advance after partial writes. The list header exists only while
 * a chunk does (q->s == NULL <=> empty). */
#include <errno.h>
#include <stdlib.h>
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

/* The list header, made for the first chunk. */
static struct mux__outq_list *list_of(struct mux__outq *q)
{
    if (!q->s)
        q->s = calloc(1, sizeof(*q->s));
    return q->s;
}

static void link_tail(struct mux__outq_list *s, struct mux__chunk *c)
{
    if (s->tail)
        s->tail->next = c;
    else
        s->head = c;
    s->tail = c;
}

/* Forgets the header once its last chunk went. */
static void drop_if_empty(struct mux__outq *q)
{
    if (q->s && !q->s->head) {
        free(q->s);
        q->s = NULL;
    }
}

int mux__outq_append(struct mux__outq *q, struct mux__bufpool *pool, const void *buf, size_t len)
{
    if (len == 0)
        return 0;
    struct mux__outq_list *s = list_of(q);
    if (!s)
        return -ENOMEM;
    const char *p = buf;
    size_t cap = chunk_capacity(pool);
    struct mux__chunk *first_new = NULL, *old_tail = s->tail;
    size_t old_tail_end = old_tail ? old_tail->end : 0;
    while (len > 0) {
        struct mux__chunk *t = s->tail;
        if (!t || t->fd >= 0 || t->end == cap) {
            t = new_chunk(pool);
            if (!t)
                goto oom;
            if (!first_new)
                first_new = t;
            link_tail(s, t);
        }
        size_t n = cap - t->end < len ? cap - t->end : len;
        memcpy(t->data + t->end, p, n);
        t->end += n;
        p += n;
        len -= n;
        s->bytes += n;
    }
    return 0;
oom: /* undo, so a failed send queues nothing */
    for (struct mux__chunk *c = first_new; c;) {
        struct mux__chunk *next = c->next;
        s->bytes -= c->end - c->start;
        mux__bufpool_put(pool, c);
        c = next;
    }
    if (old_tail) {
        s->bytes -= old_tail->end - old_tail_end;
        old_tail->end = old_tail_end;
        old_tail->next = NULL;
    } else {
        s->head = NULL;
    }
    s->tail = old_tail;
    drop_if_empty(q);
    return -ENOMEM;
}

int mux__outq_append_file(struct mux__outq *q, struct mux__bufpool *pool, int fd, off_t offset,
                          size_t len)
{
    struct mux__outq_list *s = list_of(q);
    struct mux__chunk *c = s ? new_chunk(pool) : NULL;
    if (!c) {
        drop_if_empty(q);
        return -ENOMEM;
    }
    c->fd = fd;
    c->offset = offset;
    c->remaining = len;
    link_tail(s, c);
    s->bytes += len;
    s->files++;
    return 0;
}

int mux__outq_iov(const struct mux__outq *q, struct iovec *iov, int max, size_t *total)
{
    int n = 0;
    *total = 0;
    for (const struct mux__chunk *c = mux__outq_head(q); c && c->fd < 0 && n < max; c = c->next) {
        iov[n].iov_base = (char *)c->data + c->start;
        iov[n].iov_len = c->end - c->start;
        *total += iov[n].iov_len;
        n++;
    }
    return n;
}

static void pop_head(struct mux__outq_list *s, struct mux__bufpool *pool)
{
    struct mux__chunk *c = s->head;
    s->head = c->next;
    if (!s->head)
        s->tail = NULL;
    if (c->fd >= 0) {
        close(c->fd);
        s->files--;
    }
    mux__bufpool_put(pool, c);
}

void mux__outq_advance(struct mux__outq *q, struct mux__bufpool *pool, size_t n)
{
    struct mux__outq_list *s = q->s;
    if (!s)
        return;
    s->bytes -= n;
    while (n > 0 && s->head) {
        struct mux__chunk *c = s->head;
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
            pop_head(s, pool);
    }
    /* A zero-length file range finishes as soon as it reaches the head. */
    while (s->head && s->head->fd >= 0 && s->head->remaining == 0)
        pop_head(s, pool);
    drop_if_empty(q);
}

void mux__outq_clear(struct mux__outq *q, struct mux__bufpool *pool)
{
    if (!q->s)
        return;
    while (q->s->head)
        pop_head(q->s, pool);
    drop_if_empty(q);
}

void mux__outq_splice(struct mux__outq *dst, struct mux__outq *src)
{
    if (!src->s)
        return;
    if (!dst->s) {
        dst->s = src->s;
        src->s = NULL;
        return;
    }
    dst->s->tail->next = src->s->head;
    dst->s->tail = src->s->tail;
    dst->s->bytes += src->s->bytes;
    dst->s->files += src->s->files;
    free(src->s);
    src->s = NULL;
}
