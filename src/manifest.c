/*
 * manifest: encoding, checking and storing manifests (see manifest.h).
 *
 * Decoding trusts nothing: a manifest may have been truncated by hand,
 * edited, or written by a newer version.  Unknown fields are ignored so that
 * later formats can add some; a higher "format" is refused.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "manifest.h"

#define MANIFEST_FORMAT 1

void
manifest_init(struct manifest *m)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->trust, sizeof(m->trust), "verified");
}

void
manifest_release(struct manifest *m)
{
	size_t i;

	for (i = 0; i < m->nfiles; i++)
		free(m->files[i].path);
	for (i = 0; i < m->nrevisions; i++)
		free(m->revisions[i]);
	free(m->files);
	free(m->revisions);
	free(m->repo);
	free(m->source);
	manifest_init(m);
}

int
manifest_set_origin(struct manifest *m, enum repo_type type, const char *repo,
    const char *source)
{
	const char *why;
	char *r, *s;

	if (ref_check_repo(repo, &why) < 0)
		return -EINVAL;
	r = strdup(repo);
	s = strdup(source);
	if (r == NULL || s == NULL) {
		free(r);
		free(s);
		return -ENOMEM;
	}
	free(m->repo);
	free(m->source);
	m->type = type;
	m->repo = r;
	m->source = s;
	return 0;
}

static int
etag_ok(const char *etag)
{
	size_t n = strlen(etag);

	return (n == DIGEST_SHA1_HEX || n == DIGEST_SHA256_HEX) &&
	    ref_is_hex(etag, n);
}

int
manifest_add_file(struct manifest *m, const char *path, uint64_t size,
    const char *sha256, const char *etag)
{
	struct manifest_file *f;
	const char *why;
	size_t cap;

	if (ref_check_path(path, strlen(path), &why) < 0 ||
	    !ref_is_hex(sha256, DIGEST_SHA256_HEX) || !etag_ok(etag))
		return -EINVAL;
	if (m->nfiles >= MANIFEST_FILES_MAX)
		return -E2BIG;
	if (m->nfiles == m->cap) {
		cap = m->cap == 0 ? 16 : m->cap * 2;
		f = reallocarray(m->files, cap, sizeof(*f));
		if (f == NULL)
			return -ENOMEM;
		m->files = f;
		m->cap = cap;
	}
	f = &m->files[m->nfiles];
	memset(f, 0, sizeof(*f));
	if ((f->path = strdup(path)) == NULL)
		return -ENOMEM;
	f->size = size;
	memcpy(f->sha256, sha256, DIGEST_SHA256_HEX + 1);
	snprintf(f->etag, sizeof(f->etag), "%s", etag);
	m->nfiles++;
	return 0;
}

int
manifest_has_revision(const struct manifest *m, const char *rev)
{
	size_t i;

	for (i = 0; i < m->nrevisions; i++)
		if (strcmp(m->revisions[i], rev) == 0)
			return 1;
	return 0;
}

int
manifest_add_revision(struct manifest *m, const char *rev)
{
	const char *why;
	char **v;

	if (ref_check_revision(rev, &why) < 0)
		return -EINVAL;
	if (ref_is_hex(rev, DIGEST_SHA1_HEX) || manifest_has_revision(m, rev))
		return 0;
	if (m->nrevisions >= MANIFEST_REVISIONS_MAX)
		return -E2BIG;
	v = reallocarray(m->revisions, m->nrevisions + 1, sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	m->revisions = v;
	if ((v[m->nrevisions] = strdup(rev)) == NULL)
		return -ENOMEM;
	m->nrevisions++;
	return 0;
}

static int
file_cmp(const void *a, const void *b)
{
	return strcmp(((const struct manifest_file *)a)->path,
	    ((const struct manifest_file *)b)->path);
}

int
manifest_sort(struct manifest *m)
{
	size_t i;

	if (m->nfiles > 1)
		qsort(m->files, m->nfiles, sizeof(*m->files), file_cmp);
	for (i = 1; i < m->nfiles; i++)
		if (strcmp(m->files[i - 1].path, m->files[i].path) == 0)
			return -EEXIST;
	return 0;
}

uint64_t
manifest_size(const struct manifest *m)
{
	uint64_t total = 0;
	size_t i;

	for (i = 0; i < m->nfiles; i++)
		total += m->files[i].size;
	return total;
}

int
manifest_derive_commit(struct manifest *m)
{
	static const char head[] = "modelcache-commit 1\n";
	struct digest d;
	char num[32];
	size_t i;
	int rc, n;

	if ((rc = manifest_sort(m)) < 0)
		return rc;
	if ((rc = digest_init(&d, DIGEST_SHA256, 0)) < 0)
		goto out;
	rc = digest_update(&d, head, sizeof(head) - 1);
	for (i = 0; rc == 0 && i < m->nfiles; i++) {
		n = snprintf(num, sizeof(num), "%llu",
		    (unsigned long long)m->files[i].size);
		if ((rc = digest_update(&d, m->files[i].path,
			 strlen(m->files[i].path) + 1)) == 0 &&
		    (rc = digest_update(&d, num, (size_t)n + 1)) == 0 &&
		    (rc = digest_update(&d, m->files[i].sha256,
			 DIGEST_SHA256_HEX)) == 0)
			rc = digest_update(&d, "\n", 1);
	}
	if (rc == 0) {
		char hex[DIGEST_HEX_MAX];

		rc = digest_final(&d, hex);
		/* A commit id is 40 hex: the first 160 bits of the SHA-256. */
		memcpy(m->commit, hex, DIGEST_SHA1_HEX);
		m->commit[DIGEST_SHA1_HEX] = '\0';
	}
out:
	digest_release(&d);
	return rc;
}

int
manifest_folder(const struct manifest *m, char *buf, size_t len)
{
	char folder[REF_FOLDER_MAX];
	int rc, n;

	if ((rc = ref_folder_of(m->type, m->repo, folder, sizeof(folder))) < 0)
		return rc;
	n = snprintf(buf, len, "manifests/%s", folder);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int
manifest_rel(const struct manifest *m, char *buf, size_t len)
{
	char dir[STORE_PATH_MAX];
	int rc, n;

	if (!ref_is_hex(m->commit, DIGEST_SHA1_HEX))
		return -EINVAL;
	if ((rc = manifest_folder(m, dir, sizeof(dir))) < 0)
		return rc;
	n = snprintf(buf, len, "%s/%s.json", dir, m->commit);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int
manifest_rel_of(const char *folder, const char *commit, char *buf, size_t len)
{
	int n = snprintf(buf, len, "manifests/%s/%s.json", folder, commit);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static json_t *
encode_files(const struct manifest *m)
{
	json_t *files = json_array(), *f;
	size_t i;

	for (i = 0; files != NULL && i < m->nfiles; i++) {
		f = json_pack("{s:s, s:I, s:s, s:s}", "path", m->files[i].path,
		    "size", (json_int_t)m->files[i].size, "sha256",
		    m->files[i].sha256, "etag", m->files[i].etag);
		if (f == NULL || json_array_append_new(files, f) < 0) {
			json_decref(files);
			return NULL;
		}
	}
	return files;
}

char *
manifest_encode(const struct manifest *m)
{
	json_t *root, *revs, *files;
	char *text = NULL;
	size_t i;

	revs = json_array();
	files = encode_files(m);
	for (i = 0; revs != NULL && i < m->nrevisions; i++)
		json_array_append_new(revs, json_string(m->revisions[i]));
	root = json_pack("{s:i, s:s, s:s, s:s, s:s, s:o, s:I, s:I, s:b, s:s, "
			 "s:o}",
	    "format", MANIFEST_FORMAT, "type", ref_type_name(m->type), "repo",
	    m->repo, "source", m->source, "commit", m->commit, "revisions",
	    revs, "created", (json_int_t)m->created, "updated",
	    (json_int_t)m->updated, "pinned", m->pinned, "trust", m->trust,
	    "files", files);
	if (root != NULL)
		text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(root);
	return text;
}

static int
decode_files(struct manifest *m, json_t *files, const char **why)
{
	json_t *f;
	const char *path, *sha, *etag;
	json_int_t size;
	size_t i;
	int rc;

	if (!json_is_array(files) ||
	    json_array_size(files) > MANIFEST_FILES_MAX) {
		*why = "\"files\" is not an array of at most 100000 entries";
		return -EINVAL;
	}
	json_array_foreach(files, i, f) {
		if (json_unpack(f, "{s:s, s:I, s:s, s:s}", "path", &path,
			"size", &size, "sha256", &sha, "etag", &etag) < 0 ||
		    size < 0) {
			*why = "a file entry lacks path, size, sha256 or etag";
			return -EINVAL;
		}
		/* A JSON string may carry a NUL that C would stop at. */
		if (strlen(path) !=
			json_string_length(json_object_get(f, "path")) ||
		    ref_check_path(path, strlen(path), why) < 0)
			return -EINVAL;
		rc = manifest_add_file(m, path, (uint64_t)size, sha, etag);
		if (rc == -EINVAL)
			*why = "a file entry has a malformed digest or etag";
		if (rc < 0)
			return rc;
	}
	if (manifest_sort(m) < 0) {
		*why = "two file entries share a path";
		return -EINVAL;
	}
	return 0;
}

static int
decode_revisions(struct manifest *m, json_t *revs, const char **why)
{
	json_t *r;
	size_t i;
	int rc;

	if (!json_is_array(revs)) {
		*why = "\"revisions\" is not an array";
		return -EINVAL;
	}
	json_array_foreach(revs, i, r) {
		if (!json_is_string(r)) {
			*why = "a revision is not a string";
			return -EINVAL;
		}
		rc = manifest_add_revision(m, json_string_value(r));
		if (rc == -EINVAL)
			*why = "a revision name is malformed";
		if (rc == -E2BIG) {
			*why = "more than 64 revisions";
			rc = -EINVAL;
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

int
manifest_decode(struct manifest *m, const char *buf, size_t len,
    const char **why)
{
	json_t *root, *revs = NULL, *files = NULL;
	const char *type, *repo, *source, *commit, *trust = "verified";
	json_int_t format, created = 0, updated = 0;
	int pinned = 0, rc = -EINVAL;
	json_error_t err;

	manifest_release(m);
	*why = "not valid JSON";
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
	if (root == NULL)
		return -EINVAL;
	*why = "a required field is missing or has the wrong type";
	if (json_unpack(root,
		"{s:I, s:s, s:s, s:s, s:s, s:o, s?I, s?I, s?b, "
		"s?s, s:o}",
		"format", &format, "type", &type, "repo", &repo, "source",
		&source, "commit", &commit, "revisions", &revs, "created",
		&created, "updated", &updated, "pinned", &pinned, "trust",
		&trust, "files", &files) < 0)
		goto out;
	if (format != MANIFEST_FORMAT) {
		*why = "unsupported manifest format";
		goto out;
	}
	if (ref_type_parse(type, &m->type) < 0 ||
	    ref_check_repo(repo, why) < 0 ||
	    !ref_is_hex(commit, DIGEST_SHA1_HEX) ||
	    (strcmp(trust, "verified") != 0 && strcmp(trust, "tofu") != 0)) {
		*why = "bad type, repo, commit or trust";
		goto out;
	}
	if ((rc = manifest_set_origin(m, m->type, repo, source)) < 0)
		goto out;
	memcpy(m->commit, commit, DIGEST_SHA1_HEX + 1);
	m->created = created;
	m->updated = updated;
	m->pinned = pinned;
	snprintf(m->trust, sizeof(m->trust), "%s", trust);
	if ((rc = decode_revisions(m, revs, why)) < 0 ||
	    (rc = decode_files(m, files, why)) < 0)
		goto out;
	rc = 0;
out:
	json_decref(root);
	if (rc < 0)
		manifest_release(m);
	return rc;
}

static int
save(struct store *store, struct manifest *m, int replace)
{
	char rel[STORE_PATH_MAX], *text;
	struct stat st;
	int rc;

	if ((rc = manifest_rel(m, rel, sizeof(rel))) < 0)
		return rc;
	if ((text = manifest_encode(m)) == NULL)
		return -ENOMEM;
	rc = store_write_file(store, rel, text, strlen(text), 0444, replace,
	    &st);
	free(text);
	if (rc == 0) {
		m->saved_ino = (int64_t)st.st_ino;
		m->saved_mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 +
		    st.st_mtim.tv_nsec;
		m->saved_size = (int64_t)st.st_size;
	}
	return rc;
}

int
manifest_save(struct store *store, struct manifest *m)
{
	return save(store, m, 1);
}

int
manifest_save_new(struct store *store, struct manifest *m)
{
	return save(store, m, 0);
}

int
manifest_load(struct store *store, const char *rel, struct manifest *m,
    const char **why)
{
	char *buf;
	size_t len;
	int rc;

	char want[STORE_PATH_MAX];

	*why = NULL;
	rc = store_read_file(store, rel, MANIFEST_SIZE_MAX, &buf, &len);
	if (rc == -ELOOP || rc == -EINVAL) {
		*why = "not a regular file";
		return -EINVAL;
	}
	if (rc == -EFBIG) {
		*why = "larger than 64 MiB";
		return -EINVAL;
	}
	if (rc < 0)
		return rc;
	rc = manifest_decode(m, buf, len, why);
	free(buf);
	/* Its name is part of the record: a misfiled manifest is not trusted. */
	if (rc == 0 &&
	    (manifest_rel(m, want, sizeof(want)) < 0 ||
		strcmp(want, rel) != 0)) {
		*why =
		    "the file name does not match the repo and commit inside";
		manifest_release(m);
		rc = -EINVAL;
	}
	return rc;
}

int
manifest_unlink(struct store *store, const struct manifest *m)
{
	char rel[STORE_PATH_MAX], dir[STORE_PATH_MAX];
	int rc;

	if ((rc = manifest_rel(m, rel, sizeof(rel))) < 0 ||
	    (rc = manifest_folder(m, dir, sizeof(dir))) < 0)
		return rc;
	if (unlinkat(store->dirfd, rel, 0) == -1 && errno != ENOENT)
		return -errno;
	unlinkat(store->dirfd, dir, AT_REMOVEDIR); /* only when empty */
	return store_fsync_dir(store, "manifests");
}

#define ASIDE_SUFFIX ".removing."

/* The directory of a store-relative file path, in dir. */
static int
parent_of(const char *rel, char *dir, size_t len)
{
	const char *slash = strrchr(rel, '/');
	int n;

	if (slash == NULL)
		return -EINVAL;
	n = snprintf(dir, len, "%.*s", (int)(slash - rel), rel);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int
manifest_aside(struct store *store, const struct manifest *m, char *aside,
    size_t len)
{
	char rel[STORE_PATH_MAX], dir[STORE_PATH_MAX];
	int rc, n;

	if ((rc = manifest_rel(m, rel, sizeof(rel))) < 0 ||
	    (rc = manifest_folder(m, dir, sizeof(dir))) < 0)
		goto fail;
	n = snprintf(aside, len, "%s" ASIDE_SUFFIX "%s", rel, store->owner);
	rc = -ENAMETOOLONG;
	if (n < 0 || (size_t)n >= len)
		goto fail;
	if (renameat(store->dirfd, rel, store->dirfd, aside) == -1) {
		rc = -errno;
		goto fail;
	}
	/* Its age, for a remover whose liveness only its heartbeat tells. */
	utimensat(store->dirfd, aside, NULL, AT_SYMLINK_NOFOLLOW);
	return store_fsync_dir(store, dir);
fail:
	if (len > 0)
		aside[0] = '\0';
	return rc;
}

int
manifest_put_back(struct store *store, const char *aside)
{
	char rel[STORE_PATH_MAX], dir[STORE_PATH_MAX];
	const char *end = strstr(aside, ".json" ASIDE_SUFFIX);
	int rc = 0, n;

	if (end == NULL)
		return -EINVAL;
	n = snprintf(rel, sizeof(rel), "%.*s.json", (int)(end - aside), aside);
	if (n < 0 || (size_t)n >= sizeof(rel))
		return -ENAMETOOLONG;
	if ((rc = parent_of(aside, dir, sizeof(dir))) < 0)
		return rc;
	/* A link, as manifest_save_new(): a publish's manifest stays. */
	if (linkat(store->dirfd, aside, store->dirfd, rel, 0) == -1)
		rc = -errno;
	if (rc < 0 && rc != -EEXIST)
		return rc;
	if (unlinkat(store->dirfd, aside, 0) == -1 && errno != ENOENT)
		return -errno;
	n = store_fsync_dir(store, dir);
	return rc < 0 ? rc : n;
}

int
manifest_drop_aside(struct store *store, const char *aside)
{
	char dir[STORE_PATH_MAX];
	int rc;

	if ((rc = parent_of(aside, dir, sizeof(dir))) < 0)
		return rc;
	if (unlinkat(store->dirfd, aside, 0) == -1 && errno != ENOENT)
		return -errno;
	unlinkat(store->dirfd, dir, AT_REMOVEDIR); /* only when empty */
	return store_fsync_dir(store, "manifests");
}

struct aside_each {
	int (*fn)(const char *, const char *, const char *, const char *,
	    void *);
	void *arg;
};

static int
aside_in(struct store *store, const char *folder, struct aside_each *ae)
{
	char rel[STORE_PATH_MAX], commit[DIGEST_SHA1_HEX + 1];
	const size_t pre = DIGEST_SHA1_HEX + strlen(".json" ASIDE_SUFFIX);
	struct dirent *e;
	DIR *d;
	int rc = 0;

	snprintf(rel, sizeof(rel), "manifests/%s", folder);
	if ((d = store_opendirat(store->dirfd, rel)) == NULL)
		return 0;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (strlen(e->d_name) <= pre ||
		    strncmp(e->d_name + DIGEST_SHA1_HEX, ".json" ASIDE_SUFFIX,
			pre - DIGEST_SHA1_HEX) != 0)
			continue;
		snprintf(commit, sizeof(commit), "%.*s", DIGEST_SHA1_HEX,
		    e->d_name);
		if (!ref_is_hex(commit, DIGEST_SHA1_HEX))
			continue;
		snprintf(rel, sizeof(rel), "manifests/%s/%s", folder,
		    e->d_name);
		rc = ae->fn(rel, folder, commit, e->d_name + pre, ae->arg);
	}
	closedir(d);
	return rc;
}

int
manifest_each_aside(struct store *store,
    int (*fn)(const char *rel, const char *folder, const char *commit,
	const char *owner, void *arg),
    void *arg)
{
	struct aside_each ae = { fn, arg };
	struct dirent *e;
	DIR *d;
	int rc = 0;

	if ((d = store_opendirat(store->dirfd, "manifests")) == NULL)
		return -errno;
	while (rc == 0 && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			rc = aside_in(store, e->d_name, &ae);
	closedir(d);
	return rc;
}

int
manifest_exists(struct store *store, const char *folder, const char *commit)
{
	char rel[STORE_PATH_MAX];
	struct stat st;
	int n;

	n = snprintf(rel, sizeof(rel), "manifests/%s/%s.json", folder, commit);
	return n > 0 && (size_t)n < sizeof(rel) &&
	    fstatat(store->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int
each_in(struct store *store, const char *folder,
    int (*fn)(const char *, void *), void *arg)
{
	char rel[STORE_PATH_MAX];
	struct dirent *e;
	size_t n;
	DIR *d;
	int rc = 0;

	snprintf(rel, sizeof(rel), "manifests/%s", folder);
	if ((d = store_opendirat(store->dirfd, rel)) == NULL) {
		return 0;
	}
	while (rc == 0 && (e = readdir(d)) != NULL) {
		n = strlen(e->d_name);
		if (e->d_name[0] == '.' || n < 6 ||
		    strcmp(e->d_name + n - 5, ".json") != 0)
			continue;
		snprintf(rel, sizeof(rel), "manifests/%s/%s", folder,
		    e->d_name);
		rc = fn(rel, arg);
	}
	closedir(d);
	return rc;
}

int
manifest_each(struct store *store, int (*fn)(const char *, void *), void *arg)
{
	struct dirent *e;
	DIR *d;
	int rc = 0;

	if ((d = store_opendirat(store->dirfd, "manifests")) == NULL) {
		rc = -errno;
		return rc;
	}
	while (rc == 0 && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			rc = each_in(store, e->d_name, fn, arg);
	closedir(d);
	return rc;
}
