/*
 * origin_https: single files over HTTPS (https://host/path#sha256=HEX).
 *
 * Each URL is one file of a model, named by the last component of the
 * URL's path.  A HEAD (following redirects, retried like the API calls)
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
 * Describes refs[0..n) (all REF_HTTPS) as the files of one model: names
 * from the URLs, sizes from HEADs made in parallel.  done(arg) is called
 * from the loop once d is filled in (see hf_describe_start()); two URLs
 * with the same file name fail it.  refs and d must live until then.
 * Returns 0, or a negative errno and then done() is never called
 * (-EINVAL: a URL whose file name is unusable, said in d->message).
 */
int https_describe_start(struct fetch *fetch, const struct ref *refs, size_t n,
    struct origin_desc *d, void (*done)(void *arg), void *arg);

/*
 * A model name for a single URL: "<host>/<file name>" when that is a valid
 * repo id ("example.com/model.gguf"), written to buf.  0 or -EINVAL.
 */
int https_default_name(const struct ref *ref, char *buf, size_t len);

#endif
