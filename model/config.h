/* Model hyper-parameters (Config) and the named configurations: `tiny` for
 * tests, `demo` for the demo loop, `15m` like llama2.c's stories15M. */
#ifndef RLHF_MODEL_CONFIG_H
#define RLHF_MODEL_CONFIG_H

#include "util/err.h"

typedef struct Config {
    int dim;        /* C: width of the residual stream */
    int hidden_dim; /* H: SwiGLU hidden width */
    int n_layers;   /* L */
    int n_heads;    /* NH: query heads; head size hs = dim / n_heads */
    int n_kv_heads; /* key/value heads; divides n_heads (grouped-query attention) */
    int vocab_size; /* V */
    int seq_len;    /* T max: the longest context */
    int shared_classifier; /* 1: the classifier is the token embedding (tied) */
} Config;

/* Llama constants as in llama2.c's run.c (kept fixed so checkpoints match). */
#define MODEL_NORM_EPS 1e-5f
#define MODEL_ROPE_THETA 10000.0f

/* Fills c from a name (tiny, demo, 15m); RLHF_EINVAL with the list when unknown. */
int model_config_named(const char *name, Config *c, Err *err);
/* Checks sizes are positive, heads divide dim and kv heads divide heads,
 * head size even (RoPE rotates pairs), and everything fits in an int index. */
int model_config_validate(const Config *c, Err *err);
static inline int model_head_size(const Config *c) { return c->dim / c->n_heads; }
static inline int model_kv_dim(const Config *c) { return c->dim / c->n_heads * c->n_kv_heads; }
/* One-line JSON of the config (for the registry); buf of n bytes. */
void model_config_json(const Config *c, char *buf, int n);

#endif
