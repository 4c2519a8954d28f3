/* test_path.c - path normalisation (pure) and opening beneath the root,
 * with openat2 and with the fallback walk: traversal attempts, encoded
 * dots and slashes, NUL, symlinks inside and leaving the root, index
 * files, odd file types. The tree lives in a mkdtemp directory that is
 * removed at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first */
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "http_path.h"

static char base[64];     /* the temp dir */
static char root_dir[96]; /* base/root, the server root */

/* ---- normalisation ------------------------------------------------- */

struct norm_case {
    const char *in;
    int rc;          /* expected: >= 0 means success */
    const char *out; /* expected result when rc >= 0 */
};

static const struct norm_case norms[] = {
    {"/", 0, ""},
    {"/a", 0, "a"},
    {"/a/", 0, "a/"},
    {"//a///b", 0, "a/b"},
    {"/a/./b", 0, "a/b"},
    {"/a/.", 0, "a/"},
    {"/a/b/..", 0, "a/"},
    {"/a/b/../c", 0, "a/c"},
    {"/a/..", 0, ""},
    {"/a?x=/../../", 0, "a"},
    {"/a#/../..", 0, "a"},
    {"/?", 0, ""},
    {"/%61%2Fb", 0, "a/b"},
    {"/%2e", 0, ""},
    {"/a/%2e%2E", 0, ""},
    {"/sp%20ace", 0, "sp ace"},
    {"/%3F%23", 0, "?#"},
    {"/...", 0, "..."},
    {"/.a/..b", 0, ".a/..b"},
    {"/a\\..\\b", 0, "a\\..\\b"},
    {"/..\\..\\etc\\passwd", 0, "..\\..\\etc\\passwd"},
    {"/caf\xc3\xa9", 0, "caf\xc3\xa9"},
    {"http://host/a/b?c", 0, "a/b"},
    {"HTTPS://host:8080", 0, ""},
    {"http://host?x", 0, ""},
    {"http://host/../x", -403, NULL},
    {"/..", -403, NULL},
    {"/../etc/passwd", -403, NULL},
    {"/%2e%2e/", -403, NULL},
    {"/%2E%2e%2f..", -403, NULL},
    {"/a/../../x", -403, NULL},
    {"/..%2f", -403, NULL},
    {"/..%2Fetc%2Fpasswd", -403, NULL},
    {"/a/..%2F..%2Fb", -403, NULL},
    {"/%2e%2e", -403, NULL},
    {"/%00", -403, NULL},
    {"/a.txt%00.html", -403, NULL},
    {"/%", -400, NULL},
    {"/%2", -400, NULL},
    {"/%zz", -400, NULL},
    {"/%2g", -400, NULL},
    {"/%%32%65", -400, NULL},
    {"a", -400, NULL},
    {"", -400, NULL},
    {"*", -400, NULL},
    {"?/a", -400, NULL},
    {"ftp://host/a", -400, NULL},
};

static void test_normalize_table(void **state)
{
    for (size_t i = 0; i < sizeof norms / sizeof norms[0]; i++) {
        char out[128];
        size_t n = strlen(norms[i].in);
        int rc = http_path_normalize(norms[i].in, n, out, sizeof out);
        if (norms[i].rc < 0 ? rc != norms[i].rc : rc < 0)
            fail_msg("case %zu (%s): rc %d, want %d", i, norms[i].in, rc, norms[i].rc);
        if (rc >= 0 && (strcmp(out, norms[i].out) != 0 || (size_t)rc != strlen(out)))
            fail_msg("case %zu (%s): got \"%s\", want \"%s\"", i, norms[i].in, out, norms[i].out);
    }
}

static void test_normalize_raw_nul(void **state)
{
    char out[32];
    assert_int_equal(http_path_normalize("/a\0b", 4, out, sizeof out), -403);
}

static void test_normalize_lengths(void **state)
{
    static char in[3 * HTTP_PATH_MAX];
    static char out[3 * HTTP_PATH_MAX];
    in[0] = '/';
    memset(in + 1, 'a', HTTP_PATH_MAX);
    assert_int_equal(http_path_normalize(in, HTTP_PATH_MAX + 1, out, sizeof out), HTTP_PATH_MAX);
    memset(in + 1, 'a', HTTP_PATH_MAX + 1);
    assert_int_equal(http_path_normalize(in, HTTP_PATH_MAX + 2, out, sizeof out), -414);
    /* Long input that shrinks below the limit is fine with a big buffer. */
    memcpy(in + HTTP_PATH_MAX + 2, "/../b", 5);
    assert_int_equal(http_path_normalize(in, HTTP_PATH_MAX + 7, out, sizeof out), 1);
    assert_string_equal(out, "b");
    /* The caller's buffer bounds the output. */
    assert_int_equal(http_path_normalize("/abcdefghij", 11, out, 8), -414);
    assert_int_equal(http_path_normalize("/abcdefg", 8, out, 8), 7);
    assert_int_equal(http_path_normalize("/", 1, out, 0), -414);
}

/* ---- the tree ------------------------------------------------------ */

static void put_file(const char *rel, const char *content)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", base, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static void put_dir(const char *rel)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", base, rel);
    assert_int_equal(mkdir(path, 0755), 0);
}

static void put_link(const char *target, const char *rel)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", base, rel);
    assert_int_equal(symlink(target, path), 0);
}

static int make_tree(void **state)
{
    char abs_in[200];
    snprintf(base, sizeof base, "/tmp/mux-httpd-path-XXXXXX");
    if (mkdtemp(base) == NULL)
        return -1;
    snprintf(root_dir, sizeof root_dir, "%s/root", base);
    put_file("outside.txt", "secret\n");
    put_dir("root");
    put_file("root/index.html", "<p>root</p>\n");
    put_file("root/a.txt", "hello\n");
    put_file("root/sp ace.txt", "space\n");
    put_file("root/back\\slash.txt", "bs\n");
    put_dir("root/sub");
    put_file("root/sub/index.html", "<p>sub</p>\n");
    put_file("root/sub/b.css", "b{}\n");
    put_dir("root/sub/deep");
    put_file("root/sub/deep/c.js", "c\n");
    put_dir("root/noindex");
    put_file("root/noindex/c.txt", "c\n");
    put_dir("root/idxdir");
    put_dir("root/idxdir/index.html");
    put_link("a.txt", "root/link_in");
    put_link("sub", "root/link_dir");
    put_link("../a.txt", "root/sub/link_up");
    put_link("../../a.txt", "root/sub/deep/link_up2");
    put_link("deep/../../a.txt", "root/sub/link_zigzag");
    put_link("../outside.txt", "root/link_out");
    put_link("../../outside.txt", "root/sub/link_out2");
    put_link("..", "root/link_dirout");
    put_link("/etc/passwd", "root/link_abs");
    snprintf(abs_in, sizeof abs_in, "%s/a.txt", root_dir);
    put_link(abs_in, "root/link_abs_in");
    put_link("link_loop", "root/link_loop");
    put_link("nothing", "root/link_dangling");
    put_link("../outside.txt", "root/noindex/index.html");
    char fifo[256];
    snprintf(fifo, sizeof fifo, "%s/root/fifo", base);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    return remove(path);
}

static int remove_tree(void **state)
{
    return nftw(base, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- opening ------------------------------------------------------- */

static const unsigned modes[] = {0, HTTP_PATH_NO_OPENAT2};

/* Normalise + open; returns 0 or the negated status; on success the file
 * content's first bytes go to `head`. */
static int resolve(const struct http_root *root, const char *target, char *head, size_t cap,
                   const char **name)
{
    static char rel[HTTP_PATH_MAX + 1];
    struct http_file f;
    int rc = http_path_normalize(target, strlen(target), rel, sizeof rel);
    if (rc < 0)
        return rc;
    rc = http_path_open(root, rel, &f);
    if (rc != 0) {
        assert_int_equal(f.fd, -1);
        return rc;
    }
    assert_true(S_ISREG(f.st.st_mode));
    ssize_t n = pread(f.fd, head, cap - 1, 0);
    assert_true(n >= 0);
    head[n] = '\0';
    assert_int_equal(n, (ssize_t)f.st.st_size < (ssize_t)cap - 1 ? f.st.st_size : n);
    int flags = fcntl(f.fd, F_GETFD);
    assert_true(flags & FD_CLOEXEC);
    if (name != NULL)
        *name = f.name;
    close(f.fd);
    return 0;
}

struct open_case {
    const char *target;
    int rc;
    const char *content; /* expected start of the file when rc == 0 */
};

static const struct open_case opens[] = {
    {"/", 0, "<p>root</p>"},
    {"/index.html", 0, "<p>root</p>"},
    {"/a.txt", 0, "hello"},
    {"/sp%20ace.txt", 0, "space"},
    {"/back\\slash.txt", 0, "bs"},
    {"/back%5Cslash.txt", 0, "bs"},
    {"/sub/", 0, "<p>sub</p>"},
    {"/sub", 0, "<p>sub</p>"},
    {"/sub/b.css", 0, "b{}"},
    {"/sub/deep/c.js", 0, "c"},
    {"/sub/deep/../b.css", 0, "b{}"},
    {"/noindex/c.txt", 0, "c"},
    {"/link_in", 0, "hello"},
    {"/link_dir/b.css", 0, "b{}"},
    {"/link_dir/", 0, "<p>sub</p>"},
    {"/sub/link_up", 0, "hello"},
    {"/sub/deep/link_up2", 0, "hello"},
    {"/sub/link_zigzag", 0, "hello"},
    {"/missing", -404, NULL},
    {"/sub/missing.css", -404, NULL},
    {"/a.txt/", -404, NULL},
    {"/a.txt/x", -404, NULL},
    {"/fifo", -404, NULL},
    {"/link_dangling", -404, NULL},
    {"/noindex/", -403, NULL}, /* directory without index.html */
    {"/noindex", -403, NULL},
    {"/idxdir/", -403, NULL}, /* index.html is a directory */
    {"/link_out", -403, NULL},
    {"/sub/link_out2", -403, NULL},
    {"/link_dirout/", -403, NULL},
    {"/link_dirout/outside.txt", -403, NULL},
    {"/link_dirout/root/a.txt", -403, NULL},
    {"/link_abs", -403, NULL},
    {"/link_abs_in", -403, NULL}, /* absolute links are refused */
    {"/link_loop", -403, NULL},
    {"/../outside.txt", -403, NULL},
    {"/../etc/passwd", -403, NULL},
    {"/%2e%2e/outside.txt", -403, NULL},
    {"/%2E%2e%2foutside.txt", -403, NULL},
    {"/..%2foutside.txt", -403, NULL},
    {"/sub/../../outside.txt", -403, NULL},
    {"/a/../../x", -403, NULL},
    {"/%00", -403, NULL},
    {"/a.txt%00.html", -403, NULL},
    {"/..\\outside.txt", -404, NULL}, /* a backslash is a plain byte */
    {"/%2e%2e%5coutside.txt", -404, NULL},
    {"/%zz", -400, NULL},
};

static void test_open_table(void **state)
{
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        struct http_root root;
        assert_int_equal(http_root_open(&root, root_dir, modes[m]), 0);
        if (modes[m] & HTTP_PATH_NO_OPENAT2)
            assert_false(root.openat2);
        for (size_t i = 0; i < sizeof opens / sizeof opens[0]; i++) {
            char head[64];
            int rc = resolve(&root, opens[i].target, head, sizeof head, NULL);
            if (rc != opens[i].rc)
                fail_msg("mode %u case %zu (%s): got %d, want %d", modes[m], i, opens[i].target, rc,
                         opens[i].rc);
            if (rc == 0 && strncmp(head, opens[i].content, strlen(opens[i].content)) != 0)
                fail_msg("mode %u case %zu (%s): content \"%s\"", modes[m], i, opens[i].target,
                         head);
            if (rc == 0 && strstr(head, "secret") != NULL)
                fail_msg("escaped the root: %s", opens[i].target);
        }
        http_root_close(&root);
    }
}

static void test_open_names(void **state)
{
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        struct http_root root;
        char head[64];
        const char *name = NULL;
        assert_int_equal(http_root_open(&root, root_dir, modes[m]), 0);
        assert_int_equal(resolve(&root, "/sub/", head, sizeof head, &name), 0);
        assert_string_equal(name, HTTP_INDEX_NAME);
        assert_int_equal(resolve(&root, "/sub/b.css", head, sizeof head, &name), 0);
        assert_string_equal(name, "b.css");
        assert_int_equal(resolve(&root, "/link_in", head, sizeof head, &name), 0);
        assert_string_equal(name, "link_in"); /* the type follows the request name */
        http_root_close(&root);
    }
}

static void test_no_symlinks_flag(void **state)
{
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        struct http_root root;
        char head[64];
        assert_int_equal(http_root_open(&root, root_dir, modes[m] | HTTP_PATH_NO_SYMLINKS), 0);
        assert_int_equal(resolve(&root, "/a.txt", head, sizeof head, NULL), 0);
        assert_int_equal(resolve(&root, "/sub/", head, sizeof head, NULL), 0);
        assert_int_equal(resolve(&root, "/link_in", head, sizeof head, NULL), -403);
        assert_int_equal(resolve(&root, "/link_dir/b.css", head, sizeof head, NULL), -403);
        assert_int_equal(resolve(&root, "/link_out", head, sizeof head, NULL), -403);
        http_root_close(&root);
    }
}

static void test_dir_redirect_flag(void **state)
{
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        struct http_root root;
        char head[64];
        assert_int_equal(http_root_open(&root, root_dir, modes[m] | HTTP_PATH_DIR_REDIRECT), 0);
        assert_int_equal(resolve(&root, "/sub", head, sizeof head, NULL), -301);
        assert_int_equal(resolve(&root, "/link_dir", head, sizeof head, NULL), -301);
        assert_int_equal(resolve(&root, "/sub/", head, sizeof head, NULL), 0);
        assert_int_equal(resolve(&root, "/", head, sizeof head, NULL), 0);
        assert_int_equal(resolve(&root, "/sub/deep/..", head, sizeof head, NULL), 0);
        http_root_close(&root);
    }
}

static void test_long_paths(void **state)
{
    static char target[2 * HTTP_PATH_MAX];
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        struct http_root root;
        char head[64];
        assert_int_equal(http_root_open(&root, root_dir, modes[m]), 0);
        /* One component longer than NAME_MAX. */
        target[0] = '/';
        memset(target + 1, 'a', 300);
        target[301] = '\0';
        assert_int_equal(resolve(&root, target, head, sizeof head, NULL), -404);
        /* Many components, just under the path limit. */
        size_t n = 0;
        while (n + 2 < HTTP_PATH_MAX) {
            target[n++] = '/';
            target[n++] = 'd';
        }
        target[n] = '\0';
        assert_int_equal(resolve(&root, target, head, sizeof head, NULL), -404);
        /* Over the path limit. */
        memset(target, '/', 1);
        memset(target + 1, 'x', HTTP_PATH_MAX + 10);
        target[HTTP_PATH_MAX + 11] = '\0';
        assert_int_equal(resolve(&root, target, head, sizeof head, NULL), -414);
        /* Hundreds of "sub/.." pairs stay inside. */
        n = 0;
        for (int i = 0; i < 300; i++)
            n += (size_t)sprintf(target + n, "/sub/..");
        sprintf(target + n, "/a.txt");
        assert_int_equal(resolve(&root, target, head, sizeof head, NULL), 0);
        http_root_close(&root);
    }
}

static void test_root_open_errors(void **state)
{
    struct http_root root;
    char path[256];
    snprintf(path, sizeof path, "%s/nope", base);
    assert_int_equal(http_root_open(&root, path, 0), -ENOENT);
    snprintf(path, sizeof path, "%s/outside.txt", base);
    assert_int_equal(http_root_open(&root, path, 0), -ENOTDIR);
    assert_int_equal(http_root_open(&root, root_dir, 0), 0);
    http_root_close(&root);
    http_root_close(&root); /* idempotent */
    assert_int_equal(root.fd, -1);
}

/* Raw http_path_open() input that did not come from the normaliser. */
static void test_open_unnormalised(void **state)
{
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        struct http_root root;
        struct http_file f;
        assert_int_equal(http_root_open(&root, root_dir, modes[m]), 0);
        assert_int_equal(http_path_open(&root, "../outside.txt", &f), -403);
        assert_int_equal(http_path_open(&root, "sub/../../outside.txt", &f), -403);
        assert_int_equal(http_path_open(&root, "/etc/passwd", &f), -403);
        assert_int_equal(http_path_open(&root, "sub/./b.css", &f), 0);
        close(f.fd);
        http_root_close(&root);
    }
}

/* Locations are built from the normalised path: one leading '/', the
 * unsafe bytes percent-encoded, one trailing '/', then the query. */
static void test_location(void **state)
{
    static const struct {
        const char *rel, *query, *want;
    } cases[] = {
        {"sub", "", "/sub/"},
        {"sub/", "", "/sub/"},
        {"a/b", "?x=//y", "/a/b/?x=//y"},
        {"/evil", "", "/evil/"},
        {"\\evil", "", "/%5Cevil/"},
        {"a b\r\nX: y", "", "/a%20b%0D%0AX:%20y/"},
        {"%2F?#", "", "/%252F%3F%23/"},
        {"\xc3\xa9t\xc3\xa9", "", "/%C3%A9t%C3%A9/"},
        {"", "", "/"},
        {"-._~!$&'()*+,;=:@", "", "/-._~!$&'()*+,;=:@/"},
    };
    char out[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int n = http_path_location(cases[i].rel, strlen(cases[i].rel), cases[i].query,
                                   strlen(cases[i].query), out, sizeof out);
        assert_int_equal(n, (int)strlen(cases[i].want));
        assert_memory_equal(out, cases[i].want, (size_t)n);
    }
    /* Exactly fitting, and one byte short. */
    assert_int_equal(http_path_location("ab", 2, "?q", 2, out, 6), 6);
    assert_int_equal(http_path_location("ab", 2, "?q", 2, out, 5), -414);
    assert_int_equal(http_path_location(" ", 1, "", 0, out, 4), -414);
    assert_int_equal(http_path_location(" ", 1, "", 0, out, 5), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_table),   cmocka_unit_test(test_normalize_raw_nul),
        cmocka_unit_test(test_normalize_lengths), cmocka_unit_test(test_open_table),
        cmocka_unit_test(test_open_names),        cmocka_unit_test(test_no_symlinks_flag),
        cmocka_unit_test(test_dir_redirect_flag), cmocka_unit_test(test_long_paths),
        cmocka_unit_test(test_root_open_errors),  cmocka_unit_test(test_open_unnormalised),
        cmocka_unit_test(test_location),
    };
    return cmocka_run_group_tests(tests, make_tree, remove_tree);
}
