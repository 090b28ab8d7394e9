/* The embedded model as a generation backend: loads a checkpoint and its
 * tokenizer, then samples k candidates per prompt with the prompt prefilled
 * once and the k continuations decoded as one batch (model/sample.h).
 * GenModel owns the model, tokenizer and caches. */
#ifndef RLHF_GEN_MODEL_BACKEND_H
#define RLHF_GEN_MODEL_BACKEND_H

#include "gen/gen.h"
#include "model/checkpoint.h"
#include "model/infer.h"
#include "model/sample.h"
#include "model/tokenizer.h"

/* Streams the Infer holds for several prompts' samples at once (gen and
 * eval over many prompts): where k is smaller, prompts share a batch. */
#define GEN_BATCH_STREAMS 8

typedef struct GenModel {
    Model m;
    Tokenizer *tok;
    Infer st;
    SampleParams p;
    int k_max;
    char params_json[512];
    char path[1024]; /* the checkpoint, for errors */
} GenModel;

/* Loads ckpt (ours or llama2.c's) and its tokenizer: tok_path, else the one
 * embedded in the checkpoint. k_max: the most candidates of one prompt
 * sampled in one batch; batch: the streams several prompts share (0:
 * GEN_BATCH_STREAMS; never fewer than k_max; 1: prompt by prompt).
 * weights: what the decode's matrix products read (model/infer.h); bf16 on
 * weights that are not exactly bf16 rounds them, and the candidates'
 * parameters say so ("weights":"bf16"). */
int gen_model_open(GenModel *g, const char *ckpt, const char *tok_path, const SampleParams *p,
                   int k_max, int batch, InferWeights weights, Err *err);
void gen_model_close(GenModel *g);
GenBackend gen_model_backend(GenModel *g);


#endif
