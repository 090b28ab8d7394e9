/* Model hyper-parameters (Config) and the named configurations: `tiny` for
 * tests, `demo` for the demo loop, `15m` like llama2.c's stories15M. */
#ifndef RLHF_MODEL_CONFIG_H
#define RLHF_MODEL_CONFIG_H

#include "util/err.h"

typedef struct Config {
    int dim;        /* C: width of the residual stream */
    int hidden_dim; /* H: SwiGLU hidden width */
    int n_layers;   /* L */
    int n_heads;    /* NH: query heads; head size hs = model_head_size */
    int n_kv_heads; /* key/value heads; divides n_heads (grouped-query attention) */
    int vocab_size; /* V */
    int seq_len;    /* T max: the longest context */
    int shared_classifier; /* 1: the classifier is the token embedding (tied) */
    /* Hugging Face families. Zero means llama2.c's value, so configs written
     * as literals and old checkpoints keep their meaning (see the accessors). */
    int head_dim;      /* hs; 0: dim / n_heads (Qwen3 sets it: NH*hs may differ from dim) */
    int qkv_bias;      /* 1: q, k and v projections have biases (Qwen2) */
    int qk_norm;       /* 1: per-head RMSNorm of q and k before RoPE (Qwen3) */
    float norm_eps;    /* RMSNorm epsilon; 0: 1e-5 */
    float rope_theta;  /* RoPE base; 0: 10000 */
    /* rope_scaling of type llama3 (Llama 3.1/3.2); rope_factor 0: none */
    float rope_factor, rope_low_freq, rope_high_freq;
    int rope_orig_ctx; /* original_max_position_embeddings */
} Config;

/* Llama constants as in llama2.c's run.c (kept fixed so checkpoints match). */
#define MODEL_NORM_EPS 1e-5f
#define MODEL_ROPE_THETA 10000.0f

/* Fills c from a name (tiny, demo, 15m); RLHF_EINVAL with the list when unknown. */
int model_config_named(const char *name, Config *c, Err *err);
/* Checks sizes are positive, heads divide dim (unless head_dim is set) and kv
 * heads divide heads, head size even (RoPE rotates pairs), eps/theta/rope
 * scaling in sane ranges, and everything fits in an int index. */
int model_config_validate(const Config *c, Err *err);
static inline int model_head_size(const Config *c) {
    return c->head_dim ? c->head_dim : c->dim / c->n_heads;
}
/* Width of the attention's query/output side (NH*hs; dim unless head_dim says otherwise). */
static inline int model_q_dim(const Config *c) { return model_head_size(c) * c->n_heads; }
static inline int model_kv_dim(const Config *c) { return model_head_size(c) * c->n_kv_heads; }
static inline float model_norm_eps(const Config *c) {
    return c->norm_eps > 0 ? c->norm_eps : MODEL_NORM_EPS;
}
static inline float model_rope_theta(const Config *c) {
    return c->rope_theta > 0 ? c->rope_theta : MODEL_ROPE_THETA;
}
/* One-line JSON of the config (for the registry); buf of n bytes. */
void model_config_json(const Config *c, char *buf, int n);

#endif
