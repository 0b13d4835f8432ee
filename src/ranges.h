/*
 * ranges: the saved range state of a partial file, so that a pull that
 * stops (a crash, a claim taken over) is resumed by whoever holds the
 * blob's claim next, fetching only what is missing.
 *
 * An LFS file (its SHA-256 known in advance) is fetched into
 * tmp/partial.<sha256>, cut in ranges of chunk bytes; the ranges finished
 * are saved in tmp/partial.<sha256>.ranges:
 *
 *	<size> <chunk>\n	the file's size and the range size, decimal
 *	<i>\n			one line per finished range, 0-based
 *
 * A state names only bytes that are on disk: ranges_save() makes the
 * partial's data durable (fdatasync) before it replaces the state, whole,
 * by rename; a crash between the two leaves the older state, which names
 * less.  A state trusted before its data could survive a crash that the
 * data does not, and a resume would then take ranges of zeros for bytes
 * (the digest would refuse them, but only after the whole file).  The
 * state is a hint for speed: a state that is missing, of another size or
 * range size, or unreadable makes the next holder fetch everything.
 */
#ifndef MC_RANGES_H
#define MC_RANGES_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* The most bytes of state ranges_format() writes (and a buffer needs). */
#define RANGES_MAX 65536

/* A state read back: the ranges finished, in the order saved. */
struct ranges {
	uint64_t size, chunk;
	size_t *done; /* ndone indices, each below ranges_count(); owned */
	size_t ndone;
};

/* How many ranges of chunk bytes a file of size bytes has (at least 1). */
size_t ranges_count(uint64_t size, uint64_t chunk);

/*
 * "tmp/partial.<sha256>" and "tmp/partial.<sha256>.ranges" into partial
 * and state (either may be NULL), each of len bytes.  0, -EINVAL when
 * sha256 is not 64 hex digits, or -ENAMETOOLONG.
 */
int ranges_paths(const char *sha256, char *partial, char *state, size_t len);

/*
 * Formats the state of a file of size bytes in ranges of chunk bytes, of
 * which done(arg, i) says whether range i (of n) is finished, into buf
 * (RANGES_MAX bytes, not NUL-terminated).  Returns its length.  Ranges
 * that do not fit are left out: a resume fetches them again.
 */
size_t ranges_format(char *buf, uint64_t size, uint64_t chunk, size_t n,
    int (*done)(const void *arg, size_t i), const void *arg);

/*
 * Parses a state of len bytes (a NUL may follow, and is not needed) into
 * *r (released by ranges_release()).  Returns 0, -EBADMSG when buf is not a
 * state (a header that is not two numbers, a range size of 0, a line that
 * is not one number, a range past the file's end, no final newline), or
 * -ENOMEM.  On error *r holds nothing.
 */
int ranges_parse(const char *buf, size_t len, struct ranges *r);

/*
 * Reads and parses the state at the store-relative rel.  Returns 0;
 * -ENOENT when there is none; -EBADMSG when the file is not a state (see
 * ranges_parse(); it is left as it is, for the next save to replace or
 * fsck to judge); or another negative errno.
 */
int ranges_load(struct store *store, const char *rel, struct ranges *r);

/* Frees what *r holds; *r is then empty.  NULL is a no-op. */
void ranges_release(struct ranges *r);

/*
 * Saves the state buf (len bytes, from ranges_format()) at rel for the
 * partial file open as fd: first fd's data is made durable (fdatasync),
 * then the state is replaced whole (store_write_atomic()).  *synced (when
 * not NULL) says whether the data got to disk, whatever happened to the
 * state.  Returns 0, or a negative errno: when the fdatasync failed,
 * nothing is written and the older state stays.
 */
int ranges_save(struct store *store, const char *rel, int fd, const char *buf,
    size_t len, int *synced);

#endif
