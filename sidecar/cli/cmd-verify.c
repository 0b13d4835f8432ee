/*
 * modelcache verify: re-hash every byte of the chosen models and name each
 * file whose bytes no longer match its digest.  Each file is checked on its
 * own, even when it shares its blob with another, so that every file gets
 * its own verdict.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"

struct verify {
	struct cli *cli;
	const struct index_snapshot *snap;
	json_t *bad;
	uint64_t files, bytes, nbad;
};

static int
verify_file(void *arg, const char *path, uint64_t size, const char *sha256,
    const char *etag)
{
	struct verify *v = arg;
	const char *what;
	int rc;

	rc = store_blob_verify(&v->cli->store, sha256, size);
	v->files++;
	v->bytes += size;
	if (rc == 0)
		return 0;
	what = rc == -EBADMSG ? "content does not match its sha256"
	    : rc == -ENOENT   ? "blob is missing"
			      : strerror(-rc);
	v->nbad++;
	if (v->bad != NULL)
		return json_array_append_new(v->bad,
			   json_pack("{s:s, s:s, s:s, s:s, s:s}", "repo",
			       v->snap->repo, "commit", v->snap->commit, "path",
			       path, "sha256", sha256, "error", what)) == 0
		    ? 0
		    : -ENOMEM;
	printf("BAD  %s@%.12s  %s: %s\n", v->snap->repo, v->snap->commit, path,
	    what);
	return 0;
}

static int
verify_snapshot(void *arg, const struct index_snapshot *s)
{
	struct verify *v = arg;

	v->snap = s;
	return index_each_file(&v->cli->index, s->id, verify_file, v);
}

int
cmd_verify(struct cli *cli, int argc, char **argv)
{
	struct verify v = { cli, NULL, NULL, 0, 0, 0 };
	struct timespec t0, t1;
	char size[32];
	double secs;
	int i, code, rc = 0;

	i = cli_getopt(cli, cli_find("verify"), argc, argv, NULL, NULL, NULL,
	    NULL, &code);
	if (i < 0)
		return code;
	if ((rc = cli_open(cli, 0)) < 0)
		return cli_exit_code(rc);
	if (cli->json)
		v.bad = json_array();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (i == argc)
		rc = index_each_snapshot(&cli->index, REPO_MODEL, NULL, NULL,
		    verify_snapshot, &v);
	for (; rc == 0 && i < argc; i++)
		rc = cli_select(cli, argv[i], verify_snapshot, &v);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (rc < 0) {
		json_decref(v.bad);
		return cli_exit_code(rc);
	}
	if (v.bad != NULL)
		cli_print_json(json_pack("{s:I, s:I, s:f, s:o}", "files",
		    (json_int_t)v.files, "bytes", (json_int_t)v.bytes,
		    "seconds", secs, "bad", v.bad));
	else
		printf("verified %llu files, %s in %.2f s: %llu bad\n",
		    (unsigned long long)v.files,
		    cli_size(v.bytes, size, sizeof(size)), secs,
		    (unsigned long long)v.nbad);
	return v.nbad > 0 ? EXIT_INTEGRITY : EXIT_OK;
}
