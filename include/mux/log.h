/* mux/log.h - one-line logs to stderr: "2026-11-24T10:00:00.123Z mux-echo W message".
 * Any thread. Hot paths test mux_log_enabled() before formatting anything. */
#ifndef MUX_LOG_H
#define MUX_LOG_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

enum mux_log_level { MUX_LOG_ERROR = 0, MUX_LOG_WARN, MUX_LOG_INFO, MUX_LOG_DEBUG };

/* Main thread, before the server starts: messages above `level` are dropped,
 * `ident` (kept by pointer; NULL keeps the current one) prefixes each line.
 * The level may be changed again while threads log (a reload). */
void mux_log_setup(int level, const char *ident);

/* Main thread: log to `path` (appending, created 0644) instead of stderr, or
 * back to stderr with "" or NULL. Returns 0 or a negative errno (the log
 * stays where it was). Lines being written meanwhile go to the old or the
 * new file, never nowhere. */
int mux_log_set_file(const char *path);

/* Main thread: reopen the log file at the same path (log rotation, SIGUSR1).
 * 0, or a negative errno (the old file stays in use). */
int mux_log_reopen(void);
bool mux_log_enabled(int level);
void mux_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "error"|"warn"|"info"|"debug" -> level, or -1. */
int mux_log_level_parse(const char *name);
const char *mux_log_level_name(int level);

#ifdef __cplusplus
}
#endif
#endif
