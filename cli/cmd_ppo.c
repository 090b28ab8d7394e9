/* rlhf ppo: RLHF with PPO (rl/ppo.h) on the store's training prompts, scored
 * by a reward model. Wires the pieces: policy, frozen reference, RM scorer,
 * value head or value model, prompts, optional ptx corpus; prints one line per
 * step, logs TRL-named metrics, writes resumable checkpoints (the PPO state
 * and a separate value model ride in the checkpoint's extra bytes) and
 * registers the result as a policy whose parent is --policy. */
#include "cli/cli.h"
#include "db/prompts.h"
#include "db/registry.h"
#include "model/dist.h"
#include "model/checkpoint.h"
#include "rl/ppo.h"
#include "rl/trainer.h"
#include "rm/rm_score.h"
#include "util/progress.h"
#include "util/sys.h"
#include "util/text.h"

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

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
    "  --max-new N         answer tokens at most (default 32)  --temperature X (default 1)\n"
    "  --epochs E          PPO epochs per batch (default 4) --minibatch M answers (default 16)\n"
    "  --lr X              policy learning rate (default 1e-4)  --value-lr X (default: lr)\n"
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
    "  --no-whiten-adv     keep raw advantages (default: whitened per batch)\n"
    "  --ptx-corpus FILE   PPO-ptx: mix in the next-token loss on this text\n"
    "  --ptx-coef X        its weight (default 1 with a corpus)  --ptx-batch N (default 4)\n"
    "  --split S           prompts' split (default train)   --template T (default: the\n"
    "                      policy's in the registry, else gen.template, else the default)\n"
    "  --save-every N      checkpoint every N steps (default 5)\n"
    "  --resume            continue --out if it exists   --force  overwrite it\n"
    "  --seed S            (default 1)   --threads N  BLAS threads   --name NAME  registry name\n"
    CLI_HELP_COMMON,
    exec_ppo};

static const struct cmd_entry *E = &cmd_ppo_entry;

typedef struct Opts {
    const char *policy, *rm, *out, *ref, *tok, *split, *template, *ptx, *name, *dbflag;
    long steps, save_every, seed, threads;
    int resume, force, ptx_coef_set;
    PpoConfig c;
} Opts;

static int parse(int argc, char **argv, Opts *o) {
    enum { O_REF = 256, O_STEPS, O_PROMPTS, O_SAMPLES, O_MAXNEW, O_TEMP, O_EPOCHS, O_MB, O_LR,
           O_VLR, O_GCLIP, O_VALUE, O_VF, O_BETA, O_KLT, O_KLH, O_CLIP, O_CLIPV, O_GAMMA, O_LAMBDA,
           O_LENPEN, O_WS, O_SC, O_NWA, O_PTX, O_PTXC, O_PTXB, O_SPLIT, O_TMPL, O_SAVE, O_SEED,
           O_THREADS, O_NAME, O_TOK };
    static const struct option opts[] = {
        CLI_OPT_DB, CLI_OPT_HELP,
        {"policy", required_argument, NULL, 'p'}, {"rm", required_argument, NULL, 'R'},
        {"out", required_argument, NULL, 'o'}, {"ref", required_argument, NULL, O_REF},
        {"tokenizer", required_argument, NULL, O_TOK}, {"steps", required_argument, NULL, O_STEPS},
        {"prompts", required_argument, NULL, O_PROMPTS}, {"samples", required_argument, NULL, O_SAMPLES},
        {"max-new", required_argument, NULL, O_MAXNEW}, {"temperature", required_argument, NULL, O_TEMP},
        {"epochs", required_argument, NULL, O_EPOCHS}, {"minibatch", required_argument, NULL, O_MB},
        {"lr", required_argument, NULL, O_LR}, {"value-lr", required_argument, NULL, O_VLR},
        {"grad-clip", required_argument, NULL, O_GCLIP}, {"value", required_argument, NULL, O_VALUE},
        {"vf-coef", required_argument, NULL, O_VF}, {"beta", required_argument, NULL, O_BETA},
        {"kl-target", required_argument, NULL, O_KLT}, {"kl-horizon", required_argument, NULL, O_KLH},
        {"clip", required_argument, NULL, O_CLIP}, {"clip-value", required_argument, NULL, O_CLIPV},
        {"gamma", required_argument, NULL, O_GAMMA}, {"lambda", required_argument, NULL, O_LAMBDA},
        {"length-penalty", required_argument, NULL, O_LENPEN}, {"whiten-scores", no_argument, NULL, O_WS},
        {"score-clip", required_argument, NULL, O_SC}, {"no-whiten-adv", no_argument, NULL, O_NWA},
        {"ptx-corpus", required_argument, NULL, O_PTX}, {"ptx-coef", required_argument, NULL, O_PTXC},
        {"ptx-batch", required_argument, NULL, O_PTXB}, {"split", required_argument, NULL, O_SPLIT},
        {"template", required_argument, NULL, O_TMPL}, {"save-every", required_argument, NULL, O_SAVE},
        {"resume", no_argument, NULL, 'r'}, {"force", no_argument, NULL, 'f'},
        {"seed", required_argument, NULL, O_SEED}, {"threads", required_argument, NULL, O_THREADS},
        {"name", required_argument, NULL, O_NAME}, CLI_OPT_END};
    PpoConfig *c = &o->c;
    ppo_config_default(c);
    o->steps = 20, o->save_every = 5, o->seed = 1, o->split = "train";
    int vlr_set = 0, ch;
    long l;
    double d;
#define LONG(flag, lo, hi, dst) do { if (cli_parse_long(E, flag, optarg, lo, hi, &l)) return EXIT_USAGE; dst = l; } while (0)
#define DBL(flag, lo, hi, dst) do { if (cli_parse_double(E, flag, optarg, lo, hi, &d)) return EXIT_USAGE; dst = d; } while (0)
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'D': o->dbflag = optarg; break;
        case 'p': o->policy = optarg; break;
        case 'R': o->rm = optarg; break;
        case 'o': o->out = optarg; break;
        case O_REF: o->ref = optarg; break;
        case O_TOK: o->tok = optarg; break;
        case O_STEPS: LONG("--steps", 1, 1L << 30, o->steps); break;
        case O_PROMPTS: LONG("--prompts", 1, 4096, c->prompts); break;
        case O_SAMPLES: LONG("--samples", 1, 256, c->samples); break;
        case O_MAXNEW: LONG("--max-new", 1, 1 << 16, c->max_new); break;
        case O_TEMP: DBL("--temperature", 1e-3, 100, c->temperature); break;
        case O_EPOCHS: LONG("--epochs", 1, 1000, c->epochs); break;
        case O_MB: LONG("--minibatch", 1, 1 << 16, c->minibatch); break;
        case O_LR: DBL("--lr", 0, 10, c->lr); break;
        case O_VLR: DBL("--value-lr", 0, 10, c->value_lr); vlr_set = 1; break;
        case O_GCLIP: DBL("--grad-clip", 0, 1e9, c->grad_clip); break;
        case O_VALUE:
            if (!strcmp(optarg, "head")) c->value_mode = PPO_VALUE_HEAD;
            else if (!strcmp(optarg, "rm")) c->value_mode = PPO_VALUE_MODEL;
            else return cli_usage_error(E, "--value: expected head or rm, got '%s'", optarg);
            break;
        case O_VF: DBL("--vf-coef", 0, 1e6, c->vf_coef); break;
        case O_BETA: DBL("--beta", 0, 1e6, c->beta); break;
        case O_KLT: DBL("--kl-target", 0, 1e6, c->kl_target); break;
        case O_KLH: DBL("--kl-horizon", 1, 1e12, c->kl_horizon); break;
        case O_CLIP: DBL("--clip", 1e-6, 10, c->cliprange); break;
        case O_CLIPV: DBL("--clip-value", 0, 1e6, c->cliprange_value); break;
        case O_GAMMA: DBL("--gamma", 0, 1, c->gamma); break;
        case O_LAMBDA: DBL("--lambda", 0, 1, c->lambda); break;
        case O_LENPEN: DBL("--length-penalty", -1e6, 1e6, c->length_penalty); break;
        case O_WS: c->whiten_scores = 1; break;
        case O_SC: DBL("--score-clip", 0, 1e9, c->score_clip); break;
        case O_NWA: c->whiten_adv = 0; break;
        case O_PTX: o->ptx = optarg; break;
        case O_PTXC: DBL("--ptx-coef", 0, 1e6, c->ptx_coef); o->ptx_coef_set = 1; break;
        case O_PTXB: LONG("--ptx-batch", 1, 4096, c->ptx_batch); break;
        case O_SPLIT: o->split = optarg; break;
        case O_TMPL: o->template = optarg; break;
        case O_SAVE: LONG("--save-every", 1, 1L << 30, o->save_every); break;
        case 'r': o->resume = 1; break;
        case 'f': o->force = 1; break;
        case O_SEED: LONG("--seed", 0, LONG_MAX, o->seed); break;
        case O_THREADS: LONG("--threads", 1, 256, o->threads); break;
        case O_NAME: o->name = optarg; break;
        case 'h': return cli_help(E);
        default: return cli_bad_option(E, argv, ch);
        }
    }
#undef LONG
#undef DBL
    if (optind < argc) return cli_usage_error(E, "unexpected argument '%s'", argv[optind]);
    if (!o->policy) return cli_usage_error(E, "--policy CKPT is required");
    if (!o->rm) return cli_usage_error(E, "--rm RM is required");
    if (!o->out) return cli_usage_error(E, "--out CKPT is required");
    if (o->resume && o->force) return cli_usage_error(E, "--resume and --force contradict each other");
    if (!db_valid_split(o->split)) return cli_usage_error(E, "--split: '%s' is not a split name", o->split);
    if (o->template && cli_check_template(E, o->template)) return EXIT_USAGE;
    if (o->ptx && !o->ptx_coef_set) c->ptx_coef = 1;
    if (!o->ptx && c->ptx_coef > 0) return cli_usage_error(E, "--ptx-coef needs --ptx-corpus FILE");
    if (!vlr_set) c->value_lr = c->lr;
    if (!strcmp(o->out, o->policy) || !strcmp(o->out, o->rm) || (o->ref && !strcmp(o->out, o->ref)))
        return cli_usage_error(E, "--out must be a new file, not one of the inputs");
    Err err = {0};
    if (ppo_config_check(c, &err)) return cli_usage_error(E, "%s", err.msg);
    return -1;
}

/* ---- inputs ------------------------------------------------------------------------ */

typedef struct Prompts {
    PpoPrompt *p;
    int n, cap, skipped, max_len;
    const Tokenizer *tok;
    const char *template;
    Err *err;
} Prompts;

static int add_prompt(const PromptRow *row, void *ctx) {
    Prompts *ps = ctx;
    char *input = NULL;
    if (seq_render(ps->template, row->text, &input, ps->err))
        return err_prefix(ps->err, "prompt %lld: ", (long long)row->id);
    size_t len = strlen(input);
    int cap = tok_encode_cap(len), n = 0;
    int *ids = malloc(sizeof(int) * (size_t)cap);
    int rc = ids ? tok_encode_prompt(ps->tok, input, len, ids, cap, &n,
                                    ps->err)
                 : err_set(ps->err, RLHF_ENOMEM, "out of memory");
    free(input);
    if (rc) {
        free(ids);
        return err_prefix(ps->err, "prompt %lld: ", (long long)row->id), rc;
    }
    if (n + 2 > ps->max_len) { /* no room for an answer */
        ps->skipped++;
        free(ids);
        return 0;
    }
    if (ps->n == ps->cap) {
        int nc = ps->cap ? 2 * ps->cap : 64;
        PpoPrompt *q = realloc(ps->p, sizeof *q * (size_t)nc);
        if (!q) {
            free(ids);
            return err_set(ps->err, RLHF_ENOMEM, "out of memory");
        }
        ps->p = q, ps->cap = nc;
    }
    ps->p[ps->n].ids = ids, ps->p[ps->n++].n = n;
    return 0;
}

static void prompts_free(Prompts *ps) {
    for (int i = 0; i < ps->n; i++) free(ps->p[i].ids);
    free(ps->p);
}

/* The corpus for PPO-ptx: documents split at blank lines, each <s> text </s>. */
static int load_ptx(const char *path, const Tokenizer *tok, int **out, int64_t *n, Err *err) {
    char *text;
    size_t len;
    int rc = sys_read_file(path, &text, &len, err);
    if (rc) return rc;
    if (len > INT_MAX / 4) {
        free(text);
        return err_set(err, RLHF_EINVAL, "%s: too large for a ptx corpus", path);
    }
    int cap = tok_encode_cap(len) + 2 * (int)(len / 2 + 1), got = 0;
    int *ids = malloc(sizeof(int) * (size_t)cap);
    if (!ids) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    *n = 0;
    for (char *doc = text; !rc && *doc;) {
        char *end = strstr(doc, "\n\n");
        size_t dl = end ? (size_t)(end - doc) : strlen(doc);
        while (dl && (doc[0] == '\n')) doc++, dl--;
        if (dl) rc = tok_encode(tok, doc, dl, 1, 1, ids + *n, cap - (int)*n, &got, err);
        if (!rc && dl) *n += got;
        doc = end ? end + 2 : doc + dl;
    }
    free(text);
    if (rc) {
        free(ids);
        return err_prefix(err, "%s: ", path), rc;
    }
    *out = ids;
    return RLHF_OK;
}

/* Warns when --ref is not --policy nor one of its registered ancestors. */
typedef struct Lineage {
    int64_t id[4096], parent[4096];
    int n;
} Lineage;

static int collect(const ModelRow *r, void *ctx) {
    Lineage *l = ctx;
    if (l->n < 4096) l->id[l->n] = r->id, l->parent[l->n++] = r->parent_id;
    return 0;
}

static void check_ancestry(Db *db, int64_t policy_id, const char *ref_path) {
    char real[PATH_MAX];
    ModelRow ref;
    Err err = {0};
    const char *key = realpath(ref_path, real) ? real : ref_path;
    if (db_model_get(db, key, &ref, &err) != RLHF_OK) {
        fprintf(stderr, "ppo: warning: the reference %s is not in the registry; cannot check it is the policy's ancestor\n", ref_path);
        return;
    }
    Lineage *l = calloc(1, sizeof *l);
    int ok = 0;
    if (l && policy_id > 0 && db_models_each(db, collect, l, &err) == RLHF_OK) {
        int64_t at = policy_id;
        for (int hop = 0; hop < 64 && at > 0 && !ok; hop++) {
            if (at == ref.id) ok = 1;
            int64_t next = 0;
            for (int i = 0; i < l->n; i++)
                if (l->id[i] == at) next = l->parent[i];
            at = next;
        }
    }
    if (!ok)
        fprintf(stderr, "ppo: warning: the reference %s is not the policy nor one of its ancestors in the registry; "
                        "the KL penalty will pull the policy toward an unrelated model\n", ref_path);
    free(l);
    db_model_row_free(&ref);
}

static int rm_reward(void *ctx, const SeqExample *ex, const SampleResult *res, int n, float *scores, Err *err) {
    (void)res;
    return rm_score_examples(ctx, ex, n, scores, err);
}

/* ---- the run ------------------------------------------------------------------------ */

typedef struct Run {
    Opts *o;
    Db *db;
    Model pol, ref, val;
    AdamW opt;
    Tokenizer *tok;
    RmScorer rm;
    Prompts prompts;
    int *ptx;
    int64_t n_ptx;
    Ppo ppo;
    int ppo_ready;
    char *template;
    MetricBuf metrics; /* not yet in the database: flushed before each checkpoint */
    int metrics_warned;
    int64_t policy_id;
} Run;

static int write_ckpt(void *ctx, Err *err) {
    Run *r = ctx;
    void *state;
    size_t len;
    int rc = ppo_state_bytes(&r->ppo, &state, &len, err);
    if (rc) return rc;
    rc = model_ckpt_save(r->o->out, &r->pol, &r->ppo.opt, state, len, err);
    free(state);
    return rc;
}

/* final: the run's last save (see cli_save_checkpoint) */
static int save(Run *r, int final, Err *err) {
    if (dist_rank() != 0) return RLHF_OK;
    return cli_save_checkpoint("ppo", r->db, r->ppo.st.run_id, &r->metrics, final,
                               &r->metrics_warned, write_ckpt, r, err);
}

/* The per-step curves, under the names TRL users know where TRL has one. */
static const struct {
    const char *name;
    size_t off;
} METRICS[] = {
    {"objective/kl", offsetof(PpoStats, kl)},
    {"objective/kl_full", offsetof(PpoStats, kl_full)},
    {"objective/entropy", offsetof(PpoStats, entropy)},
    {"objective/scores", offsetof(PpoStats, score)},
    {"objective/rlhf_reward", offsetof(PpoStats, rlhf_reward)},
    {"objective/beta", offsetof(PpoStats, beta)},
    {"policy/entropy_avg", offsetof(PpoStats, entropy_tok)},
    {"policy/clipfrac_avg", offsetof(PpoStats, pg_clipfrac)},
    {"policy/approxkl_avg", offsetof(PpoStats, approxkl)},
    {"loss/policy_avg", offsetof(PpoStats, pg_loss)},
    {"loss/value_avg", offsetof(PpoStats, vf_loss)},
    {"loss/ptx_avg", offsetof(PpoStats, ptx_loss)},
    {"val/clipfrac_avg", offsetof(PpoStats, vf_clipfrac)},
    {"val/explained_variance", offsetof(PpoStats, explained_var)},
    {"answer/length_mean", offsetof(PpoStats, len_mean)},
    {"answer/eos_frac", offsetof(PpoStats, eos_frac)},
    {"answer/dup_frac", offsetof(PpoStats, dup_frac)},
    {"time/rollout_s", offsetof(PpoStats, t_rollout)},
    {"time/score_s", offsetof(PpoStats, t_score)},
    {"time/update_s", offsetof(PpoStats, t_update)},
};

static void log_metrics(Run *r, const PpoStats *s) {
    for (size_t i = 0; i < sizeof METRICS / sizeof METRICS[0]; i++) {
        double v = *(const double *)((const char *)s + METRICS[i].off);
        if (!isnan(v)) db_metricbuf_add(&r->metrics, s->step, METRICS[i].name, v);
    }
}

static void run_free(Run *r) {
    if (r->ppo_ready) ppo_free(&r->ppo);
    rm_scorer_close(&r->rm);
    if (r->tok) tok_free(r->tok);
    adamw_free(&r->opt);
    model_free(&r->pol), model_free(&r->ref), model_free(&r->val);
    prompts_free(&r->prompts);
    free(r->ptx);
    free(r->template);
    db_metricbuf_free(&r->metrics);
    if (r->db) db_close(r->db);
}

/* Template: --template, else the policy's in the registry, else gen.template, else the default. */
static int settle_template(Run *r, Err *err) {
    int rc = rl_resolve_template(r->db, r->o->template, r->o->policy, &r->template, &r->policy_id, err);
    if (rc) return rc;
    if (!r->template) r->template = strdup(SEQ_DEFAULT_TEMPLATE);
    return r->template ? RLHF_OK : err_set(err, RLHF_ENOMEM, "out of memory");
}

/* The reference is a policy with the policy's tokenizer: KL against a reward
 * model's or another tokenizer's next-token distribution measures nothing. */
static int check_ref(Run *r, const char *ref_path, Err *err) {
    int rc = model_require_policy(&r->ref, ref_path, err);
    if (rc) return err_prefix(err, "--ref: "), rc;
    if (r->ref.cfg.vocab_size != r->pol.cfg.vocab_size)
        return err_set(err, RLHF_EINVAL, "the reference %s has a vocabulary of %d, the policy %d", ref_path,
                       r->ref.cfg.vocab_size, r->pol.cfg.vocab_size);
    if (!r->ref.tokenizer) return RLHF_OK; /* a llama2.c file: only --tokenizer names its ids */
    Tokenizer *t = NULL;
    Err ignored = {0}; /* what it carries may hold no tokenizer (an HF directory's other files) */
    if (tok_load_mem(r->ref.tokenizer, r->ref.tokenizer_len, &t, &ignored)) return RLHF_OK;
    rc = tok_require_same(r->tok, r->o->tok ? r->o->tok : r->o->policy, t, ref_path, err);
    tok_free(t);
    return rc;
}

static int setup(Run *r, int resumed, int *fresh_run, Err *err) {
    Opts *o = r->o;
    void *state = NULL;
    size_t state_len = 0;
    int rc;
    const char *ref_path = o->ref ? o->ref : o->policy;
    if (resumed) {
        if ((rc = model_ckpt_load(o->out, &r->pol, &r->opt, &state, &state_len, err))) return rc;
        PpoState st;
        if (state_len < sizeof st || memcmp(state, "PPOSTATE", 8) != 0) {
            free(state);
            return err_set(err, RLHF_EFORMAT, "%s: not a PPO checkpoint (no PPO state to resume)", o->out);
        }
        memcpy(&st, state, sizeof st);
        char sha[65];
        if ((rc = model_file_sha256(ref_path, sha, err))) goto done;
        if (strcmp(sha, st.ref_sha) != 0) {
            rc = err_set(err, RLHF_EINVAL, "%s: the reference %s changed since this run started; "
                                           "resume with the same --policy/--ref", o->out, ref_path);
            goto done;
        }
        *fresh_run = st.run_id <= 0;
    } else {
        if ((rc = model_load(o->policy, &r->pol, err))) return err_prefix(err, "--policy: "), rc;
        if ((rc = model_require_policy(&r->pol, o->policy, err))) return rc;
        *fresh_run = 1;
    }
    if ((rc = model_load(ref_path, &r->ref, err))) goto done;
    if ((rc = model_load_tokenizer(&r->pol, resumed ? o->out : o->policy, o->tok, &r->tok, err))) goto done;
    if (!r->pol.tokenizer) { /* the output carries the tokenizer it was trained with */
        unsigned char *tb;
        size_t tl;
        if ((rc = tok_to_bytes(r->tok, &tb, &tl, err))) goto done;
        rc = model_set_tokenizer(&r->pol, tb, tl, err);
        free(tb);
        if (rc) goto done;
    }
    if ((rc = settle_template(r, err))) goto done;
    if ((rc = rm_scorer_open(&r->rm, o->rm, o->tok, r->template, o->c.minibatch, err))) goto done;
    if (r->rm.m.cfg.vocab_size != r->pol.cfg.vocab_size) {
        rc = err_set(err, RLHF_EINVAL, "the RM's vocabulary (%d) differs from the policy's (%d)",
                     r->rm.m.cfg.vocab_size, r->pol.cfg.vocab_size);
        goto done;
    }
    if ((rc = tok_require_same(r->tok, resumed ? o->out : o->policy, r->rm.tok, o->rm, err))) goto done;
    if ((rc = check_ref(r, ref_path, err))) goto done;
    if (r->rm.m.cfg.seq_len < r->pol.cfg.seq_len) {
        rc = err_set(err, RLHF_EINVAL, "the RM's context (%d) is shorter than the policy's (%d)",
                     r->rm.m.cfg.seq_len, r->pol.cfg.seq_len);
        goto done;
    }
    if (o->c.value_mode == PPO_VALUE_MODEL) {
        if ((rc = model_load(o->rm, &r->val, err)) || (rc = ppo_value_from_rm(&r->val, err))) goto done;
    }
    if (o->ref && r->db && dist_rank() == 0) check_ancestry(r->db, r->policy_id, o->ref);
    r->prompts.tok = r->tok, r->prompts.template = r->template, r->prompts.err = err;
    r->prompts.max_len = r->pol.cfg.seq_len;
    PromptFilter f = {0};
    f.split = o->split;
    if ((rc = db_prompts_each(r->db, &f, add_prompt, &r->prompts, err))) goto done;
    if (r->prompts.n == 0) {
        if (r->prompts.skipped)
            rc = err_set(err, RLHF_EINVAL, "no training prompts in split '%s' fit the context (%d too long)",
                         o->split, r->prompts.skipped);
        else
            rc = err_set(err, RLHF_EINVAL, "no training prompts in split '%s'; import some with "
                                           "`rlhf prompts import FILE --split %s`", o->split, o->split);
        goto done;
    }
    if (r->prompts.skipped)
        fprintf(stderr, "ppo: %d prompts leave no room for an answer in the context; skipped\n", r->prompts.skipped);
    if ((rc = ppo_init(&r->ppo, &o->c, &r->pol, &r->ref, &r->val, r->tok, r->prompts.p, r->prompts.n,
                       &r->opt, state, state_len, (uint64_t)o->seed, err)))
        goto done;
    r->ppo_ready = 1;
    if (!resumed && (rc = model_file_sha256(ref_path, r->ppo.st.ref_sha, err))) goto done;
    if (o->ptx) {
        if ((rc = load_ptx(o->ptx, r->tok, &r->ptx, &r->n_ptx, err)) ||
            (rc = ppo_set_ptx(&r->ppo, r->ptx, r->n_ptx, err)))
            goto done;
    }
done:
    free(state);
    return rc;
}

static void print_step(const Run *r, const PpoStats *s, double eta) {
    char e[32];
    progress_format_eta(eta, e, sizeof e);
    double tt = s->t_rollout + s->t_score + s->t_update + 1e-12;
    fprintf(stderr,
            "step %lld/%ld  score %+.3f  reward %+.3f  kl %.3f (full %.3f)  beta %.4f  ent %.2f  "
            "len %.1f  end %.0f%%  clip %.2f  vf %.3f  ev %.2f  [roll %.0f%% score %.0f%% upd %.0f%%]  ETA %s\n",
            (long long)s->step, r->o->steps, s->score, s->rlhf_reward, s->kl, s->kl_full, s->beta,
            s->entropy_tok, s->len_mean, 100 * s->eos_frac, s->pg_clipfrac, s->vf_loss,
            s->explained_var, 100 * s->t_rollout / tt, 100 * s->t_score / tt, 100 * s->t_update / tt, e);
}

static long peak_rss_mib(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss / 1024;
}

static int exec_ppo(int argc, char **argv) {
    Opts o;
    memset(&o, 0, sizeof o);
    int rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    Run r;
    memset(&r, 0, sizeof r);
    r.o = &o;
    Err err = {0};
    if (o.threads) infer_set_threads((int)o.threads);
    /* under MPI every rank reads the project (the same prompts); rank 0 alone
     * writes it and the checkpoint */
    if ((rc = cli_open_db(E, o.dbflag, dist_rank() ? DB_OPEN_READONLY : DB_OPEN_EXISTING, &r.db))) return rc;
    if (dist_rank() == 0) atomic_remove_stale(o.out);
    int exists = access(o.out, F_OK) == 0;
    if (exists && !o.resume && !o.force) {
        fprintf(stderr, "rlhf ppo: %s exists; pass --resume to continue it or --force to start over\n", o.out);
        run_free(&r);
        return EXIT_FAIL;
    }
    int resumed = o.resume && exists, fresh_run = 1;
    if ((rc = setup(&r, resumed, &fresh_run, &err))) goto fail;
    Ppo *p = &r.ppo;
    if (dist_rank() != 0) {
        db_close(r.db);
        r.db = NULL;
    }
    if (fresh_run && r.db) {
        char cj[1536], cfgj[512];
        const PpoConfig *c = &p->c;
        model_config_json(&r.pol.cfg, cfgj, sizeof cfgj);
        snprintf(cj, sizeof cj,
                 "{\"model\":%s,\"steps\":%ld,\"prompts\":%d,\"samples\":%d,\"max_new\":%d,\"epochs\":%d,"
                 "\"minibatch\":%d,\"lr\":%g,\"value_lr\":%g,\"value\":\"%s\",\"beta\":%g,\"kl_target\":%g,"
                 "\"kl_horizon\":%g,\"clip\":%g,\"clip_value\":%g,\"gamma\":%g,\"lambda\":%g,\"vf_coef\":%g,"
                 "\"length_penalty\":%g,\"whiten_scores\":%d,\"score_clip\":%g,\"ptx_coef\":%g,\"seed\":%ld,"
                 "\"prompts_available\":%d}",
                 cfgj, o.steps, c->prompts, c->samples, c->max_new, c->epochs, c->minibatch, c->lr,
                 c->value_lr, c->value_mode == PPO_VALUE_MODEL ? "rm" : "head", c->beta, c->kl_target,
                 c->kl_horizon, c->cliprange, c->cliprange_value, c->gamma, c->lambda, c->vf_coef,
                 c->length_penalty, c->whiten_scores, c->score_clip, o.ptx ? c->ptx_coef : 0, o.seed,
                 r.prompts.n);
        if ((rc = db_run_start(r.db, "ppo", cj, r.policy_id, &p->st.run_id, &err))) goto fail;
    } else if (r.db && (rc = db_run_resumed(r.db, p->st.run_id, &err)))
        goto fail;
    if (dist_rank() == 0)
    fprintf(stderr,
            "ppo: policy %s (%zu parameters), RM %s, value %s, %d training prompts, %d×%d answers per step, "
            "beta %g%s\n",
            o.policy, r.pol.n_params, o.rm, p->value ? "model (from the RM)" : "head", r.prompts.n,
            p->c.prompts, p->c.samples, p->kl.beta, p->c.kl_target > 0 ? " (adaptive)" : " (fixed)");
    if (resumed && dist_rank() == 0) fprintf(stderr, "ppo: resumed %s at step %lld\n", o.out, (long long)p->st.step);
    sys_catch_interrupts();
    double t0 = now_seconds(), first_score = NAN, last_score = NAN, last_kl = NAN;
    int64_t step0 = p->st.step, last_warn = 0;
    PpoStats s;
    int stopped = 0;
    while (p->st.step < o.steps && !stopped) {
        stopped = sys_interrupted();
        if (dist_size() == 1 && stopped) break;
        if ((rc = ppo_step(p, rm_reward, &r.rm, &s, &err))) goto fail;
        if (dist_stop_together(&stopped)) {
            rc = err_set(&err, RLHF_EIO, "MPI all-reduce failed");
            goto fail;
        }
        if (!isfinite(s.pg_loss) || !isfinite(s.vf_loss)) {
            rc = err_set(&err, RLHF_EINVAL, "the losses became non-finite at step %lld; try a lower --lr",
                         (long long)s.step);
            goto fail;
        }
        if (isnan(first_score)) first_score = s.score;
        last_score = s.score, last_kl = s.kl;
        log_metrics(&r, &s);
        double per = (now_seconds() - t0) / (double)(s.step - step0);
        if (dist_rank() == 0) print_step(&r, &s, per * (double)(o.steps - s.step));
        for (int bit = 1; bit <= PPO_WARN_NOISE; bit <<= 1)
            if ((s.warn & bit) && !(last_warn & bit) && dist_rank() == 0)
                fprintf(stderr, "ppo: warning: step %lld: %s\n", (long long)s.step, ppo_warn_text(bit));
        last_warn = s.warn;
        if (s.step % o.save_every == 0 || s.step == o.steps)
            if ((rc = save(&r, s.step == o.steps, &err))) goto fail;
    }
    stopped = stopped || sys_interrupted();
    if (stopped || p->st.step % o.save_every || p->st.step == step0)
        if ((rc = save(&r, 1, &err))) goto fail;
    if (dist_rank() != 0) { /* the store and the messages are rank 0's */
        run_free(&r);
        return stopped ? EXIT_FAIL : EXIT_OK;
    }
    char note[160];
    snprintf(note, sizeof note, "step %lld, score %.4f, kl %.4f", (long long)p->st.step, last_score, last_kl);
    if ((rc = db_metricbuf_flush(r.db, p->st.run_id, &r.metrics, &err))) goto fail;
    if ((rc = cli_register_checkpoint(r.db, o.out, o.name, "policy", r.policy_id, &r.pol.cfg, r.template,
                                      p->st.run_id, stopped ? "interrupted" : "done", note, NULL, &err)))
        goto fail;
    fprintf(stderr, "ppo: peak RSS %ld MiB\n", peak_rss_mib());
    if (stopped)
        fprintf(stderr, "ppo: interrupted at step %lld; checkpoint saved to %s (rerun with --resume)\n",
                (long long)p->st.step, o.out);
    else if (isnan(last_score))
        printf("already trained %lld PPO steps; %s is up to date\n", (long long)p->st.step, o.out);
    else
        printf("trained %lld PPO steps: score %.4f -> %.4f, kl %.4f, beta %.4f; wrote %s\n",
               (long long)p->st.step, first_score, last_score, last_kl, p->kl.beta, o.out);
    run_free(&r);
    return stopped ? EXIT_FAIL : EXIT_OK;
fail:
    if (r.db && r.ppo_ready && r.ppo.st.run_id > 0) {
        Err e2 = {0};
        db_run_finish(r.db, r.ppo.st.run_id, "failed", 0, err.msg, &e2);
    }
    run_free(&r);
    return cli_fail(E, &err);
}
