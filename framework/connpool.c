/* connpool.c - connections in blocks with a live bitmap (see connpool.h). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "connpool.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#elif defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define POISON(p, n) VALGRIND_MAKE_MEM_NOACCESS(p, n)
#define UNPOISON(p, n) VALGRIND_MAKE_MEM_UNDEFINED(p, n)
#endif
#endif
#ifndef POISON
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define WORDS 2
#define BLOCK_BYTES 16384
#define HEADER_BYTES 64
#define PER_BLOCK_FIT ((BLOCK_BYTES - HEADER_BYTES) / sizeof(struct mux_conn))
#define PER_BLOCK (PER_BLOCK_FIT < 64 * WORDS ? PER_BLOCK_FIT : 64 * WORDS)

struct mux__connblock {
    struct mux__connblock *next, *prev;         /* p->all */
    struct mux__connblock *rnext, *rprev;       /* p->room, while in_room */
    uint64_t live[WORDS];                       /* bit i: slot[i] is handed out */
    unsigned nlive;
    bool in_room;
    struct mux_conn slot[PER_BLOCK];
};

_Static_assert(PER_BLOCK <= 255, "c->slot is a uint8_t");

void mux__connpool_init(struct mux__connpool *p)
{
    memset(p, 0, sizeof(*p));
}

static void unlink_all(struct mux__connpool *p, struct mux__connblock *b)
{
    if (b->prev)
        b->prev->next = b->next;
    else
        p->all = b->next;
    if (b->next)
        b->next->prev = b->prev;
}

static void room_add(struct mux__connpool *p, struct mux__connblock *b)
{
    b->rprev = NULL;
    b->rnext = p->room;
    if (p->room)
        p->room->rprev = b;
    p->room = b;
    b->in_room = true;
}

static void room_remove(struct mux__connpool *p, struct mux__connblock *b)
{
    if (b->rprev)
        b->rprev->rnext = b->rnext;
    else
        p->room = b->rnext;
    if (b->rnext)
        b->rnext->rprev = b->rprev;
    b->in_room = false;
}

/* A new (or the spare) empty block, on both lists. */
static struct mux__connblock *add_block(struct mux__connpool *p)
{
    struct mux__connblock *b = p->spare;
    if (b) {
        p->spare = NULL;
    } else {
        if (!(b = malloc(sizeof(*b))))
            return NULL;
        memset(b, 0, offsetof(struct mux__connblock, slot));
        POISON(b->slot, sizeof(b->slot));
    }
    b->prev = NULL;
    b->next = p->all;
    if (p->all)
        p->all->prev = b;
    p->all = b;
    room_add(p, b);
    return b;
}

static void free_block(struct mux__connblock *b)
{
    UNPOISON(b->slot, sizeof(b->slot));
    free(b);
}

void mux__connpool_destroy(struct mux__connpool *p)
{
    while (p->all) {
        struct mux__connblock *b = p->all;
        p->all = b->next;
        free_block(b);
    }
    if (p->spare)
        free_block(p->spare);
    mux__connpool_init(p);
}

static unsigned first_free(const struct mux__connblock *b)
{
    for (unsigned w = 0; w < WORDS; w++)
        if (~b->live[w])
            return w * 64 + (unsigned)__builtin_ctzll(~b->live[w]);
    return PER_BLOCK;
}

struct mux_conn *mux__connpool_get(struct mux__connpool *p)
{
    struct mux__connblock *b = p->room ? p->room : add_block(p);
    if (!b)
        return NULL;
    unsigned i = first_free(b);
    b->live[i / 64] |= 1ull << (i % 64);
    if (++b->nlive == PER_BLOCK)
        room_remove(p, b);
    p->live++;
    struct mux_conn *c = &b->slot[i];
    UNPOISON(c, sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->slot = (uint8_t)i;
    return c;
}

static struct mux__connblock *block_of(const struct mux_conn *c)
{
    return (struct mux__connblock *)((char *)(c - c->slot) -
                                     offsetof(struct mux__connblock, slot));
}

void mux__connpool_put(struct mux__connpool *p, struct mux_conn *c)
{
    struct mux__connblock *b = block_of(c);
    unsigned i = c->slot;
    b->live[i / 64] &= ~(1ull << (i % 64));
    POISON(c, sizeof(*c));
    p->live--;
    if (!b->in_room)
        room_add(p, b);
    if (--b->nlive > 0)
        return;
    /* Empty: keep one as the spare, free the rest. */
    room_remove(p, b);
    unlink_all(p, b);
    if (p->spare)
        free_block(b);
    else
        p->spare = b;
}

/* The first live slot at or after i in b, or NULL. */
static struct mux_conn *live_from(const struct mux__connblock *b, unsigned i)
{
    for (unsigned w = i / 64; w < WORDS; w++) {
        uint64_t bits = b->live[w];
        if (w == i / 64)
            bits &= ~0ull << (i % 64);
        if (bits)
            return (struct mux_conn *)&b->slot[w * 64 + (unsigned)__builtin_ctzll(bits)];
    }
    return NULL;
}

struct mux_conn *mux__connpool_next(const struct mux__connpool *p, const struct mux_conn *prev)
{
    const struct mux__connblock *b = prev ? block_of(prev) : p->all;
    unsigned i = prev ? prev->slot + 1u : 0;
    for (; b; b = b->next, i = 0) {
        struct mux_conn *c = i < PER_BLOCK ? live_from(b, i) : NULL;
        if (c)
            return c;
    }
    return NULL;
}
