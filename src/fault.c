/*
 * fault: see fault.h.  The counter is process-wide and atomic because the
 * import workers call fault_point() from several threads.
 */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"

static atomic_long fault_calls;
static pthread_once_t fault_once = PTHREAD_ONCE_INIT;
static long fault_at; /* 0: disabled */
static int fault_trace;
static const char *fault_name; /* NULL: every point counts */
static int fault_sig = SIGKILL;
static const char *fault_then; /* NULL: no kill after the stop */
static atomic_int fault_stopped;

static void
fault_read_env(void)
{
	const char *s = getenv("MODELCACHE_CRASH_AT");
	char *end;
	long n = 0;

	if (s != NULL) {
		n = strtol(s, &end, 10);
		if (*end != '\0' || n < 0)
			n = 0;
	}
	s = getenv("MODELCACHE_CRASH_TRACE");
	fault_trace = s != NULL && *s == '1';
	fault_at = n;
	s = getenv("MODELCACHE_CRASH_POINT");
	fault_name = s != NULL && *s != '\0' ? s : NULL;
	s = getenv("MODELCACHE_CRASH_SIGNAL");
	if (s != NULL && strcmp(s, "STOP") == 0)
		fault_sig = SIGSTOP;
	s = getenv("MODELCACHE_CRASH_THEN");
	fault_then = s != NULL && *s != '\0' ? s : NULL;
}

void
fault_point(const char *name)
{
	long n;

	pthread_once(&fault_once, fault_read_env);
	if (fault_at == 0 && !fault_trace)
		return;
	if (fault_then != NULL && atomic_load(&fault_stopped) &&
	    strcmp(name, fault_then) == 0)
		kill(getpid(), SIGKILL);
	if (fault_name != NULL && strcmp(name, fault_name) != 0)
		return;
	n = atomic_fetch_add(&fault_calls, 1) + 1;
	if (fault_trace)
		fprintf(stderr, "fault point %ld: %s\n", n, name);
	if (n == fault_at) {
		kill(getpid(), fault_sig);
		/* Continued: MODELCACHE_CRASH_THEN's point kills it now. */
		atomic_store(&fault_stopped, fault_sig == SIGSTOP);
	}
}
