/*
 * modelcache import: a local directory into the store, e.g. a model baked
 * into an image layer, copied to the shared volume by an init container.
 * Everything is checked before the store is opened, so bad input leaves the
 * store untouched.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "hub.h"
#include "origin_dir.h"

struct import_args {
	const char *revision;
};

static int
import_opt(void *arg, int opt, const char *value)
{
	struct import_args *a = arg;

	if (opt != 'r')
		return 1;
	a->revision = value;
	return 0;
}

static void
progress(void *arg, uint64_t done, uint64_t total, size_t files_done,
    size_t files)
{
	char a[32], b[32];

	fprintf(stderr, "\rimporting: %s of %s, %zu of %zu files   ",
	    cli_size(done, a, sizeof(a)), cli_size(total, b, sizeof(b)),
	    files_done, files);
}

/* Checks NAME and the revision; fills type, repo and rev. */
static int
check_name(const char *name, const char *revision, struct ref *ref)
{
	const char *why;

	if (ref_parse(ref, name, &why) < 0) {
		cli_err("bad model name '%s': %s", name, why);
		return -EINVAL;
	}
	if (ref->kind != REF_HF) {
		cli_err("bad model name '%s': give it as org/name", name);
		return -EINVAL;
	}
	if (revision != NULL && ref->revision != NULL) {
		cli_err("give the revision once: in NAME or with --revision");
		return -EINVAL;
	}
	if (revision != NULL && ref_check_revision(revision, &why) < 0) {
		cli_err("bad revision '%s': %s", revision, why);
		return -EINVAL;
	}
	if (ref_is_hex(revision != NULL ? revision : ref_revision(ref),
		DIGEST_SHA1_HEX)) {
		cli_err("an imported model's commit is derived from its files;"
			" give a branch or tag name as revision");
		return -EINVAL;
	}
	return 0;
}

static int
report(struct cli *cli, const struct manifest *m, double secs)
{
	char size[32], folder[REF_FOLDER_MAX], dir[STORE_PATH_MAX];
	uint64_t total = manifest_size(m);

	ref_folder_of(m->type, m->repo, folder, sizeof(folder));
	hub_snapshot_dir(folder, m->commit, dir, sizeof(dir));
	if (cli->json)
		return cli_print_json(json_pack("{s:s, s:s, s:s, s:s, s:I, s:I,"
						" s:f}",
		    "repo", m->repo, "commit", m->commit, "revision",
		    m->revisions[0], "dir", dir, "files", (json_int_t)m->nfiles,
		    "size", (json_int_t)total, "seconds", secs));
	printf("imported %s@%s: %zu files, %s, commit %.12s (%.2f s)\n",
	    m->repo, m->revisions[0], m->nfiles,
	    cli_size(total, size, sizeof(size)), m->commit, secs);
	printf("hub view: %s\n", dir);
	return 0;
}

int
cmd_import(struct cli *cli, int argc, char **argv)
{
	static const struct option extra[] = {
		{ "revision", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct import_args a = { NULL };
	struct import_opts o;
	struct store_place place;
	struct dir_listing list;
	struct manifest m;
	struct timespec t0, t1;
	struct ref ref;
	char err[512];
	int i, code, rc;

	i = cli_getopt(cli, cli_find("import"), argc, argv, extra,
	    "  --revision REV  the revision name to record (default main)\n",
	    import_opt, &a, &code);
	if (i < 0)
		return code;
	if (argc - i != 2) {
		cli_err("usage: modelcache %s", cli_find("import")->usage);
		return EXIT_USAGE;
	}
	ref_init(&ref);
	manifest_init(&m);
	memset(&list, 0, sizeof(list));
	if ((rc = check_name(argv[i + 1], a.revision, &ref)) < 0)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((rc = dir_list(argv[i], &list, err, sizeof(err))) < 0) {
		cli_err("%s", err);
		goto out;
	}
	if ((rc = cli_open(cli, 1)) < 0)
		goto out;
	memset(&o, 0, sizeof(o));
	if ((rc = store_locate(&ref, NULL, a.revision, &place)) < 0) {
		cli_err("cannot name the model '%s': %s", argv[i + 1],
		    strerror(-rc));
		goto out;
	}
	o.type = place.type;
	o.repo = place.repo;
	o.revision = place.revision;
	o.stale_ms = cli->store.stale_ms;
	if (cli->tty && !cli->json)
		o.progress.fn = progress;
	rc = dir_import(&cli->store, &cli->index, &list, &o, &m, err,
	    sizeof(err));
	if (o.progress.fn != NULL)
		fputc('\n', stderr);
	if (rc < 0) {
		cli_err("%s", err);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	rc = report(cli, &m,
	    (double)(t1.tv_sec - t0.tv_sec) +
		(double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
out:
	dir_listing_release(&list);
	manifest_release(&m);
	ref_release(&ref);
	return cli_exit_code(rc);
}
