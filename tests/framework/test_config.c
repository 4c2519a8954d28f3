/* test_config.c - the libconfig loader: a good file sets every key; every
 * kind of bad file fails with file, line and key named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <mux/mux.h>

#ifndef CONFIG_DIR
#error CONFIG_DIR must point at tests/framework/configs
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file_sets_every_key),
        cmocka_unit_test(test_bad_files_name_file_line_key),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_set_from_flag_strings),
        cmocka_unit_test(test_defaults_are_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
