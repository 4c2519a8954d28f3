/* test_proxy_proto.c - the PROXY protocol header parser: valid v1/v2
 * headers fed at every split point, malformed headers rejected at the first
 * byte that proves them wrong, random valid headers, a mutation fuzz (seed
 * printed; MUX_TEST_SEED=<n> replays), and the bytes a real haproxy writes
 * with send-proxy / send-proxy-v2 (skipped when haproxy is not installed;
 * MUX_HAPROXY=<path> picks the binary).
 * Every parse reads from an exact-size heap copy so ASan and valgrind see
 * any read past the bytes given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "proxy_proto.h"
#include "seed.h"

static const unsigned char sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* ---- helpers ---- */

static int parse_exact(const void *buf, size_t len, struct mux__proxy_result *r)
{
    void *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, buf, len);
    int n = mux__proxy_parse(copy, len, r);
    free(copy);
    return n;
}

static void assert_addr(const struct sockaddr_storage *ss, socklen_t len, const char *host,
                        int port)
{
    struct sockaddr_storage want;
    socklen_t wlen;
    assert_int_equal(th_sockaddr(host, port, &want, &wlen), 0);
    assert_int_equal(len, wlen);
    assert_int_equal(ss->ss_family, want.ss_family);
    assert_memory_equal(ss, &want, wlen); /* family, port, address, zeroed rest */
}

static void assert_same_result(const struct mux__proxy_result *a, const struct mux__proxy_result *b)
{
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->has_addrs, b->has_addrs);
    assert_int_equal(a->src_len, b->src_len);
    assert_int_equal(a->dst_len, b->dst_len);
    assert_memory_equal(&a->src, &b->src, a->src_len);
    assert_memory_equal(&a->dst, &b->dst, a->dst_len);
}

/* out must stay untouched unless the header is complete. */
static void assert_untouched(const struct mux__proxy_result *r)
{
    unsigned char fill[sizeof(*r)];
    memset(fill, 0xA5, sizeof(fill));
    assert_memory_equal(r, fill, sizeof(fill));
}

/* Every prefix of buf (total bytes, the header its first hdr): 0 below hdr,
 * then hdr with one and the same result. Returns that result in *final. */
static void check_every_prefix(const void *buf, size_t total, size_t hdr,
                               struct mux__proxy_result *final)
{
    for (size_t k = 0; k <= total; k++) {
        struct mux__proxy_result r;
        memset(&r, 0xA5, sizeof(r));
        int n = parse_exact(buf, k, &r);
        if (k < hdr) {
            if (n != 0)
                fail_msg("prefix %zu of a %zu-byte header: got %d, want 0", k, hdr, n);
            assert_untouched(&r);
        } else {
            if (n != (int)hdr)
                fail_msg("prefix %zu of a %zu-byte header: got %d", k, hdr, n);
            if (k == hdr)
                *final = r;
            else
                assert_same_result(final, &r);
        }
    }
}

/* Every prefix below fail_at needs more; from fail_at on it is invalid. */
static void check_invalid_from(const char *name, const void *buf, size_t len, size_t fail_at)
{
    assert_true(fail_at >= 1 && fail_at <= len);
    for (size_t k = 0; k <= len; k++) {
        struct mux__proxy_result r;
        memset(&r, 0xA5, sizeof(r));
        int n = parse_exact(buf, k, &r);
        int want = k < fail_at ? 0 : -EINVAL;
        if (n != want)
            fail_msg("%s: prefix %zu/%zu: got %d, want %d", name, k, len, n, want);
        assert_untouched(&r);
    }
}

static size_t v2_build(unsigned char *out, unsigned ver_cmd, unsigned fam, const void *body,
                       size_t blen)
{
    memcpy(out, sig, 12);
    out[12] = (unsigned char)ver_cmd;
    out[13] = (unsigned char)fam;
    out[14] = (unsigned char)(blen >> 8);
    out[15] = (unsigned char)blen;
    if (blen)
        memcpy(out + 16, body, blen);
    return 16 + blen;
}

/* A v2 address block: TCP4 (12 bytes) or TCP6 (36) from text addresses. */
static size_t v2_addrs(unsigned char *out, int family, const char *src, const char *dst,
                       int sport, int dport)
{
    size_t alen = family == AF_INET ? 4 : 16;
    assert_int_equal(inet_pton(family, src, out), 1);
    assert_int_equal(inet_pton(family, dst, out + alen), 1);
    out[2 * alen] = (unsigned char)(sport >> 8);
    out[2 * alen + 1] = (unsigned char)sport;
    out[2 * alen + 2] = (unsigned char)(dport >> 8);
    out[2 * alen + 3] = (unsigned char)dport;
    return 2 * alen + 4;
}

/* Application data after the header: itself PROXY-like, to show only the
 * first header is consumed. */
static const char app_data[] = "PROXY TCP4 9.9.9.9 9.9.9.9 9 9\r\nGET / HTTP/1.1\r\n\r\n";

/* ---- valid v1 ---- */

struct v1_case {
    const char *line;
    const char *src, *dst; /* NULL: UNKNOWN, the real peer stands */
    int sport, dport;
};

static void test_v1_valid(void **state)
{
    static const struct v1_case cases[] = {
        {"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", "192.168.0.1", "192.168.0.11",
         56324, 443},
        {"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n", "255.255.255.255",
         "255.255.255.255", 65535, 65535},
        {"PROXY TCP4 0.0.0.0 10.0.0.1 0 1\r\n", "0.0.0.0", "10.0.0.1", 0, 1},
        {"PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 1 65535\r\n", "2001:db8::1", "::ffff:10.0.0.1",
         1, 65535},
        {"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
         "FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF 65535 65535\r\n",
         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
         65535, 65535},
        {"PROXY TCP6 ::1 ::1 8080 80\r\n", "::1", "::1", 8080, 80},
        {"PROXY UNKNOWN\r\n", NULL, NULL, 0, 0},
        {"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n", NULL, NULL, 0, 0},
        {"PROXY UNKNOWN anything, even  double spaces\r\n", NULL, NULL, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct v1_case *c = &cases[i];
        char buf[256];
        size_t hdr = strlen(c->line);
        int total = snprintf(buf, sizeof(buf), "%s%s", c->line, app_data);
        struct mux__proxy_result r;
        check_every_prefix(buf, (size_t)total, hdr, &r);
        assert_int_equal(r.version, 1);
        assert_int_equal(r.has_addrs, c->src != NULL);
        if (c->src) {
            assert_addr(&r.src, r.src_len, c->src, c->sport);
            assert_addr(&r.dst, r.dst_len, c->dst, c->dport);
        } else {
            assert_int_equal(r.src_len, 0);
            assert_int_equal(r.dst_len, 0);
        }
    }
}

/* The spec's worst case, 107 bytes with the CRLF, is accepted; one more
 * byte before the CRLF is too long, decided at byte 107. */
static void test_v1_length_limit(void **state)
{
    char line[200];
    size_t pad = MUX__PROXY_V1_MAX - strlen("PROXY UNKNOWN \r\n");
    memcpy(line, "PROXY UNKNOWN ", 14);
    memset(line + 14, 'f', pad);
    memcpy(line + 14 + pad, "\r\n", 2);
    struct mux__proxy_result r;
    check_every_prefix(line, MUX__PROXY_V1_MAX, MUX__PROXY_V1_MAX, &r);
    assert_false(r.has_addrs);

    memset(line + 14, 'f', pad + 1); /* one byte more before the CRLF */
    memcpy(line + 14 + pad + 1, "\r\n", 2);
    check_invalid_from("108-byte line", line, MUX__PROXY_V1_MAX + 1, MUX__PROXY_V1_MAX);
    memset(line + 14, 'a', sizeof(line) - 14);
    check_invalid_from("no CRLF", line, sizeof(line), MUX__PROXY_V1_MAX);
}

/* ---- valid v2 ---- */

struct v2_case {
    const char *name;
    unsigned ver_cmd, fam;
    int family; /* AF_INET/AF_INET6: addresses follow; 0: a raw body */
    const char *src, *dst;
    int sport, dport;
    size_t raw_len; /* family 0: body of this many bytes */
    bool tlvs;      /* append TLVs after the addresses */
    bool has_addrs; /* expected */
};

static size_t v2_case_build(const struct v2_case *c, unsigned char *out)
{
    unsigned char body[600];
    size_t blen = 0;
    if (c->family)
        blen = v2_addrs(body, c->family, c->src, c->dst, c->sport, c->dport);
    else
        for (; blen < c->raw_len; blen++)
            body[blen] = (unsigned char)(blen * 37 + 11);
    if (c->tlvs) {
        static const unsigned char tlvs[] = {
            0x01, 0x00, 0x02, 'h', '2',                  /* ALPN */
            0x04, 0x00, 0x00,                            /* NOOP, empty */
            0x02, 0x00, 0x0b, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'c', 'o', 'm',
            0x03, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef,    /* CRC32C (not verified) */
        };
        memcpy(body + blen, tlvs, sizeof(tlvs));
        blen += sizeof(tlvs);
    }
    return v2_build(out, c->ver_cmd, c->fam, body, blen);
}

static void test_v2_valid(void **state)
{
    static const struct v2_case cases[] = {
        {"TCP4", 0x21, 0x11, AF_INET, "172.19.0.1", "172.19.0.3", 42578, 80, 0, false, true},
        {"TCP6", 0x21, 0x21, AF_INET6, "2001:db8::7", "fe80::1", 1, 65535, 0, false, true},
        {"TCP4+TLVs", 0x21, 0x11, AF_INET, "10.1.2.3", "10.3.2.1", 0, 443, 0, true, true},
        {"TCP6+TLVs", 0x21, 0x21, AF_INET6, "::1", "::ffff:1.2.3.4", 65535, 0, 0, true, true},
        {"LOCAL", 0x20, 0x00, 0, NULL, NULL, 0, 0, 0, false, false},
        {"LOCAL with an address block", 0x20, 0x11, AF_INET, "1.2.3.4", "5.6.7.8", 1, 2, 0,
         false, false},
        {"LOCAL, short body, TCP6 family", 0x20, 0x21, 0, NULL, NULL, 0, 0, 3, false, false},
        {"PROXY UNSPEC", 0x21, 0x00, 0, NULL, NULL, 0, 0, 5, false, false},
        {"PROXY UDP4", 0x21, 0x12, AF_INET, "1.2.3.4", "5.6.7.8", 53, 53, 0, false, false},
        {"PROXY UNIX stream", 0x21, 0x31, 0, NULL, NULL, 0, 0, 216, false, false},
        {"PROXY INET, UNSPEC transport", 0x21, 0x10, 0, NULL, NULL, 0, 0, 0, false, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct v2_case *c = &cases[i];
        unsigned char buf[1024];
        size_t hdr = v2_case_build(c, buf);
        memcpy(buf + hdr, app_data, sizeof(app_data) - 1);
        struct mux__proxy_result r;
        print_message("v2 %s (%zu bytes)\n", c->name, hdr);
        check_every_prefix(buf, hdr + sizeof(app_data) - 1, hdr, &r);
        assert_int_equal(r.version, 2);
        assert_int_equal(r.has_addrs, c->has_addrs);
        if (c->has_addrs) {
            assert_addr(&r.src, r.src_len, c->src, c->sport);
            assert_addr(&r.dst, r.dst_len, c->dst, c->dport);
        }
    }
}

/* The length bound: MUX__PROXY_V2_MAX_LEN is accepted, one more is not
 * (decided on the length field, at byte 16). */
static void test_v2_length_limit(void **state)
{
    static unsigned char buf[16 + MUX__PROXY_V2_MAX_LEN + 1];
    unsigned char body[MUX__PROXY_V2_MAX_LEN + 1];
    size_t a = v2_addrs(body, AF_INET, "1.2.3.4", "5.6.7.8", 1, 2);
    size_t vlen = MUX__PROXY_V2_MAX_LEN - a - 3;
    body[a] = 0x04; /* NOOP filling the rest */
    body[a + 1] = (unsigned char)(vlen >> 8);
    body[a + 2] = (unsigned char)vlen;
    memset(body + a + 3, 0, vlen + 1);
    size_t len = v2_build(buf, 0x21, 0x11, body, MUX__PROXY_V2_MAX_LEN);
    struct mux__proxy_result r;
    assert_int_equal(parse_exact(buf, len, &r), (int)len);
    assert_int_equal(len, MUX__PROXY_HEADER_MAX);
    assert_addr(&r.src, r.src_len, "1.2.3.4", 1);

    body[a + 2] = (unsigned char)(vlen + 1);
    len = v2_build(buf, 0x21, 0x11, body, MUX__PROXY_V2_MAX_LEN + 1);
    check_invalid_from("v2 length 2049", buf, len, 16);
}

/* ---- malformed ---- */

struct bad_v1 {
    const char *bytes;
    const char *fail_prefix; /* the shortest prefix already invalid */
};

static void test_v1_malformed(void **state)
{
    static const struct bad_v1 cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", "G"},
        {"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "p"},
        {"PROXY\r\n", "PROXY\r"},
        {"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY  "},
        {"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY t"},
        {"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP5"},
        {"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4  "},
        {"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.4  "},
        {"PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8  "},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1  "},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 "},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 01"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 00"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 65536"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 +"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 -"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 0x2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 0x"},
        {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2a\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2a"},
        {"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3 "},
        {"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4 01.2.3.4 "},
        {"PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4 256.2.3.4 "},
        {"PROXY TCP4 1111111111111111 5.6.7.8 1 2\r\n", "PROXY TCP4 1111111111111111"},
        {"PROXY TCP4 ::1 ::1 1 2\r\n", "PROXY TCP4 :"},
        {"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP6 1.2.3.4 "},
        {"PROXY TCP6 ::1%lo ::1 1 2\r\n", "PROXY TCP6 ::1%"},
        {"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", "PROXY TCP6 1:2:3:4:5:6:7:8:9 "},
        {"PROXY TCP6 ::g ::1 1 2\r\n", "PROXY TCP6 ::g"},
        {"PROXY UNKNOWNX\r\n", "PROXY UNKNOWNX"},
        {"PROXY UNKNOWN\n", "PROXY UNKNOWN\n"},
        {"PROXY UNKNOWN foo\nbar\r\n", "PROXY UNKNOWN foo\n"},
        {"PROXY UNKNOWN foo\rbar\r\n", "PROXY UNKNOWN foo\rb"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_invalid_from(cases[i].bytes, cases[i].bytes, strlen(cases[i].bytes),
                           strlen(cases[i].fail_prefix));
}

static void test_v2_malformed(void **state)
{
    unsigned char good[64], buf[600], body[600];
    size_t a = v2_addrs(body, AF_INET, "1.2.3.4", "5.6.7.8", 1, 2);
    size_t len = v2_build(good, 0x21, 0x11, body, a);
    assert_int_equal(parse_exact(good, len, &(struct mux__proxy_result){0}), (int)len);

    for (size_t i = 0; i < 12; i++) { /* each signature byte */
        memcpy(buf, good, len);
        buf[i] ^= 0x80;
        check_invalid_from("signature", buf, len, i + 1);
    }
    static const unsigned char bad_ver_cmd[] = {0x11, 0x31, 0x01, 0xF1, 0x22, 0x2F};
    for (size_t i = 0; i < sizeof(bad_ver_cmd); i++) {
        memcpy(buf, good, len);
        buf[12] = bad_ver_cmd[i];
        check_invalid_from("version/command", buf, len, 13);
    }
    static const unsigned char bad_fam[] = {0x41, 0xF1, 0x13, 0x1F, 0x40};
    for (size_t i = 0; i < sizeof(bad_fam); i++) {
        memcpy(buf, good, len);
        buf[13] = bad_fam[i];
        check_invalid_from("family/transport", buf, len, 14);
    }
    /* The length cannot hold the family's addresses (the family mismatch). */
    static const struct { unsigned fam; size_t blen; } shorts[] = {
        {0x11, 11}, {0x11, 0}, {0x21, 35}, {0x21, 12}, {0x12, 11}, {0x31, 215}, {0x32, 36}};
    memset(body, 0, sizeof(body));
    for (size_t i = 0; i < sizeof(shorts) / sizeof(shorts[0]); i++) {
        size_t n = v2_build(buf, 0x21, shorts[i].fam, body, shorts[i].blen);
        check_invalid_from("length too short for the family", buf, n, 16);
    }
    /* TLVs that do not fit the header exactly: rejected once it is whole. */
    static const unsigned char bad_tlvs[][6] = {
        {0x01, 0x00, 0x04, 'h', '2', 0}, /* value runs past the length */
        {0x04, 0x00},                    /* a truncated TLV head */
        {0x04, 0x00, 0x00, 0x01, 0, 0},  /* a good one, then a truncated head */
    };
    static const size_t bad_tlv_len[] = {5, 2, 5};
    for (size_t i = 0; i < 3; i++) {
        a = v2_addrs(body, AF_INET, "1.2.3.4", "5.6.7.8", 1, 2);
        memcpy(body + a, bad_tlvs[i], bad_tlv_len[i]);
        size_t n = v2_build(buf, 0x21, 0x11, body, a + bad_tlv_len[i]);
        check_invalid_from("TLVs", buf, n, n);
    }
    /* Plain bytes that start like neither version. */
    check_invalid_from("TLS hello", "\x16\x03\x01\x02\x00", 5, 1);
    check_invalid_from("NUL", "\0PROXY", 6, 1);
    check_invalid_from("v1 CRLF lookalike", "\r\n\r\nGET", 7, 5);
}

/* ---- randomized (seed printed; MUX_TEST_SEED replays) ---- */


static size_t rand_below(size_t n)
{
    return (size_t)(th_rand() % n);
}

static int group_setup(void **state)
{
    th_seed_rng("MUX_TEST_SEED");
    return 0;
}

/* Random address bytes; for IPv6 some 16-bit groups zeroed so inet_ntop
 * writes "::" compressions and the v4-mapped form shows up too. */
static void rand_addr(int family, unsigned char *a)
{
    size_t n = family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < n; i++)
        a[i] = (unsigned char)th_rand();
    if (family == AF_INET6) {
        for (size_t g = 0; g < 8; g++)
            if (rand_below(2))
                a[2 * g] = a[2 * g + 1] = 0;
        if (rand_below(8) == 0) { /* ::ffff:a.b.c.d */
            memset(a, 0, 10);
            a[10] = a[11] = 0xff;
        }
    }
}

/* Random v1 or v2 header with expected result; returns its length. */
struct expect {
    bool has_addrs;
    int family;
    unsigned char src[16], dst[16];
    unsigned sport, dport;
    int version;
};

static size_t rand_v1(unsigned char *out, struct expect *e)
{
    e->version = 1;
    if (rand_below(8) == 0) {
        e->has_addrs = false;
        return (size_t)sprintf((char *)out, "PROXY UNKNOWN%s\r\n", rand_below(2) ? "" : " x y");
    }
    e->has_addrs = true;
    e->family = rand_below(2) ? AF_INET : AF_INET6;
    rand_addr(e->family, e->src);
    rand_addr(e->family, e->dst);
    e->sport = (unsigned)rand_below(65536);
    e->dport = (unsigned)rand_below(65536);
    char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
    assert_non_null(inet_ntop(e->family, e->src, s, sizeof(s)));
    assert_non_null(inet_ntop(e->family, e->dst, d, sizeof(d)));
    if (rand_below(2)) /* the spec allows upper-case hex */
        for (char *p = s; *p; p++)
            if (*p >= 'a' && *p <= 'f')
                *p = (char)(*p - 'a' + 'A');
    return (size_t)sprintf((char *)out, "PROXY TCP%c %s %s %u %u\r\n",
                           e->family == AF_INET ? '4' : '6', s, d, e->sport, e->dport);
}

static size_t rand_v2(unsigned char *out, struct expect *e)
{
    unsigned char body[MUX__PROXY_V2_MAX_LEN];
    size_t blen = 0;
    e->version = 2;
    e->has_addrs = rand_below(4) != 0;
    unsigned ver_cmd = e->has_addrs ? 0x21 : 0x20, fam = 0;
    if (e->has_addrs) {
        e->family = rand_below(2) ? AF_INET : AF_INET6;
        fam = e->family == AF_INET ? 0x11 : 0x21;
        size_t n = e->family == AF_INET ? 4 : 16;
        rand_addr(e->family, e->src);
        rand_addr(e->family, e->dst);
        e->sport = (unsigned)rand_below(65536);
        e->dport = (unsigned)rand_below(65536);
        memcpy(body, e->src, n);
        memcpy(body + n, e->dst, n);
        body[2 * n] = (unsigned char)(e->sport >> 8);
        body[2 * n + 1] = (unsigned char)e->sport;
        body[2 * n + 2] = (unsigned char)(e->dport >> 8);
        body[2 * n + 3] = (unsigned char)e->dport;
        blen = 2 * n + 4;
    }
    for (size_t t = rand_below(5); t > 0; t--) { /* TLVs (LOCAL: any bytes) */
        size_t v = rand_below(60);
        body[blen] = (unsigned char)th_rand();
        body[blen + 1] = 0;
        body[blen + 2] = (unsigned char)v;
        for (size_t i = 0; i < v; i++)
            body[blen + 3 + i] = (unsigned char)th_rand();
        blen += 3 + v;
    }
    return v2_build(out, ver_cmd, fam, body, blen);
}

static void assert_expected(const struct mux__proxy_result *r, const struct expect *e)
{
    assert_int_equal(r->version, e->version);
    assert_int_equal(r->has_addrs, e->has_addrs);
    if (!e->has_addrs)
        return;
    struct sockaddr_storage ss;
    socklen_t sl;
    char text[INET6_ADDRSTRLEN];
    const unsigned char *addr[2] = {e->src, e->dst};
    unsigned port[2] = {e->sport, e->dport};
    const struct sockaddr_storage *got[2] = {&r->src, &r->dst};
    socklen_t got_len[2] = {r->src_len, r->dst_len};
    for (int i = 0; i < 2; i++) {
        assert_non_null(inet_ntop(e->family, addr[i], text, sizeof(text)));
        assert_int_equal(th_sockaddr(text, (int)port[i], &ss, &sl), 0);
        assert_int_equal(got_len[i], sl);
        assert_memory_equal(got[i], &ss, sl);
    }
}

static size_t rand_header(unsigned char *out, struct expect *e)
{
    return rand_below(2) ? rand_v1(out, e) : rand_v2(out, e);
}

/* Random valid headers (random addresses, ports, TLVs) followed by random
 * application data: exactly the header consumed, exactly its values out,
 * and any shorter prefix needs more. */
static void test_random_valid(void **state)
{
    static unsigned char buf[MUX__PROXY_HEADER_MAX + 128];
    int rounds = th_under_valgrind() ? 300 : 5000;
    for (int i = 0; i < rounds; i++) {
        struct expect e;
        memset(&e, 0, sizeof(e));
        size_t hdr = rand_header(buf, &e);
        size_t extra = rand_below(100);
        for (size_t j = 0; j < extra; j++)
            buf[hdr + j] = (unsigned char)th_rand();
        struct mux__proxy_result r;
        int n = parse_exact(buf, hdr + extra, &r);
        if (n != (int)hdr)
            fail_msg("round %d: %.*s: got %d, want %zu", i, (int)hdr, (const char *)buf, n, hdr);
        assert_expected(&r, &e);
        assert_int_equal(parse_exact(buf, rand_below(hdr), &r), 0);
    }
}

/* Mutation fuzz: valid headers with random byte changes, insertions,
 * deletions, truncation and field-aware edits, parsed at every prefix. The
 * parser must never read past the bytes given (ASan/valgrind), return
 * something other than -EINVAL, 0 or 1..len, change its mind once it has
 * decided (invalid stays invalid; a complete header stays the same size and
 * value), or touch *out when it returns <= 0. Bounded in rounds and time. */
static void mutate(unsigned char *b, size_t *len, size_t cap)
{
    static const unsigned char interesting[] = {' ', '\r', '\n', '0', '9', ':', '.', 'P',
                                                0x00, 0xff, 0x20, 0x21, 0x11};
    size_t n = *len;
    switch (rand_below(7)) {
    case 0: b[rand_below(n)] = (unsigned char)th_rand(); break;
    case 1: b[rand_below(n)] = interesting[rand_below(sizeof(interesting))]; break;
    case 2:
        if (n > 1) {
            size_t at = rand_below(n);
            memmove(b + at, b + at + 1, n - at - 1);
            n--;
        }
        break;
    case 3:
        if (n < cap) {
            size_t at = rand_below(n + 1);
            memmove(b + at + 1, b + at, n - at);
            b[at] = interesting[rand_below(sizeof(interesting))];
            n++;
        }
        break;
    case 4: n = 1 + rand_below(n); break;
    case 5: /* a v2 length field */
        if (n >= 16) {
            b[14] = (unsigned char)(rand_below(4) ? 0 : th_rand());
            b[15] = (unsigned char)th_rand();
        }
        break;
    default: /* a v2 version/command or family byte */
        if (n >= 14)
            b[12 + rand_below(2)] = (unsigned char)th_rand();
        break;
    }
    *len = n;
}

static void fuzz_one(const unsigned char *b, size_t len, int *outcome)
{
    int decided = 0; /* 0 none yet, -1 invalid, >0 complete */
    struct mux__proxy_result first;
    memset(&first, 0, sizeof(first));
    for (size_t k = 0; k <= len; k++) {
        struct mux__proxy_result r;
        memset(&r, 0xA5, sizeof(r));
        int n = parse_exact(b, k, &r);
        if (n != -EINVAL && (n < 0 || (size_t)n > k))
            fail_msg("prefix %zu: returned %d", k, n);
        if (n <= 0)
            assert_untouched(&r);
        if (decided < 0 && n != -EINVAL)
            fail_msg("prefix %zu: %d after invalid", k, n);
        if (decided > 0 && n != decided)
            fail_msg("prefix %zu: %d after complete at %d", k, n, decided);
        if (n > 0) {
            assert_true(r.version == 1 || r.version == 2);
            if (r.has_addrs) {
                assert_true(r.src.ss_family == AF_INET || r.src.ss_family == AF_INET6);
                assert_int_equal(r.src.ss_family, r.dst.ss_family);
                assert_int_equal(r.src_len, r.dst_len);
            } else {
                assert_int_equal(r.src_len, 0);
            }
            if (decided == 0)
                first = r;
            else
                assert_same_result(&first, &r);
        }
        if (n != 0)
            decided = n;
    }
    outcome[decided < 0 ? 0 : decided == 0 ? 1 : 2]++;
}

static void test_mutation_fuzz(void **state)
{
    static unsigned char buf[MUX__PROXY_HEADER_MAX + 256];
    int rounds = th_under_valgrind() ? 1500 : 40000;
    long long deadline = th_now_ms() + 3000LL * th_slowdown();
    int outcome[3] = {0, 0, 0}; /* invalid, incomplete, complete */
    int i;
    for (i = 0; i < rounds && th_now_ms() < deadline; i++) {
        struct expect e;
        size_t len = rand_header(buf, &e);
        len += rand_below(20); /* some application data (whatever is there) */
        for (size_t m = 1 + rand_below(4); m > 0; m--)
            mutate(buf, &len, sizeof(buf));
        fuzz_one(buf, len, outcome);
    }
    print_message("fuzz: %d inputs: %d invalid, %d incomplete, %d complete\n", i, outcome[0],
                  outcome[1], outcome[2]);
    /* The mutations must exercise every outcome, or the fuzz tests little. */
    assert_true(outcome[0] > 0 && outcome[1] > 0 && outcome[2] > 0);
}

/* ---- interop: the bytes a real haproxy writes ---- */

/* MUX_HAPROXY=<path> names the binary (a missing one skips the case);
 * otherwise PATH, /usr/sbin and /usr/local/sbin are searched. */
static const char *find_haproxy(char *path, size_t size)
{
    const char *chosen = getenv("MUX_HAPROXY");
    if (chosen) {
        snprintf(path, size, "%s", chosen);
        return access(path, X_OK) == 0 ? path : NULL;
    }
    const char *env = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/usr/local/sbin", env ? env : "/usr/bin");
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(path, size, "%s/haproxy", d);
        if (access(path, X_OK) == 0)
            return path;
    }
    return NULL;
}

/* A listening loopback socket (inherited by haproxy as fd@N: it exists
 * before haproxy starts, so no port race and no readiness wait). */
static int listen_on(const char *host)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (th_sockaddr(host, 0, &ss, &len) < 0)
        return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 16) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                         : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

struct frontend {
    const char *host;   /* the client side: 127.0.0.1 or ::1 */
    const char *server; /* haproxy's server line options */
    int version;
    int fd;
};

static pid_t start_haproxy(const char *bin, const char *cfg)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* Through env: the memcheck runs do not trace env (see
         * MUX_VALGRIND_ARGS), so valgrind stays out of haproxy. */
        execl("/usr/bin/env", "env", bin, "-q", "-db", "-f", cfg, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static bool exited(pid_t pid)
{
    siginfo_t si;
    memset(&si, 0, sizeof(si));
    /* WNOWAIT: leave the status for th_child_stop to reap. */
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

/* Accepts haproxy's connection to our backend within the deadline; fails
 * soon if haproxy exits (e.g. refuses the config). The exit is seen on a
 * pidfd, or where there is none (valgrind) by a check every 100 ms. */
static int accept_from(int lfd, pid_t pid, long long deadline)
{
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    for (;;) {
        long long left = deadline - th_now_ms();
        if (left <= 0)
            fail_msg("haproxy did not connect to the backend in time");
        struct pollfd p[2] = {{.fd = lfd, .events = POLLIN}, {.fd = pfd, .events = POLLIN}};
        int n = poll(p, pfd >= 0 ? 2 : 1, (int)(pfd >= 0 || left < 100 ? left : 100));
        if (n < 0 && errno == EINTR)
            continue;
        if ((pfd >= 0 && p[1].revents) || (pfd < 0 && exited(pid)))
            fail_msg("haproxy exited before connecting (see its stderr above)");
        if (p[0].revents) {
            if (pfd >= 0)
                close(pfd);
            int fd = accept(lfd, NULL, NULL);
            assert_true(fd >= 0);
            return fd;
        }
    }
}

/* Reads until a header and the payload after it are in; checks them. */
static int check_forwarded(int fd, const struct frontend *f, int client, const char *payload,
                           long long deadline)
{
    char buf[4096];
    size_t have = 0;
    int n = 0;
    size_t plen = strlen(payload);
    for (;;) {
        if (n > 0 && have - (size_t)n >= plen)
            break;
        long long left = deadline - th_now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            fail_msg("%s %s: no header and payload in time (%zu bytes)", f->host, f->server, have);
        ssize_t r = read(fd, buf + have, sizeof(buf) - have);
        if (r <= 0)
            fail_msg("%s %s: read %zd after %zu bytes", f->host, f->server, r, have);
        have += (size_t)r;
        struct mux__proxy_result res;
        n = parse_exact(buf, have, &res);
        if (n < 0)
            fail_msg("%s %s: header rejected", f->host, f->server);
        if (n > 0) {
            assert_int_equal(res.version, f->version);
            assert_true(res.has_addrs);
            struct sockaddr_storage want;
            socklen_t wlen = sizeof(want);
            assert_int_equal(getsockname(client, (struct sockaddr *)&want, &wlen), 0);
            assert_int_equal(res.src_len, wlen); /* the client's own address */
            assert_memory_equal(&res.src, &want, wlen);
            assert_addr(&res.dst, res.dst_len, f->host, local_port(f->fd));
        }
    }
    assert_int_equal(have - (size_t)n, plen);
    assert_memory_equal(buf + n, payload, plen);
    return n;
}

static void test_haproxy_interop(void **state)
{
    char bin[512];
    if (!find_haproxy(bin, sizeof(bin))) {
        print_message("haproxy not installed (Debian package haproxy): interop skipped\n");
        skip();
    }
    struct frontend fe[] = {
        {"127.0.0.1", "send-proxy", 1, -1},
        {"127.0.0.1", "send-proxy-v2", 2, -1},
        {"127.0.0.1", "send-proxy-v2 proxy-v2-options crc32c", 2, -1},
        {"::1", "send-proxy", 1, -1},
        {"::1", "send-proxy-v2", 2, -1},
        {"::1", "send-proxy-v2 proxy-v2-options crc32c", 2, -1},
    };
    size_t nfe = sizeof(fe) / sizeof(fe[0]);
    int backend = listen_on("127.0.0.1");
    assert_true(backend >= 0);
    /* The config lives in a memfd haproxy inherits: no file left behind
     * whatever happens to the test. */
    int cfd = memfd_create("haproxy.cfg", 0);
    assert_true(cfd >= 0);
    FILE *f = fdopen(dup(cfd), "w");
    assert_non_null(f);
    fprintf(f, "global\n    nbthread 1\ndefaults\n    mode tcp\n    timeout connect 5s\n"
               "    timeout client 10s\n    timeout server 10s\n");
    for (size_t i = 0; i < nfe; i++) {
        fe[i].fd = listen_on(fe[i].host);
        if (fe[i].fd < 0) { /* no IPv6 loopback here */
            print_message("%s unavailable: that frontend skipped\n", fe[i].host);
            continue;
        }
        fprintf(f, "frontend f%zu\n    bind fd@%d\n    default_backend b%zu\n", i, fe[i].fd, i);
        fprintf(f, "backend b%zu\n    server s 127.0.0.1:%d %s\n", i, local_port(backend),
                fe[i].server);
    }
    fclose(f);
    char cfg[64];
    snprintf(cfg, sizeof(cfg), "/dev/fd/%d", cfd);
    struct th_child hap = {.pid = start_haproxy(bin, cfg), .out_fd = -1};
    close(cfd);
    long long deadline = th_now_ms() + 10000LL * th_slowdown();
    for (size_t i = 0; i < nfe; i++) {
        if (fe[i].fd < 0)
            continue;
        int client = th_connect_tcp(fe[i].host, local_port(fe[i].fd));
        assert_true(client >= 0);
        char payload[64];
        snprintf(payload, sizeof(payload), "hello through frontend %zu\r\n", i);
        assert_int_equal(th_write_all(client, payload, strlen(payload), 5000), 0);
        int conn = accept_from(backend, hap.pid, deadline);
        int hdr = check_forwarded(conn, &fe[i], client, payload, deadline);
        print_message("haproxy %s from %s: %d-byte header parsed\n", fe[i].server, fe[i].host,
                      hdr);
        close(conn);
        close(client);
    }
    assert_int_not_equal(th_child_stop(&hap, SIGTERM, 5000), -1);
    for (size_t i = 0; i < nfe; i++)
        if (fe[i].fd >= 0)
            close(fe[i].fd);
    close(backend);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_valid),
        cmocka_unit_test(test_v1_length_limit),
        cmocka_unit_test(test_v2_valid),
        cmocka_unit_test(test_v2_length_limit),
        cmocka_unit_test(test_v1_malformed),
        cmocka_unit_test(test_v2_malformed),
        cmocka_unit_test(test_random_valid),
        cmocka_unit_test(test_mutation_fuzz),
        cmocka_unit_test(test_haproxy_interop),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
