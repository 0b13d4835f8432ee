/*
 * warm: bringing a model's files into this process's page cache.
 *
 * Files are read with parallel sequential preads, each worker taking the
 * next file in turn (large files first), so the disk sees a few long
 * streams.  With verify, each file's bytes are hashed (SHA-256) as they are
 * read: one pass, no second read.  Residency is measured afterwards with
 * mincore(2), never assumed.  With lock, the files are mapped and mlock'd
 * instead, and stay so until warm_release().
 */
#ifndef MC_WARM_H
#define MC_WARM_H

#include <stddef.h>
#include <stdint.h>

struct warm_file {
	char *path; /* absolute */
	uint64_t size;
	char sha256[65]; /* expected, for verify */
	int bad;	 /* verify: the bytes did not match */
	void *map;	 /* lock: the mapping */
};

struct warm_report {
	uint64_t bytes;
	double seconds;
	uint64_t resident; /* bytes in the page cache after the warm */
	size_t bad;	   /* files that failed verification */
	int err;	   /* first error (negative errno), 0 if none */
	int err_lock;	   /* that error came from mmap or mlock */
	char err_path[4096];
};

/* Warms files[0..n) with concurrency workers. */
void warm_run(struct warm_file *files, size_t n, unsigned concurrency,
    int verify, int lock, struct warm_report *r);

/* Bytes of path resident in the page cache (mincore), or -errno. */
int64_t warm_resident(const char *path);

/* Unmaps what lock mapped. */
void warm_release(struct warm_file *files, size_t n);

#endif
