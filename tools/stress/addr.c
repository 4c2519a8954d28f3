/* addr.c - target resolution (see addr.h). The probe connection, made only
 * when a name resolves to several addresses, is closed at once. */
#include "addr.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static bool probe(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool ok = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
    if (!ok && errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t l = sizeof(err);
        ok = poll(&p, 1, 1000) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) == 0 &&
             err == 0;
    }
    close(fd);
    return ok;
}

int addr_resolve(const struct stress_opts *o, struct sockaddr_storage *out, socklen_t *len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(o->host, o->port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "mux-stress: cannot resolve '%s': %s\n", o->host, gai_strerror(rc));
        return -1;
    }
    const struct addrinfo *pick = res;
    if (res->ai_next)
        for (const struct addrinfo *ai = res; ai; ai = ai->ai_next)
            if (probe(ai)) {
                pick = ai;
                break;
            }
    memcpy(out, pick->ai_addr, pick->ai_addrlen);
    *len = pick->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}
