/*
 * server: modelcached's Unix socket (see daemon.h).
 *
 * A connection reads bytes into one buffer, bounded by PROTO_LINE_MAX, and
 * handles whole lines in order.  Its first message must be hello, within
 * HELLO_TIMEOUT_MS.  While an acquire waits for its model, no further
 * request is handled, but the connection is still read, up to one line's
 * worth (PROTO_LINE_MAX; then the rest waits in the kernel's buffer), so
 * that a client who hangs up is noticed at once and stops waiting.
 * Answers a client does not read pile up to CONN_OUT_MAX; then the
 * connection is cut.  A chunked ready answer (models.c) is sent as the
 * queue drains below CONN_OUT_MAX / 4.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"

struct write_req {
	uv_write_t req;
	struct conn *c;
	size_t len;
	char *line;
};

static void conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void handle_lines(struct conn *c);

static void
conn_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	if (--c->closing == 0) {
		free(c->in);
		free(c);
	}
}

void
conn_close(struct conn *c)
{
	struct conn **pp;

	if (c->closing)
		return;
	c->closing = 2; /* the pipe and the timer */
	models_conn_gone(c);
	for (pp = &c->d->conns; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	c->d->nconns--;
	if (c->bad > 1)
		log_info("connection %llu: %llu bad requests in all",
		    (unsigned long long)c->id, (unsigned long long)c->bad);
	log_debug("connection %llu closed", (unsigned long long)c->id);
	uv_close((uv_handle_t *)&c->timer, conn_closed);
	uv_close((uv_handle_t *)&c->pipe, conn_closed);
}

static void
written(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;

	w->c->out_queued -= w->len;
	if (status < 0 && !w->c->closing)
		conn_close(w->c);
	else if (w->c->stream != NULL && !w->c->closing &&
	    w->c->out_queued < CONN_OUT_MAX / 4)
		models_stream(w->c);
	free(w->line);
	free(w);
}

void
conn_send(struct conn *c, char *line)
{
	struct write_req *w;
	uv_buf_t buf;
	size_t len;

	if (c->closing) {
		free(line);
		return;
	}
	if (line == NULL || (w = calloc(1, sizeof(*w))) == NULL) {
		free(line);
		conn_close(c);
		return;
	}
	len = strlen(line);
	line[len] = '\n'; /* the NUL becomes the newline: one write */
	w->c = c;
	w->len = len + 1;
	w->line = line;
	buf = uv_buf_init(line, (unsigned)w->len);
	c->out_queued += w->len;
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &buf, 1, written) < 0) {
		c->out_queued -= w->len;
		free(line);
		free(w);
		conn_close(c);
		return;
	}
	if (c->out_queued > CONN_OUT_MAX) {
		log_warnx("connection %llu (pid %d) does not read its answers:"
			  " cut off",
		    (unsigned long long)c->id, (int)c->pid);
		conn_close(c);
	}
}

void
conn_error(struct conn *c, enum proto_error e, const char *message)
{
	conn_send(c, proto_error_line(e, message));
}

void
conn_resume(struct conn *c)
{
	if (c->closing || !c->paused || c->stream != NULL)
		return;
	c->paused = 0;
	uv_timer_stop(&c->timer);
	if (!c->busy) /* else handle_lines() goes on where it is */
		handle_lines(c);
}

static void
hello(struct conn *c, const struct proto_req *req)
{
	char msg[96];

	if (req->protocol != PROTO_VERSION) {
		snprintf(msg, sizeof(msg), "this server speaks protocol %d",
		    PROTO_VERSION);
		conn_error(c, PROTO_UNSUPPORTED_PROTOCOL, msg);
		return;
	}
	c->hello = 1;
	c->chunked = req->chunked;
	uv_timer_stop(&c->timer);
	log_info("connection %llu: hello from '%s' (pid %d, uid %d)",
	    (unsigned long long)c->id,
	    req->client[0] != '\0' ? req->client : "-", (int)c->pid,
	    (int)c->uid);
	/* "chunked" agrees to the client's: a ready answer may be split. */
	conn_send(c,
	    proto_ok_line(c->chunked
		    ? json_pack("{s:i, s:s, s:b}", "protocol", PROTO_VERSION,
			  "server", "modelcached/" PACKAGE_VERSION, "chunked",
			  1)
		    : json_pack("{s:i, s:s}", "protocol", PROTO_VERSION,
			  "server", "modelcached/" PACKAGE_VERSION)));
}

/* One whole line: decoded, then handed to its op. */
static void
handle_line(struct conn *c, const char *line, size_t len)
{
	struct proto_req req;
	char err[256];

	if (proto_decode(line, len, &req, err, sizeof(err)) != PROTO_OK) {
		/* Logged once a connection: a client cannot flood the log. */
		if (c->bad++ == 0)
			log_info("connection %llu: bad request: %s",
			    (unsigned long long)c->id, err);
		conn_error(c, PROTO_BAD_REQUEST, err);
		return;
	}
	if (!c->hello && req.op != OP_HELLO) {
		conn_error(c, PROTO_BAD_REQUEST, "say hello first");
		conn_close(c);
		return;
	}
	if (c->d->stopping && req.op == OP_ACQUIRE) {
		conn_error(c, PROTO_SHUTTING_DOWN, "the daemon is stopping");
		return;
	}
	switch (req.op) {
	case OP_HELLO:
		hello(c, &req);
		break;
	case OP_ACQUIRE:
		/*
		 * No more requests until it is answered; reading goes on (up
		 * to a line's worth) so that a client who hangs up while it
		 * waits is noticed and its place freed.
		 */
		c->paused = 1;
		models_acquire(c, &req);
		break;
	case OP_RELEASE:
		models_release(c, &req);
		break;
	case OP_STATUS:
		models_status(c);
		break;
	}
}

/* Handles the whole lines read so far, in order; reads on when done. */
static void
handle_lines(struct conn *c)
{
	char *nl;
	size_t n;

	c->busy = 1;
	while (!c->paused && !c->closing && c->in_len > 0 &&
	    (nl = memchr(c->in, '\n', c->in_len)) != NULL) {
		n = (size_t)(nl - c->in);
		handle_line(c, c->in,
		    n > 0 && c->in[n - 1] == '\r' ? n - 1 : n);
		if (c->closing)
			break;
		memmove(c->in, nl + 1, c->in_len - n - 1);
		c->in_len -= n + 1;
	}
	c->busy = 0;
	if (c->paused || c->closing)
		return;
	if (c->in_len >= PROTO_LINE_MAX) {
		log_info("connection %llu: a message over 1 MiB: cut off",
		    (unsigned long long)c->id);
		conn_error(c, PROTO_BAD_REQUEST, "message over 1 MiB");
		conn_close(c);
		return;
	}
	uv_read_start((uv_stream_t *)&c->pipe, conn_alloc, conn_read);
}

static void
conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct conn *c = h->data;
	size_t want = c->in_len + (hint < 65536 ? hint : 65536);
	char *p;

	(void)hint;
	if (want > PROTO_LINE_MAX)
		want = PROTO_LINE_MAX;
	if (want > c->in_cap) {
		if ((p = realloc(c->in, want)) == NULL) {
			*buf = uv_buf_init(NULL, 0);
			return;
		}
		c->in = p;
		c->in_cap = want;
	}
	*buf =
	    uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void
conn_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	(void)buf;
	if (n < 0) {
		conn_close(c);
		return;
	}
	c->in_len += (size_t)n;
	if (c->paused) {
		/* A line's worth held: the rest waits in the kernel. */
		if (c->in_len >= PROTO_LINE_MAX)
			uv_read_stop(s);
		return;
	}
	handle_lines(c);
}

static void
hello_late(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (!c->hello) {
		log_info("connection %llu: no hello in time: cut off",
		    (unsigned long long)c->id);
		conn_error(c, PROTO_TIMEOUT, "no hello in time");
		conn_close(c);
	}
}

static int
allowed(const struct daemon *d, uid_t uid)
{
	size_t i;

	if (d->nallow == 0 || uid == getuid())
		return 1;
	for (i = 0; i < d->nallow; i++)
		if (d->allow[i] == uid)
			return 1;
	return 0;
}

static void
peer(struct conn *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uv_os_fd_t fd;

	c->pid = -1;
	c->uid = (uid_t)-1;
	c->gid = (gid_t)-1;
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
		c->pid = cred.pid;
		c->uid = cred.uid;
		c->gid = cred.gid;
	}
}

static void
on_connection(uv_stream_t *server, int status)
{
	struct daemon *d = server->data;
	struct conn *c;

	if (status < 0 || (c = calloc(1, sizeof(*c))) == NULL)
		return;
	c->d = d;
	c->id = ++d->next_conn_id;
	uv_pipe_init(d->loop, &c->pipe, 0);
	uv_timer_init(d->loop, &c->timer);
	c->pipe.data = c;
	c->timer.data = c;
	c->next = d->conns;
	d->conns = c;
	d->nconns++;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
		conn_close(c);
		return;
	}
	peer(c);
	log_debug("connection %llu from pid %d uid %d gid %d",
	    (unsigned long long)c->id, (int)c->pid, (int)c->uid, (int)c->gid);
	if (!allowed(d, c->uid)) {
		log_warnx("connection %llu: uid %d is not allowed: refused",
		    (unsigned long long)c->id, (int)c->uid);
		conn_error(c, PROTO_FORBIDDEN, "this uid is not allowed");
		conn_close(c);
		return;
	}
	if (d->nconns > d->conf.max_conns) {
		log_warnx("connection %llu: over %u connections: refused",
		    (unsigned long long)c->id, d->conf.max_conns);
		conn_error(c, PROTO_BUSY, "too many connections");
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, hello_late, HELLO_TIMEOUT_MS, 0);
	uv_read_start((uv_stream_t *)&c->pipe, conn_alloc, conn_read);
}

/* A socket file left by a daemon that died is removed; a live one is not. */
static int
clear_stale(const char *path)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) == -1)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (rc == 0)
		return -EADDRINUSE;
	return unlink(path) == -1 ? -errno : 0;
}

/* The socket's directory: made 0750 when missing. */
static int
socket_dir(const char *path, gid_t gid)
{
	char dir[sizeof(((struct sockaddr_un *)NULL)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0750) == -1) {
		if (errno != EEXIST)
			return -errno;
		return 0; /* someone else's directory: left as it is */
	}
	if (gid != (gid_t)-1 && chown(dir, (uid_t)-1, gid) == -1)
		return -errno;
	return 0;
}

int
server_group(const char *name, gid_t *gid)
{
	struct group *g;
	char *end;
	unsigned long v;

	*gid = (gid_t)-1;
	if (name[0] == '\0')
		return 0;
	if ((g = getgrnam(name)) != NULL) {
		*gid = g->gr_gid;
		return 0;
	}
	v = strtoul(name, &end, 10);
	if (*end != '\0' || end == name)
		return -EINVAL;
	*gid = (gid_t)v;
	return 0;
}

int
server_start(struct daemon *d)
{
	const char *path = d->conf.socket;
	gid_t gid;
	mode_t old;
	int rc;

	if (server_group(d->conf.socket_group, &gid) < 0) {
		log_warnx("no group '%s'", d->conf.socket_group);
		return -EINVAL;
	}
	if ((rc = socket_dir(path, gid)) < 0) {
		log_warnx("cannot make the directory of '%s': %s", path,
		    strerror(-rc));
		return rc;
	}
	if ((rc = clear_stale(path)) < 0) {
		log_warnx("cannot use '%s': %s", path,
		    rc == -EADDRINUSE ? "another daemon listens there"
				      : strerror(-rc));
		return rc;
	}
	uv_pipe_init(d->loop, &d->listener, 0);
	d->listener.data = d;
	old = umask(0117); /* born 0660: no moment when others may connect */
	rc = uv_pipe_bind(&d->listener, path);
	umask(old);
	if (rc == 0 && gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) == -1)
		rc = -errno;
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&d->listener, 128, on_connection);
	if (rc < 0) {
		log_warnx("cannot listen on '%s': %s", path, uv_strerror(rc));
		uv_close((uv_handle_t *)&d->listener, NULL);
		return rc;
	}
	d->listening = 1;
	log_info("listening on '%s'", path);
	return 0;
}

void
server_stop(struct daemon *d)
{
	if (!d->listening)
		return;
	d->listening = 0;
	uv_close((uv_handle_t *)&d->listener, NULL);
	unlink(d->conf.socket);
}
