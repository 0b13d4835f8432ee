/*
 * pull_ref: see pull_ref.h.  The operation goes DESCRIBE -> PULL -> done;
 * a failure at either step ends it with the origin's or the pull's error.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub.h"
#include "origin_https.h"
#include "pull_ref.h"
#include "snapshot.h"

struct pull_ref {
	uv_loop_t *loop;
	struct store *store;
	struct index *index;
	struct fetch *fetch;
	const struct ref *refs;
	size_t n;
	const struct pull_ref_opts *o;
	struct pull_ref_result *r;
	void (*done)(void *arg);
	void *arg;
	struct origin_desc desc;
	struct pull_opts pull_opts;
	struct manifest m;
	struct pull *pull; /* while the files are pulled */
	int stopped;
};

static void
end(struct pull_ref *op)
{
	pull_files_free(op->desc.files, op->desc.nfiles);
	manifest_release(&op->m);
	op->done(op->arg);
	free(op);
}

static void
fail(struct pull_ref *op, enum pull_error e, const char *message)
{
	op->r->pull.error = e;
	snprintf(op->r->pull.message, sizeof(op->r->pull.message), "%.500s",
	    message);
	end(op);
}

static void
pulled(void *arg)
{
	struct pull_ref *op = arg;

	op->pull = NULL;
	snprintf(op->r->commit, sizeof(op->r->commit), "%s", op->m.commit);
	end(op);
}

/* The manifest the files will be published as, before they are. */
static int
make_manifest(struct pull_ref *op)
{
	const struct ref *ref = &op->refs[0];
	struct pull_ref_result *r = op->r;
	char *source = ref_canonical(ref);
	struct store_place p;
	int rc = -ENOMEM;
	size_t i;

	if (source == NULL)
		return -ENOMEM;
	if ((rc = store_locate(ref, op->o->name, op->o->revision, &p)) < 0)
		goto out;
	snprintf(r->repo, sizeof(r->repo), "%s", p.repo);
	snprintf(r->revision, sizeof(r->revision), "%s", p.revision);
	for (i = 0; ref->kind != REF_HF && i < op->n; i++)
		if (op->refs[i].sha256[0] == '\0')
			snprintf(op->m.trust, sizeof(op->m.trust), "tofu");
	if ((rc = manifest_set_origin(&op->m, p.type, r->repo, source)) < 0)
		goto out;
	/* (A commit id is no revision name: it is not added.) */
	rc = manifest_add_revision(&op->m, r->revision);
	snprintf(r->trust, sizeof(r->trust), "%s", op->m.trust);
	memcpy(op->m.commit, op->desc.commit, sizeof(op->m.commit));
out:
	free(source);
	return rc;
}

/* "hf" for a Hub source, "https" for a URL, NULL for any other. */
static const char *
origin_kind(const char *source)
{
	if (source != NULL && strncmp(source, "hf://", 5) == 0)
		return "hf";
	if (source != NULL && strncmp(source, "https://", 8) == 0)
		return "https";
	return NULL;
}

/*
 * Whether the model's folder already holds a revision of the other origin
 * kind: an https:// model named like a Hub repository (or the other way
 * round) would take over that repository's refs and snapshots, and an
 * acquire of one would be answered with the other's files.  A folder is
 * the Hub's or a URL's, never both; imports (file://) may share either.
 * 1 (with the other source in other), 0, or a negative errno.
 */
static int
folder_taken(struct pull_ref *op, const char *source, char *other,
    size_t otherlen)
{
	char folder[REF_FOLDER_MAX], rel[STORE_PATH_MAX], commit[64];
	const char *kind = origin_kind(source), *mine, *why;
	struct dirent *e;
	struct manifest m;
	DIR *dir;
	size_t n;
	int fd, rc = 0;

	if (kind == NULL ||
	    ref_folder_of(op->m.type, op->m.repo, folder, sizeof(folder)) < 0)
		return 0;
	snprintf(rel, sizeof(rel), "manifests/%s", folder);
	fd = openat(op->store->dirfd, rel,
	    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if ((dir = fdopendir(fd)) == NULL) {
		close(fd);
		return -errno;
	}
	while (rc == 0 && (e = readdir(dir)) != NULL) {
		n = strlen(e->d_name);
		if (n != DIGEST_SHA1_HEX + 5 ||
		    strcmp(e->d_name + DIGEST_SHA1_HEX, ".json") != 0)
			continue;
		snprintf(commit, sizeof(commit), "%.*s", DIGEST_SHA1_HEX,
		    e->d_name);
		manifest_init(&m);
		if (snapshot_manifest(op->store, folder, commit, &m, &why) ==
			0 &&
		    (mine = origin_kind(m.source)) != NULL &&
		    strcmp(mine, kind) != 0) {
			snprintf(other, otherlen, "%s", m.source);
			rc = 1;
		}
		manifest_release(&m);
	}
	closedir(dir);
	return rc;
}

static void
described(void *arg)
{
	struct pull_ref *op = arg;
	char other[1024], msg[1200];
	int rc;

	if (op->desc.error != PULL_OK) {
		fail(op, op->desc.error, op->desc.message);
		return;
	}
	if (op->stopped) {
		fail(op, PULL_STOPPED, "shutting down");
		return;
	}
	if ((rc = make_manifest(op)) < 0) {
		fail(op, PULL_INTERNAL,
		    rc == -ENOMEM ? "out of memory"
				  : "cannot name a model after the URL");
		return;
	}
	if ((rc = folder_taken(op, op->m.source, other, sizeof(other))) != 0) {
		if (rc > 0)
			snprintf(msg, sizeof(msg),
			    "the name '%.150s' is taken by '%.250s': an hf://"
			    " repository and an https:// model never share a"
			    " folder (name the model otherwise)",
			    op->m.repo, other);
		fail(op, rc > 0 ? PULL_FORBIDDEN : PULL_INTERNAL,
		    rc > 0 ? msg : strerror(-rc));
		return;
	}
	op->r->nfiles = op->desc.nfiles;
	op->pull_opts = op->o->pull;
	/* The Hugging Face token is for the Hub, never for other hosts. */
	op->pull_opts.token =
	    op->refs[0].kind == REF_HF ? op->o->hf.token : NULL;
	if ((rc = pull_start(op->loop, op->store, op->index, op->fetch,
		 op->desc.files, op->desc.nfiles, &op->pull_opts, &op->m,
		 &op->r->pull, pulled, op, &op->pull)) < 0)
		fail(op, PULL_INTERNAL, strerror(-rc));
}

int
pull_ref_start(uv_loop_t *loop, struct store *store, struct index *index,
    struct fetch *fetch, const struct ref *refs, size_t n,
    const struct pull_ref_opts *o, struct pull_ref_result *r,
    void (*done)(void *arg), void *arg, struct pull_ref **out)
{
	struct pull_ref *op;
	int rc;

	memset(r, 0, sizeof(*r));
	if (n == 0 || (refs[0].kind == REF_HF && n != 1) ||
	    (refs[0].kind != REF_HF && refs[0].kind != REF_HTTPS)) {
		snprintf(r->pull.message, sizeof(r->pull.message),
		    "only one hf:// reference, or https:// URLs, at a time");
		return -EINVAL;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL)
		return -ENOMEM;
	op->loop = loop;
	op->store = store;
	op->index = index;
	op->fetch = fetch;
	op->refs = refs;
	op->n = n;
	op->o = o;
	op->r = r;
	op->done = done;
	op->arg = arg;
	manifest_init(&op->m);
	rc = refs[0].kind == REF_HF
	    ? hf_describe_start(&o->hf, fetch, &refs[0], 1, &op->desc,
		  described, op)
	    : https_describe_start(fetch, refs, n, &op->desc, described, op);
	if (rc < 0) {
		snprintf(r->pull.message, sizeof(r->pull.message), "%.500s",
		    op->desc.message[0] != '\0' ? op->desc.message
						: strerror(-rc));
		r->pull.error =
		    op->desc.error != PULL_OK ? op->desc.error : PULL_INTERNAL;
		manifest_release(&op->m);
		free(op);
		return rc;
	}
	if (out != NULL)
		*out = op;
	return 0;
}

void
pull_ref_stop(struct pull_ref *op)
{
	op->stopped = 1;
	if (op->pull != NULL)
		pull_stop(op->pull, PULL_STOPPED, "shutting down");
}

static void
flag(void *arg)
{
	*(int *)arg = 1;
}

int
pull_ref_run(uv_loop_t *loop, struct store *store, struct index *index,
    struct fetch *fetch, const struct ref *refs, size_t n,
    const struct pull_ref_opts *o, struct pull_ref_result *r)
{
	int done = 0, rc;

	if ((rc = pull_ref_start(loop, store, index, fetch, refs, n, o, r, flag,
		 &done, NULL)) < 0)
		return rc;
	while (!done)
		uv_run(loop, UV_RUN_ONCE);
	return r->pull.error == PULL_OK ? 0 : -EIO;
}
