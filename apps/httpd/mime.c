/* mime.c - the extension -> Content-Type table (see mime.h).
 *
 * Keep `types` sorted by extension in ASCII lower case: a test checks the
 * order, and bsearch depends on it.
 */
#include "mime.h"

#include <stdlib.h>
#include <string.h>

#define UTF8 "; charset=utf-8"

struct mime_entry {
    const char *ext;
    const char *type;
};

static const struct mime_entry types[] = {
    {"7z", "application/x-7z-compressed"},
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"bz2", "application/x-bzip2"},
    {"css", "text/css" UTF8},
    {"csv", "text/csv" UTF8},
    {"eot", "application/vnd.ms-fontobject"},
    {"epub", "application/epub+zip"},
    {"flac", "audio/flac"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html" UTF8},
    {"html", "text/html" UTF8},
    {"ico", "image/x-icon"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript" UTF8},
    {"json", "application/json"},
    {"jsonld", "application/ld+json"},
    {"m4a", "audio/mp4"},
    {"manifest", "application/manifest+json"},
    {"map", "application/json"},
    {"md", "text/markdown" UTF8},
    {"mjs", "text/javascript" UTF8},
    {"mov", "video/quicktime"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"mpeg", "video/mpeg"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"rss", "application/rss+xml"},
    {"svg", "image/svg+xml"},
    {"svgz", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain" UTF8},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xhtml", "application/xhtml+xml"},
    {"xml", "text/xml" UTF8},
    {"xz", "application/x-xz"},
    {"yaml", "text/yaml" UTF8},
    {"zip", "application/zip"},
};

/* Longest extension in the table; longer ones cannot match. */
#define EXT_MAX 16

struct key {
    const char *ext; /* lower-cased */
    size_t n;
};

static int compare(const void *k, const void *e)
{
    const struct key *key = k;
    const char *ext = ((const struct mime_entry *)e)->ext;
    size_t len = strlen(ext);
    int c = memcmp(key->ext, ext, key->n < len ? key->n : len);
    if (c != 0)
        return c;
    return (key->n > len) - (key->n < len);
}

const char *mime_type_for_ext(const char *ext, size_t n)
{
    char lower[EXT_MAX];
    if (n == 0 || n > EXT_MAX)
        return NULL;
    for (size_t i = 0; i < n; i++)
        lower[i] = (ext[i] >= 'A' && ext[i] <= 'Z') ? (char)(ext[i] + 32) : ext[i];
    struct key key = {lower, n};
    const struct mime_entry *e =
        bsearch(&key, types, sizeof types / sizeof types[0], sizeof types[0], compare);
    return e != NULL ? e->type : NULL;
}

const char *mime_type_for(const char *name)
{
    const char *base = strrchr(name, '/');
    base = base != NULL ? base + 1 : name;
    const char *dot = strrchr(base, '.');
    if (dot == NULL || dot == base) /* no extension, or a dot file like ".profile" */
        return MIME_DEFAULT_TYPE;
    const char *type = mime_type_for_ext(dot + 1, strlen(dot + 1));
    return type != NULL ? type : MIME_DEFAULT_TYPE;
}

size_t mime__table_size(void)
{
    return sizeof types / sizeof types[0];
}

const char *mime__table_ext(size_t i)
{
    return types[i].ext;
}
