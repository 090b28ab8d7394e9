/* rlhf dpo: direct preference optimisation of a policy on ranked groups (the
 * store, with export's filters) or a pairs / HH JSONL file. Reference
 * log-probabilities come from the starting policy once and ride in the
 * checkpoint; TRL's metrics are logged; recorded as a run and registered as
 * kind "policy" with the starting model as its parent. Training: rl/dpo.h. */
#include "cli/cli.h"
#include "db/registry.h"
#include "model/checkpoint.h"
#include "rl/dpo.h"
#include "rl/trainer.h"
#include "rm/prefs.h"
#include "util/progress.h"
#include "util/sys.h"
#include "util/text.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int exec_dpo(int argc, char **argv);

const struct cmd_entry cmd_dpo_entry = {
    "dpo",
    "--policy CKPT --data store|FILE --out CKPT [--loss sigmoid|ipo|hinge] [--beta B] [--resume]",
    "direct preference optimisation of a policy on ranked answers, resumably",
    "  --policy CKPT     the policy to start from, also the frozen reference (an SFT model;\n"
    "                    not a reward model)\n"
    "  --data store|FILE `store`: every non-tie pair of the current rankings in --db;\n"
    "                    FILE: pairs ({\"prompt\",\"chosen\",\"rejected\"}) or HH JSONL\n"
    "  --split S --labeler NAME   with --data store: only these rankings\n"
    "  --humans | --simulated     with --data store: only people's or simulated rankings\n"
    "  --min-agreement X with --data store: only prompts whose labelers agree this much\n"
    "  --loss L          sigmoid (default) | ipo | hinge\n"
    "  --beta B          strength of the pull to the reference (default 0.1)\n"
    "  --label-smoothing E  with sigmoid: the share of labels taken as flipped (default 0)\n"
    "  --tokenizer TOK   tokenizer.bin (default: the one CKPT carries)\n"
    "  --template T      chat template with {prompt} (default: the policy's in the store,\n"
    "                    else the gen.template setting, else \"Human: {prompt}\\nAssistant:\")\n"
    "  --out CKPT        checkpoint to write (with optimizer state and reference log-probs)\n"
    "  --epochs N        passes over the data (default 1)    --steps N   instead of --epochs\n"
    "  --batch B         ranked groups (prompts) per micro-batch, each with all its pairs;\n"
    "                    a pairs file's records are groups of one (default 8)\n"
    "  --accum K         micro-batches per step (default 1)\n"
    "  --lr X            peak learning rate (default 1e-4)  --min-lr X (default lr/10)\n"
    "  --warmup N        warm-up steps (default steps/20)   --weight-decay X (default 0)\n"
    "  --clip X          gradient clipping by global norm (default 1; 0: off)\n"
    "  --group-by-length batches of pairs of similar length (pads less; default off)\n"
    "  --val-frac F      share of prompts held out (by text hash; default 0.05)\n"
    "  --eval-every N    held-out metrics every N steps (default steps/10)\n"
    "  --save-every N    checkpoint every N steps (default: as --eval-every)\n"
    "  --resume          continue CKPT if it exists    --force   overwrite CKPT\n"
    "  --seed S          data order (default 1)        --threads N  BLAS threads\n"
    "  --name NAME       model name in the registry (default: CKPT's file name)\n" CLI_HELP_COMMON
    "metrics in the store (TRL's names): loss, rewards/chosen, rewards/rejected,\n"
    "rewards/margins, rewards/accuracies, logps/chosen, logps/rejected; held out: eval/...\n",
    exec_dpo};

static const struct cmd_entry *E = &cmd_dpo_entry;
#define DPO_MAGIC "RL-DPO\0\0"

typedef struct Opts {
    const char *policy, *data, *split, *labeler, *tok_path, *template, *out, *name, *dbflag;
    long epochs, steps, batch, accum, warmup, eval_every, save_every, seed, threads;
    double lr, min_lr, wd, clip, val_frac, beta, smoothing, min_agreement;
    int resume, force, loss, simulated, group;
} Opts;

static int parse(int argc, char **argv, Opts *o) {
    static const struct option opts[] = {
        CLI_OPT_DB, CLI_OPT_HELP,
        {"policy", required_argument, NULL, 'P'}, {"data", required_argument, NULL, 'd'},
        {"split", required_argument, NULL, 'p'}, {"labeler", required_argument, NULL, 'B'},
        {"humans", no_argument, NULL, 'H'}, {"simulated", no_argument, NULL, 'U'},
        {"min-agreement", required_argument, NULL, 'M'}, {"loss", required_argument, NULL, 'O'},
        {"beta", required_argument, NULL, 'Z'}, {"label-smoothing", required_argument, NULL, 'm'},
        {"tokenizer", required_argument, NULL, 'k'}, {"template", required_argument, NULL, 'T'},
        {"out", required_argument, NULL, 'o'}, {"epochs", required_argument, NULL, 'E'},
        {"steps", required_argument, NULL, 's'}, {"batch", required_argument, NULL, 'b'},
        {"accum", required_argument, NULL, 'a'}, {"lr", required_argument, NULL, 'l'},
        {"min-lr", required_argument, NULL, 'L'}, {"warmup", required_argument, NULL, 'w'},
        {"weight-decay", required_argument, NULL, 'W'}, {"clip", required_argument, NULL, 'g'},
        {"group-by-length", no_argument, NULL, 'G'}, {"val-frac", required_argument, NULL, 'v'}, {"eval-every", required_argument, NULL, 'e'},
        {"save-every", required_argument, NULL, 'S'}, {"resume", no_argument, NULL, 'r'},
        {"force", no_argument, NULL, 'f'}, {"seed", required_argument, NULL, 'x'},
        {"threads", required_argument, NULL, 't'}, {"name", required_argument, NULL, 'n'},
        CLI_OPT_END};
    o->epochs = 1, o->batch = 8, o->accum = 1, o->warmup = -1, o->seed = 1;
    o->lr = 1e-4, o->min_lr = -1, o->wd = 0, o->clip = 1, o->val_frac = 0.05;
    o->beta = 0.1, o->min_agreement = -1, o->simulated = -1;
    int c;
    while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        switch (c) {
        case 'D': o->dbflag = optarg; break;
        case 'P': o->policy = optarg; break;
        case 'd': o->data = optarg; break;
        case 'p': o->split = optarg; break;
        case 'B': o->labeler = optarg; break;
        case 'H': o->simulated = 0; break;
        case 'U': o->simulated = 1; break;
        case 'M': if (cli_parse_double(E, "--min-agreement", optarg, -1, 1, &o->min_agreement)) return EXIT_USAGE; break;
        case 'O':
            if ((o->loss = dpo_loss_type(optarg)) < 0)
                return cli_usage_error(E, "--loss: unknown loss '%s' (sigmoid, ipo or hinge)", optarg);
            break;
        case 'Z': if (cli_parse_double(E, "--beta", optarg, 1e-6, 1e6, &o->beta)) return EXIT_USAGE; break;
        case 'm': if (cli_parse_double(E, "--label-smoothing", optarg, 0, 0.5, &o->smoothing)) return EXIT_USAGE; break;
        case 'k': o->tok_path = optarg; break;
        case 'T': o->template = optarg; break;
        case 'o': o->out = optarg; break;
        case 'E': if (cli_parse_long(E, "--epochs", optarg, 1, 1 << 20, &o->epochs)) return EXIT_USAGE; break;
        case 's': if (cli_parse_long(E, "--steps", optarg, 1, 1L << 40, &o->steps)) return EXIT_USAGE; break;
        case 'b': if (cli_parse_long(E, "--batch", optarg, 1, 1024, &o->batch)) return EXIT_USAGE; break;
        case 'a': if (cli_parse_long(E, "--accum", optarg, 1, 4096, &o->accum)) return EXIT_USAGE; break;
        case 'l': if (cli_parse_double(E, "--lr", optarg, 0, 10, &o->lr)) return EXIT_USAGE; break;
        case 'L': if (cli_parse_double(E, "--min-lr", optarg, 0, 10, &o->min_lr)) return EXIT_USAGE; break;
        case 'w': if (cli_parse_long(E, "--warmup", optarg, 0, 1L << 40, &o->warmup)) return EXIT_USAGE; break;
        case 'W': if (cli_parse_double(E, "--weight-decay", optarg, 0, 10, &o->wd)) return EXIT_USAGE; break;
        case 'g': if (cli_parse_double(E, "--clip", optarg, 0, 1e9, &o->clip)) return EXIT_USAGE; break;
        case 'v': if (cli_parse_double(E, "--val-frac", optarg, 0, 0.5, &o->val_frac)) return EXIT_USAGE; break;
        case 'e': if (cli_parse_long(E, "--eval-every", optarg, 1, 1L << 40, &o->eval_every)) return EXIT_USAGE; break;
        case 'S': if (cli_parse_long(E, "--save-every", optarg, 1, 1L << 40, &o->save_every)) return EXIT_USAGE; break;
        case 'G': o->group = 1; break;
        case 'r': o->resume = 1; break;
        case 'f': o->force = 1; break;
        case 'x': if (cli_parse_long(E, "--seed", optarg, 0, LONG_MAX, &o->seed)) return EXIT_USAGE; break;
        case 't': if (cli_parse_long(E, "--threads", optarg, 1, 256, &o->threads)) return EXIT_USAGE; break;
        case 'n': o->name = optarg; break;
        case 'h': return cli_help(E);
        default: return cli_bad_option(E, argv, c);
        }
    }
    if (optind < argc) return cli_usage_error(E, "unexpected argument '%s'", argv[optind]);
    if (!o->policy) return cli_usage_error(E, "--policy CKPT is required");
    if (!o->data) return cli_usage_error(E, "--data store|FILE is required");
    if (!o->out) return cli_usage_error(E, "--out CKPT is required");
    int store = strcmp(o->data, "store") == 0;
    if (!store && (o->split || o->labeler || o->simulated >= 0 || o->min_agreement >= 0))
        return cli_usage_error(E, "--split, --labeler, --humans, --simulated and --min-agreement go with --data store");
    if (o->smoothing > 0 && o->loss != DPO_SIGMOID)
        return cli_usage_error(E, "--label-smoothing goes with --loss sigmoid");
    if (o->template && !strstr(o->template, "{prompt}"))
        return cli_usage_error(E, "--template: must contain {prompt}");
    if (o->resume && o->force) return cli_usage_error(E, "--resume and --force contradict each other");
    if (!strcmp(o->policy, o->out)) return cli_usage_error(E, "--out must differ from --policy");
    if (o->min_lr < 0) o->min_lr = o->lr / 10;
    return -1;
}

typedef struct Run {
    const Opts *o;
    Model m;
    AdamW opt;
    RlState st;
    DpoTrainer tr;
    DpoSet train, val;
    Db *db;
    MetricBuf metrics;
    char *template;
    double *ref; /* payload: train then val reference log-probabilities */
} Run;

static int save(Run *r, Err *err) {
    int rc = rl_ckpt_save(r->o->out, &r->m, &r->opt, &r->st, r->ref, err);
    if (!rc) rc = db_metricbuf_flush(r->db, r->st.run_id, &r->metrics, err);
    return rc;
}

static void run_free(Run *r) {
    dpo_trainer_free(&r->tr);
    dpo_set_free(&r->train);
    dpo_set_free(&r->val);
    db_metricbuf_free(&r->metrics);
    adamw_free(&r->opt);
    model_free(&r->m);
    free(r->template);
    free(r->ref);
    if (r->db) db_close(r->db);
}

static int load_data(Run *r, const Tokenizer *tok, Err *err) {
    const Opts *o = r->o;
    PrefSet ps = {0};
    int rc;
    if (!strcmp(o->data, "store")) {
        if (!r->db) return err_set(err, RLHF_EINVAL, "--data store needs a project (--db or $RLHF_DB)");
        PrefLoadOptions po = {db_ranking_filter_default(), o->min_agreement, o->val_frac};
        po.filter.split = o->split;
        po.filter.labeler = o->labeler;
        po.filter.simulated = o->simulated;
        rc = prefs_load_store(r->db, &po, &ps, err);
    } else {
        rc = prefs_load_file(o->data, o->val_frac, &ps, err);
    }
    if (!rc) rc = dpo_build(&ps, tok, r->template, r->m.cfg.seq_len, &r->train, &r->val, err);
    if (!rc && r->train.n_pairs == 0)
        rc = err_set(err, RLHF_EINVAL, "%s: no preference pairs to train on (%d groups, %d held out)",
                     o->data, ps.n, r->val.n_pairs);
    if (!rc)
        fprintf(stderr, "dpo: %d groups, %d pairs (%d held out), %lld ties dropped, %lld groups skipped; %lld answers cut to fit %d tokens\n",
                ps.n, r->train.n_pairs + r->val.n_pairs, r->val.n_pairs, (long long)ps.ties_dropped,
                (long long)ps.skipped, (long long)(r->train.cut + r->val.cut), r->m.cfg.seq_len);
    prefs_free(&ps);
    return rc;
}

static void log_stats(Run *r, int64_t step, const DpoStats *s, int val) {
    /* TRL's names; held-out ones under eval/ */
    static const char *const tn[] = {"loss", "rewards/chosen", "rewards/rejected", "rewards/margins",
                                     "rewards/accuracies", "logps/chosen", "logps/rejected"};
    static const char *const vn[] = {"eval/loss", "eval/rewards/chosen", "eval/rewards/rejected",
                                     "eval/rewards/margins", "eval/rewards/accuracies",
                                     "eval/logps/chosen", "eval/logps/rejected"};
    double v[7] = {s->loss, s->chosen, s->rejected, s->margin, s->accuracy, s->logp_chosen, s->logp_rejected};
    for (int i = 0; i < 7; i++) db_metricbuf_add(&r->metrics, step, val ? vn[i] : tn[i], v[i]);
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
    Tokenizer *tok = NULL;
    const char *dbpath = cli_db_path(o.dbflag);
    if (o.threads) openblas_set_num_threads((int)o.threads);
    atomic_remove_stale(o.out);
    int exists = access(o.out, F_OK) == 0;
    if (exists && !o.resume && !o.force) {
        fprintf(stderr, "rlhf dpo: %s exists; pass --resume to continue it or --force to start over\n", o.out);
        return EXIT_FAIL;
    }
    int64_t parent = 0;
    if (dbpath && (rc = db_open(dbpath, DB_OPEN_EXISTING, &r.db, &err))) goto fail;
    if ((rc = rl_policy_load(o.policy, o.tok_path, &r.m, &tok, &err))) goto fail;
    if ((rc = rl_resolve_template(r.db, o.template, o.policy, &r.template, &parent, &err))) goto fail;
    if ((rc = load_data(&r, tok, &err))) goto fail;
    char settings[512], sha[65], init_sha[65];
    if ((rc = model_file_sha256(o.policy, init_sha, &err))) goto fail;
    snprintf(settings, sizeof settings, "%s dpo %s beta %g smoothing %g batch %ld accum %ld seed %ld val %d group %d", init_sha,
             dpo_loss_name(o.loss), o.beta, o.smoothing, o.batch, o.accum, o.seed, r.val.n_ex, o.group);
    rl_examples_sha(r.train.ex, r.train.n_ex, settings, sha);
    int64_t per_step = o.batch * o.accum;
    int64_t total = o.steps ? o.steps : o.epochs * rl_steps_per_epoch(r.train.n_groups, (int)per_step);
    size_t n_ref = (size_t)(r.train.n_ex + r.val.n_ex);
    int resumed = 0;
    if ((rc = dpo_trainer_init(&r.tr, &r.m, &r.opt, (int)o.batch, r.train.max_k > r.val.max_k ? r.train.max_k : r.val.max_k, o.loss, o.beta, o.smoothing, o.clip, &err)))
        goto fail;
    if (o.resume && exists) {
        Model init = r.m;
        memset(&r.m, 0, sizeof r.m);
        void *pl = NULL;
        rc = rl_ckpt_load(o.out, DPO_MAGIC, &r.m, &r.opt, &r.st, &pl, &err);
        r.ref = pl;
        if (!rc && memcmp(&r.m.cfg, &init.cfg, sizeof init.cfg) != 0) {
            char a[512], b[512];
            model_config_json(&r.m.cfg, a, sizeof a);
            model_config_json(&init.cfg, b, sizeof b);
            rc = err_set(&err, RLHF_EINVAL, "%s: its config %s does not match --policy's %s", o.out, a, b);
        }
        if (!rc && (init.tokenizer_len != r.m.tokenizer_len ||
                    memcmp(init.tokenizer, r.m.tokenizer, init.tokenizer_len) != 0))
            rc = err_set(&err, RLHF_EINVAL, "%s: its tokenizer differs from --policy's", o.out);
        if (!rc && (strcmp(r.st.data_sha, sha) != 0 || (size_t)r.st.payload != n_ref * sizeof(double)))
            rc = err_set(&err, RLHF_EINVAL,
                         "%s: --policy, the data, template, tokenizer, --loss, --beta, --batch, --accum or --seed "
                         "changed since this checkpoint; rerun with them as before or --force to start over",
                         o.out);
        model_free(&init);
        if (rc) goto fail;
        /* the trainer points at the model: re-aim it at the loaded one */
        r.tr.m = &r.m;
        if ((rc = model_grads_alloc(&r.m, &err))) goto fail;
        resumed = 1;
    } else {
        if ((rc = adamw_create(&r.opt, r.m.n_params, &err))) goto fail;
        memcpy(r.st.magic, DPO_MAGIC, 8);
        r.st.version = 1;
        r.st.seed = (uint64_t)o.seed;
        r.st.parent_id = parent;
        r.st.n_train = r.train.n_groups;
        memcpy(r.st.data_sha, sha, sizeof sha);
        r.st.last_val = NAN;
        fprintf(stderr, "dpo: reference log-probabilities of %zu answers...\n", n_ref);
        if ((rc = dpo_reference(&r.tr, &r.train, &err)) || (rc = dpo_reference(&r.tr, &r.val, &err)))
            goto fail;
        r.ref = malloc(sizeof(double) * (n_ref + 1));
        if (!r.ref) {
            rc = err_set(&err, RLHF_ENOMEM, "out of memory");
            goto fail;
        }
        memcpy(r.ref, r.train.ref, sizeof(double) * (size_t)r.train.n_ex);
        memcpy(r.ref + r.train.n_ex, r.val.ref, sizeof(double) * (size_t)r.val.n_ex);
        r.st.payload = (int64_t)(n_ref * sizeof(double));
    }
    if (resumed) {
        free(r.train.ref), free(r.val.ref);
        r.train.ref = malloc(sizeof(double) * ((size_t)r.train.n_ex + 1));
        r.val.ref = malloc(sizeof(double) * ((size_t)r.val.n_ex + 1));
        if (!r.train.ref || !r.val.ref) {
            rc = err_set(&err, RLHF_ENOMEM, "out of memory");
            goto fail;
        }
        memcpy(r.train.ref, r.ref, sizeof(double) * (size_t)r.train.n_ex);
        memcpy(r.val.ref, r.ref + r.train.n_ex, sizeof(double) * (size_t)r.val.n_ex);
    }
    r.tr.opt = &r.opt;
    r.st.batch = (uint32_t)per_step;
    r.st.total_steps = total;
    r.opt.weight_decay = (float)o.wd;
    long warmup = o.warmup >= 0 ? o.warmup : (long)(total / 20);
    long eval_every = o.eval_every ? o.eval_every : (total / 10 > 0 ? (long)(total / 10) : 1);
    long save_every = o.save_every ? o.save_every : eval_every;
    if (r.db && !(resumed && r.st.run_id > 0)) {
        char cj[1024], cfgj[512];
        model_config_json(&r.m.cfg, cfgj, sizeof cfgj);
        snprintf(cj, sizeof cj,
                 "{\"model\":%s,\"policy\":\"%s\",\"data\":\"%s\",\"loss\":\"%s\",\"beta\":%g,"
                 "\"label_smoothing\":%g,\"steps\":%lld,\"batch\":%ld,\"accum\":%ld,\"lr\":%g,"
                 "\"min_lr\":%g,\"warmup\":%ld,\"weight_decay\":%g,\"clip\":%g,\"seed\":%ld,"
                 "\"pairs\":%d,\"val_pairs\":%d}",
                 cfgj, path_base(o.policy), path_base(o.data), dpo_loss_name(o.loss), o.beta,
                 o.smoothing, (long long)total, o.batch, o.accum, o.lr, o.min_lr, warmup, o.wd,
                 o.clip, o.seed, r.train.n_pairs, r.val.n_pairs);
        if ((rc = db_run_start(r.db, "dpo", cj, parent, &r.st.run_id, &err))) goto fail;
    }
    if (resumed) fprintf(stderr, "dpo: resumed %s at step %lld\n", o.out, (long long)r.st.step);
    int *perm = malloc(sizeof(int) * (size_t)r.train.n_groups), *idx = malloc(sizeof(int) * (size_t)per_step);
    if (!perm || !idx) {
        free(perm), free(idx);
        rc = err_set(&err, RLHF_ENOMEM, "out of memory");
        goto fail;
    }
    sys_catch_interrupts();
    Progress pg;
    progress_start(&pg, "dpo", "steps", total, 0);
    DpoStats s = {0}, vs = {0};
    vs.loss = vs.margin = vs.accuracy = NAN;
    double t0 = now_seconds(), loss = NAN;
    int64_t pairs_done = 0;
    char extra[160];
    while (r.st.step < total && !sys_interrupted()) {
        float lr = lr_schedule(r.st.step, warmup, total, (float)o.lr, (float)o.min_lr);
        int n = rl_batch_at(r.train.n_groups, (int)per_step, r.train.lens, o.group ? 50 : 0, r.st.seed, r.st.step, perm, idx);
        double gn;
        if ((rc = dpo_step(&r.tr, &r.train, idx, n, lr, &s, &gn, &err))) break;
        loss = s.loss;
        if (!isfinite(loss)) {
            rc = err_set(&err, RLHF_EINVAL, "loss became %g at step %lld; try a lower --lr", loss,
                         (long long)r.st.step + 1);
            break;
        }
        r.st.step++;
        log_stats(&r, r.st.step, &s, 0);
        db_metricbuf_add(&r.metrics, r.st.step, "lr", lr);
        db_metricbuf_add(&r.metrics, r.st.step, "grad_norm", gn);
        pairs_done += s.n;
        double pps = (double)pairs_done / (now_seconds() - t0 + 1e-9);
        if (r.st.step % eval_every == 0 || r.st.step == total) {
            if (r.val.n_pairs) {
                if ((rc = dpo_eval(&r.tr, &r.val, &vs, &err))) break;
                log_stats(&r, r.st.step, &vs, 1);
                r.st.last_val = vs.loss;
            }
            db_metricbuf_add(&r.metrics, r.st.step, "pairs_per_s", pps);
            if (!pg.enabled)
                fprintf(stderr, "step %lld/%lld: loss %.4f, margin %.3f, accuracy %.2f; held out: loss %.4f, margin %.3f, accuracy %.2f; %.1f pairs/s\n",
                        (long long)r.st.step, (long long)total, s.loss, s.margin, s.accuracy, vs.loss,
                        vs.margin, vs.accuracy, pps);
        }
        if (r.st.step % save_every == 0 || r.st.step == total)
            if ((rc = save(&r, &err))) break;
        snprintf(extra, sizeof extra, "loss %.4f  margin %.3f  acc %.2f  %.1f pairs/s", s.loss, s.margin, s.accuracy, pps);
        progress_update(&pg, r.st.step, extra);
    }
    free(perm);
    free(idx);
    progress_finish(&pg, NULL);
    if (rc) goto fail;
    int stopped = sys_interrupted();
    if (stopped || r.st.step == 0 || (r.st.step % save_every && r.st.step != total))
        if ((rc = save(&r, &err))) goto fail;
    if (r.db) {
        char note[160];
        snprintf(note, sizeof note, "step %lld, %s loss, beta %g; held-out loss %.4f", (long long)r.st.step,
                 dpo_loss_name(o.loss), o.beta, r.st.last_val);
        if ((rc = db_metricbuf_flush(r.db, r.st.run_id, &r.metrics, &err)) ||
            (rc = cli_register_checkpoint(r.db, o.out, o.name, "policy", r.st.parent_id, &r.m.cfg,
                                          r.template, r.st.run_id, stopped ? "interrupted" : "done",
                                          note, NULL, &err)))
            goto fail;
    }
    if (stopped)
        fprintf(stderr, "dpo: interrupted at step %lld; checkpoint saved to %s (rerun with --resume)\n",
                (long long)r.st.step, o.out);
    else if (isnan(loss))
        printf("already trained %lld steps; %s is up to date\n", (long long)r.st.step, o.out);
    else
        printf("trained %lld steps: loss %.4f, margin %.3f, accuracy %.2f; held out: loss %.4f, margin %.3f, accuracy %.2f; wrote %s\n",
               (long long)r.st.step, s.loss, s.margin, s.accuracy, vs.loss, vs.margin, vs.accuracy, o.out);
    tok_free(tok);
    run_free(&r);
    return stopped ? EXIT_FAIL : EXIT_OK;
fail:
    if (r.db && r.st.run_id > 0) {
        Err e2 = {0};
        db_metricbuf_flush(r.db, r.st.run_id, &r.metrics, &e2);
        db_run_finish(r.db, r.st.run_id, "failed", 0, err.msg, &e2);
    }
    tok_free(tok);
    run_free(&r);
    return cli_fail(E, &err);
}
