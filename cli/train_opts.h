/* The options the training commands share (rl/run.h's TrainOpts) as an
 * option table, their checks, and the end of a training command. */
#ifndef RLHF_CLI_TRAIN_OPTS_H
#define RLHF_CLI_TRAIN_OPTS_H

#include "cli/opts.h"
#include "rl/run.h"

/* Groups of options beyond those every trainer takes (--db --out --name
 * --save-every --resume --force --seed --threads). */
enum {
    CLI_TRAIN_DATA = 1,      /* --data --tokenizer --template */
    CLI_TRAIN_EPOCHS = 2,    /* --epochs */
    CLI_TRAIN_ACCUM = 4,     /* --accum --group-by-length */
    CLI_TRAIN_VAL = 8,       /* --val-frac */
    CLI_TRAIN_SCHEDULE = 16, /* --batch --lr --min-lr --warmup --weight-decay --clip --eval-every */
    CLI_TRAIN_STEPS = 32,    /* --steps */
    CLI_TRAIN_LORA = 64,     /* --lora --lora-alpha --lora-dropout --lora-targets */
    CLI_TRAIN_ALL = 127,
    CLI_TRAIN_MAX = 28, /* entries of a table, with its end */
};

/* targets: where --lora-targets' text goes (parsed by cli_train_check). */
void cli_train_table(TrainOpts *o, unsigned which, CliOpt t[CLI_TRAIN_MAX]);

/* After the parse: the starting checkpoint (init_flag names it; NULL for
 * pretrain), --out, --template, --resume with --force; derived defaults. With
 * CLI_TRAIN_DATA, every trainer's one convention: --data FILE, or --data
 * store (the default when there is a project: its rankings, chosen by the
 * ranking filters). -1 to go on, else EXIT_USAGE (printed). */
int cli_train_check(const struct cmd_entry *e, TrainOpts *o, unsigned which,
                    const char *init_flag);

/* Runs trainer t with opts (rl/run.h's train_run): the result line on
 * stdout, or the error on stderr; returns the exit status (EXIT_FAIL when
 * interrupted). */
int cli_train(const struct cmd_entry *e, const Trainer *t, const void *opts);

/* Help lines of the options of CLI_TRAIN_ALL after --data (the command's
 * --batch, --epochs and --lr lines, with its defaults, go before). */
#define CLI_LORA_HELP                                                                              \
    "  --lora R          train LoRA adapters of rank R on the frozen model (PEFT's recipe);\n"     \
    "                    the checkpoint holds the adapters and names the base by path and\n"      \
    "                    sha256 (rlhf convert --merge / --to peft)\n"                             \
    "  --lora-alpha A    scaling A/R (default 2R)   --lora-dropout P  (default 0.05)\n"           \
    "  --lora-targets T  projections: q,k,v,o,gate,up,down or all (default q,v)\n"

#define CLI_TRAIN_HELP                                                                             \
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
    "  --name NAME       model name in the registry (default: CKPT's file name)\n" CLI_LORA_HELP \
        CLI_HELP_COMMON

#endif
