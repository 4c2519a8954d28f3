/* test_tls_alpn.c - the ALPN list (mux_options.tls_alpn) in wire format,
 * and its refusal by mux_server_new when malformed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mux/mux.h"
#include "tls/tls.h"

static void test_wire_format(void **state)
{
    (void)state;
    struct mux__alpn a;
    const char *msg = NULL;
    assert_int_equal(mux__tls_alpn_parse("", &a, &msg), 0);
    assert_int_equal(a.len, 0);
    assert_int_equal(mux__tls_alpn_parse("http/1.1", &a, &msg), 0);
    assert_int_equal(a.len, 9);
    assert_memory_equal(a.wire, "\x08http/1.1", 9);
    assert_int_equal(mux__tls_alpn_parse("h2,http/1.1,x", &a, &msg), 0);
    assert_int_equal(a.len, 3 + 9 + 2);
    assert_memory_equal(a.wire, "\x02h2\x08http/1.1\x01x", 14);
}

static void test_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {",", "a,", ",a", "a,,b", NULL};
    struct mux__alpn a;
    for (const char *const *b = bad; *b; b++) {
        const char *msg = NULL;
        if (mux__tls_alpn_parse(*b, &a, &msg) != -EINVAL)
            fail_msg("\"%s\" accepted", *b);
        assert_non_null(msg);
    }
    char long_name[300];
    memset(long_name, 'p', 256);
    long_name[256] = '\0';
    const char *msg = NULL;
    assert_int_equal(mux__tls_alpn_parse(long_name, &a, &msg), -EINVAL);
    /* names that fit but add up to more than 255 bytes */
    char many[400] = "";
    for (int i = 0; i < 30; i++)
        strcat(many, i ? ",abcdefghij" : "abcdefghij");
    assert_int_equal(mux__tls_alpn_parse(many, &a, &msg), -EINVAL);
}

static size_t never_read(struct mux_conn *c, const char *data, size_t len)
{
    (void)c, (void)data;
    return len;
}

/* A server refuses a malformed list, naming the key. */
static void test_server_refuses(void **state)
{
    (void)state;
    struct mux_options o;
    mux_options_init(&o);
    snprintf(o.tls_alpn, sizeof(o.tls_alpn), "http/1.1,");
    struct mux_handler h = {.on_read = never_read};
    struct mux_error err;
    struct mux_server *s = mux_server_new(&o, &h, NULL, &err);
    assert_null(s);
    assert_string_equal(err.key, "server.tls_alpn");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_format),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_server_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
