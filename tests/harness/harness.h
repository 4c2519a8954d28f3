/* harness.h - the test harness, one for every test (prefix th_, never mux_,
 * which is the library's): the poller variant under test, start a server
 * binary as a child, read its ready line, stop it by PID; blocking client
 * helpers with deadlines; the many-client load driver. Seeds and the
 * generator are in seed.h, an in-process server in inproc.h. Every wait
 * here is bounded; nothing sleeps in place of synchronisation. */
#ifndef MUX_TEST_HARNESS_H
#define MUX_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

struct th_child {
    pid_t pid;
    int out_fd;        /* the child's stdout (after the ready line) */
    char host[64];     /* from the ready line: "127.0.0.1" or "::1" */
    int port;
    char ready[256];   /* the whole ready line, without the newline */
};

/* Starts argv[0] (a path) with argv (NULL-terminated), its stdout piped to
 * us and stderr inherited, and waits up to timeout_ms for the line
 * "listening on HOST:PORT...". Returns 0, or -1 (child killed and reaped).
 * Under valgrind (MUX_UNDER_VALGRIND set) timeouts are multiplied by 20. */
int th_child_start(struct th_child *c, char *const argv[], int timeout_ms);

/* Sends `sig` (0 = none) and waits up to timeout_ms for the child to exit.
 * Returns its exit code (0..255), 128+signal if a signal ended it, or -1 on
 * timeout (it is then SIGKILLed and reaped). Closes out_fd. */
int th_child_stop(struct th_child *c, int sig, int timeout_ms);

/* Waits up to timeout_ms for the child to exit on its own; as above. */
int th_child_wait(struct th_child *c, int timeout_ms);

/* Runs argv to completion (bounded by timeout_ms), capturing stdout and
 * stderr into out (NUL-terminated, truncated to size). Returns the exit code,
 * 128+signal, or -1 on timeout. */
int th_run_capture(char *const argv[], char *out, size_t size, int timeout_ms);

/* The poller variant under test: MUX_TEST_POLLER (epoll, epoll-et, poll,
 * select, uring; default epoll), read here and nowhere else. */
const char *th_poller(void);
/* True when the variant is name ("epoll-et" is not "epoll"). */
bool th_poller_is(const char *name);
/* The variant as a program's flags at argv[n]: "--poller NAME [--edge]";
 * returns the new count. */
int th_poller_args(char **argv, int n);

/* Appends "-l 127.0.0.1:0 -w 2" and th_poller_args() to argv at n; returns
 * the new count. */
int th_server_args(char **argv, int n);

/* True when this test runs under valgrind (ctest's memcheck.* tests set
 * MUX_UNDER_VALGRIND): scale work and timeouts down. The one name for it,
 * with TH_UNDER_SANITIZER below for ASan and TSan. */
bool th_under_valgrind(void);

/* 1 when this test (and the servers built with it) runs under ASan, whose
 * quarantine keeps freed memory, or TSan, whose shadow memory grows with
 * every heap page touched: peak-RSS bounds do not hold there. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TH_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TH_UNDER_SANITIZER 1
#endif
#endif
#ifndef TH_UNDER_SANITIZER
#define TH_UNDER_SANITIZER 0
#endif

/* Timeout scale: 1, or 20 under valgrind. */
int th_slowdown(void);

/* host (IPv4 or IPv6 literal) and port as a socket address. 0 or -1. */
struct sockaddr_storage;
int th_sockaddr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len);

/* Blocking TCP connect to host:port (IPv4 or IPv6 literal). fd or -1. */
int th_connect_tcp(const char *host, int port);

/* Writes everything (bounded by timeout_ms). 0 or -1. */
int th_write_all(int fd, const void *buf, size_t len, int timeout_ms);

/* Reads exactly len bytes within timeout_ms. Returns len, the short count
 * at EOF, or -1 on error/timeout. */
ssize_t th_read_exact(int fd, void *buf, size_t len, int timeout_ms);

/* Waits up to timeout_ms for EOF (read returns 0) while discarding data.
 * Returns 0 on EOF, -errno on a socket error (e.g. -ECONNRESET), -ETIMEDOUT. */
int th_wait_eof(int fd, int timeout_ms);

/* Deterministic pseudo-random bytes (xorshift) for payloads. */
void th_fill_random(void *buf, size_t len, unsigned long long *state);

/* Monotonic milliseconds. */
long long th_now_ms(void);

/* The peak resident set (VmHWM) of a process, in KiB, or -1. */
long th_peak_rss_kib(pid_t pid);

/* Many concurrent clients over non-blocking sockets in one poll loop:
 * each connection sends bytes_per_conn pseudo-random bytes in random
 * fragments (1..max_fragment) and verifies every byte that comes back
 * against the expected transform, in order. */
enum th_xform { TH_XFORM_ECHO, TH_XFORM_UPPER };

struct th_load {
    const char *host;
    int port;
    int conns;
    size_t bytes_per_conn;
    size_t max_fragment;
    enum th_xform xform;
    unsigned long long seed;
    int timeout_ms;
    /* results */
    unsigned long long verified_bytes;
    int completed;   /* connections whose every byte came back verified */
    int mismatches;  /* connections that received a wrong byte */
    int errors;      /* connect/reset/EOF-too-early */
};

/* 0 when every connection completed verified, -1 otherwise. */
int th_load_run(struct th_load *l);

#endif
