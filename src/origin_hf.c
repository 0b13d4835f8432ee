/*
 * origin_hf: see origin_hf.h.  The two API calls are made one at a time,
 * each running the caller's loop until its transfer is done; the files
 * themselves are fetched by pull.c.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "origin_hf.h"

#define HF_PAGES_MAX 1000
#define HF_URL_MAX 4096
#define HF_API_TRIES 5

/* One API call, retried like the downloads. */
static struct fetch_xfer *
get(struct fetch *fetch, const char *url, const char *token)
{
	const char *headers[3] = { "Accept: application/json", NULL, NULL };
	char auth[1024];

	if (token != NULL) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		headers[1] = auth;
	}
	return fetch_call(fetch, url, headers, 0, HF_API_TRIES);
}

/* Maps a failed API answer to an error and a sentence. */
static enum pull_error
api_error(const struct fetch_xfer *x, const struct ref *ref, char *err,
    size_t len)
{
	const char *msg = x->error_message[0] != '\0' ? x->error_message : "";

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

enum pull_error
hf_resolve(const struct hf_origin *o, struct fetch *fetch,
    const struct ref *ref, char *commit, char *err, size_t errlen)
{
	char url[HF_URL_MAX], rev[1024];
	struct fetch_xfer *x;
	enum pull_error e = PULL_OK;
	const char *sha;
	json_t *root;

	if (ref_is_hex(ref_revision(ref), DIGEST_SHA1_HEX)) {
		snprintf(commit, DIGEST_SHA1_HEX + 1, "%s", ref_revision(ref));
		return PULL_OK;
	}
	if (fetch_escape(ref_revision(ref), 0, rev, sizeof(rev)) < 0)
		return PULL_INTERNAL;
	snprintf(url, sizeof(url), "%s/api/%s/%s/revision/%s", o->endpoint,
	    type_path(ref->type), ref->repo, rev);
	if ((x = get(fetch, url, o->token)) == NULL)
		return PULL_INTERNAL;
	if (x->result != FETCH_OK || x->status != 200) {
		e = api_error(x, ref, err, errlen);
		goto out;
	}
	root = json_loadb(x->body != NULL ? x->body : "", x->body_len, 0, NULL);
	sha = json_string_value(json_object_get(root, "sha"));
	if (sha == NULL || !ref_is_hex(sha, DIGEST_SHA1_HEX)) {
		snprintf(err, errlen, "the origin sent no commit for '%s'",
		    ref->repo);
		e = PULL_NETWORK;
	} else
		snprintf(commit, DIGEST_SHA1_HEX + 1, "%s", sha);
	json_decref(root);
out:
	fetch_xfer_free(x);
	return e;
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

enum pull_error
hf_list(const struct hf_origin *o, struct fetch *fetch, const struct ref *ref,
    const char *commit, struct pull_file **files, size_t *n, char *err,
    size_t errlen)
{
	struct listing l = { o, ref, commit, NULL, 0, 0 };
	char url[HF_URL_MAX];
	struct fetch_xfer *x = NULL;
	enum pull_error e = PULL_OK;
	json_t *root = NULL, *entry;
	size_t i, page;

	snprintf(url, sizeof(url),
	    "%s/api/%s/%s/tree/%s?recursive=true"
	    "&expand=false",
	    o->endpoint, type_path(ref->type), ref->repo, commit);
	for (page = 0; page < HF_PAGES_MAX && url[0] != '\0'; page++) {
		if ((x = get(fetch, url, o->token)) == NULL) {
			e = PULL_INTERNAL;
			break;
		}
		if (x->result != FETCH_OK || x->status != 200) {
			e = api_error(x, ref, err, errlen);
			break;
		}
		root = json_loadb(x->body != NULL ? x->body : "", x->body_len,
		    0, NULL);
		if (!json_is_array(root)) {
			snprintf(err, errlen, "the origin sent a bad listing");
			e = PULL_NETWORK;
			break;
		}
		json_array_foreach(root, i,
		    entry) if (add_entry(&l, entry, err, errlen) < 0)
		{
			e = PULL_INTERNAL;
			goto out;
		}
		url[0] = '\0';
		if (x->link_next[0] != '\0') {
			if (!same_origin(o->endpoint, x->link_next)) {
				snprintf(err, errlen,
				    "the origin's next page"
				    " leaves it: refused");
				e = PULL_NETWORK;
				break;
			}
			snprintf(url, sizeof(url), "%s", x->link_next);
		}
		json_decref(root);
		root = NULL;
		fetch_xfer_free(x);
		x = NULL;
	}
	if (e == PULL_OK && l.n == 0) {
		snprintf(err, errlen, "'%s' has no files%s", ref->repo,
		    o->ninclude + o->nexclude > 0 ? " that match the filters"
						  : "");
		e = PULL_NOT_FOUND;
	}
out:
	json_decref(root);
	fetch_xfer_free(x);
	if (e != PULL_OK) {
		pull_files_free(l.files, l.n);
		return e;
	}
	*files = l.files;
	*n = l.n;
	return PULL_OK;
}

char *
hf_token(const char *token_path)
{
	const char *env = getenv("HF_TOKEN");
	char buf[512], *p;
	size_t len;
	FILE *f;

	if (env != NULL && *env != '\0')
		return strdup(env);
	if (token_path == NULL || *token_path == '\0' ||
	    (f = fopen(token_path, "re")) == NULL)
		return NULL;
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	for (p = buf + len; p > buf && isspace((unsigned char)p[-1]); p--)
		p[-1] = '\0';
	return buf[0] != '\0' ? strdup(buf) : NULL;
}
