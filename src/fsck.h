/*
 * fsck: reconciling the index, blobs, manifests, hub view and tmp/.
 *
 * Every inconsistency is reported with a kind (a stable name for scripts),
 * the store-relative path and a sentence.  Kinds fall into two classes:
 *
 *  - residue: what an interrupted but correct process leaves behind
 *    (a stale tmp file, claim or lease, an orphan blob, a manifest whose
 *    publish had not reached the index).  It is invisible to readers and harmless.
 *  - problems: anything a reader could trip on or that breaks a guarantee
 *    (a blob whose bytes do not match its name, a half-built snapshot, a
 *    dangling link, a bad ref, an index row without a manifest).
 *
 * With repair set, both are fixed from the files, which are the truth:
 * residue is completed (an unindexed manifest is indexed) or cleared, and
 * problems are undone (a corrupt blob is quarantined in tmp/ and the
 * snapshots using it removed, so that a pull fetches it again).
 */
#ifndef MC_FSCK_H
#define MC_FSCK_H

#include <stdint.h>

#include "index.h"
#include "store.h"

struct fsck_issue {
	const char *kind; /* "blob_corrupt", "tmp_stale", ... */
	const char *path; /* store-relative */
	const char *what; /* a sentence for people */
	int residue;	  /* 1: residue, 0: problem */
	int repaired;
};

struct fsck_opts {
	int repair;
	int hash;	  /* re-hash every blob (slow, thorough) */
	int64_t stale_ms; /* claims, leases and tmp files older are dead */
	void (*report)(void *arg, const struct fsck_issue *issue);
	void *arg;
};

struct fsck_result {
	unsigned problems, residue, repaired;
	unsigned unrepaired; /* problems left as they were */
};

int fsck_run(struct store *store, struct index *index,
    const struct fsck_opts *opts, struct fsck_result *result);

#endif
