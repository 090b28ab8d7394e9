/* rlhf eval's engine (see eval.h): settle both sides, generate what is
 * missing, let the judge rank every policy's answers per prompt, score with
 * the RM, estimate the KL from the reference, and summarise. */
#include "rl/eval.h"
#include "annotator/autolabel.h"
#include "db/candidates.h"
#include "db/prompts.h"
#include "db/rankings.h"
#include "db/registry.h"
#include "gen/best_of.h"
#include "gen/model_backend.h"
#include "model/checkpoint.h"
#include "model/loss.h"
#include "model/seq.h"
#include "rm/rm_eval.h"
#include "util/progress.h"
#include "util/sys.h"
#include "util/text.h"
#include "util/words.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

EvalOptions eval_options_default(void) {
    EvalOptions o = {0};
    o.split = "test";
    o.n = 1;
    o.sp = sample_params_chat();
    o.seed = 1;
    o.judge_timeout_ms = 30000;
    o.judge_seed = 1;
    o.batch = 8;
    o.bootstrap = 2000;
    return o;
}

int eval_rm_score(void *rm_scorer, const char *prompt, const char *const *answers,
                  const unsigned char *cut, int n, float *out, Err *err) {
    const char **prompts = malloc((size_t)n * sizeof *prompts);
    if (!prompts) return err_set(err, RLHF_ENOMEM, "out of memory");
    for (int i = 0; i < n; i++)
        prompts[i] = prompt;
    int rc = rm_score_texts_cut(rm_scorer, prompts, answers, cut, n, out, err);
    free(prompts);
    return rc;
}

int eval_logprobs_examples(const Model *m, const SeqExample *ex, const float *temperature, int n,
                           int batch, double *out, Err *err) {
    int T = m->cfg.seq_len;
    if (batch < 1) batch = 1;
    RunState rs;
    int rc = model_runstate_create(&rs, &m->cfg, batch, T, err);
    if (rc) return rc;
    int *tokens = malloc(sizeof(int) * (size_t)batch * T),
        *targets = malloc(sizeof(int) * (size_t)batch * T);
    int *lens = malloc(sizeof(int) * (size_t)batch), *np = malloc(sizeof(int) * (size_t)batch);
    float *logp = malloc(sizeof(float) * (size_t)batch * T);
    if (!tokens || !targets || !lens || !np || !logp)
        rc = err_set(err, RLHF_ENOMEM, "out of memory");
    for (int i = 0, b; i < n && !rc; i += b) {
        /* one pass holds examples of one temperature */
        float t = temperature ? temperature[i] : 1;
        for (b = 1; b < batch && i + b < n && (!temperature || temperature[i + b] == t); b++)
            ;
        int Tb = seq_pack(ex + i, b, tokens, lens);
        for (int j = 0; j < b; j++)
            np[j] = ex[i + j].n_prompt;
        LossHeadLogp h = {.targets = targets, .logp = logp, .temperature = t};
        seq_answer_targets(tokens, lens, np, b, Tb, targets);
        rc = model_forward(m, &rs, tokens, b, Tb, 0, err);
        if (!rc) rc = model_head(m, &rs, 0, loss_head_logp, &h, err);
        if (!rc) seq_row_sums(logp, targets, b, Tb, out + i);
    }
    free(tokens), free(targets), free(lens), free(np), free(logp);
    model_runstate_free(&rs);
    return rc;
}

int eval_logprobs(const Model *m, const Tokenizer *tok, const char *template,
                  const char *const *prompts, const char *const *answers, int n, int batch,
                  double *out, Err *err) {
    SeqExample *ex = calloc((size_t)(n ? n : 1), sizeof *ex);
    int rc = ex ? RLHF_OK : err_set(err, RLHF_ENOMEM, "out of memory");
    for (int i = 0; i < n && !rc; i++)
        rc = seq_encode(tok, template, prompts[i], answers[i], 1, m->cfg.seq_len, &ex[i], err);
    if (!rc) rc = eval_logprobs_examples(m, ex, NULL, n, batch, out, err);
    for (int i = 0; ex && i < n; i++)
        seq_example_free(&ex[i]);
    free(ex);
    return rc;
}

/* ---- the run's state ------------------------------------------------------ */

typedef struct Answer {
    int64_t cand_id, n_tokens;
    const CandidateRow *row; /* the stored candidate: text, token ids, how it ended */
    const char *text;        /* row->text */
    double w;                /* how many of the side's draws gave this answer */
    int level;               /* the judge's rank, 1 = best */
    float reward;
    double lp, lp_ref;
} Answer;

typedef struct EvalPrompt {
    int64_t id;
    char *text;
    CandidateRow *rows;
    int n_rows;
    Answer *ans[2];
    int n_ans[2];
} EvalPrompt;

typedef struct SideState {
    char *path;     /* checkpoint sampled */
    char *template; /* generation template */
    int64_t policy_id, model_id;
    char *policy_name, *name;
    char *draw_config; /* the configuration its draws are made under (gen_draw_config) */
} SideState;

typedef struct Run {
    Db *db;
    const EvalOptions *o;
    EvalPrompt *p;
    int np, cap;
    SideState s[2];
    RmScorer rm;
    int have_rm;
    char *rm_path, *ref_path;
    int64_t labeler_id;
    char judge[300]; /* the judge's labeler name */
    WordSet known;   /* --known-words */
} Run;

static int collect_prompt(const PromptRow *row, void *ctx) {
    Run *r = ctx;
    if (r->np == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 64;
        EvalPrompt *p = realloc(r->p, (size_t)r->cap * sizeof *p);
        if (!p) return RLHF_ENOMEM;
        r->p = p;
    }
    EvalPrompt *e = &r->p[r->np];
    memset(e, 0, sizeof *e);
    e->id = row->id;
    if (!(e->text = strdup(row->text))) return RLHF_ENOMEM;
    r->np++;
    return 0;
}

static void run_free(Run *r) {
    for (int i = 0; i < r->np; i++) {
        free(r->p[i].text);
        db_candidates_free(r->p[i].rows, r->p[i].n_rows);
        free(r->p[i].ans[0]), free(r->p[i].ans[1]);
    }
    free(r->p);
    for (int k = 0; k < 2; k++) {
        free(r->s[k].path), free(r->s[k].template);
        free(r->s[k].policy_name), free(r->s[k].name), free(r->s[k].draw_config);
    }
    if (r->have_rm) rm_scorer_close(&r->rm);
    free(r->rm_path), free(r->ref_path);
    wordset_free(&r->known);
}

/* A checkpoint file, else a registered model's checkpoint; *path is owned. */
static int resolve(Db *db, const char *key, const char *what, char **path, Err *err) {
    *path = NULL;
    /* several RMs combined: the spec is opened as it is (best-of names hold a '+' too) */
    if (access(key, F_OK) == 0 || (!strcmp(what, "--rm") && rm_spec_is_combined(key))) {
        if (!(*path = strdup(key))) return err_set(err, RLHF_ENOMEM, "out of memory");
        return RLHF_OK;
    }
    ModelRow row;
    int rc = db_model_get(db, key, &row, err);
    if (rc == RLHF_ENOTFOUND)
        return err_set(err, RLHF_EINVAL,
                       "%s: '%s' is neither a checkpoint file nor a model of the project", what,
                       key);
    if (rc) return rc;
    cJSON *c = row.path ? NULL : cJSON_Parse(row.config ? row.config : "");
    const cJSON *bo = cJSON_GetObjectItemCaseSensitive(c, "best_of");
    const cJSON *pol = cJSON_GetObjectItemCaseSensitive(c, "policy");
    if (!row.path && cJSON_IsNumber(bo) && cJSON_IsString(pol))
        rc = err_set(err, RLHF_EINVAL,
                     "%s: '%s' is best-of-%d of '%s': give %s %s %s-best-of %d --rm RM", what, key,
                     bo->valueint, pol->valuestring, what, pol->valuestring, what, bo->valueint);
    else if (!row.path)
        rc = err_set(err, RLHF_EINVAL, "%s: the model '%s' has no checkpoint of its own (kind %s)",
                     what, key, row.kind);
    else if (!(*path = strdup(row.path)))
        rc = err_set(err, RLHF_ENOMEM, "out of memory");
    cJSON_Delete(c);
    db_model_row_free(&row);
    return rc;
}

/* Loads a checkpoint and (unless need_tok is 0) its tokenizer, or says why
 * not, naming the flag. Every side and the reference are policies: a reward
 * model is refused here, before settle registers anything. */
static int check_checkpoint(const char *path, const char *tok_path, int need_tok, const char *what,
                            Config *cfg, Err *err) {
    Model m;
    Tokenizer *t = NULL;
    int rc = model_load(path, &m, err);
    if (!rc) {
        rc = model_require_policy(&m, path, err);
        if (!rc && need_tok) rc = model_load_tokenizer(&m, path, tok_path, &t, err);
        *cfg = m.cfg;
        if (t) tok_free(t);
        model_free(&m);
    }
    if (rc) err_prefix(err, "%s: ", what);
    return rc;
}

static void judge_label(const EvalOptions *o, char *buf, size_t n) {
    if (o->judge_name)
        snprintf(buf, n, "%s", o->judge_name);
    else if (o->rule && o->noise > 0)
        snprintf(buf, n, "judge:%s:noise=%g", o->rule->name, o->noise);
    else if (o->rule)
        snprintf(buf, n, "judge:%s", o->rule->name);
    else {
        /* the program's file name: "python3 judge.py" is judge:cmd:judge.py */
        const char *c = o->judge_cmd, *last = c;
        for (const char *w = c; *w;) {
            while (*w == ' ')
                w++;
            if (*w) last = w;
            while (*w && *w != ' ')
                w++;
        }
        size_t len = strcspn(last, " ");
        char word[256];
        snprintf(word, sizeof word, "%.*s", (int)(len < 255 ? len : 255), last);
        snprintf(buf, n, "judge:cmd:%s", path_base(word));
    }
}

/* Checks everything, then registers both sides (and best-of models) and the
 * judge in one transaction. */
static int settle(Run *r, Err *err) {
    const EvalOptions *o = r->o;
    const char *flag[2] = {"--a", "--b"};
    Config cfg[2], rc_cfg;
    int rc = RLHF_OK;
    for (int k = 0; k < 2 && !rc; k++) {
        if (!o->side[k].policy) return err_set(err, RLHF_EINVAL, "%s POLICY is required", flag[k]);
        if (o->side[k].best_of > 1 && !o->rm)
            return err_set(err, RLHF_EINVAL, "%s best-of-%d needs a reward model (--rm)", flag[k],
                           o->side[k].best_of);
        rc = resolve(r->db, o->side[k].policy, flag[k], &r->s[k].path, err);
        if (!rc) rc = check_checkpoint(r->s[k].path, o->tok_path, 1, flag[k], &cfg[k], err);
    }
    if (!rc && !o->rule && !o->judge_cmd)
        rc = err_set(err, RLHF_EINVAL, "no judge: give a rule or a command");
    if (!rc && o->ref) {
        rc = resolve(r->db, o->ref, "--ref", &r->ref_path, err);
        /* the ref reads the policy's tokens: it needs no tokenizer of its own */
        if (!rc) rc = check_checkpoint(r->ref_path, NULL, 0, "--ref", &rc_cfg, err);
        for (int k = 0; k < 2 && !rc; k++)
            if (cfg[k].vocab_size != rc_cfg.vocab_size)
                rc = err_set(err, RLHF_EINVAL, "--ref: a vocabulary of %d tokens, %s has %d",
                             rc_cfg.vocab_size, flag[k], cfg[k].vocab_size);
    }
    if (!rc && o->rm) {
        rc = resolve(r->db, o->rm, "--rm", &r->rm_path, err);
        if (!rc && (rc = rm_scorer_open_in(r->db, &r->rm, r->rm_path, NULL, NULL, o->batch, err)))
            err_prefix(err, "--rm: ");
        r->have_rm = !rc;
    }
    if (!rc) rc = sample_params_check(&o->sp, err);
    if (rc) return rc;
    judge_label(o, r->judge, sizeof r->judge);

    rc = db_begin(r->db, err);
    for (int k = 0; k < 2 && !rc; k++) {
        SideState *s = &r->s[k];
        /* a registered name keeps its name; a file is found by its path or named after it */
        ModelRow row = {0};
        if (access(o->side[k].policy, F_OK) != 0)
            rc = db_model_get(r->db, o->side[k].policy, &row, err);
        if (!rc)
            rc = gen_register_model(r->db, s->path, row.name, NULL, &s->policy_id, &s->template,
                                    &s->policy_name, err);
        db_model_row_free(&row);
        s->model_id = s->policy_id;
        if (!rc && o->side[k].best_of > 1)
            rc = best_of_register(r->db, s->policy_id, s->policy_name, NULL, o->side[k].best_of,
                                  r->rm_path, s->template, &s->model_id, &s->name, err);
        else if (!rc && !(s->name = strdup(s->policy_name)))
            rc = err_set(err, RLHF_ENOMEM, "out of memory");
        if (rc) err_prefix(err, "%s: ", flag[k]);
    }
    if (!rc && r->s[0].model_id == r->s[1].model_id)
        rc = err_set(err, RLHF_EINVAL, "--a and --b are the same model '%s'", r->s[0].name);
    if (!rc)
        rc = db_labeler_ensure(r->db, r->judge, 1, o->rule ? o->rule->name : o->judge_cmd,
                               &r->labeler_id, err);
    if (!rc)
        rc = db_commit(r->db, err);
    else
        db_rollback(r->db);
    return rc;
}

/* ---- answers ------------------------------------------------------------- */

static int generate(Run *r, int k, int64_t *ids, EvalSide *out, Err *err) {
    const EvalOptions *o = r->o;
    SideState *s = &r->s[k];
    int bo = o->side[k].best_of > 1 ? o->side[k].best_of : 0;
    GenModel g;
    /* fp32: the answers are those of the checkpoint as trained */
    int rc = gen_model_open(&g, s->path, o->tok_path, &o->sp, bo ? bo : o->n, 0, INFER_WEIGHTS_F32,
                            err);
    if (rc) return rc;
    GenBackend b = gen_model_backend(&g);
    BestOf best;
    if (bo) {
        rc = best_of_init(&best, &b, bo, s->template, eval_rm_score, &r->rm, r->rm_path, err);
        if (rc) {
            gen_model_close(&g);
            return rc;
        }
        b = best_of_backend(&best);
    }
    /* only draws made this way are this evaluation's (load_answers) */
    if (!(s->draw_config = gen_draw_config(b.params_json, o->seed)))
        rc = err_set(err, RLHF_ENOMEM, "out of memory");
    GenOptions go = {0};
    go.model_id = s->model_id;
    go.template = s->template;
    go.k = o->n;
    go.ids = ids;
    go.n_ids = r->np;
    go.seed = o->seed;
    go.own_config = 1;
    char label[64];
    snprintf(label, sizeof label, "eval %s", k ? "b" : "a");
    Progress prog;
    progress_start(&prog, label, "prompts", 0, o->progress);
    GenStats st = {0};
    if (!rc) rc = gen_run(r->db, &go, &b, &prog, &st, err);
    progress_finish(&prog, NULL);
    out->new_answers = st.candidates;
    if (!rc && st.interrupted) rc = err_set(err, RLHF_EINTR, "interrupted while sampling");
    if (bo) best_of_free(&best);
    gen_model_close(&g);
    if (rc) err_prefix(err, "%s: ", s->name);
    return rc;
}

static int find_row(const EvalPrompt *p, int64_t id);

/* Each side's first n draws for every prompt, as distinct answers weighted by
 * how many draws gave them: a policy that gives one answer n times counts it
 * n times, as if every draw were stored. */
static int load_answers(Run *r, Err *err) {
    for (int i = 0; i < r->np; i++) {
        EvalPrompt *p = &r->p[i];
        int rc = db_candidates_of_prompt(r->db, p->id, &p->rows, &p->n_rows, err);
        if (rc) return rc;
        for (int k = 0; k < 2; k++) {
            int64_t *ids = NULL;
            int n = 0;
            if ((rc = db_draws_first(r->db, p->id, r->s[k].model_id, r->s[k].draw_config, r->o->n,
                                     &ids, &n, err)))
                return rc;
            if (!(p->ans[k] = calloc((size_t)(n ? n : 1), sizeof(Answer)))) {
                free(ids);
                return err_set(err, RLHF_ENOMEM, "out of memory");
            }
            for (int d = 0; d < n; d++) {
                int j = find_row(p, ids[d]), a = 0;
                if (j < 0) continue;
                while (a < p->n_ans[k] && p->ans[k][a].cand_id != ids[d])
                    a++;
                Answer *x = &p->ans[k][a];
                if (a == p->n_ans[k]) {
                    p->n_ans[k]++;
                    x->cand_id = ids[d], x->row = &p->rows[j], x->text = p->rows[j].text;
                    x->n_tokens = p->rows[j].n_tokens, x->reward = NAN;
                }
                x->w += 1;
            }
            free(ids);
            if (!p->n_ans[k])
                return err_set(err, RLHF_EINVAL, "prompt %lld has no answer of '%s'",
                               (long long)p->id, r->s[k].name);
        }
    }
    return RLHF_OK;
}

/* ---- the judge ------------------------------------------------------------ */

struct prev {
    int64_t id[RS_MAX_CAND];
    int rank[RS_MAX_CAND];
    int n;
};

static int collect_prev(const RankingRow *row, void *ctx) {
    struct prev *p = ctx;
    p->n = 0;
    for (int i = 0; i < row->n_items && p->n < RS_MAX_CAND; i++)
        p->id[p->n] = row->items[i].candidate_id, p->rank[p->n++] = row->items[i].rank;
    return 0;
}

static int find_row(const EvalPrompt *p, int64_t id) {
    for (int j = 0; j < p->n_rows; j++)
        if (p->rows[j].id == id) return j;
    return -1;
}

/* Ranks, for one prompt, the answers of every policy evaluated on it so far
 * (the judge's previous ranking) with this run's; a ranking that would not
 * change is kept as it is, so a rerun stores nothing new. When this run's
 * distinct answers are more than a ranking holds (RS_MAX_CAND), a rule judges
 * them all and no ranking is stored (*unstored counts the prompt); an external
 * judge cannot, and the run fails. */
static int judge_prompt(Run *r, EvalPrompt *p, Judge *judge, const char *source, int64_t *stored,
                        int64_t *unstored, Err *err) {
    const EvalOptions *o = r->o;
    struct prev prev = {0};
    RankingFilter f = db_ranking_filter_default();
    f.labeler = r->judge;
    f.prompt_id = p->id;
    f.simulated = 1;
    int rc = db_rankings_each(r->db, &f, collect_prev, &prev, err);
    if (rc) return rc;
    /* the set: this run's distinct answers, then the previous items still in
     * the store while there is room (with many policies and samples the
     * oldest beyond RS_MAX_CAND answers leave the ranking) */
    int idx[AUTO_MAX_TEXTS], level_of[AUTO_MAX_TEXTS], n = 0, reuse = 1;
    for (int k = 0; k < 2; k++)
        for (int a = 0; a < p->n_ans[k]; a++) {
            int j = find_row(p, p->ans[k][a].cand_id), seen = 0, ranked = 0;
            for (int i = 0; i < n; i++)
                seen |= idx[i] == j;
            if (seen) continue;
            if (n == RS_MAX_CAND && judge)
                return err_set(err, RLHF_EINVAL,
                               "prompt %lld: the judge would rank more than %d distinct answers "
                               "of the two sides; evaluate fewer samples per prompt",
                               (long long)p->id, RS_MAX_CAND);
            if (n == AUTO_MAX_TEXTS) /* cannot happen: at most 32 samples a side */
                return err_set(err, RLHF_EINVAL, "prompt %lld: more than %d distinct answers",
                               (long long)p->id, AUTO_MAX_TEXTS);
            for (int i = 0; i < prev.n; i++)
                if (prev.id[i] == p->rows[j].id && prev.rank[i] > 0) ranked = 1;
            reuse &= ranked;
            idx[n++] = j;
        }
    int whole = n <= RS_MAX_CAND; /* a ranking can hold them */
    if (reuse && whole) n = 0; /* the previous ranking holds them all: keep it as it is */
    for (int i = 0; i < prev.n && n < RS_MAX_CAND; i++) {
        int j = find_row(p, prev.id[i]), seen = 0;
        for (int q = 0; q < n; q++)
            seen |= idx[q] == j;
        if (j >= 0 && prev.rank[i] > 0 && !seen) idx[n] = j, level_of[n++] = prev.rank[i];
    }
    unsigned char level[AUTO_MAX_TEXTS], likert[AUTO_MAX_TEXTS];
    if (reuse && whole) {
        for (int i = 0; i < n; i++)
            level[i] = (unsigned char)level_of[i];
    } else {
        /* in candidate-id order, so the judge's view does not depend on history */
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && p->rows[idx[j]].id < p->rows[idx[j - 1]].id; j--) {
                int t = idx[j];
                idx[j] = idx[j - 1], idx[j - 1] = t;
            }
        if (judge) {
            LabelItem it = {0};
            CandidateRow rows[RS_MAX_CAND];
            for (int i = 0; i < n; i++)
                rows[i] = p->rows[idx[i]], it.shown[i] = i;
            it.prompt_id = p->id, it.prompt = p->text, it.cand = rows, it.n_cand = n, it.n = n;
            rc = judge_rank(judge, &it, level, likert, err);
        } else {
            const char *texts[AUTO_MAX_TEXTS];
            for (int i = 0; i < n; i++)
                texts[i] = p->rows[idx[i]].text;
            Rng g;
            rng_seed(&g, o->judge_seed ^ ((uint64_t)p->id * 0x9E3779B97F4A7C15ULL));
            auto_rank_rule(o->rule, NULL, p->text, texts, n, o->noise, &g, level, likert);
        }
        if (rc) return err_prefix(err, "prompt %lld: ", (long long)p->id);
        if (!whole) {
            (*unstored)++; /* judged; a ranking cannot hold them */
        } else {
            RankingItemIn items[RS_MAX_CAND];
            StrBuf shown = {0};
            sb_puts(&shown, "[");
            for (int i = 0; i < n; i++) {
                items[i] = (RankingItemIn){p->rows[idx[i]].id, level[i], likert[i], NULL, i};
                sb_printf(&shown, "%s%lld", i ? "," : "", (long long)p->rows[idx[i]].id);
            }
            sb_puts(&shown, "]");
            RankingIn in = {0};
            in.prompt_id = p->id, in.labeler_id = r->labeler_id, in.simulated = 1;
            in.shown_order = shown.s, in.time_spent_ms = -1, in.gold_agreement = NAN;
            in.source = source, in.items = items, in.n_items = n;
            if (n >= 2) {
                rc = db_ranking_submit(r->db, &in, NULL, err);
                if (!rc) (*stored)++;
            }
            sb_free(&shown);
            if (rc) return err_prefix(err, "prompt %lld: ", (long long)p->id);
        }
    }
    for (int k = 0; k < 2; k++)
        for (int a = 0; a < p->n_ans[k]; a++)
            for (int i = 0; i < n; i++)
                if (p->rows[idx[i]].id == p->ans[k][a].cand_id) p->ans[k][a].level = level[i];
    return RLHF_OK;
}

static int judge_all(Run *r, EvalResult *res, Err *err) {
    const EvalOptions *o = r->o;
    Judge *judge = NULL;
    char source[300];
    snprintf(source, sizeof source, "eval:%s%s",
             o->rule ? "auto:" : "auto-cmd:", o->rule ? o->rule->name : o->judge_cmd);
    int rc = o->judge_cmd ? judge_start(o->judge_cmd, o->judge_timeout_ms, &judge, err) : RLHF_OK;
    Progress prog;
    progress_start(&prog, "judge", "prompts", r->np, o->progress);
    for (int i = 0; i < r->np && !rc; i++) {
        if (sys_interrupted())
            rc = err_set(err, RLHF_EINTR, "interrupted while judging");
        else
            rc = judge_prompt(r, &r->p[i], judge, source, &res->rankings_new,
                              &res->prompts_unstored, err);
        progress_update(&prog, i + 1, NULL);
    }
    progress_finish(&prog, NULL);
    judge_stop(judge);
    return rc;
}

/* ---- rewards and KL ----------------------------------------------------------- */

static int score_rewards(Run *r, Err *err) {
    for (int i = 0; i < r->np; i++)
        for (int k = 0; k < 2; k++) {
            EvalPrompt *p = &r->p[i];
            const char *texts[64];
            unsigned char cut[64];
            float sc[64];
            int n = p->n_ans[k] < 64 ? p->n_ans[k] : 64;
            /* an answer cut at max tokens is scored unfinished, as PPO scores it */
            for (int a = 0; a < n; a++)
                texts[a] = p->ans[k][a].text, cut[a] = p->ans[k][a].row->finish == CAND_FINISH_LENGTH;
            int rc = eval_rm_score(&r->rm, p->text, texts, cut, n, sc, err);
            if (rc) return rc;
            for (int a = 0; a < n; a++)
                p->ans[k][a].reward = sc[a];
        }
    return RLHF_OK;
}

/* The nearest model of kind sft with a checkpoint, from id up its parents. */
static int default_ref(Db *db, int64_t id, char **path, Err *err) {
    ModelRow m;
    *path = NULL;
    int rc = db_model_ancestor(db, id, "sft", &m, err);
    if (rc == RLHF_ENOTFOUND) return RLHF_OK;
    if (!rc && !(*path = strdup(m.path))) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    db_model_row_free(&m);
    return rc;
}

static int same_file(const char *a, const char *b) {
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && strcmp(ra, rb) == 0;
}

/* The temperature an answer was sampled at (its stored parameters), else dflt. */
static float answer_temperature(const CandidateRow *row, float dflt) {
    cJSON *c = row->params ? cJSON_Parse(row->params) : NULL;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "temperature");
    float v = cJSON_IsNumber(t) ? (float)t->valuedouble : dflt;
    cJSON_Delete(c);
    return v;
}

/* Answer x of a prompt as the policy sampled it: the templated prompt as gen
 * prefilled it, then the sampled ids (stop-string tokens included, </s> only
 * when it was sampled). A candidate stored without its ids (imported, or
 * sampled before schema 4) is its text re-encoded, with </s> unless it was
 * cut at max tokens. */
static int answer_example(const Run *r, int k, const Tokenizer *tok, int max_len, const char *prompt,
                          const Answer *x, SeqExample *ex, Err *err) {
    const CandidateRow *row = x->row;
    if (!row->tokens)
        return seq_encode(tok, r->s[k].template, prompt, x->text,
                          row->finish != CAND_FINISH_LENGTH, max_len, ex, err);
    return seq_encode_ids(tok, r->s[k].template, prompt, row->tokens, row->n_ids, max_len, ex, err);
}

/* Log-probabilities of side k's answers under m at the temperature each was
 * sampled at, on the ids the policy sampled (the same ids are scored by the
 * policy and the reference). */
static int side_logprobs(Run *r, int k, const Model *m, const Tokenizer *tok, int ref, Err *err) {
    int total = 0, rc = RLHF_OK;
    for (int i = 0; i < r->np; i++)
        total += r->p[i].n_ans[k];
    SeqExample *ex = calloc((size_t)(total ? total : 1), sizeof *ex);
    float *temp = malloc(sizeof(float) * (size_t)(total ? total : 1));
    double *lp = malloc(sizeof(double) * (size_t)(total ? total : 1));
    if (!ex || !temp || !lp) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    for (int i = 0, t = 0; !rc && i < r->np; i++)
        for (int a = 0; a < r->p[i].n_ans[k] && !rc; a++, t++) {
            const Answer *x = &r->p[i].ans[k][a];
            temp[t] = answer_temperature(x->row, r->o->sp.temperature);
            rc = answer_example(r, k, tok, m->cfg.seq_len, r->p[i].text, x, &ex[t], err);
        }
    if (!rc) rc = eval_logprobs_examples(m, ex, temp, total, r->o->batch, lp, err);
    for (int i = 0, t = 0; !rc && i < r->np; i++)
        for (int a = 0; a < r->p[i].n_ans[k]; a++, t++) {
            if (ref)
                r->p[i].ans[k][a].lp_ref = lp[t];
            else
                r->p[i].ans[k][a].lp = lp[t];
        }
    for (int t = 0; ex && t < total; t++)
        seq_example_free(&ex[t]);
    free(ex), free(temp), free(lp);
    return rc;
}

/* Both passes: the policy's, then the reference's (one model in memory at a time). */
static int side_kl_passes(Run *r, int k, const char *ref, Err *err) {
    Model m;
    Tokenizer *tok = NULL;
    int rc = model_load(r->s[k].path, &m, err);
    if (rc) return rc;
    rc = model_load_tokenizer(&m, r->s[k].path, r->o->tok_path, &tok, err);
    int V = m.cfg.vocab_size;
    if (!rc) rc = side_logprobs(r, k, &m, tok, 0, err);
    model_free(&m);
    if (!rc && (rc = model_load(ref, &m, err)) == RLHF_OK) {
        if (m.cfg.vocab_size != V)
            rc = err_set(err, RLHF_EINVAL,
                         "the reference %s has a vocabulary of %d, the policy %s of %d", ref,
                         m.cfg.vocab_size, r->s[k].path, V);
        if (!rc) rc = side_logprobs(r, k, &m, tok, 1, err);
        model_free(&m);
    }
    if (tok) tok_free(tok);
    if (rc) err_prefix(err, "KL of %s from %s: ", r->s[k].name, ref);
    return rc;
}

static int side_kl(Run *r, int k, EvalSide *out, Err *err) {
    char *ref = NULL;
    int rc = r->ref_path
                 ? ((ref = strdup(r->ref_path)) ? 0 : err_set(err, RLHF_ENOMEM, "out of memory"))
                 : default_ref(r->db, r->s[k].policy_id, &ref, err);
    int bo = r->o->side[k].best_of;
    out->kl_best_of = bo > 1 ? log((double)bo) - (bo - 1.0) / bo : 0;
    out->kl = out->kl_policy = NAN;
    out->ref = ref;
    if (rc || !ref) return rc;
    if (same_file(ref, r->s[k].path)) {
        out->kl_policy = 0;
    } else {
        if ((rc = side_kl_passes(r, k, ref, err))) return rc;
        double sum = 0;
        for (int i = 0; i < r->np; i++) {
            double s = 0, w = 0;
            for (int a = 0; a < r->p[i].n_ans[k]; a++) {
                const Answer *x = &r->p[i].ans[k][a];
                s += x->w * (x->lp - x->lp_ref), w += x->w;
            }
            sum += s / w;
        }
        out->kl_policy = sum / r->np;
    }
    out->kl = out->kl_policy + out->kl_best_of;
    return RLHF_OK;
}

/* ---- summary -------------------------------------------------------------------- */

/* Per prompt, the share of (a, b) draw pairs a wins, ties half, each answer
 * counting as often as it was drawn (pw[i]); *win is their mean over
 * prompts, *ties the share of all draw pairs tied. */
static void wins(const Run *r, int by_rm, double *pw, double *win, double *ties) {
    double sum = 0, tie = 0, pairs = 0;
    for (int i = 0; i < r->np; i++) {
        const EvalPrompt *p = &r->p[i];
        double s = 0, n = 0;
        for (int a = 0; a < p->n_ans[0]; a++)
            for (int b = 0; b < p->n_ans[1]; b++) {
                const Answer *x = &p->ans[0][a], *y = &p->ans[1][b];
                int c = by_rm ? (x->reward > y->reward) - (x->reward < y->reward)
                              : (y->level > x->level) - (y->level < x->level);
                double w = x->w * y->w;
                s += w * (c > 0 ? 1 : c == 0 ? 0.5 : 0);
                tie += c == 0 ? w : 0, n += w;
            }
        pw[i] = s / n;
        sum += pw[i], pairs += n;
    }
    *win = sum / r->np;
    *ties = pairs ? tie / pairs : 0;
}

/* Side A's win rate w from per-prompt wins pw, into both sides with the
 * bootstrap interval over prompts (and Wilson's, for comparison). */
static void win_figures(const Run *r, const double *pw, double w, int rm, EvalResult *res) {
    double lo, hi;
    rm_bootstrap(pw, NULL, r->np, r->o->bootstrap, r->o->seed ^ 0xb007u, &lo, &hi);
    for (int k = 0; k < 2; k++) {
        EvalSide *s = &res->side[k];
        double v = k ? 1 - w : w, l = k ? 1 - hi : lo, h = k ? 1 - lo : hi;
        if (rm) {
            s->rm_win = v, s->rm_lo = l, s->rm_hi = h;
            continue;
        }
        s->win = v, s->win_lo = l, s->win_hi = h;
        rm_wilson(v * r->np, (double)r->np, 1.96, &s->wilson_lo, &s->wilson_hi);
    }
}

/* A stored chat template ("chat:chatml") as it renders around a prompt, the
 * template itself when it does not render; caller frees. NULL: out of memory. */
static char *template_shape(const char *template) {
    const char *t = template ? template : GEN_DEFAULT_TEMPLATE;
    char *shape = gen_apply_template(t, "{prompt}");
    return shape ? shape : strdup(t);
}

/* eval_template_leak on a template_shape */
static int shape_leak(const char *shape, const char *answer) {
    const char *p = shape;
    int leak = 0;
    while (*p && !leak) {
        size_t n = strcspn(p, "\n");
        const char *brace = memmem(p, n, "{prompt}", 8);
        size_t part = brace ? (size_t)(brace - p) : n;
        size_t len = part;
        const char *t = text_trim(p, &len);
        leak = len >= 2 && memmem(answer, strlen(answer), t, len);
        p += brace ? part + 8 : n + (p[n] == '\n');
    }
    return leak;
}

int eval_template_leak(const char *template, const char *answer) {
    char *shape = template_shape(template);
    int leak = shape && shape_leak(shape, answer);
    free(shape);
    return leak;
}

/* The known words from the comma-separated files of --known-words, before
 * anything is generated: a missing file fails the run with nothing written. */
static int load_known(Run *r, Err *err) {
    if (!r->o->known_words) return RLHF_OK;
    int rc = wordset_add_files(&r->known, r->o->known_words, err);
    if (rc) err_prefix(err, "--known-words: ");
    return rc;
}

/* The answers' health on side k: distinct answers per prompt, the share of
 * samples with template text, and with a word the known words lack. */
static int health(const Run *r, int k, EvalSide *s, Err *err) {
    char *shape = template_shape(r->s[k].template);
    if (!shape) return err_set(err, RLHF_ENOMEM, "out of memory");
    double n = 0, leak = 0, unknown = 0, distinct = 0;
    for (int i = 0; i < r->np; i++) {
        distinct += r->p[i].n_ans[k];
        for (int a = 0; a < r->p[i].n_ans[k]; a++) {
            const Answer *x = &r->p[i].ans[k][a];
            size_t len;
            n += x->w;
            leak += x->w * shape_leak(shape, x->text);
            if (r->known.n) unknown += x->w * (wordset_first_unknown(&r->known, x->text, &len) != NULL);
        }
    }
    s->distinct_per_prompt = r->np ? distinct / r->np : NAN;
    s->leak = n ? leak / n : NAN;
    s->unknown = r->known.n && n ? unknown / n : NAN;
    free(shape);
    return RLHF_OK;
}

static int summarise(Run *r, EvalResult *res, Err *err) {
    const EvalOptions *o = r->o;
    double w, rmw = NAN;
    double *pw = malloc(sizeof(double) * (size_t)r->np);
    if (!pw) return err_set(err, RLHF_ENOMEM, "out of memory");
    wins(r, 0, pw, &w, &res->judge_ties);
    win_figures(r, pw, w, 0, res);
    for (int k = 0; k < 2; k++)
        res->side[k].rm_win = res->side[k].rm_lo = res->side[k].rm_hi = NAN;
    res->rm_ties = NAN;
    if (r->have_rm) {
        wins(r, 1, pw, &rmw, &res->rm_ties);
        win_figures(r, pw, rmw, 1, res);
    }
    free(pw);
    for (int k = 0; k < 2; k++) {
        EvalSide *s = &res->side[k];
        s->reward = NAN;
        /* every mean is over draws: an answer counts as often as it was drawn */
        double len = 0, judge = 0, reward = 0, n = 0, n_len = 0;
        int64_t distinct = 0;
        for (int i = 0; i < r->np; i++)
            for (int a = 0; a < r->p[i].n_ans[k]; a++) {
                const Answer *x = &r->p[i].ans[k][a];
                if (x->n_tokens >= 0) len += x->w * (double)x->n_tokens, n_len += x->w;
                if (o->rule) {
                    double v = o->rule->score(r->p[i].text, x->text);
                    judge += x->w * (v >= 0 ? (v > 1 ? 1 : v) : 0);
                }
                reward += x->w * x->reward;
                n += x->w, distinct++;
            }
        s->answers = (int64_t)n, s->distinct = distinct;
        s->length = n_len ? len / n_len : NAN;
        s->judge_score = o->rule && n ? judge / n : NAN;
        if (r->have_rm) s->reward = n ? reward / n : NAN;
        int rc = health(r, k, s, err);
        if (rc) return rc;
    }
    return RLHF_OK;
}

int eval_run(Db *db, const EvalOptions *o, EvalResult *res, Err *err) {
    memset(res, 0, sizeof *res);
    double t0 = now_seconds();
    if (o->n < 1) return err_set(err, RLHF_EINVAL, "answers per prompt must be at least 1");
    Run r = {0};
    r.db = db, r.o = o;
    PromptFilter pf = {.split = o->split, .limit = o->limit};
    int rc = db_prompts_each(db, &pf, collect_prompt, &r, err);
    if (rc == RLHF_ENOMEM) err_set(err, rc, "out of memory");
    if (!rc && r.np == 0)
        rc = err_set(err, RLHF_EINVAL,
                     "no prompts%s%s in the project (import some with `rlhf prompts import`)",
                     o->split ? " of split " : "", o->split ? o->split : "");
    if (!rc) rc = load_known(&r, err);
    if (!rc) rc = settle(&r, err);
    int64_t *ids = rc ? NULL : malloc(sizeof(int64_t) * (size_t)r.np);
    if (!rc && !ids) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    for (int i = 0; !rc && i < r.np; i++)
        ids[i] = r.p[i].id;
    for (int k = 0; k < 2 && !rc; k++)
        rc = generate(&r, k, ids, &res->side[k], err);
    free(ids);
    if (!rc) rc = load_answers(&r, err);
    if (!rc) rc = judge_all(&r, res, err);
    if (!rc && r.have_rm) rc = score_rewards(&r, err);
    for (int k = 0; k < 2 && !rc; k++)
        rc = side_kl(&r, k, &res->side[k], err);
    if (!rc) rc = summarise(&r, res, err);
    if (!rc) {
        res->prompts = r.np;
        for (int k = 0; k < 2; k++) {
            res->side[k].name = strdup(r.s[k].name);
            res->side[k].policy = strdup(r.s[k].path);
            res->side[k].model_id = r.s[k].model_id;
            res->side[k].best_of = o->side[k].best_of > 1 ? o->side[k].best_of : 0;
        }
        res->judge = strdup(r.judge);
        res->rm = r.rm_path ? strdup(r.rm_path) : NULL;
    }
    run_free(&r);
    res->seconds = now_seconds() - t0;
    if (rc) eval_result_free(res);
    return rc;
}

int eval_record(Db *db, const EvalResult *r, const char *config_json, Err *err) {
    static const char *const names[2][11] = {
        {"a.win_rate", "a.win_lo", "a.win_hi", "a.rm_win_rate", "a.reward", "a.kl", "a.length",
         "a.judge_score", "a.distinct_per_prompt", "a.template_leaks", "a.unknown_words"},
        {"b.win_rate", "b.win_lo", "b.win_hi", "b.rm_win_rate", "b.reward", "b.kl", "b.length",
         "b.judge_score", "b.distinct_per_prompt", "b.template_leaks", "b.unknown_words"}};
    int64_t run = 0;
    int rc = db_begin(db, err);
    if (!rc) rc = db_run_start(db, "eval", config_json, r->side[0].model_id, &run, err);
    for (int k = 0; k < 2 && !rc; k++) {
        const EvalSide *s = &r->side[k];
        double v[11] = {s->win,    s->win_lo, s->win_hi,      s->rm_win,
                        s->reward, s->kl,     s->length,      s->judge_score,
                        s->distinct_per_prompt, s->leak, s->unknown};
        for (int i = 0; i < 11 && !rc; i++)
            if (isfinite(v[i])) rc = db_metric_add(db, run, 0, names[k][i], v[i], err);
    }
    char note[512];
    snprintf(note, sizeof note, "%s vs %s on %lld prompts, judge %s", r->side[0].name,
             r->side[1].name, (long long)r->prompts, r->judge);
    if (!rc) rc = db_run_finish(db, run, "done", r->side[1].model_id, note, err);
    if (!rc)
        rc = db_commit(db, err);
    else
        db_rollback(db);
    return rc;
}

void eval_result_free(EvalResult *r) {
    for (int k = 0; k < 2; k++)
        free(r->side[k].name), free(r->side[k].policy), free(r->side[k].ref);
    free(r->judge), free(r->rm);
    double secs = r->seconds;
    memset(r, 0, sizeof *r);
    r->seconds = secs;
}
