/* idle.h - the --idle connections of one load thread, kept compact so a run
 * can hold a million of them: an idle connection is an 8-byte record (its
 * fd and a few bytes of state), with no buffers, ring or histogram of its
 * own (with --tls, also its SSL pointer and OpenSSL's session object). Its
 * epoll data is its index, tagged (IDLE_TAG), not a pointer.
 *
 * Life of the idle set, driven by client.c's loop:
 *   ramp   connect them at --connect-rate (the thread's share), at most
 *          IDLE_PENDING connects in flight, each with --timeout (the TLS
 *          handshake included); a failed
 *          connect is a connect error and is tried again in a later pass,
 *          up to IDLE_TRIES attempts;
 *   hold   (the measured run) they stay open and silent; a close, reset or
 *          any byte from the server ends one and is counted;
 *   check  after the run a sample of them (--idle-verify PCT, every one by
 *          default up to 10 000) sends one small request (echo/upper: up to
 *          IDLE_CHECK_BYTES of the pattern; http: the run's GET) and verifies
 *          the reply, at most IDLE_CHECKS in flight, each with --timeout, the
 *          whole check bounded (idle_check_done()).
 * The few connections being checked borrow a check slot that holds the
 * verifier state, allocated only for the check. */
#ifndef STRESS_IDLE_H
#define STRESS_IDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "proto.h"
#include "reqring.h"

#define IDLE_PENDING 256     /* connects in flight per thread */
#define IDLE_CHECKS 512      /* check requests in flight per thread */
#define IDLE_TRIES 3         /* connect attempts per idle connection */
#define IDLE_CHECK_BYTES 32  /* echo/upper: bytes of a check request (at most -s) */
#define IDLE_TAG 1u          /* epoll data: (index << 1) | IDLE_TAG */
#define IDLE_DEFAULT_ALL 10000 /* up to this many idle connections all are checked */

enum idle_state {
    IS_WAIT,       /* not connected yet (or again, after a failed attempt) */
    IS_CONNECTING, /* non-blocking connect in flight; slot = pending entry */
    IS_HANDSHAKE,  /* --tls: connected, handshake in flight; slot = pending entry */
    IS_OPEN,       /* connected, silent */
    IS_CHECKING,   /* check request sent; slot = check slot */
    IS_VERIFIED,   /* the check was answered correctly; still open */
    IS_GAVE_UP,    /* IDLE_TRIES connects failed */
    IS_LOST,       /* closed or reset by the server, or it sent bytes unasked */
    IS_FAILED,     /* the check failed verification or timed out */
};

struct iconn {
    int32_t fd;    /* -1 when not open */
    uint8_t state; /* enum idle_state */
    uint8_t tries; /* connect attempts made */
    uint16_t slot; /* IS_CONNECTING/HANDSHAKE: pending entry; IS_CHECKING: check slot */
};

struct idle_pending {
    uint32_t idx; /* connection index */
    uint64_t t;   /* ns: connect() was called */
};

struct idle_check {
    uint32_t idx; /* connection index */
    uint64_t t;   /* ns: the request was sent */
    struct req req;
    struct reqring ring; /* one entry: req */
    struct proto_rx rx;
};

struct idle_set {
    struct iconn *c;
    struct ssl_st **tls;   /* --tls: the session of c[i], else NULL */
    uint32_t n;            /* idle connections of this thread */
    uint32_t first_id;     /* run-wide connection number of c[0] */
    uint64_t first_global; /* run-wide idle index of c[0] (for sampling) */
    struct idle_pending *pend;
    uint32_t npend;
    /* ramp */
    uint32_t cursor;   /* next index to look at in this pass */
    uint32_t pass;     /* 0 = first attempts, then retries */
    uint32_t retry;    /* connections waiting for another attempt */
    uint64_t pass_at;  /* ns: the next pass may start */
    double tokens;     /* connects allowed now */
    double per_ns;     /* this thread's share of --connect-rate, per ns */
    uint64_t tok_t;    /* ns of the last token refill */
    bool ramp_over;    /* stopped by a signal */
    /* check */
    struct idle_check *chk; /* allocated when the check starts */
    uint16_t *chk_free;
    uint32_t nchk, nfree;
    uint32_t vcursor;   /* next index to consider for a check */
    uint32_t ppm;       /* --idle-verify in parts per million */
    uint64_t check_end; /* ns: the check's bound */
    size_t bytes;       /* peak client memory held for idle connections */
    struct hist conn_hist; /* connect latency of idle connections */
};

struct sthread;

/* Allocates the records of n idle connections. 0 or -1 (out of memory). */
int idle_init(struct sthread *th, uint32_t n, uint32_t first_id, uint64_t first_global);
void idle_free(struct sthread *th);

/* Ramp: start the connects that the rate and the in-flight bound allow. */
void idle_ramp(struct sthread *th);
/* True once every idle connection is open, gave up, or the ramp was stopped. */
bool idle_ramp_done(const struct sthread *th);
/* ns when idle_ramp() may start another connect (UINT64_MAX: none due). */
uint64_t idle_ramp_next(const struct sthread *th);

/* An epoll event for idle connection idx. */
void idle_event(struct sthread *th, uint32_t idx, uint32_t events);

/* Every housekeeping pass: connect and check timeouts. */
void idle_housekeep(struct sthread *th);

/* Check: allocate the slots and set the bound. 0 or -1 (out of memory). */
int idle_check_begin(struct sthread *th);
/* Sends check requests while slots are free. */
void idle_check_step(struct sthread *th);
/* True when every sampled connection was checked, or the bound passed (what
 * was not checked by then is counted as unverified). */
bool idle_check_done(struct sthread *th);

/* Closes every idle connection (end of the run). */
void idle_close_all(struct sthread *th);

/* Is run-wide idle index g in the --idle-verify sample of ppm parts per
 * million? Spreads the sample evenly: exactly floor(N * ppm / 1e6) of the
 * first N indices. */
static inline bool idle_sampled(uint64_t g, uint32_t ppm)
{
    return (g + 1) * ppm / 1000000u > g * ppm / 1000000u;
}

#endif
