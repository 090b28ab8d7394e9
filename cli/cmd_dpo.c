/* rlhf dpo: direct preference optimisation of a policy on ranked groups (the
 * store, with export's filters) or a pairs / HH JSONL file. Reference
 * log-probabilities come from the starting policy once and ride in the
 * checkpoint; TRL's metrics are logged; recorded as a run and registered as
 * kind "policy" with the starting model as its parent. Training: rl/dpo.h. */
#include "cli/cli.h"
#include "cli/filter.h"
#include "db/registry.h"
#include "model/checkpoint.h"
#include "model/dist.h"
#include "rl/dpo.h"
#include "cli/train_cmd.h"
#include "rl/trainer.h"
#include "util/progress.h"
#include "rm/prefs.h"
#include "util/text.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int exec_dpo(int argc, char **argv);

const struct cmd_entry cmd_dpo_entry = {
    "dpo",
    "--policy CKPT --data store|FILE --out CKPT [--loss sigmoid|ipo|hinge] [--beta B] [--resume]",
    "direct preference optimisation of a policy on ranked answers, resumably",
    "  --policy CKPT     the policy to start from, also the frozen reference (an SFT model;\n"
    "                    not a reward model)\n"
    "  --data store|FILE `store`: every non-tie pair of the current rankings in --db;\n"
    "                    FILE: pairs ({\"prompt\",\"chosen\",\"rejected\"}) or HH JSONL\n"
    "  --min-agreement X with --data store: only prompts whose labelers agree this much\n"
    "  --loss L          sigmoid (default) | ipo | hinge\n"
    "  --beta B          strength of the pull to the reference (default 0.1)\n"
    "  --label-smoothing E  with sigmoid: the share of labels taken as flipped (default 0)\n"
    "  --epochs N        passes over the data (default 1)\n"
    "  --batch B         ranked groups (prompts) per micro-batch, each with all its pairs;\n"
    "                    a pairs file's records are groups of one (default 8)\n"
    "  --lr X            peak learning rate (default 1e-4)\n" TRAIN_CMD_HELP
    "the checkpoint keeps the reference log-probabilities, so --resume needs no reference.\n"
    "metrics in the store (TRL's names): loss, rewards/chosen, rewards/rejected,\n"
    "rewards/margins, rewards/accuracies, logps/chosen, logps/rejected; held out: eval/...\n"
    "with --data store, export's filters choose the rankings:\n" CLI_HELP_FILTER,
    exec_dpo};

static const struct cmd_entry *E = &cmd_dpo_entry;
#define DPO_MAGIC "RL-DPO\0\0"

typedef struct Opts {
    TrainOpts t;
    const char *policy;
    RankingFilter filter;
    int filtered;
    double beta, smoothing, min_agreement;
    int loss;
} Opts;

static int parse(int argc, char **argv, Opts *o) {
    static const struct option opts[] = {TRAIN_CMD_OPTIONS,
                                         {"policy", required_argument, NULL, 'P'},
                                         CLI_FILTER_OPTS,
                                         {"min-agreement", required_argument, NULL, 'M'},
                                         {"loss", required_argument, NULL, 'O'},
                                         {"beta", required_argument, NULL, 'Z'},
                                         {"label-smoothing", required_argument, NULL, 'm'},
                                         CLI_OPT_END};
    train_opts_init(&o->t, 1, 1e-4);
    o->beta = 0.1, o->min_agreement = -1;
    o->filter = db_ranking_filter_default();
    int c, rc;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if ((rc = train_opts_take(E, &o->t, c, optarg)) >= 0) {
            if (rc) return rc;
            continue;
        }
        if ((rc = cli_filter_opt(E, c, optarg, &o->filter)) == 1) {
            o->filtered = 1;
            continue;
        }
        if (rc) return rc;
        switch (c) {
        case 'P':
            o->policy = optarg;
            break;
        case 'M':
            if (cli_parse_double(E, "--min-agreement", optarg, -1, 1, &o->min_agreement))
                return EXIT_USAGE;
            break;
        case 'O':
            if ((o->loss = dpo_loss_type(optarg)) < 0)
                return cli_usage_error(E, "--loss: unknown loss '%s' (sigmoid, ipo or hinge)",
                                       optarg);
            break;
        case 'Z':
            if (cli_parse_double(E, "--beta", optarg, 1e-6, 1e6, &o->beta)) return EXIT_USAGE;
            break;
        case 'm':
            if (cli_parse_double(E, "--label-smoothing", optarg, 0, 0.5, &o->smoothing))
                return EXIT_USAGE;
            break;
        case 'h':
            return cli_help(E);
        default:
            return cli_bad_option(E, argv, c);
        }
    }
    if (optind < argc) return cli_usage_error(E, "unexpected argument '%s'", argv[optind]);
    if ((rc = train_opts_finish(E, &o->t, o->policy, "--policy")) >= 0) return rc;
    if (strcmp(o->t.data, "store") && (o->filtered || o->min_agreement >= 0))
        return cli_usage_error(E, "the ranking filters and --min-agreement go with --data store");
    if (o->smoothing > 0 && o->loss != DPO_SIGMOID)
        return cli_usage_error(E, "--label-smoothing goes with --loss sigmoid");
    return -1;
}

typedef struct Run {
    const Opts *o;
    TrainCmd c;
    DpoTrainer tr;
    DpoSet train, val;
    int *perm, *idx;
    int64_t per_step, pairs_done;
    double t0, pps;
    DpoStats s, vs;
} Run;

static int load_data(Run *r, const Tokenizer *tok, Err *err) {
    const Opts *o = r->o;
    PrefSet ps = {0};
    int rc;
    if (!strcmp(o->t.data, "store")) {
        if (!r->c.db)
            return err_set(err, RLHF_EINVAL, "--data store needs a project (--db or $RLHF_DB)");
        PrefLoadOptions po = {o->filter, o->min_agreement, o->t.val_frac};
        rc = prefs_load_store(r->c.db, &po, &ps, err);
    } else {
        rc = prefs_load_file(o->t.data, o->t.val_frac, &ps, err);
    }
    if (!rc) rc = dpo_build(&ps, tok, r->c.template, r->c.m.cfg.seq_len, &r->train, &r->val, err);
    if (!rc && r->train.n_pairs == 0 && r->val.n_pairs == 0 && ps.ties_dropped > 0)
        rc = err_set(err, RLHF_EINVAL,
                     "%s: every pair was a tie (%lld tied pairs in %d groups); DPO learns only from "
                     "a preferred and a dispreferred answer",
                     o->t.data, (long long)ps.ties_dropped, ps.n);
    else if (!rc && r->train.n_pairs == 0)
        rc = err_set(err, RLHF_EINVAL,
                     "%s: no preference pairs to train on (%d groups, %d held out)", o->t.data,
                     ps.n, r->val.n_pairs);
    if (!rc && dist_rank() == 0)
        fprintf(stderr,
                "dpo: %d groups, %d pairs (%d held out), %lld ties dropped, %lld groups skipped; "
                "%lld answers cut to fit %d tokens\n",
                ps.n, r->train.n_pairs + r->val.n_pairs, r->val.n_pairs, (long long)ps.ties_dropped,
                (long long)ps.skipped, (long long)(r->train.cut + r->val.cut), r->c.m.cfg.seq_len);
    prefs_free(&ps);
    return rc;
}

static void log_stats(Run *r, int64_t step, const DpoStats *s, int val) {
    /* TRL's names; held-out ones under eval/ */
    static const char *const tn[] = {"loss",
                                     "rewards/chosen",
                                     "rewards/rejected",
                                     "rewards/margins",
                                     "rewards/accuracies",
                                     "logps/chosen",
                                     "logps/rejected"};
    static const char *const vn[] = {"eval/loss",
                                     "eval/rewards/chosen",
                                     "eval/rewards/rejected",
                                     "eval/rewards/margins",
                                     "eval/rewards/accuracies",
                                     "eval/logps/chosen",
                                     "eval/logps/rejected"};
    double v[7] = {s->loss,     s->chosen,      s->rejected,     s->margin,
                   s->accuracy, s->logp_chosen, s->logp_rejected};
    for (int i = 0; i < 7; i++)
        db_metricbuf_add(&r->c.metrics, step, val ? vn[i] : tn[i], v[i]);
}

static int step(TrainCmd *c, float lr, Err *err) {
    Run *r = c->ctx;
    int n = rl_batch_at(r->train.n_groups, (int)r->per_step, r->train.lens, r->o->t.group ? 50 : 0,
                        c->st.seed, c->st.step, r->perm, r->idx);
    double gn;
    int rc = dpo_step(&r->tr, &r->train, r->idx, n, lr, &r->s, &gn, err);
    if (rc) return rc;
    c->loss = r->s.loss;
    r->pairs_done += r->s.n;
    r->pps = (double)r->pairs_done / (now_seconds() - r->t0 + 1e-9);
    log_stats(r, c->st.step + 1, &r->s, 0);
    db_metricbuf_add(&c->metrics, c->st.step + 1, "grad_norm", gn);
    return RLHF_OK;
}

static int eval(TrainCmd *c, Err *err) {
    Run *r = c->ctx;
    db_metricbuf_add(&c->metrics, c->st.step, "pairs_per_s", r->pps);
    if (!r->val.n_pairs) return RLHF_OK;
    int rc = dpo_eval(&r->tr, &r->val, &r->vs, err);
    if (rc) return rc;
    log_stats(r, c->st.step, &r->vs, 1);
    c->st.last_val = r->vs.loss;
    return RLHF_OK;
}

static void status(TrainCmd *c, char *buf, int n, int line) {
    Run *r = c->ctx;
    const DpoStats *s = &r->s, *v = &r->vs;
    if (line)
        snprintf(buf, (size_t)n,
                 "loss %.4f, margin %.3f, accuracy %.2f; held out: loss %.4f, margin "
                 "%.3f, accuracy %.2f; %.1f pairs/s",
                 s->loss, s->margin, s->accuracy, v->loss, v->margin, v->accuracy, r->pps);
    else
        snprintf(buf, (size_t)n, "loss %.4f  margin %.3f  acc %.2f  %.1f pairs/s", s->loss,
                 s->margin, s->accuracy, r->pps);
}

static void run_free(Run *r) {
    dpo_trainer_free(&r->tr);
    dpo_set_free(&r->train);
    dpo_set_free(&r->val);
    free(r->perm);
    free(r->idx);
}

/* The reference log-probabilities: computed now for a fresh run (the policy
 * is the reference), read back from the checkpoint's payload on a resume. */
static int reference(Run *r, Err *err) {
    TrainCmd *c = &r->c;
    size_t nt = (size_t)r->train.n_ex, nv = (size_t)r->val.n_ex, bytes = sizeof(double) * (nt + nv);
    if (c->resumed) {
        if ((size_t)c->st.payload != bytes)
            return err_set(err, RLHF_EFORMAT,
                           "%s: its reference log-probabilities are for %zu answers, not %zu",
                           c->out, (size_t)c->st.payload / sizeof(double), nt + nv);
        r->train.ref = malloc(sizeof(double) * (nt + 1));
        r->val.ref = malloc(sizeof(double) * (nv + 1));
        if (!r->train.ref || !r->val.ref) return err_set(err, RLHF_ENOMEM, "out of memory");
        memcpy(r->train.ref, c->payload, sizeof(double) * nt);
        memcpy(r->val.ref, (double *)c->payload + nt, sizeof(double) * nv);
        return RLHF_OK;
    }
    if (dist_rank() == 0) fprintf(stderr, "dpo: reference log-probabilities of %zu answers...\n", nt + nv);
    int rc = dpo_reference(&r->tr, &r->train, err);
    if (!rc) rc = dpo_reference(&r->tr, &r->val, err);
    if (rc) return rc;
    double *p = malloc(bytes + sizeof(double));
    if (!p) return err_set(err, RLHF_ENOMEM, "out of memory");
    memcpy(p, r->train.ref, sizeof(double) * nt);
    memcpy(p + nt, r->val.ref, sizeof(double) * nv);
    c->payload = p;
    c->st.payload = (int64_t)bytes;
    return RLHF_OK;
}

static int exec_dpo(int argc, char **argv) {
    Opts o;
    memset(&o, 0, sizeof o);
    int rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    Err err = {0};
    Run r;
    memset(&r, 0, sizeof r);
    r.o = &o;
    r.vs.loss = r.vs.margin = r.vs.accuracy = NAN;
    TrainCmd *c = &r.c;
    train_cmd_init(c, E, &o.t, "policy", &r);
    c->step = step, c->eval = eval, c->status = status;
    Tokenizer *tok = NULL;
    if ((rc = train_cmd_check_out(c, o.t.resume, o.t.force)) >= 0) return rc;
    int64_t parent = 0;
    if ((rc = train_cmd_open(c, &o.t, o.policy, &tok, &parent, &err))) goto fail;
    if ((rc = load_data(&r, tok, &err))) goto fail;
    char settings[256], sha[65];
    snprintf(settings, sizeof settings,
             "dpo %s beta %g smoothing %g batch %ld accum %ld seed %ld val %d group %d",
             dpo_loss_name(o.loss), o.beta, o.smoothing, o.t.batch, o.t.accum, o.t.seed, r.val.n_ex,
             o.t.group);
    if ((rc = train_cmd_data_sha(o.policy, r.train.ex, r.train.n_ex, settings, sha, &err)))
        goto fail;
    if ((rc = train_cmd_state(
             c, o.t.resume, DPO_MAGIC, sha,
             "the data, template, tokenizer, --loss, --beta, --batch, --accum or --seed",
             (uint64_t)o.t.seed, parent, r.train.n_groups, &err)))
        goto fail;
    r.per_step = train_cmd_plan(c, &o.t, r.train.n_groups);
    int max_k = r.train.max_k > r.val.max_k ? r.train.max_k : r.val.max_k;
    if ((rc = dpo_trainer_init(&r.tr, &c->m, &c->opt, (int)o.t.batch, max_k, o.loss, o.beta,
                               o.smoothing, o.t.clip, &err)) ||
        (rc = reference(&r, &err)))
        goto fail;
    char cj[1024], cfgj[512];
    model_config_json(&c->m.cfg, cfgj, sizeof cfgj);
    snprintf(cj, sizeof cj,
             "{\"model\":%s,\"policy\":\"%s\",\"data\":\"%s\",\"loss\":\"%s\",\"beta\":%g,"
             "\"label_smoothing\":%g,\"steps\":%lld,\"batch\":%ld,\"accum\":%ld,\"lr\":%g,"
             "\"min_lr\":%g,\"warmup\":%ld,\"weight_decay\":%g,\"clip\":%g,\"seed\":%ld,"
             "\"pairs\":%d,\"val_pairs\":%d}",
             cfgj, path_base(o.policy), path_base(o.t.data), dpo_loss_name(o.loss), o.beta,
             o.smoothing, (long long)c->total, o.t.batch, o.t.accum, o.t.lr, o.t.min_lr, c->warmup,
             o.t.wd, o.t.clip, o.t.seed, r.train.n_pairs, r.val.n_pairs);
    if ((rc = train_cmd_run_start(c, "dpo", cj, &err))) goto fail;
    r.perm = malloc(sizeof(int) * (size_t)r.train.n_groups);
    r.idx = malloc(sizeof(int) * (size_t)r.per_step);
    if (!r.perm || !r.idx) {
        rc = err_set(&err, RLHF_ENOMEM, "out of memory");
        goto fail;
    }
    r.t0 = now_seconds();
    int stopped;
    if ((rc = train_cmd_loop(c, &stopped, &err))) goto fail;
    char note[160];
    char held[48] = "no held-out pairs";
    if (r.val.n_pairs > 0 && !isnan(c->st.last_val)) snprintf(held, sizeof held, "held-out loss %.4f", c->st.last_val);
    snprintf(note, sizeof note, "step %lld, %s loss, beta %g; %s", (long long)c->st.step,
             dpo_loss_name(o.loss), o.beta, held);
    if ((rc = train_cmd_register(c, stopped, note, &err))) goto fail;
    if (stopped)
        ;
    else if (isnan(c->loss))
        printf("already trained %lld steps; %s is up to date\n", (long long)c->st.step, o.t.out);
    else
        printf("trained %lld steps: loss %.4f, margin %.3f, accuracy %.2f; held out: loss %.4f, "
               "margin %.3f, accuracy %.2f; wrote %s\n",
               (long long)c->st.step, r.s.loss, r.s.margin, r.s.accuracy, r.vs.loss, r.vs.margin,
               r.vs.accuracy, o.t.out);
    tok_free(tok);
    run_free(&r);
    train_cmd_free(c);
    return stopped ? EXIT_FAIL : EXIT_OK;
fail:
    tok_free(tok);
    run_free(&r);
    return train_cmd_fail(c, &err);
}
