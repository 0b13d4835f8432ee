/*
 * ref: model references and the names inside them.
 *
 * A reference says where a model comes from.  Its canonical text forms are
 *
 *	hf://org/name@rev		Hugging Face model (rev defaults to main)
 *	hf://datasets/org/name@rev	Hugging Face dataset (also spaces/)
 *	https://host/path#sha256=HEX	one file over HTTPS, digest pinned
 *					(without it: trust on first use)
 *	s3://bucket/prefix		an S3 prefix
 *	oci://registry/repo:tag		an OCI artifact (or @sha256:HEX)
 *	file:///abs/dir			a directory, e.g. baked into an image
 *
 * A bare "org/name[@rev]" is accepted as shorthand for hf://.  Everything a
 * reference carries comes from users or origins, so every name is checked
 * here, once, before it reaches a path on disk: repo ids, revisions and
 * repo-relative file paths.  The check functions return 0 or -EINVAL and set
 * *why to a static English phrase fit for an error message.
 */
#ifndef MC_REF_H
#define MC_REF_H

#include <stddef.h>

#define REF_PATH_MAX 1024    /* bytes in a repo-relative file path */
#define REF_NAME_MAX 255     /* bytes in one path component */
#define REF_REPO_MAX 96	     /* bytes in one part of a repo id */
#define REF_REVISION_MAX 255 /* bytes in a revision */
#define REF_FOLDER_MAX 256   /* bytes in a hub folder name, NUL included */

enum ref_kind { REF_HF, REF_HTTPS, REF_S3, REF_OCI, REF_FILE };
enum repo_type { REPO_MODEL, REPO_DATASET, REPO_SPACE };

struct ref {
	enum ref_kind kind;
	enum repo_type type; /* REF_HF only */
	char *repo;	     /* REF_HF: "org/name" or legacy "name" */
	char *revision;	     /* REF_HF: NULL when not given; REF_OCI: tag */
	char *url;	     /* REF_HTTPS: URL without fragment; REF_S3:
				   "bucket/prefix"; REF_OCI: "registry/repo";
				   REF_FILE: absolute directory path */
	char sha256[65];     /* REF_HTTPS #sha256= or REF_OCI @sha256:, or "" */
};

/* Zeroes *ref; ref_release() on it is then safe. */
void ref_init(struct ref *ref);
/* Frees the strings inside *ref and zeroes it. */
void ref_release(struct ref *ref);

/*
 * Parses text into *ref (which must be initialised; it is released first).
 * Returns 0, -EINVAL with *why set, or -ENOMEM.  On error *ref is empty.
 */
int ref_parse(struct ref *ref, const char *text, const char **why);

/*
 * The canonical text of *ref; hf references always carry "@rev" ("@main"
 * when none was given).  Returns a string the caller frees, or NULL when out
 * of memory.
 */
char *ref_canonical(const struct ref *ref);

/* The revision asked for: ref->revision, or "main" when none was given. */
const char *ref_revision(const struct ref *ref);

/*
 * Writes the Hugging Face cache folder name of an hf reference
 * ("models--org--name", "datasets--org--name") into buf.  Returns 0,
 * -EINVAL for a reference of another kind, or -ENAMETOOLONG.
 */
int ref_folder(const struct ref *ref, char *buf, size_t len);
int ref_folder_of(enum repo_type type, const char *repo, char *buf, size_t len);

/* "model", "dataset", "space"; and back (0 or -EINVAL). */
const char *ref_type_name(enum repo_type type);
int ref_type_parse(const char *name, enum repo_type *type);

/*
 * A Hub repo id: one or two '/'-separated parts, each 1..REF_REPO_MAX of
 * [A-Za-z0-9._-], not starting or ending with '.' or '-', no "--" and no
 * "..", not ending in ".git".
 */
int ref_check_repo(const char *repo, const char **why);

/*
 * A revision (branch, tag, commit or refs/pr/N): 1..REF_REVISION_MAX bytes
 * of printable ASCII without space, '~', '^', ':', '?', '*', '[', '\\';
 * no "..", "//" or "@{"; not starting or ending with '/' or '.'; not ending
 * in ".lock".
 */
int ref_check_revision(const char *rev, const char **why);

/*
 * A repo-relative file path: not empty, not absolute, no empty, "." or ".."
 * component, no backslash, no control character (0x01-0x1f, 0x7f), each
 * component at most REF_NAME_MAX bytes and the whole at most REF_PATH_MAX.
 * len is the length the caller believes the path has: a NUL byte before it
 * is rejected (names that arrive as JSON can carry one).
 */
int ref_check_path(const char *path, size_t len, const char **why);

/* True when s is exactly len lowercase hex digits. */
int ref_is_hex(const char *s, size_t len);

#endif
