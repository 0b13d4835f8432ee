/*
 * log: the one place programs write diagnostics.
 *
 * Libraries under src/ never call these; they return codes and the program
 * that called them logs once, where the decision is made.  Lines are
 * lowercase, say what failed first and quote the subject:
 *	cannot open 'x': No such file or directory
 * With LOG_JSON each line is one JSON object:
 *	{"ts":"2026-11-26T18:00:00.123Z","level":"warn","prog":"modelcached",
 *	 "msg":"cannot open 'x': No such file or directory"}
 * The module keeps its settings in static storage: it belongs to a process,
 * set once by log_init() at start.
 */
#ifndef MC_LOG_H
#define MC_LOG_H

#include <stdarg.h>

enum log_format { LOG_TEXT, LOG_JSON };
enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG
};

/* progname is kept by pointer and must outlive the process's logging. */
void log_init(const char *progname, enum log_format format, int verbose);
/* Parses "text" or "json" (0 or -EINVAL). */
int log_format_parse(const char *name, enum log_format *format);
void log_set_verbose(int verbose);

/* log_warn appends ": strerror(errno)"; the x forms do not. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Logs at error level and exits 1: start-up, shutdown, broken invariants. */
_Noreturn void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
_Noreturn void fatalx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* The common body: level, message and an optional error code (0 = none). */
void log_vlog(enum log_level level, int err, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
