/* net.h - socket addresses and listen sockets (private). */
#ifndef MUX_NET_H
#define MUX_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Parses "HOST:PORT", "[V6]:PORT", "*:PORT" or ":PORT" (any address).
 * HOST may be a literal or a name. Returns 0, or -EINVAL with a message in
 * err. */
int mux__addr_parse(const char *text, struct sockaddr_storage *out, socklen_t *len, char *err,
                    size_t errsize);

/* "127.0.0.1:7000" or "[::1]:7000" into buf; returns buf. */
const char *mux__addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t size);

/* A non-blocking, close-on-exec listening socket bound to addr. Returns the
 * fd, or a negative errno. */
int mux__listen_socket(const struct sockaddr_storage *addr, socklen_t len, int backlog,
                       bool reuseport);

#endif
