/* The trainers on the run engine (run.h), one entry point each: what the
 * CLI fills from its options, then one call. Each returns as train_run. */
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
} SftOpts;
int train_sft(const SftOpts *o, int *stopped, char *line, size_t nl, Err *err);

/* Direct preference optimisation (rl/dpo.h) on a pairs/HH file or "store". */
typedef struct DpoOpts {
    TrainOpts t;
    PrefLoadOptions load; /* with t.data "store"; load.val_frac is t.val_frac */
    double beta, smoothing;
    int loss; /* DPO_SIGMOID, ... */
} DpoOpts;
int train_dpo(const DpoOpts *o, int *stopped, char *line, size_t nl, Err *err);

#endif
