/*
 * ratelimit: the rate limits an origin's hosts asked for, shared by every
 * process and node on the store (DESIGN.md section 4).
 *
 * A 429 from a host is noted in tmp/ratelimit.<host> as the moment the
 * limit ends, "<ms since the epoch>\n" by the store's clock
 * (store_now_ms()), so that replicas whose clocks disagree read the same
 * deadline.  Every pull waits until then before asking that host again.
 * The file is replaced whole (store_write_atomic()): a reader sees the old
 * deadline or the new one.  Nothing removes it; a deadline past is no wait.
 * In a host name, anything but letters, digits, '.' and '-' is written '_'.
 */
#ifndef MC_RATELIMIT_H
#define MC_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/*
 * "tmp/ratelimit.<host>" into rel.  0, -EINVAL for an empty host, or
 * -ENAMETOOLONG.
 */
int ratelimit_path(const char *host, char *rel, size_t len);

/*
 * Notes that host asked for ms milliseconds without requests, from now on
 * the store's clock.  0 or a negative errno.
 */
int ratelimit_note(struct store *store, const char *host, int64_t ms);

/*
 * How long to wait before asking host, in *left_ms: 0 when no limit is
 * noted or it has ended, at most FETCH_WAIT_MAX_S (fetch.h), the longest
 * wait an origin may ask for: a clock gone wrong cannot park a pull.  Returns 0; -ENOENT when nothing is noted (*left_ms
 * is 0); -EBADMSG when the file does not hold a deadline (*left_ms is 0 and
 * the file stays, for the next note to replace); or another negative errno.
 */
int ratelimit_left(struct store *store, const char *host, int64_t *left_ms);

#endif
