/*
 * ratelimit: see ratelimit.h.  The file is small and read on every start
 * of a file's download, so it is read whole with a tight limit.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "ratelimit.h"

#define RATELIMIT_FILE_MAX 64

int
ratelimit_path(const char *host, char *rel, size_t len)
{
	size_t i, o;
	int n;

	if (*host == '\0')
		return -EINVAL;
	n = snprintf(rel, len, "tmp/ratelimit.%s", host);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	for (i = 0, o = (size_t)n - strlen(host); host[i] != '\0'; i++, o++)
		if (!isalnum((unsigned char)host[i]) && host[i] != '.' &&
		    host[i] != '-')
			rel[o] = '_';
	return 0;
}

int
ratelimit_note(struct store *store, const char *host, int64_t ms)
{
	char rel[STORE_PATH_MAX], buf[32];
	int n, rc;

	if ((rc = ratelimit_path(host, rel, sizeof(rel))) < 0)
		return rc;
	n = snprintf(buf, sizeof(buf), "%lld\n",
	    (long long)(store_now_ms(store) + ms));
	return store_write_atomic(store, rel, buf, (size_t)n, 0644);
}

int
ratelimit_left(struct store *store, const char *host, int64_t *left_ms)
{
	char rel[STORE_PATH_MAX], *buf = NULL, *end;
	long long until;
	size_t len;
	int rc;

	*left_ms = 0;
	if ((rc = ratelimit_path(host, rel, sizeof(rel))) < 0)
		return rc;
	if ((rc = store_read_file(store, rel, RATELIMIT_FILE_MAX, &buf, &len)) <
	    0)
		return rc == -EFBIG || rc == -EINVAL ? -EBADMSG : rc;
	/* Digits and a newline, as ratelimit_note() writes: nothing else. */
	errno = 0;
	end = buf;
	until = isdigit((unsigned char)buf[0]) ? strtoll(buf, &end, 10) : -1;
	if (until < 0 || errno != 0 ||
	    (size_t)(end - buf) + (*end == '\n') != len) {
		rc = -EBADMSG;
		goto out;
	}
	*left_ms = (int64_t)until - store_now_ms(store);
	if (*left_ms < 0)
		*left_ms = 0;
	if (*left_ms > FETCH_WAIT_MAX_S * 1000)
		*left_ms = FETCH_WAIT_MAX_S * 1000;
out:
	free(buf);
	return rc;
}
