/*
 * tokenizer: GPT-2's byte-level BPE (tokenizer.h).
 *
 * The data it owns, all read once at load and immutable after:
 *   - the vocabulary, a hash table from a token's characters (in the
 *     bytes_to_unicode alphabet, UTF-8) to its id, and for each id the
 *     bytes it decodes to;
 *   - the merges, a hash table from the line "A B" of merges.txt to its
 *     rank (its index among the lines; a repeated line takes the later
 *     rank, as a Python dict built from the lines does).
 * The tables are only read after load, so any number of threads may
 * encode at once.
 *
 * Pre-tokenization follows GPT-2's pattern
 *
 *	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *
 * written as a scanner over code points (pretoken()).  The classes are
 * exact for ASCII and for \s (Unicode White_Space: U+001C..U+001F, which
 * Python's str.isspace() adds, are not spaces).  \p{L} and \p{N} are
 * Unicode 15.0's, as the Python regex module (python3-regex 2022.10.31,
 * which GPT-2's encoder.py and reference.py use) has them, from the range
 * tables of unicode_classes.h, which unicode_classes.py generates.
 * The approximation: a code point assigned after 15.0 counts as neither
 * letter nor number (reference.py without the regex module falls back on
 * its Python's unicodedata, which may be older: they differ only on code
 * points unassigned in one of the two).  Bytes that are not valid UTF-8
 * (which a Python str cannot hold, so the reference never sees them)
 * each count as one code point of neither class, so any bytes encode:
 * the byte-level alphabet has a token for each byte.
 *
 * BPE merges, in each pre-token, the adjacent pair of lowest rank, every
 * occurrence left to right, until no pair has a rank.  Symbols are spans
 * of the pre-token's mapped string, so a merge only widens a span.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "tokenizer.h"
#include "unicode_classes.h" /* letters[], numbers[] */

#define EOT "<|endoftext|>"

/* A hash table from byte strings to ints; keys live in the caller's
 * arena.  Open addressing, linear probing, at most half full. */
struct strmap {
	struct strmap_entry {
		const char *key; /* NULL: empty */
		uint32_t len;
		int value;
	} * slots;
	size_t cap; /* a power of two */
	size_t n;
};

struct tokenizer {
	struct strmap vocab;  /* characters -> id */
	struct strmap merges; /* "A B" -> rank */
	char *vocab_keys;     /* the vocabulary's characters, NUL-separated */
	char *merges_text;    /* merges.txt, its lines NUL-ended */
	char *bytes;	      /* each id's bytes, back to back */
	size_t *bytes_off;    /* [vocab_size + 1]; an id with no entry has
				 an empty range and has_entry[id] == 0 */
	unsigned char *has_entry;
	int vocab_size;
	size_t nvocab;
	int eot;
};

enum cpclass { CP_OTHER, CP_LETTER, CP_NUMBER, CP_SPACE };

static enum cpclass cp_class(uint32_t cp);

/* FNV-1a. */
static uint32_t
hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

static int
strmap_init(struct strmap *m, size_t n)
{
	m->cap = 16;
	while (m->cap < 2 * n)
		m->cap *= 2;
	m->n = 0;
	m->slots = calloc(m->cap, sizeof(*m->slots));
	return m->slots == NULL ? -ENOMEM : 0;
}

static void
strmap_release(struct strmap *m)
{
	free(m->slots);
	m->slots = NULL;
}

static struct strmap_entry *
strmap_slot(const struct strmap *m, const char *key, size_t len)
{
	size_t i = hash(key, len) & (m->cap - 1);

	for (;;) {
		struct strmap_entry *e = &m->slots[i];

		if (e->key == NULL ||
		    (e->len == len && memcmp(e->key, key, len) == 0))
			return e;
		i = (i + 1) & (m->cap - 1);
	}
}

/* Sets key (which must outlive m) to value; m was sized for it. */
static void
strmap_put(struct strmap *m, const char *key, size_t len, int value)
{
	struct strmap_entry *e = strmap_slot(m, key, len);

	if (e->key == NULL) {
		e->key = key;
		e->len = (uint32_t)len;
		m->n++;
	}
	e->value = value;
}

/* The value of key, or -1. */
static int
strmap_get(const struct strmap *m, const char *key, size_t len)
{
	const struct strmap_entry *e = strmap_slot(m, key, len);

	return e->key == NULL ? -1 : e->value;
}

/*
 * GPT-2's bytes_to_unicode(): the printable Latin-1 bytes stand for
 * themselves, the other 68 for U+0100 onwards in byte order.
 */
static uint32_t byte_cp[256];
static int cp_byte[0x100 + 68]; /* -1: no byte */

static void
init_byte_map(void)
{
	uint32_t next = 0x100;
	int b;

	for (b = 0; b < (int)(sizeof(cp_byte) / sizeof(cp_byte[0])); b++)
		cp_byte[b] = -1;
	for (b = 0; b < 256; b++) {
		int printable = (b >= '!' && b <= '~') ||
		    (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);

		byte_cp[b] = printable ? (uint32_t)b : next++;
		cp_byte[byte_cp[b]] = b;
	}
}

/*
 * The code point at s[0..n), n > 0, in *cp, and its length; a byte that
 * does not start a valid sequence (overlong, surrogate, past U+10FFFF,
 * cut short) is one code point UINT32_MAX.
 */
static size_t
utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t len, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, c &= 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, c &= 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, c &= 0x07, min = 0x10000;
	else
		goto bad;
	if (n < len)
		goto bad;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			goto bad;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		goto bad;
	*cp = c;
	return len;
bad:
	*cp = UINT32_MAX;
	return 1;
}

static size_t
utf8_put(char *out, uint32_t c)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | (c >> 6));
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | (c >> 12));
		out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (c >> 18));
	out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

static enum cpclass
class_at(const char *s, size_t n, size_t i, size_t *len)
{
	uint32_t cp;

	*len = utf8_next((const unsigned char *)s + i, n - i, &cp);
	return cp == UINT32_MAX ? CP_OTHER : cp_class(cp);
}

/*
 * The end of the pre-token that starts at s[i] (i < n): the first of the
 * pattern's alternatives that matches there, as the regex would choose.
 */
static size_t
pretoken(const char *s, size_t n, size_t i)
{
	static const char *const suffixes[] = { "s", "t", "re", "ve", "m", "ll",
		"d" };
	enum cpclass cls;
	size_t j, k, len, last;
	unsigned m;

	/* 's 't 're 've 'm 'll 'd */
	if (s[i] == '\'')
		for (m = 0; m < sizeof(suffixes) / sizeof(suffixes[0]); m++) {
			size_t sl = strlen(suffixes[m]);

			if (n - i - 1 >= sl &&
			    memcmp(s + i + 1, suffixes[m], sl) == 0)
				return i + 1 + sl;
		}
	/* ' ?' then a run of letters, of numbers, or of neither. */
	j = s[i] == ' ' && i + 1 < n ? i + 1 : i;
	cls = class_at(s, n, j, &len);
	if (cls != CP_SPACE) {
		k = j + len;
		while (k < n && class_at(s, n, k, &len) == cls)
			k += len;
		return k;
	}
	/* \s+(?!\S), else \s+: a run of spaces followed by more text leaves
	 * its last space to the pre-token after it, unless it is alone. */
	(void)class_at(s, n, i, &len);
	last = i;
	k = i + len;
	while (k < n && class_at(s, n, k, &len) == CP_SPACE) {
		last = k;
		k += len;
	}
	if (k < n && last > i)
		k = last;
	return k;
}

/*
 * BPE over one pre-token w[0..wlen), in the mapped alphabet; appends its
 * ids to ids[*n].  sp has room for wlen spans, key for 2 * wlen + 1
 * bytes.
 */
struct span {
	size_t b, e;
};

static int
bpe(const struct tokenizer *tok, const char *w, size_t wlen, struct span *sp,
    char *key, int *ids, size_t *n)
{
	size_t ns = 0, i, o, best_i = 0;
	struct span a, b;
	uint32_t cp;
	int best, r;

	for (i = 0; i < wlen;
	     i += utf8_next((const unsigned char *)w + i, wlen - i, &cp)) {
		sp[ns].b = i;
		sp[ns].e =
		    i + utf8_next((const unsigned char *)w + i, wlen - i, &cp);
		ns++;
	}
	while (ns > 1) {
		best = -1;
		for (i = 0; i + 1 < ns; i++) {
			size_t la = sp[i].e - sp[i].b,
			       lb = sp[i + 1].e - sp[i + 1].b;

			memcpy(key, w + sp[i].b, la);
			key[la] = ' ';
			memcpy(key + la + 1, w + sp[i + 1].b, lb);
			r = strmap_get(&tok->merges, key, la + 1 + lb);
			if (r >= 0 && (best < 0 || r < best)) {
				best = r;
				best_i = i;
			}
		}
		if (best < 0)
			break;
		a = sp[best_i];
		b = sp[best_i + 1];
		for (i = 0, o = 0; i < ns; o++) {
			if (i + 1 < ns && sp[i].e - sp[i].b == a.e - a.b &&
			    sp[i + 1].e - sp[i + 1].b == b.e - b.b &&
			    memcmp(w + sp[i].b, w + a.b, a.e - a.b) == 0 &&
			    memcmp(w + sp[i + 1].b, w + b.b, b.e - b.b) == 0) {
				sp[o].b = sp[i].b;
				sp[o].e = sp[i + 1].e;
				i += 2;
			} else {
				sp[o] = sp[i];
				i++;
			}
		}
		ns = o;
	}
	for (i = 0; i < ns; i++) {
		r = strmap_get(&tok->vocab, w + sp[i].b, sp[i].e - sp[i].b);
		if (r < 0)
			return -EINVAL;
		ids[(*n)++] = r;
	}
	return 0;
}

/* Text with no special token in it. */
static int
encode_plain(const struct tokenizer *tok, const char *s, size_t len, int *ids,
    size_t *n)
{
	char *w = NULL, *key = NULL;
	struct span *sp = NULL;
	size_t i, end, wl, k;
	int rc = 0;

	/* A pre-token's mapped form takes at most 2 bytes a byte. */
	w = malloc(2 * len + 1);
	key = malloc(4 * len + 2);
	sp = malloc((2 * len + 1) * sizeof(*sp));
	if (w == NULL || key == NULL || sp == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < len; i = end) {
		end = pretoken(s, len, i);
		for (wl = 0, k = i; k < end; k++)
			wl += utf8_put(w + wl, byte_cp[(unsigned char)s[k]]);
		if ((rc = bpe(tok, w, wl, sp, key, ids, n)) < 0)
			goto out;
	}
out:
	free(w);
	free(key);
	free(sp);
	return rc;
}

int
tokenizer_encode(const struct tokenizer *tok, const char *text, size_t len,
    int **ids, size_t *n)
{
	const char *p = text, *end = text + len, *hit;
	int rc = 0;

	*n = 0;
	/* No piece is shorter than one byte. */
	*ids = malloc((len + 1) * sizeof(**ids));
	if (*ids == NULL)
		return -ENOMEM;
	while (p < end) {
		hit = tok->eot < 0
		    ? NULL
		    : memmem(p, (size_t)(end - p), EOT, sizeof(EOT) - 1);
		if (hit == NULL)
			hit = end;
		if (hit > p &&
		    (rc = encode_plain(tok, p, (size_t)(hit - p), *ids, n)) < 0)
			break;
		if (hit == end)
			break;
		(*ids)[(*n)++] = tok->eot;
		p = hit + sizeof(EOT) - 1;
	}
	if (rc < 0) {
		free(*ids);
		*ids = NULL;
		*n = 0;
	}
	return rc;
}

const char *
tokenizer_token(const struct tokenizer *tok, int id, size_t *len)
{
	if (id < 0 || id >= tok->vocab_size || !tok->has_entry[id])
		return NULL;
	*len = tok->bytes_off[id + 1] - tok->bytes_off[id];
	return tok->bytes + tok->bytes_off[id];
}

int
tokenizer_eot(const struct tokenizer *tok)
{
	return tok->eot;
}

size_t
tokenizer_size(const struct tokenizer *tok)
{
	return tok->nvocab;
}

/* The file dir/name, whole and NUL-ended, at most max bytes. */
static int
read_file(const char *dir, const char *name, size_t max, char **out,
    size_t *outlen, char *err, size_t errsz)
{
	char path[4096];
	struct stat sb;
	size_t got = 0;
	ssize_t r;
	char *buf = NULL;
	int fd, rc = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    sizeof(path)) {
		snprintf(err, errsz, "'%s/%s': path too long", dir, name);
		return -ENAMETOOLONG;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		rc = -errno;
		snprintf(err, errsz, "cannot open '%s': %s", path,
		    strerror(errno));
		return rc;
	}
	if (fstat(fd, &sb) < 0) {
		rc = -errno;
		snprintf(err, errsz, "cannot stat '%s': %s", path,
		    strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > max) {
		snprintf(err, errsz,
		    "'%s': not a regular file of at most %zu "
		    "bytes",
		    path, max);
		rc = -EINVAL;
		goto out;
	}
	if ((buf = malloc((size_t)sb.st_size + 1)) == NULL) {
		snprintf(err, errsz, "'%s': out of memory", path);
		rc = -ENOMEM;
		goto out;
	}
	while (got < (size_t)sb.st_size) {
		r = read(fd, buf + got, (size_t)sb.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -errno : -EIO;
			snprintf(err, errsz, "cannot read '%s': %s", path,
			    r < 0 ? strerror(errno) : "file shrank");
			goto out;
		}
		got += (size_t)r;
	}
	buf[got] = '\0';
	*out = buf;
	*outlen = got;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

/* vocab.json: the table, each id's bytes, the end-of-text id. */
static int
load_vocab(struct tokenizer *tok, const char *dir, char *err, size_t errsz)
{
	const struct strmap_entry **by_id = NULL;
	json_t *root = NULL, *v;
	json_error_t je;
	const char *key;
	char *text = NULL, *kp, *bp;
	size_t len, keys = 0, i;
	json_int_t id;
	uint32_t cp;
	int rc;

	rc = read_file(dir, "vocab.json", TOKENIZER_FILE_MAX, &text, &len, err,
	    errsz);
	if (rc < 0)
		return rc;
	root = json_loadb(text, len, 0, &je);
	if (!json_is_object(root)) {
		snprintf(err, errsz, "'%s/vocab.json': not a JSON object%s%s",
		    dir, root == NULL ? ": " : "", root == NULL ? je.text : "");
		rc = -EINVAL;
		goto out;
	}
	json_object_foreach(root, key, v) {
		id = json_is_integer(v) ? json_integer_value(v) : -1;
		if (id < 0 || id >= tok->vocab_size ||
		    strlen(key) > TOKENIZER_TOKEN_MAX) {
			snprintf(err, errsz,
			    "'%s/vocab.json': an entry is not a token of at "
			    "most %d bytes with an id below vocab_size %d",
			    dir, TOKENIZER_TOKEN_MAX, tok->vocab_size);
			rc = -EINVAL;
			goto out;
		}
		keys += strlen(key) + 1;
	}
	tok->nvocab = json_object_size(root);
	tok->vocab_keys = malloc(keys + 1);
	/* A character decodes to at most 4 bytes, and takes at least 1. */
	tok->bytes = malloc(4 * keys + 1);
	tok->bytes_off =
	    calloc((size_t)tok->vocab_size + 1, sizeof(*tok->bytes_off));
	tok->has_entry = calloc((size_t)tok->vocab_size, 1);
	by_id = calloc((size_t)tok->vocab_size, sizeof(*by_id));
	if (tok->vocab_keys == NULL || tok->bytes == NULL || by_id == NULL ||
	    tok->bytes_off == NULL || tok->has_entry == NULL ||
	    strmap_init(&tok->vocab, tok->nvocab) < 0) {
		snprintf(err, errsz, "'%s/vocab.json': out of memory", dir);
		rc = -ENOMEM;
		goto out;
	}
	kp = tok->vocab_keys;
	json_object_foreach(root, key, v) {
		len = strlen(key);
		memcpy(kp, key, len + 1);
		strmap_put(&tok->vocab, kp, len, (int)json_integer_value(v));
		kp += len + 1;
	}
	/* Each id's bytes, in id order so that the offsets ascend. */
	for (i = 0; i < tok->vocab.cap; i++) {
		struct strmap_entry *e = &tok->vocab.slots[i];

		if (e->key != NULL)
			by_id[e->value] = e;
	}
	bp = tok->bytes;
	for (id = 0; id < tok->vocab_size; id++) {
		const struct strmap_entry *e = by_id[id];
		size_t k, l;

		tok->bytes_off[id] = (size_t)(bp - tok->bytes);
		if (e == NULL)
			continue;
		tok->has_entry[id] = 1;
		for (k = 0; k < e->len; k += l) {
			l = utf8_next((const unsigned char *)e->key + k,
			    e->len - k, &cp);
			if (cp < sizeof(cp_byte) / sizeof(cp_byte[0]) &&
			    cp_byte[cp] >= 0)
				*bp++ = (char)cp_byte[cp];
			else
				bp += utf8_put(bp,
				    cp == UINT32_MAX ? 0xfffd : cp);
		}
	}
	tok->bytes_off[tok->vocab_size] = (size_t)(bp - tok->bytes);
	tok->eot = strmap_get(&tok->vocab, EOT, sizeof(EOT) - 1);
out:
	free(by_id);
	json_decref(root);
	free(text);
	return rc;
}

/* merges.txt: "A B" a line, after an optional "#version" line. */
static int
load_merges(struct tokenizer *tok, const char *dir, char *err, size_t errsz)
{
	char *p, *nl, *end;
	size_t len, lines = 1, lineno = 0;
	int rank = 0, rc;

	rc = read_file(dir, "merges.txt", TOKENIZER_FILE_MAX, &tok->merges_text,
	    &len, err, errsz);
	if (rc < 0)
		return rc;
	end = tok->merges_text + len;
	for (p = tok->merges_text; p < end; p++)
		lines += *p == '\n';
	if (strmap_init(&tok->merges, lines) < 0) {
		snprintf(err, errsz, "'%s/merges.txt': out of memory", dir);
		return -ENOMEM;
	}
	for (p = tok->merges_text; p < end; p = nl + 1) {
		char *sp;

		lineno++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		*nl = '\0';
		if ((lineno == 1 && strncmp(p, "#version", 8) == 0) || p == nl)
			continue;
		sp = memchr(p, ' ', (size_t)(nl - p));
		if (sp == NULL || memchr(sp + 1, ' ', (size_t)(nl - sp - 1)) ||
		    memchr(p, '\0', (size_t)(nl - p)) != NULL) {
			snprintf(err, errsz,
			    "'%s/merges.txt': line %zu is not two tokens", dir,
			    lineno);
			return -EINVAL;
		}
		strmap_put(&tok->merges, p, (size_t)(nl - p), rank++);
	}
	return 0;
}

int
tokenizer_load(struct tokenizer **out, const char *dir, int vocab_size,
    char *err, size_t errsz)
{
	struct tokenizer *tok;
	int rc;

	*out = NULL;
	if (byte_cp['!'] == 0)
		init_byte_map();
	if ((tok = calloc(1, sizeof(*tok))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	tok->vocab_size = vocab_size;
	tok->eot = -1;
	if ((rc = load_vocab(tok, dir, err, errsz)) < 0 ||
	    (rc = load_merges(tok, dir, err, errsz)) < 0) {
		tokenizer_free(tok);
		return rc;
	}
	*out = tok;
	return 0;
}

void
tokenizer_free(struct tokenizer *tok)
{
	if (tok == NULL)
		return;
	strmap_release(&tok->vocab);
	strmap_release(&tok->merges);
	free(tok->vocab_keys);
	free(tok->merges_text);
	free(tok->bytes);
	free(tok->bytes_off);
	free(tok->has_entry);
	free(tok);
}

static int
in_ranges(const struct cprange *r, size_t n, uint32_t cp)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cp < r[mid].lo)
			hi = mid;
		else if (cp > r[mid].hi)
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}

static enum cpclass
cp_class(uint32_t cp)
{
	if (cp < 0x80) {
		if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'))
			return CP_LETTER;
		if (cp >= '0' && cp <= '9')
			return CP_NUMBER;
		if (cp == ' ' || (cp >= '\t' && cp <= '\r'))
			return CP_SPACE;
		return CP_OTHER;
	}
	/* Unicode's White_Space beyond ASCII. */
	if (cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
	    (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
	    cp == 0x202f || cp == 0x205f || cp == 0x3000)
		return CP_SPACE;
	if (in_ranges(letters, sizeof(letters) / sizeof(letters[0]), cp))
		return CP_LETTER;
	if (in_ranges(numbers, sizeof(numbers) / sizeof(numbers[0]), cp))
		return CP_NUMBER;
	return CP_OTHER;
}
