/* mux/app.h - the common command line every mux program shares, so a sample
 * app is a handler plus a few lines.
 *
 *   -c FILE  -l HOST:PORT (repeatable)  -w N  --poller NAME  --edge
 *   --log-level LEVEL  --log-file FILE  --metrics HOST:PORT  --reuseport
 *   -t/--test-config  -h/--help  -V/--version   + the app's own flags
 *
 * Signals: SIGINT/SIGTERM graceful stop (a second one ends the grace
 * period); SIGHUP re-reads the config file and re-applies the flags (keys
 * that cannot change live are logged and kept); SIGUSR1 reopens log files.
 *
 * Precedence: built-in defaults < config file < flags. Exit codes: 0 after a
 * graceful shutdown, 2 for usage or config errors, 1 for runtime failures.
 * Once listening it prints the ready line to stdout and flushes it:
 *   listening on 127.0.0.1:40123 (workers=2, poller=epoll)
 */
#ifndef MUX_APP_H
#define MUX_APP_H

#include "config.h"
#include "conn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An app flag sets one of the app's config keys ("httpd.root") from its
 * argument, with the same validation as the config file. */
struct mux_app_flag {
    int short_name;        /* e.g. 'r', or 0 */
    const char *long_name; /* e.g. "root" */
    const char *key;       /* "group.name" in app keys */
    const char *arg_name;  /* for --help: "DIR" */
};

struct mux_app {
    const char *name;                   /* "mux-echo" */
    const char *summary;                /* one line for --help */
    const struct mux_handler *handler;
    const struct mux_config_key *keys;  /* the app's config rows, or NULL */
    void *opts;                         /* what those rows point into */
    const struct mux_app_flag *flags;   /* terminated by long_name == NULL, or NULL */

    /* Optional: after config and flags are applied, before binding. Returns
     * the server-wide app pointer through *app (read-only once running), or
     * a negative errno with *err filled (exit 2). */
    int (*setup)(void *opts, void **app, struct mux_error *err);
    /* Optional: after the server stopped. */
    void (*teardown)(void *app);
    /* Optional: SIGUSR1, on the main thread: reopen the app's own log files
     * (an access log); the framework's log file is reopened before. */
    void (*reopen_logs)(void *app);
    /* Optional: the ALPN protocols offered when TLS is on (--tls-cert),
     * comma-separated in order of preference, e.g. "http/1.1"; copied into
     * mux_options.tls_alpn. NULL = no ALPN. */
    const char *tls_alpn;
};

/* Main thread. Parses argv, loads config, runs the server; returns the exit
 * code for main(). */
int mux_app_main(int argc, char **argv, const struct mux_app *app);

#ifdef __cplusplus
}
#endif
#endif
