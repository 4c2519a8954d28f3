/* test_httpd_safety.c - defects found from outside, each proven against a
 * running mux-httpd over raw sockets (and curl where it adds a check):
 *   - no open redirect: a directory redirect's Location is built from the
 *     normalised path, so "//host/..", "/\host/.." and the absolute form
 *     never produce a protocol-relative "//host" target;
 *   - an If-Modified-Since in the future is ignored (RFC 9110 13.1.3);
 *   - several ranges give 206 multipart/byteranges, byte for byte, with a
 *     bound on the number of ranges and on overlapping ranges;
 *   - greedy clients pipelining requests without ever reading cannot make
 *     the server hold an unbounded number of open files or memory, and a
 *     fresh client is served throughout;
 *   - the open-file cache never serves a changed or deleted file for more
 *     than about a second. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httpd_fixture.h"

static struct fixture fx;
static struct th_child srv;

static int setup(void **state)
{
    if (fx_create(&fx) < 0 || fx_write(&fx, true, "one.txt", "x", 1) == NULL)
        return -1;
    return fx_start(&srv, &fx, MUX_HTTPD_BIN, 1, NULL, NULL);
}

static int teardown(void **state)
{
    fx_down(&fx, &srv);
    return 0;
}

static void get(const char *req, struct hresp *r)
{
    assert_int_equal(hc_once(srv.port, req, r, strncmp(req, "HEAD", 4) == 0), 0);
}

/* ---- open redirect -------------------------------------------------- */

/* A Location a browser resolves on this host: one '/', then not '/' or '\'. */
static void expect_local_location(const struct hresp *r, const char *want)
{
    char loc[512];
    assert_int_equal(r->status, 301);
    assert_non_null(hr_field(r, "Location", loc, sizeof loc));
    print_message("Location: %s\n", loc);
    assert_int_equal(loc[0], '/');
    assert_true(loc[1] != '/' && loc[1] != '\\');
    if (want != NULL)
        assert_string_equal(loc, want);
}

static void test_no_open_redirect(void **state)
{
    static const struct {
        const char *target, *location;
    } cases[] = {
        {"//evil.example/..//sub", "/sub/"},
        {"//evil.example/../sub", "/sub/"},
        {"/\\evil.example/../sub", "/sub/"},
        {"/%2F%2Fevil.example/..%2F/sub", "/sub/"},
        {"/%5Cevil.example/../sub", "/sub/"},
        {"http://t//evil.example/..//sub", "/sub/"},
        {"http://evil.example//evil.example/../sub?q=1", "/sub/?q=1"},
        {"///sub?x=//y", "/sub/?x=//y"},
        {"/sub?a=b#frag", "/sub/?a=b"},
    };
    struct hresp r;
    char req[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", cases[i].target);
        print_message("GET %s\n", cases[i].target);
        get(req, &r);
        expect_local_location(&r, cases[i].location);
        hr_free(&r);
    }
    /* A decoded name is percent-encoded again, CR and LF included, so a
     * Location can never split the head. */
    char dir[512];
    snprintf(dir, sizeof dir, "%s/we ird\r\nX: y", fx.root);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_non_null(fx_write(&fx, true, "we ird\r\nX: y/index.html", "i\n", 2));
    get("GET /we%20ird%0D%0AX:%20y HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    expect_local_location(&r, "/we%20ird%0D%0AX:%20y/");
    assert_null(hr_field(&r, "X", req, sizeof req));
    hr_free(&r);

    /* Random prefixes of slashes, backslashes, encoded ones and ".." that
     * all normalise to /sub. */
    unsigned seed = (unsigned)time(NULL);
    print_message("seed %u\n", seed);
    srand(seed);
    static const char *const parts[] = {"/", "//", "\\", "%2F", "%5C", "%2f%2F", "evil.example",
                                        "./"};
    for (int round = 0; round < 40; round++) {
        char target[256] = "/";
        int n = 1 + rand() % 5;
        for (int k = 0; k < n; k++)
            strcat(target, parts[rand() % (sizeof parts / sizeof parts[0])]);
        strcat(target, "x/..//sub"); /* "x" ends any name the prefix started */
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", target);
        get(req, &r);
        if (r.status == 301)
            expect_local_location(&r, NULL);
        else /* a prefix that climbs above the root, or names a directory
                that does not exist ("/a%2Fx/.." is "a/"): also fine */
            assert_true(r.status == 403 || r.status == 404);
        hr_free(&r);
    }
}

/* ---- If-Modified-Since ---------------------------------------------- */

static void imf_date(time_t t, char *out, size_t size)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void test_if_modified_since_future(void **state)
{
    char lm[64], req[256];
    struct hresp r;
    get("GET /data.bin HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_non_null(hr_field(&r, "Last-Modified", lm, sizeof lm));
    hr_free(&r);

    snprintf(req, sizeof req, "GET /data.bin HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: %s\r\n\r\n",
             lm);
    get(req, &r);
    assert_int_equal(r.status, 304); /* still valid: not modified since */
    hr_free(&r);

    char future[64];
    const time_t ahead[] = {3600, 86400, 365L * 86400};
    for (size_t i = 0; i < sizeof ahead / sizeof ahead[0]; i++) {
        imf_date(time(NULL) + ahead[i], future, sizeof future);
        snprintf(req, sizeof req,
                 "GET /data.bin HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: %s\r\n\r\n", future);
        get(req, &r);
        print_message("If-Modified-Since: %s -> %d\n", future, r.status);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, FX_DATA_SIZE);
        hr_free(&r);
    }
    get("GET /data.bin HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: Fri, 31 Dec 9999 23:59:59 GMT"
        "\r\n\r\n",
        &r);
    assert_int_equal(r.status, 200);
    hr_free(&r);
    get("GET /data.bin HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: not a date\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    hr_free(&r);
}

/* ---- multiple ranges ------------------------------------------------ */

struct want_range {
    size_t first, last;
};

/* Checks body[0..len) is the multipart/byteranges of `file` for `want`. */
static void expect_multipart(const char *content_type, const char *body, size_t len,
                             const char *file, size_t file_len, const struct want_range *want,
                             size_t nwant)
{
    const char *b = strstr(content_type, "multipart/byteranges; boundary=");
    assert_non_null(b);
    b += strlen("multipart/byteranges; boundary=");
    size_t blen = strlen(b);
    assert_true(blen > 0 && blen <= 70);
    const char *p = body, *end = body + len;
    for (size_t i = 0; i < nwant; i++) {
        if (p + 2 <= end && p[0] == '\r' && p[1] == '\n')
            p += 2; /* the CRLF before a delimiter (optional before the first) */
        assert_true(end - p > (ptrdiff_t)(blen + 4));
        assert_memory_equal(p, "--", 2);
        assert_memory_equal(p + 2, b, blen);
        p += 2 + blen;
        assert_memory_equal(p, "\r\n", 2);
        const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        assert_non_null(hend);
        char fields[512];
        snprintf(fields, sizeof fields, "%.*s", (int)(hend + 2 - p), p);
        char cr[128];
        snprintf(cr, sizeof cr, "\r\nContent-Range: bytes %zu-%zu/%zu\r\n", want[i].first,
                 want[i].last, file_len);
        if (strstr(fields, cr) == NULL)
            fail_msg("part %zu: no %s in %s", i, cr + 2, fields);
        assert_non_null(strstr(fields, "\r\nContent-Type: "));
        p = hend + 4;
        size_t n = want[i].last - want[i].first + 1;
        assert_true((size_t)(end - p) >= n);
        assert_memory_equal(p, file + want[i].first, n);
        p += n;
    }
    char tail[128];
    int tn = snprintf(tail, sizeof tail, "\r\n--%s--\r\n", b);
    assert_int_equal(end - p, tn);
    assert_memory_equal(p, tail, (size_t)tn);
}

static void test_multiple_ranges(void **state)
{
    size_t flen;
    char *file = fx_slurp(&fx, "data.bin", &flen);
    assert_non_null(file);
    struct hresp r;
    char ct[256], cl[32];

    const struct want_range three[] = {{0, 9}, {100, 199}, {4091, 4095}};
    get("GET /data.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=0-9,100-199,-5\r\n\r\n", &r);
    assert_int_equal(r.status, 206);
    assert_non_null(hr_field(&r, "Content-Type", ct, sizeof ct));
    assert_null(hr_field(&r, "Content-Range", cl, sizeof cl));
    expect_multipart(ct, r.body, r.body_len, file, flen, three, 3);
    hr_free(&r);

    /* HEAD: the same Content-Length, no body. */
    get("GET /data.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=0-9,100-199,-5\r\n\r\n", &r);
    size_t get_len = r.body_len;
    hr_free(&r);
    get("HEAD /data.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=0-9,100-199,-5\r\n\r\n", &r);
    assert_int_equal(r.status, 206);
    assert_non_null(hr_field(&r, "Content-Length", cl, sizeof cl));
    assert_int_equal(strtoull(cl, NULL, 10), get_len);
    hr_free(&r);

    /* Large parts (sent from the file) between small ones, on a keep-alive
     * connection followed by a pipelined plain request. */
    size_t mlen;
    char *medium = fx_slurp(&fx, "medium.bin", &mlen);
    assert_non_null(medium);
    const struct want_range mixed[] = {{5, 5}, {1000, 200999}, {250000, 300000}, {307190, 307199}};
    struct hc h;
    assert_int_equal(hc_open(&h, srv.port), 0);
    assert_int_equal(hc_send(&h, "GET /medium.bin HTTP/1.1\r\nHost: t\r\n"
                                 "Range: bytes=5-5, 1000-200999,250000-300000 ,-10\r\n\r\n"
                                 "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"),
                     0);
    assert_int_equal(hc_recv(&h, &r, false, 10000), 0);
    assert_int_equal(r.status, 206);
    assert_non_null(hr_field(&r, "Content-Type", ct, sizeof ct));
    expect_multipart(ct, r.body, r.body_len, medium, mlen, mixed, 4);
    hr_free(&r);
    assert_int_equal(hc_recv(&h, &r, false, 10000), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello world\n");
    hr_free(&r);
    hc_close(&h);
    free(medium);

    /* One satisfiable range among unsatisfiable ones: a plain 206. */
    get("GET /data.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=5000-,10-19,9000-9001\r\n\r\n", &r);
    assert_int_equal(r.status, 206);
    assert_non_null(hr_field(&r, "Content-Range", cl, sizeof cl));
    assert_string_equal(cl, "bytes 10-19/4096");
    assert_memory_equal(r.body, file + 10, 10);
    hr_free(&r);

    /* None satisfiable: 416. */
    get("GET /data.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=5000-,4096-4100\r\n\r\n", &r);
    assert_int_equal(r.status, 416);
    hr_free(&r);

    /* Overlap abuse: ranges adding up to more than the file -> 200 whole. */
    const char *whole[] = {
        "bytes=0-4095,0-4095",
        "bytes=0-,0-",
        "bytes=100-3000,50-2000",
        "bytes=-4096,-1",
        "bytes=0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0,0-0", /* 17 */
    };
    char req[512];
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++) {
        snprintf(req, sizeof req, "GET /data.bin HTTP/1.1\r\nHost: t\r\nRange: %s\r\n\r\n",
                 whole[i]);
        get(req, &r);
        print_message("Range: %s -> %d\n", whole[i], r.status);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, flen);
        assert_memory_equal(r.body, file, flen);
        hr_free(&r);
    }
    /* 16 ranges is the bound: still served as parts. */
    struct want_range sixteen[16];
    char spec[400] = "bytes=";
    for (size_t i = 0; i < 16; i++) {
        sixteen[i] = (struct want_range){i * 200, i * 200 + 99};
        snprintf(spec + strlen(spec), sizeof spec - strlen(spec), "%s%zu-%zu", i ? "," : "",
                 sixteen[i].first, sixteen[i].last);
    }
    snprintf(req, sizeof req, "GET /data.bin HTTP/1.1\r\nHost: t\r\nRange: %s\r\n\r\n", spec);
    get(req, &r);
    assert_int_equal(r.status, 206);
    assert_non_null(hr_field(&r, "Content-Type", ct, sizeof ct));
    expect_multipart(ct, r.body, r.body_len, file, flen, sixteen, 16);
    hr_free(&r);
    free(file);
}

/* Reads a pipe until EOF (or cap bytes), bounded by timeout_ms. */
static ssize_t read_pipe(int fd, char *buf, size_t cap, int timeout_ms)
{
    size_t got = 0;
    long long deadline = th_now_ms() + (long long)timeout_ms * th_slowdown();
    while (got < cap) {
        long long left = deadline - th_now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return -1;
        ssize_t n = read(fd, buf + got, cap - got);
        if (n == 0)
            break;
        if (n < 0 && errno != EINTR)
            return -1;
        got += n > 0 ? (size_t)n : 0;
    }
    return (ssize_t)got;
}

/* curl (when installed) reads the same multipart body. */
static void test_multiple_ranges_curl(void **state)
{
    if (access("/usr/bin/curl", X_OK) != 0) {
        print_message("curl not installed: skipped\n");
        skip();
    }
    char url[128], head[4096], body[8192];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/data.bin", srv.port);
    char *argv[] = {"/usr/bin/curl", "-s", "-r", "0-9,100-199,-5", "-D", "/dev/stderr",
                    "-o", "/dev/stdout", url, NULL};
    int pipe_out[2], pipe_err[2];
    assert_int_equal(pipe(pipe_out), 0);
    assert_int_equal(pipe(pipe_err), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipe_out[1], 1);
        dup2(pipe_err[1], 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pipe_out[1]);
    close(pipe_err[1]);
    /* Both outputs are small (under a pipe's buffer), so reading them one
     * after the other cannot deadlock. */
    ssize_t hn = read_pipe(pipe_err[0], head, sizeof head - 1, 10000);
    ssize_t bn = read_pipe(pipe_out[0], body, sizeof body, 10000);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(pipe_out[0]);
    close(pipe_err[0]);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(hn > 0 && bn > 0);
    head[hn] = '\0';
    assert_non_null(strstr(head, "HTTP/1.1 206 "));
    const char *ct = strstr(head, "Content-Type: ");
    assert_non_null(ct);
    char type[256];
    snprintf(type, sizeof type, "%.*s", (int)strcspn(ct + 14, "\r\n"), ct + 14);
    size_t flen;
    char *file = fx_slurp(&fx, "data.bin", &flen);
    const struct want_range three[] = {{0, 9}, {100, 199}, {4091, 4095}};
    expect_multipart(type, body, (size_t)bn, file, flen, three, 3);
    free(file);
}

/* ---- greedy pipelining clients -------------------------------------- */

static int count_fds(pid_t pid)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(p);
    if (d == NULL)
        return -1;
    int n = 0;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static long rss_kib(pid_t pid)
{
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
    FILE *f = fopen(p, "r");
    long kib = -1;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return kib;
}

/* A client that sends and never reads, with a small receive window so the
 * server's output backs up at once. */
static int greedy_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

#define GREEDY 8
#define GREEDY_REQS 400

struct watch {
    int base_fds, max_fds;
    long base_rss, max_rss;
    int served;
};

static void sample(struct watch *w)
{
    int fds = count_fds(srv.pid);
    long rss = rss_kib(srv.pid);
    if (fds > w->max_fds)
        w->max_fds = fds;
    if (rss > w->max_rss)
        w->max_rss = rss;
}

/* A fresh client gets its file while the greedy ones hold their output. */
static void fresh_client(struct watch *w)
{
    struct hresp r;
    assert_int_equal(hc_once(srv.port, "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r, false),
                     0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "hello world\n");
    hr_free(&r);
    w->served++;
}

/* One round of sends; true when any client's socket took bytes. */
static bool push_round(const int *fds, size_t *off, const char *reqs, size_t len)
{
    bool progress = false;
    for (int i = 0; i < GREEDY; i++) {
        ssize_t n = send(fds[i], reqs + off[i], len - off[i], MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            progress = true;
            off[i] = (off[i] + (size_t)n) % len;
        }
    }
    return progress;
}

/* Waits (bounded) for any greedy socket to become writable again. */
static bool any_writable(const int *fds, int timeout_ms)
{
    struct pollfd p[GREEDY];
    for (int i = 0; i < GREEDY; i++)
        p[i] = (struct pollfd){.fd = fds[i], .events = POLLOUT};
    return poll(p, GREEDY, timeout_ms) > 0;
}

/* GREEDY clients pipeline `req` and never read, until the server stops
 * reading them all; fresh clients are served meanwhile, and the server's
 * descriptors stay within fds_per_conn per greedy client. */
static void greedy_flood(const char *req, int fds_per_conn)
{
    size_t one = strlen(req), len = one * GREEDY_REQS;
    char *reqs = malloc(len);
    assert_non_null(reqs);
    for (size_t i = 0; i < GREEDY_REQS; i++)
        memcpy(reqs + i * one, req, one);

    struct watch w = {.base_fds = count_fds(srv.pid), .base_rss = rss_kib(srv.pid)};
    w.max_fds = w.base_fds;
    w.max_rss = w.base_rss;
    assert_true(w.base_fds > 0 && w.base_rss > 0);
    int fds[GREEDY];
    size_t off[GREEDY] = {0};
    for (int i = 0; i < GREEDY; i++) {
        fds[i] = greedy_connect(srv.port);
        assert_true(fds[i] >= 0);
    }
    /* Push until every greedy socket stays full for 300 ms (the server
     * stopped reading them), within a bounded number of rounds and time. */
    long long deadline = th_now_ms() + 20000LL * th_slowdown();
    int rounds = 0, quiet = 0;
    while (rounds < 100000 && th_now_ms() < deadline && quiet < 2) {
        rounds++;
        if (push_round(fds, off, reqs, len)) {
            quiet = 0;
        } else if (!any_writable(fds, 300)) {
            quiet++;
            sample(&w);
            fresh_client(&w);
        }
        if (rounds % 64 == 0) {
            sample(&w);
            fresh_client(&w);
        }
    }
    sample(&w);
    fresh_client(&w);
    print_message("%d rounds, %d fresh clients served; fds %d -> max %d; RSS %ld -> max %ld KiB\n",
                  rounds, w.served, w.base_fds, w.max_fds, w.base_rss, w.max_rss);
    assert_true(quiet >= 2); /* the server pushed back instead of reading forever */
    assert_true(w.max_fds <= w.base_fds + GREEDY * fds_per_conn + 8);
    if (th_slowdown() == 1) /* RSS means nothing under valgrind */
        assert_true(w.max_rss - w.base_rss <= GREEDY * 1024 + 16384);

    for (int i = 0; i < GREEDY; i++)
        close(fds[i]);
    free(reqs);
    fresh_client(&w);
}

/* A 1-byte file is sent from memory: per greedy connection its socket and
 * nothing else (4 allows slack). */
static void test_greedy_pipelining_clients(void **state)
{
    greedy_flood("GET /one.txt HTTP/1.1\r\nHost: t\r\n\r\n", 4);
}

/* Two 17 000-byte ranges per request are two sendfile ranges (each holding
 * a descriptor, each under the high-water mark): answering stops while 8
 * are queued, so a connection holds its socket and at most 7 + 2 ranges. */
static void test_greedy_range_clients(void **state)
{
    greedy_flood("GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=0-16999,20000-36999\r\n\r\n",
                 10);
}

/* The open-file cache: a changed or deleted file is seen within about a
 * second (entries are revalidated once a second). */
static void test_changed_file_seen(void **state)
{
    struct hresp r;
    assert_non_null(fx_write(&fx, true, "fresh.txt", "v1", 2));
    get("GET /fresh.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r);
    assert_string_equal(r.body, "v1");
    hr_free(&r);
    assert_non_null(fx_write(&fx, true, "fresh.txt", "version 2", 9));
    long long start = th_now_ms(), deadline = start + 5000LL * th_slowdown();
    bool seen = false;
    while (!seen && th_now_ms() < deadline) {
        get("GET /fresh.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r);
        assert_int_equal(r.status, 200);
        seen = strcmp(r.body, "version 2") == 0;
        if (!seen)
            assert_string_equal(r.body, "v1");
        hr_free(&r);
        if (!seen)
            poll(NULL, 0, 20); /* the client's pace between polls, not a sync */
    }
    long long took = th_now_ms() - start;
    print_message("new content after %lld ms\n", took);
    assert_true(seen);
    if (th_slowdown() == 1)
        assert_true(took <= 2500);
    char p[512];
    snprintf(p, sizeof p, "%s/fresh.txt", fx.root);
    assert_int_equal(unlink(p), 0);
    start = th_now_ms();
    do {
        get("GET /fresh.txt HTTP/1.1\r\nHost: t\r\n\r\n", &r);
        hr_free(&r);
    } while (r.status == 200 && th_now_ms() < deadline + 5000LL * th_slowdown());
    assert_int_equal(r.status, 404);
}

static void test_graceful_exit(void **state)
{
    assert_int_equal(fx_stop(&srv), 0);
    srv.pid = 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_open_redirect),
        cmocka_unit_test(test_if_modified_since_future),
        cmocka_unit_test(test_multiple_ranges),
        cmocka_unit_test(test_multiple_ranges_curl),
        cmocka_unit_test(test_greedy_pipelining_clients),
        cmocka_unit_test(test_greedy_range_clients),
        cmocka_unit_test(test_changed_file_seen),
        cmocka_unit_test(test_graceful_exit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
