/* rlhf ppo on the run engine: RLHF with PPO (rl/ppo.h) on the store's
 * training prompts, scored by a reward model. Wires the pieces: policy,
 * frozen reference, RM scorer, value head or value model, prompts, optional
 * ptx corpus; one stderr line per step, TRL-named metrics; the PPO state and
 * a separate value model ride in the checkpoint's payload; registered as a
 * policy whose parent is the starting one. */
#include "rl/trainers.h"

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "db/prompts.h"
#include "model/chat.h"
#include "model/checkpoint.h"
#include "model/dist.h"
#include "rm/rm_score.h"
#include "util/sys.h"
#include "util/text.h"

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

/* The RM scores an answer as gen stores it: one that ended at a stop string
 * is its text before the stop, ended with </s> (seq_join_text); one that
 * ended at </s> or ran out of tokens, the tokens as sampled. */
static int rm_reward(void *ctx, const SeqExample *ex, const SampleResult *res, int n,
                     float *scores, Err *err) {
    RmScorer *rm = ctx;
    SeqExample *own = calloc((size_t)n, sizeof *own);
    unsigned char *made = calloc((size_t)n, 1);
    int rc = own && made ? RLHF_OK : err_set(err, RLHF_ENOMEM, "out of memory");
    for (int i = 0; i < n && !rc; i++) {
        if (res[i].finish != SAMPLE_STOP) {
            own[i] = ex[i];
            continue;
        }
        rc = seq_join_text(rm->tok, ex[i].tokens, ex[i].n_prompt, res[i].text, rm->m.cfg.seq_len,
                           &own[i], err);
        made[i] = !rc;
    }
    if (!rc) rc = rm_score_examples(rm, own, n, scores, err);
    for (int i = 0; own && made && i < n; i++)
        if (made[i]) seq_example_free(&own[i]);
    free(own), free(made);
    return rc;
}

/* ---- the trainer ------------------------------------------------------------------ */

typedef struct PpoRun {
    const PpoOpts *o;
    Model ref, val;
    Tokenizer *tok;
    RmScorer rm;
    char zname[16][160]; /* several RMs: their curves' names (the metric buffer keeps pointers) */
    Prompts prompts;
    int *ptx;
    int64_t n_ptx;
    Ppo ppo;
    int ppo_ready, last_warn;
    char ref_sha[65];
    /* --lora: the reference is the policy's base with its adapter off, and an
     * RM trained with --lora on the same base shares it (views of r->m) */
    int ref_view, rm_shared;
    char init_sha[65];
    PpoStats s;
    double first_score;
} PpoRun;

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

static void log_metrics(TrainRun *r, const PpoStats *s) {
    for (size_t i = 0; i < sizeof METRICS / sizeof METRICS[0]; i++)
        train_metric(r, METRICS[i].name, *(const double *)((const char *)s + METRICS[i].off));
}

/* The reference is a policy with the policy's tokenizer: KL against a reward
 * model's or another tokenizer's next-token distribution measures nothing. */
static int check_ref(TrainRun *r, PpoRun *p, const char *ref_path, Err *err) {
    int rc = model_require_policy(&p->ref, ref_path, err);
    if (rc) return err_prefix(err, "--ref: "), rc;
    if (p->ref.cfg.vocab_size != r->m.cfg.vocab_size)
        return err_set(err, RLHF_EINVAL, "the reference %s has a vocabulary of %d, the policy %d",
                       ref_path, p->ref.cfg.vocab_size, r->m.cfg.vocab_size);
    if (!p->ref.tokenizer) return RLHF_OK; /* a llama2.c file: only --tokenizer names its ids */
    Tokenizer *t = NULL;
    Err ignored = {0}; /* what it carries may hold no tokenizer (an HF directory's other files) */
    if (tok_load_mem(p->ref.tokenizer, p->ref.tokenizer_len, &t, &ignored)) return RLHF_OK;
    rc = tok_require_same(p->tok, r->o->tok_path ? r->o->tok_path : r->o->init, t, ref_path, err);
    tok_free(t);
    return rc;
}

/* The RM: the policy's vocabulary and tokenizer, a context at least as long.
 * A shared one is an adapter on r->m's weights (opened in setup, once r->m
 * has its final weights and heads). */
static int open_rm(TrainRun *r, PpoRun *p, Err *err) {
    const PpoOpts *o = p->o;
    int rc;
    if (p->rm_shared) {
        Model v;
        rc = model_load_adapter_onto(o->rm, &r->m, p->init_sha, &v, NULL, NULL, NULL, err);
        if (!rc) rc = rm_scorer_open_model(&p->rm, &v, o->rm, o->t.tok_path, r->template,
                                           o->c.minibatch, err);
    } else
        rc = rm_spec_is_combined(o->rm) /* several RMs: normalised by their scores in the project */
                 ? rm_scorer_open_in(r->db, &p->rm, o->rm, o->t.tok_path, r->template, o->c.minibatch, err)
                 : rm_scorer_open(&p->rm, o->rm, o->t.tok_path, r->template, o->c.minibatch, err);
    if (rc) return rc;
    if (p->rm.m.cfg.vocab_size != r->m.cfg.vocab_size)
        return err_set(err, RLHF_EINVAL, "the RM's vocabulary (%d) differs from the policy's (%d)",
                       p->rm.m.cfg.vocab_size, r->m.cfg.vocab_size);
    if ((rc = tok_require_same(p->tok, o->t.init, p->rm.tok, o->rm, err))) return rc;
    if (p->rm.m.cfg.seq_len < r->m.cfg.seq_len)
        return err_set(err, RLHF_EINVAL, "the RM's context (%d) is shorter than the policy's (%d)",
                       p->rm.m.cfg.seq_len, r->m.cfg.seq_len);
    return RLHF_OK;
}

static int load_prompts(TrainRun *r, PpoRun *p, Err *err) {
    const char *split = p->o->split;
    p->prompts.tok = p->tok, p->prompts.template = r->template, p->prompts.err = err;
    p->prompts.max_len = r->m.cfg.seq_len;
    PromptFilter f = {0};
    f.split = split;
    int rc = db_prompts_each(r->db, &f, add_prompt, &p->prompts, err);
    if (rc) return rc;
    if (p->prompts.n == 0 && p->prompts.skipped)
        return err_set(err, RLHF_EINVAL, "no training prompts in split '%s' fit the context (%d too long)",
                       split, p->prompts.skipped);
    if (p->prompts.n == 0)
        return err_set(err, RLHF_EINVAL, "no training prompts in split '%s'; import some with "
                                         "`rlhf prompts import FILE --split %s`", split, split);
    if (p->prompts.skipped && dist_rank() == 0)
        fprintf(stderr, "ppo: %d prompts leave no room for an answer in the context; skipped\n",
                p->prompts.skipped);
    return RLHF_OK;
}

/* With --lora: whether the reference is the base with the adapter off (no
 * --ref, or --ref the policy's own file) and whether the RM is an adapter on
 * the same base (its base's sha256 is --policy's). */
static int lora_sharing(PpoRun *p, Err *err) {
    const PpoOpts *o = p->o;
    if (!o->t.lora.rank) return RLHF_OK;
    char ref_sha[65], rm_base[65];
    int rc = model_file_sha256(o->t.init, p->init_sha, err);
    if (!rc && o->ref) rc = model_file_sha256(o->ref, ref_sha, err);
    if (!rc) rc = model_adapter_base(o->rm, rm_base, err);
    if (rc) return rc;
    p->ref_view = !o->ref || strcmp(ref_sha, p->init_sha) == 0;
    p->rm_shared = strcmp(rm_base, p->init_sha) == 0;
    return RLHF_OK;
}

/* The views on r->m's weights, made once they are final (after a resume and
 * with the value head ppo_init would add). */
static int lora_views(TrainRun *r, PpoRun *p, Err *err) {
    int rc = RLHF_OK;
    if (!p->ref_view && !p->rm_shared) return RLHF_OK;
    if (p->o->c.value_mode == PPO_VALUE_HEAD && !(r->m.heads & MODEL_HEAD_VALUE))
        rc = model_set_heads(&r->m, r->m.heads | MODEL_HEAD_VALUE, err);
    if (!rc && p->ref_view) rc = model_view(&p->ref, &r->m, NULL, 0, err);
    if (!rc && p->rm_shared) rc = open_rm(r, p, err);
    /* --value rm: the value model starts as the RM, here its adapter and head on the base */
    if (!rc && p->rm_shared && p->o->c.value_mode == PPO_VALUE_MODEL &&
        !(rc = model_load_adapter_onto(p->o->rm, &r->m, p->init_sha, &p->val, NULL, NULL, NULL, err)))
        rc = ppo_value_from_rm(&p->val, err);
    if (!rc && dist_rank() == 0)
        fprintf(stderr, "ppo: LoRA: the reference is %s; the RM %s%s\n",
                p->ref_view ? "the base with the adapter off (no copy)" : p->o->ref,
                p->rm_shared ? "is an adapter on the same base (no copy)" : "is its own model",
                p->rm_shared && p->o->c.value_mode == PPO_VALUE_MODEL
                    ? "; the value model, from the RM, is an adapter on it too" : "");
    return rc;
}

static int prepare(TrainRun *r, Err *err) {
    PpoRun *p = r->ctx;
    const PpoOpts *o = p->o = r->opts;
    p->first_score = NAN;
    const char *ref_path = o->ref ? o->ref : o->t.init;
    if (o->t.threads) infer_set_threads((int)o->t.threads);
    if (!r->db) return err_set(err, RLHF_EINVAL, "no database given: pass --db PATH or set RLHF_DB");
    int rc = model_load(o->t.init, &r->m, err);
    if (rc) return err_prefix(err, "--policy: "), rc;
    if ((rc = model_require_policy(&r->m, o->t.init, err)) || (rc = lora_sharing(p, err)) ||
        (!p->ref_view && (rc = model_load(ref_path, &p->ref, err))) ||
        (rc = model_load_tokenizer(&r->m, o->t.init, o->t.tok_path, &p->tok, err)))
        return rc;
    if (!r->m.tokenizer) { /* the output carries the tokenizer it was trained with */
        unsigned char *tb;
        size_t tl;
        if ((rc = tok_to_bytes(p->tok, &tb, &tl, err))) return rc;
        rc = model_set_tokenizer(&r->m, tb, tl, err);
        free(tb);
        if (rc) return rc;
    }
    rc = db_template_resolve(r->db, o->t.template, o->t.init, chat_template_find, &r->template,
                             &r->parent_id, err);
    if (!rc && !r->template && !(r->template = strdup(SEQ_DEFAULT_TEMPLATE)))
        rc = err_set(err, RLHF_ENOMEM, "out of memory");
    if (!rc && !p->rm_shared) rc = open_rm(r, p, err);
    if (!rc && !p->ref_view) rc = check_ref(r, p, ref_path, err);
    if (!rc && o->c.value_mode == PPO_VALUE_MODEL && !p->rm_shared &&
        !(rc = model_load(o->rm, &p->val, err)))
        rc = ppo_value_from_rm(&p->val, err);
    if (rc) return rc;
    if (o->ref && dist_rank() == 0) check_ancestry(r->db, r->parent_id, o->ref);
    if ((rc = load_prompts(r, p, err)) || (rc = model_file_sha256(ref_path, p->ref_sha, err)))
        return rc;
    char text[128];
    snprintf(text, sizeof text, "%s %016llx %d %g", p->ref_sha,
             (unsigned long long)ppo_prompts_hash(p->prompts.p, p->prompts.n), o->c.advantage,
             (double)o->c.temperature);
    sha256_hex(text, strlen(text), r->sha);
    r->n_train = p->prompts.n;
    return RLHF_OK;
}

static int setup(TrainRun *r, Err *err) {
    PpoRun *p = r->ctx;
    const PpoOpts *o = p->o;
    r->total = o->t.steps;
    r->warmup = 0, r->eval_every = 1;
    if (!r->save_every) r->save_every = 5;
    int rc = lora_views(r, p, err);
    if (!rc) rc = ppo_init(&p->ppo, &o->c, &r->m, &p->ref, &p->val, p->tok, p->prompts.p, p->prompts.n,
                      &r->opt, r->payload, (size_t)r->st.payload, (uint64_t)o->t.seed, err);
    if (rc) return rc;
    p->ppo_ready = 1;
    r->optp = &p->ppo.opt;
    if (!r->resumed) memcpy(p->ppo.st.ref_sha, p->ref_sha, sizeof p->ref_sha);
    if (o->ptx && ((rc = load_ptx(o->ptx, p->tok, &p->ptx, &p->n_ptx, err)) ||
                   (rc = ppo_set_ptx(&p->ppo, p->ptx, p->n_ptx, err))))
        return rc;
    if (dist_rank() == 0)
        fprintf(stderr,
                "ppo: policy %s (%zu parameters), RM %s, value %s, %d training prompts, %d×%d "
                "answers per step, beta %g%s\n",
                o->t.init, r->m.n_params, o->rm, p->ppo.value ? "model (from the RM)" : "head",
                p->prompts.n, p->ppo.c.prompts, p->ppo.c.samples, p->ppo.kl.beta,
                p->ppo.c.kl_target > 0 ? " (adaptive)" : " (fixed)");
    return RLHF_OK;
}

static int save_state(TrainRun *r, void **bytes, size_t *len, Err *err) {
    PpoRun *p = r->ctx;
    return ppo_state_bytes(&p->ppo, bytes, len, err);
}

/* One rollout batch and its PPO epochs (the optimizer steps are PPO's). */
static int update(TrainRun *r, float lr, Err *err) {
    PpoRun *p = r->ctx;
    PpoStats *s = &p->s;
    /* the engine's schedule, for the policy and (in proportion) the value model */
    double f = p->o->c.lr > 0 ? lr / p->o->c.lr : 1;
    p->ppo.c.lr = lr, p->ppo.c.value_lr = (float)(p->o->c.value_lr * f);
    int rc = ppo_step(&p->ppo, rm_reward, &p->rm, s, err);
    if (rc) return rc;
    /* several RMs: each one's mean normalised reward of this step's answers, as a curve */
    if (p->rm.n_parts && p->rm.n_parts <= 16) {
        double m[16];
        rm_scorer_take_part_means(&p->rm, m);
        for (int k = 0; k < p->rm.n_parts; k++) {
            const char *b = strrchr(p->rm.paths[k], '/');
            snprintf(p->zname[k], sizeof p->zname[k], "objective/scores_z/%d:%.120s", k,
                     b ? b + 1 : p->rm.paths[k]);
            train_metric(r, p->zname[k], m[k]);
        }
    }
    /* every minibatch update skipped (non-finite): the engine counts the step */
    r->loss = s->skipped && !s->updates ? NAN : s->pg_loss;
    if (s->skipped) {
        train_metric(r, "policy/skipped_updates", s->skipped);
        if (dist_rank() == 0)
            fprintf(stderr, "ppo: warning: step %lld: %d of %d minibatch updates skipped (gradient "
                            "norm not finite)\n",
                    (long long)s->step, s->skipped, s->skipped + s->updates);
    }
    if (isnan(p->first_score)) p->first_score = s->score;
    log_metrics(r, s);
    for (int bit = 1; bit <= PPO_WARN_NOISE; bit <<= 1)
        if ((s->warn & bit) && !(p->last_warn & bit) && dist_rank() == 0)
            fprintf(stderr, "ppo: warning: step %lld: %s\n", (long long)s->step, ppo_warn_text(bit));
    p->last_warn = s->warn;
    return RLHF_OK;
}

static void status(TrainRun *r, char *buf, size_t n, int line) {
    PpoRun *p = r->ctx;
    const PpoStats *s = &p->s;
    double tt = s->t_rollout + s->t_score + s->t_update + 1e-12;
    (void)line;
    snprintf(buf, n,
             " score %+.3f  reward %+.3f  kl %.3f (full %.3f)  beta %.4f  ent %.2f  len %.1f  end "
             "%.0f%%  clip %.2f  vf %.3f  ev %.2f  [roll %.0f%% score %.0f%% upd %.0f%%]",
             s->score, s->rlhf_reward, s->kl, s->kl_full, s->beta, s->entropy_tok, s->len_mean,
             100 * s->eos_frac, s->pg_clipfrac, s->vf_loss, s->explained_var,
             100 * s->t_rollout / tt, 100 * s->t_score / tt, 100 * s->t_update / tt);
}

static void config(TrainRun *r, cJSON *j) {
    PpoRun *p = r->ctx;
    const PpoConfig *c = &p->ppo.c;
    const struct {
        const char *name;
        double v;
    } v[] = {{"prompts", c->prompts},        {"samples", c->samples},
             {"max_new", c->max_new},        {"epochs", c->epochs},
             {"minibatch", c->minibatch},    {"value_lr", c->value_lr},
             {"beta", c->beta},              {"kl_target", c->kl_target},
             {"kl_horizon", c->kl_horizon},  {"clip_value", c->cliprange_value},
             {"gamma", c->gamma},            {"lambda", c->lambda},
             {"vf_coef", c->vf_coef},        {"length_penalty", c->length_penalty},
             {"whiten_scores", c->whiten_scores}, {"score_clip", c->score_clip},
             {"ptx_coef", p->o->ptx ? c->ptx_coef : 0}, {"prompts_available", p->prompts.n}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) cJSON_AddNumberToObject(j, v[i].name, v[i].v);
    cJSON_AddNumberToObject(j, "ratio_clip", c->cliprange);
    cJSON_AddNumberToObject(j, "temperature", c->temperature);
    static const char *const adv[] = {"gae", "rloo", "grpo"};
    cJSON_AddStringToObject(j, "advantage", adv[c->advantage]);
    cJSON_AddStringToObject(j, "value", c->value_mode == PPO_VALUE_MODEL ? "rm" : "head");
}

static void report(TrainRun *r, char *note, size_t nn, char *line, size_t nl) {
    PpoRun *p = r->ctx;
    const PpoStats *s = &p->s;
    long long step = (long long)r->st.step;
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    fprintf(stderr, "ppo: peak RSS %ld MiB\n", u.ru_maxrss / 1024);
    double score = isnan(r->loss) ? NAN : s->score, kl = isnan(r->loss) ? NAN : s->kl;
    snprintf(note, nn, "step %lld, score %.4f, kl %.4f", step, score, kl);
    if (isnan(r->loss))
        snprintf(line, nl, "already trained %lld PPO steps; %s is up to date", step, r->o->out);
    else
        snprintf(line, nl, "trained %lld PPO steps: score %.4f -> %.4f, kl %.4f, beta %.4f; wrote %s",
                 step, p->first_score, s->score, s->kl, p->ppo.kl.beta, r->o->out);
}

static void release(TrainRun *r) {
    PpoRun *p = r->ctx;
    if (p->ppo_ready) ppo_free(&p->ppo);
    rm_scorer_close(&p->rm);
    tok_free(p->tok);
    model_free(&p->ref), model_free(&p->val);
    prompts_free(&p->prompts);
    free(p->ptx);
}

const Trainer TRAIN_PPO = {
    .who = "ppo", .label = "PPO", .magic = "RL-PPO\0\0", .kind = "policy", .run_kind = "ppo",
    .changed = "the reference, the prompts, --advantage or --temperature", .line_per_step = 1, .own_optimizer = 1,
    .prepare = prepare, .setup = setup, .update = update, .status = status,
    .save_state = save_state, .config = config, .report = report, .ctx_size = sizeof(PpoRun),
    .release = release};
