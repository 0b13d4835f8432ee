/*
 * modelcache pull: models from their origin into the store, every byte
 * verified, shared blobs fetched once across processes (claims).  Today:
 * Hugging Face references (hf://org/name@rev, datasets/ too).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <uv.h>

#include "cli.h"
#include "origin_hf.h"

struct pull_args {
	struct hf_origin hf;
	const char *ca_file;
	uint64_t chunk;
};

static int
pull_opt(void *arg, int opt, const char *value)
{
	struct pull_args *a = arg;

	if (opt == 'i' && a->hf.ninclude < HF_PATTERNS_MAX)
		a->hf.include[a->hf.ninclude++] = value;
	else if (opt == 'x' && a->hf.nexclude < HF_PATTERNS_MAX)
		a->hf.exclude[a->hf.nexclude++] = value;
	else if (opt == 'c')
		a->ca_file = value;
	else if (opt == 'k')
		return conf_parse_size(value, &a->chunk) < 0 || a->chunk == 0;
	else
		return 1;
	return 0;
}

struct progress {
	struct cli *cli;
	const char *name;
	struct timespec t0;
};

static double
since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) +
	    (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void
progress(void *arg, uint64_t done, uint64_t total, uint64_t reused)
{
	struct progress *pr = arg;
	double secs = since(&pr->t0), rate = secs > 0 ? (double)done / secs : 0;
	uint64_t left = total > done + reused ? total - done - reused : 0;
	char a[32], b[32], r[32];

	if (pr->cli->json || !pr->cli->tty) {
		/* One JSON line a second on stderr: scripts and logs. */
		json_t *line = json_pack("{s:s, s:s, s:I, s:I, s:I, s:f}",
		    "event", "progress", "model", pr->name, "done_bytes",
		    (json_int_t)done, "reused_bytes", (json_int_t)reused,
		    "total_bytes", (json_int_t)total, "seconds", secs);
		char *text = line != NULL
		    ? json_dumps(line,
			  JSON_COMPACT | JSON_PRESERVE_ORDER |
			      JSON_REAL_PRECISION(3))
		    : NULL;

		if (text != NULL)
			fprintf(stderr, "%s\n", text);
		free(text);
		json_decref(line);
		return;
	}
	fprintf(stderr, "\rpulling %s: %s of %s, %s/s, ETA %.0f s   ", pr->name,
	    cli_size(done + reused, a, sizeof(a)),
	    cli_size(total, b, sizeof(b)),
	    cli_size((uint64_t)rate, r, sizeof(r)),
	    rate > 0 ? (double)left / rate : 0.0);
}

static int
exit_for(enum pull_error e)
{
	switch (e) {
	case PULL_OK:
		return EXIT_OK;
	case PULL_NOT_FOUND:
		return EXIT_NOTFOUND;
	case PULL_UNAUTHORIZED:
	case PULL_FORBIDDEN:
		return EXIT_UNAUTHORIZED;
	case PULL_INTEGRITY:
		return EXIT_INTEGRITY;
	case PULL_NETWORK:
		return EXIT_NETWORK;
	case PULL_NO_SPACE:
		return EXIT_NOSPACE;
	default:
		return EXIT_FAIL;
	}
}

static void
summary(struct cli *cli, const struct ref *ref, const char *commit,
    size_t nfiles, const struct pull_result *r, double secs)
{
	char a[32], b[32], c[32];

	if (cli->json) {
		cli_print_json(
		    json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:f}",
			"repo", ref->repo, "revision", ref_revision(ref),
			"commit", commit, "files", (json_int_t)nfiles,
			"bytes_origin", (json_int_t)r->bytes_origin,
			"bytes_reused", (json_int_t)r->bytes_reused,
			"bytes_total", (json_int_t)r->bytes_total, "seconds",
			secs));
		return;
	}
	printf("pulled %s@%s (commit %.12s): %zu files, %s from the origin, %s"
	       " reused, %.2f s, %s/s\n",
	    ref->repo, ref_revision(ref), commit, nfiles,
	    cli_size(r->bytes_origin, a, sizeof(a)),
	    cli_size(r->bytes_reused, b, sizeof(b)), secs,
	    cli_size(secs > 0 ? (uint64_t)((double)r->bytes_origin / secs) : 0,
		c, sizeof(c)));
}

/* Pulls one reference; returns an exit code. */
static int
pull_one(struct cli *cli, struct pull_args *a, struct fetch *fetch,
    const char *text)
{
	char commit[DIGEST_SHA1_HEX + 1], err[600], source[1200];
	struct progress pr = { cli, text, { 0, 0 } };
	struct pull_file *files = NULL;
	struct pull_opts o;
	struct pull_result r;
	struct manifest m;
	struct ref ref;
	enum pull_error e;
	const char *why = NULL;
	size_t n = 0;
	char *canon;
	int code;

	ref_init(&ref);
	manifest_init(&m);
	memset(&r, 0, sizeof(r));
	clock_gettime(CLOCK_MONOTONIC, &pr.t0);
	if (ref_parse(&ref, text, &why) < 0 || ref.kind != REF_HF) {
		cli_err("cannot pull '%s': %s", text,
		    ref.kind != REF_HF && why == NULL
			? "only hf:// references can be pulled yet"
			: why);
		code = EXIT_USAGE;
		goto out;
	}
	e = hf_resolve(&a->hf, fetch, &ref, commit, err, sizeof(err));
	if (e == PULL_OK)
		e = hf_list(&a->hf, fetch, &ref, commit, &files, &n, err,
		    sizeof(err));
	if (e != PULL_OK) {
		cli_err("cannot pull '%s': %s", text, err);
		code = exit_for(e);
		goto out;
	}
	canon = ref_canonical(&ref);
	snprintf(source, sizeof(source), "%s", canon != NULL ? canon : text);
	free(canon);
	if (manifest_set_origin(&m, ref.type, ref.repo, source) < 0 ||
	    manifest_add_revision(&m, ref_revision(&ref)) < 0) {
		code = EXIT_FAIL;
		goto out;
	}
	memcpy(m.commit, commit, sizeof(m.commit));
	memset(&o, 0, sizeof(o));
	o.token = a->hf.token;
	o.chunk = a->chunk;
	o.stale_ms = (int64_t)cli->conf.stale_s * 1000;
	o.progress = progress;
	o.arg = &pr;
	pull_run(fetch->loop, &cli->store, &cli->index, fetch, files, n, &o, &m,
	    &r);
	if (cli->tty && !cli->json)
		fputc('\n', stderr);
	if (r.error != PULL_OK) {
		cli_err("cannot pull '%s': %s", text, r.message);
		code = exit_for(r.error);
		goto out;
	}
	summary(cli, &ref, commit, n, &r, since(&pr.t0));
	code = EXIT_OK;
out:
	hf_files_free(files, n);
	manifest_release(&m);
	ref_release(&ref);
	return code;
}

int
cmd_pull(struct cli *cli, int argc, char **argv)
{
	static const struct option extra[] = {
		{ "include", required_argument, NULL, 'i' },
		{ "exclude", required_argument, NULL, 'x' },
		{ "ca-file", required_argument, NULL, 'c' },
		{ "chunk-size", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	struct pull_args a;
	struct fetch_opts fo;
	struct fetch fetch;
	uv_loop_t loop;
	char *token = NULL;
	int i, code, rc;

	memset(&a, 0, sizeof(a));
	i = cli_getopt(cli, cli_find("pull"), argc, argv, extra,
	    "  --include GLOB  only files matching GLOB (repeatable)\n"
	    "  --exclude GLOB  not files matching GLOB (repeatable)\n"
	    "  --ca-file FILE  trust this CA bundle for TLS\n"
	    "  --chunk-size SIZE  range size for large files (default 32MiB)\n",
	    pull_opt, &a, &code);
	if (i < 0)
		return code;
	if (i == argc) {
		cli_err("usage: modelcache %s", cli_find("pull")->usage);
		return EXIT_USAGE;
	}
	if ((rc = cli_open(cli, 1)) < 0)
		return cli_exit_code(rc);
	a.hf.endpoint = cli->conf.hf_endpoint;
	a.hf.token = token = hf_token(cli->conf.hf_token_path);
	memset(&fo, 0, sizeof(fo));
	fo.ca_file = a.ca_file;
	uv_loop_init(&loop);
	if (fetch_init(&fetch, &loop, &fo) < 0) {
		cli_err("cannot start the HTTP engine");
		code = EXIT_FAIL;
		goto out;
	}
	for (code = EXIT_OK; i < argc && code == EXIT_OK; i++)
		code = pull_one(cli, &a, &fetch, argv[i]);
	fetch_close(&fetch);
out:
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	free(token);
	return code;
}
