/*
 * log: diagnostics on standard error, as text or as JSON lines.
 *
 * The settings below are the only mutable globals of the project: a process
 * has one standard error and one way of writing to it, chosen once by
 * log_init() before any other thread exists.
 *
 * Each line is built whole in a bounded buffer and handed to one write(2),
 * so threads and processes sharing the descriptor do not interleave inside
 * a line (on a pipe, for lines up to PIPE_BUF bytes).  A message longer
 * than the buffer is cut, never inside an escape or a UTF-8 sequence.
 * Messages carry names that come from clients and origins, so neither
 * format lets one forge a line:
 *	text	"prog: message", with control bytes written as C escapes
 *		(\n, \r, \t, \b, \f) or \xHH;
 *	json	{"ts":…,"level":…,"prog":…,"msg":…}, strings escaped as
 *		RFC 8259 requires, and bytes that are not valid UTF-8
 *		replaced by U+FFFD so the line stays valid JSON.
 * Every function keeps errno as it found it.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_MSG_MAX 4096  /* bytes of formatted message, error text included */
#define LOG_LINE_MAX 8192 /* bytes of one output line */
#define LOG_TAIL_MAX 8	  /* room kept for what closes a line */

/* Until log_init(), lines carry this name and only errors and warnings. */
static const char *log_prog = "modelcache";
static enum log_format log_fmt = LOG_TEXT;
static int log_verbosity;

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

/* An output line under construction; len never passes sizeof(buf). */
struct line {
	char buf[LOG_LINE_MAX];
	size_t len;
	int full; /* something did not fit: add nothing more but the tail */
};

void
log_init(const char *progname, enum log_format format, int verbose)
{
	if (progname != NULL)
		log_prog = progname;
	log_fmt = format;
	log_verbosity = verbose;
}

int
log_format_parse(const char *name, enum log_format *format)
{
	if (name == NULL)
		return -EINVAL;
	if (strcmp(name, "text") == 0)
		*format = LOG_TEXT;
	else if (strcmp(name, "json") == 0)
		*format = LOG_JSON;
	else
		return -EINVAL;
	return 0;
}

void
log_set_verbose(int verbose)
{
	log_verbosity = verbose;
}

/*
 * Appends s[0..n) whole or not at all, keeping LOG_TAIL_MAX bytes free
 * unless tail is set.
 */
static void
line_add(struct line *l, const char *s, size_t n, int tail)
{
	size_t limit = sizeof(l->buf) - (tail ? 0 : LOG_TAIL_MAX);

	if (l->full && !tail)
		return;
	if (l->len > limit || n > limit - l->len) {
		l->full = 1;
		return;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void
line_str(struct line *l, const char *s)
{
	line_add(l, s, strlen(s), 0);
}

/* Appends a control byte as \xHH (text) or \u00HH (JSON). */
static void
line_hex(struct line *l, const char *prefix, unsigned char c)
{
	static const char digits[] = "0123456789abcdef";
	char esc[8];
	size_t n = strlen(prefix);

	memcpy(esc, prefix, n);
	esc[n++] = digits[c >> 4];
	esc[n++] = digits[c & 0xf];
	line_add(l, esc, n, 0);
}

/* The short C escape of c, or NULL when it has none. */
static const char *
short_escape(unsigned char c)
{
	switch (c) {
	case '\n':
		return "\\n";
	case '\r':
		return "\\r";
	case '\t':
		return "\\t";
	case '\b':
		return "\\b";
	case '\f':
		return "\\f";
	default:
		return NULL;
	}
}

static void
line_text(struct line *l, const char *s)
{
	const char *esc;
	size_t run;

	while (*s != '\0') {
		for (run = 0; (unsigned char)s[run] >= 0x20 && s[run] != 0x7f;)
			run++;
		line_add(l, s, run, 0);
		s += run;
		if (*s == '\0')
			break;
		if ((esc = short_escape((unsigned char)*s)) != NULL)
			line_str(l, esc);
		else
			line_hex(l, "\\x", (unsigned char)*s);
		s++;
	}
}

static int
is_cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

/*
 * The length of the valid UTF-8 sequence at s (a NUL-terminated string), or
 * 0 when s does not start one: no overlong forms, no surrogates, nothing
 * above U+10FFFF.
 */
static size_t
utf8_len(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (!is_cont(s[i]))
			return 0;
	return n;
}

static void
line_json_string(struct line *l, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	const char *esc;
	size_t n;

	line_str(l, "\"");
	while (*p != '\0') {
		if (*p == '"')
			line_str(l, "\\\"");
		else if (*p == '\\')
			line_str(l, "\\\\");
		else if ((esc = short_escape(*p)) != NULL)
			line_str(l, esc);
		else if (*p < 0x20 || *p == 0x7f)
			line_hex(l, "\\u00", *p);
		else if ((n = utf8_len(p)) == 0)
			line_str(l, "\\ufffd");
		else {
			line_add(l, (const char *)p, n, 0);
			p += n;
			continue;
		}
		p++;
	}
	line_add(l, "\"", 1, 1);
}

/* "2026-11-26T18:00:00.123Z", now, in UTC. */
static void
timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0 ||
	    gmtime_r(&ts.tv_sec, &tm) == NULL) {
		snprintf(buf, len, "1970-01-01T00:00:00.000Z");
		return;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (int)(ts.tv_nsec / 1000000));
}

static void
build_json(struct line *l, const char *level, const char *msg)
{
	char ts[64];

	timestamp(ts, sizeof(ts));
	line_str(l, "{\"ts\":\"");
	line_str(l, ts);
	line_str(l, "\",\"level\":\"");
	line_str(l, level);
	line_str(l, "\",\"prog\":");
	line_json_string(l, log_prog);
	line_str(l, ",\"msg\":");
	line_json_string(l, msg);
	line_add(l, "}\n", 2, 1);
}

static void
build_text(struct line *l, const char *msg)
{
	line_text(l, log_prog);
	line_str(l, ": ");
	line_text(l, msg);
	line_add(l, "\n", 1, 1);
}

/* Writes all of buf to standard error; a failure has nowhere to go. */
static void
write_all(const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(STDERR_FILENO, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

static int
level_enabled(enum log_level level)
{
	switch (level) {
	case LOG_LEVEL_INFO:
		return log_verbosity >= 1;
	case LOG_LEVEL_DEBUG:
		return log_verbosity >= 2;
	default:
		return 1;
	}
}

static const char *
level_name(enum log_level level)
{
	if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
		return "error";
	return level_names[level];
}

void
log_vlog(enum log_level level, int err, const char *fmt, va_list ap)
{
	int saved_errno = errno;
	char msg[LOG_MSG_MAX];
	struct line l;
	int n;

	if (!level_enabled(level))
		goto out;
	if ((n = vsnprintf(msg, sizeof(msg), fmt, ap)) < 0)
		n = snprintf(msg, sizeof(msg), "(bad log format)");
	if (err != 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s",
		    strerror(err));
	l.len = 0;
	l.full = 0;
	if (log_fmt == LOG_JSON)
		build_json(&l, level_name(level), msg);
	else
		build_text(&l, msg);
	write_all(l.buf, l.len);
out:
	errno = saved_errno;
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_WARN, errno, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_WARN, 0, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_INFO, 0, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_DEBUG, 0, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_ERROR, errno, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
