/*
 * tokenizer: GPT-2's byte-level BPE, from vocab.json and merges.txt.
 *
 * Text is split into pre-tokens by GPT-2's pattern, each pre-token's
 * bytes are mapped to printable characters (bytes_to_unicode), merged by
 * the ranks of merges.txt and looked up in vocab.json.  "<|endoftext|>"
 * in the text is the special token when the vocabulary has it.  Decoding
 * maps each token's characters back to bytes.  See tokenizer.c for where
 * the pre-tokenizer's Unicode classes are approximated.
 */
#ifndef TOKENIZER_H
#define TOKENIZER_H

#include <stddef.h>

/* Bounds on what the files may hold. */
#define TOKENIZER_FILE_MAX (64u * 1024 * 1024)
#define TOKENIZER_TOKEN_MAX 1024 /* bytes in one vocabulary entry */

struct tokenizer;

/*
 * Loads vocab.json and merges.txt from dir; every id must be in
 * [0, vocab_size).  Returns 0 and a tokenizer the caller frees with
 * tokenizer_free(), or a negative errno code with one sentence, naming
 * the file, in err.
 */
int tokenizer_load(struct tokenizer **out, const char *dir, int vocab_size,
    char *err, size_t errsz);

void tokenizer_free(struct tokenizer *tok);

/* The id of "<|endoftext|>", or -1 when the vocabulary lacks it. */
int tokenizer_eot(const struct tokenizer *tok);

/* The number of entries in vocab.json. */
size_t tokenizer_size(const struct tokenizer *tok);

/*
 * The ids of text[0..len) (any bytes: invalid UTF-8 is encoded byte by
 * byte).  Returns 0 with *ids (malloc'd, the caller frees it) and *n, or
 * -ENOMEM, or -EINVAL when a piece has no vocabulary entry (a vocabulary
 * without all 256 byte tokens).
 */
int tokenizer_encode(const struct tokenizer *tok, const char *text, size_t len,
    int **ids, size_t *n);

/*
 * The bytes of token id, in *len; NULL for an id with no entry.  Valid
 * until tokenizer_free().
 */
const char *tokenizer_token(const struct tokenizer *tok, int id, size_t *len);

#endif
