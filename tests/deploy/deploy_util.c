/* deploy_util.c - see deploy_util.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "deploy_util.h"
#include "harness.h"

static char tmpdir[64];

int deploy_tmp_create(const char *tag)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/mux-%s-XXXXXX", tag);
    return mkdtemp(tmpdir) ? 0 : -1;
}

const char *deploy_tmp_path(const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", tmpdir, name);
    return buf;
}

int deploy_tmp_remove(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int deploy_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int rc = fputs(text, f) < 0 ? -1 : 0;
    return fclose(f) == 0 ? rc : -1;
}

char *deploy_slurp(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

bool deploy_wait_for_text(const char *path, const char *needle, int timeout_ms)
{
    static char buf[1 << 20];
    long long deadline = th_now_ms() + (long long)timeout_ms * th_slowdown();
    for (;;) {
        const char *t = deploy_slurp(path, buf, sizeof(buf));
        if (t && strstr(t, needle))
            return true;
        if (th_now_ms() >= deadline)
            return false;
        struct timespec ts = {.tv_nsec = 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int deploy_metrics(const char *hostport, char *buf, size_t size)
{
    char host[64];
    snprintf(host, sizeof(host), "%s", hostport);
    char *colon = strrchr(host, ':');
    if (!colon)
        return -1;
    *colon = '\0';
    int fd = th_connect_tcp(host, atoi(colon + 1));
    if (fd < 0)
        return -1;
    static const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    size_t len = 0;
    if (th_write_all(fd, req, sizeof(req) - 1, 5000) == 0)
        while (len < size - 1 && th_read_exact(fd, buf + len, 1, 5000) == 1)
            len++;
    close(fd);
    buf[len] = '\0';
    if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
        return -1;
    const char *body = strstr(buf, "\r\n\r\n");
    if (!body)
        return -1;
    memmove(buf, body + 4, strlen(body + 4) + 1);
    return 0;
}

unsigned long long deploy_metric(const char *text, const char *name)
{
    unsigned long long sum = 0;
    size_t n = strlen(name);
    for (const char *p = text; (p = strstr(p, name)) != NULL; p += n)
        if ((p == text || p[-1] == '\n') && (p[n] == ' ' || p[n] == '{'))
            sum += strtoull(strchr(p + n, ' ') + 1, NULL, 10);
    return sum;
}

int deploy_ready_metrics(const char *ready, char *out, size_t size)
{
    const char *m = strstr(ready, "metrics=");
    if (!m)
        return -1;
    size_t n = strcspn(m + 8, ",) ");
    if (n == 0 || n >= size)
        return -1;
    memcpy(out, m + 8, n);
    out[n] = '\0';
    return 0;
}

int deploy_listen_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 511) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

const char *deploy_find_haproxy(char *path, size_t size)
{
    const char *chosen = getenv("MUX_HAPROXY");
    if (chosen) {
        snprintf(path, size, "%s", chosen);
        return access(path, X_OK) == 0 ? path : NULL;
    }
    char dirs[4096];
    snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/usr/local/sbin",
             getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(path, size, "%s/haproxy", d);
        if (access(path, X_OK) == 0)
            return path;
    }
    return NULL;
}

pid_t deploy_start_haproxy(const char *bin, const char *cfg)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        execl("/usr/bin/env", "env", bin, "-q", "-db", "-f", cfg, (char *)NULL);
        _exit(127);
    }
    return pid;
}
