/* harness.c - child servers and blocking clients for the tests (harness.h).
 * Every wait is bounded by a deadline; readiness is read from the server's
 * ready line, never guessed with a sleep. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "seed.h"

long long th_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int th_slowdown(void)
{
    return th_under_valgrind() ? 20 : 1;
}

static int remaining(long long deadline)
{
    long long left = deadline - th_now_ms();
    return left > 0 ? (int)left : 0;
}

/* Waits for fd to be readable/writable until deadline. 1 ready, 0 timeout. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, remaining(deadline));
        if (n > 0)
            return 1;
        if (n == 0)
            return 0;
        if (errno != EINTR)
            return 0;
    }
}

/* Reads one line (without the newline) byte by byte so nothing after it is
 * consumed. 0 on success, -1 on EOF or timeout. */
static int read_line(int fd, char *buf, size_t size, long long deadline)
{
    size_t n = 0;
    while (n + 1 < size) {
        if (!wait_fd(fd, POLLIN, deadline))
            return -1;
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            return -1;
        }
        if (ch == '\n')
            break;
        buf[n++] = ch;
    }
    buf[n] = '\0';
    return 0;
}

static int parse_ready(struct th_child *c)
{
    const char *p = strstr(c->ready, "listening on ");
    if (!p)
        return -1;
    p += strlen("listening on ");
    const char *end = strchr(p, ' ');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char addr[64];
    if (len >= sizeof(addr))
        return -1;
    memcpy(addr, p, len);
    addr[len] = '\0';
    char *colon = strrchr(addr, ':');
    if (!colon)
        return -1;
    *colon = '\0';
    c->port = atoi(colon + 1);
    const char *host = addr;
    if (host[0] == '[') {
        host++;
        addr[strlen(addr) - 1] = '\0';
    }
    snprintf(c->host, sizeof(c->host), "%s", host);
    return c->port > 0 ? 0 : -1;
}

int th_child_start(struct th_child *c, char *const argv[], int timeout_ms)
{
    memset(c, 0, sizeof(*c));
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test never leaves a server behind */
        dup2(pipefd[1], STDOUT_FILENO);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pipefd[1]);
    c->pid = pid;
    c->out_fd = pipefd[0];
    long long deadline = th_now_ms() + (long long)timeout_ms * th_slowdown();
    if (read_line(c->out_fd, c->ready, sizeof(c->ready), deadline) < 0 || parse_ready(c) < 0) {
        fprintf(stderr, "harness: no ready line from %s (got \"%s\")\n", argv[0], c->ready);
        th_child_stop(c, SIGKILL, 5000);
        return -1;
    }
    return 0;
}

/* Waits for the child's exit without a polling loop where possible: a pidfd
 * becomes readable at exit; where there is none (valgrind does not know
 * the syscall) the child's stdout reaching EOF says the same, and only the
 * instant between that EOF and the exit is bridged with 1 ms naps. */
static bool reaped(struct th_child *c, int *status)
{
    pid_t r = waitpid(c->pid, status, WNOHANG);
    return r == c->pid || r < 0;
}

static void wait_for_exit_event(struct th_child *c, int pfd, long long deadline)
{
    if (pfd >= 0) {
        wait_fd(pfd, POLLIN, deadline);
        return;
    }
    if (c->out_fd >= 0 && wait_fd(c->out_fd, POLLIN, deadline)) {
        char sink[256];
        ssize_t n = read(c->out_fd, sink, sizeof(sink));
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
            close(c->out_fd);
            c->out_fd = -1;
        }
        return;
    }
    struct timespec ts = {.tv_nsec = 1000000};
    nanosleep(&ts, NULL);
}

int th_child_wait(struct th_child *c, int timeout_ms)
{
    long long deadline = th_now_ms() + (long long)timeout_ms * th_slowdown();
    int status = 0;
    int pfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
    while (!reaped(c, &status)) {
        if (th_now_ms() >= deadline) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, NULL, 0);
            status = -1;
            break;
        }
        wait_for_exit_event(c, pfd, deadline);
    }
    if (pfd >= 0)
        close(pfd);
    if (c->out_fd >= 0)
        close(c->out_fd);
    c->out_fd = -1;
    c->pid = 0;
    if (status == -1)
        return -1;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

int th_child_stop(struct th_child *c, int sig, int timeout_ms)
{
    if (c->pid <= 0)
        return -1;
    if (sig)
        kill(c->pid, sig);
    return th_child_wait(c, timeout_ms);
}

int th_run_capture(char *const argv[], char *out, size_t size, int timeout_ms)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(pipefd[1], STDOUT_FILENO);
        dup2(pipefd[1], STDERR_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pipefd[1]);
    long long deadline = th_now_ms() + (long long)timeout_ms * th_slowdown();
    size_t n = 0;
    int timed_out = 0;
    for (;;) {
        if (!wait_fd(pipefd[0], POLLIN, deadline)) {
            timed_out = 1;
            break;
        }
        char buf[4096];
        ssize_t r = read(pipefd[0], buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r && n + 1 < size; i++)
            out[n++] = buf[i];
    }
    if (size)
        out[n < size ? n : size - 1] = '\0';
    close(pipefd[0]);
    int status;
    if (timed_out)
        kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    if (timed_out)
        return -1;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

int th_sockaddr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((unsigned short)port);
        *len = sizeof(*in);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((unsigned short)port);
        *len = sizeof(*in6);
        return 0;
    }
    return -1;
}

int th_connect_tcp(const char *host, int port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (th_sockaddr(host, port, &ss, &len) < 0)
        return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

int th_write_all(int fd, const void *buf, size_t len, int timeout_ms)
{
    const char *p = buf;
    long long deadline = th_now_ms() + (long long)timeout_ms * th_slowdown();
    while (len > 0) {
        if (!wait_fd(fd, POLLOUT, deadline))
            return -1;
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

ssize_t th_read_exact(int fd, void *buf, size_t len, int timeout_ms)
{
    char *p = buf;
    size_t got = 0;
    long long deadline = th_now_ms() + (long long)timeout_ms * th_slowdown();
    while (got < len) {
        if (!wait_fd(fd, POLLIN, deadline))
            return -1;
        ssize_t n = recv(fd, p + got, len - got, MSG_DONTWAIT);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)n;
    }
    return (ssize_t)got;
}

int th_wait_eof(int fd, int timeout_ms)
{
    long long deadline = th_now_ms() + (long long)timeout_ms * th_slowdown();
    for (;;) {
        if (!wait_fd(fd, POLLIN, deadline))
            return -ETIMEDOUT;
        char sink[4096];
        ssize_t n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
        if (n == 0)
            return 0;
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -errno;
    }
}

void th_fill_random(void *buf, size_t len, unsigned long long *state)
{
    unsigned char *p = buf;
    unsigned long long x = *state ? *state : 88172645463325252ULL;
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)(th_xorshift(&x) >> 24);
    *state = x;
}

long th_peak_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

const char *th_poller(void)
{
    const char *b = getenv("MUX_TEST_POLLER");
    return b && b[0] ? b : "epoll";
}

bool th_poller_is(const char *name)
{
    return strcmp(th_poller(), name) == 0;
}

int th_poller_args(char **argv, int n)
{
    bool edge = th_poller_is("epoll-et");
    argv[n++] = "--poller";
    argv[n++] = edge ? "epoll" : (char *)th_poller();
    if (edge)
        argv[n++] = "--edge";
    return n;
}

int th_server_args(char **argv, int n)
{
    argv[n++] = "-l";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "-w";
    argv[n++] = "2";
    return th_poller_args(argv, n);
}

bool th_under_valgrind(void)
{
    return getenv("MUX_UNDER_VALGRIND") != NULL;
}
