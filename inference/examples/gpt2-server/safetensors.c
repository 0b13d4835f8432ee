/*
 * safetensors: parse and validate a .safetensors header (safetensors.h).
 *
 * The parser trusts nothing in the file: every number read from it is
 * checked against the file's size before it is used as a length, an
 * offset or a count, and every product is checked for overflow.  The JSON
 * is parsed by jansson from the bounded header only, never past it.  What
 * it keeps is one array of tensors, sorted by their offset, whose data
 * pointers are proven to lie inside the caller's buffer; a caller that
 * uses only those pointers and sizes cannot read outside the file.
 *
 * A failure leaves one sentence in st->error naming the problem (and the
 * tensor, quoted, when there is one); the caller adds the file's name.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "safetensors.h"

static const struct {
	const char *name;
	size_t size;
} dtypes[] = {
	[ST_BOOL] = { "BOOL", 1 },
	[ST_U8] = { "U8", 1 },
	[ST_I8] = { "I8", 1 },
	[ST_F8_E4M3] = { "F8_E4M3", 1 },
	[ST_F8_E5M2] = { "F8_E5M2", 1 },
	[ST_I16] = { "I16", 2 },
	[ST_U16] = { "U16", 2 },
	[ST_F16] = { "F16", 2 },
	[ST_BF16] = { "BF16", 2 },
	[ST_I32] = { "I32", 4 },
	[ST_U32] = { "U32", 4 },
	[ST_F32] = { "F32", 4 },
	[ST_I64] = { "I64", 8 },
	[ST_U64] = { "U64", 8 },
	[ST_F64] = { "F64", 8 },
};
#define NDTYPES (sizeof(dtypes) / sizeof(dtypes[0]))

const char *
safetensors_dtype_name(enum safetensors_dtype dtype)
{
	return (size_t)dtype < NDTYPES ? dtypes[dtype].name : "?";
}

size_t
safetensors_dtype_size(enum safetensors_dtype dtype)
{
	return (size_t)dtype < NDTYPES ? dtypes[dtype].size : 0;
}

int
safetensors_aligned(const struct safetensors_tensor *t)
{
	return (uintptr_t)t->data % safetensors_dtype_size(t->dtype) == 0;
}

static void seterr(struct safetensors *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* st->error, one line: jansson's messages quote the file's bytes. */
static void
seterr(struct safetensors *st, const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	vsnprintf(st->error, sizeof(st->error), fmt, ap);
	va_end(ap);
	for (p = st->error; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

/*
 * A tensor's name as it may appear in a message: at most 64 bytes, no
 * control character (names come from the file).
 */
static void
printable(char *out, size_t outsz, const char *name)
{
	size_t i;

	for (i = 0; name[i] != '\0' && i + 1 < outsz && i < 64; i++)
		out[i] = (unsigned char)name[i] < 0x20 || name[i] == 0x7f
		    ? '?'
		    : name[i];
	out[i] = '\0';
}

/* A JSON integer in [0, 2^62], which leaves room for sums of two. */
static int
get_u64(json_t *v, uint64_t *out)
{
	json_int_t i;

	if (!json_is_integer(v))
		return -1;
	i = json_integer_value(v);
	if (i < 0 || (uint64_t)i > (UINT64_C(1) << 62))
		return -1;
	*out = (uint64_t)i;
	return 0;
}

static int
parse_dtype(const char *s, enum safetensors_dtype *out)
{
	size_t i;

	for (i = 0; i < NDTYPES; i++)
		if (strcmp(s, dtypes[i].name) == 0) {
			*out = (enum safetensors_dtype)i;
			return 0;
		}
	return -1;
}

/* The "__metadata__" entry: an object of strings, which nothing reads. */
static int
check_metadata(struct safetensors *st, json_t *v)
{
	const char *key;
	json_t *s;

	if (!json_is_object(v)) {
		seterr(st, "__metadata__ is not an object");
		return -EINVAL;
	}
	json_object_foreach(v, key, s)
		if (!json_is_string(s)) {
			seterr(st,
			    "__metadata__ has a value that is not a "
			    "string");
			return -EINVAL;
		}
	return 0;
}

/*
 * One tensor's entry: dtype, shape and offsets, checked against the data
 * area of data_size bytes at data.
 */
static int
parse_tensor(struct safetensors *st, struct safetensors_tensor *t,
    const char *name, json_t *v, const uint8_t *data, uint64_t data_size)
{
	json_t *dtype, *shape, *offsets;
	uint64_t begin, end, dim;
	char pname[72];
	size_t i;

	printable(pname, sizeof(pname), name);
	if (strlen(name) > SAFETENSORS_NAME_MAX) {
		seterr(st, "tensor '%s...': name longer than %d bytes", pname,
		    SAFETENSORS_NAME_MAX);
		return -EINVAL;
	}
	if (!json_is_object(v)) {
		seterr(st, "tensor '%s': entry is not an object", pname);
		return -EINVAL;
	}
	dtype = json_object_get(v, "dtype");
	shape = json_object_get(v, "shape");
	offsets = json_object_get(v, "data_offsets");
	if (!json_is_string(dtype) || !json_is_array(shape) ||
	    !json_is_array(offsets)) {
		seterr(st,
		    "tensor '%s': needs a string dtype, a shape array and a "
		    "data_offsets array",
		    pname);
		return -EINVAL;
	}
	if (parse_dtype(json_string_value(dtype), &t->dtype) < 0) {
		char pdtype[72];

		printable(pdtype, sizeof(pdtype), json_string_value(dtype));
		seterr(st, "tensor '%s': unknown dtype '%s'", pname, pdtype);
		return -EINVAL;
	}
	if (json_array_size(shape) > SAFETENSORS_NDIM_MAX) {
		seterr(st, "tensor '%s': %zu dimensions, more than %d", pname,
		    json_array_size(shape), SAFETENSORS_NDIM_MAX);
		return -EINVAL;
	}
	t->ndim = (unsigned)json_array_size(shape);
	t->nelem = 1;
	for (i = 0; i < t->ndim; i++) {
		if (get_u64(json_array_get(shape, i), &dim) < 0) {
			seterr(st,
			    "tensor '%s': shape[%zu] is not a non-negative "
			    "integer",
			    pname, i);
			return -EINVAL;
		}
		t->shape[i] = dim;
		/* At most 2^60 elements: their bytes still fit 63 bits. */
		if (dim != 0 && t->nelem > (UINT64_C(1) << 60) / dim) {
			seterr(st, "tensor '%s': shape has too many elements",
			    pname);
			return -EINVAL;
		}
		t->nelem *= dim;
	}
	if (json_array_size(offsets) != 2 ||
	    get_u64(json_array_get(offsets, 0), &begin) < 0 ||
	    get_u64(json_array_get(offsets, 1), &end) < 0) {
		seterr(st,
		    "tensor '%s': data_offsets is not two non-negative "
		    "integers",
		    pname);
		return -EINVAL;
	}
	if (begin > end) {
		seterr(st,
		    "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] "
		    "end before they begin",
		    pname, begin, end);
		return -EINVAL;
	}
	if (end > data_size) {
		seterr(st,
		    "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] "
		    "past the end of the data area (%" PRIu64 " bytes)",
		    pname, begin, end, data_size);
		return -EINVAL;
	}
	/* nelem <= 2^60, so this product cannot overflow. */
	t->size = t->nelem * safetensors_dtype_size(t->dtype);
	if (t->size != end - begin) {
		seterr(st,
		    "tensor '%s': shape and dtype %s make %" PRIu64 " bytes, "
		    "data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64,
		    pname, safetensors_dtype_name(t->dtype), t->size, begin,
		    end, end - begin);
		return -EINVAL;
	}
	t->data = data + begin;
	t->name = strdup(name);
	if (t->name == NULL) {
		seterr(st, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int
by_offset(const void *a, const void *b)
{
	const struct safetensors_tensor *x = a, *y = b;

	if (x->data != y->data)
		return x->data < y->data ? -1 : 1;
	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return 0;
}

int
safetensors_parse(struct safetensors *st, const void *buf, size_t size)
{
	const uint8_t *p = buf;
	const uint8_t *data;
	uint64_t n, data_size;
	json_error_t je;
	json_t *root = NULL, *v;
	const char *key;
	size_t i, cap;
	int rc = 0;

	memset(st, 0, sizeof(*st));
	if (size < 8) {
		seterr(st, "%zu bytes, shorter than the 8-byte header length",
		    size);
		return -EINVAL;
	}
	n = 0;
	for (i = 0; i < 8; i++)
		n |= (uint64_t)p[i] << (8 * i);
	if (n > SAFETENSORS_HEADER_MAX) {
		seterr(st,
		    "header length %" PRIu64 " is over the limit of %u bytes",
		    n, SAFETENSORS_HEADER_MAX);
		return -EINVAL;
	}
	if (n > size - 8) {
		seterr(st,
		    "header length %" PRIu64 " runs past the end of the file "
		    "(%zu bytes): truncated?",
		    n, size);
		return -EINVAL;
	}
	if (n < 2 || p[8] != '{') {
		seterr(st, "header does not start with a JSON object");
		return -EINVAL;
	}
	st->header_size = n;
	data = p + 8 + n;
	data_size = size - 8 - n;

	root = json_loadb((const char *)p + 8, (size_t)n,
	    JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		seterr(st, "header is not valid JSON: %s (at byte %d)", je.text,
		    je.position);
		rc = -EINVAL;
		goto out;
	}
	if (!json_is_object(root)) {
		seterr(st, "header is not a JSON object");
		rc = -EINVAL;
		goto out;
	}
	/* Each entry took a few bytes of the bounded header. */
	cap = json_object_size(root);
	st->tensors = calloc(cap > 0 ? cap : 1, sizeof(*st->tensors));
	if (st->tensors == NULL) {
		seterr(st, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	json_object_foreach(root, key, v) {
		if (strcmp(key, "__metadata__") == 0) {
			if ((rc = check_metadata(st, v)) < 0)
				goto out;
			continue;
		}
		rc = parse_tensor(st, &st->tensors[st->ntensors], key, v, data,
		    data_size);
		if (rc < 0)
			goto out;
		st->ntensors++;
	}
	qsort(st->tensors, st->ntensors, sizeof(*st->tensors), by_offset);
	for (i = 1; i < st->ntensors; i++) {
		const struct safetensors_tensor *a = &st->tensors[i - 1];
		const struct safetensors_tensor *b = &st->tensors[i];
		char pa[72], pb[72];

		if (b->data >= a->data + a->size)
			continue;
		printable(pa, sizeof(pa), a->name);
		printable(pb, sizeof(pb), b->name);
		seterr(st, "tensors '%s' and '%s' overlap", pa, pb);
		rc = -EINVAL;
		goto out;
	}
out:
	json_decref(root);
	if (rc < 0) {
		char error[sizeof(st->error)];

		memcpy(error, st->error, sizeof(error));
		safetensors_release(st);
		memcpy(st->error, error, sizeof(error));
	}
	return rc;
}

void
safetensors_release(struct safetensors *st)
{
	size_t i;

	for (i = 0; i < st->ntensors; i++)
		free(st->tensors[i].name);
	free(st->tensors);
	memset(st, 0, sizeof(*st));
}

const struct safetensors_tensor *
safetensors_find(const struct safetensors *st, const char *name)
{
	size_t i;

	for (i = 0; i < st->ntensors; i++)
		if (strcmp(st->tensors[i].name, name) == 0)
			return &st->tensors[i];
	return NULL;
}
