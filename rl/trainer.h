/* Pieces every rl/ training loop shares: the order of examples (a fresh
 * shuffle per epoch, seeded, optionally grouped by length so a right-padded
 * batch wastes little), a batch buffer for model/seq.h examples, and the
 * resumable state a trainer keeps in its checkpoint's extra bytes. The order
 * is a pure function of (seed, step), so a resumed run sees the same batches
 * as one that never stopped. */
#ifndef RLHF_RL_TRAINER_H
#define RLHF_RL_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "model/optim.h"
#include "model/seq.h"
#include "util/err.h"

/* What a trainer's checkpoint carries besides weights and AdamW moments,
 * followed in the extra bytes by `payload` bytes of the trainer's own (DPO:
 * the reference log-probabilities). Fixed layout; version bumps on change. */
typedef struct RlState {
    char magic[8]; /* "RL-SFT\0\0", "RL-DPO\0\0", ... */
    uint32_t version, batch;
    int64_t step, total_steps, run_id, parent_id, n_train;
    uint64_t seed;
    char data_sha[65]; /* of the encoded training data (tokens and settings) */
    char pad[7];
    double last_val;
    int64_t tokens_seen;
    int64_t payload; /* bytes that follow */
} RlState;

/* Steps in one pass over n examples, B per step (the last one may be short). */
int64_t rl_steps_per_epoch(int n, int B);
/* The examples of optimizer step `step` into idx (up to B); returns how many.
 * Epoch e = step / steps_per_epoch is a shuffle seeded by (seed, e); with
 * group > 0 and lens given, runs of group·B shuffled examples are sorted by
 * length (longest first) as in TRL's group_by_length, then the batches of the
 * epoch are shuffled again, so one batch holds examples of similar length.
 * perm: scratch of n ints. */
int rl_batch_at(int n, int B, const int *lens, int group, uint64_t seed, int64_t step, int *perm,
                int *idx);

/* A right-padded batch of examples with answer targets (seq.h), sized for
 * up to `rows` sequences of up to T tokens. */
typedef struct RlBatch {
    int rows, T;
    int *tokens, *lens, *n_prompt, *targets;
    SeqExample *ex; /* shallow copies of the examples of the current batch */
    float *buf;     /* rows*T floats of per-token scratch (log-probabilities, weights) */
} RlBatch;

int rl_batch_create(RlBatch *b, int rows, int T, Err *err);
void rl_batch_free(RlBatch *b);
/* Packs ex[idx[0..n)] (n <= rows); returns the padded length T of the batch
 * and the number of answer tokens in *n_targets. */
int rl_batch_fill(RlBatch *b, const SeqExample *ex, const int *idx, int n, int *n_targets);

/* Checkpoint with the state and payload in the extra bytes. */
int rl_ckpt_save(const char *path, const Model *m, const AdamW *opt, const RlState *st,
                 const void *payload, Err *err);
/* Loads a checkpoint written by rl_ckpt_save with this magic; *payload
 * (malloc'd, may be NULL when st->payload == 0) gets the payload. A file of
 * another kind or without optimizer state is RLHF_EFORMAT naming it. */
int rl_ckpt_load(const char *path, const char magic[8], Model *m, AdamW *opt, RlState *st,
                 void **payload, Err *err);

/* The same for a LoRA run's adapter onto its base already in memory (base,
 * whose file has sha256 base_sha): m becomes a view of base with the adapter
 * (model_load_adapter_onto), so a resume holds one copy of the base. */
int rl_ckpt_load_onto(const char *path, const char magic[8], const Model *base,
                      const char *base_sha, Model *m, AdamW *opt, RlState *st, void **payload,
                      Err *err);

/* A fresh state for a run. */
void rl_state_init(RlState *st, const char magic[8], uint64_t seed, int64_t parent_id,
                   int64_t n_train, const char *sha);

/* sha256 hex of a set of encoded examples (tokens, prompt lengths) and a
 * trainer's settings string, for refusing to resume on other data. */
void rl_examples_sha(const SeqExample *ex, int n, const char *settings, char out[65]);

/* Refuses a checkpoint with a reward head as a policy and drops a value
 * head (the policy trainers add what they need). name: for the message. */
int rl_policy_check(Model *m, const char *name, Err *err);

#include "model/tokenizer.h"

/* Loads a policy checkpoint (either format) for training: refuses a reward
 * model, drops a value head, loads its tokenizer (tok_path, else the one it
 * carries; checked against the vocabulary) and makes the model carry it. */
int rl_policy_load(const char *path, const char *tok_path, Model *m, Tokenizer **tok, Err *err);

#endif
