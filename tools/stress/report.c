/* report.c - progress line, per-second CSV, human summary, --json and the
 * --plot gnuplot run (see report.h). Not on the hot path: main thread only,
 * once a second and once at the end. */
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

/* "123.4us", "12.35ms", "1.234s" */
static const char *fmt_lat(char *buf, size_t size, uint64_t ns)
{
    if (ns < 1000000)
        snprintf(buf, size, "%.1fus", us(ns));
    else if (ns < 1000000000)
        snprintf(buf, size, "%.2fms", (double)ns / 1e6);
    else
        snprintf(buf, size, "%.3fs", (double)ns / 1e9);
    return buf;
}

void report_progress(FILE *f, const struct stress_opts *o, double elapsed, double interval,
                     const struct totals *now, const struct totals *prev, bool warmup)
{
    uint64_t req = now->requests - (prev ? prev->requests : 0);
    uint64_t rx = now->bytes_rx - (prev ? prev->bytes_rx : 0);
    char p99[32];
    fprintf(f, "%6.1fs conns %llu/%u  ", elapsed, (unsigned long long)now->conns_up,
            o->conns + o->idle);
    if (warmup) /* nothing measured yet */
        fprintf(f, "warm-up");
    else
        fprintf(f, "req/s %.0f  MB/s %.2f  p99 %s", interval > 0 ? (double)req / interval : 0.0,
                interval > 0 ? (double)rx / interval / 1e6 : 0.0,
                fmt_lat(p99, sizeof(p99), hist_percentile(&now->hist, 0.99)));
    fprintf(f, "  verify_fail %llu  conn_err %llu  resets %llu\n",
            (unsigned long long)now->verify_failures, (unsigned long long)now->connect_errors,
            (unsigned long long)now->resets);
    fflush(f);
}

FILE *report_csv_open(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "mux-stress: --csv %s: %s\n", path, strerror(errno));
        return NULL;
    }
    fputs("elapsed_s,requests,requests_per_sec,bytes_per_sec,p50_us,p90_us,p99_us,p999_us,"
          "max_us,conns_up,verify_failures,connect_errors,resets\n",
          f);
    return f;
}

void report_csv_row(FILE *f, double elapsed, double interval, const struct totals *now,
                    const struct totals *prev)
{
    struct hist *d = malloc(sizeof(*d));
    if (!d)
        return;
    hist_diff(d, &now->hist, &prev->hist);
    uint64_t req = now->requests - prev->requests;
    uint64_t rx = now->bytes_rx - prev->bytes_rx;
    fprintf(f, "%.3f,%llu,%.1f,%.1f,%.3f,%.3f,%.3f,%.3f,%.3f,%llu,%llu,%llu,%llu\n", elapsed,
            (unsigned long long)req, (double)req / interval, (double)rx / interval,
            us(hist_percentile(d, 0.5)), us(hist_percentile(d, 0.9)), us(hist_percentile(d, 0.99)),
            us(hist_percentile(d, 0.999)), us(d->total ? d->max : 0),
            (unsigned long long)now->conns_up, (unsigned long long)now->verify_failures,
            (unsigned long long)now->connect_errors, (unsigned long long)now->resets);
    fflush(f);
    free(d);
}

void report_summary(FILE *f, const struct result *r)
{
    const struct stress_opts *o = r->o;
    const struct totals *t = &r->t;
    const struct hist *h = &t->hist;
    char a[32], b[32], c[32], d[32], e[32], m[32];
    fprintf(f, "mux-stress %s %s: %u connections (+%u idle), %u thread%s, ", proto_name(o->proto),
            o->target, o->conns, o->idle, o->threads, o->threads == 1 ? "" : "s");
    if (o->proto == PROTO_HTTP)
        fprintf(f, "GET %s", o->path);
    else
        fprintf(f, "%u-byte messages", o->size);
    fprintf(f, ", pipeline %u, ", o->pipeline);
    if (o->rate > 0)
        fprintf(f, "open loop at %.0f req/s\n", o->rate);
    else
        fprintf(f, "closed loop\n");
    fprintf(f,
            "  requests   %llu verified in %.2f s%s: %.1f req/s, %.2f MB/s received, "
            "%.2f MB/s sent\n",
            (unsigned long long)t->requests, r->elapsed, r->stopped ? " (interrupted)" : "",
            r->req_per_sec, r->bytes_per_sec / 1e6,
            r->elapsed > 0 ? (double)t->bytes_tx / r->elapsed / 1e6 : 0.0);
    fprintf(f, "  latency    p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (mean %s, +-%.2f%%)\n",
            fmt_lat(a, sizeof(a), hist_percentile(h, 0.5)),
            fmt_lat(b, sizeof(b), hist_percentile(h, 0.9)),
            fmt_lat(c, sizeof(c), hist_percentile(h, 0.99)),
            fmt_lat(d, sizeof(d), hist_percentile(h, 0.999)), fmt_lat(e, sizeof(e), h->max),
            fmt_lat(m, sizeof(m), (uint64_t)hist_mean(h)), HIST_REL_ERROR * 100);
    fprintf(f,
            "  errors     verify failures %llu (of which timeouts %llu), connect errors %llu, "
            "resets %llu\n",
            (unsigned long long)t->verify_failures, (unsigned long long)t->timeouts,
            (unsigned long long)t->connect_errors, (unsigned long long)t->resets);
    fprintf(f,
            "  client     mux-stress used %.0f%% of one CPU core (%u thread%s); near %u00%% "
            "means the client, not the server, may be the limit\n",
            r->cpu_percent, o->threads, o->threads == 1 ? "" : "s", o->threads);
    if (t->verify_failures)
        fprintf(f, "  result     FAIL: %llu replies failed verification\n",
                (unsigned long long)t->verify_failures);
    else if (t->requests == 0)
        fprintf(f, "  result     FAIL: nothing was measured\n");
    else
        fprintf(f, "  result     PASS: every reply verified\n");
}

int report_json(const char *path, const struct result *r)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "mux-stress: --json %s: %s\n", path, strerror(errno));
        return -1;
    }
    const struct stress_opts *o = r->o;
    const struct totals *t = &r->t;
    const struct hist *h = &t->hist;
    fprintf(f,
            "{\"proto\":\"%s\",\"connections\":%u,\"idle\":%u,\"threads\":%u,"
            "\"message_size\":%u,\"pipeline\":%u,\"rate\":%.3f,",
            proto_name(o->proto), o->conns, o->idle, o->threads, o->size, o->pipeline, o->rate);
    fprintf(f,
            "\"duration_s\":%.6f,\"requests\":%llu,\"requests_per_sec\":%.3f,"
            "\"bytes_per_sec\":%.3f,\"bytes_received\":%llu,\"bytes_sent\":%llu,",
            r->elapsed, (unsigned long long)t->requests, r->req_per_sec, r->bytes_per_sec,
            (unsigned long long)t->bytes_rx, (unsigned long long)t->bytes_tx);
    fprintf(f,
            "\"verify_failures\":%llu,\"timeouts\":%llu,\"connect_errors\":%llu,"
            "\"resets\":%llu,\"interrupted\":%s,\"client_cpu_percent\":%.1f,",
            (unsigned long long)t->verify_failures, (unsigned long long)t->timeouts,
            (unsigned long long)t->connect_errors, (unsigned long long)t->resets,
            r->stopped ? "true" : "false", r->cpu_percent);
    fprintf(f,
            "\"latency_us\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,"
            "\"max\":%.3f,\"min\":%.3f,\"mean\":%.3f},\"latency_relative_error\":%g}\n",
            us(hist_percentile(h, 0.5)), us(hist_percentile(h, 0.9)), us(hist_percentile(h, 0.99)),
            us(hist_percentile(h, 0.999)), us(h->max), us(h->total ? h->min : 0),
            hist_mean(h) / 1000.0, HIST_REL_ERROR);
    if (fclose(f) != 0) {
        fprintf(stderr, "mux-stress: --json %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* gnuplot single-quoted string: a quote is doubled. */
static void put_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

static void write_script(FILE *f, const char *png, const char *csv, const struct stress_opts *o)
{
    fputs("if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) { set terminal pngcairo size 1000,700 }"
          " else { set terminal png size 1000,700 }\nset output ",
          f);
    put_quoted(f, png);
    fprintf(f,
            "\nset datafile separator ','\nset grid\nset xlabel 'seconds'\n"
            "set multiplot layout 2,1 title 'mux-stress %s %u conns, pipeline %u'\n"
            "set ylabel 'requests/s'\nplot ",
            proto_name(o->proto), o->conns, o->pipeline);
    put_quoted(f, csv);
    fputs(" every ::1 using 1:3 with lines lw 2 title 'requests/s'\n"
          "set ylabel 'latency (us)'\nset logscale y\nplot ",
          f);
    put_quoted(f, csv);
    fputs(" every ::1 using 1:5 with lines title 'p50', '' every ::1 using 1:7 with lines "
          "title 'p99', '' every ::1 using 1:8 with lines title 'p99.9', '' every ::1 using "
          "1:9 with lines title 'max'\nunset multiplot\n",
          f);
}

static bool in_path(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[4096];
    while (path && *path) {
        size_t n = strcspn(path, ":");
        if (n > 0 && n + strlen(prog) + 2 < sizeof(buf)) {
            snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, prog);
            if (access(buf, X_OK) == 0)
                return true;
        }
        path += n + (path[n] == ':');
    }
    return false;
}

int report_plot(const char *png_path, const char *csv_path, const struct stress_opts *o)
{
    if (!in_path("gnuplot")) {
        fprintf(stderr, "mux-stress: --plot: gnuplot is not installed (not in PATH); no plot "
                        "written. The per-second data is in the CSV (--csv).\n");
        return -1;
    }
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[0], 0);
        close(fds[0]);
        close(fds[1]);
        execlp("gnuplot", "gnuplot", (char *)NULL);
        _exit(127);
    }
    close(fds[0]);
    FILE *f = pid > 0 ? fdopen(fds[1], "w") : NULL;
    if (!f) {
        close(fds[1]);
        if (pid > 0)
            waitpid(pid, NULL, 0);
        fprintf(stderr, "mux-stress: --plot: cannot start gnuplot\n");
        return -1;
    }
    write_script(f, png_path, csv_path, o);
    fclose(f);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "mux-stress: --plot: gnuplot failed; no plot written to %s\n", png_path);
        return -1;
    }
    return 0;
}
