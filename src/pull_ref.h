/*
 * pull_ref: one model reference pulled, from the question to the origin to
 * the published snapshot, as one asynchronous operation on the loop.
 *
 * A Hugging Face reference is described at the Hub (revision -> commit,
 * then the tree); a group of https:// URLs is described by HEADs and makes
 * one model.  The files are then pulled (pull.h) and the snapshot
 * published.  The admin CLI runs it and waits; the daemon runs many at
 * once on its loop.
 */
#ifndef MC_PULL_REF_H
#define MC_PULL_REF_H

#include <stddef.h>

#include <uv.h>

#include "origin_hf.h"
#include "pull.h"
#include "ref.h"

struct pull_ref_opts {
	struct hf_origin hf;   /* endpoint, token (the Hub's only), globs */
	const char *name;      /* of the model https:// URLs make, or NULL */
	const char *revision;  /* its revision name, or NULL: main */
	struct pull_opts pull; /* token is set here, per reference */
};

struct pull_ref_result {
	struct pull_result pull; /* error, message, bytes */
	char repo[2 * REF_REPO_MAX + 2];
	char revision[REF_REVISION_MAX + 1]; /* as asked */
	char commit[DIGEST_SHA1_HEX + 1];
	char trust[16];
	size_t nfiles;
};

struct pull_ref;

/*
 * Starts pulling refs[0..n): one REF_HF reference, or REF_HTTPS URLs that
 * make one model (named o->name, or after a single URL).  done(arg) is
 * called once, from the loop, with r filled in.  refs, o and r must live
 * until then.  Returns 0 (and the operation in *op when op is not NULL) or
 * a negative errno, with r->pull.message set, and then done() is never
 * called.
 */
int pull_ref_start(uv_loop_t *loop, struct store *store, struct index *index,
    struct fetch *fetch, const struct ref *refs, size_t n,
    const struct pull_ref_opts *o, struct pull_ref_result *r,
    void (*done)(void *arg), void *arg, struct pull_ref **op);

/* Ends it early (shutting down): done() follows, with PULL_STOPPED. */
void pull_ref_stop(struct pull_ref *op);

/* pull_ref_start(), then runs the loop until done.  0 or -EIO. */
int pull_ref_run(uv_loop_t *loop, struct store *store, struct index *index,
    struct fetch *fetch, const struct ref *refs, size_t n,
    const struct pull_ref_opts *o, struct pull_ref_result *r);

#endif
