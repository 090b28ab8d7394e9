/* Direct preference optimisation (Rafailov et al. 2023) on the pairs of
 * ranked groups (rm/prefs.h: every non-tie pair of a group, chosen = the
 * better rank). The reference log-probabilities are those of the starting
 * policy, computed once before training and kept (the checkpoint carries
 * them, so a resumed run needs no reference model). Losses as TRL names them:
 *   sigmoid  −(1−ε)·log σ(β·h) − ε·log σ(−β·h)   (ε: label smoothing, cDPO)
 *   ipo      (h − 1/(2β))², on per-token mean log-probabilities (as TRL)
 *   hinge    max(0, 1 − β·h)
 * where h = (log π(y_w) − log π(y_l)) − (log π_ref(y_w) − log π_ref(y_l)).
 * With rpo α > 0 each pair adds α·NLL(y_w), the chosen answer's negative
 * log-likelihood per token (RPO, Pang et al. 2024; TRL's rpo_alpha): it keeps
 * the chosen answers likely while the margin grows. */
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

/* Pairs are kept with their group: a step takes whole groups, so each of a
 * group's K answers goes through the model once for its K·(K−1)/2 pairs
 * (with K = 4, 4 sequences instead of 12). A pairs file is groups of one pair. */
typedef struct DpoSet {
    SeqExample *ex; /* every answer once, encoded with its prompt; a group's are contiguous */
    int n_ex;
    int *chosen, *rejected; /* n_pairs example indices */
    int n_pairs;
    int *ex_start;   /* n_groups + 1: group g's answers are ex[ex_start[g] .. ex_start[g+1]) */
    int *pair_start; /* n_groups + 1: and its pairs pair_start[g] .. pair_start[g+1] */
    int *lens;       /* n_groups: the longest answer's sequence, for length grouping */
    int n_groups;    /* groups with at least one pair */
    int max_k;       /* the most answers in one group */
    double *ref;     /* n_ex reference log-probabilities (sums over answer tokens); owned */
    int64_t cut;     /* examples cut to fit the context */
    /* with a token-level KL (DpoTrainer.token_kl): the reference's log-softmax
     * at every answer position, example e's rows from dist_off[e]; owned */
    float *ref_dist;
    int64_t *dist_off; /* n_ex + 1 */
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
    int rows; /* sequences per forward pass: max(2·micro, the largest group) */
    int type;
    double beta, smoothing, clip;
    double rpo; /* α of the chosen answers' NLL per pair (0: plain DPO); set after init */
    /* γ of the token-level KL (0: none; set after init): each pair adds
     * γ/2 × (the mean over each of its two answers' tokens of KL(π ‖ π_ref) at
     * that token, over the whole vocabulary); needs set->ref_dist */
    double token_kl;
    double *sums, *w; /* rows: log-probability sums, d loss / d log-prob */
    double *kl, *kw;  /* rows: KL summed over the answer's tokens; its weight in the loss */
    int *idx;         /* rows example indices */
} DpoTrainer;

/* micro: pairs' worth of sequences per forward pass (2·micro), raised to
 * max_k so the largest group fits one pass. */
int dpo_trainer_init(DpoTrainer *tr, Model *m, AdamW *opt, int micro, int max_k, int type,
                     double beta, double smoothing, double clip, Err *err);
void dpo_trainer_free(DpoTrainer *tr);

/* Fills set->ref with the current model's log-probabilities (call before training). */
int dpo_reference(DpoTrainer *tr, DpoSet *set, Err *err);
/* The most memory the reference's distributions may take (--token-kl). */
#define DPO_DIST_MAX_BYTES ((size_t)4 << 30)
/* Fills set->ref_dist with ref's log-softmax at every answer position (ref:
 * the reference model, of tr's shape; the trainer's own model with its LoRA
 * adapter off when ref is NULL). More than DPO_DIST_MAX_BYTES is an error
 * that says how much. */
int dpo_reference_dist(DpoTrainer *tr, Model *ref, DpoSet *set, Err *err);

/* Means over the pairs, TRL's logged quantities. */
typedef struct DpoStats {
    double loss, chosen, rejected, margin, accuracy, logp_chosen, logp_rejected;
    double nll; /* the chosen answers' NLL per token (in loss only with rpo > 0) */
    double token_kl; /* mean over answers of KL(π ‖ π_ref) per token (NAN without ref_dist);
                        in loss only with token_kl > 0 */
    int n;
} DpoStats;

/* The gradients of every pair of groups idx[0..n) of set added to the
 * model's (summed over MPI ranks), without an optimizer step (the run
 * engine's); the statistics in *st. */
int dpo_grads(DpoTrainer *tr, const DpoSet *set, const int *idx, int n, DpoStats *st, Err *err);
/* One optimizer step on every pair of groups idx[0..n) of set (the mean loss
 * over those pairs). */
int dpo_step(DpoTrainer *tr, const DpoSet *set, const int *idx, int n, float lr, DpoStats *st,
             double *gnorm, Err *err);
/* The statistics over every pair of set, without training. */
int dpo_eval(DpoTrainer *tr, const DpoSet *set, DpoStats *st, Err *err);

#endif
