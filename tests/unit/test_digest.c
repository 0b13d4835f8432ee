/*
 * test_digest: unit tests for src/digest.c.
 *
 * The SHA-256 answers are the FIPS 180-2 examples and well-known strings;
 * the git blob SHA-1 answers are what "git hash-object" prints.  Large
 * inputs are checked against a reference computed here, straight through
 * OpenSSL's one-shot EVP_Digest(), so that the streaming code, the git
 * header and the pread loop of digest_fd() are each tested against
 * something they do not share.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "unit.h"

#include "digest.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct known {
	enum digest_algo algo;
	const char *text;
	const char *hex;
};

static const struct known answers[] = {
	{ DIGEST_SHA256, "",
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"
	    "5" },
	{ DIGEST_SHA256, "abc",
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a"
	    "d" },
	{ DIGEST_SHA256, "Hello, World!",
	    "dffd6021bb2bd5b0af676290809ec3a53191dd81c7f70a4b28688a362182986"
	    "f" },
	{ DIGEST_SHA256,
	    "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c"
	    "1" },
	{ DIGEST_GITSHA1, "Hello, World!",
	    "b45ef6fec89518d314f546fd6c3025367b721684" },
	{ DIGEST_GITSHA1, "", "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391" },
	{ DIGEST_GITSHA1, "hello\n",
	    "ce013625030ba8dba906f756967f9e9ca394464a" },
};

/* The hex digest of buf under md, straight from OpenSSL. */
static void
evp_hex(const EVP_MD *md, const void *buf, size_t len, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char raw[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	assert_int_equal(EVP_Digest(buf, len, raw, &n, md, NULL), 1);
	for (i = 0; i < n; i++) {
		hex[2 * i] = digits[raw[i] >> 4];
		hex[2 * i + 1] = digits[raw[i] & 0xf];
	}
	hex[2 * n] = '\0';
}

/* The reference: SHA-256, or SHA-1 over "blob <len>\0" and the bytes. */
static void
reference(enum digest_algo algo, const unsigned char *buf, size_t len,
    char *hex)
{
	unsigned char *all;
	char head[64];
	int hlen = 0;

	if (algo == DIGEST_SHA256) {
		evp_hex(EVP_sha256(), buf, len, hex);
		return;
	}
	hlen = snprintf(head, sizeof(head), "blob %zu", len) + 1;
	all = malloc((size_t)hlen + len);
	assert_non_null(all);
	memcpy(all, head, (size_t)hlen);
	memcpy(all + hlen, buf, len);
	evp_hex(EVP_sha1(), all, (size_t)hlen + len, hex);
	free(all);
}

/* A file under a new temporary directory holding buf; returns its fd. */
static int
temp_file(char **dir, const void *buf, size_t len)
{
	char path[4200];
	int fd;

	*dir = unit_tmpdir();
	unit_write(*dir, "data", buf, len);
	snprintf(path, sizeof(path), "%s/data", *dir);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	return fd;
}

static void
test_hex_len(void **state)
{
	assert_int_equal(digest_hex_len(DIGEST_SHA256), 64);
	assert_int_equal(digest_hex_len(DIGEST_GITSHA1), 40);
	assert_int_equal(DIGEST_SHA256_HEX, 64);
	assert_int_equal(DIGEST_SHA1_HEX, 40);
	assert_true(DIGEST_HEX_MAX > DIGEST_SHA256_HEX);
}

static void
test_known_answers_buf(void **state)
{
	char hex[DIGEST_HEX_MAX];
	size_t i;

	for (i = 0; i < NELEM(answers); i++) {
		const struct known *k = &answers[i];

		memset(hex, 'X', sizeof(hex));
		assert_int_equal(digest_buf(k->algo, k->text, strlen(k->text),
				     hex),
		    0);
		assert_string_equal(hex, k->hex);
		assert_int_equal(strlen(hex), digest_hex_len(k->algo));
	}
}

/* The same answers through init/update/final, one byte at a time. */
static void
test_known_answers_stream(void **state)
{
	char hex[DIGEST_HEX_MAX];
	struct digest d;
	size_t i, j, len;

	for (i = 0; i < NELEM(answers); i++) {
		const struct known *k = &answers[i];

		len = strlen(k->text);
		assert_int_equal(digest_init(&d, k->algo, len), 0);
		assert_int_equal(d.algo, k->algo);
		for (j = 0; j < len; j++) {
			assert_int_equal(digest_update(&d, k->text + j, 1), 0);
			assert_int_equal(digest_update(&d, k->text, 0), 0);
		}
		assert_int_equal(digest_final(&d, hex), 0);
		digest_release(&d);
		assert_null(d.ctx);
		assert_string_equal(hex, k->hex);
	}
}

/* FIPS 180-2: a million 'a', fed in uneven chunks. */
static void
test_million_a(void **state)
{
	static const char want[] =
	    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
	char hex[DIGEST_HEX_MAX], *buf;
	struct digest d;
	size_t done = 0, n, step = 1;

	buf = malloc(1000000);
	assert_non_null(buf);
	memset(buf, 'a', 1000000);
	assert_int_equal(digest_init(&d, DIGEST_SHA256, 0), 0);
	while (done < 1000000) {
		n = step < 1000000 - done ? step : 1000000 - done;
		assert_int_equal(digest_update(&d, buf + done, n), 0);
		done += n;
		step = step * 3 % 65537 + 1;
	}
	assert_int_equal(digest_final(&d, hex), 0);
	digest_release(&d);
	assert_string_equal(hex, want);
	assert_int_equal(digest_buf(DIGEST_SHA256, buf, 1000000, hex), 0);
	assert_string_equal(hex, want);
	free(buf);
}

/* Many small chunks of every size from 0 to 257 equal the one-shot form. */
static void
test_stream_equals_oneshot(void **state)
{
	static const enum digest_algo algos[] = { DIGEST_SHA256,
		DIGEST_GITSHA1 };
	const size_t len = 300000;
	char one[DIGEST_HEX_MAX], many[DIGEST_HEX_MAX], ref[DIGEST_HEX_MAX];
	unsigned char *buf = unit_pattern(len, 0x12345678);
	struct digest d;
	size_t a, done, n, step;

	for (a = 0; a < NELEM(algos); a++) {
		assert_int_equal(digest_buf(algos[a], buf, len, one), 0);
		reference(algos[a], buf, len, ref);
		assert_string_equal(one, ref);

		assert_int_equal(digest_init(&d, algos[a], len), 0);
		for (done = 0, step = 0; done < len; done += n) {
			n = step % 258;
			if (n > len - done)
				n = len - done;
			assert_int_equal(digest_update(&d, buf + done, n), 0);
			step++;
		}
		assert_int_equal(digest_final(&d, many), 0);
		digest_release(&d);
		assert_string_equal(many, one);
	}
	free(buf);
}

/* The git header carries the size given to digest_init, not the bytes seen. */
static void
test_gitsha1_header_size(void **state)
{
	char hex[DIGEST_HEX_MAX], plain[DIGEST_HEX_MAX];
	struct digest d;

	assert_int_equal(digest_init(&d, DIGEST_GITSHA1, 6), 0);
	assert_int_equal(digest_update(&d, "hello\n", 6), 0);
	assert_int_equal(digest_final(&d, hex), 0);
	digest_release(&d);
	assert_string_equal(hex, "ce013625030ba8dba906f756967f9e9ca394464a");

	/* A different declared size gives a different digest. */
	assert_int_equal(digest_init(&d, DIGEST_GITSHA1, 7), 0);
	assert_int_equal(digest_update(&d, "hello\n", 6), 0);
	assert_int_equal(digest_final(&d, hex), 0);
	digest_release(&d);
	assert_string_not_equal(hex,
	    "ce013625030ba8dba906f756967f9e9ca394464a");

	/* And a git blob SHA-1 is not the plain SHA-1 of the content. */
	evp_hex(EVP_sha1(), "hello\n", 6, plain);
	assert_string_equal(plain, "f572d396fae9206628714fb2ce00f72e94f2258f");
	assert_int_equal(digest_buf(DIGEST_GITSHA1, "hello\n", 6, hex), 0);
	assert_string_not_equal(hex, plain);
}

/* Sizes over 4 GiB are written in full in the header. */
static void
test_gitsha1_large_size_header(void **state)
{
	char hex[DIGEST_HEX_MAX], want[DIGEST_HEX_MAX];
	const char head[] = "blob 5000000000";
	struct digest d;

	assert_int_equal(digest_init(&d, DIGEST_GITSHA1, 5000000000ULL), 0);
	assert_int_equal(digest_final(&d, hex), 0);
	digest_release(&d);
	/* sizeof(head) counts the NUL that git hashes after the size. */
	evp_hex(EVP_sha1(), head, sizeof(head), want);
	assert_string_equal(hex, want);
}

/* A file of several MiB, not a multiple of the 1 MiB read size. */
static void
test_fd_large(void **state)
{
	static const enum digest_algo algos[] = { DIGEST_SHA256,
		DIGEST_GITSHA1 };
	const size_t len = 5 * 1024 * 1024 + 12345;
	char from_fd[DIGEST_HEX_MAX], from_buf[DIGEST_HEX_MAX];
	char ref[DIGEST_HEX_MAX];
	unsigned char *buf = unit_pattern(len, 0x12345678);
	char *dir;
	size_t a;
	int fd;

	fd = temp_file(&dir, buf, len);
	for (a = 0; a < NELEM(algos); a++) {
		/* The offset is left where the caller put it. */
		assert_int_equal(lseek(fd, 777, SEEK_SET), 777);
		assert_int_equal(digest_fd(fd, algos[a], from_fd), 0);
		assert_int_equal(lseek(fd, 0, SEEK_CUR), 777);
		assert_int_equal(digest_buf(algos[a], buf, len, from_buf), 0);
		reference(algos[a], buf, len, ref);
		assert_string_equal(from_fd, from_buf);
		assert_string_equal(from_fd, ref);
	}
	/* From the end too: the whole file is hashed, from offset 0. */
	assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)len);
	assert_int_equal(digest_fd(fd, DIGEST_SHA256, from_fd), 0);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)len);
	reference(DIGEST_SHA256, buf, len, ref);
	assert_string_equal(from_fd, ref);
	close(fd);
	free(buf);
	unit_rmdir(dir);
}

static void
test_fd_known_and_empty(void **state)
{
	char hex[DIGEST_HEX_MAX], *dir;
	int fd;

	fd = temp_file(&dir, "Hello, World!", 13);
	assert_int_equal(digest_fd(fd, DIGEST_SHA256, hex), 0);
	assert_string_equal(hex,
	    "dffd6021bb2bd5b0af676290809ec3a53191dd81c7f70a4b28688a362182986f");
	assert_int_equal(digest_fd(fd, DIGEST_GITSHA1, hex), 0);
	assert_string_equal(hex, "b45ef6fec89518d314f546fd6c3025367b721684");
	close(fd);
	unit_rmdir(dir);

	fd = temp_file(&dir, "", 0);
	assert_int_equal(digest_fd(fd, DIGEST_SHA256, hex), 0);
	assert_string_equal(hex,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_int_equal(digest_fd(fd, DIGEST_GITSHA1, hex), 0);
	assert_string_equal(hex, "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
	close(fd);
	unit_rmdir(dir);
}

static void
test_fd_errors(void **state)
{
	char hex[DIGEST_HEX_MAX], *dir;
	int fd;

	assert_int_equal(digest_fd(-1, DIGEST_SHA256, hex), -EBADF);

	/* A write-only descriptor cannot be read. */
	dir = unit_tmpdir();
	unit_write(dir, "w", "abc", 3);
	{
		char path[4200];

		snprintf(path, sizeof(path), "%s/w", dir);
		fd = open(path, O_WRONLY);
		assert_true(fd >= 0);
	}
	assert_int_equal(digest_fd(fd, DIGEST_SHA256, hex), -EBADF);
	close(fd);
	unit_rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hex_len),
		cmocka_unit_test(test_known_answers_buf),
		cmocka_unit_test(test_known_answers_stream),
		cmocka_unit_test(test_million_a),
		cmocka_unit_test(test_stream_equals_oneshot),
		cmocka_unit_test(test_gitsha1_header_size),
		cmocka_unit_test(test_gitsha1_large_size_header),
		cmocka_unit_test(test_fd_large),
		cmocka_unit_test(test_fd_known_and_empty),
		cmocka_unit_test(test_fd_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
