/* Reward-model scoring in batches of right-padded examples (see rm_score.h). */
#include "rm/rm_score.h"
#include "model/chat.h"

#include <stdlib.h>
#include <string.h>

#include "db/registry.h"
#include "model/checkpoint.h"

#include <limits.h>

int rm_scorer_open(RmScorer *s, const char *path, const char *tok_path, const char *template,
                   int max_batch, Err *err) {
    Model m;
    int rc = model_load(path, &m, err);
    return rc ? rc : rm_scorer_open_model(s, &m, path, tok_path, template, max_batch, err);
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

int rm_score_examples(RmScorer *s, const SeqExample *ex, int n, float *out, Err *err) {
    return rm_score_model(&s->m, &s->rs, s->tokens, s->lens, s->max_batch, ex, n, out, err);
}

int rm_score_texts(RmScorer *s, const char *const *prompts, const char *const *answers, int n,
                   float *out, Err *err) {
    return rm_score_texts_cut(s, prompts, answers, NULL, n, out, err);
}

int rm_score_texts_cut(RmScorer *s, const char *const *prompts, const char *const *answers,
                       const unsigned char *cut, int n, float *out, Err *err) {
    int rc = RLHF_OK;
    for (int i = 0; i < n && !rc; i += s->max_batch) {
        int b = n - i < s->max_batch ? n - i : s->max_batch, got = 0;
        for (; got < b && !rc; got++) {
            rc = seq_encode(s->tok, s->template, prompts[i + got], answers[i + got],
                            !(cut && cut[i + got]),
                            s->m.cfg.seq_len, &s->ex[got], err);
            if (!rc && s->ex[got].cut) s->cut++;
        }
        if (rc) got--; /* the failed one holds nothing */
        if (!rc) rc = rm_score_examples(s, s->ex, b, out + i, err);
        for (int j = 0; j < got; j++) seq_example_free(&s->ex[j]);
    }
    return rc;
}

int rm_scorer_open_in(Db *db, RmScorer *s, const char *path, const char *tok_path,
                      const char *template, int max_batch, Err *err) {
    char *tmpl = NULL;
    int rc = db_template_resolve(db, template, path, chat_template_find, &tmpl, NULL, err);
    if (!rc) rc = rm_scorer_open(s, path, tok_path, tmpl, max_batch, err);
    free(tmpl);
    return rc;
}
