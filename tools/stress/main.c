/* main.c - mux-stress: parse the command line, split the connections over T
 * load threads (client.c), supervise them once a second (progress line, CSV)
 * and on SIGINT/SIGTERM, then merge their counters and histograms, report,
 * and turn the verification result into the exit status (0 / 1 / 2).
 * With --idle the threads first open their idle connections; main starts
 * the measured run once every thread has (so -d and --warmup count from
 * then), and the idle check once every thread's run is over. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "addr.h"
#include "client.h"
#include "clock.h"
#include "capacity.h"
#include "report.h"
#include "tls.h"

struct run {
    struct stress_opts o;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct proto proto;
    struct sthread *th;
    uint32_t nth;
    int stop_fd, done_fd, sig_fd, go_fd, start_fd, check_fd;
    bool phased;            /* --idle: ramp, run, check (client.h) */
    uint64_t t_launch;      /* threads start */
    uint64_t t0;            /* the run starts: t_launch, or the end of the idle ramp */
    uint64_t measure_start; /* t0 + warm-up; UINT64_MAX during the ramp */
    uint64_t t_stop;        /* signal received, 0 if none */
    uint64_t t_finish;      /* all threads done */
    uint64_t t_run_end;     /* --idle: every thread's run is over, the check starts */
    FILE *csv;
    char csv_tmp[64]; /* temporary CSV behind --plot without --csv */
};

/* --source needs an IPv4 target (a name may have resolved to IPv6) and
 * addresses this host can bind. 0 or -1 (usage error). */
static int check_source(const struct run *r)
{
    if (!r->o.source.count)
        return 0;
    if (r->addr.ss_family != AF_INET) {
        fprintf(stderr,
                "mux-stress: --source '%s': IPv4 source addresses cannot reach %s (it resolved "
                "to IPv6)\n",
                r->o.source_arg, r->o.target);
        return -1;
    }
    return source_check(&r->o.source);
}

static bool is_loopback4(const struct sockaddr_storage *ss)
{
    const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
    return ss->ss_family == AF_INET && (ntohl(in->sin_addr.s_addr) >> 24) == 127;
}

static uint64_t share(uint64_t total, uint32_t parts, uint32_t i)
{
    return total / parts + (i < total % parts);
}

/* Configures thread i; *busy_before and *idle_before count the busy and idle
 * connections of threads < i. */
static int setup_thread(struct run *r, uint32_t i, uint32_t *busy_before, uint32_t *idle_before,
                        uint32_t *id)
{
    struct sthread *th = &r->th[i];
    const struct stress_opts *o = &r->o;
    uint32_t busy = (uint32_t)share(o->conns, r->nth, i);
    uint32_t idle = (uint32_t)share(o->idle, r->nth, i);
    th->id = i;
    th->o = o;
    th->proto = &r->proto;
    th->addr = (const struct sockaddr *)&r->addr;
    th->addrlen = r->addrlen;
    th->stop_fd = r->stop_fd;
    th->done_fd = r->done_fd;
    th->go_fd = r->go_fd;
    th->start_fd = r->start_fd;
    th->check_fd = r->check_fd;
    th->phased = r->phased;
    th->epfd = -1;
    if (client_init(th, busy, idle, *id, *idle_before) < 0) {
        fprintf(stderr, "mux-stress: thread %u: %s\n", i, strerror(errno));
        return -1;
    }
    th->measure_start = UINT64_MAX;
    if (o->requests) { /* this thread's part of -n, in proportion to its connections */
        unsigned __int128 n = o->requests;
        th->budget = (uint64_t)(n * (*busy_before + busy) / o->conns - n * *busy_before / o->conns);
    }
    th->open_loop = o->rate > 0 && busy > 0;
    *busy_before += busy;
    *idle_before += idle;
    *id += busy + idle;
    return 0;
}

/* The run starts at t0: the times every thread measures by, published with
 * a release store before the thread may look at them (start_fd, or before
 * the thread exists). */
static void release_run(struct run *r, uint64_t t0)
{
    const struct stress_opts *o = &r->o;
    r->t0 = t0;
    r->measure_start = t0 + (uint64_t)(o->warmup * 1e9);
    for (uint32_t i = 0; i < r->nth; i++) {
        struct sthread *th = &r->th[i];
        th->measure_start = r->measure_start;
        if (o->duration > 0)
            th->end_time = r->measure_start + (uint64_t)(o->duration * 1e9);
        if (th->open_loop)
            sched_init(&th->sched, t0, o->rate / o->conns, th->nbusy);
        __atomic_store_n(&th->released, 1, __ATOMIC_RELEASE);
    }
}

static void wake_threads(int fd)
{
    uint64_t one = 1;
    if (write(fd, &one, sizeof(one)) < 0)
        perror("mux-stress: eventfd");
}

static void snapshot(const struct run *r, struct totals *t)
{
    totals_init(t);
    for (uint32_t i = 0; i < r->nth; i++) {
        const struct tstats *s = &r->th[i].st;
        t->requests += stat_get(&s->requests);
        t->bytes_rx += stat_get(&s->bytes_rx);
        t->bytes_tx += stat_get(&s->bytes_tx);
        t->verify_failures += stat_get(&s->verify_failures);
        t->timeouts += stat_get(&s->timeouts);
        t->connect_errors += stat_get(&s->connect_errors);
        t->resets += stat_get(&s->resets);
        t->closed += stat_get(&s->closed);
        t->quiet_closes += stat_get(&s->quiet_closes);
        t->lost += stat_get(&s->lost);
        t->lost_at_end += stat_get(&s->lost_at_end);
        t->connects += stat_get(&s->connects);
        t->conns_up += stat_get(&s->conns_up);
        t->idle_open += stat_get(&s->idle_open);
        t->idle_connects += stat_get(&s->idle_connects);
        t->idle_gave_up += stat_get(&s->idle_gave_up);
        t->idle_lost += stat_get(&s->idle_lost);
        t->idle_checked += stat_get(&s->idle_checked);
        t->idle_verified += stat_get(&s->idle_verified);
        t->idle_unverified += stat_get(&s->idle_unverified);
        uint64_t last = stat_get(&s->last_done);
        if (last > t->last_done)
            t->last_done = last;
        hist_merge(&t->hist, &r->th[i].hist);
        hist_merge(&t->conn_hist, &r->th[i].conn_hist);
        hist_merge(&t->idle_hist, &r->th[i].idle.conn_hist);
    }
    t->ramping = r->phased && r->measure_start == UINT64_MAX;
}

static int open_csv(struct run *r)
{
    const char *path = r->o.csv;
    if (!path && r->o.plot) {
        snprintf(r->csv_tmp, sizeof(r->csv_tmp), "/tmp/mux-stress-XXXXXX");
        int fd = mkstemp(r->csv_tmp);
        if (fd < 0) {
            fprintf(stderr, "mux-stress: --plot: cannot create a temporary CSV\n");
            r->csv_tmp[0] = '\0';
            return -1;
        }
        close(fd);
        path = r->csv_tmp;
    }
    if (path && !(r->csv = report_csv_open(path)))
        return -1;
    return 0;
}

/* One second passed: progress line and CSV row. */
static void tick(struct run *r, uint64_t now, uint64_t *last, struct totals **cur,
                 struct totals **prev, bool show)
{
    snapshot(r, *cur);
    double elapsed = (double)(now - r->t_launch) / 1e9, interval = (double)(now - *last) / 1e9;
    bool warm = r->measure_start == UINT64_MAX ||
                now < r->measure_start + NS_PER_SEC / 10; /* < 0.1 s measured: no rates yet */
    if (show)
        report_progress(stderr, &r->o, elapsed, interval, *cur, *prev, warm);
    if (r->csv && !warm && interval > 0.01)
        report_csv_row(r->csv, elapsed, interval, *cur, *prev);
    struct totals *t = *cur;
    *cur = *prev;
    *prev = t;
    *last = now;
}

/* Threads report each phase end on done_fd (client.h): with --idle the
 * ramp (start the run), the run (start the check), then the end. */
static void on_reports(struct run *r, uint32_t reports)
{
    if (!r->phased)
        return;
    if (reports >= r->nth && r->measure_start == UINT64_MAX) {
        release_run(r, now_ns());
        wake_threads(r->start_fd);
    }
    if (reports >= 2 * r->nth && !r->t_run_end) {
        r->t_run_end = now_ns();
        wake_threads(r->check_fd);
    }
}

/* Waits for every thread to finish, ticking once a second. */
static int supervise(struct run *r, struct totals **cur, struct totals **prev)
{
    bool show = !r->o.quiet && isatty(STDERR_FILENO);
    uint64_t last = r->t_launch, next = r->t_launch + NS_PER_SEC;
    uint32_t done = 0, want = r->phased ? 3 * r->nth : r->nth;
    totals_init(*prev);
    while (done < want) {
        uint64_t now = now_ns();
        int ms = now >= next ? 0 : (int)((next - now + NS_PER_MS - 1) / NS_PER_MS);
        struct pollfd p[2] = {{.fd = r->sig_fd, .events = POLLIN},
                              {.fd = r->done_fd, .events = POLLIN}};
        if (poll(p, 2, ms) < 0 && errno != EINTR)
            return -1;
        if (p[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(r->sig_fd, &si, sizeof(si)) > 0 && r->t_stop) {
                fprintf(stderr, "mux-stress: interrupted again, exiting\n");
                return -1;
            }
            uint64_t one = 1;
            r->t_stop = now_ns();
            if (write(r->stop_fd, &one, sizeof(one)) < 0)
                return -1;
        }
        uint64_t n;
        if ((p[1].revents & POLLIN) && read(r->done_fd, &n, sizeof(n)) == sizeof(n)) {
            done += (uint32_t)n;
            on_reports(r, done);
        }
        now = now_ns();
        if (now >= next || done == want) {
            if (now >= next || (r->csv && now - last > 10 * NS_PER_MS))
                tick(r, now, &last, cur, prev, show && now >= next);
            next = next + NS_PER_SEC > now ? next + NS_PER_SEC : now + NS_PER_SEC;
        }
    }
    r->t_finish = now_ns();
    return 0;
}

static void result_of(const struct run *r, const struct totals *t, struct result *res)
{
    memset(res, 0, sizeof(*res));
    res->o = &r->o;
    res->t = *t;
    res->stopped = r->t_stop != 0;
    uint64_t end;
    if (r->o.duration > 0) {
        uint64_t stop = r->t_stop ? r->t_stop : r->t_finish;
        uint64_t planned = r->measure_start + (uint64_t)(r->o.duration * 1e9);
        end = stop < planned ? stop : planned;
    } else {
        end = t->last_done ? t->last_done : r->t_finish;
    }
    res->elapsed = end > r->measure_start ? (double)(end - r->measure_start) / 1e9 : 0;
    if (r->phased) {
        res->ramp_s = (double)(r->t0 - r->t_launch) / 1e9;
        res->check_s = (double)(r->t_finish - r->t_run_end) / 1e9;
    }
    for (uint32_t i = 0; i < r->nth; i++)
        res->idle_bytes += r->th[i].idle.bytes;
    res->idle_record = (unsigned)(sizeof(struct iconn) + (r->o.tls ? sizeof(void *) : 0));
    struct rusage ru;
    double wall = (double)(r->t_finish - r->t_launch) / 1e9;
    if (getrusage(RUSAGE_SELF, &ru) == 0 && wall > 0)
        res->cpu_percent = 100.0 *
                           ((double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                            (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6) /
                           wall;
    if (res->elapsed > 0) {
        res->req_per_sec = (double)t->requests / res->elapsed;
        res->bytes_per_sec = (double)t->bytes_rx / res->elapsed;
        res->conns_per_sec = (double)t->connects / res->elapsed;
    }
}

/* Everything after the threads were joined. Returns the exit status. */
static int finish(struct run *r, struct totals *t)
{
    struct result res;
    snapshot(r, t);
    result_of(r, t, &res);
    report_summary(stdout, &res);
    fflush(stdout);
    char why[512];
    int rc = report_verdict(&res, why, sizeof(why));
    if (r->o.json && report_json(r->o.json, &res) < 0)
        rc = 1;
    if (r->csv) {
        fclose(r->csv);
        r->csv = NULL;
    }
    if (r->o.plot && (r->o.csv || r->csv_tmp[0]))
        report_plot(r->o.plot, r->o.csv ? r->o.csv : r->csv_tmp, &r->o);
    if (r->csv_tmp[0])
        unlink(r->csv_tmp);
    return rc;
}

static int start_threads(struct run *r)
{
    uint32_t before = 0, idle_before = 0, id = 0, started = 0;
    int rc = 0;
    for (uint32_t i = 0; i < r->nth && rc == 0; i++)
        rc = setup_thread(r, i, &before, &idle_before, &id);
    r->t_launch = now_ns();
    r->measure_start = UINT64_MAX;
    if (rc == 0 && !r->phased)
        release_run(r, r->t_launch);
    for (uint32_t i = 0; i < r->nth && rc == 0; i++) {
        if ((errno = pthread_create(&r->th[i].tid, NULL, client_run, &r->th[i])) != 0) {
            perror("mux-stress: pthread_create");
            rc = -1;
            break;
        }
        started++;
    }
    if (rc < 0) { /* stop what started and wait for it */
        uint64_t one = 1;
        if (write(r->stop_fd, &one, sizeof(one)) < 0)
            perror("mux-stress: eventfd");
        for (uint32_t i = 0; i < started; i++)
            pthread_join(r->th[i].tid, NULL);
    }
    return rc;
}

static int run(struct run *r)
{
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* threads inherit the mask */
    r->sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC);
    r->stop_fd = eventfd(0, EFD_CLOEXEC);
    r->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    r->go_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    r->start_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    r->check_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    r->phased = r->o.idle > 0;
    r->th = calloc(r->nth, sizeof(*r->th));
    struct totals *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    int rc = 1;
    if (r->sig_fd < 0 || r->stop_fd < 0 || r->done_fd < 0 || r->go_fd < 0 || r->start_fd < 0 ||
        r->check_fd < 0 || !r->th || !a || !b) {
        perror("mux-stress: setup");
    } else if (open_csv(r) == 0) {
        if (start_threads(r) == 0) {
            if (supervise(r, &a, &b) < 0)
                _exit(1); /* second signal: leave without waiting for threads */
            for (uint32_t i = 0; i < r->nth; i++)
                pthread_join(r->th[i].tid, NULL);
            rc = finish(r, a);
        }
    }
    for (uint32_t i = 0; r->th && i < r->nth; i++)
        client_free(&r->th[i]);
    if (r->csv)
        fclose(r->csv);
    free(r->th);
    free(a);
    free(b);
    close(r->sig_fd);
    close(r->stop_fd);
    close(r->done_fd);
    close(r->go_fd);
    close(r->start_fd);
    close(r->check_fd);
    return rc;
}

int main(int argc, char **argv)
{
    static struct run r;
    int rc = options_parse(&r.o, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    signal(SIGPIPE, SIG_IGN);
    if (addr_resolve(&r.o, &r.addr, &r.addrlen) < 0 || check_source(&r) < 0 ||
        limits_apply(&r.o, is_loopback4(&r.addr)) < 0)
        return 2;
    if (r.o.tls && stls_init(&r.o) < 0)
        return 2; /* e.g. a --cacert file that holds no certificate */
    if (proto_init(&r.proto, &r.o, now_ns() ^ (uint64_t)getpid() << 32) < 0) {
        fprintf(stderr, "mux-stress: out of memory\n");
        return 1;
    }
    if (r.o.expect_file && proto_expect_file(&r.proto, r.o.expect_file) < 0) {
        fprintf(stderr, "mux-stress: --expect-file '%s': %s\n", r.o.expect_file,
                strerror(errno));
        proto_free(&r.proto);
        return 2;
    }
    r.nth = r.o.threads;
    rc = run(&r);
    proto_free(&r.proto);
    stls_cleanup();
    return rc;
}
