/*
 * hub: building, checking and removing the Hugging Face cache view.
 *
 * Every change to hub/ is a rename of something finished in tmp/ (a link, a
 * symlink, a whole snapshot, a ref), so a reader of the view, or a crash,
 * sees either the old entry or the new one.  The checks compare the view
 * with the manifest byte for byte: link targets as strings, blob links by
 * inode, refs by content.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "hub.h"
#include "index.h"
#include "origin_https.h"

#define HUB_REF_DEPTH 8 /* refs/pr/1 nests; bound the walk */

/* snprintf into a path buffer: 0, or -ENAMETOOLONG when cut short. */
static int fmt(char *buf, size_t len, const char *f, ...)
    __attribute__((format(printf, 3, 4)));

static int
fmt(char *buf, size_t len, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(buf, len, f, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int
hub_link_target(const char *path, const char *etag, char *buf, size_t len)
{
	size_t depth = 0, off = 0, i;
	int n;

	for (i = 0; path[i] != '\0'; i++)
		depth += path[i] == '/';
	for (i = 0; i < depth + 2; i++) {
		if (off + 3 >= len)
			return -ENAMETOOLONG;
		memcpy(buf + off, "../", 3);
		off += 3;
	}
	n = snprintf(buf + off, len - off, "blobs/%s", etag);
	return n < 0 || (size_t)n >= len - off ? -ENAMETOOLONG : 0;
}

/* Makes hub/<folder>/blobs/<etag> a hard link of the store blob. */
static int
publish_blob(struct store *store, const char *folder,
    const struct manifest_file *f)
{
	char src[STORE_PATH_MAX], dst[STORE_PATH_MAX], tmp[STORE_PATH_MAX];
	struct stat a, b;
	int fd, rc;

	if ((rc = store_blob_path(f->sha256, src, sizeof(src))) < 0 ||
	    (rc = fmt(dst, sizeof(dst), "hub/%s/blobs/%s", folder, f->etag)) <
		0)
		return rc;
	if (fstatat(store->dirfd, src, &a, AT_SYMLINK_NOFOLLOW) == -1)
		return -errno;
	if (fstatat(store->dirfd, dst, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	    a.st_ino == b.st_ino && a.st_dev == b.st_dev)
		return 0;
	/* A tmp name to link to: create it to reserve it, then replace. */
	if ((fd = store_tmp_create(store, ".link", tmp, sizeof(tmp))) < 0)
		return fd;
	close(fd);
	unlinkat(store->dirfd, tmp, 0);
	if (linkat(store->dirfd, src, store->dirfd, tmp, 0) == -1)
		return -errno;
	if (renameat(store->dirfd, tmp, store->dirfd, dst) == -1) {
		rc = -errno;
		unlinkat(store->dirfd, tmp, 0);
		return rc;
	}
	fault_point("hub-blob-linked");
	return 0;
}

/* Creates parent directories of a path below dirfd/base. */
static int
make_parents(struct store *store, const char *base, const char *path)
{
	char rel[STORE_PATH_MAX];
	const char *slash = strrchr(path, '/');
	int n;

	if (slash == NULL)
		return 0;
	n = snprintf(rel, sizeof(rel), "%s/%.*s", base, (int)(slash - path),
	    path);
	if (n < 0 || (size_t)n >= sizeof(rel))
		return -ENAMETOOLONG;
	return store_mkdirs(store, rel);
}

/*
 * Places a symlink at base/path, replacing a wrong one by rename.  1 when
 * it placed one, 0 when the right one was there, or a negative errno.
 */
static int
place_link(struct store *store, const char *base, const struct manifest_file *f,
    int replace)
{
	char rel[STORE_PATH_MAX], target[STORE_PATH_MAX], cur[STORE_PATH_MAX];
	char tmp[STORE_PATH_MAX];
	ssize_t n;
	int fd, rc;

	if ((rc = hub_link_target(f->path, f->etag, target, sizeof(target))) <
		0 ||
	    (rc = fmt(rel, sizeof(rel), "%s/%s", base, f->path)) < 0)
		return rc;
	n = readlinkat(store->dirfd, rel, cur, sizeof(cur) - 1);
	if (n >= 0) {
		cur[n] = '\0';
		if (strcmp(cur, target) == 0)
			return 0;
	}
	if ((rc = make_parents(store, base, f->path)) < 0)
		return rc;
	if (!replace && n < 0 && errno == ENOENT) {
		if (symlinkat(target, store->dirfd, rel) == -1)
			return -errno;
		return 1;
	}
	if ((fd = store_tmp_create(store, ".sym", tmp, sizeof(tmp))) < 0)
		return fd;
	close(fd);
	unlinkat(store->dirfd, tmp, 0);
	if (symlinkat(target, store->dirfd, tmp) == -1)
		return -errno;
	if (renameat(store->dirfd, tmp, store->dirfd, rel) == -1) {
		rc = -errno;
		unlinkat(store->dirfd, tmp, 0);
		return rc;
	}
	return 1;
}

/* Builds the whole snapshot in tmp/ and renames it into place. */
static int
publish_snapshot(struct store *store, const struct manifest *m,
    const char *snap)
{
	char stage[STORE_PATH_MAX];
	size_t i;
	int fd, rc = 0;

	if ((fd = store_tmp_create(store, ".snap", stage, sizeof(stage))) < 0)
		return fd;
	close(fd);
	unlinkat(store->dirfd, stage, 0);
	if (mkdirat(store->dirfd, stage, 0755) == -1)
		return -errno;
	for (i = 0; rc == 0 && i < m->nfiles; i++)
		if ((rc = place_link(store, stage, &m->files[i], 0)) > 0)
			rc = 0;
	if (rc == 0)
		rc = store_sync_tree(store, stage);
	fault_point("hub-snapshot-staged");
	if (rc == 0 && renameat(store->dirfd, stage, store->dirfd, snap) == -1)
		rc = -errno;
	if (rc < 0) {
		store_remove_tree(store, stage);
		/* Another process published it first: complete it below. */
		return rc == -EEXIST || rc == -ENOTEMPTY ? 1 : rc;
	}
	fault_point("hub-snapshot-renamed");
	return 0;
}

/* True when the ref file rel holds exactly commit (no newline). */
static int
ref_reads(struct store *store, const char *rel, const char *commit)
{
	char *buf;
	size_t len;
	int same;

	if (store_read_file(store, rel, 64, &buf, &len) < 0)
		return 0;
	same = len == DIGEST_SHA1_HEX && memcmp(buf, commit, len) == 0;
	free(buf);
	return same;
}

int
hub_snapshot_exists(struct store *store, const struct manifest *m)
{
	char folder[REF_FOLDER_MAX], snap[STORE_PATH_MAX];
	struct stat st;

	return ref_folder_of(m->type, m->repo, folder, sizeof(folder)) == 0 &&
	    fmt(snap, sizeof(snap), "hub/%s/snapshots/%s", folder, m->commit) ==
	    0 &&
	    fstatat(store->dirfd, snap, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(st.st_mode);
}

int
hub_publish(struct store *store, const struct manifest *m)
{
	char folder[REF_FOLDER_MAX], dir[STORE_PATH_MAX], snap[STORE_PATH_MAX];
	char ref[STORE_PATH_MAX];
	struct stat st;
	size_t i;
	int rc, changed;

	if ((rc = ref_folder_of(m->type, m->repo, folder, sizeof(folder))) < 0)
		return rc;
	if ((rc = fmt(dir, sizeof(dir), "hub/%s/blobs", folder)) < 0 ||
	    (rc = store_mkdirs(store, dir)) < 0)
		return rc;
	fault_point("hub-folder-made");
	if ((rc = fmt(dir, sizeof(dir), "hub/%s/snapshots", folder)) < 0 ||
	    (rc = store_mkdirs(store, dir)) < 0)
		return rc;
	for (i = 0; i < m->nfiles; i++)
		if ((rc = publish_blob(store, folder, &m->files[i])) < 0)
			return rc;
	/* The links must be durable before a snapshot points at them. */
	if ((rc = fmt(dir, sizeof(dir), "hub/%s/blobs", folder)) < 0 ||
	    (rc = store_fsync_dir(store, dir)) < 0)
		return rc;
	if ((rc = fmt(snap, sizeof(snap), "hub/%s/snapshots/%s", folder,
		 m->commit)) < 0)
		return rc;
	rc = 1;
	if (fstatat(store->dirfd, snap, &st, AT_SYMLINK_NOFOLLOW) == -1)
		rc = publish_snapshot(store, m, snap);
	if (rc < 0)
		return rc;
	/* Renamed in: its name is durable once snapshots/ is synced. */
	if (rc == 0 &&
	    ((rc = fmt(dir, sizeof(dir), "hub/%s/snapshots", folder)) < 0 ||
		(rc = store_fsync_dir(store, dir)) < 0))
		return rc;
	/* An existing snapshot is completed (or repaired) link by link. */
	for (i = 0, changed = 0; rc > 0 && i < m->nfiles; i++)
		if ((rc = place_link(store, snap, &m->files[i], 1)) >= 0) {
			changed |= rc;
			rc = 1;
		}
	if (rc < 0)
		return rc;
	/* Whatever changed in it is durable before a ref points at it. */
	if (changed && (rc = store_sync_tree(store, snap)) < 0)
		return rc;
	for (i = 0; i < m->nrevisions; i++) {
		if ((rc = fmt(ref, sizeof(ref), "hub/%s/refs/%s", folder,
			 m->revisions[i])) < 0)
			return rc;
		if (ref_reads(store, ref, m->commit))
			continue;
		if ((rc = store_write_atomic(store, ref, m->commit,
			 DIGEST_SHA1_HEX, 0644)) < 0)
			return rc;
		fault_point("hub-ref-written");
	}
	return 0;
}

/*
 * Calls fn(arg, rel, name-within-base, st) for each non-directory entry
 * below rel, depth first; fn may unlink what it is given.  Directories left
 * empty are removed when prune is set.
 */
struct walk {
	struct store *store;
	int (*fn)(void *arg, const char *rel, const char *sub,
	    const struct stat *st);
	void *arg;
	int prune;
	size_t base; /* length of the top rel plus its '/' */
};

static int
walk_dir(struct walk *w, const char *rel, int depth)
{
	char child[STORE_PATH_MAX];
	struct dirent *e;
	struct stat st;
	DIR *d;
	int rc = 0, n;

	if (depth > HUB_REF_DEPTH + REF_PATH_MAX / 2)
		return -ELOOP;
	if ((d = store_opendirat(w->store->dirfd, rel)) == NULL) {
		rc = errno == ENOENT ? 0 : -errno;
		return rc;
	}
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		n = snprintf(child, sizeof(child), "%s/%s", rel, e->d_name);
		if (n < 0 || (size_t)n >= sizeof(child) ||
		    fstatat(w->store->dirfd, child, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (S_ISDIR(st.st_mode))
			rc = walk_dir(w, child, depth + 1);
		else
			rc = w->fn(w->arg, child, child + w->base, &st);
	}
	closedir(d);
	if (rc == 0 && w->prune && depth > 0)
		unlinkat(w->store->dirfd, rel, AT_REMOVEDIR); /* if empty */
	return rc;
}

static int
walk(struct store *store, const char *rel, int prune,
    int (*fn)(void *, const char *, const char *, const struct stat *),
    void *arg)
{
	struct walk w = { store, fn, arg, prune, strlen(rel) + 1 };

	return walk_dir(&w, rel, 0);
}

/* Unpublishing: refs naming commit are removed. */
struct ref_scan {
	struct store *store;
	const char *commit;
};

static int
unref_one(void *arg, const char *rel, const char *sub, const struct stat *st)
{
	struct ref_scan *s = arg;

	if (ref_reads(s->store, rel, s->commit) &&
	    unlinkat(s->store->dirfd, rel, 0) == -1)
		return -errno;
	return 0;
}

/* The etags that the remaining snapshots of a folder link to. */
struct etags {
	struct store *store;
	char (*v)[DIGEST_HEX_MAX];
	size_t n, cap;
};

static int
etag_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int
collect_etag(void *arg, const char *rel, const char *sub, const struct stat *st)
{
	struct etags *e = arg;
	char target[STORE_PATH_MAX], (*v)[DIGEST_HEX_MAX];
	const char *base;
	ssize_t n;

	if (!S_ISLNK(st->st_mode))
		return 0;
	n = readlinkat(e->store->dirfd, rel, target, sizeof(target) - 1);
	if (n < 0)
		return 0;
	target[n] = '\0';
	base = strrchr(target, '/');
	base = base == NULL ? target : base + 1;
	if (strlen(base) >= DIGEST_HEX_MAX)
		return 0;
	if (e->n == e->cap) {
		e->cap = e->cap == 0 ? 64 : e->cap * 2;
		v = reallocarray(e->v, e->cap, sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		e->v = v;
	}
	snprintf(e->v[e->n++], DIGEST_HEX_MAX, "%s", base);
	return 0;
}

static int
drop_unlinked_blob(void *arg, const char *rel, const char *sub,
    const struct stat *st)
{
	struct etags *e = arg;

	/* With no snapshot left, e->v is NULL: bsearch() must not see it. */
	if (e->n > 0 &&
	    bsearch(sub, e->v, e->n, sizeof(*e->v), etag_cmp) != NULL)
		return 0;
	if (unlinkat(e->store->dirfd, rel, 0) == -1 && errno != ENOENT)
		return -errno;
	return 0;
}

/* Removes hub blobs of a folder that no snapshot links to any more. */
static int
prune_blobs(struct store *store, const char *folder)
{
	char rel[STORE_PATH_MAX];
	struct etags e = { store, NULL, 0, 0 };
	int rc;

	if ((rc = fmt(rel, sizeof(rel), "hub/%s/snapshots", folder)) < 0 ||
	    (rc = walk(store, rel, 0, collect_etag, &e)) < 0)
		goto out;
	if (e.n > 1)
		qsort(e.v, e.n, sizeof(*e.v), etag_cmp);
	if ((rc = fmt(rel, sizeof(rel), "hub/%s/blobs", folder)) < 0)
		goto out;
	rc = walk(store, rel, 0, drop_unlinked_blob, &e);
	if (rc == 0 && e.n == 0) {
		/* No snapshot left: the folder goes, refs and all. */
		if ((rc = fmt(rel, sizeof(rel), "hub/%s", folder)) == 0)
			rc = store_remove_tree(store, rel);
	}
out:
	free(e.v);
	return rc;
}

int
hub_unpublish(struct store *store, const char *folder, const char *commit)
{
	char rel[STORE_PATH_MAX], trash[STORE_PATH_MAX];
	struct ref_scan s = { store, commit };
	int fd, rc;

	/*
	 * The refs first: a crash after them leaves a snapshot that no ref
	 * names, never a ref naming a missing snapshot.
	 */
	if ((rc = fmt(rel, sizeof(rel), "hub/%s/refs", folder)) < 0 ||
	    (rc = walk(store, rel, 1, unref_one, &s)) < 0)
		return rc;
	fault_point("hub-unref");
	if ((rc = fmt(rel, sizeof(rel), "hub/%s/snapshots/%s", folder,
		 commit)) < 0)
		return rc;
	if ((fd = store_tmp_create(store, ".trash", trash, sizeof(trash))) < 0)
		return fd;
	close(fd);
	unlinkat(store->dirfd, trash, 0);
	/* Renamed out, so that it vanishes at once, then removed. */
	if (renameat(store->dirfd, rel, store->dirfd, trash) == 0) {
		fault_point("hub-snapshot-removed");
		if ((rc = store_remove_tree(store, trash)) < 0)
			return rc;
	} else if (errno != ENOENT)
		return -errno;
	return prune_blobs(store, folder);
}

/* Checks: one manifest's blobs and links. */
static const char *const problems[][2] = {
	[HUB_SNAPSHOT_MISSING] = { "hub_snapshot_missing", "snapshot missing" },
	[HUB_ENTRY_MISSING] = { "hub_entry_missing", "snapshot entry missing" },
	[HUB_LINK_WRONG] = { "hub_link_wrong",
	    "snapshot link points to the wrong blob" },
	[HUB_LINK_DANGLING] = { "hub_link_dangling", "dangling snapshot link" },
	[HUB_BLOB_UNLINKED] = { "hub_blob_unlinked",
	    "hub blob is not a link of the store blob" },
	[HUB_REF_BAD] = { "hub_ref_bad", "ref is not exactly 40 hex digits" },
	[HUB_REF_DANGLING] = { "hub_ref_dangling",
	    "ref names a missing snapshot" },
	[HUB_SNAPSHOT_STRAY] = { "hub_snapshot_stray",
	    "snapshot without a manifest" },
};

const char *
hub_problem_name(enum hub_problem problem)
{
	return problems[problem][0];
}

const char *
hub_problem_text(enum hub_problem problem)
{
	return problems[problem][1];
}

static void
report(struct hub_report *r, const char *path, enum hub_problem problem)
{
	r->count++;
	if (r->bad != NULL)
		r->bad(r->arg, path, problem);
}

static void
check_file(struct store *store, const char *folder, const char *snap,
    const struct manifest_file *f, struct hub_report *r)
{
	char rel[STORE_PATH_MAX], target[STORE_PATH_MAX], cur[STORE_PATH_MAX];
	char blob[STORE_PATH_MAX];
	struct stat a, b;
	ssize_t n;

	if (fmt(rel, sizeof(rel), "%s/%s", snap, f->path) < 0 ||
	    hub_link_target(f->path, f->etag, target, sizeof(target)) < 0)
		return;
	n = readlinkat(store->dirfd, rel, cur, sizeof(cur) - 1);
	if (n < 0) {
		report(r, rel, HUB_ENTRY_MISSING);
		return;
	}
	cur[n] = '\0';
	if (strcmp(cur, target) != 0)
		report(r, rel, HUB_LINK_WRONG);
	if (fstatat(store->dirfd, rel, &a, 0) == -1) {
		report(r, rel, HUB_LINK_DANGLING);
		return;
	}
	if (fmt(rel, sizeof(rel), "hub/%s/blobs/%s", folder, f->etag) < 0 ||
	    store_blob_path(f->sha256, blob, sizeof(blob)) < 0)
		return;
	/*
	 * Stat the hub blob itself, not what the link reaches: a symlink
	 * there would hand the store blob to HF tools' deletions.
	 */
	if (fstatat(store->dirfd, blob, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (fstatat(store->dirfd, rel, &a, AT_SYMLINK_NOFOLLOW) == -1 ||
		a.st_ino != b.st_ino || a.st_dev != b.st_dev))
		report(r, rel, HUB_BLOB_UNLINKED);
}

int
hub_check(struct store *store, const struct manifest *m, struct hub_report *r)
{
	char folder[REF_FOLDER_MAX], snap[STORE_PATH_MAX];
	struct stat st;
	unsigned before = r->count;
	size_t i;
	int rc;

	if ((rc = ref_folder_of(m->type, m->repo, folder, sizeof(folder))) <
		0 ||
	    (rc = fmt(snap, sizeof(snap), "hub/%s/snapshots/%s", folder,
		 m->commit)) < 0)
		return rc;
	if (fstatat(store->dirfd, snap, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		report(r, snap, HUB_SNAPSHOT_MISSING);
		return (int)(r->count - before);
	}
	for (i = 0; i < m->nfiles; i++)
		check_file(store, folder, snap, &m->files[i], r);
	return (int)(r->count - before);
}

/* Checks: a folder's refs and stray snapshots. */
struct folder_check {
	struct store *store;
	const char *folder;
	int (*has_manifest)(void *, const char *, const char *);
	void *arg;
	struct hub_report *r;
};

static int
check_ref(void *arg, const char *rel, const char *sub, const struct stat *st)
{
	struct folder_check *c = arg;
	char *buf = NULL, snap[STORE_PATH_MAX];
	struct stat sst;
	size_t len = 0;

	if (!S_ISREG(st->st_mode)) {
		report(c->r, rel, HUB_REF_BAD);
		return 0;
	}
	if (store_read_file(c->store, rel, 64, &buf, &len) < 0 ||
	    len != DIGEST_SHA1_HEX || !ref_is_hex(buf, len)) {
		free(buf);
		report(c->r, rel, HUB_REF_BAD);
		return 0;
	}
	if (fmt(snap, sizeof(snap), "hub/%s/snapshots/%s", c->folder, buf) ==
		0 &&
	    fstatat(c->store->dirfd, snap, &sst, 0) == -1)
		report(c->r, rel, HUB_REF_DANGLING);
	free(buf);
	return 0;
}

int
hub_check_folder(struct store *store, const char *folder,
    int (*has_manifest)(void *, const char *, const char *), void *arg,
    struct hub_report *r)
{
	struct folder_check c = { store, folder, has_manifest, arg, r };
	char rel[STORE_PATH_MAX];
	struct dirent *e;
	unsigned before = r->count;
	DIR *d;
	int rc;

	if ((rc = fmt(rel, sizeof(rel), "hub/%s/refs", folder)) < 0 ||
	    (rc = walk(store, rel, 0, check_ref, &c)) < 0)
		return rc;
	if ((rc = fmt(rel, sizeof(rel), "hub/%s/snapshots", folder)) < 0)
		return rc;
	if ((d = store_opendirat(store->dirfd, rel)) == NULL) {
		report(r, rel, HUB_SNAPSHOT_MISSING);
		return (int)(r->count - before);
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (!has_manifest(arg, folder, e->d_name)) {
			char snap[STORE_PATH_MAX];

			if (fmt(snap, sizeof(snap), "%s/%s", rel, e->d_name) ==
			    0)
				report(r, snap, HUB_SNAPSHOT_STRAY);
		}
	}
	closedir(d);
	return (int)(r->count - before);
}

int
hub_each_folder(struct store *store, int (*fn)(void *, const char *), void *arg)
{
	struct dirent *e;
	DIR *d;
	int rc = 0;

	if ((d = store_opendirat(store->dirfd, "hub")) == NULL) {
		rc = -errno;
		return rc;
	}
	while (rc == 0 && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			rc = fn(arg, e->d_name);
	closedir(d);
	return rc;
}

int
hub_folder_parse(const char *folder, enum repo_type *type, char *repo,
    size_t len)
{
	static const char *const prefixes[] = { "models--", "datasets--",
		"spaces--" };
	static const enum repo_type types[] = { REPO_MODEL, REPO_DATASET,
		REPO_SPACE };
	char back[REF_FOLDER_MAX];
	const char *rest = NULL, *sep, *why;
	size_t i, n;

	for (i = 0; i < 3 && rest == NULL; i++)
		if (strncmp(folder, prefixes[i], strlen(prefixes[i])) == 0) {
			rest = folder + strlen(prefixes[i]);
			*type = types[i];
		}
	if (rest == NULL || strlen(rest) >= len)
		return -EINVAL;
	/* Repo ids hold no "--", so the first one left is the '/'. */
	sep = strstr(rest, "--");
	if (sep == NULL)
		snprintf(repo, len, "%s", rest);
	else {
		n = (size_t)(sep - rest);
		snprintf(repo, len, "%.*s/%s", (int)n, rest, sep + 2);
	}
	if (ref_check_repo(repo, &why) < 0 ||
	    ref_folder_of(*type, repo, back, sizeof(back)) < 0 ||
	    strcmp(back, folder) != 0)
		return -EINVAL;
	return 0;
}

int
hub_snapshot_dir(const char *folder, const char *commit, char *buf, size_t len)
{
	return fmt(buf, len, HUB_DIR "/%s/snapshots/%s", folder, commit);
}

/* hub/<folder>/refs/<rev>, for a revision name (never a commit id). */
static int
ref_rel(const char *folder, const char *rev, char *buf, size_t len)
{
	const char *why;

	if (ref_check_revision(rev, &why) < 0 || strchr(folder, '/') != NULL)
		return -EINVAL;
	return fmt(buf, len, HUB_DIR "/%s/refs/%s", folder, rev);
}

int
hub_ref_read(struct store *store, const char *folder, const char *rev,
    char *commit, int64_t *age)
{
	char rel[STORE_PATH_MAX], buf[DIGEST_SHA1_HEX + 1];
	struct stat st;
	ssize_t n;
	int fd, rc;

	if ((rc = ref_rel(folder, rev, rel, sizeof(rel))) < 0)
		return rc;
	/* O_NONBLOCK and a regular file only: a FIFO must not hang us. */
	if ((fd = openat(store->dirfd, rel,
		 O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)) < 0)
		return errno == ELOOP ? -EINVAL : -errno;
	if (fstat(fd, &st) == -1)
		rc = -errno;
	else if (!S_ISREG(st.st_mode))
		rc = -EINVAL;
	else if ((n = read(fd, buf, sizeof(buf))) < 0)
		rc = -errno;
	else if (n != DIGEST_SHA1_HEX)
		rc = -EINVAL;
	else {
		buf[n] = '\0';
		if (!ref_is_hex(buf, DIGEST_SHA1_HEX))
			rc = -EINVAL;
	}
	close(fd);
	if (rc < 0)
		return rc;
	memcpy(commit, buf, DIGEST_SHA1_HEX);
	commit[DIGEST_SHA1_HEX] = '\0';
	/* Confirmed by any node: its age on the store's clock. */
	if (age != NULL)
		*age = store_now_ms(store) / 1000 - (int64_t)st.st_mtim.tv_sec;
	return 0;
}

int
hub_ref_touch(struct store *store, const char *folder, const char *rev)
{
	char rel[STORE_PATH_MAX];
	int rc;

	if ((rc = ref_rel(folder, rev, rel, sizeof(rel))) < 0)
		return rc;
	if (utimensat(store->dirfd, rel, NULL, AT_SYMLINK_NOFOLLOW) == -1)
		return -errno;
	return 0;
}

int
store_locate(const struct ref *ref, const char *name, const char *revision,
    struct store_place *p)
{
	const char *why;
	int rc;

	memset(p, 0, sizeof(*p));
	p->type = REPO_MODEL;
	if (ref->kind == REF_HF) {
		if (name != NULL)
			return -EINVAL; /* it names itself */
		p->type = ref->type;
		snprintf(p->repo, sizeof(p->repo), "%s", ref->repo);
		if (revision == NULL)
			revision = ref_revision(ref);
	} else if (ref->kind == REF_HTTPS && name == NULL) {
		if ((rc = https_default_name(ref, p->repo, sizeof(p->repo))) <
		    0)
			return rc;
	} else if (ref->kind == REF_HTTPS || ref->kind == REF_FILE) {
		if (name == NULL || ref_check_repo(name, &why) < 0 ||
		    fmt(p->repo, sizeof(p->repo), "%s", name) < 0)
			return -EINVAL;
	} else
		return -EINVAL;
	if (revision == NULL)
		revision = "main";
	if (ref_check_revision(revision, &why) < 0 ||
	    fmt(p->revision, sizeof(p->revision), "%s", revision) < 0)
		return -EINVAL;
	p->is_commit = ref_is_hex(p->revision, DIGEST_SHA1_HEX);
	return ref_folder_of(p->type, p->repo, p->folder, sizeof(p->folder));
}

int
hub_resolve(struct store *store, struct index *index,
    const struct store_place *p, char *commit, int64_t *age)
{
	/* A named revision is its ref in the view; ids, prefixes ask the index. */
	if (!p->is_commit &&
	    hub_ref_read(store, p->folder, p->revision, commit, age) == 0)
		return 1;
	/* A node's own index first learns what other nodes published. */
	index_refresh(index, store);
	return index_resolve(index, p->type, p->repo, p->revision, commit);
}
