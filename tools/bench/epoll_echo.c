/* epoll_echo.c - the practical ceiling for mux-echo: a minimal
 * single-threaded level-triggered epoll echo loop with no framework at all.
 * It reads into one static buffer and writes straight back; only a short
 * write makes it keep bytes (per connection) and wait for EPOLLOUT.
 * Prints the same ready line as the mux servers so the same scripts drive
 * both:  epoll_echo [HOST:]PORT   (port 0 = any) */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct pend {
    char *buf;
    size_t len;
};

static struct pend *pend; /* indexed by fd */
static int maxfd = 65536;

static void drop(int ep, int fd)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(pend[fd].buf);
    pend[fd] = (struct pend){0};
}

static int write_or_keep(int ep, int fd, const char *p, size_t n)
{
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN)
        return -1;
    size_t done = w < 0 ? 0 : (size_t)w;
    if (done == n)
        return 0;
    /* Keep the rest; stop reading until it is out. */
    char *b = malloc(n - done);
    if (!b)
        return -1;
    memcpy(b, p + done, n - done);
    pend[fd] = (struct pend){b, n - done};
    struct epoll_event e = {.events = EPOLLOUT, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
    return 0;
}

static void on_writable(int ep, int fd)
{
    struct pend p = pend[fd];
    pend[fd] = (struct pend){0};
    struct epoll_event e = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
    if (write_or_keep(ep, fd, p.buf, p.len) < 0)
        drop(ep, fd);
    free(p.buf);
}

int main(int argc, char **argv)
{
    const char *arg = argc > 1 ? argv[1] : "0";
    const char *colon = strrchr(arg, ':');
    int port = atoi(colon ? colon + 1 : arg);
    signal(SIGPIPE, SIG_IGN);
    pend = calloc((size_t)maxfd, sizeof(*pend));
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 511) < 0) {
        perror("listen");
        return 1;
    }
    socklen_t len = sizeof(a);
    getsockname(ls, (struct sockaddr *)&a, &len);
    printf("listening on 127.0.0.1:%d (epoll_echo baseline)\n", ntohs(a.sin_port));
    fflush(stdout);

    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &e);
    static char buf[16384];
    struct epoll_event ev[256];
    for (;;) {
        int n = epoll_wait(ep, ev, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = ev[i].data.fd;
            if (fd == ls) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (c >= maxfd) {
                        close(c);
                        continue;
                    }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            if (ev[i].events & EPOLLOUT) {
                on_writable(ep, fd);
                continue;
            }
            ssize_t r = read(fd, buf, sizeof(buf));
            if (r > 0) {
                if (write_or_keep(ep, fd, buf, (size_t)r) < 0)
                    drop(ep, fd);
            } else if (r == 0 || errno != EAGAIN) {
                drop(ep, fd);
            }
        }
    }
}
