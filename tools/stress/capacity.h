/* capacity.h - will the asked-for connections fit? Before anything connects:
 * file descriptors (RLIMIT_NOFILE, raised as far as allowed: the soft limit
 * to the hard one, and, with CAP_SYS_RESOURCE (root), the hard limit up to
 * the kernel's fs.nr_open) and local ports (net.ipv4.ip_local_port_range:
 * one source address reaches one server address from that many ports).
 * When something does not fit, the message names the limit that stops it,
 * the number needed and the command that changes it. */
#ifndef STRESS_CAPACITY_H
#define STRESS_CAPACITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "options.h"

/* Descriptors the run needs besides its connections (epoll, eventfds,
 * signalfd, outputs, stdio), on top of 2 per thread. */
#define LIMITS_FD_MARGIN 32

enum fd_plan {
    FD_FITS,      /* raise the soft limit to the hard one: enough */
    FD_RAISE,     /* the hard limit is short: raise both to `need` (root only) */
    FD_NR_OPEN,   /* more than fs.nr_open: no process may have that many */
};

/* Descriptors for o's connections and threads. */
uint64_t limits_fds_needed(const struct stress_opts *o);

/* What to do when `need` descriptors are wanted under the limits
 * soft/hard and fs.nr_open (pure, for tests). */
enum fd_plan limits_fd_plan(uint64_t need, uint64_t soft, uint64_t hard, uint64_t nr_open);

/* The message for a plan that did not work out: FD_RAISE failed (the hard
 * limit stops it: ulimit -n) or FD_NR_OPEN (fs.nr_open stops it). */
void limits_fd_message(char *buf, size_t size, enum fd_plan plan, uint64_t conns, uint64_t need,
                       uint64_t hard, uint64_t nr_open);

/* Ports: `conns` connections to one server address spread over `nsrc`
 * source addresses (1 without --source), each address having the ports
 * lo..hi. 0 if they fit, else -1 with the message in buf (pure). The
 * suggested --source range starts at 127.0.0.2 for a loopback target. */
int limits_port_check(uint64_t conns, uint32_t nsrc, bool have_source, uint32_t lo, uint32_t hi,
                      bool loopback, char *buf, size_t size);

/* Applies both to this process: raises RLIMIT_NOFILE as far as needed and
 * allowed, reads the port range. 0, or -1 after printing every limit that
 * stops the run (a usage error, exit 2). `loopback`: the target is
 * 127.0.0.0/8. */
int limits_apply(const struct stress_opts *o, bool loopback);

#endif
