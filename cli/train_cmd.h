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

/* The options every policy-training command takes (see TRAIN_CMD_HELP). */
typedef struct TrainOpts {
    const char *data, *tok_path, *template, *out, *name, *dbflag;
    long epochs, steps, batch, accum, warmup, eval_every, save_every, seed, threads;
    double lr, min_lr, wd, clip, val_frac;
    int resume, force, group;
} TrainOpts;

/* For the command's struct option table (their codes are taken: d k T o E s
 * b a l L w W g v e S G r f x t n D h). */
#define TRAIN_CMD_OPTIONS                                                                          \
    CLI_OPT_DB, CLI_OPT_HELP, {"data", required_argument, NULL, 'd'},                              \
        {"tokenizer", required_argument, NULL, 'k'}, {"template", required_argument, NULL, 'T'},   \
        {"out", required_argument, NULL, 'o'}, {"epochs", required_argument, NULL, 'E'},           \
        {"steps", required_argument, NULL, 's'}, {"batch", required_argument, NULL, 'b'},          \
        {"accum", required_argument, NULL, 'a'}, {"lr", required_argument, NULL, 'l'},             \
        {"min-lr", required_argument, NULL, 'L'}, {"warmup", required_argument, NULL, 'w'},        \
        {"weight-decay", required_argument, NULL, 'W'}, {"clip", required_argument, NULL, 'g'},    \
        {"val-frac", required_argument, NULL, 'v'}, {"eval-every", required_argument, NULL, 'e'},  \
        {"save-every", required_argument, NULL, 'S'}, {"group-by-length", no_argument, NULL, 'G'}, \
        {"resume", no_argument, NULL, 'r'}, {"force", no_argument, NULL, 'f'},                     \
        {"seed", required_argument, NULL, 'x'}, {"threads", required_argument, NULL, 't'}, {       \
        "name", required_argument, NULL, 'n'                                                       \
    }

/* Help lines of those options after --data (what the command's --batch
 * counts and the defaults it changes go in its own lines before). */
#define TRAIN_CMD_HELP                                                                             \
    "  --tokenizer TOK   tokenizer.bin (default: the one CKPT carries)\n"                          \
    "  --template T      chat template with {prompt} (default: the starting model's in\n"          \
    "                    the store, else the gen.template setting, else\n"                         \
    "                    \"Human: {prompt}\\nAssistant:\")\n"                                      \
    "  --out CKPT        checkpoint to write (with optimizer state)\n"                             \
    "  --steps N         optimizer steps instead of --epochs\n"                                    \
    "  --accum K         micro-batches per step (default 1)\n"                                     \
    "  --min-lr X        final learning rate (default lr/10)\n"                                    \
    "  --warmup N        warm-up steps (default steps/20)   --weight-decay X (default 0)\n"        \
    "  --clip X          gradient clipping by global norm (default 1; 0: off)\n"                   \
    "  --group-by-length batches of similar length (pads less; measured to learn worse on\n"       \
    "                    the demo: default off, plain shuffled batches)\n"                         \
    "  --val-frac F      share of prompts held out (by text hash; default 0.05)\n"                 \
    "  --eval-every N    held-out metrics every N steps (default steps/10)\n"                      \
    "  --save-every N    checkpoint every N steps (default: as --eval-every)\n"                    \
    "  --resume          continue CKPT if it exists    --force   overwrite CKPT\n"                 \
    "  --seed S          data order (default 1)        --threads N  BLAS threads\n"                \
    "  --name NAME       model name in the registry (default: CKPT's file name)\n" CLI_HELP_COMMON

/* Defaults, with the command's own epochs and learning rate. */
void train_opts_init(TrainOpts *o, long epochs, double lr);
/* Takes getopt's code c if it is one of TRAIN_CMD_OPTIONS: returns 0 when
 * taken, EXIT_USAGE on a bad value (printed), -1 when c is not one of them. */
int train_opts_take(const struct cmd_entry *e, TrainOpts *o, int c, const char *arg);
/* After the parse: the checks and derived defaults; -1 to go on, else EXIT_USAGE.
 * init: the starting checkpoint (must differ from --out). */
int train_opts_finish(const struct cmd_entry *e, TrainOpts *o, const char *init,
                      const char *init_flag);

typedef struct TrainCmd {
    const struct cmd_entry *e;
    const char *out, *name, *kind; /* kind registered: sft | policy */
    Db *db;                        /* NULL without a project */
    Model m;
    AdamW opt;
    RlState st;
    MetricBuf metrics;
    int metrics_warned;
    void *payload; /* st.payload bytes saved with each checkpoint */
    char *template;
    int exists, resumed;
    /* the loop */
    int64_t total;
    long warmup, eval_every, save_every;
    double lr, min_lr;
    double loss;                                         /* the last step's; NAN before the first */
    int (*step)(struct TrainCmd *c, float lr, Err *err); /* one step; logs its metrics, sets loss */
    int (*eval)(struct TrainCmd *c, Err *err);           /* held-out metrics */
    /* the progress line's text (line = 0) or a whole line for stderr without one */
    void (*status)(struct TrainCmd *c, char *buf, int n, int line);
    void *ctx;
} TrainCmd;

/* Sets up c from the options (command, output, name, cadences, learning rates). */
void train_cmd_init(TrainCmd *c, const struct cmd_entry *e, const TrainOpts *o, const char *kind,
                    void *ctx);

/* Opens the project (when one is named), loads the starting model into c->m
 * (rl_policy_load) and settles the template (rl_resolve_template);
 * *parent_id: the starting model's id in the store, 0 when unregistered. */
int train_cmd_open(TrainCmd *c, const TrainOpts *o, const char *init, Tokenizer **tok,
                   int64_t *parent_id, Err *err);
/* The digest a resume must match: the starting checkpoint's bytes, the
 * encoded training examples and the settings text. */
int train_cmd_data_sha(const char *init, const SeqExample *ex, int n, const char *settings,
                       char sha[65], Err *err);
/* Steps for the options: --steps, else --epochs passes over n units
 * (batch·accum per step); then train_cmd_schedule. Returns the units per step. */
int64_t train_cmd_plan(TrainCmd *c, const TrainOpts *o, int n);

/* Removes a dead writer's temporaries; refuses an existing checkpoint without
 * --resume or --force (message on stderr). Returns -1 to go on, else the exit code. */
int train_cmd_check_out(TrainCmd *c, int resume, int force);
/* Resumes from c->out when resume is set and it exists (c->m holds the
 * starting model, as rl_ckpt_resume), else starts a fresh state. */
int train_cmd_state(TrainCmd *c, int resume, const char magic[8], const char *sha,
                    const char *changed, uint64_t seed, int64_t parent_id, int64_t n_train,
                    Err *err);
/* Derives warmup/eval/save cadences left at -1/0 from total (set it first),
 * applies weight decay. */
void train_cmd_schedule(TrainCmd *c, double weight_decay);
/* Starts the run in the store (unless a resumed one continues). */
int train_cmd_run_start(TrainCmd *c, const char *run_kind, const char *config_json, Err *err);
/* Steps until total or Ctrl-C; saves at the cadence and at the end. */
int train_cmd_loop(TrainCmd *c, int *stopped, Err *err);
/* Flushes the curves, registers the checkpoint with its parent, closes the run. */
int train_cmd_register(TrainCmd *c, int stopped, const char *note, Err *err);
/* Writes the metrics, then the checkpoint (cli_save_checkpoint; final: the
 * run's last save). */
int train_cmd_save(TrainCmd *c, int final, Err *err);
/* Marks the run failed, frees, prints err; returns EXIT_FAIL. */
int train_cmd_fail(TrainCmd *c, const Err *err);
void train_cmd_free(TrainCmd *c);

#endif
