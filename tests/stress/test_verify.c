/* test_verify.c - the reply verifiers of proto.c: echo and upper replies
 * split at every byte boundary verify; a flipped byte at any position, a
 * missing upper-casing, a stale replay or extra bytes are caught; http
 * replies are checked for status and consistent body length. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    /* a close while replies are owed fails; with none owed it does not */
    reset_ring(&f, &rx);
    assert_int_equal(proto_eof(&f.p, &rx, &f.ring, &done, &err), -1);
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

static int http_run(struct fixture *f, const char *stream, size_t cut)
{
    struct proto_rx rx;
    reset_ring(f, &rx);
    f->reply_len = strlen(stream);
    return feed_pieces(f, stream, &cut, 1, &rx);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_every_split),       cmocka_unit_test(test_upper_every_split),
        cmocka_unit_test(test_echo_flip_caught),       cmocka_unit_test(test_upper_flip_caught),
        cmocka_unit_test(test_upper_pattern_mixed),    cmocka_unit_test(test_stale_and_extra),
        cmocka_unit_test(test_request_content_varies), cmocka_unit_test(test_http),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
