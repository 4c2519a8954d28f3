/* libuv_echo.c - an echo server as a libuv user writes it: one loop, a
 * uv_tcp_t listener, and per connection a read callback that tries
 * uv_try_write first and queues the rest with uv_write. A peer for the
 * churn benchmark (tools/bench/churn.sh); not installed.
 * Prints the same ready line as the mux servers:
 *   libuv_echo [HOST:]PORT   (port 0 = any; loopback only) */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct wreq {
    uv_write_t req;
    uv_buf_t buf;
};

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(hint);
    buf->len = buf->base ? hint : 0;
}

static void on_closed(uv_handle_t *h)
{
    free(h);
}

static void on_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    if (status < 0 && !uv_is_closing((uv_handle_t *)req->handle))
        uv_close((uv_handle_t *)req->handle, on_closed);
    free(w->buf.base);
    free(w);
}

/* Writes what the socket takes now, queues the rest (owning base). */
static void echo_back(uv_stream_t *s, char *base, size_t n)
{
    uv_buf_t b = uv_buf_init(base, (unsigned)n);
    int w = uv_try_write(s, &b, 1);
    size_t done = w > 0 ? (size_t)w : 0;
    if (w < 0 && w != UV_EAGAIN) {
        free(base);
        uv_close((uv_handle_t *)s, on_closed);
        return;
    }
    if (done == n) {
        free(base);
        return;
    }
    struct wreq *q = malloc(sizeof(*q));
    if (!q) {
        free(base);
        uv_close((uv_handle_t *)s, on_closed);
        return;
    }
    memmove(base, base + done, n - done);
    q->buf = uv_buf_init(base, (unsigned)(n - done));
    uv_write(&q->req, s, &q->buf, 1, on_written);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    if (n > 0) {
        echo_back(s, buf->base, (size_t)n);
        return;
    }
    free(buf->base);
    if (n < 0 && !uv_is_closing((uv_handle_t *)s))
        uv_close((uv_handle_t *)s, on_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    uv_tcp_t *c = malloc(sizeof(*c));
    if (!c)
        return;
    uv_tcp_init(server->loop, c);
    if (uv_accept(server, (uv_stream_t *)c) != 0) {
        uv_close((uv_handle_t *)c, on_closed);
        return;
    }
    uv_tcp_nodelay(c, 1);
    uv_read_start((uv_stream_t *)c, on_alloc, on_read);
}

static void on_signal(uv_signal_t *sig, int signum)
{
    (void)signum;
    uv_stop(sig->loop);
}

int main(int argc, char **argv)
{
    const char *arg = argc > 1 ? argv[1] : "0";
    const char *colon = strrchr(arg, ':');
    struct sockaddr_in a;
    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t server;
    uv_signal_t term, intr;
    uv_ip4_addr("127.0.0.1", atoi(colon ? colon + 1 : arg), &a);
    uv_tcp_init(loop, &server);
    if (uv_tcp_bind(&server, (const struct sockaddr *)&a, 0) != 0 ||
        uv_listen((uv_stream_t *)&server, 511, on_connection) != 0) {
        fprintf(stderr, "libuv_echo: cannot listen on %s\n", arg);
        return 1;
    }
    int len = sizeof(a);
    uv_tcp_getsockname(&server, (struct sockaddr *)&a, &len);
    uv_signal_init(loop, &term);
    uv_signal_init(loop, &intr);
    uv_signal_start(&term, on_signal, SIGTERM);
    uv_signal_start(&intr, on_signal, SIGINT);
    printf("listening on 127.0.0.1:%d (libuv %s echo)\n", ntohs(a.sin_port), uv_version_string());
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
