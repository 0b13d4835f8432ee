/*
 * origin_hf: see origin_hf.h.  One operation is a chain of API calls on the
 * fetch engine's loop (revision, then each page of the tree); the files
 * themselves are fetched by pull.c.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "origin_hf.h"

#define HF_PAGES_MAX 1000
#define HF_URL_MAX 4096
#define HF_NEXT_MAX (64 * 1024) /* a next page's URL, cursor included */
#define HF_API_TRIES 5
#define HF_TOKEN_FILE_MAX 4096

/* Maps a failed API answer to an error and a sentence. */
static enum pull_error
api_error(const struct fetch_xfer *x, const struct ref *ref, char *err,
    size_t len)
{
	const char *msg = x->error_message[0] != '\0' ? x->error_message : "";

	if (x->result == FETCH_REFUSED) {
		snprintf(err, len, "%s", x->curl_error);
		return PULL_FORBIDDEN;
	}
	if (x->result != FETCH_OK) {
		snprintf(err, len, "cannot reach the origin: %s",
		    x->curl_error);
		return PULL_NETWORK;
	}
	if (x->status == 401 && strcmp(x->error_code, "GatedRepo") == 0) {
		snprintf(err, len,
		    "'%s' is gated and needs a token (HF_TOKEN):"
		    " %s",
		    ref->repo, msg);
		return PULL_UNAUTHORIZED;
	}
	if (x->status == 401) {
		snprintf(err, len, "'%s' does not exist or needs a token: %s",
		    ref->repo, msg);
		return PULL_UNAUTHORIZED;
	}
	if (x->status == 403) {
		snprintf(err, len, "access to '%s' is not granted: %s",
		    ref->repo, msg);
		return PULL_FORBIDDEN;
	}
	if (x->status == 404) {
		snprintf(err, len, "'%s' has no revision '%s': %s", ref->repo,
		    ref_revision(ref), msg);
		return PULL_NOT_FOUND;
	}
	snprintf(err, len, "the origin answered %ld: %s", x->status, msg);
	return x->status >= 500 || x->status == 429 ? PULL_NETWORK
						    : PULL_NOT_FOUND;
}

static const char *
type_path(enum repo_type t)
{
	return t == REPO_DATASET ? "datasets"
	    : t == REPO_SPACE	 ? "spaces"
				 : "models";
}

static int
wanted(const struct hf_origin *o, const char *path)
{
	size_t i;
	int in = o->ninclude == 0;

	for (i = 0; !in && i < o->ninclude; i++)
		in = fnmatch(o->include[i], path, 0) == 0;
	for (i = 0; in && i < o->nexclude; i++)
		in = fnmatch(o->exclude[i], path, 0) != 0;
	return in;
}

struct listing {
	const struct hf_origin *o;
	const struct ref *ref;
	const char *commit;
	struct pull_file *files;
	size_t n, cap;
};

/* One tree entry into a pull_file; -EINVAL for anything malformed. */
static int
add_entry(struct listing *l, json_t *e, char *err, size_t errlen)
{
	const char *type, *path, *oid, *lfs_oid = NULL, *why;
	json_int_t size = -1;
	char enc[HF_URL_MAX / 2];
	struct pull_file *f;
	json_t *lfs;

	if (json_unpack(e, "{s:s, s:s}", "type", &type, "path", &path) < 0)
		goto bad;
	if (strcmp(type, "file") != 0 || !wanted(l->o, path))
		return 0;
	if (json_unpack(e, "{s:s, s:I}", "oid", &oid, "size", &size) < 0 ||
	    size < 0 || !ref_is_hex(oid, DIGEST_SHA1_HEX))
		goto bad;
	if (ref_check_path(path, strlen(path), &why) < 0) {
		snprintf(err, errlen, "the origin sent a bad path '%.200s': %s",
		    path, why);
		return -EINVAL;
	}
	lfs = json_object_get(e, "lfs");
	if (lfs != NULL &&
	    (json_unpack(lfs, "{s:s}", "oid", &lfs_oid) < 0 ||
		!ref_is_hex(lfs_oid, DIGEST_SHA256_HEX)))
		goto bad;
	if (l->n >= MANIFEST_FILES_MAX)
		goto bad;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		f = reallocarray(l->files, l->cap, sizeof(*f));
		if (f == NULL)
			return -ENOMEM;
		l->files = f;
	}
	f = &l->files[l->n];
	memset(f, 0, sizeof(*f));
	f->size = (uint64_t)size;
	if (lfs_oid != NULL)
		snprintf(f->sha256, sizeof(f->sha256), "%s", lfs_oid);
	else
		snprintf(f->gitsha1, sizeof(f->gitsha1), "%s", oid);
	if (fetch_escape(path, 1, enc, sizeof(enc)) < 0 ||
	    (f->path = strdup(path)) == NULL ||
	    asprintf(&f->url, "%s/%s%s/resolve/%s/%s", l->o->endpoint,
		l->ref->type == REPO_MODEL	   ? ""
		    : l->ref->type == REPO_DATASET ? "datasets/"
						   : "spaces/",
		l->ref->repo, l->commit, enc) < 0) {
		free(f->path);
		return -ENOMEM;
	}
	l->n++;
	return 0;
bad:
	snprintf(err, errlen, "the origin sent a malformed file entry");
	return -EINVAL;
}

/* A next page must stay on the endpoint. */
static int
same_origin(const char *endpoint, const char *url)
{
	size_t n = strlen(endpoint);

	return strncmp(url, endpoint, n) == 0 && url[n] == '/';
}

struct hf_op {
	const struct hf_origin *o;
	struct fetch *fetch;
	const struct ref *ref;
	int list;
	struct origin_desc *d;
	struct listing l;
	unsigned pages;
	void (*done)(void *arg);
	void *arg;
};

/* A revision or a tree page: one API call, retried like the downloads. */
static int
api_call(struct hf_op *op, const char *url,
    void (*done)(void *arg, struct fetch_xfer *x))
{
	const char *headers[3] = { "Accept: application/json", NULL, NULL };
	char auth[1024];

	if (op->o->token != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
		    op->o->token);
		headers[1] = auth;
	}
	return fetch_call_start(op->fetch, url, headers, 0, HF_API_TRIES, done,
	    op);
}

/* Ends the operation: the description is the caller's from here. */
static void
op_end(struct hf_op *op, enum pull_error e)
{
	struct origin_desc *d = op->d;

	d->error = e;
	if (e == PULL_OK) {
		d->files = op->l.files;
		d->nfiles = op->l.n;
	} else {
		pull_files_free(op->l.files, op->l.n);
		if (e == PULL_INTERNAL && d->message[0] == '\0')
			snprintf(d->message, sizeof(d->message),
			    "out of memory");
	}
	op->done(op->arg);
	free(op);
}

static void page_done(void *arg, struct fetch_xfer *x);

static void
list_page(struct hf_op *op, const char *url)
{
	if (++op->pages > HF_PAGES_MAX) {
		snprintf(op->d->message, sizeof(op->d->message),
		    "the origin's listing of '%s' has over %d pages",
		    op->ref->repo, HF_PAGES_MAX);
		op_end(op, PULL_NETWORK);
	} else if (api_call(op, url, page_done) < 0)
		op_end(op, PULL_INTERNAL);
}

/* Lists the files at the commit, from the first page. */
static void
list_start(struct hf_op *op)
{
	char url[HF_URL_MAX];

	snprintf(url, sizeof(url),
	    "%s/api/%s/%s/tree/%s?recursive=true&expand=false", op->o->endpoint,
	    type_path(op->ref->type), op->ref->repo, op->d->commit);
	op->l.commit = op->d->commit;
	list_page(op, url);
}

/* One page of the tree: its entries, then the next page or the end. */
static void
page_done(void *arg, struct fetch_xfer *x)
{
	struct hf_op *op = arg;
	struct origin_desc *d = op->d;
	enum pull_error e = PULL_OK;
	char *next = NULL;
	json_t *root = NULL, *entry;
	size_t i;

	if (x == NULL) {
		op_end(op, PULL_INTERNAL);
		return;
	}
	if (x->result != FETCH_OK || x->status != 200) {
		e = api_error(x, op->ref, d->message, sizeof(d->message));
		goto out;
	}
	root = json_loadb(x->body != NULL ? x->body : "", x->body_len, 0, NULL);
	if (!json_is_array(root)) {
		snprintf(d->message, sizeof(d->message),
		    "the origin sent a bad listing");
		e = PULL_NETWORK;
		goto out;
	}
	json_array_foreach(root, i, entry) {
		if (add_entry(&op->l, entry, d->message, sizeof(d->message)) <
		    0) {
			e = PULL_INTERNAL;
			goto out;
		}
	}
	/* A next page half read would end the listing early: never. */
	if (x->link_bad) {
		snprintf(d->message, sizeof(d->message),
		    "the origin sent a Link header that cannot be read whole"
		    " (page %u of the listing)",
		    op->pages);
		e = PULL_NETWORK;
	} else if (x->link_next != NULL &&
	    !same_origin(op->o->endpoint, x->link_next)) {
		snprintf(d->message, sizeof(d->message),
		    "the origin's next page leaves it: refused");
		e = PULL_NETWORK;
	} else if (x->link_next != NULL &&
	    strlen(x->link_next) >= HF_NEXT_MAX) {
		snprintf(d->message, sizeof(d->message),
		    "the origin's next page link is over %d bytes: refused",
		    HF_NEXT_MAX);
		e = PULL_NETWORK;
	} else if (x->link_next != NULL) {
		next = x->link_next; /* taken over from the transfer */
		x->link_next = NULL;
	}
out:
	json_decref(root);
	fetch_xfer_free(x);
	if (e == PULL_OK && next != NULL) {
		list_page(op, next);
		free(next);
		return;
	}
	if (e == PULL_OK && op->l.n == 0) {
		snprintf(d->message, sizeof(d->message), "'%s' has no files%s",
		    op->ref->repo,
		    op->o->ninclude + op->o->nexclude > 0
			? " that match the filters"
			: "");
		e = PULL_NOT_FOUND;
	}
	op_end(op, e);
}

/* The revision's commit; then the listing, if asked for. */
static void
revision_done(void *arg, struct fetch_xfer *x)
{
	struct hf_op *op = arg;
	struct origin_desc *d = op->d;
	enum pull_error e = PULL_OK;
	const char *sha;
	json_t *root;

	if (x == NULL) {
		op_end(op, PULL_INTERNAL);
		return;
	}
	if (x->result != FETCH_OK || x->status != 200) {
		e = api_error(x, op->ref, d->message, sizeof(d->message));
		fetch_xfer_free(x);
		op_end(op, e);
		return;
	}
	root = json_loadb(x->body != NULL ? x->body : "", x->body_len, 0, NULL);
	sha = json_string_value(json_object_get(root, "sha"));
	if (sha == NULL || !ref_is_hex(sha, DIGEST_SHA1_HEX)) {
		snprintf(d->message, sizeof(d->message),
		    "the origin sent no commit for '%s'", op->ref->repo);
		e = PULL_NETWORK;
	} else
		snprintf(d->commit, sizeof(d->commit), "%s", sha);
	json_decref(root);
	fetch_xfer_free(x);
	if (e != PULL_OK || !op->list)
		op_end(op, e);
	else
		list_start(op);
}

int
hf_describe_start(const struct hf_origin *o, struct fetch *fetch,
    const struct ref *ref, int list, struct origin_desc *d,
    void (*done)(void *arg), void *arg)
{
	char url[HF_URL_MAX], rev[1024];
	struct hf_op *op;

	memset(d, 0, sizeof(*d));
	if ((op = calloc(1, sizeof(*op))) == NULL)
		return -ENOMEM;
	op->o = o;
	op->fetch = fetch;
	op->ref = ref;
	op->list = list;
	op->d = d;
	op->done = done;
	op->arg = arg;
	op->l.o = o;
	op->l.ref = ref;
	if (ref_is_hex(ref_revision(ref), DIGEST_SHA1_HEX)) {
		/* A commit id needs no asking: straight to the listing. */
		if (!list) {
			free(op);
			return -EINVAL;
		}
		snprintf(d->commit, sizeof(d->commit), "%s", ref_revision(ref));
		list_start(op);
		return 0;
	}
	if (fetch_escape(ref_revision(ref), 0, rev, sizeof(rev)) < 0) {
		free(op);
		return -ENAMETOOLONG;
	}
	snprintf(url, sizeof(url), "%s/api/%s/%s/revision/%s", o->endpoint,
	    type_path(ref->type), ref->repo, rev);
	if (api_call(op, url, revision_done) < 0) {
		free(op);
		return -ENOMEM;
	}
	return 0;
}

/*
 * A token as given, less the whitespace around it (an editor's newline, a
 * Secret's trailing space); NULL when nothing is left or what is left
 * holds a space or a control character, which no token has and which
 * would end the header line it goes into.
 */
static char *
trimmed(const char *s, size_t len)
{
	size_t i;

	while (len > 0 && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
			return NULL;
	return len > 0 ? strndup(s, len) : NULL;
}

char *
hf_token(const char *token_path)
{
	const char *env = getenv("HF_TOKEN");
	char buf[HF_TOKEN_FILE_MAX + 1];
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd;

	if (env != NULL && *env != '\0')
		return trimmed(env, strlen(env));
	if (token_path == NULL || *token_path == '\0')
		return NULL;
	/* O_NONBLOCK and a regular file only: a FIFO there cannot hang us. */
	if ((fd = open(token_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
		return NULL;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_size > HF_TOKEN_FILE_MAX) {
		close(fd);
		return NULL;
	}
	while (len < sizeof(buf) - 1 &&
	    ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0 ||
		(n < 0 && errno == EINTR)))
		if (n > 0)
			len += (size_t)n;
	close(fd);
	return trimmed(buf, len);
}

void
hf_token_held(const char *token)
{
	/*
	 * A core dump would carry the token: none from now on.  Never back
	 * to dumpable: freed memory may still hold a token given up.
	 */
	if (token != NULL)
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}
