/* test_net.c - HOST:PORT parsing and formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <string.h>

#include "net.h"

static void roundtrip(const char *in, const char *out)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char err[128], buf[128];
    assert_int_equal(mux__addr_parse(in, &ss, &len, err, sizeof(err)), 0);
    assert_string_equal(mux__addr_format((struct sockaddr *)&ss, len, buf, sizeof(buf)), out);
}

static void test_good_addresses(void **state)
{
    roundtrip("127.0.0.1:7000", "127.0.0.1:7000");
    roundtrip("[::1]:0", "[::1]:0");
    roundtrip("0.0.0.0:65535", "0.0.0.0:65535");
    roundtrip("[::]:80", "[::]:80");
}

static void test_bad_addresses(void **state)
{
    const char *bad[] = {"127.0.0.1", "127.0.0.1:", "127.0.0.1:70000", "127.0.0.1:-1",
                         "[::1:80", "[::1]80", "127.0.0.1:8x", "999.1.1.1:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sockaddr_storage ss;
        socklen_t len;
        char err[128] = "";
        assert_int_not_equal(mux__addr_parse(bad[i], &ss, &len, err, sizeof(err)), 0);
        assert_true(strlen(err) > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_addresses),
        cmocka_unit_test(test_bad_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
