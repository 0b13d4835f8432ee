/*
 * test_store: unit tests for src/store.c.
 *
 * Each test opens a store in its own temporary directory and looks at the
 * result on disk with plain system calls, not through the store: the
 * layout, the modes, the bytes of every blob and, after each operation that
 * goes through tmp/, that nothing was left behind there.  Digests are
 * checked against digest_buf(), which test_digest checks against known
 * answers.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "unit.h"
#include "unit_store.h"
#include "fixture.h"

#include "digest.h"
#include "store.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

#define HELLO "Hello, World!"
#define HELLO_SHA256 \
	"dffd6021bb2bd5b0af676290809ec3a53191dd81c7f70a4b28688a362182986f"
#define HELLO_GITSHA1 "b45ef6fec89518d314f546fd6c3025367b721684"
#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/*
 * A store in a fresh temporary directory, made before each test and
 * removed after it by cmocka, even when the test fails.
 */
/* dir/rel into buf (a 4200-byte buffer). */
static const char *
path_of(const char *dir, const char *rel, char *buf)
{
	int n = snprintf(buf, 4200, "%s/%s", dir, rel);

	assert_true(n > 0 && n < 4200);
	return buf;
}

/* Reads a whole file with stdio; the caller frees. */
static unsigned char *
slurp(const char *dir, const char *rel, size_t *len)
{
	char path[4200];
	unsigned char *buf;
	struct stat st;
	FILE *f;

	f = fopen(path_of(dir, rel, path), "rb");
	assert_non_null(f);
	assert_int_equal(fstat(fileno(f), &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)st.st_size, f), st.st_size);
	fclose(f);
	*len = (size_t)st.st_size;
	return buf;
}

static void
assert_file_is(const char *dir, const char *rel, const void *want, size_t len)
{
	unsigned char *got;
	size_t n;

	got = slurp(dir, rel, &n);
	assert_int_equal(n, len);
	assert_memory_equal(got, want, len);
	free(got);
}

static mode_t
mode_of(const char *dir, const char *rel)
{
	char path[4200];
	struct stat st;

	assert_int_equal(lstat(path_of(dir, rel, path), &st), 0);
	return st.st_mode & 07777;
}

static int
exists(const char *dir, const char *rel)
{
	char path[4200];
	struct stat st;

	return lstat(path_of(dir, rel, path), &st) == 0;
}

/* An fd open on a new file dir/name holding buf. */
static int
source_fd(const char *dir, const char *name, const void *buf, size_t len)
{
	char path[4200];
	int fd;

	unit_write(dir, name, buf, len);
	fd = open(path_of(dir, name, path), O_RDONLY);
	assert_true(fd >= 0);
	return fd;
}

/* Ingests buf and publishes it; its digest is written to sha256. */
static void
put_blob(struct unit_fixture *fx, const void *buf, size_t len, char *sha256)
{
	struct ingest in;
	char src[4200];
	int fd;

	fd = source_fd(fx->dir, "src.tmp", buf, len);
	assert_int_equal(store_ingest(&fx->store, fd, 0, &in), 0);
	close(fd);
	assert_int_equal(unlink(path_of(fx->dir, "src.tmp", src)), 0);
	assert_int_equal(store_blob_publish(&fx->store, in.tmp, in.sha256), 0);
	memcpy(sha256, in.sha256, DIGEST_HEX_MAX);
}

/* --- store_open --- */

static void
test_open_create(void **state)
{
	static const char *const dirs[] = { "blobs", "blobs/sha256",
		"manifests", "hub", "leases", "claims", "tmp" };
	char *base = unit_tmpdir(), root[4200], path[4200], pid[32];
	struct store store;
	struct stat st;
	size_t i;

	/* The root itself and its parents are made. */
	path_of(base, "a/b/store", root);
	assert_int_equal(store_open(&store, root, 1), 0);
	assert_string_equal(store.root, root);
	assert_true(store.dirfd >= 0);
	for (i = 0; i < NELEM(dirs); i++) {
		assert_int_equal(stat(path_of(root, dirs[i], path), &st), 0);
		assert_true(S_ISDIR(st.st_mode));
	}
	/* "<host>.<boot>.<pidns>.<pid>.<start>": no '/', our pid 4th. */
	snprintf(pid, sizeof(pid), ".%ld.", (long)getpid());
	assert_non_null(strstr(store.owner, pid));
	assert_null(strchr(strstr(store.owner, pid) + strlen(pid), '.'));
	assert_null(strchr(store.owner, '/'));
	store_release(&store);
	assert_int_equal(store.dirfd, -1);
	assert_null(store.root);

	/* An existing store opens without create, and again with it. */
	assert_int_equal(store_open(&store, root, 0), 0);
	assert_true(store.dirfd >= 0);
	store_release(&store);
	assert_int_equal(store_open(&store, root, 1), 0);
	store_release(&store);
	unit_rmdir(base);
}

static void
test_open_missing(void **state)
{
	char *base = unit_tmpdir(), root[4200], path[4200];
	struct store store;

	/* A missing root is not created without create. */
	path_of(base, "nope", root);
	assert_int_equal(store_open(&store, root, 0), -ENOENT);
	assert_false(exists(base, "nope"));
	assert_int_equal(store.dirfd, -1);
	assert_null(store.root);

	/* An empty directory is not a store. */
	assert_int_equal(mkdir(root, 0755), 0);
	assert_int_equal(store_open(&store, root, 0), -ENOENT);
	assert_false(exists(root, "blobs"));

	/* Nor is a store missing one of its directories. */
	assert_int_equal(store_open(&store, root, 1), 0);
	store_release(&store);
	assert_int_equal(rmdir(path_of(root, "tmp", path)), 0);
	assert_int_equal(store_open(&store, root, 0), -ENOENT);
	assert_false(exists(root, "tmp"));
	assert_int_equal(store.dirfd, -1);

	/* A file where the root should be. */
	unit_write(base, "file", "x", 1);
	assert_int_equal(store_open(&store, path_of(base, "file", path), 0),
	    -ENOTDIR);
	unit_rmdir(base);
}

/* --- store_blob_path --- */

static void
test_blob_path(void **state)
{
	static const char *const bad[] = {
		"",
		"0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcd"
		"ef",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
		"e",
		HEX64 "0",
		"g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
		"ef",
		"../"
		"456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"01/"
		"3456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		" 123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"
		"ef",
	};
	char buf[STORE_PATH_MAX], small[80];
	size_t i;

	assert_int_equal(store_blob_path(HEX64, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "blobs/sha256/01/" HEX64);
	assert_int_equal(store_blob_path(HELLO_SHA256, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "blobs/sha256/df/" HELLO_SHA256);
	for (i = 0; i < NELEM(bad); i++) {
		assert_int_equal(store_blob_path(bad[i], buf, sizeof(buf)),
		    -EINVAL);
	}
	assert_int_equal(store_blob_path(NULL, buf, sizeof(buf)), -EINVAL);

	/* "blobs/sha256/01/" is 16 bytes: 16 + 64 + NUL fits 81, not 80. */
	assert_int_equal(store_blob_path(HEX64, small, sizeof(small)),
	    -ENAMETOOLONG);
	{
		char fits[81];

		assert_int_equal(store_blob_path(HEX64, fits, sizeof(fits)), 0);
		assert_string_equal(fits, "blobs/sha256/01/" HEX64);
	}
}

/* --- store_tmp_create --- */

static void
test_tmp_create(void **state)
{
	enum { N = 64 };
	char rel[N][STORE_PATH_MAX], prefix[STORE_PATH_MAX + 8];
	struct unit_fixture *fx = *state;
	size_t plen, i, j;
	char rd[4];
	int fd;

	snprintf(prefix, sizeof(prefix), "tmp/%s.", fx->store.owner);
	plen = strlen(prefix);
	for (i = 0; i < N; i++) {
		fd = store_tmp_create(&fx->store, ".part", rel[i],
		    sizeof(rel[i]));
		assert_true(fd >= 0);
		/* tmp/<owner>.<12 hex>.part, opened read-write, mode 0600. */
		assert_memory_equal(rel[i], prefix, plen);
		assert_int_equal(strlen(rel[i]), plen + 12 + 5);
		for (j = plen; j < plen + 12; j++)
			assert_non_null(strchr("0123456789abcdef", rel[i][j]));
		assert_string_equal(rel[i] + plen + 12, ".part");
		assert_int_equal(write(fd, "abc", 3), 3);
		assert_int_equal(pread(fd, rd, 3, 0), 3);
		assert_memory_equal(rd, "abc", 3);
		close(fd);
		assert_int_equal(mode_of(fx->dir, rel[i]), 0600);
		for (j = 0; j < i; j++)
			assert_string_not_equal(rel[i], rel[j]);
	}
	assert_int_equal(fixture_count(fx->dir, "tmp"), N);

	/* No suffix. */
	fd = store_tmp_create(&fx->store, "", rel[0], sizeof(rel[0]));
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(strlen(rel[0]), plen + 12);

	/* A name that does not fit the buffer. */
	assert_int_equal(store_tmp_create(&fx->store, "", rel[1], plen + 12),
	    -ENAMETOOLONG);

	/* store_tmp_remove removes, and ignores an empty name. */
	store_tmp_remove(&fx->store, rel[0]);
	assert_false(exists(fx->dir, rel[0]));
	store_tmp_remove(&fx->store, "");
	assert_int_equal(fixture_count(fx->dir, "tmp"), N);
}

/* --- store_ingest and store_blob_publish --- */

static void
test_ingest_known(void **state)
{
	char blob[STORE_PATH_MAX];
	struct unit_fixture *fx = *state;
	struct ingest in;
	uint64_t size = 0;
	int fd;

	fd = source_fd(fx->dir, "src", HELLO, strlen(HELLO));
	assert_int_equal(store_ingest(&fx->store, fd, 1, &in), 0);
	close(fd);
	assert_int_equal(in.size, strlen(HELLO));
	assert_string_equal(in.sha256, HELLO_SHA256);
	assert_string_equal(in.gitsha1, HELLO_GITSHA1);

	/* One fsync'd tmp file holding the bytes, nothing published yet. */
	assert_int_equal(strncmp(in.tmp, "tmp/", 4), 0);
	assert_int_equal(fixture_count(fx->dir, "tmp"), 1);
	assert_file_is(fx->dir, in.tmp, HELLO, strlen(HELLO));
	assert_int_equal(store_blob_stat(&fx->store, in.sha256, &size),
	    -ENOENT);

	assert_int_equal(store_blob_publish(&fx->store, in.tmp, in.sha256), 0);
	assert_int_equal(fixture_count(fx->dir, "tmp"), 0);
	assert_false(exists(fx->dir, in.tmp));
	assert_int_equal(store_blob_path(in.sha256, blob, sizeof(blob)), 0);
	assert_string_equal(blob, "blobs/sha256/df/" HELLO_SHA256);
	assert_file_is(fx->dir, blob, HELLO, strlen(HELLO));
	assert_int_equal(mode_of(fx->dir, blob), 0444);
	assert_int_equal(store_blob_stat(&fx->store, in.sha256, &size), 0);
	assert_int_equal(size, strlen(HELLO));
	assert_int_equal(store_blob_stat(&fx->store, in.sha256, NULL), 0);
	assert_int_equal(store_blob_verify(&fx->store, in.sha256, size), 0);
	assert_int_equal(store_blob_verify(&fx->store, in.sha256, UINT64_MAX),
	    0);
}

/* Several MiB, not a multiple of the copy size, copied byte for byte. */
static void
test_ingest_large(void **state)
{
	const size_t len = 3 * 1024 * 1024 + 4321;
	char sha[DIGEST_HEX_MAX], git[DIGEST_HEX_MAX], blob[STORE_PATH_MAX];
	unsigned char *buf = unit_pattern(len, 7);
	struct unit_fixture *fx = *state;
	struct ingest in;
	int fd;

	assert_int_equal(digest_buf(DIGEST_SHA256, buf, len, sha), 0);
	assert_int_equal(digest_buf(DIGEST_GITSHA1, buf, len, git), 0);

	fd = source_fd(fx->dir, "src", buf, len);
	assert_int_equal(store_ingest(&fx->store, fd, 1, &in), 0);
	assert_int_equal(in.size, len);
	assert_string_equal(in.sha256, sha);
	assert_string_equal(in.gitsha1, git);
	assert_file_is(fx->dir, in.tmp, buf, len);
	store_tmp_remove(&fx->store, in.tmp);
	assert_int_equal(fixture_count(fx->dir, "tmp"), 0);

	/* Without want_sha1 the git digest is left empty. */
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(store_ingest(&fx->store, fd, 0, &in), 0);
	close(fd);
	assert_int_equal(in.size, len);
	assert_string_equal(in.sha256, sha);
	assert_string_equal(in.gitsha1, "");
	assert_int_equal(fixture_count(fx->dir, "tmp"), 1);
	assert_int_equal(store_blob_publish(&fx->store, in.tmp, in.sha256), 0);
	assert_int_equal(fixture_count(fx->dir, "tmp"), 0);
	assert_int_equal(store_blob_path(sha, blob, sizeof(blob)), 0);
	assert_file_is(fx->dir, blob, buf, len);
	assert_int_equal(mode_of(fx->dir, blob), 0444);
	assert_int_equal(store_blob_verify(&fx->store, sha, len), 0);
	free(buf);
}

/* Ingest copies from the current offset, and from a pipe. */
static void
test_ingest_offset_and_pipe(void **state)
{
	const size_t len = 100000, skip = 1000;
	unsigned char *buf = unit_pattern(len, 11);
	char sha[DIGEST_HEX_MAX];
	struct unit_fixture *fx = *state;
	struct ingest in;
	int fd, p[2];

	fd = source_fd(fx->dir, "src", buf, len);
	assert_int_equal(lseek(fd, (off_t)skip, SEEK_SET), (off_t)skip);
	assert_int_equal(store_ingest(&fx->store, fd, 0, &in), 0);
	close(fd);
	assert_int_equal(digest_buf(DIGEST_SHA256, buf + skip, len - skip, sha),
	    0);
	assert_int_equal(in.size, len - skip);
	assert_string_equal(in.sha256, sha);
	assert_file_is(fx->dir, in.tmp, buf + skip, len - skip);
	store_tmp_remove(&fx->store, in.tmp);

	/* A pipe has no size to stat; the bytes that came are what counts. */
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], HELLO, strlen(HELLO)), strlen(HELLO));
	close(p[1]);
	assert_int_equal(store_ingest(&fx->store, p[0], 0, &in), 0);
	close(p[0]);
	assert_int_equal(in.size, strlen(HELLO));
	assert_string_equal(in.sha256, HELLO_SHA256);
	assert_file_is(fx->dir, in.tmp, HELLO, strlen(HELLO));
	store_tmp_remove(&fx->store, in.tmp);
	assert_int_equal(fixture_count(fx->dir, "tmp"), 0);
	free(buf);
}

/* On error nothing is left in tmp/. */
static void
test_ingest_error_leaves_nothing(void **state)
{
	char path[4200];
	struct unit_fixture *fx = *state;
	struct ingest in;
	int fd;

	/* Reading a directory fails with EISDIR after the tmp file exists. */
	fd = open(path_of(fx->dir, "blobs", path), O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	assert_int_equal(store_ingest(&fx->store, fd, 1, &in), -EISDIR);
	close(fd);
	assert_string_equal(in.tmp, "");
	assert_int_equal(fixture_count(fx->dir, "tmp"), 0);

	assert_int_equal(store_ingest(&fx->store, -1, 0, &in), -EBADF);
	assert_int_equal(fixture_count(fx->dir, "tmp"), 0);
}

/* Publishing a blob that exists keeps the first and drops the tmp file. */
static void
test_publish_existing(void **state)
{
	char blob[STORE_PATH_MAX], sha[DIGEST_HEX_MAX];
	struct stat before, after;
	struct unit_fixture *fx = *state;
	struct ingest in;
	int fd;

	put_blob(fx, HELLO, strlen(HELLO), sha);
	assert_int_equal(store_blob_path(sha, blob, sizeof(blob)), 0);
	assert_int_equal(fstatat(fx->store.dirfd, blob, &before, 0), 0);

	fd = source_fd(fx->dir, "again", HELLO, strlen(HELLO));
	assert_int_equal(store_ingest(&fx->store, fd, 0, &in), 0);
	close(fd);
	assert_string_equal(in.sha256, sha);
	assert_int_equal(fixture_count(fx->dir, "tmp"), 1);
	assert_int_equal(store_blob_publish(&fx->store, in.tmp, in.sha256), 0);
	assert_int_equal(fixture_count(fx->dir, "tmp"), 0);
	assert_int_equal(fstatat(fx->store.dirfd, blob, &after, 0), 0);
	assert_int_equal(after.st_ino, before.st_ino);
	assert_int_equal(after.st_mode & 07777, 0444);
	assert_file_is(fx->dir, blob, HELLO, strlen(HELLO));

	/* A malformed digest publishes nothing and keeps the tmp file. */
	fd = store_tmp_create(&fx->store, "", in.tmp, sizeof(in.tmp));
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(store_blob_publish(&fx->store, in.tmp, "abc"),
	    -EINVAL);
	assert_true(exists(fx->dir, in.tmp));
}

/* A file made in the store at rel with content; its fd, open O_RDWR. */
static int
partial_fd(struct unit_fixture *fx, const char *rel, const char *content)
{
	int fd = openat(fx->store.dirfd, rel, O_RDWR | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)),
	    (ssize_t)strlen(content));
	return fd;
}

/*
 * Two holders of one claim (one stalled, its claim taken over) write
 * tmp/partial.<sha>: the one that hashed its file publishes that file,
 * never the other's that now sits at the name.
 */
static void
test_publish_fd_two_holders(void **state)
{
	const char *rel = "tmp/partial." HELLO_SHA256;
	const char *blob = "blobs/sha256/df/" HELLO_SHA256;
	struct unit_fixture *fx = *state;
	struct stat mine, st;
	int fd, other;

	/* Ours, hashed; then the other holder replaces the name. */
	fd = partial_fd(fx, rel, HELLO);
	assert_int_equal(unlinkat(fx->store.dirfd, rel, 0), 0);
	other = partial_fd(fx, rel, "Hello, World?");
	assert_int_equal(store_blob_publish_fd(&fx->store, fd, rel,
			     HELLO_SHA256, strlen(HELLO)),
	    -ESTALE);
	assert_false(exists(fx->dir, blob));
	assert_file_is(fx->dir, rel, "Hello, World?", 13);
	assert_int_equal(fixture_count(fx->dir, "tmp"), 1);

	/* Nothing at the name at all: not published either. */
	assert_int_equal(unlinkat(fx->store.dirfd, rel, 0), 0);
	assert_int_equal(store_blob_publish_fd(&fx->store, other, rel,
			     HELLO_SHA256, 13),
	    -ESTALE);
	assert_false(exists(fx->dir, blob));
	assert_int_equal(fixture_count(fx->dir, "tmp"), 0);
	close(other);
	close(fd);

	/* Still ours: that very inode becomes the blob, the name goes. */
	fd = partial_fd(fx, rel, HELLO);
	assert_int_equal(fstat(fd, &mine), 0);
	assert_int_equal(store_blob_publish_fd(&fx->store, fd, rel,
			     HELLO_SHA256, strlen(HELLO)),
	    0);
	assert_int_equal(fstatat(fx->store.dirfd, blob, &st, 0), 0);
	assert_int_equal(st.st_ino, mine.st_ino);
	assert_int_equal(st.st_mode & 07777, 0444);
	assert_file_is(fx->dir, blob, HELLO, strlen(HELLO));
	assert_false(exists(fx->dir, rel));
	assert_int_equal(fixture_count(fx->dir, "tmp"), 0);
	close(fd);
}

/* A file longer (or shorter) than the size hashed is never published. */
static void
test_publish_fd_size(void **state)
{
	const char *rel = "tmp/partial." HELLO_SHA256;
	struct unit_fixture *fx = *state;
	int fd;

	fd = partial_fd(fx, rel, HELLO "and junk after it");
	assert_int_equal(store_blob_publish_fd(&fx->store, fd, rel,
			     HELLO_SHA256, strlen(HELLO)),
	    -EBADMSG);
	assert_int_equal(store_blob_stat(&fx->store, HELLO_SHA256, NULL),
	    -ENOENT);
	assert_true(exists(fx->dir, rel));
	close(fd);
}

/*
 * A blob of the wrong size under a digest's name is not trusted: the check
 * says so, and a publish of the right bytes sets it aside (kept as
 * evidence, never deleted) and takes its name.
 */
static void
test_publish_replaces_wrong_size(void **state)
{
	const char *blob = "blobs/sha256/df/" HELLO_SHA256;
	struct unit_fixture *fx = *state;
	struct ingest in;
	int fd;

	assert_int_equal(store_blob_check(&fx->store, HELLO_SHA256, 13),
	    -ENOENT);
	assert_int_equal(store_mkdirs(&fx->store, "blobs/sha256/df"), 0);
	unit_write(fx->dir, blob, HELLO "and junk", strlen(HELLO) + 8);
	assert_int_equal(store_blob_check(&fx->store, HELLO_SHA256, 13),
	    -EBADMSG);
	assert_int_equal(store_blob_check(&fx->store, HELLO_SHA256, 21), 0);

	fd = source_fd(fx->dir, "src", HELLO, strlen(HELLO));
	assert_int_equal(store_ingest(&fx->store, fd, 0, &in), 0);
	close(fd);
	assert_int_equal(store_blob_publish(&fx->store, in.tmp, in.sha256), 0);
	assert_file_is(fx->dir, blob, HELLO, strlen(HELLO));
	assert_int_equal(store_blob_check(&fx->store, HELLO_SHA256, 13), 0);
	assert_int_equal(fixture_quarantined(fx->dir, HELLO_SHA256 ".corrupt"),
	    1);
	assert_int_equal(fixture_count(fx->dir, "tmp"), 1);

	/* Quarantined twice in one millisecond: both are kept. */
	assert_int_equal(store_blob_quarantine(&fx->store, HELLO_SHA256), 0);
	assert_int_equal(store_blob_check(&fx->store, HELLO_SHA256, 13),
	    -ENOENT);
	assert_int_equal(fixture_quarantined(fx->dir, HELLO_SHA256 ".corrupt"),
	    2);
}

static void
test_blob_unlink(void **state)
{
	char sha[DIGEST_HEX_MAX];
	struct unit_fixture *fx = *state;

	put_blob(fx, HELLO, strlen(HELLO), sha);
	assert_int_equal(store_blob_unlink(&fx->store, sha), 0);
	assert_int_equal(store_blob_stat(&fx->store, sha, NULL), -ENOENT);
	assert_false(exists(fx->dir, "blobs/sha256/df/" HELLO_SHA256));
	assert_int_equal(store_blob_unlink(&fx->store, sha), -ENOENT);
	assert_int_equal(store_blob_unlink(&fx->store, "zz"), -EINVAL);
}

/* --- store_blob_verify --- */

static void
test_blob_verify(void **state)
{
	const size_t len = 2 * 1024 * 1024 + 5;
	unsigned char *buf = unit_pattern(len, 3), byte;
	char sha[DIGEST_HEX_MAX], blob[STORE_PATH_MAX], path[4200];
	char target[4200];
	struct unit_fixture *fx = *state;
	int fd;

	put_blob(fx, buf, len, sha);
	assert_int_equal(store_blob_path(sha, blob, sizeof(blob)), 0);
	assert_int_equal(store_blob_verify(&fx->store, sha, len), 0);
	assert_int_equal(store_blob_verify(&fx->store, sha, UINT64_MAX), 0);

	/* Wrong size, checked before hashing. */
	assert_int_equal(store_blob_verify(&fx->store, sha, len + 1), -EBADMSG);
	assert_int_equal(store_blob_verify(&fx->store, sha, len - 1), -EBADMSG);
	assert_int_equal(store_blob_verify(&fx->store, sha, 0), -EBADMSG);

	/* One flipped bit deep in the file. */
	path_of(fx->dir, blob, path);
	assert_int_equal(chmod(path, 0644), 0);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	byte = buf[len - 100] ^ 0x01;
	assert_int_equal(pwrite(fd, &byte, 1, (off_t)(len - 100)), 1);
	assert_int_equal(store_blob_verify(&fx->store, sha, len), -EBADMSG);
	assert_int_equal(store_blob_verify(&fx->store, sha, UINT64_MAX),
	    -EBADMSG);
	/* Put back, it verifies again. */
	assert_int_equal(pwrite(fd, &buf[len - 100], 1, (off_t)(len - 100)), 1);
	assert_int_equal(store_blob_verify(&fx->store, sha, len), 0);
	/* Truncated: the size no longer matches, nor the digest. */
	assert_int_equal(ftruncate(fd, (off_t)(len - 1)), 0);
	assert_int_equal(store_blob_verify(&fx->store, sha, UINT64_MAX),
	    -EBADMSG);
	close(fd);

	/* A symlink in place of a blob is not followed. */
	assert_int_equal(unlink(path), 0);
	unit_write(fx->dir, "outside", buf, len);
	assert_int_equal(symlink(path_of(fx->dir, "outside", target), path), 0);
	assert_int_equal(store_blob_verify(&fx->store, sha, len), -EBADMSG);

	/* Missing and malformed. */
	assert_int_equal(store_blob_verify(&fx->store, HEX64, UINT64_MAX),
	    -ENOENT);
	assert_int_equal(store_blob_verify(&fx->store, "abc", UINT64_MAX),
	    -EINVAL);
	free(buf);
}

/* --- store_write_atomic and store_read_file --- */

static void
test_write_atomic(void **state)
{
	static const char one[] = "{\"v\":1}\n";
	static const char two[] = "{\"v\":2,\"longer\":true}\n";
	struct stat st1, st2;
	struct unit_fixture *fx = *state;
	char path[4200];

	assert_int_equal(store_write_atomic(&fx->store, "manifests/d/e/f.json",
			     one, strlen(one), 0640),
	    0);
	assert_file_is(fx->dir, "manifests/d/e/f.json", one, strlen(one));
	assert_int_equal(mode_of(fx->dir, "manifests/d/e/f.json"), 0640);
	assert_int_equal(mode_of(fx->dir, "manifests/d/e") & 0777, 0755);
	assert_int_equal(fixture_count(fx->dir, "manifests/d/e"), 1);
	assert_int_equal(fixture_count(fx->dir, "tmp"), 0);
	assert_int_equal(lstat(path_of(fx->dir, "manifests/d/e/f.json", path),
			     &st1),
	    0);

	/* Replacing goes through a new inode, even over a read-only file. */
	assert_int_equal(chmod(path, 0444), 0);
	assert_int_equal(store_write_atomic(&fx->store, "manifests/d/e/f.json",
			     two, strlen(two), 0444),
	    0);
	assert_file_is(fx->dir, "manifests/d/e/f.json", two, strlen(two));
	assert_int_equal(mode_of(fx->dir, "manifests/d/e/f.json"), 0444);
	assert_int_equal(lstat(path, &st2), 0);
	assert_int_not_equal(st1.st_ino, st2.st_ino);
	assert_int_equal(fixture_count(fx->dir, "manifests/d/e"), 1);
	assert_int_equal(fixture_count(fx->dir, "tmp"), 0);

	/* At the root, and empty. */
	assert_int_equal(store_write_atomic(&fx->store, "top", "", 0, 0600), 0);
	assert_file_is(fx->dir, "top", "", 0);
	assert_int_equal(mode_of(fx->dir, "top"), 0600);
	assert_int_equal(fixture_count(fx->dir, "tmp"), 0);

	/* A parent that is a file: an error, and nothing left in tmp/. */
	assert_int_not_equal(store_write_atomic(&fx->store, "top/x", "a", 1,
				 0644),
	    0);
	assert_int_equal(fixture_count(fx->dir, "tmp"), 0);
	/* A target that is a directory: rename fails, tmp is cleaned. */
	assert_int_not_equal(store_write_atomic(&fx->store, "manifests/d", "a",
				 1, 0644),
	    0);
	assert_int_equal(fixture_count(fx->dir, "tmp"), 0);
	assert_file_is(fx->dir, "manifests/d/e/f.json", two, strlen(two));
}

/* store_write_new: the same, but an existing name is kept, never replaced. */
static void
test_write_new(void **state)
{
	static const char one[] = "{\"v\":1}\n";
	static const char two[] = "{\"v\":2}\n";
	struct unit_fixture *fx = *state;

	assert_int_equal(store_write_new(&fx->store, "manifests/d/f.json", one,
			     strlen(one), 0444),
	    0);
	assert_file_is(fx->dir, "manifests/d/f.json", one, strlen(one));
	assert_int_equal(mode_of(fx->dir, "manifests/d/f.json"), 0444);
	assert_int_equal(fixture_count(fx->dir, "tmp"), 0);
	assert_int_equal(store_write_new(&fx->store, "manifests/d/f.json", two,
			     strlen(two), 0444),
	    -EEXIST);
	assert_file_is(fx->dir, "manifests/d/f.json", one, strlen(one));
	assert_int_equal(fixture_count(fx->dir, "manifests/d"), 1);
	assert_int_equal(fixture_count(fx->dir, "tmp"), 0);
}

static void
test_read_file(void **state)
{
	static const char data[] = "ab\0cd\nxyz";
	const size_t len = sizeof(data) - 1;
	static char sentinel;
	char path[4200], target[4200], *buf = &sentinel;
	struct unit_fixture *fx = *state;
	size_t got = 0;

	assert_int_equal(store_write_atomic(&fx->store, "f/data", data, len,
			     0644),
	    0);

	/* Exactly at the limit; embedded NUL kept; NUL-terminated. */
	assert_int_equal(store_read_file(&fx->store, "f/data", len, &buf, &got),
	    0);
	assert_non_null(buf);
	assert_int_equal(got, len);
	assert_memory_equal(buf, data, len);
	assert_int_equal(buf[len], '\0');
	free(buf);

	/* One byte over the limit. */
	buf = &sentinel;
	assert_int_equal(store_read_file(&fx->store, "f/data", len - 1, &buf,
			     &got),
	    -EFBIG);
	assert_null(buf);
	assert_int_equal(store_read_file(&fx->store, "f/data", 0, &buf, &got),
	    -EFBIG);

	/* Empty file with max 0. */
	assert_int_equal(store_write_atomic(&fx->store, "f/empty", "", 0, 0644),
	    0);
	assert_int_equal(store_read_file(&fx->store, "f/empty", 0, &buf, &got),
	    0);
	assert_int_equal(got, 0);
	assert_string_equal(buf, "");
	free(buf);

	/* Missing, a directory, a symlink (never followed). */
	assert_int_equal(store_read_file(&fx->store, "f/missing", 100, &buf,
			     &got),
	    -ENOENT);
	assert_null(buf);
	assert_int_equal(store_read_file(&fx->store, "f", 100, &buf, &got),
	    -EINVAL);
	assert_null(buf);
	assert_int_equal(symlink(path_of(fx->dir, "f/data", target),
			     path_of(fx->dir, "f/link", path)),
	    0);
	assert_int_equal(store_read_file(&fx->store, "f/link", 100, &buf, &got),
	    -ELOOP);
	assert_null(buf);
}

/* --- trees --- */

static void
test_remove_tree(void **state)
{
	char path[4200], target[4200];
	struct unit_fixture *fx = *state;

	/* Outside the tree removed, though inside the test's directory. */
	unit_write(fx->dir, "manifests/keep/precious", "p", 1);
	unit_write(fx->dir, "hub/t/a/b/c/file1", "1", 1);
	unit_write(fx->dir, "hub/t/a/file2", "2", 1);
	unit_write(fx->dir, "hub/t/ro", "3", 1);
	assert_int_equal(chmod(path_of(fx->dir, "hub/t/ro", path), 0444), 0);
	assert_int_equal(mkdir(path_of(fx->dir, "hub/t/empty", path), 0755), 0);
	/* Symlinks to a file and a directory outside: removed, not followed. */
	assert_int_equal(symlink(path_of(fx->dir, "manifests/keep/precious",
				     target),
			     path_of(fx->dir, "hub/t/a/lfile", path)),
	    0);
	assert_int_equal(symlink(path_of(fx->dir, "manifests/keep", target),
			     path_of(fx->dir, "hub/t/ldir", path)),
	    0);
	unit_write(fx->dir, "hub/other", "o", 1);

	assert_int_equal(store_remove_tree(&fx->store, "hub/t"), 0);
	assert_false(exists(fx->dir, "hub/t"));
	assert_true(exists(fx->dir, "hub/other"));
	assert_file_is(fx->dir, "manifests/keep/precious", "p", 1);

	/* Missing is fine; a single file is removed. */
	assert_int_equal(store_remove_tree(&fx->store, "hub/t"), 0);
	assert_int_equal(store_remove_tree(&fx->store, "hub/other"), 0);
	assert_false(exists(fx->dir, "hub/other"));
	assert_true(exists(fx->dir, "hub"));

	/* A symlink as the root of the tree: only the link goes. */
	assert_int_equal(symlink(path_of(fx->dir, "manifests/keep", target),
			     path_of(fx->dir, "hub/lroot", path)),
	    0);
	assert_int_equal(store_remove_tree(&fx->store, "hub/lroot"), 0);
	assert_false(exists(fx->dir, "hub/lroot"));
	assert_file_is(fx->dir, "manifests/keep/precious", "p", 1);
}

static void
test_sync_tree_and_mkdirs(void **state)
{
	struct unit_fixture *fx = *state;
	struct stat st;
	char path[4200];

	assert_int_equal(store_mkdirs(&fx->store, "hub/x/y/z"), 0);
	assert_int_equal(stat(path_of(fx->dir, "hub/x/y/z", path), &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	/* Again: existing directories are fine. */
	assert_int_equal(store_mkdirs(&fx->store, "hub/x/y/z"), 0);
	unit_write(fx->dir, "hub/x/y/f", "f", 1);
	assert_int_equal(store_sync_tree(&fx->store, "hub"), 0);
	assert_int_equal(store_sync_tree(&fx->store, "missing"), 0);
	assert_int_equal(store_fsync_dir(&fx->store, ""), 0);
	assert_int_equal(store_fsync_dir(&fx->store, "hub/x"), 0);
	assert_int_equal(store_fsync_dir(&fx->store, "nope"), -ENOENT);
	/* Under a file. */
	assert_int_equal(store_mkdirs(&fx->store, "hub/x/y/f/g"), -ENOTDIR);
	/* A new first component with more below it (it once lost its
	 * first byte after the root's fsync: mkdir of ""). */
	assert_int_equal(store_mkdirs(&fx->store, "nodes/node-a"), 0);
	assert_int_equal(stat(path_of(fx->dir, "nodes/node-a", path), &st), 0);
	assert_true(S_ISDIR(st.st_mode));
}

/* --- store_blob_each --- */

struct collect {
	char seen[8][DIGEST_HEX_MAX];
	int n, stop_after, stop_rc;
};

static int
collect_fn(const char *sha256, const char *rel, void *arg)
{
	struct collect *c = arg;

	assert_true(c->n < 8);
	snprintf(c->seen[c->n], DIGEST_HEX_MAX, "%s", sha256);
	c->n++;
	return c->n == c->stop_after ? c->stop_rc : 0;
}

static int
find_seen(const struct collect *c, const char *sha)
{
	int i, hits = 0;

	for (i = 0; i < c->n; i++)
		hits += strcmp(c->seen[i], sha) == 0;
	return hits;
}

static void
test_blob_each(void **state)
{
	char sha[4][DIGEST_HEX_MAX];
	struct collect c;
	struct unit_fixture *fx = *state;
	unsigned char *buf;
	int i;

	memset(&c, 0, sizeof(c));
	assert_int_equal(store_blob_each(&fx->store, collect_fn, &c), 0);
	assert_int_equal(c.n, 0);

	for (i = 0; i < 4; i++) {
		buf = unit_pattern(100 + (size_t)i, (uint32_t)i);
		put_blob(fx, buf, 100 + (size_t)i, sha[i]);
		free(buf);
	}
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_blob_each(&fx->store, collect_fn, &c), 0);
	assert_int_equal(c.n, 4);
	for (i = 0; i < 4; i++)
		assert_int_equal(find_seen(&c, sha[i]), 1);

	/* A non-zero return stops the walk and is returned. */
	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	c.stop_rc = 42;
	assert_int_equal(store_blob_each(&fx->store, collect_fn, &c), 42);
	assert_int_equal(c.n, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_create),
		cmocka_unit_test(test_open_missing),
		cmocka_unit_test(test_blob_path),
		cmocka_unit_test_setup_teardown(test_tmp_create,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_ingest_known,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_ingest_large,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_ingest_offset_and_pipe,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    test_ingest_error_leaves_nothing, unit_fixture_setup,
		    unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_publish_existing,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_publish_fd_two_holders,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_publish_fd_size,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(
		    test_publish_replaces_wrong_size, unit_fixture_setup,
		    unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_blob_unlink,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_blob_verify,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_write_atomic,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_write_new,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_read_file,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_remove_tree,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_sync_tree_and_mkdirs,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_blob_each,
		    unit_fixture_setup, unit_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
