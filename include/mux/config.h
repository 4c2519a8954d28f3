/* mux/config.h - libconfig files described by key tables.
 *
 * Each key is one row: group, name, type, where it lives in an options
 * struct, range, one line of documentation. The framework's own rows cover
 * the `server` group; an app passes rows for its group (e.g. `httpd`). Every
 * key is optional; a missing key keeps the value already in the struct.
 */
#ifndef MUX_CONFIG_H
#define MUX_CONFIG_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A setup failure, filled by the callee into a caller-owned struct. file and
 * key are empty and line 0 when they do not apply. */
struct mux_error {
    char file[256];
    int line;
    char key[64];
    char message[256];
};

/* Formats the error as "file:line: key: message" (parts that do not apply
 * are left out) into buf; returns buf. */
const char *mux_error_str(const struct mux_error *e, char *buf, size_t size);

enum mux_config_type {
    MUX_CFG_BOOL,   /* bool */
    MUX_CFG_INT,    /* int, within [min, max] */
    MUX_CFG_UINT,   /* unsigned, within [min, max] */
    MUX_CFG_SIZE,   /* size_t, within [min, max]; integer or "64k"/"16m"/"1g" */
    MUX_CFG_STRING, /* char[size]; if choices is set, one of them */
    MUX_CFG_LEVEL,  /* int log level from "error"|"warn"|"info"|"debug" */
    MUX_CFG_LISTEN, /* struct mux_options listen list: a string or a list */
};

struct mux_config_key {
    const char *group;
    const char *name;
    enum mux_config_type type;
    size_t offset;               /* offsetof() into the options struct */
    size_t size;                 /* MUX_CFG_STRING: the char array's size */
    long long min, max;          /* numeric types */
    const char *const *choices;  /* MUX_CFG_STRING: NULL-terminated, or NULL */
    const char *doc;
};

/* The `server` group's rows, terminated by a row with name == NULL. */
extern const struct mux_config_key mux_server_keys[];

/* Reads `path` and sets struct mux_options *opts from the `server` group and
 * app_opts from app_keys (NULL-name terminated; may be NULL). Unknown
 * groups or keys, wrong types and out-of-range values are errors naming the
 * file, line and key. Returns 0, or -EINVAL / -ENOENT with *err filled.
 * Nothing is bound or started. */
struct mux_options;
int mux_config_load(struct mux_options *opts, const char *path, const struct mux_config_key *app_keys,
                    void *app_opts, struct mux_error *err);

/* Sets one key from a string, as a command-line flag would ("workers",
 * "4"). source names the origin for errors (e.g. "--workers"). Returns 0 or
 * -EINVAL with *err filled. */
int mux_config_set(const struct mux_config_key *key, void *base, const char *value,
                   const char *source, struct mux_error *err);

/* Finds "group.name" (or just "name" within `group`) in a table. */
const struct mux_config_key *mux_config_find(const struct mux_config_key *keys, const char *group,
                                             const char *name);

#ifdef __cplusplus
}
#endif
#endif
