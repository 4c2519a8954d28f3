/* net.c - parsing and formatting of HOST:PORT, and listen sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net.h"

static int parse_port(const char *s, char *err, size_t errsize)
{
    char *end;
    errno = 0;
    long port = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno || port < 0 || port > 65535) {
        snprintf(err, errsize, "bad port \"%s\" (want 0..65535)", s);
        return -1;
    }
    return (int)port;
}

/* Splits text into host and port strings; host "" means any address. */
static int split_host_port(const char *text, char *host, size_t hsize, const char **port,
                           char *err, size_t errsize)
{
    const char *colon;
    size_t hlen;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errsize, "bad address \"%s\" (want [V6]:PORT)", text);
            return -EINVAL;
        }
        hlen = (size_t)(close - text - 1);
        text++;
        colon = close + 1;
    } else {
        colon = strrchr(text, ':');
        if (!colon) {
            snprintf(err, errsize, "bad address \"%s\" (want HOST:PORT)", text);
            return -EINVAL;
        }
        hlen = (size_t)(colon - text);
    }
    if (hlen >= hsize) {
        snprintf(err, errsize, "host name too long in \"%s\"", text);
        return -EINVAL;
    }
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    if (strcmp(host, "*") == 0)
        host[0] = '\0';
    *port = colon + 1;
    return 0;
}

int mux__addr_parse(const char *text, struct sockaddr_storage *out, socklen_t *len, char *err,
                    size_t errsize)
{
    char host[256];
    const char *port_str;
    if (split_host_port(text, host, sizeof(host), &port_str, err, errsize) < 0)
        return -EINVAL;
    int port = parse_port(port_str, err, errsize);
    if (port < 0)
        return -EINVAL;

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host[0] ? host : NULL, port_str, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errsize, "cannot resolve \"%s\": %s", host, gai_strerror(rc));
        return -EINVAL;
    }
    memset(out, 0, sizeof(*out));
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

const char *mux__addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    (void)len;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
        snprintf(buf, size, "%s:%d", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
        snprintf(buf, size, "[%s]:%d", host, port);
    } else {
        snprintf(buf, size, "unknown");
    }
    return buf;
}

int mux__listen_socket(const struct sockaddr_storage *addr, socklen_t len, int backlog,
                       bool reuseport)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        goto fail;
    /* "[::]:port" listens on IPv6 only, so "0.0.0.0:port" can be bound too. */
    if (addr->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)addr, len) < 0 || listen(fd, backlog) < 0)
        goto fail;
    return fd;
fail:;
    int e = errno;
    close(fd);
    return -e;
}
