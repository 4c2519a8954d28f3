/* options.h - the mux-stress command line (design.md section 7, a contract)
 * parsed into one read-only struct shared by every thread. */
#ifndef STRESS_OPTIONS_H
#define STRESS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum proto_kind { PROTO_ECHO, PROTO_UPPER, PROTO_HTTP };

struct stress_opts {
    enum proto_kind proto;
    const char *target; /* HOST:PORT as given */
    char host[256];     /* without brackets */
    char port[8];
    uint32_t conns;    /* -c, busy connections */
    uint32_t threads;  /* -t, clamped to conns */
    uint32_t size;     /* -s, bytes per echo/upper request */
    uint32_t pipeline; /* -p, requests in flight per connection */
    double duration;   /* -d seconds; 0 = not given */
    uint64_t requests; /* -n; 0 = not given */
    double rate;       /* --rate, total requests/s; 0 = closed loop */
    uint32_t idle;     /* --idle extra connections that never send */
    double warmup;     /* --warmup seconds, not measured */
    double timeout;    /* --timeout seconds a reply may take */
    const char *path;  /* --path for http */
    const char *json;  /* --json FILE */
    const char *csv;   /* --csv FILE */
    const char *plot;  /* --plot FILE.png */
    bool quiet;        /* -q */
};

/* Parses argv into o. Returns 0 to run, 1 when --help/--version was printed
 * (exit 0), or -1 after printing a usage error to stderr (exit 2). */
int options_parse(struct stress_opts *o, int argc, char **argv);

const char *proto_name(enum proto_kind k);

#endif
