/* libevent_echo.c - an echo server as a libevent user writes it: one
 * event_base, an evconnlistener, and a bufferevent per connection whose
 * read callback moves its input buffer to its output buffer. A peer for
 * the churn benchmark (tools/bench/churn.sh); not installed.
 * Prints the same ready line as the mux servers:
 *   libevent_echo [HOST:]PORT   (port 0 = any; loopback only) */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        bufferevent_free(bev);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    (void)sa, (void)len, (void)arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct event_base *base = evconnlistener_get_base(l);
    struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        evutil_closesocket(fd);
        return;
    }
    bufferevent_setcb(bev, on_read, NULL, on_event, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void on_signal(evutil_socket_t sig, short what, void *base)
{
    (void)sig, (void)what;
    event_base_loopbreak(base);
}

int main(int argc, char **argv)
{
    const char *arg = argc > 1 ? argv[1] : "0";
    const char *colon = strrchr(arg, ':');
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((unsigned short)atoi(colon ? colon + 1 : arg))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct event_base *base = event_base_new();
    struct evconnlistener *l =
        base ? evconnlistener_new_bind(base, on_accept, NULL,
                                       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 511,
                                       (struct sockaddr *)&a, sizeof(a))
             : NULL;
    if (!l) {
        perror("libevent_echo: listen");
        return 1;
    }
    socklen_t len = sizeof(a);
    getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&a, &len);
    struct event *term = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *intr = evsignal_new(base, SIGINT, on_signal, base);
    event_add(term, NULL);
    event_add(intr, NULL);
    signal(SIGPIPE, SIG_IGN);
    printf("listening on 127.0.0.1:%d (libevent %s echo)\n", ntohs(a.sin_port),
           event_get_version());
    fflush(stdout);
    event_base_dispatch(base);
    event_free(term);
    event_free(intr);
    evconnlistener_free(l);
    event_base_free(base);
    return 0;
}
