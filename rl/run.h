/* The run engine: one training run, whatever is trained. It owns what every
 * trainer shares: the output checkpoint (refused without --resume/--force,
 * written atomically, resumed to the byte after a kill -9), the learning-rate
 * schedule, the optimizer step with gradient clipping and the non-finite
 * guard, the step loop with periodic evaluation and checkpoints, progress and
 * ETA on stderr, Ctrl-C, the MPI stop agreement, the run and its metric
 * curves in the store, and the registration of the result.
 *
 * A trainer (pretrain, sft, dpo, train-rm, ppo) supplies only what is its own
 * through a Trainer table of hooks: loading its starting model and data,
 * the gradients of one step (or, for PPO, a whole update of its own), its
 * evaluation, its metrics, its status text and the state it keeps in the
 * checkpoint besides the weights and AdamW moments.
 *
 * The order of a run:
 *   1. refuse an existing --out without --resume/--force; open the project
 *      (read-only beyond MPI rank 0);
 *   2. t->prepare: the starting model in r->m, its tokenizer, the template,
 *      the data; r->sha (what a resume must match), r->parent_id, r->n_train;
 *   3. the state: resumed from --out (its config, tokenizer and digest must
 *      match; the weights replace r->m's; r->payload gets the trainer's
 *      bytes) or fresh (new AdamW moments);
 *   4. t->setup: the trainer's own preparation; sets r->total (steps);
 *   5. the run in the store (started, or continued when resumed), its config
 *      (cJSON: the common settings plus t->config's);
 *   6. the steps; 7. t->finish (train-rm's normalisation); 8. the last
 *      checkpoint, the metrics, the registration, t->report's result line.
 * Nothing here decides an exit status: train_run returns what happened. */
#ifndef RLHF_RL_RUN_H
#define RLHF_RL_RUN_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "db/registry.h"
#include "model/lora.h"
#include "model/model.h"
#include "model/optim.h"
#include "rl/trainer.h"
#include "util/err.h"

/* The settings every trainer reads (defaults: train_opts_init). */
typedef struct TrainOpts {
    const char *out;      /* the checkpoint written (with optimizer state) */
    const char *name;     /* registry name (default: out's file name) */
    const char *db;       /* the project, NULL without one */
    const char *init;     /* the starting checkpoint (not pretrain's) */
    const char *data, *tok_path, *template;
    long epochs, steps, batch, accum, warmup, eval_every, save_every, seed, threads;
    double lr, min_lr, wd, clip, val_frac;
    int resume, force, group;
    LoraConfig lora; /* rank 0: full fine-tuning; else the adapter (model/lora.h) */
    const char *lora_targets; /* --lora-targets as given (cli_train_check parses it) */
} TrainOpts;

void train_opts_init(TrainOpts *o, long epochs, double lr);

typedef struct TrainRun TrainRun;

typedef struct Trainer {
    const char *who;      /* the command, in messages: "sft" */
    const char *label;    /* in "not a LABEL checkpoint": "SFT" */
    const char *magic;    /* 8 bytes: the checkpoint's kind of training state */
    const char *kind;     /* the result's kind in the registry: base | sft | policy | rm */
    const char *run_kind; /* runs.kind: pretrain | sft | dpo | rm | ppo */
    const char *changed;  /* what r->sha covers, for the refusal to resume */
    int line_per_step;    /* a stderr line each step instead of a progress bar */
    int own_optimizer;    /* a fresh run's moments are the trainer's to create (r->optp) */
    int (*prepare)(TrainRun *r, Err *err);
    int (*setup)(TrainRun *r, Err *err);
    /* One step's gradients into r->m (zeroed before; summed over MPI ranks)
     * and its loss in r->loss; the engine then clips and steps AdamW. */
    int (*grads)(TrainRun *r, Err *err);
    /* Or the whole update of a step, optimizer included (PPO); r->loss. */
    int (*update)(TrainRun *r, float lr, Err *err);
    int (*eval)(TrainRun *r, Err *err); /* held-out metrics (may be NULL) */
    /* The progress line's text (line 0) or a line for stderr (line 1); NULL:
     * loss, held-out loss (st.last_val), learning rate and r->rate. */
    void (*status)(TrainRun *r, char *buf, size_t n, int line);
    /* The trainer's bytes for a checkpoint (NULL: r->payload as it is). */
    int (*save_state)(TrainRun *r, void **bytes, size_t *len, Err *err);
    /* After the last step, before the registration; RLHF_EINTR: interrupted
     * (the run's last checkpoint resumes into it). May be NULL. */
    int (*finish)(TrainRun *r, Err *err);
    /* The trainer's settings for the run's config (added to the common ones). */
    void (*config)(TrainRun *r, cJSON *j);
    /* The registry note and the result line for stdout. */
    void (*report)(TrainRun *r, char *note, size_t nn, char *line, size_t nl);
    size_t ctx_size;              /* r->ctx: that many bytes, zeroed, for the trainer */
    void (*release)(TrainRun *r); /* frees what the trainer holds in r->ctx (may be NULL) */
} Trainer;

struct TrainRun {
    const Trainer *t;
    const TrainOpts *o;
    const void *opts; /* the trainer's options (TrainOpts first) */
    void *ctx;        /* the trainer's own (t->ctx_size bytes) */
    Db *db;    /* NULL without a project, and beyond MPI rank 0 after prepare */
    Model m;   /* the model trained and saved */
    AdamW opt, *optp; /* optp: the moments saved with m (default &opt) */
    RlState st;
    void *payload;     /* the trainer's bytes (loaded on resume, or set by setup) */
    char sha[65];      /* prepare: the digest a resume must match */
    int64_t parent_id; /* prepare: the starting model's id in the store (0: none) */
    int64_t n_train;   /* prepare: training units (examples, groups) */
    char *template;    /* prepare: registered with the result (may stay NULL) */
    int exists, resumed;
    int64_t total; /* setup: steps in all */
    long warmup, eval_every, save_every;
    float lr;         /* the step's learning rate (from the schedule) */
    double rate;      /* the default status's throughput, in rate_unit per second */
    const char *rate_unit;
    double loss;      /* the last step's (NAN before the first of this process) */
    double grad_norm; /* before clipping */
    int64_t at;       /* the step metrics are logged at */
    int64_t step0;    /* the step this process began at */
    int stopped;      /* interrupted (Ctrl-C, or another MPI rank's) */
    int nonfinite;    /* steps skipped in a row for a non-finite loss or norm */
    int64_t skipped;  /* all steps skipped */
    MetricBuf metrics;
    int metrics_warned;
};

/* Runs trainer t with its options opts (a struct that begins with its
 * TrainOpts). On success *stopped says whether the run was interrupted (its
 * checkpoint saved to resume) and line holds the result line for stdout
 * (empty when stopped). On failure the run is marked failed in the store and
 * err says why. */
int train_run(const Trainer *t, const void *opts, int *stopped, char *line, size_t nl, Err *err);

/* Writes the buffered metrics, then the checkpoint (rank 0; a mid-run save
 * the store's metrics cannot take is skipped, final: the run's last). */
int train_save(TrainRun *r, int final, Err *err);

/* Adds a point to the run's curve name at r->at (skipped when not finite). */
void train_metric(TrainRun *r, const char *name, double v);

/* The starting model for the policy trainers: rl_policy_load of o->init
 * into r->m, the project's template for it (db_template_resolve) into
 * r->template, its id into r->parent_id; *tok gets the tokenizer. */
int train_load_policy(TrainRun *r, Tokenizer **tok, Err *err);

/* r->sha from the starting checkpoint's bytes, the encoded training examples
 * and the settings text. */
int train_examples_sha(TrainRun *r, const SeqExample *ex, int n, const char *settings, Err *err);

/* Registers checkpoint `path` in the models table (name: `name`, else the
 * file's base name; kind base|sft|policy|rm; parent_id 0 for none; template
 * may be NULL) and, when run_id > 0, closes that run with status and note,
 * all in one transaction. *model_id (may be NULL) gets the model's id. */
int train_register_checkpoint(Db *db, const char *path, const char *name, const char *kind,
                              int64_t parent_id, const Config *cfg, const char *template,
                              int64_t run_id, const char *status, const char *note,
                              int64_t *model_id, Err *err);

#endif
