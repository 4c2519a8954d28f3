/* options.h - the mux-stress command line (design.md sections 7 and 8, a
 * contract) parsed into one read-only struct shared by every thread. */
#ifndef STRESS_OPTIONS_H
#define STRESS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "source.h"
#include "target.h"

enum proto_kind { PROTO_ECHO, PROTO_UPPER, PROTO_HTTP };

struct stress_opts {
    enum proto_kind proto;
    const char *target; /* the positional argument as given */
    char host[256];     /* without brackets */
    char port[8];
    char authority[300]; /* HOST:PORT for the Host header */
    uint32_t conns;      /* -c, busy connections */
    uint32_t threads;    /* -t, clamped to conns */
    uint32_t size;       /* -s, bytes per echo/upper request */
    uint32_t pipeline;   /* -p, requests in flight per connection */
    double duration;     /* -d seconds; 0 = not given */
    uint64_t requests;   /* -n; 0 = not given */
    double rate;         /* --rate, total requests/s; 0 = closed loop */
    uint32_t idle;       /* --idle extra connections, silent until their check */
    double connect_rate; /* --connect-rate: idle connects per second, all threads */
    uint32_t idle_verify_ppm; /* --idle-verify PCT in parts per million */
    bool idle_verify_given;   /* --idle-verify was on the command line */
    double warmup;       /* --warmup seconds, not measured */
    double timeout;      /* --timeout seconds a reply may take */
    uint64_t reconnect;  /* --reconnect N: reopen after N requests; 0 = never */
    bool allow_errors;   /* --allow-errors: connection errors do not fail the run */
    const char *path;    /* --path or the URL's path (http) */
    const char *expect_file; /* --expect-file: every http body must equal it */
    bool tls;                /* --tls or an https:// target */
    bool insecure;           /* --insecure: no certificate checks */
    const char *cacert;      /* --cacert FILE: trust these CAs (default: the system's) */
    const char *json;        /* --json FILE */
    const char *csv;         /* --csv FILE */
    const char *plot;        /* --plot FILE.png|FILE.svg */
    bool quiet;              /* -q */
    struct source_range source; /* --source: local addresses, round-robin */
    const char *source_arg;     /* --source as given */
    char path_buf[TARGET_PATH_MAX];
};

/* Parses argv into o and checks that the output files can be written
 * (nothing is created). Returns 0 to run, 1 when --help/--version was
 * printed (exit 0), or -1 after printing a usage error to stderr (exit 2). */
int options_parse(struct stress_opts *o, int argc, char **argv);

const char *proto_name(enum proto_kind k);

/* The grace after -d (or a signal) for replies still owed: --timeout, at
 * most 1 s, so a run ends at the latest 1 s after its duration. */
double options_drain_grace(const struct stress_opts *o);

#endif
