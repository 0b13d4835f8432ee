/*
 * modelcache: the admin CLI.  Acts on a store directly, as one more
 * participant under the store's cross-process rules, so it works with or
 * without a daemon: in an init container, a Job, or a shell.
 *
 * Global options come before the command; each command parses its own.
 * Configuration: --store over MODELCACHE_STORE over the config file
 * (MODELCACHE_CONFIG, default /etc/modelcache.conf when it exists).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define DEFAULT_CONFIG "/etc/modelcache.conf"

const struct cmd cli_cmds[] = {
	{ "import", "import [--revision REV] [--json] DIR NAME",
	    "Import a local directory into the store as model NAME",
	    cmd_import },
	{ "pull",
	    "pull [--include GLOB] [--exclude GLOB] [--ca-file FILE]"
	    " [--chunk-size SIZE] [--name NAME] [--revision REV]"
	    " [--trust-on-first-use] [--json] REF ...",
	    "Pull models from their origin, verifying every byte", cmd_pull },
	{ "ls", "ls [--json]", "List the models in the store", cmd_ls },
	{ "status", "status [--socket PATH] [--ready] [--json]",
	    "Ask the live daemon what it is doing", cmd_status },
	{ "show", "show [--json] MODEL", "Show a model's revisions and files",
	    cmd_show },
	{ "du", "du [--json]", "Show how much space the store uses", cmd_du },
	{ "verify", "verify [--json] [MODEL ...]",
	    "Re-hash every byte of the given models (all by default)",
	    cmd_verify },
	{ "rm", "rm [--json] MODEL ...", "Remove models from the store",
	    cmd_rm },
	{ "pin", "pin [--json] MODEL ...",
	    "Protect models from garbage collection", cmd_pin },
	{ "unpin", "unpin [--json] MODEL ...",
	    "Let garbage collection evict models", cmd_unpin },
	{ "gc", "gc [--max-size SIZE] [--dry-run] [--json]",
	    "Evict least recently used models until the store fits SIZE",
	    cmd_gc },
	{ "fsck", "fsck [--repair] [--fast] [--json]",
	    "Check the store's consistency, and repair it", cmd_fsck },
	{ NULL, NULL, NULL, NULL },
};

static void
usage(FILE *to)
{
	const struct cmd *c;

	fprintf(to,
	    "usage: modelcache [--store DIR] [--json] COMMAND [ARGS]\n"
	    "\ncommands:\n");
	for (c = cli_cmds; c->name != NULL; c++)
		fprintf(to, "  %-8s %s\n", c->name, c->summary);
	fprintf(to,
	    "\nRun 'modelcache COMMAND --help' for a command's"
	    " options; see modelcache(1).\n");
}

/* Loads the configuration: file, then environment.  Exits on errors. */
static int
configure(struct cli *cli)
{
	const char *path = getenv("MODELCACHE_CONFIG");
	char err[256];
	int rc;

	if ((rc = conf_init(&cli->conf)) < 0)
		return rc;
	rc = conf_load_file(&cli->conf, path != NULL ? path : DEFAULT_CONFIG,
	    err, sizeof(err));
	if (rc == -ENOENT && path == NULL)
		rc = 0;
	if (rc < 0) {
		cli_err("%s: %s", path != NULL ? path : DEFAULT_CONFIG,
		    rc == -EINVAL ? err : strerror(-rc));
		return rc;
	}
	if ((rc = conf_load_env(&cli->conf, err, sizeof(err))) < 0)
		cli_err("bad environment: %s", err);
	else if ((rc = conf_check(&cli->conf, err, sizeof(err))) < 0)
		cli_err("%s", err);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "store", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *store = NULL, *why;
	const struct cmd *cmd;
	struct cli cli;
	int c, code;

	memset(&cli, 0, sizeof(cli));
	cli.tty = isatty(STDERR_FILENO);
	while ((c = getopt_long(argc, argv, "+s:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			store = optarg;
			break;
		case 'J':
			cli.json = 1;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		case 'V':
			printf("modelcache %s\n", PACKAGE_VERSION);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((cmd = cli_find(argv[optind])) == NULL) {
		cli_err("unknown command '%s'", argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (configure(&cli) < 0)
		return EXIT_USAGE;
	if (store != NULL && conf_set(&cli.conf, "store", store, &why) < 0) {
		cli_err("bad --store '%s': %s", store, why);
		return EXIT_USAGE;
	}
	code = cmd->exec(&cli, argc - optind, argv + optind);
	cli_close(&cli);
	conf_release(&cli.conf);
	return code;
}
