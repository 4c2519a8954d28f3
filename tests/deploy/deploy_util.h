/* deploy_util.h - plumbing of the deployment tests: a temporary directory,
 * files, a bounded wait for text in a log, the Prometheus counters of a
 * running server, a listening socket to hand to haproxy. Every wait is
 * bounded; nothing sleeps in place of synchronisation. */
#ifndef MUX_DEPLOY_UTIL_H
#define MUX_DEPLOY_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Creates /tmp/mux-<tag>-XXXXXX (0 or -1); deploy_tmp_path names a file in
 * it; deploy_tmp_remove deletes it with its contents. */
int deploy_tmp_create(const char *tag);
const char *deploy_tmp_path(const char *name, char *buf, size_t size);
int deploy_tmp_remove(void);

/* Writes text to path (0 or -1). */
int deploy_write_file(const char *path, const char *text);

/* The whole file (up to size - 1 bytes, NUL-terminated) or NULL. */
char *deploy_slurp(const char *path, char *buf, size_t size);

/* Polls path (every 10 ms) until it contains needle or timeout_ms (times
 * the valgrind slowdown) passes. */
bool deploy_wait_for_text(const char *path, const char *needle, int timeout_ms);

/* GET /metrics from "HOST:PORT" into buf; 0, or -1 (no 200 answer). */
int deploy_metrics(const char *hostport, char *buf, size_t size);

/* The sum of every sample of a metric (all label sets). */
unsigned long long deploy_metric(const char *text, const char *name);

/* The "metrics=HOST:PORT" of a ready line into out; 0 or -1. */
int deploy_ready_metrics(const char *ready, char *out, size_t size);

/* A listening TCP socket on 127.0.0.1, any port, not close-on-exec (a
 * child inherits it). Its port goes to *port. fd or -1. */
int deploy_listen_loopback(int *port);

/* Finds haproxy: $MUX_HAPROXY, else PATH, /usr/sbin, /usr/local/sbin.
 * NULL when there is none. */
const char *deploy_find_haproxy(char *path, size_t size);

/* Starts `haproxy -q -db -f cfg` (through env, which valgrind does not
 * follow) with the calling process's environment; it dies with us. */
pid_t deploy_start_haproxy(const char *bin, const char *cfg);

#endif
