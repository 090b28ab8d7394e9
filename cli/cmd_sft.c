/* rlhf sft: supervised fine-tuning on prompt → answer demonstrations (a JSONL
 * file or the store), loss on the answer tokens only, held-out loss by prompt
 * hash, resumable checkpoints; recorded as a run and registered as kind
 * "sft" with the init model as its parent. The training is rl/sft.h's. */
#include "cli/cli.h"
#include "db/registry.h"
#include "model/checkpoint.h"
#include "model/dist.h"
#include "rl/sft.h"
#include "cli/train_cmd.h"
#include "rl/trainer.h"
#include "util/progress.h"
#include "util/text.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int exec_sft(int argc, char **argv);

const struct cmd_entry cmd_sft_entry = {
    "sft", "--init CKPT --data FILE|store --out CKPT [--epochs N] [--resume]",
    "supervised fine-tuning on prompt→answer pairs (loss on the answer only), resumably",
    "  --init CKPT       the model to start from (base or earlier SFT; not a reward model)\n"
    "  --data FILE|store JSONL {\"prompt\",\"completion\"} or {\"messages\":[...]}; `store`: the\n"
    "                    top-ranked candidate of each ranked prompt in --db\n"
    "  --from-model NAME with --data store: every candidate of this model instead (e.g.\n"
    "                    demonstrations brought in with `rlhf candidates import`)\n"
    "  --split S         with --data store: only prompts of this split\n"
    "  --labeler NAME    with --data store: only this labeler's rankings\n"
    "  --epochs N        passes over the training pairs (default 3)\n"
    "  --batch B         pairs per micro-batch (default 8)\n"
    "  --lr X            peak learning rate (default 3e-4)\n" TRAIN_CMD_HELP,
    exec_sft};

static const struct cmd_entry *E = &cmd_sft_entry;
#define SFT_MAGIC "RL-SFT\0\0"

typedef struct Opts {
    TrainOpts t;
    const char *init, *from_model, *split, *labeler;
} Opts;

static int parse(int argc, char **argv, Opts *o) {
    static const struct option opts[] = {TRAIN_CMD_OPTIONS,
                                         {"init", required_argument, NULL, 'i'},
                                         {"from-model", required_argument, NULL, 'F'},
                                         {"split", required_argument, NULL, 'p'},
                                         {"labeler", required_argument, NULL, 'B'},
                                         CLI_OPT_END};
    train_opts_init(&o->t, 3, 3e-4);
    int c, rc;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if ((rc = train_opts_take(E, &o->t, c, optarg)) >= 0) {
            if (rc) return rc;
            continue;
        }
        switch (c) {
        case 'i':
            o->init = optarg;
            break;
        case 'F':
            o->from_model = optarg;
            break;
        case 'p':
            o->split = optarg;
            break;
        case 'B':
            o->labeler = optarg;
            break;
        case 'h':
            return cli_help(E);
        default:
            return cli_bad_option(E, argv, c);
        }
    }
    if (optind < argc) return cli_usage_error(E, "unexpected argument '%s'", argv[optind]);
    if ((rc = train_opts_finish(E, &o->t, o->init, "--init")) >= 0) return rc;
    if (strcmp(o->t.data, "store") && (o->from_model || o->split || o->labeler))
        return cli_usage_error(E, "--from-model, --split and --labeler go with --data store");
    return -1;
}

typedef struct Run {
    const Opts *o;
    TrainCmd c;
    SftTrainer tr;
    SftSet train, val;
    int *perm, *idx;
    int64_t per_step, tok0;
    double t0, tps, val_loss;
    float lr;
} Run;

static int load_data(Run *r, const Tokenizer *tok, Err *err) {
    const Opts *o = r->o;
    SftData d = {0};
    int rc;
    if (!strcmp(o->t.data, "store")) {
        if (!r->c.db)
            return err_set(err, RLHF_EINVAL, "--data store needs a project (--db or $RLHF_DB)");
        SftStoreOptions so = {db_ranking_filter_default(), o->from_model};
        so.filter.split = o->split;
        so.filter.labeler = o->labeler;
        rc = sft_data_load_store(r->c.db, &so, &d, err);
    } else {
        rc = sft_data_load_file(o->t.data, r->c.template, &d, err);
    }
    if (!rc && d.n == 0)
        rc = err_set(err, RLHF_EINVAL, "%s: no prompt→answer pairs found%s", o->t.data,
                     strcmp(o->t.data, "store") ? ""
                     : o->from_model            ? " (the model has no candidates)"
                                                : " (no ranked prompt with one clear best answer)");
    if (!rc)
        rc = sft_encode(&d, tok, r->c.template, r->c.m.cfg.seq_len, o->t.val_frac, &r->train,
                        &r->val, err);
    if (!rc && r->train.n == 0)
        rc = err_set(err, RLHF_EINVAL,
                     "%s: all %d pairs fell in the held-out share; lower --val-frac", o->t.data,
                     d.n);
    if (!rc && dist_rank() == 0)
        fprintf(stderr,
                "sft: %d pairs (%d training, %d held out, %lld skipped), %lld answer tokens; %lld "
                "cut to fit %d tokens\n",
                d.n, r->train.n, r->val.n, (long long)d.skipped, (long long)r->train.n_tokens,
                (long long)(r->train.cut + r->val.cut), r->c.m.cfg.seq_len);
    sft_data_free(&d);
    return rc;
}

static int step(TrainCmd *c, float lr, Err *err) {
    Run *r = c->ctx;
    int n = rl_batch_at(r->train.n, (int)r->per_step, r->train.lens, r->o->t.group ? 50 : 0,
                        c->st.seed, c->st.step, r->perm, r->idx);
    double gn;
    int64_t nt;
    int rc = sft_step(&r->tr, &r->train, r->idx, n, lr, &c->loss, &gn, &nt, err);
    if (rc) return rc;
    c->st.tokens_seen += nt;
    r->lr = lr;
    r->tps = (double)(c->st.tokens_seen - r->tok0) / (now_seconds() - r->t0 + 1e-9);
    db_metricbuf_add(&c->metrics, c->st.step + 1, "train_loss", c->loss);
    db_metricbuf_add(&c->metrics, c->st.step + 1, "grad_norm", gn);
    return RLHF_OK;
}

static int eval(TrainCmd *c, Err *err) {
    Run *r = c->ctx;
    db_metricbuf_add(&c->metrics, c->st.step, "answer_tokens_per_s", r->tps);
    if (!r->val.n) return RLHF_OK;
    int rc = sft_eval(&r->tr, &r->val, &r->val_loss, err);
    if (rc) return rc;
    c->st.last_val = r->val_loss;
    db_metricbuf_add(&c->metrics, c->st.step, "val_loss", r->val_loss);
    return RLHF_OK;
}

static void status(TrainCmd *c, char *buf, int n, int line) {
    Run *r = c->ctx;
    if (line)
        snprintf(buf, (size_t)n, "loss %.4f, val loss %.4f, lr %.2e, %.0f answer tokens/s", c->loss,
                 r->val_loss, r->lr, r->tps);
    else
        snprintf(buf, (size_t)n, "loss %.4f  val %.4f  lr %.1e  %.0f tok/s", c->loss, r->val_loss,
                 r->lr, r->tps);
}

static void run_free(Run *r) {
    sft_trainer_free(&r->tr);
    sft_set_free(&r->train);
    sft_set_free(&r->val);
    free(r->perm);
    free(r->idx);
}

static int exec_sft(int argc, char **argv) {
    Opts o;
    memset(&o, 0, sizeof o);
    int rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    Err err = {0};
    Run r;
    memset(&r, 0, sizeof r);
    r.o = &o;
    TrainCmd *c = &r.c;
    train_cmd_init(c, E, &o.t, "sft", &r);
    c->step = step, c->eval = eval, c->status = status;
    Tokenizer *tok = NULL;
    if ((rc = train_cmd_check_out(c, o.t.resume, o.t.force)) >= 0) return rc;
    int64_t parent = 0;
    if ((rc = train_cmd_open(c, &o.t, o.init, &tok, &parent, &err))) goto fail;
    if ((rc = load_data(&r, tok, &err))) goto fail;
    char settings[256], sha[65];
    snprintf(settings, sizeof settings, "sft batch %ld accum %ld seed %ld group %d", o.t.batch,
             o.t.accum, o.t.seed, o.t.group);
    if ((rc = train_cmd_data_sha(o.init, r.train.ex, r.train.n, settings, sha, &err))) goto fail;
    if ((rc = train_cmd_state(c, o.t.resume, SFT_MAGIC, sha,
                              "the data, template, tokenizer, --batch, --accum or --seed",
                              (uint64_t)o.t.seed, parent, r.train.n, &err)))
        goto fail;
    r.per_step = train_cmd_plan(c, &o.t, r.train.n);
    r.val_loss = c->st.last_val;
    if ((rc = sft_trainer_init(&r.tr, &c->m, &c->opt, (int)o.t.batch, o.t.clip, &err))) goto fail;
    char cj[1024], cfgj[512];
    model_config_json(&c->m.cfg, cfgj, sizeof cfgj);
    snprintf(cj, sizeof cj,
             "{\"model\":%s,\"init\":\"%s\",\"data\":\"%s\",\"steps\":%lld,\"batch\":%ld,"
             "\"accum\":%ld,\"lr\":%g,\"min_lr\":%g,\"warmup\":%ld,\"weight_decay\":%g,"
             "\"clip\":%g,\"seed\":%ld,\"pairs\":%d,\"val_pairs\":%d,\"group_by_length\":%s}",
             cfgj, path_base(o.init), path_base(o.t.data), (long long)c->total, o.t.batch,
             o.t.accum, o.t.lr, o.t.min_lr, c->warmup, o.t.wd, o.t.clip, o.t.seed, r.train.n,
             r.val.n, o.t.group ? "true" : "false");
    if ((rc = train_cmd_run_start(c, "sft", cj, &err))) goto fail;
    r.perm = malloc(sizeof(int) * (size_t)r.train.n);
    r.idx = malloc(sizeof(int) * (size_t)r.per_step);
    if (!r.perm || !r.idx) {
        rc = err_set(&err, RLHF_ENOMEM, "out of memory");
        goto fail;
    }
    r.t0 = now_seconds(), r.tok0 = c->st.tokens_seen;
    int stopped;
    if ((rc = train_cmd_loop(c, &stopped, &err))) goto fail;
    char note[128];
    if (isnan(r.val_loss)) snprintf(note, sizeof note, "step %lld, no held-out examples", (long long)c->st.step);
    else snprintf(note, sizeof note, "step %lld, val loss %.4f", (long long)c->st.step, r.val_loss);
    if ((rc = train_cmd_register(c, stopped, note, &err))) goto fail;
    if (stopped)
        ;
    else if (isnan(c->loss))
        printf("already trained %lld steps: val loss %.4f; %s is up to date\n",
               (long long)c->st.step, r.val_loss, o.t.out);
    else if (r.val.n)
        printf("trained %lld steps: train loss %.4f, val loss %.4f; wrote %s\n",
               (long long)c->st.step, c->loss, r.val_loss, o.t.out);
    else
        printf("trained %lld steps: train loss %.4f (nothing held out); wrote %s\n",
               (long long)c->st.step, c->loss, o.t.out);
    tok_free(tok);
    run_free(&r);
    train_cmd_free(c);
    return stopped ? EXIT_FAIL : EXIT_OK;
fail:
    tok_free(tok);
    run_free(&r);
    return train_cmd_fail(c, &err);
}
