/* poller.c - backend registry: name -> ops. Add a backend here. */
#include <errno.h>
#include <string.h>

#include "compiler.h"
#include "poller.h"

static const struct mux__poller_ops *const backends[] = {
    &mux__poller_epoll,
    &mux__poller_poll,
    &mux__poller_select,
#ifdef MUX_HAVE_LIBURING
    &mux__poller_uring,
#endif
};

const char *const mux__poller_names[] = {
    "epoll", "poll", "select",
#ifdef MUX_HAVE_LIBURING
    "uring",
#endif
    NULL,
};

#ifdef MUX_FAULT_INJECTION
/* Test builds: one more backend a test supplies (tests/sim/'s simulated
 * network), found by its name like the others. */
static const struct mux__poller_ops *test_backend;

void mux__poller_set_test(const struct mux__poller_ops *ops)
{
    test_backend = ops;
}
#endif

const struct mux__poller_ops *mux__poller_find(const char *name)
{
#ifdef MUX_FAULT_INJECTION
    if (test_backend && strcmp(test_backend->name, name) == 0)
        return test_backend;
#endif
    for (size_t i = 0; i < MUX_ARRAY_SIZE(backends); i++)
        if (strcmp(backends[i]->name, name) == 0)
            return backends[i];
    return NULL;
}

int mux__poller_probe(const char *name)
{
    const struct mux__poller_ops *ops = mux__poller_find(name);
    if (!ops)
        return -EINVAL;
    return ops->probe ? ops->probe() : 0;
}
