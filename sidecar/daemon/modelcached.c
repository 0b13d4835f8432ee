/*
 * modelcached: the sidecar daemon (modelcached(8)).
 *
 * Start-up: configuration (flags over environment over file), the store,
 * the loop with its fetch engine, the socket, then the declared models'
 * pulls.  SIGHUP reloads the configuration, keeping the old one when the
 * new one is bad; SIGTERM and SIGINT stop accepting, end the pulls (their
 * partial files stay to be resumed) and exit 0 within STOP_TIMEOUT_MS.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "claim.h"
#include "daemon.h"
#include "log.h"
#include "origin_hf.h"

#define DEFAULT_CONFIG "/etc/modelcache.conf"
#define FLAGS_MAX 16

/* The command line's settings, applied over every (re)load. */
struct flags {
	const char *key[FLAGS_MAX], *value[FLAGS_MAX];
	size_t n;
	int check;   /* -n */
	int verbose; /* -v */
	const char *config;
};

static struct flags flags;

static void
usage(FILE *to)
{
	fprintf(to,
	    "usage: modelcached [-nv] [-c FILE] [--store DIR] [--socket PATH]\n"
	    "                   [--models LIST] [--max-size SIZE]"
	    " [--log-format text|json]\n"
	    "\n"
	    "  -c, --config FILE  configuration file (default %s,\n"
	    "                     or MODELCACHE_CONFIG)\n"
	    "  -n, --check        check the configuration and exit\n"
	    "  -v, --verbose      log debug lines too\n"
	    "  --store DIR        the store (MODELCACHE_STORE)\n"
	    "  --socket PATH      the socket (MODELCACHE_SOCKET)\n"
	    "  --models LIST      models to keep present (MODELCACHE_MODELS)\n"
	    "  --max-size SIZE    quota of the store (MODELCACHE_MAX_SIZE)\n"
	    "  --log-format FMT   text or json (MODELCACHE_LOG_FORMAT)\n"
	    "\nSee modelcached(8) and modelcache.conf(5).\n",
	    DEFAULT_CONFIG);
}

/*
 * Loads file, environment and flags into *conf (initialised here).
 * Returns 0, or -1 with a sentence in err.
 */
static int
load(struct conf *conf, char *err, size_t errlen)
{
	const char *path =
	    flags.config != NULL ? flags.config : getenv("MODELCACHE_CONFIG");
	char why_file[256];
	const char *why;
	size_t i;
	int rc;

	if (conf_init(conf) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rc = conf_load_file(conf, path != NULL ? path : DEFAULT_CONFIG,
	    why_file, sizeof(why_file));
	if (rc < 0 && !(rc == -ENOENT && path == NULL)) {
		snprintf(err, errlen, "%s: %s",
		    path != NULL ? path : DEFAULT_CONFIG,
		    rc == -EINVAL ? why_file : strerror(-rc));
		goto bad;
	}
	if (conf_load_env(conf, why_file, sizeof(why_file)) < 0) {
		snprintf(err, errlen, "bad environment: %s", why_file);
		goto bad;
	}
	for (i = 0; i < flags.n; i++)
		if (conf_set(conf, flags.key[i], flags.value[i], &why) < 0) {
			snprintf(err, errlen, "bad --%s '%s': %s",
			    strcmp(flags.key[i], "max_size") == 0 ? "max-size"
				: strcmp(flags.key[i], "log_format") == 0
				? "log-format"
				: flags.key[i],
			    flags.value[i], why);
			goto bad;
		}
	if (conf_check(conf, err, errlen) < 0)
		goto bad;
	return 0;
bad:
	conf_release(conf);
	return -1;
}

/* allow_uids: numbers or user names, comma-separated. */
static int
parse_allow(const char *text, uid_t **out, size_t *n, char *err, size_t len)
{
	char *copy = strdup(text), *tok, *save = NULL, *end;
	struct passwd *pw;
	uid_t *v = NULL, *nv;
	unsigned long u;

	*n = 0;
	if (copy == NULL)
		return -1;
	for (tok = strtok_r(copy, ", \t", &save); tok != NULL;
	     tok = strtok_r(NULL, ", \t", &save)) {
		if ((nv = reallocarray(v, *n + 1, sizeof(*v))) == NULL)
			goto bad;
		v = nv;
		u = strtoul(tok, &end, 10);
		if (*end == '\0' && end != tok)
			v[(*n)++] = (uid_t)u;
		else if ((pw = getpwnam(tok)) != NULL)
			v[(*n)++] = pw->pw_uid;
		else {
			snprintf(err, len, "allow_uids: no user '%.64s'", tok);
			goto bad;
		}
	}
	free(copy);
	*out = v;
	return 0;
bad:
	free(copy);
	free(v);
	return -1;
}

/* What a (re)load changes in a running daemon; 0 or -1 with err. */
static int
apply(struct daemon *d, struct conf *conf, char *err, size_t errlen)
{
	enum log_format fmt;
	uid_t *allow = NULL;
	size_t nallow = 0;
	gid_t gid;

	if (server_group(conf->socket_group, &gid) < 0) {
		snprintf(err, errlen, "socket_group: no group '%.64s'",
		    conf->socket_group);
		return -1;
	}
	if (log_format_parse(conf->log_format, &fmt) < 0) {
		snprintf(err, errlen, "log_format: '%.32s'", conf->log_format);
		return -1;
	}
	if (parse_allow(conf->allow_uids, &allow, &nallow, err, errlen) < 0)
		return -1;
	if (models_declare(d, conf->models, err, errlen) < 0) {
		free(allow);
		return -1;
	}
	free(d->allow);
	d->allow = allow;
	d->nallow = nallow;
	log_init("modelcached", fmt, 1 + flags.verbose); /* info; -v: debug */
	return 0;
}

static void heartbeat(uv_timer_t *t);

/* A reload's busy timeout, set by the index's queue (daemon.h). */
struct busy_job {
	struct index_job job;
	struct index_conf ic;
};

static int
busy_run(struct index_job *job, struct index *index)
{
	struct busy_job *b = job->data;

	index_set_busy(index, &b->ic);
	return 0;
}

static void
busy_done(struct index_job *job, int rc)
{
	(void)rc;
	free(job->data);
}

static void
reload(struct daemon *d)
{
	struct busy_job *b;
	struct conf conf;
	char err[512];

	if (load(&conf, err, sizeof(err)) < 0) {
		log_warnx("reload refused, the old configuration stays: %s",
		    err);
		return;
	}
	if (strcmp(conf.store, d->conf.store) != 0 ||
	    strcmp(conf.socket, d->conf.socket) != 0)
		log_warnx("reload: the store and the socket change only on a"
			  " restart");
	if (apply(d, &conf, err, sizeof(err)) < 0) {
		log_warnx("reload refused, the old configuration stays: %s",
		    err);
		conf_release(&conf);
		return;
	}
	/* The paths in use stay; the rest is the new configuration's. */
	free(conf.store);
	free(conf.socket);
	conf.store = d->conf.store;
	conf.socket = d->conf.socket;
	d->conf.store = d->conf.socket = NULL;
	conf_release(&d->conf);
	d->conf = conf;
	free(d->token);
	d->token = hf_token(d->conf.hf_token_path);
	hf_token_held(d->token);
	d->store.stale_ms = (int64_t)d->conf.stale_s * 1000;
	uv_timer_start(&d->heartbeat, heartbeat,
	    (uint64_t)d->store.stale_ms / 4, (uint64_t)d->store.stale_ms / 4);
	beat_set_interval(&d->beat, d->store.stale_ms / 4);
	if ((b = calloc(1, sizeof(*b))) != NULL) {
		b->ic.stale_ms = d->store.stale_ms;
		b->ic.busy_ms = (int64_t)d->conf.busy_s * 1000;
		b->job.data = b;
		index_queue(&d->index, d->loop, &b->job, busy_run, busy_done);
	} else
		log_warnx("reload: out of memory: the busy timeout stays");
	log_info("configuration reloaded: %zu declared model(s), quota %llu"
		 " bytes",
	    d->nkeeps, (unsigned long long)d->conf.max_size);
	models_keep(d);
}

static void
close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* The end: connections, timers, signals and the engine let go. */
static void
finish(struct daemon *d)
{
	while (d->conns != NULL)
		conn_close(d->conns);
	fetch_close(&d->fetch);
	close_handle((uv_handle_t *)&d->heartbeat);
	close_handle((uv_handle_t *)&d->stop_timer);
	close_handle((uv_handle_t *)&d->sigterm);
	close_handle((uv_handle_t *)&d->sigint);
	close_handle((uv_handle_t *)&d->sighup);
}

static void
stopping(uv_timer_t *t)
{
	struct daemon *d = t->data;

	if (d->flights != NULL && uv_now(d->loop) < d->stop_deadline)
		return;
	if (d->flights != NULL)
		log_warnx("pulls still ending after %d ms: exiting anyway",
		    STOP_TIMEOUT_MS);
	/* The index's work not yet started is dropped; the rest ends. */
	index_queue_cancel(&d->index);
	uv_timer_stop(t);
	finish(d);
}

static void
on_signal(uv_signal_t *s, int signum)
{
	struct daemon *d = s->data;

	if (signum == SIGHUP) {
		reload(d);
		return;
	}
	if (d->stopping)
		return;
	log_info("%s: stopping", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	d->stopping = 1;
	d->stop_deadline = uv_now(d->loop) + STOP_TIMEOUT_MS;
	server_stop(d);
	flights_stop(d);
	uv_timer_stop(&d->heartbeat);
	uv_timer_start(&d->stop_timer, stopping, 0, 50);
}

static void
heartbeat(uv_timer_t *t)
{
	struct daemon *d = t->data;

	models_heartbeat(d);
	if (d->conf.refresh_s > 0 &&
	    uv_now(d->loop) - d->kept_ms >=
		(uint64_t)d->conf.refresh_s * 1000) {
		d->kept_ms = uv_now(d->loop);
		models_keep(d);
	}
}

static int
parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "store", required_argument, NULL, 1 },
		{ "socket", required_argument, NULL, 2 },
		{ "models", required_argument, NULL, 3 },
		{ "max-size", required_argument, NULL, 4 },
		{ "log-format", required_argument, NULL, 5 },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const keys[] = { NULL, "store", "socket", "models",
		"max_size", "log_format" };
	int c;

	while ((c = getopt_long(argc, argv, "c:nvh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			flags.config = optarg;
			break;
		case 'n':
			flags.check = 1;
			break;
		case 'v':
			flags.verbose = 1;
			break;
		case 1:
		case 2:
		case 3:
		case 4:
		case 5:
			if (flags.n == FLAGS_MAX) {
				log_warnx("too many options");
				return -1;
			}
			flags.key[flags.n] = keys[c];
			flags.value[flags.n++] = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("modelcached %s\n", PACKAGE_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -1;
	}
	return 0;
}

static int
start(struct daemon *d)
{
	struct index_conf ic = { 0 };
	int rc;

	uv_signal_init(d->loop, &d->sigterm);
	uv_signal_init(d->loop, &d->sigint);
	uv_signal_init(d->loop, &d->sighup);
	uv_timer_init(d->loop, &d->heartbeat);
	uv_timer_init(d->loop, &d->stop_timer);
	d->sigterm.data = d->sigint.data = d->sighup.data = d;
	d->heartbeat.data = d->stop_timer.data = d;
	if ((rc = store_open(&d->store, d->conf.store, 1)) < 0) {
		log_warnx("cannot open the store '%s': %s", d->conf.store,
		    strerror(-rc));
		return -1;
	}
	d->store.stale_ms = (int64_t)d->conf.stale_s * 1000;
	if ((rc = beat_start(&d->beat, d->store.stale_ms / 4)) < 0) {
		log_warnx("cannot start the heartbeat thread: %s",
		    strerror(-rc));
		return -1;
	}
	d->store.beat = &d->beat;
	ic.path = d->conf.index;
	ic.node = d->conf.node;
	ic.stale_ms = d->store.stale_ms;
	ic.busy_ms = (int64_t)d->conf.busy_s * 1000;
	if ((rc = index_open(&d->index, &d->store, &ic)) < 0) {
		log_warnx("cannot open the index of '%s': %s", d->conf.store,
		    strerror(-rc));
		return -1;
	}
	log_info("index '%s'%s", d->index.path,
	    d->index.private ? ": this node's own, refreshed from the manifests"
			     : "");
	d->token = hf_token(d->conf.hf_token_path);
	hf_token_held(d->token);
	if (fetch_init(&d->fetch, d->loop, NULL) < 0) {
		log_warnx("cannot start the HTTP engine");
		return -1;
	}
	if (server_start(d) < 0)
		return -1;
	uv_signal_start(&d->sigterm, on_signal, SIGTERM);
	uv_signal_start(&d->sigint, on_signal, SIGINT);
	uv_signal_start(&d->sighup, on_signal, SIGHUP);
	d->kept_ms = uv_now(d->loop);
	uv_timer_start(&d->heartbeat, heartbeat,
	    (uint64_t)d->store.stale_ms / 4, (uint64_t)d->store.stale_ms / 4);
	log_info("modelcached %s: store '%s', %zu declared model(s), quota"
		 " %llu bytes",
	    PACKAGE_VERSION, d->conf.store, d->nkeeps,
	    (unsigned long long)d->conf.max_size);
	models_keep(d);
	return 0;
}

int
main(int argc, char **argv)
{
	struct daemon d;
	uv_loop_t loop;
	char err[512];
	int rc = 0;

	signal(SIGPIPE, SIG_IGN);
	memset(&d, 0, sizeof(d));
	log_init("modelcached", LOG_TEXT, 0);
	if (parse_args(argc, argv) < 0)
		return 2;
	if (load(&d.conf, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		return 2;
	}
	if (apply(&d, &d.conf, err, sizeof(err)) < 0) {
		log_warnx("%s", err);
		conf_release(&d.conf);
		return 2;
	}
	if (flags.check) {
		printf("configuration ok: store '%s', socket '%s', %zu declared"
		       " model(s)\n",
		    d.conf.store, d.conf.socket, d.nkeeps);
		models_release_all(&d);
		free(d.allow);
		conf_release(&d.conf);
		return 0;
	}
	uv_loop_init(&loop);
	d.loop = &loop;
	d.started_ms = claim_now_ms();
	if (start(&d) < 0)
		rc = 1;
	else
		uv_run(&loop, UV_RUN_DEFAULT);
	if (rc != 0) {
		server_stop(&d);
		finish(&d);
	}
	uv_run(&loop, UV_RUN_DEFAULT); /* the close callbacks */
	uv_loop_close(&loop);
	models_release_all(&d);
	snap_cache_free(&d);
	index_close(&d.index);
	d.store.beat = NULL;
	beat_stop(&d.beat);
	store_release(&d.store);
	free(d.token);
	free(d.allow);
	conf_release(&d.conf);
	log_info("stopped");
	return rc;
}
