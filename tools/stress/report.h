/* report.h - everything mux-stress prints or writes: the live progress line,
 * the per-second CSV, the final human summary, the --json object (a contract:
 * design.md section 7) and the gnuplot run behind --plot. All of it runs on
 * the main thread, from merged snapshots of the load threads. */
#ifndef STRESS_REPORT_H
#define STRESS_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "hist.h"
#include "options.h"

/* Totals over all threads at one moment (field meanings: struct tstats). */
struct totals {
    uint64_t requests, bytes_rx, bytes_tx;
    uint64_t verify_failures, timeouts, connect_errors, resets;
    uint64_t closed, quiet_closes, lost, lost_at_end, connects;
    uint64_t conns_up;
    uint64_t last_done;
    uint64_t idle_open, idle_connects, idle_gave_up, idle_lost;
    uint64_t idle_checked, idle_verified, idle_unverified;
    bool ramping;          /* the idle connections are still being opened */
    struct hist hist;      /* cumulative reply latency, measured requests only */
    struct hist conn_hist; /* cumulative connect latency, measured connects only */
    struct hist idle_hist; /* connect latency of the idle connections */
};

/* Zeroes t (histograms included). */
void totals_init(struct totals *t);

/* The final result. */
struct result {
    const struct stress_opts *o;
    struct totals t;
    double elapsed; /* seconds of measurement */
    double req_per_sec;
    double bytes_per_sec; /* received */
    double conns_per_sec; /* connections established per second */
    bool stopped;         /* interrupted by a signal */
    double cpu_percent;   /* mux-stress's own CPU time / wall time, 100 = one core */
    double ramp_s;        /* --idle: seconds to open the idle connections */
    double check_s;       /* --idle: seconds from the end of the run to the end */
    uint64_t idle_bytes;  /* client memory held for the idle connections (peak) */
    unsigned idle_record; /* of which bytes per connection (the rest is per thread) */
};

/* The run's verdict: 0 (pass) or 1 (fail, the exit status), with the
 * reasons in why (one line, no newline). Passing needs at least one verified
 * request, no verification failure, nothing unanswered at the end, every
 * sampled idle connection checked and, unless --allow-errors, no connect
 * error, reset, close with replies owed, lost request or lost idle
 * connection. */
int report_verdict(const struct result *r, char *why, size_t size);

/* One line per second: `prev` is the previous snapshot (NULL for the first). */
void report_progress(FILE *f, const struct stress_opts *o, double elapsed, double interval,
                     const struct totals *now, const struct totals *prev, bool warmup);

/* The live line, at most REPORT_LINE_MAX columns plus the newline. */
#define REPORT_LINE_MAX 79
void report_progress_line(char *buf, size_t size, const struct stress_opts *o, double elapsed,
                          double interval, const struct totals *now, const struct totals *prev,
                          bool warmup);

/* Per-second CSV. report_csv_open returns NULL (message printed) on error. */
FILE *report_csv_open(const char *path);
void report_csv_row(FILE *f, double elapsed, double interval, const struct totals *now,
                    const struct totals *prev);

void report_summary(FILE *f, const struct result *r);

/* Requests lost: sent and never answered, plus one per idle connection the
 * server closed or reset (the check it was owed). */
uint64_t report_lost(const struct totals *t);

/* Client bytes per idle connection (0 without --idle). */
double report_idle_bytes_per_conn(const struct result *r);

/* Writes the JSON object. 0 or -1 (message printed). */
int report_json(const char *path, const struct result *r);

/* plot.c: draws csv_path into out_path (.png or .svg, by extension) with
 * gnuplot, both y axes from zero. 0, or -1 with the reason on stderr
 * (gnuplot missing or failing is not a measurement failure). */
int report_plot(const char *out_path, const char *csv_path, const struct stress_opts *o);

#endif
