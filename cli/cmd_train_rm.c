/* rlhf train-rm: the reward model, InstructGPT's step 2. A backbone from a
 * base or SFT checkpoint gets a scalar head on the final hidden state of the
 * answer's last token and learns the rankings: each prompt ranked over K
 * answers is one batch element (rm/rm_train.h). Held-out prompts come from
 * export's deterministic split; training is resumable like pretrain (the
 * data order is a function of the seed, so a resumed run equals an
 * uninterrupted one); at the end the reward head's bias is set so that the
 * init model's own answers score 0 on average. */
#include "cli/cli.h"
#include "cli/filter.h"
#include "db/registry.h"
#include "db/scores.h"
#include "model/dist.h"
#include "model/checkpoint.h"
#include "model/infer.h"
#include "model/optim.h"
#include "model/sample.h"
#include "rm/prefs.h"
#include "rm/rm_score.h"
#include "rm/rm_train.h"
#include "rl/trainer.h"
#include "util/progress.h"
#include "util/rng.h"
#include "util/sys.h"
#include "util/text.h"

#include <cblas.h>
#include <errno.h>
#include <sys/stat.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int exec_train_rm(int argc, char **argv);

const struct cmd_entry cmd_train_rm_entry = {
    "train-rm",
    "--init CKPT --out RM [--data FILE | filters] [--resume]",
    "train a reward model on the rankings (K-wise loss), resumably",
    "  --init CKPT        the backbone: a base or SFT checkpoint (InstructGPT starts from SFT)\n"
    "  --out RM           the reward model to write (our format, with optimizer state)\n"
    "  --data FILE        train on a pairs or HH JSONL file instead of the store's rankings\n"
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
    "  --threads N        BLAS threads\n"
    "  --name NAME        name in the registry (default: RM's file name)\n"
    "  --dump DIR         write the first step's batch, rewards, loss and gradients for\n"
    "                     tests/ref/torch_ref.py and stop (nothing else is written)\n"
    "Store data takes export's filters (a ranking of K answers gives K(K-1)/2 pairs; ties\n"
    "are left out):\n" CLI_HELP_FILTER CLI_HELP_COMMON,
    exec_train_rm};

static const struct cmd_entry *E = &cmd_train_rm_entry;

/* The opaque "extra" bytes of the checkpoint. */
typedef struct TrainState {
    char magic[8];
    uint32_t version, batch;
    int64_t step, steps, run_id, n_train, seed;
    char data_sha[65];
    char pad[3];
    int32_t norm_done;
    double norm_mean; /* subtracted from the bias when norm_done */
    double last_val;
} TrainState;
#define TS_MAGIC "RMTRAIN"

typedef struct Opts {
    const char *init, *out, *data, *tok_path, *template, *name, *dbflag, *dump;
    PrefLoadOptions load;
    long epochs, batch, micro, warmup, eval_every, save_every, seed, threads, norm_samples;
    double lr, min_lr, wd, clip;
    RmLossOpts loss;
    int resume, force, filtered;
} Opts;

static int parse(int argc, char **argv, Opts *o) {
    static const struct option opts[] = {
        CLI_OPT_DB, CLI_OPT_HELP, CLI_FILTER_OPTS,
        {"init", required_argument, NULL, 'i'}, {"out", required_argument, NULL, 'o'},
        {"data", required_argument, NULL, 'd'}, {"tokenizer", required_argument, NULL, 'k'},
        {"template", required_argument, NULL, 'T'}, {"min-agreement", required_argument, NULL, 'A'},
        {"val-frac", required_argument, NULL, 'v'}, {"epochs", required_argument, NULL, 'e'},
        {"batch", required_argument, NULL, 'b'}, {"micro", required_argument, NULL, 'u'},
        {"lr", required_argument, NULL, 'l'}, {"min-lr", required_argument, NULL, 'L'},
        {"warmup", required_argument, NULL, 'w'}, {"weight-decay", required_argument, NULL, 'W'},
        {"clip", required_argument, NULL, 'g'}, {"margin", required_argument, NULL, 'm'},
        {"center", required_argument, NULL, 'c'}, {"eval-every", required_argument, NULL, 'E'},
        {"save-every", required_argument, NULL, 'S'}, {"norm-samples", required_argument, NULL, 'N'},
        {"resume", no_argument, NULL, 'r'}, {"force", no_argument, NULL, 'f'},
        {"seed", required_argument, NULL, 'x'}, {"threads", required_argument, NULL, 't'},
        {"name", required_argument, NULL, 'n'}, {"dump", required_argument, NULL, 'Z'}, CLI_OPT_END};
    o->load.filter = db_ranking_filter_default();
    o->load.min_agreement = -1;
    o->load.val_frac = 0.1;
    o->epochs = 1, o->batch = 8, o->micro = 16, o->warmup = -1, o->seed = 1, o->norm_samples = 64;
    o->lr = 3e-4, o->min_lr = -1, o->wd = 0, o->clip = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        int fr = cli_filter_opt(E, c, optarg, &o->load.filter);
        if (fr == 1) {
            o->filtered = 1;
            continue;
        }
        if (fr) return fr;
        switch (c) {
        case 'D': o->dbflag = optarg; break;
        case 'i': o->init = optarg; break;
        case 'o': o->out = optarg; break;
        case 'd': o->data = optarg; break;
        case 'k': o->tok_path = optarg; break;
        case 'T': o->template = optarg; break;
        case 'n': o->name = optarg; break;
        case 'Z': o->dump = optarg; break;
        case 'r': o->resume = 1; break;
        case 'f': o->force = 1; break;
        case 'A':
            if (cli_parse_double(E, "--min-agreement", optarg, 0, 1, &o->load.min_agreement)) return EXIT_USAGE;
            o->filtered = 1;
            break;
        case 'v': if (cli_parse_double(E, "--val-frac", optarg, 0, 0.9, &o->load.val_frac)) return EXIT_USAGE; break;
        case 'e': if (cli_parse_long(E, "--epochs", optarg, 1, 1000, &o->epochs)) return EXIT_USAGE; break;
        case 'b': if (cli_parse_long(E, "--batch", optarg, 1, 1 << 16, &o->batch)) return EXIT_USAGE; break;
        case 'u': if (cli_parse_long(E, "--micro", optarg, 1, 4096, &o->micro)) return EXIT_USAGE; break;
        case 'l': if (cli_parse_double(E, "--lr", optarg, 0, 10, &o->lr)) return EXIT_USAGE; break;
        case 'L': if (cli_parse_double(E, "--min-lr", optarg, 0, 10, &o->min_lr)) return EXIT_USAGE; break;
        case 'w': if (cli_parse_long(E, "--warmup", optarg, 0, 1L << 40, &o->warmup)) return EXIT_USAGE; break;
        case 'W': if (cli_parse_double(E, "--weight-decay", optarg, 0, 10, &o->wd)) return EXIT_USAGE; break;
        case 'g': if (cli_parse_double(E, "--clip", optarg, 0, 1e9, &o->clip)) return EXIT_USAGE; break;
        case 'm': if (cli_parse_double(E, "--margin", optarg, 0, 100, &o->loss.margin)) return EXIT_USAGE; break;
        case 'c': if (cli_parse_double(E, "--center", optarg, 0, 100, &o->loss.center)) return EXIT_USAGE; break;
        case 'E': if (cli_parse_long(E, "--eval-every", optarg, 1, 1L << 40, &o->eval_every)) return EXIT_USAGE; break;
        case 'S': if (cli_parse_long(E, "--save-every", optarg, 1, 1L << 40, &o->save_every)) return EXIT_USAGE; break;
        case 'N': if (cli_parse_long(E, "--norm-samples", optarg, 0, 1 << 20, &o->norm_samples)) return EXIT_USAGE; break;
        case 'x': if (cli_parse_long(E, "--seed", optarg, 0, LONG_MAX, &o->seed)) return EXIT_USAGE; break;
        case 't': if (cli_parse_long(E, "--threads", optarg, 1, 256, &o->threads)) return EXIT_USAGE; break;
        case 'h': return cli_help(E);
        default: return cli_bad_option(E, argv, c);
        }
    }
    if (optind < argc) return cli_usage_error(E, "unexpected argument '%s'", argv[optind]);
    if (!o->init) return cli_usage_error(E, "--init CKPT is required (a base or SFT checkpoint)");
    if (!o->out && !o->dump) return cli_usage_error(E, "--out RM is required");
    if (o->resume && o->force) return cli_usage_error(E, "--resume and --force contradict each other");
    if (o->data && o->filtered)
        return cli_usage_error(E, "--data FILE takes no store filters (--split, --labeler, --min-agreement, ...)");
    if (!o->out) o->out = "";
    if (strcmp(o->init, o->out) == 0) return cli_usage_error(E, "--init and --out name the same file");
    if (o->min_lr < 0) o->min_lr = o->lr / 10;
    return -1;
}

typedef struct Run {
    const Opts *o;
    Model m;
    AdamW opt;
    TrainState ts;
    Db *db;
    Tokenizer *tok;
    char *template; /* owned; NULL: the default */
    int64_t init_id;
    PrefSet set;
    RmData data;
    RmTrainer tr;
    int64_t *train, *val, n_val, *order;
    MetricBuf metrics; /* not yet in the database: flushed before each checkpoint */
    int metrics_warned;
} Run;

static void run_free(Run *r) {
    rm_trainer_free(&r->tr);
    rm_data_free(&r->data);
    prefs_free(&r->set);
    free(r->train), free(r->val), free(r->order), free(r->template);
    db_metricbuf_free(&r->metrics);
    adamw_free(&r->opt);
    model_free(&r->m);
    if (r->tok) tok_free(r->tok);
    if (r->db) db_close(r->db);
}

static void metric(Run *r, const char *name, double v) {
    if (r->db && isfinite(v)) db_metricbuf_add(&r->metrics, r->ts.step, name, v);
}

static int write_ckpt(void *ctx, Err *err) {
    Run *r = ctx;
    return model_ckpt_save(r->o->out, &r->m, &r->opt, &r->ts, sizeof r->ts, err);
}

/* final: the run's last save (see cli_save_checkpoint) */
static int save(Run *r, int final, Err *err) {
    if (dist_rank() != 0) return RLHF_OK;
    return cli_save_checkpoint("train-rm", r->db, r->ts.run_id, &r->metrics, final,
                               &r->metrics_warned, write_ckpt, r, err);
}

/* A fingerprint of the training data, the template and the split, so a resume
 * on other data is refused instead of mixing two runs. */
static void data_sha(const Run *r, char out[65]) {
    Sha256 c;
    sha256_init(&c);
    const char *t = r->template ? r->template : "";
    sha256_update(&c, t, strlen(t) + 1);
    for (int g = 0; g < r->set.n; g++) {
        const PrefGroup *p = &r->set.g[g];
        sha256_update(&c, p->prompt, strlen(p->prompt) + 1);
        sha256_update(&c, &p->val, sizeof p->val);
        for (int k = 0; k < p->n; k++) {
            sha256_update(&c, p->answers[k], strlen(p->answers[k]) + 1);
            sha256_update(&c, &p->rank[k], sizeof p->rank[k]);
            sha256_update(&c, &p->likert[k], sizeof p->likert[k]);
        }
    }
    unsigned char d[32];
    sha256_final(&c, d);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The init model's registry entry (its id is the RM's parent; its template
 * the default one) and its tokenizer. */
static int load_init(Run *r, Err *err) {
    const Opts *o = r->o;
    int rc = rl_resolve_template(r->db, o->template, o->init, &r->template, &r->init_id, err);
    if (rc) return rc;
    if (r->template && seq_template_check(r->template, err))
        return err_prefix(err, "template '%s': ", r->template);
    Model init;
    if ((rc = model_load(o->init, &init, err))) return rc;
    rc = model_load_tokenizer(&init, o->init, o->tok_path, &r->tok, err);
    model_free(&init);
    return rc;
}

static int load_data(Run *r, Err *err) {
    const Opts *o = r->o;
    int rc = o->data ? prefs_load_file(o->data, o->load.val_frac, &r->set, err)
                     : prefs_load_store(r->db, &o->load, &r->set, err);
    if (rc) return rc;
    if (r->set.n == 0) {
        if (o->data)
            return err_set(err, RLHF_EINVAL, "%s: no pair to train on (%lld records had chosen == rejected)",
                           o->data, (long long)r->set.skipped);
        if (r->set.skipped)
            return err_set(err, RLHF_EINVAL,
                           "no rankings to train on: the %lld rankings the filters select rank every "
                           "answer level (ties only)",
                           (long long)r->set.skipped);
        return err_set(err, RLHF_EINVAL,
                       "no rankings to train on%s (rank candidates with `rlhf label` or "
                       "`rlhf import` comparisons, or pass --data FILE)",
                       o->filtered ? " with these filters" : "");
    }
    r->train = malloc(sizeof(int64_t) * (size_t)r->set.n);
    r->val = malloc(sizeof(int64_t) * (size_t)r->set.n);
    if (!r->train || !r->val) return err_set(err, RLHF_ENOMEM, "out of memory");
    r->ts.n_train = 0;
    for (int g = 0; g < r->set.n; g++) {
        if (r->set.g[g].val) r->val[r->n_val++] = g;
        else r->train[r->ts.n_train++] = g;
    }
    if (r->ts.n_train == 0)
        return err_set(err, RLHF_EINVAL,
                       "all %d ranked prompts fall in the held-out share (--val-frac %g): nothing "
                       "to train on",
                       r->set.n, o->load.val_frac);
    return rm_data_encode(&r->data, &r->set, r->tok, r->template, r->m.cfg.seq_len, err);
}

/* The order of training groups over all epochs: each epoch a permutation
 * drawn from the seed and the epoch number alone, so any step can be redone. */
static int make_order(Run *r, Err *err) {
    int64_t n = r->ts.n_train, total = n * r->o->epochs;
    r->order = malloc(sizeof(int64_t) * (size_t)total);
    if (!r->order) return err_set(err, RLHF_ENOMEM, "out of memory");
    for (long e = 0; e < r->o->epochs; e++) {
        int64_t *p = r->order + e * n;
        memcpy(p, r->train, sizeof(int64_t) * (size_t)n);
        Rng rng;
        rng_seed(&rng, (uint64_t)r->o->seed * 1000003u + (uint64_t)e);
        rng_shuffle(&rng, p, (size_t)n, sizeof *p);
    }
    r->ts.steps = (total + r->o->batch - 1) / r->o->batch;
    return RLHF_OK;
}

/* Starts from the init checkpoint: reward head on (a new one drawn small,
 * like a linear layer's default), value head and optimizer state off. */
static int start_fresh(Run *r, Err *err) {
    int rc = model_load(r->o->init, &r->m, err);
    if (rc) return rc;
    int had = r->m.heads & MODEL_HEAD_REWARD;
    if ((rc = model_set_heads(&r->m, MODEL_HEAD_REWARD, err))) return rc;
    if (!had) {
        Rng rng;
        rng_seed(&rng, (uint64_t)r->o->seed ^ 0x5eedULL);
        int C = r->m.cfg.dim;
        for (int i = 0; i < C; i++) r->m.w.reward[i] = (float)(rng_normal(&rng) / sqrt((double)C));
        r->m.w.reward[C] = 0;
    }
    if (!r->m.tokenizer || r->o->tok_path) {
        unsigned char *tb;
        size_t tl;
        if ((rc = tok_to_bytes(r->tok, &tb, &tl, err))) return rc;
        rc = model_set_tokenizer(&r->m, tb, tl, err);
        free(tb);
        if (rc) return rc;
    }
    if ((rc = adamw_create(&r->opt, r->m.n_params, err))) return rc;
    memcpy(r->ts.magic, TS_MAGIC, 8);
    r->ts.version = 1;
    r->ts.last_val = NAN;
    return RLHF_OK;
}

static int resume(Run *r, Err *err) {
    void *extra = NULL;
    size_t xl = 0;
    int rc = model_ckpt_load(r->o->out, &r->m, &r->opt, &extra, &xl, err);
    if (rc) return rc;
    if (xl != sizeof r->ts || memcmp(extra, TS_MAGIC, 8) != 0 || r->opt.n != r->m.n_params) {
        free(extra);
        return err_set(err, RLHF_EFORMAT, "%s: not a train-rm checkpoint (no training state to resume)",
                       r->o->out);
    }
    memcpy(&r->ts, extra, sizeof r->ts);
    free(extra);
    return RLHF_OK;
}

/* Mean reward of the init model's own answers: those in the store, else
 * N fresh samples on the training prompts. *n = 0 when there are none.
 * RLHF_EINTR on Ctrl-C: sampling can take minutes, and the checkpoint before
 * it (norm_done 0) resumes into it, drawing the same samples again. */
static int norm_mean(Run *r, double *mean, int64_t *n, const char **what, Err *err) {
    *n = 0, *mean = 0;
    SeqExample *ex = NULL;
    int64_t cap = 0, cnt = 0;
    int rc = RLHF_OK;
    if (r->db && r->init_id > 0) {
        ScoreTodoFilter f = {0, r->init_id, NULL, 0, 4096};
        ScoreTodo *rows;
        int nr;
        if ((rc = db_score_todo(r->db, &f, &rows, &nr, err))) return rc;
        ex = calloc((size_t)(nr ? nr : 1), sizeof *ex);
        if (!ex) rc = err_set(err, RLHF_ENOMEM, "out of memory");
        for (int i = 0; !rc && i < nr; i++, cnt++)
            rc = seq_encode(r->tok, r->template, rows[i].prompt, rows[i].text, 1, r->m.cfg.seq_len,
                            &ex[i], err);
        db_score_todo_free(rows, nr);
        *what = "answers of the init model in the store";
    }
    if (!rc && cnt == 0 && r->o->norm_samples > 0) {
        free(ex);
        ex = NULL;
        Model init;
        Infer inf;
        if ((rc = model_load(r->o->init, &init, err))) return rc;
        rc = infer_create(&inf, &init, 1, err);
        cap = r->o->norm_samples;
        ex = calloc((size_t)cap, sizeof *ex);
        if (!rc && !ex) rc = err_set(err, RLHF_ENOMEM, "out of memory");
        SampleParams sp = sample_params_default();
        sp.max_tokens = r->m.cfg.seq_len / 2;
        for (int64_t i = 0; !rc && i < cap; i++) {
            if (sys_interrupted()) {
                rc = err_set(err, RLHF_EINTR, "interrupted during the normalisation");
                break;
            }
            const char *prompt = r->set.g[r->train[i % r->ts.n_train]].prompt;
            SeqExample pe;
            SampleResult res;
            /* the prompt as gen prefills it: the template's tokens from <s> on */
            rc = seq_encode(r->tok, r->template, prompt, "", 0, r->m.cfg.seq_len - 1, &pe, err);
            if (rc) break;
            infer_reset(&inf);
            rc = sample_generate(&inf, r->tok, pe.tokens, pe.n_prompt, &sp,
                                 (uint64_t)r->o->seed * 7919u + (uint64_t)i, &res, err);
            seq_example_free(&pe);
            if (!rc) {
                rc = seq_encode(r->tok, r->template, prompt, res.text, 1, r->m.cfg.seq_len, &ex[i], err);
                sample_result_free(&res);
            }
            if (!rc) cnt++;
        }
        infer_free(&inf);
        model_free(&init);
        *what = "fresh samples from the init model";
    }
    if (!rc && sys_interrupted()) rc = err_set(err, RLHF_EINTR, "interrupted during the normalisation");
    if (!rc && cnt > 0) {
        float *out = malloc(sizeof(float) * (size_t)cnt);
        if (!out) rc = err_set(err, RLHF_ENOMEM, "out of memory");
        if (!rc)
            rc = rm_score_model(&r->m, &r->tr.rs, r->tr.tokens, r->tr.lens, r->tr.max_rows, ex,
                                (int)cnt, out, err);
        double s = 0;
        for (int64_t i = 0; !rc && i < cnt; i++) s += out[i];
        if (!rc) *mean = s / (double)cnt, *n = cnt;
        free(out);
    }
    for (int64_t i = 0; ex && i < cnt; i++) seq_example_free(&ex[i]);
    free(ex);
    return rc;
}

/* Sets the reward bias from norm_mean and saves the run's last checkpoint;
 * RLHF_EINTR on Ctrl-C, with the checkpoint before it left to resume. */
static int normalise(Run *r, Err *err) {
    double mean;
    int64_t n;
    const char *what = "";
    int rc = norm_mean(r, &mean, &n, &what, err);
    if (rc) return rc;
    if (n > 0) {
        double bias = rm_normalise(&r->m, mean);
        r->ts.norm_mean = mean;
        metric(r, "norm_bias", bias);
        fprintf(stderr, "train-rm: normalisation: %lld %s scored %.4f on average; reward bias set to %.4f\n",
                (long long)n, what, mean, bias);
    } else {
        fprintf(stderr, "train-rm: no answers of the init model to normalise on (--norm-samples 0); bias left as trained\n");
    }
    r->ts.norm_done = 1;
    return save(r, 1, err);
}

static int evaluate(Run *r, double *acc, Err *err) {
    *acc = NAN;
    if (!r->n_val) return RLHF_OK;
    RmStats st;
    int rc = rm_eval_groups(&r->tr, &r->data, r->val, r->n_val, &st, NULL, err);
    if (rc) return rc;
    *acc = st.accuracy;
    metric(r, "val_accuracy", st.accuracy);
    metric(r, "val_loss", st.loss);
    return RLHF_OK;
}

static int write_file(const char *dir, const char *name, const void *p, size_t n, Err *err) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return err_set(err, RLHF_EIO, "%s: cannot write", path);
    int bad = fwrite(p, 1, n, f) != n;
    bad |= fclose(f) != 0;
    return bad ? err_set(err, RLHF_EIO, "%s: write failed", path) : RLHF_OK;
}

/* The first step's groups in one pass, for the PyTorch reference: the model
 * (llama2.c format + heads.bin), the packed tokens, each group's ranks and
 * the rows' lengths (rm.txt), rewards and loss (rm_out.bin), gradients. */
static int dump_step(Run *r, Err *err) {
    const char *dir = r->o->dump;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return err_set(err, RLHF_EIO, "%s: cannot create the folder: %s", dir, strerror(errno));
    int64_t G = r->o->batch < r->ts.n_train ? r->o->batch : r->ts.n_train;
    int rows = 0;
    for (int64_t i = 0; i < G; i++) rows += r->set.g[r->order[i]].n;
    RmTrainer t;
    int rc = rm_trainer_create(&t, &r->m, rows, r->data.max_k, &r->o->loss, err);
    if (rc) return rc;
    RmStats st;
    model_zero_grad(&r->m);
    rc = rm_train_groups(&t, &r->data, r->order, G, 1.0f / (float)G, &st, err);
    int C = r->m.cfg.dim, T = t.rs.t;
    Config *c = &r->m.cfg;
    char path[1200];
    snprintf(path, sizeof path, "%s/model.bin", dir);
    if (!rc) rc = model_save_llama2c(path, &r->m, err);
    float *heads = calloc(2 * (size_t)(C + 1), sizeof *heads);
    float *outv = malloc(sizeof(float) * (size_t)(rows + 1));
    StrBuf txt = {0}, meta = {0};
    if (!rc && (!heads || !outv)) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    if (!rc) {
        memcpy(heads, r->m.w.reward, sizeof(float) * (size_t)(C + 1));
        for (int b = 0; b < rows; b++) outv[b] = t.r[b];
        outv[rows] = (float)st.loss;
        sb_printf(&txt, "center %.9g\n", r->o->loss.center);
        for (int64_t i = 0; i < G; i++) {
            const PrefGroup *g = &r->set.g[r->order[i]];
            for (int k = 0; k < g->n; k++) sb_printf(&txt, "%d%c", g->rank[k], k + 1 < g->n ? ' ' : '\n');
        }
        sb_puts(&txt, "lens");
        for (int b = 0; b < rows; b++) sb_printf(&txt, " %d", t.lens[b]);
        sb_puts(&txt, "\n");
        sb_printf(&meta, "%d %d %d %d %d %d %d %d %d %d\n", c->dim, c->hidden_dim, c->n_layers,
                  c->n_heads, c->n_kv_heads, c->vocab_size, c->seq_len, c->shared_classifier, rows, T);
        rc = write_file(dir, "heads.bin", heads, sizeof(float) * 2 * (size_t)(C + 1), err);
    }
    if (!rc) rc = write_file(dir, "inputs.bin", t.tokens, sizeof(int) * (size_t)rows * T, err);
    if (!rc) rc = write_file(dir, "rm_out.bin", outv, sizeof(float) * (size_t)(rows + 1), err);
    if (!rc) rc = write_file(dir, "grads.bin", r->m.grads, sizeof(float) * r->m.n_params, err);
    if (!rc) rc = write_file(dir, "rm.txt", txt.s, txt.len, err);
    if (!rc) rc = write_file(dir, "meta.txt", meta.s, meta.len, err);
    if (!rc) printf("wrote %s: %lld groups, %d rows of %d tokens, loss %.6f\n", dir, (long long)G, rows, T, st.loss);
    sb_free(&txt), sb_free(&meta);
    free(heads), free(outv);
    rm_trainer_free(&t);
    return rc;
}

static int exec_train_rm(int argc, char **argv) {
    Opts o;
    memset(&o, 0, sizeof o);
    int rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    Err err = {0};
    Run r;
    memset(&r, 0, sizeof r);
    r.o = &o;
    const char *dbpath = cli_db_path(o.dbflag);
    if (!dbpath && !o.data)
        return cli_usage_error(E, "no project: give --db PATH (or $RLHF_DB) or --data FILE");
    if (o.threads) openblas_set_num_threads((int)o.threads);
    if (dist_rank() == 0) atomic_remove_stale(o.out);
    int exists = access(o.out, F_OK) == 0;
    if (o.dump) exists = 0, o.resume = 0;
    if (exists && !o.resume && !o.force) {
        fprintf(stderr, "rlhf train-rm: %s exists; pass --resume to continue it or --force to start over\n", o.out);
        return EXIT_FAIL;
    }
    if (o.dump && dist_size() > 1) {
        rc = err_set(&err, RLHF_EINVAL, "--dump runs on one process (not under mpirun)");
        goto fail;
    }
    /* under MPI every rank reads the project to build the same data; rank 0
     * alone writes it (and the checkpoint) */
    if (dbpath && (rc = db_open(dbpath, dist_rank() ? DB_OPEN_READONLY : DB_OPEN_EXISTING, &r.db, &err)))
        goto fail;
    if ((rc = load_init(&r, &err))) goto fail;
    int resumed = o.resume && exists;
    if ((rc = resumed ? resume(&r, &err) : start_fresh(&r, &err))) goto fail;
    if ((rc = model_grads_alloc(&r.m, &err))) goto fail;
    if ((rc = load_data(&r, &err))) goto fail;
    if ((rc = make_order(&r, &err))) goto fail;
    if (dist_rank() != 0 && r.db) {
        db_close(r.db);
        r.db = NULL;
    }
    char sha[65];
    data_sha(&r, sha);
    if (resumed && strcmp(sha, r.ts.data_sha) != 0) {
        rc = err_set(&err, RLHF_EINVAL,
                     "%s: the rankings, the split or the template changed since this checkpoint; "
                     "start over with --force",
                     o.out);
        goto fail;
    }
    memcpy(r.ts.data_sha, sha, sizeof sha);
    if (resumed && (r.ts.batch != (uint32_t)o.batch || r.ts.seed != o.seed)) {
        rc = err_set(&err, RLHF_EINVAL,
                     "%s was trained with --batch %u --seed %lld; resume with the same (or start "
                     "over with --force)",
                     o.out, r.ts.batch, (long long)r.ts.seed);
        goto fail;
    }
    r.ts.seed = o.seed;
    if (resumed && r.ts.norm_done && r.ts.step < r.ts.steps) {
        rm_normalise(&r.m, -r.ts.norm_mean); /* train on: the shift is set again at the end */
        r.ts.norm_done = 0;
    }
    if (o.dump) {
        rc = dump_step(&r, &err);
        run_free(&r);
        return rc ? cli_fail(E, &err) : EXIT_OK;
    }
    r.opt.weight_decay = (float)o.wd;
    r.ts.batch = (uint32_t)o.batch;
    if ((rc = rm_trainer_create(&r.tr, &r.m, (int)o.micro, r.data.max_k, &o.loss, &err))) goto fail;
    long warmup = o.warmup >= 0 ? o.warmup : r.ts.steps / 10;
    long eval_every = o.eval_every ? o.eval_every : (r.ts.steps / 5 > 0 ? r.ts.steps / 5 : 1);
    long save_every = o.save_every ? o.save_every : eval_every;
    if (r.db && !(resumed && r.ts.run_id > 0)) {
        char cj[1536], cfgj[512];
        model_config_json(&r.m.cfg, cfgj, sizeof cfgj);
        snprintf(cj, sizeof cj,
                 "{\"model\":%s,\"init\":\"%s\",\"data\":\"%s\",\"groups\":%d,\"val_frac\":%g,"
                 "\"epochs\":%ld,\"batch\":%ld,\"lr\":%g,\"min_lr\":%g,\"warmup\":%ld,"
                 "\"weight_decay\":%g,\"clip\":%g,\"margin\":%g,\"center\":%g,\"seed\":%ld}",
                 cfgj, path_base(o.init), o.data ? path_base(o.data) : "store", r.set.n,
                 o.load.val_frac, o.epochs, o.batch, o.lr, o.min_lr, warmup, o.wd, o.clip,
                 o.loss.margin, o.loss.center, o.seed);
        if ((rc = db_run_start(r.db, "rm", cj, r.init_id, &r.ts.run_id, &err))) goto fail;
    } else if (r.db && (rc = db_run_resumed(r.db, r.ts.run_id, &err)))
        goto fail;
    int64_t pairs = 0;
    for (int g = 0; g < r.set.n; g++)
        for (int i = 0; i < r.set.g[g].n; i++)
            for (int j = i + 1; j < r.set.g[g].n; j++)
                pairs += r.set.g[g].rank[i] != r.set.g[g].rank[j];
    if (dist_rank() == 0) {
    fprintf(stderr,
            "train-rm: %d ranked prompts from %s (%lld pairs; %lld ties and %lld rankings without "
            "an order left out): %lld for training, %lld held out (--val-frac %g)\n",
            r.set.n, o.data ? o.data : "the store", (long long)pairs, (long long)r.set.ties_dropped,
            (long long)r.set.skipped, (long long)r.ts.n_train, (long long)r.n_val, o.load.val_frac);
    if (r.data.cut)
        fprintf(stderr, "train-rm: %lld of %lld answers had their prompt cut from the left to fit "
                        "the context of %d tokens%s\n",
                (long long)r.data.cut, (long long)r.data.n_ex, r.m.cfg.seq_len,
                r.data.cut_answer ? "" : " (every answer kept whole)");
    if (r.data.cut_answer)
        fprintf(stderr, "train-rm: %lld answers alone exceed the context and lost their end\n",
                (long long)r.data.cut_answer);
    fprintf(stderr, "train-rm: %ld steps of %ld prompts (%ld epoch%s), %zu parameters%s\n",
            (long)r.ts.steps, o.batch, o.epochs, o.epochs > 1 ? "s" : "", r.m.n_params,
            resumed ? "; resumed" : "");
    if (resumed) fprintf(stderr, "train-rm: resumed %s at step %lld\n", o.out, (long long)r.ts.step);
    }
    sys_catch_interrupts();
    Progress pg;
    progress_start(&pg, "train-rm", "steps", r.ts.steps, 0);
    if (dist_rank() != 0) pg.enabled = 0;
    RmStats st = {0};
    st.loss = NAN;
    double val = r.ts.last_val, t0 = now_seconds();
    int64_t cmp0 = 0, cmp = 0, step0 = r.ts.step;
    int64_t total = r.ts.n_train * o.epochs;
    char extra[160];
    int stopped = 0;
    while (r.ts.step < r.ts.steps && !stopped) {
        stopped = sys_interrupted();
        if (dist_size() == 1 && stopped) break;
        int64_t a = r.ts.step * o.batch, b = a + o.batch < total ? a + o.batch : total;
        float lr = lr_schedule(r.ts.step, warmup, r.ts.steps, (float)o.lr, (float)o.min_lr);
        model_zero_grad(&r.m);
        if ((rc = rm_train_groups(&r.tr, &r.data, r.order + a, b - a, 1.0f / (float)(b - a), &st, &err)))
            goto fail;
        double gn = model_grad_clip(&r.m, o.clip);
        adamw_step(&r.opt, &r.m, lr);
        if (!isfinite(st.loss) && st.groups) {
            rc = err_set(&err, RLHF_EINVAL, "loss became %g at step %lld; try a lower --lr", st.loss,
                         (long long)r.ts.step + 1);
            goto fail;
        }
        r.ts.step++;
        if (dist_stop_together(&stopped)) {
            rc = err_set(&err, RLHF_EIO, "MPI all-reduce failed");
            goto fail;
        }
        cmp += st.pairs;
        metric(&r, "train_loss", st.loss);
        metric(&r, "train_accuracy", st.accuracy);
        metric(&r, "reward_mean", st.r_mean);
        metric(&r, "reward_std", st.r_std);
        metric(&r, "reward_margin", st.margin);
        metric(&r, "lr", lr);
        metric(&r, "grad_norm", gn);
        if (r.ts.step % eval_every == 0 || r.ts.step == r.ts.steps) {
            double cps = (double)(cmp - cmp0) / (now_seconds() - t0 + 1e-9);
            metric(&r, "comparisons_per_s", cps);
            if ((rc = evaluate(&r, &val, &err))) goto fail;
            r.ts.last_val = val;
            if (!pg.enabled && dist_rank() == 0)
                fprintf(stderr, "step %lld/%lld: loss %.4f, accuracy %.3f, held-out accuracy %.3f, "
                                "%.0f comparisons/s\n",
                        (long long)r.ts.step, (long long)r.ts.steps, st.loss, st.accuracy, val, cps);
        }
        if (r.ts.step % save_every == 0 || r.ts.step == r.ts.steps)
            if ((rc = save(&r, r.ts.step == r.ts.steps, &err))) goto fail;
        snprintf(extra, sizeof extra, "loss %.4f  acc %.2f  val %.3f  lr %.1e", st.loss, st.accuracy,
                 val, lr);
        progress_update(&pg, r.ts.step, extra);
    }
    progress_finish(&pg, NULL);
    stopped = stopped || sys_interrupted();
    if (stopped || r.ts.step == 0 || (r.ts.step % save_every && r.ts.step != r.ts.steps))
        if ((rc = save(&r, 1, &err))) goto fail;
    int fresh_end = r.ts.step > step0 || !r.ts.norm_done;
    if (dist_rank() != 0) { /* the rest (normalisation, the last save) is rank 0's */
        run_free(&r);
        return stopped ? EXIT_FAIL : EXIT_OK;
    }
    if (!stopped && !r.ts.norm_done) {
        rc = normalise(&r, &err);
        if (rc == RLHF_EINTR) stopped = 1, rc = RLHF_OK;
        if (rc) goto fail;
    }
    if (stopped) {
        if (r.db) {
            Err e2 = {0};
            db_run_finish(r.db, r.ts.run_id, "interrupted", 0, "interrupted", &e2);
        }
        fprintf(stderr, "train-rm: interrupted at step %lld%s; checkpoint saved to %s (rerun with --resume)\n",
                (long long)r.ts.step, r.ts.step == r.ts.steps ? " (normalising)" : "", o.out);
        run_free(&r);
        return EXIT_FAIL;
    }
    if (r.db) {
        char note[160];
        char acc[64] = "no held-out prompts"; /* not "nan": nothing was measured */
        if (r.n_val > 0 && !isnan(val)) snprintf(acc, sizeof acc, "held-out accuracy %.4f", val);
        snprintf(note, sizeof note, "step %lld, %s, bias %.4f", (long long)r.ts.step, acc,
                 r.m.w.reward[r.m.cfg.dim]);
        if ((rc = cli_register_checkpoint(r.db, o.out, o.name, "rm", r.init_id, &r.m.cfg, r.template,
                                          r.ts.run_id, "done", note, NULL, &err)))
            goto fail;
    }
    if (!fresh_end)
        printf("already trained %lld steps: held-out accuracy %.4f; %s is up to date\n",
               (long long)r.ts.step, val, o.out);
    else if (r.ts.step == step0) /* resumed into the normalisation: no step ran, no train loss */
        printf("trained %lld steps: held-out accuracy %.4f over %lld prompts; reward bias %.4f; wrote %s\n",
               (long long)r.ts.step, val, (long long)r.n_val, r.m.w.reward[r.m.cfg.dim], o.out);
    else
        printf("trained %lld steps: train loss %.4f, held-out accuracy %.4f over %lld prompts; "
               "reward bias %.4f; wrote %s\n",
               (long long)r.ts.step, st.loss, val, (long long)r.n_val, r.m.w.reward[r.m.cfg.dim], o.out);
    run_free(&r);
    return EXIT_OK;
fail:
    if (r.db && r.ts.run_id > 0) {
        Err e2 = {0};
        db_run_finish(r.db, r.ts.run_id, "failed", 0, err.msg, &e2);
    }
    run_free(&r);
    return cli_fail(E, &err);
}
