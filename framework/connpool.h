/* connpool.h - a worker's connections, allocated in blocks (private).
 *
 * Why not malloc: at a million connections malloc's 8-byte header and
 * 16-byte rounding add up to 10 % of a connection, and the worker needs to
 * visit every connection anyway (shutdown), which a list through each
 * connection would cost another 16 bytes. Here a block holds
 * MUX__CONNS_PER_BLOCK connections and a bitmap of the live ones; a
 * connection knows its slot (c->slot), so freeing is O(1) and allocating
 * takes the first block with room (blocks with room are on a list of their
 * own). A block that empties is freed, except one kept as a spare so a
 * connection opened and closed over and over does not churn malloc.
 * Free slots are poisoned for ASan and valgrind, so a use after free is
 * still caught. One thread only: the owning worker. */
#ifndef MUX_CONNPOOL_H
#define MUX_CONNPOOL_H

#include <stddef.h>
#include <stdint.h>

struct mux_conn;
struct mux__connblock;

struct mux__connpool {
    struct mux__connblock *all;  /* every block, newest first */
    struct mux__connblock *room; /* blocks with a free slot */
    struct mux__connblock *spare; /* an empty block kept for reuse, or NULL */
    size_t live;                 /* connections handed out and not yet freed */
};

void mux__connpool_init(struct mux__connpool *p);
/* Frees every block, live connections or not. */
void mux__connpool_destroy(struct mux__connpool *p);

/* A zeroed connection (its slot set), or NULL when out of memory. */
struct mux_conn *mux__connpool_get(struct mux__connpool *p);
void mux__connpool_put(struct mux__connpool *p, struct mux_conn *c);

/* Iteration over the live connections: the first with prev = NULL, then
 * the one after prev; NULL at the end. Nothing may be put while iterating
 * (the worker frees connections only at the end of its loop turn); those
 * got meanwhile may or may not be visited. */
struct mux_conn *mux__connpool_next(const struct mux__connpool *p, const struct mux_conn *prev);

#endif
