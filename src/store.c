/*
 * store: the directory tree of a store and the one way bytes enter it.
 *
 * Invariants kept here:
 *  - a name under blobs/ always holds exactly the bytes its digest names,
 *    because nothing is renamed there before its digest was computed over
 *    the bytes that were fsync'd, and what is renamed is a hard link of the
 *    very file that was hashed (its descriptor), never whatever sits at a
 *    tmp name;
 *  - a blob is reused only at the size it should have (store_blob_check());
 *    one of another size is quarantined under tmp/, never deleted;
 *  - every temporary file lives under tmp/, whatever it is destined for, so
 *    a crash leaves residue in one place only (fsck clears it) and never a
 *    stray file in hub/ where Hugging Face tools would see it;
 *  - a published blob is 0444 and never opened for writing again.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "ref.h"
#include "store.h"

#define INGEST_CHUNK (1024 * 1024)
#define INGEST_FLUSH (16 * 1024 * 1024)

static const char *const store_dirs[] = {
	"blobs",
	"blobs/sha256",
	"manifests",
	"hub",
	"leases",
	"claims",
	"tmp",
};

static int
mkdir_p(const char *path, int mode)
{
	char buf[STORE_PATH_MAX];
	size_t len = strlen(path), i;

	if (len == 0 || len >= sizeof(buf))
		return len == 0 ? 0 : -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, mode) == -1 && errno != EEXIST)
			return -errno;
		if (i < len)
			buf[i] = '/';
	}
	return 0;
}

int
store_mkdirs(struct store *store, const char *rel)
{
	char buf[STORE_PATH_MAX];
	size_t len = strlen(rel), i, last = 0;
	int rc;

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, rel, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdirat(store->dirfd, buf, 0755) == -1) {
			if (errno != EEXIST)
				return -errno;
		} else {
			/* A new entry is durable once its parent is synced. */
			char c = buf[last];

			buf[last] = '\0';
			rc = store_fsync_dir(store, last == 0 ? "" : buf);
			if (rc < 0)
				return rc;
			/* Restored even at 0: "a/b" with a new "a" goes on. */
			buf[last] = c;
		}
		last = i;
		if (i < len)
			buf[i] = '/';
	}
	return 0;
}

/*
 * Reads the start time of process pid (0: this one), in clock ticks since
 * boot, field 22 of /proc/<pid>/stat.  Returns 0, -ENOENT when there is
 * no such process, another negative errno, or -EBADMSG.
 */
static int
proc_start(long pid, unsigned long long *start)
{
	char path[64], buf[1024], *p, *end;
	ssize_t n;
	int fd, field;

	if (pid == 0)
		snprintf(path, sizeof(path), "/proc/self/stat");
	else
		snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n == 0 ? -EBADMSG : -errno;
	buf[n] = '\0';
	/* "<pid> (<comm>) <state> ...": comm may hold anything but ")". */
	if ((p = strrchr(buf, ')')) == NULL)
		return -EBADMSG;
	for (field = 2; field < 22; field++)
		if ((p = strchr(p + 1, ' ')) == NULL)
			return -EBADMSG;
	if (p[1] < '0' || p[1] > '9')
		return -EBADMSG;
	*start = strtoull(p + 1, &end, 10);
	return *end == ' ' ? 0 : -EBADMSG;
}

/*
 * Splits the owner id at the start of name, "<host>.<boot>.<pidns>.<pid>.
 * <start>" followed by '.', ' ' or the end.  Returns the length of its
 * place, "<host>.<boot>.<pidns>.", or 0 when name holds no such id.
 */
static size_t
owner_split(const char *name, long *pid, unsigned long long *start)
{
	const char *p = name;
	char *end;
	size_t place;
	int dots;

	for (dots = 0; dots < 3; p++) {
		if (*p == '\0' || *p == ' ')
			return 0;
		if (*p == '.')
			dots++;
	}
	place = (size_t)(p - name);
	if (*p < '0' || *p > '9')
		return 0;
	*pid = strtol(p, &end, 10);
	if (*end != '.' || *pid <= 0 || end[1] < '0' || end[1] > '9')
		return 0;
	*start = strtoull(end + 1, &end, 10);
	if (*end != '.' && *end != ' ' && *end != '\0')
		return 0;
	return place;
}

/*
 * Names this process "<host>.<boot>.<pidns>.<pid>.<start>": the first
 * eight characters of the kernel's boot id, the inode of the PID namespace
 * (containers of one pod share a host name, not a PID namespace), the pid
 * and the process's start time in clock ticks since boot, which makes the
 * name differ from that of an earlier process that had the same pid.  The
 * start time is 0 (never checked) where /proc is not our PID namespace's.
 */
static void
owner_make(struct store *store, const char *host)
{
	unsigned long long start = 0;
	char boot[9] = "0", self[32];
	struct stat st;
	ssize_t n;
	size_t i;
	int fd;

	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd != -1) {
		if (read(fd, boot, 8) == 8) {
			boot[8] = '\0';
			for (i = 0; i < 8; i++)
				if (!isxdigit((unsigned char)boot[i]))
					boot[i] = '0';
		} else
			snprintf(boot, sizeof(boot), "0");
		close(fd);
	}
	if (stat("/proc/self/ns/pid", &st) == -1)
		st.st_ino = 0;
	/* /proc/self names us by the pid that /proc's namespace gives us. */
	n = readlink("/proc/self", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		if (strtol(self, NULL, 10) != (long)getpid() ||
		    proc_start(0, &start) < 0)
			start = 0;
	}
	snprintf(store->owner, sizeof(store->owner), "%s.%s.%lu.%ld.%llu", host,
	    boot, (unsigned long)st.st_ino, (long)getpid(), start);
}

int
store_open(struct store *store, const char *root, int create)
{
	char host[64];
	size_t i;
	int rc;

	memset(store, 0, sizeof(*store));
	store->dirfd = -1;
	store->stale_ms = STORE_STALE_MS;
	if (create && (rc = mkdir_p(root, 0755)) < 0)
		return rc;
	store->root = strdup(root);
	if (store->root == NULL)
		return -ENOMEM;
	store->dirfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (store->dirfd == -1) {
		rc = -errno;
		goto fail;
	}
	for (i = 0; i < sizeof(store_dirs) / sizeof(store_dirs[0]); i++) {
		if (create &&
		    mkdirat(store->dirfd, store_dirs[i], 0755) == -1 &&
		    errno != EEXIST) {
			rc = -errno;
			goto fail;
		}
		if (!create &&
		    faccessat(store->dirfd, store_dirs[i], F_OK, 0)) {
			rc = -errno;
			goto fail;
		}
	}
	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	/* Owner ids go into file names: keep them to safe characters. */
	for (i = 0; host[i] != '\0'; i++)
		if (host[i] == '/' || host[i] == '.' || host[i] < 0x21)
			host[i] = '_';
	/* The directories just made must survive a crash too. */
	if (create && (rc = store_fsync_dir(store, "")) < 0)
		goto fail;
	owner_make(store, host);
	return 0;
fail:
	store_release(store);
	return rc;
}

int64_t
store_now_ms(struct store *store)
{
	struct timespec ts;
	struct stat st;

	/*
	 * tmp/ itself is the clock: every participant may write there, and a
	 * directory of its own would be residue after a crash.  Another
	 * process touching it between our touch and our stat only makes the
	 * time later, still "now".
	 */
	if (store->dirfd != -1 &&
	    utimensat(store->dirfd, "tmp", NULL, AT_SYMLINK_NOFOLLOW) == 0 &&
	    fstatat(store->dirfd, "tmp", &st, AT_SYMLINK_NOFOLLOW) == 0)
		return (int64_t)st.st_mtim.tv_sec * 1000 +
		    st.st_mtim.tv_nsec / 1000000;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
store_release(struct store *store)
{
	if (store->dirfd != -1)
		close(store->dirfd);
	store->dirfd = -1;
	free(store->root);
	store->root = NULL;
}

int
store_owner_state(const struct store *store, const char *name)
{
	unsigned long long start, mystart, now;
	size_t place;
	long pid, mypid;
	int rc;

	/*
	 * Only an owner of our place (host, boot, PID namespace) can be
	 * asked, and only with a start time to tell its incarnation: a pid
	 * alone is reused, by a restarted container most of all.
	 */
	place = owner_split(store->owner, &mypid, &mystart);
	if (place == 0 || mystart == 0 ||
	    strncmp(name, store->owner, place) != 0 ||
	    owner_split(name, &pid, &start) != place || start == 0)
		return OWNER_UNKNOWN;
	if (pid == mypid)
		return start == mystart ? OWNER_ALIVE : OWNER_DEAD;
	rc = proc_start(pid, &now);
	if (rc == -ENOENT || rc == -ESRCH)
		return OWNER_DEAD;
	if (rc < 0)
		return OWNER_UNKNOWN;
	return now == start ? OWNER_ALIVE : OWNER_DEAD;
}

int
store_blob_path(const char *sha256, char *buf, size_t len)
{
	int n;

	if (!ref_is_hex(sha256, DIGEST_SHA256_HEX))
		return -EINVAL;
	n = snprintf(buf, len, "blobs/sha256/%.2s/%s", sha256, sha256);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int
store_blob_stat(struct store *store, const char *sha256, uint64_t *size)
{
	char rel[STORE_PATH_MAX];
	struct stat st;
	int rc;

	if ((rc = store_blob_path(sha256, rel, sizeof(rel))) < 0)
		return rc;
	if (fstatat(store->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EBADMSG;
	if (size != NULL)
		*size = (uint64_t)st.st_size;
	return 0;
}

int
store_tmp_create(struct store *store, const char *suffix, char *rel, size_t len)
{
	unsigned char rnd[6];
	int fd, n, tries;

	for (tries = 0; tries < 16; tries++) {
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			return -EIO;
		n = snprintf(rel, len, "tmp/%s.%02x%02x%02x%02x%02x%02x%s",
		    store->owner, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
		    rnd[5], suffix);
		if (n < 0 || (size_t)n >= len)
			return -ENAMETOOLONG;
		fd = openat(store->dirfd, rel,
		    O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd != -1)
			return fd;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

void
store_tmp_remove(struct store *store, const char *rel)
{
	if (rel[0] != '\0')
		unlinkat(store->dirfd, rel, 0);
}

DIR *
store_opendirat(int dirfd, const char *rel)
{
	DIR *d;
	int fd, saved;

	fd =
	    openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return NULL;
	if ((d = fdopendir(fd)) == NULL) {
		saved = errno;
		close(fd);
		errno = saved;
	}
	return d;
}

int
store_fsync_dir(struct store *store, const char *rel)
{
	int fd, rc = 0;

	fd = openat(store->dirfd, rel[0] == '\0' ? "." : rel,
	    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	if (fsync(fd) == -1)
		rc = -errno;
	close(fd);
	return rc;
}

int
store_quarantine(struct store *store, const char *rel, const char *suffix)
{
	char tmp[STORE_PATH_MAX];
	const char *base = strrchr(rel, '/');
	struct timespec ts;
	long long ms;
	int n, tries;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	/* Evidence is never overwritten: a name taken is the next ms's. */
	for (tries = 0; tries < 100; tries++, ms++) {
		n = snprintf(tmp, sizeof(tmp), "tmp/quarantine.%lld.%s%s", ms,
		    base != NULL ? base + 1 : rel, suffix);
		if (n < 0 || (size_t)n >= sizeof(tmp))
			return -ENAMETOOLONG;
		if (renameat2(store->dirfd, rel, store->dirfd, tmp,
			RENAME_NOREPLACE) == 0)
			return 0;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

int
store_blob_check(struct store *store, const char *sha256, uint64_t size)
{
	uint64_t have;
	int rc;

	if ((rc = store_blob_stat(store, sha256, &have)) < 0)
		return rc;
	return have == size ? 0 : -EBADMSG;
}

int
store_blob_quarantine(struct store *store, const char *sha256)
{
	char rel[STORE_PATH_MAX];
	int rc;

	if ((rc = store_blob_path(sha256, rel, sizeof(rel))) < 0)
		return rc;
	return store_quarantine(store, rel, ".corrupt");
}

/*
 * Renames the tmp file rel, of size bytes, to the blob sha256, unless a
 * blob of that size is there already (then rel goes).  One of another size
 * is quarantined first: its name promises bytes it does not hold.
 */
static int
publish_name(struct store *store, const char *rel, const char *sha256,
    uint64_t size)
{
	char dst[STORE_PATH_MAX], dir[32];
	int rc;

	if ((rc = store_blob_path(sha256, dst, sizeof(dst))) < 0)
		return rc;
	snprintf(dir, sizeof(dir), "blobs/sha256/%.2s", sha256);
	if ((rc = store_mkdirs(store, dir)) < 0)
		return rc;
	rc = store_blob_check(store, sha256, size);
	if (rc == 0) {
		/* Same name, same bytes: keep the published one. */
		store_tmp_remove(store, rel);
		return 0;
	}
	if (rc == -EBADMSG && (rc = store_blob_quarantine(store, sha256)) < 0)
		return rc;
	if (rc < 0 && rc != -ENOENT)
		return rc;
	if (fchmodat(store->dirfd, rel, 0444, 0) == -1)
		return -errno;
	fault_point("blob-before-rename");
	if (renameat(store->dirfd, rel, store->dirfd, dst) == -1)
		return -errno;
	fault_point("blob-after-rename");
	return store_fsync_dir(store, dir);
}

/* Whether the store-relative rel names the file st describes. */
static int
names(struct store *store, const char *rel, const struct stat *st)
{
	struct stat at;

	return fstatat(store->dirfd, rel, &at, AT_SYMLINK_NOFOLLOW) == 0 &&
	    at.st_dev == st->st_dev && at.st_ino == st->st_ino;
}

int
store_blob_publish_fd(struct store *store, int fd, const char *rel,
    const char *sha256, uint64_t size)
{
	char own[STORE_PATH_MAX], proc[64];
	struct stat st;
	int tfd, rc;

	if (!ref_is_hex(sha256, DIGEST_SHA256_HEX))
		return -EINVAL;
	if (fstat(fd, &st) == -1)
		return -errno;
	/* Another holder's file at rel, or none: not ours to publish. */
	if (!names(store, rel, &st))
		return -ESTALE;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != size)
		return -EBADMSG;
	/* A name only we know, for the very file that was hashed. */
	if ((tfd = store_tmp_create(store, ".blob", own, sizeof(own))) < 0)
		return tfd;
	close(tfd);
	unlinkat(store->dirfd, own, 0);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, store->dirfd, own, AT_SYMLINK_FOLLOW) == -1)
		return errno == ENOENT ? -ESTALE : -errno;
	if ((rc = publish_name(store, own, sha256, size)) < 0) {
		store_tmp_remove(store, own);
		return rc;
	}
	/* rel goes too, unless someone has put another file there since. */
	if (names(store, rel, &st))
		unlinkat(store->dirfd, rel, 0);
	return 0;
}

int
store_blob_publish(struct store *store, const char *rel, const char *sha256)
{
	struct stat st;
	int fd, rc;

	fd = openat(store->dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1)
		return -errno;
	if (fstat(fd, &st) == -1)
		rc = -errno;
	else
		rc = store_blob_publish_fd(store, fd, rel, sha256,
		    (uint64_t)st.st_size);
	close(fd);
	return rc;
}

int
store_blob_unlink(struct store *store, const char *sha256)
{
	char rel[STORE_PATH_MAX];
	int rc;

	if ((rc = store_blob_path(sha256, rel, sizeof(rel))) < 0)
		return rc;
	if (unlinkat(store->dirfd, rel, 0) == -1)
		return -errno;
	return 0;
}

int
store_blob_verify(struct store *store, const char *sha256, uint64_t size)
{
	char rel[STORE_PATH_MAX], hex[DIGEST_HEX_MAX];
	struct stat st;
	int fd, rc;

	if ((rc = store_blob_path(sha256, rel, sizeof(rel))) < 0)
		return rc;
	/* O_NONBLOCK: a FIFO planted there fails below, never hangs. */
	fd = openat(store->dirfd, rel,
	    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1)
		return errno == ELOOP ? -EBADMSG : -errno;
	if (fstat(fd, &st) == -1) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) ||
	    (size != UINT64_MAX && (uint64_t)st.st_size != size)) {
		rc = -EBADMSG;
		goto out;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if ((rc = digest_fd(fd, DIGEST_SHA256, hex)) < 0)
		goto out;
	rc = strcmp(hex, sha256) == 0 ? 0 : -EBADMSG;
out:
	close(fd);
	return rc;
}

static int
write_all(int fd, const unsigned char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The copy loop of store_ingest(): read, hash, write, until EOF. */
static int
ingest_copy(int srcfd, int dstfd, struct digest *sha256, struct digest *sha1,
    uint64_t *size)
{
	unsigned char *buf;
	uint64_t flushed = 0;
	ssize_t n;
	int rc = 0;

	buf = malloc(INGEST_CHUNK);
	if (buf == NULL)
		return -ENOMEM;
	*size = 0;
	for (;;) {
		n = read(srcfd, buf, INGEST_CHUNK);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		if ((rc = digest_update(sha256, buf, (size_t)n)) < 0 ||
		    (sha1 != NULL &&
			(rc = digest_update(sha1, buf, (size_t)n)) < 0) ||
		    (rc = write_all(dstfd, buf, (size_t)n)) < 0)
			break;
		*size += (uint64_t)n;
		/*
		 * Start writeback of what is written so far, so the disk works
		 * while we copy and the fsync at the end has little left.
		 */
		if (*size - flushed >= INGEST_FLUSH) {
			sync_file_range(dstfd, (off_t)flushed,
			    (off_t)(*size - flushed), SYNC_FILE_RANGE_WRITE);
			flushed = *size;
		}
	}
	free(buf);
	return rc;
}

int
store_ingest(struct store *store, int srcfd, int want_sha1, struct ingest *out)
{
	struct digest sha256 = { 0 }, sha1 = { 0 };
	struct stat st;
	int fd = -1, rc;

	memset(out, 0, sizeof(*out));
	if (fstat(srcfd, &st) == -1)
		return -errno;
	posix_fadvise(srcfd, 0, 0, POSIX_FADV_SEQUENTIAL);
	fd = store_tmp_create(store, "", out->tmp, sizeof(out->tmp));
	if (fd < 0) {
		rc = fd;
		goto out;
	}
	if ((rc = digest_init(&sha256, DIGEST_SHA256, 0)) < 0 ||
	    (want_sha1 &&
		(rc = digest_init(&sha1, DIGEST_GITSHA1,
		     (uint64_t)st.st_size)) < 0))
		goto out;
	rc = ingest_copy(srcfd, fd, &sha256, want_sha1 ? &sha1 : NULL,
	    &out->size);
	if (rc < 0)
		goto out;
	/* git's header carried the size from fstat: it must still hold. */
	if (want_sha1 && out->size != (uint64_t)st.st_size) {
		rc = -EAGAIN;
		goto out;
	}
	fault_point("ingest-before-fsync");
	if (fsync(fd) == -1) {
		rc = -errno;
		goto out;
	}
	if ((rc = digest_final(&sha256, out->sha256)) < 0 ||
	    (want_sha1 && (rc = digest_final(&sha1, out->gitsha1)) < 0))
		goto out;
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0 && out->tmp[0] != '\0') {
		store_tmp_remove(store, out->tmp);
		out->tmp[0] = '\0';
	}
	digest_release(&sha256);
	digest_release(&sha1);
	return rc;
}

/*
 * The tmp file is renamed over rel, or, when !replace, linked to it, which
 * never replaces a name.  An EEXIST from link() is ours when rel is our
 * tmp file's inode (NFS may answer a retransmitted link so).
 */
int
store_write_file(struct store *store, const char *rel, const void *buf,
    size_t len, int mode, int replace, struct stat *st)
{
	char tmp[STORE_PATH_MAX], dir[STORE_PATH_MAX];
	const char *slash = strrchr(rel, '/');
	struct stat mine, there;
	int fd, rc;

	if (slash != NULL) {
		if ((size_t)(slash - rel) >= sizeof(dir))
			return -ENAMETOOLONG;
		memcpy(dir, rel, (size_t)(slash - rel));
		dir[slash - rel] = '\0';
		if ((rc = store_mkdirs(store, dir)) < 0)
			return rc;
	} else
		dir[0] = '\0';
	fd = store_tmp_create(store, "", tmp, sizeof(tmp));
	if (fd < 0)
		return fd;
	rc = write_all(fd, buf, len);
	if (rc == 0 && fsync(fd) == -1)
		rc = -errno;
	if (rc == 0 && fchmod(fd, (mode_t)mode) == -1)
		rc = -errno;
	/* Written and synced: the inode, mtime and size it keeps at rel. */
	if (rc == 0 && fstat(fd, &mine) == -1)
		rc = -errno;
	close(fd);
	if (rc < 0)
		goto out;
	if (replace) {
		if (renameat(store->dirfd, tmp, store->dirfd, rel) == -1)
			rc = -errno;
		else
			tmp[0] = '\0';
	} else if (linkat(store->dirfd, tmp, store->dirfd, rel, 0) == -1) {
		rc = -errno;
		if (rc == -EEXIST &&
		    fstatat(store->dirfd, rel, &there, AT_SYMLINK_NOFOLLOW) ==
			0 &&
		    there.st_ino == mine.st_ino && there.st_dev == mine.st_dev)
			rc = 0;
	}
out:
	if (tmp[0] != '\0')
		store_tmp_remove(store, tmp);
	if (rc == 0 && (rc = store_fsync_dir(store, dir)) == 0 && st != NULL)
		*st = mine;
	return rc;
}

int
store_write_atomic(struct store *store, const char *rel, const void *buf,
    size_t len, int mode)
{
	return store_write_file(store, rel, buf, len, mode, 1, NULL);
}

int
store_write_new(struct store *store, const char *rel, const void *buf,
    size_t len, int mode)
{
	return store_write_file(store, rel, buf, len, mode, 0, NULL);
}

static int
read_once(struct store *store, const char *rel, size_t max, char **buf,
    size_t *len)
{
	struct stat st;
	char *p = NULL;
	size_t got = 0;
	ssize_t n;
	int fd, rc = 0;

	*buf = NULL;
	/* O_NONBLOCK: a FIFO planted there is refused below, never read. */
	fd = openat(store->dirfd, rel,
	    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd == -1)
		return -errno;
	if (fstat(fd, &st) == -1) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		rc = S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
		goto out;
	}
	p = malloc((size_t)st.st_size + 1);
	if (p == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, p + got, (size_t)st.st_size - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n == 0 ? -EIO : -errno;
			goto out;
		}
		got += (size_t)n;
	}
	p[got] = '\0';
	*buf = p;
	*len = got;
	p = NULL;
out:
	free(p);
	close(fd);
	return rc;
}

/*
 * On a network filesystem a file replaced by rename on another node is
 * answered ESTALE (or a short read, EIO) through the handle this node had
 * cached: the open, the stat and the read are tried again, the path
 * resolved afresh each time, a few times over a few milliseconds.
 */
int
store_read_file(struct store *store, const char *rel, size_t max, char **buf,
    size_t *len)
{
	struct timespec ts = { 0, 1000000 };
	int rc, tries;

	for (tries = 0;; tries++) {
		rc = read_once(store, rel, max, buf, len);
		if ((rc != -ESTALE && rc != -EIO) || tries >= STORE_STALE_TRIES)
			return rc;
		nanosleep(&ts, NULL);
		ts.tv_nsec *= 2;
	}
}

static int
blob_entry(const char *sub, const char *name,
    int (*fn)(const char *, const char *, void *), void *arg)
{
	char rel[STORE_PATH_MAX];
	int n;

	n = snprintf(rel, sizeof(rel), "blobs/sha256/%s/%s", sub, name);
	if (n < 0 || (size_t)n >= sizeof(rel))
		return 0;
	return fn(name, rel, arg);
}

int
store_blob_each(struct store *store,
    int (*fn)(const char *, const char *, void *), void *arg)
{
	DIR *top = NULL, *sub = NULL;
	struct dirent *a, *b;
	int rc = 0;

	if ((top = store_opendirat(store->dirfd, "blobs/sha256")) == NULL) {
		rc = -errno;
		return rc;
	}
	while (rc == 0 && (a = readdir(top)) != NULL) {
		if (a->d_name[0] == '.')
			continue;
		if ((sub = store_opendirat(dirfd(top), a->d_name)) == NULL) {
			continue;
		}
		while (rc == 0 && (b = readdir(sub)) != NULL)
			if (b->d_name[0] != '.')
				rc = blob_entry(a->d_name, b->d_name, fn, arg);
		closedir(sub);
	}
	closedir(top);
	return rc;
}

/*
 * Walks the tree under dirfd/name depth first.  With remove set, it unlinks
 * every entry and then the directory; otherwise it fsyncs each directory.
 * Depth is bounded so a hostile tree cannot exhaust the stack.
 */
static int
tree_walk(int parent, const char *name, int remove, int depth)
{
	struct dirent *e;
	struct stat st;
	DIR *d;
	int rc = 0;

	if (depth > 64)
		return -ELOOP;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode)) {
		if (remove && unlinkat(parent, name, 0) == -1 &&
		    errno != ENOENT)
			return -errno;
		return 0;
	}
	if ((d = store_opendirat(parent, name)) == NULL) {
		rc = -errno;
		return rc;
	}
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		rc = tree_walk(dirfd(d), e->d_name, remove, depth + 1);
	}
	if (rc == 0 && !remove && fsync(dirfd(d)) == -1)
		rc = -errno;
	closedir(d);
	if (rc == 0 && remove && unlinkat(parent, name, AT_REMOVEDIR) == -1 &&
	    errno != ENOENT)
		rc = -errno;
	return rc;
}

int
store_remove_tree(struct store *store, const char *rel)
{
	return tree_walk(store->dirfd, rel, 1, 0);
}

int
store_sync_tree(struct store *store, const char *rel)
{
	return tree_walk(store->dirfd, rel, 0, 0);
}
