/* rlhf dpo on the run engine (rl/dpo.h): reference log-probabilities from
 * the starting policy once, kept in the checkpoint's payload, so a resumed
 * run needs no reference model; TRL's metric names; registered as kind
 * "policy" with the starting model as its parent. */
#include "rl/trainers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/dist.h"
#include "rl/dpo.h"
#include "util/progress.h"

typedef struct Dpo {
    const DpoOpts *o;
    Tokenizer *tok;
    DpoTrainer tr;
    DpoSet train, val;
    int *perm, *idx;
    int64_t per_step, pairs_done;
    double t0, pps;
    DpoStats s, vs;
} Dpo;

static int load_data(TrainRun *r, Dpo *d, Err *err) {
    const TrainOpts *t = &d->o->t;
    PrefSet ps = {0};
    int rc;
    if (!strcmp(t->data, "store")) {
        if (!r->db)
            return err_set(err, RLHF_EINVAL, "--data store needs a project (--db or $RLHF_DB)");
        PrefLoadOptions po = d->o->load;
        po.val_frac = t->val_frac;
        rc = prefs_load_store(r->db, &po, &ps, err);
    } else {
        rc = prefs_load_file(t->data, t->val_frac, &ps, err);
    }
    if (!rc) rc = dpo_build(&ps, d->tok, r->template, r->m.cfg.seq_len, &d->train, &d->val, err);
    if (!rc && d->train.n_pairs == 0 && d->val.n_pairs == 0 && ps.ties_dropped > 0)
        rc = err_set(err, RLHF_EINVAL,
                     "%s: every pair was a tie (%lld tied pairs in %d groups); DPO learns only from "
                     "a preferred and a dispreferred answer",
                     t->data, (long long)ps.ties_dropped, ps.n);
    else if (!rc && d->train.n_pairs == 0)
        rc = err_set(err, RLHF_EINVAL,
                     "%s: no preference pairs to train on (%d groups, %d held out)", t->data, ps.n,
                     d->val.n_pairs);
    if (!rc && dist_rank() == 0)
        fprintf(stderr,
                "dpo: %d groups, %d pairs (%d held out), %lld ties dropped, %lld groups skipped; "
                "%lld answers cut to fit %d tokens\n",
                ps.n, d->train.n_pairs + d->val.n_pairs, d->val.n_pairs, (long long)ps.ties_dropped,
                (long long)ps.skipped, (long long)(d->train.cut + d->val.cut), r->m.cfg.seq_len);
    prefs_free(&ps);
    return rc;
}

static int prepare(TrainRun *r, Err *err) {
    Dpo *d = r->ctx;
    const DpoOpts *o = d->o = r->opts;
    d->vs.loss = d->vs.margin = d->vs.accuracy = NAN;
    int rc = train_load_policy(r, &d->tok, err);
    if (!rc) rc = load_data(r, d, err);
    char settings[256], rpo[64] = "";
    if (o->rpo > 0) snprintf(rpo, sizeof rpo, " rpo %g", o->rpo);
    if (o->token_kl > 0)
        snprintf(rpo + strlen(rpo), sizeof rpo - strlen(rpo), " token-kl %g", o->token_kl);
    snprintf(settings, sizeof settings,
             "dpo %s beta %g smoothing %g batch %ld accum %ld seed %ld val %d group %d%s",
             dpo_loss_name(o->loss), o->beta, o->smoothing, o->t.batch, o->t.accum, o->t.seed,
             d->val.n_ex, o->t.group, rpo);
    if (!rc) rc = train_examples_sha(r, d->train.ex, d->train.n_ex, settings, err);
    r->n_train = d->train.n_groups;
    return rc;
}

/* The reference log-probabilities: computed now for a fresh run (the policy
 * is the reference), read back from the checkpoint's payload on a resume. */
static int reference(TrainRun *r, Dpo *d, Err *err) {
    size_t nt = (size_t)d->train.n_ex, nv = (size_t)d->val.n_ex, bytes = sizeof(double) * (nt + nv);
    if (r->resumed) {
        if ((size_t)r->st.payload != bytes)
            return err_set(err, RLHF_EFORMAT,
                           "%s: its reference log-probabilities are for %zu answers, not %zu",
                           r->o->out, (size_t)r->st.payload / sizeof(double), nt + nv);
        d->train.ref = malloc(sizeof(double) * (nt + 1));
        d->val.ref = malloc(sizeof(double) * (nv + 1));
        if (!d->train.ref || !d->val.ref) return err_set(err, RLHF_ENOMEM, "out of memory");
        memcpy(d->train.ref, r->payload, sizeof(double) * nt);
        memcpy(d->val.ref, (double *)r->payload + nt, sizeof(double) * nv);
        return RLHF_OK;
    }
    if (dist_rank() == 0) fprintf(stderr, "dpo: reference log-probabilities of %zu answers...\n", nt + nv);
    int rc = dpo_reference(&d->tr, &d->train, err);
    if (!rc) rc = dpo_reference(&d->tr, &d->val, err);
    if (rc) return rc;
    double *p = malloc(bytes + sizeof(double));
    if (!p) return err_set(err, RLHF_ENOMEM, "out of memory");
    memcpy(p, d->train.ref, sizeof(double) * nt);
    memcpy(p + nt, d->val.ref, sizeof(double) * nv);
    r->payload = p;
    r->st.payload = (int64_t)bytes;
    return RLHF_OK;
}

/* The reference's distributions for --token-kl: the starting policy, which
 * a fresh run still holds (LoRA: the base, the adapter off); a resumed one
 * loads it again from --policy. */
static int reference_dist(TrainRun *r, Dpo *d, Err *err) {
    if (!(d->o->token_kl > 0)) return RLHF_OK;
    Model ref, *m = NULL;
    Tokenizer *tok = NULL;
    int rc = RLHF_OK;
    if (r->resumed && !r->m.lora) {
        if ((rc = rl_policy_load(r->o->init, r->o->tok_path, &ref, &tok, err))) return rc;
        m = &ref;
    }
    if (dist_rank() == 0)
        fprintf(stderr, "dpo: the reference's distributions at every answer token (--token-kl)...\n");
    rc = dpo_reference_dist(&d->tr, m, &d->train, err);
    if (!rc) rc = dpo_reference_dist(&d->tr, m, &d->val, err);
    if (m) model_free(m), tok_free(tok);
    if (rc) err_prefix(err, "--token-kl: ");
    return rc;
}

static int setup(TrainRun *r, Err *err) {
    Dpo *d = r->ctx;
    const DpoOpts *o = d->o;
    d->per_step = o->t.batch * o->t.accum;
    r->total = o->t.steps ? o->t.steps
                          : o->t.epochs * rl_steps_per_epoch(d->train.n_groups, (int)d->per_step);
    r->st.batch = (uint32_t)d->per_step;
    int max_k = d->train.max_k > d->val.max_k ? d->train.max_k : d->val.max_k;
    d->perm = malloc(sizeof(int) * (size_t)d->train.n_groups);
    d->idx = malloc(sizeof(int) * (size_t)d->per_step);
    if (!d->perm || !d->idx) return err_set(err, RLHF_ENOMEM, "out of memory");
    d->t0 = now_seconds();
    int rc = dpo_trainer_init(&d->tr, &r->m, r->optp, (int)o->t.batch, max_k, o->loss, o->beta,
                              o->smoothing, o->t.clip, err);
    d->tr.rpo = o->rpo;
    d->tr.token_kl = o->token_kl;
    if (!rc) rc = reference(r, d, err);
    return rc ? rc : reference_dist(r, d, err);
}

static void log_stats(TrainRun *r, const DpoStats *s, int val) {
    /* TRL's names; held-out ones under eval/ */
    static const char *const names[2][9] = {
        {"loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
         "logps/chosen", "logps/rejected", "nll_loss", "token_kl"},
        {"eval/loss", "eval/rewards/chosen", "eval/rewards/rejected", "eval/rewards/margins",
         "eval/rewards/accuracies", "eval/logps/chosen", "eval/logps/rejected", "eval/nll_loss",
         "eval/token_kl"}};
    double v[9] = {s->loss,     s->chosen,      s->rejected,     s->margin,  s->accuracy,
                   s->logp_chosen, s->logp_rejected, s->nll, s->token_kl};
    for (int i = 0; i < 9; i++)
        if (!isnan(v[i]) || i < 8) train_metric(r, names[val][i], v[i]);
}

static int grads(TrainRun *r, Err *err) {
    Dpo *d = r->ctx;
    int n = rl_batch_at(d->train.n_groups, (int)d->per_step, d->train.lens, d->o->t.group ? 50 : 0,
                        r->st.seed, r->st.step, d->perm, d->idx);
    int rc = dpo_grads(&d->tr, &d->train, d->idx, n, &d->s, err);
    if (rc) return rc;
    r->loss = d->s.loss;
    d->pairs_done += d->s.n;
    d->pps = (double)d->pairs_done / (now_seconds() - d->t0 + 1e-9);
    log_stats(r, &d->s, 0);
    return RLHF_OK;
}

static int eval(TrainRun *r, Err *err) {
    Dpo *d = r->ctx;
    train_metric(r, "pairs_per_s", d->pps);
    if (!d->val.n_pairs) return RLHF_OK;
    int rc = dpo_eval(&d->tr, &d->val, &d->vs, err);
    if (rc) return rc;
    log_stats(r, &d->vs, 1);
    r->st.last_val = d->vs.loss;
    return RLHF_OK;
}

static void status(TrainRun *r, char *buf, size_t n, int line) {
    Dpo *d = r->ctx;
    const DpoStats *s = &d->s, *v = &d->vs;
    if (line)
        snprintf(buf, n,
                 "loss %.4f, margin %.3f, accuracy %.2f; held out: loss %.4f, margin "
                 "%.3f, accuracy %.2f; %.1f pairs/s",
                 s->loss, s->margin, s->accuracy, v->loss, v->margin, v->accuracy, d->pps);
    else
        snprintf(buf, n, "loss %.4f  margin %.3f  acc %.2f  %.1f pairs/s", s->loss, s->margin,
                 s->accuracy, d->pps);
}

static void config(TrainRun *r, cJSON *j) {
    Dpo *d = r->ctx;
    cJSON_AddStringToObject(j, "loss", dpo_loss_name(d->o->loss));
    cJSON_AddNumberToObject(j, "beta", d->o->beta);
    cJSON_AddNumberToObject(j, "label_smoothing", d->o->smoothing);
    cJSON_AddNumberToObject(j, "rpo_alpha", d->o->rpo);
    cJSON_AddNumberToObject(j, "token_kl", d->o->token_kl);
    cJSON_AddNumberToObject(j, "batch", (double)d->o->t.batch);
    cJSON_AddNumberToObject(j, "accum", (double)d->o->t.accum);
    cJSON_AddNumberToObject(j, "pairs", d->train.n_pairs);
    cJSON_AddNumberToObject(j, "val_pairs", d->val.n_pairs);
}

static void report(TrainRun *r, char *note, size_t nn, char *line, size_t nl) {
    Dpo *d = r->ctx;
    char held[48] = "no held-out pairs";
    if (d->val.n_pairs > 0 && !isnan(r->st.last_val))
        snprintf(held, sizeof held, "held-out loss %.4f", r->st.last_val);
    snprintf(note, nn, "step %lld, %s loss, beta %g; %s", (long long)r->st.step,
             dpo_loss_name(d->o->loss), d->o->beta, held);
    if (isnan(r->loss))
        snprintf(line, nl, "already trained %lld steps; %s is up to date", (long long)r->st.step,
                 r->o->out);
    else
        snprintf(line, nl,
                 "trained %lld steps: loss %.4f, margin %.3f, accuracy %.2f; held out: loss %.4f, "
                 "margin %.3f, accuracy %.2f; wrote %s",
                 (long long)r->st.step, d->s.loss, d->s.margin, d->s.accuracy, d->vs.loss,
                 d->vs.margin, d->vs.accuracy, r->o->out);
}

static void release(TrainRun *r) {
    Dpo *d = r->ctx;
    dpo_trainer_free(&d->tr);
    dpo_set_free(&d->train);
    dpo_set_free(&d->val);
    free(d->perm);
    free(d->idx);
    tok_free(d->tok);
}

const Trainer TRAIN_DPO = {
    .who = "dpo", .label = "DPO", .magic = "RL-DPO\0\0", .kind = "policy", .run_kind = "dpo",
    .changed = "the data, template, tokenizer, --loss, --beta, --rpo-alpha, --token-kl, --batch, "
               "--accum or --seed",
    .prepare = prepare, .setup = setup, .grads = grads, .eval = eval, .status = status,
    .config = config, .report = report, .ctx_size = sizeof(Dpo), .release = release};
