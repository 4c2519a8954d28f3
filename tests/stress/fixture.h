/* fixture.h - running mux-stress against broken_server (or a sample
 * server) from the cmocka tests: start the server as a child, run
 * mux-stress to completion with --json, read the result back. Every run is
 * bounded by a capture timeout; servers are stopped by PID. */
#ifndef STRESS_TEST_FIXTURE_H
#define STRESS_TEST_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "harness.h"

#define FX_MAX_ARGS 40

/* Output (stdout + stderr) of the last mux-stress run. */
extern char fx_out[65536];
/* A private temporary directory for the test program. */
extern char fx_tmpdir[64];

struct res {
    int rc;
    long long elapsed_ms; /* wall time of the mux-stress process */
    double requests, verify_failures, timeouts, connect_errors, resets, rps, p99;
    double lost, unanswered, closed, connects, conns_per_sec, duration;
    double idle_open, idle_checked, idle_verified, idle_lost, idle_unverified, idle_bytes,
        idle_connect_s;
    bool passed; /* "passed":true in the JSON */
};

bool fx_valgrind(void);

/* "n" normally, "small" under valgrind. */
const char *fx_count(const char *n, const char *small);

/* Runs mux-stress with -q --json, args and target (may be NULL). */
struct res fx_stress(const char *target, const char *const *args);

/* The same through a wrapper: runs prog with pre (which names mux-stress
 * and its first arguments), then -q --json FILE and the target. */
struct res fx_stress_via(const char *prog, const char *target, const char *const *pre);

/* Starts bin with -l listen -w 2 and extra args; fills target. */
void fx_start(struct th_child *c, const char *bin, const char *listen, const char *const *extra,
              char *target, size_t size);

/* Stops c with SIGTERM and asserts a clean exit. */
void fx_stop(struct th_child *c);

/* One broken_server run: server flags, stress flags, expected exit. */
struct res fx_broken_run(const char *const *srv, const char *const *args, int want_rc);

/* cmocka group setup/teardown: the temporary directory and its files. */
int fx_group_setup(void **state);
int fx_group_teardown(void **state);

/* fx_tmpdir/name into buf. */
const char *fx_path(char *buf, size_t size, const char *name);

#endif
