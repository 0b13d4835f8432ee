/*
 * ref: parsing and checking of model references.
 *
 * This file owns the grammar of the reference forms listed in ref.h and the
 * checks on every name a reference carries.  Those names later become
 * parts of paths under the store (the hub folder "models--org--name", the
 * ref file "refs/<revision>", snapshot files "snapshots/<commit>/<path>"),
 * so each check is written to make traversal impossible rather than merely
 * unlikely: no "..", no absolute paths, no empty or "." components, no
 * backslashes, no control bytes, bounded lengths.
 *
 * Invariants of a parsed struct ref:
 *	REF_HF		repo passed ref_check_repo(); revision is NULL or
 *			passed ref_check_revision(); url is NULL.
 *	REF_HTTPS	url is "https://host[:port]/path[?query]" with a
 *			lowercased host and no fragment or credentials;
 *			sha256 is 64 lowercase hex digits, or "" when the
 *			URL had no fragment (trust on first use).
 *	REF_S3		url is "bucket" or "bucket/prefix"; the prefix passed
 *			ref_check_path() (so it has no trailing slash).
 *	REF_OCI		url is "registry/repo"; at least one of revision (the
 *			tag) and sha256 is set.
 *	REF_FILE	url is an absolute, normalised directory path: no "."
 *			or ".." component, no "//", no trailing slash except
 *			for "/" itself.
 * A reference that fails to parse leaves the struct zeroed, so the caller
 * never sees half of one.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"

#define REF_TEXT_MAX 4096 /* bytes in the text of a reference */
#define OCI_REPO_MAX 255  /* bytes in an OCI repository name */
#define OCI_TAG_MAX 128	  /* bytes in an OCI tag */
#define SHA256_HEX 64

static const char *const type_names[] = {
	[REPO_MODEL] = "model",
	[REPO_DATASET] = "dataset",
	[REPO_SPACE] = "space",
};

static const char *const type_folders[] = {
	[REPO_MODEL] = "models",
	[REPO_DATASET] = "datasets",
	[REPO_SPACE] = "spaces",
};

static int
fail(const char **why, const char *msg)
{
	if (why != NULL)
		*why = msg;
	return -EINVAL;
}

static int
is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

static int
is_lower_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int
is_hexdigit(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

static int
is_control(int c)
{
	return (c >= 0x01 && c <= 0x1f) || c == 0x7f;
}

static int
has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int
has_suffix(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);

	return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/* True when s[0..len) contains needle. */
static int
contains(const char *s, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	size_t i;

	for (i = 0; i + n <= len; i++)
		if (memcmp(s + i, needle, n) == 0)
			return 1;
	return 0;
}

/* A string built like snprintf, or NULL when out of memory. */
static char *ref_format(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static char *
ref_format(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	if ((s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

void
ref_init(struct ref *ref)
{
	memset(ref, 0, sizeof(*ref));
}

void
ref_release(struct ref *ref)
{
	if (ref == NULL)
		return;
	free(ref->repo);
	free(ref->revision);
	free(ref->url);
	ref_init(ref);
}

const char *
ref_type_name(enum repo_type type)
{
	if ((unsigned)type >= sizeof(type_names) / sizeof(type_names[0]))
		return "unknown";
	return type_names[type];
}

int
ref_type_parse(const char *name, enum repo_type *type)
{
	size_t i;

	if (name == NULL)
		return -EINVAL;
	for (i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++) {
		if (strcmp(name, type_names[i]) == 0) {
			*type = (enum repo_type)i;
			return 0;
		}
	}
	return -EINVAL;
}

int
ref_is_hex(const char *s, size_t len)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
			(s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[len] == '\0';
}

/*
 * Copies a 64-digit SHA-256 in either case into out, lowercased.  s need not
 * end after the digits; the caller checks what follows.
 */
static int
parse_sha256(const char *s, size_t len, char out[SHA256_HEX + 1],
    const char **why)
{
	size_t i;

	if (len != SHA256_HEX)
		return fail(why, "sha256 digest must be 64 hex digits");
	for (i = 0; i < len; i++) {
		if (!is_hexdigit((unsigned char)s[i]))
			return fail(why, "sha256 digest must be 64 hex digits");
		out[i] = (s[i] >= 'A' && s[i] <= 'F') ? (char)(s[i] - 'A' + 'a')
						      : s[i];
	}
	out[len] = '\0';
	return 0;
}

/* One part of a repo id: s[0..len). */
static int
check_repo_part(const char *s, size_t len, const char **why)
{
	size_t i;

	if (len == 0)
		return fail(why, "empty part in repo id");
	if (len > REF_REPO_MAX)
		return fail(why, "repo id part is too long");
	for (i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (!is_alnum(c) && c != '.' && c != '_' && c != '-')
			return fail(why, "invalid character in repo id");
	}
	if (s[0] == '.' || s[0] == '-' || s[len - 1] == '.' ||
	    s[len - 1] == '-')
		return fail(why, "repo id part starts or ends with '.' or '-'");
	if (contains(s, len, "--") || contains(s, len, ".."))
		return fail(why, "repo id contains '--' or '..'");
	return 0;
}

int
ref_check_repo(const char *repo, const char **why)
{
	const char *slash;
	size_t len;
	int rc;

	if (repo == NULL || *repo == '\0')
		return fail(why, "empty repo id");
	len = strnlen(repo, 2 * REF_REPO_MAX + 2);
	if (len > 2 * REF_REPO_MAX + 1)
		return fail(why, "repo id is too long");
	if ((slash = strchr(repo, '/')) == NULL)
		rc = check_repo_part(repo, len, why);
	else if (strchr(slash + 1, '/') != NULL)
		return fail(why, "repo id has more than two parts");
	else if ((rc = check_repo_part(repo, (size_t)(slash - repo), why)) == 0)
		rc = check_repo_part(slash + 1, strlen(slash + 1), why);
	if (rc < 0)
		return rc;
	if (has_suffix(repo, len, ".git"))
		return fail(why, "repo id ends in .git");
	return 0;
}

int
ref_check_revision(const char *rev, const char **why)
{
	size_t len, i;

	if (rev == NULL || *rev == '\0')
		return fail(why, "empty revision");
	len = strnlen(rev, REF_REVISION_MAX + 1);
	if (len > REF_REVISION_MAX)
		return fail(why, "revision is too long");
	for (i = 0; i < len; i++) {
		int c = (unsigned char)rev[i];

		if (c <= 0x20 || c >= 0x7f || strchr("~^:?*[\\", c) != NULL)
			return fail(why, "invalid character in revision");
	}
	if (contains(rev, len, "..") || contains(rev, len, "//") ||
	    contains(rev, len, "@{"))
		return fail(why, "revision contains '..', '//' or '@{'");
	if (rev[0] == '/' || rev[0] == '.' || rev[len - 1] == '/' ||
	    rev[len - 1] == '.')
		return fail(why, "revision starts or ends with '/' or '.'");
	/* As git does: a ref becomes nested folders, none of them hidden. */
	if (contains(rev, len, "/."))
		return fail(why, "revision component starts with '.'");
	if (has_suffix(rev, len, ".lock"))
		return fail(why, "revision ends in .lock");
	return 0;
}

/* One component of a repo-relative path: s[0..len). */
static int
check_path_component(const char *s, size_t len, const char **why)
{
	if (len == 0)
		return fail(why, "empty component in path");
	if (len == 1 && s[0] == '.')
		return fail(why, "'.' component in path");
	if (len == 2 && s[0] == '.' && s[1] == '.')
		return fail(why, "'..' component in path");
	if (len > REF_NAME_MAX)
		return fail(why, "path component is too long");
	return 0;
}

int
ref_check_path(const char *path, size_t len, const char **why)
{
	size_t i, start;
	int rc;

	if (path == NULL || len == 0)
		return fail(why, "empty path");
	if (len > REF_PATH_MAX)
		return fail(why, "path is too long");
	if (memchr(path, '\0', len) != NULL)
		return fail(why, "NUL byte in path");
	if (path[0] == '/')
		return fail(why, "absolute path");
	for (i = 0; i < len; i++) {
		if (path[i] == '\\')
			return fail(why, "backslash in path");
		if (is_control((unsigned char)path[i]))
			return fail(why, "control character in path");
	}
	for (start = 0, i = 0; i <= len; i++) {
		if (i < len && path[i] != '/')
			continue;
		if ((rc = check_path_component(path + start, i - start, why)) <
		    0)
			return rc;
		start = i + 1;
	}
	return 0;
}

/* Sets the fields of an hf reference from "[type/]repo[@rev]". */
static int
parse_hf(struct ref *ref, const char *body, const char **why)
{
	const char *at;
	int rc;

	ref->kind = REF_HF;
	ref->type = REPO_MODEL;
	if (has_prefix(body, "datasets/")) {
		ref->type = REPO_DATASET;
		body += strlen("datasets/");
	} else if (has_prefix(body, "spaces/")) {
		ref->type = REPO_SPACE;
		body += strlen("spaces/");
	}
	at = strchr(body, '@');
	if ((ref->repo = at != NULL ? strndup(body, (size_t)(at - body))
				    : strdup(body)) == NULL)
		return -ENOMEM;
	if ((rc = ref_check_repo(ref->repo, why)) < 0)
		return rc;
	if (at == NULL)
		return 0;
	if ((rc = ref_check_revision(at + 1, why)) < 0)
		return rc;
	if ((ref->revision = strdup(at + 1)) == NULL)
		return -ENOMEM;
	return 0;
}

/* A URL character that may stand unescaped in a path or query. */
static int
is_url_char(int c)
{
	return is_alnum(c) || (c != '\0' && strchr("-._~!$&'()*+,;=:@/?%", c));
}

/* "[host]" (IPv6) or a DNS name or IPv4 address, then an optional ":port". */
static int
check_authority(const char *s, size_t len, const char **why)
{
	size_t i = 0, host_end;
	unsigned long port = 0;

	if (len > 0 && s[0] == '[') {
		for (i = 1; i < len && s[i] != ']'; i++)
			if (!is_hexdigit((unsigned char)s[i]) && s[i] != ':' &&
			    s[i] != '.')
				return fail(why, "invalid character in host");
		if (i == len || i == 1)
			return fail(why, "invalid IPv6 host");
		i++;
	} else {
		for (; i < len && s[i] != ':'; i++)
			if (!is_alnum((unsigned char)s[i]) && s[i] != '.' &&
			    s[i] != '-')
				return fail(why, "invalid character in host");
	}
	host_end = i;
	if (host_end == 0)
		return fail(why, "URL has no host");
	if (i == len)
		return 0;
	if (s[i] != ':' || ++i == len || len - i > 5)
		return fail(why, "invalid port in URL");
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return fail(why, "invalid port in URL");
		port = port * 10 + (unsigned long)(s[i] - '0');
	}
	if (port == 0 || port > 65535)
		return fail(why, "invalid port in URL");
	return 0;
}

/* s[0..len) is a path with optional query, made of URL characters only. */
static int
check_url_path(const char *s, size_t len, const char **why)
{
	size_t i;

	if (len < 2 || s[0] != '/' || s[1] == '?')
		return fail(why, "URL has no file path");
	for (i = 0; i < len; i++) {
		if (!is_url_char((unsigned char)s[i]))
			return fail(why, "invalid character in URL");
		if (s[i] == '%' &&
		    (i + 2 >= len || !is_hexdigit((unsigned char)s[i + 1]) ||
			!is_hexdigit((unsigned char)s[i + 2])))
			return fail(why, "invalid percent escape in URL");
	}
	return 0;
}

/* Lowercases s[0..len) in place. */
static void
lowercase(char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			s[i] = (char)(s[i] - 'A' + 'a');
}

/* "https://host[:port]/path[?query][#sha256=HEX]". */
static int
parse_https(struct ref *ref, const char *text, const char **why)
{
	const char *auth = text + strlen("https://");
	const char *hash, *path;
	size_t auth_len;
	int rc;

	ref->kind = REF_HTTPS;
	if ((hash = strchr(auth, '#')) == NULL)
		hash = auth + strlen(auth); /* no digest: the caller decides */
	else if (!has_prefix(hash, "#sha256="))
		return fail(why, "unsupported URL fragment, expected #sha256=");
	else if ((rc = parse_sha256(hash + strlen("#sha256="),
		      strlen(hash + strlen("#sha256=")), ref->sha256, why)) < 0)
		return rc;
	path = auth + strcspn(auth, "/?#");
	auth_len = (size_t)(path - auth);
	if (memchr(auth, '@', auth_len) != NULL)
		return fail(why, "credentials in URL are not allowed");
	if ((rc = check_authority(auth, auth_len, why)) < 0)
		return rc;
	if ((rc = check_url_path(path, (size_t)(hash - path), why)) < 0)
		return rc;
	if ((ref->url = strndup(text, (size_t)(hash - text))) == NULL)
		return -ENOMEM;
	lowercase(ref->url + strlen("https://"), auth_len);
	return 0;
}

/* An S3 bucket name: 3..63 of [a-z0-9.-], alphanumeric at both ends. */
static int
check_bucket(const char *s, size_t len, const char **why)
{
	size_t i;

	if (len < 3 || len > 63)
		return fail(why, "S3 bucket name must be 3 to 63 characters");
	for (i = 0; i < len; i++)
		if (!is_lower_alnum((unsigned char)s[i]) && s[i] != '.' &&
		    s[i] != '-')
			return fail(why, "invalid character in S3 bucket name");
	if (!is_lower_alnum((unsigned char)s[0]) ||
	    !is_lower_alnum((unsigned char)s[len - 1]))
		return fail(why,
		    "S3 bucket name must start and end with a "
		    "letter or digit");
	if (contains(s, len, ".."))
		return fail(why, "S3 bucket name contains '..'");
	return 0;
}

/*
 * "s3://bucket[/prefix[/]]".  The prefix names a folder, so one trailing
 * slash is dropped and the rest must be a clean relative path.
 */
static int
parse_s3(struct ref *ref, const char *text, const char **why)
{
	const char *body = text + strlen("s3://");
	const char *slash;
	size_t blen, plen = 0;
	int rc;

	ref->kind = REF_S3;
	slash = strchr(body, '/');
	blen = slash != NULL ? (size_t)(slash - body) : strlen(body);
	if ((rc = check_bucket(body, blen, why)) < 0)
		return rc;
	if (slash != NULL) {
		plen = strlen(slash + 1);
		if (plen > 1 && slash[plen] == '/')
			plen--;
	}
	if (plen > 0 && (rc = ref_check_path(slash + 1, plen, why)) < 0)
		return rc;
	if ((ref->url = strndup(body, plen > 0 ? blen + 1 + plen : blen)) ==
	    NULL)
		return -ENOMEM;
	return 0;
}

/* A separator inside an OCI repository component: '.', '_', "__" or '-'+. */
static int
is_oci_separator(const char *s, size_t len)
{
	size_t i;

	if (len == 1 && (s[0] == '.' || s[0] == '_'))
		return 1;
	if (len == 2 && s[0] == '_' && s[1] == '_')
		return 1;
	for (i = 0; i < len; i++)
		if (s[i] != '-')
			return 0;
	return len > 0;
}

/*
 * One component of an OCI repository name, as the distribution spec has it:
 * runs of [a-z0-9] joined by single separators.
 */
static int
check_oci_component(const char *s, size_t len, const char **why)
{
	size_t i = 0, sep;

	if (len == 0)
		return fail(why, "empty component in OCI repository");
	while (i < len) {
		if (!is_lower_alnum((unsigned char)s[i]))
			return fail(why, "invalid OCI repository name");
		while (i < len && is_lower_alnum((unsigned char)s[i]))
			i++;
		if (i == len)
			break;
		for (sep = i; i < len && !is_lower_alnum((unsigned char)s[i]);)
			i++;
		if (i == len || !is_oci_separator(s + sep, i - sep))
			return fail(why, "invalid OCI repository name");
	}
	return 0;
}

static int
check_oci_repo(const char *s, size_t len, const char **why)
{
	size_t i, start;
	int rc;

	if (len == 0)
		return fail(why, "OCI reference has no repository");
	if (len > OCI_REPO_MAX)
		return fail(why, "OCI repository name is too long");
	for (start = 0, i = 0; i <= len; i++) {
		if (i < len && s[i] != '/')
			continue;
		if ((rc = check_oci_component(s + start, i - start, why)) < 0)
			return rc;
		start = i + 1;
	}
	return 0;
}

/* An OCI tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}. */
static int
check_oci_tag(const char *s, size_t len, const char **why)
{
	size_t i;

	if (len == 0)
		return fail(why, "empty OCI tag");
	if (len > OCI_TAG_MAX)
		return fail(why, "OCI tag is too long");
	if (s[0] == '.' || s[0] == '-')
		return fail(why, "invalid OCI tag");
	for (i = 0; i < len; i++)
		if (!is_alnum((unsigned char)s[i]) && s[i] != '.' &&
		    s[i] != '_' && s[i] != '-')
			return fail(why, "invalid OCI tag");
	return 0;
}

/* The "[:tag][@sha256:HEX]" tail of an OCI reference. */
static int
parse_oci_pin(struct ref *ref, const char *colon, const char *at,
    const char **why)
{
	const char *digest;
	size_t tag_len;
	int rc;

	if (colon == NULL && at == NULL)
		return fail(why, "OCI reference needs :tag or @sha256:HEX");
	if (at != NULL) {
		if (!has_prefix(at, "@sha256:"))
			return fail(why, "OCI digest must be @sha256:HEX");
		digest = at + strlen("@sha256:");
		if ((rc = parse_sha256(digest, strlen(digest), ref->sha256,
			 why)) < 0)
			return rc;
	}
	if (colon == NULL)
		return 0;
	tag_len = at != NULL ? (size_t)(at - colon - 1) : strlen(colon + 1);
	if ((rc = check_oci_tag(colon + 1, tag_len, why)) < 0)
		return rc;
	if ((ref->revision = strndup(colon + 1, tag_len)) == NULL)
		return -ENOMEM;
	return 0;
}

/* "oci://registry[:port]/repo[:tag][@sha256:HEX]". */
static int
parse_oci(struct ref *ref, const char *text, const char **why)
{
	const char *body = text + strlen("oci://");
	const char *slash, *repo, *at, *colon, *end;
	int rc;

	ref->kind = REF_OCI;
	if ((slash = strchr(body, '/')) == NULL)
		return fail(why, "OCI reference has no repository");
	if (memchr(body, '@', (size_t)(slash - body)) != NULL)
		return fail(why, "credentials in URL are not allowed");
	if ((rc = check_authority(body, (size_t)(slash - body), why)) < 0)
		return rc;
	repo = slash + 1;
	at = strchr(repo, '@');
	end = at != NULL ? at : repo + strlen(repo);
	colon = memchr(repo, ':', (size_t)(end - repo));
	if (colon != NULL)
		end = colon;
	if ((rc = check_oci_repo(repo, (size_t)(end - repo), why)) < 0)
		return rc;
	if ((rc = parse_oci_pin(ref, colon, at, why)) < 0)
		return rc;
	if ((ref->url = strndup(body, (size_t)(end - body))) == NULL)
		return -ENOMEM;
	lowercase(ref->url, (size_t)(slash - body));
	return 0;
}

/*
 * Copies the absolute path s into a fresh string with "//" and "."
 * components dropped and no trailing slash; refuses "..", because whether
 * it would climb out of a symlinked folder cannot be known here.
 */
static int
normalise_dir(const char *s, char **out, const char **why)
{
	size_t len = strlen(s), i = 0, n = 0, clen;
	char *p;

	if ((p = malloc(len + 1)) == NULL)
		return -ENOMEM;
	while (i < len) {
		while (i < len && s[i] == '/')
			i++;
		clen = strcspn(s + i, "/");
		if (clen == 2 && s[i] == '.' && s[i + 1] == '.') {
			free(p);
			return fail(why, "'..' in file path");
		}
		if (clen > 0 && !(clen == 1 && s[i] == '.')) {
			p[n++] = '/';
			memcpy(p + n, s + i, clen);
			n += clen;
		}
		i += clen;
	}
	if (n == 0)
		p[n++] = '/';
	p[n] = '\0';
	*out = p;
	return 0;
}

/* "file:///abs/dir". */
static int
parse_file(struct ref *ref, const char *text, const char **why)
{
	const char *path = text + strlen("file://");

	ref->kind = REF_FILE;
	if (path[0] != '/')
		return fail(why, "file reference must be an absolute path");
	return normalise_dir(path, &ref->url, why);
}

/* Whole-text checks shared by every form. */
static int
check_text(const char *text, const char **why)
{
	size_t len, i;

	if (text == NULL || *text == '\0')
		return fail(why, "empty reference");
	len = strnlen(text, REF_TEXT_MAX + 1);
	if (len > REF_TEXT_MAX)
		return fail(why, "reference is too long");
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c <= 0x20 || c == 0x7f)
			return fail(why,
			    "whitespace or control character in reference");
	}
	return 0;
}

int
ref_parse(struct ref *ref, const char *text, const char **why)
{
	int rc;

	ref_release(ref);
	if ((rc = check_text(text, why)) < 0)
		goto out;
	if (has_prefix(text, "hf://"))
		rc = parse_hf(ref, text + strlen("hf://"), why);
	else if (has_prefix(text, "https://"))
		rc = parse_https(ref, text, why);
	else if (has_prefix(text, "http://"))
		rc = fail(why, "plain http is not allowed, use https");
	else if (has_prefix(text, "s3://"))
		rc = parse_s3(ref, text, why);
	else if (has_prefix(text, "oci://"))
		rc = parse_oci(ref, text, why);
	else if (has_prefix(text, "file://"))
		rc = parse_file(ref, text, why);
	else if (strstr(text, "://") != NULL)
		rc = fail(why, "unknown reference scheme");
	else if (text[0] == '/' || has_prefix(text, "./") ||
	    has_prefix(text, "../"))
		rc = fail(why, "a local directory needs file:///");
	else
		rc = parse_hf(ref, text, why);
out:
	if (rc < 0)
		ref_release(ref);
	return rc;
}

const char *
ref_revision(const struct ref *ref)
{
	return ref->revision != NULL ? ref->revision : "main";
}

static char *
canonical_hf(const struct ref *ref)
{
	const char *prefix = "";

	if (ref->type == REPO_DATASET)
		prefix = "datasets/";
	else if (ref->type == REPO_SPACE)
		prefix = "spaces/";
	return ref_format("hf://%s%s@%s", prefix, ref->repo, ref_revision(ref));
}

static char *
canonical_oci(const struct ref *ref)
{
	return ref_format("oci://%s%s%s%s%s", ref->url,
	    ref->revision != NULL ? ":" : "",
	    ref->revision != NULL ? ref->revision : "",
	    ref->sha256[0] != '\0' ? "@sha256:" : "", ref->sha256);
}

char *
ref_canonical(const struct ref *ref)
{
	switch (ref->kind) {
	case REF_HF:
		return canonical_hf(ref);
	case REF_HTTPS:
		return ref->sha256[0] == '\0'
		    ? strdup(ref->url)
		    : ref_format("%s#sha256=%s", ref->url, ref->sha256);
	case REF_S3:
		return ref_format("s3://%s", ref->url);
	case REF_OCI:
		return canonical_oci(ref);
	case REF_FILE:
		return ref_format("file://%s", ref->url);
	}
	return NULL;
}

int
ref_folder_of(enum repo_type type, const char *repo, char *buf, size_t len)
{
	const char *slash;
	int n;

	if ((unsigned)type >= sizeof(type_folders) / sizeof(type_folders[0]))
		return -EINVAL;
	if (ref_check_repo(repo, NULL) < 0)
		return -EINVAL;
	if (buf == NULL || len == 0)
		return -ENAMETOOLONG;
	if ((slash = strchr(repo, '/')) == NULL)
		n = snprintf(buf, len, "%s--%s", type_folders[type], repo);
	else
		n = snprintf(buf, len, "%s--%.*s--%s", type_folders[type],
		    (int)(slash - repo), repo, slash + 1);
	if (n < 0 || (size_t)n >= len) {
		buf[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

int
ref_folder(const struct ref *ref, char *buf, size_t len)
{
	if (ref->kind != REF_HF)
		return -EINVAL;
	return ref_folder_of(ref->type, ref->repo, buf, len);
}
