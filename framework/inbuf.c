/* inbuf.c - input buffer: pooled block while bytes are pending, grown by
 * doubling (up to max_input) only when a handler leaves a partial message. */
#include <stdlib.h>
#include <string.h>

#include "inbuf.h"

static void give_back(struct mux__inbuf *b, struct mux__bufpool *pool)
{
    if (b->cap == pool->block_size)
        mux__bufpool_put(pool, b->data);
    else
        free(b->data);
    b->data = NULL;
    b->cap = b->start = b->len = 0;
}

static int grow(struct mux__inbuf *b, struct mux__bufpool *pool, size_t max_input)
{
    size_t cap = b->cap * 2 > max_input ? max_input : b->cap * 2;
    char *data = malloc(cap);
    if (!data)
        return -1;
    memcpy(data, b->data + b->start, b->len);
    size_t len = b->len;
    give_back(b, pool);
    b->data = data;
    b->cap = cap;
    b->len = len;
    return 0;
}

char *mux__inbuf_space(struct mux__inbuf *b, struct mux__bufpool *pool, size_t max_input,
                       size_t *avail)
{
    if (!b->data) {
        b->data = mux__bufpool_get(pool);
        if (!b->data) {
            *avail = 1;
            return NULL;
        }
        b->cap = pool->block_size;
        b->start = b->len = 0;
    }
    if (b->len >= max_input) {
        *avail = 0;
        return NULL;
    }
    if (b->start > 0 && b->start + b->len == b->cap) { /* slide the partial message down */
        memmove(b->data, b->data + b->start, b->len);
        b->start = 0;
    }
    if (b->len == b->cap && grow(b, pool, max_input) < 0) {
        *avail = 1;
        return NULL;
    }
    size_t room = b->cap - b->start - b->len;
    if (b->len + room > max_input)
        room = max_input - b->len;
    *avail = room;
    return b->data + b->start + b->len;
}

void mux__inbuf_consume(struct mux__inbuf *b, size_t n)
{
    b->start += n;
    b->len -= n;
    if (b->len == 0)
        b->start = 0;
}

void mux__inbuf_release_if_empty(struct mux__inbuf *b, struct mux__bufpool *pool)
{
    if (b->data && b->len == 0)
        give_back(b, pool);
}

void mux__inbuf_free(struct mux__inbuf *b, struct mux__bufpool *pool)
{
    if (b->data)
        give_back(b, pool);
}
