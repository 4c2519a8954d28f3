/* mux-httpd: the HTTP/1.1 static file server (design.md section 6).
 *
 * This file is the program: the `httpd` config group, the -r/--root flag,
 * setup (check and open the document root) and teardown. The request
 * pipeline is the handler in httpd_conn.c; the protocol pieces (parser,
 * paths, ranges, dates, response heads, MIME) are mux_httpd_core. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mux/mux.h>

#include "http_path.h"
#include "httpd_log.h"
#include "httpd.h"

static struct httpd_opts opts = {
    .root = ".",
    .header_timeout_ms = 10000,
    .keepalive_timeout_ms = 75000,
    .access_log = false,
    .symlinks = true,
    .dir_redirect = true,
    .max_body = 1u << 20,
};

#define KEY(n, t, field) .group = "httpd", .name = n, .type = t, \
                         .offset = offsetof(struct httpd_opts, field)

static const struct mux_config_key httpd_keys[] = {
    {KEY("root", MUX_CFG_STRING, root), .size = sizeof(opts.root),
     .doc = "document root directory (must exist)"},
    {KEY("header_timeout_ms", MUX_CFG_UINT, header_timeout_ms), .min = 0, .max = 3600000,
     .doc = "a request head must arrive completely within this (slowloris); 0 = no limit"},
    {KEY("keepalive_timeout_ms", MUX_CFG_UINT, keepalive_timeout_ms), .min = 0, .max = 3600000,
     .doc = "close a connection idle this long between requests; 0 = never"},
    {KEY("access_log", MUX_CFG_BOOL, access_log),
     .doc = "one line per request (common log format), to stderr or access_log_file"},
    {KEY("access_log_file", MUX_CFG_STRING, access_log_file), .size = sizeof(opts.access_log_file),
     .doc = "write the access log to this file (and turn it on); SIGUSR1 reopens it"},
    {KEY("symlinks", MUX_CFG_BOOL, symlinks),
     .doc = "follow relative symlinks that stay inside the root (others are always 403)"},
    {KEY("dir_redirect", MUX_CFG_BOOL, dir_redirect),
     .doc = "answer /dir with 301 to /dir/ (else serve its index.html directly)"},
    {KEY("max_body", MUX_CFG_SIZE, max_body), .min = 0, .max = 1LL << 30,
     .doc = "largest request body read and discarded; larger is 413"},
    {0},
};

static const struct mux_app_flag httpd_flags[] = {
    {.short_name = 'r', .long_name = "root", .key = "httpd.root", .arg_name = "DIR"},
    {.long_name = "access-log", .key = "httpd.access_log_file", .arg_name = "FILE"},
    {0},
};

/* "httpd.root: DIR: reason" (a very long DIR is cut to fit the message). */
static int setup_fail(struct mux_error *err, int rc, const char *root)
{
    snprintf(err->key, sizeof(err->key), "httpd.root");
    snprintf(err->message, sizeof(err->message), "%.180s: %.60s", root, strerror(-rc));
    return rc;
}

static int httpd_setup(void *o, void **app_out, struct mux_error *err)
{
    const struct httpd_opts *in = o;
    struct stat st;
    if (stat(in->root, &st) < 0)
        return setup_fail(err, -errno, in->root);
    if (!S_ISDIR(st.st_mode))
        return setup_fail(err, -ENOTDIR, in->root);
    if (in->access_log_file[0]) {
        int lrc = httpd_log_open(in->access_log_file);
        if (lrc < 0) {
            snprintf(err->key, sizeof(err->key), "httpd.access_log_file");
            snprintf(err->message, sizeof(err->message), "%.180s: %.60s", in->access_log_file,
                     strerror(-lrc));
            return lrc;
        }
    }
    struct httpd_app *app = calloc(1, sizeof(*app));
    if (app == NULL)
        return setup_fail(err, -ENOMEM, in->root);
    app->opts = *in;
    app->opts.access_log = in->access_log || in->access_log_file[0];
    unsigned flags = (in->symlinks ? 0 : HTTP_PATH_NO_SYMLINKS) |
                     (in->dir_redirect ? HTTP_PATH_DIR_REDIRECT : 0);
    int rc = http_root_open(&app->root, in->root, flags);
    if (rc < 0) {
        free(app);
        return setup_fail(err, rc, in->root);
    }
    *app_out = app; /* read-only from here on: every worker reads it */
    return 0;
}

/* SIGUSR1: the framework reopened its own log; now the access log. */
static void httpd_reopen_logs(void *p)
{
    (void)p;
    int rc = httpd_log_reopen();
    if (rc < 0)
        mux_log(MUX_LOG_ERROR, "cannot reopen the access log: %s", strerror(-rc));
}

static void httpd_teardown(void *p)
{
    struct httpd_app *app = p;
    if (app == NULL)
        return;
    http_root_close(&app->root);
    free(app);
}

int main(int argc, char **argv)
{
    const struct mux_app app = {
        .name = "mux-httpd",
        .summary = "HTTP/1.1 static file server: GET and HEAD for the files under a root\n"
                   "directory (-r DIR), keep-alive, pipelining, ranges, conditional requests.",
        .handler = &httpd_handler,
        .keys = httpd_keys,
        .opts = &opts,
        .flags = httpd_flags,
        .setup = httpd_setup,
        .teardown = httpd_teardown,
        .reopen_logs = httpd_reopen_logs,
#ifdef MUX_HTTPD_H2
        .tls_alpn = "h2,http/1.1", /* h2 preferred; its preface then switches the connection */
#else
        .tls_alpn = "http/1.1", /* HTTP/1.1 over TLS; clients offering only h2 get no ALPN */
#endif
    };
    return mux_app_main(argc, argv, &app);
}
