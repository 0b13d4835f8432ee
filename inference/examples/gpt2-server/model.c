/*
 * model: GPT-2 from config.json and model.safetensors, and its forward
 * pass (model.h).
 *
 * The weights are the mapping of model.safetensors wherever they can be:
 * an fp32 tensor aligned for floats is used in place, so a model already
 * in the page cache (warmed by modelcache-preload) starts without copying
 * a byte.  fp16 and bf16 tensors, and a misaligned fp32 one, are widened
 * into fp32 arrays of the model's own, once, at load; the forward pass
 * knows only fp32.  When no tensor is read in place the mapping is
 * dropped at the end of the load.
 *
 * The forward pass is the Hugging Face GPT2LMHeadModel's, one position at
 * a time (a prompt is fed token by token): h = wte[t] + wpe[pos]; per
 * layer h += attn(ln_1(h)) and h += mlp(ln_2(h)); logits = ln_f(h) by
 * lm_head (wte when tied).  Conv1D weights are [in, out], y = x W + b,
 * computed as rows of W scaled by x[i] and summed, so the inner loop
 * walks memory in order; lm_head is [vocab, n_embd], computed as one dot
 * product a row.  Accumulation is in fp32 except layer norm's mean and
 * variance (double).
 *
 * The big products are split by output columns (or rows) over a pool of
 * threads; a product under POOL_MIN multiply-adds stays on the caller's
 * thread, where waking the workers would cost more than it saves.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "model.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors is little-endian; this reads it in place"
#endif

#define POOL_MIN (1L << 20)
#define POOL_MAX_THREADS 64
#define COL_ALIGN 16 /* floats: a column slice starts on a cache line */

/*
 * The worker pool: pool_run() hands fn(arg, part, nparts) to every
 * thread, the caller's as part 0, and returns when all are done.  One
 * run at a time (run_mu).
 */
struct model_pool {
	pthread_mutex_t run_mu, mu;
	pthread_cond_t go, done;
	pthread_t *threads;
	int nworkers, started;
	unsigned long gen;
	int pending, stop;
	void (*fn)(void *, int, int);
	void *arg;
};

struct worker_arg {
	struct model_pool *pool;
	int part;
};

static void *
worker(void *p)
{
	struct worker_arg *wa = p;
	struct model_pool *pool = wa->pool;
	int part = wa->part;
	unsigned long seen = 0;

	free(wa);
	for (;;) {
		pthread_mutex_lock(&pool->mu);
		while (pool->gen == seen && !pool->stop)
			pthread_cond_wait(&pool->go, &pool->mu);
		if (pool->stop) {
			pthread_mutex_unlock(&pool->mu);
			return NULL;
		}
		seen = pool->gen;
		pthread_mutex_unlock(&pool->mu);
		pool->fn(pool->arg, part, pool->nworkers + 1);
		pthread_mutex_lock(&pool->mu);
		if (--pool->pending == 0)
			pthread_cond_signal(&pool->done);
		pthread_mutex_unlock(&pool->mu);
	}
}

static void
pool_free(struct model_pool *pool)
{
	int i;

	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->mu);
	pool->stop = 1;
	pthread_cond_broadcast(&pool->go);
	pthread_mutex_unlock(&pool->mu);
	for (i = 0; i < pool->started; i++)
		pthread_join(pool->threads[i], NULL);
	pthread_mutex_destroy(&pool->run_mu);
	pthread_mutex_destroy(&pool->mu);
	pthread_cond_destroy(&pool->go);
	pthread_cond_destroy(&pool->done);
	free(pool->threads);
	free(pool);
}

/* A pool of nthreads - 1 workers, or NULL for no memory or threads. */
static struct model_pool *
pool_new(int nthreads)
{
	struct model_pool *pool;
	struct worker_arg *wa;
	int i;

	if ((pool = calloc(1, sizeof(*pool))) == NULL)
		return NULL;
	pthread_mutex_init(&pool->run_mu, NULL);
	pthread_mutex_init(&pool->mu, NULL);
	pthread_cond_init(&pool->go, NULL);
	pthread_cond_init(&pool->done, NULL);
	pool->nworkers = nthreads - 1;
	pool->threads = calloc((size_t)nthreads, sizeof(*pool->threads));
	if (pool->threads == NULL)
		goto fail;
	for (i = 0; i < pool->nworkers; i++) {
		if ((wa = malloc(sizeof(*wa))) == NULL)
			goto fail;
		wa->pool = pool;
		wa->part = i + 1;
		if (pthread_create(&pool->threads[i], NULL, worker, wa) != 0) {
			free(wa);
			goto fail;
		}
		pool->started++;
	}
	return pool;
fail:
	pool_free(pool);
	return NULL;
}

/* Runs fn on every thread when work (multiply-adds) is worth it. */
static void
pool_run(struct model_pool *pool, long work, void (*fn)(void *, int, int),
    void *arg)
{
	if (pool->nworkers == 0 || work < POOL_MIN) {
		fn(arg, 0, 1);
		return;
	}
	pthread_mutex_lock(&pool->run_mu);
	pthread_mutex_lock(&pool->mu);
	pool->fn = fn;
	pool->arg = arg;
	pool->pending = pool->nworkers;
	pool->gen++;
	pthread_cond_broadcast(&pool->go);
	pthread_mutex_unlock(&pool->mu);
	fn(arg, 0, pool->nworkers + 1);
	pthread_mutex_lock(&pool->mu);
	while (pool->pending > 0)
		pthread_cond_wait(&pool->done, &pool->mu);
	pthread_mutex_unlock(&pool->mu);
	pthread_mutex_unlock(&pool->run_mu);
}

/* Part part of nparts of [0, n), in steps of align. */
static void
slice(int n, int part, int nparts, int align, int *lo, int *hi)
{
	int chunks = (n + align - 1) / align;

	*lo = (int)((long)chunks * part / nparts) * align;
	*hi = (int)((long)chunks * (part + 1) / nparts) * align;
	if (*hi > n)
		*hi = n;
	if (*lo > n)
		*lo = n;
}

/* y[out] = x[in] W[in, out] + b: Conv1D. */
struct conv1d {
	const float *x, *w, *b;
	float *y;
	int in, out;
};

/* The output never aliases the weights: restrict lets -O2 vectorize. */
static void
axpy(float *restrict y, const float *restrict row, float a, int n)
{
	int j;

	for (j = 0; j < n; j++)
		y[j] += a * row[j];
}

static void
conv1d_part(void *p, int part, int nparts)
{
	const struct conv1d *c = p;
	int lo, hi, i, j;

	slice(c->out, part, nparts, COL_ALIGN, &lo, &hi);
	for (j = lo; j < hi; j++)
		c->y[j] = c->b[j];
	for (i = 0; i < c->in; i++)
		axpy(c->y + lo, c->w + (size_t)i * (size_t)c->out + lo, c->x[i],
		    hi - lo);
}

static void
conv1d(struct model_pool *pool, float *y, const float *x, const float *w,
    const float *b, int in, int out)
{
	struct conv1d c = { x, w, b, y, in, out };

	pool_run(pool, (long)in * out, conv1d_part, &c);
}

/* y[rows] = M[rows, n] x[n]: the vocabulary projection. */
struct rowdot {
	const float *m, *x;
	float *y;
	int rows, n;
};

/*
 * A dot product in eight interleaved partial sums, which -O2 keeps in
 * vector registers (one running sum could not be reordered).
 */
static float
dot(const float *restrict a, const float *restrict b, int n)
{
	float acc[8] = { 0 }, sum = 0;
	int k, l;

	for (k = 0; k + 8 <= n; k += 8)
		for (l = 0; l < 8; l++)
			acc[l] += a[k + l] * b[k + l];
	for (; k < n; k++)
		sum += a[k] * b[k];
	for (l = 0; l < 8; l++)
		sum += acc[l];
	return sum;
}

static void
rowdot_part(void *p, int part, int nparts)
{
	const struct rowdot *r = p;
	int lo, hi, i;

	slice(r->rows, part, nparts, 1, &lo, &hi);
	for (i = lo; i < hi; i++)
		r->y[i] = dot(r->m + (size_t)i * (size_t)r->n, r->x, r->n);
}

static void
layer_norm(float *out, const float *x, const float *w, const float *b, int n,
    float eps)
{
	double mean = 0, var = 0, d;
	float inv;
	int i;

	for (i = 0; i < n; i++)
		mean += x[i];
	mean /= n;
	for (i = 0; i < n; i++) {
		d = x[i] - mean;
		var += d * d;
	}
	var /= n;
	inv = (float)(1.0 / sqrt(var + eps));
	for (i = 0; i < n; i++)
		out[i] = ((float)(x[i] - mean)) * inv * w[i] + b[i];
}

static void
gelu(float *x, int n, int tanh_approx)
{
	const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
	int i;

	for (i = 0; i < n; i++) {
		float v = x[i];

		if (tanh_approx)
			x[i] = 0.5f * v *
			    (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
		else
			x[i] = 0.5f * v * (1.0f + erff(v * 0.70710678f));
	}
}

/* Causal attention of one position over [0, pos], split by heads. */
struct attention {
	const struct model *m;
	struct model_state *s;
	int layer;
	float scale;
};

static void
attention_part(void *p, int part, int nparts)
{
	const struct attention *a = p;
	const struct model_config *cfg = &a->m->cfg;
	struct model_state *s = a->s;
	int E = cfg->n_embd, D = E / cfg->n_head, lo, hi, h, t, d;
	size_t base = (size_t)a->layer * (size_t)s->n_ctx * (size_t)E;

	slice(cfg->n_head, part, nparts, 1, &lo, &hi);
	for (h = lo; h < hi; h++) {
		const float *q = s->qkv + h * D;
		float *sc = s->scores + (size_t)h * (size_t)s->n_ctx;
		float *out = s->att + h * D;
		float max = -INFINITY, sum = 0;

		for (t = 0; t <= s->pos; t++) {
			sc[t] = dot(q, s->k + base + (size_t)t * E + h * D, D) *
			    a->scale;
			if (sc[t] > max)
				max = sc[t];
		}
		for (t = 0; t <= s->pos; t++) {
			sc[t] = expf(sc[t] - max);
			sum += sc[t];
		}
		for (d = 0; d < D; d++)
			out[d] = 0;
		for (t = 0; t <= s->pos; t++) {
			const float *v = s->v + base + (size_t)t * E + h * D;
			float pt = sc[t] / sum;

			for (d = 0; d < D; d++)
				out[d] += pt * v[d];
		}
	}
}

int
model_step(const struct model *m, struct model_state *s, int token,
    float *logits)
{
	const struct model_config *cfg = &m->cfg;
	int E = cfg->n_embd, I = cfg->n_inner, l, i;
	size_t off;

	if (token < 0 || token >= cfg->vocab_size || s->pos >= s->n_ctx)
		return -EINVAL;
	for (i = 0; i < E; i++)
		s->x[i] = m->wte[(size_t)token * E + i] +
		    m->wpe[(size_t)s->pos * E + i];
	for (l = 0; l < cfg->n_layer; l++) {
		const struct model_layer *L = &m->layers[l];
		struct attention a = { m, s, l, 1.0f };

		layer_norm(s->xn, s->x, L->ln1_w, L->ln1_b, E, cfg->eps);
		conv1d(m->pool, s->qkv, s->xn, L->attn_w, L->attn_b, E, 3 * E);
		off =
		    ((size_t)l * (size_t)s->n_ctx + (size_t)s->pos) * (size_t)E;
		memcpy(s->k + off, s->qkv + E, (size_t)E * sizeof(float));
		memcpy(s->v + off, s->qkv + 2 * E, (size_t)E * sizeof(float));
		if (cfg->scale_attn)
			a.scale = 1.0f / sqrtf((float)(E / cfg->n_head));
		if (cfg->scale_by_layer)
			a.scale /= (float)(l + 1);
		pool_run(m->pool, (long)(s->pos + 1) * E * 2, attention_part,
		    &a);
		conv1d(m->pool, s->xn, s->att, L->proj_w, L->proj_b, E, E);
		for (i = 0; i < E; i++)
			s->x[i] += s->xn[i];
		layer_norm(s->xn, s->x, L->ln2_w, L->ln2_b, E, cfg->eps);
		conv1d(m->pool, s->hidden, s->xn, L->fc_w, L->fc_b, E, I);
		gelu(s->hidden, I, cfg->gelu_tanh);
		conv1d(m->pool, s->xn, s->hidden, L->mproj_w, L->mproj_b, I, E);
		for (i = 0; i < E; i++)
			s->x[i] += s->xn[i];
	}
	s->pos++;
	if (logits != NULL) {
		struct rowdot r = { m->lm_head, s->xn, logits, cfg->vocab_size,
			E };

		layer_norm(s->xn, s->x, m->ln_f_w, m->ln_f_b, E, cfg->eps);
		pool_run(m->pool, (long)cfg->vocab_size * E, rowdot_part, &r);
	}
	return 0;
}

int
model_state_init(struct model_state *s, const struct model *m, int n_ctx)
{
	const struct model_config *cfg = &m->cfg;
	size_t kv;

	memset(s, 0, sizeof(*s));
	if (n_ctx < 1 || n_ctx > cfg->n_positions)
		return -EINVAL;
	s->n_ctx = n_ctx;
	/* n_layer, n_positions and n_embd were bounded at load. */
	kv = (size_t)cfg->n_layer * (size_t)n_ctx * (size_t)cfg->n_embd;
	s->k = malloc(kv * sizeof(float));
	s->v = malloc(kv * sizeof(float));
	s->x = malloc((size_t)cfg->n_embd * sizeof(float));
	s->xn = malloc((size_t)cfg->n_embd * sizeof(float));
	s->qkv = malloc(3 * (size_t)cfg->n_embd * sizeof(float));
	s->att = malloc((size_t)cfg->n_embd * sizeof(float));
	s->hidden = malloc((size_t)cfg->n_inner * sizeof(float));
	s->scores = malloc((size_t)cfg->n_head * (size_t)n_ctx * sizeof(float));
	if (s->k == NULL || s->v == NULL || s->x == NULL || s->xn == NULL ||
	    s->qkv == NULL || s->att == NULL || s->hidden == NULL ||
	    s->scores == NULL)
		return -ENOMEM;
	return 0;
}

void
model_state_release(struct model_state *s)
{
	free(s->k);
	free(s->v);
	free(s->x);
	free(s->xn);
	free(s->qkv);
	free(s->att);
	free(s->hidden);
	free(s->scores);
	memset(s, 0, sizeof(*s));
}

/* --- loading ------------------------------------------------------ */

static float
half_to_float(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
	float f;

	if (exp == 0) {
		/* Zero or subnormal: man * 2^-24, exact in fp32. */
		f = ldexpf((float)man, -24);
		return sign ? -f : f;
	}
	if (exp == 31)
		bits = sign | 0x7f800000u | (man << 13);
	else
		bits = sign | ((exp + 112) << 23) | (man << 13);
	memcpy(&f, &bits, sizeof(f));
	return f;
}

/* Config integers: present and in [lo, hi], or absent and def. */
static int
config_int(json_t *root, const char *key, int def, int lo, int hi, int *out,
    char *err, size_t errsz, const char *path)
{
	json_t *v = json_object_get(root, key);
	json_int_t i;

	if (v == NULL || json_is_null(v)) {
		*out = def;
		return 0;
	}
	i = json_is_integer(v) ? json_integer_value(v) : (json_int_t)lo - 1;
	if (i < lo || i > hi) {
		snprintf(err, errsz, "'%s': %s is not an integer in [%d, %d]",
		    path, key, lo, hi);
		return -EINVAL;
	}
	*out = (int)i;
	return 0;
}

static int
config_bool(json_t *root, const char *key, int def, int *out, char *err,
    size_t errsz, const char *path)
{
	json_t *v = json_object_get(root, key);

	if (v == NULL || json_is_null(v)) {
		*out = def;
		return 0;
	}
	if (!json_is_boolean(v)) {
		snprintf(err, errsz, "'%s': %s is not true or false", path,
		    key);
		return -EINVAL;
	}
	*out = json_is_true(v);
	return 0;
}

/*
 * config.json, with Hugging Face's GPT2Config defaults for what it
 * leaves out.
 */
static int
load_config(struct model_config *cfg, const char *dir, char *err, size_t errsz)
{
	char path[4096];
	json_error_t je;
	json_t *root, *v;
	struct stat sb;
	const char *s;
	int fd, rc = 0, ctx;

	snprintf(path, sizeof(path), "%s/config.json", dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) < 0) {
		rc = -errno;
		snprintf(err, errsz, "cannot open '%s': %s", path,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size > MODEL_CONFIG_MAX) {
		snprintf(err, errsz, "'%s': not a file of at most %d bytes",
		    path, MODEL_CONFIG_MAX);
		close(fd);
		return -EINVAL;
	}
	root = json_loadfd(fd, JSON_REJECT_DUPLICATES, &je);
	close(fd);
	if (root == NULL) {
		snprintf(err, errsz, "'%s': %s", path, je.text);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		snprintf(err, errsz, "'%s': not a JSON object", path);
		rc = -EINVAL;
		goto out;
	}
	v = json_object_get(root, "model_type");
	if (json_is_string(v) && strcmp(json_string_value(v), "gpt2") != 0) {
		snprintf(err, errsz, "'%s': model_type '%.64s' is not gpt2",
		    path, json_string_value(v));
		rc = -EINVAL;
		goto out;
	}
	if ((rc = config_int(root, "n_layer", 12, 1, 4096, &cfg->n_layer, err,
		 errsz, path)) < 0 ||
	    (rc = config_int(root, "n_head", 12, 1, 4096, &cfg->n_head, err,
		 errsz, path)) < 0 ||
	    (rc = config_int(root, "n_embd", 768, 1, 1 << 16, &cfg->n_embd, err,
		 errsz, path)) < 0 ||
	    (rc = config_int(root, "vocab_size", 50257, 1, 1 << 24,
		 &cfg->vocab_size, err, errsz, path)) < 0 ||
	    (rc = config_int(root, "n_ctx", 1024, 1, 1 << 20, &ctx, err, errsz,
		 path)) < 0 ||
	    (rc = config_int(root, "n_positions", ctx, 1, 1 << 20,
		 &cfg->n_positions, err, errsz, path)) < 0 ||
	    (rc = config_int(root, "bos_token_id", -1, -1, 1 << 24,
		 &cfg->bos_id, err, errsz, path)) < 0 ||
	    (rc = config_int(root, "eos_token_id", -1, -1, 1 << 24,
		 &cfg->eos_id, err, errsz, path)) < 0 ||
	    (rc = config_bool(root, "tie_word_embeddings", 1, &cfg->tied, err,
		 errsz, path)) < 0 ||
	    (rc = config_bool(root, "scale_attn_weights", 1, &cfg->scale_attn,
		 err, errsz, path)) < 0 ||
	    (rc = config_bool(root, "scale_attn_by_inverse_layer_idx", 0,
		 &cfg->scale_by_layer, err, errsz, path)) < 0)
		goto out;
	if ((rc = config_int(root, "n_inner", 4 * cfg->n_embd, 1, 1 << 18,
		 &cfg->n_inner, err, errsz, path)) < 0)
		goto out;
	if (cfg->n_embd % cfg->n_head != 0) {
		snprintf(err, errsz,
		    "'%s': n_embd %d is not a multiple of n_head %d", path,
		    cfg->n_embd, cfg->n_head);
		rc = -EINVAL;
		goto out;
	}
	v = json_object_get(root, "layer_norm_epsilon");
	cfg->eps = 1e-5f;
	if (v != NULL) {
		if (!json_is_number(v) || !(json_number_value(v) > 0) ||
		    json_number_value(v) > 1) {
			snprintf(err, errsz,
			    "'%s': layer_norm_epsilon is not a number in "
			    "(0, 1]",
			    path);
			rc = -EINVAL;
			goto out;
		}
		cfg->eps = (float)json_number_value(v);
	}
	v = json_object_get(root, "activation_function");
	s = v == NULL		? "gelu_new"
	    : json_is_string(v) ? json_string_value(v)
				: "";
	if (strcmp(s, "gelu_new") == 0 || strcmp(s, "gelu_pytorch_tanh") == 0)
		cfg->gelu_tanh = 1;
	else if (strcmp(s, "gelu") == 0)
		cfg->gelu_tanh = 0;
	else {
		snprintf(err, errsz,
		    "'%s': activation_function '%.64s' is not gelu_new, "
		    "gelu_pytorch_tanh or gelu",
		    path, s);
		rc = -EINVAL;
		goto out;
	}
out:
	json_decref(root);
	return rc;
}

/*
 * The tensor name (with the model's prefix unless bare), checked to be
 * a float of shape [d0] or [d0, d1] (d1 == 0: one dimension), as fp32:
 * in place, or widened into memory the model owns.
 */
static int
tensor(struct model *m, const struct safetensors *st, const char *path,
    const char *name, int bare, int d0, int d1, const float **out, char *err,
    size_t errsz)
{
	const struct safetensors_tensor *t;
	char full[256];
	unsigned ndim = d1 > 0 ? 2 : 1;
	uint64_t i;
	float *f;

	snprintf(full, sizeof(full), "%s%s", bare ? "" : m->prefix, name);
	if ((t = safetensors_find(st, full)) == NULL) {
		snprintf(err, errsz, "'%s': no tensor '%s'", path, full);
		return -EINVAL;
	}
	if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16) {
		snprintf(err, errsz,
		    "'%s': tensor '%s' is %s, not F32, F16 or BF16", path, full,
		    safetensors_dtype_name(t->dtype));
		return -EINVAL;
	}
	if (t->ndim != ndim || t->shape[0] != (uint64_t)d0 ||
	    (ndim == 2 && t->shape[1] != (uint64_t)d1)) {
		char got[96] = "", want[48];
		size_t len = 0;
		unsigned k;

		for (k = 0; k < t->ndim && len < sizeof(got) - 24; k++)
			len += (size_t)snprintf(got + len, sizeof(got) - len,
			    "%s%llu", k > 0 ? ", " : "",
			    (unsigned long long)t->shape[k]);
		if (ndim == 2)
			snprintf(want, sizeof(want), "%d, %d", d0, d1);
		else
			snprintf(want, sizeof(want), "%d", d0);
		snprintf(err, errsz,
		    "'%s': tensor '%s' has shape [%s], the config needs [%s]",
		    path, full, got, want);
		return -EINVAL;
	}
	if (m->dtype[0] == '\0')
		snprintf(m->dtype, sizeof(m->dtype), "%s",
		    safetensors_dtype_name(t->dtype));
	else if (strcmp(m->dtype, safetensors_dtype_name(t->dtype)) != 0)
		snprintf(m->dtype, sizeof(m->dtype), "mixed");
	if (t->dtype == ST_F32 && safetensors_aligned(t)) {
		*out = (const float *)(const void *)t->data;
		m->in_place++;
		return 0;
	}
	if ((f = malloc(t->nelem * sizeof(float))) == NULL) {
		snprintf(err, errsz, "'%s': out of memory for '%s'", path,
		    full);
		return -ENOMEM;
	}
	m->owned[m->nowned++] = f;
	for (i = 0; i < t->nelem; i++) {
		uint16_t h;
		uint32_t bits;

		switch (t->dtype) {
		case ST_F16:
			memcpy(&h, t->data + 2 * i, 2);
			f[i] = half_to_float(h);
			break;
		case ST_BF16:
			memcpy(&h, t->data + 2 * i, 2);
			bits = (uint32_t)h << 16;
			memcpy(&f[i], &bits, 4);
			break;
		default:
			memcpy(&f[i], t->data + 4 * i, 4);
			break;
		}
	}
	*out = f;
	m->widened++;
	return 0;
}

static int
find_tensors(struct model *m, const struct safetensors *st, const char *path,
    char *err, size_t errsz)
{
	const struct model_config *c = &m->cfg;
	int E = c->n_embd, I = c->n_inner, l, rc;
	char name[128];

#define T(nm, d0, d1, out) \
	do { \
		if ((rc = tensor(m, st, path, nm, 0, d0, d1, out, err, \
			 errsz)) < 0) \
			return rc; \
	} while (0)
#define LT(suffix, d0, d1, out) \
	do { \
		snprintf(name, sizeof(name), "h.%d.%s", l, suffix); \
		T(name, d0, d1, out); \
	} while (0)

	m->prefix = safetensors_find(st, "transformer.wte.weight") != NULL
	    ? "transformer."
	    : "";
	T("wte.weight", c->vocab_size, E, &m->wte);
	T("wpe.weight", c->n_positions, E, &m->wpe);
	for (l = 0; l < c->n_layer; l++) {
		struct model_layer *L = &m->layers[l];

		LT("ln_1.weight", E, 0, &L->ln1_w);
		LT("ln_1.bias", E, 0, &L->ln1_b);
		LT("attn.c_attn.weight", E, 3 * E, &L->attn_w);
		LT("attn.c_attn.bias", 3 * E, 0, &L->attn_b);
		LT("attn.c_proj.weight", E, E, &L->proj_w);
		LT("attn.c_proj.bias", E, 0, &L->proj_b);
		LT("ln_2.weight", E, 0, &L->ln2_w);
		LT("ln_2.bias", E, 0, &L->ln2_b);
		LT("mlp.c_fc.weight", E, I, &L->fc_w);
		LT("mlp.c_fc.bias", I, 0, &L->fc_b);
		LT("mlp.c_proj.weight", I, E, &L->mproj_w);
		LT("mlp.c_proj.bias", E, 0, &L->mproj_b);
	}
	T("ln_f.weight", E, 0, &m->ln_f_w);
	T("ln_f.bias", E, 0, &m->ln_f_b);
	if (c->tied)
		m->lm_head = m->wte;
	else if ((rc = tensor(m, st, path, "lm_head.weight", 1, c->vocab_size,
		      E, &m->lm_head, err, errsz)) < 0)
		return rc;
#undef LT
#undef T
	return 0;
}

int
model_load(struct model *m, const char *dir, int nthreads, char *err,
    size_t errsz)
{
	struct safetensors st = { 0 };
	char path[4096];
	struct stat sb;
	int fd = -1, rc;

	memset(m, 0, sizeof(*m));
	if ((rc = load_config(&m->cfg, dir, err, errsz)) < 0)
		return rc;
	m->layers = calloc((size_t)m->cfg.n_layer, sizeof(*m->layers));
	/* At most every tensor of the model is widened. */
	m->owned = calloc(12 * (size_t)m->cfg.n_layer + 5, sizeof(float *));
	if (m->layers == NULL || m->owned == NULL) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/model.safetensors", dir) >=
	    sizeof(path)) {
		snprintf(err, errsz, "'%s': path too long", dir);
		return -ENAMETOOLONG;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) < 0) {
		rc = -errno;
		snprintf(err, errsz, "cannot open '%s': %s", path,
		    strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errsz, "'%s': not a regular file", path);
		rc = -EINVAL;
		goto out;
	}
	m->bytes = (size_t)sb.st_size;
	if (sb.st_size > 0) {
		m->map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE,
		    fd, 0);
		if (m->map == MAP_FAILED) {
			m->map = NULL;
			rc = -errno;
			snprintf(err, errsz, "cannot map '%s': %s", path,
			    strerror(errno));
			goto out;
		}
		m->map_size = (size_t)sb.st_size;
		(void)madvise(m->map, m->map_size, MADV_WILLNEED);
		/*
		 * Map every page now, in bulk, rather than fault them one by
		 * one in the first request (seconds for a 1.4 GB model just
		 * warmed into the page cache).  Older kernels lack it: the
		 * first request pays, as before.
		 */
		(void)madvise(m->map, m->map_size, MADV_POPULATE_READ);
	}
	if ((rc = safetensors_parse(&st, m->map != NULL ? m->map : "",
		 m->map_size)) < 0) {
		snprintf(err, errsz, "'%s': %s", path, st.error);
		goto out;
	}
	if ((rc = find_tensors(m, &st, path, err, errsz)) < 0)
		goto out;
	if (m->in_place == 0 && m->map != NULL) {
		munmap(m->map, m->map_size);
		m->map = NULL;
		m->map_size = 0;
	}
	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > POOL_MAX_THREADS)
		nthreads = POOL_MAX_THREADS;
	m->nthreads = nthreads;
	if ((m->pool = pool_new(nthreads)) == NULL) {
		snprintf(err, errsz, "cannot start %d threads", nthreads);
		rc = -ENOMEM;
		goto out;
	}
out:
	if (fd >= 0)
		close(fd);
	safetensors_release(&st);
	return rc;
}

void
model_release(struct model *m)
{
	size_t i;

	pool_free(m->pool);
	for (i = 0; i < m->nowned; i++)
		free(m->owned[i]);
	free(m->owned);
	free(m->layers);
	if (m->map != NULL)
		munmap(m->map, m->map_size);
	memset(m, 0, sizeof(*m));
}
