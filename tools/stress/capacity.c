/* capacity.c - descriptor and port limits checked before the run (see
 * capacity.h; not limits.h, which would shadow the system header). */
#include "capacity.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#define NR_OPEN_PATH "/proc/sys/fs/nr_open"
#define PORT_RANGE_PATH "/proc/sys/net/ipv4/ip_local_port_range"

uint64_t limits_fds_needed(const struct stress_opts *o)
{
    return (uint64_t)o->conns + o->idle + 2ull * o->threads + LIMITS_FD_MARGIN;
}

enum fd_plan limits_fd_plan(uint64_t need, uint64_t soft, uint64_t hard, uint64_t nr_open)
{
    (void)soft; /* raised to the hard limit either way */
    if (need <= hard)
        return FD_FITS;
    return need <= nr_open ? FD_RAISE : FD_NR_OPEN;
}

void limits_fd_message(char *buf, size_t size, enum fd_plan plan, uint64_t conns, uint64_t need,
                       uint64_t hard, uint64_t nr_open)
{
    if (plan == FD_NR_OPEN)
        snprintf(buf, size,
                 "mux-stress: %llu connections need about %llu file descriptors, more than the "
                 "kernel allows any process: fs.nr_open is %llu. As root raise it first, "
                 "'sysctl -w fs.nr_open=%llu', then mux-stress raises its own limit (or "
                 "'ulimit -Hn %llu')\n",
                 (unsigned long long)conns, (unsigned long long)need,
                 (unsigned long long)nr_open, (unsigned long long)need,
                 (unsigned long long)need);
    else
        snprintf(buf, size,
                 "mux-stress: %llu connections need about %llu file descriptors, but the hard "
                 "limit is %llu (ulimit -n; 'ulimit -Hn' shows it) and raising it needs "
                 "CAP_SYS_RESOURCE, which this process lacks (root has it, unless a container "
                 "dropped it): raise it before starting mux-stress, e.g. 'ulimit -Hn %llu' in "
                 "a root shell, LimitNOFILE= in a systemd unit, nofile in "
                 "/etc/security/limits.conf, or docker run --ulimit nofile=N\n",
                 (unsigned long long)conns, (unsigned long long)need, (unsigned long long)hard,
                 (unsigned long long)need);
}

int limits_port_check(uint64_t conns, uint32_t nsrc, bool have_source, uint32_t lo, uint32_t hi,
                      bool loopback, char *buf, size_t size)
{
    uint64_t ports = hi >= lo ? (uint64_t)hi - lo + 1 : 0;
    uint64_t each = (conns + nsrc - 1) / nsrc;
    if (each <= ports)
        return 0;
    uint64_t addrs = ports ? (conns + ports - 1) / ports : conns;
    char how[96];
    if (loopback && addrs + 1 <= 255)
        snprintf(how, sizeof(how), "--source 127.0.0.2-127.0.0.%llu", (unsigned long long)addrs + 1);
    else
        snprintf(how, sizeof(how), "--source FIRST-LAST with %llu local addresses",
                 (unsigned long long)addrs);
    snprintf(buf, size,
             "mux-stress: %llu connections to one server address need %llu local ports from "
             "%s, but net.ipv4.ip_local_port_range (%u-%u) has %llu: spread them over more "
             "source addresses (%s, %llu connections each), or widen the range as root: sysctl "
             "-w net.ipv4.ip_local_port_range=\"1024 65535\"\n",
             (unsigned long long)conns, (unsigned long long)each,
             have_source ? "each --source address" : "its one source address", lo, hi,
             (unsigned long long)ports, how, (unsigned long long)((conns + addrs - 1) / addrs));
    return -1;
}

static int read_u64s(const char *path, unsigned long long *a, unsigned long long *b)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = b ? fscanf(f, "%llu %llu", a, b) : fscanf(f, "%llu", a);
    fclose(f);
    return n == (b ? 2 : 1) ? 0 : -1;
}

/* RLIMIT_NOFILE: soft to hard; the hard limit to `need` when short (works
 * with CAP_SYS_RESOURCE). 0, or -1 after printing which limit stops it. */
static int fd_limit(const struct stress_opts *o)
{
    struct rlimit rl;
    unsigned long long nr_open = 1024 * 1024;
    uint64_t need = limits_fds_needed(o), conns = (uint64_t)o->conns + o->idle;
    char msg[640];
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0; /* cannot tell: let the connects say it */
    read_u64s(NR_OPEN_PATH, &nr_open, NULL);
    enum fd_plan plan = limits_fd_plan(need, rl.rlim_cur, rl.rlim_max, nr_open);
    if (plan == FD_FITS) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max; /* as far as the hard limit allows */
            setrlimit(RLIMIT_NOFILE, &rl);
        }
        return 0;
    }
    if (plan == FD_RAISE) {
        struct rlimit up = {.rlim_cur = need, .rlim_max = need};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            return 0;
        rl.rlim_cur = rl.rlim_max; /* at least that, for the message's sake */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    limits_fd_message(msg, sizeof(msg), plan, conns, need, rl.rlim_max, nr_open);
    fputs(msg, stderr);
    return -1;
}

static int port_limit(const struct stress_opts *o, bool loopback)
{
    unsigned long long lo, hi;
    char msg[640];
    if (read_u64s(PORT_RANGE_PATH, &lo, &hi) < 0 || lo > 65535 || hi > 65535)
        return 0; /* not Linux as we know it: let the connects say it */
    uint32_t nsrc = o->source.count ? o->source.count : 1;
    if (limits_port_check((uint64_t)o->conns + o->idle, nsrc, o->source.count > 0, (uint32_t)lo,
                          (uint32_t)hi, loopback, msg, sizeof(msg)) == 0)
        return 0;
    fputs(msg, stderr);
    return -1;
}

int limits_apply(const struct stress_opts *o, bool loopback)
{
    int ports = port_limit(o, loopback);
    int fds = fd_limit(o);
    return ports < 0 || fds < 0 ? -1 : 0;
}
