/* bufpool.h - per-worker free list of equal-sized blocks (private).
 * Input buffers and output chunks come from here, so the hot path does no
 * malloc per message. The list keeps as many free blocks as the worker
 * recently had in use (at least min_free), so a busy worker with many
 * connections recycles instead of churning malloc; mux__bufpool_trim(),
 * called about once a second, gives the excess back after a burst.
 * One thread only: the owning worker. */
#ifndef MUX_BUFPOOL_H
#define MUX_BUFPOOL_H

#include <stddef.h>

struct mux__bufpool {
    size_t block_size;
    unsigned nfree;    /* blocks on the free list */
    unsigned in_use;   /* blocks handed out and not yet returned */
    unsigned peak;     /* most in use since the last trim */
    unsigned min_free; /* always keep this many */
    void *free_list;   /* singly linked through each block's first word */
};

void mux__bufpool_init(struct mux__bufpool *p, size_t block_size, unsigned min_free);
void mux__bufpool_destroy(struct mux__bufpool *p);

/* A block of block_size bytes, or NULL when out of memory. */
void *mux__bufpool_get(struct mux__bufpool *p);
void mux__bufpool_put(struct mux__bufpool *p, void *block);

/* Frees free blocks beyond what the last period needed; starts a new one. */
void mux__bufpool_trim(struct mux__bufpool *p);

#endif
