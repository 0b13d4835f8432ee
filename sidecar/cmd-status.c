/*
 * modelcache status: what the live daemon is doing, asked over its socket
 * (hello, then status).  --ready makes it a probe: exit 0 only when every
 * declared model is present and verified.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "proto.h"

#define STATUS_TIMEOUT_S 10

struct status_args {
	const char *socket;
	int ready;
};

static int
status_opt(void *arg, int opt, const char *value)
{
	struct status_args *a = arg;

	if (opt == 's')
		a->socket = value;
	else if (opt == 'r')
		a->ready = 1;
	else
		return 1;
	return 0;
}

/* One request line out, one answer line back; NULL on failure. */
static json_t *
ask(FILE *f, const char *request)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	json_t *answer;

	if (fprintf(f, "%s\n", request) < 0 || fflush(f) != 0 ||
	    (n = getline(&line, &cap, f)) <= 0 || n > PROTO_LINE_MAX) {
		free(line);
		return NULL;
	}
	answer = json_loadb(line, (size_t)n, 0, NULL);
	free(line);
	return answer;
}

static FILE *
dial(const char *path)
{
	struct timeval tv = { STATUS_TIMEOUT_S, 0 };
	struct sockaddr_un sa;
	FILE *f;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    (f = fdopen(fd, "r+")) == NULL) {
		int e = errno;

		close(fd);
		errno = e;
		return NULL;
	}
	return f;
}

static void
print_status(json_t *st)
{
	json_t *v;
	size_t i;
	char a[32], b[32];

	printf("%s, up %.0f s, store %s: %s\n",
	    json_string_value(json_object_get(st, "server")),
	    json_real_value(json_object_get(st, "uptime_s")),
	    json_string_value(json_object_get(st, "store")),
	    json_is_true(json_object_get(st, "ready")) ? "ready" : "not ready");
	json_array_foreach(json_object_get(st, "models"), i, v)
	{
		const char *err =
		    json_string_value(json_object_get(v, "error"));

		printf("  model %s: %s%s%s\n",
		    json_string_value(json_object_get(v, "model")),
		    json_string_value(json_object_get(v, "state")),
		    err != NULL && *err != '\0' ? ": " : "",
		    err != NULL ? err : "");
	}
	/* A daemon older than "state" has pulls in the air only. */
	json_array_foreach(json_object_get(st, "pulls"), i, v)
	    printf("  %s %s: %s of %s, %lld client(s)\n",
		json_is_string(json_object_get(v, "state")) &&
			strcmp(json_string_value(json_object_get(v, "state")),
			    "queued") == 0
		    ? "queued"
		    : "pulling",
		json_string_value(json_object_get(v, "model")),
		cli_size((uint64_t)json_integer_value(
			     json_object_get(v, "done_bytes")),
		    a, sizeof(a)),
		cli_size((uint64_t)json_integer_value(
			     json_object_get(v, "total_bytes")),
		    b, sizeof(b)),
		(long long)json_integer_value(json_object_get(v, "clients")));
	json_array_foreach(json_object_get(st, "leases"), i, v)
	    printf("  lease %s: %s@%.12s (pid %lld)\n",
		json_string_value(json_object_get(v, "lease")),
		json_string_value(json_object_get(v, "folder")),
		json_string_value(json_object_get(v, "commit")),
		(long long)json_integer_value(json_object_get(v, "pid")));
}

int
cmd_status(struct cli *cli, int argc, char **argv)
{
	static const struct option extra[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "ready", no_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct status_args a = { NULL, 0 };
	json_t *hello = NULL, *st = NULL;
	const char *path;
	int i, code;
	FILE *f;

	i = cli_getopt(cli, cli_find("status"), argc, argv, extra,
	    "  --socket PATH  the daemon's socket (default MODELCACHE_SOCKET)\n"
	    "  --ready        exit 0 only when every declared model is ready\n",
	    status_opt, &a, &code);
	if (i < 0)
		return code;
	if (i != argc) {
		cli_err("usage: modelcache %s", cli_find("status")->usage);
		return EXIT_USAGE;
	}
	path = a.socket != NULL ? a.socket : cli->conf.socket;
	if ((f = dial(path)) == NULL) {
		cli_err("cannot reach the daemon at '%s': %s", path,
		    strerror(errno));
		return EXIT_NETWORK;
	}
	hello = ask(f,
	    "{\"op\":\"hello\",\"protocol\":1,\"client\":"
	    "\"modelcache/" PACKAGE_VERSION "\"}");
	if (json_is_true(json_object_get(hello, "ok")))
		st = ask(f, "{\"op\":\"status\"}");
	fclose(f);
	if (!json_is_true(json_object_get(st, "ok"))) {
		cli_err("the daemon at '%s' did not answer status", path);
		json_decref(hello);
		json_decref(st);
		return EXIT_NETWORK;
	}
	json_object_del(st, "ok");
	code = json_is_true(json_object_get(st, "ready")) || !a.ready
	    ? EXIT_OK
	    : EXIT_FAIL;
	if (cli->json)
		cli_print_json(json_incref(st));
	else
		print_status(st);
	json_decref(hello);
	json_decref(st);
	return code;
}
