/*
 * unit_origin.h: the fault-injecting test origin (tests/origin/hf_origin.py)
 * for the unit tests that drive pulls on a libuv loop: started by the test
 * on an ephemeral loopback port, waited for by its port file (bounded
 * polling, never a fixed sleep), asked for its counters (/_stats), killed
 * at the end of the test.  A program that uses it calls
 * unit_origin_missing() first and exits 77 (a skip, with the reason) when
 * python3 or the script cannot be found.  Include after unit.h.
 */
#ifndef MC_UNIT_ORIGIN_H
#define MC_UNIT_ORIGIN_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <curl/curl.h>
#include <jansson.h>

#ifndef UNIT_TOP_SRCDIR
#define UNIT_TOP_SRCDIR "."
#endif

#define UNIT_ORIGIN_ARGS 32

struct unit_origin {
	pid_t pid;
	char url[64]; /* http://127.0.0.1:PORT, https with --tls-cert */
	char log[4200];
	const char *ca_file; /* the CA of an https origin's certificate */
};

/* tests/origin/hf_origin.py of the source tree, into buf. */
static inline void
unit_origin_script(char *buf, size_t len)
{
	const char *top = getenv("top_srcdir");

	if (top == NULL || *top == '\0')
		top = UNIT_TOP_SRCDIR;
	snprintf(buf, len, "%s/tests/origin/hf_origin.py", top);
}

/* NULL when the origin can run; else why not (for the skip). */
static inline const char *
unit_origin_missing(void)
{
	static char why[4300];
	const char *path = getenv("PATH");
	char script[4200], exe[4200];
	const char *s, *e;
	int found = 0;

	unit_origin_script(script, sizeof(script));
	for (s = path != NULL ? path : "/usr/bin:/bin"; !found && *s != '\0';
	     s = *e != '\0' ? e + 1 : e) {
		e = s + strcspn(s, ":");
		snprintf(exe, sizeof(exe), "%.*s/python3", (int)(e - s), s);
		found = access(exe, X_OK) == 0;
	}
	if (!found)
		return "python3 is not on PATH (the test origin needs it)";
	if (access(script, R_OK) != 0) {
		snprintf(why, sizeof(why), "%s: %s (set top_srcdir)", script,
		    strerror(errno));
		return why;
	}
	return NULL;
}

/*
 * Starts the origin with the NULL-ended extra arguments (--repo ...,
 * --fault ...), its port file and log under dir, and waits (at most 30 s)
 * until it listens.
 */
static inline void
unit_origin_start(struct unit_origin *o, const char *dir,
    const char *const *args)
{
	char script[4200], portfile[4200], buf[32];
	const char *argv[UNIT_ORIGIN_ARGS + 10];
	char *cargv[UNIT_ORIGIN_ARGS + 10];
	size_t n = 0, i;
	int fd, status, tries, tls = 0;
	ssize_t got;

	unit_origin_script(script, sizeof(script));
	snprintf(portfile, sizeof(portfile), "%s/origin.port", dir);
	snprintf(o->log, sizeof(o->log), "%s/origin.log", dir);
	unlink(portfile);
	argv[n++] = "python3";
	argv[n++] = script;
	argv[n++] = "--port-file";
	argv[n++] = portfile;
	argv[n++] = "--host";
	argv[n++] = "127.0.0.1";
	argv[n++] = "--cdn-host";
	argv[n++] = "localhost";
	for (i = 0; args != NULL && args[i] != NULL; i++) {
		assert_true(i < UNIT_ORIGIN_ARGS);
		argv[n++] = args[i];
		tls |= strcmp(args[i], "--tls-cert") == 0;
	}
	argv[n] = NULL;
	o->pid = fork();
	assert_true(o->pid >= 0);
	if (o->pid == 0) {
		fd = open(o->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0)
			dup2(fd, 2);
		fd = open("/dev/null", O_RDWR);
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
		}
		for (i = 0; i < n; i++) /* execvp's argv is not const */
			cargv[i] = strdup(argv[i]);
		cargv[n] = NULL;
		execvp("python3", cargv);
		_exit(127);
	}
	for (tries = 0; tries < 3000; tries++) {
		fd = open(portfile, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			got = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			if (got > 0) {
				buf[got] = '\0';
				snprintf(o->url, sizeof(o->url),
				    "%s://127.0.0.1:%d", tls ? "https" : "http",
				    atoi(buf));
				return;
			}
		}
		if (waitpid(o->pid, &status, WNOHANG) == o->pid) {
			o->pid = -1;
			fail_msg("the test origin exited; see %s", o->log);
		}
		usleep(10000);
	}
	fail_msg("the test origin did not listen within 30 s; see %s", o->log);
}

/* Kills it (it keeps nothing worth a clean shutdown) and reaps it. */
static inline void
unit_origin_stop(struct unit_origin *o)
{
	int status;

	if (o->pid <= 0)
		return;
	kill(o->pid, SIGKILL);
	while (waitpid(o->pid, &status, 0) == -1 && errno == EINTR)
		;
	o->pid = -1;
}

static inline size_t
unit_origin_body(char *data, size_t size, size_t n, void *arg)
{
	char **body = arg;
	size_t have = *body != NULL ? strlen(*body) : 0;
	char *b = realloc(*body, have + size * n + 1);

	if (b == NULL)
		return 0;
	memcpy(b + have, data, size * n);
	b[have + size * n] = '\0';
	*body = b;
	return size * n;
}

/* GET (or POST) url/path, blocking, outside any loop; the JSON answer. */
static inline json_t *
unit_origin_call(const struct unit_origin *o, const char *path, int post)
{
	char url[256], *body = NULL;
	json_error_t err;
	json_t *j;
	long code = 0;
	CURL *c = curl_easy_init();

	assert_non_null(c);
	snprintf(url, sizeof(url), "%s%s", o->url, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	if (o->ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
	if (post)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, unit_origin_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	assert_int_equal(code, 200);
	assert_non_null(body);
	j = json_loads(body, 0, &err);
	free(body);
	assert_non_null(j);
	return j;
}

/* How many times the fault spec fired, by the origin's count. */
static inline long long
unit_origin_fired(const struct unit_origin *o, const char *spec)
{
	json_t *s = unit_origin_call(o, "/_stats", 0);
	json_t *v = json_object_get(json_object_get(s, "faults"), spec);
	long long n;

	assert_true(json_is_integer(v));
	n = json_integer_value(v);
	json_decref(s);
	return n;
}

/* The body bytes the origin has served of the file sha256 (since reset). */
static inline long long
unit_origin_bytes(const struct unit_origin *o, const char *sha256)
{
	json_t *s = unit_origin_call(o, "/_stats", 0);
	json_t *v =
	    json_object_get(json_object_get(s, "bytes_by_sha256"), sha256);
	long long n = json_is_integer(v) ? json_integer_value(v) : 0;

	json_decref(s);
	return n;
}

/* Zeroes the origin's byte and request counts (not the faults'). */
static inline void
unit_origin_reset(const struct unit_origin *o)
{
	json_decref(unit_origin_call(o, "/_reset", 1));
}

#endif
