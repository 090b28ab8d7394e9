/* Best-of-n as a generation backend: every answer asked of it is the
 * highest-scoring of n samples drawn from an inner backend, scored by a
 * caller's scorer (a reward model: rl/eval.h adapts an RmScorer, so gen stays
 * below rm). The kept answer is returned; the scores of all n go to the
 * report callback and the running statistics. The derived model
 * "<policy>+bo<n>" is registered here so its answers are candidates of their
 * own policy in the store (Elo rates it apart from the policy it samples). */
#ifndef RLHF_GEN_BEST_OF_H
#define RLHF_GEN_BEST_OF_H

#include "gen/gen.h"

/* Scores n answers to one prompt (the prompt as stored, not templated).
 * cut[i] set: answer i ran out of tokens without ending, and is scored as PPO
 * scores it, without the </s> a finished answer has; cut may be NULL. */
typedef int (*BestOfScoreFn)(void *ctx, const char *prompt, const char *const *answers,
                             const unsigned char *cut, int n, float *out, Err *err);
/* Sees every answer's n samples with their seeds and scores; kept is the index returned. */
typedef void (*BestOfReportFn)(void *ctx, const char *prompt, const GenSample *s,
                               const uint64_t *seeds, const float *scores, int n, int kept);

typedef struct BestOfStats {
    int64_t answers, samples;
    double sum_kept;  /* score of the kept answers */
    double sum_all;   /* score of every sample */
    double sum_first; /* score of sample 0: what plain sampling would have given */
} BestOfStats;

typedef struct BestOf {
    GenBackend inner; /* copied; its ctx is borrowed */
    int n;            /* samples per answer */
    char *template;   /* owned: the generation template, to recover the prompt */
    BestOfScoreFn score;
    void *score_ctx;
    BestOfReportFn report; /* may be NULL */
    void *report_ctx;
    BestOfStats st;
    char *params_json; /* owned: the inner parameters plus best_of and rm */
} BestOf;

/* template NULL: the default; rm_label names the scorer in the candidates'
 * parameters (e.g. the RM's path). */
int best_of_init(BestOf *b, const GenBackend *inner, int n, const char *template,
                 BestOfScoreFn score, void *score_ctx, const char *rm_label, Err *err);
void best_of_free(BestOf *b);
GenBackend best_of_backend(BestOf *b);

/* The seed of sample i of an answer drawn with seed: sample 0 uses seed itself,
 * so best-of-n's first sample is the plain policy's answer. */
uint64_t best_of_seed(uint64_t seed, int i);
/* Index of the highest score (the first of equal ones; NAN never wins). */
int best_of_pick(const float *scores, int n);
/* The prompt inside a rendered template (input = template with {prompt}
 * replaced; for a chat template, a prompt that renders to input:
 * chat_prompt_of); caller frees; NULL when input does not match the template. */
char *best_of_prompt(const char *template, const char *input);

/* Registers "<policy>+bo<n>" (or name) as a policy whose parent is policy_id,
 * recording n and the RM (path and sha256) in its config; refuses a name
 * already registered with another n or RM. Call inside a transaction. */
int best_of_register(Db *db, int64_t policy_id, const char *policy_name, const char *name, int n,
                     const char *rm_path, const char *template, int64_t *id, char **name_out,
                     Err *err);

#endif
