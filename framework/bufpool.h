/* bufpool.h - per-worker free list of equal-sized blocks (private).
 * Input buffers and output chunks come from here, so the hot path does no
 * malloc per message. One thread only: the owning worker. */
#ifndef MUX_BUFPOOL_H
#define MUX_BUFPOOL_H

#include <stddef.h>

struct mux__bufpool {
    size_t block_size;
    unsigned nfree, max_free; /* blocks beyond max_free go back to malloc */
    void *free_list;          /* singly linked through each block's first word */
};

void mux__bufpool_init(struct mux__bufpool *p, size_t block_size, unsigned max_free);
void mux__bufpool_destroy(struct mux__bufpool *p);

/* A block of block_size bytes, or NULL when out of memory. */
void *mux__bufpool_get(struct mux__bufpool *p);
void mux__bufpool_put(struct mux__bufpool *p, void *block);

#endif
