/* config_literal.c - finds and parses a setting's integer literal in the
 * config file's text (config_literal.h). The scanner only needs to be
 * exact about what can hide a literal: comments, strings, nesting and
 * @include; libconfig already checked the syntax. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_literal.h"

#define INCLUDE_MAX_DEPTH 10
#define CONFIG_MAX_BYTES (16u << 20)

struct token {
    enum { TOK_END, TOK_NAME, TOK_VALUE, TOK_STRING, TOK_DIRECTIVE, TOK_PUNCT } kind;
    const char *s;
    size_t len;
    int line;
};

struct lexer {
    const char *p;
    int line;
};

/* Where the scanner is: nesting depth, and how many outer levels so far
 * are the groups of the path looked for. */
struct nesting {
    int depth, matched;
};

/* Reads the whole file. 0, or a negative errno (-EISDIR for a directory,
 * -EFBIG past CONFIG_MAX_BYTES). */
int mux__config_read_text(const char *path, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    int rc = buf ? 0 : -ENOMEM;
    while (rc == 0) {
        if (n == cap) {
            char *bigger = cap < CONFIG_MAX_BYTES ? realloc(buf, cap * 2 + 1) : NULL;
            if (!bigger) {
                rc = cap < CONFIG_MAX_BYTES ? -ENOMEM : -EFBIG;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno != EINTR)
            rc = -errno;
        else if (r == 0)
            break;
        else if (r > 0)
            n += (size_t)r;
    }
    close(fd);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

static void skip_space_and_comments(struct lexer *lx)
{
    for (;;) {
        const char *p = lx->p;
        if (*p == '\n') {
            lx->line++;
            lx->p++;
        } else if (isspace((unsigned char)*p)) {
            lx->p++;
        } else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
            while (*lx->p && *lx->p != '\n')
                lx->p++;
        } else if (p[0] == '/' && p[1] == '*') {
            for (lx->p += 2; *lx->p && !(lx->p[0] == '*' && lx->p[1] == '/'); lx->p++)
                if (*lx->p == '\n')
                    lx->line++;
            lx->p += *lx->p ? 2 : 0;
        } else {
            return;
        }
    }
}

static bool is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '*';
}

/* One token; a value is any run that starts like a number ("-0x1fL",
 * "1e-3"). */
static void next_token(struct lexer *lx, struct token *t)
{
    skip_space_and_comments(lx);
    const char *p = lx->p;
    t->s = p;
    t->line = lx->line;
    if (*p == '\0') {
        t->kind = TOK_END;
    } else if (*p == '"') {
        t->kind = TOK_STRING;
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
            if (*p == '\n')
                lx->line++;
        }
        p += *p ? 1 : 0;
    } else if (isalpha((unsigned char)*p) || *p == '*' || *p == '@') {
        t->kind = *p == '@' ? TOK_DIRECTIVE : TOK_NAME;
        for (p++; is_name_char(*p); p++)
            ;
    } else if (isdigit((unsigned char)*p) || *p == '-' || *p == '+' || *p == '.') {
        t->kind = TOK_VALUE;
        for (p++; isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '+' || *p == '_'; p++)
            ;
    } else {
        t->kind = TOK_PUNCT;
        p++;
    }
    t->len = (size_t)(p - t->s);
    lx->p = p;
}

static bool token_is(const struct token *t, const char *name)
{
    return strlen(name) == t->len && memcmp(t->s, name, t->len) == 0;
}

static int digit_value(char c, unsigned base)
{
    int d = isdigit((unsigned char)c) ? c - '0'
            : isxdigit((unsigned char)c) ? tolower((unsigned char)c) - 'a' + 10 : -1;
    return d >= 0 && (unsigned)d < base ? d : -1;
}

/* libconfig's integer forms: [+-]digits or 0x hexdigits, then L or LL.
 * 0, -ERANGE outside long long, or -EINVAL (not an integer). */
static int parse_int_literal(const char *s, size_t len, long long *out)
{
    size_t i = 0;
    bool neg = len > 0 && s[0] == '-';
    if (len > 0 && (s[0] == '-' || s[0] == '+'))
        i++;
    unsigned base = 10;
    if (len - i > 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
        base = 16;
        i += 2;
    }
    for (int l = 0; l < 2 && len > i && s[len - 1] == 'L'; l++)
        len--;
    if (i == len)
        return -EINVAL;
    unsigned long long mag = 0;
    bool over = false;
    for (; i < len; i++) {
        int d = digit_value(s[i], base);
        if (d < 0)
            return -EINVAL;
        if (mag > (ULLONG_MAX - (unsigned)d) / base)
            over = true;
        else
            mag = mag * base + (unsigned)d;
    }
    if (over || mag > (unsigned long long)LLONG_MAX + (neg ? 1 : 0))
        return -ERANGE;
    *out = neg ? (long long)(0 - mag) : (long long)mag;
    return 0;
}

static void nest_push(struct nesting *n, const struct literal *want, const struct token *name)
{
    n->depth++;
    if (name && n->matched == n->depth - 1 && n->depth < want->depth &&
        token_is(name, want->names[n->depth - 1]))
        n->matched = n->depth;
}

static void nest_pop(struct nesting *n)
{
    if (n->matched == n->depth && n->matched > 0)
        n->matched--;
    if (n->depth > 0)
        n->depth--;
}

/* `name = value` at the current nesting: is it the setting looked for? */
static void consider(struct literal *want, const struct nesting *n, const struct token *name,
                     const struct token *value, const char *file)
{
    if (n->matched != n->depth || n->depth != want->depth - 1 ||
        !token_is(name, want->names[want->depth - 1]) || (file == NULL) != (want->file == NULL) ||
        (file && strcmp(file, want->file) != 0))
        return;
    want->found++;
    want->line = name->line;
    want->parsed = value->kind == TOK_VALUE ? parse_int_literal(value->s, value->len, &want->value)
                                            : -EINVAL;
    if (value->len < sizeof(want->text))
        snprintf(want->text, sizeof(want->text), "%.*s", (int)value->len, value->s);
    else
        snprintf(want->text, sizeof(want->text), "%.*s...", (int)sizeof(want->text) - 4, value->s);
}

static void scan_text(struct literal *want, struct nesting *n, const char *text, const char *file,
                      int includes);

/* @include "file": libconfig reads it from the path as written. */
static void scan_include(struct literal *want, struct nesting *n, struct lexer *lx, int includes)
{
    struct token t;
    next_token(lx, &t);
    if (t.kind != TOK_STRING || t.len < 2)
        return;
    char *name = strndup(t.s + 1, t.len - 2), *text = NULL;
    size_t len;
    if (name && includes < INCLUDE_MAX_DEPTH && mux__config_read_text(name, &text, &len) == 0)
        scan_text(want, n, text, name, includes + 1);
    else
        want->found = 2; /* part of the text is out of sight: refuse to guess */
    free(text);
    free(name);
}

/* Walks the text token by token; `name =` or `name :` then a value, a
 * group `{`, or a list `(` / array `[` (whose elements have no names). */
static void scan_text(struct literal *want, struct nesting *n, const char *text, const char *file,
                      int includes)
{
    struct lexer lx = {.p = text, .line = 1};
    struct token t, name = {0};
    bool have_name = false, after_eq = false;
    for (next_token(&lx, &t); t.kind != TOK_END; next_token(&lx, &t)) {
        if (t.kind == TOK_NAME && !after_eq) {
            name = t;
            have_name = true;
            continue;
        }
        if (t.kind == TOK_PUNCT && (*t.s == '=' || *t.s == ':') && have_name) {
            after_eq = true;
            continue;
        }
        if (t.kind == TOK_DIRECTIVE && token_is(&t, "@include"))
            scan_include(want, n, &lx, includes);
        else if (t.kind == TOK_PUNCT && strchr("{([", *t.s))
            nest_push(n, want, *t.s == '{' && after_eq ? &name : NULL);
        else if (t.kind == TOK_PUNCT && strchr("})]", *t.s))
            nest_pop(n);
        else if (t.kind != TOK_PUNCT && after_eq)
            consider(want, n, &name, &t, file);
        have_name = after_eq = false;
    }
}

/* The names from the root group down to s; false if s sits in a list. */
static bool setting_path(const config_setting_t *s, struct literal *want)
{
    const char *rev[PATH_MAX_DEPTH];
    int n = 0;
    for (const config_setting_t *p = s; config_setting_parent(p); p = config_setting_parent(p)) {
        if (n == PATH_MAX_DEPTH || !config_setting_name(p))
            return false;
        rev[n++] = config_setting_name(p);
    }
    want->depth = n;
    for (int i = 0; i < n; i++)
        want->names[i] = rev[n - 1 - i];
    return n > 0;
}

/* The literal behind libconfig's integer setting s, checked against the
 * number libconfig made of it. 0 with *want filled, or -EINVAL. */
int mux__config_find_literal(const struct source *src, const config_setting_t *s,
                              struct literal *want)
{
    memset(want, 0, sizeof(*want));
    if (!setting_path(s, want))
        return -EINVAL;
    want->file = config_setting_source_file(s);
    struct nesting n = {0, 0};
    scan_text(want, &n, src->text, NULL, 0);
    if (want->found != 1)
        return -EINVAL;
    if (want->parsed == -ERANGE)
        return 0;
    long long lib = config_setting_get_int64(s);
    bool same = want->parsed == 0 &&
                (lib == want->value || (config_setting_type(s) == CONFIG_TYPE_INT &&
                                        lib == (int32_t)(uint32_t)(unsigned long long)want->value));
    return same ? 0 : -EINVAL;
}

