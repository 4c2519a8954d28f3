/* http_cache.c - the per-worker open-file cache (rules in http_cache.h). */
#include "http_cache.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mime.h"

struct entry {
    struct http_cached pub;
    int64_t checked;   /* the second of the last validation */
    dev_t dev;
    ino_t ino;
    struct timespec mtim, ctim;
    char *mem;         /* content buffer (capacity mem_cap), kept across reloads */
    size_t mem_cap;
    char etag[HTTP_ETAG_MAX];
    char last_modified[HTTP_DATE_LEN + 1];
    size_t key_len;    /* the key's length plus one (its NUL); 0: empty slot */
    char key[HTTP_CACHE_KEY_MAX + 1];
};

struct http_cache {
    struct entry scratch; /* for paths too long to keep */
    struct entry slot[HTTP_CACHE_SLOTS];
};

struct http_cache *http_cache_new(void)
{
    struct http_cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->scratch.pub.fd = -1;
    for (size_t i = 0; i < HTTP_CACHE_SLOTS; i++)
        c->slot[i].pub.fd = -1;
    return c;
}

static void entry_drop(struct entry *e)
{
    if (e->pub.fd >= 0)
        close(e->pub.fd);
    e->pub.fd = -1;
    e->pub.data = NULL;
    e->key_len = 0;
}

void http_cache_free(struct http_cache *c)
{
    if (c == NULL)
        return;
    entry_drop(&c->scratch);
    free(c->scratch.mem);
    for (size_t i = 0; i < HTTP_CACHE_SLOTS; i++) {
        entry_drop(&c->slot[i]);
        free(c->slot[i].mem);
    }
    free(c);
}

/* FNV-1a: short keys, a worker-local table, nothing adversarial to gain
 * beyond evicting entries (which a client can do anyway by asking for many
 * files). */
static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3u;
    return h;
}

static bool same_file(const struct entry *e, const struct stat *st)
{
    return e->dev == st->st_dev && e->ino == st->st_ino &&
           e->pub.facts.size == (uint64_t)st->st_size && e->mtim.tv_sec == st->st_mtim.tv_sec &&
           e->mtim.tv_nsec == st->st_mtim.tv_nsec && e->ctim.tv_sec == st->st_ctim.tv_sec &&
           e->ctim.tv_nsec == st->st_ctim.tv_nsec;
}

/* Reads the whole (small) file into e->mem. */
static int load_memory(struct entry *e, int fd, size_t size)
{
    if (size > e->mem_cap || e->mem == NULL) {
        size_t cap = size > 0 ? size : 1;
        char *p = realloc(e->mem, cap);
        if (p == NULL)
            return -500;
        e->mem = p;
        e->mem_cap = cap;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, e->mem + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -500; /* an I/O error, or the file shrank under us */
        got += (size_t)n;
    }
    return 0;
}

/* Fills e from the freshly opened file f (taking f->fd). */
static int entry_load(struct entry *e, struct http_file *f)
{
    entry_drop(e);
    size_t size = (size_t)f->st.st_size;
    if ((uint64_t)f->st.st_size <= HTTP_CACHE_MEM_MAX) {
        int rc = load_memory(e, f->fd, size);
        close(f->fd);
        if (rc < 0)
            return rc;
        e->pub.data = e->mem;
    } else {
        e->pub.fd = f->fd;
    }
    e->dev = f->st.st_dev;
    e->ino = f->st.st_ino;
    e->mtim = f->st.st_mtim;
    e->ctim = f->st.st_ctim;
    struct http_file_facts *ff = &e->pub.facts;
    ff->size = (uint64_t)f->st.st_size;
    ff->mtime = f->st.st_mtime;
    ff->content_type = mime_type_for(f->name);
    ff->etag_len = http_etag(ff->size, ff->mtime, e->etag);
    ff->etag = e->etag;
    http_date_format(ff->mtime, e->last_modified);
    ff->last_modified = e->last_modified;
    return 0;
}

int http_cache_get(struct http_cache *c, const struct http_root *root, const char *rel,
                   int64_t now_sec, const struct http_cached **out)
{
    size_t n = strlen(rel);
    struct entry *e = &c->scratch;
    bool keep = n <= HTTP_CACHE_KEY_MAX;
    if (keep) {
        e = &c->slot[hash(rel, n) % HTTP_CACHE_SLOTS];
        bool hit = e->key_len == n + 1 && memcmp(e->key, rel, n + 1) == 0;
        if (hit && e->checked == now_sec) {
            *out = &e->pub;
            return 0;
        }
        if (!hit)
            entry_drop(e);
    } else {
        entry_drop(e);
    }
    struct http_file f;
    int rc = http_path_open(root, rel, &f);
    if (rc < 0) {
        entry_drop(e);
        return rc;
    }
    if (e->key_len > 0 && same_file(e, &f.st)) {
        close(f.fd); /* unchanged: keep what is loaded */
    } else {
        rc = entry_load(e, &f);
        if (rc < 0) {
            entry_drop(e);
            return rc;
        }
    }
    if (keep) {
        memcpy(e->key, rel, n + 1);
        e->key_len = n + 1;
    }
    e->checked = now_sec;
    *out = &e->pub;
    return 0;
}
