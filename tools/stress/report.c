/* report.c - progress line, per-second CSV, human summary, verdict and
 * --json (see report.h; the plot is plot.c). Not on the hot path: main
 * thread only, once a second and once at the end. */
#include "report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void totals_init(struct totals *t)
{
    memset(t, 0, sizeof(*t));
    hist_init(&t->hist);
    hist_init(&t->conn_hist);
    hist_init(&t->idle_hist);
}

uint64_t report_lost(const struct totals *t)
{
    return t->lost + t->idle_lost;
}

double report_idle_bytes_per_conn(const struct result *r)
{
    return r->o->idle ? (double)r->idle_bytes / r->o->idle : 0;
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

/* "123.4us", "12.35ms", "1.234s", "1099s": at most 8 characters. */
static const char *fmt_lat(char *buf, size_t size, uint64_t ns)
{
    if (ns < 1000000)
        snprintf(buf, size, "%.1fus", us(ns));
    else if (ns < 1000000000)
        snprintf(buf, size, "%.2fms", (double)ns / 1e6);
    else if (ns < 100 * 1000000000ull)
        snprintf(buf, size, "%.3fs", (double)ns / 1e9);
    else
        snprintf(buf, size, "%.0fs", (double)ns / 1e9);
    return buf;
}

/* "9999", "12.3k", "999k", "1.0M": at most 5 characters up to 999P. */
static const char *compact(char *buf, size_t size, double v)
{
    static const char unit[] = "kMGTP";
    if (v < 9999.5) {
        snprintf(buf, size, "%.0f", v < 0 ? 0 : v);
        return buf;
    }
    int u = -1;
    while (v >= 999.5 && u < 4)
        v /= 1000, u++;
    snprintf(buf, size, v < 99.95 ? "%.1f%c" : "%.0f%c", v, unit[u]);
    return buf;
}

static uint64_t error_events(const struct totals *t)
{
    return t->verify_failures + report_lost(t) + t->connect_errors + t->resets + t->closed +
           t->idle_unverified;
}

/* Appends to buf at *len, never past size. */
static void put(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (*len < size) {
        int n = vsnprintf(buf + *len, size - *len, fmt, ap);
        *len += n > 0 ? (size_t)n : 0;
    }
    va_end(ap);
}

void report_progress_line(char *buf, size_t size, const struct stress_opts *o, double elapsed,
                          double interval, const struct totals *now, const struct totals *prev,
                          bool warmup)
{
    char a[16], b[16], c[16];
    size_t len = 0;
    double dt = interval > 0 ? interval : 1;
    buf[0] = '\0';
    snprintf(a, sizeof(a), elapsed < 9999.95 ? "%.1fs" : "%.0fs", elapsed);
    put(buf, size, &len, "%7s", a);
    if (now->ramping) { /* opening the idle connections: their count in full */
        put(buf, size, &len, "  idle %llu/%u  conn/s %s  errors %s",
            (unsigned long long)now->idle_open, o->idle,
            compact(a, sizeof(a), (double)(now->idle_connects - prev->idle_connects) / dt),
            compact(b, sizeof(b), (double)error_events(now)));
        return;
    }
    if (o->reconnect) /* churn: the rate of new connections says more than a gauge */
        put(buf, size, &len, "  conn/s %s",
            compact(a, sizeof(a), (double)(now->connects - prev->connects) / dt));
    else
        put(buf, size, &len, "  conns %s/%s",
            compact(a, sizeof(a), (double)(now->conns_up + now->idle_open)),
            compact(b, sizeof(b), (double)o->conns + o->idle));
    if (warmup)
        put(buf, size, &len, "  warm-up");
    else
        put(buf, size, &len, "  req/s %s  %sB/s  p99 %s",
            compact(a, sizeof(a), (double)(now->requests - prev->requests) / dt),
            compact(b, sizeof(b), (double)(now->bytes_rx - prev->bytes_rx) / dt),
            fmt_lat(c, sizeof(c), hist_percentile(&now->hist, 0.99)));
    put(buf, size, &len, "  errors %s", compact(a, sizeof(a), (double)error_events(now)));
}

void report_progress(FILE *f, const struct stress_opts *o, double elapsed, double interval,
                     const struct totals *now, const struct totals *prev, bool warmup)
{
    char line[128];
    report_progress_line(line, sizeof(line), o, elapsed, interval, now, prev, warmup);
    fprintf(f, "%s\n", line);
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
          "max_us,conns_up,verify_failures,connect_errors,resets,lost_requests,"
          "connections_per_sec\n",
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
    fprintf(f, "%.3f,%llu,%.1f,%.1f,%.3f,%.3f,%.3f,%.3f,%.3f,%llu,%llu,%llu,%llu,%llu,%.1f\n",
            elapsed, (unsigned long long)req, (double)req / interval, (double)rx / interval,
            us(hist_percentile(d, 0.5)), us(hist_percentile(d, 0.9)), us(hist_percentile(d, 0.99)),
            us(hist_percentile(d, 0.999)), us(d->total ? d->max : 0),
            (unsigned long long)(now->conns_up + now->idle_open),
            (unsigned long long)now->verify_failures, (unsigned long long)now->connect_errors,
            (unsigned long long)now->resets, (unsigned long long)report_lost(now),
            (double)(now->connects - prev->connects) / interval);
    fflush(f);
    free(d);
}

static const char *s_if(uint64_t n)
{
    return n == 1 ? "" : "s";
}

int report_verdict(const struct result *r, char *why, size_t size)
{
    const struct totals *t = &r->t;
    size_t len = 0;
    bool allow = r->o->allow_errors;
    why[0] = '\0';
    if (t->verify_failures)
        put(why, size, &len, "; %llu repl%s failed verification (%llu timeout%s)",
            (unsigned long long)t->verify_failures, t->verify_failures == 1 ? "y" : "ies",
            (unsigned long long)t->timeouts, s_if(t->timeouts));
    if (t->lost_at_end)
        put(why, size, &len, "; %llu request%s still unanswered when the run ended",
            (unsigned long long)t->lost_at_end, s_if(t->lost_at_end));
    if (!allow && t->lost > t->lost_at_end)
        put(why, size, &len, "; %llu request%s lost (sent, never answered)",
            (unsigned long long)(t->lost - t->lost_at_end), s_if(t->lost - t->lost_at_end));
    if (!allow && t->resets)
        put(why, size, &len, "; %llu connection%s reset by the server",
            (unsigned long long)t->resets, s_if(t->resets));
    if (!allow && t->closed)
        put(why, size, &len, "; %llu connection%s closed by the server with replies owed",
            (unsigned long long)t->closed, s_if(t->closed));
    if (!allow && t->idle_lost)
        put(why, size, &len, "; %llu idle connection%s lost (closed or reset by the server)",
            (unsigned long long)t->idle_lost, s_if(t->idle_lost));
    if (t->idle_unverified)
        put(why, size, &len, "; %llu idle connection%s not checked within the time bound",
            (unsigned long long)t->idle_unverified, s_if(t->idle_unverified));
    if (!allow && t->connect_errors)
        put(why, size, &len, "; %llu connect error%s", (unsigned long long)t->connect_errors,
            s_if(t->connect_errors));
    if (t->requests == 0)
        put(why, size, &len, "; nothing was measured");
    if (len == 0) {
        snprintf(why, size, "every request answered and verified%s",
                 allow && error_events(t) ? " (connection errors allowed by --allow-errors)"
                                          : "");
        return 0;
    }
    memmove(why, why + 2, strlen(why + 2) + 1); /* the leading "; " */
    return 1;
}

static void summary_head(FILE *f, const struct stress_opts *o)
{
    fprintf(f, "mux-stress %s %s: %u connections (+%u idle), %u thread%s, ", proto_name(o->proto),
            o->target, o->conns, o->idle, o->threads, o->threads == 1 ? "" : "s");
    if (o->proto == PROTO_HTTP)
        fprintf(f, "GET %s", o->path);
    else
        fprintf(f, "%u-byte messages", o->size);
    fprintf(f, ", pipeline %u, ", o->pipeline);
    if (o->rate > 0)
        fprintf(f, "open loop at %.0f req/s", o->rate);
    else
        fprintf(f, "closed loop");
    if (o->reconnect)
        fprintf(f, ", new connection every %llu request%s", (unsigned long long)o->reconnect,
                o->reconnect == 1 ? "" : "s");
    fputc('\n', f);
}

static void summary_latency(FILE *f, const char *label, const struct hist *h, bool mean)
{
    char a[32], b[32], c[32], d[32], e[32], m[32];
    fprintf(f, "  %-10s p50 %s  p90 %s  p99 %s  p99.9 %s  max %s", label,
            fmt_lat(a, sizeof(a), hist_percentile(h, 0.5)),
            fmt_lat(b, sizeof(b), hist_percentile(h, 0.9)),
            fmt_lat(c, sizeof(c), hist_percentile(h, 0.99)),
            fmt_lat(d, sizeof(d), hist_percentile(h, 0.999)), fmt_lat(e, sizeof(e), h->max));
    if (mean)
        fprintf(f, "  (mean %s, +-%.2f%%)", fmt_lat(m, sizeof(m), (uint64_t)hist_mean(h)),
                HIST_REL_ERROR * 100);
    fputc('\n', f);
}

/* --idle: how they were opened, what they cost, how they were checked. */
static void summary_idle(FILE *f, const struct result *r)
{
    const struct stress_opts *o = r->o;
    const struct totals *t = &r->t;
    uint64_t sampled = t->idle_checked + t->idle_unverified;
    fprintf(f,
            "  idle       %llu of %u open at the end, %.1f bytes of client memory each (a "
            "%u-byte record, the rest per thread); opened %llu in %.2f s (%.0f/s, "
            "--connect-rate %.0f), %llu gave up\n",
            (unsigned long long)t->idle_open, o->idle, report_idle_bytes_per_conn(r),
            r->idle_record,
            (unsigned long long)t->idle_connects, r->ramp_s,
            r->ramp_s > 0 ? (double)t->idle_connects / r->ramp_s : 0.0, o->connect_rate,
            (unsigned long long)t->idle_gave_up);
    summary_latency(f, "idle conn", &t->idle_hist, false);
    fprintf(f,
            "  idle check %llu verified of %llu sampled (--idle-verify %.4g%%) in %.2f s, "
            "%llu lost (closed or reset by the server)%s\n",
            (unsigned long long)t->idle_verified, (unsigned long long)sampled,
            o->idle_verify_ppm / 1e4, r->check_s, (unsigned long long)t->idle_lost,
            o->allow_errors && t->idle_lost ? " (allowed)" : "");
}

void report_summary(FILE *f, const struct result *r)
{
    const struct stress_opts *o = r->o;
    const struct totals *t = &r->t;
    char why[512];
    int rc = report_verdict(r, why, sizeof(why));
    summary_head(f, o);
    fprintf(f,
            "  requests   %llu verified in %.2f s%s: %.1f req/s, %.2f MB/s received, "
            "%.2f MB/s sent\n",
            (unsigned long long)t->requests, r->elapsed, r->stopped ? " (interrupted)" : "",
            r->req_per_sec, r->bytes_per_sec / 1e6,
            r->elapsed > 0 ? (double)t->bytes_tx / r->elapsed / 1e6 : 0.0);
    summary_latency(f, "latency", &t->hist, true);
    if (o->reconnect || t->connects > (uint64_t)o->conns + o->idle) { /* reconnections */
        fprintf(f, "  connects   %llu in %.2f s: %.1f connections/s\n",
                (unsigned long long)t->connects, r->elapsed, r->conns_per_sec);
        summary_latency(f, "connect", &t->conn_hist, false);
    }
    fprintf(f,
            "  errors     verify failures %llu (timeouts %llu), lost requests %llu (%llu "
            "unanswered at the end)\n",
            (unsigned long long)t->verify_failures, (unsigned long long)t->timeouts,
            (unsigned long long)report_lost(t), (unsigned long long)t->lost_at_end);
    if (o->idle)
        summary_idle(f, r);
    fprintf(f,
            "  conn errs  connect errors %llu, resets %llu, closed with replies owed %llu, "
            "closed idle %llu%s\n",
            (unsigned long long)t->connect_errors, (unsigned long long)t->resets,
            (unsigned long long)t->closed, (unsigned long long)t->quiet_closes,
            o->allow_errors ? " (allowed)" : "");
    fprintf(f,
            "  client     mux-stress used %.0f%% of one CPU core (%u thread%s); near %u00%% "
            "means the client, not the server, may be the limit\n",
            r->cpu_percent, o->threads, o->threads == 1 ? "" : "s", o->threads);
    fprintf(f, "  result     %s: %s\n", rc ? "FAIL" : "PASS", why);
}

static void json_latency(FILE *f, const char *key, const struct hist *h)
{
    fprintf(f,
            "\"%s\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f,"
            "\"min\":%.3f,\"mean\":%.3f}",
            key, us(hist_percentile(h, 0.5)), us(hist_percentile(h, 0.9)),
            us(hist_percentile(h, 0.99)), us(hist_percentile(h, 0.999)), us(h->max),
            us(h->total ? h->min : 0), hist_mean(h) / 1000.0);
}

static void json_body(FILE *f, const struct result *r, bool passed)
{
    const struct stress_opts *o = r->o;
    const struct totals *t = &r->t;
    fprintf(f,
            "{\"proto\":\"%s\",\"connections\":%u,\"idle\":%u,\"threads\":%u,"
            "\"message_size\":%u,\"pipeline\":%u,\"rate\":%.3f,\"reconnect\":%llu,",
            proto_name(o->proto), o->conns, o->idle, o->threads, o->size, o->pipeline, o->rate,
            (unsigned long long)o->reconnect);
    fprintf(f,
            "\"duration_s\":%.6f,\"requests\":%llu,\"requests_per_sec\":%.3f,"
            "\"bytes_per_sec\":%.3f,\"bytes_received\":%llu,\"bytes_sent\":%llu,",
            r->elapsed, (unsigned long long)t->requests, r->req_per_sec, r->bytes_per_sec,
            (unsigned long long)t->bytes_rx, (unsigned long long)t->bytes_tx);
    fprintf(f,
            "\"verify_failures\":%llu,\"timeouts\":%llu,\"lost_requests\":%llu,"
            "\"unanswered_at_end\":%llu,\"connect_errors\":%llu,\"resets\":%llu,"
            "\"closed_by_server\":%llu,\"idle_closes\":%llu,",
            (unsigned long long)t->verify_failures, (unsigned long long)t->timeouts,
            (unsigned long long)report_lost(t), (unsigned long long)t->lost_at_end,
            (unsigned long long)t->connect_errors, (unsigned long long)t->resets,
            (unsigned long long)t->closed, (unsigned long long)t->quiet_closes);
    fprintf(f, "\"connects\":%llu,\"connections_per_sec\":%.3f,", (unsigned long long)t->connects,
            r->conns_per_sec);
    fprintf(f,
            "\"allow_errors\":%s,\"passed\":%s,\"interrupted\":%s,\"client_cpu_percent\":%.1f,",
            o->allow_errors ? "true" : "false", passed ? "true" : "false",
            r->stopped ? "true" : "false", r->cpu_percent);
    json_latency(f, "latency_us", &t->hist); /* first: naive readers find its p99 */
    fprintf(f, ",\"latency_relative_error\":%g,", HIST_REL_ERROR);
    json_latency(f, "connect_latency_us", &t->conn_hist);
    fprintf(f,
            ",\"idle_open\":%llu,\"idle_bytes_per_conn\":%.3f,\"idle_record_bytes\":%u,"
            "\"idle_connects\":%llu,"
            "\"idle_connect_s\":%.6f,\"idle_connect_rate\":%.3f,\"idle_gave_up\":%llu,"
            "\"idle_lost\":%llu,\"idle_checked\":%llu,\"idle_verified\":%llu,"
            "\"idle_unverified\":%llu,\"idle_check_s\":%.6f,\"idle_verify_pct\":%.4f,"
            "\"connect_rate\":%.3f,\"sources\":%u,",
            (unsigned long long)t->idle_open, report_idle_bytes_per_conn(r), r->idle_record,
            (unsigned long long)t->idle_connects, r->ramp_s,
            r->ramp_s > 0 ? (double)t->idle_connects / r->ramp_s : 0.0,
            (unsigned long long)t->idle_gave_up, (unsigned long long)t->idle_lost,
            (unsigned long long)t->idle_checked, (unsigned long long)t->idle_verified,
            (unsigned long long)t->idle_unverified, r->check_s, o->idle_verify_ppm / 1e4,
            o->connect_rate, o->source.count);
    json_latency(f, "idle_connect_latency_us", &t->idle_hist);
    fputs("}\n", f);
}

int report_json(const char *path, const struct result *r)
{
    char why[512];
    bool passed = report_verdict(r, why, sizeof(why)) == 0;
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "mux-stress: --json %s: %s\n", path, strerror(errno));
        return -1;
    }
    json_body(f, r, passed);
    if (fclose(f) != 0) {
        fprintf(stderr, "mux-stress: --json %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}
