/*
 * modelcache pull: models from their origin into the store, every byte
 * verified, shared blobs fetched once across processes (claims).  Hugging
 * Face references (hf://org/name@rev, datasets/ too) are pulled one by one;
 * the https:// URLs of one command make one model together.
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
#include "origin_https.h"
#include "pull_ref.h"

struct pull_args {
	struct hf_origin hf;
	const char *ca_file;
	uint64_t chunk;
	const char *name;     /* of the model the URLs make */
	const char *revision; /* its revision name */
	int tofu;	      /* URLs without a digest are taken on trust */
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
	else if (opt == 'n')
		a->name = value;
	else if (opt == 'r')
		a->revision = value;
	else if (opt == 't')
		a->tofu = 1;
	else
		return 1;
	return 0;
}

struct progress {
	struct cli *cli;
	const char *name;
	struct timespec t0;
	int lines; /* drawn on the terminal last time, to draw over */
};

static double
since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) +
	    (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* A file worth a line: one being worked on, or one that failed. */
static int
busy(const struct pull_file_progress *f)
{
	return f->state != PULL_QUEUED && f->state != PULL_DONE &&
	    f->state != PULL_REUSED;
}

/* One JSON line on stderr: scripts and logs. */
static void
progress_json(struct progress *pr, const struct pull_progress *pp, double secs)
{
	json_t *line, *files = json_array();
	char *text;
	size_t i;

	for (i = 0; files != NULL && i < pp->nfiles; i++)
		if (busy(&pp->files[i]))
			json_array_append_new(files,
			    json_pack("{s:s, s:s, s:I, s:I, s:i}", "path",
				pp->files[i].file->path, "state",
				pull_state_name(pp->files[i].state),
				"done_bytes", (json_int_t)pp->files[i].bytes,
				"size", (json_int_t)pp->files[i].file->size,
				"ranges", (int)pp->files[i].ranges));
	line = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:o*}",
	    "event", "progress", "model", pr->name, "done_bytes",
	    (json_int_t)pp->done, "reused_bytes", (json_int_t)pp->reused,
	    "total_bytes", (json_int_t)pp->total, "files_finished",
	    (json_int_t)pp->nfinished, "files", (json_int_t)pp->nfiles,
	    "seconds", secs, "active", files);
	text = line != NULL
	    ? json_dumps(line,
		  JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(3))
	    : NULL;
	if (text != NULL)
		fprintf(stderr, "%s\n", text);
	free(text);
	json_decref(line);
}

/*
 * On a terminal: a bar with bytes, rate and ETA, then one line per file
 * being worked on (at most 8), drawn over the previous ones.
 */
static void
progress_bar(struct progress *pr, const struct pull_progress *pp, double secs)
{
	double rate = secs > 0 ? (double)pp->done / secs : 0;
	uint64_t have = pp->done + pp->reused,
		 left = pp->total > have ? pp->total - have : 0,
		 shown = have < pp->total ? have : pp->total;
	int width = 24,
	    fill = pp->total > 0 ? (int)((uint64_t)width * shown / pp->total)
				 : width;
	char a[32], b[32], r[32];
	size_t i;
	int lines = 0;

	if (pr->lines > 0)
		fprintf(stderr, "\033[%dA", pr->lines);
	fprintf(stderr,
	    "\r\033[Jpulling %s [%.*s%*s] %s of %s, %s/s, ETA %.0f s,"
	    " %zu/%zu files\n",
	    pr->name, fill, "########################", width - fill, "",
	    cli_size(have, a, sizeof(a)), cli_size(pp->total, b, sizeof(b)),
	    cli_size((uint64_t)rate, r, sizeof(r)),
	    rate > 0 ? (double)left / rate : 0.0, pp->nfinished, pp->nfiles);
	for (i = 0; i < pp->nfiles && lines < 8; i++) {
		const struct pull_file_progress *f = &pp->files[i];

		if (!busy(f))
			continue;
		fprintf(stderr, "  %-40.40s %-9s %5.1f%%", f->file->path,
		    pull_state_name(f->state),
		    f->file->size > 0
			? 100.0 * (double)f->bytes / (double)f->file->size
			: 100.0);
		if (f->ranges > 1)
			fprintf(stderr, " (%u ranges)", f->ranges);
		fputc('\n', stderr);
		lines++;
	}
	pr->lines = lines + 1;
}

static void
progress(void *arg, const struct pull_progress *pp)
{
	struct progress *pr = arg;
	double secs = since(&pr->t0);

	if (pr->cli->json || !pr->cli->tty)
		progress_json(pr, pp, secs);
	else
		progress_bar(pr, pp, secs);
}

static void
summary(struct cli *cli, const struct pull_ref_result *rr, double secs)
{
	const struct pull_result *r = &rr->pull;
	char a[32], b[32], c[32];

	if (cli->json) {
		cli_print_json(
		    json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I,"
			      " s:I, s:I, s:I, s:f}",
			"repo", rr->repo, "revision", rr->revision, "commit",
			rr->commit, "trust", rr->trust, "files",
			(json_int_t)rr->nfiles, "bytes_origin",
			(json_int_t)r->bytes_origin, "bytes_reused",
			(json_int_t)r->bytes_reused, "bytes_total",
			(json_int_t)r->bytes_total, "hedged_ranges",
			(json_int_t)r->hedges, "rate_limited_ms",
			(json_int_t)r->ratelimit_ms, "claims_lost",
			(json_int_t)r->claims_lost, "seconds", secs));
		return;
	}
	printf("pulled %s@%s (commit %.12s): %zu files, %s from the origin, %s"
	       " reused, %.2f s, %s/s\n",
	    rr->repo, rr->revision, rr->commit, rr->nfiles,
	    cli_size(r->bytes_origin, a, sizeof(a)),
	    cli_size(r->bytes_reused, b, sizeof(b)), secs,
	    cli_size(secs > 0 ? (uint64_t)((double)r->bytes_origin / secs) : 0,
		c, sizeof(c)));
}

/*
 * Pulls refs[0..n) (one hf:// reference, or the https:// URLs of one
 * model) and reports it; returns an exit code.
 */
static int
pull_one(struct cli *cli, struct pull_args *a, struct fetch *fetch,
    const struct ref *refs, size_t n, const char *label)
{
	struct progress pr = { cli, label, { 0, 0 }, 0 };
	struct pull_ref_result r;
	struct pull_ref_opts o;

	clock_gettime(CLOCK_MONOTONIC, &pr.t0);
	memset(&o, 0, sizeof(o));
	o.hf = a->hf;
	o.name = a->name;
	o.revision = a->revision;
	o.pull.chunk = a->chunk;
	o.pull.progress = progress;
	o.pull.arg = &pr;
	pull_ref_run(fetch->loop, &cli->store, &cli->index, fetch, refs, n, &o,
	    &r);
	if (r.pull.error != PULL_OK) {
		cli_err("cannot pull '%s': %s", label, r.pull.message);
		return cli_exit_for((enum err_code)r.pull.error);
	}
	if (r.pull.unindexed) /* the files are the truth: pulled */
		cli_err("'%s' is published, but another process held the index"
			" past index_busy_timeout: 'modelcache fsck --repair'"
			" indexes it",
		    label);
	summary(cli, &r, since(&pr.t0));
	return EXIT_OK;
}

/*
 * Checks every operand before anything is fetched: refs[0..argc) parsed,
 * the https:// ones moved to the front (*nurls of them), with their text in
 * argv.  Returns 0 or an exit code.
 */
static int
parse_refs(struct pull_args *a, char **argv, int argc, struct ref *refs,
    size_t *nurls)
{
	char name[2 * REF_REPO_MAX + 2], *text;
	const char *why = NULL;
	struct ref tmp;
	int i;

	*nurls = 0;
	for (i = 0; i < argc; i++) {
		if (ref_parse(&refs[i], argv[i], &why) < 0) {
			cli_err("cannot pull '%s': %s", argv[i], why);
			return EXIT_USAGE;
		}
		if (refs[i].kind == REF_HTTPS) {
			if (refs[i].sha256[0] == '\0' && !a->tofu) {
				cli_err("cannot pull '%s': no #sha256= digest;"
					" add one, or accept whatever the "
					"origin"
					" sends with --trust-on-first-use",
				    argv[i]);
				return EXIT_USAGE;
			}
			tmp = refs[*nurls];
			refs[*nurls] = refs[i];
			refs[i] = tmp;
			text = argv[*nurls];
			argv[*nurls] = argv[i];
			argv[i] = text;
			++*nurls;
		} else if (refs[i].kind != REF_HF) {
			cli_err("cannot pull '%s': only hf:// and https://"
				" references can be pulled yet",
			    argv[i]);
			return EXIT_USAGE;
		}
	}
	if ((a->name != NULL || a->revision != NULL) && *nurls == 0) {
		cli_err("--name and --revision name what https:// URLs make");
		return EXIT_USAGE;
	}
	if (a->name != NULL && ref_check_repo(a->name, &why) < 0) {
		cli_err("bad model name '%s': %s", a->name, why);
		return EXIT_USAGE;
	}
	if (a->revision != NULL && ref_check_revision(a->revision, &why) < 0) {
		cli_err("bad revision '%s': %s", a->revision, why);
		return EXIT_USAGE;
	}
	if (a->name == NULL && *nurls > 1) {
		cli_err("several URLs make one model: name it with --name");
		return EXIT_USAGE;
	}
	if (a->name == NULL && *nurls == 1 &&
	    https_default_name(&refs[0], name, sizeof(name)) < 0) {
		cli_err("cannot name a model after '%s': give --name",
		    refs[0].url);
		return EXIT_USAGE;
	}
	return 0;
}

int
cmd_pull(struct cli *cli, int argc, char **argv)
{
	static const struct option extra[] = {
		{ "include", required_argument, NULL, 'i' },
		{ "exclude", required_argument, NULL, 'x' },
		{ "ca-file", required_argument, NULL, 'c' },
		{ "chunk-size", required_argument, NULL, 'k' },
		{ "name", required_argument, NULL, 'n' },
		{ "revision", required_argument, NULL, 'r' },
		{ "trust-on-first-use", no_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	struct pull_args a;
	struct fetch_opts fo;
	struct fetch fetch;
	struct ref *refs = NULL;
	size_t nurls = 0, k, nrefs = 0;
	uv_loop_t loop;
	char *token = NULL;
	int i, code, rc;

	memset(&a, 0, sizeof(a));
	i = cli_getopt(cli, cli_find("pull"), argc, argv, extra,
	    "  --include GLOB  only files matching GLOB (repeatable)\n"
	    "  --exclude GLOB  not files matching GLOB (repeatable)\n"
	    "  --ca-file FILE  trust this CA bundle for TLS\n"
	    "  --chunk-size SIZE  range size for large files (default 32MiB)\n"
	    "  --name ORG/NAME  the model the https:// URLs make\n"
	    "  --revision REV  its revision name (default main)\n"
	    "  --trust-on-first-use  accept URLs without #sha256=\n",
	    pull_opt, &a, &code);
	if (i < 0)
		return code;
	if (i == argc) {
		cli_err("usage: modelcache %s", cli_find("pull")->usage);
		return EXIT_USAGE;
	}
	nrefs = (size_t)(argc - i);
	if ((refs = calloc(nrefs, sizeof(*refs))) == NULL)
		return EXIT_FAIL;
	if ((code = parse_refs(&a, argv + i, argc - i, refs, &nurls)) != 0)
		goto refs;
	if ((rc = cli_open(cli, 1)) < 0) {
		code = cli_exit_code(rc);
		goto refs;
	}
	a.hf.endpoint = cli->conf.hf_endpoint;
	a.hf.token = token = hf_token(cli->conf.hf_token_path);
	hf_token_held(token);
	/*
	 * No --include or --exclude: those of the configuration, split in
	 * place (nothing reads these strings after this).
	 */
	if (a.hf.ninclude == 0 && a.hf.nexclude == 0) {
		a.hf.ninclude = conf_globs(cli->conf.include, a.hf.include,
		    HF_PATTERNS_MAX);
		a.hf.nexclude = conf_globs(cli->conf.exclude, a.hf.exclude,
		    HF_PATTERNS_MAX);
	}
	memset(&fo, 0, sizeof(fo));
	fo.ca_file = a.ca_file;
	uv_loop_init(&loop);
	if (fetch_init(&fetch, &loop, &fo) < 0) {
		cli_err("cannot start the HTTP engine");
		code = EXIT_FAIL;
		goto out;
	}
	code = nurls > 0 ? pull_one(cli, &a, &fetch, refs, nurls,
			       a.name != NULL ? a.name : argv[i])
			 : EXIT_OK;
	for (k = nurls; k < nrefs && code == EXIT_OK; k++)
		code = pull_one(cli, &a, &fetch, &refs[k], 1, argv[i + (int)k]);
	fetch_close(&fetch);
out:
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	free(token);
refs:
	for (k = 0; k < nrefs; k++)
		ref_release(&refs[k]);
	free(refs);
	return code;
}
