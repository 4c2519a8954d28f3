/* http_path.h - from a request-target to an open file inside the root.
 *
 * Two steps, usable separately:
 *   http_path_normalize(): percent-decode, drop query and fragment, collapse
 *     "//", resolve "." and ".." textually. Pure string work, no syscalls.
 *   http_path_open(): open the normalised path relative to the root
 *     directory fd so that nothing outside the root can be reached, with
 *     openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) where the kernel has
 *     it and a component-by-component openat(O_NOFOLLOW) walk otherwise.
 * Errors are negated HTTP statuses, as in http_parse.h.
 *
 * Rules (nginx behaviour unless the design asks otherwise):
 *  - "%2F" decodes to '/' and "%2E" to '.', so encoded dots and slashes are
 *    normalised like plain ones; a malformed escape is 400; "%00" (or a raw
 *    NUL) is 403; a ".." that would climb above the root is 403.
 *  - A backslash is an ordinary file-name byte on Linux (no traversal).
 *  - Symlinks: relative symlinks whose target stays inside the root are
 *    followed; a symlink leaving the root, any absolute symlink (even one
 *    pointing back inside), and /proc-style magic links give 403.
 *    HTTP_PATH_NO_SYMLINKS refuses every symlink (nginx
 *    "disable_symlinks on").
 *  - A directory is served as its index.html; a directory without one is
 *    403 (nginx without autoindex). With HTTP_PATH_DIR_REDIRECT a directory
 *    requested without a trailing slash gives 301 instead (nginx), and the
 *    caller sends Location: target + "/".
 *  - Only regular files are served; other types (FIFOs, sockets, devices)
 *    are 404. Files are opened O_NONBLOCK so a FIFO never blocks a worker.
 */
#ifndef MUX_HTTPD_HTTP_PATH_H
#define MUX_HTTPD_HTTP_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* Longest normalised path (bytes, without the NUL); longer is 414. */
#define HTTP_PATH_MAX 4096
#define HTTP_INDEX_NAME "index.html"

#define HTTP_PATH_NO_SYMLINKS 0x1u  /* refuse every symlink (403) */
#define HTTP_PATH_DIR_REDIRECT 0x2u /* "/dir" -> 301 instead of its index */
#define HTTP_PATH_NO_OPENAT2 0x4u   /* force the openat walk (tests) */

struct http_root {
    int fd;         /* O_PATH | O_DIRECTORY descriptor of the root */
    unsigned flags; /* HTTP_PATH_* */
    bool openat2;   /* the kernel has a usable openat2(2) */
};

/* Opens `dir` as the root and probes openat2 once. Thread-safe afterwards:
 * http_path_open() only reads the struct. Returns 0 or -errno. */
int http_root_open(struct http_root *root, const char *dir, unsigned flags);

/* Closes the root fd (idempotent). */
void http_root_close(struct http_root *root);

/* Normalises the request-target t[0..n) (origin-form "/a/b?q" or
 * absolute-form "http://host/a/b") into out: a path relative to the root,
 * no leading '/', single '/' separators, no "." or ".." components. It
 * ends with '/' when the target named a directory explicitly ("/a/",
 * "/a/.", "/a/b/.."); the root itself is "". out is NUL-terminated.
 * out_size must be at least min(n + 1, HTTP_PATH_MAX + 1) for the result
 * to fit. Returns the length of out (>= 0), or -400 (malformed escape,
 * target not starting with '/'), -403 (NUL, climbing above the root),
 * -414 (longer than HTTP_PATH_MAX or out_size). */
int http_path_normalize(const char *t, size_t n, char *out, size_t out_size);

/* The Location of a directory redirect, built from the normalised path
 * rel[0..n) (never from the raw target, so "//host/.." cannot become a
 * protocol-relative URL): "/" + rel + "/" + query[0..qlen), where query is
 * empty or starts with '?'. Bytes of rel outside RFC 3986 pchar ('%', '\\',
 * controls, spaces, non-ASCII, ...) are percent-encoded, so the value can
 * neither split a header nor start with "//" or "/\\". Returns its length,
 * or -414 when it does not fit in out[0..cap). No NUL is written. */
int http_path_location(const char *rel, size_t n, const char *query, size_t qlen, char *out,
                       size_t cap);

/* The file that was opened: fd is O_RDONLY | O_NONBLOCK | O_CLOEXEC and
 * owned by the caller; st is its fstat; name is the last path component
 * used for the Content-Type (points into `rel` or at HTTP_INDEX_NAME). */
struct http_file {
    int fd;
    struct stat st;
    const char *name;
};

/* Opens rel (a result of http_path_normalize) under root. On success
 * returns 0 and fills *f (a regular file; a directory is replaced by its
 * index). Otherwise f->fd is -1 and the result is -301 (directory without
 * trailing slash, HTTP_PATH_DIR_REDIRECT only), -403 (outside the root,
 * refused symlink, permission, directory without index), -404 (missing,
 * not a directory in the middle, name too long, not a regular file) or
 * -500 (out of fds or memory). Blocking filesystem calls, no allocation. */
int http_path_open(const struct http_root *root, const char *rel, struct http_file *f);

#endif
