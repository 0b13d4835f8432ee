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
 * Describes ref at the Hub: resolves its revision to a commit (a full
 * commit id needs no call) and, when list is set, lists the files at that
 * commit, filtered by the include and exclude globs.  done(arg) is called
 * from the loop once d is filled in: d->error says how it went, with a
 * message for people; on PULL_OK with list, d->files belongs to the caller
 * (pull_files_free()).  o, ref and d must live until then.  Returns 0, or
 * a negative errno (-EINVAL: a commit id without list) and then done() is
 * never called.
 */
int hf_describe_start(const struct hf_origin *o, struct fetch *fetch,
    const struct ref *ref, int list, struct origin_desc *d,
    void (*done)(void *arg), void *arg);

/*
 * The token from HF_TOKEN, else from the file token_path names (a regular
 * file of at most 4 KiB), with the whitespace around it trimmed; NULL when
 * there is none, or it holds a space or a control character.  The caller
 * frees it.
 */
char *hf_token(const char *token_path);
/*
 * Tells the process it holds token (NULL: none).  From the first token on,
 * it is not dumpable (PR_SET_DUMPABLE 0: no core dump, /proc/<pid> owned
 * by root) until it exits, even if it gives the token up.
 */
void hf_token_held(const char *token);

#endif
