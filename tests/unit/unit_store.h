/*
 * unit_store.h: fixtures for the unit tests of the store modules: an
 * asserting snprintf and a published blob made from bytes.  Include after
 * unit.h, with src/ on the include path.
 */
#ifndef MC_UNIT_STORE_H
#define MC_UNIT_STORE_H

#include <fcntl.h>
#include <stdarg.h>

#include "store.h"

#define UNIT_PATH 4400

/* What a test needs to know of a blob it published. */
struct blob {
	char sha256[DIGEST_HEX_MAX];
	char gitsha1[DIGEST_HEX_MAX];
	uint64_t size;
};

/* snprintf that fails the test rather than cut a path short. */
static inline void unit_fmt(char *buf, size_t len, const char *f, ...)
    __attribute__((format(printf, 3, 4)));

static inline void
unit_fmt(char *buf, size_t len, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(buf, len, f, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < len);
}

/*
 * Publishes len bytes of content as a blob of store, through a source file
 * srcdir/f<n> (n counts up), the way an import does; fills *b.
 */
static inline void
unit_blob(struct store *store, const char *srcdir, unsigned *n,
    const void *content, size_t len, struct blob *b)
{
	char name[32], path[UNIT_PATH];
	struct ingest in;
	int fd;

	unit_fmt(name, sizeof(name), "f%u", (*n)++);
	unit_write(srcdir, name, content, len);
	unit_fmt(path, sizeof(path), "%s/%s", srcdir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(store_ingest(store, fd, 1, &in), 0);
	close(fd);
	assert_int_equal(in.size, len);
	assert_int_equal(strlen(in.gitsha1), DIGEST_SHA1_HEX);
	assert_int_equal(store_blob_publish(store, in.tmp, in.sha256), 0);
	memcpy(b->sha256, in.sha256, sizeof(b->sha256));
	memcpy(b->gitsha1, in.gitsha1, sizeof(b->gitsha1));
	b->size = in.size;
}

/* A new store in a temporary directory: cmocka setup and teardown. */
struct unit_fixture {
	char *dir;
	struct store store;
};

static inline int
unit_fixture_setup(void **state)
{
	struct unit_fixture *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	fx->dir = unit_tmpdir();
	if (store_open(&fx->store, fx->dir, 1) < 0) {
		unit_rmdir(fx->dir);
		free(fx);
		return -1;
	}
	*state = fx;
	return 0;
}

static inline int
unit_fixture_teardown(void **state)
{
	struct unit_fixture *fx = *state;

	store_release(&fx->store);
	unit_rmdir(fx->dir);
	free(fx);
	return 0;
}

#endif
