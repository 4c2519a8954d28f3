/* broken_server.c - a deliberately faulty test server for mux-stress.
 *
 * Single-threaded epoll. With no fault flags it is a correct echo server
 * (--upper: upper-casing, --http LEN: keep-alive HTTP answering every request
 * with 200 and a LEN-byte body). Fault flags make it misbehave so the tests
 * can check that mux-stress notices:
 *   --flip-every N   XOR 0x01 into every Nth byte of each connection's reply
 *   --drop-every N   drop every Nth byte (--drop: N = 1000)
 *   --stall-after N  stop answering a connection after N reply bytes
 *   --reset-every N  answer N reply bytes (http: N responses) of each
 *                    connection, then, once a request beyond them arrived,
 *                    reset it (RST) with that request owed
 *   --fin-after N    the same, but close it (FIN); the rest of the input is
 *                    read and dropped
 *   --die-after N    the whole process dies (SIGKILL) after N reply bytes
 *                    (http: N responses) in total
 *   --silent         accept connections and never read or answer (a stall)
 *   --flip-once N    XOR 0x01 into the Nth reply byte of the whole run, once
 *   --chunked        http: send bodies chunked
 *   --bad-len-every N http: every Nth response has a body one byte short
 *   --bad-body-every N http: every Nth response has one body byte changed
 *                    (same length)
 *   --http-file F    http: the body is the contents of F (--http LEN ignored)
 *   --silent-first N the first N connections accepted are held open but never
 *                    read or answered (as --silent); later ones are served
 *   --peer-log F     append "HOST:PORT\n" of every accepted peer to file F
 * Prints "listening on 127.0.0.1:PORT" like the mux servers; exits 0 on
 * SIGTERM or SIGINT. Test code only: small and simple, not fast. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_OUT (4u << 20) /* stop reading a connection above this backlog */

struct opts {
    bool upper, chunked, silent;
    unsigned long silent_first; /* --silent-first: connections still to hold silent */
    FILE *peer_log;             /* --peer-log */
    long http_len; /* -1: not http */
    unsigned long flip, drop, stall, reset, bad_len, fin, die, flip_once, bad_body;
    char *body; /* http: the body of every response (http_len bytes) */
};

struct bconn {
    int fd;
    char *out;
    size_t out_len, out_cap;
    unsigned long long rx_pos;  /* reply stream position (for the faults) */
    unsigned long long replies; /* http responses sent */
    unsigned crlf;              /* http: progress through "\r\n\r\n" */
    bool reading;
    bool cut; /* past its --fin-after/--reset-every quota: answers nothing more */
    struct bconn *prev, *next; /* all connections, freed at exit */
};

static struct opts g;
static int g_ep;
static struct bconn *g_conns;
static unsigned long long g_flip_pos; /* --flip-once: reply bytes of the whole run */
static unsigned long long g_die_pos;  /* --die-after: reply bytes (http: responses), all */

/* The reply quota of --fin-after / --reset-every (0 = none). */
static unsigned long quota(void)
{
    return g.fin ? g.fin : g.reset;
}

/* How far a connection's replies got, in the unit of the fault flags. */
static unsigned long long progress(const struct bconn *c)
{
    return g.http_len >= 0 ? c->replies : c->rx_pos;
}

static int out_append(struct bconn *c, const char *p, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + n)
            cap *= 2;
        char *q = realloc(c->out, cap);
        if (!q)
            return -1;
        c->out = q, c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    return 0;
}

/* Echo/upper with faults applied to the reply stream. Without faults the
 * chunk is copied whole (it serves as the trivial server for the ceiling). */
static void stream_reply(struct bconn *c, char *p, size_t n)
{
    if (!g.flip && !g.drop && !g.stall && !quota() && !g.flip_once) {
        for (size_t i = 0; g.upper && i < n; i++)
            if (p[i] >= 'a' && p[i] <= 'z')
                p[i] = (char)(p[i] - 32);
        c->rx_pos += n;
        out_append(c, p, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char b = p[i];
        if (quota() && c->rx_pos >= quota()) {
            c->cut = true; /* a request beyond the answered ones arrived */
            return;
        }
        c->rx_pos++;
        if (g.stall && c->rx_pos > g.stall)
            return;
        if (g.flip_once && ++g_flip_pos == g.flip_once)
            b ^= 0x01;
        if (g.upper && b >= 'a' && b <= 'z')
            b = (char)(b - 32);
        if (g.flip && c->rx_pos % g.flip == 0)
            b ^= 0x01;
        if (g.drop && c->rx_pos % g.drop == 0)
            continue;
        out_append(c, &b, 1);
    }
}

static void http_response(struct bconn *c)
{
    char head[160];
    long len = g.http_len;
    if (quota() && c->replies >= quota()) {
        c->cut = true;
        return;
    }
    c->replies++;
    if (g.bad_len && c->replies % g.bad_len == 0 && len > 0)
        len--;
    char *body = malloc((size_t)len + 1);
    if (!body)
        return;
    memcpy(body, g.body, (size_t)len);
    if (g.bad_body && c->replies % g.bad_body == 0 && len > 0)
        body[len / 2] ^= 0x20;
    if (g.chunked) {
        int n =
            snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        out_append(c, head, (size_t)n);
        long half = len / 2;
        if (half > 0) {
            n = snprintf(head, sizeof(head), "%lx;ext=1\r\n", half);
            out_append(c, head, (size_t)n);
            out_append(c, body, (size_t)half);
            out_append(c, "\r\n", 2);
        }
        if (len - half > 0) {
            n = snprintf(head, sizeof(head), "%lX\r\n", len - half);
            out_append(c, head, (size_t)n);
            out_append(c, body + half, (size_t)(len - half));
            out_append(c, "\r\n", 2);
        }
        out_append(c, "0\r\nX-Trailer: t\r\n\r\n", 19);
    } else {
        int n = snprintf(head, sizeof(head),
                         "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                         "Content-Length: %ld\r\n\r\n",
                         len);
        out_append(c, head, (size_t)n);
        out_append(c, body, (size_t)len);
    }
    free(body);
}

/* Answers each request (ended by an empty line), whatever it asks. */
static void http_input(struct bconn *c, const char *p, size_t n)
{
    static const char end[] = "\r\n\r\n";
    for (size_t i = 0; i < n && !c->cut; i++) {
        c->crlf = p[i] == end[c->crlf] ? c->crlf + 1 : (p[i] == '\r' ? 1 : 0);
        if (c->crlf == 4) {
            c->crlf = 0;
            http_response(c);
        }
    }
}

static void drop_conn(struct bconn *c, bool rst)
{
    if (rst) {
        struct linger l = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        g_conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->out);
    free(c);
}

static void set_events(struct bconn *c)
{
    struct epoll_event ev = {.events = (c->reading ? EPOLLIN : 0) | (c->out_len ? EPOLLOUT : 0),
                             .data.ptr = c};
    epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* --die-after: the process dies like a crashed server (the kernel closes
 * every socket: FIN, or RST where input was unread). */
static void count_out(struct bconn *c, unsigned long long before)
{
    if (g.die) {
        g_die_pos += progress(c) - before;
        if (g_die_pos >= g.die)
            raise(SIGKILL);
    }
}

/* Writes what it can. false when the connection was dropped. */
static bool flush_out(struct bconn *c)
{
    while (c->out_len) {
        ssize_t w = write(c->fd, c->out, c->out_len);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            drop_conn(c, false);
            return false;
        }
        memmove(c->out, c->out + w, c->out_len - (size_t)w);
        c->out_len -= (size_t)w;
    }
    if (c->cut && c->out_len == 0 && g.reset) {
        drop_conn(c, true); /* RST, with the request beyond the quota owed */
        return false;
    }
    if (c->cut && c->out_len == 0)
        shutdown(c->fd, SHUT_WR); /* FIN; again on later input: harmless */
    c->reading = c->out_len < MAX_OUT;
    set_events(c);
    return true;
}

static void on_event(struct bconn *c, uint32_t events)
{
    char buf[65536];
    if (!c->reading && (events & (EPOLLHUP | EPOLLERR))) {
        drop_conn(c, false); /* not reading (--silent): the peer is gone */
        return;
    }
    if (c->reading && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        ssize_t n = read(c->fd, buf, sizeof(buf));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            drop_conn(c, false);
            return;
        }
        unsigned long long before = progress(c);
        if (n > 0 && c->cut)
            ; /* past the quota: read and dropped */
        else if (n > 0 && g.http_len >= 0)
            http_input(c, buf, (size_t)n);
        else if (n > 0)
            stream_reply(c, buf, (size_t)n);
        count_out(c, before);
    }
    flush_out(c);
}

/* --peer-log: one line per accepted connection, flushed at once so the
 * file is complete whenever the server is stopped. */
static void log_peer(const struct sockaddr_storage *peer, socklen_t len)
{
    char host[64], port[16];
    if (!g.peer_log || getnameinfo((const struct sockaddr *)peer, len, host, sizeof(host), port,
                                   sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return;
    fprintf(g.peer_log, "%s:%s\n", host, port);
    fflush(g.peer_log);
}

static void on_accept(int lfd)
{
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        int fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        log_peer(&peer, plen);
        bool silent = g.silent || g.silent_first > 0;
        g.silent_first -= g.silent_first > 0;
        struct bconn *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        c->reading = !silent;
        c->next = g_conns;
        if (g_conns)
            g_conns->prev = c;
        g_conns = c;
        struct epoll_event ev = {.events = silent ? 0 : EPOLLIN, .data.ptr = c};
        epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev); /* --silent: watched for nothing */
    }
}

/* --http-file: the body of every response. */
static int load_body(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    free(g.body);
    g.body = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (g.body = malloc((size_t)n + 1)) &&
        fread(g.body, 1, (size_t)n, f) == (size_t)n)
        g.http_len = n;
    else
        n = -1;
    fclose(f);
    return n < 0 ? -1 : 0;
}

/* --http LEN without --http-file: a body of letters, a-z repeating. */
static int make_body(void)
{
    if (g.http_len < 0 || g.body)
        return 0;
    g.body = malloc((size_t)g.http_len + 1);
    if (!g.body)
        return -1;
    for (long i = 0; i < g.http_len; i++)
        g.body[i] = (char)('a' + i % 26);
    return 0;
}

static int parse_args(int argc, char **argv, char *host, size_t hsize, int *port)
{
    static const struct option lo[] = {{"upper", no_argument, NULL, 'u'},
                                       {"http", required_argument, NULL, 'H'},
                                       {"chunked", no_argument, NULL, 'k'},
                                       {"flip-every", required_argument, NULL, 'f'},
                                       {"drop-every", required_argument, NULL, 'd'},
                                       {"drop", no_argument, NULL, 'D'},
                                       {"stall-after", required_argument, NULL, 's'},
                                       {"reset-every", required_argument, NULL, 'r'},
                                       {"bad-len-every", required_argument, NULL, 'b'},
                                       {"fin-after", required_argument, NULL, 'F'},
                                       {"die-after", required_argument, NULL, 'X'},
                                       {"silent", no_argument, NULL, 'S'},
                                       {"flip-once", required_argument, NULL, 'o'},
                                       {"bad-body-every", required_argument, NULL, 'B'},
                                       {"http-file", required_argument, NULL, 'P'},
                                       {"silent-first", required_argument, NULL, 'i'},
                                       {"peer-log", required_argument, NULL, 'L'},
                                       {NULL, 0, NULL, 0}};
    int ch;
    g.http_len = -1;
    while ((ch = getopt_long(argc, argv, "l:w:", lo, NULL)) != -1) {
        switch (ch) {
        case 'l': {
            const char *colon = strrchr(optarg, ':');
            if (!colon || (size_t)(colon - optarg) >= hsize)
                return -1;
            memcpy(host, optarg, (size_t)(colon - optarg));
            host[colon - optarg] = '\0';
            *port = atoi(colon + 1);
            break;
        }
        case 'w':
            break; /* accepted for symmetry with the mux servers */
        case 'u':
            g.upper = true;
            break;
        case 'H':
            if (!g.body)
                g.http_len = atol(optarg);
            break;
        case 'k':
            g.chunked = true;
            break;
        case 'f':
            g.flip = strtoul(optarg, NULL, 10);
            break;
        case 'd':
            g.drop = strtoul(optarg, NULL, 10);
            break;
        case 'D':
            g.drop = 1000;
            break;
        case 's':
            g.stall = strtoul(optarg, NULL, 10);
            break;
        case 'r':
            g.reset = strtoul(optarg, NULL, 10);
            break;
        case 'b':
            g.bad_len = strtoul(optarg, NULL, 10);
            break;
        case 'F':
            g.fin = strtoul(optarg, NULL, 10);
            break;
        case 'X':
            g.die = strtoul(optarg, NULL, 10);
            break;
        case 'S':
            g.silent = true;
            break;
        case 'o':
            g.flip_once = strtoul(optarg, NULL, 10);
            break;
        case 'B':
            g.bad_body = strtoul(optarg, NULL, 10);
            break;
        case 'P':
            if (load_body(optarg) < 0)
                return -1;
            break;
        case 'i':
            g.silent_first = strtoul(optarg, NULL, 10);
            break;
        case 'L':
            if (!(g.peer_log = fopen(optarg, "a")))
                return -1;
            break;
        default:
            return -1;
        }
    }
    return make_body();
}

static int listen_on(const char *host, int port)
{
    char h[64], service[16];
    size_t n = strlen(host);
    if (host[0] == '[' && n > 2 && n < sizeof(h)) { /* [::1] */
        memcpy(h, host + 1, n - 2);
        h[n - 2] = '\0';
    } else {
        snprintf(h, sizeof(h), "%s", host);
    }
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *ai;
    if (getaddrinfo(h, service, &hints, &ai) != 0)
        return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        freeaddrinfo(ai);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &len);
    int real = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    if (ai->ai_family == AF_INET6)
        printf("listening on [%s]:%d (broken_server)\n", h, real);
    else
        printf("listening on %s:%d (broken_server)\n", h, real);
    fflush(stdout);
    freeaddrinfo(ai);
    return fd;
}

int main(int argc, char **argv)
{
    char host[64] = "127.0.0.1";
    int port = 0;
    if (parse_args(argc, argv, host, sizeof(host), &port) < 0) {
        fprintf(stderr, "usage: broken_server [-l 127.0.0.1:PORT] [--upper | --http LEN "
                        "[--chunked] [--http-file F]] [fault flags]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    int lfd = listen_on(host, port);
    if (lfd < 0) {
        perror("broken_server: listen");
        return 1;
    }
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &lfd};
    epoll_ctl(g_ep, EPOLL_CTL_ADD, lfd, &ev);
    ev.data.ptr = &sfd;
    epoll_ctl(g_ep, EPOLL_CTL_ADD, sfd, &ev);
    for (;;) {
        struct epoll_event evs[64];
        int n = epoll_wait(g_ep, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &sfd) {
                while (g_conns)
                    drop_conn(g_conns, false);
                free(g.body);
                close(g_ep);
                close(lfd);
                close(sfd);
                return 0;
            }
            if (evs[i].data.ptr == &lfd)
                on_accept(lfd);
            else
                on_event(evs[i].data.ptr, evs[i].events);
        }
    }
}
