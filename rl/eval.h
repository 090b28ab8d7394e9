/* Evaluation: two policies answer the same held-out prompts (through gen_run,
 * so answers are candidates of their registered models and a rerun reuses
 * them), a simulated labeler ranks every policy's answers per prompt (stored
 * as its ranking, so `rlhf elo --by policy` rates each policy evaluated), and
 * the reward model scores them. Every figure is over the n samples drawn per
 * prompt and side (the draws table: an answer drawn twice counts twice), not
 * over distinct answers. Reports per side: win rate by the judge and by the
 * RM with 95% intervals by bootstrap over prompts, mean reward, the sampled
 * KL from a reference (on the sampled ids, at the sampling temperature),
 * mean length and the judge rule's mean score, and the answers' health: distinct
 * answers per prompt, the share of samples that hold the side's chat template
 * text (the model ran on into another turn) and, given the training data, the
 * share with a word the data never has (garbled words).
 *
 * EvalResult owns its strings (eval_result_free). */
#ifndef RLHF_RL_EVAL_H
#define RLHF_RL_EVAL_H

#include <stdint.h>

#include "annotator/rules.h"
#include "db/db.h"
#include "model/sample.h"
#include "rm/rm_score.h"

typedef struct EvalSideOpts {
    const char *policy; /* checkpoint path or registered model name */
    int best_of;        /* > 1: best-of-n of the policy by the RM, registered as its own model */
} EvalSideOpts;

typedef struct EvalOptions {
    EvalSideOpts side[2];
    const char *tok_path; /* NULL: the tokenizer inside each checkpoint */
    const char *split;    /* NULL: any split */
    int64_t limit;        /* at most this many prompts (0: all) */
    int n;                /* samples (draws) per prompt per side */
    SampleParams sp;      /* shared by both sides */
    uint64_t seed;
    const Rule *rule;      /* the judge: a rule, or */
    const char *judge_cmd; /* an external judge (autolabel.h's protocol) */
    int judge_timeout_ms;
    double noise; /* judge noise (rules only) */
    uint64_t judge_seed;
    const char *judge_name; /* NULL: "judge:RULE" (":noise=X" with noise) or "judge:cmd:PROGRAM" */
    const char *rm;         /* NULL: no RM; checkpoint path or registered name */
    const char *ref;        /* NULL: each side's nearest ancestor (or itself) of kind sft */
    int batch;              /* examples per forward pass (KL, RM) */
    int progress;           /* force the progress lines */
    int bootstrap;          /* resamples of the prompts for the intervals */
    const char *known_words; /* NULL, or text files (comma-separated): an answer with a
                                word none of them has counts as garbled (words.h) */
} EvalOptions;

EvalOptions eval_options_default(void);

typedef struct EvalSide {
    char *name;   /* registered model */
    char *policy; /* the checkpoint sampled */
    char *ref;    /* checkpoint of the reference, NULL: none (no KL) */
    int64_t model_id;
    int best_of;
    int64_t answers, distinct, new_answers; /* samples judged, distinct among them, new */
    double win, win_lo, win_hi;          /* by the judge, ties half; bootstrap over prompts */
    double wilson_lo, wilson_hi;         /* Wilson's interval, treating each prompt's win as a trial */
    double rm_win, rm_lo, rm_hi, reward; /* NAN without an RM */
    double kl;                           /* NAN without a reference: kl_policy + kl_best_of */
    double kl_policy; /* sampled: mean over prompts and draws of log π_T(y) − log π_ref,T(y)
                         on the sampled ids at the sampling temperature T */
    double kl_best_of; /* log n − (n−1)/n for best-of-n (its bound on KL(bo‖π)); 0 otherwise */
    double length;     /* mean answer length in tokens */
    double judge_score; /* mean rule score in [0,1]; NAN for an external judge */
    double distinct_per_prompt; /* distinct answers among a prompt's samples, mean over prompts */
    double leak;    /* share of samples holding text of the side's chat template */
    double unknown; /* share of samples with a word the known words lack; NAN without them */
} EvalSide;

typedef struct EvalResult {
    EvalSide side[2];
    int64_t prompts;
    double judge_ties, rm_ties; /* share of answer pairs tied */
    int64_t rankings_new;       /* judge rankings stored by this run */
    int64_t prompts_unstored;   /* prompts judged without storing a ranking: more distinct
                                   answers than a ranking holds (RS_MAX_CAND) */
    char *judge;                /* the judge's labeler name */
    char *rm;                   /* the RM's checkpoint, NULL: none */
    double seconds;
} EvalResult;

/* Runs the evaluation. Bad input (a missing checkpoint, an unknown model, an
 * RM without a reward head, mismatched vocabularies) fails before anything is
 * written. An interrupt stops between prompts with RLHF_EINTR; what was
 * stored (answers, judge rankings of whole prompts) stays. */
int eval_run(Db *db, const EvalOptions *o, EvalResult *r, Err *err);
void eval_result_free(EvalResult *r);
/* Keeps the result as a run of kind "eval" (input: side A's model, output:
 * side B's; config: config_json) with metrics a.win_rate, a.win_lo, a.win_hi,
 * a.rm_win_rate, a.reward, a.kl, a.length, a.judge_score, a.distinct_per_prompt,
 * a.template_leaks, a.unknown_words and the same for b,
 * at step 0 (a figure that is not known is left out). One transaction. */
int eval_record(Db *db, const EvalResult *r, const char *config_json, Err *err);

/* Scores answers with an RmScorer (ctx): the BestOfScoreFn of gen/best_of.h
 * (an answer cut at max tokens scored without </s>). */
int eval_rm_score(void *rm_scorer, const char *prompt, const char *const *answers,
                  const unsigned char *cut, int n, float *out, Err *err);

/* 1 when answer holds a piece of the chat template: a line of the template's
 * text around {prompt} (a stored chat template as it renders; NULL: gen's
 * default), blanks trimmed, of two bytes or more: "Human:", "Assistant:",
 * "<|im_start|>assistant", "<|im_end|>". A model that writes one ran on into
 * a turn. */
int eval_template_leak(const char *template, const char *answer);

/* Sum of the answer's log-probabilities under m, for n encoded examples,
 * batch per forward pass, at temperature[i] (logits / T; NULL: 1). */
int eval_logprobs_examples(const Model *m, const SeqExample *ex, const float *temperature, int n,
                           int batch, double *out, Err *err);
/* The same for n (prompt, answer) pairs encoded with template (seq.h), ended with </s>. */
int eval_logprobs(const Model *m, const Tokenizer *tok, const char *template,
                  const char *const *prompts, const char *const *answers, int n, int batch,
                  double *out, Err *err);

#endif
