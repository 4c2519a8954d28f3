/* source.c - --source parsing and binding (see source.h). */
#include "source.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24 /* Linux 4.2; older C libraries lack the name */
#endif

/* One dotted quad of length n into *out (host order). */
static int quad(const char *s, size_t n, uint32_t *out)
{
    char buf[INET_ADDRSTRLEN];
    struct in_addr a;
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET, buf, &a) != 1)
        return -1;
    *out = ntohl(a.s_addr);
    return 0;
}

int source_parse(const char *s, struct source_range *r, const char **why)
{
    const char *dash = strchr(s, '-');
    uint32_t first, last;
    r->first = r->count = 0;
    if (strchr(s, ':')) {
        *why = "IPv6 source addresses are not supported (IPv4 only)";
        return -1;
    }
    if (quad(s, dash ? (size_t)(dash - s) : strlen(s), &first) < 0 ||
        (dash && quad(dash + 1, strlen(dash + 1), &last) < 0)) {
        *why = "expected an IPv4 address or a range FIRST-LAST, e.g. 127.0.0.2-127.0.0.41";
        return -1;
    }
    if (!dash)
        last = first;
    if (first > last) {
        *why = "the range is reversed: FIRST must not be above LAST";
        return -1;
    }
    if ((uint64_t)last - first + 1 > SOURCE_MAX) {
        *why = "a range may hold at most 65536 addresses";
        return -1;
    }
    r->first = first;
    r->count = last - first + 1;
    return 0;
}

const char *source_name(const struct source_range *r, uint32_t i, char *buf, size_t size)
{
    struct in_addr a = {.s_addr = htonl(r->first + i)};
    if (!inet_ntop(AF_INET, &a, buf, (socklen_t)size))
        snprintf(buf, size, "?");
    return buf;
}

static int bind_to(int fd, uint32_t addr)
{
    int one = 1;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(addr)};
    if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) < 0)
        return -1;
    return bind(fd, (const struct sockaddr *)&sin, sizeof(sin));
}

int source_bind(int fd, const struct source_range *r, uint32_t id)
{
    return r->count ? bind_to(fd, r->first + source_index(r, id)) : 0;
}

int source_check(const struct source_range *r)
{
    uint32_t probe[2] = {0, r->count - 1};
    for (int i = 0; i < (r->count > 1 ? 2 : 1) && r->count; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int rc = fd < 0 ? -1 : bind_to(fd, r->first + probe[i]);
        int err = errno;
        if (fd >= 0)
            close(fd);
        if (rc < 0) {
            char name[INET_ADDRSTRLEN];
            fprintf(stderr, "mux-stress: --source: cannot bind to %s: %s%s\n",
                    source_name(r, probe[i], name, sizeof(name)), strerror(err),
                    err == EADDRNOTAVAIL ? " (not an address of this host)" : "");
            return -1;
        }
    }
    return 0;
}
