/* What the policy-training commands (rlhf sft, rlhf dpo) share around their
 * rl/ trainers: the output checkpoint (never overwritten by accident; resumed
 * with rl_ckpt_resume's checks), the run and its metric curves in the store,
 * the loop of steps (schedule, progress line, evaluations, checkpoints,
 * Ctrl-C) and the registration of the result. TrainCmd owns the model, the
 * optimizer, the metrics, the template and the payload; not the database. */
#ifndef RLHF_CLI_TRAIN_CMD_H
#define RLHF_CLI_TRAIN_CMD_H

#include "cli/cli.h"
#include "db/registry.h"
#include "model/model.h"
#include "model/optim.h"
#include "rl/trainer.h"

typedef struct TrainCmd {
    const struct cmd_entry *e;
    const char *out, *name, *kind; /* kind registered: sft | policy */
    Db *db;                        /* NULL without a project */
    Model m;
    AdamW opt;
    RlState st;
    MetricBuf metrics;
    void *payload; /* st.payload bytes saved with each checkpoint */
    char *template;
    int exists, resumed;
    /* the loop */
    int64_t total;
    long warmup, eval_every, save_every;
    double lr, min_lr;
    double loss; /* the last step's; NAN before the first */
    int (*step)(struct TrainCmd *c, float lr, Err *err); /* one step; logs its metrics, sets loss */
    int (*eval)(struct TrainCmd *c, Err *err);           /* held-out metrics */
    /* the progress line's text (line = 0) or a whole line for stderr without one */
    void (*status)(struct TrainCmd *c, char *buf, int n, int line);
    void *ctx;
} TrainCmd;

/* Removes a dead writer's temporaries; refuses an existing checkpoint without
 * --resume or --force (message on stderr). Returns -1 to go on, else the exit code. */
int train_cmd_check_out(TrainCmd *c, int resume, int force);
/* Resumes from c->out when resume is set and it exists (c->m holds the
 * starting model, as rl_ckpt_resume), else starts a fresh state. */
int train_cmd_state(TrainCmd *c, int resume, const char magic[8], const char *sha,
                    const char *changed, uint64_t seed, int64_t parent_id, int64_t n_train,
                    Err *err);
/* Derives warmup/eval/save cadences left at -1/0 from total, applies weight decay. */
void train_cmd_schedule(TrainCmd *c, double weight_decay);
/* Starts the run in the store (unless a resumed one continues). */
int train_cmd_run_start(TrainCmd *c, const char *run_kind, const char *config_json, Err *err);
/* Steps until total or Ctrl-C; saves at the cadence and at the end. */
int train_cmd_loop(TrainCmd *c, int *stopped, Err *err);
/* Flushes the curves, registers the checkpoint with its parent, closes the run. */
int train_cmd_register(TrainCmd *c, int stopped, const char *note, Err *err);
int train_cmd_save(TrainCmd *c, Err *err);
/* Marks the run failed, frees, prints err; returns EXIT_FAIL. */
int train_cmd_fail(TrainCmd *c, const Err *err);
void train_cmd_free(TrainCmd *c);

#endif
