/* test_cache.c - the per-worker open-file cache: hits within a second,
 * revalidation in a later one (changed content, size, replacement by
 * rename, deletion, a symlink turned to point outside the root), small
 * files held in memory and big ones as one descriptor, long paths through
 * the scratch entry, and the bound on descriptors. The clock is the
 * now_sec argument, so nothing here waits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first */
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http_cache.h"

static char base[64];
static char root_dir[96];
static struct http_root root;

static void put(const char *rel, const void *data, size_t len)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root_dir, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static int setup(void **state)
{
    snprintf(base, sizeof base, "/tmp/mux-cache-test-XXXXXX");
    if (mkdtemp(base) == NULL)
        return -1;
    snprintf(root_dir, sizeof root_dir, "%s/root", base);
    if (mkdir(root_dir, 0755) < 0)
        return -1;
    return http_root_open(&root, root_dir, 0) < 0 ? -1 : 0;
}

static int rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    http_root_close(&root);
    nftw(base, rm, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_small_file_in_memory(void **state)
{
    struct http_cache *c = http_cache_new();
    assert_non_null(c);
    const struct http_cached *f;
    put("a.txt", "hello", 5);
    int fds = count_fds();
    assert_int_equal(http_cache_get(c, &root, "a.txt", 100, &f), 0);
    assert_int_equal(count_fds(), fds); /* content copied, descriptor closed */
    assert_int_equal(f->fd, -1);
    assert_int_equal(f->facts.size, 5);
    assert_memory_equal(f->data, "hello", 5);
    assert_string_equal(f->facts.content_type, "text/plain; charset=utf-8");
    char etag[HTTP_ETAG_MAX];
    size_t n = http_etag(5, f->facts.mtime, etag);
    assert_int_equal(f->facts.etag_len, n);
    assert_memory_equal(f->facts.etag, etag, n);
    assert_int_equal(strlen(f->facts.last_modified), HTTP_DATE_LEN);

    /* Changed within the same second: still the cached bytes (the rule). */
    put("a.txt", "HELLO", 5);
    assert_int_equal(http_cache_get(c, &root, "a.txt", 100, &f), 0);
    assert_memory_equal(f->data, "hello", 5);
    /* A later second revalidates and sees the change (ctime moved). */
    put("a.txt", "HELLO!", 6);
    assert_int_equal(http_cache_get(c, &root, "a.txt", 101, &f), 0);
    assert_int_equal(f->facts.size, 6);
    assert_memory_equal(f->data, "HELLO!", 6);

    /* Replaced by rename: a new inode. */
    put("b.tmp", "other", 5);
    char from[512], to[512];
    snprintf(from, sizeof from, "%s/b.tmp", root_dir);
    snprintf(to, sizeof to, "%s/a.txt", root_dir);
    assert_int_equal(rename(from, to), 0);
    assert_int_equal(http_cache_get(c, &root, "a.txt", 102, &f), 0);
    assert_memory_equal(f->data, "other", 5);

    /* Deleted: 404 from the next second on. */
    assert_int_equal(unlink(to), 0);
    assert_int_equal(http_cache_get(c, &root, "a.txt", 103, &f), -404);
    assert_int_equal(http_cache_get(c, &root, "a.txt", 103, &f), -404);
    http_cache_free(c);
}

static void test_big_file_descriptor(void **state)
{
    size_t len = HTTP_CACHE_MEM_MAX + 1;
    char *data = malloc(len);
    memset(data, 'z', len);
    put("big.bin", data, len);
    free(data);
    struct http_cache *c = http_cache_new();
    const struct http_cached *f;
    int fds = count_fds();
    assert_int_equal(http_cache_get(c, &root, "big.bin", 5, &f), 0);
    assert_null(f->data);
    assert_true(f->fd >= 0);
    assert_int_equal(f->facts.size, len);
    int fd = f->fd;
    assert_int_equal(count_fds(), fds + 1);
    assert_int_equal(http_cache_get(c, &root, "big.bin", 5, &f), 0);
    assert_int_equal(f->fd, fd); /* a hit: the same descriptor */
    assert_int_equal(http_cache_get(c, &root, "big.bin", 6, &f), 0);
    assert_int_equal(f->fd, fd); /* revalidated, unchanged: kept */
    assert_int_equal(count_fds(), fds + 1);
    http_cache_free(c);
    assert_int_equal(count_fds(), fds);
}

/* Rules are applied again on revalidation: a symlink that now leaves the
 * root is refused, a directory gives its redirect or index. */
static void test_revalidation_reapplies_rules(void **state)
{
    char p[512];
    put("t.txt", "target", 6);
    snprintf(p, sizeof p, "%s/l.txt", root_dir);
    assert_int_equal(symlink("t.txt", p), 0);
    struct http_cache *c = http_cache_new();
    const struct http_cached *f;
    assert_int_equal(http_cache_get(c, &root, "l.txt", 7, &f), 0);
    assert_memory_equal(f->data, "target", 6);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(symlink("../outside", p), 0);
    assert_int_equal(http_cache_get(c, &root, "l.txt", 8, &f), -403);
    assert_int_equal(unlink(p), 0);

    snprintf(p, sizeof p, "%s/d", root_dir);
    assert_int_equal(mkdir(p, 0755), 0);
    put("d/index.html", "<p>", 3);
    assert_int_equal(http_cache_get(c, &root, "d/", 8, &f), 0);
    assert_string_equal(f->facts.content_type, "text/html; charset=utf-8");
    assert_int_equal(http_cache_get(c, &root, "", 8, &f), -403); /* root: no index */
    http_cache_free(c);
}

/* Paths too long to keep still work (scratch entry); many big files never
 * hold more than HTTP_CACHE_SLOTS descriptors. */
static void test_bounds(void **state)
{
    char name[HTTP_CACHE_KEY_MAX + 20], dir[512];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    name[200] = '\0'; /* a directory, then a file: no component over NAME_MAX */
    snprintf(dir, sizeof dir, "%s/%s", root_dir, name);
    assert_int_equal(mkdir(dir, 0755), 0);
    name[200] = '/';
    put(name, "long", 4);
    struct http_cache *c = http_cache_new();
    const struct http_cached *f;
    assert_int_equal(http_cache_get(c, &root, name, 9, &f), 0);
    assert_memory_equal(f->data, "long", 4);

    size_t len = HTTP_CACHE_MEM_MAX + 10;
    char *data = calloc(1, len);
    int fds = count_fds();
    for (int i = 0; i < HTTP_CACHE_SLOTS + 64; i++) {
        char rel[32];
        snprintf(rel, sizeof rel, "f%d.bin", i);
        put(rel, data, len);
        assert_int_equal(http_cache_get(c, &root, rel, 9, &f), 0);
        assert_true(f->fd >= 0);
    }
    free(data);
    int held = count_fds() - fds;
    print_message("%d big files looked up, %d descriptors held\n", HTTP_CACHE_SLOTS + 64, held);
    assert_true(held > 0 && held <= HTTP_CACHE_SLOTS);
    http_cache_free(c);
    assert_int_equal(count_fds(), fds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_file_in_memory),
        cmocka_unit_test(test_big_file_descriptor),
        cmocka_unit_test(test_revalidation_reapplies_rules),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
