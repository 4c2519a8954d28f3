/* test_faults.c - mux-stress against servers that break connections rather
 * than bytes (broken_server fault flags): the server dies mid-run, resets
 * after a few replies, closes (FIN) with replies owed, accepts and never
 * answers; plus one corrupted byte in a whole run and HTTP bodies of the
 * right length with the wrong bytes. Each must end the run (within its
 * bound) with exit 1 and a clear line; --allow-errors accepts connection
 * errors but never a wrong byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture.h"
#include "seed.h"

static unsigned long long seed;

static unsigned long long rnd(void)
{
    return th_xorshift(&seed);
}

/* The server kills itself (SIGKILL) early in the run: the run fails with
 * lost requests and connect errors, and still ends within its duration plus
 * the 1 s grace; with -n, once every connection gave up. */
static void test_die_mid_run(void **state)
{
    struct th_child c;
    char target[96];
    const char *srv[] = {"--die-after", fx_count("40000", "4000"), NULL};
    fx_start(&c, BROKEN_BIN, "127.0.0.1:0", srv, target, sizeof(target));
    const char *args[] = {"-c", "4", "-p", "4", "-s", "100", "-d", fx_count("1s", "3s"), NULL};
    struct res r = fx_stress(target, args);
    assert_int_equal(th_child_stop(&c, SIGTERM, 10000), 128 + SIGKILL);
    assert_int_equal(r.rc, 1);
    assert_false(r.passed);
    assert_true(r.requests > 0);
    assert_true(r.lost > 0 || r.closed > 0 || r.resets > 0);
    assert_true(r.connect_errors > 0);
    assert_non_null(strstr(fx_out, "result     FAIL: "));
    assert_non_null(strstr(fx_out, "connect errors"));
    if (!fx_valgrind())
        assert_true(r.elapsed_ms < 1000 + 1000 + 1500);
    fx_start(&c, BROKEN_BIN, "127.0.0.1:0", srv, target, sizeof(target));
    const char *n[] = {"-c", "4", "-p", "4", "-s", "100", "-n", "1g", NULL};
    r = fx_stress(target, n);
    assert_int_equal(th_child_stop(&c, SIGTERM, 10000), 128 + SIGKILL);
    assert_int_equal(r.rc, 1);
    assert_true(r.connect_errors >= 4);
    if (!fx_valgrind()) /* back-off 50+100+200+400 ms, then given up */
        assert_true(r.elapsed_ms < 750 + 2500);
}

/* Reset (RST) after two replies per connection, four in flight: the two
 * beyond are lost and counted; exit 1 unless --allow-errors. */
static void test_reset_after_replies(void **state)
{
    const char *srv[] = {"--reset-every", "200", NULL};
    const char *args[] = {"-c", "4", "-p", "4", "-s", "100", "-n", fx_count("2000", "200"), NULL};
    struct res r = fx_broken_run(srv, args, 1);
    assert_true(r.resets > 0);
    assert_true(r.lost > 0);
    assert_true(r.verify_failures == 0);
    assert_non_null(strstr(fx_out, "connections reset by the server"));
    assert_non_null(strstr(fx_out, "requests lost (sent, never answered)"));
    assert_non_null(strstr(fx_out, "reset by the server with"));
    const char *allow[] = {"-c", "4", "-p", "4", "-s", "100", "--allow-errors",
                           "-n", fx_count("2000", "200"), NULL};
    r = fx_broken_run(srv, allow, 0);
    assert_true(r.resets > 0 && r.requests > 0 && r.passed);
    assert_true(r.requests + r.lost == atof(fx_count("2000", "200")));
    assert_non_null(strstr(fx_out, "allowed by --allow-errors"));
}

/* The server answers three requests, then closes (FIN) once a fourth is in:
 * the fourth is lost, whatever the protocol. */
static void test_fin_with_replies_owed(void **state)
{
    const char *srv[] = {"--fin-after", "300", NULL};
    const char *args[] = {"-c", "4", "-p", "2", "-s", "100", "-n", fx_count("2000", "100"), NULL};
    struct res r = fx_broken_run(srv, args, 1);
    assert_true(r.closed > 0 && r.lost >= r.closed);
    assert_true(r.verify_failures == 0);
    assert_non_null(strstr(fx_out, "connections closed by the server with replies owed"));
    const char *hsrv[] = {"--http", "100", "--fin-after", "3", NULL};
    const char *http[] = {"--proto", "http", "-c", "2", "-p", "2", "-n", fx_count("500", "50"),
                          NULL};
    r = fx_broken_run(hsrv, http, 1);
    assert_true(r.closed > 0 && r.lost > 0);
}

/* A server that accepts and never reads or answers: -n ends about
 * --timeout later (each connection gives up after its reply timeout),
 * -d ends at most 1 s after its duration. Both fail. */
static void test_stall_bounded(void **state)
{
    const char *srv[] = {"--silent", NULL};
    const char *n[] = {"-c", "10", "-n", "100000", "--timeout", fx_count("500ms", "3s"), NULL};
    struct res r = fx_broken_run(srv, n, 1);
    assert_true(r.timeouts == 10 && r.requests == 0);
    assert_non_null(strstr(fx_out, "nothing was measured"));
    if (!fx_valgrind())
        assert_true(r.elapsed_ms < 500 + 2000);
    const char *d[] = {"-c", "10", "-p", "2", "-d", "500ms", NULL};
    r = fx_broken_run(srv, d, 1);
    assert_true(r.unanswered == 20 && r.lost == 20);
    assert_non_null(strstr(fx_out, "20 requests still unanswered when the run ended"));
    if (!fx_valgrind())
        assert_true(r.elapsed_ms < 500 + 1000 + 1500);
}

/* One flipped byte somewhere in a whole run: exactly one failure. */
static void test_corrupt_one_byte(void **state)
{
    unsigned long long total = fx_valgrind() ? 200 * 100 : 20000 * 100;
    char pos[32];
    snprintf(pos, sizeof(pos), "%llu", 1 + rnd() % total);
    fprintf(stderr, "flipping reply byte %s of %llu\n", pos, total);
    const char *srv[] = {"--flip-once", pos, NULL};
    const char *args[] = {"-c", "4", "-p", "4", "-s", "100", "-n", fx_count("20000", "200"),
                          NULL};
    struct res r = fx_broken_run(srv, args, 1);
    assert_true(r.verify_failures == 1);
    assert_non_null(strstr(fx_out, "verify failed on connection"));
    assert_non_null(strstr(fx_out, "FAIL: 1 reply failed verification (0 timeouts)"));
    /* --allow-errors never excuses a wrong byte */
    const char *allow[] = {"-c", "4", "-p", "4", "-s", "100", "--allow-errors",
                           "-n", fx_count("20000", "200"), NULL};
    r = fx_broken_run(srv, allow, 1);
    assert_true(r.verify_failures == 1);
}

/* HTTP bodies of the right length with one byte changed: caught against
 * the run's first response, plain and chunked. */
static void test_http_wrong_body_same_length(void **state)
{
    const char *plain[] = {"--http", "1000", "--bad-body-every", "5", NULL};
    const char *chunked[] = {"--http", "1000", "--bad-body-every", "5", "--chunked", NULL};
    const char *args[] = {"--proto", "http", "-c", "3", "-p", "2", "-n", fx_count("3000", "100"),
                          NULL};
    struct res r = fx_broken_run(plain, args, 1);
    assert_true(r.verify_failures > 0);
    assert_non_null(strstr(fx_out, "body byte 500 of 1000 is 0x47, expected 0x67"));
    r = fx_broken_run(chunked, args, 1);
    assert_true(r.verify_failures > 0);
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* --expect-file: the served file passes; a copy with one random byte
 * changed, or one byte short, fails on the first response. */
static void test_http_expect_file(void **state)
{
    char served[160], other[160], body[5000];
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (char)rnd();
    write_file(fx_path(served, sizeof(served), "served.bin"), body, sizeof(body));
    const char *srv[] = {"--http", "0", "--http-file", served, NULL};
    const char *ok[] = {"--proto", "http", "-c", "3", "-p", "2", "--expect-file", served,
                        "-n", fx_count("2000", "100"), NULL};
    struct res r = fx_broken_run(srv, ok, 0);
    assert_true(r.requests == atof(fx_count("2000", "100")));
    size_t pos = rnd() % sizeof(body);
    body[pos] ^= 0x40;
    write_file(fx_path(other, sizeof(other), "other.bin"), body, sizeof(body));
    const char *bad[] = {"--proto", "http", "-c", "3", "--expect-file", other, "-n", "100", NULL};
    r = fx_broken_run(srv, bad, 1);
    char want[64];
    snprintf(want, sizeof(want), "body byte %zu of 5000", pos);
    assert_non_null(strstr(fx_out, want));
    body[pos] ^= 0x40;
    write_file(other, body, sizeof(body) - 1);
    r = fx_broken_run(srv, bad, 1);
    assert_non_null(strstr(fx_out, "longer than the expected 4999 bytes"));
    const char *missing[] = {"--proto", "http", "--expect-file", "/nonexistent", "-n", "1", NULL};
    assert_int_equal(fx_stress("127.0.0.1:1", missing).rc, 2);
    const char *echo[] = {"--expect-file", served, "-n", "1", NULL};
    assert_int_equal(fx_stress("127.0.0.1:1", echo).rc, 2);
}

int main(void)
{
    seed = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 20);
    if (getenv("STRESS_TEST_SEED"))
        seed = strtoull(getenv("STRESS_TEST_SEED"), NULL, 0);
    seed |= 1;
    fprintf(stderr, "test_faults: seed %llu (STRESS_TEST_SEED to repeat)\n", seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_die_mid_run),
        cmocka_unit_test(test_reset_after_replies),
        cmocka_unit_test(test_fin_with_replies_owed),
        cmocka_unit_test(test_stall_bounded),
        cmocka_unit_test(test_corrupt_one_byte),
        cmocka_unit_test(test_http_wrong_body_same_length),
        cmocka_unit_test(test_http_expect_file),
    };
    return cmocka_run_group_tests(tests, fx_group_setup, fx_group_teardown);
}
