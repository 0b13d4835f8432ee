/*
 * model: a GPT-2 loaded from a Hugging Face model directory, and its
 * forward pass one token at a time over a key/value cache.
 *
 * model_load() reads config.json, maps model.safetensors once, validates
 * it (safetensors.h) and finds every tensor the config calls for.  fp32
 * tensors are read in place from the mapping; fp16 and bf16 ones are
 * widened to fp32 once, at load, into memory of the model's own.  After
 * the load nothing opens a file again, and the weights are read only, so
 * any number of states may step at once (the worker pool serializes its
 * own use).
 */
#ifndef MODEL_H
#define MODEL_H

#include <stddef.h>

#include "safetensors.h"

struct model_config {
	int n_layer, n_head, n_embd, n_inner, vocab_size, n_positions;
	float eps;	    /* layer_norm_epsilon */
	int gelu_tanh;	    /* gelu_new / gelu_pytorch_tanh; else gelu */
	int tied;	    /* tie_word_embeddings: logits from wte */
	int scale_attn;	    /* scale_attn_weights: by 1 / sqrt(head_dim) */
	int scale_by_layer; /* scale_attn_by_inverse_layer_idx */
	int bos_id, eos_id; /* -1: none in config.json */
};

struct model_layer {
	const float *ln1_w, *ln1_b;
	const float *attn_w, *attn_b; /* c_attn: [n_embd, 3 n_embd] */
	const float *proj_w, *proj_b; /* attn.c_proj: [n_embd, n_embd] */
	const float *ln2_w, *ln2_b;
	const float *fc_w, *fc_b;	/* mlp.c_fc: [n_embd, n_inner] */
	const float *mproj_w, *mproj_b; /* mlp.c_proj: [n_inner, n_embd] */
};

struct model_pool;

struct model {
	struct model_config cfg;
	const float *wte; /* [vocab_size, n_embd] */
	const float *wpe; /* [n_positions, n_embd] */
	struct model_layer *layers;
	const float *ln_f_w, *ln_f_b;
	const float *lm_head; /* [vocab_size, n_embd]: wte when tied */
	char dtype[24];	      /* "F32", "F16", "BF16", or "mixed" */
	const char *prefix;   /* "transformer." or "" */
	size_t in_place;      /* tensors read from the mapping */
	size_t widened;	      /* tensors converted to fp32 at load */
	size_t bytes;	      /* of model.safetensors */
	void *map;	      /* its mapping; NULL once nothing reads it */
	size_t map_size;
	float **owned; /* the converted tensors */
	size_t nowned;
	struct model_pool *pool;
	int nthreads;
};

/* Bounds on what config.json may ask for. */
#define MODEL_CONFIG_MAX (1024 * 1024) /* bytes of config.json */

/*
 * Loads the model in dir with a pool of nthreads threads (the caller's
 * own included; 1 is none).  Returns 0, or a negative errno code with
 * one line in err naming the file and the problem (-EINVAL: a file is
 * malformed or does not fit the config).  The model is released with
 * model_release(), also after a failure.
 */
int model_load(struct model *m, const char *dir, int nthreads, char *err,
    size_t errsz);

void model_release(struct model *m);

/*
 * What one sequence has computed so far: the keys and values of every
 * layer at positions [0, pos), room for n_ctx, and scratch.
 */
struct model_state {
	int n_ctx, pos;
	float *k, *v; /* [n_layer][n_ctx][n_embd] */
	float *x, *xn, *qkv, *att, *hidden, *scores;
};

/*
 * Room for n_ctx positions (at most the model's n_positions).  Returns 0
 * or -ENOMEM (or -EINVAL for n_ctx out of range); release with
 * model_state_release(), also after a failure.
 */
int model_state_init(struct model_state *s, const struct model *m, int n_ctx);
void model_state_release(struct model_state *s);

/*
 * Runs token at position s->pos and advances it.  With logits (room for
 * vocab_size floats) also computes the logits there; without, skips the
 * final layer norm and the vocabulary projection.  Returns 0, or -EINVAL
 * when the token is not in [0, vocab_size) or the state is full.
 */
int model_step(const struct model *m, struct model_state *s, int token,
    float *logits);

#endif
