/*
 * fuzz_safetensors: a libFuzzer target for gpt2-server's safetensors
 * header parser (inference/examples/gpt2-server/safetensors.c), built
 * with clang, ASan and UBSan when configure finds them, and run briefly
 * by tests/fuzz/run.sh.
 *
 * Any input is a whole file.  Besides not crashing, leaking or reading
 * out of bounds, the parser must keep these promises, each checked here:
 *   - a refusal is -EINVAL (or -ENOMEM) with a non-empty one-line
 *     sentence of printable characters, and nothing left to release;
 *   - an accepted file has a header inside it, and every tensor a name,
 *     a known dtype, a shape whose elements times the dtype's size are
 *     its bytes, and bytes inside the file's data area (each one is read
 *     here, so ASan sees any that is not);
 *   - the tensors are sorted by offset and do not overlap, and each is
 *     found again by its name.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, \
			    __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

static void
check_refusal(const struct safetensors *st, int rc)
{
	size_t i, n = strnlen(st->error, sizeof(st->error));

	CHECK(rc == -EINVAL || rc == -ENOMEM);
	CHECK(n > 0 && n < sizeof(st->error));
	for (i = 0; i < n; i++)
		CHECK((unsigned char)st->error[i] >= 0x20 &&
		    st->error[i] != 0x7f);
	CHECK(st->tensors == NULL && st->ntensors == 0);
}

static void
check_tensor(const struct safetensors *st, const struct safetensors_tensor *t,
    const uint8_t *data, size_t size)
{
	const uint8_t *area = data + 8 + st->header_size;
	uint64_t nelem = 1, i;
	unsigned k;
	volatile uint8_t sum = 0;

	CHECK(t->name != NULL);
	CHECK(strlen(t->name) <= SAFETENSORS_NAME_MAX);
	CHECK(safetensors_dtype_size(t->dtype) > 0);
	CHECK(t->ndim <= SAFETENSORS_NDIM_MAX);
	for (k = 0; k < t->ndim; k++)
		nelem *= t->shape[k];
	CHECK(nelem == t->nelem);
	CHECK(t->size == t->nelem * safetensors_dtype_size(t->dtype));
	CHECK(t->data >= area && t->data <= data + size);
	CHECK(t->size <= (uint64_t)(data + size - t->data));
	for (i = 0; i < t->size; i++)
		sum += t->data[i];
	(void)sum;
	CHECK(safetensors_find(st, t->name) == t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct safetensors st;
	size_t i;
	int rc;

	rc = safetensors_parse(&st, data, size);
	if (rc < 0) {
		check_refusal(&st, rc);
		safetensors_release(&st);
		return 0;
	}
	CHECK(rc == 0);
	CHECK(size >= 8 && st.header_size <= size - 8);
	CHECK(st.header_size <= SAFETENSORS_HEADER_MAX);
	for (i = 0; i < st.ntensors; i++) {
		check_tensor(&st, &st.tensors[i], data, size);
		if (i > 0)
			CHECK(st.tensors[i].data >=
			    st.tensors[i - 1].data + st.tensors[i - 1].size);
	}
	safetensors_release(&st);
	CHECK(st.tensors == NULL && st.ntensors == 0);
	return 0;
}
