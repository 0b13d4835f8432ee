/*
 * example: acquire a model through modelcached, print where it is and its
 * files, release it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <modelcache.h>

static void
progress(void *arg, uint64_t done, uint64_t total)
{
	fprintf(stderr, "%s: %" PRIu64 " of %" PRIu64 " bytes\n",
	    (const char *)arg, done, total);
}

int
main(int argc, char *argv[])
{
	const struct mc_file *f;
	mc_client *c;
	mc_model *m;
	size_t i;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: example MODEL\n");
		return 2;
	}
	/* NULL: the socket named by MODELCACHE_SOCKET, or the default. */
	if ((rc = mc_connect(NULL, "example/1", &c)) < 0) {
		fprintf(stderr, "cannot connect to modelcached: %s\n",
		    strerror(-rc));
		return 1;
	}
	/* 0: wait as long as the pull takes. */
	if ((rc = mc_acquire(c, argv[1], 0, progress, argv[1], &m)) < 0) {
		fprintf(stderr, "cannot acquire '%s': %s%s%s\n", argv[1],
		    strerror(-rc), *mc_message(c) != '\0' ? ": " : "",
		    mc_message(c));
		mc_close(c);
		return 1;
	}
	/* The directory is relative to the store's root. */
	printf("%s %s\n", mc_model_dir(m), mc_model_commit(m));
	for (i = 0; i < mc_model_nfiles(m); i++) {
		f = mc_model_file(m, i);
		printf("%s %" PRIu64 " %s\n", f->path, f->size, f->sha256);
	}
	/* Done with the files: the lease can go (mc_close would end it). */
	if ((rc = mc_release(c, m)) < 0)
		fprintf(stderr, "cannot release '%s': %s\n", argv[1],
		    strerror(-rc));
	mc_model_free(m);
	mc_close(c);
	return rc < 0;
}
