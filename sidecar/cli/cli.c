/*
 * cli: helpers shared by the modelcache(1) subcommands (see cli.h).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli.h"
#include "hub.h"

void
cli_err(const char *fmt, ...)
{
	va_list ap;

	fputs("modelcache: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
cli_exit_for(enum err_code e)
{
	int code = err_exit(e);

	return code > EXIT_NOSPACE ? EXIT_FAIL : code;
}

int
cli_exit_code(int rc)
{
	return cli_exit_for(err_of_errno(rc));
}

int
cli_open(struct cli *cli, int create)
{
	struct index_conf ic = { 0 };
	int rc;

	if (cli->opened)
		return 0;
	rc = store_open(&cli->store, cli->conf.store, create);
	if (rc == -ENOENT && !create) {
		cli_err("no store at '%s' (set --store or MODELCACHE_STORE)",
		    cli->conf.store);
		return rc;
	}
	if (rc < 0) {
		cli_err("cannot open the store '%s': %s", cli->conf.store,
		    strerror(-rc));
		return rc;
	}
	cli->store.stale_ms = (int64_t)cli->conf.stale_s * 1000;
	/*
	 * Heartbeats on a thread of their own: an import's hashing and
	 * fsyncs, or a wait on SQLite, must not let a claim go stale.
	 */
	if ((rc = beat_start(&cli->beat, cli->store.stale_ms / 4)) < 0) {
		cli_err("cannot start the heartbeat thread: %s", strerror(-rc));
		store_release(&cli->store);
		return rc;
	}
	cli->store.beat = &cli->beat;
	ic.path = cli->conf.index;
	ic.node = cli->conf.node;
	ic.stale_ms = cli->store.stale_ms;
	ic.busy_ms = (int64_t)cli->conf.busy_s * 1000;
	if ((rc = index_open(&cli->index, &cli->store, &ic)) < 0) {
		cli_err("cannot open the index of '%s': %s", cli->conf.store,
		    strerror(-rc));
		cli->store.beat = NULL;
		beat_stop(&cli->beat);
		store_release(&cli->store);
		return rc;
	}
	cli->opened = 1;
	return 0;
}

void
cli_close(struct cli *cli)
{
	if (!cli->opened)
		return;
	index_close(&cli->index);
	cli->store.beat = NULL;
	beat_stop(&cli->beat);
	store_release(&cli->store);
	cli->opened = 0;
}

static void
usage(const struct cmd *cmd, const char *help, FILE *to)
{
	fprintf(to, "usage: modelcache %s\n", cmd->usage);
	if (to == stdout)
		fprintf(to,
		    "\n%s.\n\n%s  --json        machine-readable output"
		    "\n  -h, --help    this help\n",
		    cmd->summary, help != NULL ? help : "");
}

int
cli_getopt(struct cli *cli, const struct cmd *cmd, int argc, char **argv,
    const struct option *extra, const char *help,
    int (*on_opt)(void *, int, const char *), void *arg, int *code)
{
	struct option opts[16];
	size_t n = 0;
	int c;

	memset(opts, 0, sizeof(opts));
	opts[n++] = (struct option){ "json", no_argument, NULL, 'J' };
	opts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	for (; extra != NULL && extra[n - 2].name != NULL && n < 15; n++)
		opts[n] = extra[n - 2];
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (c == 'J')
			cli->json = 1;
		else if (c == 'h') {
			usage(cmd, help, stdout);
			*code = EXIT_OK;
			return -1;
		} else if (c == '?' || on_opt == NULL ||
		    (*code = on_opt(arg, c, optarg)) != 0) {
			usage(cmd, help, stderr);
			*code = EXIT_USAGE;
			return -1;
		}
	}
	return optind;
}

const char *
cli_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB",
		"PiB" };
	double v = (double)bytes;
	int u = -1;

	if (bytes < 1024) {
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

const char *
cli_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == 0 || localtime_r(&tt, &tm) == NULL)
		snprintf(buf, len, "-");
	else
		strftime(buf, len, "%Y-%m-%d %H:%M", &tm);
	return buf;
}

struct selection {
	int (*fn)(void *, const struct index_snapshot *);
	void *arg;
	unsigned n;
};

static int
select_one(void *arg, const struct index_snapshot *s)
{
	struct selection *sel = arg;

	sel->n++;
	return sel->fn(sel->arg, s);
}

int
cli_select(struct cli *cli, const char *model,
    int (*fn)(void *, const struct index_snapshot *), void *arg)
{
	struct selection sel = { fn, arg, 0 };
	char commit[DIGEST_SHA1_HEX + 1];
	struct store_place place;
	const char *why;
	struct ref ref;
	int rc;

	ref_init(&ref);
	if ((rc = ref_parse(&ref, model, &why)) < 0) {
		cli_err("bad model name '%s': %s", model, why);
		goto out;
	}
	if (ref.kind != REF_HF) {
		cli_err("bad model name '%s': the store names models as"
			" org/name[@revision]",
		    model);
		rc = -EINVAL;
		goto out;
	}
	if (ref.revision != NULL) {
		rc = store_locate(&ref, NULL, NULL, &place);
		if (rc == 0)
			rc = hub_resolve(&cli->store, &cli->index, &place,
			    commit, NULL);
		if (rc == -ENOENT || rc == -EEXIST) {
			cli_err("'%s' is not in the store%s", model,
			    rc == -EEXIST ? " (ambiguous commit prefix)" : "");
			rc = -ENOENT;
			goto out;
		}
		if (rc < 0)
			goto out;
	}
	rc = index_each_snapshot(&cli->index, ref.type, ref.repo,
	    ref.revision != NULL ? commit : NULL, select_one, &sel);
	if (rc == 0 && sel.n == 0) {
		cli_err("'%s' is not in the store", model);
		rc = -ENOENT;
	}
out:
	ref_release(&ref);
	return rc;
}

static int
gather(void *arg, const struct index_snapshot *s)
{
	struct cli_picks *picks = arg;
	struct cli_pick *p;

	p = reallocarray(picks->v, picks->n + 1, sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	picks->v = p;
	p = &p[picks->n++];
	p->id = s->id;
	snprintf(p->folder, sizeof(p->folder), "%s", s->folder);
	snprintf(p->repo, sizeof(p->repo), "%s", s->repo);
	snprintf(p->commit, sizeof(p->commit), "%s", s->commit);
	return 0;
}

int
cli_pick(struct cli *cli, const char *model, struct cli_picks *picks)
{
	return cli_select(cli, model, gather, picks);
}

void
cli_picks_release(struct cli_picks *picks)
{
	free(picks->v);
	picks->v = NULL;
	picks->n = 0;
}

int
cli_print_json(void *json)
{
	int rc;

	if (json == NULL)
		return -ENOMEM;
	rc = json_dumpf(json, stdout,
	    JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
	fputc('\n', stdout);
	json_decref(json);
	return rc == 0 ? 0 : -EIO;
}

const struct cmd *
cli_find(const char *name)
{
	const struct cmd *c;

	for (c = cli_cmds; c->name != NULL; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}
