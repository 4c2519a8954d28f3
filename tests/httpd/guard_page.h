/* guard_page.h - place test input right before an unreadable page.
 *
 * The bytes are copied to the very end of a readable mapping that is
 * followed by a PROT_NONE page, so a parser that reads even one byte past
 * the input faults at once (the picohttpparser test trick). Header-only;
 * used by the parser and path tests.
 */
#ifndef MUX_TEST_GUARD_PAGE_H
#define MUX_TEST_GUARD_PAGE_H

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct guarded {
    char *map;
    size_t map_len;
    char *data; /* the copy; data + len is the first unreadable byte */
};

static inline char *guard_copy(struct guarded *g, const void *src, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t readable = (len + page - 1) / page * page;
    if (readable == 0)
        readable = page;
    g->map_len = readable + page;
    g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED)
        abort();
    if (mprotect(g->map + readable, page, PROT_NONE) != 0)
        abort();
    g->data = g->map + readable - len;
    if (len > 0)
        memcpy(g->data, src, len);
    return g->data;
}

static inline void guard_free(struct guarded *g)
{
    munmap(g->map, g->map_len);
    g->map = NULL;
}

#endif
