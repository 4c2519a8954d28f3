/* test_tls.c - TLS end to end, with clients nobody here wrote.
 *
 * A test CA and a server certificate are made at run time with the openssl
 * CLI (no key is committed). Then:
 *   - `openssl s_client` (TLS 1.3 and 1.2) round trips random bytes through
 *     mux-echo --tls-cert/--tls-key;
 *   - `curl --cacert` fetches a random file from mux-httpd over HTTPS and
 *     must have negotiated ALPN http/1.1;
 *   - headless Chromium, trusting exactly the server key's SPKI, loads a
 *     page and its script from mux-httpd over HTTPS;
 *   - tls_client.py (Python's ssl module over memory BIOs) drives an
 *     in-process server whose handler echoes, shuts its writing down or
 *     closes on command, so the server side is observed directly: records
 *     split at every byte, garbage and a TLS 1.1 client, a stalled
 *     handshake, a peer vanishing without close_notify, close_notify on
 *     close and on shutdown_write, a PROXY header before the handshake, a
 *     graceful shutdown in mid-conversation (mux-echo), 1000 concurrent
 *     connections with every byte verified (900 with select: FD_SETSIZE);
 *   - an OpenSSL client asking for a key update while the server's socket
 *     is full;
 *   - mux_conn_alpn: an OpenSSL client offering h2, http/1.1, both (in
 *     either order), an unknown protocol or nothing gets the protocol the
 *     server chose (its order: h2,http/1.1) or none, the same from
 *     on_accept to on_close; plain TCP gets none;
 *   - bad certificate or key files (exit 2, also under -t) and SIGHUP
 *     serving a renewed certificate (and keeping it when the next is bad).
 * Poller: MUX_TEST_POLLER (every backend is a ctest variant). A case whose
 * client tool is missing is skipped. Seed: MUX_TEST_SEED (printed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "harness.h"
#include "inproc.h"

#define IDLE_MS 1500 /* the in-process server's idle timeout: its handshake deadline too */

static struct {
    char dir[200], ca[300], cert[300], key[300], spki[128];
    bool have_openssl;
    struct th_inproc srv;  /* idle timeout IDLE_MS */
    struct th_inproc wide; /* no idle timeout: connections wait for the others */
    struct th_inproc proxied; /* server.proxy_protocol too */
    struct th_inproc deep;    /* write_high_water far above what a socket holds */
    struct th_inproc alpn;    /* ALPN h2,http/1.1; alpn_handler */
    struct th_inproc plain;   /* no TLS; alpn_handler */
    bool srv_up, wide_up, proxied_up, deep_up, alpn_up, plain_up;
    unsigned long long seed;
} fx;

/* ---- the in-process server's handler ---- */

struct tconn {
    char tail[8]; /* the last bytes read, for commands split across reads */
    size_t tlen;
    bool shut;
};

static atomic_ulong n_accepted, n_closed_ok, n_closed_reset, n_closed_other, after_shut;
static atomic_ulong n_proxied; /* connections whose peer is the PROXY header's 192.0.2.7:4711 */

static int t_accept(struct mux_conn *c)
{
    struct tconn *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    mux_conn_set_data(c, t);
    atomic_fetch_add(&n_accepted, 1);
    char peer[MUX_ADDR_MAX];
    if (strcmp(mux_conn_peer_str(c, peer, sizeof peer), "192.0.2.7:4711") == 0)
        atomic_fetch_add(&n_proxied, 1);
    return 0;
}

static bool ends_with(const struct tconn *t, const char *cmd)
{
    size_t n = strlen(cmd);
    return t->tlen >= n && memcmp(t->tail + t->tlen - n, cmd, n) == 0;
}

static size_t t_read(struct mux_conn *c, const char *data, size_t len)
{
    struct tconn *t = mux_conn_data(c);
    if (t->shut) {
        atomic_fetch_add(&after_shut, len);
        return len;
    }
    if (mux_conn_send(c, data, len) < 0)
        return len;
    for (size_t i = 0; i < len; i++) { /* keep the last 8 bytes */
        if (t->tlen == sizeof(t->tail)) {
            memmove(t->tail, t->tail + 1, sizeof(t->tail) - 1);
            t->tlen--;
        }
        t->tail[t->tlen++] = data[i];
    }
    if (ends_with(t, "SHUT\n")) {
        t->shut = true;
        mux_conn_shutdown_write(c);
    } else if (ends_with(t, "CLOSE\n")) {
        mux_conn_close(c);
    }
    return len;
}

static void t_close(struct mux_conn *c, int err)
{
    free(mux_conn_data(c));
    if (err == 0)
        atomic_fetch_add(&n_closed_ok, 1);
    else if (err == ECONNRESET)
        atomic_fetch_add(&n_closed_reset, 1);
    else
        atomic_fetch_add(&n_closed_other, 1);
}

static const struct mux_handler tls_handler = {
    .name = "tls-test",
    .on_accept = t_accept,
    .on_read = t_read,
    .on_close = t_close,
};

/* ---- the ALPN handler: answers any input with "ALPN=<protocol>\n"
 * ("-" for none) and closes; counts calls whose answer changed between
 * on_accept, on_read and on_close. ---- */

struct aconn {
    char proto[256];
    size_t len;
    bool none;
};

static atomic_ulong alpn_changed, alpn_closed;

static bool alpn_same(const struct mux_conn *c, const struct aconn *a)
{
    size_t len = 99;
    const char *p = mux_conn_alpn(c, &len);
    if (!p)
        return a->none && len == 0;
    return !a->none && len == a->len && memcmp(p, a->proto, len) == 0;
}

static int a_accept(struct mux_conn *c)
{
    struct aconn *a = calloc(1, sizeof(*a));
    if (!a)
        return ENOMEM;
    size_t len = 99;
    const char *p = mux_conn_alpn(c, &len);
    a->none = p == NULL;
    if (p == NULL && len != 0)
        atomic_fetch_add(&alpn_changed, 1); /* NULL must come with 0 */
    if (p && len > 0 && len < sizeof(a->proto)) {
        memcpy(a->proto, p, len);
        a->len = len;
    }
    mux_conn_set_data(c, a);
    return 0;
}

static size_t a_read(struct mux_conn *c, const char *data, size_t len)
{
    (void)data;
    struct aconn *a = mux_conn_data(c);
    if (!alpn_same(c, a))
        atomic_fetch_add(&alpn_changed, 1);
    char line[300];
    int n = a->none ? snprintf(line, sizeof line, "ALPN=-\n")
                    : snprintf(line, sizeof line, "ALPN=%.*s\n", (int)a->len, a->proto);
    mux_conn_send(c, line, (size_t)n);
    mux_conn_close(c);
    return len;
}

static void a_close(struct mux_conn *c, int err)
{
    (void)err;
    struct aconn *a = mux_conn_data(c);
    if (a && !alpn_same(c, a))
        atomic_fetch_add(&alpn_changed, 1);
    free(a);
    atomic_fetch_add(&alpn_closed, 1);
}

static const struct mux_handler alpn_handler = {
    .name = "alpn-test",
    .on_accept = a_accept,
    .on_read = a_read,
    .on_close = a_close,
};

/* ---- helpers ---- */

static bool tool(const char *name, char *path, size_t size)
{
    const char *p = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", p ? p : "/usr/bin:/bin");
    for (char *save, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(path, size, "%s/%s", d, name);
        if (access(path, X_OK) == 0)
            return true;
    }
    return false;
}

static int sh(const char *cmd, char *out, size_t size)
{
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    return th_run_capture(argv, out, size, 60000);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* The CA, the server's certificate (localhost, 127.0.0.1) signed by it, and
 * the base64 SHA-256 of the server key's SPKI (Chromium's pin). */
static bool make_certs(void)
{
    char cmd[4096], out[4096];
    snprintf(fx.ca, sizeof fx.ca, "%s/ca.pem", fx.dir);
    snprintf(fx.cert, sizeof fx.cert, "%s/cert.pem", fx.dir);
    snprintf(fx.key, sizeof fx.key, "%s/key.pem", fx.dir);
    snprintf(cmd, sizeof cmd,
             "cd %s && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n"
             "basicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext.cnf && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout ca.key -out ca.pem -days 2 -subj /CN=mux-test-ca && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem "
             "-out req.csr -subj /CN=localhost && "
             "openssl x509 -req -in req.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out cert.pem -days 2 -extfile ext.cnf && "
             "openssl x509 -req -in req.csr -CA ca.pem -CAkey ca.key -set_serial 4242 "
             "-out cert2.pem -days 2 -extfile ext.cnf",
             fx.dir);
    if (sh(cmd, out, sizeof out) != 0) {
        fprintf(stderr, "cannot make the test certificates:\n%s\n", out);
        return false;
    }
    snprintf(cmd, sizeof cmd,
             "openssl pkey -in %s -pubout -outform der | openssl dgst -sha256 -binary | "
             "openssl base64 -A",
             fx.key);
    if (sh(cmd, out, sizeof out) != 0)
        return false;
    snprintf(fx.spki, sizeof fx.spki, "%.*s", (int)strcspn(out, "\r\n"), out);
    return strlen(fx.spki) == 44;
}

static const char *poller(void)
{
    return th_poller();
}

static int group_setup(void **state)
{
    (void)state;
    const char *s = getenv("MUX_TEST_SEED");
    fx.seed = s ? strtoull(s, NULL, 0) : (unsigned long long)time(NULL) ^ (unsigned)getpid();
    printf("seed %llu (MUX_TEST_SEED replays), poller %s\n", fx.seed, poller());
    snprintf(fx.dir, sizeof fx.dir, "/tmp/mux-tls-XXXXXX");
    if (!mkdtemp(fx.dir))
        return -1;
    char path[512];
    fx.have_openssl = tool("openssl", path, sizeof path) && make_certs();
    if (!fx.have_openssl)
        return 0;
    struct mux_options o;
    mux_options_init(&o);
    o.workers = 2;
    o.idle_timeout_ms = IDLE_MS;
    /* Reads smaller than a record: OpenSSL keeps the rest of a decrypted
     * record, which no readiness event will report. */
    o.read_buffer = 512 + (size_t)(fx.seed % 4096);
    o.shutdown_grace_ms = 2000;
    snprintf(o.listen[0], sizeof o.listen[0], "127.0.0.1:0");
    const char *b = poller();
    o.edge_triggered = strcmp(b, "epoll-et") == 0;
    snprintf(o.poller, sizeof o.poller, "%s", o.edge_triggered ? "epoll" : b);
    snprintf(o.tls_cert, sizeof o.tls_cert, "%.255s", fx.cert);
    snprintf(o.tls_key, sizeof o.tls_key, "%.255s", fx.key);
    if (th_inproc_start(&fx.srv, &o, &tls_handler, NULL) < 0)
        return -1;
    fx.srv_up = true;
    o.idle_timeout_ms = 0;
    if (th_inproc_start(&fx.wide, &o, &tls_handler, NULL) < 0)
        return -1;
    fx.wide_up = true;
    o.proxy_protocol = true;
    if (th_inproc_start(&fx.proxied, &o, &tls_handler, NULL) < 0)
        return -1;
    fx.proxied_up = true;
    o.proxy_protocol = false;
    o.write_high_water = 64 << 20;
    o.write_low_water = 1 << 20;
    if (th_inproc_start(&fx.deep, &o, &tls_handler, NULL) < 0)
        return -1;
    fx.deep_up = true;
    mux_options_init(&o); /* the defaults again */
    o.workers = 2;
    o.idle_timeout_ms = IDLE_MS;
    o.edge_triggered = strcmp(b, "epoll-et") == 0;
    snprintf(o.poller, sizeof o.poller, "%s", o.edge_triggered ? "epoll" : b);
    snprintf(o.listen[0], sizeof o.listen[0], "127.0.0.1:0");
    if (th_inproc_start(&fx.plain, &o, &alpn_handler, NULL) < 0)
        return -1;
    fx.plain_up = true;
    snprintf(o.tls_cert, sizeof o.tls_cert, "%.255s", fx.cert);
    snprintf(o.tls_key, sizeof o.tls_key, "%.255s", fx.key);
    snprintf(o.tls_alpn, sizeof o.tls_alpn, "h2,http/1.1");
    if (th_inproc_start(&fx.alpn, &o, &alpn_handler, NULL) < 0)
        return -1;
    fx.alpn_up = true;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    int rc = 0;
    if (fx.srv_up)
        rc = th_inproc_stop(&fx.srv);
    if (fx.wide_up && th_inproc_stop(&fx.wide) != 0)
        rc = -1;
    if (fx.proxied_up && th_inproc_stop(&fx.proxied) != 0)
        rc = -1;
    if (fx.deep_up && th_inproc_stop(&fx.deep) != 0)
        rc = -1;
    if (fx.alpn_up && th_inproc_stop(&fx.alpn) != 0)
        rc = -1;
    if (fx.plain_up && th_inproc_stop(&fx.plain) != 0)
        rc = -1;
    char cmd[512], out[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", fx.dir);
    sh(cmd, out, sizeof out);
    return rc;
}

static void need_openssl(void)
{
    if (!fx.have_openssl)
        skip();
}

/* A mux app with TLS on the test's poller (plus flag and value, when
 * given); the ready line must say tls. */
static void start_app_with(struct th_child *ch, const char *bin, const char *flag,
                           const char *value)
{
    char *argv[24];
    int n = 0;
    argv[n++] = (char *)bin;
    n = th_server_args(argv, n);
    argv[n++] = "--tls-cert";
    argv[n++] = fx.cert;
    argv[n++] = "--tls-key";
    argv[n++] = fx.key;
    if (flag) {
        argv[n++] = (char *)flag;
        argv[n++] = (char *)value;
    }
    argv[n] = NULL;
    assert_int_equal(th_child_start(ch, argv, 10000), 0);
    if (!strstr(ch->ready, "tls"))
        fail_msg("ready line without tls: %s", ch->ready);
}

static void start_app(struct th_child *ch, const char *bin, const char *root)
{
    start_app_with(ch, bin, root ? "-r" : NULL, root);
}

/* ---- openssl s_client against mux-echo ---- */

/* Writes msg to `to` while reading as many bytes back from `from` (the
 * echo must not fill the pipe while we still write). Bytes read, or -1. */
static ssize_t pump(int to, int from, const unsigned char *msg, unsigned char *got, size_t len,
                    int timeout_ms)
{
    size_t sent = 0, recvd = 0;
    fcntl(to, F_SETFL, O_NONBLOCK);
    long long deadline = th_now_ms() + timeout_ms;
    while (recvd < len && th_now_ms() < deadline) {
        struct pollfd p[2] = {{.fd = from, .events = POLLIN},
                              {.fd = sent < len ? to : -1, .events = POLLOUT}};
        if (poll(p, 2, 100) < 0)
            return -1;
        if (p[1].revents & POLLOUT) {
            ssize_t w = write(to, msg + sent, len - sent);
            if (w > 0)
                sent += (size_t)w;
        }
        if (p[0].revents & (POLLIN | POLLHUP)) {
            ssize_t r = read(from, got + recvd, len - recvd);
            if (r <= 0)
                return (ssize_t)recvd;
            recvd += (size_t)r;
        }
    }
    return (ssize_t)recvd;
}

/* Runs s_client with pipes: sends msg, reads it back, closes its stdin and
 * expects a clean exit. */
static void s_client_round_trip(const struct th_child *ch, const char *version,
                                const unsigned char *msg, size_t len)
{
    char target[96];
    snprintf(target, sizeof target, "127.0.0.1:%d", ch->port);
    char *argv[] = {"openssl", "s_client", "-connect", target, "-CAfile", fx.ca,
                    "-verify_return_error", "-verify_hostname", "localhost",
                    "-servername", "localhost", (char *)version, "-quiet", "-no_ign_eof",
                    "-nocommands", NULL};
    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        int null = open("/dev/null", O_WRONLY); /* its verify chatter */
        if (null >= 0)
            dup2(null, 2);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        execvp("openssl", argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    unsigned char *got = malloc(len);
    assert_non_null(got);
    ssize_t n = pump(in[1], out[0], msg, got, len, 10000 * th_slowdown());
    if (n != (ssize_t)len || memcmp(got, msg, len) != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("s_client %s: %zd of %zu bytes echoed, or wrong", version, n, len);
    }
    free(got);
    close(in[1]); /* EOF: s_client sends close_notify and exits */
    int status = 0;
    long long t0 = th_now_ms();
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (th_now_ms() - t0 > 10000) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("s_client did not exit");
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL); /* polling a child's exit: no event to wait on */
    }
    close(out[0]);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_s_client(void **state)
{
    (void)state;
    need_openssl();
    struct th_child ch;
    start_app(&ch, MUX_ECHO_BIN, NULL);
    unsigned long long rng = fx.seed | 1;
    static unsigned char msg[200000];
    size_t len = 1 + (size_t)(fx.seed % sizeof msg);
    th_fill_random(msg, len, &rng);
    s_client_round_trip(&ch, "-tls1_3", msg, len);
    s_client_round_trip(&ch, "-tls1_2", msg, len / 3 + 1);
    assert_int_equal(th_child_stop(&ch, SIGTERM, 10000), 0);
}

/* mux-proxy terminating TLS in front of a plain mux-echo: the client's
 * bytes cross both hops and come back, over TLS 1.3 and 1.2. */
static void test_proxy_terminates_tls(void **state)
{
    (void)state;
    need_openssl();
    char *eargv[12];
    int n = 0;
    eargv[n++] = MUX_ECHO_BIN;
    n = th_server_args(eargv, n);
    eargv[n] = NULL;
    struct th_child backend, proxy;
    assert_int_equal(th_child_start(&backend, eargv, 10000), 0);
    if (strstr(backend.ready, "tls"))
        fail_msg("the backend must be plain: %s", backend.ready);
    char b[96];
    snprintf(b, sizeof b, "127.0.0.1:%d", backend.port);
    start_app_with(&proxy, MUX_PROXY_BIN, "-b", b);
    unsigned long long rng = fx.seed ^ 0x5a5a5a5aULL;
    static unsigned char msg[300000];
    size_t len = 1 + (size_t)((fx.seed >> 7) % sizeof msg);
    th_fill_random(msg, len, &rng);
    s_client_round_trip(&proxy, "-tls1_3", msg, len);
    s_client_round_trip(&proxy, "-tls1_2", msg, len / 2 + 1);
    assert_int_equal(th_child_stop(&proxy, SIGTERM, 10000), 0);
    assert_int_equal(th_child_stop(&backend, SIGTERM, 10000), 0);
}

/* ---- curl and Chromium against mux-httpd ---- */

static void test_curl(void **state)
{
    (void)state;
    need_openssl();
    char bin[512];
    if (!tool("curl", bin, sizeof bin))
        skip();
    char root[300], file[400], got[400];
    snprintf(root, sizeof root, "%s/root", fx.dir);
    mkdir(root, 0755);
    unsigned long long rng = fx.seed + 7;
    size_t len = 1 + (size_t)(fx.seed % 300000);
    char *body = malloc(len);
    assert_non_null(body);
    th_fill_random(body, len, &rng);
    snprintf(file, sizeof file, "%s/file.bin", root);
    write_file(file, body, len);
    struct th_child ch;
    start_app(&ch, MUX_HTTPD_BIN, root);
    char url[128], resolve[128], cmd[2048], out[8192];
    snprintf(url, sizeof url, "https://localhost:%d/file.bin", ch.port);
    snprintf(resolve, sizeof resolve, "localhost:%d:127.0.0.1", ch.port);
    snprintf(got, sizeof got, "%s/got.bin", fx.dir);
    snprintf(cmd, sizeof cmd,
             "curl -sS -v --http1.1 --cacert %s --resolve %s -o %s -w 'version=%%{http_version}\\n' %s 2>&1",
             fx.ca, resolve, got, url);
    int rc = sh(cmd, out, sizeof out);
    assert_int_equal(th_child_stop(&ch, SIGTERM, 10000), 0);
    if (rc != 0)
        fail_msg("curl exit %d:\n%s", rc, out);
    if (!strstr(out, "version=1.1"))
        fail_msg("not HTTP/1.1:\n%s", out);
    /* (--http1.1: mux-httpd offers h2 first; HTTP/2 has its own tests.)
     * curl's verbose ALPN line: "ALPN: server accepted http/1.1" (older:
     * "ALPN, server accepted to use http/1.1") */
    const char *alpn = strstr(out, "server accepted");
    if (!alpn || !strstr(alpn, "http/1.1") || strstr(alpn, "http/1.1") - alpn > 20)
        fail_msg("ALPN http/1.1 not negotiated:\n%s", out);
    FILE *f = fopen(got, "rb");
    assert_non_null(f);
    char *back = malloc(len + 1);
    size_t n = fread(back, 1, len + 1, f);
    fclose(f);
    assert_int_equal(n, len);
    assert_memory_equal(back, body, len);
    free(back);
    free(body);
}

static void test_chromium(void **state)
{
    (void)state;
    need_openssl();
    char bin[512];
    if (!tool("chromium", bin, sizeof bin) && !tool("chromium-browser", bin, sizeof bin))
        skip();
    if (th_under_valgrind())
        skip(); /* a browser under valgrind's child tracing would take minutes */
    char root[300], path[400], token[64];
    snprintf(root, sizeof root, "%s/web", fx.dir);
    mkdir(root, 0755);
    snprintf(token, sizeof token, "tok%llx", fx.seed * 2654435761ull);
    const char *page = "<!doctype html><html><head><title>t</title></head><body>"
                       "<p id=r>waiting</p><script src=\"/app.js\"></script></body></html>\n";
    snprintf(path, sizeof path, "%s/index.html", root);
    write_file(path, page, strlen(page));
    char js[256];
    int jl = snprintf(js, sizeof js,
                      "document.getElementById('r').textContent='%s-'+location.protocol;\n", token);
    snprintf(path, sizeof path, "%s/app.js", root);
    write_file(path, js, (size_t)jl);
    struct th_child ch;
    start_app(&ch, MUX_HTTPD_BIN, root);
    char profile[400], spki[200], url[128];
    snprintf(profile, sizeof profile, "--user-data-dir=%s/chromium-profile", fx.dir);
    snprintf(spki, sizeof spki, "--ignore-certificate-errors-spki-list=%s", fx.spki);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/", ch.port);
    char *argv[] = {bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", profile, spki, "--dump-dom",
                    url, NULL};
    static char out[1 << 20];
    int rc = th_run_capture(argv, out, sizeof out, 90000);
    assert_int_equal(th_child_stop(&ch, SIGTERM, 10000), 0);
    if (rc != 0)
        fail_msg("chromium exit %d:\n%s", rc, out);
    char want[128];
    snprintf(want, sizeof want, "%s-https:", token);
    if (!strstr(out, want))
        fail_msg("the page's script did not run over HTTPS (%s):\n%s", want, out);
}

/* ---- certificate errors and reload ---- */

/* Bad files stop the program before it binds, under -t too: exit 2 with
 * the file and the reason. */
static void test_bad_files(void **state)
{
    (void)state;
    need_openssl();
    char missing[300], cmd[2048], out[4096];
    snprintf(missing, sizeof missing, "%s/missing.pem", fx.dir);
    const struct {
        const char *cert, *key, *says;
    } cases[] = {
        {missing, fx.key, "No such file"},
        {fx.key, fx.key, "no PEM certificate chain"},  /* a key where the chain belongs */
        {fx.cert, fx.cert, "no usable PEM private key"},
        {fx.ca, fx.key, "does not match"},             /* the CA's certificate, our key */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int t = 0; t < 2; t++) {
            snprintf(cmd, sizeof cmd, "%s %s -l 127.0.0.1:0 --tls-cert %s --tls-key %s 2>&1",
                     MUX_ECHO_BIN, t ? "-t" : "", cases[i].cert, cases[i].key);
            int rc = sh(cmd, out, sizeof out);
            if (rc != 2 || !strstr(out, cases[i].says) || strstr(out, "listening on"))
                fail_msg("%s: exit %d, wanted 2 and \"%s\":\n%s", cmd, rc, cases[i].says, out);
        }
    snprintf(cmd, sizeof cmd, "%s -t --tls-cert %s 2>&1", MUX_ECHO_BIN, fx.cert);
    assert_int_equal(sh(cmd, out, sizeof out), 2); /* a certificate without its key */
    snprintf(cmd, sizeof cmd, "%s -t --tls-cert %s --tls-key %s 2>&1", MUX_ECHO_BIN, fx.cert,
             fx.key);
    assert_int_equal(sh(cmd, out, sizeof out), 0);
}

/* The serial number of the certificate the server at port presents. */
static void served_serial(int port, char *serial, size_t size)
{
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd,
             "openssl s_client -connect 127.0.0.1:%d -servername localhost </dev/null "
             "2>/dev/null | openssl x509 -noout -serial",
             port);
    serial[0] = '\0';
    if (sh(cmd, out, sizeof out) == 0)
        snprintf(serial, size, "%.*s", (int)strcspn(out, "\r\n"), out);
}

static bool file_has(const char *path, const char *text)
{
    char buf[16384] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, text) != NULL;
}

/* SIGHUP re-reads the files: a renewed certificate is served to new
 * connections; a broken one is logged and the running one kept. */
static void test_reload(void **state)
{
    (void)state;
    need_openssl();
    char live[300], conf[300], log[300], cert2[300], cmd[2048], out[1024];
    snprintf(live, sizeof live, "%s/live.pem", fx.dir);
    snprintf(cert2, sizeof cert2, "%s/cert2.pem", fx.dir);
    snprintf(conf, sizeof conf, "%s/reload.conf", fx.dir);
    snprintf(log, sizeof log, "%s/reload.log", fx.dir);
    snprintf(cmd, sizeof cmd, "cp %s %s", fx.cert, live);
    assert_int_equal(sh(cmd, out, sizeof out), 0);
    char text[1024];
    int tl = snprintf(text, sizeof text, "server = {\n  tls_cert = \"%s\";\n  tls_key = \"%s\";\n};\n",
                      live, fx.key);
    write_file(conf, text, (size_t)tl);
    char *argv[24];
    int n = 0;
    argv[n++] = MUX_ECHO_BIN;
    n = th_server_args(argv, n);
    argv[n++] = "-c";
    argv[n++] = conf;
    argv[n++] = "--log-file";
    argv[n++] = log;
    argv[n] = NULL;
    struct th_child ch;
    assert_int_equal(th_child_start(&ch, argv, 10000), 0);
    char first[64], now[64];
    served_serial(ch.port, first, sizeof first);
    assert_true(strncmp(first, "serial=", 7) == 0);
    assert_string_not_equal(first, "serial=1092");

    snprintf(cmd, sizeof cmd, "cp %s %s.new && mv %s.new %s", cert2, live, live, live);
    assert_int_equal(sh(cmd, out, sizeof out), 0);
    kill(ch.pid, SIGHUP);
    long long t0 = th_now_ms();
    do /* the reload happens on the server's main thread: ask until it shows */
        served_serial(ch.port, now, sizeof now);
    while (strcmp(now, "serial=1092") != 0 && th_now_ms() - t0 < 10000LL * th_slowdown());
    assert_string_equal(now, "serial=1092"); /* 4242 */

    write_file(live, "not a certificate\n", 18);
    kill(ch.pid, SIGHUP);
    t0 = th_now_ms();
    while (!file_has(log, "the running certificate is kept") &&
           th_now_ms() - t0 < 10000LL * th_slowdown()) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL); /* polling the log file: no event to wait on */
    }
    assert_true(file_has(log, "the running certificate is kept"));
    served_serial(ch.port, now, sizeof now);
    assert_string_equal(now, "serial=1092");
    assert_int_equal(th_child_stop(&ch, SIGTERM, 10000), 0);
}

/* ---- Python's ssl module against the in-process server ---- */

struct totals {
    uint64_t handshakes, failures, timeouts;
};

static struct totals totals_of(const struct th_inproc *srv)
{
    struct totals t = {0};
    struct mux_stats *st = mux_server_stats(srv->s);
    assert_non_null(st);
    for (unsigned i = 0; i < st->workers; i++) {
        t.handshakes += st->worker[i].tls_handshakes;
        t.failures += st->worker[i].tls_handshake_failures;
        t.timeouts += st->worker[i].closed_by[MUX_CLOSE_TIMEOUT];
    }
    free(st);
    return t;
}

static struct totals totals(void)
{
    return totals_of(&fx.srv);
}

/* The counters are published once per worker loop turn: wait (bounded)
 * until cond holds. */
#define EVENTUALLY(cond)                                                                      \
    do {                                                                                      \
        long long t0_ = th_now_ms();                                                         \
        while (!(cond) && th_now_ms() - t0_ < 5000LL * th_slowdown()) {               \
            struct timespec ts_ = {0, 5 * 1000 * 1000};                                       \
            nanosleep(&ts_, NULL);                                                            \
        }                                                                                     \
        if (!(cond))                                                                          \
            fail_msg("never true: %s", #cond);                                                \
    } while (0)

static void python_case_on(const struct th_inproc *srv, const char *name, const char *arg)
{
    need_openssl();
    char py[512];
    if (!tool("python3", py, sizeof py))
        skip();
    char port[16], seed[32];
    snprintf(port, sizeof port, "%d", srv->port);
    snprintf(seed, sizeof seed, "%llu", fx.seed);
    char *argv[] = {py, TLS_CLIENT_PY, (char *)name, (char *)srv->host, port, fx.ca, seed,
                    (char *)arg, NULL};
    static char out[65536];
    int rc = th_run_capture(argv, out, sizeof out, 120000);
    if (out[0])
        printf("%s", out);
    if (rc != 0)
        fail_msg("tls_client.py %s: exit %d", name, rc);
}

static void python_case(const char *name, const char *arg)
{
    python_case_on(&fx.srv, name, arg);
}

static void test_fragmented(void **state)
{
    (void)state;
    unsigned long ok = atomic_load(&n_closed_ok), acc = atomic_load(&n_accepted);
    python_case("fragment", "0");
    /* TLS 1.2 and 1.3, each ended by the client's close_notify: orderly */
    EVENTUALLY(atomic_load(&n_closed_ok) >= ok + 2);
    assert_int_equal(atomic_load(&n_accepted), acc + 2);
}

static void test_garbage(void **state)
{
    (void)state;
    struct totals t0 = totals();
    unsigned long acc = atomic_load(&n_accepted);
    python_case("garbage", "0");
    EVENTUALLY(totals().failures >= t0.failures + 4);
    /* only the good client reached on_accept */
    assert_int_equal(atomic_load(&n_accepted), acc + 1);
}

/* Half a ClientHello, then silence, on a server of its own: one worker,
 * so the clients served meanwhile share the staller's thread, and a
 * handshake deadline (its idle timeout) scaled for valgrind: the served
 * clients' own handshakes run against the same deadline and must not be
 * the ones cut off on a slow machine. */
static void test_stalled_handshake(void **state)
{
    (void)state;
    need_openssl();
    struct mux_options o;
    mux_options_init(&o);
    o.workers = 1;
    o.idle_timeout_ms = IDLE_MS * (unsigned)th_slowdown();
    snprintf(o.listen[0], sizeof o.listen[0], "127.0.0.1:0");
    const char *b = poller();
    o.edge_triggered = strcmp(b, "epoll-et") == 0;
    snprintf(o.poller, sizeof o.poller, "%s", o.edge_triggered ? "epoll" : b);
    snprintf(o.tls_cert, sizeof o.tls_cert, "%.255s", fx.cert);
    snprintf(o.tls_key, sizeof o.tls_key, "%.255s", fx.key);
    struct th_inproc st;
    assert_int_equal(th_inproc_start(&st, &o, &tls_handler, NULL), 0);
    unsigned long acc = atomic_load(&n_accepted);
    char arg[16];
    snprintf(arg, sizeof arg, "%u", o.idle_timeout_ms);
    python_case_on(&st, "stall", arg);
    EVENTUALLY(totals_of(&st).timeouts == 1);
    EVENTUALLY(totals_of(&st).failures == 1);
    assert_true(atomic_load(&n_accepted) > acc); /* the others were served */
    assert_int_equal(th_inproc_stop(&st), 0);
}

static void test_vanish(void **state)
{
    (void)state;
    unsigned long reset = atomic_load(&n_closed_reset), ok = atomic_load(&n_closed_ok);
    python_case("vanish", "0");
    /* EOF without close_notify is a truncation: ECONNRESET, not orderly */
    EVENTUALLY(atomic_load(&n_closed_reset) == reset + 1);
    assert_int_equal(atomic_load(&n_closed_ok), ok);
}

static void test_close_notify(void **state)
{
    (void)state;
    unsigned long ok = atomic_load(&n_closed_ok);
    python_case("close", "0");
    EVENTUALLY(atomic_load(&n_closed_ok) == ok + 1);
}

static void test_shutdown_write(void **state)
{
    (void)state;
    unsigned long ok = atomic_load(&n_closed_ok), before = atomic_load(&after_shut);
    unsigned long extra = 1 + (unsigned long)(fx.seed % 50000);
    char arg[32];
    snprintf(arg, sizeof arg, "%lu", extra);
    python_case("shutdown", arg);
    EVENTUALLY(atomic_load(&n_closed_ok) == ok + 1);
    /* what the client sent after our close_notify was still read */
    assert_int_equal(atomic_load(&after_shut), before + extra);
}

/* Graceful shutdown over TLS: mux-echo gets SIGTERM from the client in
 * mid-conversation, answers on, ends with close_notify, exits 0. */
static void test_drain(void **state)
{
    (void)state;
    need_openssl();
    struct th_child ch;
    start_app(&ch, MUX_ECHO_BIN, NULL);
    struct th_inproc as = {.port = ch.port};
    snprintf(as.host, sizeof as.host, "%s", ch.host);
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)ch.pid);
    python_case_on(&as, "drain", pid);
    assert_int_equal(th_child_wait(&ch, 10000), 0);
}

static void test_proxy_then_tls(void **state)
{
    (void)state;
    unsigned long before = atomic_load(&n_proxied);
    python_case_on(&fx.proxied, "proxy", "0");
    assert_int_equal(atomic_load(&n_proxied), before + 2);
}

/* ---- a key update while the server's socket is full ---- */

/* A TLS 1.3 client asks for a key update while the server's socket is full
 * (it echoes FLOOD bytes we do not read yet): the server reads the request
 * with megabytes queued behind a write OpenSSL could not finish, owes its
 * own key update (OpenSSL 3 sends it before its next record), and every
 * byte must still arrive in order, then the connection must go on. Blocking
 * client, bounded by SO_RCVTIMEO/SO_SNDTIMEO. */
#define FLOOD (16u << 20)
static void test_key_update_full_socket(void **state)
{
    (void)state;
    need_openssl();
    int fd = th_connect_tcp(fx.deep.host, fx.deep.port);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 20 * th_slowdown()};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    assert_int_equal(SSL_CTX_load_verify_locations(ctx, fx.ca, NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set1_host(ssl, "localhost");
    assert_int_equal(SSL_connect(ssl), 1);
    unsigned char *out = malloc(FLOOD + 1), *in = malloc(FLOOD + 1);
    assert_non_null(out);
    assert_non_null(in);
    unsigned long long rng = fx.seed ^ 0x5eed;
    th_fill_random(out, FLOOD + 1, &rng);
    /* Far more than the sockets hold: the server reads it all (its high
     * water is above) and its echo fills every buffer on the way back. */
    size_t n = 0;
    assert_int_equal(SSL_write_ex(ssl, out, FLOOD, &n), 1);
    assert_int_equal(n, FLOOD);
    assert_int_equal(SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED), 1);
    assert_int_equal(SSL_write_ex(ssl, out + FLOOD, 1, &n), 1); /* carries the request */
    size_t got = 0;
    while (got < FLOOD + 1) {
        size_t r = 0;
        if (SSL_read_ex(ssl, in + got, FLOOD + 1 - got, &r) != 1)
            fail_msg("read failed after %zu of %u bytes (%s)", got, FLOOD + 1,
                     ERR_reason_error_string(ERR_get_error()));
        got += r;
    }
    assert_memory_equal(in, out, FLOOD + 1);
    /* the server answered the key update: we can still talk */
    assert_int_equal(SSL_write_ex(ssl, "z", 1, &n), 1);
    size_t r = 0;
    assert_int_equal(SSL_read_ex(ssl, in, 1, &r), 1);
    assert_int_equal(in[0], 'z');
    SSL_shutdown(ssl);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    free(out);
    free(in);
}

static void test_concurrent(void **state)
{
    (void)state;
    /* select cannot watch descriptors past FD_SETSIZE (1024), and this
     * process holds the server's; valgrind is slow */
    int n = th_under_valgrind() ? 100 : strcmp(poller(), "select") == 0 ? 900 : 1000;
    struct totals t0 = totals_of(&fx.wide);
    unsigned long ok = atomic_load(&n_closed_ok) + atomic_load(&n_closed_reset);
    char arg[16];
    snprintf(arg, sizeof arg, "%d", n);
    python_case_on(&fx.wide, "concurrent", arg);
    EVENTUALLY(totals_of(&fx.wide).handshakes >= t0.handshakes + (uint64_t)n);
    /* asyncio may end with or without close_notify: each closed once */
    EVENTUALLY(atomic_load(&n_closed_ok) + atomic_load(&n_closed_reset) >= ok + (unsigned long)n);
}

/* ---- mux_conn_alpn ---- */

/* One connection to srv (TLS when `wire` is given, NULL = plain; "" =
 * TLS offering no ALPN): sends a byte, returns the server's answer line
 * in line (without its newline). Blocking, bounded by socket timeouts. */
static void alpn_ask(const struct th_inproc *srv, const char *wire, size_t wire_len,
                     char *line, size_t size)
{
    int fd = th_connect_tcp(srv->host, srv->port);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 10 * th_slowdown()};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    char buf[300];
    size_t got = 0;
    if (!wire) {
        assert_int_equal(th_write_all(fd, "?", 1, 10000), 0);
        ssize_t r;
        while (got < sizeof buf - 1 && (r = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
            got += (size_t)r;
    } else {
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        assert_non_null(ctx);
        assert_int_equal(SSL_CTX_load_verify_locations(ctx, fx.ca, NULL), 1);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (wire_len > 0) /* 0 = success for this call */
            assert_int_equal(SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)wire,
                                                     (unsigned)wire_len), 0);
        SSL *ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        SSL_set_tlsext_host_name(ssl, "localhost");
        SSL_set1_host(ssl, "localhost");
        assert_int_equal(SSL_connect(ssl), 1);
        size_t n = 0;
        assert_int_equal(SSL_write_ex(ssl, "?", 1, &n), 1);
        size_t r = 0;
        while (got < sizeof buf - 1 && SSL_read_ex(ssl, buf + got, sizeof buf - 1 - got, &r) == 1)
            got += r;
        SSL_free(ssl);
        SSL_CTX_free(ctx);
    }
    close(fd);
    buf[got] = '\0';
    snprintf(line, size, "%.*s", (int)strcspn(buf, "\n"), buf);
}

static void test_alpn(void **state)
{
    (void)state;
    need_openssl();
    static const struct {
        const char *wire; /* the client's ALPN list, wire format; NULL: plain TCP */
        size_t len;
        const char *want;
    } cases[] = {
        {"\x02h2", 3, "ALPN=h2"},
        {"\x08http/1.1", 9, "ALPN=http/1.1"},
        {"\x08http/1.1\x02h2", 12, "ALPN=h2"}, /* the server's preference wins */
        {"\x02h2\x08http/1.1", 12, "ALPN=h2"},
        {"\x06spdy/3", 7, "ALPN=-"},            /* nothing in common: no ALPN */
        {"", 0, "ALPN=-"},                      /* the client offers none */
        {NULL, 0, "ALPN=-"},                    /* plain TCP */
    };
    enum { N = sizeof cases / sizeof cases[0], ROUNDS = 3 };
    unsigned long closed0 = atomic_load(&alpn_closed), changed0 = atomic_load(&alpn_changed);
    unsigned long long rng = fx.seed ^ 0xa1b2;
    for (unsigned i = 0; i < N * ROUNDS; i++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned k = (unsigned)(rng >> 33) % N; /* a random order, every case in turn */
        if (i < N)
            k = i;
        char line[300];
        alpn_ask(cases[k].wire ? &fx.alpn : &fx.plain, cases[k].wire, cases[k].len, line,
                 sizeof line);
        if (strcmp(line, cases[k].want) != 0)
            fail_msg("case %u: got \"%s\", want \"%s\"", k, line, cases[k].want);
    }
    EVENTUALLY(atomic_load(&alpn_closed) >= closed0 + N * ROUNDS);
    assert_int_equal(atomic_load(&alpn_changed), changed0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (getenv("MUX_TEST_ONLY")) /* one case, e.g. MUX_TEST_ONLY=test_curl */
        cmocka_set_test_filter(getenv("MUX_TEST_ONLY"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_files),      cmocka_unit_test(test_reload),
        cmocka_unit_test(test_s_client),       cmocka_unit_test(test_proxy_terminates_tls),
        cmocka_unit_test(test_curl),
        cmocka_unit_test(test_chromium),       cmocka_unit_test(test_fragmented),
        cmocka_unit_test(test_garbage),        cmocka_unit_test(test_stalled_handshake),
        cmocka_unit_test(test_vanish),         cmocka_unit_test(test_close_notify),
        cmocka_unit_test(test_shutdown_write), cmocka_unit_test(test_proxy_then_tls),
        cmocka_unit_test(test_key_update_full_socket), cmocka_unit_test(test_drain),
        cmocka_unit_test(test_concurrent),     cmocka_unit_test(test_alpn),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
