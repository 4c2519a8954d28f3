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
 * `ident` (kept by pointer) prefixes each line. */
void mux_log_setup(int level, const char *ident);
bool mux_log_enabled(int level);
void mux_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "error"|"warn"|"info"|"debug" -> level, or -1. */
int mux_log_level_parse(const char *name);
const char *mux_log_level_name(int level);

#ifdef __cplusplus
}
#endif
#endif
