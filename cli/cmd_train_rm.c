/* rlhf train-rm: the reward model, InstructGPT's step 2. A backbone from a
 * base or SFT checkpoint gets a scalar head on the final hidden state of the
 * answer's last token and learns the rankings; resumable; at the end the
 * reward head's bias is set so that the init model's own answers score 0 on
 * average. The training is rl/train_rm.c's. */
#include "cli/train_opts.h"
#include "rl/trainers.h"

#include <string.h>

static int exec_train_rm(int argc, char **argv);

const struct cmd_entry cmd_train_rm_entry = {
    "train-rm",
    "--init CKPT --out RM [--data store|FILE] [filters] [--resume]",
    "train a reward model on the rankings (K-wise loss), resumably",
    "  --init CKPT        the backbone: a base or SFT checkpoint (InstructGPT starts from SFT)\n"
    "  --out RM           the reward model to write (our format, with optimizer state)\n"
    "  --data store|FILE  `store` (the default with a project): the rankings in --db;\n"
    "                     FILE: a pairs or HH JSONL file\n"
    "  --tokenizer TOK    tokenizer.bin when CKPT carries none (checked against the model)\n"
    "  --template T       chat template with {prompt} (default: the init model's, else\n"
    "                     the gen.template setting, else \"Human: {prompt}\\nAssistant:\")\n"
    "  --min-agreement X  only prompts whose labelers agree on at least a share X of pairs\n"
    "  --val-frac F       share of prompts held out, by the hash `export --val-frac` uses\n"
    "                     (default 0.1; eval-rm uses the same split)\n"
    "  --epochs N         passes over the training prompts (default 1: more overfits)\n"
    "  --batch G          ranked prompts (groups) per optimizer step (default 8)\n"
    "  --micro N          answers per forward pass; groups are never split (default 16)\n"
    "  --lr X             peak learning rate (default 3e-4)   --min-lr X (default lr/10)\n"
    "  --warmup N         warm-up steps (default steps/10)    --weight-decay X (default 0)\n"
    "  --clip X           gradient clipping by global norm (default 1; 0: off)\n"
    "  --margin X         a pair must win by X per point of their 1-7 scores (default 0)\n"
    "  --center X         penalty X*mean (r_w + r_l)^2 that keeps rewards centred (default 0)\n"
    "  --eval-every N     held-out accuracy every N steps (default steps/5)\n"
    "  --save-every N     checkpoint every N steps (default: as --eval-every)\n"
    "  --norm-samples N   without answers of the init model in the store, sample N from it\n"
    "                     to set the normalisation bias (default 64; 0: no normalisation)\n"
    "  --resume           continue RM if it exists     --force  overwrite RM\n"
    "  --seed S           head initialisation, data order, samples (default 1)\n"
    "  --bootstrap B      train on a bootstrap resample of the training prompts (as many,\n"
    "                     drawn with replacement by seed B): a member of an ensemble whose\n"
    "                     disagreement `score --rm A,B,C` stores (resume with the same B)\n"
    "  --threads N        BLAS threads\n"
    "  --name NAME        name in the registry (default: RM's file name)\n"
    "  --dump DIR         write the first step's batch, rewards, loss and gradients for\n"
    "                     tests/ref/torch_ref.py and stop (nothing else is written)\n"
    "Store data takes export's filters (a ranking of K answers gives K(K-1)/2 pairs; ties\n"
    "are left out):\n" CLI_HELP_FILTER CLI_LORA_HELP CLI_HELP_COMMON,
    exec_train_rm};

static const struct cmd_entry *E = &cmd_train_rm_entry;

static int exec_train_rm(int argc, char **argv) {
    RmTrainOpts o = {.load = {db_ranking_filter_default(), -1, 0}, .micro = 16, .norm_samples = 64};
    train_opts_init(&o.t, 1, 3e-4);
    o.t.val_frac = 0.1;
    const char *dump = NULL;
    unsigned which = CLI_TRAIN_DATA | CLI_TRAIN_EPOCHS | CLI_TRAIN_VAL | CLI_TRAIN_SCHEDULE | CLI_TRAIN_LORA;
    CliOpt common[CLI_TRAIN_MAX], filters[CLI_FILTER_N];
    cli_train_table(&o.t, which, common);
    cli_filter_table(&o.load.filter, &o.filtered, filters);
    const CliOpt opts[] = {
        CLI_O_TABLE(common), CLI_O_TABLE(filters), CLI_O_STR("init", &o.t.init),
        {.name = "min-agreement", .kind = CLI_OPT_DBL, .dst = &o.load.min_agreement, .hi = 1,
         .seen = &o.filtered},
        CLI_O_LONG("micro", &o.micro, 1, 4096), CLI_O_DBL("margin", &o.loss.margin, 0, 100),
        CLI_O_DBL("center", &o.loss.center, 0, 100),
        CLI_O_LONG("norm-samples", &o.norm_samples, 0, 1 << 20), CLI_O_STR("dump", &dump),
        CLI_O_LONG("bootstrap", &o.bootstrap, 1, 1L << 40),
        CLI_O_END};
    int rc = cli_opts_parse(E, argc, argv, opts, NULL);
    if (rc >= 0) return rc;
    if (!o.t.init) return cli_usage_error(E, "--init CKPT is required (a base or SFT checkpoint)");
    if (dump) o.t.out = "", o.t.resume = 0;
    if (dump && o.t.lora.rank)
        return cli_usage_error(E, "--dump writes the full model's gradients: no --lora (model-dump --lora checks LoRA's)");
    if ((rc = cli_train_check(E, &o.t, which, "--init")) >= 0) return rc;
    if (!strcmp(o.t.data, "store")) o.t.data = NULL; /* rl/train_rm.c: NULL is the store */
    if (o.t.data && o.filtered)
        return cli_usage_error(
            E, "--data FILE takes no store filters (--split, --labeler, --min-agreement, ...)");
    Err err = {0};
    if (dump) return train_rm_dump(&o, dump, &err) ? cli_fail(E, &err) : EXIT_OK;
    return cli_train(E, &TRAIN_RM, &o);
}
