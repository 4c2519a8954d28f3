/* test_tls.c - mux-stress over TLS against a server it did not write
 * (tls_server.py: Python's ssl module), with a PKI made at run time by
 * tls_certs.sh: echo with multi-record requests, https:// with ALPN and
 * --expect-file, a full handshake per request (--reconnect 1), certificate
 * and name checks that must refuse (and --insecure that must not), and a
 * server that answers garbage, stalls in the handshake, cuts the stream
 * without close_notify, closes with close_notify while owing replies, or
 * flips a plaintext byte. Each must end within its bound with the right
 * exit status. Skipped when python3 or openssl is missing. */
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
static char ca[256], other_ca[256], srv_cert[256], srv_key[256], name_cert[256], name_key[256];
static char junk[256], body[256];

static unsigned long long rnd(void)
{
    return th_xorshift(&seed);
}

static bool have(const char *tool)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

/* Starts tls_server.py with the server certificate (or cert/key) and extra
 * flags; fills target with HOST:PORT. */
static void start_py(struct th_child *c, const char *cert, const char *key,
                     const char *const *extra, char *target, size_t size)
{
    const char *args[FX_MAX_ARGS] = {"--cert", cert, "--key", key};
    int n = 4;
    for (; extra && *extra && n < FX_MAX_ARGS - 1; extra++)
        args[n++] = *extra;
    args[n] = NULL;
    fx_start(c, TLS_SERVER_PY, "127.0.0.1:0", args, target, size);
}

/* Echo, requests of a random size up to 3 records, pipelined: every byte
 * comes back verified through TLS in both directions. */
static void test_echo_multi_record(void **state)
{
    (void)state;
    struct th_child c;
    char target[96], size[16];
    start_py(&c, srv_cert, srv_key, NULL, target, sizeof(target));
    snprintf(size, sizeof(size), "%llu", 1 + rnd() % 48000);
    const char *args[] = {"--tls", "--cacert", ca, "-c", "4", "-p", "4", "-s", size,
                          "-n", fx_count("400", "40"), NULL};
    struct res r = fx_stress(target, args);
    fx_stop(&c);
    assert_int_equal(r.rc, 0);
    assert_true(r.passed);
    assert_true(r.requests >= (fx_valgrind() ? 40 : 400));
    assert_true(r.verify_failures == 0 && r.connect_errors == 0);
}

/* --idle over TLS: every idle connection completes its handshake during
 * the ramp, holds (session tickets are no unasked bytes), and its check
 * goes through TLS. */
static void test_idle_tls(void **state)
{
    (void)state;
    struct th_child c;
    char target[96];
    start_py(&c, srv_cert, srv_key, NULL, target, sizeof(target));
    const char *args[] = {"--tls", "--cacert", ca, "--idle", "40", "-c", "2", "-t", "2",
                          "-n", fx_count("200", "20"), NULL};
    struct res r = fx_stress(target, args);
    fx_stop(&c);
    assert_int_equal(r.rc, 0);
    assert_true(r.idle_open == 40 && r.idle_checked == 40 && r.idle_verified == 40);
    assert_true(r.idle_lost == 0 && r.connect_errors == 0);
}

/* https:// by name, ALPN http/1.1 required by the server, bodies compared
 * with the file; then a new connection (full handshake) per request. */
static void test_https_url(void **state)
{
    (void)state;
    struct th_child c;
    char target[96], url[160];
    const char *srv[] = {"--http-file", body, "--alpn", NULL};
    start_py(&c, srv_cert, srv_key, srv, target, sizeof(target));
    snprintf(url, sizeof(url), "https://localhost:%d/f", c.port);
    const char *args[] = {"--cacert", ca, "-c", "2", "-n", fx_count("200", "20"),
                          "--expect-file", body, NULL};
    struct res r = fx_stress(url, args);
    assert_int_equal(r.rc, 0);
    assert_true(r.requests >= (fx_valgrind() ? 20 : 200));
    const char *churn[] = {"--cacert", ca, "-c", "2", "-n", fx_count("100", "10"),
                           "--reconnect", "1", NULL};
    r = fx_stress(url, churn);
    fx_stop(&c);
    assert_int_equal(r.rc, 0);
    assert_true(r.connects >= (fx_valgrind() ? 10 : 100));
    assert_true(r.conns_per_sec > 0);
}

/* A certificate from an unrelated CA, or for another name, is refused:
 * connect errors, exit 1, the reason printed; --insecure accepts both. */
static void test_refuses_untrusted(void **state)
{
    (void)state;
    struct th_child c;
    char target[96], url[160];
    start_py(&c, srv_cert, srv_key, NULL, target, sizeof(target));
    const char *wrong_ca[] = {"--tls", "--cacert", other_ca, "-c", "2", "-n", "10", NULL};
    struct res r = fx_stress(target, wrong_ca);
    assert_int_equal(r.rc, 1);
    assert_true(r.connect_errors >= 2 && r.requests == 0);
    assert_non_null(strstr(fx_out, "certificate verify failed"));
    const char *insecure[] = {"--tls", "--insecure", "-c", "2", "-n", "10", NULL};
    r = fx_stress(target, insecure);
    fx_stop(&c);
    assert_int_equal(r.rc, 0);

    start_py(&c, name_cert, name_key, NULL, target, sizeof(target));
    snprintf(url, sizeof(url), "localhost:%d", c.port);
    const char *mismatch[] = {"--tls", "--cacert", ca, "-c", "2", "-n", "10", NULL};
    r = fx_stress(url, mismatch);
    assert_int_equal(r.rc, 1);
    assert_true(r.connect_errors >= 2);
    assert_non_null(strstr(fx_out, "certificate verify failed"));
    r = fx_stress(url, insecure);
    fx_stop(&c);
    assert_int_equal(r.rc, 0);
}

/* Garbage for a ServerHello, or no answer at all: the run fails within its
 * bound, counting connect errors. */
static void test_broken_handshakes(void **state)
{
    (void)state;
    struct th_child c;
    char target[96];
    const char *garbage[] = {"--garbage", NULL};
    start_py(&c, srv_cert, srv_key, garbage, target, sizeof(target));
    const char *args[] = {"--tls", "--cacert", ca, "-c", "2", "-n", "10", NULL};
    struct res r = fx_stress(target, args);
    fx_stop(&c);
    assert_int_equal(r.rc, 1);
    assert_true(r.connect_errors >= 2 && r.requests == 0);
    assert_non_null(strstr(fx_out, "TLS handshake"));

    const char *stall[] = {"--stall", NULL};
    start_py(&c, srv_cert, srv_key, stall, target, sizeof(target));
    const char *quick[] = {"--tls", "--cacert", ca, "-c", "2", "-d", "1s", "--timeout", "300ms",
                           NULL};
    r = fx_stress(target, quick);
    fx_stop(&c);
    assert_int_equal(r.rc, 1);
    assert_true(r.connect_errors >= 2);
    if (!fx_valgrind())
        assert_true(r.elapsed_ms < 1000 + 1000 + 1500);
}

/* The stream is cut after a random number of reply bytes, without or with
 * close_notify, with requests owed: lost requests, exit 1 (and 0 with
 * --allow-errors, which never excuses a wrong byte). */
static void test_cut_streams(void **state)
{
    (void)state;
    const char *how[] = {"--truncate", "--notify-after"};
    for (int i = 0; i < 2; i++) {
        struct th_child c;
        char target[96], at[16];
        snprintf(at, sizeof(at), "%llu", 1000 + rnd() % 50000);
        const char *srv[] = {how[i], at, NULL};
        start_py(&c, srv_cert, srv_key, srv, target, sizeof(target));
        const char *args[] = {"--tls", "--cacert", ca, "-c", "2", "-p", "2", "-s", "1000",
                              "-d", "1s", NULL};
        struct res r = fx_stress(target, args);
        assert_int_equal(r.rc, 1);
        assert_true(r.lost > 0 || r.closed > 0);
        assert_true(r.verify_failures == 0);
        const char *allow[] = {"--tls", "--cacert", ca, "-c", "2", "-p", "2", "-s", "1000",
                               "-d", "1s", "--allow-errors", NULL};
        r = fx_stress(target, allow);
        fx_stop(&c);
        assert_int_equal(r.rc, 0);
        assert_true(r.requests > 0);
    }
}

/* One flipped plaintext byte (the TLS record itself is intact) is a
 * verification failure. */
static void test_flipped_byte(void **state)
{
    (void)state;
    struct th_child c;
    char target[96], at[16];
    snprintf(at, sizeof(at), "%llu", 1 + rnd() % 3000);
    const char *srv[] = {"--flip", at, NULL};
    start_py(&c, srv_cert, srv_key, srv, target, sizeof(target));
    const char *args[] = {"--tls", "--cacert", ca, "-c", "1", "-s", "100", "-n", "40", NULL};
    struct res r = fx_stress(target, args);
    fx_stop(&c);
    assert_int_equal(r.rc, 1);
    assert_true(r.verify_failures >= 1);
}

/* Usage errors, before anything runs. */
static void test_usage(void **state)
{
    (void)state;
    const char *no_tls[] = {"--insecure", "-n", "1", NULL};
    assert_int_equal(fx_stress("127.0.0.1:1", no_tls).rc, 2);
    const char *cacert_no_tls[] = {"--cacert", ca, "-n", "1", NULL};
    assert_int_equal(fx_stress("127.0.0.1:1", cacert_no_tls).rc, 2);
    const char *both[] = {"--tls", "--insecure", "--cacert", ca, "-n", "1", NULL};
    assert_int_equal(fx_stress("127.0.0.1:1", both).rc, 2);
    const char *missing[] = {"--tls", "--cacert", "/nonexistent/ca.pem", "-n", "1", NULL};
    assert_int_equal(fx_stress("127.0.0.1:1", missing).rc, 2);
    const char *not_pem[] = {"--tls", "--cacert", junk, "-n", "1", NULL};
    assert_int_equal(fx_stress("127.0.0.1:1", not_pem).rc, 2);
    const char *none[] = {"-n", "1", NULL};
    assert_int_equal(fx_stress("ftps://127.0.0.1:1/", none).rc, 2);
}

static int setup(void **state)
{
    if (fx_group_setup(state) < 0)
        return -1;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "sh %s %s", TLS_CERTS_SH, fx_tmpdir);
    if (system(cmd) != 0)
        return -1;
    fx_path(ca, sizeof(ca), "ca.pem");
    fx_path(other_ca, sizeof(other_ca), "other-ca.pem");
    fx_path(srv_cert, sizeof(srv_cert), "srv.pem");
    fx_path(srv_key, sizeof(srv_key), "srv.key");
    fx_path(name_cert, sizeof(name_cert), "name.pem");
    fx_path(name_key, sizeof(name_key), "name.key");
    fx_path(junk, sizeof(junk), "junk.pem");
    fx_path(body, sizeof(body), "body.bin");
    FILE *f = fopen(body, "wb");
    if (!f)
        return -1;
    size_t len = 1 + rnd() % 40000; /* up to three records */
    for (size_t i = 0; i < len; i++)
        fputc((int)(rnd() & 0xff), f);
    fclose(f);
    return 0;
}

int main(void)
{
    if (!have("python3") || !have("openssl")) {
        fprintf(stderr, "test_tls: python3 or openssl missing: skipped\n");
        return 77;
    }
    seed = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 20);
    if (getenv("STRESS_TEST_SEED"))
        seed = strtoull(getenv("STRESS_TEST_SEED"), NULL, 0);
    seed |= 1;
    fprintf(stderr, "test_tls: seed %llu (STRESS_TEST_SEED to repeat)\n", seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_echo_multi_record),
        cmocka_unit_test(test_idle_tls),
        cmocka_unit_test(test_https_url),
        cmocka_unit_test(test_refuses_untrusted),
        cmocka_unit_test(test_broken_handshakes),
        cmocka_unit_test(test_cut_streams),
        cmocka_unit_test(test_flipped_byte),
    };
    return cmocka_run_group_tests(tests, setup, fx_group_teardown);
}
