/* source.h - --source ADDR or --source FIRST-LAST: the local IPv4 addresses
 * outgoing connections bind to before they connect, round-robin by the
 * run-wide connection number, so a run can hold more connections to one
 * server address than one local address has ephemeral ports. */
#ifndef STRESS_SOURCE_H
#define STRESS_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#define SOURCE_MAX 65536u /* addresses in one --source range */

struct source_range {
    uint32_t first; /* host byte order */
    uint32_t count; /* 0: no --source, the kernel picks the address */
};

/* Parses "A.B.C.D" or "A.B.C.D-E.F.G.H" (dotted quads, FIRST <= LAST, at most
 * SOURCE_MAX addresses). 0, or -1 with *why set to a static reason. */
int source_parse(const char *s, struct source_range *r, const char **why);

/* Address i of r (i < r->count), dotted, into buf. */
const char *source_name(const struct source_range *r, uint32_t i, char *buf, size_t size);

/* The address index connection `id` binds to: id modulo the count. */
static inline uint32_t source_index(const struct source_range *r, uint32_t id)
{
    return id % r->count;
}

/* Binds the unconnected IPv4 socket fd to the address of connection id with
 * port 0 and IP_BIND_ADDRESS_NO_PORT, so the kernel picks the port at
 * connect() time from that address's own ephemeral range. Nothing when r has
 * no addresses. 0, or -1 with errno set. */
int source_bind(int fd, const struct source_range *r, uint32_t id);

/* Before the run: can the first and the last address be bound here? 0, or -1
 * after printing which one cannot and why (e.g. not an address of this host). */
int source_check(const struct source_range *r);

#endif
