/*
 * fixture: see fixture.h.
 */
#include "config.h"

#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "unit.h"
#include "unit_store.h"

#include "fixture.h"

void
fixture_open(struct fixture *fx, int index)
{
	memset(fx, 0, sizeof(*fx));
	fx->dir = unit_tmpdir();
	unit_fmt(fx->root, sizeof(fx->root), "%s/store", fx->dir);
	unit_fmt(fx->src, sizeof(fx->src), "%s/src", fx->dir);
	assert_int_equal(mkdir(fx->src, 0755), 0);
	assert_int_equal(store_open(&fx->store, fx->root, 1), 0);
	if (index)
		assert_int_equal(index_open(&fx->index, &fx->store, NULL), 0);
}

void
fixture_close(struct fixture *fx)
{
	index_close(&fx->index); /* whoever opened it: a test may have */
	store_release(&fx->store);
	unit_rmdir(fx->dir);
	fx->dir = NULL;
}

static int
setup_with(void **state, int index)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	fixture_open(fx, index);
	*state = fx;
	return 0;
}

int
fixture_setup(void **state)
{
	return setup_with(state, 0);
}

int
fixture_setup_index(void **state)
{
	return setup_with(state, 1);
}

int
fixture_teardown(void **state)
{
	struct fixture *fx = *state;

	fixture_close(fx);
	free(fx);
	return 0;
}

void
fixture_blob(struct fixture *fx, const void *content, size_t len,
    struct blob *b)
{
	unit_blob(&fx->store, fx->src, &fx->nsrc, content, len, b);
}

void
fixture_add_file(struct fixture *fx, struct manifest *m, const char *path,
    const char *content, int lfs, struct blob *out)
{
	struct blob b;

	fixture_blob(fx, content, strlen(content), &b);
	assert_int_equal(manifest_add_file(m, path, b.size, b.sha256,
			     lfs ? b.sha256 : b.gitsha1),
	    0);
	if (out != NULL)
		*out = b;
}

int
fixture_collect_snap(void *arg, const struct index_snapshot *s)
{
	struct fixture_snaps *out = arg;
	struct fixture_snap *v;

	assert_true(out->n < FIXTURE_SNAPS);
	v = &out->v[out->n++];
	v->id = s->id;
	v->type = s->type;
	unit_fmt(v->repo, sizeof(v->repo), "%s", s->repo);
	unit_fmt(v->folder, sizeof(v->folder), "%s", s->folder);
	unit_fmt(v->commit, sizeof(v->commit), "%s", s->commit);
	unit_fmt(v->source, sizeof(v->source), "%s", s->source);
	unit_fmt(v->trust, sizeof(v->trust), "%s", s->trust);
	unit_fmt(v->refs, sizeof(v->refs), "%s", s->refs);
	v->size = s->size;
	v->nfiles = s->nfiles;
	v->created = s->created;
	v->updated = s->updated;
	v->last_used = s->last_used;
	v->pinned = s->pinned;
	return 0;
}

void
fixture_snaps(struct fixture *fx, enum repo_type type, const char *repo,
    const char *commit, struct fixture_snaps *out)
{
	memset(out, 0, sizeof(*out));
	assert_int_equal(index_each_snapshot(&fx->index, type, repo, commit,
			     fixture_collect_snap, out),
	    0);
}

struct fixture_snap
fixture_one(struct fixture *fx, const char *commit)
{
	struct fixture_snaps s;

	fixture_snaps(fx, REPO_MODEL, NULL, commit, &s);
	assert_int_equal(s.n, 1);
	return s.v[0];
}

static int
collect_file(void *arg, const char *path, uint64_t size, const char *sha256,
    const char *etag)
{
	struct fixture_files *out = arg;
	struct fixture_file *f;

	assert_true(out->n < FIXTURE_FILES);
	f = &out->v[out->n++];
	unit_fmt(f->path, sizeof(f->path), "%s", path);
	f->size = size;
	unit_fmt(f->sha256, sizeof(f->sha256), "%s", sha256);
	unit_fmt(f->etag, sizeof(f->etag), "%s", etag);
	return 0;
}

void
fixture_files(struct fixture *fx, int64_t id, struct fixture_files *out)
{
	memset(out, 0, sizeof(*out));
	assert_int_equal(index_each_file(&fx->index, id, collect_file, out), 0);
}

void
list_add(struct list *l, const char *f, ...)
{
	char buf[UNIT_PATH * 2];
	va_list ap;

	va_start(ap, f);
	vsnprintf(buf, sizeof(buf), f, ap);
	va_end(ap);
	if (l->n == l->cap) {
		l->cap = l->cap == 0 ? 32 : l->cap * 2;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		assert_non_null(l->v);
	}
	l->v[l->n] = strdup(buf);
	assert_non_null(l->v[l->n]);
	l->n++;
}

void
list_free(struct list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void
list_sort(struct list *l, int uniq)
{
	size_t i, j = 0;

	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), str_cmp);
	if (!uniq)
		return;
	for (i = 0; i < l->n; i++) {
		if (j > 0 && strcmp(l->v[j - 1], l->v[i]) == 0) {
			free(l->v[i]);
			continue;
		}
		l->v[j++] = l->v[i];
	}
	l->n = j;
}

void
list_assert_same(const char *what, struct list *got, struct list *want,
    int uniq)
{
	size_t i;
	int same;

	list_sort(got, uniq);
	list_sort(want, uniq);
	same = got->n == want->n;
	for (i = 0; same && i < got->n; i++)
		same = strcmp(got->v[i], want->v[i]) == 0;
	if (same)
		return;
	print_error("%s: got %zu:\n", what, got->n);
	for (i = 0; i < got->n; i++)
		print_error("  %s\n", got->v[i]);
	print_error("want %zu:\n", want->n);
	for (i = 0; i < want->n; i++)
		print_error("  %s\n", want->v[i]);
	fail_msg("%s differs from what is expected", what);
}

int
fixture_exists(struct fixture *fx, const char *rel)
{
	char path[UNIT_PATH];
	struct stat st;

	unit_fmt(path, sizeof(path), "%s/%s", fx->root, rel);
	return lstat(path, &st) == 0;
}

static int
count_blob(const char *sha256, const char *rel, void *arg)
{
	(void)sha256;
	(void)rel;
	(*(int *)arg)++;
	return 0;
}

int
fixture_blob_count(struct fixture *fx)
{
	int n = 0;

	assert_int_equal(store_blob_each(&fx->store, count_blob, &n), 0);
	return n;
}

void
fixture_assert_empty(struct fixture *fx, const char *rel)
{
	char path[UNIT_PATH];
	struct dirent *e;
	DIR *d;

	unit_fmt(path, sizeof(path), "%s/%s", fx->root, rel);
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			fail_msg("%s/ holds %s", rel, e->d_name);
	closedir(d);
}

void
fixture_assert_ref(struct fixture *fx, const char *rel, const char *commit)
{
	char path[UNIT_PATH], buf[128];
	struct stat st;
	ssize_t n;
	int fd;

	unit_fmt(path, sizeof(path), "%s/%s", fx->root, rel);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, DIGEST_SHA1_HEX);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(n, DIGEST_SHA1_HEX);
	assert_memory_equal(buf, commit, DIGEST_SHA1_HEX);
}

int
fixture_count(const char *dir, const char *rel)
{
	char path[UNIT_PATH];
	struct dirent *e;
	DIR *d;
	int n = 0;

	unit_fmt(path, sizeof(path), "%s/%s", dir, rel);
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

int
fixture_quarantined(const char *dir, const char *suffix)
{
	char path[UNIT_PATH];
	struct dirent *e;
	size_t s = strlen(suffix), n;
	int count = 0;
	DIR *d;

	unit_fmt(path, sizeof(path), "%s/tmp", dir);
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		n = strlen(e->d_name);
		if (strncmp(e->d_name, "quarantine.", 11) == 0 && n > s &&
		    strcmp(e->d_name + n - s, suffix) == 0)
			count++;
	}
	closedir(d);
	return count;
}

pid_t
fixture_dead_pid(void)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(kill(pid, 0), -1);
	return pid;
}
