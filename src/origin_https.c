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
	if (x->result == FETCH_REFUSED) {
		snprintf(err, len, "'%s': %s", url, x->curl_error);
		return PULL_FORBIDDEN;
	}
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

struct https_op {
	const struct ref *refs;
	size_t n, pending;
	struct origin_desc *d;
	struct pull_file *files;
	void (*done)(void *arg);
	void *arg;
};

struct https_head {
	struct https_op *op;
	size_t i;
};

static void
op_end(struct https_op *op)
{
	struct origin_desc *d = op->d;
	size_t i, k;

	for (i = 0; i < op->n && d->error == PULL_OK; i++)
		for (k = 0; k < i && d->error == PULL_OK; k++)
			if (strcmp(op->files[k].path, op->files[i].path) == 0) {
				snprintf(d->message, sizeof(d->message),
				    "two URLs give the same file name '%s'",
				    op->files[i].path);
				d->error = PULL_NOT_FOUND;
			}
	if (d->error == PULL_OK) {
		d->files = op->files;
		d->nfiles = op->n;
	} else
		pull_files_free(op->files, op->n);
	op->done(op->arg);
	free(op);
}

/* Records the first failure of the operation. */
static void
op_fail(struct https_op *op, enum pull_error e)
{
	if (op->d->error == PULL_OK)
		op->d->error = e;
	else if (op->d->message[0] == '\0')
		snprintf(op->d->message, sizeof(op->d->message),
		    "out of memory");
}

/* One URL's HEAD: its size, or why not. */
static void
head_done(void *arg, struct fetch_xfer *x)
{
	struct https_head *h = arg;
	struct https_op *op = h->op;
	const struct ref *ref = &op->refs[h->i];
	struct pull_file *f = &op->files[h->i];
	char err[sizeof(op->d->message)];
	enum pull_error e = PULL_OK;

	err[0] = '\0';
	if (x == NULL)
		e = PULL_INTERNAL;
	else if (x->result != FETCH_OK || x->status < 200 || x->status >= 300)
		e = head_error(x, ref->url, err, sizeof(err));
	else if (x->content_length < 0) {
		snprintf(err, sizeof(err), "'%s' does not say how large it is",
		    ref->url);
		e = PULL_NOT_FOUND;
	} else
		f->size = (uint64_t)x->content_length;
	if (e != PULL_OK && op->d->error == PULL_OK) {
		op->d->error = e;
		snprintf(op->d->message, sizeof(op->d->message), "%s",
		    err[0] != '\0' ? err : "out of memory");
	}
	fetch_xfer_free(x);
	free(h);
	if (--op->pending == 0)
		op_end(op);
}

/* One URL into its pull_file: its name, path and digest. */
static int
name_file(struct https_op *op, size_t i)
{
	const struct ref *ref = &op->refs[i];
	struct pull_file *f = &op->files[i];
	char name[REF_NAME_MAX + 1];
	const char *why;

	if (url_file_name(ref->url, name, sizeof(name), &why) < 0) {
		snprintf(op->d->message, sizeof(op->d->message), "'%s': %s",
		    ref->url, why);
		op->d->error = PULL_NOT_FOUND;
		return -EINVAL;
	}
	snprintf(f->sha256, sizeof(f->sha256), "%s", ref->sha256);
	if ((f->path = strdup(name)) == NULL ||
	    (f->url = strdup(ref->url)) == NULL)
		return -ENOMEM;
	return 0;
}

/* Starts the HEAD that learns file i's size. */
static int
start_head(struct https_op *op, struct fetch *fetch, size_t i)
{
	struct https_head *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return -ENOMEM;
	h->op = op;
	h->i = i;
	if (fetch_call_start(fetch, op->refs[i].url, NULL, 1, HTTPS_TRIES,
		head_done, h) < 0) {
		free(h);
		return -ENOMEM;
	}
	op->pending++;
	return 0;
}

int
https_describe_start(struct fetch *fetch, const struct ref *refs, size_t n,
    struct origin_desc *d, void (*done)(void *arg), void *arg)
{
	struct https_op *op = calloc(1, sizeof(*op));
	size_t i;
	int rc = 0;

	memset(d, 0, sizeof(*d));
	if (op == NULL ||
	    (op->files = calloc(n ? n : 1, sizeof(*op->files))) == NULL) {
		free(op);
		return -ENOMEM;
	}
	op->refs = refs;
	op->n = n;
	op->d = d;
	op->done = done;
	op->arg = arg;
	for (i = 0; i < n && rc == 0; i++)
		rc = name_file(op, i);
	for (i = 0; i < n && rc == 0; i++)
		if ((rc = start_head(op, fetch, i)) < 0)
			op_fail(op, PULL_INTERNAL); /* the others still end */
	if (op->pending == 0) {
		pull_files_free(op->files, n);
		free(op);
		return rc < 0 ? rc : -EINVAL;
	}
	return 0;
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
