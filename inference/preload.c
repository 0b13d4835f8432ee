/*
 * modelcache-preload: the handshake before an inference server starts
 * (modelcache-preload(1)).
 *
 *	modelcache-preload [options] --model REF -- COMMAND [ARG...]
 *
 * Waits for the daemon's socket (the containers of a pod start in any
 * order), acquires REF through libmodelcache with progress on stderr,
 * warms the files into this container's page cache, exports where the
 * model is, and execs COMMAND with the lease's connection still open, so
 * the lease ends exactly when the server does.  With --lock the files stay
 * mapped and locked, which an exec would undo, and with --keep-lease a
 * thread takes the lease again when the daemon restarts (keeper.h): the
 * program then stays as a small parent that holds them, passes its signals
 * on to COMMAND, reaps what is orphaned to it (it may be a container's
 * PID 1) and exits with COMMAND's status.
 *
 * Everything up to the answer of the acquire is bounded by --timeout: the
 * wait for the socket by a deadline, the pull by the acquire's timeout_ms,
 * and a daemon that accepts but never answers by an alarm a few seconds
 * past the deadline.  Each failure is one line on stderr and an exit status
 * of its own (the enum below, listed in the man page).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "hub.h"
#include "keeper.h"
#include "log.h"
#include "modelcache.h"
#include "warm.h"

/* Seconds the alarm gives a silent daemon past the deadline. */
#define ALARM_GRACE_S 2
#define CONCURRENCY_MAX 256
#define TIMEOUT_MAX (7 * 86400)
#define BAR_WIDTH 30

struct opts {
	const char *socket, *model;
	char *store; /* absolute, no trailing '/'; ours */
	long timeout_s;
	unsigned concurrency;
	int lock, keep, warm, verify, warm_only, tty, drawn;
	char **command;
};

static void
usage(FILE *to)
{
	fprintf(to,
	    "usage: modelcache-preload [options] --model REF -- COMMAND"
	    " [ARG...]\n"
	    "       modelcache-preload [options] --model REF --warm-only\n"
	    "\n"
	    "  --model REF        the model to acquire\n"
	    "  --socket PATH      the daemon's socket (MODELCACHE_SOCKET)\n"
	    "  --store DIR        the store as mounted here"
	    " (MODELCACHE_STORE)\n"
	    "  --timeout SECONDS  wait at most this long, daemon and pull"
	    " (default 3600)\n"
	    "  --concurrency N    parallel readers while warming (default 8,"
	    " at most 256)\n"
	    "  --lock             map and mlock the files (a parent stays)\n"
	    "  --keep-lease       take the lease again after the daemon"
	    " restarts\n"
	    "                     (a parent stays)\n"
	    "  --no-warm          skip warming\n"
	    "  --verify           re-hash every file while warming\n"
	    "  --warm-only        handshake and warm, report, exit\n"
	    "  --help             this text\n"
	    "  --version          the version\n");
}

static int fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One line on stderr (log.c's, text or JSON); returns code. */
static int
fail(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_ERROR, 0, fmt, ap);
	va_end(ap);
	return code;
}

static double
now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* "1.5 GiB" into buf. */
static const char *
human(uint64_t n, char *buf, size_t len)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t u = 0;

	while (v >= 1024.0 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
	return buf;
}

/*
 * The store as given, made absolute (a relative one through realpath) and
 * without trailing slashes, so the paths exported are clean; it must be a
 * directory now, though the daemon may not have laid it out yet.
 */
static int
resolve_store(struct opts *o, const char *given)
{
	struct stat st;
	size_t len;

	if (given == NULL || *given == '\0')
		return fail(EXIT_USAGE,
		    "give the store's path: --store or MODELCACHE_STORE");
	if (given[0] != '/')
		o->store = realpath(given, NULL);
	else
		o->store = strdup(given);
	if (o->store == NULL || stat(o->store, &st) == -1)
		return fail(EXIT_USAGE, "bad store '%s': %s", given,
		    strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return fail(EXIT_USAGE, "bad store '%s': %s", given,
		    strerror(ENOTDIR));
	len = strlen(o->store);
	while (len > 1 && o->store[len - 1] == '/')
		o->store[--len] = '\0';
	return 0;
}

static int
parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "socket", required_argument, NULL, 's' },
		{ "store", required_argument, NULL, 'S' },
		{ "timeout", required_argument, NULL, 't' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "lock", no_argument, NULL, 'l' },
		{ "keep-lease", no_argument, NULL, 'k' },
		{ "no-warm", no_argument, NULL, 'n' },
		{ "verify", no_argument, NULL, 'v' },
		{ "warm-only", no_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *store = getenv("MODELCACHE_STORE"), *env;
	char *end;
	long v;
	int c;

	memset(o, 0, sizeof(o[0]));
	o->timeout_s = 3600;
	o->concurrency = 8;
	o->warm = 1;
	while ((c = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
		switch (c) {
		case 'm':
			o->model = optarg;
			break;
		case 's':
			o->socket = optarg;
			break;
		case 'S':
			store = optarg;
			break;
		case 't':
		case 'c':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    v < 1 ||
			    v > (c == 't' ? TIMEOUT_MAX : CONCURRENCY_MAX))
				return fail(EXIT_USAGE,
				    "bad --%s '%s': give 1 to %d",
				    c == 't' ? "timeout" : "concurrency",
				    optarg,
				    c == 't' ? TIMEOUT_MAX : CONCURRENCY_MAX);
			if (c == 't')
				o->timeout_s = v;
			else
				o->concurrency = (unsigned)v;
			break;
		case 'l':
			o->lock = 1;
			break;
		case 'k':
			o->keep = 1;
			break;
		case 'n':
			o->warm = 0;
			break;
		case 'v':
			o->verify = 1;
			break;
		case 'w':
			o->warm_only = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("modelcache-preload %s\n", PACKAGE_VERSION);
			exit(0);
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	o->command = argv + optind;
	if (o->model == NULL || *o->model == '\0')
		return fail(EXIT_USAGE, "--model REF is required");
	if (!o->warm_only && *o->command == NULL)
		return fail(EXIT_USAGE,
		    "no command to run (or give --warm-only)");
	if (o->warm_only && *o->command != NULL)
		return fail(EXIT_USAGE, "--warm-only runs no command");
	if (o->warm_only && o->keep)
		return fail(EXIT_USAGE,
		    "--warm-only keeps no lease: drop --keep-lease");
	if (o->socket == NULL || *o->socket == '\0') {
		env = getenv("MODELCACHE_SOCKET");
		o->socket =
		    env != NULL && *env != '\0' ? env : MC_SOCKET_DEFAULT;
	}
	return resolve_store(o, store);
}

/* The last word on a daemon that accepted but stays silent. */
static void
on_alarm(int sig)
{
	static const char msg[] = "modelcache-preload: timed out: the daemon"
				  " gave no answer within --timeout\n";
	ssize_t n;

	(void)sig;
	n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)n;
	_exit(EXIT_TIMEOUT);
}

/*
 * Connects, retrying while the socket is not there, not listening, or the
 * daemon is full; says once that it waits.
 */
static int
wait_daemon(const struct opts *o, double deadline, mc_client **c)
{
	struct timespec pause = { 0, 100 * 1000 * 1000 };
	int rc, said = 0;

	for (;;) {
		rc = mc_connect(o->socket,
		    "modelcache-preload/" PACKAGE_VERSION, c);
		if (rc == 0 ||
		    (rc != -ENOENT && rc != -ECONNREFUSED &&
			rc != -ECONNRESET && rc != -EBUSY))
			return rc;
		if (now_s() >= deadline)
			return -ETIMEDOUT;
		if (!said) {
			log_info("waiting for the daemon at '%s'", o->socket);
			said = 1;
		}
		nanosleep(&pause, NULL);
	}
}

/* Ends the bar's line, if one is drawn. */
static void
bar_end(struct opts *o)
{
	if (o->drawn)
		fputc('\n', stderr);
	o->drawn = 0;
}

static void
progress(void *arg, uint64_t done, uint64_t total)
{
	struct opts *o = arg;
	char d[32], t[32], bar[BAR_WIDTH + 1];
	double f = total ? (double)done / (double)total : 0.0;
	int i, fill;

	if (f > 1.0)
		f = 1.0;
	if (!o->tty) {
		if (total == 0)
			log_info("pulling %s: listing files", o->model);
		else
			log_info("pulling %s: %llu of %llu bytes (%.0f%%)",
			    o->model, (unsigned long long)done,
			    (unsigned long long)total, 100.0 * f);
		return;
	}
	fill = (int)(f * BAR_WIDTH);
	for (i = 0; i < BAR_WIDTH; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[BAR_WIDTH] = '\0';
	if (total == 0)
		fprintf(stderr,
		    "\rmodelcache-preload: %s [%s] listing files\033[K",
		    o->model, bar);
	else
		fprintf(stderr,
		    "\rmodelcache-preload: %s [%s] %3.0f%% %s of %s\033[K",
		    o->model, bar, 100.0 * f, human(done, d, sizeof(d)),
		    human(total, t, sizeof(t)));
	o->drawn = 1;
}

/*
 * An acquire's failure: its exit status, and what to call it (errors.h's
 * table for the daemon's codes).
 */
static int
exit_for(int rc, const char **what)
{
	enum err_code e = err_of_errno(rc);

	/* The connection's end is no code of the daemon's: it went away. */
	if (rc == -ECONNRESET || rc == -EPIPE) {
		*what = "the daemon went away";
		return EXIT_UNREACHABLE;
	}
	if (err_errno(e) != rc) {
		*what = strerror(-rc);
		return EXIT_FAIL;
	}
	*what = err_phrase(e);
	return err_exit(e);
}

/* The daemon's message made one line. */
static void
one_line(char *dst, size_t len, const char *src)
{
	size_t i;

	snprintf(dst, len, "%s", src);
	for (i = 0; dst[i] != '\0'; i++)
		if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
			dst[i] = ' ';
}

static void
files_free(struct warm_file *f, size_t n)
{
	size_t i;

	if (f == NULL)
		return;
	warm_release(f, n);
	for (i = 0; i < n; i++)
		free(f[i].path);
	free(f);
}

/* The model's files under this container's mount of the store. */
static struct warm_file *
files_of(const struct opts *o, const mc_model *m, size_t *n)
{
	struct warm_file *f = calloc(mc_model_nfiles(m) + 1, sizeof(*f));
	size_t i;

	*n = 0;
	if (f == NULL) {
		fail(EXIT_FAIL, "cannot list the files: %s", strerror(errno));
		return NULL;
	}
	for (i = 0; i < mc_model_nfiles(m); i++) {
		const struct mc_file *mf = mc_model_file(m, i);

		f[i].size = mf->size;
		snprintf(f[i].sha256, sizeof(f[i].sha256), "%s", mf->sha256);
		if (asprintf(&f[i].path, "%s/%s/%s", o->store, mc_model_dir(m),
			mf->path) < 0) {
			f[i].path = NULL;
			fail(EXIT_FAIL, "cannot list the files: %s",
			    strerror(ENOMEM));
			files_free(f, i);
			return NULL;
		}
		if (access(f[i].path, R_OK) != 0) {
			fail(EXIT_FAIL,
			    "cannot read '%s' (is the store mounted at '%s'?):"
			    " %s",
			    f[i].path, o->store, strerror(errno));
			files_free(f, i + 1);
			return NULL;
		}
	}
	*n = i;
	return f;
}

static void
report(const struct warm_report *r, size_t n, const struct opts *o)
{
	char b[32], s[32];
	double rate = r->seconds > 0 ? (double)r->bytes / r->seconds : 0.0;

	log_info("warmed %zu files, %s in %.2f s (%s/s), %.1f%% resident%s%s",
	    n, human(r->bytes, b, sizeof(b)), r->seconds,
	    human((uint64_t)rate, s, sizeof(s)),
	    r->bytes ? 100.0 * (double)r->resident / (double)r->bytes : 100.0,
	    o->lock ? ", locked" : "",
	    o->verify ? ", every file verified" : "");
}

/* A failed lock, explained: most often RLIMIT_MEMLOCK. */
static int
lock_failed(const struct warm_report *r)
{
	struct rlimit rl;
	char lim[32], need[32];

	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		return fail(EXIT_FAIL,
		    "cannot lock '%s' in memory: %s (RLIMIT_MEMLOCK is %s,"
		    " the model needs %s: raise it, or drop --lock)",
		    r->err_path, strerror(-r->err),
		    human((uint64_t)rl.rlim_cur, lim, sizeof(lim)),
		    human(r->bytes, need, sizeof(need)));
	return fail(EXIT_FAIL, "cannot lock '%s' in memory: %s", r->err_path,
	    strerror(-r->err));
}

/* Environment for the command; the lease's descriptor kept across exec. */
static int
export_env(const struct opts *o, const mc_client *c, const mc_model *m)
{
	char buf[PATH_MAX + 1024];
	int fd = mc_fd(c), flags = fcntl(fd, F_GETFD);

	snprintf(buf, sizeof(buf), "%s/%s", o->store, mc_model_dir(m));
	if (setenv("MODELCACHE_MODEL_DIR", buf, 1) < 0)
		return -1;
	snprintf(buf, sizeof(buf), "%s/" HUB_DIR, o->store);
	if (setenv("HF_HUB_CACHE", buf, 1) < 0 ||
	    setenv("HF_HUB_OFFLINE", "1", 1) < 0 ||
	    setenv("TRANSFORMERS_OFFLINE", "1", 1) < 0)
		return -1;
	snprintf(buf, sizeof(buf), "%d", fd);
	if (setenv("MODELCACHE_LEASE_FD", buf, 1) < 0 || flags == -1 ||
	    fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) == -1)
		return -1;
	return 0;
}

/* execvp, and the shell's status and one line when it fails. */
static int
run(char **command)
{
	int e;

	execvp(command[0], command);
	e = errno;
	return fail(e == ENOENT || e == ENOTDIR ? EXIT_NO_COMMAND
						: EXIT_CANNOT_EXEC,
	    "cannot run '%s': %s", command[0], strerror(e));
}

static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1,
	SIGUSR2 };
static volatile sig_atomic_t child_pid;

static void
forward(int sig)
{
	if (child_pid > 0)
		kill((pid_t)child_pid, sig);
}

/*
 * With --keep-lease, the keeper takes *c over (NULL then); when it cannot
 * start, the command still runs, its lease then ending with the daemon.
 */
static void
start_keeper(const struct opts *o, mc_client **c, const mc_model *m)
{
	int rc = keeper_start(*c, o->socket, o->model, mc_model_commit(m),
	    o->timeout_s * 1000L);

	if (rc < 0)
		fail(EXIT_FAIL,
		    "cannot keep the lease across the daemon's restarts: %s",
		    strerror(-rc));
	else
		*c = NULL;
}

/*
 * --lock, --keep-lease: this process keeps the mappings (an exec would
 * drop them) or the keeper, and the command is its child.  Signals that
 * stop a pod or a terminal's job are passed on, since a container's
 * runtime signals only its PID 1; orphans are reaped for the same reason.
 * Returns the command's status.
 */
static int
run_child(const struct opts *o, mc_client **c, const mc_model *m)
{
	char **command = o->command;
	struct sigaction sa;
	sigset_t all, old;
	int status;
	size_t i;
	pid_t pid, got;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = forward;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	for (i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaction(forwarded[i], &sa, NULL);
	if ((pid = fork()) < 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		return fail(EXIT_FAIL, "cannot fork: %s", strerror(errno));
	}
	if (pid == 0) {
		for (i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
			signal(forwarded[i], SIG_DFL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		_exit(run(command));
	}
	child_pid = pid;
	if (o->keep)
		start_keeper(o, c, m); /* its thread takes no signal */
	sigprocmask(SIG_SETMASK, &old, NULL);
	for (;;) {
		got = waitpid(-1, &status, 0);
		if (got == pid)
			break;
		if (got < 0 && errno != EINTR)
			return fail(EXIT_FAIL, "cannot wait for '%s': %s",
			    command[0], strerror(errno));
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * Every way out goes through one cleanup, so that a sanitizer build finds
 * no leak; a successful exec leaves through execvp instead.
 */
int
main(int argc, char **argv)
{
	struct warm_report r = { 0 };
	struct warm_file *files = NULL;
	char msg[512];
	const char *what;
	double deadline;
	mc_model *m = NULL;
	mc_client *c = NULL;
	struct opts o;
	size_t n = 0, i;
	long left_ms;
	enum log_format fmt;
	int rc, code;

	/* Its lines and, exported, its COMMAND's: MODELCACHE_LOG_FORMAT. */
	if (log_format_parse(getenv("MODELCACHE_LOG_FORMAT"), &fmt) < 0)
		fmt = LOG_TEXT;
	log_init("modelcache-preload", fmt, 1);
	if ((code = parse(argc, argv, &o)) != 0)
		goto out;
	o.tty = isatty(STDERR_FILENO);
	deadline = now_s() + (double)o.timeout_s;
	signal(SIGALRM, on_alarm);
	alarm((unsigned)(o.timeout_s + ALARM_GRACE_S));
	if ((rc = wait_daemon(&o, deadline, &c)) < 0) {
		if (rc == -EACCES || rc == -EPERM)
			code = fail(EXIT_UNAUTHORIZED,
			    "the daemon at '%s' does not let this user in: %s",
			    o.socket, strerror(-rc));
		else
			code = fail(EXIT_UNREACHABLE,
			    "cannot reach the daemon at '%s': %s", o.socket,
			    rc == -ETIMEDOUT ? "no answer before --timeout"
					     : strerror(-rc));
		goto out;
	}
	left_ms = (long)((deadline - now_s()) * 1000.0);
	rc =
	    mc_acquire(c, o.model, left_ms > 0 ? left_ms : 1, progress, &o, &m);
	alarm(0);
	bar_end(&o);
	if (rc < 0) {
		code = exit_for(rc, &what);
		one_line(msg, sizeof(msg), mc_message(c));
		if (code == EXIT_TIMEOUT)
			fail(code,
			    "cannot acquire '%s': timed out after %ld s"
			    " (--timeout)%s%s",
			    o.model, o.timeout_s, *msg != '\0' ? ": " : "",
			    msg);
		else
			fail(code, "cannot acquire '%s': %s%s%s", o.model, what,
			    *msg != '\0' ? ": " : "", msg);
		goto out;
	}
	log_info("%s ready: commit %.12s, %zu files%s", o.model,
	    mc_model_commit(m), mc_model_nfiles(m),
	    mc_model_stale(m) ? " (stale: the origin is unreachable)" : "");
	if ((files = files_of(&o, m, &n)) == NULL) {
		code = EXIT_FAIL;
		goto out;
	}
	if (o.warm || o.verify || o.lock) {
		warm_run(files, n, o.concurrency, o.verify, o.lock, &r);
		report(&r, n, &o);
		if (r.err < 0 && r.err_lock) {
			code = lock_failed(&r);
			goto out;
		}
		if (r.err < 0) {
			code = fail(EXIT_FAIL, "cannot read '%s': %s",
			    r.err_path, strerror(-r.err));
			goto out;
		}
		if (r.bad > 0) {
			for (i = 0; i < n; i++)
				if (files[i].bad)
					fail(EXIT_INTEGRITY,
					    "'%s' does not match its digest"
					    " (sha256 %.12s)",
					    files[i].path, files[i].sha256);
			code = EXIT_INTEGRITY;
			goto out;
		}
	}
	if (o.warm_only) {
		mc_release(c, m);
		goto out;
	}
	if (export_env(&o, c, m) < 0) {
		code = fail(EXIT_FAIL, "cannot set the environment: %s",
		    strerror(errno));
		goto out;
	}
	fflush(NULL);
	code = o.lock || o.keep ? run_child(&o, &c, m) : run(o.command);
out:
	files_free(files, n);
	mc_model_free(m);
	mc_close(c);
	free(o.store);
	return code;
}
