/* outq.h - a connection's output queue (private): a list of pooled memory
 * chunks and file ranges, exported as an iovec for one gather write.
 * While empty it is one NULL pointer: the list's ends and counts are
 * allocated with the first chunk and freed with the last, so an idle
 * connection pays 8 bytes for it. Pure data structure; the write path is
 * conn_write.c. One thread only. */
#ifndef MUX_OUTQ_H
#define MUX_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "bufpool.h"

/* A chunk is one pool block: this header, then data for memory chunks.
 * A file chunk (fd >= 0) uses only the header. */
struct mux__chunk {
    struct mux__chunk *next;
    size_t start, end; /* memory chunk: pending bytes are data[start, end) */
    int fd;            /* file chunk: fd, or -1 for a memory chunk */
    off_t offset;      /* file chunk: next byte to send */
    size_t remaining;  /* file chunk: bytes left to send */
    char data[];
};

/* A non-empty queue: head and tail are never NULL. */
struct mux__outq_list {
    struct mux__chunk *head, *tail;
    size_t bytes;   /* pending, memory and file */
    unsigned files; /* file ranges queued (each holds a descriptor) */
};

struct mux__outq {
    struct mux__outq_list *s; /* NULL while empty */
};

static inline bool mux__outq_empty(const struct mux__outq *q)
{
    return q->s == NULL;
}

/* Pending bytes, memory and file. */
static inline size_t mux__outq_bytes(const struct mux__outq *q)
{
    return q->s ? q->s->bytes : 0;
}

/* The first chunk, or NULL. */
static inline struct mux__chunk *mux__outq_head(const struct mux__outq *q)
{
    return q->s ? q->s->head : NULL;
}

/* Bytes plus one block per file range: what the queue holds on to. */
static inline size_t mux__outq_cost(const struct mux__outq *q, size_t block_size)
{
    return q->s ? q->s->bytes + (size_t)q->s->files * block_size : 0;
}

/* Copies len bytes in. 0 or -ENOMEM (then nothing was queued). */
int mux__outq_append(struct mux__outq *q, struct mux__bufpool *pool, const void *buf, size_t len);

/* Queues a file range; the queue owns fd on success. 0 or -ENOMEM. */
int mux__outq_append_file(struct mux__outq *q, struct mux__bufpool *pool, int fd, off_t offset,
                          size_t len);

/* Fills up to max iovecs with the pending memory bytes in front of the
 * first file chunk; returns the count (0 when the head is a file chunk). */
int mux__outq_iov(const struct mux__outq *q, struct iovec *iov, int max, size_t *total);

/* After the first `count` chunks (all memory), does a file range come next? */
static inline bool mux__outq_file_follows(const struct mux__outq *q, int count)
{
    const struct mux__chunk *c = mux__outq_head(q);
    while (c && count-- > 0)
        c = c->next;
    return c && c->fd >= 0;
}

/* The head chunk if it is a file range, else NULL. */
static inline struct mux__chunk *mux__outq_head_file(const struct mux__outq *q)
{
    struct mux__chunk *h = mux__outq_head(q);
    return h && h->fd >= 0 ? h : NULL;
}

/* Drops n written bytes from the front (memory chunks, or the head file
 * chunk after sendfile), recycling finished chunks and closing their fds. */
void mux__outq_advance(struct mux__outq *q, struct mux__bufpool *pool, size_t n);

/* Drops everything. */
void mux__outq_clear(struct mux__outq *q, struct mux__bufpool *pool);

/* Moves every chunk of src to the end of dst; src is empty after. */
void mux__outq_splice(struct mux__outq *dst, struct mux__outq *src);

#endif
