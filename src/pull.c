/*
 * pull: see pull.h.
 *
 * Everything runs on the loop thread except hashing and fsync, which go to
 * the thread pool, one job per file at a time (so a file's digests are only
 * ever touched by one thread at once), and the index's work (a git file's
 * etag looked up, the snapshot published), which goes to the index's queue
 * (index.h): a lock another process holds on the index never stalls the
 * loop.  A file moves through:
 *
 *	CLAIM  take claims/<sha256>, or wait while another process has it
 *	HEAD   ask the origin where the bytes are (the LFS redirect)
 *	FETCH  ranges in flight; finished ranges saved in <partial>.ranges
 *	HASH   the contiguous prefix of finished ranges, in order
 *	DONE   verified, fsync'd, published under blobs/
 *
 * A ranged request answered 200 or with another range makes the file fall
 * back to one plain GET from byte 0.  Transient failures (network, 408,
 * 429, 5xx, short bodies) are retried with jittered exponential backoff,
 * honouring Retry-After and RateLimit; 401, 403 and 404 are final.  Every
 * transfer is bounded by the file's size (fetch_xfer_expect()): an answer
 * longer than asked for, or announcing less, is an origin fault, asked
 * again FAULT_TRIES times before the pull fails.
 *
 * DONE publishes the descriptor that was hashed, not the partial's name
 * (store_blob_publish_fd()): if a holder that took the claim over while we
 * stalled has put its own file there, ours is let go and the file looked
 * at again (lost_race()).  The other way round, a holder that takes a
 * claim over never writes into the partial file it finds, which the
 * stalled holder may still write into when it wakes: it copies the saved
 * ranges into a fresh file and renames that over the name (open_partial()).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "claim.h"
#include "digest.h"
#include "fault.h"
#include "pull.h"
#include "ranges.h"
#include "ratelimit.h"
#include "snapshot.h"

#define CHUNK_DEFAULT (32ULL * 1024 * 1024)
#define HASH_BLOCK (4 * 1024 * 1024)
#define WAIT_MS 100
#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 8000
#define HEDGE_STALL_MS 3000 /* no byte for this long: hedge */
#define HEDGE_SLOW 4	    /* or this many times the usual range time, */
#define HEDGE_SLACK_MS 2000 /* plus this */
#define FAULT_TRIES 3	    /* a range answered too long or too short */
#define HASH_JOB_MAX (64ULL * 1024 * 1024) /* hashed per job, at most */
#define PER_FILE_DEFAULT 8
#define FILES_DEFAULT 4
#define ATTEMPTS_DEFAULT 8

enum state {
	S_IDLE,
	S_CLAIM,
	S_READY,
	S_HEAD,
	S_FETCH,
	S_HASH,
	S_DONE,
	S_FAILED
};

struct job;

struct chunk {
	struct job *job;
	uint64_t start, end; /* inclusive */
	uint64_t got;	     /* bytes written so far (resume point) */
	struct fetch_xfer *xfer;
	struct fetch_xfer *hedge; /* the same bytes on a fresh connection */
	uint64_t started_ms, moved_ms; /* loop time: start, last byte */
	unsigned tries;
	unsigned faults; /* answers of the wrong length */
	int done, hedged;
};

struct job {
	struct pull *p;
	struct pull_file *file;
	enum state state;
	struct claim claim;	 /* the blob's, or the key's */
	struct claim blob_claim; /* a keyed file's, once its SHA-256 is known */
	/*
	 * The claim name of a file whose SHA-256 is not known in advance: a
	 * git file's oid, or the SHA-256 of the URL of a file taken on trust.
	 */
	char key[DIGEST_HEX_MAX];
	int tofu;	 /* no digest to check: whatever arrives is the file */
	int downloading; /* counted in pull.downloading */
	int relocate;	 /* the location expired: HEAD again when idle */
	int reused;
	int fd;
	char tmp[STORE_PATH_MAX];    /* the partial file */
	char fresh[STORE_PATH_MAX];  /* its new file, until renamed there */
	int old_fd;		     /* the file found there, while copied */
	char ranges[STORE_PATH_MAX]; /* its saved range state, LFS only */
	char *location;		     /* where the bytes are */
	int same_host;		     /* location on the origin's host */
	enum fetch_net origin_net;   /* the origin's address, from the HEAD */
	struct chunk *chunks;
	size_t nchunks, active;
	uint64_t chunk_ms, chunks_timed; /* finished ranges' total time */
	int plain;			 /* ranges refused: one GET from 0 */
	unsigned tries;
	/* hashing, in order */
	uint64_t hashed, hash_until;
	struct digest d256, d1;
	int hashing; /* a worker has the job: hashing, a resume's copy, or
			the index's look-up of its etag (etag_run()) */
	int finalized;
	/* range state to save once the data it names is on disk */
	int ranges_dirty;
	char *ranges_buf; /* the worker's copy, RANGES_MAX */
	size_t ranges_len;
	uv_work_t work;
	int work_rc;
	char sha256[DIGEST_HEX_MAX], gitsha1[DIGEST_HEX_MAX];
	uv_timer_t timer;      /* waits and backoff */
	struct index_job look; /* its etag, asked of the index */
	char look_sha[DIGEST_HEX_MAX];
	uint64_t look_size;
};

struct pull {
	uv_loop_t *loop;
	struct store *store;
	struct index *index;
	struct fetch *fetch;
	const struct pull_opts *o;
	struct pull_result *r;
	struct job *jobs;
	size_t n, started, finished;
	unsigned downloading; /* files in HEAD .. publish */
	int driving;
	unsigned closing; /* handles whose close callback is pending */
	/* the options, their defaults resolved (pull_start()) */
	uint64_t chunk;
	unsigned per_file, files_cap, attempts;
	uv_timer_t tick;  /* heartbeats and progress */
	uv_check_t check; /* after each turn of the loop: settled? */
	int reclaiming;	  /* reclaim() ran: its fault point passed */
	int noted;	  /* reclaim() noted the blob claims held */
	struct pull_file_progress *shown; /* what tick() reports */
	struct manifest *m;
	struct pull_file *files;
	void (*done)(void *arg);
	void *done_arg;
	int ended;
	int stopping;
	char origin_host[256];
	struct index_job publish; /* the snapshot, published off the loop */
	int64_t publish_now;
};

static void job_step(struct job *j);
static void fetch_next(struct job *j);
static void drive(struct pull *p);
static void job_finish(struct job *j, enum state st);
static void start_head(struct job *j);
static void restart_file(struct job *j, const char *why);
static int fresh_partial(struct job *j);
static void note_held(struct job *j);

static void
job_timer(uv_timer_t *t)
{
	job_step(t->data);
}

const char *
pull_state_name(enum pull_state s)
{
	static const char *const names[] = { "queued", "waiting", "starting",
		"fetching", "verifying", "done", "reused", "failed" };

	return names[s];
}

/* Records the first failure; every transfer then stops. */
static void fail(struct pull *p, enum pull_error e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fail(struct pull *p, enum pull_error e, const char *fmt, ...)
{
	va_list ap;

	if (p->r->error == PULL_OK) {
		p->r->error = e;
		va_start(ap, fmt);
		vsnprintf(p->r->message, sizeof(p->r->message), fmt, ap);
		va_end(ap);
	}
	p->stopping = 1;
}

/* The host part of a URL, for "is this the origin?". */
static void
url_host(const char *url, char *buf, size_t len)
{
	const char *s = strstr(url, "://"), *e;

	buf[0] = '\0';
	if (s == NULL)
		return;
	s += 3;
	e = s + strcspn(s, "/?#");
	if ((size_t)(e - s) < len) {
		memcpy(buf, s, (size_t)(e - s));
		buf[e - s] = '\0';
	}
}

/* A Location made absolute against the URL it answered (RFC 9110). */
static char *
absolute(const char *base, const char *loc)
{
	const char *s = strstr(base, "://"), *e;
	char *out;

	if (loc[0] != '/' || s == NULL)
		return strdup(loc);
	e = s + 3 + strcspn(s + 3, "/?#");
	if (asprintf(&out, "%.*s%s", (int)(e - base), base, loc) < 0)
		return NULL;
	return out;
}

static void
add_auth(struct pull *p, struct fetch_xfer *x, int same_host)
{
	char line[1024];

	/* Credentials go to the origin's host only, never to a CDN. */
	if (p->o->token != NULL && same_host) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s",
		    p->o->token);
		fetch_xfer_header(x, line);
	}
}

/* The wait the answer asked for, else a jittered backoff (backoff.h). */
static int64_t
retry_ms(struct fetch_xfer *x, unsigned tries)
{
	unsigned char rnd;
	int64_t ms;

	if (x != NULL && (ms = fetch_wait_ms(x)) >= 0)
		return ms; /* capped: an origin cannot park a pull */
	if (getrandom(&rnd, 1, 0) != 1)
		rnd = 128;
	ms = backoff_ms(BACKOFF_FIRST_MS, BACKOFF_MAX_MS, tries);
	return backoff_jitter(ms, rnd);
}

/*
 * A 429 is noted for everyone on the store (ratelimit.h); a note that
 * cannot be written costs only the others' waiting.
 */
static void
note_ratelimit(struct pull *p, const char *url, int64_t ms)
{
	char host[256];

	url_host(url, host, sizeof(host));
	(void)ratelimit_note(p->store, host, ms);
}

/*
 * How long to wait before asking url's host; the longest is reported.  A
 * note that cannot be read is no wait.
 */
static int64_t
ratelimit_wait(struct pull *p, const char *url)
{
	char host[256];
	int64_t left;

	url_host(url, host, sizeof(host));
	if (ratelimit_left(p->store, host, &left) < 0 || left <= 0)
		return 0;
	if ((uint64_t)left > p->r->ratelimit_ms)
		p->r->ratelimit_ms = (uint64_t)left;
	return left;
}

/* How an HTTP failure ends a pull, or 0 when it is worth retrying. */
static enum pull_error
final_error(const struct fetch_xfer *x)
{
	if (x->result != FETCH_OK)
		return PULL_OK;
	switch (x->status) {
	case 401:
		return PULL_UNAUTHORIZED;
	case 403:
		return PULL_FORBIDDEN;
	case 404:
		return PULL_NOT_FOUND;
	default:
		return x->status >= 400 && x->status < 500 &&
			x->status != 408 && x->status != 429 && x->status != 416
		    ? PULL_NOT_FOUND
		    : PULL_OK;
	}
}

static void
fail_http(struct job *j, const struct fetch_xfer *x, enum pull_error e)
{
	char what[300];

	snprintf(what, sizeof(what), "%ld %s%s%.200s", x->status,
	    x->error_code[0] != '\0' ? x->error_code : "",
	    x->error_message[0] != '\0' ? ": " : "", x->error_message);
	j->state = S_FAILED;
	fail(j->p, e, "cannot fetch '%.150s': %s", j->file->path, what);
}

static int
chunk_is_done(const void *arg, size_t i)
{
	const struct job *j = arg;

	return j->chunks[i].done;
}

/*
 * The range state (ranges.h) of the job's finished ranges, into buf
 * (RANGES_MAX).  It is saved by the hashing job (hash_work()), after the
 * partial file's data is on disk (ranges_save()).
 */
static size_t
format_ranges(const struct job *j, char *buf)
{
	return ranges_format(buf, j->file->size, j->p->chunk, j->nchunks,
	    chunk_is_done, j);
}

/* A range finished: its state is saved by the next hashing job. */
static void
save_ranges(struct job *j)
{
	if (j->ranges[0] != '\0')
		j->ranges_dirty = 1;
}

/*
 * Marks the ranges a saved state says are finished.  A state that is
 * missing, unreadable or of another file or range size marks none: the
 * file is fetched whole.
 */
static void
load_ranges(struct job *j)
{
	struct ranges r;
	size_t k, i;

	if (ranges_load(j->p->store, j->ranges, &r) < 0)
		return;
	if (r.size == j->file->size && r.chunk == j->p->chunk)
		for (k = 0; k < r.ndone; k++)
			if ((i = r.done[k]) < j->nchunks) {
				j->chunks[i].done = 1;
				j->chunks[i].got =
				    j->chunks[i].end - j->chunks[i].start + 1;
			}
	ranges_release(&r);
}

static int
make_chunks(struct job *j, int whole)
{
	uint64_t size = j->file->size,
		 c = whole ? (size ? size : 1) : j->p->chunk;
	size_t i, n = size == 0 ? 1 : (size_t)((size + c - 1) / c);

	free(j->chunks);
	j->chunks = calloc(n, sizeof(*j->chunks));
	if (j->chunks == NULL)
		return -ENOMEM;
	j->nchunks = n;
	for (i = 0; i < n; i++) {
		j->chunks[i].job = j;
		j->chunks[i].start = (uint64_t)i * c;
		j->chunks[i].end = size == 0	   ? 0
		    : ((uint64_t)i + 1) * c > size ? size - 1
						   : ((uint64_t)i + 1) * c - 1;
	}
	return 0;
}

/*
 * Copies len bytes at off from one file to the other: copy_file_range()
 * (a reflink or an in-kernel copy), or read and write where the kernel or
 * the filesystem cannot (another filesystem, FUSE, an old kernel).
 */
static int
copy_bytes(int from, int to, uint64_t off, uint64_t len)
{
	unsigned char *buf = NULL;
	loff_t in = (loff_t)off, out = (loff_t)off;
	ssize_t n, w;
	int rc = 0;

	while (len > 0) {
		n = copy_file_range(from, &in, to, &out,
		    len > (1ULL << 30) ? (size_t)1 << 30 : (size_t)len, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 &&
		    (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP ||
			errno == EINVAL))
			break;
		if (n <= 0)
			return n == 0 ? -EIO : -errno;
		len -= (uint64_t)n;
	}
	if (len > 0 && (buf = malloc(HASH_BLOCK)) == NULL)
		return -ENOMEM;
	while (len > 0 && rc == 0) {
		n = pread(from, buf,
		    len > HASH_BLOCK ? HASH_BLOCK : (size_t)len, in);
		if (n <= 0) {
			rc = n == 0 ? -EIO : -errno;
			break;
		}
		for (w = 0; w < n && rc == 0;) {
			ssize_t k = pwrite(to, buf + w, (size_t)(n - w), out);

			if (k == -1)
				rc = -errno;
			else {
				w += k;
				out += k;
			}
		}
		in += n;
		len -= (uint64_t)n;
	}
	free(buf);
	return rc;
}

/*
 * Thread pool: the finished ranges of the partial a previous holder left
 * (j->old_fd) copied into our fresh file (j->fd, at j->fresh), fsync'd;
 * the range state saved for what was copied; then the fresh file renamed
 * over the partial's name.  Both orders a crash can cut leave range state
 * that names only bytes the file at the name has.
 */
static void
resume_work(uv_work_t *w)
{
	struct job *j = w->data;
	char *buf = malloc(RANGES_MAX);
	size_t i, len;
	int rc = buf == NULL ? -ENOMEM : 0;

	for (i = 0; i < j->nchunks && rc == 0; i++)
		if (j->chunks[i].done)
			rc = copy_bytes(j->old_fd, j->fd, j->chunks[i].start,
			    j->chunks[i].end - j->chunks[i].start + 1);
	if (rc == 0 && fsync(j->fd) == -1)
		rc = -errno;
	if (rc == 0) {
		len = format_ranges(j, buf);
		rc = ranges_save(j->p->store, j->ranges, j->fd, buf, len, NULL);
	}
	if (rc == 0)
		rc = fresh_partial(j);
	free(buf);
	j->work_rc = rc;
}

/*
 * Back from the thread pool (what: "hash", "resume"): the file ends when
 * the pull stops or the job failed.  Returns 1 when it ended.
 */
static int
work_ended(struct job *j, const char *what)
{
	if (j->p->stopping) {
		job_finish(j, S_FAILED);
		return 1;
	}
	if (j->work_rc < 0) {
		fail(j->p,
		    j->work_rc == -ENOSPC ? PULL_NO_SPACE : PULL_INTERNAL,
		    "cannot %s '%s': %s", what, j->file->path,
		    strerror(-j->work_rc));
		job_finish(j, S_FAILED);
		return 1;
	}
	return 0;
}

static void
resume_done(uv_work_t *w, int status)
{
	struct job *j = w->data;

	(void)status;
	j->hashing = 0;
	close(j->old_fd);
	j->old_fd = -1;
	store_tmp_remove(j->p->store, j->fresh); /* "" once renamed */
	j->fresh[0] = '\0';
	if (!work_ended(j, "resume"))
		fetch_next(j);
}

/*
 * The fresh file becomes the partial: renamed over its name, then its
 * space reserved (a full volume fails here, not at 90 %).
 */
static int
fresh_partial(struct job *j)
{
	int dirfd = j->p->store->dirfd, rc;

	if (renameat(dirfd, j->fresh, dirfd, j->tmp) == -1)
		return -errno;
	j->fresh[0] = '\0';
	if (j->file->size > 0 &&
	    (rc = posix_fallocate(j->fd, 0, (off_t)j->file->size)) != 0)
		return -rc;
	return 0;
}

/*
 * Opens the partial file.  A git file's is private, since its SHA-256 is
 * not known before the bytes are.  An LFS file's partial is named by its
 * digest, so that whoever holds the claim next (after a crash, or taking a
 * stale claim over) resumes it; but the next holder never writes into the
 * file it finds there.  A holder stopped past the stale limit (SIGSTOP, a
 * frozen VM) still has that file open when it wakes and may write into it
 * until it finds its claim taken (a tick): were it the file we hash and
 * publish, those late writes would change a verified blob.  So every open
 * makes a fresh file (j->fresh), copies into it the ranges that the range
 * state says are finished, fsyncs it and renames it over the name
 * (resume_work(), in the thread pool when there is anything to copy):
 * whatever a stalled holder writes goes to a file no name leads to.  The
 * cost is one copy of the finished ranges per resume (a reflink where the
 * filesystem has them).  Returns 0 when the partial is ready, 1 when the
 * copy was queued (resume_done() goes on), or a negative errno.
 *
 * Nothing is copied from residue: anything but a regular file there (a
 * FIFO, a link), or what a crash in the middle of publishing left (the
 * partial made 0444, or still a name of the blob it became).
 */
static int
open_partial(struct job *j)
{
	struct pull *p = j->p;
	struct stat st;
	size_t i;
	int rc, any = 0;

	if (make_chunks(j, j->plain || j->file->sha256[0] == '\0') < 0)
		return -ENOMEM;
	if (j->file->sha256[0] == '\0') {
		j->fd =
		    store_tmp_create(p->store, ".part", j->tmp, sizeof(j->tmp));
		return j->fd < 0 ? j->fd : 0;
	}
	if ((rc = ranges_paths(j->file->sha256, j->tmp, j->ranges,
		 sizeof(j->tmp))) < 0)
		return rc;
	j->fd = store_tmp_create(p->store, ".part", j->fresh, sizeof(j->fresh));
	if (j->fd < 0)
		return j->fd;
	j->old_fd = openat(p->store->dirfd, j->tmp,
	    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (j->old_fd >= 0 && fstat(j->old_fd, &st) == 0 &&
	    S_ISREG(st.st_mode) && st.st_nlink == 1 &&
	    (st.st_mode & S_IWUSR) != 0 &&
	    (uint64_t)st.st_size == j->file->size) {
		load_ranges(j);
		for (i = 0; i < j->nchunks; i++)
			any |= j->chunks[i].done;
	}
	if (any) {
		j->hashing = 1; /* the worker has the job */
		j->work.data = j;
		uv_queue_work(p->loop, &j->work, resume_work, resume_done);
		return 1;
	}
	if (j->old_fd >= 0)
		close(j->old_fd);
	j->old_fd = -1;
	/* Nothing to resume: no range state may name the fresh file. */
	if (unlinkat(p->store->dirfd, j->ranges, 0) == -1 && errno != ENOENT)
		rc = -errno;
	else
		rc = fresh_partial(j);
	if (rc < 0) {
		store_tmp_remove(p->store, j->fresh);
		j->fresh[0] = '\0';
	}
	return rc;
}

static void
drop_partial(struct job *j)
{
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	if (j->tmp[0] != '\0')
		unlinkat(j->p->store->dirfd, j->tmp, 0);
	if (j->ranges[0] != '\0')
		unlinkat(j->p->store->dirfd, j->ranges, 0);
	j->tmp[0] = '\0';
}

/*
 * Thread pool: save the range state (after an fdatasync of what it names),
 * hash the finished prefix in order; fsync at the end.
 */
static void
hash_work(uv_work_t *w)
{
	struct job *j = w->data;
	unsigned char *buf = malloc(HASH_BLOCK);
	uint64_t until = j->hash_until;
	size_t n;
	ssize_t got;
	int rc, synced;

	j->work_rc = buf == NULL ? -ENOMEM : 0;
	/*
	 * First the finished ranges, saved once their bytes are on disk.  A
	 * state that cannot be written costs only a longer resume; bytes
	 * that did not get to disk fail the file.
	 */
	if (j->work_rc == 0 && j->ranges_len > 0) {
		rc = ranges_save(j->p->store, j->ranges, j->fd, j->ranges_buf,
		    j->ranges_len, &synced);
		if (!synced)
			j->work_rc = rc;
	}
	while (j->work_rc == 0 && j->hashed < until) {
		n = until - j->hashed > HASH_BLOCK
		    ? HASH_BLOCK
		    : (size_t)(until - j->hashed);
		got = pread(j->fd, buf, n, (off_t)j->hashed);
		if (got <= 0) {
			j->work_rc = got == 0 ? -EIO : -errno;
			break;
		}
		digest_update(&j->d256, buf, (size_t)got);
		if (j->d1.ctx != NULL)
			digest_update(&j->d1, buf, (size_t)got);
		/* Start the write-back now: the final fsync finds little. */
		sync_file_range(j->fd, (off_t)j->hashed, got,
		    SYNC_FILE_RANGE_WRITE);
		j->hashed += (uint64_t)got;
	}
	free(buf);
	if (j->work_rc == 0 && j->hashed == j->file->size) {
		j->finalized = 1;
		digest_final(&j->d256, j->sha256);
		if (j->d1.ctx != NULL)
			digest_final(&j->d1, j->gitsha1);
		if (fsync(j->fd) == -1)
			j->work_rc = -errno;
	}
}

static void hash_done(uv_work_t *w, int status);

/* Starts hashing what is contiguous and finished, if not already. */
static void
hash_more(struct job *j)
{
	uint64_t until = 0;
	size_t i;

	if (j->hashing || j->finalized || j->p->stopping)
		return;
	if (j->d256.ctx == NULL) {
		digest_init(&j->d256, DIGEST_SHA256, 0);
		if (j->file->gitsha1[0] != '\0')
			digest_init(&j->d1, DIGEST_GITSHA1, j->file->size);
	}
	/* Decided here, on the loop thread: the worker reads only this. */
	for (i = 0; i < j->nchunks && j->chunks[i].done; i++)
		until = j->chunks[i].end + 1;
	if (until > j->file->size)
		until = j->file->size;
	/* Bounded, so that range state is saved as the ranges come. */
	if (until > j->hashed + HASH_JOB_MAX)
		until = j->hashed + HASH_JOB_MAX;
	if (j->ranges_dirty && j->ranges_buf == NULL &&
	    (j->ranges_buf = malloc(RANGES_MAX)) == NULL)
		j->ranges_dirty = 0; /* unsaved: a resume fetches more */
	if (i < j->nchunks && until <= j->hashed && !j->ranges_dirty)
		return; /* nothing new in order yet */
	j->ranges_len = 0;
	if (j->ranges_dirty) {
		j->ranges_len = format_ranges(j, j->ranges_buf);
		j->ranges_dirty = 0;
	}
	j->hash_until = until;
	j->hashing = 1;
	j->work.data = j;
	uv_queue_work(j->p->loop, &j->work, hash_work, hash_done);
}

static void
drop_hedge(struct chunk *c)
{
	if (c->hedge != NULL) {
		fetch_xfer_cancel(c->hedge);
		fetch_xfer_free(c->hedge);
		c->hedge = NULL;
	}
}

/* Cancels every transfer of a file, hedges first. */
static void
cancel_transfers(struct job *j)
{
	size_t k;

	for (k = 0; k < j->nchunks; k++)
		drop_hedge(&j->chunks[k]);
	for (k = 0; k < j->nchunks; k++)
		if (j->chunks[k].xfer != NULL) {
			fetch_xfer_cancel(j->chunks[k].xfer);
			fetch_xfer_free(j->chunks[k].xfer);
			j->chunks[k].xfer = NULL;
			j->active--;
		}
}

/* After a failure: stop every transfer and wait; nothing half is kept. */
static void
stop_all(struct pull *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		struct job *j = &p->jobs[i];

		cancel_transfers(j);
		uv_timer_stop(&j->timer);
		if (j->state != S_IDLE && j->state != S_DONE &&
		    j->state != S_FAILED && j->state != S_HEAD && !j->hashing)
			j->state = S_FAILED;
	}
}

static int
settled(const struct pull *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		const struct job *j = &p->jobs[i];

		if (j->hashing || j->state == S_HEAD ||
		    (!p->stopping && j->state != S_DONE))
			return 0;
	}
	return 1;
}

static void
job_finish(struct job *j, enum state st)
{
	struct pull *p = j->p;

	j->state = st;
	uv_timer_stop(&j->timer);
	if (j->downloading) {
		j->downloading = 0;
		p->downloading--;
	}
	if (st == S_FAILED && j->tmp[0] != '\0' && j->ranges[0] == '\0')
		drop_partial(j); /* a private partial cannot resume */
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	p->finished++;
	if (p->stopping)
		stop_all(p);
	else
		drive(p);
}

/*
 * Forgets what a file got so far (transfers, partial descriptor, hashing),
 * leaving the partial file itself alone: it is shared by name with
 * whoever holds the claim now.  A later holder of the claim starts afresh.
 */
static void
forget_progress(struct job *j)
{
	struct pull *p = j->p;

	cancel_transfers(j);
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	j->tmp[0] = j->ranges[0] = '\0'; /* the names are not ours */
	digest_release(&j->d256);
	digest_release(&j->d1);
	j->hashed = 0;
	j->finalized = 0;
	j->ranges_dirty = 0;
	if (j->downloading) {
		j->downloading = 0;
		p->downloading--;
	}
}

/*
 * The file we hashed is no longer at our partial's name: a holder that took
 * the claim over while we stalled has replaced or published it.  Ours is
 * not published (it may hold that holder's writes too); we let it go, and
 * look again: the blob may be in now, or we fetch it anew.
 */
static void
lost_race(struct job *j)
{
	struct pull *p = j->p;

	p->r->claims_lost++;
	forget_progress(j);
	claim_release(p->store, &j->claim);
	claim_release(p->store, &j->blob_claim);
	if (j->key[0] != '\0')
		j->file->sha256[0] = '\0';
	if (++j->tries >= p->attempts) {
		fail(p, PULL_INTERNAL,
		    "cannot publish '%s': another process keeps replacing"
		    " its partial file",
		    j->file->path);
		job_finish(j, S_FAILED);
		return;
	}
	j->state = S_CLAIM;
	uv_timer_start(&j->timer, job_timer, WAIT_MS, 0);
}

/*
 * Is the claim that guards the blob still ours?  A process stopped past
 * the stale limit (SIGSTOP, a frozen VM) finds on waking that another took
 * the claim over and fetches the same blob, into a file of its own at the
 * same partial name (the one we write into is no longer there).
 * Then it stands down: stops writing, publishes nothing, deletes nothing
 * that is now the other's, lets the claim go without touching the file,
 * and waits for the blob as any waiter does.  Checked before publishing,
 * and while fetching on each tick, when the beat thread found the claim's
 * name gone to another file.  Returns 1 when it stood down.
 */
static int
stood_down(struct job *j)
{
	struct pull *p = j->p;
	struct claim *guard = j->key[0] != '\0' ? &j->blob_claim : &j->claim;

	if (j->hashing || !guard->held ||
	    claim_check(p->store, guard) != -ESTALE)
		return 0;
	claim_release(p->store, guard); /* not ours: the file stays */
	p->r->claims_lost++;
	uv_timer_stop(&j->timer);
	if (j->key[0] != '\0') {
		/* Our private, verified file: publish it or reuse theirs. */
		j->state = S_HASH;
	} else {
		forget_progress(j);
		j->state = S_CLAIM;
	}
	uv_timer_start(&j->timer, job_timer, WAIT_MS, 0);
	return 1;
}

/* Verified bytes become a blob, under the blob's claim. */
static void
publish(struct job *j)
{
	struct pull *p = j->p;
	int rc;

	if (j->file->sha256[0] == '\0')
		snprintf(j->file->sha256, sizeof(j->file->sha256), "%s",
		    j->sha256);
	if (j->key[0] != '\0' && !j->blob_claim.held) {
		rc = claim_try(p->store, &j->blob_claim, j->sha256,
		    store_now_ms(p->store), p->store->stale_ms);
		if (rc == -EBUSY &&
		    store_blob_check(p->store, j->sha256, j->file->size) == 0) {
			/* Someone else published the same bytes: reuse. */
			store_tmp_remove(p->store, j->tmp);
			j->tmp[0] = '\0';
			job_finish(j, S_DONE);
			return;
		}
		if (rc == -EBUSY || rc == -EAGAIN) {
			/* A keyed file whose blob another is publishing. */
			j->state = S_HASH;
			uv_timer_start(&j->timer, job_timer, WAIT_MS, 0);
			return;
		}
	}
	if (stood_down(j))
		return;
	fault_point("pull-verified");
	/* The very file that was hashed, never whatever is at its name. */
	rc = store_blob_publish_fd(p->store, j->fd, j->tmp, j->sha256,
	    j->file->size);
	if (rc == -ESTALE) {
		lost_race(j);
		return;
	}
	if (rc == -EBADMSG) {
		restart_file(j, "the partial file is not the file's size");
		return;
	}
	if (rc < 0) {
		fail(p, rc == -ENOSPC ? PULL_NO_SPACE : PULL_INTERNAL,
		    "cannot publish '%s': %s", j->file->path, strerror(-rc));
		job_finish(j, S_FAILED);
		return;
	}
	j->tmp[0] = '\0';
	if (j->ranges[0] != '\0')
		unlinkat(p->store->dirfd, j->ranges, 0);
	/* Waiters on a key learn where its bytes went. */
	if (j->key[0] != '\0')
		claim_note(p->store, &j->claim, j->sha256);
	if (p->noted) /* fetched again by reclaim(), which may wait */
		note_held(j);
	job_finish(j, S_DONE);
}

static void
restart_file(struct job *j, const char *why)
{
	int rc;

	/*
	 * A shared partial is dropped only under our claim: woken from a
	 * stall, the name may be the file of the holder that took over.
	 */
	if (j->key[0] == '\0' && stood_down(j))
		return;
	j->tries++;
	drop_partial(j);
	digest_release(&j->d256);
	digest_release(&j->d1);
	j->hashed = 0;
	j->finalized = 0;
	if (j->tries >= j->p->attempts) {
		fail(j->p, PULL_INTEGRITY, "'%s': %s, every time",
		    j->file->path, why);
		job_finish(j, S_FAILED);
		return;
	}
	j->state = S_FETCH;
	if ((rc = open_partial(j)) < 0) {
		fail(j->p, PULL_INTERNAL, "cannot reopen '%s'", j->file->path);
		job_finish(j, S_FAILED);
		return;
	}
	if (rc == 0) /* else resume_done() goes on */
		fetch_next(j);
}

static void
hash_done(uv_work_t *w, int status)
{
	struct job *j = w->data;
	int ok;

	j->hashing = 0;
	if (work_ended(j, "hash"))
		return;
	if (j->plain && j->nchunks > 1) {
		/* Ranges were refused while we hashed: restart now. */
		if (j->active == 0)
			restart_file(j, "ranges refused");
		return;
	}
	if (!j->finalized) {
		hash_more(j);
		return;
	}
	ok = j->tofu ? 1
	    : j->file->gitsha1[0] != '\0'
	    ? strcmp(j->gitsha1, j->file->gitsha1) == 0
	    : strcmp(j->sha256, j->file->sha256) == 0;
	if (!ok) {
		/* Wrong bytes: never published; fetched again from scratch. */
		restart_file(j, "the bytes do not match the origin's digest");
		return;
	}
	publish(j);
}

static void chunk_done(struct fetch_xfer *x);

static void
count_bytes(struct fetch_xfer *x, size_t n)
{
	struct chunk *c = x->arg;

	c->job->p->r->bytes_origin += n;
	if (x == c->xfer)
		c->moved_ms = uv_now(c->job->p->loop);
}

/*
 * A transfer of the file's bytes from where they are, into its partial
 * file: the token only on the origin's host, never a byte past the file's
 * end, ranged or not.  The caller says which bytes.  NULL: no memory.
 */
static struct fetch_xfer *
bytes_xfer(struct job *j)
{
	struct fetch_xfer *x = fetch_xfer_new(j->p->fetch, j->location);

	if (x == NULL)
		return NULL;
	add_auth(j->p, x, j->same_host);
	fetch_xfer_origin(x, j->origin_net);
	if (j->same_host)
		fetch_xfer_follow(x);
	fetch_xfer_expect(x, j->file->size);
	x->progress = count_bytes;
	return x;
}

static int
start_chunk(struct job *j, struct chunk *c)
{
	struct pull *p = j->p;
	struct fetch_xfer *x;
	uint64_t from;
	int rc;

	/* Without ranges there is no resuming: the whole file, from 0. */
	if (j->plain)
		c->got = 0;
	from = c->start + c->got;
	if ((x = bytes_xfer(j)) == NULL)
		return -ENOMEM;
	/* One whole file without a range, or the part still missing. */
	if (j->plain || (j->nchunks == 1 && c->got == 0))
		fetch_xfer_to_fd(x, j->fd, from, UINT64_MAX, UINT64_MAX);
	else
		fetch_xfer_to_fd(x, j->fd, from, from, c->end);
	if ((rc = fetch_xfer_start(x, chunk_done, c)) < 0) {
		fetch_xfer_free(x);
		return rc;
	}
	c->xfer = x;
	c->started_ms = c->moved_ms = uv_now(p->loop);
	j->active++;
	return 0;
}

/* Keeps up to per_file ranges in flight. */
static void
fetch_next(struct job *j)
{
	int64_t wait;
	size_t i;

	if (!j->relocate && (wait = ratelimit_wait(j->p, j->location)) > 0) {
		uv_timer_start(&j->timer, job_timer, (uint64_t)wait, 0);
		hash_more(j);
		return;
	}
	if (j->plain && j->nchunks > 1) {
		/* Ranges refused: the file restarts once nothing runs. */
		if (j->active == 0 && !j->hashing)
			restart_file(j, "ranges refused");
		return;
	}
	for (i = 0; i < j->nchunks && j->active < j->p->per_file &&
	     !j->p->stopping && !j->relocate;
	     i++)
		if (!j->chunks[i].done && j->chunks[i].xfer == NULL &&
		    start_chunk(j, &j->chunks[i]) < 0) {
			fail(j->p, PULL_INTERNAL, "cannot start '%s'",
			    j->file->path);
			break;
		}
	hash_more(j);
}

/* Again after a pause; a 429 makes everyone on the store pause. */
static void
retry_later(struct job *j, struct fetch_xfer *x, const char *url)
{
	int64_t ms = retry_ms(x, j->tries);

	if (x->result == FETCH_OK && x->status == 429)
		note_ratelimit(j->p, url, ms);
	uv_timer_start(&j->timer, job_timer, (uint64_t)ms, 0);
}

static void
chunk_done(struct fetch_xfer *x)
{
	struct chunk *c = x->arg;
	struct job *j = c->job;
	uint64_t want = c->end - c->start + 1;
	enum pull_error e;

	j->active--;
	c->xfer = NULL;
	c->got += x->got;
	drop_hedge(c); /* this one answered first */
	if (j->p->stopping)
		goto out;
	if (x->result == FETCH_WRITE) {
		fail(j->p,
		    x->write_errno == ENOSPC ? PULL_NO_SPACE : PULL_INTERNAL,
		    "cannot write '%s': %s", j->file->path,
		    strerror(x->write_errno));
		goto out;
	}
	if (x->result == FETCH_REFUSED) {
		fail(j->p, PULL_FORBIDDEN, "cannot fetch '%.150s': %s",
		    j->file->path, x->curl_error);
		goto out;
	}
	if (x->result == FETCH_TOO_LONG ||
	    (x->result == FETCH_TOO_SHORT && x->got == 0)) {
		/*
		 * An answer longer than asked for is not the file: none of it
		 * is kept.  Asked again a few times, then the pull fails.  (A
		 * short one that brought bytes resumes, below.)
		 */
		if (x->result == FETCH_TOO_LONG)
			c->got -= x->got;
		if (++c->faults >= FAULT_TRIES) {
			fail(j->p,
			    x->result == FETCH_TOO_LONG ? PULL_INTEGRITY
							: PULL_NETWORK,
			    "cannot fetch '%s': %s (%u times)", j->file->path,
			    x->curl_error, c->faults);
			goto out;
		}
		uv_timer_start(&j->timer, job_timer,
		    (uint64_t)retry_ms(NULL, c->faults), 0);
		fetch_xfer_free(x);
		return;
	}
	if (x->result == FETCH_RANGE_IGNORED ||
	    (x->result == FETCH_OK && x->status == 416)) {
		/* The origin will not do ranges: one plain GET from 0. */
		fetch_xfer_free(x);
		if (j->active > 0 || j->hashing) {
			j->plain = 1; /* the others finish, then restart */
			return;
		}
		j->plain = 1;
		j->tries--;
		restart_file(j, "ranges refused");
		return;
	}
	if ((e = final_error(x)) != PULL_OK && !j->same_host &&
	    (e == PULL_FORBIDDEN || e == PULL_UNAUTHORIZED) &&
	    ++j->tries < j->p->attempts) {
		/* A signed CDN URL expired: ask the origin again. */
		j->relocate = 1;
		retry_later(j, x, j->location);
		fetch_xfer_free(x);
		return;
	}
	if (e != PULL_OK) {
		fail_http(j, x, e);
		goto out;
	}
	if (x->result == FETCH_OK && x->status >= 200 && x->status < 300 &&
	    c->got >= want) {
		c->done = 1;
		j->chunk_ms += uv_now(j->p->loop) - c->started_ms;
		j->chunks_timed++;
		fault_point("pull-range-done");
		save_ranges(j);
		fetch_xfer_free(x);
		if (j->plain && j->nchunks > 1) {
			/* Ranges were refused: restart once the others end. */
			if (j->active == 0 && !j->hashing)
				restart_file(j, "ranges refused");
			return;
		}
		fetch_next(j);
		return;
	}
	/* Network error, 408, 429, 5xx or a short body: again, later. */
	if (++c->tries >= j->p->attempts) {
		char what[sizeof(x->curl_error)];

		snprintf(what, sizeof(what), "%s",
		    x->result != FETCH_OK ? x->curl_error : "");
		if (x->result == FETCH_OK)
			snprintf(what, sizeof(what), "HTTP %ld", x->status);
		fail(j->p, PULL_NETWORK, "cannot fetch '%s': %s", j->file->path,
		    what);
		goto out;
	}
	retry_later(j, x, j->location);
	fetch_xfer_free(x);
	return;
out:
	fetch_xfer_free(x);
	if (j->active == 0 && !j->hashing)
		job_finish(j, S_FAILED);
}

/*
 * A hedge that answered first completes its range: the slow transfer is
 * dropped.  One that failed is dropped; the slow one carries on.
 */
static void
hedge_done(struct fetch_xfer *x)
{
	struct chunk *c = x->arg;
	struct job *j = c->job;

	c->hedge = NULL;
	if (j->p->stopping || c->xfer == NULL || x->result != FETCH_OK ||
	    x->status < 200 || x->status >= 300 ||
	    x->range_start + x->got < c->end + 1) {
		fetch_xfer_free(x);
		return;
	}
	fetch_xfer_free(x);
	fetch_xfer_cancel(c->xfer);
	fetch_xfer_free(c->xfer);
	c->xfer = NULL;
	j->active--;
	c->got = c->end - c->start + 1;
	c->done = 1;
	save_ranges(j);
	fetch_next(j);
}

/* Asks again, on a fresh connection, for what a slow range still lacks. */
static void
start_hedge(struct job *j, struct chunk *c)
{
	uint64_t from = c->start + c->got + c->xfer->got;
	struct fetch_xfer *x;

	c->hedged = 1;
	if (from > c->end || (x = bytes_xfer(j)) == NULL)
		return;
	fetch_xfer_fresh(x);
	fetch_xfer_to_fd(x, j->fd, from, from, c->end);
	if (fetch_xfer_start(x, hedge_done, c) < 0) {
		fetch_xfer_free(x);
		return;
	}
	c->hedge = x;
	j->p->r->hedges++;
}

/*
 * Once every range of a file is finished or in flight (the tail), a range
 * that has moved no byte for HEDGE_STALL_MS, or has taken HEDGE_SLOW times
 * as long as the file's finished ranges took on average (plus
 * HEDGE_SLACK_MS), is hedged once.
 */
static void
hedge_tail(struct job *j)
{
	uint64_t now = uv_now(j->p->loop), usual;
	size_t i;

	if (j->state != S_FETCH || j->plain || j->relocate || j->p->stopping)
		return;
	for (i = 0; i < j->nchunks; i++)
		if (!j->chunks[i].done && j->chunks[i].xfer == NULL)
			return; /* not the tail yet */
	usual = j->chunks_timed > 0 ? j->chunk_ms / j->chunks_timed : 0;
	for (i = 0; i < j->nchunks; i++) {
		struct chunk *c = &j->chunks[i];

		if (c->xfer == NULL || c->hedged)
			continue;
		if (now - c->moved_ms >= HEDGE_STALL_MS ||
		    (usual > 0 &&
			now - c->started_ms >
			    HEDGE_SLOW * usual + HEDGE_SLACK_MS))
			start_hedge(j, c);
	}
}

static void head_done(struct fetch_xfer *x);

/* Asks the origin where the bytes are, without following redirects. */
static void
start_head(struct job *j)
{
	struct pull *p = j->p;
	struct fetch_xfer *x;
	int64_t wait;

	/* Claims are taken for every file at once; downloads are capped. */
	if (!j->downloading && p->downloading >= p->files_cap) {
		j->state = S_READY;
		return;
	}
	if (!j->downloading) {
		j->downloading = 1;
		p->downloading++;
	}
	if ((wait = ratelimit_wait(p, j->file->url)) > 0) {
		j->state = S_CLAIM; /* the claim is held: ask after the wait */
		uv_timer_start(&j->timer, job_timer, (uint64_t)wait, 0);
		return;
	}
	x = fetch_xfer_new(p->fetch, j->file->url);
	j->state = S_HEAD;
	if (x == NULL) {
		fail(p, PULL_INTERNAL, "out of memory");
		job_finish(j, S_FAILED);
		return;
	}
	add_auth(p, x, 1);
	fetch_xfer_head(x);
	fetch_xfer_to_memory(x, 65536);
	if (fetch_xfer_start(x, head_done, j) < 0) {
		fetch_xfer_free(x);
		fail(p, PULL_INTERNAL, "cannot start '%s'", j->file->path);
		job_finish(j, S_FAILED);
	}
}

static void
head_done(struct fetch_xfer *x)
{
	struct job *j = x->arg;
	struct pull *p = j->p;
	char host[256];
	enum pull_error e;
	int rc;

	if (p->stopping)
		goto failed;
	if (x->result == FETCH_REFUSED) {
		fail(p, PULL_FORBIDDEN, "cannot fetch '%.150s': %s",
		    j->file->path, x->curl_error);
		goto failed;
	}
	if ((e = final_error(x)) != PULL_OK) {
		fail_http(j, x, e);
		goto failed;
	}
	if (x->result != FETCH_OK || x->status >= 500 || x->status == 408 ||
	    x->status == 429) {
		if (++j->tries >= p->attempts) {
			fail(p, PULL_NETWORK,
			    "cannot reach the origin for '%s': %s",
			    j->file->path,
			    x->result == FETCH_OK ? "server error"
						  : x->curl_error);
			goto failed;
		}
		j->state = S_CLAIM; /* ask again after a pause */
		retry_later(j, x, j->file->url);
		fetch_xfer_free(x);
		return;
	}
	/* A redirect points at the bytes (an LFS CDN); else the URL itself. */
	free(j->location);
	j->location = absolute(j->file->url,
	    x->status >= 300 && x->status < 400 && x->location != NULL
		? x->location
		: j->file->url);
	j->origin_net = x->origin_net;
	fetch_xfer_free(x);
	if (j->location == NULL) {
		fail(p, PULL_INTERNAL, "out of memory");
		job_finish(j, S_FAILED);
		return;
	}
	url_host(j->location, host, sizeof(host));
	j->same_host = strcmp(host, p->origin_host) == 0;
	j->relocate = 0;
	j->state = S_FETCH;
	/* A second HEAD only refreshes an expired location. */
	rc = j->fd < 0 ? open_partial(j) : 0;
	if (rc < 0) {
		fail(p, rc == -ENOSPC ? PULL_NO_SPACE : PULL_INTERNAL,
		    "cannot store '%s': %s", j->file->path, strerror(-rc));
		drop_partial(j);
		job_finish(j, S_FAILED);
		return;
	}
	if (rc == 0) /* else resume_done() goes on */
		fetch_next(j);
	return;
failed:
	fetch_xfer_free(x);
	job_finish(j, S_FAILED);
}

/* The file's blob is in the store already: nothing to fetch. */
static void
job_reused(struct job *j)
{
	j->reused = 1;
	j->p->r->bytes_reused += j->file->size;
	job_finish(j, S_DONE);
}

/*
 * A keyed file is claimed by its key while it is fetched.  Whoever gets the
 * claim after another process let it go finds the digest that process
 * noted, or (a git file) its file in the index by etag, and reuses the blob.
 */
/*
 * The index's queue: the blob of an indexed file with this etag.  A node's
 * own index may not know yet what another node published (and noted)
 * before it let the claim we now hold go: the manifests are asked once
 * more.
 */
static int
etag_run(struct index_job *look, struct index *index)
{
	struct job *j = look->data;
	int rc = index_find_etag(index, j->key, j->look_sha, &j->look_size);

	if (rc == -ENOENT && index_refresh(index, j->p->store) == 0)
		rc = index_find_etag(index, j->key, j->look_sha, &j->look_size);
	return rc;
}

/* The claim is ours: a blob the index knows by the etag is reused. */
static void
etag_done(struct index_job *look, int rc)
{
	struct job *j = look->data;
	struct pull *p = j->p;

	j->hashing = 0;
	if (p->stopping) {
		job_finish(j, S_FAILED);
		return;
	}
	if (rc == 0 && j->look_size == j->file->size &&
	    store_blob_check(p->store, j->look_sha, j->file->size) == 0) {
		snprintf(j->file->sha256, sizeof(j->file->sha256), "%s",
		    j->look_sha);
		/* Noted, so that nobody waits on us to let the claim go. */
		claim_note(p->store, &j->claim, j->look_sha);
		job_reused(j);
		return;
	}
	start_head(j);
}

/*
 * After claim_try() answered rc: 0 when the claim is ours.  Else 1: the
 * file waits (a live claim is another's, or a stale one was just
 * removed), or it failed.
 */
static int
not_claimed(struct job *j, int rc)
{
	if (rc == -EBUSY || rc == -EAGAIN) {
		uv_timer_start(&j->timer, job_timer, WAIT_MS, 0);
		return 1;
	}
	if (rc < 0) {
		fail(j->p, PULL_INTERNAL, "cannot claim '%s': %s",
		    j->file->path, strerror(-rc));
		job_finish(j, S_FAILED);
		return 1;
	}
	return 0;
}

static void
key_claim(struct job *j)
{
	struct pull *p = j->p;
	char sha[DIGEST_HEX_MAX];
	int rc;

	rc = claim_try(p->store, &j->claim, j->key, store_now_ms(p->store),
	    p->store->stale_ms);
	if (rc == -EBUSY &&
	    claim_note_read(p->store, j->key, sha, sizeof(sha)) == 0 &&
	    ref_is_hex(sha, DIGEST_SHA256_HEX) &&
	    store_blob_check(p->store, sha, j->file->size) == 0) {
		/* Its holder published it and noted the digest: reuse. */
		snprintf(j->file->sha256, sizeof(j->file->sha256), "%s", sha);
		job_reused(j);
		return;
	}
	if (not_claimed(j, rc))
		return;
	if (j->file->gitsha1[0] != '\0') {
		j->hashing = 1; /* the index's worker has it: etag_done() */
		j->look.data = j;
		index_queue(p->index, p->loop, &j->look, etag_run, etag_done);
		return;
	}
	start_head(j);
}

/* CLAIM: take the blob's claim, reuse a blob already there, or wait. */
static void
job_step(struct job *j)
{
	struct pull *p = j->p;
	int rc;

	if (j->state == S_DONE || j->state == S_FAILED)
		return; /* a late timer of a finished file */
	if (p->stopping) {
		job_finish(j, S_FAILED);
		return;
	}
	if (j->state == S_FETCH && j->relocate) {
		if (j->active == 0)
			start_head(j);
		return;
	}
	if (j->state == S_FETCH) {
		fetch_next(j);
		return;
	}
	if (j->state == S_HASH) {
		publish(j);
		return;
	}
	if (j->key[0] != '\0' && !j->claim.held) {
		key_claim(j);
		return;
	}
	if (j->file->sha256[0] != '\0' && !j->claim.held) {
		rc = claim_try(p->store, &j->claim, j->file->sha256,
		    store_now_ms(p->store), p->store->stale_ms);
		if (rc == -EBUSY &&
		    store_blob_check(p->store, j->file->sha256,
			j->file->size) == 0) {
			/*
			 * Published already, its claim still held until the
			 * holder's index commit: reuse it now.  A waiter never
			 * needs a holder to release, only to publish, so
			 * pulls sharing blobs cannot wait in a circle.
			 */
			job_reused(j);
			return;
		}
		/* Another process fetches it: wait, then reuse. */
		if (not_claimed(j, rc))
			return;
		rc = store_blob_check(p->store, j->file->sha256, j->file->size);
		if (rc == 0) {
			job_reused(j);
			return;
		}
		/* Not the bytes its name promises: aside, and fetched anew. */
		if (rc == -EBADMSG &&
		    (rc = store_blob_quarantine(p->store, j->file->sha256)) <
			0) {
			fail(p, PULL_INTERNAL,
			    "cannot set aside the wrong-size blob of '%s': %s",
			    j->file->path, strerror(-rc));
			job_finish(j, S_FAILED);
			return;
		}
	}
	start_head(j);
}

/* Starts files while fewer than the cap are in flight. */
static void
drive(struct pull *p)
{
	size_t i;

	/* Every file takes its claim (or waits) at once... */
	if (!p->driving) {
		p->driving = 1; /* a job that finishes at once re-enters */
		while (!p->stopping && p->started < p->n) {
			struct job *j = &p->jobs[p->started++];

			j->state = S_CLAIM;
			job_step(j);
		}
		p->driving = 0;
	}
	/* ...and those ready to download go as slots free up. */
	for (i = 0; i < p->n && !p->stopping && p->downloading < p->files_cap;
	     i++)
		if (p->jobs[i].state == S_READY)
			start_head(&p->jobs[i]);
}

/*
 * How far another process has got with a blob we wait for: the ranges its
 * partial file's range state says are finished.
 */
static uint64_t
others_bytes(struct pull *p, const struct pull_file *f)
{
	char rel[STORE_PATH_MAX];
	struct ranges r;
	uint64_t n = 0;

	if (f->sha256[0] == '\0' ||
	    ranges_paths(f->sha256, NULL, rel, sizeof(rel)) < 0 ||
	    ranges_load(p->store, rel, &r) < 0)
		return 0;
	if (r.size == f->size)
		n = (uint64_t)r.ndone * r.chunk;
	ranges_release(&r);
	return n < f->size ? n : f->size;
}

/* One file's state and bytes in place, for progress. */
static void
job_progress(struct job *j, struct pull_file_progress *fp)
{
	size_t i;

	fp->file = j->file;
	fp->bytes = 0;
	fp->ranges = (unsigned)j->active;
	switch (j->state) {
	case S_IDLE:
	case S_READY:
		fp->state = PULL_QUEUED;
		break;
	case S_CLAIM:
		fp->state = j->claim.held ? PULL_STARTING : PULL_WAITING;
		if (!j->claim.held) {
			fp->bytes = others_bytes(j->p, j->file);
			return;
		}
		break;
	case S_HEAD:
		fp->state = PULL_STARTING;
		break;
	case S_FETCH:
		fp->state = PULL_FETCHING;
		break;
	case S_HASH:
		fp->state = PULL_VERIFYING;
		break;
	case S_DONE:
		fp->state = j->reused ? PULL_REUSED : PULL_DONE;
		fp->bytes = j->file->size;
		return;
	case S_FAILED:
		fp->state = PULL_FAILED;
		break;
	}
	for (i = 0; i < j->nchunks; i++)
		fp->bytes += j->chunks[i].got +
		    (j->chunks[i].xfer != NULL ? j->chunks[i].xfer->got : 0);
	if (fp->bytes > j->file->size)
		fp->bytes = j->file->size;
	if (fp->state == PULL_FETCHING && fp->bytes == j->file->size &&
	    j->active == 0)
		fp->state = PULL_VERIFYING;
}

/* Heartbeats for held claims; hedges for slow tails; progress for people. */
static void
tick(uv_timer_t *t)
{
	struct pull *p = t->data;
	struct pull_progress pp;
	size_t i;

	for (i = 0; i < p->n; i++) {
		struct job *j = &p->jobs[i];

		/* With a beat thread, this only asks what it found. */
		if (j->claim.held && j->key[0] == '\0' && j->state == S_FETCH &&
		    claim_touch(p->store, &j->claim) == -ENOENT &&
		    stood_down(j))
			continue;
		hedge_tail(j);
	}
	if (p->o->progress == NULL)
		return;
	memset(&pp, 0, sizeof(pp));
	pp.total = p->r->bytes_total;
	pp.reused = p->r->bytes_reused;
	pp.nfiles = p->n;
	pp.nfinished = p->finished;
	pp.files = p->shown;
	for (i = 0; i < p->n; i++) {
		job_progress(&p->jobs[i], &p->shown[i]);
		if (p->shown[i].state != PULL_REUSED)
			pp.done += p->shown[i].bytes;
	}
	p->o->progress(p->o->arg, &pp);
}

void
pull_files_free(struct pull_file *files, size_t n)
{
	size_t i;

	for (i = 0; files != NULL && i < n; i++) {
		free(files[i].path);
		free(files[i].url);
	}
	free(files);
}

static int
add_files(struct manifest *m, const struct pull_file *files, size_t n)
{
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		const struct pull_file *f = &files[i];
		const char *etag =
		    f->gitsha1[0] != '\0' ? f->gitsha1 : f->sha256;

		if ((rc = manifest_add_file(m, f->path, f->size, f->sha256,
			 etag)) < 0)
			return rc;
	}
	return manifest_sort(m);
}

/* The handles live in p and p->jobs: those are freed once all are closed. */
static void
handle_closed(uv_handle_t *h)
{
	struct pull *p = h->data;

	if (--p->closing == 0) {
		free(p->jobs);
		free(p->shown);
		free(p);
	}
}

static void
close_handle(struct pull *p, uv_handle_t *h)
{
	h->data = p;
	p->closing++;
	uv_close(h, handle_closed);
}

/* Lets go of partial files, claims and memory the jobs hold. */
static void
cleanup(struct pull *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		struct job *j = &p->jobs[i];

		if (j->fd >= 0)
			close(j->fd);
		/*
		 * A shared partial stays for the next attempt to resume,
		 * unless the volume is full: then nothing is left behind.
		 * Either way, before the claim that guards it is let go.
		 */
		if (j->tmp[0] != '\0' &&
		    (j->ranges[0] == '\0' || p->r->error == PULL_NO_SPACE))
			unlinkat(p->store->dirfd, j->tmp, 0);
		if (j->ranges[0] != '\0' && p->r->error == PULL_NO_SPACE)
			unlinkat(p->store->dirfd, j->ranges, 0);
		claim_release(p->store, &j->claim);
		claim_release(p->store, &j->blob_claim);
		digest_release(&j->d256);
		digest_release(&j->d1);
		free(j->chunks);
		free(j->location);
		free(j->ranges_buf);
	}
}

/* Closes every handle; p is freed by the last close callback. */
static void
close_all(struct pull *p)
{
	size_t i;

	p->closing = 1; /* a hold, until every close below is started */
	for (i = 0; i < p->n; i++)
		close_handle(p, (uv_handle_t *)&p->jobs[i].timer);
	close_handle(p, (uv_handle_t *)&p->tick);
	close_handle(p, (uv_handle_t *)&p->check);
	handle_closed((uv_handle_t *)&p->check); /* the hold */
}

/* The index's queue: the snapshot published (fsyncs and the index row). */
static int
publish_run(struct index_job *job, struct index *index)
{
	struct pull *p = job->data;
	int rc;

	if ((rc = add_files(p->m, p->files, p->n)) == 0 &&
	    p->m->commit[0] == '\0')
		rc = manifest_derive_commit(p->m);
	if (rc == 0)
		rc = snapshot_publish(p->store, index, p->m, p->publish_now);
	return rc;
}

/* Published, or not (rc): report, let everything go. */
static void
published(struct pull *p, int rc)
{
	if (rc == -EBUSY) { /* published all the same */
		p->r->unindexed = 1;
		rc = 0;
	}
	if (rc < 0) {
		p->r->error = rc == -ENOSPC ? PULL_NO_SPACE : PULL_INTERNAL;
		snprintf(p->r->message, sizeof(p->r->message),
		    "cannot publish the snapshot: %s", strerror(-rc));
	}
	cleanup(p);
	p->done(p->done_arg);
	close_all(p);
}

static void
publish_done(struct index_job *job, int rc)
{
	published(job->data, rc);
}

/* Every file settled: publish the snapshot, report, let everything go. */
static void
finish(struct pull *p)
{
	/* A failure settles the pull with ranges still in flight: end them. */
	if (p->stopping)
		stop_all(p);
	tick(&p->tick);
	if (p->r->error == PULL_OK) {
		/* Every blob is in; the claims are held until the index has it. */
		p->publish_now = (int64_t)time(NULL);
		p->publish.data = p;
		index_queue(p->index, p->loop, &p->publish, publish_run,
		    publish_done);
		return;
	}
	published(p, 0);
}

/* Whether the job holds the claim named by its blob's SHA-256. */
static int
holds_blob(const struct job *j)
{
	const char *sha = j->file->sha256;

	return (j->claim.held && strcmp(j->claim.sha256, sha) == 0) ||
	    (j->blob_claim.held && strcmp(j->blob_claim.sha256, sha) == 0);
}

/* Notes the digest in the blob claim the job holds (reclaim()). */
static void
note_held(struct job *j)
{
	struct claim *c =
	    j->claim.held && strcmp(j->claim.sha256, j->file->sha256) == 0
	    ? &j->claim
	    : &j->blob_claim;

	claim_note(j->p->store, c, j->file->sha256);
}

/*
 * A file that reused a blob while another process held its claim (a
 * publisher that had not saved its manifest yet, or a key's holder that
 * noted the digest) holds nothing that keeps the blob until our manifest
 * names it.  A remover (snapshot.c, drop_batch()) claims the blob, reads
 * the manifests, and deletes a blob none names: were the other holder's
 * model removed once it let the claim go, or were the holder the remover,
 * the blob would go before our manifest is saved, and the manifest would
 * name a missing blob.  So, before the manifest, every such blob's claim
 * is taken once more:
 *
 *  - free: we take it, note it, and hold it until the snapshot is
 *    published (cleanup()), as a fetcher does; under it the blob is looked
 *    at, and a blob gone (or of the wrong size: set aside) is fetched again.
 *    A remover that took it before us is done with it; one after us waits
 *    for us, and then reads our manifest.
 *  - held and noted, with the blob there: a pull (here) or an importer
 *    (origin_dir.c) that holds it with the blob in, and names it in its
 *    own manifest before it lets go.  Accepted without waiting: such a
 *    holder may itself be waiting here on a claim we hold, and waiting
 *    would be a circle.  (What this leaves: that holder's model removed in
 *    full between its release and our manifest; see modelcache-store(5).)
 *  - held otherwise (not noted: a remover, a pull that has nothing to
 *    claim again, a holder that has just made the file, or noted with the
 *    blob gone): we look again in WAIT_MS.  No circle: removers never
 *    wait on a pull, and a pull notes every blob claim it holds before it
 *    first waits here (so notes cost nothing in the usual pull, which has
 *    nothing to claim again); a waiter that sees the note stops waiting.
 *
 * Returns 1 while a file waits or is fetched again, 0 when the manifest
 * may be saved (or the pull failed: p->r->error).
 */
static int
reclaim(struct pull *p)
{
	char note[DIGEST_HEX_MAX];
	size_t i;
	int rc, again = 0;

	if (!p->noted) {
		for (i = 0; i < p->n && !again; i++)
			again = p->jobs[i].state == S_DONE &&
			    !holds_blob(&p->jobs[i]);
		if (!again)
			return 0; /* nothing to claim again: the usual case */
		again = 0;
		p->noted = 1;
		/* Before we may wait on anyone: see above. */
		for (i = 0; i < p->n; i++)
			if (holds_blob(&p->jobs[i]))
				note_held(&p->jobs[i]);
	}
	for (i = 0; i < p->n && p->r->error == PULL_OK; i++) {
		struct job *j = &p->jobs[i];
		const char *sha = j->file->sha256;

		if (j->state != S_DONE || holds_blob(j))
			continue;
		rc = claim_try(p->store, &j->blob_claim, sha,
		    store_now_ms(p->store), p->store->stale_ms);
		if (rc == -EBUSY &&
		    claim_note_read(p->store, sha, note, sizeof(note)) == 0 &&
		    store_blob_check(p->store, sha, j->file->size) == 0)
			continue; /* a publisher's: it names the blob */
		if (rc == -EBUSY || rc == -EAGAIN) {
			uv_timer_start(&j->timer, job_timer, WAIT_MS, 0);
			again = 1;
			continue;
		}
		if (rc < 0) {
			fail(p, PULL_INTERNAL, "cannot claim '%s': %s",
			    j->file->path, strerror(-rc));
			return 0;
		}
		rc = store_blob_check(p->store, sha, j->file->size);
		if (rc == -EBADMSG)
			rc = store_blob_quarantine(p->store, sha) < 0 ? -EIO
								      : -ENOENT;
		if (rc == 0) {
			claim_note(p->store, &j->blob_claim, sha);
			continue;
		}
		if (rc != -ENOENT) {
			fail(p, PULL_INTERNAL,
			    "cannot look at the blob of '%s'", j->file->path);
			return 0;
		}
		/* Removed meanwhile: fetched again, under the claim we hold. */
		if (j->key[0] == '\0' && !j->claim.held) {
			j->claim = j->blob_claim;
			memset(&j->blob_claim, 0, sizeof(j->blob_claim));
		}
		if (j->reused)
			p->r->bytes_reused -= j->file->size;
		j->reused = 0;
		p->finished--;
		start_head(j);
		again = 1;
	}
	return again;
}

/* After each turn of the loop: has everything settled? */
static void
check(uv_check_t *h)
{
	struct pull *p = h->data;

	if (!p->ended && settled(p)) {
		if (!p->reclaiming) {
			p->reclaiming = 1;
			fault_point("pull-settled");
		}
		if (!p->stopping && p->r->error == PULL_OK && reclaim(p))
			return;
		p->ended = 1;
		uv_check_stop(h);
		uv_timer_stop(&p->tick);
		finish(p);
	}
}

void
pull_stop(struct pull *p, enum pull_error why, const char *message)
{
	if (p->ended)
		return;
	fail(p, why, "%s", message);
	stop_all(p);
	/* Wake the loop: check() finishes once hashing jobs are back. */
	uv_timer_start(&p->tick, tick, 0, 1000);
}

/* Sets a job's key: the git oid, or for a file on trust its URL's SHA-256. */
static int
job_key(struct job *j)
{
	const struct pull_file *f = j->file;
	struct digest d;
	int rc;

	j->tofu = f->sha256[0] == '\0' && f->gitsha1[0] == '\0';
	if (f->gitsha1[0] != '\0')
		snprintf(j->key, sizeof(j->key), "%s", f->gitsha1);
	if (!j->tofu)
		return 0;
	if ((rc = digest_init(&d, DIGEST_SHA256, 0)) < 0)
		return rc;
	if ((rc = digest_update(&d, f->url, strlen(f->url))) == 0)
		rc = digest_final(&d, j->key);
	digest_release(&d);
	return rc;
}

static void
pull_free(struct pull *p)
{
	free(p->jobs);
	free(p->shown);
	free(p);
}

static struct pull *
pull_new(size_t n)
{
	struct pull *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->jobs = calloc(n ? n : 1, sizeof(*p->jobs));
	p->shown = calloc(n ? n : 1, sizeof(*p->shown));
	if (p->jobs == NULL || p->shown == NULL) {
		pull_free(p);
		return NULL;
	}
	p->n = n;
	return p;
}

int
pull_start(uv_loop_t *loop, struct store *store, struct index *index,
    struct fetch *fetch, struct pull_file *files, size_t n,
    const struct pull_opts *opts, struct manifest *m,
    struct pull_result *result, void (*done)(void *arg), void *arg,
    struct pull **out)
{
	struct pull *p;
	size_t i;
	int rc;

	memset(result, 0, sizeof(*result));
	if ((p = pull_new(n)) == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		p->jobs[i].p = p;
		p->jobs[i].file = &files[i];
		p->jobs[i].fd = -1;
		p->jobs[i].old_fd = -1;
		if ((rc = job_key(&p->jobs[i])) < 0) {
			pull_free(p);
			return rc;
		}
		result->bytes_total += files[i].size;
	}
	p->loop = loop;
	p->store = store;
	p->index = index;
	p->fetch = fetch;
	p->o = opts;
	p->r = result;
	p->m = m;
	p->files = files;
	p->done = done;
	p->done_arg = arg;
	p->chunk = opts->chunk ? opts->chunk : CHUNK_DEFAULT;
	p->per_file = opts->per_file ? opts->per_file : PER_FILE_DEFAULT;
	p->files_cap = opts->files ? opts->files : FILES_DEFAULT;
	p->attempts = opts->attempts ? opts->attempts : ATTEMPTS_DEFAULT;
	if (n > 0)
		url_host(files[0].url, p->origin_host, sizeof(p->origin_host));
	for (i = 0; i < n; i++) {
		uv_timer_init(loop, &p->jobs[i].timer);
		p->jobs[i].timer.data = &p->jobs[i];
	}
	uv_timer_init(loop, &p->tick);
	p->tick.data = p;
	uv_check_init(loop, &p->check);
	p->check.data = p;
	uv_check_start(&p->check, check);
	drive(p);
	/* Settled already (every blob in the store): the loop must turn. */
	uv_timer_start(&p->tick, tick, settled(p) ? 0 : 1000, 1000);
	if (out != NULL)
		*out = p;
	return 0;
}
