/*
 * errors: the one vocabulary of failure.
 *
 * A failure that crosses a boundary (a pull's end, the daemon's answer, a
 * client library's return, a program's exit) is one of the codes of the
 * table below, and everything that speaks of it is derived from that
 * table: its wire name (modelcache-protocol(7), DESIGN.md section 5), the
 * negative errno libmodelcache returns (libmodelcache(3)), the exit status
 * of modelcache-preload(1) and modelcache(1), and the phrase a person is
 * told.  Nothing else translates codes by hand: enum proto_error (proto.h)
 * and enum pull_error (pull.h) are this table's codes under the names their
 * modules use.
 *
 * The table depends on nothing but <errno.h>: libmodelcache, which must not
 * link the store, compiles errors.c into itself.  tests/unit/test_errors.c
 * checks that every code has a name, an errno, an exit status and a
 * phrase, and that no two codes share a wire name or an errno.
 */
#ifndef MC_ERRORS_H
#define MC_ERRORS_H

#include <errno.h>

/*
 * The exit statuses of modelcache(1) and modelcache-preload(1)
 * (EXIT STATUS in their pages).  modelcache(1) uses 0 to 7; 8 and 9 are a
 * client's of the daemon, 126 and 127 preload's command's.
 */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,	   /* a failure not listed below */
	EXIT_USAGE = 2,	   /* bad arguments or names */
	EXIT_NOTFOUND = 3, /* no such model, revision or directory */
	EXIT_UNAUTHORIZED = 4,
	EXIT_INTEGRITY = 5, /* bytes do not match their digest */
	EXIT_NETWORK = 6,   /* the origin (or, for status, the daemon) */
	EXIT_NOSPACE = 7,
	EXIT_UNREACHABLE = 8, /* the daemon cannot be reached, or went away */
	EXIT_TIMEOUT = 9,
	EXIT_CANNOT_EXEC = 126, /* found, but not executable */
	EXIT_NO_COMMAND = 127,	/* not found */
};

/*
 * X(CODE, wire name, errno, exit status, phrase), in the order of the wire
 * set.  The phrase completes "cannot acquire 'MODEL': ...".
 */
#define ERRORS(X) \
	X(OK, "ok", 0, EXIT_OK, "success") \
	X(BAD_REQUEST, "bad_request", EINVAL, EXIT_USAGE, \
	    "bad model reference") \
	X(UNSUPPORTED_PROTOCOL, "unsupported_protocol", EPROTONOSUPPORT, \
	    EXIT_FAIL, "the daemon does not speak this protocol version") \
	X(NOT_FOUND, "not_found", ENOENT, EXIT_NOTFOUND, "not found") \
	X(UNAUTHORIZED, "unauthorized", EACCES, EXIT_UNAUTHORIZED, \
	    "unauthorized (the origin wants a token, or refused it)") \
	X(FORBIDDEN, "forbidden", EPERM, EXIT_UNAUTHORIZED, \
	    "forbidden (access not granted)") \
	X(ORIGIN_UNAVAILABLE, "origin_unavailable", EHOSTUNREACH, \
	    EXIT_NETWORK, "the origin is unavailable") \
	X(INTEGRITY, "integrity", EBADMSG, EXIT_INTEGRITY, \
	    "integrity failure (the bytes never matched their digest)") \
	X(NO_SPACE, "no_space", ENOSPC, EXIT_NOSPACE, "no space in the store") \
	X(TIMEOUT, "timeout", ETIMEDOUT, EXIT_TIMEOUT, "timed out") \
	X(BUSY, "busy", EBUSY, EXIT_FAIL, \
	    "the daemon is busy (too many connections)") \
	X(SHUTTING_DOWN, "shutting_down", ESHUTDOWN, EXIT_UNREACHABLE, \
	    "the daemon is stopping") \
	X(INTERNAL, "internal", EIO, EXIT_FAIL, "the daemon failed")

enum err_code {
#define ERR_ENUM(code, name, err, exit, phrase) ERR_##code,
	ERRORS(ERR_ENUM)
#undef ERR_ENUM
	    ERR_COUNT
};

/*
 * The columns of code e, as static strings and numbers; a value outside
 * the enum reads as ERR_INTERNAL (a code from outside the closed set is
 * our bug).  err_errno() is negative, 0 for ERR_OK.
 */
const char *err_name(enum err_code e);
int err_errno(enum err_code e);
int err_exit(enum err_code e);
const char *err_phrase(enum err_code e);

/*
 * The code of a wire name; ERR_INTERNAL for NULL or a name outside the
 * set (the protocol says to read another code as internal).
 */
enum err_code err_of_name(const char *name);

/*
 * The code of rc, 0 or a negative errno: the table's errno column, and a
 * few errnos of a local store that mean a code too (ENOTDIR: not_found,
 * ENAMETOOLONG: bad_request, EDQUOT: no_space); ERR_INTERNAL for others.
 */
enum err_code err_of_errno(int rc);

#endif
