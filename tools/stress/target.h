/* target.h - the one positional argument of mux-stress: HOST:PORT,
 * [IPv6]:PORT, or a URL http[s]://HOST[:PORT][/path] as wrk takes it. */
#ifndef STRESS_TARGET_H
#define STRESS_TARGET_H

#include <stdbool.h>

#define TARGET_PATH_MAX 2048

struct target {
    char host[256];      /* without brackets */
    char port[8];        /* decimal */
    char authority[300]; /* HOST:PORT as the Host header carries it */
    bool url;            /* given as a URL: implies --proto http */
    bool tls;            /* https://: implies --tls */
    bool has_path;       /* the URL had a path (else "/") */
    char path[TARGET_PATH_MAX];
};

/* Parses s into t. 0, or -1 with *why set to a static reason. */
int target_parse(const char *s, struct target *t, const char **why);

/* True if p is usable as an HTTP request target: starts with '/', no
 * control bytes, no blanks, no '#', shorter than TARGET_PATH_MAX. */
bool target_path_ok(const char *p);

#endif
