/* poller.c - backend registry: name -> ops. Add a backend here. */
#include <string.h>

#include "compiler.h"
#include "poller.h"

static const struct mux__poller_ops *const backends[] = {
    &mux__poller_epoll,
    &mux__poller_poll,
    &mux__poller_select,
    &mux__poller_uring,
};

const struct mux__poller_ops *mux__poller_find(const char *name)
{
    for (size_t i = 0; i < MUX_ARRAY_SIZE(backends); i++)
        if (strcmp(backends[i]->name, name) == 0)
            return backends[i];
    return NULL;
}
