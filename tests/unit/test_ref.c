/*
 * test_ref: unit tests for src/ref.c.
 *
 * Every accepted reference form is checked field by field and through its
 * canonical text; every class of rejection in the repo id, revision and
 * path checks is checked with the phrase it must give, because those
 * phrases reach users as error messages.  Tables keep the cases readable:
 * one row per input.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ref.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEX64_UPPER \
	"0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
#define COMMIT40 "0123456789abcdef0123456789abcdef01234567"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* A string of n copies of c, freed by the caller. */
static char *
repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* s[0..len) with control and non-ASCII bytes as \xHH, for messages. */
static const char *
show(const char *s, size_t len, char *buf, size_t buflen)
{
	size_t i, n = 0;

	for (i = 0; i < len && n + 5 < buflen; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f)
			buf[n++] = (char)c;
		else
			n +=
			    (size_t)snprintf(buf + n, buflen - n, "\\x%02x", c);
	}
	buf[n] = '\0';
	return buf;
}

/*
 * Fails, naming the input, unless a check returned want_rc and set why to
 * want_why (NULL: left untouched).
 */
static void
expect(const char *what, const char *text, size_t len, int rc, const char *why,
    int want_rc, const char *want_why)
{
	char buf[256];

	if (rc == want_rc &&
	    (want_why == NULL ? why == NULL
			      : why != NULL && strcmp(why, want_why) == 0))
		return;
	fail_msg("%s(\"%s\"): got %d \"%s\", want %d \"%s\"", what,
	    text != NULL ? show(text, len, buf, sizeof(buf)) : "(null)", rc,
	    why != NULL ? why : "(null)", want_rc,
	    want_why != NULL ? want_why : "(null)");
}

/* --- ref_parse: accepted forms --- */

struct accept_case {
	const char *text;
	enum ref_kind kind;
	enum repo_type type;
	const char *repo;
	const char *revision;
	const char *url;
	const char *sha256;
	const char *canonical;
};

static const struct accept_case accepted[] = {
	{ "hf://org/name", REF_HF, REPO_MODEL, "org/name", NULL, NULL, "",
	    "hf://org/name@main" },
	{ "hf://org/name@v1.0", REF_HF, REPO_MODEL, "org/name", "v1.0", NULL,
	    "", "hf://org/name@v1.0" },
	{ "hf://org/name@refs/pr/1", REF_HF, REPO_MODEL, "org/name",
	    "refs/pr/1", NULL, "", "hf://org/name@refs/pr/1" },
	{ "hf://org/name@" COMMIT40, REF_HF, REPO_MODEL, "org/name", COMMIT40,
	    NULL, "", "hf://org/name@" COMMIT40 },
	{ "hf://gpt2", REF_HF, REPO_MODEL, "gpt2", NULL, NULL, "",
	    "hf://gpt2@main" },
	{ "hf://Org_1/Na.me-2", REF_HF, REPO_MODEL, "Org_1/Na.me-2", NULL, NULL,
	    "", "hf://Org_1/Na.me-2@main" },
	{ "org/name", REF_HF, REPO_MODEL, "org/name", NULL, NULL, "",
	    "hf://org/name@main" },
	{ "org/name@dev", REF_HF, REPO_MODEL, "org/name", "dev", NULL, "",
	    "hf://org/name@dev" },
	{ "gpt2@main", REF_HF, REPO_MODEL, "gpt2", "main", NULL, "",
	    "hf://gpt2@main" },
	{ "hf://datasets/org/name", REF_HF, REPO_DATASET, "org/name", NULL,
	    NULL, "", "hf://datasets/org/name@main" },
	{ "hf://datasets/org/name@v2", REF_HF, REPO_DATASET, "org/name", "v2",
	    NULL, "", "hf://datasets/org/name@v2" },
	{ "hf://datasets/squad", REF_HF, REPO_DATASET, "squad", NULL, NULL, "",
	    "hf://datasets/squad@main" },
	{ "hf://spaces/a/b", REF_HF, REPO_SPACE, "a/b", NULL, NULL, "",
	    "hf://spaces/a/b@main" },
	{ "datasets/org/name", REF_HF, REPO_DATASET, "org/name", NULL, NULL, "",
	    "hf://datasets/org/name@main" },
	{ "https://example.com/m/model.gguf#sha256=" HEX64, REF_HTTPS,
	    REPO_MODEL, NULL, NULL, "https://example.com/m/model.gguf", HEX64,
	    "https://example.com/m/model.gguf#sha256=" HEX64 },
	{ "https://example.com/f#sha256=" HEX64_UPPER, REF_HTTPS, REPO_MODEL,
	    NULL, NULL, "https://example.com/f", HEX64,
	    "https://example.com/f#sha256=" HEX64 },
	{ "https://Example.COM:8443/a/b.bin?x=1&y=%2F#sha256=" HEX64, REF_HTTPS,
	    REPO_MODEL, NULL, NULL,
	    "https://example.com:8443/a/b.bin?x=1&y=%2F", HEX64,
	    "https://example.com:8443/a/b.bin?x=1&y=%2F#sha256=" HEX64 },
	{ "https://Example.com/a/f.gguf", REF_HTTPS, REPO_MODEL, NULL, NULL,
	    "https://example.com/a/f.gguf", "",
	    "https://example.com/a/f.gguf" },
	{ "https://[::1]:8080/f#sha256=" HEX64, REF_HTTPS, REPO_MODEL, NULL,
	    NULL, "https://[::1]:8080/f", HEX64,
	    "https://[::1]:8080/f#sha256=" HEX64 },
	{ "s3://my-bucket/models/llama", REF_S3, REPO_MODEL, NULL, NULL,
	    "my-bucket/models/llama", "", "s3://my-bucket/models/llama" },
	{ "s3://my-bucket/models/llama/", REF_S3, REPO_MODEL, NULL, NULL,
	    "my-bucket/models/llama", "", "s3://my-bucket/models/llama" },
	{ "s3://b.c-1", REF_S3, REPO_MODEL, NULL, NULL, "b.c-1", "",
	    "s3://b.c-1" },
	{ "s3://bucket/", REF_S3, REPO_MODEL, NULL, NULL, "bucket", "",
	    "s3://bucket" },
	{ "oci://registry.example.com/org/model:v1", REF_OCI, REPO_MODEL, NULL,
	    "v1", "registry.example.com/org/model", "",
	    "oci://registry.example.com/org/model:v1" },
	{ "oci://localhost:5000/model@sha256:" HEX64_UPPER, REF_OCI, REPO_MODEL,
	    NULL, NULL, "localhost:5000/model", HEX64,
	    "oci://localhost:5000/model@sha256:" HEX64 },
	{ "oci://Reg.IO/a/b__c.d-e--f:Tag_1.x-y@sha256:" HEX64, REF_OCI,
	    REPO_MODEL, NULL, "Tag_1.x-y", "reg.io/a/b__c.d-e--f", HEX64,
	    "oci://reg.io/a/b__c.d-e--f:Tag_1.x-y@sha256:" HEX64 },
	{ "file:///models/llama", REF_FILE, REPO_MODEL, NULL, NULL,
	    "/models/llama", "", "file:///models/llama" },
	{ "file:///models/llama/", REF_FILE, REPO_MODEL, NULL, NULL,
	    "/models/llama", "", "file:///models/llama" },
	{ "file:///", REF_FILE, REPO_MODEL, NULL, NULL, "/", "", "file:///" },
	{ "file:////a//b/./c/", REF_FILE, REPO_MODEL, NULL, NULL, "/a/b/c", "",
	    "file:///a/b/c" },
	{ "file:///a/.../b", REF_FILE, REPO_MODEL, NULL, NULL, "/a/.../b", "",
	    "file:///a/.../b" },
};

static void
assert_str_or_null(const char *got, const char *want)
{
	if (want == NULL)
		assert_null(got);
	else {
		assert_non_null(got);
		assert_string_equal(got, want);
	}
}

static void
test_parse_accepted(void **state)
{
	const char *why;
	struct ref ref;
	char *canon;
	size_t i;
	int rc;

	ref_init(&ref);
	for (i = 0; i < NELEM(accepted); i++) {
		const struct accept_case *c = &accepted[i];

		why = NULL;
		rc = ref_parse(&ref, c->text, &why);
		expect("ref_parse", c->text, strlen(c->text), rc, why, 0, NULL);
		assert_int_equal(ref.kind, c->kind);
		if (c->kind == REF_HF)
			assert_int_equal(ref.type, c->type);
		assert_str_or_null(ref.repo, c->repo);
		assert_str_or_null(ref.revision, c->revision);
		assert_str_or_null(ref.url, c->url);
		assert_string_equal(ref.sha256, c->sha256);
		canon = ref_canonical(&ref);
		assert_non_null(canon);
		assert_string_equal(canon, c->canonical);
		free(canon);
	}
	ref_release(&ref);
}

/* The canonical text parses back to the same canonical text. */
static void
test_canonical_round_trip(void **state)
{
	struct ref a, b;
	const char *why = NULL;
	char *ca, *cb;
	size_t i;

	ref_init(&a);
	ref_init(&b);
	for (i = 0; i < NELEM(accepted); i++) {
		assert_int_equal(ref_parse(&a, accepted[i].text, &why), 0);
		ca = ref_canonical(&a);
		assert_non_null(ca);
		assert_int_equal(ref_parse(&b, ca, &why), 0);
		cb = ref_canonical(&b);
		assert_non_null(cb);
		assert_string_equal(ca, cb);
		free(ca);
		free(cb);
	}
	ref_release(&a);
	ref_release(&b);
}

/* --- ref_parse: rejections --- */

struct reject_case {
	const char *text;
	const char *why;
};

static const struct reject_case rejected[] = {
	{ "", "empty reference" },
	{ "hf://org/name ", "whitespace or control character in reference" },
	{ " org/name", "whitespace or control character in reference" },
	{ "hf://org/\tname", "whitespace or control character in reference" },
	{ "hf://org/name\n", "whitespace or control character in reference" },
	{ "hf://org/\x01name", "whitespace or control character in reference" },
	{ "hf://org/\x1fname", "whitespace or control character in reference" },
	{ "hf://org/name\x7f", "whitespace or control character in reference" },
	{ "http://example.com/f#sha256=" HEX64,
	    "plain http is not allowed, use https" },
	{ "ftp://example.com/f", "unknown reference scheme" },
	{ "HF://org/name", "unknown reference scheme" },
	{ "hf://", "empty repo id" },
	{ "hf://datasets/", "empty repo id" },
	{ "hf://org/name@", "empty revision" },
	{ "hf://a/b/c", "repo id has more than two parts" },
	{ "hf://org/na--me", "repo id contains '--' or '..'" },
	{ "hf://org/name.git", "repo id ends in .git" },
	{ "hf://../etc", "repo id part starts or ends with '.' or '-'" },
	{ "hf:///etc", "empty part in repo id" },
	{ "hf:///etc/passwd", "repo id has more than two parts" },
	{ "org/", "empty part in repo id" },
	{ "hf://org/name@a..b", "revision contains '..', '//' or '@{'" },
	{ "hf://org/name@main:x", "invalid character in revision" },
	{ "hf://datasets/org/name@/x",
	    "revision starts or ends with '/' or '.'" },
	{ "/abs/dir", "a local directory needs file:///" },
	{ "./dir", "a local directory needs file:///" },
	{ "../dir", "a local directory needs file:///" },
	{ "..", "repo id part starts or ends with '.' or '-'" },
	{ "org/näme", "invalid character in repo id" },
	{ "https://example.com/f#md5=abc",
	    "unsupported URL fragment, expected #sha256=" },
	{ "https://example.com/f#sha256=abc",
	    "sha256 digest must be 64 hex digits" },
	{ "https://example.com/f#sha256=" HEX64 "0",
	    "sha256 digest must be 64 hex digits" },
	{ "https://example.com/f#sha256="
	  "g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	    "sha256 digest must be 64 hex digits" },
	{ "https://example.com/f#sha256=" HEX64 "#x",
	    "sha256 digest must be 64 hex digits" },
	{ "https://user:pw@example.com/f#sha256=" HEX64,
	    "credentials in URL are not allowed" },
	{ "https:///f#sha256=" HEX64, "URL has no host" },
	{ "https://:443/f#sha256=" HEX64, "URL has no host" },
	{ "https://example.com#sha256=" HEX64, "URL has no file path" },
	{ "https://example.com/#sha256=" HEX64, "URL has no file path" },
	{ "https://example.com?x#sha256=" HEX64, "URL has no file path" },
	{ "https://ex_ample.com/f#sha256=" HEX64, "invalid character in host" },
	{ "https://[::1/f#sha256=" HEX64, "invalid IPv6 host" },
	{ "https://example.com:0/f#sha256=" HEX64, "invalid port in URL" },
	{ "https://example.com:65536/f#sha256=" HEX64, "invalid port in URL" },
	{ "https://example.com:/f#sha256=" HEX64, "invalid port in URL" },
	{ "https://example.com:8a/f#sha256=" HEX64, "invalid port in URL" },
	{ "https://example.com:000443/f#sha256=" HEX64, "invalid port in URL" },
	{ "https://example.com/a\"b#sha256=" HEX64,
	    "invalid character in URL" },
	{ "https://example.com/a<b#sha256=" HEX64, "invalid character in URL" },
	{ "https://example.com/a%zzb#sha256=" HEX64,
	    "invalid percent escape in URL" },
	{ "https://example.com/a%2#sha256=" HEX64,
	    "invalid percent escape in URL" },
	{ "s3://ab", "S3 bucket name must be 3 to 63 characters" },
	{ "s3://", "S3 bucket name must be 3 to 63 characters" },
	{ "s3:///prefix", "S3 bucket name must be 3 to 63 characters" },
	{ "s3://Bucket/x", "invalid character in S3 bucket name" },
	{ "s3://buck_et/x", "invalid character in S3 bucket name" },
	{ "s3://-bucket/x",
	    "S3 bucket name must start and end with a letter or digit" },
	{ "s3://bucket./x",
	    "S3 bucket name must start and end with a letter or digit" },
	{ "s3://a..b/x", "S3 bucket name contains '..'" },
	{ "s3://bucket/../x", "'..' component in path" },
	{ "s3://bucket/a/./b", "'.' component in path" },
	{ "s3://bucket/a//b", "empty component in path" },
	{ "s3://bucket/a//", "empty component in path" },
	{ "s3://bucket//", "absolute path" },
	{ "s3://bucket/a\\b", "backslash in path" },
	{ "oci://registry", "OCI reference has no repository" },
	{ "oci://registry/", "OCI reference has no repository" },
	{ "oci://registry/:v1", "OCI reference has no repository" },
	{ "oci://registry/repo", "OCI reference needs :tag or @sha256:HEX" },
	{ "oci://registry/repo:", "empty OCI tag" },
	{ "oci://registry/repo:-x", "invalid OCI tag" },
	{ "oci://registry/repo:a/b", "invalid OCI tag" },
	{ "oci://registry/Repo:v1", "invalid OCI repository name" },
	{ "oci://registry/a..b:v1", "invalid OCI repository name" },
	{ "oci://registry/a___b:v1", "invalid OCI repository name" },
	{ "oci://registry/a-:v1", "invalid OCI repository name" },
	{ "oci://registry/a//b:v1", "empty component in OCI repository" },
	{ "oci://registry/a/:v1", "empty component in OCI repository" },
	{ "oci://registry/repo@sha512:" HEX64,
	    "OCI digest must be @sha256:HEX" },
	{ "oci://registry/repo@sha256:abc",
	    "sha256 digest must be 64 hex digits" },
	{ "oci://u@registry/repo:v1", "credentials in URL are not allowed" },
	{ "oci://reg_istry/repo:v1", "invalid character in host" },
	{ "file://relative/dir", "file reference must be an absolute path" },
	{ "file://", "file reference must be an absolute path" },
	{ "file:///a/../b", "'..' in file path" },
	{ "file:///a/..", "'..' in file path" },
};

static void
test_parse_rejected(void **state)
{
	struct ref ref, zero;
	const char *why;
	size_t i;
	int rc;

	memset(&zero, 0, sizeof(zero));
	ref_init(&ref);
	for (i = 0; i < NELEM(rejected); i++) {
		why = NULL;
		rc = ref_parse(&ref, rejected[i].text, &why);
		expect("ref_parse", rejected[i].text, strlen(rejected[i].text),
		    rc, why, -EINVAL, rejected[i].why);
		assert_memory_equal(&ref, &zero, sizeof(ref));
	}
	ref_release(&ref);
}

static void
test_parse_null_and_long(void **state)
{
	struct ref ref;
	const char *why = NULL;
	char *text;

	ref_init(&ref);
	assert_int_equal(ref_parse(&ref, NULL, &why), -EINVAL);
	assert_string_equal(why, "empty reference");

	/* 4096 bytes is the most; the s3 prefix is then too long for a path. */
	text = repeat('a', 4097);
	memcpy(text, "s3://bucket/", strlen("s3://bucket/"));
	why = NULL;
	assert_int_equal(ref_parse(&ref, text, &why), -EINVAL);
	assert_string_equal(why, "reference is too long");
	text[4096] = '\0';
	why = NULL;
	assert_int_equal(ref_parse(&ref, text, &why), -EINVAL);
	assert_string_equal(why, "path is too long");
	free(text);

	/* A long file:// path within the limit is fine. */
	text = repeat('d', 4096);
	memcpy(text, "file:///", strlen("file:///"));
	assert_int_equal(ref_parse(&ref, text, &why), 0);
	assert_int_equal(ref.kind, REF_FILE);
	assert_int_equal(strlen(ref.url), 4096 - strlen("file://"));
	free(text);
	ref_release(&ref);
}

/* A failed parse on a used struct empties it; a second parse replaces it. */
static void
test_parse_reuse(void **state)
{
	struct ref ref, zero;
	const char *why = NULL;

	memset(&zero, 0, sizeof(zero));
	ref_init(&ref);
	assert_memory_equal(&ref, &zero, sizeof(ref));
	assert_int_equal(ref_parse(&ref, "oci://r/x:t@sha256:" HEX64, &why), 0);
	assert_int_equal(ref_parse(&ref, "hf://org/name@dev", &why), 0);
	assert_string_equal(ref.repo, "org/name");
	assert_string_equal(ref.revision, "dev");
	assert_null(ref.url);
	assert_string_equal(ref.sha256, "");
	assert_int_equal(ref_parse(&ref, "hf://org/name@a..b", &why), -EINVAL);
	assert_memory_equal(&ref, &zero, sizeof(ref));
	ref_release(&ref);
	ref_release(&ref);
	ref_release(NULL);
	assert_memory_equal(&ref, &zero, sizeof(ref));
}

/* A NULL why is allowed: the caller only wants the code. */
static void
test_parse_null_why(void **state)
{
	struct ref ref;

	ref_init(&ref);
	assert_int_equal(ref_parse(&ref, "hf://a/b/c", NULL), -EINVAL);
	assert_int_equal(ref_check_repo("a/b/c", NULL), -EINVAL);
	assert_int_equal(ref_check_revision("", NULL), -EINVAL);
	assert_int_equal(ref_check_path("/x", 2, NULL), -EINVAL);
	assert_int_equal(ref_parse(&ref, "org/name", NULL), 0);
	ref_release(&ref);
}

static void
test_revision_default(void **state)
{
	struct ref ref;
	const char *why = NULL;

	ref_init(&ref);
	assert_int_equal(ref_parse(&ref, "org/name", &why), 0);
	assert_null(ref.revision);
	assert_string_equal(ref_revision(&ref), "main");
	assert_int_equal(ref_parse(&ref, "org/name@v3", &why), 0);
	assert_string_equal(ref_revision(&ref), "v3");
	ref_release(&ref);
}

/* --- ref_check_repo --- */

static void
test_check_repo_accepts(void **state)
{
	static const char *const good[] = { "gpt2", "openai-community/gpt2",
		"Org_1/Na.me-2_x", "a/b", "_a/b_", "a.b/c-d", "org/git",
		"org/name.gitx", "org.git/name", "1/2" };
	const char *why;
	char *part, *id;
	size_t i;
	int rc;

	for (i = 0; i < NELEM(good); i++) {
		why = NULL;
		rc = ref_check_repo(good[i], &why);
		expect("ref_check_repo", good[i], strlen(good[i]), rc, why, 0,
		    NULL);
	}
	part = repeat('a', REF_REPO_MAX);
	assert_int_equal(ref_check_repo(part, &why), 0);
	id = malloc(2 * REF_REPO_MAX + 2);
	assert_non_null(id);
	memcpy(id, part, REF_REPO_MAX);
	id[REF_REPO_MAX] = '/';
	memcpy(id + REF_REPO_MAX + 1, part, REF_REPO_MAX + 1);
	assert_int_equal(ref_check_repo(id, &why), 0);
	free(id);
	free(part);
}

static void
test_check_repo_rejects(void **state)
{
	static const struct reject_case bad[] = {
		{ "", "empty repo id" },
		{ "/name", "empty part in repo id" },
		{ "org/", "empty part in repo id" },
		{ "/", "empty part in repo id" },
		{ "a/b/c", "repo id has more than two parts" },
		{ "org//name", "repo id has more than two parts" },
		{ "org/na me", "invalid character in repo id" },
		{ "org/na:me", "invalid character in repo id" },
		{ "org/na\\me", "invalid character in repo id" },
		{ "org/na@me", "invalid character in repo id" },
		{ "org/na\tme", "invalid character in repo id" },
		{ "org/na\x7fme", "invalid character in repo id" },
		{ "org/n\xc3\xa4me", "invalid character in repo id" },
		{ ".org/name", "repo id part starts or ends with '.' or '-'" },
		{ "org./name", "repo id part starts or ends with '.' or '-'" },
		{ "-org/name", "repo id part starts or ends with '.' or '-'" },
		{ "org/name-", "repo id part starts or ends with '.' or '-'" },
		{ "org/.name", "repo id part starts or ends with '.' or '-'" },
		{ "..", "repo id part starts or ends with '.' or '-'" },
		{ ".", "repo id part starts or ends with '.' or '-'" },
		{ "org/na--me", "repo id contains '--' or '..'" },
		{ "o--rg/name", "repo id contains '--' or '..'" },
		{ "org/na..me", "repo id contains '--' or '..'" },
		{ "org/name.git", "repo id ends in .git" },
		{ "name.git", "repo id ends in .git" },
	};
	const char *why;
	char *part, *id;
	size_t i;
	int rc;

	for (i = 0; i < NELEM(bad); i++) {
		why = NULL;
		rc = ref_check_repo(bad[i].text, &why);
		expect("ref_check_repo", bad[i].text, strlen(bad[i].text), rc,
		    why, -EINVAL, bad[i].why);
	}
	why = NULL;
	assert_int_equal(ref_check_repo(NULL, &why), -EINVAL);
	assert_string_equal(why, "empty repo id");

	part = repeat('a', REF_REPO_MAX + 1);
	why = NULL;
	assert_int_equal(ref_check_repo(part, &why), -EINVAL);
	assert_string_equal(why, "repo id part is too long");
	id = malloc(REF_REPO_MAX + 5);
	assert_non_null(id);
	memcpy(id, "ab/", 3);
	memcpy(id + 3, part, REF_REPO_MAX + 2);
	why = NULL;
	assert_int_equal(ref_check_repo(id, &why), -EINVAL);
	assert_string_equal(why, "repo id part is too long");
	free(id);
	free(part);

	part = repeat('a', 4 * REF_REPO_MAX);
	why = NULL;
	assert_int_equal(ref_check_repo(part, &why), -EINVAL);
	assert_string_equal(why, "repo id is too long");
	free(part);
}

/* --- ref_check_revision --- */

static void
test_check_revision_accepts(void **state)
{
	static const char *const good[] = { "main", "v1.0", "refs/pr/1",
		"refs/convert/parquet", COMMIT40, "a@b", "feature/x-y_z",
		"release-2024.01", "a#b", "a%2Fb", "x" };
	const char *why;
	char *long_rev;
	size_t i;
	int rc;

	for (i = 0; i < NELEM(good); i++) {
		why = NULL;
		rc = ref_check_revision(good[i], &why);
		expect("ref_check_revision", good[i], strlen(good[i]), rc, why,
		    0, NULL);
	}
	long_rev = repeat('r', REF_REVISION_MAX);
	assert_int_equal(ref_check_revision(long_rev, &why), 0);
	free(long_rev);
}

static void
test_check_revision_rejects(void **state)
{
	static const struct reject_case bad[] = {
		{ "", "empty revision" },
		{ "a b", "invalid character in revision" },
		{ "a~1", "invalid character in revision" },
		{ "a^1", "invalid character in revision" },
		{ "a:b", "invalid character in revision" },
		{ "a?b", "invalid character in revision" },
		{ "a*b", "invalid character in revision" },
		{ "a[b", "invalid character in revision" },
		{ "a\\b", "invalid character in revision" },
		{ "a\x01", "invalid character in revision" },
		{ "a\tb", "invalid character in revision" },
		{ "a\nb", "invalid character in revision" },
		{ "a\x1f", "invalid character in revision" },
		{ "a\x7f", "invalid character in revision" },
		{ "a\x80", "invalid character in revision" },
		{ "caf\xc3\xa9", "invalid character in revision" },
		{ "a..b", "revision contains '..', '//' or '@{'" },
		{ "..", "revision contains '..', '//' or '@{'" },
		{ "a/../b", "revision contains '..', '//' or '@{'" },
		{ "a//b", "revision contains '..', '//' or '@{'" },
		{ "a@{1}", "revision contains '..', '//' or '@{'" },
		{ "/main", "revision starts or ends with '/' or '.'" },
		{ "main/", "revision starts or ends with '/' or '.'" },
		{ ".main", "revision starts or ends with '/' or '.'" },
		{ "main.", "revision starts or ends with '/' or '.'" },
		{ ".", "revision starts or ends with '/' or '.'" },
		{ "/", "revision starts or ends with '/' or '.'" },
		{ "a/.b", "revision component starts with '.'" },
		{ "main.lock", "revision ends in .lock" },
		{ "refs/x.lock", "revision ends in .lock" },
	};
	const char *why;
	char *long_rev;
	size_t i;
	int rc;

	for (i = 0; i < NELEM(bad); i++) {
		why = NULL;
		rc = ref_check_revision(bad[i].text, &why);
		expect("ref_check_revision", bad[i].text, strlen(bad[i].text),
		    rc, why, -EINVAL, bad[i].why);
	}
	why = NULL;
	assert_int_equal(ref_check_revision(NULL, &why), -EINVAL);
	assert_string_equal(why, "empty revision");
	long_rev = repeat('r', REF_REVISION_MAX + 1);
	why = NULL;
	assert_int_equal(ref_check_revision(long_rev, &why), -EINVAL);
	assert_string_equal(why, "revision is too long");
	free(long_rev);
}

/* --- ref_check_path --- */

static void
check_path_ok(const char *path, size_t len)
{
	const char *why = NULL;
	int rc = ref_check_path(path, len, &why);

	expect("ref_check_path", path, len, rc, why, 0, NULL);
}

static void
check_path_bad(const char *path, size_t len, const char *want)
{
	const char *why = NULL;
	int rc = ref_check_path(path, len, &why);

	expect("ref_check_path", path, len, rc, why, -EINVAL, want);
}

static void
test_check_path_accepts(void **state)
{
	static const char *const good[] = { "config.json", "sub/dir/f.bin",
		"a..b", "...", ".hidden", "a/.b/c", "x", "dir/..x", "x../y",
		"name with space", "caf\xc3\xa9.txt", "a:b", "a@b" };
	char *comp, *path;
	size_t i, n;

	for (i = 0; i < NELEM(good); i++) {
		check_path_ok(good[i], strlen(good[i]));
	}
	/* Only len bytes are read: what follows is not looked at. */
	check_path_ok("abc/../x", 3);
	check_path_ok("abc/", 3);

	comp = repeat('c', REF_NAME_MAX);
	check_path_ok(comp, strlen(comp));
	free(comp);

	/* REF_PATH_MAX bytes in 100-byte components separated by '/'. */
	path = repeat('p', REF_PATH_MAX);
	for (n = 100; n < REF_PATH_MAX - 1; n += 101)
		path[n] = '/';
	check_path_ok(path, REF_PATH_MAX);
	free(path);
}

static void
test_check_path_rejects(void **state)
{
	static const struct reject_case bad[] = {
		{ "/etc/passwd", "absolute path" },
		{ "/", "absolute path" },
		{ "a\\b", "backslash in path" },
		{ "..\\x", "backslash in path" },
		{ "a//b", "empty component in path" },
		{ "a/", "empty component in path" },
		{ "a/b/", "empty component in path" },
		{ ".", "'.' component in path" },
		{ "./a", "'.' component in path" },
		{ "a/./b", "'.' component in path" },
		{ "a/.", "'.' component in path" },
		{ "..", "'..' component in path" },
		{ "../a", "'..' component in path" },
		{ "a/../b", "'..' component in path" },
		{ "a/..", "'..' component in path" },
	};
	/* Each class of control byte: C0 low, C0 common, C0 high, DEL. */
	static const char controls[] = { 0x01, 0x07, '\b', '\t', '\n', 0x0b,
		'\f', '\r', 0x1b, 0x1f, 0x7f };
	char buf[8], *comp, *path;
	size_t i;

	for (i = 0; i < NELEM(bad); i++) {
		check_path_bad(bad[i].text, strlen(bad[i].text), bad[i].why);
	}
	for (i = 0; i < NELEM(controls); i++) {
		memcpy(buf, "ab?cd", 6);
		buf[2] = controls[i];
		check_path_bad(buf, 5, "control character in path");
	}
	check_path_bad("", 0, "empty path");
	check_path_bad("abc", 0, "empty path");
	check_path_bad(NULL, 0, "empty path");
	check_path_bad("a\0b", 3, "NUL byte in path");
	check_path_bad("abc\0", 4, "NUL byte in path");
	check_path_bad("\0", 1, "NUL byte in path");

	comp = repeat('c', REF_NAME_MAX + 1);
	check_path_bad(comp, strlen(comp), "path component is too long");
	memcpy(comp, "ok/", 3);
	check_path_ok(comp, strlen(comp));
	free(comp);
	comp = repeat('c', REF_NAME_MAX + 4);
	memcpy(comp, "ok/", 3);
	check_path_bad(comp, strlen(comp), "path component is too long");
	free(comp);

	path = repeat('p', REF_PATH_MAX + 1);
	for (i = 10; i < REF_PATH_MAX; i += 11)
		path[i] = '/';
	check_path_bad(path, REF_PATH_MAX + 1, "path is too long");
	check_path_ok(path, REF_PATH_MAX);
	free(path);
}

/* --- ref_is_hex --- */

static void
test_is_hex(void **state)
{
	assert_true(ref_is_hex("0123456789abcdef", 16));
	assert_true(ref_is_hex(HEX64, 64));
	assert_true(ref_is_hex(COMMIT40, 40));
	assert_true(ref_is_hex("", 0));
	assert_false(ref_is_hex(HEX64_UPPER, 64));
	assert_false(ref_is_hex("abcg", 4));
	assert_false(ref_is_hex("abc", 2));
	assert_false(ref_is_hex("abc", 4));
	assert_false(ref_is_hex(COMMIT40, 64));
	assert_false(ref_is_hex(" abc", 4));
	assert_false(ref_is_hex(NULL, 0));
}

/* --- folders and type names --- */

static void
folder_is(const char *text, const char *want)
{
	struct ref ref;
	const char *why = NULL;
	char buf[REF_FOLDER_MAX];

	ref_init(&ref);
	assert_int_equal(ref_parse(&ref, text, &why), 0);
	assert_int_equal(ref_folder(&ref, buf, sizeof(buf)), 0);
	assert_string_equal(buf, want);
	ref_release(&ref);
}

static void
test_folder(void **state)
{
	struct ref ref;
	const char *why = NULL;
	char buf[REF_FOLDER_MAX], small[13];
	char *part, *id;

	folder_is("hf://org/name", "models--org--name");
	folder_is("org/name@dev", "models--org--name");
	folder_is("hf://gpt2", "models--gpt2");
	folder_is("hf://datasets/org/name", "datasets--org--name");
	folder_is("hf://datasets/squad", "datasets--squad");
	folder_is("hf://spaces/a/b", "spaces--a--b");
	folder_is("Org.X/Name_y", "models--Org.X--Name_y");

	/* Exactly fits ("models--gpt2" is 12 bytes), then one byte short. */
	assert_int_equal(ref_folder_of(REPO_MODEL, "gpt2", small, 13), 0);
	assert_string_equal(small, "models--gpt2");
	assert_int_equal(ref_folder_of(REPO_MODEL, "gpt2", small, 12),
	    -ENAMETOOLONG);
	assert_int_equal(ref_folder_of(REPO_MODEL, "gpt2", small, 0),
	    -ENAMETOOLONG);
	assert_int_equal(ref_folder_of(REPO_MODEL, "gpt2", NULL, 0),
	    -ENAMETOOLONG);

	/* Bad repo ids and types never make a folder name. */
	assert_int_equal(ref_folder_of(REPO_MODEL, "../x", buf, sizeof(buf)),
	    -EINVAL);
	assert_int_equal(ref_folder_of(REPO_MODEL, "a/b/c", buf, sizeof(buf)),
	    -EINVAL);
	assert_int_equal(ref_folder_of(REPO_MODEL, NULL, buf, sizeof(buf)),
	    -EINVAL);
	assert_int_equal(ref_folder_of((enum repo_type)7, "a", buf,
			     sizeof(buf)),
	    -EINVAL);

	/* The longest repo id fits REF_FOLDER_MAX. */
	part = repeat('z', REF_REPO_MAX);
	id = malloc(2 * REF_REPO_MAX + 2);
	assert_non_null(id);
	memcpy(id, part, REF_REPO_MAX);
	id[REF_REPO_MAX] = '/';
	memcpy(id + REF_REPO_MAX + 1, part, REF_REPO_MAX + 1);
	assert_int_equal(ref_folder_of(REPO_DATASET, id, buf, sizeof(buf)), 0);
	assert_int_equal(strlen(buf),
	    strlen("datasets----") + 2 * REF_REPO_MAX);
	free(id);
	free(part);

	ref_init(&ref);
	assert_int_equal(ref_parse(&ref, "s3://bucket/x", &why), 0);
	assert_int_equal(ref_folder(&ref, buf, sizeof(buf)), -EINVAL);
	ref_release(&ref);
}

static void
test_type_names(void **state)
{
	enum repo_type t;

	assert_string_equal(ref_type_name(REPO_MODEL), "model");
	assert_string_equal(ref_type_name(REPO_DATASET), "dataset");
	assert_string_equal(ref_type_name(REPO_SPACE), "space");
	assert_int_equal(ref_type_parse("model", &t), 0);
	assert_int_equal(t, REPO_MODEL);
	assert_int_equal(ref_type_parse("dataset", &t), 0);
	assert_int_equal(t, REPO_DATASET);
	assert_int_equal(ref_type_parse("space", &t), 0);
	assert_int_equal(t, REPO_SPACE);
	t = REPO_SPACE;
	assert_int_equal(ref_type_parse("models", &t), -EINVAL);
	assert_int_equal(ref_type_parse("Model", &t), -EINVAL);
	assert_int_equal(ref_type_parse("", &t), -EINVAL);
	assert_int_equal(ref_type_parse(NULL, &t), -EINVAL);
	assert_int_equal(t, REPO_SPACE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_accepted),
		cmocka_unit_test(test_canonical_round_trip),
		cmocka_unit_test(test_parse_rejected),
		cmocka_unit_test(test_parse_null_and_long),
		cmocka_unit_test(test_parse_reuse),
		cmocka_unit_test(test_parse_null_why),
		cmocka_unit_test(test_revision_default),
		cmocka_unit_test(test_check_repo_accepts),
		cmocka_unit_test(test_check_repo_rejects),
		cmocka_unit_test(test_check_revision_accepts),
		cmocka_unit_test(test_check_revision_rejects),
		cmocka_unit_test(test_check_path_accepts),
		cmocka_unit_test(test_check_path_rejects),
		cmocka_unit_test(test_is_hex),
		cmocka_unit_test(test_folder),
		cmocka_unit_test(test_type_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
