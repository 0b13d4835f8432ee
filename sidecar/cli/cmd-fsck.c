/*
 * modelcache fsck: reconcile the index, blobs, manifests, hub view and
 * temporary files, report every inconsistency, and with --repair fix them from the
 * files.  Exit 0 when no problem remains (residue of interrupted work is
 * reported but is not a problem), 1 otherwise.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "fsck.h"

struct fsck_args {
	int repair, fast;
	json_t *issues;
};

static int
fsck_opt(void *arg, int opt, const char *value)
{
	struct fsck_args *a = arg;

	if (opt == 'r')
		a->repair = 1;
	else if (opt == 'f')
		a->fast = 1;
	else
		return 1;
	return 0;
}

static void
print_issue(void *arg, const struct fsck_issue *i)
{
	struct fsck_args *a = arg;

	if (a->issues != NULL) {
		json_array_append_new(a->issues,
		    json_pack("{s:s, s:s, s:s, s:b, s:b}", "kind", i->kind,
			"path", i->path, "what", i->what, "residue", i->residue,
			"repaired", i->repaired));
		return;
	}
	printf("%-8s %-22s %s: %s%s\n", i->residue ? "residue" : "PROBLEM",
	    i->kind, i->path, i->what, i->repaired ? " (repaired)" : "");
}

int
cmd_fsck(struct cli *cli, int argc, char **argv)
{
	static const struct option extra[] = {
		{ "repair", no_argument, NULL, 'r' },
		{ "fast", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	struct fsck_args a = { 0, 0, NULL };
	struct fsck_result r;
	struct fsck_opts o;
	unsigned left;
	int i, code, rc;

	i = cli_getopt(cli, cli_find("fsck"), argc, argv, extra,
	    "  --repair   fix what is found (from blobs and manifests)\n"
	    "  --fast     skip re-hashing the blobs\n",
	    fsck_opt, &a, &code);
	if (i < 0)
		return code;
	if (i != argc) {
		cli_err("usage: modelcache %s", cli_find("fsck")->usage);
		return EXIT_USAGE;
	}
	if ((rc = cli_open(cli, 0)) < 0)
		return cli_exit_code(rc);
	if (cli->json)
		a.issues = json_array();
	memset(&o, 0, sizeof(o));
	o.repair = a.repair;
	o.hash = !a.fast;
	o.stale_ms = cli->store.stale_ms;
	o.report = print_issue;
	o.arg = &a;
	rc = fsck_run(&cli->store, &cli->index, &o, &r);
	if (rc < 0) {
		json_decref(a.issues);
		cli_err("fsck stopped: %s", strerror(-rc));
		return cli_exit_code(rc);
	}
	left = r.unrepaired;
	if (a.issues != NULL)
		cli_print_json(json_pack("{s:I, s:I, s:I, s:b, s:o}",
		    "problems", (json_int_t)r.problems, "residue",
		    (json_int_t)r.residue, "repaired", (json_int_t)r.repaired,
		    "clean", left == 0, "issues", a.issues));
	else
		printf("%u problems, %u residue, %u repaired\n", r.problems,
		    r.residue, r.repaired);
	return left == 0 ? EXIT_OK : EXIT_FAIL;
}
