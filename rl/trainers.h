/* The trainers on the run engine (run.h): each an options struct (its
 * TrainOpts first) that the CLI fills, and a Trainer to run them with:
 * train_run(&TRAIN_SFT, &opts, ...). */
#ifndef RLHF_RL_TRAINERS_H
#define RLHF_RL_TRAINERS_H

#include "db/rankings.h"
#include "rl/ppo.h"
#include "rl/run.h"
#include "rm/prefs.h"
#include "rm/rm_train.h"

/* Supervised fine-tuning (rl/sft.h): t.data is a JSONL file or "store" (the
 * top-ranked candidate of each ranked prompt, or every candidate of
 * from_model, among the rankings filter selects). */
typedef struct SftOpts {
    TrainOpts t;
    const char *from_model;
    RankingFilter filter;
    int demos, no_ranked; /* SFT_DEMOS_* (rl/sft_data.h) and the top-ranked left out */
    int best_of;          /* --data best-of: the answers best-of-n kept (rejection sampling) */
} SftOpts;
extern const Trainer TRAIN_SFT; /* opts: SftOpts */

/* Direct preference optimisation (rl/dpo.h) on a pairs/HH file or "store". */
typedef struct DpoOpts {
    TrainOpts t;
    PrefLoadOptions load; /* with t.data "store"; load.val_frac is t.val_frac */
    double beta, smoothing, rpo;
    double token_kl; /* γ of the token-level KL to the reference (0: none) */
    int loss; /* DPO_SIGMOID, ... */
} DpoOpts;
extern const Trainer TRAIN_DPO; /* opts: DpoOpts */

/* Next-token pretraining of a fresh model (config: a named size, shape
 * overridden where over[] is not 0: dim, layers, heads, kv-heads, hidden,
 * seq) on text files; t.tok_path is required. */
typedef struct PretrainOpts {
    TrainOpts t;
    const char *const *corpus;
    int n_corpus;
    const char *config;
    long over[6];
} PretrainOpts;
/* The model's config for a vocabulary of vocab (checked). */
int pretrain_config(const PretrainOpts *o, int vocab, Config *c, Err *err);
extern const Trainer TRAIN_PRETRAIN; /* opts: PretrainOpts */

/* The reward model (rm/rm_train.h) on the store's rankings (load's filters)
 * or t.data (a pairs or HH file): a backbone from t.init with a scalar head,
 * the K-wise loss; at the end the head's bias is set so that the init
 * model's own answers (in the store, else norm_samples fresh samples) score 0
 * on average. */
typedef struct RmTrainOpts {
    TrainOpts t;
    PrefLoadOptions load; /* load.val_frac is t.val_frac */
    long micro, norm_samples;
    long bootstrap; /* > 0: train on a resample of the training prompts drawn with this seed */
    RmLossOpts loss;
    int filtered; /* some of load's filters were given */
} RmTrainOpts;
extern const Trainer TRAIN_RM; /* opts: RmTrainOpts */
/* The first step's batch, rewards, loss and gradients in folder dir, for the
 * PyTorch reference (tests/ref/torch_ref.py); nothing else is written. */
int train_rm_dump(const RmTrainOpts *o, const char *dir, Err *err);

/* RLHF with PPO (rl/ppo.h) on the store's prompts of split, scored by the
 * reward model rm; t.init is the policy, ref the frozen reference (default:
 * the policy), ptx an optional PPO-ptx corpus; c.lr is the learning rate. */
typedef struct PpoOpts {
    TrainOpts t;
    const char *rm, *ref, *split, *ptx;
    PpoConfig c;
} PpoOpts;
extern const Trainer TRAIN_PPO; /* opts: PpoOpts */

#endif
