/*
 * fuzz_proto: a libFuzzer target for the handshake protocol's decoder
 * (src/proto.c), built with clang, ASan and UBSan when configure finds
 * them, and run briefly by tests/fuzz/run.sh.
 *
 * Any input is one line from a client.  Besides not crashing, leaking or
 * reading out of bounds, the decoder must keep these promises, each
 * checked here:
 *   - a refusal is bad_request with a non-empty sentence in valid UTF-8,
 *     and any sentence makes an error line (only a lack of memory may
 *     not);
 *   - an accepted request has its op in range and NUL-ended fields that
 *     fit their buffers, non-empty where they are required;
 *   - an accepted request, written back as JSON, decodes to the same
 *     request;
 *   - every line the encoders make is one line of ASCII that parses.
 */
#include "config.h"

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

/* req as a request line, as a client would write it. */
static json_t *
request_json(const struct proto_req *req)
{
	static const char *const ops[] = { "hello", "acquire", "release",
		"status" };
	json_t *obj = json_pack("{s:s}", "op", ops[req->op]);

	CHECK(obj != NULL);
	switch (req->op) {
	case OP_HELLO:
		CHECK(json_object_set_new(obj, "protocol",
			  json_integer(req->protocol)) == 0);
		if (req->client[0] != '\0')
			CHECK(json_object_set_new(obj, "client",
				  json_string(req->client)) == 0);
		break;
	case OP_ACQUIRE:
		CHECK(json_object_set_new(obj, "model",
			  json_string(req->model)) == 0);
		CHECK(json_object_set_new(obj, "wait",
			  json_boolean(req->wait)) == 0);
		CHECK(json_object_set_new(obj, "timeout_ms",
			  json_integer(req->timeout_ms)) == 0);
		break;
	case OP_RELEASE:
		CHECK(json_object_set_new(obj, "lease",
			  json_string(req->lease)) == 0);
		break;
	case OP_STATUS:
		break;
	}
	return obj;
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
	line = proto_line(request_json(req));
	CHECK(line != NULL);
	CHECK(proto_decode(line, strlen(line), &again, err, sizeof(err)) ==
	    PROTO_OK);
	CHECK(again.op == req->op);
	CHECK(strcmp(again.client, req->client) == 0);
	CHECK(strcmp(again.model, req->model) == 0);
	CHECK(strcmp(again.lease, req->lease) == 0);
	CHECK(again.protocol == req->protocol);
	CHECK(again.wait == req->wait);
	CHECK(again.timeout_ms == req->timeout_ms);
	free(line);

	/* What the daemon would answer with, echoing the client's strings. */
	check_line(proto_ok_line(json_pack("{s:s, s:s, s:s}", "model",
	    req->model, "lease", req->lease, "client", req->client)));
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
	return 0;
}
