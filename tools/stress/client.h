/* client.h - one load thread: its own epoll, its own share of the
 * connections, its own histogram and counters. Nothing here is shared with
 * other load threads; the main thread only reads `st` and `hist` (relaxed
 * atomics, see hist.h) and signals the stop eventfd.
 *
 * client.c runs the loop (wait, dispatch, pace, flush, housekeeping) and the
 * connection life cycle; conn_io.c moves and verifies bytes. */
#ifndef STRESS_CLIENT_H
#define STRESS_CLIENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "hist.h"
#include "options.h"
#include "proto.h"
#include "reqring.h"
#include "schedule.h"

/* Counters of one thread. Written only by it (relaxed atomic stores),
 * read by the main thread for progress and the final report. */
struct tstats {
    uint64_t requests;        /* measured, verified replies */
    uint64_t bytes_rx;        /* bytes received while measuring */
    uint64_t bytes_tx;        /* bytes sent while measuring */
    uint64_t verify_failures; /* replies that failed verification, incl. timeouts */
    uint64_t timeouts;        /* replies missing for --timeout */
    uint64_t connect_errors;  /* failed connection attempts */
    uint64_t resets;          /* ECONNRESET / EPIPE */
    uint64_t conns_up;        /* gauge: connections established now */
    uint64_t last_done;       /* ns of the last measured reply */
};

enum conn_state {
    CS_WAIT,       /* not connected; (re)connect at retry_at */
    CS_CONNECTING, /* non-blocking connect in progress, waiting for EPOLLOUT */
    CS_UP,
    CS_DEAD, /* gave up after repeated connect failures */
};

struct sconn {
    int fd;
    uint8_t state;     /* enum conn_state */
    uint8_t fails;     /* consecutive connect failures */
    bool idle;         /* --idle: connects and holds, never sends */
    bool dirty;        /* on the thread's flush list */
    bool want_out;     /* EPOLLOUT registered */
    uint32_t id;       /* run-wide connection number */
    uint32_t index;    /* index among the thread's busy connections */
    uint64_t seq;      /* next request number */
    uint64_t sched_i;  /* open loop: next request on the grid */
    uint64_t since;    /* ns: state entered / last reply progress */
    uint64_t retry_at; /* ns, CS_WAIT */
    struct reqring ring;
    struct proto_rx rx;
};

enum thread_phase { PH_RUN, PH_DRAIN, PH_DONE };

struct sthread {
    uint32_t id;
    const struct stress_opts *o;
    struct proto *proto;
    const struct sockaddr *addr;
    socklen_t addrlen;
    int epfd;
    int stop_fd;         /* shared eventfd: main asks every thread to stop */
    int done_fd;         /* shared eventfd: this thread tells main it ended */
    struct sconn *conns; /* nbusy busy connections, then the idle ones */
    uint32_t nbusy, nall;
    struct req *slots; /* ring storage of all connections */
    uint32_t *dirty;   /* connections with bytes to flush this batch */
    uint32_t ndirty;
    char *rbuf; /* read buffer shared by the thread's connections */
    size_t rbuf_size;
    uint64_t now;           /* ns, read once per event batch */
    uint64_t measure_start; /* ns: end of the warm-up */
    uint64_t end_time;      /* ns: end of -d, or UINT64_MAX */
    uint64_t budget;        /* -n share not yet issued, or UINT64_MAX */
    uint64_t inflight;      /* outstanding requests over all connections */
    uint64_t next_house;    /* ns of the next housekeeping pass */
    uint64_t drain_deadline;
    int phase; /* enum thread_phase */
    bool open_loop;
    bool stop_seen;
    struct schedule sched;
    struct tstats st;
    struct hist hist;
    pthread_t tid;
    char fatal[160]; /* set if the thread could not run at all */
};

/* Prepares thread th for `nbusy` busy and `nidle` idle connections whose run
 * ids start at first_id. Allocates everything the run will need. 0 or -1. */
int client_init(struct sthread *th, uint32_t nbusy, uint32_t nidle, uint32_t first_id);

/* Thread entry: runs until the phase is PH_DONE, then writes done_fd. */
void *client_run(void *th);

/* Frees what client_init allocated (after the thread was joined). */
void client_free(struct sthread *th);

/* Print budget for failure messages, shared by all threads. */
bool client_may_report(void);

/* --- conn_io.c (used by client.c) --- */
void conn_refill(struct sthread *th, struct sconn *c);
void conn_flush(struct sthread *th, struct sconn *c);
void conn_readable(struct sthread *th, struct sconn *c);
void conn_verify_failed(struct sthread *th, struct sconn *c, const char *msg);

/* --- client.c (used by conn_io.c) --- */
void conn_lost(struct sthread *th, struct sconn *c, bool reset);
void conn_set_out(struct sthread *th, struct sconn *c, bool on);

/* Single-writer counter bump, readable by other threads. */
static inline void stat_add(uint64_t *p, uint64_t n)
{
    __atomic_store_n(p, *p + n, __ATOMIC_RELAXED);
}

static inline uint64_t stat_get(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

#endif
