/*
 * proto: see proto.h.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

/* "'name' what", or "what" without a name. */
static enum proto_error
bad(char *err, size_t len, const char *name, const char *what)
{
	if (name != NULL)
		snprintf(err, len, "'%s' %s", name, what);
	else
		snprintf(err, len, "%s", what);
	return PROTO_BAD_REQUEST;
}

/*
 * A string field into buf: absent is fine when optional; a wrong type, an
 * empty value, a NUL inside or an oversized one is not.
 */
static int
string_field(json_t *root, const char *name, int required, char *buf,
    size_t cap, char *err, size_t len)
{
	json_t *v = json_object_get(root, name);
	size_t n;

	buf[0] = '\0';
	if (v == NULL) {
		if (required)
			bad(err, len, name, "is missing");
		return required ? -1 : 0;
	}
	if (!json_is_string(v)) {
		bad(err, len, name, "must be a string");
		return -1;
	}
	n = json_string_length(v);
	if (n == 0 || n >= cap || memchr(json_string_value(v), '\0', n)) {
		bad(err, len, name,
		    n == 0	   ? "is empty"
			: n >= cap ? "is too long"
				   : "holds a NUL byte");
		return -1;
	}
	memcpy(buf, json_string_value(v), n + 1);
	return 0;
}

/* Every byte of s over 0x7f becomes '?'. */
static void
ascii_only(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			*s = '?';
}

/*
 * How many bytes of the valid UTF-8 string s to show in at most max bytes
 * without cutting a character: a message must stay valid UTF-8, or no
 * error line can carry it.
 */
static int
utf8_prefix(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n <= max)
		return (int)n;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return (int)max;
}

static enum proto_error
decode_fields(json_t *root, struct proto_req *req, char *err, size_t len)
{
	json_t *v;

	switch (req->op) {
	case OP_HELLO:
		/*
		 * A version we do not speak is the daemon's answer
		 * (unsupported_protocol); one that is no version at all is
		 * the client's mistake.
		 */
		v = json_object_get(root, "protocol");
		if (v == NULL)
			return bad(err, len, "protocol", "is missing");
		if (!json_is_integer(v))
			return bad(err, len, "protocol", "must be an integer");
		if (json_integer_value(v) < 1 ||
		    json_integer_value(v) > INT_MAX)
			return bad(err, len, "protocol", "is out of range");
		req->protocol = (int)json_integer_value(v);
		v = json_object_get(root, "chunked");
		if (v != NULL && !json_is_boolean(v))
			return bad(err, len, "chunked",
			    "must be true or false");
		req->chunked = json_is_true(v);
		return string_field(root, "client", 0, req->client,
			   sizeof(req->client), err, len) < 0
		    ? PROTO_BAD_REQUEST
		    : PROTO_OK;
	case OP_ACQUIRE:
		if (string_field(root, "model", 1, req->model,
			sizeof(req->model), err, len) < 0)
			return PROTO_BAD_REQUEST;
		v = json_object_get(root, "wait");
		if (v != NULL && !json_is_boolean(v))
			return bad(err, len, "wait", "must be true or false");
		req->wait = v == NULL || json_is_true(v);
		v = json_object_get(root, "timeout_ms");
		if (v != NULL &&
		    (!json_is_integer(v) || json_integer_value(v) < 0))
			return bad(err, len, "timeout_ms",
			    "must be a non-negative integer");
		req->timeout_ms = v != NULL ? json_integer_value(v) : 0;
		return PROTO_OK;
	case OP_RELEASE:
		return string_field(root, "lease", 1, req->lease,
			   sizeof(req->lease), err, len) < 0
		    ? PROTO_BAD_REQUEST
		    : PROTO_OK;
	case OP_STATUS:
		return PROTO_OK;
	}
	return PROTO_INTERNAL;
}

enum proto_error
proto_decode(const char *line, size_t len, struct proto_req *req, char *err,
    size_t errlen)
{
	static const char *const ops[] = { "hello", "acquire", "release",
		"status" };
	json_error_t je;
	enum proto_error e;
	json_t *root, *op;
	size_t i;

	memset(req, 0, sizeof(*req));
	err[0] = '\0';
	if (len >= PROTO_LINE_MAX)
		return bad(err, errlen, NULL, "message over 1 MiB");
	/*
	 * Jansson rejects invalid UTF-8, \u0000 and nesting deeper than
	 * JSON_PARSER_MAX_DEPTH; JSON_DECODE_ANY lets a scalar reach the
	 * object check below, for a clearer message.
	 */
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
	    &je);
	if (root == NULL) {
		/*
		 * Jansson quotes the input near the error, and may cut a
		 * character there: its text is made ASCII to stay valid UTF-8.
		 */
		ascii_only(je.text);
		snprintf(err, errlen, "malformed JSON: %s", je.text);
		return PROTO_BAD_REQUEST;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		return bad(err, errlen, NULL, "a message is a JSON object");
	}
	op = json_object_get(root, "op");
	if (!json_is_string(op)) {
		json_decref(root);
		return bad(err, errlen, "op",
		    op == NULL ? "is missing" : "must be a string");
	}
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(json_string_value(op), ops[i]) == 0)
			break;
	if (i == sizeof(ops) / sizeof(ops[0])) {
		snprintf(err, errlen, "unknown op '%.*s'",
		    utf8_prefix(json_string_value(op), 64),
		    json_string_value(op));
		json_decref(root);
		return PROTO_BAD_REQUEST;
	}
	req->op = (enum proto_op)i;
	e = decode_fields(root, req, err, errlen);
	json_decref(root);
	return e;
}

char *
proto_line(json_t *obj)
{
	char *text;

	if (obj == NULL)
		return NULL;
	text = json_dumps(obj,
	    JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII |
		JSON_REAL_PRECISION(6));
	json_decref(obj);
	return text;
}

char *
proto_ok_line(json_t *obj)
{
	json_t *line = json_pack("{s:b}", "ok", 1);

	/* "ok" stays first and true whatever obj holds. */
	if (line == NULL || obj == NULL || json_object_update(line, obj) < 0 ||
	    json_object_set_new(line, "ok", json_true()) < 0) {
		json_decref(line);
		json_decref(obj);
		return NULL;
	}
	json_decref(obj);
	return proto_line(line);
}

/*
 * A message may quote what a client or an origin sent: one that is not
 * valid UTF-8 keeps its ASCII and shows every other byte as '?', so that
 * only a lack of memory leaves a client without its answer.
 */
char *
proto_error_line(enum proto_error e, const char *message)
{
	json_t *msg;
	char *copy;

	if (message == NULL)
		message = "";
	msg = json_string(message);
	if (msg == NULL) {
		copy = strdup(message);
		if (copy == NULL)
			return NULL;
		ascii_only(copy);
		msg = json_string(copy);
		free(copy);
	}
	return proto_line(json_pack("{s:b, s:{s:s, s:o}}", "ok", 0, "error",
	    "code", err_name((enum err_code)e), "message", msg));
}

/* A request object as its line; 0, -EINVAL (a string not UTF-8) or -ENOMEM. */
static int
request(json_t *obj, const json_error_t *je, char **line)
{
	*line = NULL;
	if (obj == NULL)
		return json_error_code(je) == json_error_out_of_memory
		    ? -ENOMEM
		    : -EINVAL;
	*line = proto_line(obj);
	return *line != NULL ? 0 : -ENOMEM;
}

int
proto_hello_line(const char *client, int chunked, char **line)
{
	json_error_t je;
	json_t *obj;

	obj = json_pack_ex(&je, 0, "{s:s, s:i}", "op", "hello", "protocol",
	    PROTO_VERSION);
	if (obj != NULL && client != NULL &&
	    json_object_set_new(obj, "client", json_string(client)) < 0) {
		json_decref(obj);
		*line = NULL;
		/* json_string() fails for bytes that are not UTF-8. */
		return -EINVAL;
	}
	if (obj != NULL && chunked &&
	    json_object_set_new(obj, "chunked", json_true()) < 0) {
		json_decref(obj);
		*line = NULL;
		return -ENOMEM;
	}
	return request(obj, &je, line);
}

int
proto_acquire_line(const char *model, int wait, long long timeout_ms,
    char **line)
{
	json_error_t je;

	return request(timeout_ms > 0
		? json_pack_ex(&je, 0, "{s:s, s:s, s:b, s:I}", "op", "acquire",
		      "model", model, "wait", wait != 0, "timeout_ms",
		      (json_int_t)timeout_ms)
		: json_pack_ex(&je, 0, "{s:s, s:s, s:b}", "op", "acquire",
		      "model", model, "wait", wait != 0),
	    &je, line);
}

int
proto_release_line(const char *lease, char **line)
{
	json_error_t je;

	return request(json_pack_ex(&je, 0, "{s:s, s:s}", "op", "release",
			   "lease", lease),
	    &je, line);
}

int
proto_status_line(char **line)
{
	json_error_t je;

	return request(json_pack_ex(&je, 0, "{s:s}", "op", "status"), &je,
	    line);
}

int
proto_answer_decode(const char *line, size_t len, json_t **answer)
{
	json_error_t je;
	json_t *v;

	*answer = NULL;
	if (len >= PROTO_LINE_MAX)
		return -EPROTO;
	v = json_loadb(line, len, 0, &je);
	if (v == NULL && json_error_code(&je) == json_error_out_of_memory)
		return -ENOMEM;
	if (!json_is_object(v)) {
		json_decref(v);
		return -EPROTO;
	}
	*answer = v;
	return 0;
}

int
proto_answer_outcome(json_t *answer, const char **message)
{
	json_t *err = json_object_get(answer, "error");
	const char *code = json_string_value(json_object_get(err, "code"));
	enum err_code e;

	*message = json_string_value(json_object_get(err, "message"));
	if (*message == NULL)
		*message = "";
	if (json_is_true(json_object_get(answer, "ok")))
		return 0;
	if (code == NULL)
		return -EPROTO;
	/* The set is closed; the protocol says to read another as internal. */
	e = err_of_name(code);
	return err_errno(e != ERR_OK ? e : ERR_INTERNAL);
}
