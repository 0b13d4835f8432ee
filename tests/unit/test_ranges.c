/*
 * test_ranges: unit tests for src/ranges.c.
 *
 * The range state is a hint that a resume trusts for bytes: the tests
 * check that what is saved is read back as it was, that anything else in
 * the file is refused whole (and left where it is), and that a state is
 * never saved for data that did not reach the disk.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "unit.h"
#include "unit_store.h"

#include "ranges.h"
#include "store.h"

#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define STATE "tmp/partial." SHA ".ranges"

static int
flag_done(const void *arg, size_t i)
{
	return ((const unsigned char *)arg)[i];
}

static void
test_count_and_paths(void **state)
{
	char part[STORE_PATH_MAX], st[STORE_PATH_MAX];

	(void)state;
	assert_int_equal(ranges_count(0, 4), 1);
	assert_int_equal(ranges_count(4, 4), 1);
	assert_int_equal(ranges_count(5, 4), 2);
	assert_int_equal(ranges_count(1ULL << 40, 1ULL << 25), 1 << 15);
	assert_int_equal(ranges_paths(SHA, part, st, sizeof(part)), 0);
	assert_string_equal(part, "tmp/partial." SHA);
	assert_string_equal(st, STATE);
	assert_int_equal(ranges_paths(SHA, NULL, st, sizeof(st)), 0);
	assert_string_equal(st, STATE);
	/* Only a SHA-256 names a shared partial: never a path. */
	assert_int_equal(ranges_paths("../../etc", part, st, sizeof(part)),
	    -EINVAL);
	assert_int_equal(ranges_paths(SHA, part, st, 40), -ENAMETOOLONG);
}

/* Formatted, parsed: the same size, range size and finished ranges. */
static void
test_round_trip(void **state)
{
	unsigned char done[11] = { 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1 };
	char *buf = malloc(RANGES_MAX);
	struct ranges r;
	size_t len;

	(void)state;
	assert_non_null(buf);
	len = ranges_format(buf, 40 * 1024 + 3, 4096, 11, flag_done, done);
	assert_int_equal(len, strlen("40963 4096\n0\n3\n10\n"));
	assert_memory_equal(buf, "40963 4096\n0\n3\n10\n", len);
	assert_int_equal(ranges_parse(buf, len, &r), 0);
	assert_int_equal(r.size, 40 * 1024 + 3);
	assert_int_equal(r.chunk, 4096);
	assert_int_equal(r.ndone, 3);
	assert_int_equal(r.done[0], 0);
	assert_int_equal(r.done[1], 3);
	assert_int_equal(r.done[2], 10);
	ranges_release(&r);
	assert_null(r.done);
	ranges_release(NULL);
	/* Nothing finished yet: the header alone. */
	memset(done, 0, sizeof(done));
	len = ranges_format(buf, 40 * 1024 + 3, 4096, 11, flag_done, done);
	assert_int_equal(ranges_parse(buf, len, &r), 0);
	assert_int_equal(r.ndone, 0);
	ranges_release(&r);
	free(buf);
}

/* More ranges than fit: the state is cut at a line, and still parses. */
static void
test_format_bounded(void **state)
{
	size_t n = 100000, len, k;
	unsigned char *done = malloc(n);
	char *buf = malloc(RANGES_MAX);
	struct ranges r;

	(void)state;
	assert_non_null(done);
	assert_non_null(buf);
	memset(done, 1, n);
	len = ranges_format(buf, (uint64_t)n * 16, 16, n, flag_done, done);
	assert_true(len <= RANGES_MAX);
	assert_int_equal(ranges_parse(buf, len, &r), 0);
	assert_true(r.ndone > 0 && r.ndone < n);
	for (k = 0; k < r.ndone; k++)
		assert_int_equal(r.done[k], k);
	ranges_release(&r);
	free(buf);
	free(done);
}

/* Anything ranges_format() would not write is refused whole. */
static void
test_parse_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"\n",
		"40963\n",
		"40963 4096", /* no newline */
		"40963 0\n",  /* a range size of 0 */
		"-1 4096\n",
		"40963  4096\n",
		" 40963 4096\n",
		"40963 4096\n0\n3",   /* the last line cut */
		"40963 4096\n0\n\n",  /* an empty line */
		"40963 4096\n0\nx\n", /* not a number */
		"40963 4096\n0\n-3\n",
		"40963 4096\n0\n 3\n",
		"40963 4096\n11\n", /* past the file's end */
		"40963 4096\n99999999999999999999999\n",
		"99999999999999999999999 4096\n",
		"40963 4096 7\n0\n",
	};
	struct ranges r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&r, 0xff, sizeof(r));
		assert_int_equal(ranges_parse(bad[i], strlen(bad[i]), &r),
		    -EBADMSG);
		assert_null(r.done);
		assert_int_equal(r.ndone, 0);
	}
	/* A NUL inside is not a newline. */
	assert_int_equal(ranges_parse("40963 4096\n0\0\n", 14, &r), -EBADMSG);
}

/* A tmp file with some bytes in it, open for ranges_save(). */
static int
data_file(struct unit_fixture *fx, char *rel)
{
	int fd = store_tmp_create(&fx->store, ".part", rel, STORE_PATH_MAX);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello", 5), 5);
	return fd;
}

static void
test_save_load(void **state)
{
	struct unit_fixture *fx = *state;
	unsigned char done[3] = { 1, 0, 1 };
	char rel[STORE_PATH_MAX], buf[RANGES_MAX];
	struct ranges r;
	int fd, synced = -1;
	size_t len;

	assert_int_equal(ranges_load(&fx->store, STATE, &r), -ENOENT);
	assert_null(r.done);
	fd = data_file(fx, rel);
	len = ranges_format(buf, 9, 4, 3, flag_done, done);
	assert_int_equal(ranges_save(&fx->store, STATE, fd, buf, len, &synced),
	    0);
	assert_int_equal(synced, 1);
	assert_int_equal(ranges_load(&fx->store, STATE, &r), 0);
	assert_int_equal(r.size, 9);
	assert_int_equal(r.chunk, 4);
	assert_int_equal(r.ndone, 2);
	assert_int_equal(r.done[0], 0);
	assert_int_equal(r.done[1], 2);
	ranges_release(&r);
	close(fd);
	store_tmp_remove(&fx->store, rel);
}

/*
 * The durability order: the state is replaced only once the data it names
 * is on disk.  A descriptor whose fdatasync fails (a pipe: EINVAL) stands
 * for data that did not get there; the state saved before stays whole.
 */
static void
test_save_needs_data_on_disk(void **state)
{
	struct unit_fixture *fx = *state;
	unsigned char before[3] = { 1, 0, 0 }, after[3] = { 1, 1, 1 };
	char rel[STORE_PATH_MAX], buf[RANGES_MAX];
	struct ranges r;
	int fd, pipefd[2], synced = -1;
	size_t len;

	fd = data_file(fx, rel);
	len = ranges_format(buf, 9, 4, 3, flag_done, before);
	assert_int_equal(ranges_save(&fx->store, STATE, fd, buf, len, NULL), 0);
	assert_int_equal(pipe(pipefd), 0);
	len = ranges_format(buf, 9, 4, 3, flag_done, after);
	assert_int_equal(ranges_save(&fx->store, STATE, pipefd[1], buf, len,
			     &synced),
	    -EINVAL);
	assert_int_equal(synced, 0);
	assert_int_equal(ranges_load(&fx->store, STATE, &r), 0);
	assert_int_equal(r.ndone, 1); /* the older state, not the new one */
	assert_int_equal(r.done[0], 0);
	ranges_release(&r);
	close(pipefd[0]);
	close(pipefd[1]);
	close(fd);
	store_tmp_remove(&fx->store, rel);
}

/* A damaged state file is refused, and stays as it was for fsck. */
static void
test_load_bad_keeps_file(void **state)
{
	static const char bad[] = "40963 4096\n0\nzz\n";
	struct unit_fixture *fx = *state;
	char path[UNIT_PATH], back[64], *big;
	struct ranges r;
	struct stat st;
	FILE *f;
	size_t n;

	unit_write(fx->dir, STATE, bad, strlen(bad));
	assert_int_equal(ranges_load(&fx->store, STATE, &r), -EBADMSG);
	assert_null(r.done);
	unit_fmt(path, sizeof(path), "%s/%s", fx->dir, STATE);
	f = fopen(path, "rb");
	assert_non_null(f);
	n = fread(back, 1, sizeof(back) - 1, f);
	fclose(f);
	back[n] = '\0';
	assert_string_equal(back, bad);
	/* Larger than any state: not read. */
	big = malloc(2 << 20);
	assert_non_null(big);
	memset(big, '1', 2 << 20);
	unit_write(fx->dir, STATE, big, 2 << 20);
	free(big);
	assert_int_equal(ranges_load(&fx->store, STATE, &r), -EBADMSG);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 2 << 20);
	/* Not a regular file: not read, not removed. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(ranges_load(&fx->store, STATE, &r), -EBADMSG);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_count_and_paths),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_format_bounded),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test_setup_teardown(test_save_load,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_save_needs_data_on_disk,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_load_bad_keeps_file,
		    unit_fixture_setup, unit_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
