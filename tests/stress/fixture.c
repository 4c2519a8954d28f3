/* fixture.c - see fixture.h. */
#include "fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cmocka.h>

char fx_out[65536];
char fx_tmpdir[64];
static char json_path[128];

bool fx_valgrind(void)
{
    return th_under_valgrind();
}

const char *fx_count(const char *n, const char *small)
{
    return fx_valgrind() ? small : n;
}

const char *fx_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", fx_tmpdir, name);
    return buf;
}

static double json_num(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(json, pat);
    return p ? strtod(p + strlen(pat), NULL) : -1;
}

static void read_json(struct res *r)
{
    char buf[8192] = "";
    FILE *f = fopen(json_path, "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    r->requests = json_num(buf, "requests");
    r->verify_failures = json_num(buf, "verify_failures");
    r->timeouts = json_num(buf, "timeouts");
    r->connect_errors = json_num(buf, "connect_errors");
    r->resets = json_num(buf, "resets");
    r->rps = json_num(buf, "requests_per_sec");
    r->p99 = json_num(buf, "p99");
    r->lost = json_num(buf, "lost_requests");
    r->unanswered = json_num(buf, "unanswered_at_end");
    r->closed = json_num(buf, "closed_by_server");
    r->connects = json_num(buf, "connects");
    r->conns_per_sec = json_num(buf, "connections_per_sec");
    r->duration = json_num(buf, "duration_s");
    r->idle_open = json_num(buf, "idle_open");
    r->idle_checked = json_num(buf, "idle_checked");
    r->idle_verified = json_num(buf, "idle_verified");
    r->idle_lost = json_num(buf, "idle_lost");
    r->idle_unverified = json_num(buf, "idle_unverified");
    r->idle_bytes = json_num(buf, "idle_bytes_per_conn");
    r->idle_connect_s = json_num(buf, "idle_connect_s");
    r->passed = strstr(buf, "\"passed\":true") != NULL;
}

static struct res run_argv(char **argv);

struct res fx_stress(const char *target, const char *const *args)
{
    char *argv[FX_MAX_ARGS];
    int n = 0;
    argv[n++] = (char *)STRESS_BIN;
    argv[n++] = "-q";
    argv[n++] = "--json";
    argv[n++] = json_path;
    for (; *args && n < FX_MAX_ARGS - 2; args++)
        argv[n++] = (char *)*args;
    if (target)
        argv[n++] = (char *)target;
    argv[n] = NULL;
    return run_argv(argv);
}

struct res fx_stress_via(const char *prog, const char *target, const char *const *pre)
{
    char *argv[FX_MAX_ARGS];
    int n = 0;
    argv[n++] = (char *)prog;
    for (; *pre && n < FX_MAX_ARGS - 5; pre++)
        argv[n++] = (char *)*pre;
    argv[n++] = "-q";
    argv[n++] = "--json";
    argv[n++] = json_path;
    if (target)
        argv[n++] = (char *)target;
    argv[n] = NULL;
    return run_argv(argv);
}

static struct res run_argv(char **argv)
{
    unlink(json_path);
    struct res r;
    memset(&r, 0, sizeof(r));
    long long t0 = th_now_ms();
    r.rc = th_run_capture(argv, fx_out, sizeof(fx_out), 30000);
    r.elapsed_ms = th_now_ms() - t0;
    read_json(&r);
    fprintf(stderr, "--- mux-stress exit %d in %lld ms, requests %.0f, verify_failures %.0f\n%s",
            r.rc, r.elapsed_ms, r.requests, r.verify_failures, fx_out);
    return r;
}

void fx_start(struct th_child *c, const char *bin, const char *listen, const char *const *extra,
              char *target, size_t size)
{
    char *argv[FX_MAX_ARGS];
    int n = 0;
    argv[n++] = (char *)bin;
    argv[n++] = "-l";
    argv[n++] = (char *)listen;
    argv[n++] = "-w";
    argv[n++] = "2";
    for (; extra && *extra && n < FX_MAX_ARGS - 1; extra++)
        argv[n++] = (char *)*extra;
    argv[n] = NULL;
    assert_int_equal(th_child_start(c, argv, 10000), 0);
    if (strchr(c->host, ':'))
        snprintf(target, size, "[%s]:%d", c->host, c->port);
    else
        snprintf(target, size, "%s:%d", c->host, c->port);
}

void fx_stop(struct th_child *c)
{
    assert_int_equal(th_child_stop(c, SIGTERM, 10000), 0);
}

struct res fx_broken_run(const char *const *srv, const char *const *args, int want_rc)
{
    struct th_child c;
    char target[96];
    fx_start(&c, BROKEN_BIN, "127.0.0.1:0", srv, target, sizeof(target));
    struct res r = fx_stress(target, args);
    fx_stop(&c);
    assert_int_equal(r.rc, want_rc);
    return r;
}

int fx_group_setup(void **state)
{
    (void)state;
    snprintf(fx_tmpdir, sizeof(fx_tmpdir), "/tmp/stress_it_XXXXXX");
    if (!mkdtemp(fx_tmpdir))
        return -1;
    fx_path(json_path, sizeof(json_path), "run.json");
    return 0;
}

/* Removes every file the tests left in the directory, then the directory. */
int fx_group_teardown(void **state)
{
    (void)state;
    DIR *d = opendir(fx_tmpdir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof(p), "%s/%s", fx_tmpdir, e->d_name);
            unlink(p);
        }
    if (d)
        closedir(d);
    rmdir(fx_tmpdir);
    return 0;
}
