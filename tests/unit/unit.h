/*
 * unit.h: what the cmocka unit tests share.  Each test that touches files
 * gets its own temporary directory and removes it afterwards; nothing is
 * shared between tests.  Include after <cmocka.h>'s prerequisites.
 */
#ifndef MC_UNIT_H
#define MC_UNIT_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* A fresh directory under $TMPDIR (or /tmp); the caller frees the path. */
static inline char *
unit_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *path;
	size_t n;

	if (base == NULL || *base == '\0')
		base = "/tmp";
	n = strlen(base) + 32;
	path = malloc(n);
	assert_non_null(path);
	snprintf(path, n, "%s/mc-unit.XXXXXX", base);
	assert_non_null(mkdtemp(path));
	return path;
}

/*
 * len deterministic bytes that vary with seed (a 32-bit LCG); the caller
 * frees them.
 */
static inline unsigned char *
unit_pattern(size_t len, uint32_t seed)
{
	unsigned char *p = malloc(len > 0 ? len : 1);
	uint32_t x = seed;
	size_t i;

	assert_non_null(p);
	for (i = 0; i < len; i++) {
		x = x * 1664525u + 1013904223u;
		p[i] = (unsigned char)(x >> 24);
	}
	return p;
}

/* rm -rf path (read-only blobs included), then frees it. */
static inline void
unit_rmdir(char *path)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "chmod -R u+w '%s' 2>/dev/null; rm -rf '%s'",
	    path, path);
	assert_int_equal(system(cmd), 0);
	free(path);
}

/* Writes len bytes to dir/name, creating parent directories. */
static inline void
unit_write(const char *dir, const char *name, const void *buf, size_t len)
{
	char path[4200], cmd[4300];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
	assert_int_equal(system(cmd), 0);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

#endif
