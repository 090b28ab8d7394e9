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
    /* Several reward models combined (rm_scorer_open on a spec, see below):
     * part 0 is this scorer's own model, parts 1.. are in more[]. Each part's
     * reward is normalised, z = (r - mean) / sd, with the mean and sd of its
     * scores of the project's candidates (rlhf score). The combined reward is
     * the weighted sum of the z's; with a safety part (Llama 2's gate), it is
     * that part's z when the prompt carries the gate's tag (db_prompt_tag) or
     * that z is below the threshold, else the weighted sum of the others.
     * n_parts is 0 for a single RM (raw rewards). */
    int n_parts;
    struct RmScorer *more; /* n_parts - 1 scorers, owned */
    float *w;              /* weights by part */
    double *mean, *sd;     /* normalisation by part (0 and 1 until rm_scorer_normalise) */
    char **paths;          /* by part, owned */
    int safety;            /* the gating part, -1: none */
    float threshold;       /* gate: the safety part's z below this decides */
    char *gate_tag;        /* gate: prompts with this tag go to the safety part ("safety") */
    int gate_tag_named;    /*   the spec named it (@TAG): some prompt must carry it */
    int n_gated;           /* those prompts as the RM reads them: ids from <s> on */
    int **gated, *gated_len;
    char **gated_text;     /*   and as texts */
    double *part_sum;      /* z of each part summed over the answers scored since the last */
    int64_t part_n;        /*   rm_scorer_take_part_means, and how many answers */
} RmScorer;

/* Each part's mean normalised reward over the answers scored since the last
 * call (out holds n_parts; NAN when none), then starts again: a trainer's
 * per-RM curves. */
void rm_scorer_take_part_means(RmScorer *s, double *out);

/* Whether path is a combination spec rather than one checkpoint: parts
 * joined by '+', each PATH, PATH*WEIGHT, or PATH!THRESHOLD[@TAG] for the
 * safety RM of the gate, which also decides for every prompt tagged TAG
 * (default "safety") ("help.ckpt*0.7+terse.ckpt*0.3", "help.ckpt+safe.ckpt!-1",
 * "help.ckpt+safe.ckpt!-1@redteam"). */
int rm_spec_is_combined(const char *path);
/* Sets each part's normalisation from its scores in db (the RM registered by
 * path; RLHF_ENOTFOUND naming the part and `rlhf score` when it has fewer
 * than two), and the gate's prompts from the tagged prompts in db. A no-op
 * for a single RM. */
int rm_scorer_normalise(Db *db, RmScorer *s, Err *err);
/* The gate's prompts (texts, also read with the scorer's template and
 * tokenizer): an answer to one of them gets the safety part's reward. Scored
 * as text (rm_score_texts*), the prompt is recognised by its text; as
 * examples (a trainer's rollouts), by its ids, and a prompt cut from the left
 * to fit the context is not recognised (its tail may be another's). Replaces
 * any before. */
int rm_scorer_gate_prompts(RmScorer *s, const char *const *prompts, int n, Err *err);
/* Combines per-part rewards r[part][i] (as rm_score_examples does) into out;
 * gated[i] set (gated may be NULL) sends example i to the safety part. */
void rm_combine(const RmScorer *s, float *const *r, const unsigned char *gated, int n, float *out);

/* Loads an RM checkpoint, or every part of a combination spec (they must
 * share vocabulary and context; normalise before scoring, rm_scorer_open_in
 * does when given a project); refuses one without a reward head ("... is not a
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
