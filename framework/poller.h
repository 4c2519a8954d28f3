/* poller.h - the readiness backend interface (private).
 *
 * A worker owns one poller. Backends: epoll (level or edge triggered), poll,
 * select, uring (io_uring; create() fails where the kernel refuses it).
 * Each is one file implementing struct mux__poller_ops; poller.c maps a
 * name to its ops. Registering a fd carries a pointer that comes
 * back with its events. Interest is only ever changed through mod(), and
 * callers call it only when the mask really changes.
 *
 * The contract every backend keeps (tests/framework/test_poller.c checks it):
 *  - an fd not registered for MUX_EV_READ is never reported readable, not
 *    even when its peer half-closes (a level-triggered backend that asked
 *    for read-hangup while not reading would report it on every wait);
 *  - MUX_EV_ERROR and MUX_EV_HUP are reported whatever was asked for;
 *  - edge triggered (epoll only): a readiness is reported once per change,
 *    level triggered: on every wait while it lasts. */
#ifndef MUX_POLLER_H
#define MUX_POLLER_H

#include <stdbool.h>
#include <stdint.h>

enum {
    MUX_EV_READ = 1u << 0,
    MUX_EV_WRITE = 1u << 1,
    MUX_EV_ERROR = 1u << 2, /* reported whether asked for or not */
    MUX_EV_HUP = 1u << 3,   /* likewise: both directions are gone */
    MUX_EV_RDHUP = 1u << 4, /* reported only: the peer shut its write side
                               (comes with MUX_EV_READ; never asked for) */
    MUX_EV_DONE = 1u << 5,  /* a completion of the poller's transport
                               (ops.transport): ptr, res and cflags are
                               that transport's to read */
};

enum {
    MUX_POLLER_CAN_EDGE = 1u << 0,  /* supports edge triggering */
    MUX_POLLER_FD_LIMIT = 1u << 1,  /* refuses fds >= FD_SETSIZE */
};

struct mux__poll_event {
    void *ptr;
    uint32_t events;
    int32_t res;     /* MUX_EV_DONE only */
    uint32_t cflags; /* MUX_EV_DONE only: IORING_CQE_F_* */
};

struct mux__poller;
struct mux__transport;

struct mux__poller_ops {
    const char *name;
    unsigned flags;
    /* Optional: 0 when the backend works here, else a negative errno
     * (-ENOSYS: an old kernel; -EPERM: seccomp or a sysctl refuses it).
     * Any thread. */
    int (*probe)(void);
    /* Optional: the completion transport this poller offers for plain
     * connections, or NULL (not ready yet, or none). Its completions come
     * back from wait() as MUX_EV_DONE events. Worker thread. */
    const struct mux__transport *(*transport)(struct mux__poller *p);
    /* 0 or a negative errno. */
    int (*create)(struct mux__poller **out, bool edge_triggered);
    void (*destroy)(struct mux__poller *p);
    /* 0 or a negative errno (-EMFILE / -ERANGE for select's FD_SETSIZE). */
    int (*add)(struct mux__poller *p, int fd, void *ptr, uint32_t events);
    int (*mod)(struct mux__poller *p, int fd, void *ptr, uint32_t events);
    /* Before close(fd). */
    void (*del)(struct mux__poller *p, int fd);
    /* Waits up to timeout_ms (-1 forever); returns the number of events
     * written (0 on timeout or EINTR), or a negative errno when waiting
     * itself failed. */
    int (*wait)(struct mux__poller *p, struct mux__poll_event *ev, int max, int timeout_ms);
};

/* The backend called name, or NULL. */
const struct mux__poller_ops *mux__poller_find(const char *name);

extern const struct mux__poller_ops mux__poller_epoll;
extern const struct mux__poller_ops mux__poller_poll;
extern const struct mux__poller_ops mux__poller_select;
#ifdef MUX_HAVE_LIBURING
extern const struct mux__poller_ops mux__poller_uring;
#endif

/* 0 when the backend called name works here, -EINVAL for no such backend
 * (or one this build lacks), else its probe's errno. Any thread. */
int mux__poller_probe(const char *name);

/* Tests: a backend of the test's own, found by mux__poller_find() under
 * its name (NULL removes it). Only in a MUX_FAULT_INJECTION build; set it
 * while no server exists. */
void mux__poller_set_test(const struct mux__poller_ops *ops);

/* The names of the backends this build has, in order, NULL-terminated. */
extern const char *const mux__poller_names[];

#endif
