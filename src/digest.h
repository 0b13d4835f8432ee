/*
 * digest: streaming SHA-256 and git blob SHA-1, as lowercase hex.
 *
 * SHA-256 names every blob in the store.  The git blob SHA-1 ("blob <size>\0"
 * followed by the content) is what the Hugging Face Hub uses as the etag of
 * files kept in git rather than LFS, so the hub view needs it too.  Both come
 * from OpenSSL's EVP interface; the message digests are fetched once per
 * process and cached by OpenSSL.
 */
#ifndef MC_DIGEST_H
#define MC_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define DIGEST_SHA256_HEX 64
#define DIGEST_SHA1_HEX 40
#define DIGEST_HEX_MAX 65 /* a buffer for either, NUL included */

enum digest_algo { DIGEST_SHA256, DIGEST_GITSHA1 };

struct digest {
	void *ctx; /* EVP_MD_CTX, owned */
	enum digest_algo algo;
};

/*
 * Starts a digest.  For DIGEST_GITSHA1, size is the content's length, which
 * git hashes first; it is ignored for SHA-256.  Returns 0 or -ENOMEM/-EIO.
 * Call digest_release() afterwards in every case.
 */
int digest_init(struct digest *d, enum digest_algo algo, uint64_t size);
int digest_update(struct digest *d, const void *buf, size_t len);
/* Writes the hex digest and its NUL into hex (DIGEST_HEX_MAX bytes). */
int digest_final(struct digest *d, char *hex);
void digest_release(struct digest *d);

/* One-shot forms. */
int digest_buf(enum digest_algo algo, const void *buf, size_t len, char *hex);
/* Hashes the whole of fd from offset 0 with pread (the offset is untouched). */
int digest_fd(int fd, enum digest_algo algo, char *hex);

/* Hex length of an algorithm's digest (64 or 40). */
size_t digest_hex_len(enum digest_algo algo);

#endif
