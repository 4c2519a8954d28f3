/* httpd_log.c - the access log line (see httpd_log.h). */
#include "httpd_log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static atomic_int log_fd = STDERR_FILENO;
static char log_path[4096]; /* main thread only */

struct line {
    char *buf;
    size_t cap; /* room for text, one '\n' and the NUL are reserved */
    size_t len;
};

static void put(struct line *l, const char *s, size_t n)
{
    if (n > l->cap - l->len)
        n = l->cap - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

/* Escaped copy of s[0..n); stops (with "...") when `room` bytes would be
 * exceeded, keeping `reserve` bytes for what follows. */
static void put_escaped(struct line *l, const char *s, size_t n, size_t reserve)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[4] = {'\\', 'x', hex[ch >> 4], hex[ch & 15]};
        int plain = ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\';
        size_t need = plain ? 1 : 4;
        if (l->len + need + 3 + reserve > l->cap) {
            put(l, "...", 3);
            return;
        }
        put(l, plain ? (const char *)&s[i] : esc, need);
    }
}

size_t httpd_log_format(const struct httpd_log_entry *e, char *out, size_t cap)
{
    struct line l = {out, cap - 2, 0};
    char tmp[96];
    struct tm tm;
    gmtime_r(&e->when, &tm);
    size_t n = strftime(tmp, sizeof tmp, " - - [%d/%b/%Y:%H:%M:%S +0000] \"", &tm);
    put(&l, e->peer, strnlen(e->peer, 80));
    put(&l, tmp, n);
    if (e->method != NULL) {
        put_escaped(&l, e->method, e->method_len > 32 ? 32 : e->method_len, 64);
        put(&l, " ", 1);
        put_escaped(&l, e->target, e->target_len, 48);
        n = e->major_version == 2
                ? (size_t)snprintf(tmp, sizeof tmp, " HTTP/2.0")
                : (size_t)snprintf(tmp, sizeof tmp, " HTTP/1.%d", e->minor_version);
        put(&l, tmp, n);
    } else {
        put(&l, "-", 1);
    }
    n = (size_t)snprintf(tmp, sizeof tmp, "\" %d %" PRIu64, e->status, e->bytes);
    put(&l, tmp, n);
    out[l.len++] = '\n';
    out[l.len] = '\0';
    return l.len;
}

void httpd_log_write(const struct httpd_log_entry *e)
{
    char line[HTTPD_LOG_LINE_MAX];
    size_t n = httpd_log_format(e, line, sizeof line);
    /* one write: lines never interleave */
    ssize_t w = write(atomic_load_explicit(&log_fd, memory_order_relaxed), line, n);
    (void)w;
}

int httpd_log_open(const char *path)
{
    if (strlen(path) >= sizeof(log_path))
        return -ENAMETOOLONG;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int cur = atomic_load_explicit(&log_fd, memory_order_relaxed);
    if (cur == STDERR_FILENO) {
        atomic_store_explicit(&log_fd, fd, memory_order_relaxed);
    } else {
        dup2(fd, cur);
        close(fd);
    }
    snprintf(log_path, sizeof(log_path), "%s", path);
    return 0;
}

int httpd_log_reopen(void)
{
    if (!log_path[0])
        return 0;
    char path[sizeof(log_path)];
    snprintf(path, sizeof(path), "%s", log_path);
    return httpd_log_open(path);
}
