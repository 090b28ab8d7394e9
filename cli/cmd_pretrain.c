/* rlhf pretrain: next-token training of the embedded model on text files.
 * Tokenizes the corpus (documents split at blank lines, each with BOS), holds
 * out its tail for validation, trains with AdamW + warm-up/cosine, and writes
 * resumable checkpoints atomically (optimizer state, step, RNG and corpus
 * fingerprint ride in the checkpoint), so `kill -9` and a rerun with --resume
 * continue from the last one. With a database the run, its loss curve and the
 * model are recorded in runs/metrics/models. Under mpirun every rank draws the
 * same windows and trains on its slice of each batch; the gradients are summed
 * over ranks and rank 0 alone writes the checkpoint and the store. */
#include "cli/train_opts.h"
#include "rl/trainers.h"

#include <stdlib.h>

static int exec_pretrain(int argc, char **argv);

const struct cmd_entry cmd_pretrain_entry = {
    "pretrain",
    "--corpus FILE... --tokenizer TOK --config NAME --steps N --out CKPT [--resume]",
    "train the embedded model on text (next-token loss), resumably",
    "  --corpus FILE    training text (repeatable; more files may follow the options).\n"
    "                   Blank lines separate documents: <s> document </s>.\n"
    "  --tokenizer TOK  tokenizer.bin (from `rlhf tokenizer train`); embedded in CKPT\n"
    "  --config NAME    tiny | demo | 15m (default tiny); the vocabulary is the tokenizer's\n"
    "  --dim N --layers N --heads N --kv-heads N --hidden N --seq N   override the config\n"
    "  --steps N        optimizer steps in total (default 100; on --resume, the new total)\n"
    "  --batch B        sequences per micro-batch (default 8)\n"
    "  --accum K        micro-batches per step, gradients accumulated (default 1)\n"
    "  --lr X           peak learning rate (default 1e-3)   --min-lr X (default lr/10)\n"
    "  --warmup N       warm-up steps (default steps/20)    --weight-decay X (default 0.1)\n"
    "  --clip X         gradient clipping by global norm (default 1; 0: off)\n"
    "  --out CKPT       checkpoint to write (our format, with optimizer state)\n"
    "  --resume         continue from CKPT if it exists (else start fresh)\n"
    "  --force          overwrite an existing CKPT instead of refusing\n"
    "  --eval-every N   validation loss every N steps (default steps/10)\n"
    "  --save-every N   checkpoint every N steps (default: as --eval-every)\n"
    "  --val-frac F     share of the corpus held out for validation (default 0.05)\n"
    "  --seed S         initialisation and data order (default 1)\n"
    "  --threads N      BLAS threads (default: OpenBLAS's choice)\n"
    "  --name NAME      model name in the registry (default: CKPT's file name)\n" CLI_HELP_COMMON,
    exec_pretrain};

static const struct cmd_entry *E = &cmd_pretrain_entry;

static int exec_pretrain(int argc, char **argv) {
    PretrainOpts o = {.config = "tiny"};
    train_opts_init(&o.t, 1, 1e-3);
    o.t.steps = 100, o.t.wd = 0.1;
    CliList corpus = {0};
    CliOpt common[CLI_TRAIN_MAX];
    cli_train_table(&o.t, CLI_TRAIN_ACCUM | CLI_TRAIN_VAL | CLI_TRAIN_SCHEDULE | CLI_TRAIN_STEPS, common);
    const CliOpt opts[] = {
        CLI_O_TABLE(common), CLI_O_LIST("corpus", &corpus), CLI_O_STR("tokenizer", &o.t.tok_path),
        CLI_O_STR("config", &o.config), CLI_O_LONG("dim", &o.over[0], 1, 65536),
        CLI_O_LONG("layers", &o.over[1], 1, 1024), CLI_O_LONG("heads", &o.over[2], 1, 4096),
        CLI_O_LONG("kv-heads", &o.over[3], 1, 4096), CLI_O_LONG("hidden", &o.over[4], 1, 262144),
        CLI_O_LONG("seq", &o.over[5], 1, 1 << 20), CLI_O_END};
    int rc = cli_opts_parse(E, argc, argv, opts, &corpus);
    o.corpus = corpus.v, o.n_corpus = corpus.n;
    Config tmp;
    Err err = {0};
    if (rc >= 0) goto done;
    rc = EXIT_USAGE;
    if (!o.n_corpus) cli_usage_error(E, "no corpus given (--corpus FILE)");
    else if (!o.t.tok_path) cli_usage_error(E, "--tokenizer TOK is required");
    else if (model_config_named(o.config, &tmp, &err)) cli_usage_error(E, "--config: %s", err.msg);
    /* the shape flags must make a valid model whatever the vocabulary */
    else if (pretrain_config(&o, 256, &tmp, &err)) cli_usage_error(E, "%s", err.msg);
    else if ((rc = cli_train_check(E, &o.t, 0, NULL)) < 0)
        rc = cli_train(E, &TRAIN_PRETRAIN, &o);
done:
    free(corpus.v);
    return rc;
}
