/* config_literal.h - integer literals read again from a config file's
 * text (private to the loader, config.c).
 *
 * libconfig 1.5 keeps a literal without the L suffix in 32 bits and clamps
 * or wraps past 64 (4294967297 reads as 1, 2^63 as -1), so its number
 * cannot be trusted for a range check. The loader keeps the text libconfig
 * parsed, finds the setting's literal there by its path (group names, then
 * the key), parses it with overflow detection, and checks that libconfig's
 * number is that literal or its 32-bit truncation (so a wrong match cannot
 * pass). */
#ifndef MUX_CONFIG_LITERAL_H
#define MUX_CONFIG_LITERAL_H

#include <libconfig.h>
#include <stddef.h>

#define PATH_MAX_DEPTH 8

/* The file as given to mux_config_load(), NUL-terminated. */
struct source {
    const char *path;
    char *text;
    size_t len;
};

/* The setting looked for, and what was found. */
struct literal {
    const char *names[PATH_MAX_DEPTH]; /* from the root group to the key */
    int depth;
    const char *file;     /* libconfig's file of the setting; NULL: the main text */
    int found;            /* matches so far: exactly one is usable */
    int line;
    int parsed;           /* 0, -ERANGE (past 64 bits) or -EINVAL */
    long long value;
    char text[48];        /* as written, shortened with "..." if longer */
};

/* Reads the whole file. 0, or a negative errno (-EISDIR for a directory,
 * -EFBIG past the loader's size limit). */
int mux__config_read_text(const char *path, char **out, size_t *len);

/* The literal behind libconfig's integer setting s, checked against the
 * number libconfig made of it. 0 with *want filled, or -EINVAL. */
int mux__config_find_literal(const struct source *src, const config_setting_t *s,
                              struct literal *want);

#endif
