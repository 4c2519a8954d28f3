/* log.c - the logger: one line per message, level and UTC timestamp, to
 * stderr or to a file. The level and the descriptor are read by every
 * thread; a new file replaces the old one with dup2() onto the same
 * descriptor, so a thread writing meanwhile never sees it closed. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "compiler.h"
#include "mux/log.h"

static atomic_int log_level = MUX_LOG_INFO;
static const char *log_ident = "mux";
static atomic_int log_fd = STDERR_FILENO;
static char log_path[256]; /* main thread only */
static const char level_letter[] = "EWID";
static const char *const level_names[] = {"error", "warn", "info", "debug"};

MUX_API void mux_log_setup(int level, const char *ident)
{
    atomic_store_explicit(&log_level, level, memory_order_relaxed);
    if (ident)
        log_ident = ident;
}

MUX_API bool mux_log_enabled(int level)
{
    return level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

MUX_API int mux_log_level_parse(const char *name)
{
    for (int i = 0; i < (int)MUX_ARRAY_SIZE(level_names); i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

MUX_API const char *mux_log_level_name(int level)
{
    if (level < 0 || level >= (int)MUX_ARRAY_SIZE(level_names))
        return "?";
    return level_names[level];
}

MUX_API void mux_log(int level, const char *fmt, ...)
{
    if (!mux_log_enabled(level))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);

    char line[1024];
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %c ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, log_ident,
                     level_letter[level < 0 ? 0 : level > 3 ? 3 : level]);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    /* One write per line so lines from different threads never interleave. */
    ssize_t w = write(atomic_load_explicit(&log_fd, memory_order_relaxed), line, (size_t)n);
    (void)w;
}

static int open_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

MUX_API int mux_log_set_file(const char *path)
{
    int cur = atomic_load_explicit(&log_fd, memory_order_relaxed);
    if (!path || !path[0]) {
        if (cur != STDERR_FILENO) {
            atomic_store_explicit(&log_fd, STDERR_FILENO, memory_order_relaxed);
            /* cur stays open: a thread may still be writing to it */
        }
        log_path[0] = '\0';
        return 0;
    }
    if (strlen(path) >= sizeof(log_path))
        return -ENAMETOOLONG;
    int fd = open_log(path);
    if (fd < 0)
        return fd;
    if (cur == STDERR_FILENO) {
        atomic_store_explicit(&log_fd, fd, memory_order_relaxed);
    } else { /* same descriptor number, new file */
        dup2(fd, cur);
        close(fd);
    }
    snprintf(log_path, sizeof(log_path), "%s", path);
    return 0;
}

MUX_API int mux_log_reopen(void)
{
    if (!log_path[0])
        return 0;
    char path[sizeof(log_path)];
    snprintf(path, sizeof(path), "%s", log_path);
    return mux_log_set_file(path);
}
