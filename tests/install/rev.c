/* rev.c - the README's "write your own server" example, compiled against
 * the installed library by check.sh (kept identical to the README). */
#include <string.h>
#include <mux/mux.h>

static size_t rev_read(struct mux_conn *c, const char *data, size_t len)
{
    const char *nl = memchr(data, '\n', len);
    if (!nl)
        return 0;                    /* keep it buffered until the line is complete */
    size_t n = (size_t)(nl - data);
    char out[4096];
    if (n >= sizeof(out)) {
        mux_conn_close(c);           /* flushes what is queued, then closes */
        return len;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = data[n - 1 - i];
    out[n] = '\n';
    mux_conn_send(c, out, n + 1);    /* copied into the output queue */
    return n + 1;                    /* consumed one line; on_read is called again for the rest */
}

static const struct mux_handler rev = {.name = "rev", .on_read = rev_read};

int main(int argc, char **argv)
{
    const struct mux_app app = {.name = "rev", .summary = "Reverses lines.", .handler = &rev};
    return mux_app_main(argc, argv, &app);
}
