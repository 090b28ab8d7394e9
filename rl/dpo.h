/* Direct preference optimisation (Rafailov et al. 2023) on the pairs of
 * ranked groups (rm/prefs.h: every non-tie pair of a group, chosen = the
 * better rank). The reference log-probabilities are those of the starting
 * policy, computed once before training and kept (the checkpoint carries
 * them, so a resumed run needs no reference model). Losses as TRL names them:
 *   sigmoid  −(1−ε)·log σ(β·h) − ε·log σ(−β·h)   (ε: label smoothing, cDPO)
 *   ipo      (h − 1/(2β))², on per-token mean log-probabilities (as TRL)
 *   hinge    max(0, 1 − β·h)
 * where h = (log π(y_w) − log π(y_l)) − (log π_ref(y_w) − log π_ref(y_l)). */
#ifndef RLHF_RL_DPO_H
#define RLHF_RL_DPO_H

#include "model/model.h"
#include "model/optim.h"
#include "model/tokenizer.h"
#include "rl/trainer.h"
#include "rm/prefs.h"

enum { DPO_SIGMOID, DPO_IPO, DPO_HINGE };

/* -1 for an unknown name. */
int dpo_loss_type(const char *name);
const char *dpo_loss_name(int type);

/* The loss of one pair from the policy's (pc, pr) and the reference's (rc,
 * rr) log-probabilities of the chosen and rejected answers; *dc and *dr get
 * d loss / d pc and d loss / d pr. */
double dpo_pair_loss(int type, double beta, double smoothing, double pc, double pr, double rc,
                     double rr, double *dc, double *dr);

typedef struct DpoSet {
    SeqExample *ex;   /* every answer once, encoded with its prompt */
    int n_ex;
    int *chosen, *rejected; /* n_pairs example indices */
    int *lens;              /* n_pairs: the longer of the two, for length grouping */
    int n_pairs;
    double *ref;  /* n_ex reference log-probabilities (sums over answer tokens); owned */
    int64_t cut;  /* examples cut to fit the context */
} DpoSet;

/* Encodes the groups' answers and lists their non-tie pairs; groups marked
 * val go to val. */
int dpo_build(const PrefSet *s, const Tokenizer *t, const char *template, int max_len,
              DpoSet *train, DpoSet *val, Err *err);
void dpo_set_free(DpoSet *s);

typedef struct DpoTrainer {
    Model *m;
    AdamW *opt;
    RunState rs;
    RlBatch batch;
    int micro; /* pairs per forward pass (2·micro sequences) */
    int type;
    double beta, smoothing, clip;
    double *sums; /* 2·micro */
    int *rows;    /* 2·micro example indices */
} DpoTrainer;

int dpo_trainer_init(DpoTrainer *tr, Model *m, AdamW *opt, int micro, int type, double beta,
                     double smoothing, double clip, Err *err);
void dpo_trainer_free(DpoTrainer *tr);

/* Fills set->ref with the current model's log-probabilities (call before training). */
int dpo_reference(DpoTrainer *tr, DpoSet *set, Err *err);

/* Means over the pairs, TRL's logged quantities. */
typedef struct DpoStats {
    double loss, chosen, rejected, margin, accuracy, logp_chosen, logp_rejected;
    int n;
} DpoStats;

/* One optimizer step on pairs idx[0..n) of set (mean loss over them). */
int dpo_step(DpoTrainer *tr, const DpoSet *set, const int *idx, int n, float lr, DpoStats *st,
             double *gnorm, Err *err);
/* The statistics over every pair of set, without training. */
int dpo_eval(DpoTrainer *tr, const DpoSet *set, DpoStats *st, Err *err);

#endif
