/* rlhf dpo: direct preference optimisation of a policy on ranked groups (the
 * store, with export's filters) or a pairs / HH JSONL file. Reference
 * log-probabilities come from the starting policy once and ride in the
 * checkpoint; TRL's metrics are logged; recorded as a run and registered as
 * kind "policy" with the starting model as its parent. Training:
 * rl/train_dpo.c on rl/dpo.h. */
#include "cli/train_opts.h"
#include "rl/dpo.h"
#include "rl/trainers.h"

#include <string.h>

static int exec_dpo(int argc, char **argv);

const struct cmd_entry cmd_dpo_entry = {
    "dpo",
    "--policy CKPT [--data store|FILE] --out CKPT [--loss sigmoid|ipo|hinge] [--beta B] [--resume]",
    "direct preference optimisation of a policy on ranked answers, resumably",
    "  --policy CKPT     the policy to start from, also the frozen reference (an SFT model;\n"
    "                    not a reward model)\n"
    "  --data store|FILE `store` (the default with a project): every non-tie pair of the\n"
    "                    current rankings in --db;\n"
    "                    FILE: pairs ({\"prompt\",\"chosen\",\"rejected\"}) or HH JSONL\n"
    "  --min-agreement X with --data store: only prompts whose labelers agree this much\n"
    "  --loss L          sigmoid (default) | ipo | hinge\n"
    "  --beta B          strength of the pull to the reference (default 0.1)\n"
    "  --label-smoothing E  with sigmoid: the share of labels taken as flipped (default 0)\n"
    "  --rpo-alpha A     add A x the chosen answer's negative log-likelihood per token to\n"
    "                    each pair's loss (RPO; TRL's rpo_alpha; default 0: plain DPO)\n"
    "  --token-kl G      add G/2 x, for each answer of a pair, the mean over its tokens of\n"
    "                    KL(policy || reference) over the whole vocabulary at that token\n"
    "                    (a token-level KL, as TDPO): keeps the probability DPO takes from\n"
    "                    rejected answers off tokens the reference finds unlikely (garbled\n"
    "                    words; README). Holds the reference's distribution at every answer\n"
    "                    token in memory (at most 4 GiB). Default 0: off\n"
    "  --epochs N        passes over the data (default 1)\n"
    "  --batch B         ranked groups (prompts) per micro-batch, each with all its pairs;\n"
    "                    a pairs file's records are groups of one (default 8)\n"
    "  --lr X            peak learning rate (default 1e-4)\n" CLI_TRAIN_HELP
    "the checkpoint keeps the reference log-probabilities, so --resume needs no reference.\n"
    "metrics in the store (TRL's names): loss, rewards/chosen, rewards/rejected,\n"
    "rewards/margins, rewards/accuracies, logps/chosen, logps/rejected, nll_loss;\n"
    "held out: eval/...\n"
    "with --data store, export's filters choose the rankings:\n" CLI_HELP_FILTER,
    exec_dpo};

static const struct cmd_entry *E = &cmd_dpo_entry;

static int loss_opt(const struct cmd_entry *e, const CliOpt *opt, const char *arg) {
    if ((*(int *)opt->ctx = dpo_loss_type(arg)) < 0)
        return cli_usage_error(e, "--loss: unknown loss '%s' (sigmoid, ipo or hinge)", arg);
    return 0;
}

static int exec_dpo(int argc, char **argv) {
    DpoOpts o = {.load = {db_ranking_filter_default(), -1, 0}, .beta = 0.1};
    train_opts_init(&o.t, 1, 1e-4);
    int filtered = 0;
    CliOpt common[CLI_TRAIN_MAX], filters[CLI_FILTER_N];
    cli_train_table(&o.t, CLI_TRAIN_ALL, common);
    cli_filter_table(&o.load.filter, &filtered, filters);
    const CliOpt opts[] = {
        CLI_O_TABLE(common), CLI_O_TABLE(filters), CLI_O_STR("policy", &o.t.init),
        {.name = "min-agreement", .kind = CLI_OPT_DBL, .dst = &o.load.min_agreement, .lo = -1,
         .hi = 1, .seen = &filtered},
        CLI_O_CALL("loss", loss_opt, &o.loss), CLI_O_DBL("beta", &o.beta, 1e-6, 1e6),
        CLI_O_DBL("label-smoothing", &o.smoothing, 0, 0.5), CLI_O_DBL("rpo-alpha", &o.rpo, 0, 100),
        CLI_O_DBL("token-kl", &o.token_kl, 0, 1000),
        CLI_O_END};
    int rc = cli_opts_parse(E, argc, argv, opts, NULL);
    if (rc < 0) rc = cli_train_check(E, &o.t, CLI_TRAIN_ALL, "--policy");
    if (rc >= 0) return rc;
    if (strcmp(o.t.data, "store") && filtered)
        return cli_usage_error(E, "the ranking filters and --min-agreement go with --data store");
    if (o.smoothing > 0 && o.loss != DPO_SIGMOID)
        return cli_usage_error(E, "--label-smoothing goes with --loss sigmoid");
    return cli_train(E, &TRAIN_DPO, &o);
}
