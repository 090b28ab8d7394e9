/* Scoring with a reward model: a checkpoint with the reward head, its
 * tokenizer, and batches of (prompt, answer) examples encoded by model/seq.h.
 * The score of an answer is the reward head on the final hidden state of its
 * last token (</s> for a finished answer). RmScorer owns the model, the
 * tokenizer and its activations; PPO, best-of-n, `rlhf score` and eval share it. */
#ifndef RLHF_RM_SCORE_H
#define RLHF_RM_SCORE_H

#include "db/db.h"
#include "model/model.h"
#include "model/seq.h"
#include "model/tokenizer.h"
#include "util/err.h"

typedef struct RmScorer {
    Model m;
    Tokenizer *tok;
    RunState rs;
    int max_batch;
    char *template; /* NULL: the default (seq.h) */
    int *tokens, *lens;
    SeqExample *ex;
    int64_t cut; /* examples whose prompt was cut to fit the context, so far */
} RmScorer;

/* Loads an RM checkpoint; refuses one without a reward head ("... is not a
 * reward model"). tok_path NULL: the tokenizer the checkpoint carries.
 * template NULL: the default. max_batch: examples per forward pass. */
int rm_scorer_open(RmScorer *s, const char *path, const char *tok_path, const char *template,
                   int max_batch, Err *err);
/* The same with a model already loaded (moved into s: *m is zeroed), such as
 * a LoRA reward model sharing the policy's base (model_load_adapter_onto);
 * path names it in messages and finds its tokenizer. */
int rm_scorer_open_model(RmScorer *s, Model *m, const char *path, const char *tok_path,
                         const char *template, int max_batch, Err *err);
/* rm_scorer_open with the template the prompts are read in: template when
 * given, else the one registered for the RM in db (found by path or name),
 * else the project's gen.template setting, else the default. db may be NULL. */
int rm_scorer_open_in(Db *db, RmScorer *s, const char *path, const char *tok_path,
                      const char *template, int max_batch, Err *err);
void rm_scorer_close(RmScorer *s);
/* Scores n texts (answers as stored: without the template's joining space). */
int rm_score_texts(RmScorer *s, const char *const *prompts, const char *const *answers, int n,
                   float *out, Err *err);
/* The same, where cut[i] set (cut may be NULL) marks an answer that ran out
 * of tokens without ending: scored without the </s> a finished answer ends
 * with, as PPO scores it. */
int rm_score_texts_cut(RmScorer *s, const char *const *prompts, const char *const *answers,
                       const unsigned char *cut, int n, float *out, Err *err);
/* Scores n already-encoded examples. */
int rm_score_examples(RmScorer *s, const SeqExample *ex, int n, float *out, Err *err);
/* The same pass on any model with a reward head (a trainer's): passes of up
 * to max_batch rows; rs fits max_batch rows of seq_len, tokens holds
 * max_batch·seq_len ints and lens max_batch. */
int rm_score_model(const Model *m, RunState *rs, int *tokens, int *lens, int max_batch,
                   const SeqExample *ex, int n, float *out, Err *err);

#endif
