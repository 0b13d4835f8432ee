/*
 * safetensors: the header of a .safetensors file, parsed and validated.
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON, and
 * the data area, which is the rest of the file.  The JSON is an object
 * whose keys are tensor names (and an optional "__metadata__" object of
 * strings) and whose values are {"dtype": D, "shape": [...],
 * "data_offsets": [BEGIN, END]}, the offsets relative to the data area.
 *
 * safetensors_parse() accepts a file only when reading every tensor it
 * lists is safe: the header length is bounded and inside the file, the
 * JSON is one object with no duplicate key, every dtype is known, every
 * shape's element count times the dtype's size is exactly END - BEGIN
 * (with no overflow), every range lies inside the data area, and the
 * ranges, sorted, do not overlap.  Alignment is not required (the format
 * does not promise it); safetensors_aligned() says whether a tensor's
 * bytes can be read in place as its element type.
 */
#ifndef SAFETENSORS_H
#define SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

/* The header may be at most this long (the reference library's bound). */
#define SAFETENSORS_HEADER_MAX (100u * 1024 * 1024)
/* At most this many dimensions, and names at most this long. */
#define SAFETENSORS_NDIM_MAX 8
#define SAFETENSORS_NAME_MAX 1024

enum safetensors_dtype {
	ST_BOOL,
	ST_U8,
	ST_I8,
	ST_F8_E4M3,
	ST_F8_E5M2,
	ST_I16,
	ST_U16,
	ST_F16,
	ST_BF16,
	ST_I32,
	ST_U32,
	ST_F32,
	ST_I64,
	ST_U64,
	ST_F64,
};

struct safetensors_tensor {
	char *name; /* NUL-ended, owned by the struct safetensors */
	enum safetensors_dtype dtype;
	unsigned ndim;
	uint64_t shape[SAFETENSORS_NDIM_MAX];
	uint64_t nelem;
	const uint8_t *data; /* inside the caller's buffer */
	uint64_t size;	     /* bytes: nelem * dtype size */
};

struct safetensors {
	struct safetensors_tensor *tensors; /* sorted by data offset */
	size_t ntensors;
	uint64_t header_size; /* the JSON's length, N */
	char error[256];      /* why the last parse failed */
};

/*
 * Parses and validates the file in buf[0..size) (usually a mapping of
 * it).  On success returns 0 and fills *st, whose tensors point into buf:
 * they are valid as long as buf is and until safetensors_release().  On
 * failure returns -EINVAL (a malformed file) or -ENOMEM, with one
 * sentence in st->error, and *st holds nothing to release (releasing it
 * is harmless).
 */
int safetensors_parse(struct safetensors *st, const void *buf, size_t size);

/* Frees what safetensors_parse() allocated; st may be reused. */
void safetensors_release(struct safetensors *st);

/* The tensor named name, or NULL; valid until safetensors_release(). */
const struct safetensors_tensor *safetensors_find(const struct safetensors *st,
    const char *name);

/* The dtype's name as the format spells it ("F32"), and its size. */
const char *safetensors_dtype_name(enum safetensors_dtype dtype);
size_t safetensors_dtype_size(enum safetensors_dtype dtype);

/* Whether t's bytes are aligned for its element type in memory. */
int safetensors_aligned(const struct safetensors_tensor *t);

#endif
