/* Inference with a KV cache: one stream fed token by token (llama2.c run.c
 * style, matrix-vector products), prompts prefilled in one matrix-matrix pass,
 * and k streams that share a prefilled prompt's cache and decode as one batch
 * (each step is a (k, dim) x (dim, out) sgemm, so the weights are read once
 * for all k streams instead of k times).
 *
 * The cache has a shared part (the prompt, positions 0..prefix_len) and, after
 * infer_fork, one private part per stream for the positions after it.
 * Infer borrows the Model (which must outlive it) and owns its caches and
 * the copy of the matrices its products read: packed fp32, or bf16. */
#ifndef RLHF_MODEL_INFER_H
#define RLHF_MODEL_INFER_H

#include <stdint.h>

#include "model/model.h"
#include "util/err.h"

/* The weights the matrix products read: the Model's fp32 ones, a bf16 copy
 * (half the bytes per decode step, which is memory-bound), or bf16 when that
 * copy is lossless (model_weights_are_bf16) and fp32 otherwise. */
typedef enum { INFER_WEIGHTS_F32 = 0, INFER_WEIGHTS_BF16, INFER_WEIGHTS_AUTO } InferWeights;

typedef struct Infer {
    const Model *m;
    int max_streams;                /* k the state was made for */
    int max_rows;                   /* rows one pass can take (prefill chunk) */
    int prefix_len;                 /* tokens in the shared cache */
    int n_streams;                  /* streams forked from the prefix (0 before infer_fork) */
    int *pos;                       /* (max_streams) next position of each stream */
    /* per layer (and stream), per kv head: the values (seq_len, head_size)
     * and the keys in matvec.h's blocks of MATVEC_KEY_BLOCK positions */
    float *key_prefix, *val_prefix; /* (L, NKV, ...) */
    float *key_stream, *val_stream; /* (L, max_streams, NKV, ...); positions >= prefix_len */
    float *logits;                  /* (max_streams, V): row s is stream s's latest logits */
    /* scratch for one pass over up to max_rows rows */
    float *x, *xb, *xb2, *q, *k, *v, *hb, *hb2, *att, *rope_cos, *rope_sin, *lrow;
    float *mem;
    /* With bf16 weights, every matrix a pass reads rounded to bf16 (nearest
     * even) and packed for matvec_rows_packed_bf16 (layer l of a (OC, C)
     * matrix at l * matvec_packed_bf16_count(OC, C)); all NULL otherwise.
     * wcls is the embedding's copy when the classifier is shared. */
    struct InferBf16 {
        uint16_t *wq, *wk, *wv, *wo, *w1, *w2, *w3, *wcls;
    } bf16;
    uint16_t *bf16_mem;
    /* With fp32 weights, the same matrices packed for matvec_rows_packed
     * (eight outputs to a vector; layer l of a (OC, C) matrix at
     * l * matvec_packed_floats(OC, C)): the products read these, not the
     * Model's. A copy: infer_refresh after the Model's weights change. */
    struct InferPacked {
        float *wq, *wk, *wv, *wo, *w1, *w2, *w3, *wcls;
    } packed;
    float *packed_mem;
} Infer;

/* The streams for a batch of want samples, never fewer than k_min, as many of
 * want as keep the caches under 2 GiB (pages a cache never reaches are never
 * touched, but the address space is asked for). */
int infer_batch_streams(const Config *c, int k_min, int want);
/* Allocates caches for up to max_streams parallel streams of the model's seq_len.
 * The matrix products read the Model's fp32 weights, from a packed copy
 * (4 bytes a matrix parameter beside the Model's; made in a fraction of a
 * second). */
int infer_create(Infer *st, const Model *m, int max_streams, Err *err);
/* The same, with the weights w says. With bf16 the Infer owns a bf16 copy of
 * wq wk wv wo w1 w2 w3 and the classifier (the embedding lookup, biases and
 * norms stay fp32; activations are never rounded), packed as the fp32 copy
 * is and summed in the same order: on a model whose matrices are exactly
 * bf16 the logits equal the fp32 path's bit for bit, on others they are
 * those of the model with these matrices rounded to
 * nearest even (the embedding rows looked up stay as they are).
 * Not for training or log-probs that must match the training forward. */
int infer_create_weights(Infer *st, const Model *m, int max_streams, InferWeights w, Err *err);
static inline int infer_uses_bf16(const Infer *st) {
    return st->bf16_mem != NULL;
}
void infer_free(Infer *st);
/* Copies the Model's matrices again into the Infer's packed or bf16 copy:
 * after training changed them (PPO's policy between rollouts). */
void infer_refresh(Infer *st);
/* Forgets the prefix and the streams (keeps the memory). */
void infer_reset(Infer *st);

/* Appends n tokens to the shared prefix (before any fork) in passes of up to
 * max_rows rows, and leaves the logits after the last one in infer_logits(st, 0).
 * With n == 1 this is the single-stream decode step. */
int infer_prefill(Infer *st, const int *tokens, int n, Err *err);
/* Starts k streams at the end of the prefix; each stream's logits start as the
 * prefix's last logits. With no prefix the streams start empty: each needs
 * infer_feed (or infer_copy_stream) before its first decode step. */
int infer_fork(Infer *st, int k, Err *err);
/* Appends n tokens to stream s alone (a prompt of its own after the shared
 * prefix) in passes of up to max_rows rows, and leaves the logits after the
 * last one in infer_logits(st, s): the bits the same tokens give prefilled
 * into the prefix (a position's keys, scores and sums do not depend on which
 * part of the cache holds it). */
int infer_feed(Infer *st, int s, const int *tokens, int n, Err *err);
/* Stream s back to the end of the shared prefix, its own positions dropped:
 * a slot whose sample ended takes another prompt (infer_feed). */
void infer_rewind(Infer *st, int s);
/* Stream dst becomes what stream src is: its cache after the prefix, its
 * position and its logits (k samples of a fed prompt, fed once). */
void infer_copy_stream(Infer *st, int dst, int src);
/* One decode step for the streams whose active[s] is non-zero (NULL: all):
 * appends tokens[s] to stream s and computes its next logits. Streams at the
 * context limit must be left out. */
int infer_decode(Infer *st, const int *tokens, const unsigned char *active, Err *err);

static inline float *infer_logits(Infer *st, int stream) {
    return st->logits + (size_t)stream * st->m->cfg.vocab_size;
}
/* Position the next token of stream s goes to (prefix length before a fork). */
static inline int infer_pos(const Infer *st, int s) {
    return st->n_streams ? st->pos[s] : st->prefix_len;
}

/* Sets the threads of the matrix products (OpenBLAS and model/matvec.h). */
void infer_set_threads(int n);
/* How a decode step of n streams is shared by the threads: split into this
 * many parts of the streams, each taken through the whole pass by one thread
 * (where the weight copy is at most 8 MiB: a small model, read from cache;
 * not with LoRA on), or 1: one pass, each product's outputs split over the
 * threads. The same bits either way. */
int infer_decode_parts(const Infer *st, int n);

#endif
