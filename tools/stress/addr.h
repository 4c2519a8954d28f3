/* addr.h - resolving the HOST:PORT target of mux-stress once, up front. */
#ifndef STRESS_ADDR_H
#define STRESS_ADDR_H

#include <sys/socket.h>

#include "options.h"

/* Resolves o->host/o->port (IPv4 or IPv6 literal, or a name such as
 * localhost). When a name has several addresses (localhost: ::1 and
 * 127.0.0.1) the first one that accepts a TCP connection within a second is
 * used, else the first. Returns 0, or -1 after printing why. */
int addr_resolve(const struct stress_opts *o, struct sockaddr_storage *out, socklen_t *len);

#endif
