/* LoRA (Hu et al. 2021) as PEFT builds it: a frozen base projection W (out, in)
 * plus a trainable low-rank update, y = W x + (α/R)·B A drop(x), with A (R, in)
 * and B (out, R) per layer for each targeted projection (q, k, v, o, gate, up,
 * down). A starts as PEFT's kaiming-uniform, B at zero, so a fresh adapter
 * leaves the model unchanged. A model with a Lora attached (model_lora_attach)
 * trains only the adapters and its scalar heads (which then live in the
 * adapter's array); its base weights get no gradient, and with m->lora_off the
 * base alone runs (PPO's and DPO's reference, no second copy).
 *
 * Ownership: the Model owns its Lora (model_free frees it). One float array
 * holds every adapter and both head slots; gradients have the same layout. */
#ifndef RLHF_MODEL_LORA_H
#define RLHF_MODEL_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "model/config.h"
#include "util/err.h"

enum { LORA_Q, LORA_K, LORA_V, LORA_O, LORA_GATE, LORA_UP, LORA_DOWN, LORA_NT };
#define LORA_ALL ((1 << LORA_NT) - 1)
#define LORA_DEFAULT_TARGETS ((1 << LORA_Q) | (1 << LORA_V)) /* PEFT's for Llama/Qwen */

typedef struct LoraConfig {
    int rank;      /* R (0: no LoRA) */
    float alpha;   /* scaling α/R; 0: 2R */
    float dropout; /* on each adapter's input, while training */
    int targets;   /* 1 << LORA_* bits */
} LoraConfig;

typedef struct Lora {
    LoraConfig c;
    float scale;                  /* α/R */
    int L, in[LORA_NT], out[LORA_NT];
    size_t off_a[LORA_NT], off_b[LORA_NT]; /* (L, R, in), (L, out, R); valid when targeted */
    size_t off_head[2];           /* reward, value: (C + 1) each */
    size_t n;                     /* floats */
    float *params, *grads;        /* grads NULL until needed */
    /* scratch of a forward: u = drop(x)·A^T per (layer, target), (N, R) */
    float *u, *xd, *du;
    size_t u_cap, xd_cap;
    int N;                        /* rows of the last forward */
    int training;                 /* dropout on */
    uint64_t drop_seed, drop_pass; /* dropout masks are a hash of these and the position */
    char base_sha[65];            /* the base's identity (sha256 of its file or HF directory) */
    char *base_path;              /* where it was loaded from (malloc'd) */
} Lora;

/* Parses "q,v", "all", "q,k,v,o,gate,up,down" into LORA_* bits; RLHF_EINVAL naming
 * the bad name. */
int lora_parse_targets(const char *s, int *targets, Err *err);
/* "q,v" for the bits (buf of n bytes). */
void lora_targets_str(int targets, char *buf, size_t n);
/* PEFT's module names: q_proj, ..., down_proj. */
const char *lora_target_name(int t);
/* Checks rank, alpha, dropout, targets; fills alpha's default. */
int lora_config_check(LoraConfig *c, Err *err);

/* Allocates and initialises (A uniform in ±1/sqrt(in), deterministic in seed; B 0). */
int lora_create(Lora *lo, const LoraConfig *c, const Config *mc, uint64_t seed, Err *err);
void lora_free(Lora *lo);
/* The floats lora_create allocates for c on a model of config mc. */
size_t lora_param_count(const LoraConfig *c, const Config *mc);
int lora_grads_alloc(Lora *lo, Err *err);
/* Sizes the forward's scratch for N rows. */
int lora_reserve(Lora *lo, int N, int max_in, Err *err);

/* The adapter of target t at layer l on one projection:
 * out (N, out) += scale · drop(in) A^T B^T, in (N, in). */
void lora_forward(Lora *lo, int t, int l, float *out, const float *in, int N);
/* The same without dropout or saved activations (decoding, infer.c). */
void lora_apply(const Lora *lo, int t, int l, float *out, const float *in, int N);
/* Its backward: dA, dB += ; din (N, in) += the adapter's share. */
void lora_backward(Lora *lo, int t, int l, float *din, const float *dout, const float *in, int N);
/* W (out, in) += scale · B A for every target and layer (the merged model). */
void lora_merge_into(const Lora *lo, float *w, int t, int l);
/* Pointers to A and B of target t at layer l. */
float *lora_a(const Lora *lo, int t, int l);
float *lora_b(const Lora *lo, int t, int l);

#endif
