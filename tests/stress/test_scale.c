/* test_scale.c - mux-stress at scale (design.md section 9): --source binds
 * outgoing connections to local addresses round-robin (the server sees the
 * peers), bad --source values are usage errors before anything connects;
 * --idle connections are opened at --connect-rate, held, and checked after
 * the run, so a server that closed them (idle timeout) or stopped serving
 * them fails the run; the descriptor and port limits are checked before
 * anything connects (the test binary re-executes itself as a wrapper that
 * lowers RLIMIT_NOFILE, see limited_exec). Every run is bounded (-n or a short -d, and a capture
 * timeout); servers are stopped by PID; loopback only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/prctl.h>
#include <sys/resource.h>
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
    struct th_child c;
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

/* A mux-echo config in the test directory: idle timeout and connection cap. */
static const char *echo_config(char *path, size_t size, int idle_timeout_ms)
{
    char name[64];
    snprintf(name, sizeof(name), "echo-%d.conf", idle_timeout_ms);
    fx_path(path, size, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "server = {\n  idle_timeout_ms = %d;\n  max_connections = 30000;\n};\n",
            idle_timeout_ms);
    fclose(f);
    return path;
}

static struct res echo_run(int idle_timeout_ms, const char *const *args)
{
    struct th_child c;
    char target[96], conf[160];
    const char *extra[] = {"-c", echo_config(conf, sizeof(conf), idle_timeout_ms), NULL};
    fx_start(&c, MUX_ECHO_BIN, "127.0.0.1:0", extra, target, sizeof(target));
    struct res r = fx_stress(target, args);
    fx_stop(&c);
    return r;
}

/* mux-echo holds 2000 idle connections over a 500 ms run on two threads:
 * all open at the end, every one checked (the default up to 10 000), the
 * run measured after the ramp, a compact record per connection. */
static void test_idle_held_and_checked(void **state)
{
    if (!MUX_ECHO_BIN[0])
        skip();
    const char *n = fx_count("2000", "200");
    const char *args[] = {"--idle", n, "-c", "2", "-t", "2", "-d", "500ms", NULL};
    struct res r = echo_run(0, args);
    assert_int_equal(r.rc, 0);
    assert_true(r.passed);
    assert_true(r.idle_open == atof(n));
    assert_true(r.idle_checked == atof(n) && r.idle_verified == atof(n));
    assert_true(r.idle_lost == 0 && r.idle_unverified == 0 && r.verify_failures == 0);
    assert_true(r.duration > 0.45 && r.duration < 0.55); /* -d counts from the end of the ramp */
    assert_true(r.idle_bytes >= 8 && r.idle_bytes < 1024);
    assert_non_null(strstr(fx_out, "bytes of client memory each"));
}

/* mux-echo with a 200 ms idle timeout closes every idle connection during
 * a 1 s run: each is lost, the run fails (exit 1) and says why. */
static void test_idle_timeout_fails(void **state)
{
    if (!MUX_ECHO_BIN[0])
        skip();
    const char *n = fx_count("2000", "200");
    const char *args[] = {"--idle", n, "-c", "2", "-t", "2", "-d", "1s", NULL};
    struct res r = echo_run(200, args);
    assert_int_equal(r.rc, 1);
    assert_false(r.passed);
    assert_true(r.idle_lost == atof(n) && r.idle_open == 0);
    assert_true(r.lost >= atof(n));
    assert_true(r.requests > 0 && r.verify_failures == 0); /* the busy ones were fine */
    assert_non_null(strstr(fx_out, "idle connections lost (closed or reset by the server)"));
}

/* A server that holds the first 2000 connections (the idle ones, opened
 * before the run) but never reads them: the run itself passes, the check
 * after it times out on every one. */
static void test_idle_check_catches_silent_server(void **state)
{
    const char *n = fx_count("2000", "200");
    const char *srv[] = {"--silent-first", n, NULL};
    const char *args[] = {"--idle", n, "-c", "2", "-t", "2", "-d", "300ms", "--timeout", "400ms",
                          NULL};
    struct res r = fx_broken_run(srv, args, 1);
    assert_true(r.requests > 0);
    assert_true(r.idle_checked == atof(n));
    assert_true(r.verify_failures == atof(n) && r.timeouts == atof(n));
    assert_true(r.idle_verified == 0 && r.idle_unverified == 0);
    assert_non_null(strstr(fx_out, "verify failed on idle connection"));
}

/* --idle-verify 5 checks exactly 5 % (spread over the threads); with the
 * silent server exactly those fail, the other 95 % stay open. */
static void test_idle_verify_sample(void **state)
{
    const char *srv[] = {"--silent-first", "2000", NULL};
    const char *args[] = {"--idle",        "2000", "--idle-verify", "5", "-c", "2", "-t", "3",
                          "-d",            "200ms", "--timeout", "400ms", NULL};
    struct res r = fx_broken_run(srv, args, 1);
    assert_true(r.idle_checked == 100 && r.verify_failures == 100);
    assert_true(r.idle_open == 1900);
    const char *ok[] = {"--idle", "2000", "--idle-verify", "5%", "-c", "2", "-t", "3",
                        "-n", "100", NULL};
    r = fx_broken_run(NULL, ok, 0);
    assert_true(r.idle_checked == 100 && r.idle_verified == 100 && r.idle_open == 2000);
}

/* Above 10 000 idle connections 1 % is checked by default; the ramp
 * keeps to --connect-rate (12 000 at 20 000/s take at least 0.55 s). */
static void test_idle_default_sample_and_rate(void **state)
{
    if (fx_valgrind())
        skip(); /* 12 000 connections: too slow under valgrind */
    const char *args[] = {"--idle", "12000", "--connect-rate", "20k", "-c", "2", "-t", "2",
                          "-n",     "200",   NULL};
    struct res r = fx_broken_run(NULL, args, 0);
    assert_true(r.idle_open == 12000);
    assert_true(r.idle_checked == 120 && r.idle_verified == 120);
    assert_true(r.idle_connect_s >= 0.55);
    assert_non_null(strstr(fx_out, "--idle-verify 1%"));
}

/* Bad --idle-verify and --connect-rate values are usage errors. */
static void test_idle_usage_errors(void **state)
{
    const char *bad[][3] = {{"--idle-verify", "101"}, {"--idle-verify", "-1"},
                            {"--idle-verify", "x"},   {"--idle-verify", "1k"},
                            {"--connect-rate", "0"},  {"--connect-rate", "20m"},
                            {"--idle", "1000001"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *args[] = {bad[i][0], bad[i][1], "-n", "10", NULL};
        struct res r = fx_stress("127.0.0.1:1", args);
        assert_int_equal(r.rc, 2);
        assert_non_null(strstr(fx_out, bad[i][0]));
    }
}

#ifndef CAP_SYS_RESOURCE
#define CAP_SYS_RESOURCE 24 /* linux/capability.h */
#endif

static const char *self; /* this test binary, for the wrapper */

/* argv: self --limited SOFT HARD PROGRAM ARGS...: sets RLIMIT_NOFILE, makes
 * sure the program cannot raise the hard limit again (as root: drops
 * CAP_SYS_RESOURCE from the bounding set, so the exec'd program lacks it),
 * and execs it. Exit 77 when that cannot be arranged. */
static int limited_exec(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    struct rlimit rl = {.rlim_cur = strtoul(argv[2], NULL, 10),
                        .rlim_max = strtoul(argv[3], NULL, 10)};
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 77;
    if (geteuid() == 0 && prctl(PR_CAPBSET_DROP, CAP_SYS_RESOURCE, 0, 0, 0) < 0)
        return 77;
    execv(argv[4], argv + 4);
    return 127;
}

/* mux-stress with args under RLIMIT_NOFILE soft/hard. */
static struct res limited_stress(const char *soft, const char *hard, const char *target,
                                 const char *const *args)
{
    const char *a[FX_MAX_ARGS] = {"--limited", soft, hard, STRESS_BIN};
    int n = 4;
    for (; *args && n < FX_MAX_ARGS - 2; args++)
        a[n++] = *args;
    a[n] = NULL;
    struct res r = fx_stress_via(self, target, a);
    if (r.rc == 77)
        skip();
    return r;
}

/* Under a hard limit of 300 descriptors, 2000 idle connections cannot fit
 * (and cannot be made to): exit 2 before anything connects, naming the
 * limit, the number needed and how to raise it. */
static void test_fd_hard_limit(void **state)
{
    char log[160];
    fx_path(log, sizeof(log), "peers3.log");
    unlink(log);
    struct th_child c;
    char target[96];
    const char *srv[] = {"--peer-log", log, NULL};
    fx_start(&c, BROKEN_BIN, "127.0.0.1:0", srv, target, sizeof(target));
    const char *args[] = {"--idle", "2000", "-c", "2", "-n", "100", NULL};
    struct res r = limited_stress("300", "300", target, args);
    fx_stop(&c);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(fx_out, "need about 2036 file descriptors"));
    assert_non_null(strstr(fx_out, "hard limit is 300 (ulimit -n"));
    assert_non_null(strstr(fx_out, "ulimit -Hn 2036"));
    int per[256], other;
    assert_int_equal(count_peers(log, per, &other), 0);
    unlink(log);
}

/* A soft limit of 100 under a hard one of 3000: raised, and the run with
 * 2000 idle connections passes. */
static void test_fd_soft_limit_raised(void **state)
{
    struct th_child c;
    char target[96];
    fx_start(&c, BROKEN_BIN, "127.0.0.1:0", NULL, target, sizeof(target));
    const char *args[] = {"--idle", fx_count("2000", "200"), "-c", "2", "-n", "100", NULL};
    struct res r = limited_stress("100", "3000", target, args);
    fx_stop(&c);
    assert_int_equal(r.rc, 0);
    assert_true(r.idle_open == atof(fx_count("2000", "200")));
}

/* More than fs.nr_open allows any process (2 000 000 > 1 048 576 here, and
 * at most 1 000 000 + 1 000 000 can be asked for): the message names
 * fs.nr_open, and one source address cannot have that many ports either.
 * Nothing listens at the target: a connect attempt would exit 1, not 2. */
static void test_nr_open_and_ports(void **state)
{
    FILE *f = fopen("/proc/sys/fs/nr_open", "r");
    unsigned long nr_open = 0;
    if (!f || fscanf(f, "%lu", &nr_open) != 1 || nr_open >= 2000000) {
        if (f)
            fclose(f);
        skip(); /* fs.nr_open already fits 2 000 000 */
    }
    fclose(f);
    const char *args[] = {"-c", "1m", "--idle", "1m", "-n", "10", NULL};
    struct res r = fx_stress("127.0.0.1:1", args);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(fx_out, "fs.nr_open is"));
    assert_non_null(strstr(fx_out, "sysctl -w fs.nr_open=2000034"));
    assert_non_null(strstr(fx_out, "net.ipv4.ip_local_port_range"));
    assert_true(r.elapsed_ms < 5000);
}

/* 30 000 connections from one source address: more than the default
 * ephemeral port range; the message suggests --source. */
static void test_port_range(void **state)
{
    unsigned long lo = 0, hi = 0;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (!f || fscanf(f, "%lu %lu", &lo, &hi) != 2 || hi - lo + 1 >= 30001) {
        if (f)
            fclose(f);
        skip(); /* a range wide enough for 30 001 connections */
    }
    fclose(f);
    const char *args[] = {"--idle", "30000", "-c", "1", "-n", "10", NULL};
    struct res r = fx_stress("127.0.0.1:1", args);
    assert_int_equal(r.rc, 2);
    assert_non_null(strstr(fx_out, "need 30001 local ports from its one source address"));
    assert_non_null(strstr(fx_out, "--source 127.0.0.2-127.0.0.3"));
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--limited"))
        return limited_exec(argc, argv);
    self = argv[0];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_source_round_robin),
        cmocka_unit_test(test_source_single),
        cmocka_unit_test(test_source_usage_errors),
        cmocka_unit_test(test_idle_held_and_checked),
        cmocka_unit_test(test_idle_timeout_fails),
        cmocka_unit_test(test_idle_check_catches_silent_server),
        cmocka_unit_test(test_idle_verify_sample),
        cmocka_unit_test(test_idle_default_sample_and_rate),
        cmocka_unit_test(test_idle_usage_errors),
        cmocka_unit_test(test_fd_hard_limit),
        cmocka_unit_test(test_fd_soft_limit_raised),
        cmocka_unit_test(test_nr_open_and_ports),
        cmocka_unit_test(test_port_range),
    };
    return cmocka_run_group_tests(tests, fx_group_setup, fx_group_teardown);
}
