/*
 * origin_https: see origin_https.h.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "origin_https.h"

#define HTTPS_TRIES 5

static int
hex_value(int c)
{
	return c >= '0' && c <= '9' ? c - '0'
	    : c >= 'a' && c <= 'f'  ? c - 'a' + 10
	    : c >= 'A' && c <= 'F'  ? c - 'A' + 10
				    : -1;
}

/*
 * The file name of a URL: its path's last component, percent-decoded,
 * checked as a one-component repo path.  0 or -EINVAL with *why set.
 */
static int
url_file_name(const char *url, char *buf, size_t len, const char **why)
{
	const char *s = strstr(url, "://"), *end, *base;
	size_t o = 0;
	int hi, lo;

	s = s != NULL ? s + 3 : url;
	s += strcspn(s, "/?");
	end = s + strcspn(s, "?");
	for (base = end; base > s && base[-1] != '/'; base--)
		;
	for (; base < end; base++) {
		char c = *base;

		if (c == '%' && end - base >= 3 &&
		    (hi = hex_value(base[1])) >= 0 &&
		    (lo = hex_value(base[2])) >= 0) {
			c = (char)(hi * 16 + lo);
			base += 2;
		}
		if (c == '/' || c == '\0' || o + 1 >= len) {
			*why = "the URL's file name is not a valid file name";
			return -EINVAL;
		}
		buf[o++] = c;
	}
	buf[o] = '\0';
	return ref_check_path(buf, o, why);
}

/* How a failed HEAD ends the pull, with a sentence. */
static enum pull_error
head_error(const struct fetch_xfer *x, const char *url, char *err, size_t len)
{
	if (x->result != FETCH_OK) {
		snprintf(err, len, "cannot reach '%s': %s", url, x->curl_error);
		return PULL_NETWORK;
	}
	snprintf(err, len, "'%s' answered %ld%s%.200s", url, x->status,
	    x->error_message[0] != '\0' ? ": " : "", x->error_message);
	switch (x->status) {
	case 401:
		return PULL_UNAUTHORIZED;
	case 403:
		return PULL_FORBIDDEN;
	default:
		return x->status == 408 || x->status == 429 || x->status >= 500
		    ? PULL_NETWORK
		    : PULL_NOT_FOUND;
	}
}

/* One URL into f: its name, and its size from a HEAD. */
static enum pull_error
describe(struct fetch *fetch, const struct ref *ref, struct pull_file *f,
    char *err, size_t len)
{
	char name[REF_NAME_MAX + 1];
	struct fetch_xfer *x;
	enum pull_error e = PULL_OK;
	const char *why;

	if (url_file_name(ref->url, name, sizeof(name), &why) < 0) {
		snprintf(err, len, "'%s': %s", ref->url, why);
		return PULL_NOT_FOUND;
	}
	if ((x = fetch_call(fetch, ref->url, NULL, 1, HTTPS_TRIES)) == NULL)
		return PULL_INTERNAL;
	if (x->result != FETCH_OK || x->status < 200 || x->status >= 300)
		e = head_error(x, ref->url, err, len);
	else if (x->content_length < 0) {
		snprintf(err, len, "'%s' does not say how large it is",
		    ref->url);
		e = PULL_NOT_FOUND;
	}
	if (e == PULL_OK) {
		f->size = (uint64_t)x->content_length;
		snprintf(f->sha256, sizeof(f->sha256), "%s", ref->sha256);
		if ((f->path = strdup(name)) == NULL ||
		    (f->url = strdup(ref->url)) == NULL)
			e = PULL_INTERNAL;
	}
	fetch_xfer_free(x);
	return e;
}

enum pull_error
https_list(struct fetch *fetch, const struct ref *refs, size_t n,
    struct pull_file **files, char *err, size_t errlen)
{
	struct pull_file *f = calloc(n ? n : 1, sizeof(*f));
	enum pull_error e = PULL_OK;
	size_t i, k;

	if (f == NULL)
		return PULL_INTERNAL;
	for (i = 0; i < n && e == PULL_OK; i++) {
		e = describe(fetch, &refs[i], &f[i], err, errlen);
		for (k = 0; k < i && e == PULL_OK; k++)
			if (strcmp(f[k].path, f[i].path) == 0) {
				snprintf(err, errlen,
				    "two URLs give the same file name '%s'",
				    f[i].path);
				e = PULL_NOT_FOUND;
			}
	}
	if (e != PULL_OK) {
		if (e == PULL_INTERNAL)
			snprintf(err, errlen, "out of memory");
		pull_files_free(f, n);
		return e;
	}
	*files = f;
	return PULL_OK;
}

int
https_default_name(const struct ref *ref, char *buf, size_t len)
{
	char name[REF_NAME_MAX + 1];
	const char *host = ref->url + strlen("https://"), *why;
	size_t hlen = strcspn(host, ":/?");

	if (url_file_name(ref->url, name, sizeof(name), &why) < 0 ||
	    (size_t)snprintf(buf, len, "%.*s/%s", (int)hlen, host, name) >= len)
		return -EINVAL;
	return ref_check_repo(buf, &why);
}
