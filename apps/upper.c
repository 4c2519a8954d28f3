/* mux-upper: every byte sent back with ASCII a-z upper-cased.
 * Transforms in chunks through a stack buffer: no allocation per message. */
#include <mux/mux.h>

static size_t upper_read(struct mux_conn *c, const char *data, size_t len)
{
    char out[4096];
    for (size_t done = 0; done < len;) {
        size_t n = len - done < sizeof(out) ? len - done : sizeof(out);
        for (size_t i = 0; i < n; i++) {
            char ch = data[done + i];
            out[i] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch;
        }
        mux_conn_send(c, out, n);
        done += n;
    }
    return len;
}

static const struct mux_handler upper_handler = {
    .name = "upper",
    .on_read = upper_read,
};

int main(int argc, char **argv)
{
    const struct mux_app app = {
        .name = "mux-upper",
        .summary = "Uppercase server: bytes come back with ASCII a-z upper-cased.",
        .handler = &upper_handler,
    };
    return mux_app_main(argc, argv, &app);
}
