/*
 * test_proto: unit tests for src/proto.c, the handshake protocol's
 * messages.
 *
 * Every op is decoded field by field, with the defaults of the optional
 * fields.  Every class of bad input a client can send (syntax, types,
 * sizes, encodings, nesting) must give bad_request with the sentence the
 * client will read, so the rejections are a table, one row per input.
 * The encoders are checked by parsing their lines back: one line, ASCII
 * only, with the fields they were given.  A client's side is checked
 * against the daemon's: the request encoders' lines through
 * proto_decode(), the answer encoders' through proto_answer_decode().
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "proto.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static struct proto_req req;
static char err[256];

/* s[0..len) with control and non-ASCII bytes as \xHH, cut for messages. */
static const char *
show(const char *s, size_t len, char *buf, size_t buflen)
{
	size_t i, n = 0;

	for (i = 0; i < len && n + 8 < buflen; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f)
			buf[n++] = (char)c;
		else
			n +=
			    (size_t)snprintf(buf + n, buflen - n, "\\x%02x", c);
	}
	if (i < len)
		n += (size_t)snprintf(buf + n, buflen - n, "...");
	buf[n] = '\0';
	return buf;
}

/* Decodes s[0..len), which must be accepted. */
static void
accept_n(const char *s, size_t len)
{
	char buf[200];
	enum proto_error e = proto_decode(s, len, &req, err, sizeof(err));

	if (e != PROTO_OK)
		fail_msg("proto_decode(\"%s\"): got %d \"%s\", want ok",
		    show(s, len, buf, sizeof(buf)), e, err);
	assert_string_equal(err, "");
}

static void
accept(const char *s)
{
	accept_n(s, strlen(s));
}

/*
 * Decodes s[0..len), which must be refused as bad_request with err equal to
 * want, or holding it when exact is 0 (jansson's own sentences).
 */
static void
reject_n(const char *s, size_t len, const char *want, int exact)
{
	char buf[200];
	enum proto_error e = proto_decode(s, len, &req, err, sizeof(err));

	if (e == PROTO_BAD_REQUEST &&
	    (exact ? strcmp(err, want) == 0 : strstr(err, want) != NULL))
		return;
	fail_msg("proto_decode(\"%s\"): got %d \"%s\", want %d %s\"%s\"",
	    show(s, len, buf, sizeof(buf)), e, err, PROTO_BAD_REQUEST,
	    exact ? "" : "holding ", want);
}

/* A string of n copies of c, freed by the caller. */
static char *
repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* printf into a fresh string the caller frees. */
static char *
format(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	s = malloc((size_t)n + 1);
	assert_non_null(s);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* --- the ops --- */

static void
test_hello(void **state)
{
	accept("{\"op\":\"hello\",\"protocol\":1,"
	       "\"client\":\"modelcache-preload/0.1\"}");
	assert_int_equal(req.op, OP_HELLO);
	assert_int_equal(req.protocol, 1);
	assert_string_equal(req.client, "modelcache-preload/0.1");

	accept("{\"op\":\"hello\",\"protocol\":1}");
	assert_int_equal(req.op, OP_HELLO);
	assert_int_equal(req.protocol, 1);
	assert_string_equal(req.client, "");
	assert_int_equal(req.chunked, 0);

	/* "chunked": the client takes a ready answer in several lines. */
	accept("{\"op\":\"hello\",\"protocol\":1,\"chunked\":true}");
	assert_int_equal(req.chunked, 1);
	accept("{\"op\":\"hello\",\"protocol\":1,\"chunked\":false}");
	assert_int_equal(req.chunked, 0);

	/* A version we do not speak is the daemon's answer, not ours. */
	accept("{\"protocol\":2,\"op\":\"hello\"}");
	assert_int_equal(req.protocol, 2);
	accept(" {\"op\" : \"hello\",\t\"protocol\": 2147483647 } ");
	assert_int_equal(req.protocol, INT_MAX);

	/* Non-ASCII names come through as UTF-8. */
	accept("{\"op\":\"hello\",\"protocol\":1,\"client\":\"caf\\u00e9 "
	       "\xe2\x82\xac\"}");
	assert_string_equal(req.client, "caf\xc3\xa9 \xe2\x82\xac");
}

static void
test_acquire(void **state)
{
	accept("{\"op\":\"acquire\",\"model\":\"hf://org/name@main\","
	       "\"wait\":true}");
	assert_int_equal(req.op, OP_ACQUIRE);
	assert_string_equal(req.model, "hf://org/name@main");
	assert_int_equal(req.wait, 1);
	assert_int_equal(req.timeout_ms, 0);

	accept("{\"op\":\"acquire\",\"model\":\"org/name\",\"wait\":false}");
	assert_int_equal(req.op, OP_ACQUIRE);
	assert_string_equal(req.model, "org/name");
	assert_int_equal(req.wait, 0);
	assert_int_equal(req.timeout_ms, 0);

	/* wait defaults to true. */
	accept("{\"op\":\"acquire\",\"model\":\"org/name\"}");
	assert_int_equal(req.wait, 1);
	assert_int_equal(req.timeout_ms, 0);

	accept("{\"op\":\"acquire\",\"model\":\"m\",\"timeout_ms\":30000,"
	       "\"wait\":true}");
	assert_string_equal(req.model, "m");
	assert_int_equal(req.wait, 1);
	assert_int_equal(req.timeout_ms, 30000);

	accept("{\"op\":\"acquire\",\"model\":\"m\",\"timeout_ms\":0}");
	assert_int_equal(req.timeout_ms, 0);
	accept("{\"op\":\"acquire\",\"model\":\"m\","
	       "\"timeout_ms\":9223372036854775807}");
	assert_true(req.timeout_ms == LLONG_MAX);
}

static void
test_release_and_status(void **state)
{
	accept("{\"op\":\"release\",\"lease\":\"l-0123456789abcdef\"}");
	assert_int_equal(req.op, OP_RELEASE);
	assert_string_equal(req.lease, "l-0123456789abcdef");

	accept("{\"op\":\"status\"}");
	assert_int_equal(req.op, OP_STATUS);
}

/* Each decode starts from a cleared request: nothing leaks across. */
static void
test_cleared(void **state)
{
	accept("{\"op\":\"hello\",\"protocol\":1,\"client\":\"c\"}");
	accept("{\"op\":\"acquire\",\"model\":\"m\",\"wait\":false,"
	       "\"timeout_ms\":5}");
	assert_string_equal(req.client, "");
	assert_int_equal(req.protocol, 0);
	accept("{\"op\":\"release\",\"lease\":\"x\"}");
	assert_string_equal(req.model, "");
	assert_int_equal(req.timeout_ms, 0);
	accept("{\"op\":\"status\"}");
	assert_string_equal(req.lease, "");
	accept("{\"op\":\"acquire\",\"model\":\"m\"}");
	reject_n("[]", 2, "a message is a JSON object", 1);
	assert_string_equal(req.model, "");
	assert_int_equal(req.wait, 0);
}

/* Fields an op does not know, however odd, are ignored. */
static void
test_unknown_fields(void **state)
{
	accept("{\"op\":\"status\",\"x\":1,\"y\":[1,{\"z\":null}],\"w\":{}}");
	assert_int_equal(req.op, OP_STATUS);
	/* Another op's fields, even of a wrong type. */
	accept("{\"op\":\"status\",\"model\":5,\"lease\":null,\"wait\":\"x\"}");
	accept("{\"op\":\"hello\",\"protocol\":1,\"model\":[],\"wait\":3}");
	assert_int_equal(req.protocol, 1);
	accept("{\"lease\":{},\"op\":\"acquire\",\"model\":\"m\","
	       "\"protocol\":\"x\",\"future\":{\"a\":[true,false,1.5e300]}}");
	assert_string_equal(req.model, "m");
	accept("{\"op\":\"release\",\"lease\":\"l\",\"client\":7,\"Op\":1,"
	       "\"\":\"\"}");
	assert_string_equal(req.lease, "l");
	accept("{\"op\":\"status\",\"caf\xc3\xa9\":\"\xe2\x82\xac\"}");
}

/* --- rejections --- */

struct reject_case {
	const char *text;
	const char *want;
	int exact; /* 0: jansson's sentence, which must hold want */
};

static const struct reject_case rejected[] = {
	/* Syntax. */
	{ "", "malformed JSON: ", 0 },
	{ " ", "malformed JSON: ", 0 },
	{ "{", "malformed JSON: ", 0 },
	{ "{\"op\":\"status\"", "malformed JSON: ", 0 },
	{ "{\"op\":\"status\",}", "malformed JSON: ", 0 },
	{ "{op:\"status\"}", "malformed JSON: ", 0 },
	{ "{'op':'status'}", "malformed JSON: ", 0 },
	{ "{\"op\":\"status\"} {}", "malformed JSON: ", 0 },
	{ "{\"op\":\"status\"}x", "malformed JSON: ", 0 },
	{ "{\"op\":\"status\"}\n{\"op\":\"status\"}", "malformed JSON: ", 0 },
	{ "{\"op\":\"stat\nus\"}", "malformed JSON: ", 0 },
	{ "{\"op\":\"status\",\"x\":NaN}", "malformed JSON: ", 0 },
	{ "{\"op\":\"status\",\"x\":01}", "malformed JSON: ", 0 },
	{ "{\"op\":\"status\",\"x\":\"\\x\"}", "malformed JSON: ", 0 },
	{ "{\"op\":\"status\",\"x\":\"\\ud800\"}", "malformed JSON: ", 0 },
	/* Not an object. */
	{ "[]", "a message is a JSON object", 1 },
	{ "[{\"op\":\"status\"}]", "a message is a JSON object", 1 },
	{ "\"status\"", "a message is a JSON object", 1 },
	{ "42", "a message is a JSON object", 1 },
	{ "-1.5", "a message is a JSON object", 1 },
	{ "null", "a message is a JSON object", 1 },
	{ "true", "a message is a JSON object", 1 },
	/* op. */
	{ "{}", "'op' is missing", 1 },
	{ "{\"Op\":\"status\"}", "'op' is missing", 1 },
	{ "{\"op\":1}", "'op' must be a string", 1 },
	{ "{\"op\":null}", "'op' must be a string", 1 },
	{ "{\"op\":true}", "'op' must be a string", 1 },
	{ "{\"op\":[\"status\"]}", "'op' must be a string", 1 },
	{ "{\"op\":{\"status\":1}}", "'op' must be a string", 1 },
	{ "{\"op\":\"nope\"}", "unknown op 'nope'", 1 },
	{ "{\"op\":\"\"}", "unknown op ''", 1 },
	{ "{\"op\":\"STATUS\"}", "unknown op 'STATUS'", 1 },
	{ "{\"op\":\"status \"}", "unknown op 'status '", 1 },
	{ "{\"op\":\"hello\\n\"}", "unknown op 'hello\n'", 1 },
	/* hello. */
	{ "{\"op\":\"hello\"}", "'protocol' is missing", 1 },
	{ "{\"op\":\"hello\",\"client\":\"c\"}", "'protocol' is missing", 1 },
	{ "{\"op\":\"hello\",\"protocol\":\"1\"}",
	    "'protocol' must be an integer", 1 },
	{ "{\"op\":\"hello\",\"protocol\":1.0}",
	    "'protocol' must be an integer", 1 },
	{ "{\"op\":\"hello\",\"protocol\":null}",
	    "'protocol' must be an integer", 1 },
	{ "{\"op\":\"hello\",\"protocol\":true}",
	    "'protocol' must be an integer", 1 },
	{ "{\"op\":\"hello\",\"protocol\":[1]}",
	    "'protocol' must be an integer", 1 },
	{ "{\"op\":\"hello\",\"protocol\":-1}", "'protocol' is out of range",
	    1 },
	{ "{\"op\":\"hello\",\"protocol\":0}", "'protocol' is out of range",
	    1 },
	{ "{\"op\":\"hello\",\"protocol\":1,\"chunked\":1}",
	    "'chunked' must be true or false", 1 },
	{ "{\"op\":\"hello\",\"protocol\":1,\"chunked\":\"yes\"}",
	    "'chunked' must be true or false", 1 },
	{ "{\"op\":\"hello\",\"protocol\":-9223372036854775808}",
	    "'protocol' is out of range", 1 },
	{ "{\"op\":\"hello\",\"protocol\":2147483648}",
	    "'protocol' is out of range", 1 },
	{ "{\"op\":\"hello\",\"protocol\":4294967297}",
	    "'protocol' is out of range", 1 },
	{ "{\"op\":\"hello\",\"protocol\":9223372036854775807}",
	    "'protocol' is out of range", 1 },
	{ "{\"op\":\"hello\",\"protocol\":99999999999999999999}",
	    "malformed JSON: ", 0 },
	{ "{\"op\":\"hello\",\"protocol\":1e400}", "malformed JSON: ", 0 },
	{ "{\"op\":\"hello\",\"protocol\":1,\"client\":5}",
	    "'client' must be a string", 1 },
	{ "{\"op\":\"hello\",\"protocol\":1,\"client\":null}",
	    "'client' must be a string", 1 },
	{ "{\"op\":\"hello\",\"protocol\":1,\"client\":\"\"}",
	    "'client' is empty", 1 },
	/* acquire. */
	{ "{\"op\":\"acquire\"}", "'model' is missing", 1 },
	{ "{\"op\":\"acquire\",\"wait\":true}", "'model' is missing", 1 },
	{ "{\"op\":\"acquire\",\"model\":5}", "'model' must be a string", 1 },
	{ "{\"op\":\"acquire\",\"model\":null}", "'model' must be a string",
	    1 },
	{ "{\"op\":\"acquire\",\"model\":[\"m\"]}", "'model' must be a string",
	    1 },
	{ "{\"op\":\"acquire\",\"model\":{}}", "'model' must be a string", 1 },
	{ "{\"op\":\"acquire\",\"model\":\"\"}", "'model' is empty", 1 },
	{ "{\"op\":\"acquire\",\"model\":\"a\\u0000b\"}", "\\u0000", 0 },
	{ "{\"op\":\"acquire\",\"model\":\"\\u0000\"}", "malformed JSON: ", 0 },
	{ "{\"op\":\"acquire\",\"model\":\"m\",\"wait\":1}",
	    "'wait' must be true or false", 1 },
	{ "{\"op\":\"acquire\",\"model\":\"m\",\"wait\":\"true\"}",
	    "'wait' must be true or false", 1 },
	{ "{\"op\":\"acquire\",\"model\":\"m\",\"wait\":null}",
	    "'wait' must be true or false", 1 },
	{ "{\"op\":\"acquire\",\"model\":\"m\",\"wait\":[]}",
	    "'wait' must be true or false", 1 },
	{ "{\"op\":\"acquire\",\"model\":\"m\",\"timeout_ms\":-1}",
	    "'timeout_ms' must be a non-negative integer", 1 },
	{ "{\"op\":\"acquire\",\"model\":\"m\","
	  "\"timeout_ms\":-9223372036854775808}",
	    "'timeout_ms' must be a non-negative integer", 1 },
	{ "{\"op\":\"acquire\",\"model\":\"m\",\"timeout_ms\":\"100\"}",
	    "'timeout_ms' must be a non-negative integer", 1 },
	{ "{\"op\":\"acquire\",\"model\":\"m\",\"timeout_ms\":1.5}",
	    "'timeout_ms' must be a non-negative integer", 1 },
	{ "{\"op\":\"acquire\",\"model\":\"m\",\"timeout_ms\":null}",
	    "'timeout_ms' must be a non-negative integer", 1 },
	{ "{\"op\":\"acquire\",\"model\":\"m\",\"timeout_ms\":true}",
	    "'timeout_ms' must be a non-negative integer", 1 },
	/* release. */
	{ "{\"op\":\"release\"}", "'lease' is missing", 1 },
	{ "{\"op\":\"release\",\"lease\":5}", "'lease' must be a string", 1 },
	{ "{\"op\":\"release\",\"lease\":null}", "'lease' must be a string",
	    1 },
	{ "{\"op\":\"release\",\"lease\":\"\"}", "'lease' is empty", 1 },
	/* Duplicate keys, at any depth: which one would win is unclear. */
	{ "{\"op\":\"status\",\"op\":\"status\"}", "duplicate object key", 0 },
	{ "{\"op\":\"status\",\"op\":\"hello\"}", "duplicate object key", 0 },
	{ "{\"op\":\"acquire\",\"model\":\"a\",\"model\":\"b\"}",
	    "duplicate object key", 0 },
	{ "{\"op\":\"status\",\"x\":1,\"x\":1}", "duplicate object key", 0 },
	{ "{\"op\":\"status\",\"x\":{\"y\":1,\"y\":2}}", "duplicate object key",
	    0 },
	{ "{\"op\":\"status\",\"o\\u0070\":\"status\"}", "duplicate object key",
	    0 },
	/* Invalid UTF-8, in values, keys and between tokens. */
	{ "{\"op\":\"status\",\"x\":\"\xff\"}", "malformed JSON: ", 0 },
	{ "{\"op\":\"status\",\"x\":\"\xc3\"}", "malformed JSON: ", 0 },
	{ "{\"op\":\"status\",\"x\":\"\xc3(\"}", "malformed JSON: ", 0 },
	{ "{\"op\":\"status\",\"x\":\"\xc0\xaf\"}", "malformed JSON: ", 0 },
	{ "{\"op\":\"status\",\"x\":\"\xe0\x80\xaf\"}", "malformed JSON: ", 0 },
	{ "{\"op\":\"status\",\"x\":\"\xed\xa0\x80\"}", "malformed JSON: ", 0 },
	{ "{\"op\":\"status\",\"x\":\"\xf4\x90\x80\x80\"}",
	    "malformed JSON: ", 0 },
	{ "{\"op\":\"status\",\"x\":\"\xf8\x88\x80\x80\x80\"}",
	    "malformed JSON: ", 0 },
	{ "{\"op\":\"status\",\"x\":\"\x80\"}", "malformed JSON: ", 0 },
	{ "{\"op\":\"status\",\"\xfe\":1}", "malformed JSON: ", 0 },
	{ "{\"op\":\"acquire\",\"model\":\"org/n\xe9me\"}",
	    "malformed JSON: ", 0 },
	{ "{\"op\":\"status\"}\xff", "malformed JSON: ", 0 },
	{ "\xef\xbb\xbf{\"op\":\"status\"}", "malformed JSON: ", 0 },
	/* Raw control characters inside strings. */
	{ "{\"op\":\"status\",\"x\":\"a\tb\"}", "malformed JSON: ", 0 },
	{ "{\"op\":\"status\",\"x\":\"a\x01\"}", "malformed JSON: ", 0 },
};

static void
test_rejected(void **state)
{
	size_t i;

	for (i = 0; i < NELEM(rejected); i++)
		reject_n(rejected[i].text, strlen(rejected[i].text),
		    rejected[i].want, rejected[i].exact);
}

/* A NUL byte in the line itself, where a C string would stop. */
static void
test_raw_nul(void **state)
{
	static const char after[] = "{\"op\":\"status\"}\0";
	static const char inside[] = "{\"op\":\"status\",\"x\":\"a\0b\"}";
	static const char before[] = "\0{\"op\":\"status\"}";

	reject_n(after, sizeof(after) - 1, "malformed JSON: ", 0);
	reject_n(inside, sizeof(inside) - 1, "malformed JSON: ", 0);
	reject_n(before, sizeof(before) - 1, "malformed JSON: ", 0);
	/* Only len bytes are read. */
	accept_n(after, sizeof(after) - 2);
	accept_n("{\"op\":\"status\"}garbage", 15);
}

/* Each string field: the longest value fits, one byte more does not. */
static void
check_string_limit(const char *fmt, size_t max, const char *name,
    const char *field)
{
	char *value, *line, *want;

	value = repeat('m', max - 1);
	line = format(fmt, value);
	accept(line);
	assert_string_equal(field, value);
	free(line);
	free(value);

	value = repeat('m', max);
	line = format(fmt, value);
	want = format("'%s' is too long", name);
	reject_n(line, strlen(line), want, 1);
	free(want);
	free(line);
	free(value);

	/* Counted in bytes, not characters: 'é' is two. */
	value = repeat('m', max);
	memcpy(value + max - 3, "\xc3\xa9", 2);
	value[max - 1] = '\0';
	line = format(fmt, value);
	accept(line);
	assert_string_equal(field, value);
	free(line);
	memset(value, 'm', max);
	memcpy(value + max - 2, "\xc3\xa9", 3);
	line = format(fmt, value);
	want = format("'%s' is too long", name);
	reject_n(line, strlen(line), want, 1);
	free(want);
	free(line);
	free(value);
}

static void
test_string_limits(void **state)
{
	check_string_limit("{\"op\":\"acquire\",\"model\":\"%s\"}",
	    PROTO_MODEL_MAX, "model", req.model);
	check_string_limit("{\"op\":\"release\",\"lease\":\"%s\"}",
	    PROTO_LEASE_MAX, "lease", req.lease);
	check_string_limit("{\"op\":\"hello\",\"protocol\":1,\"client\":\"%"
			   "s\"}",
	    PROTO_CLIENT_MAX, "client", req.client);
}

/* A line is at most PROTO_LINE_MAX bytes with its newline. */
static void
test_line_limit(void **state)
{
	static const char head[] = "{\"op\":\"status\",\"pad\":\"";
	size_t len = PROTO_LINE_MAX - 1;
	char *line = repeat(' ', PROTO_LINE_MAX + 16);

	/* The longest line: PROTO_LINE_MAX - 1 bytes and its newline. */
	memcpy(line, head, sizeof(head) - 1);
	memcpy(line + len - 2, "\"}", 2);
	for (size_t i = sizeof(head) - 1; i < len - 2; i++)
		line[i] = 'p';
	accept_n(line, len);
	assert_int_equal(req.op, OP_STATUS);

	/* As long with spaces after the object: still fine. */
	memset(line, ' ', PROTO_LINE_MAX + 16);
	memcpy(line, "{\"op\":\"status\"}", 15);
	accept_n(line, len);

	/* One byte more, however it is spent, is refused before parsing. */
	reject_n(line, PROTO_LINE_MAX, "message over 1 MiB", 1);
	reject_n(line, PROTO_LINE_MAX + 1, "message over 1 MiB", 1);
	reject_n(line, PROTO_LINE_MAX + 16, "message over 1 MiB", 1);
	memcpy(line, head, sizeof(head) - 1);
	for (size_t i = sizeof(head) - 1; i < PROTO_LINE_MAX - 2; i++)
		line[i] = 'p';
	memcpy(line + PROTO_LINE_MAX - 2, "\"}", 2);
	reject_n(line, PROTO_LINE_MAX, "message over 1 MiB", 1);
	free(line);
}

static double
seconds(void)
{
	struct timespec ts;

	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Nesting is bounded by jansson (JSON_PARSER_MAX_DEPTH, 2048): a deep line
 * is refused at once instead of recursing off the stack.
 */
static void
test_deep_nesting(void **state)
{
	size_t n = 100000, i;
	char *line = repeat('[', n + 64);
	char *open, *close;
	double t0 = seconds();

	reject_n(line, n, "malformed JSON: ", 0);
	memset(line, '{', n);
	reject_n(line, n, "malformed JSON: ", 0);
	for (i = 0; i < n; i += 5)
		memcpy(line + i, "{\"a\":", 5);
	reject_n(line, n, "malformed JSON: ", 0);

	/* Deep under a field nobody reads, and closed: still refused. */
	memcpy(line, "{\"op\":\"status\",\"x\":", 19);
	memset(line + 19, '[', n - 19);
	reject_n(line, n, "maximum parsing depth", 0);
	free(line);

	/* Well under the bound it is only an unknown field. */
	open = repeat('[', 1000);
	close = repeat(']', 1000);
	line = format("{\"op\":\"status\",\"x\":%s%s}", open, close);
	accept(line);
	free(line);
	free(open);
	free(close);
	/* It takes microseconds; a second means something recursed. */
	assert_true(seconds() - t0 < 1.0);
}

/* Long or non-ASCII unknown ops are quoted cut, on a character boundary. */
static void
test_unknown_op_quoted(void **state)
{
	char *op = repeat('x', 200), *line, *want, *answer;
	size_t i;

	line = format("{\"op\":\"%s\"}", op);
	op[64] = '\0';
	want = format("unknown op '%s'", op);
	reject_n(line, strlen(line), want, 1);
	free(want);
	free(line);

	/* "x" then 'é's: byte 64 falls inside a character. */
	for (i = 1; i + 1 < 200; i += 2)
		memcpy(op + i, "\xc3\xa9", 2);
	op[199] = '\0';
	line = format("{\"op\":\"%s\"}", op);
	op[63] = '\0';
	want = format("unknown op '%s'", op);
	reject_n(line, strlen(line), want, 1);
	answer = proto_error_line(PROTO_BAD_REQUEST, err);
	assert_non_null(answer);
	free(answer);
	free(want);
	free(line);
	free(op);
}

/*
 * Jansson quotes the input near a syntax error and may cut a character
 * there (found by the fuzzer): the sentence must still be valid UTF-8, or
 * no error line could carry it.
 */
static void
test_messages_are_utf8(void **state)
{
	static const char *const inputs[] = {
		"{\"op\":\"hello\",\"pr\\u000\xd5\x90\x8b\x90:1}",
		"{\"op\":\"status\",\"w\\u0\xd4\x9a"
		"9ait\":0}",
		"{\"op\":\"status\",\"x\":\"\\\xc3\xa9\"}",
		"{\"op\":\"status\",\"x\":tr\xc3\xa9}",
		"{\"op\":\"status\",\"\xc3\xa9\xc3\xa9\":1,"
		"\"\xc3\xa9\xc3\xa9\":1}",
		"{\"op\":\"status\",\"x\":\"\xe2\x82\xac\x01\"}",
		"\xe2\x82\xac",
	};
	json_t *v;
	size_t i;

	for (i = 0; i < NELEM(inputs); i++) {
		reject_n(inputs[i], strlen(inputs[i]), "malformed JSON: ", 0);
		v = json_string(err);
		if (v == NULL)
			fail_msg("input %zu: \"%s\" is not UTF-8", i, err);
		json_decref(v);
	}
}

/* Every sentence the decoder gives fits a modest buffer, and a tiny one. */
static void
test_small_err(void **state)
{
	char small[8];

	assert_int_equal(proto_decode("{\"op\":\"nope\"}", 13, &req, small,
			     sizeof(small)),
	    PROTO_BAD_REQUEST);
	assert_string_equal(small, "unknown");
	assert_int_equal(proto_decode("{", 1, &req, small, 1),
	    PROTO_BAD_REQUEST);
	assert_string_equal(small, "");
	assert_int_equal(proto_decode("{\"op\":\"status\"}", 15, &req, small,
			     sizeof(small)),
	    PROTO_OK);
	assert_string_equal(small, "");
}

/* --- error names --- */

static void
test_error_names(void **state)
{
	/* The closed set of DESIGN.md section 5, in the enum's order. */
	static const struct {
		enum proto_error e;
		const char *name;
	} names[] = {
		{ PROTO_OK, "ok" },
		{ PROTO_BAD_REQUEST, "bad_request" },
		{ PROTO_UNSUPPORTED_PROTOCOL, "unsupported_protocol" },
		{ PROTO_NOT_FOUND, "not_found" },
		{ PROTO_UNAUTHORIZED, "unauthorized" },
		{ PROTO_FORBIDDEN, "forbidden" },
		{ PROTO_ORIGIN_UNAVAILABLE, "origin_unavailable" },
		{ PROTO_INTEGRITY, "integrity" },
		{ PROTO_NO_SPACE, "no_space" },
		{ PROTO_TIMEOUT, "timeout" },
		{ PROTO_BUSY, "busy" },
		{ PROTO_SHUTTING_DOWN, "shutting_down" },
		{ PROTO_INTERNAL, "internal" },
	};
	size_t i;

	assert_int_equal(NELEM(names), PROTO_INTERNAL + 1);
	for (i = 0; i < NELEM(names); i++) {
		assert_int_equal(names[i].e, (enum proto_error)i);
		assert_string_equal(err_name((enum err_code)names[i].e),
		    names[i].name);
	}
	/* Outside the set: never an out-of-bounds read. */
	assert_string_equal(err_name((enum err_code)13), "internal");
	assert_string_equal(err_name((enum err_code) - 1), "internal");
	assert_string_equal(err_name((enum err_code)INT_MAX), "internal");
}

/* --- encoders --- */

/*
 * line is one line of ASCII (DEL may stay raw: JSON only escapes what is
 * below 0x20) and parses as an object.
 */
static json_t *
parse_line(const char *line)
{
	json_error_t je;
	json_t *root;
	const char *p;

	assert_non_null(line);
	for (p = line; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7f)
			fail_msg("byte 0x%02x at %td in \"%s\"",
			    (unsigned char)*p, p - line, line);
	root = json_loads(line, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		fail_msg("\"%s\" does not parse: %s", line, je.text);
	assert_true(json_is_object(root));
	return root;
}

/* An error line has ok false and the code's name and the message. */
static void
check_error_line(enum proto_error e, const char *message, const char *want)
{
	char *line = proto_error_line(e, message);
	json_t *root = parse_line(line), *error;

	assert_int_equal(strncmp(line, "{\"ok\":false,", 12), 0);
	assert_int_equal(json_object_size(root), 2);
	assert_true(json_is_false(json_object_get(root, "ok")));
	error = json_object_get(root, "error");
	assert_true(json_is_object(error));
	assert_int_equal(json_object_size(error), 2);
	assert_string_equal(json_string_value(json_object_get(error, "code")),
	    err_name((enum err_code)e));
	assert_string_equal(json_string_value(
				json_object_get(error, "message")),
	    want);
	json_decref(root);
	free(line);
}

static void
test_error_line(void **state)
{
	int e;

	for (e = PROTO_BAD_REQUEST; e <= PROTO_INTERNAL; e++)
		check_error_line((enum proto_error)e, "what went wrong",
		    "what went wrong");
	check_error_line(PROTO_NOT_FOUND, "", "");
	check_error_line(PROTO_NOT_FOUND, NULL, "");
	/* Newlines, quotes and non-ASCII are escaped, and come back. */
	check_error_line(PROTO_BAD_REQUEST,
	    "two\nlines\r\t\"q\" \\ caf\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80",
	    "two\nlines\r\t\"q\" \\ caf\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x98\x80");
	/* Not UTF-8: the rest still reaches the client. */
	check_error_line(PROTO_INTEGRITY, "bad \xff name \xc3", "bad ? name ?");
	check_error_line(PROTO_INTEGRITY, "ok \xc3\xa9 bad \xe9",
	    "ok ?? bad ?");
}

static void
test_error_line_escapes(void **state)
{
	char *line = proto_error_line(PROTO_BAD_REQUEST, "caf\xc3\xa9\n\x01");

	assert_non_null(line);
	assert_non_null(strstr(line, "caf\\u00E9\\n\\u0001"));
	assert_null(strchr(line, '\n'));
	free(line);
}

/* Every decoder sentence makes an error line. */
static void
test_error_line_from_decoder(void **state)
{
	size_t i;

	for (i = 0; i < NELEM(rejected); i++) {
		reject_n(rejected[i].text, strlen(rejected[i].text),
		    rejected[i].want, rejected[i].exact);
		check_error_line(PROTO_BAD_REQUEST, err, err);
	}
}

static void
test_ok_line(void **state)
{
	json_t *root, *files;
	char *line;

	line = proto_ok_line(json_pack("{s:i, s:s}", "protocol", PROTO_VERSION,
	    "server", "modelcached/0.1.0"));
	root = parse_line(line);
	assert_string_equal(line,
	    "{\"ok\":true,\"protocol\":1,\"server\":\"modelcached/0.1.0\"}");
	json_decref(root);
	free(line);

	/* Nested values, non-ASCII and newlines: one ASCII line. */
	line = proto_ok_line(json_pack("{s:s, s:s, s:[{s:s, s:I}]}", "event",
	    "ready", "dir", "hub/models--org--n\xc3\xa9me\n", "files", "path",
	    "caf\xc3\xa9.json", "size", (json_int_t)665));
	root = parse_line(line);
	assert_int_equal(strncmp(line, "{\"ok\":true,", 11), 0);
	assert_true(json_is_true(json_object_get(root, "ok")));
	assert_string_equal(json_string_value(json_object_get(root, "event")),
	    "ready");
	assert_string_equal(json_string_value(json_object_get(root, "dir")),
	    "hub/models--org--n\xc3\xa9me\n");
	files = json_object_get(root, "files");
	assert_int_equal(json_array_size(files), 1);
	assert_string_equal(json_string_value(
				json_object_get(json_array_get(files, 0),
				    "path")),
	    "caf\xc3\xa9.json");
	assert_non_null(strstr(line, "n\\u00E9me\\n"));
	json_decref(root);
	free(line);

	/* An empty object is just ok; an "ok" in obj cannot turn it false. */
	line = proto_ok_line(json_object());
	assert_non_null(line);
	assert_string_equal(line, "{\"ok\":true}");
	free(line);
	line = proto_ok_line(json_pack("{s:b, s:i}", "ok", 0, "n", 1));
	assert_non_null(line);
	assert_string_equal(line, "{\"ok\":true,\"n\":1}");
	free(line);

	/* No object, no line (and nothing leaks). */
	assert_null(proto_ok_line(NULL));
	assert_null(proto_ok_line(json_array()));
	assert_null(proto_ok_line(json_string("x")));
}

static void
test_line(void **state)
{
	char *line;

	assert_null(proto_line(NULL));
	line = proto_line(json_pack("{s:s, s:I, s:I}", "event", "progress",
	    "done_bytes", (json_int_t)1, "total_bytes", (json_int_t)2));
	assert_non_null(line);
	assert_string_equal(line,
	    "{\"event\":\"progress\",\"done_bytes\":1,\"total_bytes\":2}");
	free(line);
	/* A string with a NUL inside is escaped, not cut. */
	line = proto_line(json_pack("{s:s#}", "x", "a\0b", (int)3));
	assert_non_null(line);
	assert_string_equal(line, "{\"x\":\"a\\u0000b\"}");
	free(line);
}

/* --- a client's side --- */

/* *linep, from a request encoder that returned rc, decodes into req. */
static void
decode_own(int rc, char **linep)
{
	char *line = *linep;

	assert_int_equal(rc, 0);
	json_decref(parse_line(line));
	assert_int_equal(proto_decode(line, strlen(line), &req, err,
			     sizeof(err)),
	    PROTO_OK);
	free(line);
}

static void
test_request_lines(void **state)
{
	char *line;

	(void)state;
	decode_own(proto_hello_line("api/1 \xc3\xa9", 1, &line), &line);
	assert_int_equal(req.op, OP_HELLO);
	assert_int_equal(req.protocol, PROTO_VERSION);
	assert_string_equal(req.client, "api/1 \xc3\xa9");
	assert_true(req.chunked);
	decode_own(proto_hello_line(NULL, 0, &line), &line);
	assert_string_equal(req.client, "");
	assert_false(req.chunked);
	decode_own(proto_acquire_line("hf://org/a@main", 1, 0, &line), &line);
	assert_int_equal(req.op, OP_ACQUIRE);
	assert_string_equal(req.model, "hf://org/a@main");
	assert_true(req.wait);
	assert_int_equal(req.timeout_ms, 0);
	decode_own(proto_acquire_line("org/a", 0, 1500, &line), &line);
	assert_false(req.wait);
	assert_int_equal(req.timeout_ms, 1500);
	decode_own(proto_release_line("l-1", &line), &line);
	assert_int_equal(req.op, OP_RELEASE);
	assert_string_equal(req.lease, "l-1");
	decode_own(proto_status_line(&line), &line);
	assert_int_equal(req.op, OP_STATUS);
	/* What no line can carry: a client's mistake, said at once. */
	line = err; /* not NULL */
	assert_int_equal(proto_acquire_line("org/\xff", 1, 0, &line), -EINVAL);
	assert_null(line);
	assert_int_equal(proto_acquire_line(NULL, 1, 0, &line), -EINVAL);
	assert_int_equal(proto_release_line(NULL, &line), -EINVAL);
	assert_int_equal(proto_hello_line("\xc3", 1, &line), -EINVAL);
	assert_null(line);
}

/* An answer line, decoded: the outcome and message a client reads. */
static void
outcome_of(char *line, int want, const char *message)
{
	const char *msg = NULL;
	json_t *answer;

	assert_non_null(line);
	assert_int_equal(proto_answer_decode(line, strlen(line), &answer), 0);
	assert_int_equal(proto_answer_outcome(answer, &msg), want);
	assert_string_equal(msg, message);
	json_decref(answer);
	free(line);
}

static void
test_answer_decode(void **state)
{
	static const char *const bad[] = { "", "[]", "1", "\"ok\"", "{",
		"{\"ok\":true", "null" };
	const char *msg;
	json_t *answer;
	unsigned i;
	char *big;

	(void)state;
	outcome_of(proto_ok_line(json_pack("{s:s}", "lease", "l-1")), 0, "");
	for (i = ERR_BAD_REQUEST; i < ERR_COUNT; i++)
		outcome_of(proto_error_line((enum proto_error)i, "why"),
		    err_errno((enum err_code)i), "why");
	/* Outside the set, "ok" in an error: internal; no code: -EPROTO. */
	outcome_of(strdup("{\"ok\":false,\"error\":{\"code\":\"new\"}}"), -EIO,
	    "");
	outcome_of(strdup("{\"ok\":false,\"error\":{\"code\":\"ok\"}}"), -EIO,
	    "");
	outcome_of(strdup("{\"ok\":false,\"error\":{\"message\":\"m\"}}"),
	    -EPROTO, "m");
	outcome_of(strdup("{\"event\":\"progress\"}"), -EPROTO, "");
	for (i = 0; i < NELEM(bad); i++) {
		answer = (json_t *)&msg;
		assert_int_equal(proto_answer_decode(bad[i], strlen(bad[i]),
				     &answer),
		    -EPROTO);
		assert_null(answer);
	}
	/* A line of PROTO_LINE_MAX bytes has no room for its newline. */
	big = malloc(PROTO_LINE_MAX);
	assert_non_null(big);
	memset(big, ' ', PROTO_LINE_MAX);
	big[0] = '{';
	big[PROTO_LINE_MAX - 1] = '}';
	assert_int_equal(proto_answer_decode(big, PROTO_LINE_MAX, &answer),
	    -EPROTO);
	big[PROTO_LINE_MAX - 2] = '}';
	assert_int_equal(proto_answer_decode(big, PROTO_LINE_MAX - 1, &answer),
	    0);
	json_decref(answer);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_acquire),
		cmocka_unit_test(test_release_and_status),
		cmocka_unit_test(test_cleared),
		cmocka_unit_test(test_unknown_fields),
		cmocka_unit_test(test_rejected),
		cmocka_unit_test(test_raw_nul),
		cmocka_unit_test(test_string_limits),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_unknown_op_quoted),
		cmocka_unit_test(test_messages_are_utf8),
		cmocka_unit_test(test_small_err),
		cmocka_unit_test(test_error_names),
		cmocka_unit_test(test_error_line),
		cmocka_unit_test(test_error_line_escapes),
		cmocka_unit_test(test_error_line_from_decoder),
		cmocka_unit_test(test_ok_line),
		cmocka_unit_test(test_line),
		cmocka_unit_test(test_request_lines),
		cmocka_unit_test(test_answer_decode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
