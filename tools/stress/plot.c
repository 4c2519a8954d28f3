/* plot.c - --plot: pipes a gnuplot script that draws the per-second CSV.
 * The terminal follows the file name (.svg, else PNG: pngcairo when built
 * in, else png). The axes are set from the data itself (x from 0 to the last
 * second, both y axes from 0 to a little above the largest value), so gnuplot
 * never autoscales into an "empty range" warning, even for a run of one
 * second with a single row, and throughput is never drawn from a
 * misleading baseline. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "report.h"

struct plot_range {
    double xmax, rps_max, lat_max;
    int rows;
};

/* Columns (1-based) of the CSV written by report_csv_row. */
enum { COL_ELAPSED = 1, COL_RPS = 3, COL_P50 = 5, COL_P99 = 7, COL_P999 = 8, COL_MAX = 9 };

static void scan_row(const char *line, struct plot_range *r)
{
    double v[10] = {0};
    const char *p = line;
    for (int col = 1; col <= COL_MAX && p; col++) {
        v[col] = strtod(p, NULL);
        p = strchr(p, ',');
        p = p ? p + 1 : NULL;
    }
    r->rows++;
    if (v[COL_ELAPSED] > r->xmax)
        r->xmax = v[COL_ELAPSED];
    if (v[COL_RPS] > r->rps_max)
        r->rps_max = v[COL_RPS];
    for (int col = COL_P50; col <= COL_MAX; col++)
        if (col != COL_P50 + 1 && v[col] > r->lat_max) /* p90 is not drawn */
            r->lat_max = v[col];
}

static int scan_csv(const char *path, struct plot_range *r)
{
    char line[512];
    FILE *f = fopen(path, "r");
    memset(r, 0, sizeof(*r));
    if (!f)
        return -1;
    bool header = true;
    while (fgets(line, sizeof(line), f)) {
        if (!header)
            scan_row(line, r);
        header = false;
    }
    fclose(f);
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

static bool is_svg(const char *path)
{
    size_t n = strlen(path);
    return n > 4 && !strcasecmp(path + n - 4, ".svg");
}

/* A round-ish upper bound a little above v (at least 1). */
static double top(double v)
{
    return v > 0 ? v * 1.1 : 1;
}

static void write_script(FILE *f, const char *out, const char *csv, const struct stress_opts *o,
                         const struct plot_range *r)
{
    if (is_svg(out))
        fputs("set terminal svg size 1000,700 dynamic noenhanced background rgb 'white'\n", f);
    else
        fputs("if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) "
              "{ set terminal pngcairo size 1000,700 noenhanced } "
              "else { set terminal png size 1000,700 noenhanced }\n",
              f);
    fputs("set output ", f);
    put_quoted(f, out);
    fprintf(f,
            "\nset datafile separator ','\nset grid\nset xlabel 'seconds'\n"
            "set xrange [0:%.3f]\nset key outside right top\n"
            "set lmargin at screen 0.11\nset rmargin at screen 0.82\n"
            "set multiplot layout 2,1 title 'mux-stress %s, %u connections, pipeline %u'\n"
            "set ylabel 'requests/s'\nset yrange [0:%.6g]\nplot ",
            r->xmax > 0 ? r->xmax * 1.05 : 1, proto_name(o->proto), o->conns, o->pipeline,
            top(r->rps_max));
    put_quoted(f, csv);
    fprintf(f,
            " every ::1 using %d:%d with linespoints lw 2 pt 7 ps 0.6 title 'requests/s'\n"
            "set ylabel 'latency (us)'\nset yrange [0:%.6g]\nplot ",
            COL_ELAPSED, COL_RPS, top(r->lat_max));
    put_quoted(f, csv);
    fprintf(f,
            " every ::1 using 1:%d with linespoints pt 7 ps 0.5 title 'p50', '' every ::1 "
            "using 1:%d with linespoints pt 7 ps 0.5 title 'p99', '' every ::1 using 1:%d with "
            "linespoints pt 7 ps 0.5 title 'p99.9', '' every ::1 using 1:%d with linespoints "
            "pt 7 ps 0.5 title 'max'\nunset multiplot\n",
            COL_P50, COL_P99, COL_P999, COL_MAX);
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

/* Runs gnuplot with the script on its stdin. 0 or -1. */
static int run_gnuplot(const char *out, const char *csv, const struct stress_opts *o,
                       const struct plot_range *r)
{
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
        return -1;
    }
    write_script(f, out, csv, o, r);
    fclose(f);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int report_plot(const char *out_path, const char *csv_path, const struct stress_opts *o)
{
    struct plot_range r;
    if (!in_path("gnuplot")) {
        fprintf(stderr, "mux-stress: --plot: gnuplot is not installed (not in PATH); no plot "
                        "written. The per-second data is in the CSV (--csv).\n");
        return -1;
    }
    if (scan_csv(csv_path, &r) < 0 || r.rows == 0) {
        fprintf(stderr, "mux-stress: --plot: no per-second data to draw; no plot written\n");
        return -1;
    }
    if (run_gnuplot(out_path, csv_path, o, &r) < 0) {
        fprintf(stderr, "mux-stress: --plot: gnuplot failed; no plot written to %s\n", out_path);
        return -1;
    }
    return 0;
}
