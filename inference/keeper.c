/*
 * keeper: see keeper.h.
 *
 * The thread never uses the connection while it holds: it only polls its
 * descriptor for the end, so the bytes it reads there are ones the daemon
 * sends unasked (none, today) and are dropped.  Attempts to take the lease
 * again back off from 0.1 s to 2 s; the first failure is said on stderr,
 * and then one a minute, so a daemon away for an hour costs a few lines.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "backoff.h"
#include "keeper.h"
#include "log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define SAY_EVERY_S 60
#define COMMIT_HEX 40 /* a git commit id in hex */

struct keeper {
	mc_client *c;
	const char *socket, *model;
	char *ref; /* model, pinned to commit */
	char commit[COMMIT_HEX + 1];
	long timeout_ms;
	time_t said_at; /* when a failure was last said; 0: none since */
};

/* The one keeper of the process; static, so that nothing it holds leaks. */
static struct keeper the;

char *
keeper_ref(const char *model, const char *commit)
{
	const char *at;
	char *s;
	size_t n;

	if (strncmp(model, "hf://", 5) != 0 && strstr(model, "://") != NULL)
		return strdup(model);
	/* A repo id has no '@': the first one starts the revision. */
	at = strchr(model, '@');
	n = at != NULL ? (size_t)(at - model) : strlen(model);
	if ((s = malloc(n + strlen(commit) + 2)) != NULL)
		sprintf(s, "%.*s@%s", (int)n, model, commit);
	return s;
}

/* Blocks until the connection ends. */
static void
wait_end(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[4096];
	ssize_t n;

	for (;;) {
		if (poll(&p, 1, -1) < 0)
			continue; /* EINTR; no signal reaches this thread */
		if (p.revents & (POLLERR | POLLNVAL))
			return;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return;
	}
}

static void
say(struct keeper *k, const char *what, int rc, const char *msg)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (k->said_at != 0 && now.tv_sec - k->said_at < SAY_EVERY_S)
		return;
	k->said_at = now.tv_sec > 0 ? now.tv_sec : 1;
	log_warnx("cannot take the lease again yet (%s: %s%s%s); trying on",
	    what, strerror(-rc), *msg != '\0' ? ": " : "", msg);
}

/* One attempt: 0 with k->c holding a new lease on k->commit, or < 0. */
static int
retake(struct keeper *k)
{
	mc_model *m = NULL;
	int rc;

	rc =
	    mc_connect(k->socket, "modelcache-preload/" PACKAGE_VERSION, &k->c);
	if (rc < 0) {
		say(k, "connect", rc, "");
		return rc;
	}
	rc = mc_acquire(k->c, k->ref, k->timeout_ms, NULL, NULL, &m);
	if (rc == 0 && strcmp(mc_model_commit(m), k->commit) != 0) {
		rc = -ESTALE;
		say(k, "acquire", rc, "the reference names another commit now");
	} else if (rc < 0) {
		say(k, "acquire", rc, mc_message(k->c));
	} else {
		log_info("lease taken again: %s, commit %.12s, lease %s",
		    k->ref, k->commit, mc_model_lease(m));
		k->said_at = 0;
	}
	mc_model_free(m);
	if (rc < 0) {
		mc_close(k->c);
		k->c = NULL;
	}
	return rc;
}

static void *
keep(void *arg)
{
	struct keeper *k = arg;
	struct timespec pause;
	unsigned tries;
	int64_t ms;

	for (;;) {
		wait_end(mc_fd(k->c));
		mc_close(k->c);
		k->c = NULL;
		log_info("the daemon closed the connection, ending the lease"
			 " on %s (commit %.12s); taking it again",
		    k->model, k->commit);
		for (tries = 0; retake(k) < 0; tries++) {
			ms = backoff_ms(BACKOFF_MIN_MS, BACKOFF_MAX_MS, tries);
			pause.tv_sec = (time_t)(ms / 1000);
			pause.tv_nsec = (long)(ms % 1000) * 1000000L;
			nanosleep(&pause, NULL);
		}
	}
	return NULL;
}

int
keeper_start(mc_client *c, const char *socket, const char *model,
    const char *commit, long timeout_ms)
{
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	if (the.c != NULL || strlen(commit) >= sizeof(the.commit))
		return -EINVAL;
	if ((the.ref = keeper_ref(model, commit)) == NULL)
		return -ENOMEM;
	the.socket = socket;
	the.model = model;
	snprintf(the.commit, sizeof(the.commit), "%s", commit);
	the.timeout_ms = timeout_ms;
	the.c = c;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, keep, &the);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		free(the.ref);
		memset(&the, 0, sizeof(the));
		return -rc;
	}
	return 0;
}
