/*
 * origin_dir: listing a directory and importing it (see origin_dir.h).
 *
 * Threads: the calling thread starts the workers, then reports progress
 * until they finish.  Each worker takes the next file (largest first, so the
 * big ones overlap) and copies and hashes it into tmp/.  Then the calling
 * thread claims each digest, in digest order, and publishes the blobs.  The
 * claims stay held until the snapshot's index row is committed, so gc in
 * any process cannot delete a blob this import is about to reference.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "claim.h"
#include "fault.h"
#include "origin_dir.h"
#include "snapshot.h"

#define LFS_THRESHOLD (10 * 1024 * 1024)
#define IMPORT_WORKERS_MAX 8
#define PROGRESS_MS 200

/* Formats a message into err and returns rc. */
static int errf(char *err, size_t len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
errf(char *err, size_t len, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return rc;
}

void
dir_listing_release(struct dir_listing *list)
{
	size_t i;

	for (i = 0; i < list->n; i++) {
		free(list->files[i].path);
		free(list->files[i].src);
	}
	free(list->files);
	free(list->root);
	memset(list, 0, sizeof(*list));
}

static int
add_file(struct dir_listing *list, const char *path, const char *src,
    uint64_t size)
{
	struct dir_file *f;
	size_t cap;

	if (list->n >= MANIFEST_FILES_MAX)
		return -E2BIG;
	if (list->n == list->cap) {
		cap = list->cap == 0 ? 32 : list->cap * 2;
		f = reallocarray(list->files, cap, sizeof(*f));
		if (f == NULL)
			return -ENOMEM;
		list->files = f;
		list->cap = cap;
	}
	f = &list->files[list->n];
	f->path = strdup(path);
	f->src = strdup(src);
	f->size = size;
	if (f->path == NULL || f->src == NULL) {
		free(f->path);
		free(f->src);
		return -ENOMEM;
	}
	list->n++;
	list->total += size;
	return 0;
}

/* A symlink is followed only to a regular file inside the root. */
static int
add_link(struct dir_listing *list, const char *path, const char *abs, char *err,
    size_t errlen)
{
	char real[PATH_MAX];
	size_t rootlen = strlen(list->root);
	struct stat st;

	if (realpath(abs, real) == NULL)
		return errf(err, errlen, -EINVAL, "symlink '%s' is dangling",
		    path);
	if (strncmp(real, list->root, rootlen) != 0 || real[rootlen] != '/')
		return errf(err, errlen, -EINVAL,
		    "symlink '%s' leads outside the directory", path);
	if (stat(real, &st) == -1 || !S_ISREG(st.st_mode))
		return errf(err, errlen, -EINVAL,
		    "symlink '%s' does not lead to a regular file", path);
	return add_file(list, path, real, (uint64_t)st.st_size);
}

static int
walk(struct dir_listing *list, const char *abs, const char *rel, int depth,
    char *err, size_t errlen)
{
	char cabs[PATH_MAX], crel[REF_PATH_MAX + 2];
	struct dirent *e;
	struct stat st;
	const char *why;
	DIR *d;
	int rc = 0, n;

	if (depth > ORIGIN_DIR_DEPTH_MAX)
		return errf(err, errlen, -EINVAL, "'%s' is nested too deep",
		    rel);
	if ((d = opendir(abs)) == NULL)
		return errf(err, errlen, -errno, "cannot read '%s': %s", abs,
		    strerror(errno));
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		/* A checkout's git metadata is not part of the model. */
		if (depth == 0 && strcmp(e->d_name, ".git") == 0)
			continue;
		n = snprintf(crel, sizeof(crel), "%s%s%s", rel,
		    rel[0] != '\0' ? "/" : "", e->d_name);
		if (n < 0 || (size_t)n >= sizeof(crel) ||
		    ref_check_path(crel, strlen(crel), &why) < 0) {
			rc = errf(err, errlen, -EINVAL,
			    "cannot import '%.200s%s': %s", crel,
			    strlen(crel) > 200 ? "..." : "",
			    n >= 0 && (size_t)n < sizeof(crel)
				? why
				: "path too long");
			break;
		}
		snprintf(cabs, sizeof(cabs), "%s/%s", abs, e->d_name);
		if (lstat(cabs, &st) == -1)
			rc = errf(err, errlen, -errno, "cannot stat '%s': %s",
			    crel, strerror(errno));
		else if (S_ISDIR(st.st_mode))
			rc = walk(list, cabs, crel, depth + 1, err, errlen);
		else if (S_ISREG(st.st_mode))
			rc = add_file(list, crel, cabs, (uint64_t)st.st_size);
		else if (S_ISLNK(st.st_mode))
			rc = add_link(list, crel, cabs, err, errlen);
		else
			rc = errf(err, errlen, -EINVAL,
			    "cannot import '%s': not a regular file", crel);
		if (rc == -E2BIG)
			errf(err, errlen, rc, "too many files in '%s'",
			    list->root);
	}
	closedir(d);
	return rc;
}

static int
size_desc(const void *a, const void *b)
{
	const struct dir_file *x = a, *y = b;

	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return strcmp(x->path, y->path);
}

int
dir_list(const char *dir, struct dir_listing *list, char *err, size_t errlen)
{
	char real[PATH_MAX];
	struct stat st;
	int rc;

	memset(list, 0, sizeof(*list));
	if (realpath(dir, real) == NULL)
		return errf(err, errlen, -errno, "cannot open '%s': %s", dir,
		    strerror(errno));
	if (stat(real, &st) == -1 || !S_ISDIR(st.st_mode))
		return errf(err, errlen, -ENOTDIR, "'%s' is not a directory",
		    dir);
	if ((list->root = strdup(real)) == NULL)
		return -ENOMEM;
	rc = walk(list, real, "", 0, err, errlen);
	if (rc == 0 && list->n == 0)
		rc = errf(err, errlen, -ENOENT, "'%s' holds no files", dir);
	if (rc < 0) {
		dir_listing_release(list);
		return rc;
	}
	qsort(list->files, list->n, sizeof(*list->files), size_desc);
	return 0;
}

int
dir_is_lfs(const char *path, uint64_t size)
{
	/* The extensions of the Hub's default .gitattributes. */
	static const char *const exts[] = { ".safetensors", ".bin", ".pt",
		".pth", ".ckpt", ".h5", ".onnx", ".msgpack", ".gguf", ".model",
		".tflite", ".npy", ".npz", ".pkl", ".pickle", ".joblib", ".ot",
		".pb", ".parquet", ".arrow", ".zip", ".tar", ".tgz", ".gz",
		".xz", ".zst", ".bz2", ".7z", ".rar", ".wasm", ".mlmodel",
		".ftz" };
	size_t n = strlen(path), i, e;

	if (size >= LFS_THRESHOLD)
		return 1;
	for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		e = strlen(exts[i]);
		if (n > e && strcmp(path + n - e, exts[i]) == 0)
			return 1;
	}
	return 0;
}

/* One file's state during an import. */
struct job {
	const struct dir_file *file;
	struct ingest got;
	struct claim claim;
	int lfs;
};

struct import {
	struct store *store;
	const struct import_opts *opts;
	struct job *jobs;
	size_t n;
	atomic_size_t next;
	atomic_size_t files_done;
	atomic_uint_fast64_t bytes_done;
	atomic_int failed;
	pthread_mutex_t lock; /* claims, err, rc, running */
	pthread_cond_t cond;
	unsigned running;
	int rc;
	char *err;
	size_t errlen;
};

/* Records the first failure; workers stop at their next file. */
static void
fail(struct import *im, int rc, const char *path)
{
	pthread_mutex_lock(&im->lock);
	if (im->rc == 0) {
		im->rc = rc;
		if (rc == -EAGAIN && path != NULL)
			snprintf(im->err, im->errlen,
			    "'%s' changed while it was imported", path);
		else if (rc == -ETIMEDOUT && path != NULL)
			snprintf(im->err, im->errlen,
			    "cannot import '%s': another process holds its"
			    " blob's claim",
			    path);
		else if (path != NULL)
			snprintf(im->err, im->errlen, "cannot import '%s': %s",
			    path, strerror(-rc));
		else
			snprintf(im->err, im->errlen, "cannot start a worker");
	}
	atomic_store(&im->failed, 1);
	pthread_mutex_unlock(&im->lock);
}

static int
import_one(struct import *im, struct job *job)
{
	const struct dir_file *f = job->file;
	struct stat st;
	int fd, rc;

	/* O_NONBLOCK: a FIFO put there since the listing fails, not hangs. */
	fd = open(f->src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1 && errno == ELOOP)
		fd = open(f->src, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd == -1)
		return -errno;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	job->lfs = dir_is_lfs(f->path, f->size);
	rc = store_ingest(im->store, fd, !job->lfs, &job->got);
	close(fd);
	if (rc < 0)
		return rc;
	if (job->got.size != f->size) {
		store_tmp_remove(im->store, job->got.tmp);
		return -EAGAIN; /* the file changed while we listed it */
	}
	atomic_fetch_add(&im->bytes_done, job->got.size);
	fault_point("import-file-hashed");
	return 0;
}

static void *
worker(void *arg)
{
	struct import *im = arg;
	size_t i;
	int rc;

	while (!atomic_load(&im->failed)) {
		i = atomic_fetch_add(&im->next, 1);
		if (i >= im->n)
			break;
		rc = import_one(im, &im->jobs[i]);
		if (rc < 0) {
			fail(im, rc, im->jobs[i].file->path);
			break;
		}
		atomic_fetch_add(&im->files_done, 1);
	}
	pthread_mutex_lock(&im->lock);
	im->running--;
	pthread_cond_signal(&im->cond);
	pthread_mutex_unlock(&im->lock);
	return NULL;
}

/* Waits for the workers, reporting progress. */
static void
supervise(struct import *im, uint64_t total)
{
	const struct import_progress *p = &im->opts->progress;
	struct timespec until;

	pthread_mutex_lock(&im->lock);
	while (im->running > 0) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += PROGRESS_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&im->cond, &im->lock, &until);
		if (p->fn != NULL && im->running > 0)
			p->fn(p->arg, atomic_load(&im->bytes_done), total,
			    atomic_load(&im->files_done), im->n);
	}
	pthread_mutex_unlock(&im->lock);
	/* Once more at the end, even when the workers beat the first wait. */
	if (p->fn != NULL)
		p->fn(p->arg, atomic_load(&im->bytes_done), total,
		    atomic_load(&im->files_done), im->n);
}

static void
beat(void *arg)
{
	struct import *im = arg;
	size_t i;

	for (i = 0; i < im->n; i++)
		if (im->jobs[i].claim.held)
			claim_touch(im->store, &im->jobs[i].claim);
}

static int
job_cmp(const void *a, const void *b)
{
	const struct job *x = *(const struct job *const *)a;
	const struct job *y = *(const struct job *const *)b;

	return strcmp(x->got.sha256, y->got.sha256);
}

/*
 * Claims and publishes every blob, in digest order: two imports that need
 * some of the same blobs then take their claims in the same order and
 * cannot wait on each other in a circle.  A digest that two files share is
 * claimed once.
 */
static int
publish_blobs(struct import *im)
{
	struct job **order;
	struct job *j, *prev = NULL;
	size_t i;
	int rc = 0;

	order = calloc(im->n, sizeof(*order));
	if (order == NULL)
		return -ENOMEM;
	for (i = 0; i < im->n; i++)
		order[i] = &im->jobs[i];
	qsort(order, im->n, sizeof(*order), job_cmp);
	for (i = 0; rc == 0 && i < im->n; prev = j, i++) {
		j = order[i];
		if (prev != NULL &&
		    strcmp(prev->got.sha256, j->got.sha256) == 0) {
			store_tmp_remove(im->store, j->got.tmp);
			j->got.tmp[0] = '\0';
			continue;
		}
		rc = claim_acquire_beat(im->store, &j->claim, j->got.sha256,
		    im->opts->stale_ms, im->opts->stale_ms * 4, beat, im);
		if (rc == 0)
			rc = store_blob_publish(im->store, j->got.tmp,
			    j->got.sha256);
		if (rc < 0) {
			fail(im, rc, j->file->path);
			continue;
		}
		j->got.tmp[0] = '\0';
		/* In, and ours to name: a pull need not wait on it (pull.c). */
		claim_note(im->store, &j->claim, j->got.sha256);
	}
	free(order);
	return rc;
}

static int
build_manifest(struct import *im, const struct dir_listing *list,
    struct manifest *m)
{
	const struct import_opts *o = im->opts;
	char source[PATH_MAX + 8];
	size_t i;
	int rc;

	snprintf(source, sizeof(source), "file://%s", list->root);
	if ((rc = manifest_set_origin(m, o->type, o->repo, source)) < 0)
		return rc;
	for (i = 0; i < im->n; i++) {
		const struct job *j = &im->jobs[i];

		rc = manifest_add_file(m, j->file->path, j->got.size,
		    j->got.sha256, j->lfs ? j->got.sha256 : j->got.gitsha1);
		if (rc < 0)
			return rc;
	}
	if ((rc = manifest_derive_commit(m)) < 0)
		return rc;
	return manifest_add_revision(m,
	    o->revision != NULL ? o->revision : "main");
}

static unsigned
worker_count(const struct import_opts *o, size_t n)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned w = o->workers;

	/*
	 * Two per CPU: a worker waiting on the disk leaves its CPU to one that
	 * hashes, and a deeper queue keeps the disk busy (bench/import).
	 */
	if (w == 0)
		w = cpus < 1 ? 2 : (unsigned)cpus * 2;
	if (w > IMPORT_WORKERS_MAX)
		w = IMPORT_WORKERS_MAX;
	return w > n ? (unsigned)n : w;
}

int
dir_import(struct store *store, struct index *index,
    const struct dir_listing *list, const struct import_opts *opts,
    struct manifest *m, char *err, size_t errlen)
{
	struct import im;
	pthread_t tid[IMPORT_WORKERS_MAX];
	unsigned i, started = 0, workers;
	int rc;

	memset(&im, 0, sizeof(im));
	im.store = store;
	im.opts = opts;
	im.n = list->n;
	im.err = err;
	im.errlen = errlen;
	pthread_mutex_init(&im.lock, NULL);
	pthread_cond_init(&im.cond, NULL);
	im.jobs = calloc(list->n, sizeof(*im.jobs));
	if (im.jobs == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < list->n; i++)
		im.jobs[i].file = &list->files[i];
	workers = worker_count(opts, list->n);
	im.running = workers;
	for (i = 0; i < workers; i++) {
		if (pthread_create(&tid[i], NULL, worker, &im) != 0) {
			fail(&im, -EAGAIN, NULL);
			pthread_mutex_lock(&im.lock);
			im.running -= workers - i;
			pthread_mutex_unlock(&im.lock);
			break;
		}
		started++;
	}
	supervise(&im, list->total);
	for (i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	if ((rc = im.rc) < 0 || (rc = publish_blobs(&im)) < 0)
		goto out;
	if ((rc = build_manifest(&im, list, m)) < 0) {
		snprintf(err, errlen, "cannot build the manifest: %s",
		    strerror(-rc));
		goto out;
	}
	rc = snapshot_publish(store, index, m, (int64_t)time(NULL));
	if (rc == -EBUSY)
		snprintf(err, errlen,
		    "published '%s', but another process held the index past"
		    " index_busy_timeout: 'modelcache fsck --repair' indexes"
		    " it",
		    opts->repo);
	else if (rc < 0)
		snprintf(err, errlen, "cannot publish '%s': %s", opts->repo,
		    strerror(-rc));
out:
	for (i = 0; im.jobs != NULL && i < im.n; i++) {
		claim_release(store, &im.jobs[i].claim);
		store_tmp_remove(store, im.jobs[i].got.tmp);
	}
	free(im.jobs);
	pthread_mutex_destroy(&im.lock);
	pthread_cond_destroy(&im.cond);
	return rc;
}
