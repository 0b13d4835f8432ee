/*
 * test_manifest: unit tests for src/manifest.c.
 *
 * A manifest read from disk is untrusted input, so most of this file is
 * rejections: a valid document is built with jansson, one field is broken,
 * and the decoder must refuse it with a reason and leave the manifest
 * empty.  The valid document itself is decoded first, so that each
 * rejection is known to come from the field that was broken.  Documents
 * jansson would not write (duplicate keys, an escaped NUL, bad syntax) are
 * given as text.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <jansson.h>

#include "unit.h"
#include "unit_store.h"
#include "fixture.h"

#include "digest.h"
#include "manifest.h"
#include "store.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

#define SHA1 "1111111111111111111111111111111111111111111111111111111111111111"
#define SHA2 "2222222222222222222222222222222222222222222222222222222222222222"
#define SHA3 "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
#define ETAG40 "0123456789abcdef0123456789abcdef01234567"
#define COMMIT "89abcdef0123456789abcdef0123456789abcdef"

/* --- helpers --- */

/* A manifest with three files, added out of order, and its origin. */
static void
sample(struct manifest *m)
{
	manifest_init(m);
	assert_int_equal(manifest_set_origin(m, REPO_MODEL, "org/name",
			     "file:///models/x"),
	    0);
	assert_int_equal(manifest_add_file(m, "weights/model.safetensors",
			     5000000000ULL, SHA3, SHA3),
	    0);
	assert_int_equal(manifest_add_file(m, "config.json", 665, SHA1, ETAG40),
	    0);
	assert_int_equal(manifest_add_file(m, "tokenizer.json", 0, SHA2,
			     ETAG40),
	    0);
}

static void
assert_manifest_equal(const struct manifest *a, const struct manifest *b)
{
	size_t i;

	assert_int_equal(a->type, b->type);
	assert_string_equal(a->repo, b->repo);
	assert_string_equal(a->source, b->source);
	assert_string_equal(a->commit, b->commit);
	assert_int_equal(a->nrevisions, b->nrevisions);
	for (i = 0; i < a->nrevisions; i++)
		assert_string_equal(a->revisions[i], b->revisions[i]);
	assert_int_equal(a->created, b->created);
	assert_int_equal(a->updated, b->updated);
	assert_int_equal(a->pinned, b->pinned);
	assert_string_equal(a->trust, b->trust);
	assert_int_equal(a->nfiles, b->nfiles);
	for (i = 0; i < a->nfiles; i++) {
		assert_string_equal(a->files[i].path, b->files[i].path);
		assert_int_equal(a->files[i].size, b->files[i].size);
		assert_string_equal(a->files[i].sha256, b->files[i].sha256);
		assert_string_equal(a->files[i].etag, b->files[i].etag);
	}
}

static void
assert_empty(const struct manifest *m)
{
	assert_null(m->repo);
	assert_null(m->source);
	assert_null(m->files);
	assert_null(m->revisions);
	assert_int_equal(m->nfiles, 0);
	assert_int_equal(m->nrevisions, 0);
	assert_string_equal(m->commit, "");
}

/* A valid document as a jansson object; the caller decrefs. */
static json_t *
doc_base(void)
{
	json_t *doc;

	doc = json_pack("{s:i, s:s, s:s, s:s, s:s, s:[s], s:I, s:I, s:b, s:s, "
			"s:[{s:s, s:I, s:s, s:s}, {s:s, s:I, s:s, s:s}]}",
	    "format", 1, "type", "model", "repo", "org/name", "source",
	    "file:///m", "commit", COMMIT, "revisions", "main", "created",
	    (json_int_t)1764180000, "updated", (json_int_t)1764180001, "pinned",
	    1, "trust", "tofu", "files", "path", "b/x.bin", "size",
	    (json_int_t)7, "sha256", SHA1, "etag", SHA1, "path", "a.json",
	    "size", (json_int_t)3, "sha256", SHA2, "etag", ETAG40);
	assert_non_null(doc);
	return doc;
}

/* The first file entry of a document. */
static json_t *
doc_file(json_t *doc, size_t i)
{
	json_t *f = json_array_get(json_object_get(doc, "files"), i);

	assert_non_null(f);
	return f;
}

static char *
doc_text(json_t *doc)
{
	char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);

	assert_non_null(text);
	return text;
}

/* Decodes text, which must be refused with a reason. */
static void
reject_text(const char *what, const char *text, size_t len)
{
	struct manifest m;
	const char *why = NULL;
	int rc;

	/* Decoding into a manifest with contents releases them. */
	sample(&m);
	rc = manifest_decode(&m, text, len, &why);
	if (rc != -EINVAL || why == NULL || *why == '\0')
		fail_msg("%s: got %d \"%s\" for %s", what, rc,
		    why != NULL ? why : "(null)", text);
	assert_empty(&m);
	manifest_release(&m);
}

/* Decodes a document, which must be refused; takes the reference. */
static void
reject_doc(const char *what, json_t *doc)
{
	char *text = doc_text(doc);

	reject_text(what, text, strlen(text));
	free(text);
	json_decref(doc);
}

/* Sets key in the first file entry of a fresh document and rejects it. */
static void
reject_file_field(const char *what, const char *key, json_t *value)
{
	json_t *doc = doc_base();

	assert_int_equal(json_object_set_new(doc_file(doc, 0), key, value), 0);
	reject_doc(what, doc);
}

/* --- building --- */

static void
test_init_release(void **state)
{
	struct manifest m;

	manifest_init(&m);
	assert_empty(&m);
	assert_string_equal(m.trust, "verified");
	assert_int_equal(m.pinned, 0);
	assert_int_equal(manifest_size(&m), 0);
	manifest_release(&m);
	assert_empty(&m);
	/* Released with contents, it is empty and reusable. */
	sample(&m);
	assert_int_equal(manifest_add_revision(&m, "main"), 0);
	manifest_release(&m);
	assert_empty(&m);
	assert_string_equal(m.trust, "verified");
	manifest_release(&m);
}

static void
test_set_origin(void **state)
{
	struct manifest m;

	manifest_init(&m);
	assert_int_equal(manifest_set_origin(&m, REPO_DATASET, "org/data",
			     "hf://x"),
	    0);
	assert_int_equal(m.type, REPO_DATASET);
	assert_string_equal(m.repo, "org/data");
	assert_string_equal(m.source, "hf://x");
	/* A bad repo id changes nothing. */
	assert_int_equal(manifest_set_origin(&m, REPO_MODEL, "../etc",
			     "file:///y"),
	    -EINVAL);
	assert_int_equal(manifest_set_origin(&m, REPO_MODEL, "a/b/c",
			     "file:///y"),
	    -EINVAL);
	assert_int_equal(m.type, REPO_DATASET);
	assert_string_equal(m.repo, "org/data");
	assert_string_equal(m.source, "hf://x");
	/* Replacing frees the old strings (the sanitizer build checks). */
	assert_int_equal(manifest_set_origin(&m, REPO_SPACE, "a/b", "s"), 0);
	assert_int_equal(m.type, REPO_SPACE);
	assert_string_equal(m.repo, "a/b");
	manifest_release(&m);
}

static void
test_add_file_and_sort(void **state)
{
	static const char *const bad_paths[] = { "", "/abs", "../x", "a/../b",
		"a/./b", "a//b", "a/", "a\\b", "a\x01z", "a\x7fz", "." };
	static const char *const bad_digests[] = { "",
		"11111111111111111111111111111111111111111111111111111111111111"
		"11"
		"1",
		"11111111111111111111111111111111111111111111111111111111111111"
		"1",
		"ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef01234567"
		"89",
		"g1111111111111111111111111111111111111111111111111111111111111"
		"11" };
	static const char *const bad_etags[] = { "", "abc",
		"0123456789abcdef0123456789abcdef0123456",
		"0123456789abcdef0123456789abcdef012345678",
		"0123456789ABCDEF0123456789abcdef01234567",
		"11111111111111111111111111111111111111111111111111111111111111"
		"1",
		SHA1 "1" };
	struct manifest m;
	size_t i;

	sample(&m);
	assert_int_equal(m.nfiles, 3);
	/* Kept in insertion order until sorted. */
	assert_string_equal(m.files[0].path, "weights/model.safetensors");
	assert_int_equal(manifest_sort(&m), 0);
	assert_string_equal(m.files[0].path, "config.json");
	assert_int_equal(m.files[0].size, 665);
	assert_string_equal(m.files[0].sha256, SHA1);
	assert_string_equal(m.files[0].etag, ETAG40);
	assert_string_equal(m.files[1].path, "tokenizer.json");
	assert_string_equal(m.files[2].path, "weights/model.safetensors");
	assert_int_equal(m.files[2].size, 5000000000ULL);
	assert_string_equal(m.files[2].etag, SHA3);
	assert_int_equal(manifest_size(&m), 5000000000ULL + 665);

	for (i = 0; i < NELEM(bad_paths); i++)
		assert_int_equal(manifest_add_file(&m, bad_paths[i], 1, SHA1,
				     ETAG40),
		    -EINVAL);
	for (i = 0; i < NELEM(bad_digests); i++)
		assert_int_equal(manifest_add_file(&m, "ok", 1, bad_digests[i],
				     ETAG40),
		    -EINVAL);
	for (i = 0; i < NELEM(bad_etags); i++)
		assert_int_equal(manifest_add_file(&m, "ok", 1, SHA1,
				     bad_etags[i]),
		    -EINVAL);
	assert_int_equal(m.nfiles, 3);

	/* Many files: the array grows past its first allocation. */
	for (i = 0; i < 100; i++) {
		char path[32];

		snprintf(path, sizeof(path), "many/%03zu", 99 - i);
		assert_int_equal(manifest_add_file(&m, path, i, SHA2, ETAG40),
		    0);
	}
	assert_int_equal(manifest_sort(&m), 0);
	/* "config.json" < "many/..." < "tokenizer.json" < "weights/...". */
	assert_string_equal(m.files[0].path, "config.json");
	assert_string_equal(m.files[1].path, "many/000");
	assert_int_equal(m.files[1].size, 99);
	assert_string_equal(m.files[100].path, "many/099");
	assert_int_equal(m.files[100].size, 0);
	assert_string_equal(m.files[101].path, "tokenizer.json");
	assert_string_equal(m.files[102].path, "weights/model.safetensors");

	/* Two files with one path. */
	assert_int_equal(manifest_add_file(&m, "config.json", 1, SHA2, ETAG40),
	    0);
	assert_int_equal(manifest_sort(&m), -EEXIST);
	manifest_release(&m);
}

static void
test_revisions(void **state)
{
	struct manifest m;
	char name[32];
	int i;

	manifest_init(&m);
	assert_int_equal(manifest_add_revision(&m, "main"), 0);
	assert_int_equal(manifest_add_revision(&m, "v1.0"), 0);
	assert_int_equal(manifest_add_revision(&m, "main"), 0);
	assert_int_equal(m.nrevisions, 2);
	assert_string_equal(m.revisions[0], "main");
	assert_string_equal(m.revisions[1], "v1.0");
	assert_true(manifest_has_revision(&m, "main"));
	assert_true(manifest_has_revision(&m, "v1.0"));
	assert_false(manifest_has_revision(&m, "mai"));
	assert_false(manifest_has_revision(&m, "v1"));

	/* A commit id is not a name: accepted, not recorded. */
	assert_int_equal(manifest_add_revision(&m, COMMIT), 0);
	assert_int_equal(m.nrevisions, 2);
	assert_false(manifest_has_revision(&m, COMMIT));

	assert_int_equal(manifest_add_revision(&m, "a..b"), -EINVAL);
	assert_int_equal(manifest_add_revision(&m, ""), -EINVAL);
	assert_int_equal(manifest_add_revision(&m, "x y"), -EINVAL);
	assert_int_equal(m.nrevisions, 2);

	/* Bounded. */
	for (i = 2; i < MANIFEST_REVISIONS_MAX; i++) {
		snprintf(name, sizeof(name), "r%d", i);
		assert_int_equal(manifest_add_revision(&m, name), 0);
	}
	assert_int_equal(m.nrevisions, MANIFEST_REVISIONS_MAX);
	assert_int_equal(manifest_add_revision(&m, "one-more"), -E2BIG);
	assert_int_equal(manifest_add_revision(&m, "main"), 0);
	assert_int_equal(m.nrevisions, MANIFEST_REVISIONS_MAX);
	manifest_release(&m);
}

/* --- derived commits --- */

/* The commit the documented construction gives, computed here. */
static void
expected_commit(const char *const *paths, const uint64_t *sizes,
    const char *const *shas, size_t n, char *out)
{
	char buf[4096], hex[DIGEST_HEX_MAX];
	size_t len = 0, i;
	int k;

	k = snprintf(buf, sizeof(buf), "modelcache-commit 1\n");
	len = (size_t)k;
	for (i = 0; i < n; i++) {
		k = snprintf(buf + len, sizeof(buf) - len, "%s%c%llu%c%s\n",
		    paths[i], '\0', (unsigned long long)sizes[i], '\0',
		    shas[i]);
		assert_true(k > 0 && (size_t)k < sizeof(buf) - len);
		len += (size_t)k;
	}
	/* 160 bits of the SHA-256 (see the report on manifest.h's wording). */
	assert_int_equal(digest_buf(DIGEST_SHA256, buf, len, hex), 0);
	memcpy(out, hex, 40);
	out[40] = '\0';
}

static void
test_derive_commit_known(void **state)
{
	static const char *const paths[] = { "config.json", "tokenizer.json",
		"weights/model.safetensors" };
	static const uint64_t sizes[] = { 665, 0, 5000000000ULL };
	static const char *const shas[] = { SHA1, SHA2, SHA3 };
	char want[41];
	struct manifest m;

	sample(&m);
	assert_int_equal(manifest_derive_commit(&m), 0);
	assert_int_equal(strlen(m.commit), 40);
	assert_true(ref_is_hex(m.commit, 40));
	expected_commit(paths, sizes, shas, 3, want);
	assert_string_equal(m.commit, want);
	/* Derived commits sort the files. */
	assert_string_equal(m.files[0].path, "config.json");
	manifest_release(&m);

	/* No files at all. */
	manifest_init(&m);
	assert_int_equal(manifest_derive_commit(&m), 0);
	expected_commit(NULL, NULL, NULL, 0, want);
	assert_string_equal(m.commit, want);
	manifest_release(&m);
}

/* Derives the commit of files given as (path, size, sha, etag) rows. */
struct row {
	const char *path;
	uint64_t size;
	const char *sha, *etag;
};

static void
commit_of(const struct row *rows, size_t n, char *out)
{
	struct manifest m;
	size_t i;

	manifest_init(&m);
	for (i = 0; i < n; i++)
		assert_int_equal(manifest_add_file(&m, rows[i].path,
				     rows[i].size, rows[i].sha, rows[i].etag),
		    0);
	assert_int_equal(manifest_derive_commit(&m), 0);
	assert_true(ref_is_hex(m.commit, 40));
	memcpy(out, m.commit, 41);
	manifest_release(&m);
}

static void
test_derive_commit_properties(void **state)
{
	static const struct row base[] = { { "a", 1, SHA1, ETAG40 },
		{ "b/c", 2, SHA2, ETAG40 }, { "d", 3, SHA3, SHA3 } };
	static const struct row reordered[] = { { "d", 3, SHA3, SHA3 },
		{ "a", 1, SHA1, ETAG40 }, { "b/c", 2, SHA2, ETAG40 } };
	static const struct row other_etag[] = { { "a", 1, SHA1, SHA1 },
		{ "b/c", 2, SHA2, SHA2 }, { "d", 3, SHA3, ETAG40 } };
	static const struct row changed[][3] = {
		{ { "a", 9, SHA1, ETAG40 }, { "b/c", 2, SHA2, ETAG40 },
		    { "d", 3, SHA3, SHA3 } },
		{ { "a", 1, SHA1, ETAG40 }, { "b/x", 2, SHA2, ETAG40 },
		    { "d", 3, SHA3, SHA3 } },
		{ { "a", 1, SHA1, ETAG40 }, { "b/c", 2, SHA2, ETAG40 },
		    { "d", 3, SHA2, SHA3 } },
		{ { "A", 1, SHA1, ETAG40 }, { "b/c", 2, SHA2, ETAG40 },
		    { "d", 3, SHA3, SHA3 } },
		/* The separators keep "a1",2 apart from "a",12. */
		{ { "a1", 2, SHA1, ETAG40 }, { "b/c", 2, SHA2, ETAG40 },
		    { "d", 3, SHA3, SHA3 } },
	};
	static const struct row a12[] = { { "a", 12, SHA1, ETAG40 },
		{ "b/c", 2, SHA2, ETAG40 }, { "d", 3, SHA3, SHA3 } };
	char c0[41], c1[41], c[NELEM(changed) + 2][41];
	size_t i, j;

	commit_of(base, 3, c0);
	commit_of(base, 3, c1);
	assert_string_equal(c0, c1);
	commit_of(reordered, 3, c1);
	assert_string_equal(c0, c1);
	/* Etags are not part of the identity. */
	commit_of(other_etag, 3, c1);
	assert_string_equal(c0, c1);
	/* Any change of path, size or digest, or a file less, changes it. */
	for (i = 0; i < NELEM(changed); i++)
		commit_of(changed[i], 3, c[i]);
	commit_of(a12, 3, c[NELEM(changed)]);
	commit_of(base, 2, c[NELEM(changed) + 1]);
	for (i = 0; i < NELEM(c); i++) {
		assert_string_not_equal(c[i], c0);
		for (j = 0; j < i; j++)
			assert_string_not_equal(c[i], c[j]);
	}
}

static void
test_derive_commit_duplicate(void **state)
{
	struct manifest m;

	sample(&m);
	assert_int_equal(manifest_add_file(&m, "config.json", 1, SHA2, ETAG40),
	    0);
	assert_int_equal(manifest_derive_commit(&m), -EEXIST);
	assert_string_equal(m.commit, "");
	manifest_release(&m);
}

/* --- paths in the store --- */

static void
test_rel_and_folder(void **state)
{
	char buf[STORE_PATH_MAX], small[20];
	struct manifest m;

	sample(&m);
	assert_int_equal(manifest_folder(&m, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "manifests/models--org--name");
	/* No commit yet: no path. */
	assert_int_equal(manifest_rel(&m, buf, sizeof(buf)), -EINVAL);
	memcpy(m.commit, COMMIT, 41);
	assert_int_equal(manifest_rel(&m, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "manifests/models--org--name/" COMMIT ".json");
	assert_int_equal(manifest_rel(&m, small, sizeof(small)), -ENAMETOOLONG);
	m.type = REPO_DATASET;
	assert_int_equal(manifest_rel(&m, buf, sizeof(buf)), 0);
	assert_string_equal(buf,
	    "manifests/datasets--org--name/" COMMIT ".json");
	/* An upper-case commit is not one. */
	memcpy(m.commit, "89ABCDEF0123456789abcdef0123456789abcdef", 41);
	assert_int_equal(manifest_rel(&m, buf, sizeof(buf)), -EINVAL);
	manifest_release(&m);
}

/* --- encoding and decoding --- */

static void
test_round_trip(void **state)
{
	struct manifest a, b;
	const char *why = NULL;
	char *t1, *t2;

	sample(&a);
	assert_int_equal(manifest_set_origin(&a, REPO_DATASET, "Org.1/Na_me-2",
			     "https://example.com/x?y=\"z\"\\"),
	    0);
	assert_int_equal(manifest_add_file(&a, "caf\xc3\xa9 dir/na\"me.bin", 1,
			     SHA2, SHA2),
	    0);
	assert_int_equal(manifest_add_revision(&a, "main"), 0);
	assert_int_equal(manifest_add_revision(&a, "refs/pr/1"), 0);
	assert_int_equal(manifest_derive_commit(&a), 0);
	a.created = 1764180000;
	a.updated = 5000000000LL;
	a.pinned = 1;
	snprintf(a.trust, sizeof(a.trust), "tofu");

	t1 = manifest_encode(&a);
	assert_non_null(t1);
	manifest_init(&b);
	assert_int_equal(manifest_decode(&b, t1, strlen(t1), &why), 0);
	assert_manifest_equal(&a, &b);
	/* Encoding the decoded manifest gives the same text. */
	t2 = manifest_encode(&b);
	assert_non_null(t2);
	assert_string_equal(t1, t2);
	free(t1);
	free(t2);

	/* The other values of each field survive too. */
	a.type = REPO_MODEL;
	a.pinned = 0;
	a.created = 0;
	a.updated = -1;
	snprintf(a.trust, sizeof(a.trust), "verified");
	t1 = manifest_encode(&a);
	assert_non_null(t1);
	assert_int_equal(manifest_decode(&b, t1, strlen(t1), &why), 0);
	assert_manifest_equal(&a, &b);
	free(t1);
	manifest_release(&a);
	manifest_release(&b);
}

/* The encoded text has the documented field names and values. */
static void
test_encode_fields(void **state)
{
	struct manifest m;
	json_error_t err;
	json_t *doc, *f;
	char *text;

	sample(&m);
	assert_int_equal(manifest_add_revision(&m, "main"), 0);
	assert_int_equal(manifest_derive_commit(&m), 0);
	text = manifest_encode(&m);
	assert_non_null(text);
	doc = json_loads(text, JSON_REJECT_DUPLICATES, &err);
	assert_non_null(doc);
	assert_int_equal(json_integer_value(json_object_get(doc, "format")), 1);
	assert_string_equal(json_string_value(json_object_get(doc, "type")),
	    "model");
	assert_string_equal(json_string_value(json_object_get(doc, "repo")),
	    "org/name");
	assert_string_equal(json_string_value(json_object_get(doc, "commit")),
	    m.commit);
	assert_string_equal(json_string_value(json_object_get(doc, "trust")),
	    "verified");
	assert_true(json_is_false(json_object_get(doc, "pinned")));
	assert_int_equal(json_array_size(json_object_get(doc, "files")), 3);
	f = doc_file(doc, 2);
	assert_string_equal(json_string_value(json_object_get(f, "path")),
	    "weights/model.safetensors");
	assert_int_equal(json_integer_value(json_object_get(f, "size")),
	    5000000000LL);
	assert_string_equal(json_string_value(json_object_get(f, "sha256")),
	    SHA3);
	assert_string_equal(json_string_value(json_object_get(f, "etag")),
	    SHA3);
	json_decref(doc);
	free(text);
	manifest_release(&m);
}

static void
test_decode_accepts(void **state)
{
	static const char *const optional[] = { "created", "updated", "pinned",
		"trust" };
	struct manifest m;
	const char *why;
	json_t *doc, *revs;
	char *text, *padded;
	size_t i, len;

	manifest_init(&m);
	/* The base document, so each rejection below has one cause. */
	doc = doc_base();
	text = doc_text(doc);
	why = NULL;
	assert_int_equal(manifest_decode(&m, text, strlen(text), &why), 0);
	assert_int_equal(m.type, REPO_MODEL);
	assert_string_equal(m.repo, "org/name");
	assert_string_equal(m.source, "file:///m");
	assert_string_equal(m.commit, COMMIT);
	assert_int_equal(m.nrevisions, 1);
	assert_string_equal(m.revisions[0], "main");
	assert_int_equal(m.created, 1764180000);
	assert_int_equal(m.updated, 1764180001);
	assert_int_equal(m.pinned, 1);
	assert_string_equal(m.trust, "tofu");
	/* Files come back sorted by path. */
	assert_int_equal(m.nfiles, 2);
	assert_string_equal(m.files[0].path, "a.json");
	assert_int_equal(m.files[0].size, 3);
	assert_string_equal(m.files[0].sha256, SHA2);
	assert_string_equal(m.files[0].etag, ETAG40);
	assert_string_equal(m.files[1].path, "b/x.bin");
	assert_string_equal(m.files[1].etag, SHA1);

	/* Only len bytes are read: what follows is not looked at. */
	len = strlen(text);
	padded = malloc(len + 16);
	assert_non_null(padded);
	memcpy(padded, text, len);
	memcpy(padded + len, "garbage{{{", 11);
	assert_int_equal(manifest_decode(&m, padded, len, &why), 0);
	assert_int_equal(m.nfiles, 2);
	free(padded);
	free(text);

	/* Optional fields take their defaults. */
	for (i = 0; i < NELEM(optional); i++)
		assert_int_equal(json_object_del(doc, optional[i]), 0);
	/* Unknown fields are ignored, for later formats. */
	assert_int_equal(json_object_set_new(doc, "future", json_string("x")),
	    0);
	assert_int_equal(json_object_set_new(doc_file(doc, 0), "extra",
			     json_true()),
	    0);
	/* Revisions are deduplicated and commit ids dropped. */
	revs = json_object_get(doc, "revisions");
	json_array_append_new(revs, json_string("main"));
	json_array_append_new(revs, json_string(COMMIT));
	json_array_append_new(revs, json_string("v2"));
	text = doc_text(doc);
	assert_int_equal(manifest_decode(&m, text, strlen(text), &why), 0);
	assert_int_equal(m.created, 0);
	assert_int_equal(m.updated, 0);
	assert_int_equal(m.pinned, 0);
	assert_string_equal(m.trust, "verified");
	assert_int_equal(m.nrevisions, 2);
	assert_string_equal(m.revisions[0], "main");
	assert_string_equal(m.revisions[1], "v2");
	assert_int_equal(m.nfiles, 2);
	free(text);
	json_decref(doc);
	manifest_release(&m);
}

static void
test_decode_rejects_text(void **state)
{
	static const char *const texts[] = {
		"",
		"not json",
		"{",
		"[]",
		"null",
		"{}",
		"\"format\"",
	};
	json_t *doc = doc_base();
	const char *dupkey;
	char *text, *dup;
	size_t i, len;

	for (i = 0; i < NELEM(texts); i++)
		reject_text("bad JSON", texts[i], strlen(texts[i]));

	/* A valid document with something after it. */
	text = doc_text(doc);
	len = strlen(text);
	dup = malloc(len + 64);
	assert_non_null(dup);
	snprintf(dup, len + 64, "%s x", text);
	reject_text("trailing garbage", dup, strlen(dup));
	/* Cut short. */
	reject_text("truncated", text, len - 1);
	reject_text("truncated", text, len / 2);

	/* A top-level key twice: which one counts would be a guess. */
	snprintf(dup, len + 64, "{\"repo\":\"org/other\",%s", text + 1);
	reject_text("duplicate key", dup, strlen(dup));
	free(dup);
	free(text);
	json_decref(doc);

	/* A key twice inside a file entry. */
	dupkey = "{\"format\":1,\"type\":\"model\",\"repo\":\"org/name\","
		 "\"source\":\"s\",\"commit\":\"" COMMIT "\",\"revisions\":[],"
		 "\"files\":[{\"path\":\"a\",\"path\":\"b\",\"size\":1,"
		 "\"sha256\":\"" SHA1 "\",\"etag\":\"" ETAG40 "\"}]}";
	reject_text("duplicate key in a file", dupkey, strlen(dupkey));
	/* The same document without the duplicate decodes. */
	{
		static const char good[] =
		    "{\"format\":1,\"type\":\"model\",\"repo\":\"org/name\","
		    "\"source\":\"s\",\"commit\":\"" COMMIT "\","
		    "\"revisions\":[],\"files\":[{\"path\":\"b\",\"size\":1,"
		    "\"sha256\":\"" SHA1 "\",\"etag\":\"" ETAG40 "\"}]}";
		static const char nul[] =
		    "{\"format\":1,\"type\":\"model\",\"repo\":\"org/name\","
		    "\"source\":\"s\",\"commit\":\"" COMMIT "\","
		    "\"revisions\":[],\"files\":[{\"path\":\"a\\u0000b\","
		    "\"size\":1,\"sha256\":\"" SHA1 "\",\"etag\":\"" ETAG40
		    "\"}]}";
		struct manifest m;
		const char *why = NULL;

		manifest_init(&m);
		assert_int_equal(manifest_decode(&m, good, strlen(good), &why),
		    0);
		assert_string_equal(m.files[0].path, "b");
		manifest_release(&m);
		/* An escaped NUL would cut the path short in C. */
		reject_text("escaped NUL in path", nul, strlen(nul));
	}
}

static void
test_decode_rejects_fields(void **state)
{
	static const char *const required[] = { "format", "type", "repo",
		"source", "commit", "revisions", "files" };
	static const char *const bad_commits[] = { "",
		"89abcdef0123456789abcdef0123456789abcde",
		"89abcdef0123456789abcdef0123456789abcdef0",
		"89ABCDEF0123456789abcdef0123456789abcdef",
		"89abcdef0123456789abcdef0123456789abcdeg", SHA1 };
	static const char *const bad_repos[] = { "", "../x", "a/b/c",
		"org/na--me", "org/name.git", "/org", "org/" };
	json_t *doc;
	size_t i;

	for (i = 0; i < NELEM(required); i++) {
		doc = doc_base();
		assert_int_equal(json_object_del(doc, required[i]), 0);
		reject_doc(required[i], doc);
	}

	doc = doc_base();
	json_object_set_new(doc, "format", json_integer(2));
	reject_doc("format 2", doc);
	doc = doc_base();
	json_object_set_new(doc, "format", json_integer(0));
	reject_doc("format 0", doc);
	doc = doc_base();
	json_object_set_new(doc, "format", json_string("1"));
	reject_doc("format as a string", doc);
	doc = doc_base();
	json_object_set_new(doc, "format", json_real(1.0));
	reject_doc("format as a real", doc);

	doc = doc_base();
	json_object_set_new(doc, "type", json_string("models"));
	reject_doc("bad type", doc);
	doc = doc_base();
	json_object_set_new(doc, "type", json_integer(0));
	reject_doc("type as a number", doc);

	for (i = 0; i < NELEM(bad_repos); i++) {
		doc = doc_base();
		json_object_set_new(doc, "repo", json_string(bad_repos[i]));
		reject_doc("bad repo", doc);
	}
	for (i = 0; i < NELEM(bad_commits); i++) {
		doc = doc_base();
		json_object_set_new(doc, "commit", json_string(bad_commits[i]));
		reject_doc("bad commit", doc);
	}
	doc = doc_base();
	json_object_set_new(doc, "source", json_null());
	reject_doc("source null", doc);
	doc = doc_base();
	json_object_set_new(doc, "trust", json_string("maybe"));
	reject_doc("bad trust", doc);
	doc = doc_base();
	json_object_set_new(doc, "pinned", json_string("yes"));
	reject_doc("pinned as a string", doc);
	doc = doc_base();
	json_object_set_new(doc, "created", json_string("today"));
	reject_doc("created as a string", doc);

	doc = doc_base();
	json_object_set_new(doc, "revisions", json_string("main"));
	reject_doc("revisions not an array", doc);
	doc = doc_base();
	json_array_append_new(json_object_get(doc, "revisions"),
	    json_integer(1));
	reject_doc("revision not a string", doc);
	doc = doc_base();
	json_array_append_new(json_object_get(doc, "revisions"),
	    json_string("a..b"));
	reject_doc("bad revision", doc);

	doc = doc_base();
	json_object_set_new(doc, "files", json_object());
	reject_doc("files not an array", doc);
	doc = doc_base();
	json_array_append_new(json_object_get(doc, "files"), json_integer(1));
	reject_doc("file not an object", doc);
}

static void
test_decode_rejects_files(void **state)
{
	static const char *const keys[] = { "path", "size", "sha256", "etag" };
	static const char *const bad_paths[] = { "", "..", "../x", "a/../b",
		"a/..", "./a", "a//b", "a/", "/abs", "/etc/passwd", "a\\b",
		"a\x01z", "a\nb", "a\x1fz", "a\x7fz" };
	static const char *const bad_shas[] = { "",
		"11111111111111111111111111111111111111111111111111111111111111"
		"1",
		SHA1 "1",
		"ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef01234567"
		"89",
		ETAG40 };
	static const char *const bad_etags[] = { "",
		"0123456789abcdef0123456789abcdef0123456",
		"0123456789abcdef0123456789abcdef012345678",
		"0123456789ABCDEF0123456789abcdef01234567",
		"11111111111111111111111111111111111111111111111111111111111111"
		"1",
		SHA1 "1" };
	json_t *doc, *files;
	size_t i;

	for (i = 0; i < NELEM(keys); i++) {
		doc = doc_base();
		assert_int_equal(json_object_del(doc_file(doc, 1), keys[i]), 0);
		reject_doc(keys[i], doc);
	}
	for (i = 0; i < NELEM(bad_paths); i++)
		reject_file_field("bad path", "path",
		    json_string(bad_paths[i]));
	/* A NUL inside the string, as jansson writes it: "a\u0000b". */
	reject_file_field("NUL in path", "path", json_stringn("a\0b", 3));
	for (i = 0; i < NELEM(bad_shas); i++)
		reject_file_field("bad sha256", "sha256",
		    json_string(bad_shas[i]));
	for (i = 0; i < NELEM(bad_etags); i++)
		reject_file_field("bad etag", "etag",
		    json_string(bad_etags[i]));
	reject_file_field("negative size", "size", json_integer(-1));
	reject_file_field("size as a string", "size", json_string("1"));
	reject_file_field("size as a real", "size", json_real(1.5));
	reject_file_field("path as a number", "path", json_integer(1));

	/* Two entries with one path. */
	doc = doc_base();
	files = json_object_get(doc, "files");
	json_array_append(files, doc_file(doc, 0));
	reject_doc("duplicate path", doc);
	doc = doc_base();
	json_object_set_new(doc_file(doc, 1), "path", json_string("b/x.bin"));
	reject_doc("duplicate path", doc);
}

/* --- through a store --- */

/*
 * A store in a fresh temporary directory, made before each test and
 * removed after it by cmocka, even when the test fails.
 */
static int
fx_stat(const struct unit_fixture *fx, const char *rel, struct stat *st)
{
	char path[4200];
	int n = snprintf(path, sizeof(path), "%s/%s", fx->dir, rel);

	assert_true(n > 0 && (size_t)n < sizeof(path));
	return lstat(path, st);
}

static void
test_save_load(void **state)
{
	char rel[STORE_PATH_MAX];
	struct manifest a, b;
	struct unit_fixture *fx = *state;
	const char *why;
	struct stat st;

	sample(&a);
	/* Without a commit there is nowhere to save it. */
	assert_int_equal(manifest_save(&fx->store, &a), -EINVAL);
	assert_int_equal(manifest_add_revision(&a, "main"), 0);
	assert_int_equal(manifest_derive_commit(&a), 0);
	a.created = 10;
	a.updated = 20;
	assert_int_equal(manifest_save(&fx->store, &a), 0);
	assert_int_equal(manifest_rel(&a, rel, sizeof(rel)), 0);
	assert_int_equal(fx_stat(fx, rel, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0444);
	assert_int_equal(fixture_count(fx->dir, "tmp"), 0);

	manifest_init(&b);
	why = "unset";
	assert_int_equal(manifest_load(&fx->store, rel, &b, &why), 0);
	assert_manifest_equal(&a, &b);

	/* Saving again replaces the read-only file. */
	a.updated = 30;
	assert_int_equal(manifest_add_revision(&a, "v2"), 0);
	assert_int_equal(manifest_save(&fx->store, &a), 0);
	assert_int_equal(manifest_load(&fx->store, rel, &b, &why), 0);
	assert_int_equal(b.updated, 30);
	assert_true(manifest_has_revision(&b, "v2"));
	assert_int_equal(fixture_count(fx->dir, "manifests/models--org--name"),
	    1);
	assert_int_equal(fixture_count(fx->dir, "tmp"), 0);

	/* Missing, and damaged on disk. */
	assert_int_equal(manifest_load(&fx->store,
			     "manifests/models--org--name/nope.json", &b, &why),
	    -ENOENT);
	assert_int_equal(store_write_atomic(&fx->store,
			     "manifests/models--org--name/bad.json", "{\"fo", 4,
			     0444),
	    0);
	why = NULL;
	assert_int_equal(manifest_load(&fx->store,
			     "manifests/models--org--name/bad.json", &b, &why),
	    -EINVAL);
	assert_non_null(why);
	assert_empty(&b);
	manifest_release(&a);
	manifest_release(&b);
}

struct seen {
	char rel[8][STORE_PATH_MAX];
	int n, stop_after;
};

static int
seen_fn(const char *rel, void *arg)
{
	struct seen *s = arg;

	assert_true(s->n < 8);
	snprintf(s->rel[s->n], STORE_PATH_MAX, "%s", rel);
	s->n++;
	return s->n == s->stop_after ? -ECANCELED : 0;
}

static int
seen_count(const struct seen *s, const char *rel)
{
	int i, hits = 0;

	for (i = 0; i < s->n; i++)
		hits += strcmp(s->rel[i], rel) == 0;
	return hits;
}

static void
save_variant(struct unit_fixture *fx, enum repo_type type, const char *repo,
    uint64_t size, char *rel)
{
	struct manifest m;

	manifest_init(&m);
	assert_int_equal(manifest_set_origin(&m, type, repo, "file:///x"), 0);
	assert_int_equal(manifest_add_file(&m, "f", size, SHA1, ETAG40), 0);
	assert_int_equal(manifest_derive_commit(&m), 0);
	assert_int_equal(manifest_save(&fx->store, &m), 0);
	assert_int_equal(manifest_rel(&m, rel, STORE_PATH_MAX), 0);
	manifest_release(&m);
}

static void
test_each(void **state)
{
	char rel[3][STORE_PATH_MAX];
	struct unit_fixture *fx = *state;
	struct seen s;
	int i;

	memset(&s, 0, sizeof(s));
	assert_int_equal(manifest_each(&fx->store, seen_fn, &s), 0);
	assert_int_equal(s.n, 0);

	save_variant(fx, REPO_MODEL, "org/a", 1, rel[0]);
	save_variant(fx, REPO_MODEL, "org/a", 2, rel[1]);
	save_variant(fx, REPO_DATASET, "org/b", 1, rel[2]);
	assert_string_not_equal(rel[0], rel[1]);
	/* Not manifests: other names, hidden files, stray files. */
	unit_write(fx->dir, "manifests/models--org--a/notes.txt", "x", 1);
	unit_write(fx->dir, "manifests/models--org--a/.hidden.json", "x", 1);
	unit_write(fx->dir, "manifests/models--org--a/x.json.part", "x", 1);
	unit_write(fx->dir, "manifests/stray.json", "x", 1);

	memset(&s, 0, sizeof(s));
	assert_int_equal(manifest_each(&fx->store, seen_fn, &s), 0);
	assert_int_equal(s.n, 3);
	for (i = 0; i < 3; i++)
		assert_int_equal(seen_count(&s, rel[i]), 1);

	/* A non-zero return stops the walk and is returned. */
	memset(&s, 0, sizeof(s));
	s.stop_after = 1;
	assert_int_equal(manifest_each(&fx->store, seen_fn, &s), -ECANCELED);
	assert_int_equal(s.n, 1);
}

static void
test_unlink(void **state)
{
	char rel1[STORE_PATH_MAX], rel2[STORE_PATH_MAX];
	struct manifest m;
	struct unit_fixture *fx = *state;
	const char *why;
	struct stat st;

	save_variant(fx, REPO_MODEL, "org/a", 1, rel1);
	save_variant(fx, REPO_MODEL, "org/a", 2, rel2);

	/* One of two goes; the folder stays for the other. */
	manifest_init(&m);
	assert_int_equal(manifest_load(&fx->store, rel1, &m, &why), 0);
	assert_int_equal(manifest_unlink(&fx->store, &m), 0);
	assert_int_equal(fx_stat(fx, rel1, &st), -1);
	assert_int_equal(fx_stat(fx, rel2, &st), 0);
	assert_int_equal(fixture_count(fx->dir, "manifests/models--org--a"), 1);
	/* Already gone is not an error. */
	assert_int_equal(manifest_unlink(&fx->store, &m), 0);

	/* The last one takes its folder with it. */
	assert_int_equal(manifest_load(&fx->store, rel2, &m, &why), 0);
	assert_int_equal(manifest_unlink(&fx->store, &m), 0);
	assert_int_equal(fx_stat(fx, rel2, &st), -1);
	assert_int_equal(fx_stat(fx, "manifests/models--org--a", &st), -1);
	assert_int_equal(fixture_count(fx->dir, "manifests"), 0);
	manifest_release(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_release),
		cmocka_unit_test(test_set_origin),
		cmocka_unit_test(test_add_file_and_sort),
		cmocka_unit_test(test_revisions),
		cmocka_unit_test(test_derive_commit_known),
		cmocka_unit_test(test_derive_commit_properties),
		cmocka_unit_test(test_derive_commit_duplicate),
		cmocka_unit_test(test_rel_and_folder),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_encode_fields),
		cmocka_unit_test(test_decode_accepts),
		cmocka_unit_test(test_decode_rejects_text),
		cmocka_unit_test(test_decode_rejects_fields),
		cmocka_unit_test(test_decode_rejects_files),
		cmocka_unit_test_setup_teardown(test_save_load,
		    unit_fixture_setup, unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_each, unit_fixture_setup,
		    unit_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_unlink, unit_fixture_setup,
		    unit_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
