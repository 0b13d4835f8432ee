/*
 * modelcache.h: libmodelcache, the C client of modelcached's handshake
 * (modelcache-protocol(7)); see libmodelcache(3).
 *
 * A client is one connection to the daemon.  mc_acquire() asks for a
 * model, waits while it is pulled (progress through a callback), and
 * returns it ready: its directory relative to the store, its files with
 * sizes and SHA-256 digests, its commit, and a lease that keeps it in the
 * store for as long as the connection lives or until mc_release().
 *
 * Functions return 0 or a negative errno: -ENOENT (no such model or
 * revision), -EACCES (a token is needed or wrong), -EPERM (access not
 * granted, or this uid is not allowed), -EBADMSG (the bytes never matched
 * their digest), -EHOSTUNREACH (the origin cannot be reached), -ENOSPC,
 * -ETIMEDOUT, -EBUSY (too many connections), -ESHUTDOWN (the daemon is
 * stopping), -EIO (the daemon failed), -EPROTO (the daemon answered
 * something unexpected), -EPROTONOSUPPORT, -EINVAL (a bad argument, or a
 * request the daemon refused as malformed), -ENOMEM, or the errno of a
 * failed connect, read or write.  mc_message() tells the daemon's own
 * sentence.
 *
 * The library keeps no global state and never logs.  One client may be
 * used from several threads: its calls are serialised.
 */
#ifndef MODELCACHE_H
#define MODELCACHE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MC_SOCKET_DEFAULT "/run/modelcache/modelcache.sock"

typedef struct mc_client mc_client;
typedef struct mc_model mc_model;

struct mc_file {
	const char *path; /* relative to the model's directory */
	uint64_t size;
	const char *sha256; /* 64 lowercase hex digits */
};

/* Progress of a pull: bytes in place and in all.  Called on the caller's
 * thread, inside mc_acquire(), with the client locked: it must not call
 * the client. */
typedef void (*mc_progress_fn)(void *arg, uint64_t done, uint64_t total);

/*
 * Connects to the daemon at path (NULL: $MODELCACHE_SOCKET, else
 * MC_SOCKET_DEFAULT) and says hello as client_name (NULL: "libmodelcache").
 */
int mc_connect(const char *path, const char *client_name, mc_client **out);

/*
 * Acquires model ("org/name", "hf://org/name@rev", "https://…#sha256=…").
 * Waits at most timeout_ms (0: as long as it takes).  progress may be NULL.
 * On 0, *out is the ready model; free it with mc_model_free().
 */
int mc_acquire(mc_client *c, const char *model, long timeout_ms,
    mc_progress_fn progress, void *arg, mc_model **out);

/* Ends m's lease early (the connection's end ends it anyway). */
int mc_release(mc_client *c, const mc_model *m);

/*
 * Asks the daemon what it is doing: on 0, *json is the answer to "status"
 * (modelcache-protocol(7): server, uptime_s, store, ready, models, pulls,
 * leases) without its "ok", as one line of JSON text (no newline), which
 * the caller frees with free().
 */
int mc_status(mc_client *c, char **json);

/* The daemon's message for the last failure, or "": valid until the
 * client's next call. */
const char *mc_message(const mc_client *c);

/* The connection's descriptor.  It is close-on-exec; with FD_CLOEXEC
 * cleared it stays open across exec, and keeps the leases. */
int mc_fd(const mc_client *c);

/* Closes the connection (its leases end) and frees c. */
void mc_close(mc_client *c);

/* What a ready model is; the strings live as long as m. */
const char *mc_model_dir(const mc_model *m); /* in the store: the hub view's */
const char *mc_model_repo(const mc_model *m);
const char *mc_model_commit(const mc_model *m);
const char *mc_model_lease(const mc_model *m);
int mc_model_stale(const mc_model *m); /* 1: the origin was unreachable */
size_t mc_model_nfiles(const mc_model *m);
const struct mc_file *mc_model_file(const mc_model *m, size_t i);
void mc_model_free(mc_model *m);

#ifdef __cplusplus
}
#endif

#endif
