/*
 * modelcache rm: remove models (all revisions of a repo, or the one a
 * revision names).  The removal order is the store's (snapshot.h), so a
 * reader never sees a half-removed model and a concurrent import keeps the
 * blobs it shares with what is removed.  A snapshot with a live lease (a
 * server on some node uses it) is refused, before anything is removed.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "lease.h"
#include "snapshot.h"

int
cmd_rm(struct cli *cli, int argc, char **argv)
{
	struct cli_picks vs = { NULL, 0 };
	json_t *out = NULL;
	uint64_t freed = 0;
	size_t k;
	char size[32];
	int i, code, rc = 0;

	i = cli_getopt(cli, cli_find("rm"), argc, argv, NULL, NULL, NULL, NULL,
	    &code);
	if (i < 0)
		return code;
	if (i == argc) {
		cli_err("usage: modelcache %s", cli_find("rm")->usage);
		return EXIT_USAGE;
	}
	if ((rc = cli_open(cli, 0)) < 0)
		return cli_exit_code(rc);
	/* Every name is resolved before anything is removed. */
	for (; rc == 0 && i < argc; i++)
		rc = cli_pick(cli, argv[i], &vs);
	/* So is every lease: one model in use stops them all. */
	for (k = 0; rc == 0 && k < vs.n; k++) {
		rc = lease_live(&cli->store, vs.v[k].folder, vs.v[k].commit,
		    cli->store.stale_ms);
		if (rc == 1) {
			cli_err("'%s@%.12s' is in use (leased)", vs.v[k].repo,
			    vs.v[k].commit);
			rc = -EBUSY;
		} else if (rc < 0)
			cli_err("cannot read the leases: %s", strerror(-rc));
	}
	if (cli->json && rc == 0)
		out = json_array();
	for (k = 0; rc == 0 && k < vs.n; k++) {
		uint64_t before = freed;

		rc = snapshot_remove(&cli->store, &cli->index, vs.v[k].folder,
		    vs.v[k].commit, vs.v[k].id, cli->store.stale_ms, &freed);
		if (rc == -EBUSY) {
			cli_err("'%s@%.12s' is in use (leased, or published "
				"again meanwhile)",
			    vs.v[k].repo, vs.v[k].commit);
			break;
		}
		if (rc < 0) {
			cli_err("cannot remove %s@%.12s: %s", vs.v[k].repo,
			    vs.v[k].commit, strerror(-rc));
			break;
		}
		if (out != NULL)
			json_array_append_new(out,
			    json_pack("{s:s, s:s, s:I}", "repo", vs.v[k].repo,
				"commit", vs.v[k].commit, "freed",
				(json_int_t)(freed - before)));
		else
			printf("removed %s@%.12s (%s freed)\n", vs.v[k].repo,
			    vs.v[k].commit,
			    cli_size(freed - before, size, sizeof(size)));
	}
	if (out != NULL)
		cli_print_json(out);
	cli_picks_release(&vs);
	return cli_exit_code(rc);
}
