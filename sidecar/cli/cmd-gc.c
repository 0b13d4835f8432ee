/*
 * modelcache gc: evict least recently used models until the store fits a
 * size.  Pinned models and models with a live lease (in use by a server on
 * any node) are never evicted; --dry-run prints the plan only.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "gc.h"
#include "lease.h"

struct gc_args {
	const char *max_size;
	int dry_run;
};

/* gc_plan()'s skip: a snapshot with a live lease stays. */
struct gc_leases {
	struct store *store;
	int64_t stale_ms;
	int err; /* the first error reading the lease files */
};

static int
gc_leased(void *arg, const char *folder, const char *commit)
{
	struct gc_leases *l = arg;
	int rc;

	rc = lease_live(l->store, folder, commit, l->stale_ms);
	if (rc < 0 && l->err == 0)
		l->err = rc;
	return rc != 0; /* unsure: keep it */
}

static int
gc_opt(void *arg, int opt, const char *value)
{
	struct gc_args *a = arg;

	if (opt == 'm')
		a->max_size = value;
	else if (opt == 'n')
		a->dry_run = 1;
	else
		return 1;
	return 0;
}

static int
print_plan(struct cli *cli, const struct gc_plan *plan, uint64_t max,
    uint64_t freed, int dry_run)
{
	char a[32], b[32], c[32];
	json_t *victims, *busy, *o;
	size_t i;

	if (cli->json) {
		victims = json_array();
		busy = json_array();
		for (i = 0; victims != NULL && busy != NULL && i < plan->n;
		     i++) {
			o = json_pack("{s:s, s:s, s:I, s:I}", "repo",
			    plan->victims[i].repo, "commit",
			    plan->victims[i].commit, "last_used",
			    (json_int_t)plan->victims[i].last_used, "frees",
			    (json_int_t)plan->victims[i].frees);
			json_array_append_new(plan->victims[i].kept ? busy
								    : victims,
			    o);
		}
		return cli_print_json(
		    json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o}",
			"dry_run", dry_run, "max_size", (json_int_t)max,
			"before", (json_int_t)plan->before, "after",
			(json_int_t)plan->after, "freed", (json_int_t)freed,
			"kept_pinned", (json_int_t)plan->kept_pinned,
			"kept_leased", (json_int_t)plan->kept_leased, "evicted",
			victims, "leased_meanwhile", busy));
	}
	for (i = 0; i < plan->n; i++)
		printf("%s %s@%.12s (%s)\n",
		    plan->victims[i].kept ? "kept, leased meanwhile,"
			: dry_run	  ? "would evict"
					  : "evicted",
		    plan->victims[i].repo, plan->victims[i].commit,
		    cli_size(plan->victims[i].frees, a, sizeof(a)));
	printf("store: %s, quota %s, %s %s\n",
	    cli_size(plan->before, a, sizeof(a)), cli_size(max, b, sizeof(b)),
	    dry_run ? "would free" : "freed",
	    cli_size(dry_run ? plan->before - plan->after : freed, c,
		sizeof(c)));
	if (plan->kept_leased > 0)
		printf("kept %s in use (leased)\n",
		    cli_size(plan->kept_leased, a, sizeof(a)));
	if (plan->kept_pinned > 0)
		printf("kept %s pinned\n",
		    cli_size(plan->kept_pinned, a, sizeof(a)));
	return 0;
}

int
cmd_gc(struct cli *cli, int argc, char **argv)
{
	static const struct option extra[] = {
		{ "max-size", required_argument, NULL, 'm' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	struct gc_args a = { NULL, 0 };
	struct gc_leases leases;
	struct gc_plan plan;
	uint64_t max, freed = 0;
	char s1[32], s2[32];
	size_t v;
	int i, code, rc;

	i = cli_getopt(cli, cli_find("gc"), argc, argv, extra,
	    "  --max-size SIZE  the size to fit, e.g. 10G or 512MiB\n"
	    "                   (default: MODELCACHE_MAX_SIZE)\n"
	    "  --dry-run        print what would be evicted, evict nothing\n",
	    gc_opt, &a, &code);
	if (i < 0)
		return code;
	if (i != argc) {
		cli_err("usage: modelcache %s", cli_find("gc")->usage);
		return EXIT_USAGE;
	}
	/* Without --max-size, the quota the daemon keeps (max_size). */
	if (a.max_size == NULL && cli->conf.max_size == 0) {
		cli_err("give --max-size, or set MODELCACHE_MAX_SIZE");
		return EXIT_USAGE;
	}
	if (a.max_size == NULL)
		max = cli->conf.max_size;
	else if (conf_parse_size(a.max_size, &max) < 0) {
		cli_err("bad size '%s': use bytes or a unit such as 10G or"
			" 512MiB",
		    a.max_size);
		return EXIT_USAGE;
	}
	if ((rc = cli_open(cli, 0)) < 0)
		return cli_exit_code(rc);
	leases.store = &cli->store;
	leases.stale_ms = cli->store.stale_ms;
	leases.err = 0;
	if ((rc = gc_plan(&cli->index, max, gc_leased, &leases, &plan)) < 0) {
		cli_err("cannot plan the eviction: %s", strerror(-rc));
		return cli_exit_code(rc);
	}
	/* Leases that cannot be read may protect anything: evict nothing. */
	if (leases.err < 0) {
		cli_err("cannot read the leases: %s", strerror(-leases.err));
		gc_plan_release(&plan);
		return cli_exit_code(leases.err);
	}
	if (!a.dry_run)
		rc = gc_run(&cli->store, &cli->index, &plan,
		    cli->store.stale_ms, &freed);
	/* A victim leased meanwhile stays: so do its bytes. */
	for (v = 0; v < plan.n; v++)
		if (plan.victims[v].kept) {
			plan.after += plan.victims[v].frees;
			plan.kept_leased += plan.victims[v].frees;
		}
	if (rc < 0)
		cli_err("eviction stopped: %s", strerror(-rc));
	else
		print_plan(cli, &plan, max, freed, a.dry_run);
	if (rc == 0 && plan.after > max) {
		cli_err("the store stays at %s, above %s: the rest is %s",
		    cli_size(plan.after, s1, sizeof(s1)),
		    cli_size(max, s2, sizeof(s2)),
		    plan.kept_leased == 0	? "pinned"
			: plan.kept_pinned == 0 ? "in use (leased)"
						: "pinned or in use (leased)");
		rc = -ENOSPC;
	}
	gc_plan_release(&plan);
	return cli_exit_code(rc);
}
