/* inbuf.h - a connection's input buffer with consumed-bytes semantics
 * (private). It holds a pool block only while bytes are pending, grows past
 * one block only when the handler leaves a partial message, and never
 * beyond max_input. One thread only: the owning worker. */
#ifndef MUX_INBUF_H
#define MUX_INBUF_H

#include <stdbool.h>
#include <stddef.h>

#include "bufpool.h"

struct mux__inbuf {
    char *data;      /* NULL while empty and idle */
    size_t start;    /* first unconsumed byte */
    size_t len;      /* unconsumed bytes */
    size_t cap;
};

/* Room to read into at data+start+len: returns the pointer and *avail > 0,
 * or NULL with *avail = 0 when max_input bytes are already pending, or NULL
 * with *avail = 1 when out of memory. */
char *mux__inbuf_space(struct mux__inbuf *b, struct mux__bufpool *pool, size_t max_input,
                       size_t *avail);

static inline void mux__inbuf_commit(struct mux__inbuf *b, size_t n)
{
    b->len += n;
}

static inline const char *mux__inbuf_data(const struct mux__inbuf *b)
{
    return b->data + b->start;
}

/* Drops the first n pending bytes (n <= len). */
void mux__inbuf_consume(struct mux__inbuf *b, size_t n);

/* Returns the block to the pool if nothing is pending. */
void mux__inbuf_release_if_empty(struct mux__inbuf *b, struct mux__bufpool *pool);

/* Frees everything, pending or not. */
void mux__inbuf_free(struct mux__inbuf *b, struct mux__bufpool *pool);

#endif
