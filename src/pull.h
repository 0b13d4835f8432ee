/*
 * pull: bringing a list of files from an origin into the store.
 *
 * Runs on a libuv loop with the fetch engine.  For each file it takes the
 * blob's claim (single-flight across processes; a blob already in the
 * store is reused), downloads it into tmp/ (large files as parallel ranges
 * into one partial file, with the set of finished ranges saved beside it
 * so a restart fetches only what is missing), hashes it once, in order, on
 * the thread pool as ranges complete, checks the digest the origin
 * promised, and publishes the blob.  When every file is in, the snapshot is
 * published.  Nothing unverified is ever renamed out of tmp/.
 */
#ifndef MC_PULL_H
#define MC_PULL_H

#include <stdint.h>

#include <uv.h>

#include "errors.h"
#include "fetch.h"
#include "index.h"
#include "manifest.h"
#include "store.h"

/*
 * Why a pull failed: the codes of errors.h a pull can end with, under the
 * names pulls use (their wire names, errnos and exit statuses are there).
 */
enum pull_error {
	PULL_OK = ERR_OK,
	PULL_NOT_FOUND = ERR_NOT_FOUND,
	PULL_UNAUTHORIZED = ERR_UNAUTHORIZED,  /* 401: token needed or wrong */
	PULL_FORBIDDEN = ERR_FORBIDDEN,	       /* 403: access not granted */
	PULL_INTEGRITY = ERR_INTEGRITY,	       /* never matched the digest */
	PULL_NETWORK = ERR_ORIGIN_UNAVAILABLE, /* unreachable after retries */
	PULL_NO_SPACE = ERR_NO_SPACE,
	PULL_INTERNAL = ERR_INTERNAL,
	PULL_STOPPED = ERR_SHUTTING_DOWN, /* pull_stop(): shutting down */
};

/* One file as the origin describes it. */
struct pull_file {
	char *path; /* repo-relative */
	char *url;  /* where to GET it (may redirect) */
	uint64_t size;
	char sha256[DIGEST_HEX_MAX];  /* LFS: known in advance; else "" */
	char gitsha1[DIGEST_HEX_MAX]; /* git files: the oid to check */
};

/* What an origin says a model is, before it is pulled. */
struct origin_desc {
	enum pull_error error;
	char message[600];		  /* why not, for people */
	char commit[DIGEST_SHA1_HEX + 1]; /* "" when the origin has none */
	struct pull_file *files;
	size_t nfiles;
};

/* Frees files[0..n) and the array. */
void pull_files_free(struct pull_file *files, size_t n);

/* Where one file is, for progress displays. */
enum pull_state {
	PULL_QUEUED,	/* not started: waits for a download slot */
	PULL_WAITING,	/* another process fetches it: wait, then reuse */
	PULL_STARTING,	/* asking the origin where the bytes are */
	PULL_FETCHING,	/* ranges in flight */
	PULL_VERIFYING, /* every byte in: last hash, fsync, publish */
	PULL_DONE,	/* fetched, verified, published */
	PULL_REUSED,	/* in the store already */
	PULL_FAILED,
};

struct pull_file_progress {
	const struct pull_file *file;
	enum pull_state state;
	uint64_t bytes;	 /* of the file in place so far */
	unsigned ranges; /* in flight */
};

struct pull_progress {
	uint64_t done, total, reused; /* bytes: fetched and in place, in
					 all, found in the store */
	size_t nfiles, nfinished;
	const struct pull_file_progress *files; /* nfiles of them */
};

/* "queued", "waiting", "fetching"...: the names of enum pull_state. */
const char *pull_state_name(enum pull_state s);

struct pull_opts {
	const char *token; /* sent to the origin's host only */
	uint64_t chunk;	   /* range size, 0: 32 MiB */
	unsigned per_file; /* ranges in flight per file, 0: 8 */
	unsigned files;	   /* files in flight, 0: 4 */
	unsigned attempts; /* per file, 0: 8 */
	/* About once a second, and once at the end; may be NULL. */
	void (*progress)(void *arg, const struct pull_progress *pp);
	void *arg;
};

struct pull_result {
	enum pull_error error;
	char message[512];
	uint64_t bytes_origin; /* body bytes received */
	uint64_t bytes_reused; /* bytes found in the store already */
	uint64_t bytes_total;
	unsigned hedges; /* slow ranges asked again on a fresh connection */
	uint64_t ratelimit_ms; /* longest wait for a noted rate limit */
	/*
	 * claims taken over while this process stalled: it stood down, or
	 * found another file at its partial's name and published nothing
	 */
	unsigned claims_lost;
	/* published, but the index was busy: its row is missing (snapshot.h) */
	int unindexed;
};

/*
 * Starts pulling files[0..n) into the store, to publish them as manifest m
 * (origin and revision set by the caller; files are added here, and the
 * commit is derived from them when m has none).  done(arg) is called once,
 * from the loop, when the snapshot is published or the pull has failed:
 * result says which.  files, opts, m and result must live until then; the
 * pull frees itself after done().  Returns 0 (and the pull in *p, when p is
 * not NULL) or a negative errno, and then done() is never called.
 */
struct pull;
int pull_start(uv_loop_t *loop, struct store *store, struct index *index,
    struct fetch *fetch, struct pull_file *files, size_t n,
    const struct pull_opts *opts, struct manifest *m,
    struct pull_result *result, void (*done)(void *arg), void *arg,
    struct pull **p);

/*
 * Ends a pull before its time (the daemon stopping): transfers stop, shared
 * partial files stay to be resumed, and done() follows with why.
 */
void pull_stop(struct pull *p, enum pull_error why, const char *message);

#endif
