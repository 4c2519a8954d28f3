/* inbuf.c - input buffer: pooled block while bytes are pending, grown by
 * doubling (up to max_input) only when a handler leaves a partial message. */
#include <stdlib.h>
#include <string.h>

#include "inbuf.h"

static void give_back(struct mux__inbuf *b, struct mux__bufpool *pool)
{
    if (b->blk->pooled)
        mux__bufpool_put(pool, b->blk);
    else
        free(b->blk);
    b->blk = NULL;
}

static int grow(struct mux__inbuf *b, struct mux__bufpool *pool, size_t max_input)
{
    struct mux__inblock *old = b->blk;
    size_t cap = (size_t)old->cap * 2 > max_input ? max_input : (size_t)old->cap * 2;
    struct mux__inblock *blk = malloc(sizeof(*blk) + cap);
    if (!blk)
        return -1;
    memcpy(blk->data, old->data + old->start, old->len);
    blk->start = 0;
    blk->len = old->len;
    blk->cap = (uint32_t)cap;
    blk->pooled = 0;
    give_back(b, pool);
    b->blk = blk;
    return 0;
}

/* A pool block, empty. */
static int take_block(struct mux__inbuf *b, struct mux__bufpool *pool)
{
    struct mux__inblock *blk = mux__bufpool_get(pool);
    if (!blk)
        return -1;
    blk->start = blk->len = 0;
    blk->cap = (uint32_t)(pool->block_size - sizeof(*blk));
    blk->pooled = 1;
    b->blk = blk;
    return 0;
}

char *mux__inbuf_space(struct mux__inbuf *b, struct mux__bufpool *pool, size_t max_input,
                       size_t *avail)
{
    if (!b->blk && take_block(b, pool) < 0) {
        *avail = 1;
        return NULL;
    }
    struct mux__inblock *k = b->blk;
    if (k->len >= max_input) {
        *avail = 0;
        return NULL;
    }
    if (k->start > 0 && k->start + k->len == k->cap) { /* slide the partial message down */
        memmove(k->data, k->data + k->start, k->len);
        k->start = 0;
    }
    if (k->len == k->cap) {
        if (grow(b, pool, max_input) < 0) {
            *avail = 1;
            return NULL;
        }
        k = b->blk;
    }
    size_t room = k->cap - k->start - k->len;
    if (k->len + room > max_input)
        room = max_input - k->len;
    *avail = room;
    return k->data + k->start + k->len;
}

void mux__inbuf_consume(struct mux__inbuf *b, size_t n)
{
    struct mux__inblock *k = b->blk;
    if (n == 0)
        return; /* also without a block */
    k->start += (uint32_t)n;
    k->len -= (uint32_t)n;
    if (k->len == 0)
        k->start = 0;
}

void mux__inbuf_release_if_empty(struct mux__inbuf *b, struct mux__bufpool *pool)
{
    if (b->blk && b->blk->len == 0)
        give_back(b, pool);
}

void mux__inbuf_free(struct mux__inbuf *b, struct mux__bufpool *pool)
{
    if (b->blk)
        give_back(b, pool);
}
