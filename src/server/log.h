/*
 * log.h - leveled logging to stderr for causewayd: one line per event,
 * "2026-11-22T04:36:54.123Z us-east INFO message".
 */
#ifndef CW_SERVER_LOG_H
#define CW_SERVER_LOG_H

enum cw_log_level { CW_LOG_DEBUG = 0, CW_LOG_INFO = 1, CW_LOG_WARN = 2, CW_LOG_ERROR = 3 };

/* Sets the minimum level and the region name printed on each line (copied). */
void cw_log_setup(enum cw_log_level min, const char *region);
/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int cw_log_level_parse(const char *s);
void cw_log(enum cw_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define cw_debug(...) cw_log(CW_LOG_DEBUG, __VA_ARGS__)
#define cw_info(...) cw_log(CW_LOG_INFO, __VA_ARGS__)
#define cw_warn(...) cw_log(CW_LOG_WARN, __VA_ARGS__)
#define cw_error(...) cw_log(CW_LOG_ERROR, __VA_ARGS__)

#endif
