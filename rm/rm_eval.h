/* Evaluation of a reward model against rankings: pairwise accuracy (the RM
 * prefers the answer the labeler ranked higher) with a 95% interval by
 * bootstrap over prompts (a prompt's K(K-1)/2 pairs are not independent),
 * overall, per labeler and per level of labeler agreement on the prompt, and
 * the labelers' own pairwise agreement on the same prompts (the ceiling an RM
 * can reach: InstructGPT's RM 72.4% where labelers agreed 72.6%). */
#ifndef RLHF_RM_RM_EVAL_H
#define RLHF_RM_RM_EVAL_H

#include <stdint.h>

#include "rm/compare.h"
#include "rm/prefs.h"
#include "util/err.h"

/* Wilson score interval of k successes in n trials at z (1.96: 95%);
 * [NAN, NAN] when n is 0. */
void rm_wilson(double k, double n, double z, double *lo, double *hi);
/* The 95% percentile bootstrap interval of sum(num) / sum(den) over n units
 * (prompts) resampled with replacement B times from seed (reproducible); den
 * NULL: every unit weighs 1. [NAN, NAN] when n is 0. */
void rm_bootstrap(const double *num, const double *den, int64_t n, int B, uint64_t seed,
                  double *lo, double *hi);

typedef struct RmAcc {
    int64_t pairs, correct;
    double acc, lo, hi; /* NAN without pairs; lo, hi: bootstrap over prompts where known */
    double wlo, whi;    /* Wilson's interval, as if every pair were independent */
    int boot;           /* lo, hi are the bootstrap's (else Wilson's) */
} RmAcc;

/* acc and Wilson's interval from pairs and correct (lo, hi too). */
void rm_acc_finish(RmAcc *a);
/* lo, hi of a by bootstrap over n prompts, prompt i having correct[i] of
 * pairs[i] pairs (2000 resamples, a fixed seed). */
void rm_acc_bootstrap(RmAcc *a, const double *correct, const double *pairs, int64_t n);

/* Levels of agreement among the prompt's labelers (their pairwise agreement). */
enum { RM_AGREE_ONE, RM_AGREE_LOW, RM_AGREE_MID, RM_AGREE_HIGH, RM_AGREE_FULL, RM_AGREE_N };
const char *rm_agree_level_name(int level); /* "one labeler", "< 0.5", ... */
int rm_agree_level(double rate);            /* NAN: RM_AGREE_ONE */

typedef struct RmEvalReport {
    RmAcc all;
    int64_t groups, prompts;
    RmAcc *by_labeler; /* one per PrefSet.labelers, same order */
    int n_labelers;
    RmAcc by_level[RM_AGREE_N];
    int64_t prompts_by_level[RM_AGREE_N];
    RmAcc labelers;    /* the labelers' pairwise agreement on the same prompts */
    int64_t *prompt_ids; /* the prompts evaluated, ascending (store data) */
    int64_t n_prompt_ids;
} RmEvalReport;

/* Accuracy of rewards (one per answer; group g's at first[g]..) over the
 * groups g with sel[g] set (sel NULL: all). agree_ids/agree_rate (ascending
 * ids, from rm_prompt_agreement; may be NULL) give each prompt's level. */
int rm_eval_report(const PrefSet *s, const int64_t *first, const float *rewards,
                   const unsigned char *sel, const int64_t *agree_ids, const double *agree_rate,
                   int64_t n_agree, RmEvalReport *out, Err *err);
/* Fills out->labelers from the rankings of rs on out->prompt_ids. */
int rm_eval_labeler_agreement(const RmSet *rs, RmEvalReport *out, Err *err);
void rm_eval_report_free(RmEvalReport *r);

#endif
