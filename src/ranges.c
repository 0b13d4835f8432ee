/*
 * ranges: see ranges.h.  The state is parsed strictly: it is written only
 * by ranges_format(), so anything else in the file is damage, and a state
 * that is partly damage is trusted for none of its ranges.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ranges.h"
#include "ref.h"

/* A state file, at most: RANGES_MAX, with room for a hand-made one. */
#define RANGES_FILE_MAX (1 << 20)

size_t
ranges_count(uint64_t size, uint64_t chunk)
{
	return size == 0 ? 1 : (size_t)((size + chunk - 1) / chunk);
}

int
ranges_paths(const char *sha256, char *partial, char *state, size_t len)
{
	int n;

	if (!ref_is_hex(sha256, DIGEST_SHA256_HEX))
		return -EINVAL;
	if (partial != NULL) {
		n = snprintf(partial, len, "tmp/partial.%s", sha256);
		if (n < 0 || (size_t)n >= len)
			return -ENAMETOOLONG;
	}
	if (state != NULL) {
		n = snprintf(state, len, "tmp/partial.%s.ranges", sha256);
		if (n < 0 || (size_t)n >= len)
			return -ENAMETOOLONG;
	}
	return 0;
}

size_t
ranges_format(char *buf, uint64_t size, uint64_t chunk, size_t n,
    int (*done)(const void *arg, size_t i), const void *arg)
{
	size_t i, o;

	o = (size_t)snprintf(buf, RANGES_MAX, "%" PRIu64 " %" PRIu64 "\n", size,
	    chunk);
	for (i = 0; i < n && o < RANGES_MAX - 24; i++)
		if (done(arg, i))
			o += (size_t)snprintf(buf + o, RANGES_MAX - o, "%zu\n",
			    i);
	return o;
}

/* One decimal number ending at a '\n' within end: 0, or -EBADMSG. */
static int
number(const char **s, const char *end, uint64_t *v, char sep)
{
	const char *p = *s;
	uint64_t x = 0;

	if (p >= end || *p < '0' || *p > '9')
		return -EBADMSG;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (x > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -EBADMSG;
		x = x * 10 + (uint64_t)(*p - '0');
	}
	if (p >= end || *p != sep)
		return -EBADMSG;
	*s = p + 1;
	*v = x;
	return 0;
}

int
ranges_parse(const char *buf, size_t len, struct ranges *r)
{
	const char *s = buf, *end = buf + len;
	size_t cap = 0, *grown;
	uint64_t i;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	if (number(&s, end, &r->size, ' ') < 0 ||
	    number(&s, end, &r->chunk, '\n') < 0 || r->chunk == 0) {
		rc = -EBADMSG;
		goto out;
	}
	while (s < end) {
		if (number(&s, end, &i, '\n') < 0 ||
		    i >= ranges_count(r->size, r->chunk)) {
			rc = -EBADMSG;
			goto out;
		}
		if (r->ndone == cap) {
			cap = cap ? cap * 2 : 64;
			if ((grown = realloc(r->done, cap * sizeof(*grown))) ==
			    NULL) {
				rc = -ENOMEM;
				goto out;
			}
			r->done = grown;
		}
		r->done[r->ndone++] = (size_t)i;
	}
out:
	if (rc < 0)
		ranges_release(r);
	return rc;
}

int
ranges_load(struct store *store, const char *rel, struct ranges *r)
{
	char *buf;
	size_t len;
	int rc;

	memset(r, 0, sizeof(*r));
	rc = store_read_file(store, rel, RANGES_FILE_MAX, &buf, &len);
	if (rc < 0)
		return rc == -EFBIG || rc == -EINVAL ? -EBADMSG : rc;
	rc = ranges_parse(buf, len, r);
	free(buf);
	return rc;
}

void
ranges_release(struct ranges *r)
{
	if (r == NULL)
		return;
	free(r->done);
	memset(r, 0, sizeof(*r));
}

int
ranges_save(struct store *store, const char *rel, int fd, const char *buf,
    size_t len, int *synced)
{
	if (synced != NULL)
		*synced = 0;
	if (fdatasync(fd) == -1)
		return -errno;
	if (synced != NULL)
		*synced = 1;
	return store_write_atomic(store, rel, buf, len, 0600);
}
