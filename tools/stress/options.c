/* options.c - parses and validates the mux-stress command line. Every
 * problem is reported here with the offending option, so main() only ever
 * sees a consistent configuration (exit 2 on any usage error). */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STRESS_VERSION "0.1.0"

enum {
    OPT_PROTO = 256,
    OPT_RATE,
    OPT_IDLE,
    OPT_WARMUP,
    OPT_PATH,
    OPT_JSON,
    OPT_CSV,
    OPT_PLOT,
    OPT_TIMEOUT
};

static const struct option long_opts[] = {
    {"proto", required_argument, NULL, OPT_PROTO},
    {"connections", required_argument, NULL, 'c'},
    {"threads", required_argument, NULL, 't'},
    {"size", required_argument, NULL, 's'},
    {"pipeline", required_argument, NULL, 'p'},
    {"duration", required_argument, NULL, 'd'},
    {"requests", required_argument, NULL, 'n'},
    {"rate", required_argument, NULL, OPT_RATE},
    {"idle", required_argument, NULL, OPT_IDLE},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"path", required_argument, NULL, OPT_PATH},
    {"json", required_argument, NULL, OPT_JSON},
    {"csv", required_argument, NULL, OPT_CSV},
    {"plot", required_argument, NULL, OPT_PLOT},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *f)
{
    fputs(
        "usage: mux-stress [options] HOST:PORT\n"
        "  HOST is an IPv4 literal, [IPv6] literal or a name (localhost)\n"
        "  --proto echo|upper|http  protocol to drive and verify (default echo)\n"
        "  -c N            connections sending requests (default 10)\n"
        "  -t N            threads, each with its own epoll and share of connections (default 1)\n"
        "  -s BYTES        echo/upper request size, k/m suffixes allowed (default 64)\n"
        "  -p N            pipeline depth: requests in flight per connection (default 1)\n"
        "  -d SECONDS      measure for this long (default 10 unless -n is given)\n"
        "  -n N            measure this many requests (with -d: whichever ends first)\n"
        "  --rate N        open loop: N requests/s in total on a fixed schedule;\n"
        "                  latency counts from the intended send time\n"
        "  --idle N        extra idle connections held open during the run\n"
        "  --warmup SECS   run this long first without measuring\n"
        "  --timeout SECS  a reply missing for this long is a failure (default 5)\n"
        "  --path /x       http: path to GET (default /)\n"
        "  --json FILE     write the result as one JSON object\n"
        "  --csv FILE      write one row per second\n"
        "  --plot FILE.png draw throughput and latency per second (needs gnuplot)\n"
        "  -q              no live progress line\n"
        "  -h, --help      this text;  -V, --version  the version\n"
        "exit status: 0 every reply verified, 1 a verification failure or nothing\n"
        "measured, 2 usage error\n",
        f);
}

static int bad(const char *opt, const char *val, const char *why)
{
    fprintf(stderr, "mux-stress: %s '%s': %s\n", opt, val, why);
    fprintf(stderr, "try 'mux-stress --help'\n");
    return -1;
}

/* Unsigned integer in [min, max]; `suffix` allows k/m (x1024). */
static int parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, bool suffix,
                     uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '-' || *s == '\0')
        return bad(opt, s, "expected a non-negative integer");
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return bad(opt, s, "expected a non-negative integer");
    if (suffix && (*end == 'k' || *end == 'K')) {
        v *= 1024, end++;
    } else if (suffix && (*end == 'm' || *end == 'M')) {
        v *= 1024 * 1024, end++;
    }
    if (*end != '\0')
        return bad(opt, s, "expected a non-negative integer");
    if (v < min || v > max) {
        char why[96];
        snprintf(why, sizeof(why), "out of range [%llu, %llu]", (unsigned long long)min,
                 (unsigned long long)max);
        return bad(opt, s, why);
    }
    *out = v;
    return 0;
}

static int parse_u32(const char *opt, const char *s, uint32_t min, uint32_t max, bool suffix,
                     uint32_t *out)
{
    uint64_t v;
    if (parse_u64(opt, s, min, max, suffix, &v) < 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_secs(const char *opt, const char *s, double min, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v) || v < min || v > 1e7)
        return bad(opt, s, min > 0 ? "expected a positive number" : "expected a number >= 0");
    *out = v;
    return 0;
}

/* Splits HOST:PORT, [V6]:PORT into o->host and o->port. */
static int parse_target(struct stress_opts *o, const char *t)
{
    const char *colon;
    size_t hlen;
    const char *h = t;
    if (t[0] == '[') {
        const char *rb = strchr(t, ']');
        if (!rb || rb[1] != ':')
            return bad("target", t, "expected [IPv6]:PORT");
        h = t + 1, hlen = (size_t)(rb - h), colon = rb + 1;
    } else {
        colon = strrchr(t, ':');
        if (!colon || memchr(t, ':', (size_t)(colon - t)))
            return bad("target", t, "expected HOST:PORT (IPv6 in brackets)");
        hlen = (size_t)(colon - t);
    }
    if (hlen == 0 || hlen >= sizeof(o->host))
        return bad("target", t, "missing or overlong host");
    uint32_t port;
    if (parse_u32("port", colon + 1, 1, 65535, false, &port) < 0)
        return -1;
    memcpy(o->host, h, hlen);
    o->host[hlen] = '\0';
    snprintf(o->port, sizeof(o->port), "%u", port);
    o->target = t;
    return 0;
}

static void defaults(struct stress_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->proto = PROTO_ECHO;
    o->conns = 10;
    o->threads = 1;
    o->size = 64;
    o->pipeline = 1;
    o->timeout = 5;
    o->path = "/";
}

static int parse_proto(struct stress_opts *o, const char *s)
{
    if (!strcmp(s, "echo"))
        o->proto = PROTO_ECHO;
    else if (!strcmp(s, "upper"))
        o->proto = PROTO_UPPER;
    else if (!strcmp(s, "http"))
        o->proto = PROTO_HTTP;
    else
        return bad("--proto", s, "expected echo, upper or http");
    return 0;
}

static int parse_one(struct stress_opts *o, int ch, const char *a)
{
    switch (ch) {
    case OPT_PROTO:
        return parse_proto(o, a);
    case 'c':
        return parse_u32("-c", a, 1, 1000000, false, &o->conns);
    case 't':
        return parse_u32("-t", a, 1, 1024, false, &o->threads);
    case 's':
        return parse_u32("-s", a, 1, 64u << 20, true, &o->size);
    case 'p':
        return parse_u32("-p", a, 1, 4096, false, &o->pipeline);
    case 'd':
        return parse_secs("-d", a, 1e-3, &o->duration);
    case 'n':
        return parse_u64("-n", a, 1, UINT64_MAX / 2, false, &o->requests);
    case OPT_RATE:
        return parse_secs("--rate", a, 1e-3, &o->rate);
    case OPT_IDLE:
        return parse_u32("--idle", a, 0, 1000000, false, &o->idle);
    case OPT_WARMUP:
        return parse_secs("--warmup", a, 0, &o->warmup);
    case OPT_TIMEOUT:
        return parse_secs("--timeout", a, 1e-3, &o->timeout);
    case OPT_PATH:
        if (a[0] != '/' || strpbrk(a, " \r\n"))
            return bad("--path", a, "expected /path without spaces");
        o->path = a;
        return 0;
    case OPT_JSON:
        o->json = a;
        return 0;
    case OPT_CSV:
        o->csv = a;
        return 0;
    case OPT_PLOT:
        o->plot = a;
        return 0;
    case 'q':
        o->quiet = true;
        return 0;
    default:
        usage(stderr);
        return -1;
    }
}

int options_parse(struct stress_opts *o, int argc, char **argv)
{
    defaults(o);
    optind = 1;
    opterr = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:t:s:p:d:n:qhV", long_opts, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            return 1;
        }
        if (ch == 'V') {
            printf("mux-stress %s\n", STRESS_VERSION);
            return 1;
        }
        if (parse_one(o, ch, optarg) < 0)
            return -1;
    }
    if (argc - optind != 1) {
        fprintf(stderr, "mux-stress: expected exactly one HOST:PORT\n");
        usage(stderr);
        return -1;
    }
    if (parse_target(o, argv[optind]) < 0)
        return -1;
    if (o->duration == 0 && o->requests == 0)
        o->duration = 10;
    if (o->threads > o->conns)
        o->threads = o->conns;
    return 0;
}

const char *proto_name(enum proto_kind k)
{
    return k == PROTO_ECHO ? "echo" : k == PROTO_UPPER ? "upper" : "http";
}
