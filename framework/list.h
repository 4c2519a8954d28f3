/* list.h - intrusive doubly linked list (circular, with a head node).
 * Used for the worker's connection list and its pending-work list. */
#ifndef MUX_LIST_H
#define MUX_LIST_H

#include <stdbool.h>

#include "compiler.h"

struct mux_list {
    struct mux_list *prev, *next;
};

static inline void mux_list_init(struct mux_list *h)
{
    h->prev = h->next = h;
}

static inline bool mux_list_empty(const struct mux_list *h)
{
    return h->next == h;
}

/* A node that is in no list points at itself (after init or remove). */
static inline bool mux_list_linked(const struct mux_list *n)
{
    return n->next != n;
}

static inline void mux_list_add_tail(struct mux_list *h, struct mux_list *n)
{
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

static inline void mux_list_remove(struct mux_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

/* Moves every node of `from` to the empty list `to`. */
static inline void mux_list_move_all(struct mux_list *from, struct mux_list *to)
{
    mux_list_init(to);
    if (mux_list_empty(from))
        return;
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    mux_list_init(from);
}

#define mux_list_entry(ptr, type, member) container_of(ptr, type, member)

#endif
