/* http_cache.h - a per-worker cache of open files: what http_path_open()
 * found for a normalised path, kept so that a hot file costs no openat2,
 * fstat, read or close per request.
 *
 * An entry holds the file's facts (size, mtime, Content-Type, the ETag and
 * Last-Modified values already formatted) and either the whole content in
 * memory (files up to HTTP_CACHE_MEM_MAX bytes: sent in the same gather
 * write as the head) or an open descriptor (bigger files: sent with
 * sendfile from a dup of it).
 *
 * Freshness: an entry is used as it is within the second (of the clock the
 * caller passes) it was last checked in; the first use in a later second
 * resolves the path again with http_path_open() (so symlink, permission and
 * root-escape rules are re-applied) and compares device, inode, size,
 * mtime and ctime (with nanoseconds); any change reloads the entry, and an
 * error drops it. A change is therefore seen at most about a second late
 * (nginx's open_file_cache_valid, at its shortest).
 *
 * Bounds: HTTP_CACHE_SLOTS entries, direct-mapped by a hash of the path (a
 * colliding path replaces the entry), so at most HTTP_CACHE_SLOTS
 * descriptors and HTTP_CACHE_SLOTS * HTTP_CACHE_MEM_MAX bytes of content
 * per cache. Paths longer than HTTP_CACHE_KEY_MAX are not kept: they go
 * through a scratch entry reloaded on every call.
 *
 * Threads: one cache per worker thread, no locking; every call on a cache
 * must come from the thread that uses it. Allocation happens only when an
 * entry is (re)loaded, never on a hit.
 */
#ifndef MUX_HTTPD_HTTP_CACHE_H
#define MUX_HTTPD_HTTP_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "http_date.h"
#include "http_path.h"
#include "http_response.h"

#define HTTP_CACHE_SLOTS 256
#define HTTP_CACHE_MEM_MAX (16u << 10)
#define HTTP_CACHE_KEY_MAX 240

/* What a lookup gives: valid until the next call on the same cache. */
struct http_cached {
    const char *data; /* the whole file when size <= HTTP_CACHE_MEM_MAX, else NULL */
    int fd;           /* otherwise a descriptor owned by the cache (-1 with data):
                         dup it to hand it on */
    struct http_file_facts facts; /* size, mtime, type, ETag, Last-Modified */
};

struct http_cache;

/* A new empty cache, or NULL when out of memory. */
struct http_cache *http_cache_new(void);

/* Closes every descriptor and frees the cache. NULL is allowed. */
void http_cache_free(struct http_cache *c);

/* Looks up rel (a result of http_path_normalize(), NUL-terminated) under
 * root, loading or revalidating the entry as described above; now_sec is
 * the caller's clock in seconds (any monotonic one). Returns 0 and sets
 * *out, or the negated status http_path_open() gives (-301, -403, -404,
 * -500). */
int http_cache_get(struct http_cache *c, const struct http_root *root, const char *rel,
                   int64_t now_sec, const struct http_cached **out);

#endif
