/*
 * origin_https: single files over HTTPS (https://host/path#sha256=HEX).
 *
 * Each URL is one file of a model, named by the last component of the
 * URL's path.  A HEAD (following redirects, retried like the downloads)
 * learns each file's size, so that the pull can reserve space and fetch
 * large files as parallel ranges.  The digest in the URL is what the bytes
 * are checked against; a URL without one gives a file whose digest is
 * whatever arrives (trust on first use), which the caller must have
 * agreed to.
 */
#ifndef MC_ORIGIN_HTTPS_H
#define MC_ORIGIN_HTTPS_H

#include <stddef.h>

#include "fetch.h"
#include "pull.h"
#include "ref.h"

/*
 * The files of refs[0..n) (all REF_HTTPS).  On PULL_OK *files (n entries)
 * belongs to the caller: pull_files_free().  Two URLs with the same file name
 * are refused.
 */
enum pull_error https_list(struct fetch *fetch, const struct ref *refs,
    size_t n, struct pull_file **files, char *err, size_t errlen);

/*
 * A model name for a single URL: "<host>/<file name>" when that is a valid
 * repo id ("example.com/model.gguf"), written to buf.  0 or -EINVAL.
 */
int https_default_name(const struct ref *ref, char *buf, size_t len);

#endif
