/*
 * claim: see claim.h for the protocol.  One subtlety: a claim file is
 * created and then written, so a reader may briefly see it empty; only its
 * existence and mtime matter for correctness, the content is for people.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "beat.h"
#include "claim.h"
#include "ref.h"

#define CLAIM_POLL_MIN_MS 5
#define CLAIM_POLL_MAX_MS 200
#define CLAIM_EEXIST_TRIES 3 /* creates after an EEXIST with no file */

int64_t
claim_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
mtime_ms(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000 +
	    st->st_mtim.tv_nsec / 1000000;
}

static int
claim_path(const char *sha256, char *buf, size_t len)
{
	int n;

	/* A blob's SHA-256, or the git SHA-1 a pull knows before the bytes. */
	if (!ref_is_hex(sha256, DIGEST_SHA256_HEX) &&
	    !ref_is_hex(sha256, DIGEST_SHA1_HEX))
		return -EINVAL;
	n = snprintf(buf, len, "claims/%s", sha256);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Reads a claim file's "<owner> <generation>" line (may be empty). */
static void
read_line(struct store *store, const char *rel, char *line, size_t len)
{
	struct stat st;
	ssize_t n;
	int fd;

	line[0] = '\0';
	/* O_NONBLOCK: a FIFO planted there must not hang the reader. */
	fd = openat(store->dirfd, rel,
	    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1)
		return;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return;
	}
	n = read(fd, line, len - 1);
	line[n > 0 ? n : 0] = '\0';
	close(fd);
}

int
claim_stale(struct store *store, const char *rel, int64_t now_ms,
    int64_t stale_ms)
{
	char line[STORE_OWNER_MAX + 32];
	struct stat st;
	int owner;

	if (fstatat(store->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return 0;
	if (!S_ISREG(st.st_mode))
		return 1; /* no one's claim (a FIFO, a link): residue */
	read_line(store, rel, line, sizeof(line));
	owner = store_owner_state(store, line);
	if (owner == OWNER_DEAD)
		return 1; /* its process is gone: no need to wait */
	return owner != OWNER_ALIVE && now_ms - mtime_ms(&st) > stale_ms;
}

int
claim_live(struct store *store, const char *sha256, int64_t now_ms,
    int64_t stale_ms)
{
	char rel[STORE_PATH_MAX];

	if (claim_path(sha256, rel, sizeof(rel)) < 0 ||
	    faccessat(store->dirfd, rel, F_OK, AT_SYMLINK_NOFOLLOW) == -1)
		return 0;
	return !claim_stale(store, rel, now_ms, stale_ms);
}

/*
 * Removes a stale claim so that exactly one contender replaces it.  Two
 * contenders may both have seen it stale; the later one's rename would then
 * move the winner's fresh claim aside, so what was moved is checked again
 * and a fresh claim is put back.  If someone has claimed the name again in
 * that instant, the fresh claim is left aside (fsck clears it once stale)
 * rather than deleted.
 */
static int
claim_takeover(struct store *store, const char *rel, int64_t now_ms,
    int64_t stale_ms)
{
	char aside[STORE_PATH_MAX];
	int n;

	n = snprintf(aside, sizeof(aside), "%s.stale.%s", rel, store->owner);
	if (n < 0 || (size_t)n >= sizeof(aside))
		return -ENAMETOOLONG;
	if (renameat(store->dirfd, rel, store->dirfd, aside) == -1)
		return errno == ENOENT ? 0 : -errno;
	if (claim_stale(store, aside, now_ms, stale_ms)) {
		unlinkat(store->dirfd, aside, 0);
		return 0;
	}
	renameat2(store->dirfd, aside, store->dirfd, rel, RENAME_NOREPLACE);
	return 0;
}

int
claim_try(struct store *store, struct claim *claim, const char *sha256,
    int64_t now_ms, int64_t stale_ms)
{
	char rel[STORE_PATH_MAX];
	int fd, rc = 0, n;

	if (claim->held && strcmp(claim->sha256, sha256) == 0)
		return -EALREADY;
	claim->held = 0;
	if ((rc = claim_path(sha256, rel, sizeof(rel))) < 0)
		return rc;
	snprintf(claim->sha256, sizeof(claim->sha256), "%s", sha256);
	/*
	 * EEXIST alone proves nothing on a network filesystem: a mount may
	 * answer it for a file another mount has just deleted, and two
	 * racing creates have both been answered EEXIST with no file left.
	 * So the claim is looked at again: absent, the create is tried
	 * again (a few times, then the caller retries); unreadable for now
	 * (ESTALE), it counts as held, and the caller polls.
	 */
	for (n = 0;; n++) {
		fd = openat(store->dirfd, rel,
		    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd >= 0 || errno != EEXIST)
			break;
		if (faccessat(store->dirfd, rel, F_OK, AT_SYMLINK_NOFOLLOW) ==
			0 ||
		    errno != ENOENT || n >= CLAIM_EEXIST_TRIES) {
			errno =
			    EEXIST; /* the create's answer, not the look's */
			break;
		}
	}
	if (fd == -1 && errno != EEXIST)
		return -errno;
	if (fd == -1) {
		if (!claim_stale(store, rel, now_ms, stale_ms))
			return faccessat(store->dirfd, rel, F_OK,
				   AT_SYMLINK_NOFOLLOW) == 0 ||
				errno != ENOENT
			    ? -EBUSY
			    : -EAGAIN;
		if ((rc = claim_takeover(store, rel, now_ms, stale_ms)) < 0)
			return rc;
		return -EAGAIN;
	}
	n = snprintf(claim->line, sizeof(claim->line), "%s %lld\n",
	    store->owner, (long long)now_ms);
	if (write(fd, claim->line, (size_t)n) != n)
		rc = -EIO;
	/* Stamped as its heartbeats will be (see lease_take()). */
	if (rc == 0 && futimens(fd, NULL) == -1)
		rc = -errno;
	close(fd);
	if (rc == 0 && store->beat != NULL)
		rc = beat_add(store->beat, store->dirfd, rel);
	if (rc < 0) {
		unlinkat(store->dirfd, rel, 0);
		return rc;
	}
	claim->held = 1;
	return 0;
}

int
claim_acquire_beat(struct store *store, struct claim *claim, const char *sha256,
    int64_t stale_ms, int64_t timeout_ms, void (*beat)(void *arg), void *arg)
{
	int64_t start = claim_now_ms(), last = start, wait = CLAIM_POLL_MIN_MS;
	struct timespec ts;
	int rc;

	/* The local clock times our own wait; the store's judges theirs. */
	for (;;) {
		rc = claim_try(store, claim, sha256, store_now_ms(store),
		    stale_ms);
		if (rc == -EAGAIN)
			continue;
		if (rc != -EBUSY)
			return rc;
		if (claim_now_ms() - start >= timeout_ms)
			return -ETIMEDOUT;
		if (beat != NULL && claim_now_ms() - last >= stale_ms / 4) {
			beat(arg);
			last = claim_now_ms();
		}
		ts.tv_sec = wait / 1000;
		ts.tv_nsec = (wait % 1000) * 1000000;
		nanosleep(&ts, NULL);
		if (wait < CLAIM_POLL_MAX_MS)
			wait *= 2;
	}
}

int
claim_acquire(struct store *store, struct claim *claim, const char *sha256,
    int64_t stale_ms, int64_t timeout_ms)
{
	return claim_acquire_beat(store, claim, sha256, stale_ms, timeout_ms,
	    NULL, NULL);
}

int
claim_touch(struct store *store, struct claim *claim)
{
	char rel[STORE_PATH_MAX];
	int rc;

	if (!claim->held)
		return -EINVAL;
	if ((rc = claim_path(claim->sha256, rel, sizeof(rel))) < 0)
		return rc;
	if (store->beat != NULL) {
		rc = beat_state(store->beat, store->dirfd, rel);
		return rc == -ESRCH ? -ENOENT : rc;
	}
	if (utimensat(store->dirfd, rel, NULL, 0) == -1)
		return -errno;
	return 0;
}

int
claim_check(struct store *store, struct claim *claim)
{
	char rel[STORE_PATH_MAX], line[sizeof(claim->line)];
	int rc;

	if (!claim->held)
		return -EINVAL;
	if ((rc = claim_path(claim->sha256, rel, sizeof(rel))) < 0)
		return rc;
	read_line(store, rel, line, sizeof(line));
	return strcmp(line, claim->line) == 0 ? 0 : -ESTALE;
}

void
claim_release(struct store *store, struct claim *claim)
{
	char rel[STORE_PATH_MAX], line[sizeof(claim->line)];

	if (!claim->held)
		return;
	/* A claim taken over while we stalled is no longer ours to remove. */
	if (claim_path(claim->sha256, rel, sizeof(rel)) == 0) {
		if (store->beat != NULL)
			beat_remove(store->beat, store->dirfd, rel);
		read_line(store, rel, line, sizeof(line));
		if (strcmp(line, claim->line) == 0)
			unlinkat(store->dirfd, rel, 0);
	}
	claim->held = 0;
}

int
claim_note(struct store *store, struct claim *claim, const char *note)
{
	char rel[STORE_PATH_MAX], line[sizeof(claim->line)];
	size_t len = strcspn(claim->line, "\n");
	int n, rc;

	if (!claim->held)
		return -EINVAL;
	if ((rc = claim_path(claim->sha256, rel, sizeof(rel))) < 0)
		return rc;
	n = snprintf(line, sizeof(line), "%.*s %s\n", (int)len, claim->line,
	    note);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -ENAMETOOLONG;
	/* Replaced whole by rename: a reader sees the old line or the new. */
	if ((rc = store_write_atomic(store, rel, line, (size_t)n, 0644)) < 0)
		return rc;
	memcpy(claim->line, line, (size_t)n + 1);
	/* A new inode under the name: the one to keep beating. */
	if (store->beat != NULL)
		beat_add(store->beat, store->dirfd, rel);
	return 0;
}

int
claim_note_read(struct store *store, const char *name, char *buf, size_t len)
{
	char rel[STORE_PATH_MAX], line[STORE_OWNER_MAX + 128];
	const char *note;
	int rc;

	if ((rc = claim_path(name, rel, sizeof(rel))) < 0)
		return rc;
	read_line(store, rel, line, sizeof(line));
	/* "<owner> <ms> <note>" */
	note = strchr(line, ' ');
	note = note != NULL ? strchr(note + 1, ' ') : NULL;
	if (note == NULL)
		return -ENOENT;
	snprintf(buf, len, "%.*s", (int)strcspn(note + 1, "\n"), note + 1);
	return buf[0] != '\0' ? 0 : -ENOENT;
}
