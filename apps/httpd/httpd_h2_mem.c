/* httpd_h2_mem.c - the allocator mux-httpd gives nghttp2 (nghttp2_mem).
 *
 * nghttp2 allocates several small objects per stream (the stream, the
 * outbound items, a copy of the response fields, header buffers) and frees
 * them when the stream closes. A connection with 100 streams opens and
 * closes them in bursts of up to 100, more than glibc's per-size caches
 * hold, so under h2load most of them went through malloc's slow path (a
 * quarter of the server's time in the profile, docs/httpd.md). Here blocks
 * of up to 1 KiB come from per-worker free lists, one per size class;
 * bigger ones go to malloc as before.
 *
 * Threads: one pool per worker (struct httpd_worker), used only on that
 * worker's thread: a connection's session is created, fed and deleted on
 * its worker. Memory: each list keeps at most H2_MEM_KEEP blocks, so a
 * worker holds at most 1024 x (64 + ... + 1024) bytes = 2 MiB of spares. */
#include "httpd_h2_mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define H2_MEM_CLASSES 5 /* 64, 128, 256, 512, 1024 bytes */
#define H2_MEM_KEEP 1024
#define H2_MEM_BIG 0xffu

/* Before every block: its class (or H2_MEM_BIG) and, for a big one, its
 * size (for realloc). 16 bytes keep the block aligned like malloc's. */
struct h2_blk {
    size_t size;
    unsigned cls;
    unsigned pad_;
};

struct h2_free {
    struct h2_free *next;
};

struct h2_mem {
    nghttp2_mem mem;
    struct h2_free *list[H2_MEM_CLASSES];
    unsigned count[H2_MEM_CLASSES];
};

_Static_assert(sizeof(struct h2_blk) == 16, "block header keeps 16-byte alignment");

static size_t class_size(unsigned cls)
{
    return (size_t)64 << cls;
}

static unsigned class_of(size_t size)
{
    for (unsigned c = 0; c < H2_MEM_CLASSES; c++)
        if (size <= class_size(c))
            return c;
    return H2_MEM_BIG;
}

static void *pool_malloc(size_t size, void *user)
{
    struct h2_mem *m = user;
    unsigned cls = class_of(size);
    struct h2_blk *b;
    if (cls != H2_MEM_BIG && m->list[cls] != NULL) {
        b = (struct h2_blk *)m->list[cls];
        m->list[cls] = ((struct h2_free *)b)->next;
        m->count[cls]--;
    } else {
        size_t body = cls == H2_MEM_BIG ? size : class_size(cls);
        if (body > SIZE_MAX - sizeof(*b))
            return NULL;
        b = malloc(sizeof(*b) + body);
        if (b == NULL)
            return NULL;
    }
    b->cls = cls;
    b->size = size;
    return b + 1;
}

static void pool_free(void *ptr, void *user)
{
    struct h2_mem *m = user;
    if (ptr == NULL)
        return;
    struct h2_blk *b = (struct h2_blk *)ptr - 1;
    unsigned cls = b->cls;
    if (cls == H2_MEM_BIG || m->count[cls] >= H2_MEM_KEEP) {
        free(b);
        return;
    }
    struct h2_free *f = (struct h2_free *)b;
    f->next = m->list[cls];
    m->list[cls] = f;
    m->count[cls]++;
}

static void *pool_calloc(size_t n, size_t size, void *user)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = pool_malloc(n * size, user);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

static void *pool_realloc(void *ptr, size_t size, void *user)
{
    if (ptr == NULL)
        return pool_malloc(size, user);
    if (size == 0) {
        pool_free(ptr, user);
        return NULL;
    }
    struct h2_blk *b = (struct h2_blk *)ptr - 1;
    if (b->cls != H2_MEM_BIG && size <= class_size(b->cls)) {
        b->size = size;
        return ptr; /* it still fits its block */
    }
    void *np = pool_malloc(size, user);
    if (np == NULL)
        return NULL;
    memcpy(np, ptr, b->size < size ? b->size : size);
    pool_free(ptr, user);
    return np;
}

struct h2_mem *httpd_h2_mem_new(void)
{
    struct h2_mem *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->mem = (nghttp2_mem){.mem_user_data = m,
                           .malloc = pool_malloc,
                           .free = pool_free,
                           .calloc = pool_calloc,
                           .realloc = pool_realloc};
    return m;
}

nghttp2_mem *httpd_h2_mem_of(struct h2_mem *m)
{
    return m != NULL ? &m->mem : NULL;
}

void httpd_h2_mem_free(struct h2_mem *m)
{
    if (m == NULL)
        return;
    for (unsigned c = 0; c < H2_MEM_CLASSES; c++) {
        while (m->list[c] != NULL) {
            struct h2_free *f = m->list[c];
            m->list[c] = f->next;
            free(f);
        }
    }
    free(m);
}
