/* stats_echo: mux-echo plus per-worker state, a timer and a post - the
 * worker API (mux/worker.h) in one page.
 *  - on_worker_start allocates each worker's counters (no locks: only that
 *    worker touches them) and starts a repeating timer;
 *  - the timer posts the worker's count to worker 0, which keeps the total
 *    and logs it (posts are the one way between workers);
 *  - on_worker_stop frees the counters (the timer is already cancelled). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include <mux/mux.h>

#define REPORT_MS 10000

struct counters {
    uint64_t bytes;        /* echoed by this worker since its last report */
    uint64_t total;        /* worker 0 only: everything reported so far */
};

static size_t echo_read(struct mux_conn *c, const char *data, size_t len)
{
    struct counters *k = mux_worker_data(mux_conn_worker_ctx(c));
    k->bytes += len;
    mux_conn_send(c, data, len);
    return len;
}

/* Runs on worker 0: arg carries a byte count, no allocation. */
static void add_report(struct mux_worker *w, void *arg)
{
    struct counters *k = mux_worker_data(w);
    k->total += (uintptr_t)arg;
    mux_log(MUX_LOG_INFO, "echoed %llu bytes in total", (unsigned long long)k->total);
}

static void report(struct mux_worker *w, void *arg)
{
    struct counters *k = arg;
    if (k->bytes == 0)
        return;
    int rc = mux_server_post(mux_worker_server(w), 0, add_report, (void *)(uintptr_t)k->bytes);
    if (rc == 0)
        k->bytes = 0; /* else (queue full, or worker 0 stopping): kept for the next report */
}

static void worker_start(struct mux_worker *w)
{
    struct counters *k = calloc(1, sizeof(*k));
    if (!k)
        abort();
    mux_worker_set_data(w, k);
    mux_timer_start(w, REPORT_MS, REPORT_MS, report, k);
}

static void worker_stop(struct mux_worker *w)
{
    free(mux_worker_data(w));
}

static const struct mux_handler handler = {
    .name = "stats-echo",
    .on_read = echo_read,
    .on_worker_start = worker_start,
    .on_worker_stop = worker_stop,
};

int main(int argc, char **argv)
{
    const struct mux_app app = {
        .name = "stats_echo",
        .summary = "Echo server that logs the bytes it echoed every 10 s.",
        .handler = &handler,
    };
    return mux_app_main(argc, argv, &app);
}
