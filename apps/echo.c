/* mux-echo: every byte received is sent back, in order.
 * The smallest useful handler: consume everything, queue it for output. */
#include <mux/mux.h>

static size_t echo_read(struct mux_conn *c, const char *data, size_t len)
{
    mux_conn_send(c, data, len); /* copied; backpressure pauses reading, not this */
    return len;
}

static const struct mux_handler echo_handler = {
    .name = "echo",
    .on_read = echo_read,
};

int main(int argc, char **argv)
{
    const struct mux_app app = {
        .name = "mux-echo",
        .summary = "Echo server: every byte received is sent back.",
        .handler = &echo_handler,
    };
    return mux_app_main(argc, argv, &app);
}
