/* httpd_fixture.h - what the mux-httpd integration tests share: a temporary
 * document root with known files, starting mux-httpd as a child with a
 * config written next to the root, and a small blocking HTTP/1.1 client
 * over raw sockets (buffered, so pipelined responses are read in order).
 * Every wait is bounded (harness.h deadlines, scaled under valgrind). */
#ifndef MUX_TEST_HTTPD_FIXTURE_H
#define MUX_TEST_HTTPD_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "harness.h"

#define FX_BIG_SIZE (24u << 20) /* big.bin: compared byte for byte */
#define FX_DATA_SIZE 4096       /* data.bin */
#define FX_MEDIUM_SIZE (300u << 10)

/* A mkdtemp directory holding root/ (the document root), outside.txt (a
 * file next to the root that must never be served) and config files.
 * root/: hello.txt, data.bin, medium.bin, big.bin, style.css, pixel.png,
 *   index.html (loads style.css and pixel.png), sub/index.html, sub/a b.txt,
 *   empty/ (no index), link.txt -> hello.txt (inside), escape.txt ->
 *   ../outside.txt (leaves the root), abs.txt -> /etc/hostname. */
struct fixture {
    char dir[128];
    char root[160];
};

/* Creates the tree. 0 or -1. */
int fx_create(struct fixture *f);

/* Removes everything fx_create made (and files written with fx_write). */
void fx_destroy(struct fixture *f);

/* Writes dir/name (or root/name when in_root) with len bytes; returns a
 * static path buffer valid until the next call, or NULL. */
const char *fx_write(const struct fixture *f, bool in_root, const char *name, const void *data,
                     size_t len);

/* The bytes of root/rel, malloc'd (free it); NULL on error. */
char *fx_slurp(const struct fixture *f, const char *rel, size_t *len);

/* The minimal valid 2x1 PNG that pixel.png holds, for the browser test. */
extern const unsigned char fx_png[];
extern const size_t fx_png_len;

/* Starts mux-httpd -r root -l 127.0.0.1:0 -w workers, plus -c with a file
 * holding `config` (libconfig text) when config is not NULL. The child's
 * stderr goes to stderr_path when that is not NULL. The environment
 * variable MUX_TEST_POLLER (epoll, epoll-et, poll, select) picks the
 * poller backend. 0 or -1. */
int fx_start(struct th_child *c, const struct fixture *f, const char *bin, int workers,
             const char *config, const char *stderr_path);

/* SIGTERM and wait; returns the exit code (0 expected). */
int fx_stop(struct th_child *c);

/* The usual group setup: fx_create plus fx_start with 2 workers. 0 or -1. */
int fx_up(struct fixture *f, struct th_child *srv, const char *bin);

/* The matching teardown: stops the server if a failed test left it running
 * (the last test normally stops it and checks the exit code), then
 * fx_destroy. */
void fx_down(struct fixture *f, struct th_child *srv);

/* ---- the client --------------------------------------------------- */

struct hc {
    int fd;
    size_t off, len; /* buffered bytes buf[off, len) */
    char buf[65536];
};

struct hresp {
    int status;
    size_t head_len;
    char head[20000]; /* status line and fields, NUL-terminated */
    char *body;       /* malloc'd (NUL-terminated), body_len bytes */
    size_t body_len;
};

/* Connects to 127.0.0.1:port. 0 or -1. */
int hc_open(struct hc *h, int port);
void hc_close(struct hc *h);

/* Writes the whole string. 0 or -1. */
int hc_send(struct hc *h, const char *req);

/* Reads one response: the head, then Content-Length bytes of body unless
 * no_body (HEAD) or the status has none (304). 0, or -1 on EOF, timeout or
 * a malformed response. Free with hr_free. */
int hc_recv(struct hc *h, struct hresp *r, bool no_body, int timeout_ms);
void hr_free(struct hresp *r);

/* A field's value (first match, case-insensitive) copied into out, or NULL. */
const char *hr_field(const struct hresp *r, const char *name, char *out, size_t size);

/* True when the server closed the connection (EOF or reset) within
 * timeout_ms without sending anything more. The only wait here that is not
 * scaled under valgrind (it also checks that a connection stays open for a
 * while): wrap long waits in FX_MS(). */
#define FX_MS(ms) ((ms) * th_slowdown())
bool hc_closed(struct hc *h, int timeout_ms);

/* One request on a fresh connection, then close. 0 or -1. */
int hc_once(int port, const char *req, struct hresp *r, bool no_body);

#endif
