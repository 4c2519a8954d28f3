/* mime.h - Content-Type from a file name's extension.
 *
 * A fixed, sorted table searched with bsearch; the extension is what follows
 * the last '.' of the last path component, compared case-insensitively.
 * Text types carry "; charset=utf-8". Unknown or missing extensions give
 * application/octet-stream (as nginx's default_type in its shipped config).
 */
#ifndef MUX_HTTPD_MIME_H
#define MUX_HTTPD_MIME_H

#include <stddef.h>

#define MIME_DEFAULT_TYPE "application/octet-stream"

/* Content-Type for the file `name` (a file name or a path; NUL-terminated).
 * Returns a static string; never NULL. */
const char *mime_type_for(const char *name);

/* Content-Type for the bare extension ext[0..n) (no dot), or NULL when the
 * table does not know it. */
const char *mime_type_for_ext(const char *ext, size_t n);

/* The table, for the test that checks its order. */
size_t mime__table_size(void);
const char *mime__table_ext(size_t i);

#endif
