/* config.c - the libconfig loader over key tables (mux/config.h).
 *
 * One generic loader validates every key the same way: type, range, choice,
 * unknown groups and keys. Each failure names file, line and key. The rows
 * themselves live next to the options they describe (options.c, apps). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler.h"
#include "mux/config.h"
#include "mux/log.h"
#include "mux/server.h"
#include "net.h"
#include "options.h"
#include "config_literal.h"

MUX_API const char *mux_error_str(const struct mux_error *e, char *buf, size_t size)
{
    char where[384] = "";
    if (e->file[0] && e->line > 0)
        snprintf(where, sizeof(where), "%s:%d: ", e->file, e->line);
    else if (e->file[0])
        snprintf(where, sizeof(where), "%s: ", e->file);
    snprintf(buf, size, "%s%s%s%s", where, e->key, e->key[0] ? ": " : "", e->message);
    return buf;
}

static void set_error(struct mux_error *err, const char *file, int line,
                      const struct mux_config_key *k, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void set_error(struct mux_error *err, const char *file, int line,
                      const struct mux_config_key *k, const char *fmt, ...)
{
    snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
    err->line = line;
    if (k)
        snprintf(err->key, sizeof(err->key), "%s.%s", k->group, k->name);
    else
        err->key[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

MUX_API const struct mux_config_key *mux_config_find(const struct mux_config_key *keys,
                                                     const char *group, const char *name)
{
    const char *dot = strchr(name, '.');
    size_t glen = group ? strlen(group) : 0;
    if (dot) { /* "group.name" */
        group = name;
        glen = (size_t)(dot - name);
        name = dot + 1;
    }
    for (const struct mux_config_key *k = keys; k && k->name; k++)
        if (strlen(k->group) == glen && strncmp(k->group, group, glen) == 0 &&
            strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

/* "64k", "16m", "1g" or plain digits. Returns 0 or -1. */
static int parse_size(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || v < 0)
        return -1;
    long long mult = 1;
    switch (*end) {
    case 'k': case 'K': mult = 1LL << 10; end++; break;
    case 'm': case 'M': mult = 1LL << 20; end++; break;
    case 'g': case 'G': mult = 1LL << 30; end++; break;
    default: break;
    }
    if (*end != '\0' || v > LLONG_MAX / mult)
        return -1;
    *out = v * mult;
    return 0;
}

/* Stores a validated number into the field the row points at. */
static int store_number(const struct mux_config_key *k, void *base, long long v,
                        const char *file, int line, struct mux_error *err)
{
    if (v < k->min || v > k->max) {
        set_error(err, file, line, k, "%lld is out of range (%lld..%lld)", v, k->min, k->max);
        return -EINVAL;
    }
    char *field = (char *)base + k->offset;
    switch (k->type) {
    case MUX_CFG_INT: *(int *)field = (int)v; break;
    case MUX_CFG_UINT: *(unsigned *)field = (unsigned)v; break;
    case MUX_CFG_SIZE: *(size_t *)field = (size_t)v; break;
    default: break;
    }
    return 0;
}

static int store_string(const struct mux_config_key *k, void *base, const char *s,
                        const char *file, int line, struct mux_error *err)
{
    char *field = (char *)base + k->offset;
    if (k->type == MUX_CFG_LEVEL) {
        int level = mux_log_level_parse(s);
        if (level < 0) {
            set_error(err, file, line, k, "\"%s\" is not one of error, warn, info, debug", s);
            return -EINVAL;
        }
        *(int *)field = level;
        return 0;
    }
    if (k->choices) {
        const char *const *c = k->choices;
        while (*c && strcmp(*c, s) != 0)
            c++;
        if (!*c) {
            set_error(err, file, line, k, "\"%s\" is not a valid choice", s);
            return -EINVAL;
        }
    }
    if (strlen(s) >= k->size) {
        set_error(err, file, line, k, "value is longer than %zu bytes", k->size - 1);
        return -EINVAL;
    }
    memcpy(field, s, strlen(s) + 1);
    return 0;
}

static int check_listen(const struct mux_config_key *k, const char *addr, const char *file,
                        int line, struct mux_error *err)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char msg[256];
    if (strlen(addr) >= MUX_ADDR_MAX || mux__addr_parse(addr, &ss, &len, msg, sizeof(msg)) < 0) {
        set_error(err, file, line, k, "%s", strlen(addr) >= MUX_ADDR_MAX ? "address too long" : msg);
        return -EINVAL;
    }
    return 0;
}

static int store_listen_setting(const struct mux_config_key *k, void *base,
                                const config_setting_t *s, const char *file, int line,
                                struct mux_error *err)
{
    struct mux_options *o = (struct mux_options *)((char *)base + k->offset);
    int type = config_setting_type(s);
    int count = type == CONFIG_TYPE_STRING ? 1 : config_setting_length(s);
    if ((type != CONFIG_TYPE_STRING && type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) ||
        count < 1 || count > MUX_MAX_LISTEN) {
        set_error(err, file, line, k, "expects an address string or a list of 1..%d of them",
                  MUX_MAX_LISTEN);
        return -EINVAL;
    }
    for (int i = 0; i < count; i++) {
        const char *addr = type == CONFIG_TYPE_STRING ? config_setting_get_string(s)
                                                      : config_setting_get_string_elem(s, i);
        if (!addr) {
            set_error(err, file, line, k, "list element %d is not a string", i + 1);
            return -EINVAL;
        }
        if (check_listen(k, addr, file, line, err) < 0)
            return -EINVAL;
        snprintf(o->listen[i], MUX_ADDR_MAX, "%s", addr);
    }
    o->nlisten = (unsigned)count;
    return 0;
}


static const char *type_name(enum mux_config_type t)
{
    switch (t) {
    case MUX_CFG_BOOL: return "true or false";
    case MUX_CFG_INT:
    case MUX_CFG_UINT: return "an integer";
    case MUX_CFG_SIZE: return "a size (integer, or string like \"64k\")";
    case MUX_CFG_STRING:
    case MUX_CFG_LEVEL: return "a string";
    case MUX_CFG_LISTEN: return "an address string or a list of them";
    }
    return "?";
}

/* The file a setting came from: an @include'd one, or the main file. */
static const char *setting_file(const struct source *src, const config_setting_t *s)
{
    const char *f = config_setting_source_file(s);
    return f ? f : src->path;
}

/* An integer setting: the literal as written decides, not the number
 * libconfig may have wrapped. */
static int store_int_setting(const struct mux_config_key *k, void *base,
                             const config_setting_t *s, const struct source *src,
                             struct mux_error *err)
{
    const char *file = setting_file(src, s);
    struct literal lit;
    if (mux__config_find_literal(src, s, &lit) < 0) {
        set_error(err, file, (int)config_setting_source_line(s), k,
                  "cannot find this number in the file's text to check its range");
        return -EINVAL;
    }
    if (lit.parsed == -ERANGE || lit.value < k->min || lit.value > k->max) {
        set_error(err, file, lit.line, k, "%s is out of range (%lld..%lld)", lit.text, k->min,
                  k->max);
        return -EINVAL;
    }
    return store_number(k, base, lit.value, file, lit.line, err);
}

static int apply_setting(const struct mux_config_key *k, void *base, const config_setting_t *s,
                         const struct source *src, struct mux_error *err)
{
    const char *file = setting_file(src, s);
    int line = (int)config_setting_source_line(s);
    int type = config_setting_type(s);
    bool is_int = type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64;

    switch (k->type) {
    case MUX_CFG_BOOL:
        if (type != CONFIG_TYPE_BOOL)
            break;
        *(bool *)((char *)base + k->offset) = config_setting_get_bool(s);
        return 0;
    case MUX_CFG_INT:
    case MUX_CFG_UINT:
        if (!is_int)
            break;
        return store_int_setting(k, base, s, src, err);
    case MUX_CFG_SIZE:
        if (is_int)
            return store_int_setting(k, base, s, src, err);
        if (type == CONFIG_TYPE_STRING) {
            long long v;
            if (parse_size(config_setting_get_string(s), &v) < 0) {
                set_error(err, file, line, k, "\"%s\" is not a size",
                          config_setting_get_string(s));
                return -EINVAL;
            }
            return store_number(k, base, v, file, line, err);
        }
        break;
    case MUX_CFG_STRING:
    case MUX_CFG_LEVEL:
        if (type != CONFIG_TYPE_STRING)
            break;
        return store_string(k, base, config_setting_get_string(s), file, line, err);
    case MUX_CFG_LISTEN:
        return store_listen_setting(k, base, s, file, line, err);
    }
    set_error(err, file, line, k, "expects %s", type_name(k->type));
    return -EINVAL;
}

MUX_API int mux_config_set(const struct mux_config_key *k, void *base, const char *value,
                           const char *source, struct mux_error *err)
{
    long long v;
    char *end;
    switch (k->type) {
    case MUX_CFG_BOOL:
        if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0 || strcmp(value, "yes") == 0)
            *(bool *)((char *)base + k->offset) = true;
        else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0 ||
                 strcmp(value, "no") == 0)
            *(bool *)((char *)base + k->offset) = false;
        else
            break;
        return 0;
    case MUX_CFG_INT:
    case MUX_CFG_UINT:
        errno = 0;
        v = strtoll(value, &end, 10);
        if (*value == '\0' || *end != '\0' || errno)
            break;
        return store_number(k, base, v, source, 0, err);
    case MUX_CFG_SIZE:
        if (parse_size(value, &v) < 0)
            break;
        return store_number(k, base, v, source, 0, err);
    case MUX_CFG_STRING:
    case MUX_CFG_LEVEL:
        return store_string(k, base, value, source, 0, err);
    case MUX_CFG_LISTEN: {
        struct mux_options *o = (struct mux_options *)((char *)base + k->offset);
        if (check_listen(k, value, source, 0, err) < 0)
            return -EINVAL;
        snprintf(o->listen[0], MUX_ADDR_MAX, "%s", value);
        o->nlisten = 1;
        return 0;
    }
    }
    set_error(err, source, 0, k, "\"%s\" is not %s", value, type_name(k->type));
    return -EINVAL;
}

static int load_group(const config_setting_t *group, const struct mux_config_key *keys,
                      void *base, const struct source *src, struct mux_error *err)
{
    const char *gname = config_setting_name(group);
    for (int i = 0; i < config_setting_length(group); i++) {
        const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
        const struct mux_config_key *k = mux_config_find(keys, gname, config_setting_name(s));
        if (!k) {
            set_error(err, setting_file(src, s), (int)config_setting_source_line(s), NULL,
                      "unknown key \"%s.%s\"", gname, config_setting_name(s));
            snprintf(err->key, sizeof(err->key), "%s.%s", gname, config_setting_name(s));
            return -EINVAL;
        }
        if (apply_setting(k, base, s, src, err) < 0)
            return -EINVAL;
    }
    return 0;
}

static bool table_has_group(const struct mux_config_key *keys, const char *group)
{
    for (const struct mux_config_key *k = keys; k && k->name; k++)
        if (strcmp(k->group, group) == 0)
            return true;
    return false;
}

static int load_root(config_t *cfg, struct mux_options *opts, const struct source *src,
                     const struct mux_config_key *app_keys, void *app_opts,
                     struct mux_error *err)
{
    const config_setting_t *root = config_root_setting(cfg);
    for (int i = 0; i < config_setting_length(root); i++) {
        const config_setting_t *g = config_setting_get_elem(root, (unsigned)i);
        const char *name = config_setting_name(g);
        const char *path = setting_file(src, g);
        int line = (int)config_setting_source_line(g);
        const struct mux_config_key *keys;
        void *base;
        if (table_has_group(mux_server_keys, name)) {
            keys = mux_server_keys;
            base = opts;
        } else if (table_has_group(app_keys, name)) {
            keys = app_keys;
            base = app_opts;
        } else {
            set_error(err, path, line, NULL, "unknown group or key \"%s\"", name);
            snprintf(err->key, sizeof(err->key), "%s", name);
            return -EINVAL;
        }
        if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
            set_error(err, path, line, NULL, "\"%s\" must be a group: %s = { ... };", name, name);
            snprintf(err->key, sizeof(err->key), "%s", name);
            return -EINVAL;
        }
        if (load_group(g, keys, base, src, err) < 0)
            return -EINVAL;
    }
    return 0;
}

/* Cross-key rules, reported at the line of the key that breaks them. */
static int check_loaded(config_t *cfg, struct mux_options *opts, const char *path,
                        struct mux_error *err)
{
    if (mux__options_check(opts, err) == 0)
        return 0;
    char lookup[96];
    snprintf(lookup, sizeof(lookup), "%s", err->key);
    const config_setting_t *s = config_lookup(cfg, lookup);
    snprintf(err->file, sizeof(err->file), "%s", path);
    err->line = s ? (int)config_setting_source_line(s) : 0;
    return -EINVAL;
}

/* A NUL byte would end the text early for libconfig: not a config file. */
static int check_text(const struct source *src, struct mux_error *err)
{
    const char *nul = memchr(src->text, '\0', src->len);
    if (!nul)
        return 0;
    int line = 1;
    for (const char *p = src->text; p < nul; p++)
        line += *p == '\n';
    set_error(err, src->path, line, NULL, "a NUL byte: not a text file");
    return -EINVAL;
}

MUX_API int mux_config_load(struct mux_options *opts, const char *path,
                            const struct mux_config_key *app_keys, void *app_opts,
                            struct mux_error *err)
{
    struct source src = {.path = path};
    int rc = mux__config_read_text(path, &src.text, &src.len);
    if (rc < 0) {
        set_error(err, path, 0, NULL, "cannot read the file: %s", strerror(-rc));
        return -ENOENT;
    }
    /* libconfig parses the very text the literals are read from again. */
    config_t cfg;
    config_init(&cfg);
    rc = -EINVAL;
    if (check_text(&src, err) < 0)
        goto out;
    if (!config_read_string(&cfg, src.text)) {
        const char *file = config_error_file(&cfg);
        set_error(err, file ? file : path, config_error_line(&cfg), NULL, "%s",
                  config_error_text(&cfg));
        goto out;
    }
    if (load_root(&cfg, opts, &src, app_keys, app_opts, err) < 0)
        goto out;
    if (check_loaded(&cfg, opts, path, err) < 0)
        goto out;
    rc = 0;
out:
    config_destroy(&cfg);
    free(src.text);
    return rc;
}
