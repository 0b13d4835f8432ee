/*
 * backoff: how long to wait before trying again something that failed,
 * for every retry loop of the project: the pull's transfers (pull.c), the
 * fetch engine's calls (fetch.c) and the preload's keeper of a lease
 * (inference/keeper.c).  Header-only, and it includes nothing of the
 * store, so that the client side can use it without linking the store.
 *
 * The wait doubles with each try, from first_ms, up to max_ms; a jitter
 * spreads out the waiters that failed together, so that they do not come
 * back together.  The callers choose their numbers and whether to jitter:
 * these functions only compute, they never sleep or read a clock.
 */
#ifndef MC_BACKOFF_H
#define MC_BACKOFF_H

#include <stdint.h>

/*
 * The wait before the try after tries failed ones (0: the first retry):
 * first_ms doubled tries times, at most max_ms.  first_ms > 0, and
 * max_ms at most INT64_MAX / 2, so that no doubling overflows.
 */
static inline int64_t
backoff_ms(int64_t first_ms, int64_t max_ms, unsigned tries)
{
	int64_t ms = first_ms;

	while (tries-- > 0 && ms < max_ms)
		ms *= 2;
	return ms < max_ms ? ms : max_ms;
}

/*
 * ms with jitter: between half of it and all of it, by rnd (a random
 * byte: 0 gives the half, 255 the whole).
 */
static inline int64_t
backoff_jitter(int64_t ms, unsigned char rnd)
{
	return ms / 2 + (ms / 2) * rnd / 255;
}

#endif
