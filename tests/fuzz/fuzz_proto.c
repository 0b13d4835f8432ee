/*
 * fuzz_proto: a libFuzzer target for the handshake protocol's decoders
 * (src/proto.c), built with clang, ASan and UBSan when configure finds
 * them, and run briefly by tests/fuzz/run.sh.
 *
 * Any input is one line from a client, and one line from a daemon.  Besides not crashing, leaking or
 * reading out of bounds, the decoder must keep these promises, each
 * checked here:
 *   - a refusal is bad_request with a non-empty sentence in valid UTF-8,
 *     and any sentence makes an error line (only a lack of memory may
 *     not);
 *   - an accepted request has its op in range and NUL-ended fields that
 *     fit their buffers, non-empty where they are required;
 *   - an accepted request, written back with the request encoders (a
 *     client's), decodes to the same request;
 *   - every line the encoders make is one line of ASCII that parses;
 *   - read as a daemon's answer, a line is an object or -EPROTO, and its
 *     outcome 0, -EPROTO or the errno of a code of errors.h.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
			    __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

/* A line from an encoder: no control character, ASCII only, an object. */
static void
check_line(char *line)
{
	json_error_t je;
	json_t *root;
	size_t i;

	CHECK(line != NULL);
	for (i = 0; line[i] != '\0'; i++)
		CHECK((unsigned char)line[i] >= 0x20 &&
		    (unsigned char)line[i] < 0x80);
	root = json_loads(line, JSON_REJECT_DUPLICATES, &je);
	CHECK(root != NULL);
	CHECK(json_is_object(root));
	CHECK(json_object_get(root, "ok") != NULL);
	json_decref(root);
	free(line);
}

/* s is valid UTF-8 (json_string() checks). */
static void
check_utf8(const char *s)
{
	json_t *v = json_string(s);

	CHECK(v != NULL);
	json_decref(v);
}

/* A field is NUL-ended inside its buffer, and non-empty if required. */
static void
check_field(const char *buf, size_t cap, int required)
{
	size_t n = strnlen(buf, cap);

	CHECK(n < cap);
	CHECK(!required || n > 0);
}

/* req as a request line, written with proto's request encoders. */
static char *
request_line(const struct proto_req *req)
{
	char *line = NULL;
	int rc = -1;

	switch (req->op) {
	case OP_HELLO:
		rc = proto_hello_line(req->client[0] != '\0' ? req->client
							     : NULL,
		    req->chunked, &line);
		break;
	case OP_ACQUIRE:
		rc = proto_acquire_line(req->model, req->wait, req->timeout_ms,
		    &line);
		break;
	case OP_RELEASE:
		rc = proto_release_line(req->lease, &line);
		break;
	case OP_STATUS:
		rc = proto_status_line(&line);
		break;
	}
	CHECK(rc == 0);
	CHECK(line != NULL);
	return line;
}

static void
check_accepted(const struct proto_req *req)
{
	struct proto_req again;
	char err[256], *line;

	CHECK(req->op == OP_HELLO || req->op == OP_ACQUIRE ||
	    req->op == OP_RELEASE || req->op == OP_STATUS);
	check_field(req->client, sizeof(req->client), 0);
	check_field(req->model, sizeof(req->model), req->op == OP_ACQUIRE);
	check_field(req->lease, sizeof(req->lease), req->op == OP_RELEASE);
	if (req->op == OP_HELLO)
		CHECK(req->protocol >= 1);
	if (req->op == OP_ACQUIRE) {
		CHECK(req->wait == 0 || req->wait == 1);
		CHECK(req->timeout_ms >= 0);
	}

	/* Written back and decoded again: the same request. */
	line = request_line(req);
	CHECK(proto_decode(line, strlen(line), &again, err, sizeof(err)) ==
	    PROTO_OK);
	CHECK(again.op == req->op);
	CHECK(strcmp(again.client, req->client) == 0);
	CHECK(strcmp(again.model, req->model) == 0);
	CHECK(strcmp(again.lease, req->lease) == 0);
	/* A client's hello says the version it speaks. */
	CHECK(again.protocol ==
	    (req->op == OP_HELLO ? PROTO_VERSION : req->protocol));
	CHECK(again.chunked == req->chunked);
	CHECK(again.wait == req->wait);
	CHECK(again.timeout_ms == req->timeout_ms);
	free(line);

	/* What the daemon would answer with, echoing the client's strings. */
	check_line(proto_ok_line(json_pack("{s:s, s:s, s:s}", "model",
	    req->model, "lease", req->lease, "client", req->client)));
}

/* data as an answer from the daemon, as libmodelcache reads it. */
static void
check_answer(const char *data, size_t size)
{
	const char *message;
	json_t *answer;
	int rc;

	rc = proto_answer_decode(data, size, &answer);
	CHECK(rc == 0 || rc == -EPROTO || rc == -ENOMEM);
	CHECK((rc == 0) == (answer != NULL));
	if (rc < 0)
		return;
	CHECK(json_is_object(answer));
	rc = proto_answer_outcome(answer, &message);
	CHECK(message != NULL);
	CHECK(rc == 0 || rc == -EPROTO ||
	    (rc < 0 && err_errno(err_of_errno(rc)) == rc));
	json_decref(answer);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_req req;
	enum proto_error e;
	char err[256], small[9];

	e = proto_decode((const char *)data, size, &req, err, sizeof(err));
	CHECK(e == PROTO_OK || e == PROTO_BAD_REQUEST);
	CHECK(strnlen(err, sizeof(err)) < sizeof(err));
	if (e == PROTO_OK) {
		CHECK(err[0] == '\0');
		check_accepted(&req);
	} else {
		CHECK(err[0] != '\0');
		check_utf8(err);
		check_line(proto_error_line(e, err));
	}

	/* A short err buffer gives the same answer, cut. */
	CHECK(proto_decode((const char *)data, size, &req, small,
		  sizeof(small)) == e);
	CHECK(strnlen(small, sizeof(small)) < sizeof(small));
	CHECK(strncmp(small, err, sizeof(small) - 1) == 0);
	check_line(proto_error_line(e, small));

	check_answer((const char *)data, size);
	return 0;
}
