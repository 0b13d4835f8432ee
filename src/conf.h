/*
 * conf: modelcache's configuration, from flags, environment and file.
 *
 * Precedence is flags over environment over file over defaults: a program
 * calls conf_init(), conf_load_file() (when a file exists), conf_load_env(),
 * then conf_set() for each flag.  Every key is one row of a table in conf.c
 * giving its name in the file, its environment variable and its default;
 * modelcache.conf(5) documents the same table.  The file format is
 * "key = value" lines; '#' starts a comment; blank lines are ignored; a value
 * may be wrapped in double quotes.  Input is bounded: lines over CONF_LINE_MAX
 * bytes and files over CONF_FILE_MAX bytes are errors.
 */
#ifndef MC_CONF_H
#define MC_CONF_H

#include <stddef.h>
#include <stdint.h>

#define CONF_LINE_MAX 4096
#define CONF_FILE_MAX (1024 * 1024)
#define CONF_GLOBS_MAX 64 /* patterns in include or exclude */
#define CONF_BUSY_MAX 30  /* index_busy_timeout's most, INDEX_BUSY_MS */

struct conf {
	char *store;   /* store		MODELCACHE_STORE */
	char *socket;  /* socket		MODELCACHE_SOCKET */
	char *models;  /* models		MODELCACHE_MODELS */
	char *include; /* include		MODELCACHE_INCLUDE */
	char *exclude; /* exclude		MODELCACHE_EXCLUDE */
	uint64_t
	    max_size;	     /* max_size		MODELCACHE_MAX_SIZE, 0 = none */
	char *log_format;    /* log_format		MODELCACHE_LOG_FORMAT */
	char *hf_endpoint;   /* hf_endpoint		HF_ENDPOINT */
	char *hf_token_path; /* hf_token_path	HF_TOKEN_PATH */
	unsigned stale_s;    /* stale_after		MODELCACHE_STALE_AFTER */
	unsigned refresh_s;  /* refresh		MODELCACHE_REFRESH */
	unsigned busy_s;     /* index_busy_timeout, 0 = a 4th of stale_s */
	char *socket_group;  /* socket_group	MODELCACHE_SOCKET_GROUP */
	char *allow_uids;    /* allow_uids	MODELCACHE_ALLOW_UIDS */
	unsigned max_conns;  /* max_connections	MODELCACHE_MAX_CONNECTIONS */
	unsigned
	    max_leases; /* max_leases_per_client ..._MAX_LEASES_PER_CLIENT */
	unsigned max_pulls; /* max_pulls_per_client ..._MAX_PULLS_PER_CLIENT */
	char *allow;	    /* allow		MODELCACHE_ALLOW (globs) */
	char *index;	    /* index		MODELCACHE_INDEX, "" = default */
	char *node;	    /* node		MODELCACHE_NODE, "" = host name */
};

/* Fills *conf with the defaults (allocating their strings: 0 or -ENOMEM). */
int conf_init(struct conf *conf);
void conf_release(struct conf *conf);

/*
 * Sets one key from text.  Returns 0, -ENOENT for an unknown key, -EINVAL
 * for a bad value (with *why set to a static phrase), or -ENOMEM.
 */
int conf_set(struct conf *conf, const char *key, const char *value,
    const char **why);

/*
 * Reads a file.  Returns 0, -ENOENT when it does not exist, another negative
 * errno when it cannot be read, or -EINVAL for a bad line, with
 * "LINE: reason" written into err.  On error *conf keeps the keys set
 * before the bad line: callers that must not half-apply load into a
 * scratch struct conf first.
 */
int conf_load_file(struct conf *conf, const char *path, char *err,
    size_t errlen);

/*
 * Checks what no one key can: index_busy_timeout, when set, is below
 * stale_after.  Returns 0, or -EINVAL with a sentence in err.  Callers run
 * it once every source is loaded.
 */
int conf_check(const struct conf *conf, char *err, size_t errlen);

/* Applies each key's environment variable that is set and non-empty. */
int conf_load_env(struct conf *conf, char *err, size_t errlen);

/*
 * Splits a list of globs (include, exclude: separated by spaces, tabs or
 * commas) in place, NUL-terminating each, and points globs[0..n) into
 * list.  Returns n, at most max; the rest is dropped (conf_set() refuses
 * more than CONF_GLOBS_MAX).
 */
size_t conf_globs(char *list, const char **globs, size_t max);

/*
 * Parses a size: a decimal number with an optional unit, K/M/G/T (powers of
 * 1000, "KB" etc. too) or KiB/MiB/GiB/TiB (powers of 1024), case-insensitive,
 * optionally "B".  "10G", "512MiB", "1.5GiB", "100" (bytes).  Returns 0 or
 * -EINVAL (also on overflow).
 */
int conf_parse_size(const char *text, uint64_t *out);

#endif
