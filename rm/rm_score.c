/* Reward-model scoring in batches of right-padded examples (see rm_score.h). */
#include "rm/rm_score.h"
#include "model/chat.h"

#include <stdlib.h>
#include <string.h>

#include "db/prompts.h"
#include "db/registry.h"
#include "model/checkpoint.h"

#include <limits.h>
#include <math.h>
#include <unistd.h>

#include "db/scores.h"

static int open_one(RmScorer *s, const char *path, const char *tok_path, const char *template,
                    int max_batch, Err *err) {
    Model m;
    int rc = model_load(path, &m, err);
    return rc ? rc : rm_scorer_open_model(s, &m, path, tok_path, template, max_batch, err);
}

int rm_spec_is_combined(const char *path) {
    return strchr(path, '+') && access(path, F_OK) != 0;
}

/* One part of a spec, "PATH[*W|!T[@TAG]]", into path (a copy), weight, gate
 * (*tag: a copy of TAG, or NULL). */
static int parse_part(const char *p, size_t len, char **path, float *w, int *gate, float *thr,
                      char **tag, Err *err) {
    char *t = strndup(p, len), *mark = t ? strpbrk(t, "*!") : NULL, *end;
    if (!t) return err_set(err, RLHF_ENOMEM, "out of memory");
    *w = 1, *gate = 0, *tag = NULL;
    if (mark) {
        double v = strtod(mark + 1, &end);
        if (*mark == '!' && *end == '@' && end > mark + 1) {
            if (!db_valid_split(end + 1)) {
                int rc = err_set(err, RLHF_EINVAL,
                                 "reward models '%.*s': '%s' is not a tag name "
                                 "(letters, digits, '_', '-')",
                                 (int)len, p, end + 1);
                free(t);
                return rc;
            }
            if (!(*tag = strdup(end + 1))) {
                free(t);
                return err_set(err, RLHF_ENOMEM, "out of memory");
            }
            *end = 0;
        }
        if (end == mark + 1 || *end || !isfinite(v)) {
            int rc = err_set(err, RLHF_EINVAL, "reward models '%.*s': '%s' is not a number", (int)len, p,
                             mark + 1);
            free(t);
            return rc;
        }
        if (*mark == '*') *w = (float)v;
        else *gate = 1, *thr = (float)v;
        *mark = 0;
    }
    if (!*t) {
        free(t);
        return err_set(err, RLHF_EINVAL, "reward models: an empty part in the combination");
    }
    *path = t;
    return RLHF_OK;
}

static int open_spec(RmScorer *s, const char *spec, const char *tok_path, const char *template,
                     int max_batch, Err *err) {
    int n = 1, rc = RLHF_OK;
    for (const char *c = spec; *c; c++) n += *c == '+';
    char **paths = calloc((size_t)n, sizeof *paths);
    float *w = calloc((size_t)n, sizeof *w), thr = 0;
    int safety = -1;
    char *tag = NULL;
    if (!paths || !w) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    const char *p = spec;
    for (int k = 0; k < n && !rc; k++) {
        const char *e = strchr(p, '+');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int gate = 0;
        float t = 0;
        char *ptag = NULL;
        rc = parse_part(p, len, &paths[k], &w[k], &gate, &t, &ptag, err);
        if (!rc && gate && safety >= 0)
            rc = err_set(err, RLHF_EINVAL, "reward models '%s': one safety RM (PATH!T) at most", spec);
        if (!rc && gate) safety = k, thr = t, tag = ptag, ptag = NULL;
        free(ptag);
        p = e ? e + 1 : p + len;
    }
    if (!rc && safety >= 0 && n < 2)
        rc = err_set(err, RLHF_EINVAL, "reward models '%s': a safety gate needs another RM", spec);
    int named = tag != NULL;
    if (!rc && safety >= 0 && !tag && !(tag = strdup("safety")))
        rc = err_set(err, RLHF_ENOMEM, "out of memory");
    if (!rc) rc = open_one(s, paths[0], tok_path, template, max_batch, err);
    if (rc) {
        for (int k = 0; paths && k < n; k++) free(paths[k]);
        free(paths), free(w), free(tag);
        return rc;
    }
    s->n_parts = n, s->paths = paths, s->w = w, s->safety = safety, s->threshold = thr;
    s->gate_tag = tag, s->gate_tag_named = named;
    s->more = calloc((size_t)n - 1, sizeof *s->more);
    s->mean = calloc((size_t)n, sizeof *s->mean);
    s->part_sum = calloc((size_t)n, sizeof *s->part_sum);
    s->sd = malloc((size_t)n * sizeof *s->sd);
    if (!s->more || !s->mean || !s->sd || !s->part_sum) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    for (int k = 0; !rc && k < n; k++) s->sd[k] = 1;
    for (int k = 1; !rc && k < n; k++) {
        RmScorer *m = &s->more[k - 1];
        rc = open_one(m, paths[k], tok_path, template, max_batch, err);
        if (!rc && (m->m.cfg.vocab_size != s->m.cfg.vocab_size || m->m.cfg.seq_len != s->m.cfg.seq_len))
            rc = err_set(err, RLHF_EINVAL, "%s and %s differ in vocabulary or context: they cannot be combined",
                         paths[0], paths[k]);
        if (!rc) rc = tok_require_same(s->tok, paths[0], m->tok, paths[k], err);
    }
    if (rc) rm_scorer_close(s);
    return rc;
}

int rm_scorer_open(RmScorer *s, const char *path, const char *tok_path, const char *template,
                   int max_batch, Err *err) {
    return rm_spec_is_combined(path) ? open_spec(s, path, tok_path, template, max_batch, err)
                                     : open_one(s, path, tok_path, template, max_batch, err);
}

int rm_scorer_normalise(Db *db, RmScorer *s, Err *err) {
    for (int k = 0; k < s->n_parts; k++) {
        char abs[PATH_MAX];
        ModelRow row;
        int rc = db_model_get(db, realpath(s->paths[k], abs) ? abs : s->paths[k], &row, NULL);
        if (rc) rc = db_model_get(db, s->paths[k], &row, NULL);
        double st[3] = {0, 0, 0};
        if (!rc) {
            rc = db_score_stats(db, row.id, st, err);
            db_model_row_free(&row);
        }
        if (rc || st[0] < 2 || !(st[2] > 0))
            return err_set(err, RLHF_ENOTFOUND,
                           "%s: combining reward models normalises each by its scores of the "
                           "project's candidates; run rlhf score --rm %s first",
                           s->paths[k], s->paths[k]);
        s->mean[k] = st[1], s->sd[k] = st[2];
    }
    if (s->safety < 0) return RLHF_OK;
    char **texts;
    int n;
    int rc = db_prompts_tagged(db, s->gate_tag, &texts, &n, err);
    /* a tag the spec names but no prompt carries is a typo, not a gate on the score alone */
    if (!rc && !n && s->gate_tag_named)
        rc = err_set(err, RLHF_ENOTFOUND,
                     "reward models: no prompt is tagged '%s' (rlhf prompts tag ID --tag %s)",
                     s->gate_tag, s->gate_tag);
    if (!rc) rc = rm_scorer_gate_prompts(s, (const char *const *)texts, n, err);
    for (int i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    return rc;
}

static void free_gate(RmScorer *s) {
    for (int i = 0; i < s->n_gated; i++)
        free(s->gated[i]), free(s->gated_text ? s->gated_text[i] : NULL);
    free(s->gated), free(s->gated_len), free(s->gated_text);
    s->gated = NULL, s->gated_len = NULL, s->gated_text = NULL, s->n_gated = 0;
}

int rm_scorer_gate_prompts(RmScorer *s, const char *const *prompts, int n, Err *err) {
    free_gate(s);
    if (n <= 0) return RLHF_OK;
    s->gated = calloc((size_t)n, sizeof *s->gated);
    s->gated_len = calloc((size_t)n, sizeof *s->gated_len);
    s->gated_text = calloc((size_t)n, sizeof *s->gated_text);
    int rc = s->gated && s->gated_len && s->gated_text ? RLHF_OK
                                                       : err_set(err, RLHF_ENOMEM, "out of memory");
    for (int i = 0; i < n && !rc; i++) {
        char *input = NULL;
        if (!(s->gated_text[i] = strdup(prompts[i])))
            rc = err_set(err, RLHF_ENOMEM, "out of memory");
        if (!rc) rc = seq_render(s->template, prompts[i], &input, err);
        size_t len = input ? strlen(input) : 0;
        if (!rc && !(s->gated[i] = malloc(sizeof(int) * (size_t)tok_encode_cap(len))))
            rc = err_set(err, RLHF_ENOMEM, "out of memory");
        if (!rc)
            rc = tok_encode_prompt(s->tok, input, len, s->gated[i], tok_encode_cap(len),
                                   &s->gated_len[i], err);
        free(input);
        s->n_gated = i + 1;
    }
    if (rc) free_gate(s);
    return rc;
}

/* Whether ex's prompt is one of the gate's by its ids (a trainer's rollouts,
 * which fit the context). A prompt cut from the left to fit cannot be told
 * from another with the same tail: only its text (rm_score_texts) says. */
static int is_gated(const RmScorer *s, const SeqExample *ex) {
    for (int g = 0; g < s->n_gated && !ex->cut; g++)
        if (s->gated_len[g] == ex->n_prompt &&
            !memcmp(s->gated[g], ex->tokens, sizeof(int) * (size_t)ex->n_prompt))
            return 1;
    return 0;
}

static int is_gated_text(const RmScorer *s, const char *prompt) {
    for (int g = 0; g < s->n_gated; g++)
        if (!strcmp(s->gated_text[g], prompt)) return 1;
    return 0;
}

void rm_combine(const RmScorer *s, float *const *r, const unsigned char *gated, int n, float *out) {
    for (int i = 0; i < n; i++) {
        double sum = 0;
        for (int k = 0; k < s->n_parts; k++) {
            double z = (r[k][i] - s->mean[k]) / s->sd[k];
            if (k == s->safety) continue;
            sum += s->w[k] * z;
        }
        if (s->safety >= 0) {
            double zs = (r[s->safety][i] - s->mean[s->safety]) / s->sd[s->safety];
            if (zs < s->threshold || (gated && gated[i])) sum = zs;
        }
        out[i] = (float)sum;
    }
}

int rm_scorer_open_model(RmScorer *s, Model *m, const char *path, const char *tok_path,
                         const char *template, int max_batch, Err *err) {
    memset(s, 0, sizeof *s);
    if (max_batch < 1) max_batch = 1;
    s->m = *m;
    memset(m, 0, sizeof *m);
    int rc;
    if (!(s->m.heads & MODEL_HEAD_REWARD)) {
        model_free(&s->m);
        return err_set(err, RLHF_EINVAL,
                       "%s is not a reward model (it has no reward head; train one with `rlhf train-rm`)",
                       path);
    }
    s->max_batch = max_batch;
    int T = s->m.cfg.seq_len;
    rc = model_load_tokenizer(&s->m, path, tok_path, &s->tok, err);
    if (!rc) rc = model_runstate_create(&s->rs, &s->m.cfg, max_batch, T, err);
    if (!rc && template && !(s->template = strdup(template))) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    s->tokens = malloc(sizeof(int) * (size_t)max_batch * T);
    s->lens = malloc(sizeof(int) * (size_t)max_batch);
    s->ex = calloc((size_t)max_batch, sizeof *s->ex);
    if (!rc && (!s->tokens || !s->lens || !s->ex)) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    if (rc) rm_scorer_close(s);
    return rc;
}

void rm_scorer_close(RmScorer *s) {
    for (int k = 1; s->more && k < s->n_parts; k++) rm_scorer_close(&s->more[k - 1]);
    for (int k = 0; s->paths && k < s->n_parts; k++) free(s->paths[k]);
    free(s->more), free(s->paths), free(s->w), free(s->mean), free(s->sd), free(s->part_sum);
    free_gate(s);
    free(s->gate_tag);
    model_runstate_free(&s->rs);
    if (s->tok) tok_free(s->tok);
    model_free(&s->m);
    free(s->template);
    free(s->tokens);
    free(s->lens);
    free(s->ex);
    memset(s, 0, sizeof *s);
}

int rm_score_model(const Model *m, RunState *rs, int *tokens, int *lens, int max_batch,
                   const SeqExample *ex, int n, float *out, Err *err) {
    for (int i = 0; i < n; i += max_batch) {
        int b = n - i < max_batch ? n - i : max_batch;
        int T = seq_pack(ex + i, b, tokens, lens);
        int rc = model_forward(m, rs, tokens, b, T, MODEL_FWD_NOGRAD, err);
        if (rc) return rc;
        seq_last_rewards(rs, lens, b, T, out + i);
    }
    return RLHF_OK;
}

/* rm_score_examples with the gate's prompts known (text_gated; NULL: by ids). */
static int score_examples(RmScorer *s, const SeqExample *ex, int n, const unsigned char *text_gated,
                          float *out, Err *err) {
    if (!s->n_parts) return rm_score_model(&s->m, &s->rs, s->tokens, s->lens, s->max_batch, ex, n, out, err);
    float *buf = malloc(sizeof *buf * (size_t)n * (size_t)s->n_parts), *r[64] = {0};
    unsigned char *gated = s->n_gated ? calloc((size_t)n, 1) : NULL;
    if (!buf || s->n_parts > 64 || (s->n_gated && !gated)) {
        free(buf), free(gated);
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    for (int i = 0; gated && i < n; i++)
        gated[i] = text_gated ? text_gated[i] : (unsigned char)is_gated(s, &ex[i]);
    int rc = RLHF_OK;
    for (int k = 0; k < s->n_parts && !rc; k++) {
        r[k] = buf + (size_t)k * n;
        RmScorer *m = k ? &s->more[k - 1] : s;
        rc = rm_score_model(&m->m, &m->rs, m->tokens, m->lens, m->max_batch, ex, n, r[k], err);
    }
    if (!rc) {
        rm_combine(s, r, gated, n, out);
        for (int k = 0; k < s->n_parts; k++)
            for (int i = 0; i < n; i++) s->part_sum[k] += (r[k][i] - s->mean[k]) / s->sd[k];
        s->part_n += n;
    }
    free(buf), free(gated);
    return rc;
}

int rm_score_examples(RmScorer *s, const SeqExample *ex, int n, float *out, Err *err) {
    return score_examples(s, ex, n, NULL, out, err);
}

void rm_scorer_take_part_means(RmScorer *s, double *out) {
    for (int k = 0; k < s->n_parts; k++) {
        out[k] = s->part_n ? s->part_sum[k] / (double)s->part_n : NAN;
        s->part_sum[k] = 0;
    }
    s->part_n = 0;
}

int rm_score_texts(RmScorer *s, const char *const *prompts, const char *const *answers, int n,
                   float *out, Err *err) {
    return rm_score_texts_cut(s, prompts, answers, NULL, n, out, err);
}

int rm_score_texts_cut(RmScorer *s, const char *const *prompts, const char *const *answers,
                       const unsigned char *cut, int n, float *out, Err *err) {
    unsigned char *gated = s->n_gated ? calloc((size_t)s->max_batch, 1) : NULL;
    int rc = s->n_gated && !gated ? err_set(err, RLHF_ENOMEM, "out of memory") : RLHF_OK;
    for (int i = 0; i < n && !rc; i += s->max_batch) {
        int b = n - i < s->max_batch ? n - i : s->max_batch, got = 0;
        for (int j = 0; gated && j < b; j++)
            gated[j] = (unsigned char)is_gated_text(s, prompts[i + j]);
        for (; got < b && !rc; got++) {
            rc = seq_encode(s->tok, s->template, prompts[i + got], answers[i + got],
                            !(cut && cut[i + got]),
                            s->m.cfg.seq_len, &s->ex[got], err);
            if (!rc && s->ex[got].cut) s->cut++;
        }
        if (rc) got--; /* the failed one holds nothing */
        if (!rc) rc = score_examples(s, s->ex, b, gated, out + i, err);
        for (int j = 0; j < got; j++) seq_example_free(&s->ex[j]);
    }
    free(gated);
    return rc;
}

int rm_scorer_open_in(Db *db, RmScorer *s, const char *path, const char *tok_path,
                      const char *template, int max_batch, Err *err) {
    char *tmpl = NULL;
    int combined = rm_spec_is_combined(path);
    if (combined && !db)
        return err_set(err, RLHF_EINVAL, "reward models '%s': a combination needs the project (--db) "
                                         "for each RM's normalisation", path);
    int rc = db_template_resolve(db, template, path, chat_template_find, &tmpl, NULL, err);
    if (!rc) rc = rm_scorer_open(s, path, tok_path, tmpl, max_batch, err);
    free(tmpl);
    if (!rc && combined && (rc = rm_scorer_normalise(db, s, err))) rm_scorer_close(s);
    return rc;
}
