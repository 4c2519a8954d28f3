/* sim.h - the deterministic simulation: the real worker loop, connection
 * core, write queue, timers and handlers of mux, run in one thread against
 * a simulated network and clock that a seeded scheduler drives.
 *
 *   sim_net.c    the network: in-memory sockets, the "sim" poller backend
 *                and the "sim" transport that moves a connection's bytes
 *                through them
 *   sim_world.c  one seed's world: clients with scripts, the scheduler
 *                (run from the poller's wait: every wait is one step), the
 *                invariants checked after every step, the trace hash
 *   sim_apps.c   the handlers under test (the sample apps' own, and a
 *                random one), wrapped so that a callback run inside a
 *                mux_* call is caught
 *   test_sim.c   exploration under a time budget, and replay of one seed
 *
 * One thread, no real sockets (each simulated socket holds an eventfd as
 * its descriptor so that close() stays the framework's own), no sleeps:
 * the same seed gives the same trace, bit for bit. */
#ifndef MUX_SIM_H
#define MUX_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mux/mux.h>

struct mux__worker;
struct mux__poll_event;
struct mux__poller_ops;

/* ---- the seeded generator (xorshift64*) ---- */

static inline uint64_t sim_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* ---- a byte FIFO ---- */

struct sim_bytes {
    char *buf;
    size_t head, len, cap;
};

void sim_bytes_push(struct sim_bytes *b, const void *data, size_t n);
size_t sim_bytes_take(struct sim_bytes *b, void *out, size_t n, bool peek);
void sim_bytes_free(struct sim_bytes *b);

/* ---- a simulated TCP connection: the server's end is a mux_conn ---- */

struct sim_sock {
    int fd;            /* the placeholder the server's connection holds */
    unsigned index;    /* the client's number in this seed */
    void *ptr;         /* registered with the poller (the mux_conn) */
    uint32_t interest; /* MUX_EV_* asked for */
    bool watched;

    struct sim_bytes c2s; /* sent by the client, not yet read by the server */
    size_t c2s_room;      /* what the server's receive buffer still takes */
    bool c2s_fin;         /* the client's FIN (read once c2s is drained) */
    struct sim_bytes s2c; /* sent by the server, not yet read by the client */
    size_t s2c_room;      /* what the client's receive buffer still takes */
    size_t s2c_window;    /* its size */
    bool s2c_fin;         /* the server's FIN */

    bool reset_to_server; /* the client reset: the server's calls fail */
    bool reset_on_close;  /* the server asked for a reset close (SO_LINGER 0) */
    bool released;        /* the server closed its end */
    uint64_t last_io;     /* virtual time the server last moved a byte of it */
};

/* ---- the app under test ---- */

enum sim_app {
    SIM_ECHO,
    SIM_UPPER,
    SIM_QUEUE,
    SIM_CHAT,   /* lines to every client: checked line by line, not as an echo */
    SIM_RANDOM, /* random public calls from every callback; echoes what it consumes */
    SIM_APPS,
};

extern const char *const sim_app_names[SIM_APPS];

/* The app's handler and server-wide app pointer. */
const struct mux_handler *sim_app_handler(enum sim_app app, void **app_ptr);

/* What the app answers for byte b (echo: b; upper, queue: upper-cased). */
char sim_app_transform(enum sim_app app, char b);

/* ---- the world of one seed (sim_world.c) ---- */

struct sim_world;
extern struct sim_world *sim_cur; /* the one running (one thread) */

/* A decision of the scheduler: true with probability per_mille / 1000. */
bool sim_chance(unsigned per_mille);
/* Uniform in [0, n) (0 when n is 0). */
uint64_t sim_below(uint64_t n);
/* Mixes v into the trace hash. */
void sim_trace(uint64_t v);
/* Records the first invariant broken (printf format). */
void sim_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool sim_failed(void);
/* Replays only: prints one of the world's decisions. */
void sim_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The poller's wait is the scheduler's step: the world moves, the clock
 * jumps (at most to timeout_ms past now, as a real wait would), then the
 * readiness of the simulated sockets is reported into ev. */
int sim_world_step(struct mux__poll_event *ev, int max, int timeout_ms);
uint64_t sim_world_now(void);
struct sim_sock *sim_sock_by_fd(int fd);

/* sim_apps.c: the callbacks' wrappers tell the world what happened. */
void sim_world_accepted(struct mux_conn *c);
void sim_world_closed(struct mux_conn *c, int err);
void sim_world_app_ended(struct mux_conn *c); /* the app closed, aborted or shut it */
void sim_world_queued(struct mux_conn *c, size_t n); /* the app queued n bytes */
void sim_world_offered(struct mux_conn *c, size_t used); /* on_read took used bytes */
/* sim_net.c: the server asked for a reset close of s. */
void sim_world_reset_asked(struct sim_sock *s);
/* A callback began: none may run inside a mux_* call. */
void sim_world_callback(const char *name);
extern int sim_api_depth; /* mux_* calls the handler is inside of */

/* ---- the network (sim_net.c) ---- */

extern const struct mux__poller_ops sim_poller;
void sim_net_init_sock(struct sim_sock *s, unsigned index);

/* ---- one seed ---- */

struct sim_result {
    uint64_t hash;  /* of the whole trace */
    uint64_t steps;
    unsigned clients;
    enum sim_app app;
    bool failed;
    char why[512];
};

/* Runs seed to its end; verbose prints the world's decisions. */
void sim_run_seed(uint64_t seed, bool verbose, struct sim_result *out);

#endif
