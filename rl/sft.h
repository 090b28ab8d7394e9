/* Supervised fine-tuning: next-token loss on the answer tokens of prompt →
 * answer examples (model/seq.h encodes them the way gen reads a prompt), in
 * right-padded batches (by default shuffled; optionally of similar length, trainer.h). The loss of
 * a step is the mean over every answer token of its examples, so gradient
 * accumulation over micro-batches gives the same step as one big batch. */
#ifndef RLHF_RL_SFT_H
#define RLHF_RL_SFT_H

#include <stdint.h>

#include "model/model.h"
#include "model/optim.h"
#include "model/tokenizer.h"
#include "rl/sft_data.h"
#include "rl/trainer.h"

/* Encoded examples, split into training and held-out ones by prompt text
 * (rm_prompt_in_val, so the split agrees with the reward model's). */
typedef struct SftSet {
    SeqExample *ex;
    int *lens; /* ex[i].n, for length grouping */
    int n;
    int64_t cut;      /* examples whose prompt (or answer) was cut to fit */
    int64_t n_tokens; /* answer tokens */
} SftSet;

int sft_encode(const SftData *d, const Tokenizer *t, const char *template, int max_len,
               double val_frac, SftSet *train, SftSet *val, Err *err);
void sft_set_free(SftSet *s);

typedef struct SftTrainer {
    Model *m;
    AdamW *opt;
    RunState rs;
    RlBatch batch;
    int micro;   /* sequences per forward pass */
    double clip; /* gradient clipping by global norm; <= 0: off */
} SftTrainer;

int sft_trainer_init(SftTrainer *tr, Model *m, AdamW *opt, int micro, double clip, Err *err);
void sft_trainer_free(SftTrainer *tr);
/* The gradients of examples idx[0..n) of set added to the model's (summed
 * over MPI ranks), their mean answer-token loss in *loss and answer tokens
 * in *tokens (may be NULL); no optimizer step (the run engine's). */
int sft_grads(SftTrainer *tr, const SftSet *set, const int *idx, int n, double *loss,
              int64_t *tokens, Err *err);
/* One optimizer step on examples idx[0..n) of set: mean answer-token loss
 * in *loss, gradient norm before clipping in *gnorm, answer tokens in *tokens. */
int sft_step(SftTrainer *tr, const SftSet *set, const int *idx, int n, float lr, double *loss,
             double *gnorm, int64_t *tokens, Err *err);
/* Mean answer-token loss over the whole set (NAN when it has no tokens). */
int sft_eval(SftTrainer *tr, const SftSet *set, double *loss, Err *err);

#endif
