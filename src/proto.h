/*
 * proto: the messages of the handshake protocol, version 1
 * (modelcache-protocol(7)).
 *
 * Newline-delimited JSON over a Unix stream socket, one object a line, at
 * most PROTO_LINE_MAX bytes with its newline.  proto_decode() turns one line
 * into a request, checking everything a client may get wrong: syntax,
 * types, unknown ops, missing or oversized fields.  Unknown fields are
 * ignored.  It is a pure function of its input (the fuzz target in
 * tests/fuzz/ drives it), so the daemon never sees a malformed request.
 * The encoders build the answers; every answer is one line.
 *
 * The other way round, for a client (libmodelcache compiles this file in):
 * the request encoders build what proto_decode() reads, and
 * proto_answer_decode() reads what the answer encoders build.  Each pair
 * is tested against the other (tests/unit/test_proto.c).
 */
#ifndef MC_PROTO_H
#define MC_PROTO_H

#include <stddef.h>

#include <jansson.h>

#include "errors.h"

#define PROTO_VERSION 1
#define PROTO_LINE_MAX (1024 * 1024) /* a message with its newline */
/* Buffer sizes, the NUL included: a field holds at most one byte less. */
#define PROTO_MODEL_MAX 2048 /* a model reference */
#define PROTO_LEASE_MAX 256  /* a lease id */
#define PROTO_CLIENT_MAX 128 /* a client's name */
/* A "files" event of a chunked ready answer: at most this many bytes. */
#define PROTO_CHUNK_MAX (256 * 1024)

/*
 * The closed set of error codes (DESIGN.md section 5) is the table of
 * errors.h: PROTO_NOT_FOUND is ERR_NOT_FOUND, its wire name err_name().
 */
enum proto_error {
#define PROTO_ENUM(code, name, err, exit, phrase) PROTO_##code = ERR_##code,
	ERRORS(PROTO_ENUM)
#undef PROTO_ENUM
};

enum proto_op { OP_HELLO, OP_ACQUIRE, OP_RELEASE, OP_STATUS };

struct proto_req {
	enum proto_op op;
	int protocol;		       /* hello */
	char client[PROTO_CLIENT_MAX]; /* hello, optional */
	int chunked;		       /* hello: may get "files" events */
	char model[PROTO_MODEL_MAX];   /* acquire */
	int wait;		       /* acquire, default 1 */
	long long timeout_ms;	       /* acquire, 0: none */
	char lease[PROTO_LEASE_MAX];   /* release */
};

/*
 * Decodes one line (without its newline; len bytes, not NUL-ended) into
 * req, which it clears first.  Returns PROTO_OK, or PROTO_BAD_REQUEST with
 * a sentence in err (valid UTF-8 unless errlen cuts it).  A hello's
 * protocol is any integer from 1 to INT_MAX: which ones it speaks is the
 * daemon's call.
 */
enum proto_error proto_decode(const char *line, size_t len,
    struct proto_req *req, char *err, size_t errlen);

/*
 * The answers, as JSON lines the caller frees (NULL when out of memory):
 * an error (a NULL message is empty; bytes of a message that is not valid
 * UTF-8 show as '?'), and {"ok":true, ...fields of obj} (obj is consumed;
 * NULL also when obj is NULL or not an object).  Non-ASCII is escaped, so
 * a line never holds a newline or a byte over 0x7f.
 */
char *proto_error_line(enum proto_error e, const char *message);
char *proto_ok_line(json_t *obj);
/* Any object as one line (obj is consumed). */
char *proto_line(json_t *obj);

/*
 * The requests, as JSON lines the caller frees (without their newline):
 * 0 and *line, -EINVAL when a string is NULL or not valid UTF-8, or
 * -ENOMEM.  A hello says protocol PROTO_VERSION, client unless it is NULL,
 * and chunked when set; an acquire's timeout_ms is sent when over 0.
 * Lengths are the daemon's to check: it answers bad_request.
 */
int proto_hello_line(const char *client, int chunked, char **line);
int proto_acquire_line(const char *model, int wait, long long timeout_ms,
    char **line);
int proto_release_line(const char *lease, char **line);
int proto_status_line(char **line);

/*
 * Decodes one line of the daemon's (len bytes without its newline, not
 * NUL-ended): 0 and the object in *answer, which the caller frees with
 * json_decref(); -EPROTO when the line is PROTO_LINE_MAX or over, or not a
 * JSON object; -ENOMEM.
 */
int proto_answer_decode(const char *line, size_t len, json_t **answer);

/*
 * What a final answer says: 0 for {"ok":true,...}; else its code's errno
 * (errors.h, negative: a code outside the set, or "ok" in an error, is
 * internal), or -EPROTO without a code.  *message is the error's message,
 * "" without one, valid as long as answer.
 */
int proto_answer_outcome(json_t *answer, const char **message);

#endif
