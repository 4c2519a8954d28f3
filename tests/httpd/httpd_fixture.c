/* httpd_fixture.c - temporary document root, mux-httpd child, raw HTTP
 * client for the integration tests (see httpd_fixture.h). */
#include "httpd_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* A 2x1 RGB PNG (a red and a blue pixel): signature, IHDR (width 2, height
 * 1, depth 8, colour type 2), IDAT (zlib of two filter-0 scanline bytes +
 * pixels), IEND; every chunk with its CRC-32. */
const unsigned char fx_png[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a,                         /* signature */
    0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x02, /* IHDR */
    0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x7b, 0x40, 0xe8, 0xdd,
    0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, /* IDAT */
    0xcf, 0x00, 0x04, 0xff, 0x01, 0x07, 0x00, 0x01, 0xff, 0xe2, 0x23, 0x9e, 0x59,
    0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82, /* IEND */
};
const size_t fx_png_len = sizeof(fx_png);

/* The page the browser test loads: once the image has loaded and the CSS
 * applied, a script writes both facts into the DOM. */
static const char index_html[] =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>mux</title>\n"
    "<link rel=\"stylesheet\" href=\"style.css\"></head>\n"
    "<body><p id=\"p\">static</p><img id=\"img\" src=\"pixel.png\">\n"
    "<script>\nwindow.addEventListener('load', function () {\n"
    "  var img = document.getElementById('img');\n"
    "  var color = getComputedStyle(document.getElementById('p')).color;\n"
    "  var out = document.createElement('div');\n"
    "  out.id = 'result';\n"
    "  out.textContent = 'loaded:' + img.naturalWidth + ':' + color;\n"
    "  document.body.appendChild(out);\n});\n</script></body></html>\n";

static const char style_css[] = "#p { color: rgb(1, 2, 3); }\n";

static char path_buf[512];

const char *fx_write(const struct fixture *f, bool in_root, const char *name, const void *data,
                     size_t len)
{
    snprintf(path_buf, sizeof path_buf, "%s/%s", in_root ? f->root : f->dir, name);
    int fd = open(path_buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return NULL;
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n <= 0) {
            close(fd);
            return NULL;
        }
        p += n;
        len -= (size_t)n;
    }
    close(fd);
    return path_buf;
}

static int write_random(const struct fixture *f, const char *name, size_t size,
                        unsigned long long seed)
{
    char *data = malloc(size);
    if (data == NULL)
        return -1;
    th_fill_random(data, size, &seed);
    const char *p = fx_write(f, true, name, data, size);
    free(data);
    return p ? 0 : -1;
}

static int make_dirs(const struct fixture *f)
{
    char p[256];
    const char *dirs[] = {"sub", "empty"};
    if (mkdir(f->root, 0755) < 0)
        return -1;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", f->root, dirs[i]);
        if (mkdir(p, 0755) < 0)
            return -1;
    }
    return 0;
}

static int make_links(const struct fixture *f)
{
    char p[256];
    snprintf(p, sizeof p, "%s/link.txt", f->root);
    if (symlink("hello.txt", p) < 0)
        return -1;
    snprintf(p, sizeof p, "%s/escape.txt", f->root);
    if (symlink("../outside.txt", p) < 0)
        return -1;
    snprintf(p, sizeof p, "%s/abs.txt", f->root);
    return symlink("/etc/hostname", p);
}

int fx_create(struct fixture *f)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/mux-httpd-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->root, sizeof f->root, "%s/root", f->dir);
    if (make_dirs(f) < 0 || make_links(f) < 0)
        return -1;
    struct {
        bool in_root;
        const char *name;
        const char *text;
    } texts[] = {
        {false, "outside.txt", "secret outside the root\n"},
        {true, "hello.txt", "hello world\n"},
        {true, "style.css", style_css},
        {true, "index.html", index_html},
        {true, "sub/index.html", "<p>sub index</p>\n"},
        {true, "sub/a b.txt", "space in the name\n"},
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if (!fx_write(f, texts[i].in_root, texts[i].name, texts[i].text, strlen(texts[i].text)))
            return -1;
    if (!fx_write(f, true, "pixel.png", fx_png, fx_png_len))
        return -1;
    if (write_random(f, "data.bin", FX_DATA_SIZE, 11) < 0 ||
        write_random(f, "medium.bin", FX_MEDIUM_SIZE, 12) < 0 ||
        write_random(f, "big.bin", FX_BIG_SIZE, 13) < 0)
        return -1;
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path) < 0 ? -1 : 0;
}

void fx_destroy(struct fixture *f)
{
    if (f->dir[0] != '\0')
        nftw(f->dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    f->dir[0] = '\0';
}

char *fx_slurp(const struct fixture *f, const char *rel, size_t *len)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", f->root, rel);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    char *data = malloc((size_t)st.st_size + 1);
    ssize_t n = data ? read(fd, data, (size_t)st.st_size) : -1;
    close(fd);
    if (n != st.st_size) {
        free(data);
        return NULL;
    }
    data[n] = '\0';
    *len = (size_t)n;
    return data;
}

int fx_start(struct th_child *c, const struct fixture *f, const char *bin, int workers,
             const char *config, const char *stderr_path)
{
    char w[16], conf[PATH_MAX] = "";
    snprintf(w, sizeof w, "%d", workers);
    char *argv[16] = {(char *)bin, "-r", (char *)f->root, "-l", "127.0.0.1:0", "-w", w};
    int n = 7;
    if (config != NULL) {
        static unsigned seq;
        char name[32];
        snprintf(name, sizeof name, "httpd-%u.conf", seq++);
        const char *p = fx_write(f, false, name, config, strlen(config));
        if (p == NULL)
            return -1;
        snprintf(conf, sizeof conf, "%s", p);
        argv[n++] = "-c";
        argv[n++] = conf;
    }
    n = th_poller_args(argv, n);
    argv[n] = NULL;
    int saved = -1;
    if (stderr_path != NULL) { /* the child inherits fd 2 at fork */
        int fd = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        saved = dup(STDERR_FILENO);
        if (fd < 0 || saved < 0)
            return -1;
        dup2(fd, STDERR_FILENO);
        close(fd);
    }
    int rc = th_child_start(c, argv, 10000);
    if (saved >= 0) {
        dup2(saved, STDERR_FILENO);
        close(saved);
    }
    return rc;
}

int fx_stop(struct th_child *c)
{
    return th_child_stop(c, SIGTERM, 15000);
}

int fx_up(struct fixture *f, struct th_child *srv, const char *bin)
{
    if (fx_create(f) < 0)
        return -1;
    return fx_start(srv, f, bin, 2, NULL, NULL);
}

void fx_down(struct fixture *f, struct th_child *srv)
{
    if (srv->pid > 0)
        fx_stop(srv);
    fx_destroy(f);
}

/* ---- client --------------------------------------------------------- */

int hc_open(struct hc *h, int port)
{
    h->off = h->len = 0;
    h->fd = th_connect_tcp("127.0.0.1", port);
    return h->fd >= 0 ? 0 : -1;
}

void hc_close(struct hc *h)
{
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
}

int hc_send(struct hc *h, const char *req)
{
    return th_write_all(h->fd, req, strlen(req), 10000);
}

/* Makes at least one more byte available in buf. 0 or -1. */
static int fill(struct hc *h, long long deadline)
{
    if (h->off > 0) {
        memmove(h->buf, h->buf + h->off, h->len - h->off);
        h->len -= h->off;
        h->off = 0;
    }
    if (h->len == sizeof h->buf)
        return -1;
    long long left = deadline - th_now_ms();
    if (left <= 0)
        return -1;
    ssize_t n = th_read_exact(h->fd, h->buf + h->len, 1, (int)left);
    if (n != 1)
        return -1;
    h->len += 1;
    ssize_t more = recv(h->fd, h->buf + h->len, sizeof h->buf - h->len, MSG_DONTWAIT);
    if (more > 0)
        h->len += (size_t)more;
    return 0;
}

static int read_head(struct hc *h, struct hresp *r, long long deadline)
{
    for (;;) {
        char *end = memmem(h->buf + h->off, h->len - h->off, "\r\n\r\n", 4);
        if (end != NULL) {
            size_t n = (size_t)(end + 4 - (h->buf + h->off));
            if (n >= sizeof r->head)
                return -1;
            memcpy(r->head, h->buf + h->off, n);
            r->head[n] = '\0';
            r->head_len = n;
            h->off += n;
            return sscanf(r->head, "HTTP/1.%*d %d", &r->status) == 1 ? 0 : -1;
        }
        if (h->len - h->off >= sizeof r->head || fill(h, deadline) < 0)
            return -1;
    }
}

static int read_body(struct hc *h, struct hresp *r, size_t len, long long deadline)
{
    r->body = malloc(len + 1);
    if (r->body == NULL)
        return -1;
    size_t got = 0;
    while (got < len) {
        if (h->off == h->len && fill(h, deadline) < 0)
            return -1;
        size_t n = h->len - h->off < len - got ? h->len - h->off : len - got;
        memcpy(r->body + got, h->buf + h->off, n);
        h->off += n;
        got += n;
        if (len - got > sizeof h->buf && h->off == h->len) { /* big: read directly */
            long long left = deadline - th_now_ms();
            ssize_t m = left > 0 ? th_read_exact(h->fd, r->body + got, len - got, (int)left)
                                 : -1;
            if (m != (ssize_t)(len - got))
                return -1;
            got = len;
        }
    }
    r->body[len] = '\0';
    r->body_len = len;
    return 0;
}

int hc_recv(struct hc *h, struct hresp *r, bool no_body, int timeout_ms)
{
    r->body = NULL;
    r->body_len = 0;
    r->status = 0;
    long long deadline = th_now_ms() + (long long)timeout_ms * th_slowdown();
    if (read_head(h, r, deadline) < 0)
        return -1;
    char v[32];
    size_t len = 0;
    if (hr_field(r, "Content-Length", v, sizeof v) != NULL)
        len = strtoull(v, NULL, 10);
    if (no_body || r->status == 304)
        len = 0;
    return read_body(h, r, len, deadline);
}

void hr_free(struct hresp *r)
{
    free(r->body);
    r->body = NULL;
}

const char *hr_field(const struct hresp *r, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p != NULL; p = strstr(p, "\r\n")) {
        p += 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t len = e ? (size_t)(e - v) : strlen(v);
            if (len >= size)
                len = size - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
    }
    return NULL;
}

bool hc_closed(struct hc *h, int timeout_ms)
{
    if (h->off < h->len)
        return false; /* unread response bytes */
    long long deadline = th_now_ms() + timeout_ms; /* not scaled: see the header */
    for (;;) {
        long long left = deadline - th_now_ms();
        struct pollfd p = {.fd = h->fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return false;
        char ch;
        ssize_t n = recv(h->fd, &ch, 1, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n > 0 || (errno != EAGAIN && errno != EINTR))
            return false; /* more bytes: not a clean end after the response */
    }
}

int hc_once(int port, const char *req, struct hresp *r, bool no_body)
{
    struct hc *h = malloc(sizeof *h);
    if (h == NULL || hc_open(h, port) < 0) {
        free(h);
        return -1;
    }
    int rc = hc_send(h, req) == 0 ? hc_recv(h, r, no_body, 10000) : -1;
    hc_close(h);
    free(h);
    return rc;
}
