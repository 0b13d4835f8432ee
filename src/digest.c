/*
 * digest: SHA-256 and git blob SHA-1 over OpenSSL EVP.
 *
 * The contexts are plain EVP_MD_CTX; nothing is shared between digests, so
 * each thread may run its own.  Errors from OpenSSL are folded into -EIO
 * here, at the boundary, and never logged.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "digest.h"

#define DIGEST_CHUNK (1024 * 1024)

static void
to_hex(const unsigned char *raw, size_t len, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		hex[2 * i] = digits[raw[i] >> 4];
		hex[2 * i + 1] = digits[raw[i] & 0xf];
	}
	hex[2 * len] = '\0';
}

size_t
digest_hex_len(enum digest_algo algo)
{
	return algo == DIGEST_SHA256 ? DIGEST_SHA256_HEX : DIGEST_SHA1_HEX;
}

int
digest_init(struct digest *d, enum digest_algo algo, uint64_t size)
{
	const EVP_MD *md = algo == DIGEST_SHA256 ? EVP_sha256() : EVP_sha1();
	char header[64];
	int n;

	d->algo = algo;
	d->ctx = EVP_MD_CTX_new();
	if (d->ctx == NULL)
		return -ENOMEM;
	if (EVP_DigestInit_ex(d->ctx, md, NULL) != 1)
		return -EIO;
	if (algo != DIGEST_GITSHA1)
		return 0;
	/* git hashes "blob <size>" and its NUL before the content. */
	n = snprintf(header, sizeof(header), "blob %" PRIu64, size);
	return digest_update(d, header, (size_t)n + 1);
}

int
digest_update(struct digest *d, const void *buf, size_t len)
{
	if (len == 0)
		return 0;
	return EVP_DigestUpdate(d->ctx, buf, len) == 1 ? 0 : -EIO;
}

int
digest_final(struct digest *d, char *hex)
{
	unsigned char raw[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (EVP_DigestFinal_ex(d->ctx, raw, &len) != 1)
		return -EIO;
	to_hex(raw, len, hex);
	return 0;
}

void
digest_release(struct digest *d)
{
	EVP_MD_CTX_free(d->ctx);
	d->ctx = NULL;
}

int
digest_buf(enum digest_algo algo, const void *buf, size_t len, char *hex)
{
	struct digest d;
	int rc;

	rc = digest_init(&d, algo, len);
	if (rc == 0)
		rc = digest_update(&d, buf, len);
	if (rc == 0)
		rc = digest_final(&d, hex);
	digest_release(&d);
	return rc;
}

int
digest_fd(int fd, enum digest_algo algo, char *hex)
{
	struct digest d;
	struct stat st;
	unsigned char *buf = NULL;
	off_t off = 0;
	ssize_t n;
	int rc;

	if (fstat(fd, &st) == -1)
		return -errno;
	rc = digest_init(&d, algo, (uint64_t)st.st_size);
	if (rc < 0)
		goto out;
	buf = malloc(DIGEST_CHUNK);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		n = pread(fd, buf, DIGEST_CHUNK, off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		rc = digest_update(&d, buf, (size_t)n);
		if (rc < 0)
			goto out;
		off += n;
	}
	/* A file that changed size under us would hash a wrong git header. */
	if (algo == DIGEST_GITSHA1 && off != st.st_size) {
		rc = -EAGAIN;
		goto out;
	}
	rc = digest_final(&d, hex);
out:
	free(buf);
	digest_release(&d);
	return rc;
}
