/* bufpool.c - per-worker free lists of equal-sized blocks. */
#include <stdlib.h>

#include "bufpool.h"

void mux__bufpool_init(struct mux__bufpool *p, size_t block_size, unsigned max_free)
{
    p->block_size = block_size < sizeof(void *) ? sizeof(void *) : block_size;
    p->nfree = 0;
    p->max_free = max_free;
    p->free_list = NULL;
}

void mux__bufpool_destroy(struct mux__bufpool *p)
{
    while (p->free_list) {
        void *next = *(void **)p->free_list;
        free(p->free_list);
        p->free_list = next;
    }
    p->nfree = 0;
}

void *mux__bufpool_get(struct mux__bufpool *p)
{
    void *b = p->free_list;
    if (!b)
        return malloc(p->block_size);
    p->free_list = *(void **)b;
    p->nfree--;
    return b;
}

void mux__bufpool_put(struct mux__bufpool *p, void *block)
{
    if (p->nfree >= p->max_free) {
        free(block);
        return;
    }
    *(void **)block = p->free_list;
    p->free_list = block;
    p->nfree++;
}
