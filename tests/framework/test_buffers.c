/* test_buffers.c - bufpool, inbuf (consumed-bytes, cap, release when empty)
 * and outq (append, iovec export, partial-write advance, file ranges); each
 * buffer also under random operations against a plain model (the seed is
 * printed; MUX_TEST_SEED=<n> replays a run). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bufpool.h"
#include "inbuf.h"
#include "outq.h"
#include "seed.h"

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
    mux__bufpool_init(&p, MUX__INBUF_BLOCK(16), 4);
    struct mux__inbuf b = {0};
    fill(&b, &p, 64, "hello ");
    mux__inbuf_consume(&b, 2);
    assert_int_equal(mux__inbuf_len(&b), 4);
    assert_memory_equal(mux__inbuf_data(&b), "llo ", 4);
    fill(&b, &p, 64, "world");
    assert_int_equal(mux__inbuf_len(&b), 9);
    assert_memory_equal(mux__inbuf_data(&b), "llo world", 9);
    mux__inbuf_release_if_empty(&b, &p);
    assert_non_null(b.blk); /* bytes pending: kept */
    mux__inbuf_consume(&b, 9);
    mux__inbuf_release_if_empty(&b, &p);
    assert_null(b.blk); /* idle: holds no buffer */
    assert_int_equal(p.nfree, 1);
    mux__bufpool_destroy(&p);
}

static void test_inbuf_grows_to_cap_then_refuses(void **state)
{
    struct mux__bufpool p;
    mux__bufpool_init(&p, MUX__INBUF_BLOCK(16), 4);
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
    assert_int_equal(mux__inbuf_len(&b), 100);
    mux__inbuf_free(&b, &p);
    assert_null(b.blk);
    mux__bufpool_destroy(&p);
}

static void test_inbuf_slides_partial_message(void **state)
{
    struct mux__bufpool p;
    mux__bufpool_init(&p, MUX__INBUF_BLOCK(16), 4);
    struct mux__inbuf b = {0};
    fill(&b, &p, 1000, "0123456789abcdef"); /* full block */
    mux__inbuf_consume(&b, 12);
    fill(&b, &p, 1000, "XYZ");               /* slides "cdef" down, no growth */
    assert_int_equal(mux__inbuf_cap(&b), 16);
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
    assert_int_equal(mux__outq_bytes(&q), 20);
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
    assert_int_equal(mux__outq_bytes(&q), 0);
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
    assert_int_equal(mux__outq_bytes(&q), 108);
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

/* ---- Randomized against models (seed printed; MUX_TEST_SEED replays) ---- */


static int group_setup(void **state)
{
    th_seed_rng("MUX_TEST_SEED");
    return 0;
}

/* A full block, then exactly one byte consumed and one read, many times:
 * each time the pending bytes slide down and the block does not grow. */
static void test_inbuf_one_byte_at_a_time_when_full(void **state)
{
    struct mux__bufpool p;
    mux__bufpool_init(&p, MUX__INBUF_BLOCK(16), 4);
    struct mux__inbuf b = {0};
    fill(&b, &p, 64, "0123456789abcdef");
    char expect[17] = "0123456789abcdef";
    for (int i = 0; i < 100; i++) {
        mux__inbuf_consume(&b, 1);
        size_t avail;
        char *dst = mux__inbuf_space(&b, &p, 64, &avail);
        assert_non_null(dst);
        assert_int_equal(avail, 1); /* the freed byte, at the end */
        assert_int_equal(mux__inbuf_cap(&b), 16); /* slid, not grown */
        *dst = (char)('A' + i % 26);
        mux__inbuf_commit(&b, 1);
        memmove(expect, expect + 1, 15);
        expect[15] = (char)('A' + i % 26);
        assert_memory_equal(mux__inbuf_data(&b), expect, 16);
    }
    mux__inbuf_free(&b, &p);
    assert_int_equal(p.in_use, 0);
    mux__bufpool_destroy(&p);
}

/* The model: the pending bytes as one flat array. */
struct inbuf_model {
    unsigned char *bytes;
    size_t len;
    unsigned char next; /* the byte value the next read writes */
};

static void inbuf_check(const struct mux__inbuf *b, const struct inbuf_model *m)
{
    assert_int_equal(mux__inbuf_len(b), m->len);
    if (m->len)
        assert_memory_equal(mux__inbuf_data(b), m->bytes, m->len);
    assert_true(b->blk == NULL || b->blk->start + b->blk->len <= b->blk->cap);
}

/* One read: space, then a random part of it (or all of it). */
static void inbuf_read(struct mux__inbuf *b, struct mux__bufpool *p, size_t max_input,
                       struct inbuf_model *m)
{
    size_t cap_before = b->blk ? b->blk->cap : p->block_size - sizeof(struct mux__inblock);
    size_t len_before = mux__inbuf_len(b), avail;
    char *dst = mux__inbuf_space(b, p, max_input, &avail);
    if (!dst) {
        assert_int_equal(avail, 0); /* not out of memory: the cap */
        assert_true(m->len >= max_input);
        return;
    }
    assert_true(avail > 0);
    assert_true(avail <= max_input - m->len);
    if (len_before < cap_before) /* room existed: slide, never grow */
        assert_int_equal(mux__inbuf_cap(b), cap_before);
    size_t n = th_rand() % 2 ? avail : 1 + th_rand() % avail;
    for (size_t i = 0; i < n; i++) /* writes every byte it was offered: ASan checks the room */
        dst[i] = (char)(m->next + i);
    mux__inbuf_commit(b, n);
    for (size_t i = 0; i < n; i++)
        m->bytes[m->len++] = (unsigned char)(m->next + i);
    m->next = (unsigned char)(m->next + n);
}

static void inbuf_consume(struct mux__inbuf *b, size_t n, struct inbuf_model *m)
{
    mux__inbuf_consume(b, n);
    memmove(m->bytes, m->bytes + n, m->len - n);
    m->len -= n;
}

static void inbuf_random_round(size_t block, size_t max_input, int steps)
{
    struct mux__bufpool p;
    mux__bufpool_init(&p, MUX__INBUF_BLOCK(block), 2);
    struct mux__inbuf b = {0};
    struct inbuf_model m = {.bytes = malloc(max_input)};
    assert_non_null(m.bytes);
    for (int s = 0; s < steps; s++) {
        unsigned op = (unsigned)(th_rand() % 20);
        if (op < 8)
            inbuf_read(&b, &p, max_input, &m);
        else if (op < 13 && m.len)
            inbuf_consume(&b, 1, &m); /* the handler takes one byte */
        else if (op < 17 && m.len)
            inbuf_consume(&b, th_rand() % (m.len + 1), &m);
        else if (op < 18)
            inbuf_consume(&b, m.len, &m);
        if (op >= 17) { /* the read path releases an idle buffer */
            mux__inbuf_release_if_empty(&b, &p);
            if (m.len == 0) {
                assert_null(b.blk);
                assert_int_equal(p.in_use, 0);
            } else {
                assert_non_null(b.blk);
            }
        }
        inbuf_check(&b, &m);
    }
    mux__inbuf_free(&b, &p);
    assert_null(b.blk);
    assert_int_equal(p.in_use, 0);
    mux__bufpool_destroy(&p);
    free(m.bytes);
}

static void test_inbuf_random_against_model(void **state)
{
    for (int r = 0; r < 40; r++) {
        size_t block = 16 + th_rand() % 64;
        size_t max_input = block + th_rand() % (block * 8); /* >= block, as the config demands */
        inbuf_random_round(block, max_input, 3000);
    }
    inbuf_random_round(16, 16, 2000); /* no growth possible at all */
}

/* The output queue's model: a list of segments, memory bytes or a file
 * range, in order. */
struct seg {
    int fd;              /* -1: memory */
    size_t len;          /* bytes left */
    unsigned char *data; /* memory: the bytes (start at data) */
};

struct outq_model {
    struct seg segs[512];
    int head, tail;      /* segs[head, tail) */
    size_t bytes;
    unsigned files;
    unsigned char next;
};

static void model_append(struct outq_model *m, size_t len)
{
    struct seg *t = m->tail > m->head ? &m->segs[m->tail - 1] : NULL;
    if (!t || t->fd >= 0) {
        assert_true(m->tail < 512);
        t = &m->segs[m->tail++];
        *t = (struct seg){.fd = -1};
    }
    unsigned char *grown = realloc(t->data, t->len + len);
    assert_non_null(grown);
    t->data = grown;
    for (size_t i = 0; i < len; i++)
        t->data[t->len + i] = (unsigned char)(m->next + i);
    t->len += len;
    m->bytes += len;
}

/* Drops n bytes from the front; fds of finished file segments go to
 * closed[] so the test can check that the queue closed them. */
static int model_advance(struct outq_model *m, size_t n, int *closed)
{
    int nclosed = 0;
    m->bytes -= n;
    while (m->head < m->tail) {
        struct seg *h = &m->segs[m->head];
        size_t k = n < h->len ? n : h->len;
        if (h->fd < 0)
            memmove(h->data, h->data + k, h->len - k);
        h->len -= k;
        n -= k;
        if (h->len > 0)
            break;
        if (h->fd >= 0) {
            closed[nclosed++] = h->fd;
            m->files--;
        }
        free(h->data);
        m->head++;
        if (n == 0 && !(m->head < m->tail && m->segs[m->head].fd >= 0 && m->segs[m->head].len == 0))
            break;
    }
    return nclosed;
}

/* The exported iovec: at most max entries (a sentinel after them must stay
 * untouched), the memory bytes in front of the first file range. */
static size_t check_iov(const struct mux__outq *q, const struct outq_model *m, int max)
{
    struct iovec *iov = malloc((size_t)(max + 1) * sizeof(*iov)); /* exact size + sentinel */
    assert_non_null(iov);
    iov[max].iov_base = (void *)iov;
    iov[max].iov_len = 0x5a5a;
    size_t total;
    int n = mux__outq_iov(q, iov, max, &total);
    assert_true(n >= 0 && n <= max);
    assert_ptr_equal(iov[max].iov_base, (void *)iov);
    assert_int_equal(iov[max].iov_len, 0x5a5a);
    size_t sum = 0, want = 0;
    const struct seg *s = m->head < m->tail ? &m->segs[m->head] : NULL;
    if (s && s->fd < 0)
        want = s->len;
    for (int i = 0; i < n; i++) {
        assert_true(iov[i].iov_len > 0);
        assert_true(sum + iov[i].iov_len <= want);
        assert_memory_equal(iov[i].iov_base, s->data + sum, iov[i].iov_len);
        sum += iov[i].iov_len;
    }
    assert_int_equal(total, sum);
    if (want && n < max) /* stopped early only because the memory bytes ended */
        assert_int_equal(sum, want);
    free(iov);
    return total;
}

static void check_outq(const struct mux__outq *q, const struct outq_model *m, size_t block)
{
    assert_int_equal(mux__outq_bytes(q), m->bytes);
    assert_int_equal(q->s ? q->s->files : 0, m->files);
    assert_true(!q->s || q->s->head); /* a header only with a chunk */
    assert_int_equal(mux__outq_cost(q, block), m->bytes + (size_t)m->files * block);
    assert_int_equal(mux__outq_empty(q), m->head == m->tail);
    const struct mux__chunk *f = mux__outq_head_file(q);
    const struct seg *h = m->head < m->tail ? &m->segs[m->head] : NULL;
    if (h && h->fd >= 0) {
        assert_non_null(f);
        assert_int_equal(f->fd, h->fd);
        assert_int_equal(f->remaining, h->len);
    } else {
        assert_null(f);
    }
}

/* One write: what a writev or sendfile of a random part would report. */
static void outq_write(struct mux__outq *q, struct mux__bufpool *p, struct outq_model *m)
{
    int max = 1 + (int)(th_rand() % 5); /* often fewer than the chunks queued */
    size_t total = check_iov(q, m, max), n;
    const struct mux__chunk *f = mux__outq_head_file(q);
    if (f)
        n = f->remaining ? th_rand() % (f->remaining + 1) : 0;
    else
        n = total ? th_rand() % (total + 1) : 0;
    int closed[512];
    int nclosed = model_advance(m, n, closed);
    mux__outq_advance(q, p, n);
    for (int i = 0; i < nclosed; i++) /* before any new fd can take the number */
        assert_int_equal(fcntl(closed[i], F_GETFD), -1);
}

static void outq_append_file(struct mux__outq *q, struct mux__bufpool *p, struct outq_model *m)
{
    if (m->tail >= 512)
        return;
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    size_t len = th_rand() % 4 == 0 ? 0 : th_rand() % 100000;
    assert_int_equal(mux__outq_append_file(q, p, fd, (off_t)(th_rand() % 1000), len), 0);
    m->segs[m->tail++] = (struct seg){.fd = fd, .len = len};
    m->bytes += len;
    m->files++;
}

static void outq_random_round(size_t block, int steps)
{
    struct mux__bufpool p;
    mux__bufpool_init(&p, block, 4);
    struct mux__outq q = {0};
    struct outq_model m = {0};
    size_t cap = block - sizeof(struct mux__chunk);
    unsigned char *buf = malloc(cap * 40);
    assert_non_null(buf);
    for (int s = 0; s < steps && m.tail < 500; s++) {
        unsigned op = (unsigned)(th_rand() % 10);
        if (op < 4) { /* up to 40 chunks in one send */
            size_t len = th_rand() % 3 ? 1 + th_rand() % (cap * 2) : 1 + th_rand() % (cap * 40);
            for (size_t i = 0; i < len; i++)
                buf[i] = (unsigned char)(m.next + i);
            assert_int_equal(mux__outq_append(&q, &p, buf, len), 0);
            model_append(&m, len);
            m.next = (unsigned char)(m.next + len);
        } else if (op < 5) {
            outq_append_file(&q, &p, &m);
        } else {
            outq_write(&q, &p, &m);
        }
        check_outq(&q, &m, block);
    }
    int fds[512], nfds = 0;
    for (int i = m.head; i < m.tail; i++) {
        if (m.segs[i].fd >= 0)
            fds[nfds++] = m.segs[i].fd;
        free(m.segs[i].data);
    }
    mux__outq_clear(&q, &p);
    for (int i = 0; i < nfds; i++)
        assert_int_equal(fcntl(fds[i], F_GETFD), -1);
    assert_true(mux__outq_empty(&q));
    assert_int_equal(mux__outq_bytes(&q), 0);
    assert_null(q.s); /* empty: no header */
    assert_int_equal(p.in_use, 0);
    mux__bufpool_destroy(&p);
    free(buf);
}

static void test_outq_random_against_model(void **state)
{
    for (int r = 0; r < 30; r++)
        outq_random_round(sizeof(struct mux__chunk) + 1 + th_rand() % 64, 2000);
}

/* One big send across many chunks, exported 3 iovecs at a time into an
 * array of exactly 3 (ASan sees any write past it), written back in full. */
static void test_outq_big_send_small_iov(void **state)
{
    struct mux__bufpool p;
    mux__bufpool_init(&p, sizeof(struct mux__chunk) + 100, 4);
    struct mux__outq q = {0};
    enum { BIG = 1 << 20 };
    unsigned char *in = malloc(BIG), *out = malloc(BIG);
    assert_non_null(in);
    assert_non_null(out);
    for (size_t i = 0; i < BIG; i++)
        in[i] = (unsigned char)(i * 7 + i / 251);
    assert_int_equal(mux__outq_append(&q, &p, in, BIG), 0);
    assert_int_equal(mux__outq_cost(&q, p.block_size), BIG);
    size_t got = 0;
    for (int rounds = 0; !mux__outq_empty(&q) && rounds < BIG; rounds++) {
        struct iovec *iov = malloc(3 * sizeof(*iov));
        assert_non_null(iov);
        size_t total;
        int n = mux__outq_iov(&q, iov, 3, &total);
        assert_true(n >= 1 && n <= 3);
        size_t take = total - (rounds % 2 ? total / 3 : 0); /* partial writes too */
        for (int i = 0; i < n && take; i++) {
            size_t k = iov[i].iov_len < take ? iov[i].iov_len : take;
            memcpy(out + got, iov[i].iov_base, k);
            got += k;
            take -= k;
            mux__outq_advance(&q, &p, k);
        }
        free(iov);
    }
    assert_int_equal(got, BIG);
    assert_memory_equal(in, out, BIG);
    assert_int_equal(p.in_use, 0);
    free(in);
    free(out);
    mux__outq_clear(&q, &p);
    mux__bufpool_destroy(&p);
}

/* Files count and cost: each range holds a descriptor and one block. */
static void test_outq_files_and_cost(void **state)
{
    struct mux__bufpool p;
    mux__bufpool_init(&p, sizeof(struct mux__chunk) + 64, 8);
    struct mux__outq q = {0};
    int a = open("/dev/null", O_RDONLY), b = open("/dev/null", O_RDONLY);
    assert_int_equal(mux__outq_append_file(&q, &p, a, 0, 0), 0); /* empty range */
    assert_int_equal(mux__outq_append(&q, &p, "xy", 2), 0);
    assert_int_equal(mux__outq_append_file(&q, &p, b, 5, 1000), 0);
    assert_int_equal(q.s->files, 2);
    assert_int_equal(mux__outq_cost(&q, p.block_size), 1002 + 2 * p.block_size);
    mux__outq_advance(&q, &p, 0); /* the empty range at the head finishes */
    assert_int_equal(q.s->files, 1);
    assert_int_equal(fcntl(a, F_GETFD), -1);
    mux__outq_advance(&q, &p, 2); /* "xy" written: the range is next */
    assert_non_null(mux__outq_head_file(&q));
    mux__outq_advance(&q, &p, 999);
    assert_int_equal(q.s->files, 1);
    assert_int_equal(mux__outq_cost(&q, p.block_size), 1 + p.block_size);
    mux__outq_advance(&q, &p, 1);
    assert_null(q.s); /* empty: no header */
    assert_int_equal(fcntl(b, F_GETFD), -1);
    assert_int_equal(mux__outq_cost(&q, p.block_size), 0);
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
        cmocka_unit_test(test_inbuf_one_byte_at_a_time_when_full),
        cmocka_unit_test(test_inbuf_random_against_model),
        cmocka_unit_test(test_outq_random_against_model),
        cmocka_unit_test(test_outq_big_send_small_iov),
        cmocka_unit_test(test_outq_files_and_cost),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
