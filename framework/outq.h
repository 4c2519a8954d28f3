/* outq.h - a connection's output queue (private): a list of pooled memory
 * chunks and file ranges, exported as an iovec for one gather write.
 * Pure data structure; the write path is conn_write.c. One thread only. */
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

struct mux__outq {
    struct mux__chunk *head, *tail;
    size_t bytes;   /* pending, memory and file */
    unsigned files; /* file ranges queued (each holds a descriptor) */
};

/* Bytes plus one block per file range: what the queue holds on to. */
static inline size_t mux__outq_cost(const struct mux__outq *q, size_t block_size)
{
    return q->bytes + (size_t)q->files * block_size;
}

static inline bool mux__outq_empty(const struct mux__outq *q)
{
    return q->head == NULL;
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
    const struct mux__chunk *c = q->head;
    while (c && count-- > 0)
        c = c->next;
    return c && c->fd >= 0;
}

/* The head chunk if it is a file range, else NULL. */
static inline struct mux__chunk *mux__outq_head_file(const struct mux__outq *q)
{
    return q->head && q->head->fd >= 0 ? q->head : NULL;
}

/* Drops n written bytes from the front (memory chunks, or the head file
 * chunk after sendfile), recycling finished chunks and closing their fds. */
void mux__outq_advance(struct mux__outq *q, struct mux__bufpool *pool, size_t n);

/* Drops everything. */
void mux__outq_clear(struct mux__outq *q, struct mux__bufpool *pool);

#endif
