/* test_cli.c - the mux-stress command line without running anything:
 * wrk-style durations and counts, HOST:PORT and URL targets, option
 * conflicts and output files checked up front, and the live progress line
 * staying within 80 columns whatever the numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "options.h"
#include "capacity.h"
#include "report.h"
#include "source.h"
#include "target.h"
#include "units.h"

static void test_durations(void **state)
{
    const struct {
        const char *s;
        double secs;
    } ok[] = {{"5", 5},       {"5s", 5},     {"500ms", 0.5}, {"2m", 120}, {"1h", 3600},
              {"0.25", 0.25}, {"1.5s", 1.5}, {"250us", 250e-6}, {"0", 0}, {".5s", 0.5}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        double v = -1;
        assert_int_equal(parse_duration(ok[i].s, &v), 0);
        assert_true(v > ok[i].secs - 1e-12 && v < ok[i].secs + 1e-12);
    }
    const char *bad[] = {"", "s", "-1", "+1", " 1", "1 s", "1sec", "5x", "inf", "nan",
                         "0x10", "1e8", "1mss", "m"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        double v;
        if (parse_duration(bad[i], &v) == 0)
            fail_msg("'%s' accepted", bad[i]);
    }
}

static void test_counts(void **state)
{
    const struct {
        const char *s;
        uint64_t v;
    } ok[] = {{"1", 1},          {"1k", 1000},          {"2m", 2000000}, {"1g", 1000000000},
              {"1.5k", 1500},    {"10K", 10000},        {"0", 0},        {"123", 123},
              {"2.5m", 2500000}, {"65535", 65535}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t v = 7;
        assert_int_equal(parse_count(ok[i].s, UINT64_MAX / 4, &v), 0);
        assert_true(v == ok[i].v);
    }
    const char *bad[] = {"", "k", "-1", "1.5", "1.2345k", "1kb", "1ki", " 1", "0x10", "1e3"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v;
        if (parse_count(bad[i], UINT64_MAX / 4, &v) == 0)
            fail_msg("'%s' accepted", bad[i]);
    }
    uint64_t v;
    assert_int_equal(parse_count("2k", 1999, &v), -1);
    assert_int_equal(parse_bytes("4k", 1u << 30, &v), 0);
    assert_true(v == 4096);
    assert_int_equal(parse_bytes("1m", 1u << 30, &v), 0);
    assert_true(v == 1048576);
    double r;
    assert_int_equal(parse_metric("2.5k", &r), 0);
    assert_true(r == 2500);
}

static void test_targets(void **state)
{
    struct target t;
    const char *why;
    assert_int_equal(target_parse("127.0.0.1:7000", &t, &why), 0);
    assert_string_equal(t.host, "127.0.0.1");
    assert_string_equal(t.port, "7000");
    assert_false(t.url);
    assert_int_equal(target_parse("[::1]:80", &t, &why), 0);
    assert_string_equal(t.host, "::1");
    assert_string_equal(t.authority, "[::1]:80");
    assert_int_equal(target_parse("http://localhost:8080/a/b?c=d#frag", &t, &why), 0);
    assert_true(t.url && t.has_path);
    assert_string_equal(t.host, "localhost");
    assert_string_equal(t.port, "8080");
    assert_string_equal(t.authority, "localhost:8080");
    assert_string_equal(t.path, "/a/b?c=d");
    assert_int_equal(target_parse("HTTP://[::1]:9", &t, &why), 0);
    assert_string_equal(t.path, "/");
    assert_false(t.has_path);
    assert_int_equal(target_parse("http://example.org/x", &t, &why), 0);
    assert_string_equal(t.port, "80");
    assert_int_equal(target_parse("http://h:1?q", &t, &why), 0);
    assert_string_equal(t.path, "/?q");
    const char *bad[] = {"127.0.0.1",          "127.0.0.1:0",      "127.0.0.1:65536",
                         "::1:80",             "[::1:80",          ":80",
                         "h:1k",               "https://h:0/",     "ftp://h:1/",
                         "http://:80/",        "http://u@h:1/",    "http://h:1/a b",
                         "http://h:x/",        "h:80:81",          "http://h:1/\x01"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (target_parse(bad[i], &t, &why) == 0)
            fail_msg("'%s' accepted", bad[i]);
    assert_int_equal(target_parse("https://h/x", &t, &why), 0); /* TLS, port 443 */
    assert_true(t.url && t.tls);
    assert_string_equal(t.port, "443");
    assert_string_equal(t.path, "/x");
    assert_int_equal(target_parse("http://h/", &t, &why), 0);
    assert_false(t.tls);
    assert_int_equal(target_parse("ftps://h/", &t, &why), -1);
    assert_non_null(strstr(why, "https://"));
}

static int parse(struct stress_opts *o, const char *const *args)
{
    char *argv[32];
    int n = 0;
    argv[n++] = "mux-stress";
    for (; *args; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    return options_parse(o, n, argv);
}

static void test_options(void **state)
{
    struct stress_opts o;
    const char *url[] = {"-d", "2m", "-n", "1k", "http://127.0.0.1:81/x", NULL};
    assert_int_equal(parse(&o, url), 0);
    assert_true(o.proto == PROTO_HTTP && o.duration == 120 && o.requests == 1000);
    assert_string_equal(o.path, "/x");
    assert_string_equal(o.authority, "127.0.0.1:81");
    const char *path[] = {"--path", "/y", "http://127.0.0.1:81", NULL};
    assert_int_equal(parse(&o, path), 0);
    assert_string_equal(o.path, "/y");
    const char *churn[] = {"--reconnect", "1", "--allow-errors", "-c", "1k", "h:1", NULL};
    assert_int_equal(parse(&o, churn), 0);
    assert_true(o.reconnect == 1 && o.allow_errors && o.conns == 1000);
    assert_true(options_drain_grace(&o) == 1.0);
    const char *grace[] = {"--timeout", "200ms", "h:1", NULL};
    assert_int_equal(parse(&o, grace), 0);
    assert_true(options_drain_grace(&o) == 0.2);
    const char *bad[][6] = {
        {"--proto", "echo", "http://h:1/", NULL},
        {"--path", "/a", "http://h:1/b", NULL},
        {"--reconnect", "0", "h:1", NULL},
        {"--expect-file", "/etc/hostname", "h:1", NULL},
        {"--plot", "x.pdf", "h:1", NULL},
        {"--json", "/nonexistent/x", "h:1", NULL},
        {"--csv", "/", "h:1", NULL},
        {"--json", "a.json", "--csv", "a.json", "h:1", NULL},
        {"-d", "5 s", "h:1", NULL},
        {"-n", "1.5", "h:1", NULL},
        {"--path", "/a#b", "h:1", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parse(&o, bad[i]) != -1)
            fail_msg("case %zu accepted", i);
}

/* --source: one address or a range, IPv4 only, at most 65536 addresses;
 * connection ids map onto the addresses round-robin. */
static void test_source(void **state)
{
    struct source_range r;
    const char *why;
    char name[32];
    assert_int_equal(source_parse("127.0.0.2", &r, &why), 0);
    assert_true(r.first == 0x7f000002 && r.count == 1);
    assert_int_equal(source_parse("127.0.0.2-127.0.0.41", &r, &why), 0);
    assert_true(r.first == 0x7f000002 && r.count == 40);
    assert_string_equal(source_name(&r, 39, name, sizeof(name)), "127.0.0.41");
    for (uint32_t id = 0; id < 100; id++)
        assert_true(source_index(&r, id) == id % 40);
    assert_int_equal(source_parse("127.0.255.255-127.1.0.1", &r, &why), 0); /* crosses octets */
    assert_true(r.count == 3);
    assert_string_equal(source_name(&r, 1, name, sizeof(name)), "127.1.0.0");
    assert_int_equal(source_parse("10.0.0.0-10.0.255.255", &r, &why), 0); /* exactly 65536 */
    assert_true(r.count == SOURCE_MAX);
    assert_int_equal(source_parse("127.0.0.7-127.0.0.7", &r, &why), 0);
    assert_true(r.count == 1);
    const char *bad[] = {"",           "x",           "127.0.0.1-",       "-127.0.0.1",
                         "127.0.0.5-127.0.0.4",       "10.0.0.0-10.1.0.0", "::1",
                         "[::1]",      "fe80::1-fe80::2", "127.0.0.1-127.0.0.2-127.0.0.3",
                         "127.0.0.256", "127.0.0",    "127.0.0.1 ",       " 127.0.0.1",
                         "0x7f.0.0.1", "127.0.0.1/8", "localhost"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        if (source_parse(bad[i], &r, &why) == 0)
            fail_msg("'%s' accepted", bad[i]);
        assert_non_null(why);
    }
    assert_int_equal(source_parse("127.0.0.9-127.0.0.1", &r, &why), -1);
    assert_non_null(strstr(why, "reversed"));
    assert_int_equal(source_parse("0.0.0.0-255.255.255.255", &r, &why), -1);
    assert_non_null(strstr(why, "65536"));
    assert_int_equal(source_parse("::1", &r, &why), -1);
    assert_non_null(strstr(why, "IPv6"));

    struct stress_opts o;
    const char *good[] = {"--source", "127.0.0.2-127.0.0.4", "127.0.0.1:7000", NULL};
    assert_int_equal(parse(&o, good), 0);
    assert_true(o.source.first == 0x7f000002 && o.source.count == 3);
    const char *none[] = {"127.0.0.1:7000", NULL};
    assert_int_equal(parse(&o, none), 0);
    assert_true(o.source.count == 0);
    const char *v6[] = {"--source", "127.0.0.2", "[::1]:7000", NULL};
    assert_int_equal(parse(&o, v6), -1);
    const char *v6url[] = {"--source", "127.0.0.2", "http://[::1]:7000/", NULL};
    assert_int_equal(parse(&o, v6url), -1);
    const char *rev[] = {"--source", "127.0.0.4-127.0.0.2", "127.0.0.1:7000", NULL};
    assert_int_equal(parse(&o, rev), -1);
}

/* Descriptor and port limits: what is done, and what the message names. */
static void test_limits(void **state)
{
    char msg[640];
    assert_int_equal(limits_fd_plan(100, 50, 200, 1 << 20), FD_FITS);
    assert_int_equal(limits_fd_plan(200, 200, 200, 1 << 20), FD_FITS);
    assert_int_equal(limits_fd_plan(201, 200, 200, 1 << 20), FD_RAISE);
    assert_int_equal(limits_fd_plan(1 << 20, 20000, 20000, 1 << 20), FD_RAISE);
    assert_int_equal(limits_fd_plan((1 << 20) + 1, 20000, 20000, 1 << 20), FD_NR_OPEN);
    assert_int_equal(limits_fd_plan((1 << 20) + 1, 1 << 21, 1 << 21, 1 << 20), FD_FITS);
    limits_fd_message(msg, sizeof(msg), FD_RAISE, 30001, 30035, 20000, 1 << 20);
    assert_non_null(strstr(msg, "30035 file descriptors"));
    assert_non_null(strstr(msg, "hard limit is 20000 (ulimit -n"));
    assert_non_null(strstr(msg, "ulimit -Hn 30035"));
    limits_fd_message(msg, sizeof(msg), FD_NR_OPEN, 2000000, 2000034, 20000, 1048576);
    assert_non_null(strstr(msg, "fs.nr_open is 1048576"));
    assert_non_null(strstr(msg, "sysctl -w fs.nr_open=2000034"));

    assert_int_equal(limits_port_check(28232, 1, false, 32768, 60999, true, msg, sizeof(msg)), 0);
    assert_int_equal(limits_port_check(28233, 1, false, 32768, 60999, true, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "ip_local_port_range (32768-60999) has 28232"));
    assert_non_null(strstr(msg, "--source 127.0.0.2-127.0.0.3"));
    assert_int_equal(limits_port_check(1000000, 1, false, 32768, 60999, true, msg, sizeof(msg)),
                     -1);
    assert_non_null(strstr(msg, "--source 127.0.0.2-127.0.0.37")); /* 36 addresses */
    assert_int_equal(limits_port_check(1000000, 36, true, 32768, 60999, true, msg, sizeof(msg)),
                     0);
    assert_int_equal(limits_port_check(1000000, 35, true, 32768, 60999, true, msg, sizeof(msg)),
                     -1);
    assert_non_null(strstr(msg, "each --source address"));
    assert_int_equal(limits_port_check(100000, 1, false, 1024, 65535, false, msg, sizeof(msg)),
                     -1);
    assert_non_null(strstr(msg, "with 2 local addresses"));
}

/* Output paths are checked without creating anything. */
static void test_outputs_not_created(void **state)
{
    char dir[] = "/tmp/stress_cli_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char json[64], png[64];
    snprintf(json, sizeof(json), "%s/r.json", dir);
    snprintf(png, sizeof(png), "%s/r.SVG", dir);
    struct stress_opts o;
    const char *args[] = {"--json", json, "--plot", png, "h:1", NULL};
    assert_int_equal(parse(&o, args), 0);
    assert_int_equal(access(json, F_OK), -1);
    assert_int_equal(access(png, F_OK), -1);
    assert_int_equal(rmdir(dir), 0);
}

/* The live line never passes 79 columns: extreme values everywhere. */
static void test_progress_width(void **state)
{
    static struct totals now, prev;
    struct stress_opts o;
    const char *args[] = {"-c", "1000000", "--idle", "1000000", "h:1", NULL};
    assert_int_equal(parse(&o, args), 0);
    const uint64_t big[] = {0, 9, 9999, 10000, 99949, 99999, 999499, 999999, 1000000,
                            123456789, 999999999999ull, UINT64_MAX / 4};
    char line[256];
    size_t longest = 0;
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
        for (int churn = 0; churn < 2; churn++) {
            totals_init(&now);
            totals_init(&prev);
            now.requests = now.bytes_rx = now.connects = big[i];
            now.verify_failures = now.lost = now.resets = big[i] / 3;
            now.conns_up = big[i] % 2000001;
            hist_record(&now.hist, big[i] < (1ull << 39) ? big[i] : (1ull << 39));
            o.reconnect = (uint64_t)churn;
            for (int ramp = 0; ramp < 2; ramp++) {
                now.ramping = ramp;
                now.idle_open = now.idle_connects = big[i] % 1000001;
                report_progress_line(line, sizeof(line), &o, 1e7 + 0.05 * (double)i, 0.5, &now,
                                     &prev, false);
                longest = strlen(line) > longest ? strlen(line) : longest;
                if (strlen(line) > REPORT_LINE_MAX)
                    fail_msg("%zu columns: %s", strlen(line), line);
            }
        }
    fprintf(stderr, "longest progress line: %zu columns\n", longest);
    now.ramping = false;
    report_progress_line(line, sizeof(line), &o, 1.0, 1.0, &now, &prev, true);
    assert_non_null(strstr(line, "warm-up"));
    /* while the idle connections open, their count in full */
    totals_init(&now);
    totals_init(&prev);
    now.ramping = true;
    now.idle_open = now.idle_connects = 340123;
    report_progress_line(line, sizeof(line), &o, 7.0, 1.0, &now, &prev, false);
    assert_non_null(strstr(line, "idle 340123/1000000"));
    assert_non_null(strstr(line, "conn/s 340k"));
    /* then with the busy ones in the connection count */
    o.reconnect = 0;
    now.ramping = false;
    now.conns_up = 1000000;
    now.idle_open = 1000000;
    report_progress_line(line, sizeof(line), &o, 8.0, 1.0, &now, &prev, false);
    assert_non_null(strstr(line, "conns 2.0M/2.0M"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),       cmocka_unit_test(test_counts),
        cmocka_unit_test(test_targets),         cmocka_unit_test(test_options),
        cmocka_unit_test(test_outputs_not_created), cmocka_unit_test(test_progress_width),
        cmocka_unit_test(test_source),          cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
