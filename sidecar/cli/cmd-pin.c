/*
 * modelcache pin, unpin: keep models out of garbage collection's reach, or
 * give them back to it.  The pin is recorded in the manifest (the durable
 * record) and mirrored in the index.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "snapshot.h"

static int
pin_one(struct cli *cli, const struct cli_pick *s, int pinned)
{
	int rc;

	rc = snapshot_pin(&cli->store, &cli->index, s->folder, s->commit, s->id,
	    pinned);
	if (rc < 0)
		cli_err("cannot %s %s@%.12s: %s", pinned ? "pin" : "unpin",
		    s->repo, s->commit, strerror(-rc));
	else if (!cli->json)
		printf("%s %s@%.12s\n", pinned ? "pinned" : "unpinned", s->repo,
		    s->commit);
	return rc;
}

static int
print_json(const struct cli_picks *picks, int pinned)
{
	json_t *out = json_array();
	size_t k;

	for (k = 0; out != NULL && k < picks->n; k++)
		json_array_append_new(out,
		    json_pack("{s:s, s:s, s:b}", "repo", picks->v[k].repo,
			"commit", picks->v[k].commit, "pinned", pinned));
	return cli_print_json(out);
}

static int
pin_cmd(struct cli *cli, int argc, char **argv, const char *name, int pinned)
{
	struct cli_picks picks = { NULL, 0 };
	size_t k;
	int i, code, rc = 0;

	i = cli_getopt(cli, cli_find(name), argc, argv, NULL, NULL, NULL, NULL,
	    &code);
	if (i < 0)
		return code;
	if (i == argc) {
		cli_err("usage: modelcache %s", cli_find(name)->usage);
		return EXIT_USAGE;
	}
	if ((rc = cli_open(cli, 0)) < 0)
		return cli_exit_code(rc);
	for (; rc == 0 && i < argc; i++)
		rc = cli_pick(cli, argv[i], &picks);
	for (k = 0; rc == 0 && k < picks.n; k++)
		rc = pin_one(cli, &picks.v[k], pinned);
	if (rc == 0 && cli->json)
		rc = print_json(&picks, pinned);
	cli_picks_release(&picks);
	return cli_exit_code(rc);
}

int
cmd_pin(struct cli *cli, int argc, char **argv)
{
	return pin_cmd(cli, argc, argv, "pin", 1);
}

int
cmd_unpin(struct cli *cli, int argc, char **argv)
{
	return pin_cmd(cli, argc, argv, "unpin", 0);
}
