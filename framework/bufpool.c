/* bufpool.c - per-worker free lists of equal-sized blocks. */
#include <stdlib.h>

#include "bufpool.h"
#include "fault.h"

void mux__bufpool_init(struct mux__bufpool *p, size_t block_size, unsigned min_free)
{
    p->block_size = block_size < sizeof(void *) ? sizeof(void *) : block_size;
    p->nfree = p->in_use = p->peak = 0;
    p->min_free = min_free;
    p->free_list = NULL;
}

static void free_one(struct mux__bufpool *p)
{
    void *b = p->free_list;
    p->free_list = *(void **)b;
    p->nfree--;
    free(b);
}

void mux__bufpool_destroy(struct mux__bufpool *p)
{
    while (p->free_list)
        free_one(p);
}

void *mux__bufpool_get(struct mux__bufpool *p)
{
    if (mux__fault(FAULT_ALLOC))
        return NULL;
    void *b = p->free_list;
    if (b) {
        p->free_list = *(void **)b;
        p->nfree--;
    } else if (!(b = malloc(p->block_size))) {
        return NULL;
    }
    if (++p->in_use > p->peak)
        p->peak = p->in_use;
    return b;
}

/* Keeps the block while the free list is smaller than the recent peak. */
void mux__bufpool_put(struct mux__bufpool *p, void *block)
{
    p->in_use--;
    unsigned keep = p->peak > p->min_free ? p->peak : p->min_free;
    if (p->nfree >= keep) {
        free(block);
        return;
    }
    *(void **)block = p->free_list;
    p->free_list = block;
    p->nfree++;
}

void mux__bufpool_trim(struct mux__bufpool *p)
{
    unsigned keep = p->peak > p->min_free ? p->peak : p->min_free;
    while (p->nfree > keep)
        free_one(p);
    p->peak = p->in_use;
}
