/* test_verify.c - the reply verifiers of proto.c: echo and upper replies
 * split at every byte boundary verify; a flipped byte at any position, a
 * missing upper-casing, a stale replay or extra bytes are caught; http
 * replies are checked for status and a body equal, byte for byte, to the
 * reference (the first response, or --expect-file), which one connection
 * at a time may fetch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto.h"

#define NREQ 3
#define SIZE 37

struct fixture {
    struct stress_opts o;
    struct proto p;
    struct req slots[4];
    struct reqring ring;
    char reply[NREQ * SIZE];
    size_t reply_len;
};

/* NREQ outstanding requests on connection 7 and their correct reply. */
static void setup(struct fixture *f, enum proto_kind kind)
{
    memset(f, 0, sizeof(*f));
    f->o.proto = kind;
    f->o.size = SIZE;
    f->o.path = "/";
    f->o.target = "127.0.0.1:1";
    snprintf(f->o.authority, sizeof(f->o.authority), "127.0.0.1:1");
    assert_int_equal(proto_init(&f->p, &f->o, 42), 0);
    f->ring.slot = f->slots;
    f->ring.mask = 3;
    for (uint64_t i = 0; i < NREQ; i++) {
        struct req *r = ring_at(&f->ring, f->ring.tail++);
        proto_request(&f->p, 7, i, r);
        if (kind == PROTO_HTTP)
            continue;
        memcpy(f->reply + f->reply_len, f->p.rx + r->off, r->len);
        f->reply_len += r->len;
    }
    f->ring.unsent = f->ring.tail;
}

/* Feeds data in the given pieces, popping completed requests like the
 * client does. Returns the number completed, or -1 at a failure. */
static int feed_pieces(struct fixture *f, const char *data, const size_t *cuts, int ncuts,
                       struct proto_rx *rx)
{
    struct verify_err err;
    size_t off = 0;
    int total = 0;
    for (int k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : f->reply_len;
        uint32_t done = 0;
        int rc = proto_feed(&f->p, rx, &f->ring, data + off, end - off, &done, &err);
        f->ring.head += done;
        total += (int)done;
        if (rc < 0)
            return -1;
        off = end;
    }
    return total;
}

static void reset_ring(struct fixture *f, struct proto_rx *rx)
{
    f->ring.head = 0;
    proto_rx_reset(rx);
}

static void every_split(enum proto_kind kind)
{
    struct fixture f;
    struct proto_rx rx;
    setup(&f, kind);
    for (size_t a = 0; a <= f.reply_len; a++)
        for (size_t b = a; b <= f.reply_len; b += 7) {
            size_t cuts[2] = {a, b};
            reset_ring(&f, &rx);
            if (feed_pieces(&f, f.reply, cuts, 2, &rx) != NREQ)
                fail_msg("cuts %zu,%zu", a, b);
        }
    proto_free(&f.p);
}

static void test_echo_every_split(void **state)
{
    every_split(PROTO_ECHO);
}

static void test_upper_every_split(void **state)
{
    every_split(PROTO_UPPER);
}

/* A flipped byte at each position is caught, and exactly the requests
 * before it complete. */
static void flipped(enum proto_kind kind)
{
    struct fixture f;
    struct proto_rx rx;
    setup(&f, kind);
    for (size_t i = 0; i < f.reply_len; i++) {
        char bad[sizeof(f.reply)];
        memcpy(bad, f.reply, f.reply_len);
        bad[i] ^= 0x01;
        size_t cut = i / 2;
        reset_ring(&f, &rx);
        assert_int_equal(feed_pieces(&f, bad, &cut, 1, &rx), -1);
        assert_int_equal(f.ring.head, i / SIZE);
    }
    proto_free(&f.p);
}

static void test_echo_flip_caught(void **state)
{
    flipped(PROTO_ECHO);
}

static void test_upper_flip_caught(void **state)
{
    flipped(PROTO_UPPER);
}

static void test_upper_pattern_mixed(void **state)
{
    struct fixture f;
    setup(&f, PROTO_UPPER);
    size_t lower = 0, other = 0;
    for (size_t i = 0; i < f.p.pattern_len; i++) {
        lower += f.p.tx[i] >= 'a' && f.p.tx[i] <= 'z';
        other += !((f.p.tx[i] | 0x20) >= 'a' && (f.p.tx[i] | 0x20) <= 'z');
    }
    assert_true(lower > f.p.pattern_len / 3);
    assert_true(other > f.p.pattern_len / 10);
    /* a server that echoes instead of upper-casing fails */
    struct proto_rx rx;
    reset_ring(&f, &rx);
    char echoed[sizeof(f.reply)];
    size_t off = 0;
    for (uint32_t i = 0; i < NREQ; i++) {
        const struct req *r = ring_at(&f.ring, i);
        memcpy(echoed + off, proto_req_bytes(&f.p, r), r->len);
        off += r->len;
    }
    assert_int_equal(feed_pieces(&f, echoed, NULL, 0, &rx), -1);
    proto_free(&f.p);
}

static void test_stale_and_extra(void **state)
{
    struct fixture f;
    struct proto_rx rx;
    struct verify_err err;
    uint32_t done;
    setup(&f, PROTO_ECHO);
    assert_int_not_equal(ring_at(&f.ring, 0)->off, ring_at(&f.ring, 1)->off);
    /* reply 0 twice: the replay of request 0 in place of request 1 fails */
    reset_ring(&f, &rx);
    assert_int_equal(proto_feed(&f.p, &rx, &f.ring, f.reply, SIZE, &done, &err), 0);
    assert_int_equal(done, 1);
    f.ring.head += done;
    assert_int_equal(proto_feed(&f.p, &rx, &f.ring, f.reply, SIZE, &done, &err), -1);
    /* bytes beyond the outstanding requests fail */
    char more[sizeof(f.reply) + 1];
    memcpy(more, f.reply, f.reply_len);
    more[f.reply_len] = 'x';
    reset_ring(&f, &rx);
    assert_int_equal(proto_feed(&f.p, &rx, &f.ring, more, f.reply_len + 1, &done, &err), -1);
    assert_int_equal(done, NREQ);
    assert_non_null(strstr(err.msg, "no request outstanding"));
    /* a close answers nothing: the owed requests stay outstanding (the
     * client counts them as lost) */
    reset_ring(&f, &rx);
    assert_int_equal(proto_eof(&f.p, &rx, &f.ring, &done, &err), 0);
    assert_int_equal(done, 0);
    f.ring.head = f.ring.tail;
    assert_int_equal(proto_eof(&f.p, &rx, &f.ring, &done, &err), 0);
    proto_free(&f.p);
}

static void test_request_content_varies(void **state)
{
    struct fixture f;
    setup(&f, PROTO_ECHO);
    int same = 0;
    struct req a, b;
    for (uint64_t i = 0; i < 1000; i++) {
        proto_request(&f.p, 3, i, &a);
        proto_request(&f.p, 3, i + 1, &b);
        same += a.off == b.off;
        assert_true(a.off + a.len <= f.p.pattern_len);
    }
    assert_true(same < 5);
    proto_free(&f.p);
}

static struct verify_err last_err;

/* Feeds stream as replies on connection 7, which claims the reference
 * fetch if there is none yet. */
static int http_run_len(struct fixture *f, const char *stream, size_t len, size_t cut)
{
    struct proto_rx rx = {.conn = 7};
    reset_ring(f, &rx);
    assert_true(proto_may_send(&f->p, &rx));
    f->reply_len = len;
    size_t off = 0;
    int total = 0;
    for (int k = 0; k < 2; k++) {
        size_t end = k == 0 ? cut : len;
        uint32_t done = 0;
        int rc = proto_feed(&f->p, &rx, &f->ring, stream + off, end - off, &done, &last_err);
        f->ring.head += done;
        total += (int)done;
        if (rc < 0)
            return -1;
        off = end;
    }
    return total;
}

static int http_run(struct fixture *f, const char *stream, size_t cut)
{
    return http_run_len(f, stream, strlen(stream), cut);
}

static void test_http(void **state)
{
    struct fixture f;
    setup(&f, PROTO_HTTP);
    assert_non_null(strstr(f.p.http_req, "GET / HTTP/1.1\r\nHost: 127.0.0.1:1\r\n"));
    const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody"
                     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n"
                     "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody";
    for (size_t cut = 0; cut <= strlen(ok); cut++)
        assert_int_equal(http_run(&f, ok, cut), NREQ);
    const char *status = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody"
                         "HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nbody";
    assert_int_equal(http_run(&f, status, 5), -1);
    assert_int_equal(f.ring.head, 1);
    const char *len = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbod";
    assert_int_equal(http_run(&f, len, 0), -1);
    const char *garbage = "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n";
    assert_int_equal(http_run(&f, garbage, 0), -1);
    proto_free(&f.p);
}

/* Three responses with random bodies of one length; response `bad` has one
 * byte changed at `pos` (or none when bad < 0). */
static size_t make_stream(char *out, size_t size, const char *body, size_t len, int bad,
                          size_t pos)
{
    size_t n = 0;
    for (int i = 0; i < NREQ; i++) {
        n += (size_t)snprintf(out + n, size - n, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
                              len);
        memcpy(out + n, body, len);
        if (i == bad)
            out[n + pos] ^= 0x01;
        n += len;
    }
    return n;
}

/* The first response is the reference: a later body of the right length
 * with one byte changed anywhere fails, and the message names the byte. */
static void test_http_body_compared(void **state)
{
    char body[200], stream[1024];
    unsigned long long seed = 0x5eed0001;
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (char)((seed = seed * 6364136223846793005ull + 1) >> 56);
    for (size_t pos = 0; pos < sizeof(body); pos += 13) {
        struct fixture f;
        setup(&f, PROTO_HTTP);
        size_t n = make_stream(stream, sizeof(stream), body, sizeof(body), -1, 0);
        assert_int_equal(http_run_len(&f, stream, n, pos), NREQ); /* also publishes */
        assert_true(proto_ready(&f.p));
        n = make_stream(stream, sizeof(stream), body, sizeof(body), 1 + (int)(pos % 2), pos);
        assert_int_equal(http_run_len(&f, stream, n, n / 2), -1);
        char want[64];
        snprintf(want, sizeof(want), "body byte %zu of 200", pos);
        assert_non_null(strstr(last_err.msg, want));
        proto_free(&f.p);
    }
}

/* --expect-file: the file is the reference from the start; a different
 * first body, a longer one and a shorter one fail. */
static void test_http_expect_file(void **state)
{
    char path[] = "/tmp/stress_verify_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "hello", 5), 5);
    close(fd);
    struct fixture f;
    setup(&f, PROTO_HTTP);
    assert_int_equal(proto_expect_file(&f.p, path), 0);
    unlink(path);
    assert_true(proto_ready(&f.p));
    assert_int_equal(http_run(&f, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 3), 1);
    assert_int_equal(http_run(&f, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhellO", 0), -1);
    assert_non_null(strstr(last_err.msg, "body byte 4 of 5"));
    assert_int_equal(http_run(&f, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello!", 0), -1);
    assert_non_null(strstr(last_err.msg, "longer"));
    assert_int_equal(http_run(&f, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nhell", 0), -1);
    assert_non_null(strstr(last_err.msg, "body of 4 bytes, expected 5"));
    assert_int_equal(proto_expect_file(&f.p, "/nonexistent/file"), -1);
    proto_free(&f.p);
}

/* Until the reference exists one connection at a time may send; one that
 * ends hands the fetch over; once published everyone may send. */
static void test_http_reference_gate(void **state)
{
    struct fixture f;
    setup(&f, PROTO_HTTP);
    struct proto_rx a = {.conn = 1}, b = {.conn = 2};
    proto_rx_reset(&a);
    proto_rx_reset(&b);
    assert_false(proto_ready(&f.p));
    assert_true(proto_may_send(&f.p, &a));
    assert_true(proto_may_send(&f.p, &a));
    assert_false(proto_may_send(&f.p, &b));
    proto_conn_ended(&f.p, &b); /* not the owner: changes nothing */
    assert_false(proto_may_send(&f.p, &b));
    proto_conn_ended(&f.p, &a);
    assert_true(proto_may_send(&f.p, &b));
    assert_false(proto_may_send(&f.p, &a));
    /* b's first response becomes the reference */
    struct reqring ring = f.ring;
    ring.head = 0;
    uint32_t done = 0;
    struct verify_err err;
    const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    assert_int_equal(proto_feed(&f.p, &b, &ring, resp, strlen(resp), &done, &err), 0);
    assert_int_equal(done, 1);
    assert_true(proto_ready(&f.p));
    assert_true(proto_may_send(&f.p, &a));
    proto_free(&f.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_every_split),       cmocka_unit_test(test_upper_every_split),
        cmocka_unit_test(test_echo_flip_caught),       cmocka_unit_test(test_upper_flip_caught),
        cmocka_unit_test(test_upper_pattern_mixed),    cmocka_unit_test(test_stale_and_extra),
        cmocka_unit_test(test_request_content_varies), cmocka_unit_test(test_http),
        cmocka_unit_test(test_http_body_compared),     cmocka_unit_test(test_http_expect_file),
        cmocka_unit_test(test_http_reference_gate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
