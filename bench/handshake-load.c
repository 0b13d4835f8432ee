/*
 * handshake-load: the load generator of bench/handshake.
 *
 *	handshake-load client SOCKET MODEL CLIENTS SECONDS [READY_FILE]
 *	handshake-load floor SOCKET CLIENTS SECONDS READY_FILE
 *
 * client: CLIENTS threads, each a libmodelcache client of its own of
 * modelcached on SOCKET (mc_connect: hello once), then each repeats, for
 * SECONDS, one operation: mc_acquire MODEL, mc_release its lease.  An
 * operation's latency is from the call of mc_acquire to the return of
 * mc_release: the two round trips, and the library's own work.  The ready
 * answer of the last operation is written to READY_FILE, as the daemon
 * sent it (rebuilt with proto's encoder, the daemon's).
 *
 * floor: the same client loop against a bare server started in this
 * process on SOCKET, which answers a connection's first line (the hello)
 * with a hello answer, then each request line with, in turn, the ready
 * line of READY_FILE and the ok of a release, and does nothing else: the
 * clients parse the same answers as from modelcached.  The server is one
 * thread on epoll, the shape of modelcached's loop, so that the floor
 * queues the clients the way the daemon must; only the work differs.
 *
 * Both print one line of key=value figures: ops, ops/s, and the latency
 * p50, p99, max and mean in microseconds, with the sizes of the requests
 * and answers, newline included (the lines libmodelcache sends are
 * proto's encoders').  Latencies go into a log-linear histogram of 64
 * buckets per power of two (a bucket is 1/64 of its value wide, reported
 * at its middle), which bounds the memory whatever the rate and the
 * duration.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "modelcache.h"
#include "proto.h"

#define CLIENTS_MAX 4096
#define SECONDS_MAX 3600.0
#define WARMUP_OPS 20 /* per client, before the clock starts */
#define READ_CHUNK 65536
#define SUB_BITS 6 /* 64 buckets per power of two */
#define SUB (1u << SUB_BITS)
#define NBUCKETS (SUB * (64 - SUB_BITS + 1)) /* all of uint64_t */
#define SERVER_EVENTS 64

enum mode { MODE_CLIENT, MODE_FLOOR };

struct histo {
	uint64_t n, max, sum;
	uint64_t b[NBUCKETS];
};

/* One client: a thread and its connection. */
struct client {
	struct run *run;
	pthread_t thread;
	mc_client *mc;
	mc_model *last; /* of the last operation */
	struct histo h;
	char err[512];
};

/* What every client shares. */
struct run {
	enum mode mode;
	const char *socket;
	const char *model;
	double seconds;
	char *ready_line; /* floor: the ready answer, its newline included */
	pthread_barrier_t ready;
};

/* The floor's bare server. */
struct server {
	struct run *run;
	pthread_t thread;
	int lfd, efd, stop[2];
	int bound;	 /* the socket file is ours to remove */
	char *answer[3]; /* hello, ready, release: lines with their newline */
	size_t alen[3];
	char err[256];
};

/*
 * A connection of the bare server.  It reads into a scratch buffer and
 * counts newlines: a request's bytes are read, never looked at.
 */
struct sconn {
	int fd;
	char in[READ_CHUNK];
	uint64_t lines; /* answered or being answered */
	uint64_t owed;	/* whole lines read, not yet answered in full */
	size_t off;	/* bytes of the current answer written */
	int want_out;	/* registered for EPOLLOUT */
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned
bucket_of(uint64_t v)
{
	unsigned msb, shift;

	if (v < SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - SUB_BITS;
	return SUB + shift * SUB + (unsigned)((v >> shift) - SUB);
}

/* The middle of bucket i, in nanoseconds. */
static double
bucket_value(unsigned i)
{
	unsigned shift, sub;

	if (i < SUB)
		return i;
	shift = (i - SUB) / SUB;
	sub = (i - SUB) % SUB;
	return (double)((uint64_t)(SUB + sub) << shift) +
	    (double)((uint64_t)1 << shift) / 2;
}

static void
histo_add(struct histo *h, uint64_t v)
{
	h->b[bucket_of(v)]++;
	h->n++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

static void
histo_merge(struct histo *to, const struct histo *from)
{
	unsigned i;

	for (i = 0; i < NBUCKETS; i++)
		to->b[i] += from->b[i];
	to->n += from->n;
	to->sum += from->sum;
	if (from->max > to->max)
		to->max = from->max;
}

/* The q-quantile (0 < q <= 1) in nanoseconds; 0 when empty. */
static double
histo_quantile(const struct histo *h, double q)
{
	uint64_t rank, seen = 0;
	unsigned i;
	double v;

	if (h->n == 0)
		return 0;
	rank = (uint64_t)(q * (double)h->n + 0.5);
	if (rank < 1)
		rank = 1;
	for (i = 0; i < NBUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank)
			break;
	}
	v = bucket_value(i < NBUCKETS ? i : NBUCKETS - 1);
	return v > (double)h->max ? (double)h->max : v;
}

/* text and a newline, text freed; NULL when either is NULL. */
static char *
as_line(char *text)
{
	char *line = NULL;

	if (text != NULL && asprintf(&line, "%s\n", text) < 0)
		line = NULL;
	free(text);
	return line;
}

/*
 * The ready answer m was, as modelcached writes it (models.c, through
 * proto's encoder), with its newline; NULL when out of memory.
 */
static char *
ready_line(const char *model, const mc_model *m)
{
	json_t *files = json_array();
	const struct mc_file *f;
	size_t i;

	for (i = 0; files != NULL && i < mc_model_nfiles(m); i++) {
		f = mc_model_file(m, i);
		if (json_array_append_new(files,
			json_pack("{s:s, s:I, s:s}", "path", f->path, "size",
			    (json_int_t)f->size, "sha256", f->sha256)) < 0) {
			json_decref(files);
			files = NULL;
		}
	}
	if (files == NULL)
		return NULL;
	return as_line(proto_ok_line(
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:b}", "event",
		"ready", "model", model, "repo", mc_model_repo(m), "commit",
		mc_model_commit(m), "lease", mc_model_lease(m), "dir",
		mc_model_dir(m), "nfiles", (json_int_t)mc_model_nfiles(m),
		"files", files, "stale", mc_model_stale(m))));
}

/* The bytes of *line and its newline (0 when rc failed); *line freed. */
static size_t
line_size(int rc, char **line)
{
	size_t n = rc == 0 ? strlen(*line) + 1 : 0;

	free(*line);
	*line = NULL;
	return n;
}

/* One acquire and release of run->model; 0 or a negative errno (c->err). */
static int
op(struct client *c)
{
	mc_model *m;
	int rc;

	if ((rc = mc_acquire(c->mc, c->run->model, 0, NULL, NULL, &m)) < 0) {
		snprintf(c->err, sizeof(c->err), "mc_acquire: %s%s%.400s",
		    strerror(-rc), *mc_message(c->mc) != '\0' ? ": " : "",
		    mc_message(c->mc));
		return rc;
	}
	if ((rc = mc_release(c->mc, m)) < 0)
		snprintf(c->err, sizeof(c->err), "mc_release: %s%s%.400s",
		    strerror(-rc), *mc_message(c->mc) != '\0' ? ": " : "",
		    mc_message(c->mc));
	mc_model_free(c->last);
	c->last = m;
	return rc;
}

static void *
client_main(void *arg)
{
	struct client *c = arg;
	struct run *run = c->run;
	uint64_t t0, t1, deadline;
	int i, rc, waited = 0;

	if ((rc = mc_connect(run->socket, "handshake-load", &c->mc)) < 0) {
		snprintf(c->err, sizeof(c->err), "mc_connect: %s",
		    strerror(-rc));
		goto out;
	}
	for (i = 0; i < WARMUP_OPS && rc == 0; i++)
		rc = op(c);
	if (rc < 0)
		goto out;
	pthread_barrier_wait(&run->ready);
	waited = 1;
	deadline = now_ns() + (uint64_t)(run->seconds * 1e9);
	do {
		t0 = now_ns();
		if ((rc = op(c)) < 0)
			break;
		t1 = now_ns();
		histo_add(&c->h, t1 - t0);
	} while (t1 < deadline);
out:
	if (rc < 0 && c->err[0] == '\0')
		snprintf(c->err, sizeof(c->err), "%s", strerror(-rc));
	/* A client that failed before the start still lets the others go. */
	if (!waited)
		pthread_barrier_wait(&run->ready);
	return NULL;
}

/* --- the floor's server ---------------------------------------------------- */

static void
sconn_close(struct server *s, struct sconn *sc)
{
	epoll_ctl(s->efd, EPOLL_CTL_DEL, sc->fd, NULL);
	close(sc->fd);
	free(sc);
}

/* Writes what is owed; 0, or -1 when the connection is to be closed. */
static int
sconn_flush(struct server *s, struct sconn *sc)
{
	struct epoll_event ev;
	const char *a;
	size_t alen;
	ssize_t n;
	int want;

	while (sc->owed > 0) {
		/* The hello's answer, then ready and release's in turn. */
		a = s->answer[sc->lines == 0 ? 0 : 1 + (sc->lines - 1) % 2];
		alen = s->alen[sc->lines == 0 ? 0 : 1 + (sc->lines - 1) % 2];
		n = write(sc->fd, a + sc->off, alen - sc->off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			break;
		if (n <= 0)
			return -1;
		sc->off += (size_t)n;
		if (sc->off == alen) {
			sc->off = 0;
			sc->owed--;
			sc->lines++;
		}
	}
	want = sc->owed > 0;
	if (want != sc->want_out) {
		ev.events = EPOLLIN | (want ? EPOLLOUT : 0);
		ev.data.ptr = sc;
		if (epoll_ctl(s->efd, EPOLL_CTL_MOD, sc->fd, &ev) == -1)
			return -1;
		sc->want_out = want;
	}
	return 0;
}

/* Reads what is there and answers its whole lines. */
static int
sconn_read(struct server *s, struct sconn *sc)
{
	const char *p, *end, *nl;
	ssize_t r;

	r = read(sc->fd, sc->in, sizeof(sc->in));
	if (r == -1 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (r <= 0)
		return -1;
	end = sc->in + r;
	for (p = sc->in; (nl = memchr(p, '\n', (size_t)(end - p))) != NULL;
	     p = nl + 1)
		sc->owed++;
	return sconn_flush(s, sc);
}

static void
server_accept(struct server *s)
{
	struct epoll_event ev;
	struct sconn *sc;
	int fd;

	while ((fd = accept4(s->lfd, NULL, NULL,
		    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		if ((sc = calloc(1, sizeof(*sc))) == NULL) {
			close(fd);
			continue;
		}
		sc->fd = fd;
		ev.events = EPOLLIN;
		ev.data.ptr = sc;
		if (epoll_ctl(s->efd, EPOLL_CTL_ADD, fd, &ev) == -1) {
			close(fd);
			free(sc);
		}
	}
}

static void *
server_main(void *arg)
{
	struct server *s = arg;
	struct epoll_event ev[SERVER_EVENTS];
	struct sconn *sc;
	int i, n;

	for (;;) {
		n = epoll_wait(s->efd, ev, SERVER_EVENTS, -1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(s->err, sizeof(s->err), "epoll_wait: %s",
			    strerror(errno));
			return NULL;
		}
		for (i = 0; i < n; i++) {
			if (ev[i].data.ptr == &s->lfd) {
				server_accept(s);
				continue;
			}
			if (ev[i].data.ptr == &s->stop[0])
				return NULL;
			sc = ev[i].data.ptr;
			if (((ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
				sconn_read(s, sc) < 0) ||
			    ((ev[i].events & EPOLLOUT) &&
				sconn_flush(s, sc) < 0))
				sconn_close(s, sc);
		}
	}
}

/*
 * Listens on run->socket and starts the server's thread; 0, or -1 with
 * why in s->err.  Connections still open when it stops are left to the
 * process's exit.
 */
static int
server_start(struct server *s, struct run *run)
{
	struct sockaddr_un sa;
	struct epoll_event ev;
	int i;

	memset(s, 0, sizeof(*s));
	s->run = run;
	s->lfd = s->efd = s->stop[0] = s->stop[1] = -1;
	s->answer[0] = as_line(proto_ok_line(
	    json_pack("{s:i, s:s, s:b}", "protocol", PROTO_VERSION, "server",
		"handshake-load floor", "chunked", 1)));
	s->answer[1] = strdup(run->ready_line);
	s->answer[2] = as_line(proto_ok_line(json_object()));
	for (i = 0; i < 3; i++) {
		if (s->answer[i] == NULL) {
			snprintf(s->err, sizeof(s->err), "out of memory");
			return -1;
		}
		s->alen[i] = strlen(s->answer[i]);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(run->socket) >= sizeof(sa.sun_path)) {
		snprintf(s->err, sizeof(s->err), "socket path too long");
		return -1;
	}
	memcpy(sa.sun_path, run->socket, strlen(run->socket) + 1);
	if ((s->lfd = socket(AF_UNIX,
		 SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		snprintf(s->err, sizeof(s->err), "cannot bind '%s': %s",
		    run->socket, strerror(errno));
		return -1;
	}
	s->bound = 1;
	if (listen(s->lfd, CLIENTS_MAX) == -1 ||
	    (s->efd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    pipe(s->stop) == -1)
		goto fail;
	ev.events = EPOLLIN;
	ev.data.ptr = &s->lfd;
	if (epoll_ctl(s->efd, EPOLL_CTL_ADD, s->lfd, &ev) == -1)
		goto fail;
	ev.data.ptr = &s->stop[0];
	if (epoll_ctl(s->efd, EPOLL_CTL_ADD, s->stop[0], &ev) == -1)
		goto fail;
	if ((errno = pthread_create(&s->thread, NULL, server_main, s)) != 0)
		goto fail;
	return 0;
fail:
	snprintf(s->err, sizeof(s->err), "cannot start the server: %s",
	    strerror(errno));
	return -1;
}

static void
server_stop(struct server *s, int started)
{
	int i;

	if (started) {
		while (write(s->stop[1], "x", 1) == -1 && errno == EINTR)
			;
		pthread_join(s->thread, NULL);
	}
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->bound)
		unlink(s->run->socket);
	for (i = 0; i < 2; i++)
		if (s->stop[i] >= 0)
			close(s->stop[i]);
	for (i = 0; i < 3; i++)
		free(s->answer[i]);
	if (s->efd >= 0)
		close(s->efd);
}

/* --- the command line ------------------------------------------------------ */

static void
usage(FILE *to)
{
	fprintf(to,
	    "usage: handshake-load client SOCKET MODEL CLIENTS SECONDS"
	    " [READY_FILE]\n"
	    "       handshake-load floor SOCKET CLIENTS SECONDS READY_FILE\n"
	    "\n"
	    "client: CLIENTS libmodelcache clients of modelcached, each"
	    " mc_acquire MODEL +\n"
	    "        mc_release in a loop for SECONDS; the last ready answer"
	    " goes to\n"
	    "        READY_FILE.\n"
	    "floor:  the same loop against a bare one-thread epoll server on"
	    " SOCKET\n"
	    "        that answers with READY_FILE's line and a release's ok,"
	    " in turn.\n"
	    "\n"
	    "Prints one line: ops, ops_s, p50_us, p99_us, max_us, mean_us,"
	    " req_bytes,\n"
	    "answer_bytes.  A benchmark's tool: see bench/handshake.\n");
}

static int
parse_count(const char *s, long min, long max, long *v)
{
	char *end;

	errno = 0;
	*v = strtol(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && *v >= min && *v <= max;
}

/*
 * The floor's ready line from path (one line, with its newline) into
 * run, and its model as run->model; 0, or -1 having said why.
 */
static int
read_ready(struct run *run, const char *path, json_t **answer)
{
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	if ((f = fopen(path, "r")) == NULL) {
		fprintf(stderr, "handshake-load: cannot open '%s': %s\n", path,
		    strerror(errno));
		return -1;
	}
	n = getline(&run->ready_line, &cap, f);
	fclose(f);
	if (n <= 1 || run->ready_line[n - 1] != '\n' ||
	    proto_answer_decode(run->ready_line, (size_t)n - 1, answer) < 0 ||
	    (run->model = json_string_value(
		 json_object_get(*answer, "model"))) == NULL) {
		fprintf(stderr, "handshake-load: '%s' holds no ready line\n",
		    path);
		return -1;
	}
	return 0;
}

/* c's last ready answer into path; 0, or -1 having said why. */
static int
write_ready(const struct client *c, const char *path)
{
	char *line = ready_line(c->run->model, c->last);
	FILE *f;
	int rc = 0;

	if (line == NULL || (f = fopen(path, "w")) == NULL) {
		fprintf(stderr, "handshake-load: cannot write '%s': %s\n", path,
		    line == NULL ? "out of memory" : strerror(errno));
		free(line);
		return -1;
	}
	if (fputs(line, f) == EOF)
		rc = -1;
	if (fclose(f) == EOF || rc < 0) {
		fprintf(stderr, "handshake-load: cannot write '%s': %s\n", path,
		    strerror(errno));
		rc = -1;
	}
	free(line);
	return rc;
}

int
main(int argc, char **argv)
{
	struct run run;
	struct server srv;
	struct client *cl = NULL;
	struct histo *all = NULL;
	json_t *floor_answer = NULL;
	const char *secs, *ready_file = NULL;
	size_t req[2], ans[2];
	uint64_t t0, t1;
	long nclients = 0;
	int i, started = 0, barrier = 0, rc = 1;
	double elapsed;
	char *end, *line = NULL;

	memset(&run, 0, sizeof(run));
	if (argc >= 2 &&
	    (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if ((argc == 6 || argc == 7) && strcmp(argv[1], "client") == 0) {
		run.mode = MODE_CLIENT;
		run.model = argv[3];
		if (!parse_count(argv[4], 1, CLIENTS_MAX, &nclients)) {
			fprintf(stderr, "handshake-load: bad CLIENTS '%s'\n",
			    argv[4]);
			return 2;
		}
		secs = argv[5];
		ready_file = argc == 7 ? argv[6] : NULL;
	} else if (argc == 6 && strcmp(argv[1], "floor") == 0) {
		run.mode = MODE_FLOOR;
		if (!parse_count(argv[3], 1, CLIENTS_MAX, &nclients)) {
			usage(stderr);
			return 2;
		}
		secs = argv[4];
		if (read_ready(&run, argv[5], &floor_answer) < 0)
			return 2;
	} else {
		usage(stderr);
		return 2;
	}
	run.socket = argv[2];
	errno = 0;
	run.seconds = strtod(secs, &end);
	if (errno != 0 || end == secs || *end != '\0' || !(run.seconds > 0) ||
	    run.seconds > SECONDS_MAX) {
		fprintf(stderr, "handshake-load: bad SECONDS '%s'\n", secs);
		goto out;
	}

	if (run.mode == MODE_FLOOR) {
		if (server_start(&srv, &run) < 0) {
			fprintf(stderr, "handshake-load: %s\n", srv.err);
			server_stop(&srv, 0);
			goto out;
		}
		started = 1;
	}
	if ((cl = calloc((size_t)nclients, sizeof(*cl))) == NULL ||
	    (all = calloc(1, sizeof(*all))) == NULL) {
		fprintf(stderr, "handshake-load: out of memory\n");
		goto out;
	}
	if (pthread_barrier_init(&run.ready, NULL, (unsigned)nclients + 1) != 0)
		goto out;
	barrier = 1;
	for (i = 0; i < nclients; i++) {
		cl[i].run = &run;
		if ((errno = pthread_create(&cl[i].thread, NULL, client_main,
			 &cl[i])) != 0) {
			/* The barrier counts on every client: give up. */
			fprintf(stderr,
			    "handshake-load: cannot start client"
			    " %d: %s\n",
			    i, strerror(errno));
			exit(1);
		}
	}
	/* Every client connected and warmed up: the clock starts. */
	pthread_barrier_wait(&run.ready);
	t0 = now_ns();
	for (i = 0; i < nclients; i++)
		pthread_join(cl[i].thread, NULL);
	t1 = now_ns();
	rc = 0;
	for (i = 0; i < nclients; i++) {
		if (cl[i].err[0] != '\0') {
			fprintf(stderr, "handshake-load: client %d: %s\n", i,
			    cl[i].err);
			rc = 1;
		}
		histo_merge(all, &cl[i].h);
	}
	if (rc != 0 ||
	    (ready_file != NULL && write_ready(&cl[0], ready_file) < 0))
		goto out;
	/* What libmodelcache sent and read, in bytes with the newline. */
	req[0] = line_size(proto_acquire_line(run.model, 1, 0, &line), &line);
	req[1] =
	    line_size(proto_release_line(mc_model_lease(cl[0].last), &line),
		&line);
	line = ready_line(run.model, cl[0].last);
	ans[0] = line != NULL ? strlen(line) : 0;
	free(line);
	line = proto_ok_line(json_object());
	ans[1] = line != NULL ? strlen(line) + 1 : 0;
	free(line);
	elapsed = (double)(t1 - t0) / 1e9;
	printf("mode=%s clients=%ld seconds=%.3f ops=%llu ops_s=%.0f"
	       " p50_us=%.1f p99_us=%.1f max_us=%.1f mean_us=%.1f"
	       " req_bytes=%zu,%zu answer_bytes=%zu,%zu\n",
	    run.mode == MODE_CLIENT ? "client" : "floor", nclients, elapsed,
	    (unsigned long long)all->n, (double)all->n / elapsed,
	    histo_quantile(all, 0.50) / 1e3, histo_quantile(all, 0.99) / 1e3,
	    (double)all->max / 1e3,
	    all->n > 0 ? (double)all->sum / (double)all->n / 1e3 : 0.0, req[0],
	    req[1], ans[0], ans[1]);
out:
	if (cl != NULL)
		for (i = 0; i < nclients; i++) {
			mc_close(cl[i].mc);
			mc_model_free(cl[i].last);
		}
	if (started)
		server_stop(&srv, 1);
	if (barrier)
		pthread_barrier_destroy(&run.ready);
	json_decref(floor_answer);
	free(run.ready_line);
	free(cl);
	free(all);
	return rc;
}
