/*
 * handshake-load: the load generator of bench/handshake.
 *
 *	handshake-load client SOCKET MODEL CLIENTS SECONDS
 *	handshake-load floor SOCKET CLIENTS SECONDS REQ_BYTES ANSWER_BYTES
 *
 * client: CLIENTS threads, each with a connection of its own to
 * modelcached on SOCKET, say hello once, then each repeats, for SECONDS,
 * one operation: acquire MODEL (wait true), read the ready line, release
 * its lease, read the ok.  An operation's latency is from the first byte
 * of the acquire sent to the last byte of the release's answer read.
 *
 * floor: the same client loop against a bare server started in this
 * process on SOCKET, which answers each request line with a line of fixed
 * size and does nothing else.  REQ_BYTES and ANSWER_BYTES are "A,R": the
 * bytes, newline included, of the acquire and of the release request, and
 * of their answers, as the client mode reports them.  The server is one
 * thread on epoll, the shape of modelcached's loop, so that the floor
 * queues the clients the way the daemon must; only the work differs.
 *
 * Both print one line of key=value figures: ops, ops/s, and the latency
 * p50, p99, max and mean in microseconds, with the request and answer
 * sizes seen.  Latencies go into a log-linear histogram of 64 buckets per
 * power of two (a bucket is 1/64 of its value wide, reported at its
 * middle), which bounds the memory whatever the rate and the duration.
 *
 * The hot loop uses no JSON library: the requests are built with
 * snprintf, the lease is found in the ready line with strstr, and an
 * answer is taken as a success when it begins {"ok":true.
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

#include "proto.h"

#define CLIENTS_MAX 4096
#define SECONDS_MAX 3600.0
#define WARMUP_OPS 20 /* per client, before the clock starts */
#define READ_CHUNK 65536
#define SUB_BITS 6 /* 64 buckets per power of two */
#define SUB (1u << SUB_BITS)
#define NBUCKETS (SUB * (64 - SUB_BITS + 1)) /* all of uint64_t */
#define ID_MAX PROTO_LEASE_MAX
#define REQ_MAX (PROTO_MODEL_MAX + 128)
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
	int fd;
	char *in; /* bytes read; in[len] is kept a NUL */
	size_t len, cap;
	size_t sent[2], got[2]; /* bytes of the last requests and answers */
	struct histo h;
	char err[512];
};

/* What every client shares. */
struct run {
	enum mode mode;
	const char *socket;
	const char *model;
	double seconds;
	size_t req[2], ans[2]; /* floor: line sizes */
	char *pad[2];	       /* floor: the two request lines */
	pthread_barrier_t ready;
};

/* The floor's bare server. */
struct server {
	struct run *run;
	pthread_t thread;
	int lfd, efd, stop[2];
	int bound; /* the socket file is ours to remove */
	char *answer[2];
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
 * Reads one line into c->in (NUL-terminated in place of its newline, which
 * *linelen counts); bytes after it stay for the next call, which first
 * drops the line before.  -EPROTO when the line passes PROTO_LINE_MAX,
 * -ECONNRESET at the end of the stream.
 */
static int
read_line(struct client *c, size_t *consumed, size_t *linelen)
{
	size_t scanned = 0;
	char *nl, *p;
	ssize_t n;

	if (*consumed > 0) {
		memmove(c->in, c->in + *consumed, c->len - *consumed);
		c->len -= *consumed;
		*consumed = 0;
	}
	for (;;) {
		nl = c->len > scanned
		    ? memchr(c->in + scanned, '\n', c->len - scanned)
		    : NULL;
		if (nl != NULL) {
			*nl = '\0';
			*linelen = (size_t)(nl - c->in) + 1;
			*consumed = *linelen;
			return 0;
		}
		scanned = c->len;
		if (c->len >= PROTO_LINE_MAX)
			return -EPROTO;
		if (c->cap - c->len < READ_CHUNK + 1) {
			size_t want = c->cap * 2;

			if (want < c->len + READ_CHUNK + 1)
				want = c->len + READ_CHUNK + 1;
			if (want > PROTO_LINE_MAX + READ_CHUNK + 1)
				want = PROTO_LINE_MAX + READ_CHUNK + 1;
			if ((p = realloc(c->in, want)) == NULL)
				return -ENOMEM;
			c->in = p;
			c->cap = want;
		}
		n = read(c->fd, c->in + c->len, c->cap - c->len - 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		c->len += (size_t)n;
		c->in[c->len] = '\0';
	}
}

static int
connect_to(const char *path)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

/* Whether the answer line is a success: {"ok":true first. */
static int
is_ok(const char *line)
{
	return strncmp(line, "{\"ok\":true", 10) == 0;
}

/* The lease of a ready line into id; 0, or -EPROTO without one. */
static int
lease_of(const char *line, char *id, size_t idlen)
{
	const char *p = strstr(line, "\"lease\":\""), *end;

	if (p == NULL)
		return -EPROTO;
	p += strlen("\"lease\":\"");
	for (end = p; *end != '\0' && *end != '"' && *end != '\\'; end++)
		;
	if (*end != '"' || end == p || (size_t)(end - p) >= idlen)
		return -EPROTO;
	memcpy(id, p, (size_t)(end - p));
	id[end - p] = '\0';
	return 0;
}

/* One request line sent, its answer line read: *line points into c->in. */
static int
round_trip(struct client *c, int i, const char *req, size_t reqlen,
    size_t *consumed, const char **line)
{
	size_t len = 0;
	int rc;

	c->sent[i] = reqlen;
	if ((rc = write_all(c->fd, req, reqlen)) < 0)
		return rc;
	if ((rc = read_line(c, consumed, &len)) < 0)
		return rc;
	c->got[i] = len;
	*line = c->in;
	return 0;
}

/* One acquire and release of run->model; 0 or a negative errno (c->err). */
static int
op_daemon(struct client *c, size_t *consumed)
{
	char req[REQ_MAX], id[ID_MAX];
	const char *line;
	int n, rc;

	n = snprintf(req, sizeof(req),
	    "{\"op\":\"acquire\",\"model\":\"%s\",\"wait\":true}\n",
	    c->run->model);
	if ((rc = round_trip(c, 0, req, (size_t)n, consumed, &line)) < 0)
		return rc;
	if (!is_ok(line) || lease_of(line, id, sizeof(id)) < 0) {
		snprintf(c->err, sizeof(c->err), "acquire answered: %.400s",
		    line);
		return -EPROTO;
	}
	n = snprintf(req, sizeof(req),
	    "{\"op\":\"release\",\"lease\":\"%s\"}\n", id);
	if ((rc = round_trip(c, 1, req, (size_t)n, consumed, &line)) < 0)
		return rc;
	if (!is_ok(line)) {
		snprintf(c->err, sizeof(c->err), "release answered: %.400s",
		    line);
		return -EPROTO;
	}
	return 0;
}

/* The floor's operation: two round trips of the daemon's sizes. */
static int
op_floor(struct client *c, size_t *consumed)
{
	const char *line;
	int i, rc;

	for (i = 0; i < 2; i++) {
		if ((rc = round_trip(c, i, c->run->pad[i], c->run->req[i],
			 consumed, &line)) < 0)
			return rc;
		if (c->got[i] != c->run->ans[i]) {
			snprintf(c->err, sizeof(c->err),
			    "answer of %zu bytes, want %zu", c->got[i],
			    c->run->ans[i]);
			return -EPROTO;
		}
	}
	return 0;
}

static int
hello(struct client *c, size_t *consumed)
{
	static const char req[] = "{\"op\":\"hello\",\"protocol\":1,"
				  "\"client\":\"handshake-load\"}\n";
	const char *line;
	int rc;

	if ((rc = round_trip(c, 0, req, sizeof(req) - 1, consumed, &line)) < 0)
		return rc;
	if (!is_ok(line)) {
		snprintf(c->err, sizeof(c->err), "hello answered: %.400s",
		    line);
		return -EPROTO;
	}
	return 0;
}

static void *
client_main(void *arg)
{
	struct client *c = arg;
	struct run *run = c->run;
	int (*op)(struct client *, size_t *) =
	    run->mode == MODE_CLIENT ? op_daemon : op_floor;
	size_t consumed = 0;
	uint64_t t0, t1, deadline;
	int i, rc, waited = 0;

	if ((rc = connect_to(run->socket)) < 0) {
		c->fd = -1;
		goto out;
	}
	c->fd = rc;
	rc = 0;
	if (run->mode == MODE_CLIENT && (rc = hello(c, &consumed)) < 0)
		goto out;
	for (i = 0; i < WARMUP_OPS && rc == 0; i++)
		rc = op(c, &consumed);
	if (rc < 0)
		goto out;
	pthread_barrier_wait(&run->ready);
	waited = 1;
	deadline = now_ns() + (uint64_t)(run->seconds * 1e9);
	do {
		t0 = now_ns();
		if ((rc = op(c, &consumed)) < 0)
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
		a = s->answer[sc->lines % 2];
		alen = s->run->ans[sc->lines % 2];
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
	for (i = 0; i < 2; i++) {
		if ((s->answer[i] = malloc(run->ans[i])) == NULL) {
			snprintf(s->err, sizeof(s->err), "out of memory");
			return -1;
		}
		memset(s->answer[i], 'x', run->ans[i] - 1);
		s->answer[i][run->ans[i] - 1] = '\n';
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
	for (i = 0; i < 2; i++) {
		if (s->stop[i] >= 0)
			close(s->stop[i]);
		free(s->answer[i]);
	}
	if (s->efd >= 0)
		close(s->efd);
}

/* --- the command line ------------------------------------------------------ */

static void
usage(FILE *to)
{
	fprintf(to,
	    "usage: handshake-load client SOCKET MODEL CLIENTS SECONDS\n"
	    "       handshake-load floor SOCKET CLIENTS SECONDS REQ_BYTES"
	    " ANSWER_BYTES\n"
	    "\n"
	    "client: CLIENTS connections to modelcached, each acquire MODEL +"
	    " release\n"
	    "        in a loop for SECONDS.\n"
	    "floor:  the same loop against a bare one-thread epoll server on"
	    " SOCKET\n"
	    "        that answers each line with a line of fixed size;"
	    " REQ_BYTES and\n"
	    "        ANSWER_BYTES are \"ACQUIRE,RELEASE\" (bytes of a line,"
	    " newline\n"
	    "        included), as the client mode reports them.\n"
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

/* "N" or "N,M": two line sizes, each at least 1 (the newline). */
static int
parse_sizes(const char *s, size_t v[2])
{
	char buf[64], *comma;
	long n;

	if (strlen(s) >= sizeof(buf))
		return 0;
	memcpy(buf, s, strlen(s) + 1);
	if ((comma = strchr(buf, ',')) != NULL)
		*comma = '\0';
	if (!parse_count(buf, 1, PROTO_LINE_MAX, &n))
		return 0;
	v[0] = v[1] = (size_t)n;
	if (comma != NULL) {
		if (!parse_count(comma + 1, 1, PROTO_LINE_MAX, &n))
			return 0;
		v[1] = (size_t)n;
	}
	return 1;
}

/* A model reference that goes into a JSON string as it is. */
static int
plain_model(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n >= PROTO_MODEL_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == '"' || s[i] == '\\')
			return 0;
	return 1;
}

int
main(int argc, char **argv)
{
	struct run run;
	struct server srv;
	struct client *cl = NULL;
	struct histo *all = NULL;
	const char *secs;
	uint64_t t0, t1;
	long nclients = 0;
	int i, started = 0, barrier = 0, rc = 1;
	double elapsed;
	char *end;

	memset(&run, 0, sizeof(run));
	if (argc >= 2 &&
	    (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc == 6 && strcmp(argv[1], "client") == 0) {
		run.mode = MODE_CLIENT;
		run.model = argv[3];
		if (!parse_count(argv[4], 1, CLIENTS_MAX, &nclients)) {
			fprintf(stderr, "handshake-load: bad CLIENTS '%s'\n",
			    argv[4]);
			return 2;
		}
		if (!plain_model(run.model)) {
			fprintf(stderr, "handshake-load: bad MODEL '%s'\n",
			    run.model);
			return 2;
		}
		secs = argv[5];
	} else if (argc == 7 && strcmp(argv[1], "floor") == 0) {
		run.mode = MODE_FLOOR;
		if (!parse_count(argv[3], 1, CLIENTS_MAX, &nclients) ||
		    !parse_sizes(argv[5], run.req) ||
		    !parse_sizes(argv[6], run.ans)) {
			usage(stderr);
			return 2;
		}
		secs = argv[4];
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
		return 2;
	}

	if (run.mode == MODE_FLOOR) {
		for (i = 0; i < 2; i++) {
			if ((run.pad[i] = malloc(run.req[i])) == NULL)
				goto out;
			memset(run.pad[i], 'r', run.req[i] - 1);
			run.pad[i][run.req[i] - 1] = '\n';
		}
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
		cl[i].fd = -1;
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
	if (rc != 0)
		goto out;
	elapsed = (double)(t1 - t0) / 1e9;
	printf("mode=%s clients=%ld seconds=%.3f ops=%llu ops_s=%.0f"
	       " p50_us=%.1f p99_us=%.1f max_us=%.1f mean_us=%.1f"
	       " req_bytes=%zu,%zu answer_bytes=%zu,%zu\n",
	    run.mode == MODE_CLIENT ? "client" : "floor", nclients, elapsed,
	    (unsigned long long)all->n, (double)all->n / elapsed,
	    histo_quantile(all, 0.50) / 1e3, histo_quantile(all, 0.99) / 1e3,
	    (double)all->max / 1e3,
	    all->n > 0 ? (double)all->sum / (double)all->n / 1e3 : 0.0,
	    cl[0].sent[0], cl[0].sent[1], cl[0].got[0], cl[0].got[1]);
out:
	if (cl != NULL)
		for (i = 0; i < nclients; i++) {
			if (cl[i].fd >= 0)
				close(cl[i].fd);
			free(cl[i].in);
		}
	if (started)
		server_stop(&srv, 1);
	if (barrier)
		pthread_barrier_destroy(&run.ready);
	free(run.pad[0]);
	free(run.pad[1]);
	free(cl);
	free(all);
	return rc;
}
