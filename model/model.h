/* The transformer's state: Weights (pointers into ONE contiguous float array,
 * laid out by one table of tensor sizes in llama2.c's order), the same layout
 * for gradients, and RunState (activations of a B×T training batch and the
 * scratch of the backward pass). Batched forward and backward over B×T.
 *
 * Ownership: Model owns params, grads and the tokenizer blob; RunState owns its
 * arena. Nothing here prints; errors come back through Err. */
#ifndef RLHF_MODEL_MODEL_H
#define RLHF_MODEL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "model/config.h"
#include "util/err.h"

/* Optional scalar heads on the last hidden state (after the final RMSNorm). */
enum { MODEL_HEAD_REWARD = 1, MODEL_HEAD_VALUE = 2 };

/* The tensors in storage order (llama2.c's run.c order, then our heads). */
enum {
    MODEL_T_EMB,       /* (V, C) token embedding */
    MODEL_T_RMS_ATT,   /* (L, C) */
    MODEL_T_WQ,        /* (L, Q, C)   rows are outputs: q = Wq x; Q = NH*hs (model_q_dim) */
    MODEL_T_WK,        /* (L, KV, C) */
    MODEL_T_WV,        /* (L, KV, C) */
    MODEL_T_WO,        /* (L, C, Q) */
    MODEL_T_RMS_FFN,   /* (L, C) */
    MODEL_T_W1,        /* (L, H, C) gate */
    MODEL_T_W2,        /* (L, C, H) down */
    MODEL_T_W3,        /* (L, H, C) up */
    MODEL_T_RMS_FINAL, /* (C) */
    MODEL_T_WCLS,      /* (V, C); empty when shared with the embedding */
    MODEL_T_BQ,        /* (L, Q)  q bias; empty without cfg.qkv_bias */
    MODEL_T_BK,        /* (L, KV) */
    MODEL_T_BV,        /* (L, KV) */
    MODEL_T_QNORM,     /* (L, hs) per-head RMSNorm gain of q; empty without cfg.qk_norm */
    MODEL_T_KNORM,     /* (L, hs) */
    MODEL_T_REWARD,    /* (C + 1) weights then bias; empty without the head */
    MODEL_T_VALUE,     /* (C + 1) */
    MODEL_NT
};

typedef struct Weights {
    float *emb, *rms_att, *wq, *wk, *wv, *wo, *rms_ffn, *w1, *w2, *w3, *rms_final;
    float *wcls;   /* == emb when the classifier is shared */
    float *bq, *bk, *bv;      /* NULL without cfg.qkv_bias */
    float *q_norm, *k_norm;   /* NULL without cfg.qk_norm */
    float *reward; /* NULL when absent */
    float *value;  /* NULL when absent */
} Weights;

typedef struct Model {
    Config cfg;
    int heads;               /* MODEL_HEAD_* bits */
    size_t sizes[MODEL_NT];  /* floats per tensor */
    size_t n_params;         /* sum of sizes */
    float *params;           /* n_params floats */
    Weights w;
    float *grads;            /* n_params floats, NULL until model_grads_alloc */
    Weights g;
    unsigned char *tokenizer; /* optional tokenizer.bin bytes carried by our checkpoint */
    size_t tokenizer_len;
    /* LoRA (model/lora.h): with an adapter attached the base is frozen and
     * only the adapter's array (adapters and heads) trains; lora_off runs the
     * base alone. borrowed: bit 1, params belong to another Model (model_view);
     * bit 2, so does the tokenizer. */
    struct Lora *lora;
    int lora_off, borrowed;
} Model;

/* Allocates zeroed parameters for cfg with the given heads. */
int model_create(Model *m, const Config *cfg, int heads, Err *err);
/* The parameters model_create would allocate for a valid cfg (to check a
 * file's size before allocating what its header asks for). */
size_t model_param_count(const Config *cfg, int heads);
void model_free(Model *m);
/* GPT-2/llama2.c style init: N(0, 0.02), residual projections (wo, w2) scaled by
 * 1/sqrt(2L), norm weights 1, heads 0. Deterministic in seed. */
void model_init_random(Model *m, uint64_t seed);
/* Adds or removes heads, keeping the other weights (a new head starts at 0). */
int model_set_heads(Model *m, int heads, Err *err);
/* For commands that take a policy (sample, gen, sft, ppo, dpo, eval): refuses a
 * checkpoint with a reward head ("PATH is a reward model ..."), whose
 * unembedding was never trained for the text it would write. */
int model_require_policy(const Model *m, const char *path, Err *err);
int model_grads_alloc(Model *m, Err *err);
void model_zero_grad(Model *m);
/* Copies the blob (NULL/0 removes it); saved inside our checkpoint format. */
int model_set_tokenizer(Model *m, const void *bytes, size_t len, Err *err);
/* Whether tensor t is a matrix (weight decay applies) rather than a gain/bias. */
int model_tensor_is_matrix(int t);
/* 1 when every matrix value (model_tensor_is_matrix) is exactly a bf16 (its
 * low 16 bits are 0), as after loading BF16 safetensors: then a bf16 copy of
 * the matrices is lossless. */
int model_weights_are_bf16(const Model *m);
const char *model_tensor_name(int t);
/* Offset of tensor t in the flat array. */
size_t model_tensor_offset(const Model *m, int t);

/* What trains: the whole parameter array, or with LoRA the adapter's (its
 * adapters and the heads). Optimizers, clipping and all-reduces use these. */
float *model_train_params(const Model *m);
float *model_train_grads(const Model *m);
size_t model_train_n(const Model *m);
/* Whether float i of the trainable array takes weight decay (a matrix). */
int model_train_decays(const Model *m, size_t i);

struct LoraConfig;
/* Attaches a fresh adapter (lora.h) on m's frozen weights; m's heads move
 * into it; base_path/base_sha name the base (for the checkpoint). m's full
 * gradient array is released. */
int model_lora_attach(Model *m, const struct LoraConfig *c, uint64_t seed, const char *base_path,
                      const char *base_sha, Err *err);
/* Folds the adapter into the base weights (W += α/R·B A) and drops it: m is
 * then a plain model that computes what the adapted one did. */
int model_lora_merge(Model *m, Err *err);
/* A Model that shares base's weights (no copy) with its own heads and adapter
 * (lora may be NULL: the base itself, frozen). The view owns lora but not the
 * weights; model_free on it frees only what it owns. base must outlive it. */
int model_view(Model *v, const Model *base, struct Lora *lora, int heads, Err *err);

/* Moves the adapter of view (a model_view of m) onto m itself, with the
 * view's heads; view is freed. */
int model_lora_adopt(Model *m, Model *view, Err *err);

/* Activations for one batch of up to B×T tokens (T <= seq_len). The arena is
 * reserved address space (mmap, MAP_NORESERVE): a batch of b×t touches only
 * the first b·t rows of each buffer, so memory is committed for the largest
 * batch actually run, not for the capacity. */
typedef struct RunState {
    int B, T; /* capacity */
    int b, t; /* the batch of the last forward */
    float *mem;
    size_t n_floats;
    size_t n_logits;  /* floats mapped at logits (0 until a forward asks for them) */
    int head_rows;    /* rows per chunk of model_head; may be lowered, never raised */
    int have_dlnf;    /* model_head left d loss/d lnf in dln for model_backward */
    int nograd;       /* the last forward kept one layer's activations (MODEL_FWD_NOGRAD) */
    /* forward (N = B*T) */
    float *resid;     /* (L+1, N, C) input of each layer; resid[L] = last output */
    float *resid_mid; /* (L, N, C) after the attention block */
    float *ln1, *ln1_rstd; /* (L, N, C), (L, N) */
    float *q;         /* (L, N, Q) after the bias, q norm and RoPE; Q = NH*hs */
    float *k, *v;     /* (L, N, KV), k after the bias, k norm and RoPE */
    float *q_pre, *k_pre;   /* (L, N, Q), (L, N, KV) before the q/k norms; NULL without qk_norm */
    float *q_rstd, *k_rstd; /* (L, N, NH), (L, N, NKV) the per-head norms' 1/rms; NULL without */
    float *att;       /* (L, B, NH, T, T) softmax probabilities, 0 above the diagonal */
    float *atty;      /* (L, N, Q) attention output before wo */
    float *ln2, *ln2_rstd;
    float *h1, *h3, *hg; /* (L, N, H) gate, up, silu(gate)*up */
    float *lnf, *lnf_rstd; /* (N, C), (N): the last hidden state */
    float *logits;    /* (N, V), mapped by the first forward with MODEL_FWD_LOGITS;
                       * model_backward reads dlogits from the same buffer */
    float *head;      /* (head_rows, V) one chunk of logits for model_head */
    float *head_x;    /* (2, head_rows, C) a chunk's rows of lnf and their d for model_head_rows */
    float *reward;    /* (N) reward head on every position (when present) */
    float *value;     /* (N) value head on every position (when present) */
    float *rope_cos, *rope_sin; /* (T, hs/2) */
    /* backward scratch, one layer at a time; datty and dq are (N, Q), dk_pre
     * (N, KV) only with qk_norm (d q_pre reuses datty) */
    float *dresid, *dln, *datty, *dq, *dk, *dv, *dk_pre, *datt, *dh1, *dh3, *dhg;
} RunState;

int model_runstate_create(RunState *rs, const Config *cfg, int B, int T, Err *err);
void model_runstate_free(RunState *rs);

enum {
    MODEL_FWD_LOGITS = 1, /* compute logits (skip for reward/value-only passes) */
    MODEL_FWD_NOGRAD = 2, /* no backward follows: activations of one layer at a time (RSS) */
};

/* Forward over tokens (B, T) (row b is one sequence); fills rs's activations,
 * logits when asked, and the heads present. B*T and T must fit rs. */
int model_forward(const Model *m, RunState *rs, const int *tokens, int B, int T, int flags,
                  Err *err);
/* The LM head without the (N, V) logits of a whole batch (V is 151936 for
 * Qwen: B=4, T=256 would be 622 MB). After a forward without MODEL_FWD_LOGITS,
 * walks the N = b·t rows in chunks of at most rs->head_rows: computes the
 * chunk's logits (R, V) and calls fn on them with the chunk's first row. fn
 * computes what it needs per row (losses, log-probs, entropies) and, when
 * grad is set, overwrites the chunk with d loss/d logits of those rows; the
 * chunk's share of d lnf and of d wcls is then accumulated at once (d wcls
 * into m->grads), and the next model_backward with dlogits NULL starts from
 * that d lnf (grad needs m's gradients allocated: model_grads_alloc; m is
 * const as a structure, its gradient array is written). Several grad walks over one forward add up. A nonzero return
 * from fn stops the walk and is returned. */
typedef int (*ModelHeadFn)(void *ctx, float *logits, int row0, int R, int V, Err *err);
int model_head(const Model *m, RunState *rs, int grad, ModelHeadFn fn, void *ctx, Err *err);
/* The same over the n rows rows[0..n) only (distinct, each < b·t): the
 * positions whose logits a loss needs (a PPO answer's, not its prompt's). fn
 * sees the chunks in the order of rows, with row0 the index into rows of the
 * chunk's first row; the other rows get no logits and (with grad) a zero
 * d lnf. */
int model_head_rows(const Model *m, RunState *rs, int grad, const int *rows, int n, ModelHeadFn fn,
                    void *ctx, Err *err);

/* Backward of the last forward. Gradients ACCUMULATE into m->grads (zero them
 * with model_zero_grad; that is how gradient accumulation works).
 * dlogits: NULL or rs->logits after the caller overwrote it with d loss/d logits
 * (NULL after a grad walk of model_head, whose d lnf is used instead);
 * dreward, dvalue: NULL or (N) d loss/d head output per position. */
int model_backward(Model *m, RunState *rs, const int *tokens, const float *dlogits,
                   const float *dreward, const float *dvalue, Err *err);

/* FLOPs of one training step (forward+backward) on B×T tokens, as llm.c and
 * PaLM count them: 6·(matmul params)·tokens + 12·L·Q·T·tokens for attention
 * (QK^T and AV over the full T×T with Q = NH·hs, forward once and backward twice). */
double model_train_flops(const Model *m, int B, int T);

#endif
