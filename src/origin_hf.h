/*
 * origin_hf: the Hugging Face Hub as an origin (hf://org/name@rev).
 *
 * Resolves a revision to its commit (GET /api/{type}s/{repo}/revision/
 * {rev}; a full 40-hex commit needs no call), then lists the files at that
 * commit (GET /api/{type}s/{repo}/tree/{commit}?recursive=true, following
 * Link: rel="next") into pull_files whose URLs are the commit's /resolve
 * URLs.  Everything the Hub sends is checked before use: paths with
 * ref_check_path(), digests as hex, sizes, and a Link that would leave the
 * endpoint's host is refused.  See shared/reference/hf-hub.md, 1.9.
 */
#ifndef MC_ORIGIN_HF_H
#define MC_ORIGIN_HF_H

#include <stddef.h>

#include "fetch.h"
#include "pull.h"
#include "ref.h"

#define HF_PATTERNS_MAX 64

struct hf_origin {
	const char *endpoint; /* "https://huggingface.co", no trailing / */
	const char *token;    /* NULL: anonymous */
	const char *include[HF_PATTERNS_MAX]; /* fnmatch globs */
	size_t ninclude;
	const char *exclude[HF_PATTERNS_MAX];
	size_t nexclude;
};

/*
 * Resolves ref's revision into commit (41 bytes).  Returns PULL_OK or why
 * not, with a message for people in err.
 */
enum pull_error hf_resolve(const struct hf_origin *o, struct fetch *fetch,
    const struct ref *ref, char *commit, char *err, size_t errlen);

/*
 * Lists the files at commit, filtered by the include and exclude globs.
 * On PULL_OK *files (n entries) belongs to the caller: pull_files_free().
 */
enum pull_error hf_list(const struct hf_origin *o, struct fetch *fetch,
    const struct ref *ref, const char *commit, struct pull_file **files,
    size_t *n, char *err, size_t errlen);

/* The token from HF_TOKEN, else the file HF_TOKEN_PATH names; or NULL. */
char *hf_token(const char *token_path);

#endif
