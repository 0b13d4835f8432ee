/*
 * libmodelcache: see modelcache.h.  A blocking client: one line out, lines
 * back, on a stream socket.  The lines are the protocol module's
 * (src/proto.c, compiled in): its request encoders, its answer decoder,
 * and the error table of src/errors.c behind them.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "modelcache.h"
#include "proto.h"

struct mc_client {
	int fd;
	pthread_mutex_t lock;
	char *buf; /* bytes read past the last line */
	size_t len, cap;
	char message[512];
};

struct mc_model {
	json_t *answer; /* owns every string below */
	const char *dir, *repo, *commit, *lease;
	int stale;
	struct mc_file *files;
	size_t nfiles;
};

static int
say(mc_client *c, const char *line)
{
	size_t len = strlen(line), off = 0;
	ssize_t n;

	while (off < len) {
		n = send(c->fd, line + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	return 0;
}

/* The next line from the daemon, parsed; NULL with *rc set on failure. */
static json_t *
hear(mc_client *c, int *rc)
{
	char *nl, *p;
	json_t *v;
	ssize_t n;

	while (
	    (nl = c->len > 0 ? memchr(c->buf, '\n', c->len) : NULL) == NULL) {
		if (c->len >= PROTO_LINE_MAX) {
			*rc = -EPROTO;
			return NULL;
		}
		if (c->cap - c->len < 65536) {
			if ((p = realloc(c->buf, c->cap + 65536)) == NULL) {
				*rc = -ENOMEM;
				return NULL;
			}
			c->buf = p;
			c->cap += 65536;
		}
		n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*rc = n == 0 ? -ECONNRESET : -errno;
			return NULL;
		}
		c->len += (size_t)n;
	}
	*rc = proto_answer_decode(c->buf, (size_t)(nl - c->buf), &v);
	c->len -= (size_t)(nl + 1 - c->buf);
	memmove(c->buf, nl + 1, c->len);
	return v;
}

/* 0 for {"ok":true}; else the error's errno, its message kept. */
static int
outcome(mc_client *c, json_t *answer)
{
	const char *msg;
	int rc = proto_answer_outcome(answer, &msg);

	if (rc < 0)
		snprintf(c->message, sizeof(c->message), "%s", msg);
	return rc;
}

/*
 * The files of "files" events (a chunked ready answer), gathered in
 * *files, go before the final answer's own: the answer then holds them
 * all, as if it had come in one line.  0 or -ENOMEM.
 */
static int
gather(json_t **files, json_t *answer)
{
	json_t *more = json_object_get(answer, "files");

	if (*files == NULL && (*files = json_array()) == NULL)
		return -ENOMEM;
	if (json_is_array(more) && json_array_extend(*files, more) < 0)
		return -ENOMEM;
	return 0;
}

/*
 * One request, its final answer (progress events go to progress).  A send
 * into a connection the daemon has closed still reads what it said before
 * closing (busy, forbidden): that answer tells more than -EPIPE.
 */
static json_t *
ask(mc_client *c, char *req, mc_progress_fn progress, void *arg, int *rc)
{
	char *line = NULL;
	json_t *answer, *files = NULL;
	int sent;

	if (asprintf(&line, "%s\n", req) < 0) {
		free(req);
		*rc = -ENOMEM;
		return NULL;
	}
	free(req);
	sent = say(c, line);
	free(line);
	if (sent < 0 && sent != -EPIPE && sent != -ECONNRESET) {
		*rc = sent;
		return NULL;
	}
	while ((answer = hear(c, rc)) != NULL) {
		const char *ev =
		    json_string_value(json_object_get(answer, "event"));

		if (ev != NULL && strcmp(ev, "files") == 0) {
			*rc = gather(&files, answer);
			json_decref(answer);
			if (*rc < 0)
				break;
			continue;
		}
		if (ev == NULL || strcmp(ev, "progress") != 0) {
			if (files != NULL &&
			    ((*rc = gather(&files, answer)) < 0 ||
				(*rc = json_object_set_new(answer, "files",
					   files) < 0
					? -ENOMEM
					: 0) < 0)) {
				json_decref(answer);
				return NULL;
			}
			return answer;
		}
		/* Bytes in place: fetched, and found in the store already. */
		if (progress != NULL)
			progress(arg,
			    (uint64_t)json_integer_value(
				json_object_get(answer, "done_bytes")) +
				(uint64_t)json_integer_value(
				    json_object_get(answer, "reused_bytes")),
			    (uint64_t)json_integer_value(
				json_object_get(answer, "total_bytes")));
		json_decref(answer);
	}
	json_decref(files);
	if (sent < 0)
		*rc = sent;
	return NULL;
}

/*
 * One call: req (a line of proto's, freed here) sent under the client's
 * lock, its final answer read and judged.  0 with the answer in *answer,
 * which the caller frees with json_decref(); or a negative errno, the
 * daemon's message kept, and *answer NULL.
 */
static int
call(mc_client *c, char *req, mc_progress_fn progress, void *arg,
    json_t **answer)
{
	int rc;

	pthread_mutex_lock(&c->lock);
	c->message[0] = '\0';
	*answer = ask(c, req, progress, arg, &rc);
	if (*answer != NULL && (rc = outcome(c, *answer)) < 0) {
		json_decref(*answer);
		*answer = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static int
dial(const char *path)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* Close-on-exec: a child must not hold the leases past mc_close(). */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

int
mc_connect(const char *path, const char *client_name, mc_client **out)
{
	const char *env = getenv("MODELCACHE_SOCKET");
	json_t *answer;
	mc_client *c;
	char *req;
	int rc;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	if (path == NULL)
		path = env != NULL && *env != '\0' ? env : MC_SOCKET_DEFAULT;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	if ((c->fd = dial(path)) < 0) {
		rc = c->fd;
		free(c);
		return rc;
	}
	pthread_mutex_init(&c->lock, NULL);
	/* "chunked": a model of any number of files (see ask()). */
	if ((rc = proto_hello_line(client_name != NULL ? client_name
						       : "libmodelcache",
		 1, &req)) < 0) {
		mc_close(c);
		return rc;
	}
	rc = call(c, req, NULL, NULL, &answer);
	json_decref(answer);
	if (rc < 0) {
		mc_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* The ready answer into a model; -EPROTO when it is not one. */
static int
make_model(json_t *answer, mc_model **out)
{
	json_t *files = json_object_get(answer, "files"), *f;
	mc_model *m = calloc(1, sizeof(*m));
	size_t i;

	if (m == NULL)
		return -ENOMEM;
	m->answer = answer;
	m->dir = json_string_value(json_object_get(answer, "dir"));
	m->repo = json_string_value(json_object_get(answer, "repo"));
	m->commit = json_string_value(json_object_get(answer, "commit"));
	m->lease = json_string_value(json_object_get(answer, "lease"));
	m->stale = json_is_true(json_object_get(answer, "stale"));
	m->nfiles = json_array_size(files);
	/* "nfiles" (a daemon that sends it): the list came whole. */
	if (json_object_get(answer, "nfiles") != NULL &&
	    json_integer_value(json_object_get(answer, "nfiles")) !=
		(json_int_t)m->nfiles)
		files = NULL;
	m->files = calloc(m->nfiles ? m->nfiles : 1, sizeof(*m->files));
	if (m->files == NULL || m->dir == NULL || m->commit == NULL ||
	    m->lease == NULL || m->repo == NULL || !json_is_array(files)) {
		int rc = m->files == NULL ? -ENOMEM : -EPROTO;

		m->answer = NULL; /* still the caller's */
		mc_model_free(m);
		return rc;
	}
	json_array_foreach(files, i, f) {
		m->files[i].path =
		    json_string_value(json_object_get(f, "path"));
		m->files[i].sha256 =
		    json_string_value(json_object_get(f, "sha256"));
		m->files[i].size =
		    (uint64_t)json_integer_value(json_object_get(f, "size"));
		if (m->files[i].path == NULL || m->files[i].sha256 == NULL) {
			m->answer = NULL; /* still the caller's */
			mc_model_free(m);
			return -EPROTO;
		}
	}
	*out = m;
	return 0;
}

int
mc_acquire(mc_client *c, const char *model, long timeout_ms,
    mc_progress_fn progress, void *arg, mc_model **out)
{
	json_t *answer;
	char *req;
	int rc;

	if (out == NULL)
		return -EINVAL;
	*out = NULL;
	if (c == NULL || model == NULL)
		return -EINVAL;
	if ((rc = proto_acquire_line(model, 1, timeout_ms, &req)) < 0)
		return rc;
	if ((rc = call(c, req, progress, arg, &answer)) == 0 &&
	    (rc = make_model(answer, out)) < 0)
		json_decref(answer);
	/* On 0, the model owns the answer. */
	return rc;
}

int
mc_release(mc_client *c, const mc_model *m)
{
	json_t *answer;
	char *req;
	int rc;

	if (c == NULL || m == NULL)
		return -EINVAL;
	if ((rc = proto_release_line(m->lease, &req)) < 0)
		return rc;
	rc = call(c, req, NULL, NULL, &answer);
	json_decref(answer);
	return rc;
}

int
mc_status(mc_client *c, char **json)
{
	json_t *answer;
	char *req;
	int rc;

	if (json == NULL)
		return -EINVAL;
	*json = NULL;
	if (c == NULL)
		return -EINVAL;
	if ((rc = proto_status_line(&req)) < 0)
		return rc;
	if ((rc = call(c, req, NULL, NULL, &answer)) == 0) {
		json_object_del(answer, "ok");
		*json = json_dumps(answer, JSON_COMPACT | JSON_PRESERVE_ORDER);
		rc = *json != NULL ? 0 : -ENOMEM;
	}
	json_decref(answer);
	return rc;
}

const char *
mc_message(const mc_client *c)
{
	return c->message;
}

int
mc_fd(const mc_client *c)
{
	return c->fd;
}

void
mc_close(mc_client *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	pthread_mutex_destroy(&c->lock);
	free(c->buf);
	free(c);
}

const char *
mc_model_dir(const mc_model *m)
{
	return m->dir;
}

const char *
mc_model_repo(const mc_model *m)
{
	return m->repo;
}

const char *
mc_model_commit(const mc_model *m)
{
	return m->commit;
}

const char *
mc_model_lease(const mc_model *m)
{
	return m->lease;
}

int
mc_model_stale(const mc_model *m)
{
	return m->stale;
}

size_t
mc_model_nfiles(const mc_model *m)
{
	return m->nfiles;
}

const struct mc_file *
mc_model_file(const mc_model *m, size_t i)
{
	return i < m->nfiles ? &m->files[i] : NULL;
}

void
mc_model_free(mc_model *m)
{
	if (m == NULL)
		return;
	json_decref(m->answer);
	free(m->files);
	free(m);
}
