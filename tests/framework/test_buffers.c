/* test_buffers.c - bufpool, inbuf (consumed-bytes, cap, release when empty)
 * and outq (append, iovec export, partial-write advance, file ranges). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bufpool.h"
#include "inbuf.h"
#include "outq.h"

static void test_pool_keeps_recent_peak_then_trims(void **state)
{
    struct mux__bufpool p;
    mux__bufpool_init(&p, 1024, 2);
    enum { N = 100 };
    void *b[N];
    for (int i = 0; i < N; i++) /* a burst: 100 blocks in use at once */
        b[i] = mux__bufpool_get(&p);
    assert_int_equal(p.in_use, N);
    for (int i = 0; i < N; i++)
        mux__bufpool_put(&p, b[i]);
    assert_int_equal(p.nfree, N); /* kept: the next burst needs no malloc */
    void *again = mux__bufpool_get(&p);
    assert_ptr_equal(again, b[N - 1]); /* LIFO reuse, cache-warm */
    mux__bufpool_put(&p, again);
    mux__bufpool_trim(&p); /* end of the period that saw the burst */
    assert_int_equal(p.nfree, N);
    mux__bufpool_trim(&p); /* a quiet period: back to min_free */
    assert_int_equal(p.nfree, 2);
    mux__bufpool_destroy(&p);
    assert_int_equal(p.nfree, 0);
}

static void fill(struct mux__inbuf *b, struct mux__bufpool *p, size_t max, const char *s)
{
    size_t avail;
    char *dst = mux__inbuf_space(b, p, max, &avail);
    assert_non_null(dst);
    assert_true(avail >= strlen(s));
    memcpy(dst, s, strlen(s));
    mux__inbuf_commit(b, strlen(s));
}

static void test_inbuf_consumed_bytes(void **state)
{
    struct mux__bufpool p;
    mux__bufpool_init(&p, 16, 4);
    struct mux__inbuf b = {0};
    fill(&b, &p, 64, "hello ");
    mux__inbuf_consume(&b, 2);
    assert_int_equal(b.len, 4);
    assert_memory_equal(mux__inbuf_data(&b), "llo ", 4);
    fill(&b, &p, 64, "world");
    assert_int_equal(b.len, 9);
    assert_memory_equal(mux__inbuf_data(&b), "llo world", 9);
    mux__inbuf_release_if_empty(&b, &p);
    assert_non_null(b.data); /* bytes pending: kept */
    mux__inbuf_consume(&b, 9);
    mux__inbuf_release_if_empty(&b, &p);
    assert_null(b.data); /* idle: holds no buffer */
    assert_int_equal(p.nfree, 1);
    mux__bufpool_destroy(&p);
}

static void test_inbuf_grows_to_cap_then_refuses(void **state)
{
    struct mux__bufpool p;
    mux__bufpool_init(&p, 16, 4);
    struct mux__inbuf b = {0};
    size_t total = 0, avail;
    char *dst;
    while ((dst = mux__inbuf_space(&b, &p, 100, &avail)) != NULL) {
        memset(dst, 'x', avail);
        mux__inbuf_commit(&b, avail);
        total += avail;
        assert_true(total <= 100);
    }
    assert_int_equal(avail, 0); /* cap reached, not out of memory */
    assert_int_equal(total, 100);
    assert_int_equal(b.len, 100);
    mux__inbuf_free(&b, &p);
    assert_null(b.data);
    mux__bufpool_destroy(&p);
}

static void test_inbuf_slides_partial_message(void **state)
{
    struct mux__bufpool p;
    mux__bufpool_init(&p, 16, 4);
    struct mux__inbuf b = {0};
    fill(&b, &p, 1000, "0123456789abcdef"); /* full block */
    mux__inbuf_consume(&b, 12);
    fill(&b, &p, 1000, "XYZ");               /* slides "cdef" down, no growth */
    assert_int_equal(b.cap, 16);
    assert_memory_equal(mux__inbuf_data(&b), "cdefXYZ", 7);
    mux__inbuf_free(&b, &p);
    mux__bufpool_destroy(&p);
}

static void test_outq_iov_and_partial_writes(void **state)
{
    struct mux__bufpool p;
    mux__bufpool_init(&p, sizeof(struct mux__chunk) + 8, 8);
    struct mux__outq q = {0};
    assert_int_equal(mux__outq_append(&q, &p, "abcdefghijklmnopqrst", 20), 0);
    assert_int_equal(q.bytes, 20);
    struct iovec iov[8];
    size_t total;
    int n = mux__outq_iov(&q, iov, 8, &total);
    assert_int_equal(n, 3); /* 8 + 8 + 4 */
    assert_int_equal(total, 20);
    mux__outq_advance(&q, &p, 10); /* a partial write across chunks */
    n = mux__outq_iov(&q, iov, 8, &total);
    assert_int_equal(total, 10);
    assert_memory_equal(iov[0].iov_base, "klmnop", 6);
    assert_int_equal(mux__outq_append(&q, &p, "uv", 2), 0); /* fills the tail chunk */
    n = mux__outq_iov(&q, iov, 8, &total);
    assert_int_equal(n, 2);
    assert_int_equal(total, 12);
    mux__outq_advance(&q, &p, 12);
    assert_true(mux__outq_empty(&q));
    assert_int_equal(q.bytes, 0);
    mux__outq_clear(&q, &p);
    mux__bufpool_destroy(&p);
}

static void test_outq_file_range_splits_iov(void **state)
{
    struct mux__bufpool p;
    mux__bufpool_init(&p, sizeof(struct mux__chunk) + 64, 8);
    struct mux__outq q = {0};
    int fd = open("/dev/null", O_RDONLY);
    assert_true(fd >= 0);
    mux__outq_append(&q, &p, "head", 4);
    assert_int_equal(mux__outq_append_file(&q, &p, fd, 10, 100), 0);
    mux__outq_append(&q, &p, "tail", 4);
    assert_int_equal(q.bytes, 108);
    struct iovec iov[8];
    size_t total;
    assert_int_equal(mux__outq_iov(&q, iov, 8, &total), 1); /* stops at the file */
    mux__outq_advance(&q, &p, 4);
    struct mux__chunk *f = mux__outq_head_file(&q);
    assert_non_null(f);
    mux__outq_advance(&q, &p, 60);
    assert_int_equal(f->offset, 70);
    assert_int_equal(f->remaining, 40);
    mux__outq_advance(&q, &p, 40); /* file done: fd closed, "tail" next */
    assert_null(mux__outq_head_file(&q));
    assert_int_equal(mux__outq_iov(&q, iov, 8, &total), 1);
    assert_memory_equal(iov[0].iov_base, "tail", 4);
    assert_int_equal(fcntl(fd, F_GETFD), -1); /* the queue closed it */
    mux__outq_clear(&q, &p);
    mux__bufpool_destroy(&p);
}

static void test_outq_clear_closes_files(void **state)
{
    struct mux__bufpool p;
    mux__bufpool_init(&p, sizeof(struct mux__chunk) + 64, 8);
    struct mux__outq q = {0};
    int fd = open("/dev/null", O_RDONLY);
    mux__outq_append_file(&q, &p, fd, 0, 5);
    mux__outq_clear(&q, &p);
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    assert_true(mux__outq_empty(&q));
    mux__bufpool_destroy(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_keeps_recent_peak_then_trims),
        cmocka_unit_test(test_inbuf_consumed_bytes),
        cmocka_unit_test(test_inbuf_grows_to_cap_then_refuses),
        cmocka_unit_test(test_inbuf_slides_partial_message),
        cmocka_unit_test(test_outq_iov_and_partial_writes),
        cmocka_unit_test(test_outq_file_range_splits_iov),
        cmocka_unit_test(test_outq_clear_closes_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
