/* handoff.c - SPSC ring of fds with an eventfd wake. The acceptor publishes
 * a slot with a release store of tail; the worker reads it after an acquire
 * load, so the fd value is visible before the index that announces it. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "handoff.h"

int mux__handoff_init(struct mux__handoff *h, size_t capacity)
{
    size_t cap = 1;
    while (cap < capacity)
        cap <<= 1;
    h->slots = malloc(cap * sizeof(*h->slots));
    if (!h->slots)
        return -ENOMEM;
    h->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->wake_fd < 0) {
        int e = errno;
        free(h->slots);
        return -e;
    }
    h->mask = cap - 1;
    atomic_init(&h->head, 0);
    atomic_init(&h->tail, 0);
    return 0;
}

void mux__handoff_destroy(struct mux__handoff *h)
{
    int fd;
    while ((fd = mux__handoff_pop(h)) >= 0)
        close(fd);
    close(h->wake_fd);
    free(h->slots);
}

bool mux__handoff_push(struct mux__handoff *h, int fd)
{
    size_t tail = atomic_load_explicit(&h->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&h->head, memory_order_acquire);
    if (tail - head > h->mask)
        return false;
    h->slots[tail & h->mask] = fd;
    atomic_store_explicit(&h->tail, tail + 1, memory_order_release);
    return true;
}

void mux__handoff_wake(struct mux__handoff *h)
{
    uint64_t one = 1;
    /* EAGAIN only when the counter is saturated: a wake is pending anyway. */
    ssize_t n = write(h->wake_fd, &one, sizeof(one));
    (void)n;
}

int mux__handoff_pop(struct mux__handoff *h)
{
    size_t head = atomic_load_explicit(&h->head, memory_order_relaxed);
    size_t tail = atomic_load_explicit(&h->tail, memory_order_acquire);
    if (head == tail)
        return -1;
    int fd = h->slots[head & h->mask];
    atomic_store_explicit(&h->head, head + 1, memory_order_release);
    return fd;
}

void mux__handoff_ack(struct mux__handoff *h)
{
    uint64_t v;
    ssize_t n = read(h->wake_fd, &v, sizeof(v));
    (void)n;
}
