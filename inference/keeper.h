/*
 * keeper: a lease held across the daemon's restarts
 * (modelcache-preload --keep-lease).
 *
 * A lease lives as long as the connection that took it, and the daemon's
 * end (a sidecar container restarted after a crash or a failed liveness
 * probe) ends every connection.  The keeper is a thread of the process
 * that stays as the server's parent: it waits for that connection to end,
 * then connects again, as often as it takes, and acquires the very commit
 * the server was started on, which the store answers without the origin.
 * Between the two the old lease file protects the model until it goes
 * stale, or at once no more when the daemon's PID namespace survived it.
 */
#ifndef MC_KEEPER_H
#define MC_KEEPER_H

#include "modelcache.h"

/*
 * The reference naming model's commit: an hf:// reference (or the bare
 * "org/name" shorthand) with "@commit" for its revision; any other names
 * its content already and is returned as is.  The caller frees it; NULL
 * when out of memory.
 */
char *keeper_ref(const char *model, const char *commit);

/*
 * Starts the thread keeping c's lease on commit, which acquiring model
 * gave; c then belongs to it until the process exits.  socket and model
 * must outlive the process; timeout_ms bounds each acquire again.  The
 * caller has every signal blocked, so that the thread takes none.  Returns
 * 0 or a negative errno (c still the caller's).
 */
int keeper_start(mc_client *c, const char *socket, const char *model,
    const char *commit, long timeout_ms);

#endif
