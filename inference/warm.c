/*
 * warm: see warm.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "digest.h"
#include "warm.h"

#define WARM_BLOCK (2 * 1024 * 1024)

struct warm {
	struct warm_file *files;
	size_t n, next;
	int verify, lock;
	pthread_mutex_t mu;
	struct warm_report *r;
};

static void
record_error(struct warm *w, int err, int locking, const char *path)
{
	pthread_mutex_lock(&w->mu);
	if (w->r->err == 0) {
		w->r->err = err;
		w->r->err_lock = locking;
		snprintf(w->r->err_path, sizeof(w->r->err_path), "%s", path);
	}
	pthread_mutex_unlock(&w->mu);
}

/* Maps the file and locks it in memory. */
static int
lock_file(struct warm_file *f, int fd)
{
	if (f->size == 0)
		return 0;
	f->map =
	    mmap(NULL, f->size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
	if (f->map == MAP_FAILED) {
		f->map = NULL;
		return -errno;
	}
	if (mlock(f->map, f->size) == -1)
		return -errno;
	return 0;
}

/*
 * Reads (and maybe hashes) one file from start to end, or maps and locks
 * it; *locking tells which step an error came from.
 */
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif
#define POPULATE_CHUNK (16 * 1024 * 1024)

/*
 * Brings a file into the page cache without copying it anywhere: mapped,
 * then faulted in chunk by chunk by the kernel (MADV_POPULATE_READ, which,
 * unlike MAP_POPULATE, reports I/O errors).  -EINVAL where the kernel is
 * older: the caller reads instead.
 */
static int
populate(int fd, uint64_t size)
{
	uint64_t off, n;
	char *map;
	int rc = 0;

	if (size == 0)
		return 0;
	map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return -EINVAL;
	madvise(map, size, MADV_SEQUENTIAL);
	for (off = 0; off < size && rc == 0; off += n) {
		n = size - off < POPULATE_CHUNK ? size - off : POPULATE_CHUNK;
		while (madvise(map + off, n, MADV_POPULATE_READ) == -1 &&
		    (rc = -errno) == -EINTR)
			rc = 0;
	}
	munmap(map, size);
	return rc;
}

static int
read_file(struct warm *w, struct warm_file *f, unsigned char *buf, int *locking)
{
	struct digest d;
	char hex[DIGEST_HEX_MAX];
	uint64_t off = 0;
	ssize_t got;
	int fd, rc = 0;

	*locking = 0;
	if ((fd = open(f->path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (!w->verify && !w->lock && (rc = populate(fd, f->size)) != -EINVAL) {
		close(fd);
		return rc;
	}
	rc = 0;
	if (w->verify && (rc = digest_init(&d, DIGEST_SHA256, 0)) < 0) {
		close(fd);
		return rc;
	}
	if (w->lock && !w->verify && (rc = lock_file(f, fd)) < 0)
		*locking = 1;
	while (rc == 0 && !(w->lock && !w->verify) &&
	    (got = pread(fd, buf, WARM_BLOCK, (off_t)off)) != 0) {
		if (got < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (w->verify)
			rc = digest_update(&d, buf, (size_t)got);
		off += (uint64_t)got;
	}
	if (rc == 0 && w->lock && w->verify && (rc = lock_file(f, fd)) < 0)
		*locking = 1;
	if (w->verify) {
		if (rc == 0 && digest_final(&d, hex) == 0 &&
		    (strcmp(hex, f->sha256) != 0 || off != f->size))
			f->bad = 1;
		digest_release(&d);
	}
	close(fd);
	return rc;
}

static void *
worker(void *arg)
{
	struct warm *w = arg;
	unsigned char *buf = malloc(WARM_BLOCK);
	size_t i;
	int rc, locking;

	if (buf == NULL) {
		record_error(w, -ENOMEM, 0, "");
		return NULL;
	}
	for (;;) {
		pthread_mutex_lock(&w->mu);
		i = w->next < w->n ? w->next++ : w->n;
		pthread_mutex_unlock(&w->mu);
		if (i == w->n)
			break;
		if ((rc = read_file(w, &w->files[i], buf, &locking)) < 0)
			record_error(w, rc, locking, w->files[i].path);
	}
	free(buf);
	return NULL;
}

static int
by_size(const void *a, const void *b)
{
	const struct warm_file *x = a, *y = b;

	return x->size < y->size ? 1 : x->size > y->size ? -1 : 0;
}

int64_t
warm_resident(const char *path)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *vec;
	struct stat st;
	int64_t n = 0;
	size_t pages, i;
	void *map;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	if (fstat(fd, &st) == -1 || st.st_size == 0) {
		close(fd);
		return 0;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return -errno;
	pages = ((size_t)st.st_size + (size_t)page - 1) / (size_t)page;
	if ((vec = malloc(pages)) == NULL) {
		munmap(map, (size_t)st.st_size);
		return -ENOMEM;
	}
	if (mincore(map, (size_t)st.st_size, vec) == 0)
		for (i = 0; i < pages; i++)
			if (vec[i] & 1)
				n += i + 1 == pages
				    ? st.st_size - (int64_t)i * page
				    : page;
	free(vec);
	munmap(map, (size_t)st.st_size);
	return n;
}

void
warm_run(struct warm_file *files, size_t n, unsigned concurrency, int verify,
    int lock, struct warm_report *r)
{
	struct warm w = { files, n, 0, verify, lock, PTHREAD_MUTEX_INITIALIZER,
		r };
	pthread_t *t;
	struct timespec t0, t1;
	unsigned i, started = 0;
	int64_t res;
	size_t k;

	memset(r, 0, sizeof(*r));
	qsort(files, n, sizeof(*files), by_size);
	if (concurrency == 0)
		concurrency = 1;
	if (concurrency > n)
		concurrency = n > 0 ? (unsigned)n : 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((t = calloc(concurrency, sizeof(*t))) != NULL)
		for (i = 0; i < concurrency; i++)
			if (pthread_create(&t[started], NULL, worker, &w) == 0)
				started++;
	if (started == 0)
		worker(&w);
	for (i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	free(t);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	r->seconds = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	for (k = 0; k < n; k++) {
		r->bytes += files[k].size;
		r->bad += (size_t)files[k].bad;
		if ((res = warm_resident(files[k].path)) > 0)
			r->resident += (uint64_t)res;
	}
}

void
warm_release(struct warm_file *files, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (files[i].map != NULL) {
			munmap(files[i].map, files[i].size);
			files[i].map = NULL;
		}
}
