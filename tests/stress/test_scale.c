/* test_scale.c - mux-stress at scale (design.md section 9): --source binds
 * outgoing connections to local addresses round-robin (the server sees the
 * peers), bad --source values are usage errors before anything connects.
 * Every run is bounded (-n or a short -d, and a capture timeout); servers
 * are stopped by PID; loopback only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"

/* Peers logged by broken_server --peer-log: counts per address of
 * 127.0.0.X (X < 256) into per[], other addresses into *other. Lines total. */
static int count_peers(const char *path, int per[256], int *other)
{
    char line[128];
    int n = 0;
    memset(per, 0, 256 * sizeof(int));
    *other = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        unsigned a, b, c, d;
        n++;
        if (sscanf(line, "%u.%u.%u.%u:", &a, &b, &c, &d) == 4 && a == 127 && b == 0 && c == 0 &&
            d < 256)
            per[d]++;
        else
            (*other)++;
    }
    fclose(f);
    return n;
}

/* -c 3 --idle 6 over 127.0.0.2-127.0.0.4 on two threads: the server sees
 * exactly three connections from each of the three addresses, none from
 * anywhere else. */
static void test_source_round_robin(void **state)
{
    char log[160];
    fx_path(log, sizeof(log), "peers.log");
    unlink(log);
    const char *srv[] = {"--peer-log", log, NULL};
    const char *args[] = {"--source", "127.0.0.2-127.0.0.4", "-c", "3", "--idle", "6",
                          "-t",       "2",                   "-n", "300", NULL};
    fx_broken_run(srv, args, 0);
    int per[256], other;
    assert_int_equal(count_peers(log, per, &other), 9);
    assert_int_equal(other, 0);
    for (int d = 2; d <= 4; d++)
        assert_int_equal(per[d], 3);
    unlink(log);
}

/* A single address: every connection comes from it. */
static void test_source_single(void **state)
{
    char log[160];
    fx_path(log, sizeof(log), "peers1.log");
    unlink(log);
    const char *srv[] = {"--peer-log", log, NULL};
    const char *args[] = {"--source", "127.0.0.9", "-c", "4", "-n", "200", NULL};
    fx_broken_run(srv, args, 0);
    int per[256], other;
    assert_int_equal(count_peers(log, per, &other), 4);
    assert_int_equal(per[9], 4);
    unlink(log);
}

/* Bad values: exit 2 and a message naming --source, and the server never
 * saw a connection. */
static void test_source_usage_errors(void **state)
{
    char log[160];
    fx_path(log, sizeof(log), "peers2.log");
    unlink(log);
    struct mux_child c;
    char target[96], v6[96];
    const char *srv[] = {"--peer-log", log, NULL};
    fx_start(&c, BROKEN_BIN, "127.0.0.1:0", srv, target, sizeof(target));
    const char *bad[] = {"127.0.0.4-127.0.0.2", "127.0.0.2-127.1.0.2", "::1", "127.0.0",
                         "192.0.2.1" /* TEST-NET-1: not an address of this host */};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *args[] = {"--source", bad[i], "-c", "2", "-n", "10", NULL};
        struct res r = fx_stress(target, args);
        assert_int_equal(r.rc, 2);
        assert_non_null(strstr(fx_out, "--source"));
    }
    snprintf(v6, sizeof(v6), "[::1]:%d", c.port);
    const char *args[] = {"--source", "127.0.0.2", "-n", "10", NULL};
    struct res r = fx_stress(v6, args);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(fx_out, "IPv6"));
    fx_stop(&c);
    int per[256], other;
    assert_int_equal(count_peers(log, per, &other), 0);
    unlink(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source_round_robin),
        cmocka_unit_test(test_source_single),
        cmocka_unit_test(test_source_usage_errors),
    };
    return cmocka_run_group_tests(tests, fx_group_setup, fx_group_teardown);
}
