/* rlhf sft on the run engine: loss on the answer tokens only (rl/sft.h),
 * held-out loss by prompt hash; registered as kind "sft" with the starting
 * model as its parent. */
#include "rl/trainers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/dist.h"
#include "rl/sft.h"
#include "util/progress.h"
#include "util/sys.h"
#include "util/text.h"

typedef struct Sft {
    const SftOpts *o;
    Tokenizer *tok;
    SftTrainer tr;
    SftSet train, val;
    int *perm, *idx;
    int64_t per_step, tok0;
    double t0;
} Sft;

static int load_data(TrainRun *r, Sft *s, Err *err) {
    const TrainOpts *t = &s->o->t;
    SftData d = {0};
    int store = !strcmp(t->data, "store"), rc;
    if (store) {
        if (!r->db)
            return err_set(err, RLHF_EINVAL, "--data store needs a project (--db or $RLHF_DB)");
        SftStoreOptions so = {s->o->filter, s->o->from_model, s->o->demos, s->o->no_ranked,
                             s->o->best_of};
        rc = sft_data_load_store(r->db, &so, &d, err);
    } else {
        rc = sft_data_load_file(t->data, r->template, &d, err);
    }
    if (!rc && d.n == 0)
        rc = err_set(err, RLHF_EINVAL, "%s: no prompt→answer pairs found%s", t->data,
                     !store             ? ""
                     : s->o->from_model ? " (the model has no candidates)"
                     : s->o->no_ranked
                         ? " (no demonstrations: rlhf label --task write)"
                         : " (no demonstrations, and no ranked prompt with one clear best answer)");
    if (!rc)
        rc = sft_encode(&d, s->tok, r->template, r->m.cfg.seq_len, t->val_frac, &s->train,
                        &s->val, err);
    if (!rc && s->train.n == 0)
        rc = err_set(err, RLHF_EINVAL,
                     "%s: all %d pairs fell in the held-out share; lower --val-frac", t->data, d.n);
    if (!rc && dist_rank() == 0)
        fprintf(stderr,
                "sft: %d pairs (%d training, %d held out, %lld skipped), %lld answer tokens; %lld "
                "cut to fit %d tokens\n",
                d.n, s->train.n, s->val.n, (long long)d.skipped, (long long)s->train.n_tokens,
                (long long)(s->train.cut + s->val.cut), r->m.cfg.seq_len);
    if (!rc && store && dist_rank() == 0 && (d.demos || d.demos_flagged))
        fprintf(stderr,
                "sft: %lld of the pairs are demonstrations labelers wrote; %lld flagged ones left "
                "out%s\n",
                (long long)d.demos, (long long)d.demos_flagged,
                d.demos_flagged ? " (--demos all takes them)" : "");
    sft_data_free(&d);
    return rc;
}

static int prepare(TrainRun *r, Err *err) {
    Sft *s = r->ctx;
    s->o = r->opts;
    const TrainOpts *t = &s->o->t;
    int rc = train_load_policy(r, &s->tok, err);
    if (!rc) rc = load_data(r, s, err);
    char settings[256];
    snprintf(settings, sizeof settings, "sft batch %ld accum %ld seed %ld group %d", t->batch,
             t->accum, t->seed, t->group);
    if (!rc) rc = train_examples_sha(r, s->train.ex, s->train.n, settings, err);
    r->n_train = s->train.n;
    return rc;
}

static int setup(TrainRun *r, Err *err) {
    Sft *s = r->ctx;
    const TrainOpts *t = &s->o->t;
    s->per_step = t->batch * t->accum;
    r->total = t->steps ? t->steps : t->epochs * rl_steps_per_epoch(s->train.n, (int)s->per_step);
    r->st.batch = (uint32_t)s->per_step;
    r->rate_unit = "answer tokens";
    s->perm = malloc(sizeof(int) * (size_t)s->train.n);
    s->idx = malloc(sizeof(int) * (size_t)s->per_step);
    if (!s->perm || !s->idx) return err_set(err, RLHF_ENOMEM, "out of memory");
    s->t0 = now_seconds(), s->tok0 = r->st.tokens_seen;
    return sft_trainer_init(&s->tr, &r->m, r->optp, (int)t->batch, t->clip, err);
}

static int grads(TrainRun *r, Err *err) {
    Sft *s = r->ctx;
    int n = rl_batch_at(s->train.n, (int)s->per_step, s->train.lens, s->o->t.group ? 50 : 0,
                        r->st.seed, r->st.step, s->perm, s->idx);
    int64_t nt;
    int rc = sft_grads(&s->tr, &s->train, s->idx, n, &r->loss, &nt, err);
    if (rc) return rc;
    r->st.tokens_seen += nt;
    r->rate = (double)(r->st.tokens_seen - s->tok0) / (now_seconds() - s->t0 + 1e-9);
    train_metric(r, "train_loss", r->loss);
    return RLHF_OK;
}

static int eval(TrainRun *r, Err *err) {
    Sft *s = r->ctx;
    train_metric(r, "answer_tokens_per_s", r->rate);
    if (!s->val.n) return RLHF_OK;
    int rc = sft_eval(&s->tr, &s->val, &r->st.last_val, err);
    if (rc) return rc;
    train_metric(r, "val_loss", r->st.last_val);
    return RLHF_OK;
}

static void config(TrainRun *r, cJSON *j) {
    Sft *s = r->ctx;
    cJSON_AddNumberToObject(j, "batch", (double)s->o->t.batch);
    cJSON_AddNumberToObject(j, "accum", (double)s->o->t.accum);
    cJSON_AddNumberToObject(j, "pairs", s->train.n);
    cJSON_AddNumberToObject(j, "val_pairs", s->val.n);
    cJSON_AddBoolToObject(j, "group_by_length", s->o->t.group);
    if (s->o->best_of) cJSON_AddStringToObject(j, "data_kind", "best-of (rejection sampling)");
}

static void report(TrainRun *r, char *note, size_t nn, char *line, size_t nl) {
    Sft *s = r->ctx;
    long long step = (long long)r->st.step;
    double val = r->st.last_val;
    if (isnan(val)) snprintf(note, nn, "step %lld, no held-out examples", step);
    else snprintf(note, nn, "step %lld, val loss %.4f", step, val);
    if (isnan(r->loss))
        snprintf(line, nl, "already trained %lld steps: val loss %.4f; %s is up to date", step,
                 val, r->o->out);
    else if (s->val.n)
        snprintf(line, nl, "trained %lld steps: train loss %.4f, val loss %.4f; wrote %s", step,
                 r->loss, val, r->o->out);
    else
        snprintf(line, nl, "trained %lld steps: train loss %.4f (nothing held out); wrote %s", step,
                 r->loss, r->o->out);
}

static void release(TrainRun *r) {
    Sft *s = r->ctx;
    sft_trainer_free(&s->tr);
    sft_set_free(&s->train);
    sft_set_free(&s->val);
    free(s->perm);
    free(s->idx);
    tok_free(s->tok);
}

const Trainer TRAIN_SFT = {
    .who = "sft", .label = "SFT", .magic = "RL-SFT\0\0", .kind = "sft", .run_kind = "sft",
    .changed = "the data, template, tokenizer, --batch, --accum or --seed",
    .prepare = prepare, .setup = setup, .grads = grads, .eval = eval, .config = config,
    .report = report, .ctx_size = sizeof(Sft), .release = release};
