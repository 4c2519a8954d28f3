/* httpd_h2_mem.h - a per-worker pool of small blocks for nghttp2's own
 * allocations (httpd_h2_mem.c). One pool per worker, made and freed with
 * the worker's state, used only on that worker's thread. */
#ifndef MUX_HTTPD_HTTPD_H2_MEM_H
#define MUX_HTTPD_HTTPD_H2_MEM_H

#include <nghttp2/nghttp2.h>

struct h2_mem;

/* NULL when out of memory (then sessions use malloc: httpd_h2_mem_of). */
struct h2_mem *httpd_h2_mem_new(void);

/* The allocator to give nghttp2_session_server_new3; NULL for m = NULL
 * (nghttp2's default, malloc). */
nghttp2_mem *httpd_h2_mem_of(struct h2_mem *m);

/* After every session using m was deleted. NULL is ignored. */
void httpd_h2_mem_free(struct h2_mem *m);

#endif
