/* target.c - HOST:PORT and http:// or https:// URL targets (see target.h). */
#include "target.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "units.h"

bool target_path_ok(const char *p)
{
    if (p[0] != '/' || strlen(p) >= TARGET_PATH_MAX)
        return false;
    for (; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '#')
            return false;
    return true;
}

/* host[:port] (host may be [v6]) of length n; default_port if no port. */
static int host_port(const char *s, size_t n, const char *default_port, struct target *t,
                     const char **why)
{
    const char *h = s, *colon;
    size_t hlen;
    if (n > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', n);
        if (!rb || (rb + 1 < s + n && rb[1] != ':')) {
            *why = "expected [IPv6]:PORT";
            return -1;
        }
        h = s + 1, hlen = (size_t)(rb - h);
        colon = rb + 1 < s + n ? rb + 1 : NULL;
    } else {
        colon = memchr(s, ':', n);
        if (colon && memchr(colon + 1, ':', n - (size_t)(colon + 1 - s))) {
            *why = "expected HOST:PORT (IPv6 in brackets)";
            return -1;
        }
        hlen = colon ? (size_t)(colon - s) : n;
    }
    if (!colon && !default_port) {
        *why = "expected HOST:PORT (IPv6 in brackets)";
        return -1;
    }
    if (hlen == 0 || hlen >= sizeof(t->host) || memchr(h, '@', hlen) || n >= sizeof(t->authority)) {
        *why = "missing, overlong or malformed host";
        return -1;
    }
    char port[16];
    size_t plen = colon ? n - (size_t)(colon + 1 - s) : strlen(default_port);
    uint64_t v;
    snprintf(port, sizeof(port), "%.*s", (int)(plen < 15 ? plen : 15),
             colon ? colon + 1 : default_port);
    if (plen >= sizeof(port) || strpbrk(port, ".kKmMgG") || parse_count(port, 65535, &v) < 0 ||
        v == 0) {
        *why = "the port must be a number from 1 to 65535";
        return -1;
    }
    memcpy(t->host, h, hlen);
    t->host[hlen] = '\0';
    snprintf(t->port, sizeof(t->port), "%u", (unsigned)v);
    memcpy(t->authority, s, n);
    t->authority[n] = '\0';
    return 0;
}

static int parse_url(const char *s, struct target *t, const char **why)
{
    bool tls = !strncasecmp(s, "https://", 8);
    const char *auth = s + (tls ? 8 : 7);
    size_t n = strcspn(auth, "/?#");
    if (host_port(auth, n, tls ? "443" : "80", t, why) < 0)
        return -1;
    t->tls = tls;
    const char *path = auth + n;
    size_t plen = strcspn(path, "#"); /* a fragment is never sent */
    t->url = true;
    t->has_path = plen > 0;
    if (plen >= sizeof(t->path)) {
        *why = "the path is too long";
        return -1;
    }
    snprintf(t->path, sizeof(t->path), "%s%.*s", path[0] == '?' ? "/" : "", (int)plen, path);
    if (!t->has_path)
        snprintf(t->path, sizeof(t->path), "/");
    if (!target_path_ok(t->path)) {
        *why = "the path has blanks or control characters";
        return -1;
    }
    return 0;
}

int target_parse(const char *s, struct target *t, const char **why)
{
    memset(t, 0, sizeof(*t));
    if (!strncasecmp(s, "http://", 7) || !strncasecmp(s, "https://", 8))
        return parse_url(s, t, why);
    if (strstr(s, "://")) {
        *why = "only http:// and https:// URLs are supported";
        return -1;
    }
    snprintf(t->path, sizeof(t->path), "/");
    return host_port(s, strlen(s), NULL, t, why);
}
