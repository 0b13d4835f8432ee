/*
 * cli: what the subcommands of modelcache(1) share.
 *
 * Each subcommand is one entry of the table in modelcache.c, with its
 * name, its usage line (the same text as the man page's SYNOPSIS) and the
 * function that runs it.  A command gets the argv that follows its name,
 * opens the store through cli_open() and reports failures with cli_err(),
 * once, where they are decided.  Exit codes are documented in
 * modelcache(1) and are the same across commands.
 */
#ifndef MC_CLI_H
#define MC_CLI_H

#include <stdint.h>

#include "beat.h"
#include "conf.h"
#include "errors.h"
#include "index.h"
#include "store.h"

struct cli {
	struct conf conf;
	int json;
	int tty; /* stderr is a terminal: show progress */
	struct store store;
	struct index index;
	struct beat beat; /* heartbeats of the claims and leases held */
	int opened;
};

struct cmd {
	const char *name;
	const char *usage; /* after "modelcache " */
	const char *summary;
	int (*exec)(struct cli *cli, int argc, char **argv);
};

/* Prints "modelcache: <message>" to stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Opens the store (creating it when create is set) and its index. */
int cli_open(struct cli *cli, int create);
void cli_close(struct cli *cli);

/*
 * The exit status of a code of errors.h, and of 0 or a negative errno
 * (through err_of_errno()).  A command of modelcache(1) exits 0 to 7:
 * the statuses over EXIT_NOSPACE, a client's of the daemon, are 1 here.
 */
int cli_exit_for(enum err_code e);
int cli_exit_code(int rc);

/*
 * Parses a command's options: the ones every command has (--json, --help)
 * and those in extra (getopt_long form; may be NULL).  Calls on_opt for
 * each extra option.  Returns the index of the first operand, or -1 after
 * printing usage (exit code in *code).
 */
struct option;
int cli_getopt(struct cli *cli, const struct cmd *cmd, int argc, char **argv,
    const struct option *extra, const char *help,
    int (*on_opt)(void *arg, int opt, const char *value), void *arg, int *code);

/* "1.5 GiB", "512 B": human sizes into buf. */
const char *cli_size(uint64_t bytes, char *buf, size_t len);
/* "2026-11-26 18:00" in local time, or "-" for 0. */
const char *cli_time(int64_t t, char *buf, size_t len);

/*
 * Calls fn for each snapshot that MODEL ("org/name", "org/name@rev",
 * "hf://datasets/org/name@rev") names.  Reports and returns -EINVAL for a
 * bad name and -ENOENT when nothing matches.
 */
int cli_select(struct cli *cli, const char *model,
    int (*fn)(void *arg, const struct index_snapshot *s), void *arg);

/* Snapshots chosen by name, gathered before anything acts on them. */
struct cli_pick {
	int64_t id;
	char folder[REF_FOLDER_MAX];
	char repo[REF_FOLDER_MAX];
	char commit[DIGEST_SHA1_HEX + 1];
};

struct cli_picks {
	struct cli_pick *v;
	size_t n;
};

/* Adds the snapshots MODEL names to picks (as cli_select()). */
int cli_pick(struct cli *cli, const char *model, struct cli_picks *picks);
void cli_picks_release(struct cli_picks *picks);

/* Prints a JSON value on stdout and frees it. */
int cli_print_json(void *json);

/* The commands. */
int cmd_import(struct cli *, int, char **);
int cmd_pull(struct cli *, int, char **);
int cmd_ls(struct cli *, int, char **);
int cmd_show(struct cli *, int, char **);
int cmd_du(struct cli *, int, char **);
int cmd_verify(struct cli *, int, char **);
int cmd_rm(struct cli *, int, char **);
int cmd_pin(struct cli *, int, char **);
int cmd_unpin(struct cli *, int, char **);
int cmd_gc(struct cli *, int, char **);
int cmd_fsck(struct cli *, int, char **);
int cmd_status(struct cli *, int, char **);

/* The table, for --help and dispatch. */
const struct cmd *cli_find(const char *name);
extern const struct cmd cli_cmds[];

#endif
