/* inbuf.h - a connection's input buffer with consumed-bytes semantics
 * (private). It holds a pool block only while bytes are pending, grows past
 * one block only when the handler leaves a partial message, and never
 * beyond max_input. While empty it is one NULL pointer: the offsets live in
 * the block's own header, so an idle connection pays 8 bytes for it.
 * One thread only: the owning worker. */
#ifndef MUX_INBUF_H
#define MUX_INBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bufpool.h"

/* The block: this header, then the bytes. max_input is at most 1 GiB, so
 * 32-bit offsets suffice. */
struct mux__inblock {
    uint32_t start;  /* first unconsumed byte */
    uint32_t len;    /* unconsumed bytes */
    uint32_t cap;    /* bytes of data[] */
    uint32_t pooled; /* 1: a pool block (cap = block_size - header), 0: grown by malloc */
    char data[];
};

/* A pool that gives input blocks of n data bytes has blocks of this size. */
#define MUX__INBUF_BLOCK(n) (sizeof(struct mux__inblock) + (n))

struct mux__inbuf {
    struct mux__inblock *blk; /* NULL while empty and idle */
};

/* Room to read into after the pending bytes: returns the pointer and
 * *avail > 0, or NULL with *avail = 0 when max_input bytes are already
 * pending, or NULL with *avail = 1 when out of memory. */
char *mux__inbuf_space(struct mux__inbuf *b, struct mux__bufpool *pool, size_t max_input,
                       size_t *avail);

static inline void mux__inbuf_commit(struct mux__inbuf *b, size_t n)
{
    b->blk->len += (uint32_t)n;
}

/* Pending bytes (0 without a block). */
static inline size_t mux__inbuf_len(const struct mux__inbuf *b)
{
    return b->blk ? b->blk->len : 0;
}

/* The first pending byte (only with a block). */
static inline const char *mux__inbuf_data(const struct mux__inbuf *b)
{
    return b->blk->data + b->blk->start;
}

/* Capacity of the block held (0 without one). */
static inline size_t mux__inbuf_cap(const struct mux__inbuf *b)
{
    return b->blk ? b->blk->cap : 0;
}

/* Drops the first n pending bytes (n <= len). */
void mux__inbuf_consume(struct mux__inbuf *b, size_t n);

/* Returns the block to the pool if nothing is pending. */
void mux__inbuf_release_if_empty(struct mux__inbuf *b, struct mux__bufpool *pool);

/* Frees everything, pending or not. */
void mux__inbuf_free(struct mux__inbuf *b, struct mux__bufpool *pool);

#endif
