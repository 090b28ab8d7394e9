/* Reward-model training: InstructGPT's K-wise ranking loss and the passes that
 * feed it. A prompt ranked over K answers is one batch element: its K answers
 * are K rows of one forward pass, each row's reward is read at its last token
 * (model/seq.h), and the loss is −mean log σ(r_w − r_l) over the group's
 * non-tie pairs, so each answer passes the network once however many pairs it
 * is in. RmData owns the encoded answers; RmTrainer owns its activations and
 * batch buffers, not the model. */
#ifndef RLHF_RM_RM_TRAIN_H
#define RLHF_RM_RM_TRAIN_H

#include <stdint.h>

#include "model/model.h"
#include "model/seq.h"
#include "model/tokenizer.h"
#include "rm/prefs.h"
#include "util/err.h"

typedef struct RmLossOpts {
    double margin; /* > 0: a pair whose answers both carry 1–7 scores needs
                      r_w − r_l to exceed margin·(score_w − score_l) (TRL's margin) */
    double center; /* TRL's center_rewards_coefficient: + center·mean (r_w + r_l)² */
} RmLossOpts;

typedef struct RmGroupLoss {
    double loss;         /* the group's loss (mean over its pairs) */
    int pairs, correct;  /* non-tie pairs; those with r_w > r_l */
    double margin_sum;   /* Σ over pairs of r_w − r_l */
    double dbias;        /* scale · d loss/d (the reward head's bias), exactly: the
                            pairwise terms cancel in it, only centring is left */
} RmGroupLoss;

/* The loss of one group from its rewards r[0..n) and ranks (1 = best, equal
 * ranks tie; likert 1..7 or 0, may be NULL). Adds scale · d loss/d r_i to
 * dr[i] when dr is not NULL. Returns the number of non-tie pairs (0: the
 * group holds nothing to learn and adds nothing). */
int rm_kwise_loss(const float *r, const int *rank, const int *likert, int n, const RmLossOpts *o,
                  float scale, float *dr, RmGroupLoss *out);

/* Every answer of a PrefSet encoded once (prompt cut from the left when too
 * long). Group g's answers are ex[first[g] .. first[g] + set->g[g].n). */
typedef struct RmData {
    const PrefSet *set; /* not owned */
    SeqExample *ex;
    int64_t *first;
    int64_t n_ex;
    int64_t cut, cut_answer; /* answers whose prompt (answer) lost tokens to fit */
    int max_k;               /* the most answers in a group */
    int64_t sampled_ids;     /* answers given by their sampled ids, not re-encoded text */
} RmData;

int rm_data_encode(RmData *d, const PrefSet *s, const Tokenizer *tok, const char *template,
                   int max_len, Err *err);
void rm_data_free(RmData *d);

typedef struct RmTrainer {
    Model *m; /* not owned; gradients allocated by the caller for training */
    RunState rs;
    int max_rows; /* answers per forward pass (at least the largest group) */
    int *tokens, *lens;
    float *r, *dr, *dreward;
    RmLossOpts loss;
} RmTrainer;

int rm_trainer_create(RmTrainer *t, Model *m, int max_rows, int max_k, const RmLossOpts *lo,
                      Err *err);
void rm_trainer_free(RmTrainer *t);

/* Figures of a training step or an evaluation over groups. */
typedef struct RmStats {
    double loss;              /* mean over groups with pairs of the group loss */
    int64_t groups, pairs, correct;
    double r_mean, r_std;     /* over every answer */
    double margin;            /* mean over pairs of r_w − r_l */
    double accuracy;          /* correct / pairs */
} RmStats;

/* Forward and backward over groups idx[0..n) in passes of up to max_rows
 * answers; gradients ACCUMULATE, each group's loss weighted by `scale` (1/G
 * for a step of G groups). st (may be NULL) gets the figures. */
int rm_train_groups(RmTrainer *t, const RmData *d, const int64_t *idx, int64_t n, float scale,
                    RmStats *st, Err *err);
/* Forward only: the loss and accuracy over groups idx[0..n); rewards (may be
 * NULL) receives each answer's reward at its index in d->ex. */
int rm_eval_groups(RmTrainer *t, const RmData *d, const int64_t *idx, int64_t n, RmStats *st,
                   float *rewards, Err *err);

/* Shifts the reward head's bias so that rewards of mean `mean` become 0 on
 * average; every scorer of the checkpoint gets the shift. Returns the new bias. */
double rm_normalise(Model *m, double mean);

#endif
