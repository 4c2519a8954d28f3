/* test_httpd_clients.c - mux-httpd against real clients nobody in this
 * project wrote: curl (GET compared byte for byte, HEAD, Range, If-Modified-
 * Since -> 304, 404, HTTP/1.0, connection reuse), wrk (2 s, 2 threads, 50
 * connections on a 4 KiB file: no socket errors, no non-2xx, requests > 0)
 * and headless Chromium loading a page with CSS and an image, checked through
 * the DOM its script writes once the image loaded and the CSS applied.
 * Each case is skipped (cmocka skip()) when its tool is not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpd_fixture.h"

static struct fixture fx;
static struct th_child srv;
static char url[128]; /* http://127.0.0.1:PORT */

static int setup(void **state)
{
    if (fx_up(&fx, &srv, MUX_HTTPD_BIN) < 0)
        return -1;
    snprintf(url, sizeof url, "http://127.0.0.1:%d", srv.port);
    return 0;
}

static int teardown(void **state)
{
    fx_down(&fx, &srv);
    return 0;
}

/* Last: SIGTERM gives exit 0 (under the sanitizers also: no report). */
static void test_graceful_exit(void **state)
{
    assert_int_equal(fx_stop(&srv), 0);
}

/* The full path of an installed program, or NULL (then the test skips). */
static const char *tool(const char *name, char *out, size_t size)
{
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s:/usr/bin:/usr/sbin:/bin", path ? path : "");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, size, "%s/%s", d, name);
        if (access(out, X_OK) == 0)
            return out;
    }
    return NULL;
}

/* The file at path holds exactly want[0..len). */
static bool bytes_equal(const char *path, const char *want, size_t len)
{
    FILE *f = fopen(path, "rb");
    char *got = malloc(len + 1);
    size_t got_len = f && got ? fread(got, 1, len + 1, f) : 0;
    bool same = want && got && got_len == len && memcmp(want, got, len) == 0;
    if (f)
        fclose(f);
    free(got);
    return same;
}

static bool file_equals(const char *path, const char *rel)
{
    size_t len = 0;
    char *want = fx_slurp(&fx, rel, &len);
    bool same = bytes_equal(path, want, len);
    free(want);
    return same;
}

/* Runs curl with the given arguments (NULL-terminated, after "curl -s"),
 * output into out; returns its exit code. */
static int curl(const char *bin, char *out, size_t size, const char *const *args)
{
    char *argv[24] = {(char *)bin, "-s", "--max-time", "30"};
    int n = 4;
    for (const char *const *a = args; *a != NULL && n < 23; a++)
        argv[n++] = (char *)*a;
    argv[n] = NULL;
    return th_run_capture(argv, out, size, 60000);
}

static void test_curl(void **state)
{
    char bin[512], out[16384], u[256], u2[256], dest[256];
    if (!tool("curl", bin, sizeof bin))
        skip();
    snprintf(dest, sizeof dest, "%s/curl.out", fx.dir);

    snprintf(u, sizeof u, "%s/big.bin", url); /* GET, compared byte for byte */
    const char *get[] = {"-o", dest, "-w", "%{http_code}", u, NULL};
    assert_int_equal(curl(bin, out, sizeof out, get), 0);
    assert_string_equal(out, "200");
    assert_true(file_equals(dest, "big.bin"));

    snprintf(u, sizeof u, "%s/hello.txt", url); /* HEAD */
    const char *head[] = {"-I", u, NULL};
    assert_int_equal(curl(bin, out, sizeof out, head), 0);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK"));
    assert_non_null(strstr(out, "Content-Length: 12"));
    assert_non_null(strstr(out, "Content-Type: text/plain; charset=utf-8"));

    snprintf(u, sizeof u, "%s/data.bin", url); /* Range */
    const char *range[] = {"-r", "100-1123", "-o", dest, "-w", "%{http_code} %{size_download}",
                           u, NULL};
    assert_int_equal(curl(bin, out, sizeof out, range), 0);
    assert_string_equal(out, "206 1024");
    size_t len = 0;
    char *data = fx_slurp(&fx, "data.bin", &len);
    assert_true(len == FX_DATA_SIZE && bytes_equal(dest, data + 100, 1024));
    free(data);

    char ref[256]; /* -z FILE: If-Modified-Since the file's own mtime -> 304 */
    snprintf(ref, sizeof ref, "%s/data.bin", fx.root);
    const char *ims[] = {"-z", ref, "-o", dest, "-w", "%{http_code}", u, NULL};
    assert_int_equal(curl(bin, out, sizeof out, ims), 0);
    assert_string_equal(out, "304");

    snprintf(u, sizeof u, "%s/nope.html", url); /* 404 */
    const char *nf[] = {"-o", dest, "-w", "%{http_code}", u, NULL};
    assert_int_equal(curl(bin, out, sizeof out, nf), 0);
    assert_string_equal(out, "404");

    snprintf(u, sizeof u, "%s/hello.txt", url); /* HTTP/1.0 */
    const char *h10[] = {"--http1.0", "-v", u, NULL};
    assert_int_equal(curl(bin, out, sizeof out, h10), 0);
    assert_non_null(strstr(out, "GET /hello.txt HTTP/1.0"));
    assert_non_null(strstr(out, "hello world"));

    snprintf(u2, sizeof u2, "%s/style.css", url); /* two URLs, one connection */
    const char *reuse[] = {"-v", u, u2, NULL};
    assert_int_equal(curl(bin, out, sizeof out, reuse), 0);
    assert_non_null(strstr(out, "hello world"));
    assert_non_null(strstr(out, "rgb(1, 2, 3)"));
    assert_non_null(strstr(out, "e-us")); /* "Re-using existing connection" */
}

/* "Socket errors: connect 0, read 0, ..." and "Non-2xx or 3xx responses: N"
 * only appear when nonzero. */
static void test_wrk(void **state)
{
    char bin[512], u[256];
    static char out[65536];
    if (!tool("wrk", bin, sizeof bin))
        skip();
    snprintf(u, sizeof u, "%s/data.bin", url);
    char *argv[] = {bin, "-t2", "-c50", "-d2s", "--timeout", "5s", u, NULL};
    assert_int_equal(th_run_capture(argv, out, sizeof out, 60000), 0);
    print_message("%s", out);
    unsigned long long requests = 0;
    const char *p = strstr(out, " requests in ");
    assert_non_null(p);
    while (p > out && p[-1] >= '0' && p[-1] <= '9')
        p--;
    requests = strtoull(p, NULL, 10);
    assert_true(requests > 0);
    assert_null(strstr(out, "Socket errors"));
    assert_null(strstr(out, "Non-2xx"));
}

static void test_chromium(void **state)
{
    char bin[512], profile[256], u[256];
    static char out[1 << 20];
    if (!tool("chromium", bin, sizeof bin) && !tool("chromium-browser", bin, sizeof bin))
        skip();
    snprintf(profile, sizeof profile, "%s/chromium-profile", fx.dir);
    char arg[300];
    snprintf(arg, sizeof arg, "--user-data-dir=%s", profile);
    snprintf(u, sizeof u, "%s/", url);
    char *argv[] = {bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", arg, "--dump-dom", u, NULL};
    int rc = th_run_capture(argv, out, sizeof out, 90000);
    if (rc != 0)
        print_message("chromium exit %d:\n%s\n", rc, out);
    assert_int_equal(rc, 0);
    /* Only there after the script ran on window load: the PNG decoded to
     * its 2 pixel width and style.css set the paragraph's colour. */
    if (strstr(out, "loaded:2:rgb(1, 2, 3)") == NULL)
        fail_msg("DOM without the script's result:\n%s", out);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_curl),
        cmocka_unit_test(test_wrk),
        cmocka_unit_test(test_chromium),
        cmocka_unit_test(test_graceful_exit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
