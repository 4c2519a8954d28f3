/* proxy_proto.c - PROXY protocol v1/v2 header parser (see proxy_proto.h).
 *
 * Every call re-parses the received prefix from its first byte: headers are
 * at most a few hundred bytes and arrive once per connection, so keeping no
 * state is cheaper than the bugs a resumable state machine invites. Each
 * step answers OK, NEED (the bytes so far are a valid prefix) or BAD, and
 * checks every byte as it arrives, so garbage fails without waiting. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "proxy_proto.h"

enum { BAD = -1, NEED = 0, OK = 1 };

static const unsigned char v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                         0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

struct cursor {
    const unsigned char *p;
    size_t len; /* bytes available */
    size_t pos; /* bytes accepted */
};

/* ---- sockaddr helpers (addresses and ports in network order) ---- */

static void set_in4(struct sockaddr_storage *ss, socklen_t *sl, const void *addr,
                    const void *port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof(*ss));
    sin->sin_family = AF_INET;
    memcpy(&sin->sin_addr, addr, 4);
    memcpy(&sin->sin_port, port, 2);
    *sl = sizeof(*sin);
}

static void set_in6(struct sockaddr_storage *ss, socklen_t *sl, const void *addr,
                    const void *port)
{
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof(*ss));
    sin6->sin6_family = AF_INET6;
    memcpy(&sin6->sin6_addr, addr, 16);
    memcpy(&sin6->sin6_port, port, 2);
    *sl = sizeof(*sin6);
}

/* ---- v1: "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or "PROXY UNKNOWN...\r\n" ---- */

/* The next bytes must be lit: OK, NEED on a matching prefix, BAD. */
static int expect(struct cursor *c, const char *lit)
{
    size_t n = strlen(lit);
    size_t avail = c->len - c->pos;
    size_t k = avail < n ? avail : n;
    if (memcmp(c->p + c->pos, lit, k) != 0)
        return BAD;
    if (k < n)
        return NEED;
    c->pos += n;
    return OK;
}

static int is_v4_char(int ch)
{
    return (ch >= '0' && ch <= '9') || ch == '.';
}

static int is_v6_char(int ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
           ch == ':' || ch == '.';
}

/* An address followed by one space (consumed), parsed with inet_pton. The
 * character class and length are checked as bytes arrive; the syntax once
 * the space is seen. */
static int address(struct cursor *c, int family, void *dst)
{
    int (*cls)(int) = family == AF_INET ? is_v4_char : is_v6_char;
    size_t max = family == AF_INET ? 15 : 39; /* the spec's canonical forms */
    char text[40];
    size_t n = 0;
    for (;;) {
        if (c->pos + n == c->len)
            return NEED;
        int ch = c->p[c->pos + n];
        if (ch == ' ')
            break;
        if (!cls(ch) || n == max)
            return BAD;
        n++;
    }
    memcpy(text, c->p + c->pos, n);
    text[n] = '\0';
    if (n == 0 || inet_pton(family, text, dst) != 1)
        return BAD;
    c->pos += n + 1;
    return OK;
}

/* A port in 0..65535, decimal without leading zeros, followed by `stop`
 * (consumed); stored in network order. */
static int port(struct cursor *c, char stop, uint16_t *out)
{
    uint32_t v = 0;
    size_t n = 0;
    for (;;) {
        if (c->pos + n == c->len)
            return NEED;
        int ch = c->p[c->pos + n];
        if (ch == stop && n > 0)
            break;
        if (ch < '0' || ch > '9' || (n == 1 && v == 0))
            return BAD;
        v = v * 10 + (uint32_t)(ch - '0');
        if (v > 65535)
            return BAD;
        n++;
    }
    *out = htons((uint16_t)v);
    c->pos += n + 1;
    return OK;
}

/* After "UNKNOWN": nothing or a space, then anything up to the CRLF, which
 * the spec says to ignore; a lone CR or LF is still an error. */
static int unknown_tail(struct cursor *c)
{
    if (c->pos == c->len)
        return NEED;
    if (c->p[c->pos] != ' ' && c->p[c->pos] != '\r')
        return BAD;
    for (size_t i = c->pos; i < c->len; i++) {
        if (c->p[i] == '\n')
            return BAD;
        if (c->p[i] == '\r') {
            c->pos = i;
            return expect(c, "\r\n");
        }
    }
    return NEED;
}

/* SRC DST SPORT DPORT\r\n for TCP4/TCP6, into r. */
static int tcp_fields(struct cursor *c, int family, struct mux__proxy_result *r)
{
    unsigned char sa[16], da[16];
    uint16_t sp, dp;
    int st;
    if ((st = address(c, family, sa)) != OK || (st = address(c, family, da)) != OK ||
        (st = port(c, ' ', &sp)) != OK || (st = port(c, '\r', &dp)) != OK ||
        (st = expect(c, "\n")) != OK)
        return st;
    if (family == AF_INET) {
        set_in4(&r->src, &r->src_len, sa, &sp);
        set_in4(&r->dst, &r->dst_len, da, &dp);
    } else {
        set_in6(&r->src, &r->src_len, sa, &sp);
        set_in6(&r->dst, &r->dst_len, da, &dp);
    }
    r->has_addrs = true;
    return OK;
}

static int v1_line(struct cursor *c, struct mux__proxy_result *r)
{
    int st = expect(c, "PROXY ");
    if (st != OK)
        return st;
    r->version = 1;
    size_t at = c->pos;
    if ((st = expect(c, "TCP4 ")) == OK)
        return tcp_fields(c, AF_INET, r);
    if (st == BAD && (st = expect(c, "TCP6 ")) == OK)
        return tcp_fields(c, AF_INET6, r);
    if (st == BAD && (st = expect(c, "UNKNOWN")) == OK)
        return unknown_tail(c);
    c->pos = at;
    return st;
}

static int parse_v1(const unsigned char *p, size_t len, struct mux__proxy_result *r)
{
    /* Only the first MUX__PROXY_V1_MAX bytes may hold the line: a line
     * still incomplete there is too long. */
    struct cursor c = {p, len < MUX__PROXY_V1_MAX ? len : MUX__PROXY_V1_MAX, 0};
    int st = v1_line(&c, r);
    if (st == NEED && len >= MUX__PROXY_V1_MAX)
        return BAD;
    return st == OK ? (int)c.pos : st;
}

/* ---- v2: 12-byte signature, ver|cmd, family|transport, length, body ---- */

enum { V2_LOCAL = 0x0, V2_PROXY = 0x1 };
enum { V2_AF_UNSPEC, V2_AF_INET, V2_AF_INET6, V2_AF_UNIX };
enum { V2_UNSPEC, V2_STREAM, V2_DGRAM };

/* The address block a PROXY command must carry; 0 when its addresses are
 * to be ignored (an UNSPEC family or transport). */
static size_t v2_addr_size(unsigned fam, unsigned proto)
{
    static const size_t size[4] = {0, 12, 36, 216};
    return proto == V2_UNSPEC ? 0 : size[fam];
}

/* The TLVs after the addresses: each type, 16-bit length and value must
 * lie exactly within the header. Their contents are not needed. */
static int tlvs_ok(const unsigned char *p, size_t n)
{
    while (n >= 3) {
        size_t vlen = (size_t)p[1] << 8 | p[2];
        if (vlen > n - 3)
            return 0;
        p += 3 + vlen;
        n -= 3 + vlen;
    }
    return n == 0;
}

static void v2_addrs(const unsigned char *a, unsigned fam, struct mux__proxy_result *r)
{
    if (fam == V2_AF_INET) {
        set_in4(&r->src, &r->src_len, a, a + 8);
        set_in4(&r->dst, &r->dst_len, a + 4, a + 10);
    } else {
        set_in6(&r->src, &r->src_len, a, a + 32);
        set_in6(&r->dst, &r->dst_len, a + 16, a + 34);
    }
    r->has_addrs = true;
}

static int parse_v2(const unsigned char *p, size_t len, struct mux__proxy_result *r)
{
    if (memcmp(p, v2_sig, len < 12 ? len : 12) != 0)
        return BAD;
    if (len < 13)
        return NEED;
    unsigned cmd = p[12] & 0xF;
    if (p[12] >> 4 != 2 || cmd > V2_PROXY)
        return BAD;
    if (len < 14)
        return NEED;
    unsigned fam = p[13] >> 4, proto = p[13] & 0xF;
    if (fam > V2_AF_UNIX || proto > V2_DGRAM) /* the spec: undefined values are invalid */
        return BAD;
    if (len < 16)
        return NEED;
    size_t body = (size_t)p[14] << 8 | p[15];
    /* LOCAL: the block is skipped whatever it holds (the spec). */
    size_t addr = cmd == V2_PROXY ? v2_addr_size(fam, proto) : 0;
    if (body > MUX__PROXY_V2_MAX_LEN || body < addr)
        return BAD;
    if (len < 16 + body)
        return NEED;
    if (addr && !tlvs_ok(p + 16 + addr, body - addr))
        return BAD;
    r->version = 2;
    /* TCP over IPv4/IPv6 carries the client; other families and UDP fall
     * back to the real endpoints, as the spec allows a receiver. */
    if (cmd == V2_PROXY && proto == V2_STREAM && (fam == V2_AF_INET || fam == V2_AF_INET6))
        v2_addrs(p + 16, fam, r);
    return (int)(16 + body);
}

int mux__proxy_parse(const void *buf, size_t len, struct mux__proxy_result *out)
{
    const unsigned char *p = buf;
    if (len == 0)
        return 0;
    struct mux__proxy_result r;
    memset(&r, 0, sizeof(r));
    int n;
    if (p[0] == 'P')
        n = parse_v1(p, len, &r);
    else if (p[0] == v2_sig[0])
        n = parse_v2(p, len, &r);
    else
        return -EINVAL;
    if (n < 0)
        return -EINVAL;
    if (n > 0)
        *out = r;
    return n;
}
