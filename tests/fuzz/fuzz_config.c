/* fuzz_config.c - the config loader (framework/config.c, config_literal.c)
 * on any text, with the server's keys and an app's of every type.
 *
 * Properties: it returns 0 or -EINVAL; an error names the file and a line
 * within the text, and has a message; a loaded configuration keeps every
 * numeric key within its bounds and every string terminated within its
 * size and, where the key has choices, one of them. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <mux/mux.h>

#include "fuzz.h"

struct app_opts {
    unsigned depth;
    size_t bytes;
    int level;
    bool flag;
    char mode[16];
    char root[64];
};

static const char *const modes[] = {"fast", "safe", NULL};

static const struct mux_config_key app_keys[] = {
    {.group = "app", .name = "depth", .type = MUX_CFG_UINT,
     .offset = offsetof(struct app_opts, depth), .min = 1, .max = 4096},
    {.group = "app", .name = "bytes", .type = MUX_CFG_SIZE,
     .offset = offsetof(struct app_opts, bytes), .min = 64, .max = 1 << 30},
    {.group = "app", .name = "level", .type = MUX_CFG_INT,
     .offset = offsetof(struct app_opts, level), .min = -5, .max = 5},
    {.group = "app", .name = "flag", .type = MUX_CFG_BOOL, .offset = offsetof(struct app_opts, flag)},
    {.group = "app", .name = "mode", .type = MUX_CFG_STRING,
     .offset = offsetof(struct app_opts, mode), .size = sizeof(((struct app_opts *)0)->mode),
     .choices = modes},
    {.group = "app", .name = "root", .type = MUX_CFG_STRING,
     .offset = offsetof(struct app_opts, root), .size = sizeof(((struct app_opts *)0)->root)},
    {0},
};

static void check_key(const struct mux_config_key *k, const void *base)
{
    const char *p = (const char *)base + k->offset;
    long long v;
    switch (k->type) {
    case MUX_CFG_INT: v = *(const int *)(const void *)p; break;
    case MUX_CFG_UINT: v = *(const unsigned *)(const void *)p; break;
    case MUX_CFG_SIZE: v = (long long)*(const size_t *)(const void *)p; break;
    case MUX_CFG_STRING:
        CHECK(memchr(p, '\0', k->size) != NULL);
        if (k->choices && p[0]) {
            bool found = false;
            for (const char *const *c = k->choices; *c; c++)
                found |= strcmp(*c, p) == 0;
            CHECK(found);
        }
        return;
    default: return;
    }
    if (k->max > k->min)
        CHECK(v >= k->min && v <= k->max);
}

static unsigned count_lines(const uint8_t *d, size_t n)
{
    unsigned lines = 1;
    for (size_t i = 0; i < n; i++)
        lines += d[i] == '\n';
    return lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz.cfg", MFD_CLOEXEC);
        CHECK(fd >= 0);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        mux_log_setup(-1, "fuzz"); /* (the loader logs nothing; keep it that way) */
    }
    CHECK(ftruncate(fd, 0) == 0);
    CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);

    struct mux_options o;
    mux_options_init(&o);
    struct app_opts a = {.depth = 16, .bytes = 4096, .mode = "fast", .root = "."};
    struct mux_error err;
    memset(&err, 0, sizeof(err));
    int rc = mux_config_load(&o, path, app_keys, &a, &err);
    CHECK(rc == 0 || rc == -EINVAL);
    if (rc < 0) {
        CHECK(err.message[0] != '\0');
        CHECK(memchr(err.file, '\0', sizeof(err.file)) && err.file[0] != '\0');
        CHECK(err.line >= 0 && (unsigned)err.line <= count_lines(data, size) + 1);
        CHECK(memchr(err.key, '\0', sizeof(err.key)) != NULL);
        return 0;
    }
    for (const struct mux_config_key *k = mux_server_keys; k->name; k++)
        check_key(k, &o);
    for (const struct mux_config_key *k = app_keys; k->name; k++)
        check_key(k, &a);
    CHECK(o.nlisten <= MUX_MAX_LISTEN);
    return 0;
}
