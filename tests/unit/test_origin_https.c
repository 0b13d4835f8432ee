/*
 * test_origin_https: unit tests for src/origin_https.c (https:// URLs as
 * the files of one model) through pull_ref.c, on a real libuv loop
 * against the test origin (tests/origin/hf_origin.py) serving TLS on an
 * ephemeral loopback port with a certificate of a CA made for the test
 * (tests/lib/nginx.sh's make_ca), trusted through the fetch engine's
 * ca_file only.
 *
 * URLs with their #sha256= make a verified model named as asked, each
 * file under the last component of its URL's path (a redirect followed to
 * learn the size); a URL without one is taken on trust ("tofu"); a digest
 * the bytes do not match, a file the origin does not have, and two URLs
 * of the same file name end the operation with the error that names them
 * and publish nothing.  Exits 77 (skipped) without python3 or openssl.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "unit_origin.h"
#include "unit_store.h"
#include "fixture.h"
#include "unit_pull.h"

#include "pull_ref.h"

#define MAXURLS 4

struct tls {
	char ca[UNIT_PATH], cert[UNIT_PATH], key[UNIT_PATH];
	struct fetch fetch; /* trusts ca */
};

static void
count(void *arg)
{
	(*(int *)arg)++;
}

/* A CA and a certificate for 127.0.0.1 (make_ca), the origin on TLS. */
static void
start_tls(struct fx *fx, struct tls *t)
{
	char cmd[3 * UNIT_PATH], script[UNIT_PATH];
	struct fetch_opts fo;

	unit_origin_script(script, sizeof(script));
	/* tests/origin/hf_origin.py -> tests/lib/nginx.sh */
	unit_fmt(script + strlen(script) - strlen("origin/hf_origin.py"),
	    sizeof(script) - strlen(script) + strlen("origin/hf_origin.py"),
	    "lib/nginx.sh");
	unit_fmt(cmd, sizeof(cmd), ". '%s' && make_ca '%s/ca'", script,
	    fx->f.dir);
	if (system(cmd) != 0)
		fail_msg("make_ca failed: see %s/ca/openssl.log", fx->f.dir);
	unit_fmt(t->ca, sizeof(t->ca), "%s/ca/ca.crt", fx->f.dir);
	unit_fmt(t->cert, sizeof(t->cert), "%s/ca/server.crt", fx->f.dir);
	unit_fmt(t->key, sizeof(t->key), "%s/ca/server.key", fx->f.dir);
	start(fx, "--tls-cert", t->cert, "--tls-key", t->key, NULL);
	fx->origin.ca_file = t->ca;
	memset(&fo, 0, sizeof(fo));
	fo.ca_file = t->ca;
	assert_int_equal(fetch_init(&t->fetch, &fx->loop, &fo), 0);
}

static void
stop_tls(struct fx *fx, struct tls *t)
{
	fetch_close(&t->fetch);
	uv_run(&fx->loop, UV_RUN_NOWAIT);
}

/*
 * The URL of file i at the origin (main), with #sha256= of sha when not
 * NULL, and "?tail" when tail is not NULL.
 */
static void
url_of(struct fx *fx, size_t i, const char *sha, const char *tail, char *buf,
    size_t len)
{
	unit_fmt(buf, len, "%s/org/tiny/resolve/main/%s%s%s%s%s",
	    fx->origin.url, fx->files[i].path, tail != NULL ? "?" : "",
	    tail != NULL ? tail : "", sha != NULL ? "#sha256=" : "",
	    sha != NULL ? sha : "");
}

/* Pulls the NULL-ended URLs as the model name (NULL: after the URL). */
static void
pull_urls(struct fx *fx, struct tls *t, const char *name,
    const char *const *urls, struct pull_ref_result *r)
{
	struct ref refs[MAXURLS];
	struct pull_ref_opts o;
	const char *why;
	size_t n, i;
	int done = 0;

	for (n = 0; urls[n] != NULL; n++) {
		assert_true(n < MAXURLS);
		ref_init(&refs[n]);
		if (ref_parse(&refs[n], urls[n], &why) < 0)
			fail_msg("%s: %s", urls[n], why);
		assert_int_equal(refs[n].kind, REF_HTTPS);
	}
	memset(&o, 0, sizeof(o));
	o.name = name;
	o.pull.chunk = CHUNK;
	if (pull_ref_start(&fx->loop, &fx->f.store, &fx->f.index, &t->fetch,
		refs, n, &o, r, count, &done, NULL) < 0)
		done = 1; /* refused at once: done() never comes */
	while (done == 0)
		uv_run(&fx->loop, UV_RUN_ONCE);
	uv_run(&fx->loop, UV_RUN_NOWAIT);
	assert_int_equal(done, 1);
	for (i = 0; i < n; i++)
		ref_release(&refs[i]);
}

/* No row, manifest or hub folder of org/web; no claim; no blob. */
static void
assert_web_unpublished(struct fx *fx)
{
	struct fixture_snaps s;

	fixture_snaps(&fx->f, REPO_MODEL, NULL, NULL, &s);
	assert_int_equal(s.n, 0);
	assert_false(fixture_exists(&fx->f, "manifests/models--org--web"));
	assert_false(fixture_exists(&fx->f, "hub/models--org--web"));
	assert_int_equal(fixture_count(fx->f.root, "claims"), 0);
	assert_int_equal(fixture_blob_count(&fx->f), 0);
}

static void
test_verified_and_tofu(void **state)
{
	struct fx *fx = *state;
	char a[UNIT_PATH], b[UNIT_PATH], c[UNIT_PATH];
	const char *urls[3] = { a, b, NULL }, *one[2] = { c, NULL };
	struct pull_ref_result r;
	struct fixture_snaps s;
	struct tls t;

	start_tls(fx, &t);
	url_of(fx, 0, fx->files[0].sha256, NULL, a, sizeof(a));
	url_of(fx, BIG, fx->files[BIG].sha256, NULL, b, sizeof(b));
	pull_urls(fx, &t, "org/web", urls, &r);
	if (r.pull.error != PULL_OK)
		fail_msg("pull: %s", r.pull.message);
	assert_string_equal(r.repo, "org/web");
	assert_string_equal(r.revision, "main");
	assert_string_equal(r.trust, "verified");
	assert_int_equal(r.nfiles, 2);
	assert_true(ref_is_hex(r.commit, DIGEST_SHA1_HEX));
	assert_int_equal(r.pull.bytes_origin, fx->files[0].size + BIG_SIZE);
	assert_blob(fx, &fx->files[0]);
	assert_blob(fx, &fx->files[BIG]);
	fixture_snaps(&fx->f, REPO_MODEL, "org/web", NULL, &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.v[0].commit, r.commit);
	assert_string_equal(s.v[0].trust, "verified");
	assert_string_equal(s.v[0].refs, "main");
	assert_int_equal(s.v[0].nfiles, 2);

	/* Without a digest: whatever arrives, taken on trust. */
	url_of(fx, 1, NULL, NULL, c, sizeof(c));
	pull_urls(fx, &t, "org/tofu", one, &r);
	if (r.pull.error != PULL_OK)
		fail_msg("pull: %s", r.pull.message);
	assert_string_equal(r.trust, "tofu");
	assert_int_equal(r.nfiles, 1);
	assert_blob(fx, &fx->files[1]);
	fixture_snaps(&fx->f, REPO_MODEL, "org/tofu", NULL, &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.v[0].trust, "tofu");
	assert_int_equal(fixture_count(fx->f.root, "tmp"), 0);
	assert_int_equal(fixture_count(fx->f.root, "claims"), 0);
	stop_tls(fx, &t);
}

static void
test_refused(void **state)
{
	struct fx *fx = *state;
	char a[UNIT_PATH], b[UNIT_PATH];
	const char *urls[3] = { a, b, NULL };
	struct pull_ref_result r;
	struct tls t;

	start_tls(fx, &t);
	/* The bytes are not those of the digest. */
	url_of(fx, 0, fx->files[1].sha256, NULL, a, sizeof(a));
	urls[1] = NULL;
	pull_urls(fx, &t, "org/web", urls, &r);
	assert_int_equal(r.pull.error, PULL_INTEGRITY);
	assert_non_null(strstr(r.pull.message, "config.json"));
	assert_web_unpublished(fx);

	/* A file the origin does not have. */
	unit_fmt(a, sizeof(a), "%s/org/tiny/resolve/main/nope.bin",
	    fx->origin.url);
	pull_urls(fx, &t, "org/web", urls, &r);
	assert_int_equal(r.pull.error, PULL_NOT_FOUND);
	assert_true(r.pull.message[0] != '\0');
	assert_web_unpublished(fx);

	/* Two URLs, one file name. */
	url_of(fx, 0, fx->files[0].sha256, NULL, a, sizeof(a));
	url_of(fx, 0, fx->files[0].sha256, "v=2", b, sizeof(b));
	urls[1] = b;
	pull_urls(fx, &t, "org/web", urls, &r);
	assert_int_not_equal(r.pull.error, PULL_OK);
	assert_non_null(strstr(r.pull.message, "config.json"));
	assert_web_unpublished(fx);
	stop_tls(fx, &t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_verified_and_tofu, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	};
	const char *why = unit_origin_missing();

	if (why == NULL && system("command -v openssl >/dev/null 2>&1") != 0)
		why = "openssl is not on PATH (the test CA needs it)";
	if (why != NULL) {
		printf("SKIP: %s\n", why);
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
