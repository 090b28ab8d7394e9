/* rlhf sft: supervised fine-tuning on prompt → answer demonstrations (a JSONL
 * file or the store), loss on the answer tokens only, held-out loss by prompt
 * hash, resumable checkpoints; recorded as a run and registered as kind
 * "sft" with the init model as its parent. The training is rl/train_sft.c's. */
#include "cli/train_opts.h"
#include "rl/sft_data.h"
#include "rl/trainers.h"

#include <string.h>

static int exec_sft(int argc, char **argv);

const struct cmd_entry cmd_sft_entry = {
    "sft", "--init CKPT [--data store|FILE] --out CKPT [--epochs N] [--resume]",
    "supervised fine-tuning on prompt→answer pairs (loss on the answer only), resumably",
    "  --init CKPT       the model to start from (base or earlier SFT; not a reward model)\n"
    "  --data store|FILE `store` (the default with a project): the top-ranked candidate\n"
    "                    of each ranked prompt in --db; FILE: JSONL {\"prompt\",\"completion\"}\n"
    "                    or {\"messages\":[...]}\n"
    "                    and every demonstration labelers wrote (the write task of label)\n"
    "  --demos D         with --data store: unflagged (default: the demonstrations no other\n"
    "                    labeler flagged in a ranking, on prompts nobody flagged), all, or none\n"
    "  --no-ranked       with --data store: the demonstrations alone, not the top-ranked\n"
    "                    candidates\n"
    "  --from-model NAME with --data store: every candidate of this model instead (e.g.\n"
    "                    demonstrations brought in with `rlhf candidates import`)\n"
    "  --data best-of    rejection-sampling fine-tuning (Llama 2): the answers\n"
    "                    `rlhf gen --best-of N --rm RM` kept, of the newest best-of policy\n"
    "                    or of --from-model NAME (each distinct kept answer once)\n"
    "  --epochs N        passes over the training pairs (default 3)\n"
    "  --batch B         pairs per micro-batch (default 8)\n"
    "  --lr X            peak learning rate (default 3e-4)\n" CLI_TRAIN_HELP
    "with --data store, export's filters choose the rankings:\n" CLI_HELP_FILTER,
    exec_sft};

static const struct cmd_entry *E = &cmd_sft_entry;

static int exec_sft(int argc, char **argv) {
    SftOpts o = {.filter = db_ranking_filter_default()};
    train_opts_init(&o.t, 3, 3e-4);
    int filtered = 0;
    CliOpt common[CLI_TRAIN_MAX], filters[CLI_FILTER_N];
    cli_train_table(&o.t, CLI_TRAIN_ALL, common);
    cli_filter_table(&o.filter, &filtered, filters);
    static const char *const demos[] = {"unflagged", "all", "none", NULL};
    int demos_given = 0;
    const CliOpt opts[] = {CLI_O_TABLE(common),
                           CLI_O_TABLE(filters),
                           CLI_O_STR("init", &o.t.init),
                           CLI_O_STR("from-model", &o.from_model),
                           CLI_O_SEEN(&demos_given, CLI_O_WORD("demos", &o.demos, demos)),
                           CLI_O_FLAG("no-ranked", &o.no_ranked),
                           CLI_O_END};
    int rc = cli_opts_parse(E, argc, argv, opts, NULL);
    if (rc < 0) rc = cli_train_check(E, &o.t, CLI_TRAIN_ALL, "--init");
    if (rc >= 0) return rc;
    /* rejection-sampling fine-tuning reads the store's best-of-n answers */
    if (!strcmp(o.t.data, "best-of")) {
        if (demos_given || o.no_ranked)
            return cli_usage_error(E, "--data best-of takes the kept best-of-n answers; --demos and "
                                      "--no-ranked do not apply");
        o.best_of = 1;
        o.t.data = "store";
    }
    if (strcmp(o.t.data, "store") && (o.from_model || filtered || demos_given || o.no_ranked))
        return cli_usage_error(
            E, "--from-model, --demos, --no-ranked and the ranking filters go with --data store");
    if (o.from_model && !o.best_of && (demos_given || o.no_ranked))
        return cli_usage_error(
            E, "--from-model takes one model's candidates; --demos and --no-ranked do not apply");
    if (o.no_ranked && o.demos == SFT_DEMOS_NONE)
        return cli_usage_error(E, "--no-ranked with --demos none leaves nothing to train on");
    return cli_train(E, &TRAIN_SFT, &o);
}
