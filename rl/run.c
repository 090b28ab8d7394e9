/* The run engine (run.h). Under MPI every rank runs the same steps on its
 * share of each batch; rank 0 alone writes the store and the checkpoint. */
#include "rl/run.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model/chat.h"
#include "model/checkpoint.h"
#include "model/dist.h"
#include "util/progress.h"
#include "util/sys.h"
#include "util/text.h"

/* Steps skipped in a row for a non-finite loss or gradient norm before the
 * run stops: one bad batch is noise, several mean the run has diverged. */
#define MAX_NONFINITE 3
/* How long the last save of a run keeps retrying a busy store: past it the run
 * fails with its previous checkpoint and metrics intact, rather than hang. */
#define FINAL_RETRY_S 120

void train_opts_init(TrainOpts *o, long epochs, double lr) {
    memset(o, 0, sizeof *o);
    o->epochs = epochs, o->batch = 8, o->accum = 1, o->warmup = -1, o->seed = 1;
    o->lr = lr, o->min_lr = -1, o->clip = 1, o->val_frac = 0.05;
    o->lora.dropout = -1; /* unset: 0.05 with --lora */
}

void train_metric(TrainRun *r, const char *name, double v) {
    if (r->db && isfinite(v)) db_metricbuf_add(&r->metrics, r->at, name, v);
}

/* ---- the checkpoint --------------------------------------------------------------- */

static void pause_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* The one order a run saves in: its buffered metric points first, in one
 * transaction, then the checkpoint that covers them. A crash between the two
 * leaves points for steps the resumed run repeats (upserted by run, name and
 * step); the other order left steps no run would ever record. A mid-run save
 * whose metrics the store will not take skips the checkpoint (the points stay
 * buffered, training goes on); the last one (final) retries for a while. */
static int flush_metrics(TrainRun *r, int final, Err *err) {
    int rc = db_metricbuf_flush(r->db, r->st.run_id, &r->metrics, err);
    double t0 = now_seconds(), wait = 1;
    while (rc == RLHF_EBUSY && final && now_seconds() - t0 < FINAL_RETRY_S) {
        pause_s(wait);
        if (wait < 16) wait *= 2;
        rc = db_metricbuf_flush(r->db, r->st.run_id, &r->metrics, err);
    }
    if (rc && !final) {
        if (!r->metrics_warned)
            fprintf(stderr,
                    "%s: warning: cannot write metrics (%s); training goes on, checkpoints wait "
                    "until the store takes them\n",
                    r->t->who, err->msg);
        r->metrics_warned = 1;
        return 1; /* skip this checkpoint */
    }
    return rc;
}

int train_save(TrainRun *r, int final, Err *err) {
    if (dist_rank() != 0) return RLHF_OK;
    int rc = flush_metrics(r, final, err);
    if (rc) return rc == 1 ? RLHF_OK : rc;
    void *bytes = r->payload;
    size_t len = (size_t)r->st.payload;
    if (r->t->save_state && (rc = r->t->save_state(r, &bytes, &len, err))) return rc;
    r->st.payload = (int64_t)len;
    rc = rl_ckpt_save(r->o->out, &r->m, r->optp, &r->st, bytes, err);
    if (bytes != r->payload) free(bytes);
    return rc;
}

/* Refuses an existing --out without --resume or --force (after removing a
 * dead writer's temporaries). */
static int check_out(TrainRun *r, Err *err) {
    if (dist_rank() == 0) atomic_remove_stale(r->o->out);
    r->exists = access(r->o->out, F_OK) == 0;
    if (r->exists && !r->o->resume && !r->o->force)
        return err_set(err, RLHF_EINVAL,
                       "%s exists; pass --resume to continue it or --force to start over",
                       r->o->out);
    return RLHF_OK;
}

/* Continues the run in --out: its config and tokenizer must be the starting
 * model's and its digest r->sha; its weights replace r->m's. */
static int resume(TrainRun *r, Err *err) {
    const char *path = r->o->out;
    Model m;
    memset(&m, 0, sizeof m);
    char base_sha[65], base[65] = "";
    int rc = RLHF_OK;
    /* a LoRA run's adapter goes onto the starting model already loaded (one
     * copy of the base); a checkpoint of another kind is read whole and refused below */
    if (r->o->lora.rank && !(rc = model_file_sha256(r->o->init, base_sha, err)))
        rc = model_adapter_base(path, base, err);
    int onto = !rc && base[0] && !strcmp(base, base_sha) && !r->m.lora;
    if (!rc)
        rc = onto ? rl_ckpt_load_onto(path, r->t->magic, &r->m, base_sha, &m, &r->opt, &r->st,
                                      &r->payload, err)
                  : rl_ckpt_load(path, r->t->magic, &m, &r->opt, &r->st, &r->payload, err);
    if (rc == RLHF_EFORMAT)
        err_set(err, RLHF_EFORMAT, "%s: not a %s checkpoint (no training state to resume)", path,
                r->t->label);
    if (!rc && memcmp(&m.cfg, &r->m.cfg, sizeof m.cfg) != 0) {
        char a[512], b[512];
        model_config_json(&m.cfg, a, sizeof a);
        model_config_json(&r->m.cfg, b, sizeof b);
        rc = err_set(err, RLHF_EINVAL, "%s: its config %s does not match the starting model's %s",
                     path, a, b);
    }
    if (!rc && (m.tokenizer_len != r->m.tokenizer_len ||
                (m.tokenizer_len && memcmp(m.tokenizer, r->m.tokenizer, m.tokenizer_len) != 0)))
        rc = err_set(err, RLHF_EINVAL, "%s: its tokenizer differs from the starting model's", path);
    if (!rc && (!m.lora) != (!r->o->lora.rank))
        rc = err_set(err, RLHF_EINVAL, "%s: %s; resume it %s --lora", path,
                     m.lora ? "the run trained a LoRA adapter" : "the run trained every weight",
                     m.lora ? "with the same" : "without");
    if (!rc && m.lora &&
        (m.lora->c.rank != r->o->lora.rank || m.lora->c.targets != r->o->lora.targets ||
         m.lora->c.alpha != r->o->lora.alpha || m.lora->c.dropout != r->o->lora.dropout))
        rc = err_set(err, RLHF_EINVAL,
                     "%s: its adapter (rank %d, alpha %g, dropout %g) differs from --lora's; resume "
                     "with the same settings",
                     path, m.lora->c.rank, m.lora->c.alpha, m.lora->c.dropout);
    if (!rc && strcmp(r->st.data_sha, r->sha) != 0)
        rc = err_set(err, RLHF_EINVAL,
                     "%s: the starting model, %s changed since this checkpoint; rerun with them as "
                     "before or --force to start over",
                     path, r->t->changed);
    if (!rc && onto) { /* the adapter moves from the view onto the model itself */
        rc = model_lora_adopt(&r->m, &m, err);
        if (!rc && !(rc = model_grads_alloc(&r->m, err))) {
            r->resumed = 1;
            return RLHF_OK;
        }
    } else if (!rc && !(rc = model_grads_alloc(&m, err))) {
        model_free(&r->m);
        r->m = m;
        r->resumed = 1;
        return RLHF_OK;
    }
    model_free(&m);
    adamw_free(&r->opt);
    free(r->payload);
    r->payload = NULL;
    return rc;
}

/* --lora: a fresh adapter on the starting model, named by its path and sha256. */
static int attach_lora(TrainRun *r, Err *err) {
    const TrainOpts *o = r->o;
    char sha[65], abs[PATH_MAX];
    int rc = model_file_sha256(o->init, sha, err);
    if (rc) return rc;
    if (!realpath(o->init, abs)) snprintf(abs, sizeof abs, "%s", o->init);
    return model_lora_attach(&r->m, &o->lora, (uint64_t)o->seed, abs, sha, err);
}

static int settle_state(TrainRun *r, Err *err) {
    if (r->o->resume && r->exists) return resume(r, err);
    if (r->o->lora.rank) {
        int rc = attach_lora(r, err);
        if (rc) return rc;
    }
    rl_state_init(&r->st, r->t->magic, (uint64_t)r->o->seed, r->parent_id, r->n_train, r->sha);
    int rc = model_grads_alloc(&r->m, err);
    return rc || r->t->own_optimizer ? rc : adamw_create(&r->opt, model_train_n(&r->m), err);
}

/* ---- the run in the store ------------------------------------------------------ */

static int start_run(TrainRun *r, Err *err) {
    if (r->resumed && dist_rank() == 0)
        fprintf(stderr, "%s: resumed %s at step %lld\n", r->t->who, r->o->out,
                (long long)r->st.step);
    if (!r->db) return RLHF_OK;
    if (r->resumed && r->st.run_id > 0) return db_run_resumed(r->db, r->st.run_id, err);
    const TrainOpts *o = r->o;
    char cfg[512];
    model_config_json(&r->m.cfg, cfg, sizeof cfg);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "model", cJSON_Parse(cfg));
    if (o->init) cJSON_AddStringToObject(j, "init", path_base(o->init));
    if (o->data) cJSON_AddStringToObject(j, "data", path_base(o->data));
    cJSON_AddNumberToObject(j, "steps", (double)r->total);
    cJSON_AddNumberToObject(j, "lr", o->lr);
    cJSON_AddNumberToObject(j, "min_lr", o->min_lr);
    cJSON_AddNumberToObject(j, "warmup", (double)r->warmup);
    cJSON_AddNumberToObject(j, "clip", o->clip);
    cJSON_AddNumberToObject(j, "seed", (double)o->seed);
    if (r->t->config) r->t->config(r, j);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!text) return err_set(err, RLHF_ENOMEM, "out of memory");
    int rc = db_run_start(r->db, r->t->run_kind, text, r->st.parent_id, &r->st.run_id, err);
    free(text);
    return rc;
}

int train_register_checkpoint(Db *db, const char *path, const char *name, const char *kind,
                              int64_t parent_id, const Config *cfg, const char *template,
                              int64_t run_id, const char *status, const char *note,
                              int64_t *model_id, Err *err) {
    char sha[65], cj[512], abs[PATH_MAX];
    int rc = model_file_sha256(path, sha, err);
    if (rc) return rc;
    model_config_json(cfg, cj, sizeof cj);
    if (!realpath(path, abs)) snprintf(abs, sizeof abs, "%s", path);
    ModelIn mi = {name ? name : path_base(path), kind, abs, parent_id, sha, cj, template};
    int64_t id = 0;
    char *kept = NULL;
    if ((rc = db_begin(db, err))) return rc;
    /* a name bound to weights that made candidates (gen on an intermediate
     * checkpoint) is not rebound under them: the old version keeps its row */
    rc = db_model_keep_version(db, mi.name, sha, run_id, &kept, err);
    if (!rc) rc = db_model_upsert(db, &mi, &id, err);
    if (!rc && run_id > 0) rc = db_run_finish(db, run_id, status, id, note, err);
    if (!rc) rc = db_commit(db, err);
    else db_rollback(db);
    if (!rc && model_id) *model_id = id;
    if (!rc && kept)
        fprintf(stderr, "rlhf: the model '%s' had other weights that candidates or runs point at; "
                        "they stay registered as '%s'\n", mi.name, kept);
    free(kept);
    return rc;
}

/* ---- the steps ---------------------------------------------------------------------- */

/* The gradients, then clipping and AdamW, unless the loss or the norm is not
 * finite: then the step is skipped (its batch is not retried, so a resumed
 * run stays the same), said with its number and counted. */
/* A step whose loss or gradient norm was not finite and whose update was
 * skipped: said, counted, and after MAX_NONFINITE in a row the end. */
static int skipped_step(TrainRun *r, Err *err) {
    r->nonfinite++, r->skipped++;
    train_metric(r, "nonfinite_steps", (double)r->skipped);
    if (dist_rank() == 0)
        fprintf(stderr, "%s: warning: step %lld: loss %g, gradient norm %g; the update is skipped\n",
                r->t->who, (long long)r->at, r->loss, r->grad_norm);
    if (r->nonfinite >= MAX_NONFINITE)
        return err_set(err, RLHF_EINVAL,
                       "the loss or the gradient norm was not finite %d steps in a row (last at "
                       "step %lld); try a lower --lr",
                       r->nonfinite, (long long)r->at);
    return RLHF_OK;
}

/* LoRA's dropout: on while a step's gradients are computed, its masks a
 * function of the seed and the step, so a resumed run draws the same. */
static void lora_training(TrainRun *r, int on) {
    Lora *lo = r->m.lora;
    if (!lo) return;
    lo->training = on;
    lo->drop_seed = (uint64_t)r->o->seed * 0x9e3779b97f4a7c15ULL ^ (uint64_t)r->st.step << 20;
    lo->drop_pass = 0;
}

static int grad_step(TrainRun *r, float lr, Err *err) {
    model_zero_grad(&r->m);
    lora_training(r, 1);
    int rc = r->t->grads(r, err);
    lora_training(r, 0);
    if (rc) return rc;
    r->grad_norm = model_grad_clip(&r->m, r->o->clip);
    if (!isfinite(r->loss) || !isfinite(r->grad_norm)) return skipped_step(r, err);
    adamw_step(r->optp, &r->m, lr);
    r->nonfinite = 0;
    train_metric(r, "grad_norm", r->grad_norm);
    return RLHF_OK;
}

/* A trainer's own update (its optimizer steps guarded by itself): a
 * non-finite loss means it skipped them. */
static int own_step(TrainRun *r, float lr, Err *err) {
    int rc = r->t->update(r, lr, err);
    if (rc) return rc;
    if (!isfinite(r->loss)) return skipped_step(r, err);
    r->nonfinite = 0;
    return RLHF_OK;
}

static void status(TrainRun *r, char *buf, size_t n, int line) {
    if (r->t->status) {
        r->t->status(r, buf, n, line);
        return;
    }
    const char *unit = r->rate_unit ? r->rate_unit : "steps";
    int k = snprintf(buf, n, "loss %.4f", r->loss);
    if (!isnan(r->st.last_val) && k >= 0 && (size_t)k < n)
        k += snprintf(buf + k, n - (size_t)k, line ? ", val loss %.4f" : "  val %.4f", r->st.last_val);
    if (k >= 0 && (size_t)k < n)
        k += snprintf(buf + k, n - (size_t)k, line ? ", lr %.2e" : "  lr %.1e", r->lr);
    if (!isnan(r->rate) && k >= 0 && (size_t)k < n)
        snprintf(buf + k, n - (size_t)k, line ? ", %.0f %s/s" : "  %.0f %s/s", r->rate, unit);
}

static int loop(TrainRun *r, Err *err) {
    const Trainer *t = r->t;
    sys_catch_interrupts();
    Progress pg;
    progress_start(&pg, t->who, "steps", r->total, 0);
    if (dist_rank() != 0 || t->line_per_step) pg.enabled = 0;
    char text[512];
    int rc = RLHF_OK, stop = 0;
    double t0 = now_seconds();
    while (r->st.step < r->total && !stop) {
        stop = sys_interrupted();
        if (dist_size() == 1 && stop) break;
        float lr = lr_schedule(r->st.step, r->warmup, r->total, (float)r->o->lr, (float)r->o->min_lr);
        r->at = r->st.step + 1, r->lr = lr;
        if ((rc = t->grads ? grad_step(r, lr, err) : own_step(r, lr, err))) break;
        r->st.step++;
        if (dist_stop_together(&stop)) {
            rc = err_set(err, RLHF_EIO, "MPI all-reduce failed");
            break;
        }
        train_metric(r, "lr", lr);
        int evals = r->st.step % r->eval_every == 0 || r->st.step == r->total;
        if (evals && t->eval && (rc = t->eval(r, err))) break;
        if ((evals || t->line_per_step) && !pg.enabled && dist_rank() == 0) {
            status(r, text, sizeof text, 1);
            char eta[32] = "";
            if (t->line_per_step) {
                double per = (now_seconds() - t0) / (double)(r->st.step - r->step0);
                progress_format_eta(per * (double)(r->total - r->st.step), eta + 6, 26);
                memcpy(eta, "  ETA ", 6);
            }
            fprintf(stderr, "step %lld/%lld%s %s%s\n", (long long)r->st.step, (long long)r->total,
                    t->line_per_step ? " " : ":", text, eta);
        }
        if (r->st.step % r->save_every == 0 || r->st.step == r->total)
            if ((rc = train_save(r, r->st.step == r->total, err))) break;
        status(r, text, sizeof text, 0);
        progress_update(&pg, r->st.step, text);
    }
    progress_finish(&pg, NULL);
    r->stopped = stop || sys_interrupted();
    if (rc) return rc;
    if (r->stopped || r->st.step == 0 || (r->st.step % r->save_every && r->st.step != r->total))
        rc = train_save(r, 1, err);
    if (!rc && dist_size() > 1 && dist_rank() == 0 && r->st.step > r->step0)
        fprintf(stderr, "%s: %d ranks; all-reduce: %.2f ms per step\n", t->who, dist_size(),
                1e3 * dist_allreduce_seconds() / (double)(r->st.step - r->step0));
    return rc;
}

/* ---- the whole run ---------------------------------------------------------------- */

static int finish(TrainRun *r, char *line, size_t nl, Err *err) {
    const Trainer *t = r->t;
    int rc = RLHF_OK;
    if (!r->stopped && t->finish) {
        rc = t->finish(r, err);
        if (rc == RLHF_EINTR) r->stopped = 1, rc = RLHF_OK;
        if (rc) return rc;
    }
    if (dist_rank() != 0) return RLHF_OK; /* the store and the messages are rank 0's */
    char note[256] = "";
    line[0] = 0;
    t->report(r, note, sizeof note, line, nl);
    if (r->stopped) {
        line[0] = 0;
        fprintf(stderr, "%s: interrupted at step %lld; checkpoint saved to %s (rerun with --resume)\n",
                t->who, (long long)r->st.step, r->o->out);
    }
    if (!r->db) return RLHF_OK;
    if ((rc = db_metricbuf_flush(r->db, r->st.run_id, &r->metrics, err))) return rc;
    return train_register_checkpoint(r->db, r->o->out, r->o->name, t->kind, r->st.parent_id,
                                     &r->m.cfg, r->template, r->st.run_id,
                                     r->stopped ? "interrupted" : "done", note, NULL, err);
}

static void run_free(TrainRun *r) {
    db_metricbuf_free(&r->metrics);
    adamw_free(&r->opt);
    model_free(&r->m);
    free(r->template);
    free(r->payload);
    if (r->db) db_close(r->db);
}

static int run(TrainRun *r, char *line, size_t nl, Err *err) {
    const TrainOpts *o = r->o;
    if (o->threads) openblas_set_num_threads((int)o->threads);
    int rc = o->db ? db_open(o->db, dist_rank() ? DB_OPEN_READONLY : DB_OPEN_EXISTING, &r->db, err)
                   : RLHF_OK;
    if (!rc) rc = r->t->prepare(r, err);
    if (rc) return rc;
    if (dist_rank() != 0 && r->db) { /* the data is read: from here on rank 0 alone writes */
        db_close(r->db);
        r->db = NULL;
    }
    if ((rc = settle_state(r, err))) return rc;
    r->opt.weight_decay = (float)o->wd;
    if ((rc = r->t->setup(r, err))) return rc;
    r->st.total_steps = r->total;
    if (r->warmup < 0) r->warmup = (long)(r->total / 20);
    if (!r->eval_every) r->eval_every = r->total / 10 > 0 ? (long)(r->total / 10) : 1;
    if (!r->save_every) r->save_every = r->eval_every;
    r->step0 = r->st.step;
    if ((rc = start_run(r, err))) return rc;
    if ((rc = loop(r, err))) return rc;
    return finish(r, line, nl, err);
}

int train_run(const Trainer *t, const void *opts, int *stopped, char *line, size_t nl, Err *err) {
    const TrainOpts *o = opts;
    TrainRun r;
    memset(&r, 0, sizeof r);
    r.t = t, r.o = o, r.opts = opts, r.optp = &r.opt;
    r.warmup = o->warmup, r.eval_every = o->eval_every, r.save_every = o->save_every;
    r.loss = r.grad_norm = r.rate = NAN;
    *stopped = 0;
    line[0] = 0;
    int rc = (r.ctx = calloc(1, t->ctx_size ? t->ctx_size : 1)) ? check_out(&r, err)
                                                               : err_set(err, RLHF_ENOMEM, "out of memory");
    if (!rc) rc = run(&r, line, nl, err);
    if (rc && r.db && r.st.run_id > 0) {
        Err e2 = {0};
        db_metricbuf_flush(r.db, r.st.run_id, &r.metrics, &e2);
        db_run_finish(r.db, r.st.run_id, "failed", 0, err->msg, &e2);
    }
    *stopped = r.stopped;
    if (r.ctx && t->release) t->release(&r);
    free(r.ctx);
    run_free(&r);
    return rc;
}

/* ---- helpers for the trainers --------------------------------------------------- */

int train_load_policy(TrainRun *r, Tokenizer **tok, Err *err) {
    int rc = rl_policy_load(r->o->init, r->o->tok_path, &r->m, tok, err);
    if (!rc)
        rc = db_template_resolve(r->db, r->o->template, r->o->init, chat_template_find,
                                 &r->template, &r->parent_id, err);
    return rc;
}

int train_examples_sha(TrainRun *r, const SeqExample *ex, int n, const char *settings, Err *err) {
    char init_sha[65], *all = NULL;
    int rc = model_file_sha256(r->o->init, init_sha, err);
    if (rc) return rc;
    if (asprintf(&all, "%s %s", init_sha, settings) < 0)
        return err_set(err, RLHF_ENOMEM, "out of memory");
    rl_examples_sha(ex, n, all, r->sha);
    free(all);
    return RLHF_OK;
}
