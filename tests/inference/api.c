/*
 * api: libmodelcache's behaviour through its installed header and library,
 * against a real modelcached on $MODELCACHE_SOCKET.  Run by
 * tests/integration/t0301-libmodelcache.sh, one check a run:
 *
 *	api progress MODEL	the callback is called during a (slow) pull
 *	api timeout MODEL MS	-ETIMEDOUT, then the client still works
 *	api threads MODEL MODEL	two threads on one client, both succeed
 *	api release MODEL	release, then again: -ENOENT with a message
 *	api status MODEL	mc_status lists the lease taken, then not
 *	api fd			mc_fd() is a close-on-exec socket
 *	api args MODEL		bad arguments are -EINVAL, NULL is a no-op
 *	api acquire MODEL ERR	mc_acquire fails with -ERR and a message
 *	api connect ERR		mc_connect fails with -ERR
 *
 * Exits 0 when the check holds, 1 with what went wrong on stderr.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <modelcache.h>

static const struct {
	const char *name;
	int err;
} errs[] = { { "ENOENT", ENOENT }, { "EACCES", EACCES }, { "EPERM", EPERM },
	{ "EBADMSG", EBADMSG }, { "EHOSTUNREACH", EHOSTUNREACH },
	{ "ENOSPC", ENOSPC }, { "ETIMEDOUT", ETIMEDOUT }, { "EBUSY", EBUSY },
	{ "ESHUTDOWN", ESHUTDOWN }, { "EINVAL", EINVAL },
	{ "ECONNREFUSED", ECONNREFUSED }, { "EIO", EIO } };

static int failed;
/* Not a pointer a call may leave in *out when it fails. */
static char sentinel;
static void *const not_null = &sentinel;

static void
fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "api: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	failed = 1;
}

static int
err_of(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		if (strcmp(errs[i].name, name) == 0)
			return errs[i].err;
	fprintf(stderr, "api: unknown errno name '%s'\n", name);
	exit(2);
}

static mc_client *
connect_or_die(void)
{
	mc_client *c;
	int rc;

	if ((rc = mc_connect(NULL, "api/1", &c)) < 0) {
		fprintf(stderr, "api: mc_connect: %s\n", strerror(-rc));
		exit(1);
	}
	return c;
}

/* A ready model, checked for what the protocol promises. */
static void
check_model(const mc_model *m, const char *repo)
{
	const struct mc_file *f;
	size_t i;

	if (strcmp(mc_model_repo(m), repo) != 0)
		fail("repo '%s', want '%s'", mc_model_repo(m), repo);
	if (strlen(mc_model_commit(m)) != 40)
		fail("commit '%s' is not 40 digits", mc_model_commit(m));
	if (strncmp(mc_model_dir(m), "hub/models--", 12) != 0 ||
	    strstr(mc_model_dir(m), mc_model_commit(m)) == NULL)
		fail("dir '%s' is not the snapshot", mc_model_dir(m));
	if (*mc_model_lease(m) == '\0')
		fail("an empty lease");
	if (mc_model_nfiles(m) == 0)
		fail("no files");
	for (i = 0; i < mc_model_nfiles(m); i++) {
		f = mc_model_file(m, i);
		if (f == NULL || *f->path == '\0' || strlen(f->sha256) != 64)
			fail("file %zu is not a file", i);
	}
	if (mc_model_file(m, mc_model_nfiles(m)) != NULL)
		fail("mc_model_file past the end is not NULL");
}

/* The repo of a model reference "hf://org/name@rev" or "org/name". */
static char *
repo_of(const char *model)
{
	const char *p = strncmp(model, "hf://", 5) == 0 ? model + 5 : model;
	char *r = strdup(p), *at;

	if (r == NULL)
		exit(1);
	if ((at = strchr(r, '@')) != NULL)
		*at = '\0';
	return r;
}

struct counts {
	pthread_t thread;
	int calls, bad;
	uint64_t last_total;
};

static void
count(void *arg, uint64_t done, uint64_t total)
{
	struct counts *n = arg;

	n->calls++;
	if (done > total || !pthread_equal(n->thread, pthread_self()))
		n->bad++;
	n->last_total = total;
}

static void
check_progress(const char *model)
{
	struct counts n = { pthread_self(), 0, 0, 0 };
	mc_client *c = connect_or_die();
	char *repo = repo_of(model);
	mc_model *m = NULL;
	int rc;

	if ((rc = mc_acquire(c, model, 0, count, &n, &m)) < 0) {
		fail("mc_acquire: %s: %s", strerror(-rc), mc_message(c));
	} else {
		check_model(m, repo);
		if (n.calls < 1)
			fail("the progress callback was never called");
		if (n.bad > 0)
			fail("%d calls with done > total", n.bad);
		if (n.last_total == 0)
			fail("the last call has total 0");
		printf("%d calls, total %" PRIu64 "\n", n.calls, n.last_total);
	}
	mc_model_free(m);
	mc_close(c);
	free(repo);
}

static void
check_timeout(const char *model, long ms)
{
	mc_client *c = connect_or_die();
	char *repo = repo_of(model);
	mc_model *m = NULL;
	int rc;

	rc = mc_acquire(c, model, ms, NULL, NULL, &m);
	if (rc != -ETIMEDOUT)
		fail("mc_acquire with %ld ms: %s, want %s", ms, strerror(-rc),
		    strerror(ETIMEDOUT));
	if (m != NULL)
		fail("a failed mc_acquire left a model");
	if (*mc_message(c) == '\0')
		fail("no message with the timeout");
	/* The pull goes on, and the connection with it. */
	if ((rc = mc_acquire(c, model, 0, NULL, NULL, &m)) < 0)
		fail("mc_acquire after the timeout: %s", strerror(-rc));
	else
		check_model(m, repo);
	mc_model_free(m);
	mc_close(c);
	free(repo);
}

struct job {
	pthread_t id;
	mc_client *c;
	const char *model;
	struct counts n;
	mc_model *m;
	int rc;
};

static void *
acquire_job(void *arg)
{
	struct job *j = arg;

	j->n.thread = pthread_self();
	j->rc = mc_acquire(j->c, j->model, 0, count, &j->n, &j->m);
	return NULL;
}

/*
 * Two threads acquire at once on one client.  Its calls are serialised:
 * each gets its own answer, and its own progress events on its own thread
 * (count() marks a call on another thread as bad).
 */
static void
check_threads(const char *model1, const char *model2)
{
	struct job j[2];
	mc_client *c = connect_or_die();
	char *repo;
	int i, rc;

	memset(j, 0, sizeof(j));
	j[0].model = model1;
	j[1].model = model2;
	for (i = 0; i < 2; i++) {
		j[i].c = c;
		rc = pthread_create(&j[i].id, NULL, acquire_job, &j[i]);
		if (rc != 0) {
			fprintf(stderr, "api: pthread_create: %s\n",
			    strerror(rc));
			exit(1);
		}
	}
	for (i = 0; i < 2; i++)
		pthread_join(j[i].id, NULL);
	for (i = 0; i < 2; i++) {
		if (j[i].rc < 0) {
			fail("thread %d: mc_acquire '%s': %s", i, j[i].model,
			    strerror(-j[i].rc));
			continue;
		}
		repo = repo_of(j[i].model);
		check_model(j[i].m, repo);
		free(repo);
		if (j[i].n.bad > 0)
			fail("thread %d: %d bad progress calls", i, j[i].n.bad);
		printf("thread %d: %s, %d progress calls\n", i,
		    mc_model_repo(j[i].m), j[i].n.calls);
	}
	if (j[0].rc == 0 && j[1].rc == 0 &&
	    strcmp(mc_model_lease(j[0].m), mc_model_lease(j[1].m)) == 0)
		fail("both threads got the lease '%s'", mc_model_lease(j[0].m));
	for (i = 0; i < 2; i++) {
		if (j[i].rc == 0 && (rc = mc_release(c, j[i].m)) < 0)
			fail("thread %d: mc_release: %s", i, strerror(-rc));
		mc_model_free(j[i].m);
	}
	mc_close(c);
}

static void
check_release(const char *model)
{
	mc_client *c = connect_or_die();
	mc_model *m;
	int rc;

	if ((rc = mc_acquire(c, model, 0, NULL, NULL, &m)) < 0) {
		fail("mc_acquire: %s", strerror(-rc));
		mc_close(c);
		return;
	}
	if ((rc = mc_release(c, m)) != 0)
		fail("mc_release: %s", strerror(-rc));
	if (*mc_message(c) != '\0')
		fail("a message after a release that worked: '%s'",
		    mc_message(c));
	if ((rc = mc_release(c, m)) != -ENOENT)
		fail("mc_release again: %s, want %s", strerror(-rc),
		    strerror(ENOENT));
	if (*mc_message(c) == '\0')
		fail("no message with the second release");
	printf("%s\n", mc_message(c));
	/* The connection goes on after an error. */
	mc_model_free(m);
	if ((rc = mc_acquire(c, model, 0, NULL, NULL, &m)) < 0)
		fail("mc_acquire after the error: %s", strerror(-rc));
	if (*mc_message(c) != '\0')
		fail("the message outlived its failure: '%s'", mc_message(c));
	mc_model_free(m);
	mc_close(c);
}

/* The lease's entry in a status text: "lease":"ID". */
static int
lists(const char *json, const char *lease)
{
	char want[512];

	snprintf(want, sizeof(want), "\"lease\":\"%s\"", lease);
	return strstr(json, want) != NULL;
}

static void
check_status(const char *model)
{
	mc_client *c = connect_or_die();
	char *json = not_null;
	mc_model *m;
	int rc;

	if ((rc = mc_status(NULL, &json)) != -EINVAL || json != NULL)
		fail("mc_status(NULL): %s, want %s, *json NULL", strerror(-rc),
		    strerror(EINVAL));
	if ((rc = mc_status(c, NULL)) != -EINVAL)
		fail("mc_status(c, NULL): %s", strerror(-rc));
	if ((rc = mc_acquire(c, model, 0, NULL, NULL, &m)) < 0) {
		fail("mc_acquire: %s", strerror(-rc));
		mc_close(c);
		return;
	}
	if ((rc = mc_status(c, &json)) < 0) {
		fail("mc_status: %s", strerror(-rc));
	} else {
		/* One object, one line, the answer's fields, no "ok". */
		if (json[0] != '{' || json[strlen(json) - 1] != '}' ||
		    strchr(json, '\n') != NULL)
			fail("not one object on one line: %s", json);
		if (strstr(json, "\"ok\"") != NULL)
			fail("the answer's ok is there: %s", json);
		if (strstr(json, "\"server\":\"modelcached/") == NULL ||
		    strstr(json, "\"ready\":") == NULL ||
		    strstr(json, "\"pulls\":[") == NULL)
			fail("not the status answer: %s", json);
		if (!lists(json, mc_model_lease(m)))
			fail("the lease '%s' is not listed: %s",
			    mc_model_lease(m), json);
		printf("%s\n", json);
		free(json);
	}
	if ((rc = mc_release(c, m)) < 0)
		fail("mc_release: %s", strerror(-rc));
	/* The client goes on, and the status follows the release. */
	json = NULL;
	if ((rc = mc_status(c, &json)) < 0)
		fail("mc_status after the release: %s", strerror(-rc));
	else if (lists(json, mc_model_lease(m)))
		fail("the released lease is listed: %s", json);
	free(json);
	mc_model_free(m);
	mc_close(c);
}

static void
check_fd(void)
{
	mc_client *c = connect_or_die();
	struct stat st;
	int flags;

	if (fstat(mc_fd(c), &st) < 0)
		fail("fstat(mc_fd): %s", strerror(errno));
	else if (!S_ISSOCK(st.st_mode))
		fail("mc_fd is not a socket (mode %o)", (unsigned)st.st_mode);
	if ((flags = fcntl(mc_fd(c), F_GETFD)) < 0 || !(flags & FD_CLOEXEC))
		fail("mc_fd is not close-on-exec");
	mc_close(c);
}

/* Arguments the library refuses before it asks the daemon. */
static void
check_args(const char *model)
{
	mc_client *c = connect_or_die(), *other;
	mc_model *m = not_null;
	int rc;

	if ((rc = mc_acquire(c, NULL, 0, NULL, NULL, &m)) != -EINVAL)
		fail("mc_acquire of NULL: %s", strerror(-rc));
	if (m != NULL)
		fail("a failed mc_acquire did not set *out to NULL");
	if ((rc = mc_acquire(c, "org/\xff", 0, NULL, NULL, &m)) != -EINVAL)
		fail("mc_acquire of a name not UTF-8: %s", strerror(-rc));
	if ((rc = mc_release(c, NULL)) != -EINVAL)
		fail("mc_release of NULL: %s", strerror(-rc));
	if ((rc = mc_connect(NULL, "api/\xff", &other)) != -EINVAL)
		fail("mc_connect as a name not UTF-8: %s", strerror(-rc));
	/* And the client is still in step with the daemon. */
	if ((rc = mc_acquire(c, model, 0, NULL, NULL, &m)) < 0)
		fail("mc_acquire after them: %s", strerror(-rc));
	mc_model_free(m);
	mc_model_free(NULL);
	mc_close(c);
	mc_close(NULL);
}

static void
check_acquire_error(const char *model, const char *name)
{
	mc_client *c = connect_or_die();
	int want = err_of(name), rc;
	mc_model *m;

	rc = mc_acquire(c, model, 0, NULL, NULL, &m);
	if (rc != -want)
		fail("mc_acquire '%s': %s, want %s", model,
		    rc < 0 ? strerror(-rc) : "success", strerror(want));
	if (rc < 0 && *mc_message(c) == '\0')
		fail("no message with the error");
	printf("%s: %s\n", strerror(-rc), mc_message(c));
	if (rc == 0)
		mc_model_free(m);
	mc_close(c);
}

static void
check_connect_error(const char *name)
{
	int want = err_of(name), rc;
	mc_client *c = not_null;

	rc = mc_connect(NULL, "api/1", &c);
	if (rc != -want)
		fail("mc_connect: %s, want %s",
		    rc < 0 ? strerror(-rc) : "success", strerror(want));
	if (rc < 0 && c != NULL)
		fail("a failed mc_connect did not set *out to NULL");
	printf("%s\n", strerror(-rc));
	if (rc == 0)
		mc_close(c);
}

int
main(int argc, char *argv[])
{
	if (argc < 2)
		goto usage;
	if (strcmp(argv[1], "progress") == 0 && argc == 3)
		check_progress(argv[2]);
	else if (strcmp(argv[1], "timeout") == 0 && argc == 4)
		check_timeout(argv[2], strtol(argv[3], NULL, 10));
	else if (strcmp(argv[1], "threads") == 0 && argc == 4)
		check_threads(argv[2], argv[3]);
	else if (strcmp(argv[1], "release") == 0 && argc == 3)
		check_release(argv[2]);
	else if (strcmp(argv[1], "status") == 0 && argc == 3)
		check_status(argv[2]);
	else if (strcmp(argv[1], "fd") == 0 && argc == 2)
		check_fd();
	else if (strcmp(argv[1], "args") == 0 && argc == 3)
		check_args(argv[2]);
	else if (strcmp(argv[1], "acquire") == 0 && argc == 4)
		check_acquire_error(argv[2], argv[3]);
	else if (strcmp(argv[1], "connect") == 0 && argc == 3)
		check_connect_error(argv[2]);
	else
		goto usage;
	return failed;
usage:
	fprintf(stderr, "usage: api CHECK ARGS... (see api.c)\n");
	return 2;
}
