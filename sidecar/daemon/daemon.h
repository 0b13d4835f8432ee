/*
 * daemon: what the parts of modelcached(8) share.
 *
 *	modelcached.c	start-up, configuration, signals, shutdown
 *	server.c	the Unix socket: connections, lines, the handshake
 *	models.c	acquire and release, leases, declared models, status
 *	flights.c	pulls in flight, and the quota after each (gc.h)
 *	snaps.c		the cache of whole snapshots, uses recorded
 *
 * Everything runs on one libuv loop, the pull engine included: requests,
 * transfers, timers and signals.  Hashing and fsync go to the thread pool
 * (pull.c); the heartbeats of claims and leases run on a thread of their
 * own (beat.h), so that nothing the loop waits on lets them go stale, and
 * the loop never sleeps on a claim (snapshot.c's removals try once).
 *
 * The loop never calls the index: a lock another process holds would stop
 * it for up to index_busy_timeout, and a refresh walks manifests/.  Every
 * use of it (a reference only the index resolves, a snapshot published, a
 * use recorded, the quota enforced, a reload's busy timeout) is a job on
 * the index's queue (index_queue()): run on the thread pool one at a time,
 * in the order queued, on the daemon's one SQLite handle, so no two
 * threads ever use it at once and a held lock ties up one pool thread,
 * not the pool.  One handle serialized rather than one per job: the index
 * is more than a connection (its generation, which a refresh may switch),
 * opening one checks and refreshes it, and SQLite lets one writer in at a
 * time anyway.  Meanwhile the loop answers hello, status and release, and
 * an acquire of a model whose ref file (or full commit id) locates it,
 * from the files alone; the ready answer follows the lease taken (lease.h)
 * and, after a pull, the publish job's end (the manifest, the view, then
 * the index row, or the index found busy: snapshot.h).
 */
#ifndef MC_DAEMON_H
#define MC_DAEMON_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <uv.h>

#include "beat.h"
#include "conf.h"
#include "fetch.h"
#include "hub.h"
#include "index.h"
#include "lease.h"
#include "proto.h"
#include "pull_ref.h"
#include "store.h"

#define CONN_OUT_MAX (4 * 1024 * 1024) /* queued answers: then cut off */
#define HELLO_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS 10000 /* SIGTERM: exit by then, pulls or not */

struct daemon;
struct flight;
struct lookup;
struct snap;

/* A lease file of the daemon's, shared by the protocol leases on it. */
struct held {
	struct held *next;
	struct lease file;
	unsigned refs;
};

/* A lease of the protocol: its id, and the file that makes it real. */
struct conn_lease {
	char id[PROTO_LEASE_MAX];
	struct held *held;
};

/* One client connection. */
struct conn {
	struct daemon *d;
	struct conn *next;
	uv_pipe_t pipe;
	uv_timer_t timer; /* hello, then the acquire's timeout */
	char *in;	  /* bytes read, not yet a whole line */
	size_t in_len, in_cap;
	size_t out_queued; /* bytes written, not yet sent */
	int hello, closing;
	int paused; /* an acquire is waiting: no requests handled */
	int busy;   /* inside handle_lines() */
	uint64_t id;
	uint64_t bad; /* bad requests: the first is logged */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	/* an acquire waiting for the index to locate its model */
	struct lookup *lookup;
	/* an acquire waiting for its flight */
	struct flight *waiting;
	struct conn *next_waiter;
	char model[PROTO_MODEL_MAX];
	/* leases held through this connection */
	struct conn_lease *leases;
	size_t nleases;
	unsigned npulls;  /* flights started for it, in the air */
	uint64_t refused; /* acquires the allow list refused */
	int chunked;	  /* its hello said "chunked":true */
	/* a ready answer sent in chunks, as the client reads them */
	struct snap *stream;
	size_t stream_next; /* the next file to send */
	char *stream_last;  /* the ready line that ends it */
};

/* A declared model: pulled at start and kept present. */
struct keep {
	char *text;	   /* as declared */
	const char *state; /* "absent", "pulling", "ready", "failed" */
	char error[512];
	char commit[DIGEST_SHA1_HEX + 1];
};

struct daemon {
	uv_loop_t *loop;
	struct conf conf;
	struct store store;
	struct index index;
	struct fetch fetch;
	char *token;
	uv_pipe_t listener;
	int listening;
	uv_signal_t sigterm, sigint, sighup;
	struct beat beat;     /* touches the claims and leases held */
	uv_timer_t heartbeat; /* lost leases, and keeping declared models */
	uv_timer_t stop_timer;
	struct conn *conns;
	unsigned nconns;
	uint64_t next_conn_id;
	struct flight *flights;
	struct snap *snaps; /* whole snapshots seen, newest first */
	struct held *held;  /* lease files, one per snapshot in use */
	uint64_t lease_seq;
	struct keep *keeps;
	size_t nkeeps;
	uid_t *allow;
	size_t nallow;
	int64_t started_ms;
	uint64_t kept_ms;	/* loop time of the last models_keep() */
	int stopping;		/* SIGTERM came */
	uint64_t stop_deadline; /* loop time: exit, pulls or not */
};

/* One pull_ref in the air for everyone who wants its reference (flights.c). */
struct flight {
	struct daemon *d;
	struct flight *next;
	char key[PROTO_MODEL_MAX]; /* the reference, canonical */
	struct ref ref;
	struct pull_ref_opts o;
	struct pull_ref_result r;
	struct pull_ref *op;
	struct conn *waiters;
	struct conn *owner;	 /* charged for it (NULL: nobody) */
	int queued;		 /* waits for room in its owner's pulls */
	struct keep *keep;	 /* when a declared model's */
	char *endpoint, *token;	 /* copies: a reload may change the daemon's */
	char *include, *exclude; /* copies, split into o.hf's globs */
	uint64_t done, total, reused;
	int64_t started_ms;
	int landing; /* pulled: the quota, then the answers (land()) */
	int quota_rc;
};

/*
 * A snapshot known whole (snaps.c), with its file list rendered once: the
 * acquire of a present model then costs a lease and two stats, not a
 * manifest parse, a hundred blob stats and a hundred JSON objects.  An
 * entry holds while its manifest file is the same file (a later filtered
 * pull of the commit replaces it by rename) and the view's snapshot
 * directory exists (removal takes the manifest first, then looks again at
 * the leases).
 */
enum source_kind { SOURCE_OTHER, SOURCE_HUB, SOURCE_HTTPS };

struct snap {
	struct snap *next;
	unsigned refs; /* the cache's, and each chunked answer's */
	char folder[REF_FOLDER_MAX];
	char commit[DIGEST_SHA1_HEX + 1];
	enum repo_type type;
	char *repo;
	char *files; /* the ready answer's "files", as JSON text */
	size_t len;  /* of files */
	size_t *cut; /* where each of its nfiles objects starts */
	size_t nfiles;
	enum source_kind kind;
	/* SOURCE_HTTPS: its nfiles digests, one of which a URL's must be */
	char (*sha256)[DIGEST_SHA256_HEX + 1];
	dev_t dev;
	ino_t ino;
	struct timespec mtime;
	int64_t touched; /* the last use recorded in the index */
};

/* A model found in the store, leased. */
struct found {
	char folder[REF_FOLDER_MAX];
	char commit[DIGEST_SHA1_HEX + 1];
	struct snap *snap;
	int fresh;
};

/*
 * A reference the files do not locate, resolved by the index's queue; then
 * then() goes on, on the loop, for the acquire of c (NULL once c is gone)
 * or the landing of fl.
 */
struct lookup {
	struct index_job job;
	struct daemon *d;
	struct store_place p;
	struct found f;
	void (*then)(struct lookup *lk, int found);
	struct conn *c;
	int wait;
	uint64_t deadline; /* loop time when c's acquire times out, or 0 */
	struct flight *fl;
};

/* server.c */
int server_start(struct daemon *d);
/* socket_group, a name or a number, into *gid ((gid_t)-1 for "").  0 or
 * -EINVAL. */
int server_group(const char *name, gid_t *gid);
void server_stop(struct daemon *d);
/* Sends one line (consumed; NULL means out of memory, and closes). */
void conn_send(struct conn *c, char *line);
void conn_error(struct conn *c, enum proto_error e, const char *message);
/* Reading resumes after an answer that completes a request. */
void conn_resume(struct conn *c);
void conn_close(struct conn *c);

/* models.c */
void models_acquire(struct conn *c, const struct proto_req *req);
void models_release(struct conn *c, const struct proto_req *req);
void models_status(struct conn *c);
/* The connection is going: its leases end and it stops waiting. */
void models_conn_gone(struct conn *c);
/* Sends more of a chunked ready answer (server.c, as answers drain). */
void models_stream(struct conn *c);
/* Pulls the declared models (again): at start, on SIGHUP, on heartbeat. */
void models_keep(struct daemon *d);
/* Takes again every lease whose file the beat thread found gone. */
void models_heartbeat(struct daemon *d);
/* Sets d->keeps from d->conf.models; 0 or -EINVAL with why. */
int models_declare(struct daemon *d, const char *list, char *err,
    size_t errlen);
void models_release_all(struct daemon *d);
/*
 * Where ref is in the store, from the files (f filled in): 1; 0 when only
 * the index can say (lookup_new()); -1 when ref has no place in the store.
 */
int models_locate(struct daemon *d, const struct ref *ref, struct found *f);
/*
 * A lookup of ref by the index's queue, not yet queued: the caller sets
 * then and its fields, and queues it (lookup_queue()), which frees it
 * after then().  NULL when out of memory.
 */
struct lookup *lookup_new(struct daemon *d, const struct ref *ref);
void lookup_queue(struct lookup *lk);
/* Answers c, a waiter of the landed flight fl, with the model at where. */
void models_answer(struct conn *c, struct flight *fl, const struct found *where,
    int located);

/* flights.c */
/*
 * The flight for ref: the one in the air, or a new one, charged to owner
 * (NULL for a declared model), or queued when owner has no room.  NULL,
 * with why in err, when it cannot start.
 */
struct flight *flight_get(struct daemon *d, const char *text,
    const struct ref *parsed, struct conn *owner, char *err, size_t errlen);
/*
 * c's flights when c goes: started ones go on uncharged; a queued one
 * passes to its first waiter, or starts for a declared model, or goes.
 */
void flight_disown(struct conn *c);
/* Stops every flight (SIGTERM); 1 while some are still ending. */
int flights_stop(struct daemon *d);

/* snaps.c */
/*
 * Whether the located snapshot is whole (f->snap set from the cache) and,
 * for an https:// reference, holds the digest asked for.  1 or 0.
 */
int snap_whole(struct daemon *d, const struct ref *ref, struct found *f);
/* Records a use of f's snapshot for eviction, behind the answer. */
void snap_touch(struct daemon *d, struct found *f);
/* Drops a reference to sn: the last frees it. */
void snap_put(struct snap *sn);
void snap_cache_free(struct daemon *d);

#endif
