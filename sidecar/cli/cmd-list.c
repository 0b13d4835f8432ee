/*
 * modelcache ls, show, du: what is cached, how big, since when.  Read-only:
 * these never change the store (opening it may rebuild a missing index).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "hub.h"

static json_t *
revisions_json(const char *refs)
{
	json_t *a = json_array();
	const char *p = refs, *comma;

	while (a != NULL && *p != '\0') {
		comma = strchr(p, ',');
		json_array_append_new(a,
		    json_stringn(p,
			comma != NULL ? (size_t)(comma - p) : strlen(p)));
		p = comma != NULL ? comma + 1 : p + strlen(p);
	}
	return a;
}

static json_t *
snapshot_json(const struct index_snapshot *s)
{
	char dir[STORE_PATH_MAX];

	hub_snapshot_dir(s->folder, s->commit, dir, sizeof(dir));
	return json_pack("{s:s, s:s, s:s, s:o, s:s, s:I, s:I, s:b, s:I, s:I,"
			 " s:s, s:s}",
	    "type", ref_type_name(s->type), "repo", s->repo, "commit",
	    s->commit, "revisions", revisions_json(s->refs), "dir", dir,
	    "files", (json_int_t)s->nfiles, "size", (json_int_t)s->size,
	    "pinned", s->pinned, "created", (json_int_t)s->created, "last_used",
	    (json_int_t)s->last_used, "source", s->source, "trust", s->trust);
}

/* "org/name" for models, "datasets/org/name" otherwise. */
static const char *
display_name(const struct index_snapshot *s, char *buf, size_t len)
{
	if (s->type == REPO_MODEL)
		return s->repo;
	snprintf(buf, len, "%ss/%s", ref_type_name(s->type), s->repo);
	return buf;
}

static int
ls_row(void *arg, const struct index_snapshot *s)
{
	json_t *rows = arg;
	char size[32], used[32], name[REF_FOLDER_MAX];

	if (rows != NULL)
		return json_array_append_new(rows, snapshot_json(s)) == 0
		    ? 0
		    : -ENOMEM;
	printf("%-40s %-12s %.12s %6llu %10s %-6s %s\n",
	    display_name(s, name, sizeof(name)),
	    s->refs[0] != '\0' ? s->refs : "-", s->commit,
	    (unsigned long long)s->nfiles,
	    cli_size(s->size, size, sizeof(size)), s->pinned ? "yes" : "no",
	    cli_time(s->last_used, used, sizeof(used)));
	return 0;
}

int
cmd_ls(struct cli *cli, int argc, char **argv)
{
	json_t *rows = NULL;
	int i, code, rc;

	i = cli_getopt(cli, cli_find("ls"), argc, argv, NULL, NULL, NULL, NULL,
	    &code);
	if (i < 0)
		return code;
	if (i != argc) {
		cli_err("usage: modelcache %s", cli_find("ls")->usage);
		return EXIT_USAGE;
	}
	if ((rc = cli_open(cli, 0)) < 0)
		return cli_exit_code(rc);
	if (cli->json)
		rows = json_array();
	else
		printf("%-40s %-12s %-12s %6s %10s %-6s %s\n", "MODEL",
		    "REVISIONS", "COMMIT", "FILES", "SIZE", "PINNED",
		    "LAST USED");
	rc = index_each_snapshot(&cli->index, REPO_MODEL, NULL, NULL, ls_row,
	    rows);
	if (rc == 0 && rows != NULL)
		rc = cli_print_json(rows);
	else
		json_decref(rows);
	if (rc < 0)
		cli_err("cannot list the store: %s", strerror(-rc));
	return cli_exit_code(rc);
}

struct show {
	struct cli *cli;
	json_t *out;
};

static int
show_file(void *arg, const char *path, uint64_t size, const char *sha256,
    const char *etag)
{
	json_t *files = arg;
	char human[32];

	if (files != NULL)
		return json_array_append_new(files,
			   json_pack("{s:s, s:I, s:s, s:s}", "path", path,
			       "size", (json_int_t)size, "sha256", sha256,
			       "etag", etag)) == 0
		    ? 0
		    : -ENOMEM;
	printf("  %-50s %10s  %.16s\n", path,
	    cli_size(size, human, sizeof(human)), sha256);
	return 0;
}

static int
show_one(void *arg, const struct index_snapshot *s)
{
	struct show *sh = arg;
	char size[32], t1[32], t2[32], name[REF_FOLDER_MAX];
	char dir[STORE_PATH_MAX];
	json_t *obj, *files;

	if (sh->out != NULL) {
		obj = snapshot_json(s);
		files = json_array();
		if (obj == NULL || files == NULL ||
		    json_object_set_new(obj, "file_list", files) < 0 ||
		    json_array_append_new(sh->out, obj) < 0)
			return -ENOMEM;
		return index_each_file(&sh->cli->index, s->id, show_file,
		    files);
	}
	printf("%s@%.12s\n", display_name(s, name, sizeof(name)), s->commit);
	printf("  commit:     %s\n  revisions:  %s\n  source:     %s (%s)\n",
	    s->commit, s->refs[0] != '\0' ? s->refs : "-", s->source, s->trust);
	hub_snapshot_dir(s->folder, s->commit, dir, sizeof(dir));
	printf("  dir:        %s\n", dir);
	printf("  size:       %s in %llu files\n  pinned:     %s\n",
	    cli_size(s->size, size, sizeof(size)),
	    (unsigned long long)s->nfiles, s->pinned ? "yes" : "no");
	printf("  created:    %s\n  last used:  %s\n",
	    cli_time(s->created, t1, sizeof(t1)),
	    cli_time(s->last_used, t2, sizeof(t2)));
	return index_each_file(&sh->cli->index, s->id, show_file, NULL);
}

int
cmd_show(struct cli *cli, int argc, char **argv)
{
	struct show sh = { cli, NULL };
	int i, code, rc;

	i = cli_getopt(cli, cli_find("show"), argc, argv, NULL, NULL, NULL,
	    NULL, &code);
	if (i < 0)
		return code;
	if (argc - i != 1) {
		cli_err("usage: modelcache %s", cli_find("show")->usage);
		return EXIT_USAGE;
	}
	if ((rc = cli_open(cli, 0)) < 0)
		return cli_exit_code(rc);
	if (cli->json)
		sh.out = json_array();
	rc = cli_select(cli, argv[i], show_one, &sh);
	if (rc == 0 && sh.out != NULL)
		rc = cli_print_json(sh.out);
	else
		json_decref(sh.out);
	return cli_exit_code(rc);
}

static int
du_row(void *arg, const struct index_snapshot *s)
{
	json_t *rows = arg;
	char size[32], name[REF_FOLDER_MAX];

	if (rows != NULL)
		return json_array_append_new(rows,
			   json_pack("{s:s, s:s, s:s, s:I}", "type",
			       ref_type_name(s->type), "repo", s->repo,
			       "commit", s->commit, "size",
			       (json_int_t)s->size)) == 0
		    ? 0
		    : -ENOMEM;
	printf("%10s  %s@%.12s\n", cli_size(s->size, size, sizeof(size)),
	    display_name(s, name, sizeof(name)), s->commit);
	return 0;
}

int
cmd_du(struct cli *cli, int argc, char **argv)
{
	uint64_t blob_bytes, blob_count, file_bytes;
	json_t *rows = NULL;
	char a[32], b[32];
	int i, code, rc;

	i = cli_getopt(cli, cli_find("du"), argc, argv, NULL, NULL, NULL, NULL,
	    &code);
	if (i < 0)
		return code;
	if (i != argc) {
		cli_err("usage: modelcache %s", cli_find("du")->usage);
		return EXIT_USAGE;
	}
	if ((rc = cli_open(cli, 0)) < 0)
		return cli_exit_code(rc);
	if ((rc = index_totals(&cli->index, &blob_bytes, &blob_count,
		 &file_bytes)) < 0) {
		cli_err("cannot read the index: %s", strerror(-rc));
		return cli_exit_code(rc);
	}
	if (cli->json)
		rows = json_array();
	rc = index_each_snapshot(&cli->index, REPO_MODEL, NULL, NULL, du_row,
	    rows);
	if (rc < 0) {
		json_decref(rows);
		return cli_exit_code(rc);
	}
	if (rows != NULL)
		return cli_exit_code(
		    cli_print_json(json_pack("{s:I, s:I, s:I, s:o}", "size",
			(json_int_t)blob_bytes, "blobs", (json_int_t)blob_count,
			"logical", (json_int_t)file_bytes, "models", rows)));
	printf("%10s  total, %llu blobs (%s before sharing)\n",
	    cli_size(blob_bytes, a, sizeof(a)), (unsigned long long)blob_count,
	    cli_size(file_bytes, b, sizeof(b)));
	return EXIT_OK;
}
