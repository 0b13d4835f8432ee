/*
 * lease: see lease.h for the format and the liveness rule.
 *
 * A lease file is made whole under tmp/ and link()ed into leases/: link
 * never replaces an existing name, which makes it the O_CREAT|O_EXCL of a
 * file that appears with its content, and it stays exclusive on NFS, where
 * a retransmitted link can answer EEXIST for a link that was made (checked
 * by comparing inodes).
 *
 * Neither the file nor leases/ is fsync'd.  A lease is not precious across
 * a crash: the crash of a node also ends the server that held the lease,
 * which then holds no model, so losing its file is right; and the loss of
 * an unsynced file by a storage server that crashed shows up at the
 * holder's next heartbeat, which fails with ENOENT and makes it take a new
 * lease.  Taking a lease sits on the path of every model a server asks
 * for, and an fsync there would cost a round trip to the storage per start.
 *
 * Everything read back is checked: the name, the type and size of the
 * file, and every field of its line, the folder as hub.c makes folder
 * names.  A file that fails is reported malformed and protects nothing.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "beat.h"
#include "claim.h"
#include "hub.h"
#include "lease.h"

#define LEASE_RANDOM_HEX 16
#define LEASE_LINE_MAX 512 /* a lease file's bytes: one line, bounded */
#define LEASE_TRIES 16

/* What one lease file says, once checked. */
struct lease_file {
	char folder[REF_FOLDER_MAX];
	char commit[DIGEST_SHA1_HEX + 1];
	int64_t taken_ms;
	int64_t mtime_ms;
};

static int
lease_snapshot_ok(const char *folder, const char *commit)
{
	char repo[REF_FOLDER_MAX];
	enum repo_type type;

	if (strlen(folder) >= REF_FOLDER_MAX ||
	    hub_folder_parse(folder, &type, repo, sizeof(repo)) < 0)
		return 0;
	return ref_is_hex(commit, DIGEST_SHA1_HEX);
}

/*
 * A name lease_take() could have made: "<owner>.<16 hex>", printable
 * characters without '/' or space, not starting with '.'.
 */
static int
lease_name_ok(const char *name)
{
	size_t len = strlen(name), i;

	if (len < LEASE_RANDOM_HEX + 2 || len >= LEASE_ID_MAX ||
	    name[0] == '.' || name[len - LEASE_RANDOM_HEX - 1] != '.' ||
	    !ref_is_hex(name + len - LEASE_RANDOM_HEX, LEASE_RANDOM_HEX))
		return 0;
	for (i = 0; i < len; i++)
		if (name[i] <= 0x20 || name[i] >= 0x7f || name[i] == '/')
			return 0;
	return 1;
}

static int
lease_path(const char *id, char *buf, size_t len)
{
	int n;

	if (!lease_name_ok(id))
		return -EINVAL;
	n = snprintf(buf, len, "leases/%s", id);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int
write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -EIO : -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Links the tmp file to leases/<new id>.  EEXIST from link() is a name
 * someone holds (try another), unless the name is our inode: then it was
 * our own link, answered twice.
 */
static int
lease_link(struct store *store, const char *tmp, struct lease *l)
{
	char rel[STORE_PATH_MAX];
	unsigned char rnd[LEASE_RANDOM_HEX / 2];
	struct stat mine, there;
	int tries, n, rc;
	size_t i;

	if (fstatat(store->dirfd, tmp, &mine, AT_SYMLINK_NOFOLLOW) == -1)
		return -errno;
	for (tries = 0; tries < LEASE_TRIES; tries++) {
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			return -EIO;
		n = snprintf(l->id, sizeof(l->id), "%s.", store->owner);
		if (n < 0 || (size_t)n + LEASE_RANDOM_HEX >= sizeof(l->id))
			return -ENAMETOOLONG;
		for (i = 0; i < sizeof(rnd); i++)
			snprintf(l->id + n + 2 * i, 3, "%02x", rnd[i]);
		if ((rc = lease_path(l->id, rel, sizeof(rel))) < 0)
			return rc;
		if (linkat(store->dirfd, tmp, store->dirfd, rel, 0) == 0)
			return 0;
		if (errno != EEXIST)
			return -errno;
		if (fstatat(store->dirfd, rel, &there, AT_SYMLINK_NOFOLLOW) ==
			0 &&
		    there.st_ino == mine.st_ino && there.st_dev == mine.st_dev)
			return 0;
	}
	return -EEXIST;
}

int
lease_take(struct store *store, const char *folder, const char *commit,
    struct lease *l)
{
	char tmp[STORE_PATH_MAX], line[LEASE_LINE_MAX];
	int fd, n, rc;

	if (l->held)
		return -EALREADY;
	memset(l, 0, sizeof(*l));
	if (!lease_snapshot_ok(folder, commit))
		return -EINVAL;
	n = snprintf(line, sizeof(line), "%s %s %lld\n", folder, commit,
	    (long long)claim_now_ms());
	if (n < 0 || (size_t)n >= sizeof(line))
		return -ENAMETOOLONG;
	if ((fd = store_tmp_create(store, ".lease", tmp, sizeof(tmp))) < 0)
		return fd;
	rc = write_all(fd, line, (size_t)n);
	/* tmp files are 0600; a lease is for every participant to read. */
	if (rc == 0 && fchmod(fd, 0644) == -1)
		rc = -errno;
	/*
	 * Stamped as its heartbeats will be: on GlusterFS a write takes the
	 * writer's clock, a touch does not (modelcache-store(5)), so a lease
	 * of a node whose clock is behind would look old, dead even, until
	 * its first heartbeat.
	 */
	if (rc == 0 && futimens(fd, NULL) == -1)
		rc = -errno;
	close(fd);
	if (rc == 0)
		rc = lease_link(store, tmp, l);
	store_tmp_remove(store, tmp);
	if (rc < 0) {
		memset(l, 0, sizeof(*l));
		return rc;
	}
	snprintf(l->folder, sizeof(l->folder), "%s", folder);
	snprintf(l->commit, sizeof(l->commit), "%s", commit);
	l->held = 1;
	if (store->beat != NULL && lease_path(l->id, tmp, sizeof(tmp)) == 0 &&
	    (rc = beat_add(store->beat, store->dirfd, tmp)) < 0) {
		lease_drop(store, l);
		return rc;
	}
	return 0;
}

int
lease_touch(struct store *store, struct lease *l)
{
	char rel[STORE_PATH_MAX];
	int rc;

	if (!l->held)
		return -EINVAL;
	if ((rc = lease_path(l->id, rel, sizeof(rel))) < 0)
		return rc;
	if (store->beat != NULL) {
		rc = beat_state(store->beat, store->dirfd, rel);
		return rc == -ESRCH ? -ENOENT : rc;
	}
	if (utimensat(store->dirfd, rel, NULL, AT_SYMLINK_NOFOLLOW) == -1)
		return -errno;
	return 0;
}

void
lease_drop(struct store *store, struct lease *l)
{
	char rel[STORE_PATH_MAX];

	if (!l->held)
		return;
	/* Ids are random: nobody else ever holds this name. */
	if (lease_path(l->id, rel, sizeof(rel)) == 0) {
		if (store->beat != NULL)
			beat_remove(store->beat, store->dirfd, rel);
		unlinkat(store->dirfd, rel, 0);
	}
	l->held = 0;
}

/* "<folder> <commit> <ms>\n", exactly, into *lf.  0 or -EBADMSG. */
static int
lease_parse(char *line, struct lease_file *lf)
{
	char *folder = line, *commit, *ms, *end;
	long long v;

	if ((commit = strchr(folder, ' ')) == NULL)
		return -EBADMSG;
	*commit++ = '\0';
	if ((ms = strchr(commit, ' ')) == NULL)
		return -EBADMSG;
	*ms++ = '\0';
	if (!lease_snapshot_ok(folder, commit) || *ms < '0' || *ms > '9')
		return -EBADMSG;
	errno = 0;
	v = strtoll(ms, &end, 10);
	if (errno != 0 || v < 0 || strcmp(end, "\n") != 0)
		return -EBADMSG;
	snprintf(lf->folder, sizeof(lf->folder), "%s", folder);
	snprintf(lf->commit, sizeof(lf->commit), "%s", commit);
	lf->taken_ms = (int64_t)v;
	return 0;
}

/*
 * Reads and checks leases/<name>.  Returns 0, -EBADMSG when it is
 * malformed, -ENOENT when it went away meanwhile, or another negative
 * errno when it cannot be read.
 */
static int
lease_read(struct store *store, const char *name, struct lease_file *lf)
{
	char rel[STORE_PATH_MAX], line[LEASE_LINE_MAX];
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd, rc = 0;

	memset(lf, 0, sizeof(*lf));
	if (lease_path(name, rel, sizeof(rel)) < 0)
		return -EBADMSG;
	/* O_NONBLOCK: a FIFO planted there must not hang the reader. */
	fd = openat(store->dirfd, rel,
	    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1)
		return errno == ELOOP || errno == ENXIO ? -EBADMSG : -errno;
	if (fstat(fd, &st) == -1) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size >= (off_t)sizeof(line)) {
		rc = -EBADMSG;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, line + got, (size_t)st.st_size - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n == 0 ? -EBADMSG : -errno;
			goto out;
		}
		got += (size_t)n;
	}
	line[got] = '\0';
	if (strlen(line) != got || (rc = lease_parse(line, lf)) < 0) {
		rc = -EBADMSG;
		goto out;
	}
	lf->mtime_ms =
	    (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
out:
	close(fd);
	return rc;
}

static int
lease_alive(struct store *store, const char *id, const struct lease_file *lf,
    int64_t now_ms, int64_t stale_ms)
{
	switch (store_owner_state(store, id)) {
	case OWNER_ALIVE:
		return 1;
	case OWNER_DEAD:
		return 0;
	default:
		/* Another node's, or another PID namespace's: its heartbeat. */
		return now_ms - lf->mtime_ms <= stale_ms;
	}
}

int
lease_each(struct store *store, int64_t stale_ms,
    int (*fn)(void *arg, const char *id, const char *folder, const char *commit,
	int64_t taken_ms, int live),
    void *arg)
{
	struct lease_file lf;
	struct dirent *e;
	int64_t now;
	DIR *d;
	int rc = 0;

	if ((d = store_opendirat(store->dirfd, "leases")) == NULL)
		return -errno;
	/*
	 * Taken before any heartbeat is read: one read later can only look
	 * younger than it is, never older, so no live lease is judged dead.
	 */
	now = store_now_ms(store);
	for (;;) {
		errno = 0;
		if ((e = readdir(d)) == NULL) {
			rc = errno != 0 ? -errno : 0;
			break;
		}
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		rc = lease_read(store, e->d_name, &lf);
		if (rc == -ENOENT) /* dropped while we listed */
			continue;
		if (rc == -EBADMSG)
			rc = fn(arg, e->d_name, "", "", 0, 0);
		else if (rc == 0)
			rc = fn(arg, e->d_name, lf.folder, lf.commit,
			    lf.taken_ms,
			    lease_alive(store, e->d_name, &lf, now, stale_ms));
		if (rc != 0)
			break;
	}
	closedir(d);
	return rc;
}

struct lease_want {
	const char *folder, *commit;
};

static int
lease_match(void *arg, const char *id, const char *folder, const char *commit,
    int64_t taken_ms, int live)
{
	const struct lease_want *w = arg;

	(void)id;
	(void)taken_ms;
	return live && strcmp(folder, w->folder) == 0 &&
	    strcmp(commit, w->commit) == 0;
}

int
lease_live(struct store *store, const char *folder, const char *commit,
    int64_t stale_ms)
{
	struct lease_want w = { folder, commit };

	return lease_each(store, stale_ms, lease_match, &w);
}
