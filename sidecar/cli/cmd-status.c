/*
 * modelcache status: what the live daemon is doing, asked over its socket
 * through libmodelcache (mc_connect, then mc_status).  --ready makes it a
 * probe: exit 0 only when every declared model is present and verified.
 * A daemon that accepts and never answers is given STATUS_TIMEOUT_S.
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "modelcache.h"

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

/* What the alarm says: made before it is set (a handler only writes). */
static char silent[600];
static size_t silent_len;

static void
on_alarm(int sig)
{
	ssize_t n;

	(void)sig;
	n = write(STDERR_FILENO, silent, silent_len);
	(void)n;
	_exit(EXIT_NETWORK);
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
	json_array_foreach(json_object_get(st, "models"), i, v) {
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
			    strcmp(json_string_value(
				       json_object_get(v, "state")),
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
		    (long long)json_integer_value(
			json_object_get(v, "clients")));
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
	mc_client *c = NULL;
	char *text = NULL;
	const char *path;
	json_t *st;
	int i, rc, code;

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
	snprintf(silent, sizeof(silent),
	    "modelcache: the daemon at '%s' did not answer status\n", path);
	silent_len = strlen(silent);
	signal(SIGALRM, on_alarm);
	alarm(STATUS_TIMEOUT_S);
	if ((rc = mc_connect(path, "modelcache/" PACKAGE_VERSION, &c)) < 0) {
		alarm(0);
		cli_err("cannot reach the daemon at '%s': %s", path,
		    strerror(-rc));
		return EXIT_NETWORK;
	}
	rc = mc_status(c, &text);
	alarm(0);
	st = rc == 0 ? json_loads(text, 0, NULL) : NULL;
	free(text);
	if (!json_is_object(st)) {
		cli_err("the daemon at '%s' did not answer status%s%s", path,
		    *mc_message(c) != '\0' ? ": " : "", mc_message(c));
		mc_close(c);
		json_decref(st);
		return EXIT_NETWORK;
	}
	mc_close(c);
	code = json_is_true(json_object_get(st, "ready")) || !a.ready
	    ? EXIT_OK
	    : EXIT_FAIL;
	if (cli->json)
		cli_print_json(json_incref(st));
	else
		print_status(st);
	json_decref(st);
	return code;
}
