/*
 * beat: heartbeats on a thread of their own.
 *
 * Claims and leases stay alive by their mtime (claim.h, lease.h), and
 * another node judges them dead when that mtime grows older than the stale
 * limit.  So the touches must not wait behind anything else a program
 * does: a busy SQLite, a claim wait, an fsync of a big file, a long
 * callback on the event loop.  A beat is one thread whose only work is to
 * touch the files in its registry every interval, with futimens(fd, NULL):
 * the filesystem stamps the time (its server's clock on NFS), never a time
 * the program computed.  The registry is guarded by a mutex that is never
 * held across a filesystem call, so adding and removing a file never waits
 * on the disk either.
 *
 * Each file is touched through a descriptor opened when it is added, so
 * the beat keeps alive the inode it was given and never another one put
 * under the same name: a claim taken over after a stall is another file,
 * which this beat leaves alone.  After each touch the name is looked up
 * again; a name that is gone, or names another inode, makes the entry
 * lost (beat_state()), which is how a holder learns that its claim was
 * taken or its lease removed.
 *
 * A program starts one beat and hangs it on its store (store->beat);
 * claim.c and lease.c add and remove their files.
 */
#ifndef MC_BEAT_H
#define MC_BEAT_H

#include <pthread.h>
#include <stdint.h>

struct beat_entry;

struct beat {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* wakes the thread (stop) and round waiters */
	pthread_t thread;
	struct beat_entry *entries;
	int64_t interval_ms;
	uint64_t rounds; /* rounds completed */
	int running, stop;
};

/*
 * Starts the thread, which touches every file added about every
 * interval_ms (at least 1).  Returns 0 or a negative errno.
 */
int beat_start(struct beat *b, int64_t interval_ms);

/* Changes the interval (a configuration reload), from the next round. */
void beat_set_interval(struct beat *b, int64_t interval_ms);

/*
 * Stops the thread and forgets every file (their descriptors closed).  A
 * no-op on a beat that was never started.
 */
void beat_stop(struct beat *b);

/*
 * Adds the file rel under dirfd (which must stay open while it is in the
 * registry), opened now (a file the caller just made or touched: the
 * thread touches it from its next round on).  Adding a name already there
 * opens it again (the file may have been replaced by rename).  Returns 0
 * or a negative errno (-ENOENT when the file is not there).
 */
int beat_add(struct beat *b, int dirfd, const char *rel);

/* Removes rel under dirfd from the registry; no-op when absent. */
void beat_remove(struct beat *b, int dirfd, const char *rel);

/*
 * What the last touch of rel found: 0 while it is still the file that was
 * added, -ENOENT when the name is gone or names another file, another
 * negative errno when the touch failed, -ESRCH when rel is not registered.
 */
int beat_state(struct beat *b, int dirfd, const char *rel);

/*
 * Waits until n more rounds have completed (tests: "the thread has
 * touched everything since").  Returns 0, or -ETIMEDOUT after timeout_ms.
 */
int beat_wait_rounds(struct beat *b, unsigned n, int64_t timeout_ms);

#endif
