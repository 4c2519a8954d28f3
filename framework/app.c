/* app.c - mux_app_main(): the command line every mux program shares.
 * Defaults < config file (-c) < flags; the ready line once listening; exit
 * codes 0 (graceful stop), 1 (runtime failure), 2 (usage or config); -t
 * checks the configuration and exits; SIGHUP re-reads it (flags still win). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "mux/mux.h"
#include "options.h"

#define MAX_APP_FLAGS 16
#define MAX_SETTINGS 64

/* A flag's value, applied after the config file was loaded. */
struct setting {
    const struct mux_config_key *key;
    bool app_key; /* into the app's options, else into struct mux_options */
    const char *value;
    const char *source;
};

struct cli {
    const char *config_path;
    struct setting settings[MAX_SETTINGS];
    unsigned nsettings;
    const char *listen[MUX_MAX_LISTEN];
    unsigned nlisten;
    bool test_config;
};

/* The example config's installed path (framework/CMakeLists.txt); a build
 * without it names the copy in the source tree. */
#ifndef MUX_EXAMPLE_CONF
#define MUX_EXAMPLE_CONF "apps/mux.conf"
#endif

enum {
    OPT_POLLER = 1000, OPT_EDGE, OPT_LOG_LEVEL, OPT_REUSEPORT, OPT_METRICS, OPT_LOG_FILE,
    OPT_TLS_CERT, OPT_TLS_KEY, OPT_APP_BASE
};
#define COMMON_FLAGS 14 /* entries of longopts before the app's own */

static void usage(FILE *f, const struct mux_app *app)
{
    fprintf(f,
            "usage: %s [options]\n%s%s"
            "\n"
            "  -c, --config FILE      libconfig file (see " MUX_EXAMPLE_CONF " for every key)\n"
            "  -l, --listen HOST:PORT listen address, repeatable (\"[::1]:7000\"; port 0 = any)\n"
            "  -w, --workers N        worker threads (0 = one per CPU)\n"
            "      --poller NAME      epoll | poll | select | uring\n"
            "      --edge             edge-triggered epoll\n"
            "      --log-level LEVEL  error | warn | info | debug\n"
            "      --log-file FILE    log to FILE instead of stderr (reopened on SIGUSR1)\n"
            "      --metrics HOST:PORT  serve Prometheus metrics at http://HOST:PORT/metrics\n"
            "      --reuseport        SO_REUSEPORT: several processes share the port\n"
            "      --tls-cert FILE    TLS on every listener: PEM certificate chain\n"
            "      --tls-key FILE     ... and its PEM private key\n"
            "  -t, --test-config      check the configuration and exit (0 valid, 2 not)\n",
            app->name, app->summary ? app->summary : "", app->summary ? "\n" : "");
    for (const struct mux_app_flag *f2 = app->flags; f2 && f2->long_name; f2++) {
        char left[64];
        if (f2->short_name)
            snprintf(left, sizeof(left), "-%c, --%s %s", f2->short_name, f2->long_name,
                     f2->arg_name ? f2->arg_name : "VALUE");
        else
            snprintf(left, sizeof(left), "    --%s %s", f2->long_name,
                     f2->arg_name ? f2->arg_name : "VALUE");
        const struct mux_config_key *k = mux_config_find(app->keys, NULL, f2->key);
        fprintf(f, "  %-22s %s (%s)\n", left, k && k->doc ? k->doc : "", f2->key);
    }
    fprintf(f, "  -h, --help             this text\n"
               "  -V, --version          version\n");
}

static int add_setting(struct cli *cli, const struct mux_config_key *key, bool app_key,
                       const char *value, const char *source)
{
    if (!key || cli->nsettings == MAX_SETTINGS)
        return -1;
    cli->settings[cli->nsettings++] = (struct setting){key, app_key, value, source};
    return 0;
}

static int add_server_setting(struct cli *cli, const char *key, const char *value,
                              const char *source)
{
    return add_setting(cli, mux_config_find(mux_server_keys, "server", key), false, value, source);
}

static int parse_app_flag(struct cli *cli, const struct mux_app *app, int idx, const char *arg)
{
    const struct mux_app_flag *f = &app->flags[idx];
    return add_setting(cli, mux_config_find(app->keys, NULL, f->key), true, arg, f->long_name);
}

/* Returns -1 to go on, or an exit code. */
static int parse_args(int argc, char **argv, const struct mux_app *app, struct cli *cli)
{
    struct option longopts[COMMON_FLAGS + MAX_APP_FLAGS + 1] = {
        {"config", required_argument, NULL, 'c'}, {"listen", required_argument, NULL, 'l'},
        {"workers", required_argument, NULL, 'w'}, {"poller", required_argument, NULL, OPT_POLLER},
        {"edge", no_argument, NULL, OPT_EDGE},   {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"help", no_argument, NULL, 'h'},        {"version", no_argument, NULL, 'V'},
        {"test-config", no_argument, NULL, 't'}, {"reuseport", no_argument, NULL, OPT_REUSEPORT},
        {"metrics", required_argument, NULL, OPT_METRICS},
        {"log-file", required_argument, NULL, OPT_LOG_FILE},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    };
    char optstring[64 + 2 * MAX_APP_FLAGS] = "c:l:w:hVt";
    int nflags = 0;
    for (const struct mux_app_flag *f = app->flags; f && f->long_name && nflags < MAX_APP_FLAGS;
         f++, nflags++) {
        longopts[COMMON_FLAGS + nflags] = (struct option){f->long_name, required_argument, NULL,
                                                          OPT_APP_BASE + nflags};
        if (f->short_name) {
            size_t n = strlen(optstring);
            optstring[n] = (char)f->short_name;
            optstring[n + 1] = ':';
            optstring[n + 2] = '\0';
        }
    }
    int c;
    while ((c = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'c': cli->config_path = optarg; break;
        case 'l':
            if (cli->nlisten == MUX_MAX_LISTEN)
                bad = 1;
            else
                cli->listen[cli->nlisten++] = optarg;
            break;
        case 'w': bad = add_server_setting(cli, "workers", optarg, "-w"); break;
        case OPT_POLLER: bad = add_server_setting(cli, "poller", optarg, "--poller"); break;
        case OPT_EDGE: bad = add_server_setting(cli, "edge_triggered", "true", "--edge"); break;
        case OPT_LOG_LEVEL: bad = add_server_setting(cli, "log_level", optarg, "--log-level"); break;
        case OPT_REUSEPORT: bad = add_server_setting(cli, "reuseport", "true", "--reuseport"); break;
        case OPT_METRICS: bad = add_server_setting(cli, "metrics_listen", optarg, "--metrics"); break;
        case OPT_LOG_FILE: bad = add_server_setting(cli, "log_file", optarg, "--log-file"); break;
        case OPT_TLS_CERT: bad = add_server_setting(cli, "tls_cert", optarg, "--tls-cert"); break;
        case OPT_TLS_KEY: bad = add_server_setting(cli, "tls_key", optarg, "--tls-key"); break;
        case 't': cli->test_config = true; break;
        case 'h': usage(stdout, app); return 0;
        case 'V': printf("%s (mux %s)\n", app->name, mux_version()); return 0;
        default:
            if (c >= OPT_APP_BASE && c < OPT_APP_BASE + nflags) {
                bad = parse_app_flag(cli, app, c - OPT_APP_BASE, optarg);
                break;
            }
            /* a short app flag */
            for (int i = 0; i < nflags; i++)
                if (app->flags[i].short_name == c) {
                    bad = parse_app_flag(cli, app, i, optarg);
                    goto next;
                }
            usage(stderr, app);
            return 2;
        }
    next:
        if (bad) {
            fprintf(stderr, "%s: too many or unusable options\n", app->name);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument \"%s\"\n", app->name, argv[optind]);
        usage(stderr, app);
        return 2;
    }
    return -1;
}

static int apply_cli(const struct cli *cli, struct mux_options *o, void *app_opts,
                     struct mux_error *err)
{
    for (unsigned i = 0; i < cli->nsettings; i++) {
        const struct setting *s = &cli->settings[i];
        if (mux_config_set(s->key, s->app_key ? app_opts : (void *)o, s->value, s->source, err) < 0)
            return -1;
    }
    if (cli->nlisten) {
        const struct mux_config_key *k = mux_config_find(mux_server_keys, "server", "listen");
        for (unsigned i = 0; i < cli->nlisten; i++) {
            struct mux_options tmp = *o;
            if (mux_config_set(k, &tmp, cli->listen[i], "-l", err) < 0)
                return -1;
            snprintf(o->listen[i], MUX_ADDR_MAX, "%s", cli->listen[i]);
        }
        o->nlisten = cli->nlisten;
    }
    return 0;
}

/* defaults < file < flags, into *o and app_opts. 0, or -1 with *err. */
static int configure(const struct cli *cli, const struct mux_app *app, struct mux_options *o,
                     void *app_opts, struct mux_error *err)
{
    if (app->tls_alpn)
        snprintf(o->tls_alpn, sizeof(o->tls_alpn), "%s", app->tls_alpn);
    if (cli->config_path && mux_config_load(o, cli->config_path, app->keys, app_opts, err) < 0)
        return -1;
    return apply_cli(cli, o, app_opts, err);
}

/* ---- SIGHUP: the same configuration steps again ---- */

/* Bytes of the app's options struct that its key rows reach. */
static size_t app_opts_span(const struct mux_config_key *keys)
{
    size_t end = 0;
    for (const struct mux_config_key *k = keys; k && k->name; k++)
        if (k->offset + mux__key_size(k) > end)
            end = k->offset + mux__key_size(k);
    return end;
}

struct reload_ctx {
    const struct cli *cli;
    const struct mux_app *app;
    void *app_ptr;
};

static int app_reload(void *arg, struct mux_options *o, struct mux_error *err)
{
    struct reload_ctx *r = arg;
    const struct mux_app *app = r->app;
    size_t span = app_opts_span(app->keys);
    char *scratch = NULL;
    if (span) { /* the app's keys load into a copy: they cannot change live */
        scratch = malloc(span);
        if (!scratch)
            return -ENOMEM;
        memcpy(scratch, app->opts, span);
    }
    mux_options_init(o);
    int rc = configure(r->cli, app, o, scratch, err);
    if (rc == 0 && span)
        for (const struct mux_config_key *k = app->keys; k->name; k++)
            if (memcmp(scratch + k->offset, (char *)app->opts + k->offset, mux__key_size(k)) != 0)
                mux_log(MUX_LOG_WARN, "reload: %s.%s changed; it takes a restart (kept)",
                        k->group, k->name);
    free(scratch);
    return rc < 0 ? -EINVAL : 0;
}

static void app_reopen_logs(void *arg)
{
    struct reload_ctx *r = arg;
    if (r->app->reopen_logs)
        r->app->reopen_logs(r->app_ptr);
}

static void print_ready_line(const struct mux_server *s, const struct mux_options *o)
{
    char first[MUX_ADDR_MAX], also[MUX_MAX_LISTEN * (MUX_ADDR_MAX + 2)] = "";
    mux_server_local_addr(s, 0, first, sizeof(first));
    for (unsigned i = 1; i < mux_server_listen_count(s); i++) {
        char a[MUX_ADDR_MAX];
        mux_server_local_addr(s, i, a, sizeof(a));
        strcat(also, i == 1 ? "also " : ", ");
        strcat(also, a);
        if (i + 1 == mux_server_listen_count(s))
            strcat(also, "; ");
    }
    char metrics[MUX_ADDR_MAX + 16] = "";
    char maddr[MUX_ADDR_MAX];
    if (mux_server_metrics_addr(s, maddr, sizeof(maddr)) == 0)
        snprintf(metrics, sizeof(metrics), ", metrics=%s", maddr);
    printf("listening on %s (%sworkers=%u, poller=%s%s%s%s)\n", first, also, mux_server_workers(s),
           mux_server_poller(s), o->edge_triggered ? ", edge-triggered" : "", metrics,
           o->tls_cert[0] ? ", tls" : "");
    fflush(stdout);
}

static int fail_config(const struct mux_app *app, const struct mux_error *err)
{
    char buf[768];
    fprintf(stderr, "%s: %s\n", app->name, mux_error_str(err, buf, sizeof(buf)));
    return 2;
}

MUX_API int mux_app_main(int argc, char **argv, const struct mux_app *app)
{
    struct mux_options o;
    struct mux_error err = {0};
    struct cli cli = {0};
    mux_options_init(&o);
    mux_log_setup(o.log_level, app->name);

    int rc = parse_args(argc, argv, app, &cli);
    if (rc >= 0)
        return rc;
    if (configure(&cli, app, &o, app->opts, &err) < 0)
        return fail_config(app, &err);
    mux_log_setup(o.log_level, app->name);

    void *app_ptr = NULL;
    if (app->setup && app->setup(app->opts, &app_ptr, &err) < 0)
        return fail_config(app, &err);
    struct mux_server *s = mux_server_new(&o, app->handler, app_ptr, &err);
    if (!s) {
        rc = fail_config(app, &err);
        goto out;
    }
    if (cli.test_config) { /* everything checked; nothing bound */
        printf("%s: configuration %s is valid\n", app->name,
               cli.config_path ? cli.config_path : "(built-in defaults and flags)");
        rc = 0;
        goto out;
    }
    if (o.log_file[0] && mux_log_set_file(o.log_file) < 0) {
        fprintf(stderr, "%s: cannot open the log file %s\n", app->name, o.log_file);
        rc = 1;
        goto out;
    }
    struct reload_ctx ctx = {.cli = &cli, .app = app, .app_ptr = app_ptr};
    mux_server_set_control(s, &(struct mux_control){.reload = app_reload,
                                                     .reopen_logs = app_reopen_logs}, &ctx);
    if (mux_server_listen(s, &err) < 0) {
        char buf[768];
        fprintf(stderr, "%s: %s\n", app->name, mux_error_str(&err, buf, sizeof(buf)));
        rc = 1;
        goto out;
    }
    print_ready_line(s, &o);
    rc = mux_server_run(s) < 0 ? 1 : 0;
out:
    mux_server_free(s);
    if (app->teardown)
        app->teardown(app_ptr);
    return rc;
}
