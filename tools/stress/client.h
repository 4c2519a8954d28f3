/* client.h - one load thread: its own epoll, its own share of the
 * connections, its own histogram and counters. Nothing here is shared with
 * other load threads; the main thread only reads `st` and `hist` (relaxed
 * atomics, see hist.h) and signals the stop eventfd.
 *
 * client.c runs the loop (wait, dispatch, pace, flush, housekeeping) and the
 * run phases; conn_life.c connects, ends and reopens connections; conn_io.c
 * moves and verifies bytes; idle.c holds the --idle connections. */
#ifndef STRESS_CLIENT_H
#define STRESS_CLIENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "hist.h"
#include "idle.h"
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
    uint64_t closed;          /* closed by the server while owed replies */
    uint64_t quiet_closes;    /* closed by the server while owed nothing */
    uint64_t lost;            /* requests sent and never answered */
    uint64_t lost_at_end;     /* the part of `lost` still owed when the run ended */
    uint64_t connects;        /* connections established while measuring */
    uint64_t conns_up;        /* gauge: connections established now */
    uint64_t last_done;       /* ns of the last measured reply */
    /* --idle (idle.c) */
    uint64_t idle_open;       /* gauge: idle connections open now */
    uint64_t idle_connects;   /* idle connections established */
    uint64_t idle_gave_up;    /* idle connections never established (IDLE_TRIES failed) */
    uint64_t idle_lost;       /* closed or reset by the server, or sent bytes unasked */
    uint64_t idle_checked;    /* check requests sent */
    uint64_t idle_verified;   /* checks answered and verified */
    uint64_t idle_unverified; /* sampled, but not checked within the bound */
};

/* Why a connection ended; decides what is counted and how it reopens. */
enum conn_end {
    END_RECYCLE, /* expected: --reconnect reached, or the server announced close */
    END_FAILED,  /* mux-stress closed it: a reply failed verification */
    END_TIMEOUT, /* mux-stress closed it: a reply missing for --timeout */
    END_RESET,   /* reset by the server (ECONNRESET, EPIPE) */
    END_CLOSED,  /* closed by the server (FIN) without announcing it */
};

enum conn_state {
    CS_WAIT,       /* not connected; (re)connect at retry_at */
    CS_CONNECTING, /* non-blocking connect in progress, waiting for EPOLLOUT */
    CS_HANDSHAKE,  /* --tls: connected, TLS handshake in progress */
    CS_UP,
    CS_DEAD, /* gave up after repeated connect failures */
};

struct sconn {
    int fd;
    uint8_t state;     /* enum conn_state */
    uint8_t fails;     /* consecutive connect failures */
    bool dirty;        /* on the thread's flush list */
    bool want_out;     /* EPOLLOUT registered */
    bool got_reply;    /* a reply completed on the current connection */
    uint32_t id;       /* run-wide connection number */
    uint32_t index;    /* index among the thread's busy connections */
    uint64_t seq;      /* next request number */
    uint64_t issued;   /* requests issued on the current connection */
    uint64_t sched_i;  /* open loop: next request on the grid */
    uint64_t since;     /* ns: state entered / last reply progress */
    uint64_t connect_t; /* ns: connect() was called (fresh clock read) */
    uint64_t retry_at; /* ns, CS_WAIT */
    bool tls_read_on_out; /* --tls: a read waits for writability (key update) */
    bool tls_flush_on_in; /* --tls: a write waits for readability */
    uint32_t tls_wlen;    /* --tls: length of the record write to retry, or 0 */
    struct ssl_st *ssl;   /* --tls, from CS_HANDSHAKE on */
    struct reqring ring;
    struct proto_rx rx;
};

/* With --idle: ramp -> ready -> run -> drain -> hold -> check -> done, the
 * main thread releasing `ready` (start_fd) and `hold` (check_fd) once every
 * thread got there. Without: run -> drain -> done. */
enum thread_phase {
    PH_RAMP,  /* opening the idle connections */
    PH_READY, /* idle connections open: waiting for start_fd */
    PH_RUN,
    PH_DRAIN,
    PH_HOLD,  /* run over: waiting for check_fd */
    PH_CHECK, /* checking the idle connections */
    PH_DONE,
};

struct sthread {
    uint32_t id;
    const struct stress_opts *o;
    struct proto *proto;
    const struct sockaddr *addr;
    socklen_t addrlen;
    int epfd;
    int stop_fd;         /* shared eventfd: main asks every thread to stop */
    int go_fd;           /* shared eventfd: the http reference body is ready */
    int done_fd;         /* shared eventfd: this thread tells main a phase ended */
    int start_fd;        /* shared eventfd: main starts the run (after the ramp) */
    int check_fd;        /* shared eventfd: main starts the idle check */
    int released;        /* atomic: main has set the run's times (start_fd) */
    bool phased;         /* --idle: the ramp/hold/check phases exist */
    struct sconn *conns; /* the nbusy busy connections */
    uint32_t nbusy;
    struct req *slots; /* ring storage of all connections */
    uint32_t *dirty;   /* connections with bytes to flush this batch */
    uint32_t ndirty;
    char *rbuf; /* read buffer shared by the thread's connections */
    size_t rbuf_size;
    char *wbuf; /* --tls: requests gathered into one record */
    uint64_t now;           /* ns, read once per event batch */
    uint64_t measure_start; /* ns: end of the warm-up */
    uint64_t end_time;      /* ns: end of -d, or UINT64_MAX */
    uint64_t budget;        /* -n share not yet issued, or UINT64_MAX */
    uint64_t inflight;      /* outstanding requests over all connections */
    uint64_t next_house;    /* ns of the next housekeeping pass */
    uint64_t drain_deadline;
    uint64_t timeout_ns; /* --timeout */
    uint64_t grace_ns;   /* options_drain_grace() */
    int phase;           /* enum thread_phase */
    bool open_loop;
    bool stop_seen;
    bool ref_seen; /* proto_ready() was seen: every connection may send */
    struct schedule sched;
    struct tstats st;
    struct hist hist;      /* reply latency, measured requests */
    struct hist conn_hist; /* connect latency, measured connects */
    struct idle_set idle;  /* the --idle connections */
    pthread_t tid;
    char fatal[160]; /* set if the thread could not run at all */
};

/* Prepares thread th for `nbusy` busy and `nidle` idle connections whose run
 * ids start at first_id (busy first); idle_before = idle connections of the
 * threads before. Allocates everything the run will need. 0 or -1. */
int client_init(struct sthread *th, uint32_t nbusy, uint32_t nidle, uint32_t first_id,
                uint64_t idle_before);

/* Thread entry: runs until the phase is PH_DONE, then writes done_fd. */
void *client_run(void *th);

/* Frees what client_init allocated (after the thread was joined). */
void client_free(struct sthread *th);

/* Print budgets for failure messages, shared by all threads. */
bool client_may_report(void);      /* verification failures */
bool client_may_report_loss(void); /* connections lost */
/* Counts nothing; prints "connect to TARGET: why" within its budget. */
void client_report_connect_error(struct sthread *th, const char *why);

/* --- conn_io.c (used by client.c) --- */
void conn_refill(struct sthread *th, struct sconn *c);
void conn_flush(struct sthread *th, struct sconn *c);
void conn_readable(struct sthread *th, struct sconn *c);
/* Counts a verification failure (why: END_FAILED or END_TIMEOUT), prints
 * it within the report budget, and ends the connection. */
void conn_verify_failed(struct sthread *th, struct sconn *c, const char *msg,
                        enum conn_end why);

/* --- conn_life.c (used by client.c and conn_io.c) --- */
void conn_start(struct sthread *th, struct sconn *c);
void conn_connect_done(struct sthread *th, struct sconn *c); /* EPOLLOUT while connecting */
void conn_handshake(struct sthread *th, struct sconn *c);    /* any event in CS_HANDSHAKE */
void conn_connect_timeout(struct sthread *th, struct sconn *c);
void conn_close_fd(struct sthread *th, struct sconn *c);
/* Closes c, counts what the reason implies, reopens it (or gives it up). */
void conn_end(struct sthread *th, struct sconn *c, enum conn_end why);
void conn_set_out(struct sthread *th, struct sconn *c, bool on);

/* --- client.c --- */
/* The reference body became ready (seen on this thread): start everyone. */
void client_ref_ready(struct sthread *th);

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
