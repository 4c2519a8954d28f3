/* http_path.c - path safety for mux-httpd (see http_path.h for the rules).
 *
 * Defence in depth: the textual normalisation already refuses every ".."
 * that climbs above the root, and the open then happens relative to the
 * root fd with the kernel (openat2 RESOLVE_BENEATH) or our own walk
 * refusing any resolution that leaves it, so a symlink planted inside the
 * root cannot lead out either. No absolute path is ever built, so the
 * server's idea of the root cannot be confused by renames of its parents.
 *
 * The fallback walk (kernels before 5.6, or seccomp filters that hide
 * openat2) opens one component at a time with O_PATH | O_NOFOLLOW, reads
 * symlinks itself and keeps a depth counter; ".." at depth 0 is refused.
 * Its one known gap compared with openat2: a directory renamed out of the
 * root while a walk is inside it. That needs write access to the root.
 */
#include "http_path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<linux/openat2.h>) && defined(SYS_openat2)
#include <linux/openat2.h>
#define HAVE_OPENAT2 1
#endif
#endif

#define WALK_MAX_LINKS 40 /* as the kernel's MAXSYMLINKS */
#define OPEN_FLAGS (O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)

/* ---- normalisation --------------------------------------------------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Length of "http://authority" or "https://authority" at the start of an
 * absolute-form target (RFC 7230 5.3.2), else 0. */
static size_t absolute_form_prefix(const char *t, size_t n)
{
    size_t i;
    if (n >= 7 && strncasecmp(t, "http://", 7) == 0)
        i = 7;
    else if (n >= 8 && strncasecmp(t, "https://", 8) == 0)
        i = 8;
    else
        return 0;
    while (i < n && t[i] != '/' && t[i] != '?' && t[i] != '#')
        i++;
    return i;
}

/* The output being built: components each followed by '/', the current
 * (unfinished) one starting at `comp`. */
struct norm {
    char *out;
    size_t size;
    size_t len;
    size_t comp;
};

static int put(struct norm *nm, char c)
{
    if (nm->len + 1 >= nm->size)
        return -414;
    nm->out[nm->len++] = c;
    return 0;
}

/* Finishes the current component: "" and "." vanish, ".." removes the
 * previous one (403 at the root), a name gets its '/' when more follows. */
static int end_component(struct norm *nm, bool more)
{
    const char *c = nm->out + nm->comp;
    size_t n = nm->len - nm->comp;

    if (n == 0)
        return 0;
    if (n == 1 && c[0] == '.') {
        nm->len = nm->comp;
        return 0;
    }
    if (n == 2 && c[0] == '.' && c[1] == '.') {
        if (nm->comp == 0)
            return -403;
        nm->len = nm->comp - 1; /* drop the '/' ending the previous one */
        while (nm->len > 0 && nm->out[nm->len - 1] != '/')
            nm->len--;
        nm->comp = nm->len;
        return 0;
    }
    if (!more)
        return 0;
    int rc = put(nm, '/');
    nm->comp = nm->len;
    return rc;
}

/* Decodes the byte at t[*i] (a plain byte or a %XX escape) into *c. */
static int decode_byte(const char *t, size_t n, size_t *i, char *c)
{
    if (t[*i] != '%') {
        *c = t[(*i)++];
    } else {
        int hi = *i + 2 < n ? hex_value(t[*i + 1]) : -1;
        int lo = *i + 2 < n ? hex_value(t[*i + 2]) : -1;
        if (hi < 0 || lo < 0)
            return -400;
        *c = (char)(hi * 16 + lo);
        *i += 3;
    }
    return *c == '\0' ? -403 : 0;
}

/* RFC 3986 pchar minus pct-encoded, and '/': sent as they are. */
static bool location_safe(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("-._~!$&'()*+,;=:@/", c) != NULL;
}

int http_path_location(const char *rel, size_t n, const char *query, size_t qlen, char *out,
                       size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = 0;
    if (cap < 1)
        return -414;
    out[len++] = '/';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)rel[i];
        if (i == 0 && c == '/')
            continue; /* normalised paths have none; keep the single '/' anyway */
        if (location_safe(c)) {
            if (len + 1 > cap)
                return -414;
            out[len++] = (char)c;
        } else {
            if (len + 3 > cap)
                return -414;
            out[len++] = '%';
            out[len++] = hex[c >> 4];
            out[len++] = hex[c & 15];
        }
    }
    if (len > 1 && out[len - 1] == '/')
        len--; /* "a/" names the directory too: one trailing slash */
    bool slash = len > 1; /* the root is just "/", never "//" */
    if (len + slash + qlen > cap)
        return -414;
    if (slash)
        out[len++] = '/';
    memcpy(out + len, query, qlen);
    return (int)(len + qlen);
}

int http_path_normalize(const char *t, size_t n, char *out, size_t out_size)
{
    struct norm nm = {out, out_size, 0, 0};
    size_t i = absolute_form_prefix(t, n);
    size_t end = i;

    if (out_size == 0)
        return -414;
    while (end < n && t[end] != '?' && t[end] != '#')
        end++;
    if (i == 0 && (end == 0 || t[0] != '/'))
        return -400;
    while (i < end) {
        char c;
        int rc = decode_byte(t, end, &i, &c);
        if (rc == 0)
            rc = c == '/' ? end_component(&nm, true) : put(&nm, c);
        if (rc != 0)
            return rc;
    }
    int rc = end_component(&nm, false);
    if (rc != 0)
        return rc;
    if (nm.len > HTTP_PATH_MAX)
        return -414;
    out[nm.len] = '\0';
    return (int)nm.len;
}

/* ---- opening beneath the root ---------------------------------------- */

static int status_from_errno(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
    case ENXIO: /* a socket, or a device without its driver */
    case ENODEV:
        return -404;
    case EXDEV: /* resolution left the root */
    case ELOOP: /* refused symlink, magic link, or a loop */
    case EACCES:
    case EPERM:
        return -403;
    default: /* EMFILE, ENFILE, ENOMEM, EIO ... */
        return -500;
    }
}

struct walk {
    int dir;        /* O_PATH fd of the directory reached so far */
    unsigned depth; /* how far below the root it is */
    unsigned links; /* symlinks expanded */
    bool no_symlinks;
    int cur; /* which buf holds the remaining path */
    char buf[2][HTTP_PATH_MAX + 1];
};

/* Replaces the remaining path with link target + rest. */
static int expand_link(struct walk *w, int linkfd, const char *rest, const char **p)
{
    char *dst = w->buf[!w->cur];
    if (w->no_symlinks || ++w->links > WALK_MAX_LINKS)
        return -ELOOP;
    ssize_t n = readlinkat(linkfd, "", dst, HTTP_PATH_MAX);
    if (n < 0)
        return -errno;
    if (n >= HTTP_PATH_MAX)
        return -ENAMETOOLONG;
    size_t rest_len = strlen(rest);
    if ((size_t)n + rest_len > HTTP_PATH_MAX)
        return -ENAMETOOLONG;
    if (n == 0 || dst[0] == '/')
        return -EXDEV; /* absolute links are refused, as RESOLVE_BENEATH does */
    memcpy(dst + n, rest, rest_len + 1);
    w->cur = !w->cur;
    *p = dst;
    return 0;
}

/* Reopens the regular file `name` (st from its O_PATH fd) for reading and
 * checks it is still the same inode. Other file types are not served. */
static int open_leaf(struct walk *w, const char *name, const struct stat *st)
{
    if (!S_ISREG(st->st_mode))
        return -ENOENT; /* mapped to 404, as for openat2 + fstat */
    int fd = openat(w->dir, name, OPEN_FLAGS | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat again;
    if (fstat(fd, &again) != 0 || again.st_dev != st->st_dev || again.st_ino != st->st_ino) {
        close(fd);
        return -ENOENT; /* replaced while we looked */
    }
    return fd;
}

/* One component that is not "." or "..": descend into a directory, expand
 * a symlink, or open the final file. `rest` is what follows the component
 * ("" or starting with '/'). Returns 0 to go on with *p, 1 when *done_fd
 * holds the result, or -errno. */
static int walk_step(struct walk *w, const char *name, const char *rest, const char **p,
                     int *done_fd)
{
    int fd = openat(w->dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = fstat(fd, &st) == 0 ? 0 : -errno;
    if (rc == 0 && S_ISDIR(st.st_mode)) {
        close(w->dir);
        w->dir = fd;
        w->depth++;
        *p = rest;
        return 0;
    }
    if (rc == 0 && S_ISLNK(st.st_mode)) {
        rc = expand_link(w, fd, rest, p);
    } else if (rc == 0 && rest[0] != '\0') {
        rc = -ENOTDIR; /* a file used as a directory, or "file/" */
    } else if (rc == 0) {
        rc = open_leaf(w, name, &st);
        if (rc >= 0) {
            *done_fd = rc;
            rc = 1;
        }
    }
    close(fd);
    return rc;
}

static int walk_parent(struct walk *w)
{
    if (w->depth == 0)
        return -EXDEV;
    int fd = openat(w->dir, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    close(w->dir);
    w->dir = fd;
    w->depth--;
    return 0;
}

/* Component by component: returns an fd (O_RDONLY for regular files,
 * O_PATH for directories) or -errno like openat2 would. */
static int walk_loop(struct walk *w, const char *p)
{
    for (;;) {
        char name[NAME_MAX + 1];
        p += strspn(p, "/");
        if (*p == '\0') {
            int fd = w->dir; /* the path named a directory */
            w->dir = -1;
            return fd;
        }
        size_t n = strcspn(p, "/");
        if (n > NAME_MAX)
            return -ENAMETOOLONG;
        memcpy(name, p, n);
        name[n] = '\0';
        p += n;
        int rc = 0, fd = -1;
        if (strcmp(name, "..") == 0)
            rc = walk_parent(w);
        else if (strcmp(name, ".") != 0)
            rc = walk_step(w, name, p, &p, &fd);
        if (rc != 0)
            return rc > 0 ? fd : rc;
    }
}

static int walk_open(const struct http_root *root, const char *path)
{
    struct walk w;
    size_t n = strlen(path);
    if (n > HTTP_PATH_MAX)
        return -ENAMETOOLONG;
    if (path[0] == '/')
        return -EXDEV; /* as RESOLVE_BENEATH */
    w.dir = openat(root->fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (w.dir < 0)
        return -errno;
    w.depth = 0;
    w.links = 0;
    w.no_symlinks = (root->flags & HTTP_PATH_NO_SYMLINKS) != 0;
    w.cur = 0;
    memcpy(w.buf[0], path, n + 1);
    int rc = walk_loop(&w, w.buf[0]);
    if (w.dir >= 0)
        close(w.dir);
    return rc;
}

#ifdef HAVE_OPENAT2
static int sys_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = flags;
    how.resolve = resolve;
    long fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    return fd >= 0 ? (int)fd : -errno;
}
#endif

/* Opens path under the root: an fd (see walk_loop) or -errno. */
static int open_beneath(const struct http_root *root, const char *path)
{
    if (*path == '\0')
        path = ".";
#ifdef HAVE_OPENAT2
    if (root->openat2) {
        uint64_t resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        if (root->flags & HTTP_PATH_NO_SYMLINKS)
            resolve |= RESOLVE_NO_SYMLINKS;
        return sys_openat2(root->fd, path, OPEN_FLAGS, resolve);
    }
#endif
    return walk_open(root, path);
}

static const char *last_component(const char *rel)
{
    const char *slash = strrchr(rel, '/');
    return slash != NULL ? slash + 1 : rel;
}

/* A directory was named: open its index.html, or 403 when there is none. */
static int open_index(const struct http_root *root, const char *rel, struct http_file *f)
{
    char path[HTTP_PATH_MAX + sizeof "/" HTTP_INDEX_NAME];
    size_t n = strlen(rel);
    memcpy(path, rel, n);
    if (n > 0 && rel[n - 1] != '/')
        path[n++] = '/';
    memcpy(path + n, HTTP_INDEX_NAME, sizeof HTTP_INDEX_NAME);

    int fd = open_beneath(root, path);
    if (fd < 0)
        return fd == -ENOENT ? -403 : status_from_errno(-fd);
    if (fstat(fd, &f->st) != 0 || !S_ISREG(f->st.st_mode)) {
        close(fd);
        return -403;
    }
    f->fd = fd;
    f->name = HTTP_INDEX_NAME;
    return 0;
}

int http_path_open(const struct http_root *root, const char *rel, struct http_file *f)
{
    size_t n = strlen(rel);
    f->fd = -1;
    f->name = last_component(rel);
    if (n > HTTP_PATH_MAX)
        return -404;

    int fd = open_beneath(root, rel);
    if (fd < 0)
        return status_from_errno(-fd);
    if (fstat(fd, &f->st) != 0) {
        close(fd);
        return -500;
    }
    if (S_ISDIR(f->st.st_mode)) {
        close(fd);
        if (n > 0 && rel[n - 1] != '/' && (root->flags & HTTP_PATH_DIR_REDIRECT))
            return -301;
        return open_index(root, rel, f);
    }
    if (!S_ISREG(f->st.st_mode)) {
        close(fd);
        return -404;
    }
    f->fd = fd;
    return 0;
}

static bool probe_openat2(int dirfd)
{
#ifdef HAVE_OPENAT2
    int fd = sys_openat2(dirfd, ".", O_PATH | O_CLOEXEC, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
    if (fd < 0)
        return false; /* ENOSYS on old kernels, EPERM under some seccomp filters */
    close(fd);
    return true;
#else
    (void)dirfd;
    return false;
#endif
}

int http_root_open(struct http_root *root, const char *dir, unsigned flags)
{
    root->fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root->fd < 0)
        return -errno;
    root->flags = flags;
    root->openat2 = !(flags & HTTP_PATH_NO_OPENAT2) && probe_openat2(root->fd);
    return 0;
}

void http_root_close(struct http_root *root)
{
    if (root->fd >= 0)
        close(root->fd);
    root->fd = -1;
}
