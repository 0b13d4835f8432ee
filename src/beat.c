/*
 * beat: see beat.h.  The registry is a list of entries, each counted by
 * the list and by a round in progress: a round takes a reference to every
 * entry under the lock, touches them without it, then drops the references.
 * Removing an entry unlinks it and drops the list's reference; whoever
 * drops the last one closes the descriptor.  So beat_remove() never waits
 * for a touch that a slow disk holds up.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "beat.h"

struct beat_entry {
	struct beat_entry *next;
	char *rel;
	int dirfd, fd;
	unsigned refs;
	int state; /* beat_state() */
	dev_t dev;
	ino_t ino;
};

static void
entry_unref(struct beat_entry *e)
{
	if (--e->refs > 0)
		return;
	close(e->fd);
	free(e->rel);
	free(e);
}

/* Touches one entry's inode and checks that its name still leads there. */
static int
entry_touch(const struct beat_entry *e)
{
	struct stat st;

	if (futimens(e->fd, NULL) == -1)
		return -errno;
	if (fstatat(e->dirfd, e->rel, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return -errno;
	return st.st_dev == e->dev && st.st_ino == e->ino ? 0 : -ENOENT;
}

static void
deadline(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static void *
beat_main(void *arg)
{
	struct beat *b = arg;
	struct beat_entry **round = NULL, **grown, *e;
	size_t n, cap = 0, i;
	struct timespec ts;
	int *states = NULL, *sgrown;

	pthread_mutex_lock(&b->lock);
	while (!b->stop) {
		n = 0;
		for (e = b->entries; e != NULL; e = e->next)
			n++;
		if (n > cap) {
			grown = realloc(round, n * sizeof(*round));
			sgrown = realloc(states, n * sizeof(*states));
			if (grown != NULL)
				round = grown;
			if (sgrown != NULL)
				states = sgrown;
			if (grown != NULL && sgrown != NULL)
				cap = n;
		}
		n = 0;
		for (e = b->entries; e != NULL && n < cap; e = e->next) {
			e->refs++;
			round[n++] = e;
		}
		pthread_mutex_unlock(&b->lock);
		for (i = 0; i < n; i++)
			states[i] = entry_touch(round[i]);
		pthread_mutex_lock(&b->lock);
		for (i = 0; i < n; i++) {
			round[i]->state = states[i];
			entry_unref(round[i]);
		}
		b->rounds++;
		pthread_cond_broadcast(&b->cond);
		deadline(&ts, b->interval_ms);
		while (!b->stop &&
		    pthread_cond_timedwait(&b->cond, &b->lock, &ts) == 0)
			; /* a broadcast of our own or a waiter's: wait on */
	}
	pthread_mutex_unlock(&b->lock);
	free(round);
	free(states);
	return NULL;
}

int
beat_start(struct beat *b, int64_t interval_ms)
{
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc;

	memset(b, 0, sizeof(*b));
	b->interval_ms = interval_ms > 0 ? interval_ms : 1;
	if ((rc = pthread_mutex_init(&b->lock, NULL)) != 0)
		return -rc;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rc = pthread_cond_init(&b->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (rc != 0) {
		pthread_mutex_destroy(&b->lock);
		return -rc;
	}
	/* Signals are the program's business: the thread blocks them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&b->thread, NULL, beat_main, b);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_cond_destroy(&b->cond);
		pthread_mutex_destroy(&b->lock);
		return -rc;
	}
	b->running = 1;
	return 0;
}

void
beat_set_interval(struct beat *b, int64_t interval_ms)
{
	if (!b->running)
		return;
	pthread_mutex_lock(&b->lock);
	b->interval_ms = interval_ms > 0 ? interval_ms : 1;
	pthread_mutex_unlock(&b->lock);
}

void
beat_stop(struct beat *b)
{
	struct beat_entry *e;

	if (!b->running)
		return;
	pthread_mutex_lock(&b->lock);
	b->stop = 1;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	pthread_join(b->thread, NULL);
	while ((e = b->entries) != NULL) {
		b->entries = e->next;
		entry_unref(e);
	}
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
	b->running = 0;
}

/* The entry for dirfd/rel, or NULL; with the lock held. */
static struct beat_entry **
entry_find(struct beat *b, int dirfd, const char *rel)
{
	struct beat_entry **p;

	for (p = &b->entries; *p != NULL; p = &(*p)->next)
		if ((*p)->dirfd == dirfd && strcmp((*p)->rel, rel) == 0)
			return p;
	return NULL;
}

int
beat_add(struct beat *b, int dirfd, const char *rel)
{
	struct beat_entry *e, **old;
	struct stat st;
	int rc = 0;

	if (!b->running)
		return -EINVAL;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return -ENOMEM;
	e->refs = 1;
	e->dirfd = dirfd;
	e->fd = -1;
	if ((e->rel = strdup(rel)) == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	/* O_NONBLOCK: a FIFO put there must not hang us. */
	e->fd =
	    openat(dirfd, rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (e->fd == -1 || fstat(e->fd, &st) == -1) {
		rc = errno == ELOOP ? -EINVAL : -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto fail;
	}
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	pthread_mutex_lock(&b->lock);
	if ((old = entry_find(b, dirfd, rel)) != NULL) {
		struct beat_entry *gone = *old;

		*old = gone->next;
		entry_unref(gone);
	}
	e->next = b->entries;
	b->entries = e;
	pthread_mutex_unlock(&b->lock);
	return 0;
fail:
	if (e->fd != -1)
		close(e->fd);
	free(e->rel);
	free(e);
	return rc;
}

void
beat_remove(struct beat *b, int dirfd, const char *rel)
{
	struct beat_entry **p, *e;

	if (!b->running)
		return;
	pthread_mutex_lock(&b->lock);
	if ((p = entry_find(b, dirfd, rel)) != NULL) {
		e = *p;
		*p = e->next;
		entry_unref(e);
	}
	pthread_mutex_unlock(&b->lock);
}

int
beat_state(struct beat *b, int dirfd, const char *rel)
{
	struct beat_entry **p;
	int rc;

	if (!b->running)
		return -ESRCH;
	pthread_mutex_lock(&b->lock);
	p = entry_find(b, dirfd, rel);
	rc = p != NULL ? (*p)->state : -ESRCH;
	pthread_mutex_unlock(&b->lock);
	return rc;
}

int
beat_wait_rounds(struct beat *b, unsigned n, int64_t timeout_ms)
{
	struct timespec ts;
	uint64_t until;
	int rc = 0;

	if (!b->running)
		return -EINVAL;
	deadline(&ts, timeout_ms);
	pthread_mutex_lock(&b->lock);
	/* One more than asked: the round in progress may have begun before. */
	until = b->rounds + n + 1;
	while (b->rounds < until && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&b->cond, &b->lock, &ts);
	rc = b->rounds >= until ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&b->lock);
	return rc;
}
