/* inproc.c - a mux server on a thread of the test process. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inproc.h"

#include "harness.h"

static void *run_thread(void *arg)
{
    struct th_inproc *t = arg;
    t->run_rc = mux_server_run(t->s);
    return NULL;
}

int th_inproc_start(struct th_inproc *t, struct mux_options *opts,
                      const struct mux_handler *h, void *app)
{
    struct mux_error err;
    char buf[512];
    memset(t, 0, sizeof(*t));
    opts->handle_signals = false;
    t->s = mux_server_new(opts, h, app, &err);
    if (!t->s || mux_server_listen(t->s, &err) < 0) {
        fprintf(stderr, "test server: %s\n", mux_error_str(&err, buf, sizeof(buf)));
        mux_server_free(t->s);
        return -1;
    }
    char addr[64];
    mux_server_local_addr(t->s, 0, addr, sizeof(addr));
    char *colon = strrchr(addr, ':');
    *colon = '\0';
    t->port = atoi(colon + 1);
    snprintf(t->host, sizeof(t->host), "%s", addr[0] == '[' ? addr + 1 : addr);
    if (addr[0] == '[')
        t->host[strlen(t->host) - 1] = '\0';
    /* Connections made before run() starts wait in the listen backlog. */
    if (pthread_create(&t->thread, NULL, run_thread, t) != 0) {
        mux_server_free(t->s);
        return -1;
    }
    return 0;
}

int th_inproc_stop(struct th_inproc *t)
{
    mux_server_stop(t->s);
    pthread_join(t->thread, NULL);
    mux_server_free(t->s);
    t->s = NULL;
    return t->run_rc;
}

void th_options_poller(struct mux_options *o)
{
    if (th_poller_is("epoll-et")) {
        snprintf(o->poller, sizeof(o->poller), "epoll");
        o->edge_triggered = true;
    } else {
        snprintf(o->poller, sizeof(o->poller), "%s", th_poller());
    }
}

int th_inproc_join(struct th_inproc *t)
{
    pthread_join(t->thread, NULL);
    mux_server_free(t->s);
    t->s = NULL;
    return t->run_rc;
}

void th_inproc_options(struct mux_options *o)
{
    mux_options_init(o);
    snprintf(o->listen[0], sizeof(o->listen[0]), "127.0.0.1:0");
    th_options_poller(o);
}
