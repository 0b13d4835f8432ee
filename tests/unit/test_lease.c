/*
 * test_lease: unit tests for src/lease.c.
 *
 * A lease is a file whose mtime is its heartbeat, so the tests age a lease
 * by setting its mtime into the past with utimensat() rather than by
 * waiting.  Leases of other processes are written by hand, the way another
 * node or a process that died would have left them: a dead owner is a
 * child that has exited and been reaped, so its pid names no process.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "unit.h"
#include "unit_store.h"
#include "fixture.h"

#include "claim.h"
#include "lease.h"
#include "store.h"

#define STALE_MS 10000
#define FA "models--org--a"
#define FB "datasets--org--b"
#define CA "0123456789abcdef0123456789abcdef01234567"
#define CB "fedcba9876543210fedcba9876543210fedcba98"
#define HEX "00112233445566778899aabbccddeeff"
/* A process on another node: only its heartbeat can tell. */
#define FOREIGN "node-b.4026531836.1.0123456789abcdef"

/* The absolute path of leases/<id>. */
static const char *
lease_file(const struct unit_fixture *fx, const char *id, char *buf, size_t len)
{
	unit_fmt(buf, len, "%s/leases/%s", fx->dir, id);
	return buf;
}

/* Sets leases/<id>'s mtime to age_ms before now. */
static void
age_lease(const struct unit_fixture *fx, const char *id, int64_t age_ms)
{
	struct timespec ts[2];
	char path[UNIT_PATH];
	int64_t t = claim_now_ms() - age_ms;

	ts[0].tv_sec = (time_t)(t / 1000);
	ts[0].tv_nsec = (long)(t % 1000) * 1000000;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD,
			     lease_file(fx, id, path, sizeof(path)), ts,
			     AT_SYMLINK_NOFOLLOW),
	    0);
}

static int64_t
lease_mtime_ms(const struct unit_fixture *fx, const char *id)
{
	char path[UNIT_PATH];
	struct stat st;

	assert_int_equal(lstat(lease_file(fx, id, path, sizeof(path)), &st), 0);
	return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

/* Writes leases/<id> holding text, age_ms old. */
static void
put_lease(const struct unit_fixture *fx, const char *id, const char *text,
    int64_t age_ms)
{
	char name[512];

	unit_fmt(name, sizeof(name), "leases/%s", id);
	unit_write(fx->dir, name, text, strlen(text));
	age_lease(fx, id, age_ms);
}

/* "<folder> <commit> <ms>\n" for a hand-written lease. */
static void
lease_line(char *buf, size_t len, const char *folder, const char *commit)
{
	unit_fmt(buf, len, "%s %s %lld\n", folder, commit,
	    (long long)claim_now_ms());
}

/* Our owner id's place, "<host>.<boot>.<pidns>.", in bytes. */
static size_t
owner_place(const struct unit_fixture *fx)
{
	const char *p = fx->store.owner;
	int dots = 0;

	for (; *p != '\0' && dots < 3; p++)
		dots += *p == '.';
	assert_int_equal(dots, 3);
	return (size_t)(p - fx->store.owner);
}

/* The start time our own owner id records. */
static unsigned long long
owner_start(const struct unit_fixture *fx)
{
	return strtoull(strrchr(fx->store.owner, '.') + 1, NULL, 10);
}

/* A lease id in this host's, boot's and PID namespace's name. */
static void
local_id(const struct unit_fixture *fx, pid_t pid, unsigned long long start,
    char *buf, size_t len)
{
	unit_fmt(buf, len, "%.*s%ld.%llu.%.16s", (int)owner_place(fx),
	    fx->store.owner, (long)pid, start, HEX);
}

static void
test_take_touch_drop(void **state)
{
	struct unit_fixture *fx = *state;
	char path[UNIT_PATH], text[512], want[512];
	struct lease l;
	struct stat st;
	int64_t before = claim_now_ms();
	long long ms;
	size_t olen = strlen(fx->store.owner);
	FILE *f;

	memset(&l, 0, sizeof(l));
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS), 0);
	assert_int_equal(lease_take(&fx->store, FA, CA, &l), 0);
	assert_true(l.held);
	assert_string_equal(l.folder, FA);
	assert_string_equal(l.commit, CA);

	/* "<owner>.<16 hex>", the file made whole, 0644, tmp/ left empty. */
	assert_int_equal(strlen(l.id), olen + 17);
	assert_memory_equal(l.id, fx->store.owner, olen);
	assert_int_equal(l.id[olen], '.');
	assert_int_equal(strspn(l.id + olen + 1, "0123456789abcdef"), 16);
	assert_int_equal(lstat(lease_file(fx, l.id, path, sizeof(path)), &st),
	    0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(fixture_count(fx->dir, "tmp"), 0);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(text, sizeof(text), f));
	assert_int_equal(fgetc(f), EOF);
	fclose(f);
	assert_int_equal(sscanf(text, "%*s %*s %lld", &ms), 1);
	assert_true(ms >= before && ms <= claim_now_ms());
	unit_fmt(want, sizeof(want), "%s %s %lld\n", FA, CA, ms);
	assert_string_equal(text, want);

	/* Live, for its own snapshot only. */
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS), 1);
	assert_int_equal(lease_live(&fx->store, FA, CB, STALE_MS), 0);
	assert_int_equal(lease_live(&fx->store, FB, CA, STALE_MS), 0);

	/* A lease held already is not overwritten. */
	assert_int_equal(lease_take(&fx->store, FB, CB, &l), -EALREADY);
	assert_string_equal(l.folder, FA);

	/* The heartbeat moves the mtime to now. */
	age_lease(fx, l.id, 60000);
	assert_true(lease_mtime_ms(fx, l.id) < claim_now_ms() - 50000);
	before = claim_now_ms();
	assert_int_equal(lease_touch(&fx->store, &l), 0);
	assert_true(lease_mtime_ms(fx, l.id) >= before - 1000);

	/* Dropped: gone, not live; dropping again is a no-op. */
	lease_drop(&fx->store, &l);
	assert_false(l.held);
	assert_int_equal(lstat(path, &st), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS), 0);
	lease_drop(&fx->store, &l);
	assert_int_equal(lease_touch(&fx->store, &l), -EINVAL);
	assert_int_equal(fixture_count(fx->dir, "leases"), 0);

	/* The struct is reusable once dropped. */
	assert_int_equal(lease_take(&fx->store, FB, CB, &l), 0);
	assert_int_equal(lease_live(&fx->store, FB, CB, STALE_MS), 1);
	lease_drop(&fx->store, &l);
}

/* A lease removed under its holder (fsck, after a stall) says so. */
static void
test_touch_removed(void **state)
{
	struct unit_fixture *fx = *state;
	char path[UNIT_PATH];
	struct lease l;

	memset(&l, 0, sizeof(l));
	assert_int_equal(lease_take(&fx->store, FA, CA, &l), 0);
	assert_int_equal(unlink(lease_file(fx, l.id, path, sizeof(path))), 0);
	assert_int_equal(lease_touch(&fx->store, &l), -ENOENT);
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS), 0);
	lease_drop(&fx->store, &l);
	assert_false(l.held);
}

static void
test_two_leases(void **state)
{
	struct unit_fixture *fx = *state;
	struct lease a, b;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	assert_int_equal(lease_take(&fx->store, FA, CA, &a), 0);
	assert_int_equal(lease_take(&fx->store, FA, CA, &b), 0);
	assert_string_not_equal(a.id, b.id);
	assert_int_equal(fixture_count(fx->dir, "leases"), 2);
	lease_drop(&fx->store, &a);
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS), 1);
	lease_drop(&fx->store, &b);
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS), 0);
}

static void
test_take_bad_args(void **state)
{
	static const char *const folders[] = { "", "models--", "org--a",
		"models--org--a--b--c", "models--../x", "models--org/a",
		"models--org--a.git", "hub" };
	static const char *const commits[] = { "", "0123", CA "0",
		"0123456789ABCDEF0123456789abcdef01234567",
		"0123456789abcdef0123456789abcdef0123456g" };
	struct unit_fixture *fx = *state;
	struct lease l;
	size_t i;

	memset(&l, 0, sizeof(l));
	for (i = 0; i < sizeof(folders) / sizeof(folders[0]); i++) {
		assert_int_equal(lease_take(&fx->store, folders[i], CA, &l),
		    -EINVAL);
		assert_false(l.held);
	}
	for (i = 0; i < sizeof(commits) / sizeof(commits[0]); i++)
		assert_int_equal(lease_take(&fx->store, FA, commits[i], &l),
		    -EINVAL);
	assert_int_equal(fixture_count(fx->dir, "leases"), 0);
	assert_int_equal(fixture_count(fx->dir, "tmp"), 0);
}

/*
 * An owner on this host and in this PID namespace is asked directly: dead
 * is dead however fresh its heartbeat, alive is alive however old.
 */
static void
test_local_owner(void **state)
{
	struct unit_fixture *fx = *state;
	char id[LEASE_ID_MAX], line[512], path[UNIT_PATH];

	lease_line(line, sizeof(line), FA, CA);
	local_id(fx, fixture_dead_pid(), owner_start(fx), id, sizeof(id));
	put_lease(fx, id, line, 0);
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS), 0);
	unit_fmt(path, sizeof(path), "%s/leases/%s", fx->dir, id);
	assert_int_equal(unlink(path), 0);

	/* Our own pid, with a heartbeat an hour old. */
	local_id(fx, getpid(), owner_start(fx), id, sizeof(id));
	put_lease(fx, id, line, 3600 * 1000);
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS), 1);
}

/*
 * The owner id: "<host>.<boot>.<pidns>.<pid>.<start>", the start time that
 * of this very process (field 22 of /proc/self/stat).
 */
static void
test_owner_format(void **state)
{
	struct unit_fixture *fx = *state;
	const char *o = fx->store.owner, *p;
	char buf[1024], *q;
	unsigned long long start;
	int fd, field;
	ssize_t n;

	p = o + owner_place(fx);
	assert_int_equal(strtol(p, &q, 10), (long)getpid());
	assert_int_equal(*q, '.');
	assert_true(strspn(q + 1, "0123456789") == strlen(q + 1));
	fd = open("/proc/self/stat", O_RDONLY);
	if (fd == -1)
		skip();
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	q = strrchr(buf, ')');
	for (field = 2; field < 22; field++)
		assert_non_null(q = strchr(q + 1, ' '));
	start = strtoull(q + 1, NULL, 10);
	assert_true(start > 0);
	assert_true(owner_start(fx) == start);
	/* No '/' or space: it goes into file names and claim lines. */
	assert_null(strpbrk(o, "/ \t\n"));
}

/*
 * A pid that runs, but under another start time, is a later process given
 * the number of a dead one (a restarted container's daemon is often pid 1
 * to 3 again): its owner is dead, however fresh the heartbeat.  A start
 * time of 0 (no /proc to check it by) or an id of the older
 * "<host>.<pidns>.<pid>" form can tell nothing: heartbeat.
 */
static void
test_reused_pid(void **state)
{
	struct unit_fixture *fx = *state;
	char id[LEASE_ID_MAX], line[512], path[UNIT_PATH];
	const char *o = fx->store.owner;
	pid_t child;
	int status;

	lease_line(line, sizeof(line), FA, CA);
	/* Our own pid, another incarnation, heartbeat fresh: dead. */
	local_id(fx, getpid(), owner_start(fx) + 1, id, sizeof(id));
	put_lease(fx, id, line, 0);
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS), 0);
	assert_int_equal(unlink(lease_file(fx, id, path, sizeof(path))), 0);

	/* A live child's pid with a start time not its own: dead. */
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	local_id(fx, child, 1, id, sizeof(id));
	put_lease(fx, id, line, 0);
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS), 0);
	assert_int_equal(unlink(lease_file(fx, id, path, sizeof(path))), 0);
	kill(child, SIGKILL);
	assert_int_equal(waitpid(child, &status, 0), child);

	/* Start time 0: by heartbeat, live while fresh. */
	local_id(fx, getpid(), 0, id, sizeof(id));
	put_lease(fx, id, line, 0);
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS), 1);
	age_lease(fx, id, STALE_MS + 2000);
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS), 0);
	assert_int_equal(unlink(lease_file(fx, id, path, sizeof(path))), 0);

	/* The old form with our host and pid: by heartbeat too. */
	unit_fmt(id, sizeof(id), "%.*s.4026531836.%ld.%.16s",
	    (int)(strchr(o, '.') - o), o, (long)getpid(), HEX);
	put_lease(fx, id, line, 0);
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS), 1);
	age_lease(fx, id, STALE_MS + 2000);
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS), 0);
}

/* Another node's lease lives by its heartbeat alone. */
static void
test_foreign_owner(void **state)
{
	struct unit_fixture *fx = *state;
	char line[512];

	lease_line(line, sizeof(line), FA, CA);
	put_lease(fx, FOREIGN, line, 0);
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS), 1);
	assert_int_equal(lease_live(&fx->store, FA, CB, STALE_MS), 0);
	age_lease(fx, FOREIGN, STALE_MS - 2000);
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS), 1);
	age_lease(fx, FOREIGN, STALE_MS + 2000);
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS), 0);
	/* A longer stale limit makes it live again. */
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS * 2), 1);
}

/*
 * Another PID namespace on this host is as foreign as another node: a pid
 * that is dead here may run there.
 */
static void
test_other_pidns(void **state)
{
	struct unit_fixture *fx = *state;
	const char *owner = fx->store.owner;
	size_t place = owner_place(fx);
	char id[LEASE_ID_MAX], line[512];

	/* "<host>.<boot>.<ns>1.<dead pid>.<start>.<hex>": another namespace. */
	unit_fmt(id, sizeof(id), "%.*s1.%ld.%llu.%.16s", (int)place - 1, owner,
	    (long)fixture_dead_pid(), owner_start(fx), HEX);
	lease_line(line, sizeof(line), FB, CB);
	put_lease(fx, id, line, 0);
	assert_int_equal(lease_live(&fx->store, FB, CB, STALE_MS), 1);
	age_lease(fx, id, STALE_MS + 2000);
	assert_int_equal(lease_live(&fx->store, FB, CB, STALE_MS), 0);
}

#define SEEN_MAX 32

struct seen {
	char id[SEEN_MAX][LEASE_ID_MAX];
	char folder[SEEN_MAX][REF_FOLDER_MAX];
	char commit[SEEN_MAX][DIGEST_SHA1_HEX + 1];
	int64_t taken[SEEN_MAX];
	int live[SEEN_MAX];
	int n;
	int stop_at; /* return 7 at this call (0: never) */
};

static int
collect(void *arg, const char *id, const char *folder, const char *commit,
    int64_t taken_ms, int live)
{
	struct seen *s = arg;

	assert_true(s->n < SEEN_MAX);
	unit_fmt(s->id[s->n], sizeof(s->id[0]), "%s", id);
	unit_fmt(s->folder[s->n], sizeof(s->folder[0]), "%s", folder);
	unit_fmt(s->commit[s->n], sizeof(s->commit[0]), "%s", commit);
	s->taken[s->n] = taken_ms;
	s->live[s->n] = live;
	s->n++;
	return s->stop_at == s->n ? 7 : 0;
}

static int
find_seen(const struct seen *s, const char *id)
{
	int i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->id[i], id) == 0)
			return i;
	fail_msg("'%s' was not listed", id);
	return -1;
}

/*
 * Files that lease_take() would not have made protect nothing: each is
 * listed as malformed, and none keeps the snapshot it seems to name.
 */
static void
test_malformed(void **state)
{
	struct {
		const char *id, *text;
	} bad[] = {
		{ "empty.0123456789abcdef", "" },
		{ "a.1.1.0123456789abcdef", FA " " CA " 5" }, /* no newline */
		{ "b.1.1.0123456789abcdef", FA " " CA " 5\n\n" },
		{ "c.1.1.0123456789abcdef", FA " " CA " 5 x\n" },
		{ "d.1.1.0123456789abcdef", FA "  " CA " 5\n" },
		{ "e.1.1.0123456789abcdef", "models--org--a--b " CA " 5\n" },
		{ "f.1.1.0123456789abcdef",
		    FA " 0123456789ABCDEF0123456789abcdef"
		       "01234567 5\n" },
		{ "g.1.1.0123456789abcdef", FA " " CA " -5\n" },
		{ "h.1.1.0123456789abcdef",
		    FA " " CA " 99999999999999999999\n" },
		{ "i.1.1.0123456789abcdef", FA " " CA "\n" },
		{ "j.1.1.0123456789abcdef", "models--org--a\0 " CA " 5\n" },
		/* Good lines under names lease_take() never makes. */
		{ "node-b.1.1", FA " " CA " 5\n" },
		{ "node-b.1.1.0123456789ABCDEF", FA " " CA " 5\n" },
		{ "node-b.1.1.x0123456789abcdef", FA " " CA " 5\n" },
		{ ".hidden.0123456789abcdef", FA " " CA " 5\n" },
		{ "sp ace.0123456789abcdef", FA " " CA " 5\n" },
	};
	struct unit_fixture *fx = *state;
	char path[UNIT_PATH], big[600], line[512];
	struct seen s;
	size_t i;
	int k;

	memset(&s, 0, sizeof(s));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		put_lease(fx, bad[i].id, bad[i].text, 0);
	/* The embedded NUL: written with its real length. */
	unit_write(fx->dir, "leases/j.1.1.0123456789abcdef",
	    "models--org--a\0 " CA " 5\n", 15 + 1 + 40 + 3);
	/* Too large, though it starts well. */
	memset(big, ' ', sizeof(big));
	memcpy(big, FA " " CA " 5", strlen(FA " " CA " 5"));
	big[sizeof(big) - 1] = '\n';
	unit_write(fx->dir, "leases/k.1.1.0123456789abcdef", big, sizeof(big));
	/* Not regular files: a directory, a symlink to a good lease, a FIFO. */
	lease_line(line, sizeof(line), FA, CA);
	put_lease(fx, "good.0123456789abcdef", line, 2 * STALE_MS);
	assert_int_equal(mkdir(lease_file(fx, "dir.0123456789abcdef", path,
				   sizeof(path)),
			     0755),
	    0);
	assert_int_equal(symlink("good.0123456789abcdef",
			     lease_file(fx, "link.0123456789abcdef", path,
				 sizeof(path))),
	    0);
	assert_int_equal(mkfifo(lease_file(fx, "fifo.0123456789abcdef", path,
				    sizeof(path)),
			     0644),
	    0);

	/* The one good lease is stale: nothing keeps FA@CA. */
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS), 0);
	assert_int_equal(lease_each(&fx->store, STALE_MS, collect, &s), 0);
	assert_int_equal(s.n, (int)(sizeof(bad) / sizeof(bad[0])) + 5);
	for (k = 0; k < s.n; k++) {
		if (s.live[k])
			fail_msg("'%s' is live", s.id[k]);
		if (strcmp(s.id[k], "good.0123456789abcdef") == 0) {
			assert_string_equal(s.folder[k], FA);
			continue;
		}
		if (s.folder[k][0] != '\0')
			fail_msg("'%s' was taken for a lease", s.id[k]);
		assert_string_equal(s.commit[k], "");
		assert_int_equal(s.taken[k], 0);
	}
	/* The symlink's target, fresh, is live: the link still is not. */
	age_lease(fx, "good.0123456789abcdef", 0);
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS), 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(lease_each(&fx->store, STALE_MS, collect, &s), 0);
	assert_string_equal(s.folder[find_seen(&s, "link.0123456789abcdef")],
	    "");
}

/* lease_each lists every lease with its fields and liveness. */
static void
test_each(void **state)
{
	struct unit_fixture *fx = *state;
	char dead[LEASE_ID_MAX], line[512];
	struct lease mine;
	struct seen s;
	int k;

	memset(&mine, 0, sizeof(mine));
	memset(&s, 0, sizeof(s));
	assert_int_equal(lease_each(&fx->store, STALE_MS, collect, &s), 0);
	assert_int_equal(s.n, 0);

	assert_int_equal(lease_take(&fx->store, FA, CA, &mine), 0);
	put_lease(fx, FOREIGN, FB " " CB " 1234\n", 0);
	put_lease(fx, "node-c.1.1.0123456789abcdef", FA " " CB " 99\n",
	    STALE_MS + 5000);
	local_id(fx, fixture_dead_pid(), owner_start(fx), dead, sizeof(dead));
	lease_line(line, sizeof(line), FA, CA);
	put_lease(fx, dead, line, 0);

	assert_int_equal(lease_each(&fx->store, STALE_MS, collect, &s), 0);
	assert_int_equal(s.n, 4);
	k = find_seen(&s, mine.id);
	assert_string_equal(s.folder[k], FA);
	assert_string_equal(s.commit[k], CA);
	assert_true(s.taken[k] > 0 && s.taken[k] <= claim_now_ms());
	assert_int_equal(s.live[k], 1);
	k = find_seen(&s, FOREIGN);
	assert_string_equal(s.folder[k], FB);
	assert_string_equal(s.commit[k], CB);
	assert_int_equal(s.taken[k], 1234);
	assert_int_equal(s.live[k], 1);
	k = find_seen(&s, "node-c.1.1.0123456789abcdef");
	assert_string_equal(s.commit[k], CB);
	assert_int_equal(s.taken[k], 99);
	assert_int_equal(s.live[k], 0);
	k = find_seen(&s, dead);
	assert_string_equal(s.folder[k], FA);
	assert_int_equal(s.live[k], 0);

	/* fn's non-zero return stops the walk and is returned. */
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	assert_int_equal(lease_each(&fx->store, STALE_MS, collect, &s), 7);
	assert_int_equal(s.n, 2);

	lease_drop(&fx->store, &mine);
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS), 0);
	assert_int_equal(lease_live(&fx->store, FB, CB, STALE_MS), 1);
}

/* Without leases/ there is nothing to tell: an error, not "not leased". */
static void
test_no_dir(void **state)
{
	struct unit_fixture *fx = *state;
	char path[UNIT_PATH];
	struct seen s;

	memset(&s, 0, sizeof(s));
	unit_fmt(path, sizeof(path), "%s/leases", fx->dir);
	assert_int_equal(rmdir(path), 0);
	assert_int_equal(lease_live(&fx->store, FA, CA, STALE_MS), -ENOENT);
	assert_int_equal(lease_each(&fx->store, STALE_MS, collect, &s),
	    -ENOENT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_take_touch_drop,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_touch_removed,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_two_leases,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_take_bad_args,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_local_owner,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_owner_format,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_reused_pid,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_foreign_owner,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_other_pidns,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_malformed,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_each, unit_fixture_setup,
		    unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_no_dir, unit_fixture_setup,
		    unit_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
