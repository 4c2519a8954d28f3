/* test_config.c - the libconfig loader: a good file sets every key; every
 * kind of bad file fails with file, line and key named. Every numeric key
 * of the server table at its bounds and one past them, in every spelling
 * libconfig accepts (decimal, hex, L suffix) and in the spellings libconfig
 * 1.5 wraps (2^32 + v, past 2^64), from a file and as a flag; the literal
 * scanner against decoys (comments, strings, @include, line 70000); the
 * mux-echo binary exits 2 naming file, line and key.
 * Randomized parts print their seed; MUX_TEST_SEED=<n> replays one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mux/mux.h>

#include "harness.h"
#include "options.h"
#include "seed.h"

#ifndef CONFIG_DIR
#error CONFIG_DIR must point at tests/framework/configs
#endif
#ifndef MUX_ECHO_BIN
#error MUX_ECHO_BIN must point at the built mux-echo
#endif

struct app_opts {
    char name[16];
    unsigned depth;
};

static const struct mux_config_key app_keys[] = {
    {.group = "app", .name = "name", .type = MUX_CFG_STRING,
     .offset = offsetof(struct app_opts, name), .size = 16},
    {.group = "app", .name = "depth", .type = MUX_CFG_UINT,
     .offset = offsetof(struct app_opts, depth), .min = 1, .max = 10},
    {0},
};

static int load(const char *file, struct mux_options *o, struct app_opts *a,
                struct mux_error *err)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", CONFIG_DIR, file);
    mux_options_init(o);
    memset(a, 0, sizeof(*a));
    memset(err, 0, sizeof(*err));
    return mux_config_load(o, path, app_keys, a, err);
}

static void test_good_file_sets_every_key(void **state)
{
    struct mux_options o;
    struct app_opts a;
    struct mux_error err;
    assert_int_equal(load("good.cfg", &o, &a, &err), 0);
    assert_int_equal(o.nlisten, 2);
    assert_string_equal(o.listen[0], "127.0.0.1:7100");
    assert_string_equal(o.listen[1], "[::1]:7101");
    assert_int_equal(o.workers, 3);
    assert_int_equal(o.backlog, 128);
    assert_string_equal(o.poller, "poll");
    assert_false(o.edge_triggered);
    assert_int_equal(o.max_connections, 500);
    assert_int_equal(o.idle_timeout_ms, 1500);
    assert_int_equal(o.read_buffer, 8192);
    assert_int_equal(o.max_input, 65536);
    assert_int_equal(o.write_high_water, 1 << 20);
    assert_int_equal(o.write_low_water, 1024);
    assert_int_equal(o.shutdown_grace_ms, 250);
    assert_false(o.tcp_nodelay);
    assert_true(o.reuseport);
    assert_int_equal(o.log_level, MUX_LOG_DEBUG);
    assert_string_equal(a.name, "demo");
    assert_int_equal(a.depth, 7);
}

/* Each bad file: the error names this file, this line and this key. */
static const struct bad_case {
    const char *file;
    int line;
    const char *key;
    const char *words; /* part of the message */
} bad_cases[] = {
    {"unknown_key.cfg", 3, "server.colour", "unknown key"},
    {"unknown_group.cfg", 4, "client", "unknown group"},
    {"wrong_type.cfg", 3, "server.workers", "expects an integer"},
    {"out_of_range.cfg", 3, "server.backlog", "out of range"},
    {"bad_choice.cfg", 2, "server.poller", "not a valid choice"},
    {"syntax.cfg", 3, "", "syntax error"},
    {"bad_listen.cfg", 2, "server.listen", "bad port"},
    {"water.cfg", 3, "server.write_low_water", "must not exceed"},
    {"bad_size.cfg", 2, "server.read_buffer", "not a size"},
    {"bad_level.cfg", 2, "server.log_level", "not one of"},
    {"bad_bool.cfg", 2, "server.tcp_nodelay", "true or false"},
    {"app_range.cfg", 2, "app.depth", "out of range"},
};

static void test_bad_files_name_file_line_key(void **state)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *bc = &bad_cases[i];
        struct mux_options o;
        struct app_opts a;
        struct mux_error err;
        int rc = load(bc->file, &o, &a, &err);
        char msg[1024];
        mux_error_str(&err, msg, sizeof(msg));
        print_message("%s -> %s\n", bc->file, msg);
        assert_int_equal(rc, -EINVAL);
        assert_non_null(strstr(err.file, bc->file));
        assert_int_equal(err.line, bc->line);
        assert_string_equal(err.key, bc->key);
        assert_non_null(strstr(err.message, bc->words));
        char where[64];
        snprintf(where, sizeof(where), "%s:%d: ", bc->file, bc->line);
        assert_non_null(strstr(msg, where));
    }
}

static void test_missing_file(void **state)
{
    struct mux_options o;
    struct app_opts a;
    struct mux_error err;
    assert_int_equal(load("no-such-file.cfg", &o, &a, &err), -ENOENT);
    assert_non_null(strstr(err.message, "cannot read"));
}

static void test_set_from_flag_strings(void **state)
{
    struct mux_options o;
    struct mux_error err;
    mux_options_init(&o);
    const struct mux_config_key *w = mux_config_find(mux_server_keys, "server", "workers");
    assert_non_null(w);
    assert_int_equal(mux_config_set(w, &o, "4", "-w", &err), 0);
    assert_int_equal(o.workers, 4);
    assert_int_equal(mux_config_set(w, &o, "4x", "-w", &err), -EINVAL);
    assert_string_equal(err.file, "-w");
    assert_string_equal(err.key, "server.workers");
    const struct mux_config_key *l = mux_config_find(mux_server_keys, NULL, "server.listen");
    assert_int_equal(mux_config_set(l, &o, "[::1]:0", "-l", &err), 0);
    assert_string_equal(o.listen[0], "[::1]:0");
    assert_int_equal(mux_config_set(l, &o, "nonsense", "-l", &err), -EINVAL);
    const struct mux_config_key *p = mux_config_find(mux_server_keys, "server", "poller");
    assert_int_equal(mux_config_set(p, &o, "select", "--poller", &err), 0);
    assert_string_equal(o.poller, "select");
    assert_int_equal(mux_config_set(p, &o, "kqueue", "--poller", &err), -EINVAL);
    /* uring is a name every build takes (it falls back to epoll at run
     * time where io_uring is missing); edge triggering stays epoll's. */
    assert_int_equal(mux_config_set(p, &o, "uring", "--poller", &err), 0);
    assert_string_equal(o.poller, "uring");
    o.edge_triggered = true;
    assert_int_equal(mux__options_check(&o, &err), -EINVAL);
    assert_string_equal(err.key, "server.edge_triggered");
    o.edge_triggered = false;
}

static void test_defaults_are_valid(void **state)
{
    struct mux_options o;
    mux_options_init(&o);
    struct mux_error err;
    static const struct mux_handler h = {.on_read = NULL};
    assert_null(mux_server_new(&o, &h, NULL, &err)); /* on_read is required */
    assert_non_null(strstr(err.message, "on_read"));
    assert_string_equal(o.listen[0], "127.0.0.1:7000");
    assert_true(o.write_low_water <= o.write_high_water);
}

/* ---- Scratch files, random numbers ---- */

static char tmp_dir[256];

static int group_setup(void **state)
{
    th_seed_rng("MUX_TEST_SEED");
    const char *base = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof(tmp_dir), "%s/mux-test-config-XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(tmp_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    static const char *const names[] = {"t.cfg", "inc.cfg", "nul.cfg", "bin.cfg"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) { /* left by a failed test */
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", tmp_dir, names[i]);
        unlink(path);
    }
    return rmdir(tmp_dir);
}

/* Writes text to tmp_dir/name; the path goes to path. */
static void write_file(const char *name, const char *text, size_t len, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", tmp_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static int load_text(const char *text, struct mux_options *o, struct app_opts *a,
                     struct mux_error *err)
{
    char path[512];
    write_file("t.cfg", text, strlen(text), path, sizeof(path));
    mux_options_init(o);
    memset(a, 0, sizeof(*a));
    memset(err, 0, sizeof(*err));
    int rc = mux_config_load(o, path, app_keys, a, err);
    unlink(path);
    return rc;
}

/* ---- Every numeric key at its bounds, in every spelling ---- */

/* Companion values that keep the cross-key rules (low <= high water,
 * read_buffer <= max_input) out of the way of any single key's bounds. */
static const struct {
    const char *name, *value;
} neutral[] = {
    {"read_buffer", "512"},
    {"max_input", "1073741824"},
    {"write_low_water", "0"},
    {"write_high_water", "1073741824"},
};

static long long field_value(const struct mux_config_key *k, const struct mux_options *o)
{
    const char *f = (const char *)o + k->offset;
    switch (k->type) {
    case MUX_CFG_INT: return *(const int *)f;
    case MUX_CFG_UINT: return *(const unsigned *)f;
    case MUX_CFG_SIZE: return (long long)*(const size_t *)f;
    default: fail_msg("%s is not numeric", k->name);
    }
    return 0;
}

/* A decimal of a 128-bit value (2^64 + v does not fit in 64 bits). */
static void i128_str(__int128 v, char *buf, size_t size)
{
    char tmp[48];
    int n = 0;
    bool neg = v < 0;
    unsigned __int128 m = neg ? (unsigned __int128)(-(v + 1)) + 1 : (unsigned __int128)v;
    do {
        tmp[n++] = (char)('0' + (int)(m % 10));
        m /= 10;
    } while (m);
    size_t i = 0;
    if (neg && i + 1 < size)
        buf[i++] = '-';
    while (n > 0 && i + 1 < size)
        buf[i++] = tmp[--n];
    buf[i] = '\0';
}

/* The ways to write value v as a libconfig integer: what it means is v. */
static int spellings(__int128 v, char out[][64])
{
    char dec[48];
    int n = 0;
    i128_str(v, dec, sizeof(dec));
    snprintf(out[n++], 64, "%s", dec);
    snprintf(out[n++], 64, "%sL", dec);
    if (v >= 0 && v <= (__int128)UINT64_MAX) {
        snprintf(out[n++], 64, "0x%llx", (unsigned long long)v);
        snprintf(out[n++], 64, "0X%llXL", (unsigned long long)v);
    } else if (v > (__int128)UINT64_MAX) { /* hex past 64 bits */
        snprintf(out[n++], 64, "0x%llx%016llx", (unsigned long long)(v >> 64),
                 (unsigned long long)v);
    }
    if (v > 0)
        snprintf(out[n++], 64, "+%s", dec);
    return n;
}

/* Writes `server = { <neutral companions> <noise> key = literal; }` and
 * checks what the loader makes of it against the literal's real value. */
static void check_file_value(const struct mux_config_key *k, const char *literal, __int128 v,
                             bool says_out_of_range)
{
    char text[4096];
    int len = 0, line = 1;
    len += snprintf(text + len, sizeof(text) - (size_t)len, "server = {\n");
    for (size_t i = 0; i < sizeof(neutral) / sizeof(neutral[0]); i++) {
        if (strcmp(neutral[i].name, k->name) == 0)
            continue;
        len += snprintf(text + len, sizeof(text) - (size_t)len, "  %s = %s;\n", neutral[i].name,
                        neutral[i].value);
        line++;
    }
    for (unsigned i = th_rand() % 4; i > 0; i--, line++) /* noise moves the key's line */
        len += snprintf(text + len, sizeof(text) - (size_t)len, "  # %s = 4294967297;\n", k->name);
    line++;
    snprintf(text + len, sizeof(text) - (size_t)len, "  %s = %s;\n};\n", k->name, literal);

    struct mux_options o;
    struct app_opts a;
    struct mux_error err;
    int rc = load_text(text, &o, &a, &err);
    bool in_range = v >= k->min && v <= k->max;
    char msg[1024];
    if (in_range) {
        if (rc != 0)
            fail_msg("%s = %s: refused: %s", k->name, literal, mux_error_str(&err, msg, sizeof(msg)));
        assert_true(field_value(k, &o) == (long long)v);
        return;
    }
    if (rc != -EINVAL)
        fail_msg("%s = %s: accepted as %lld (range %lld..%lld)", k->name, literal,
                 field_value(k, &o), k->min, k->max);
    char key[96];
    snprintf(key, sizeof(key), "server.%s", k->name);
    assert_string_equal(err.key, key);
    if (err.line != line)
        fail_msg("%s = %s: error at line %d, key is on line %d", k->name, literal, err.line, line);
    assert_non_null(strstr(err.file, "t.cfg"));
    if (says_out_of_range) {
        assert_non_null(strstr(err.message, "out of range"));
        assert_non_null(strstr(err.message, literal));
    }
}

static bool is_numeric(const struct mux_config_key *k)
{
    return k->type == MUX_CFG_INT || k->type == MUX_CFG_UINT || k->type == MUX_CFG_SIZE;
}

/* The values that matter for a key: both bounds, one past each, their
 * libconfig-1.5 wraps (2^32 + v reads as v; 2^64 + v past 64 bits), the
 * 64-bit edges, and a random value inside. */
static int boundary_values(const struct mux_config_key *k, __int128 *out)
{
    const __int128 two32 = (__int128)1 << 32, two64 = (__int128)1 << 64;
    int n = 0;
    __int128 in = k->min + (__int128)(th_rand() % (unsigned long long)(k->max - k->min + 1));
    const __int128 base[] = {k->min, k->max, (__int128)k->min - 1, (__int128)k->max + 1, in};
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
        out[n++] = base[i];
        out[n++] = base[i] + two32;
        out[n++] = base[i] + two64;
    }
    out[n++] = (__int128)LLONG_MAX;
    out[n++] = (__int128)LLONG_MAX + 1;
    out[n++] = (__int128)LLONG_MIN;
    out[n++] = (__int128)LLONG_MIN - 1;
    out[n++] = -two32 + k->min; /* wraps to min in 32 bits */
    return n;
}

static void test_every_numeric_key_at_its_bounds_in_a_file(void **state)
{
    int keys = 0, cases = 0;
    for (const struct mux_config_key *k = mux_server_keys; k->name; k++) {
        if (!is_numeric(k))
            continue;
        assert_true(k->min <= k->max);
        keys++;
        __int128 values[32];
        int nv = boundary_values(k, values);
        for (int i = 0; i < nv; i++) {
            char lit[8][64];
            int ns = spellings(values[i], lit);
            for (int j = 0; j < ns; j++, cases++)
                check_file_value(k, lit[j], values[i], true);
        }
    }
    print_message("%d numeric keys, %d literals\n", keys, cases);
    assert_true(keys >= 9); /* the table was read, not skipped */
}

/* Sizes also come as strings: "512", "64k". */
static void test_size_strings_at_bounds(void **state)
{
    for (const struct mux_config_key *k = mux_server_keys; k->name; k++) {
        if (k->type != MUX_CFG_SIZE)
            continue;
        const long long v[] = {k->min, k->max, k->min - 1, k->max + 1};
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
            char lit[64];
            snprintf(lit, sizeof(lit), "\"%lld\"", v[i]);
            check_file_value(k, lit, v[i], false);
            if (v[i] > 0 && v[i] % 1024 == 0) {
                snprintf(lit, sizeof(lit), "\"%lldk\"", v[i] / 1024);
                check_file_value(k, lit, v[i], false);
            }
        }
    }
}

/* The same bounds as flags: mux_config_set() is what -w, --poller, ... use. */
static void test_every_key_at_its_bounds_as_a_flag(void **state)
{
    for (const struct mux_config_key *k = mux_server_keys; k->name; k++) {
        if (!is_numeric(k))
            continue;
        __int128 values[32];
        int nv = boundary_values(k, values);
        for (int i = 0; i < nv; i++) {
            char s[64];
            i128_str(values[i], s, sizeof(s));
            struct mux_options o;
            struct mux_error err;
            mux_options_init(&o);
            memset(&err, 0, sizeof(err));
            int rc = mux_config_set(k, &o, s, "--flag", &err);
            bool in_range = values[i] >= k->min && values[i] <= k->max;
            if (in_range) {
                if (rc != 0)
                    fail_msg("--%s %s refused: %s", k->name, s, err.message);
                assert_true(field_value(k, &o) == (long long)values[i]);
            } else {
                if (rc != -EINVAL)
                    fail_msg("--%s %s accepted as %lld", k->name, s, field_value(k, &o));
                assert_string_equal(err.file, "--flag");
                assert_non_null(strstr(err.key, k->name));
            }
        }
    }
}

/* The other kinds of key: every valid value accepted, a wrong one refused.
 * A new kind of key makes this test fail until it is covered here. */
static void test_every_other_key_accepts_and_refuses(void **state)
{
    static const char *const levels[] = {"\"error\"", "\"warn\"", "\"info\"", "\"debug\"", NULL};
    for (const struct mux_config_key *k = mux_server_keys; k->name; k++) {
        const char *good[8] = {NULL}, *bad = NULL;
        switch (k->type) {
        case MUX_CFG_INT: case MUX_CFG_UINT: case MUX_CFG_SIZE: continue;
        case MUX_CFG_BOOL: good[0] = "true"; good[1] = "false"; bad = "1"; break;
        case MUX_CFG_LEVEL: memcpy(good, levels, sizeof(levels)); bad = "\"loud\""; break;
        case MUX_CFG_LISTEN: good[0] = "\"127.0.0.1:0\""; good[1] = "[\"[::1]:1\", \"127.0.0.1:65535\"]";
            bad = "\"127.0.0.1:65536\""; break;
        case MUX_CFG_STRING:
            if (!k->choices) { /* free text: any string that fits; one too long is refused */
                static char too_long[600];
                memset(too_long, 'x', sizeof(too_long) - 1);
                too_long[0] = too_long[sizeof(too_long) - 2] = '"';
                too_long[k->size + 2 < sizeof(too_long) - 1 ? k->size + 2 : sizeof(too_long) - 2] = '"';
                too_long[k->size + 3 < sizeof(too_long) - 1 ? k->size + 3 : sizeof(too_long) - 1] = '\0';
                good[0] = "\"\"";
                good[1] = strcmp(k->name, "metrics_listen") == 0 ? "\"127.0.0.1:0\"" : "\"/tmp/x.log\"";
                bad = strcmp(k->name, "metrics_listen") == 0 ? "\"127.0.0.1:99999\"" : too_long;
                break;
            }
            for (int i = 0; k->choices[i] && i < 7; i++) {
                static char quoted[8][32];
                snprintf(quoted[i], sizeof(quoted[i]), "\"%s\"", k->choices[i]);
                good[i] = quoted[i];
            }
            bad = "\"nope\"";
            break;
        default: fail_msg("key %s has a type this test does not know", k->name);
        }
        for (int i = 0; good[i] || bad; i++) {
            const char *v = good[i] ? good[i] : bad;
            char text[1024];
            snprintf(text, sizeof(text), "server = {\n  %s = %s;\n};\n", k->name, v);
            struct mux_options o;
            struct app_opts a;
            struct mux_error err;
            int rc = load_text(text, &o, &a, &err);
            if (good[i]) {
                if (rc != 0)
                    fail_msg("%s = %s refused: %s", k->name, v, err.message);
                continue;
            }
            assert_int_equal(rc, -EINVAL);
            assert_int_equal(err.line, 2);
            assert_non_null(strstr(err.key, k->name));
            break;
        }
    }
}

/* The cross-key rules at their edges. */
static void test_cross_key_rules_at_the_edge(void **state)
{
    static const struct {
        const char *text;
        int rc;
        const char *key;
    } cases[] = {
        {"server = { write_high_water = 1000; write_low_water = 1000; };", 0, ""},
        {"server = { write_high_water = 1000; write_low_water = 1001; };", -EINVAL,
         "server.write_low_water"},
        {"server = { write_high_water = 1; write_low_water = 0; };", 0, ""},
        {"server = { read_buffer = 4096; max_input = 4096; };", 0, ""},
        {"server = { read_buffer = 4096; max_input = 4095; };", -EINVAL, "server.max_input"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mux_options o;
        struct app_opts a;
        struct mux_error err;
        assert_int_equal(load_text(cases[i].text, &o, &a, &err), cases[i].rc);
        if (cases[i].rc)
            assert_string_equal(err.key, cases[i].key);
    }
}

/* ---- The literal scanner against text made to mislead it ---- */

static const struct scan_case {
    const char *name;
    const char *text;
    int line;        /* 0: loads; else the error's line */
    const char *key; /* the error's key */
    unsigned workers, backlog, depth; /* when it loads */
} scan_cases[] = {
    {"decoys in comments",
     "# server = { workers = 4294967297; };\n"
     "/* workers = 99999999999;\n"
     "   server.workers = 1 */\n"
     "server = {\n"
     "  backlog = 100; workers = 3; // workers = 4294967297\n"
     "  max_connections /* c */ = /* d */ 4294967297;\n"
     "};\n",
     6, "server.max_connections", 0, 0, 0},
    {"value lines below the name",
     "server =\n{\n  workers\n    =\n      4294967298\n  ;\n};\n", 3, "server.workers", 0, 0, 0},
    {"decoy in a string, same line",
     "server = { workers = 2; backlog = 7; }; app = { name = \"x = 4294967297;\"; depth = 5; };\n",
     0, NULL, 2, 7, 5},
    {"escaped quote in a string",
     "app = { name = \"a\\\" b = 1\"; depth = 4; }; server = { workers = 4294967297; };\n", 1,
     "server.workers", 0, 0, 0},
    {"colon, hex, L, plus",
     "server : { workers : 0x10; backlog = 100L; max_connections = +7; };\n", 0, NULL, 16, 100, 0},
    {"after a list",
     "server = {\n  listen = (\"127.0.0.1:1\", \"127.0.0.1:2\");\n  workers = 4294967297;\n};\n", 3,
     "server.workers", 0, 0, 0},
    {"same key name in another group",
     "app = { depth = 3; };\nserver = { backlog = 4294967297; };\n", 2, "server.backlog", 0, 0, 0},
    {"app key wraps", "app = { depth = 4294967297; };\n", 1, "app.depth", 0, 0, 0},
    {"nothing but comments around",
     "//\n/**/server/**/=/**/{/**/workers/**/=/**/-1/**/;/**/}/**/;\n", 2, "server.workers", 0, 0,
     0},
};

static void test_scanner_finds_the_real_literal(void **state)
{
    for (size_t i = 0; i < sizeof(scan_cases) / sizeof(scan_cases[0]); i++) {
        const struct scan_case *c = &scan_cases[i];
        struct mux_options o;
        struct app_opts a;
        struct mux_error err;
        int rc = load_text(c->text, &o, &a, &err);
        char msg[1024];
        print_message("%s -> %s\n", c->name, rc ? mux_error_str(&err, msg, sizeof(msg)) : "ok");
        if (c->line == 0) {
            assert_int_equal(rc, 0);
            assert_int_equal(o.workers, c->workers);
            assert_int_equal(o.backlog, c->backlog);
            assert_int_equal(a.depth, c->depth);
            continue;
        }
        assert_int_equal(rc, -EINVAL);
        assert_int_equal(err.line, c->line);
        assert_string_equal(err.key, c->key);
    }
}

/* An @include'd file: the error names it and its own line. */
static void test_included_file(void **state)
{
    char inc[512], text[1024];
    write_file("inc.cfg", "  backlog = 9;\n  workers = 4294967298;\n", 38, inc, sizeof(inc));
    snprintf(text, sizeof(text), "server = {\n@include \"%s\"\n  max_connections = 5;\n};\n", inc);
    struct mux_options o;
    struct app_opts a;
    struct mux_error err;
    assert_int_equal(load_text(text, &o, &a, &err), -EINVAL);
    assert_string_equal(err.file, inc);
    assert_int_equal(err.line, 2);
    assert_string_equal(err.key, "server.workers");

    write_file("inc.cfg", "  backlog = 9;\n  workers = 0x6L;\n", 33, inc, sizeof(inc));
    assert_int_equal(load_text(text, &o, &a, &err), 0);
    assert_int_equal(o.workers, 6);
    assert_int_equal(o.backlog, 9);
    assert_int_equal(o.max_connections, 5);
    unlink(inc);
}

/* libconfig counts lines in 16 bits; the error still names line 70001. */
static void test_line_past_65535(void **state)
{
    enum { PAD = 70000 };
    size_t size = PAD * 2 + 64;
    char *text = malloc(size);
    assert_non_null(text);
    for (int i = 0; i < PAD; i++)
        memcpy(text + 2 * i, "#\n", 2);
    snprintf(text + 2 * PAD, size - 2 * PAD, "server = { workers = 4294967297; };\n");
    struct mux_options o;
    struct app_opts a;
    struct mux_error err;
    assert_int_equal(load_text(text, &o, &a, &err), -EINVAL);
    assert_int_equal(err.line, PAD + 1);
    assert_string_equal(err.key, "server.workers");
    free(text);
}

static void test_directory_and_binary_files(void **state)
{
    struct mux_options o;
    struct mux_error err = {0};
    mux_options_init(&o);
    assert_int_equal(mux_config_load(&o, tmp_dir, NULL, NULL, &err), -ENOENT);
    assert_non_null(strstr(err.message, "Is a directory"));
    assert_null(strstr(err.message, "Success"));

    char path[512];
    write_file("nul.cfg", "server = {\n  workers = 2;\0 };\n", 30, path, sizeof(path));
    assert_int_equal(mux_config_load(&o, path, NULL, NULL, &err), -EINVAL);
    assert_int_equal(err.line, 2);
    assert_non_null(strstr(err.message, "NUL"));
    unlink(path);
}

/* ---- The binary: exit 2, file:line: key on stderr, nothing bound ---- */

static void expect_exit_2(char *const argv[], const char *words)
{
    char out[4096];
    int rc = th_run_capture(argv, out, sizeof(out), 10000);
    print_message("%s", out);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, words));
    assert_null(strstr(out, "listening on"));
}

static void test_binary_exits_2_naming_file_line_key(void **state)
{
    static const char *const lines[] = {
        "  max_connections = 4294967297;", "  workers = 4294967298;",
        "  idle_timeout_ms = 4294967396;", "  backlog = 9223372036854775808;",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        char text[256], path[512], words[768], key[64];
        snprintf(text, sizeof(text), "server = {\n  listen = \"127.0.0.1:0\";\n%s\n};\n", lines[i]);
        write_file("bin.cfg", text, strlen(text), path, sizeof(path));
        sscanf(lines[i], " %63s", key);
        snprintf(words, sizeof(words), "%s:3: server.%s: ", path, key);
        char *argv[] = {MUX_ECHO_BIN, "-c", path, NULL};
        expect_exit_2(argv, words);
        unlink(path);
    }
    char *dir[] = {MUX_ECHO_BIN, "-c", tmp_dir, "-l", "127.0.0.1:0", NULL};
    expect_exit_2(dir, "Is a directory");
    char *flag[] = {MUX_ECHO_BIN, "-l", "127.0.0.1:0", "-w", "4294967298", NULL};
    expect_exit_2(flag, "-w: server.workers: ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file_sets_every_key),
        cmocka_unit_test(test_bad_files_name_file_line_key),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_set_from_flag_strings),
        cmocka_unit_test(test_defaults_are_valid),
        cmocka_unit_test(test_every_numeric_key_at_its_bounds_in_a_file),
        cmocka_unit_test(test_size_strings_at_bounds),
        cmocka_unit_test(test_every_key_at_its_bounds_as_a_flag),
        cmocka_unit_test(test_every_other_key_accepts_and_refuses),
        cmocka_unit_test(test_cross_key_rules_at_the_edge),
        cmocka_unit_test(test_scanner_finds_the_real_literal),
        cmocka_unit_test(test_included_file),
        cmocka_unit_test(test_line_past_65535),
        cmocka_unit_test(test_directory_and_binary_files),
        cmocka_unit_test(test_binary_exits_2_naming_file_line_key),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
