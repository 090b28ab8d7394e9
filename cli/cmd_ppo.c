/* rlhf ppo: RLHF with PPO on the store's training prompts, scored by a
 * reward model; resumable; registered as a policy whose parent is --policy.
 * The training is rl/train_ppo.c's on rl/ppo.h. */
#include "cli/train_opts.h"
#include "db/prompts.h"
#include "rl/trainers.h"

#include <string.h>

static int exec_ppo(int argc, char **argv);

const struct cmd_entry cmd_ppo_entry = {
    "ppo",
    "--policy CKPT --rm RM --out CKPT [--steps N] [--ref CKPT] [--value head|rm] [--resume]",
    "RLHF with PPO: sample answers to the training prompts, score them with an RM, update",
    "Defaults follow InstructGPT (Ouyang et al. 2022): beta 0.02 (fixed), clip 0.2,\n"
    "gamma 1, lambda 0.95, value clip 0.2; the learning rate is sized for the small models.\n"
    "  --policy CKPT       the policy to start from (an SFT model); also the reference\n"
    "  --rm RM             reward model (a checkpoint with a reward head), same tokenizer\n"
    "  --out CKPT          checkpoint to write (resumable; registered as kind policy)\n"
    "  --ref CKPT          frozen reference for the KL penalty (default: --policy)\n"
    "  --tokenizer TOK     tokenizer when the checkpoints carry none\n"
    "  --steps N           rollout batches (default 20)\n"
    "  --prompts P         prompts per batch (default 8)    --samples K  answers per prompt (default 4)\n"
    "  --max-new N         answer tokens at most (default 64)  --temperature X (default 1)\n"
    "                      answers end as gen's do: at </s>, a blank line, \"Human:\" or\n"
    "                      \"Assistant:\" (the part before the stop string is what the RM\n"
    "                      scores); the log-probs, KL and entropy are those of the\n"
    "                      distribution sampled from (logits / temperature)\n"
    "  --advantage A       gae (PPO: a learned value, GAE; default), rloo (RLOO: each\n"
    "                      answer against the mean reward of the prompt's other answers,\n"
    "                      KL in the reward) or grpo (GRPO: rewards normalised within the\n"
    "                      prompt's answers, beta·KL (k3) as a loss term); rloo and grpo\n"
    "                      need no value model and --samples >= 2\n"
    "  --epochs E          PPO epochs per batch (default 4) --minibatch M answers (default 16)\n"
    "  --lr X              policy learning rate (default 1e-4)  --value-lr X (default: lr)\n"
    "  --min-lr X          the rates decay to this share of lr/value-lr over --steps\n"
    "                      (cosine; default lr/10; --min-lr equal to --lr: constant)\n"
    "  --grad-clip X       clip gradients by global norm (default 1)\n"
    "  --value head|rm     value head on the policy (default), or a value model\n"
    "                      initialised from the RM (InstructGPT)\n"
    "  --vf-coef X         value loss weight with a value head (default 0.1)\n"
    "  --beta X            KL coefficient (default 0.02)\n"
    "  --kl-target X       adaptive beta (Ziegler et al.) aiming at this KL per answer\n"
    "                      (default 0: fixed beta)   --kl-horizon N (default 10000)\n"
    "  --clip X            policy ratio clip (default 0.2)  --clip-value X (default 0.2)\n"
    "  --gamma X           discount (default 1)   --lambda X  GAE lambda (default 0.95)\n"
    "  --length-penalty X  subtracted from the score of an answer that hits --max-new\n"
    "                      without ending (default 1)\n"
    "  --whiten-scores     whiten each batch's scores   --score-clip X  clip them to ±X\n"
    "  --no-whiten-adv     keep raw advantages (default: whitened per batch; gae only)\n"
    "  --ptx-corpus FILE   PPO-ptx: mix in the next-token loss on this text\n"
    "  --ptx-coef X        its weight (default 1 with a corpus)  --ptx-batch N (default 4)\n"
    "  --split S           prompts' split (default train)   --template T (default: the\n"
    "                      policy's in the registry, else gen.template, else the default)\n"
    "  --save-every N      checkpoint every N steps (default 5)\n"
    "  --resume            continue --out if it exists   --force  overwrite it\n"
    "  --seed S            (default 1)   --threads N  BLAS threads   --name NAME  registry name\n"
    CLI_LORA_HELP CLI_HELP_COMMON,
    exec_ppo};

static const struct cmd_entry *E = &cmd_ppo_entry;

static const char *const ADVANTAGES[] = {"gae", "rloo", "grpo", NULL};

static int value_opt(const struct cmd_entry *e, const CliOpt *opt, const char *arg) {
    int *mode = opt->ctx;
    if (!strcmp(arg, "head")) *mode = PPO_VALUE_HEAD;
    else if (!strcmp(arg, "rm")) *mode = PPO_VALUE_MODEL;
    else return cli_usage_error(e, "--value: expected head or rm, got '%s'", arg);
    return 0;
}

/* Checks the options against each other; -1 to go on, else EXIT_USAGE. */
static int check(PpoOpts *o, int vlr_set, int ptx_coef_set) {
    PpoConfig *c = &o->c;
    if (o->t.init && !o->rm) return cli_usage_error(E, "--rm RM is required");
    /* the engine's schedule: from --lr down to --min-lr (default lr/10), cosine, as TRL decays */
    o->t.lr = c->lr, o->t.clip = c->grad_clip;
    int rc = cli_train_check(E, &o->t, CLI_TRAIN_STEPS | CLI_TRAIN_LORA, "--policy");
    if (rc >= 0) return rc;
    if (!db_valid_split(o->split)) return cli_usage_error(E, "--split: '%s' is not a split name", o->split);
    if (o->ptx && !ptx_coef_set) c->ptx_coef = 1;
    if (!o->ptx && c->ptx_coef > 0) return cli_usage_error(E, "--ptx-coef needs --ptx-corpus FILE");
    if (!vlr_set) c->value_lr = c->lr;
    if (!strcmp(o->t.out, o->rm) || (o->ref && !strcmp(o->t.out, o->ref)))
        return cli_usage_error(E, "--out must be a new file, not one of the inputs");
    Err err = {0};
    if (ppo_config_check(c, &err)) return cli_usage_error(E, "%s", err.msg);
    if (o->t.min_lr > c->lr) return cli_usage_error(E, "--min-lr must not exceed --lr");
    return -1;
}

static int exec_ppo(int argc, char **argv) {
    PpoOpts o = {.split = "train"};
    PpoConfig *c = &o.c;
    ppo_config_default(c);
    train_opts_init(&o.t, 1, c->lr);
    o.t.steps = 20, o.t.save_every = 5;
    int vlr_set = 0, ptx_coef_set = 0;
    CliOpt common[CLI_TRAIN_MAX];
    cli_train_table(&o.t, CLI_TRAIN_STEPS | CLI_TRAIN_LORA, common);
    const CliOpt opts[] = {
        CLI_O_TABLE(common), CLI_O_STR("policy", &o.t.init), CLI_O_STR("rm", &o.rm),
        CLI_O_STR("ref", &o.ref), CLI_O_STR("tokenizer", &o.t.tok_path),
        CLI_O_STR("template", &o.t.template), CLI_O_STR("split", &o.split),
        CLI_O_INT("prompts", &c->prompts, 1, 4096), CLI_O_INT("samples", &c->samples, 1, 256),
        CLI_O_INT("max-new", &c->max_new, 1, 1 << 16),
        CLI_O_FLOAT("temperature", &c->temperature, 1e-3, 100),
        CLI_O_INT("epochs", &c->epochs, 1, 1000), CLI_O_INT("minibatch", &c->minibatch, 1, 1 << 16),
        CLI_O_FLOAT("lr", &c->lr, 0, 10), CLI_O_DBL("min-lr", &o.t.min_lr, 0, 10),
        {.name = "value-lr", .kind = CLI_OPT_FLOAT, .dst = &c->value_lr, .hi = 10, .seen = &vlr_set},
        CLI_O_FLOAT("grad-clip", &c->grad_clip, 0, 1e9), CLI_O_CALL("value", value_opt, &c->value_mode),
        CLI_O_WORD("advantage", &c->advantage, ADVANTAGES),
        CLI_O_FLOAT("vf-coef", &c->vf_coef, 0, 1e6), CLI_O_DBL("beta", &c->beta, 0, 1e6),
        CLI_O_DBL("kl-target", &c->kl_target, 0, 1e6), CLI_O_DBL("kl-horizon", &c->kl_horizon, 1, 1e12),
        CLI_O_FLOAT("clip", &c->cliprange, 1e-6, 10), CLI_O_FLOAT("clip-value", &c->cliprange_value, 0, 1e6),
        CLI_O_FLOAT("gamma", &c->gamma, 0, 1), CLI_O_FLOAT("lambda", &c->lambda, 0, 1),
        CLI_O_FLOAT("length-penalty", &c->length_penalty, -1e6, 1e6),
        CLI_O_FLAG("whiten-scores", &c->whiten_scores), CLI_O_FLOAT("score-clip", &c->score_clip, 0, 1e9),
        CLI_O_SET("no-whiten-adv", &c->whiten_adv, 0), CLI_O_STR("ptx-corpus", &o.ptx),
        {.name = "ptx-coef", .kind = CLI_OPT_FLOAT, .dst = &c->ptx_coef, .hi = 1e6, .seen = &ptx_coef_set},
        CLI_O_INT("ptx-batch", &c->ptx_batch, 1, 4096), CLI_O_END};
    int rc = cli_opts_parse(E, argc, argv, opts, NULL);
    if (rc < 0) rc = check(&o, vlr_set, ptx_coef_set);
    if (rc >= 0) return rc;
    return cli_train(E, &TRAIN_PPO, &o);
}
