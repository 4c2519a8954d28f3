/* test_haproxy.c - a real haproxy (Debian package haproxy) in TCP mode in
 * front of two mux-echo servers, with tests/deploy/haproxy.cfg as
 * docs/deploy.md shows it, three ways: plain TCP, send-proxy (PROXY v1) and
 * send-proxy-v2 (PROXY v2; the backends with server.proxy_protocol = true).
 * Each way:
 *  - mux-stress through haproxy, every byte of every reply verified;
 *  - both backends served (their /metrics), and the bytes they sent add up
 *    exactly to what the clients received;
 *  - probe clients bound to 127.0.0.2: with the PROXY protocol each backend
 *    logs the probe's own address and port ("conn N open: 127.0.0.2:PORT"),
 *    plain it logs haproxy's, never 127.0.0.2.
 * Skipped when haproxy is not installed (MUX_HAPROXY=<path> picks one).
 * Random payloads; MUX_TEST_SEED=<n> replays a run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "deploy_util.h"
#include "harness.h"

enum mode { PLAIN, PROXY_V1, PROXY_V2 };
static const char *const mode_name[] = {"plain", "send-proxy", "send-proxy-v2"};

#define NPROBES 4

static unsigned long long seed;
static char haproxy_bin[512];

struct backend {
    struct th_child c;
    char log[128];
    char metrics[64];
};

static void start_backend(struct backend *b, int i, enum mode m)
{
    char name[32], conf[128];
    snprintf(name, sizeof(name), "mux%d-%s.conf", i, mode_name[m]);
    deploy_tmp_path(name, conf, sizeof(conf));
    assert_int_equal(deploy_write_file(conf, m == PLAIN ? "server = { workers = 2; };\n"
                                                        : "server = { workers = 2; "
                                                          "proxy_protocol = true; };\n"),
                     0);
    snprintf(name, sizeof(name), "mux%d-%s.log", i, mode_name[m]);
    deploy_tmp_path(name, b->log, sizeof(b->log));
    char *argv[] = {MUX_ECHO_BIN, "-c", conf, "-l", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
                    "--log-level", "debug", "--log-file", b->log, NULL};
    assert_int_equal(th_child_start(&b->c, argv, 10000), 0);
    assert_int_equal(deploy_ready_metrics(b->c.ready, b->metrics, sizeof(b->metrics)), 0);
}

/* tests/deploy/haproxy.cfg with its send-proxy-v2 turned into the mode's
 * option (none, send-proxy, send-proxy-v2), written to the temp dir. */
static void write_haproxy_cfg(const char *path, enum mode m)
{
    static char text[8192];
    assert_non_null(deploy_slurp(HAPROXY_CFG, text, sizeof(text)));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    const char *opt = m == PLAIN ? "" : m == PROXY_V1 ? " send-proxy" : " send-proxy-v2";
    static const char from[] = " send-proxy-v2";
    int replaced = 0;
    for (const char *p = text; *p;) {
        const char *hit = strstr(p, from);
        if (!hit) {
            fputs(p, f);
            break;
        }
        fwrite(p, 1, (size_t)(hit - p), f);
        fputs(opt, f);
        p = hit + sizeof(from) - 1;
        replaced++;
    }
    fclose(f);
    assert_int_equal(replaced, 2); /* one per server line */
}

/* A client from 127.0.0.2 (a loopback address no server uses): sends a
 * random payload through haproxy and checks its echo. Returns its port. */
static int probe(int front_port, size_t *bytes)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in src = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.2", &src.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0);
    struct sockaddr_storage dst;
    socklen_t dlen;
    assert_int_equal(th_sockaddr("127.0.0.1", front_port, &dst, &dlen), 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&dst, dlen), 0);
    socklen_t slen = sizeof(src);
    getsockname(fd, (struct sockaddr *)&src, &slen);
    char out[2048], in[2048];
    size_t len = 1 + (size_t)(seed % sizeof(out));
    th_fill_random(out, len, &seed);
    assert_int_equal(th_write_all(fd, out, len, 5000), 0);
    assert_int_equal(th_read_exact(fd, in, len, 10000 * th_slowdown()), (ssize_t)len);
    assert_memory_equal(in, out, len);
    close(fd);
    *bytes += len;
    return ntohs(src.sin_port);
}

/* The first exchange through a fresh haproxy also tells that it runs: the
 * frontend socket exists before haproxy starts, so connect never races it. */
static void expect_haproxy_up(pid_t pid, int front_port, size_t *bytes)
{
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid)
        fail_msg("haproxy exited at once (status %d): see its output above", status);
    probe(front_port, bytes);
}

/* mux-stress through haproxy; returns the reply bytes it verified. */
static unsigned long long run_stress(int front_port, enum mode m)
{
    char target[64], name[64], json[128], n[32], out[8192];
    snprintf(target, sizeof(target), "127.0.0.1:%d", front_port);
    snprintf(name, sizeof(name), "stress-%s.json", mode_name[m]);
    deploy_tmp_path(name, json, sizeof(json));
    snprintf(n, sizeof(n), "%d", th_slowdown() > 1 ? 500 : 20000);
    char *argv[] = {STRESS_BIN, "-q", "-c", "20", "-s", "3000", "-p", "2", "-n", n,
                    "--timeout", "20", "--json", json, target, NULL};
    int rc = th_run_capture(argv, out, sizeof(out), 120000 * th_slowdown());
    print_message("%s", out);
    assert_int_equal(rc, 0);
    static char text[4096];
    assert_non_null(deploy_slurp(json, text, sizeof(text)));
    assert_non_null(strstr(text, "\"verify_failures\":0,"));
    assert_non_null(strstr(text, "\"resets\":0,"));
    const char *b = strstr(text, "\"bytes_received\":");
    assert_non_null(b);
    unsigned long long got = strtoull(b + 17, NULL, 10);
    assert_int_equal(got, strtoull(n, NULL, 10) * 3000ULL);
    return got;
}

/* Polls both backends' counters (published once per worker loop turn)
 * until the bytes they sent reach `want`; then checks each served. */
static void expect_both_served(struct backend b[2], unsigned long long want)
{
    static char text[2][1 << 16];
    unsigned long long sent[2] = {0, 0};
    long long deadline = th_now_ms() + 5000LL * th_slowdown();
    do {
        for (int i = 0; i < 2; i++) {
            assert_int_equal(deploy_metrics(b[i].metrics, text[i], sizeof(text[i])), 0);
            sent[i] = deploy_metric(text[i], "mux_bytes_sent_total");
        }
    } while (sent[0] + sent[1] < want && th_now_ms() < deadline);
    for (int i = 0; i < 2; i++) {
        unsigned long long acc = deploy_metric(text[i], "mux_connections_accepted_total");
        print_message("backend %d: %llu connections, %llu bytes sent\n", i + 1, acc, sent[i]);
        assert_true(acc >= 10);
        assert_true(sent[i] > 0);
    }
    assert_int_equal(sent[0] + sent[1], want); /* every byte, once */
}

/* Where the probes' addresses show up in the backends' debug logs. */
static void expect_peers(struct backend b[2], enum mode m, const int ports[NPROBES])
{
    static char text[1 << 20];
    int seen[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        assert_non_null(deploy_slurp(b[i].log, text, sizeof(text)));
        if (m == PLAIN) {
            assert_null(strstr(text, "127.0.0.2")); /* haproxy's address only */
            assert_non_null(strstr(text, " open: 127.0.0.1:"));
            continue;
        }
        for (int k = 0; k < NPROBES; k++) {
            char want[64];
            snprintf(want, sizeof(want), " open: 127.0.0.2:%d on worker", ports[k]);
            if (strstr(text, want))
                seen[i]++;
        }
    }
    if (m != PLAIN) {
        print_message("probes from 127.0.0.2 logged by backend 1: %d, backend 2: %d\n", seen[0],
                      seen[1]);
        assert_int_equal(seen[0] + seen[1], NPROBES); /* each, exactly once */
        assert_true(seen[0] > 0 && seen[1] > 0);      /* round robin */
    }
}

static void run_mode(enum mode m)
{
    print_message("== haproxy %s in front of two mux-echo\n", mode_name[m]);
    struct backend b[2];
    start_backend(&b[0], 1, m);
    start_backend(&b[1], 2, m);
    int front_port;
    int front = deploy_listen_loopback(&front_port);
    assert_true(front >= 0);
    char env[64], cfg[128];
    snprintf(env, sizeof(env), "fd@%d", front);
    setenv("MUX_FRONTEND", env, 1);
    snprintf(env, sizeof(env), "127.0.0.1:%d", b[0].c.port);
    setenv("MUX_BACKEND1", env, 1);
    snprintf(env, sizeof(env), "127.0.0.1:%d", b[1].c.port);
    setenv("MUX_BACKEND2", env, 1);
    snprintf(env, sizeof(env), "haproxy-%s.cfg", mode_name[m]);
    write_haproxy_cfg(deploy_tmp_path(env, cfg, sizeof(cfg)), m);
    struct th_child hap = {.pid = deploy_start_haproxy(haproxy_bin, cfg), .out_fd = -1};
    assert_true(hap.pid > 0);
    close(front); /* haproxy holds it now */

    size_t probe_bytes = 0;
    expect_haproxy_up(hap.pid, front_port, &probe_bytes);
    unsigned long long stress_bytes = run_stress(front_port, m);
    int ports[NPROBES];
    for (int k = 0; k < NPROBES; k++)
        ports[k] = probe(front_port, &probe_bytes);
    expect_both_served(b, stress_bytes + probe_bytes);
    expect_peers(b, m, ports);

    assert_true(th_child_stop(&hap, SIGTERM, 10000) >= 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(th_child_stop(&b[i].c, SIGTERM, 15000), 0);
}

static void test_plain(void **state) { run_mode(PLAIN); }
static void test_send_proxy_v1(void **state) { run_mode(PROXY_V1); }
static void test_send_proxy_v2(void **state) { run_mode(PROXY_V2); }

static int setup(void **state)
{
    const char *s = getenv("MUX_TEST_SEED");
    seed = s ? strtoull(s, NULL, 10) : (unsigned long long)time(NULL);
    print_message("seed %llu (MUX_TEST_SEED=%llu reproduces)\n", seed, seed);
    seed = seed * 2654435761ULL + 1; /* xorshift needs a nonzero state */
    return deploy_tmp_create("haproxy");
}

static int teardown(void **state) { return deploy_tmp_remove(); }

int main(void)
{
    if (!deploy_find_haproxy(haproxy_bin, sizeof(haproxy_bin))) {
        printf("SKIPPED: haproxy not installed (Debian package haproxy)\n");
        return 77; /* ctest: skipped */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_send_proxy_v1),
        cmocka_unit_test(test_send_proxy_v2),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
