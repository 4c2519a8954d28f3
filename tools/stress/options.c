/* options.c - parses and validates the mux-stress command line. Every
 * problem is reported here with the offending option, so main() only ever
 * sees a consistent configuration (exit 2 on any usage error), and output
 * files are checked before a run spends minutes measuring. */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tls.h"
#include "units.h"

#define STRESS_VERSION "0.2.0"
#define DRAIN_GRACE_MAX 1.0 /* seconds after -d for replies still owed */
#define CONNECT_RATE_DEFAULT 50000
#define IDLE_SAMPLE_PCT 1.0 /* --idle-verify default above IDLE_DEFAULT_ALL idle */
#define IDLE_ALL 10000      /* (= idle.h IDLE_DEFAULT_ALL) */

enum {
    OPT_PROTO = 256,
    OPT_RATE,
    OPT_IDLE,
    OPT_WARMUP,
    OPT_PATH,
    OPT_JSON,
    OPT_CSV,
    OPT_PLOT,
    OPT_TIMEOUT,
    OPT_EXPECT,
    OPT_RECONNECT,
    OPT_ALLOW,
    OPT_TLS,
    OPT_INSECURE,
    OPT_CACERT,
    OPT_SOURCE,
    OPT_CONNECT_RATE,
    OPT_IDLE_VERIFY
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
    {"expect-file", required_argument, NULL, OPT_EXPECT},
    {"reconnect", required_argument, NULL, OPT_RECONNECT},
    {"allow-errors", no_argument, NULL, OPT_ALLOW},
    {"tls", no_argument, NULL, OPT_TLS},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"cacert", required_argument, NULL, OPT_CACERT},
    {"source", required_argument, NULL, OPT_SOURCE},
    {"connect-rate", required_argument, NULL, OPT_CONNECT_RATE},
    {"idle-verify", required_argument, NULL, OPT_IDLE_VERIFY},
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
        "usage: mux-stress [options] HOST:PORT | http[s]://HOST[:PORT]/path\n"
        "  HOST is an IPv4 literal, [IPv6] literal or a name (localhost);\n"
        "  a URL implies --proto http and its path, https:// also --tls\n"
        "  --proto echo|upper|http  protocol to drive and verify (default echo)\n"
        "  -c N            connections sending requests (default 10)\n"
        "  -t N            threads, each with its own epoll and share of the connections\n"
        "                  (default 1)\n"
        "  -s BYTES        echo/upper request size, k/m = KiB/MiB (default 64)\n"
        "  -p N            pipeline depth: requests in flight per connection (default 1)\n"
        "  -d TIME         measure for this long: 500ms, 5s, 2m, 1h; a plain number is\n"
        "                  seconds (default 10 unless -n is given)\n"
        "  -n N            measure this many requests: 1k = 1000, 2m = 2000000\n"
        "                  (with -d: whichever ends first)\n"
        "  --rate N        open loop: N requests/s in total on a fixed schedule;\n"
        "                  latency counts from the intended send time\n"
        "  --idle N        extra connections, opened before the run and held open and\n"
        "                  silent during it, then checked with one request each\n"
        "  --connect-rate N  idle connects per second in total (default 50k)\n"
        "  --idle-verify PCT  check this percentage of the idle connections after the\n"
        "                  run (default: all up to 10k idle, else 1)\n"
        "  --source A|A-B  bind outgoing connections to the local IPv4 address A, or\n"
        "                  round-robin to the addresses A to B (127.0.0.2-127.0.0.41):\n"
        "                  each address has its own ephemeral ports\n"
        "  --warmup TIME   run this long first without measuring\n"
        "  --timeout TIME  a reply missing for this long is a failure (default 5s)\n"
        "  --reconnect N   close and reopen each connection after N requests\n"
        "                  (1 = a new connection per request: connection churn)\n"
        "  --allow-errors  connect errors, resets and closes with replies owed (and the\n"
        "                  requests they cut) are expected: counted, the run may pass\n"
        "  --tls           speak TLS 1.2/1.3 to the server, verifying its certificate\n"
        "                  and name; every connection makes a full handshake\n"
        "  --cacert FILE   trust the CA certificates in FILE (PEM) instead of the\n"
        "                  system's\n"
        "  --insecure      TLS without checking the certificate or name\n"
        "  --path /x       http: path to GET (default /)\n"
        "  --expect-file F http: every response body must equal file F (default: the\n"
        "                  body of the run's first response)\n"
        "  --json FILE     write the result as one JSON object\n"
        "  --csv FILE      write one row per second\n"
        "  --plot FILE     draw requests/s and latency per second into FILE.png or\n"
        "                  FILE.svg (needs gnuplot)\n"
        "  -q              no live progress line\n"
        "  -h, --help      this text;  -V, --version  the version\n"
        "A -d run ends at most 1 s (or --timeout if shorter) after its duration plus\n"
        "warm-up, whatever the server does; a -n run gives a connection up after a\n"
        "reply timeout or 5 failed attempts in a row to connect or get a reply.\n"
        "exit status: 0 every request answered and verified, no connection lost;\n"
        "1 a verification failure, a lost request or connection, or nothing measured;\n"
        "2 usage error (also: an output file that cannot be written)\n",
        f);
}

static int bad(const char *opt, const char *val, const char *why)
{
    fprintf(stderr, "mux-stress: %s '%s': %s\n", opt, val, why);
    fprintf(stderr, "try 'mux-stress --help'\n");
    return -1;
}

static int count_opt(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    uint64_t v;
    if (parse_count(s, max, &v) < 0 || v < min) {
        char why[96];
        snprintf(why, sizeof(why), "expected a whole number from %llu to %llu (k, m, g = x1000)",
                 (unsigned long long)min, (unsigned long long)max);
        return bad(opt, s, why);
    }
    *out = v;
    return 0;
}

static int count32(const char *opt, const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t v;
    if (count_opt(opt, s, min, max, &v) < 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int bytes_opt(const char *opt, const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t v;
    if (parse_bytes(s, max, &v) < 0 || v < min)
        return bad(opt, s, "expected a size in bytes from 1 to 64m (k, m = KiB, MiB)");
    *out = (uint32_t)v;
    return 0;
}

static int duration_opt(const char *opt, const char *s, double min, double *out)
{
    double v;
    if (parse_duration(s, &v) < 0 || v < min)
        return bad(opt, s,
                   min > 0 ? "expected a duration such as 500ms, 5s, 2m (at least 1ms)"
                           : "expected a duration such as 0, 500ms, 5s, 2m");
    *out = v;
    return 0;
}

/* A percentage 0..100, "5", "0.5" or "5%", in parts per million. */
static int percent_opt(const char *opt, const char *s, uint32_t *ppm)
{
    char buf[32];
    size_t n = strlen(s);
    double v;
    if (n > 0 && s[n - 1] == '%')
        n--;
    if (n == 0 || n >= sizeof(buf))
        return bad(opt, s, "expected a percentage from 0 to 100, e.g. 1 or 0.5");
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (parse_metric(buf, &v) < 0 || strpbrk(buf, "kKmMgG") || v > 100)
        return bad(opt, s, "expected a percentage from 0 to 100, e.g. 1 or 0.5");
    *ppm = (uint32_t)(v * 10000 + 0.5);
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
    o->connect_rate = CONNECT_RATE_DEFAULT;
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

/* Flags that were given explicitly, for conflicts with a URL target. */
struct given {
    bool proto, path;
};

static int parse_one(struct stress_opts *o, struct given *g, int ch, const char *a)
{
    switch (ch) {
    case OPT_PROTO:
        g->proto = true;
        return parse_proto(o, a);
    case 'c':
        return count32("-c", a, 1, 1000000, &o->conns);
    case 't':
        return count32("-t", a, 1, 1024, &o->threads);
    case 's':
        return bytes_opt("-s", a, 1, 64u << 20, &o->size);
    case 'p':
        return count32("-p", a, 1, 4096, &o->pipeline);
    case 'd':
        return duration_opt("-d", a, 1e-3, &o->duration);
    case 'n':
        return count_opt("-n", a, 1, UINT64_MAX / 4, &o->requests);
    case OPT_RATE:
        if (parse_metric(a, &o->rate) < 0 || o->rate < 1e-3 || o->rate > 1e10)
            return bad("--rate", a, "expected requests per second, e.g. 500 or 20k");
        return 0;
    case OPT_IDLE:
        return count32("--idle", a, 0, 1000000, &o->idle);
    case OPT_CONNECT_RATE:
        if (parse_metric(a, &o->connect_rate) < 0 || o->connect_rate < 1 ||
            o->connect_rate > 1e7)
            return bad("--connect-rate", a, "expected connects per second from 1 to 10m, e.g. 20k");
        return 0;
    case OPT_IDLE_VERIFY:
        o->idle_verify_given = true;
        return percent_opt("--idle-verify", a, &o->idle_verify_ppm);
    case OPT_WARMUP:
        return duration_opt("--warmup", a, 0, &o->warmup);
    case OPT_TIMEOUT:
        return duration_opt("--timeout", a, 1e-3, &o->timeout);
    case OPT_RECONNECT:
        return count_opt("--reconnect", a, 1, UINT32_MAX, &o->reconnect);
    case OPT_ALLOW:
        o->allow_errors = true;
        return 0;
    case OPT_TLS:
        o->tls = true;
        return 0;
    case OPT_INSECURE:
        o->insecure = true;
        return 0;
    case OPT_CACERT:
        o->cacert = a;
        return 0;
    case OPT_SOURCE: {
        const char *why;
        o->source_arg = a;
        return source_parse(a, &o->source, &why) < 0 ? bad("--source", a, why) : 0;
    }
    case OPT_PATH:
        if (!target_path_ok(a))
            return bad("--path", a, "expected /path without blanks, control characters or #");
        g->path = true;
        o->path = a;
        return 0;
    case OPT_EXPECT:
        o->expect_file = a;
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

static int apply_target(struct stress_opts *o, const struct given *g, const char *arg)
{
    struct target t;
    const char *why;
    if (target_parse(arg, &t, &why) < 0)
        return bad("target", arg, why);
    o->target = arg;
    memcpy(o->host, t.host, sizeof(o->host));
    memcpy(o->port, t.port, sizeof(o->port));
    memcpy(o->authority, t.authority, sizeof(o->authority));
    o->tls |= t.tls;
    if (!t.url)
        return 0;
    if (g->proto && o->proto != PROTO_HTTP)
        return bad("target", arg, "a URL target needs --proto http (or no --proto)");
    if (g->path && t.has_path)
        return bad("target", arg, "the path is given twice (URL and --path)");
    o->proto = PROTO_HTTP;
    if (!g->path) {
        memcpy(o->path_buf, t.path, sizeof(o->path_buf));
        o->path = o->path_buf;
    }
    return 0;
}

/* Can `path` be written? It is not created: an existing path must be a
 * writable regular file (or device), a new one needs a writable directory. */
static int check_output(const char *opt, const char *path)
{
    struct stat st;
    if (path[0] == '\0')
        return bad(opt, path, "empty file name");
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return bad(opt, path, "is a directory");
        if (access(path, W_OK) < 0)
            return bad(opt, path, strerror(errno));
        return 0;
    }
    if (errno != ENOENT)
        return bad(opt, path, strerror(errno));
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    const char *d = dirname(dir);
    if (stat(d, &st) < 0 || !S_ISDIR(st.st_mode))
        return bad(opt, path, "its directory does not exist");
    if (access(d, W_OK | X_OK) < 0)
        return bad(opt, path, "its directory is not writable");
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcasecmp(s + n - k, suffix);
}

static int check_outputs(const struct stress_opts *o)
{
    const char *names[] = {"--json", "--csv", "--plot"};
    const char *paths[] = {o->json, o->csv, o->plot};
    for (int i = 0; i < 3; i++) {
        if (!paths[i])
            continue;
        if (check_output(names[i], paths[i]) < 0)
            return -1;
        for (int j = 0; j < i; j++)
            if (paths[j] && !strcmp(paths[i], paths[j]))
                return bad(names[i], paths[i], "the same file as another output");
    }
    if (o->plot && !ends_with(o->plot, ".png") && !ends_with(o->plot, ".svg"))
        return bad("--plot", o->plot, "expected a file name ending in .png or .svg");
    return 0;
}

static int check_combination(const struct stress_opts *o)
{
    if (o->expect_file && o->proto != PROTO_HTTP)
        return bad("--expect-file", o->expect_file, "only for --proto http (or a URL target)");
    if (o->expect_file && access(o->expect_file, R_OK) < 0)
        return bad("--expect-file", o->expect_file, strerror(errno));
    if ((o->insecure || o->cacert) && !o->tls)
        return bad(o->insecure ? "--insecure" : "--cacert", o->insecure ? "" : o->cacert,
                   "only with --tls (or an https:// target)");
    if (o->insecure && o->cacert)
        return bad("--cacert", o->cacert, "contradicts --insecure");
    if (o->cacert && access(o->cacert, R_OK) < 0)
        return bad("--cacert", o->cacert, strerror(errno));
    if (o->source.count && strchr(o->host, ':'))
        return bad("--source", o->source_arg,
                   "IPv4 source addresses cannot reach the IPv6 target");
    if (o->tls && !stls_available())
        return bad("--tls", o->target, "this mux-stress was built without OpenSSL");
    return check_outputs(o);
}

int options_parse(struct stress_opts *o, int argc, char **argv)
{
    struct given g = {false, false};
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
        if (parse_one(o, &g, ch, optarg) < 0)
            return -1;
    }
    if (argc - optind != 1) {
        fprintf(stderr, "mux-stress: expected exactly one HOST:PORT or http:// URL\n");
        usage(stderr);
        return -1;
    }
    if (apply_target(o, &g, argv[optind]) < 0 || check_combination(o) < 0)
        return -1;
    if (o->duration == 0 && o->requests == 0)
        o->duration = 10;
    if (o->threads > o->conns + o->idle)
        o->threads = o->conns + o->idle;
    if (!o->idle_verify_given)
        o->idle_verify_ppm = (uint32_t)((o->idle > IDLE_ALL ? IDLE_SAMPLE_PCT : 100.0) * 10000);
    return 0;
}

const char *proto_name(enum proto_kind k)
{
    return k == PROTO_ECHO ? "echo" : k == PROTO_UPPER ? "upper" : "http";
}

double options_drain_grace(const struct stress_opts *o)
{
    return o->timeout < DRAIN_GRACE_MAX ? o->timeout : DRAIN_GRACE_MAX;
}
