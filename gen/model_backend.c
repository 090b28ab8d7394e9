/* Sampling candidates from the embedded model for gen_run. */
#include "gen/model_backend.h"
#include "util/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gen_model_open(GenModel *g, const char *ckpt, const char *tok_path, const SampleParams *p,
                   int k_max, InferWeights weights, Err *err) {
    memset(g, 0, sizeof *g);
    int rc = sample_params_check(p, err);
    if (rc) return rc;
    g->p = *p;
    g->k_max = k_max;
    snprintf(g->path, sizeof g->path, "%s", ckpt);
    if ((rc = model_load(ckpt, &g->m, err))) return rc;
    if ((rc = model_require_policy(&g->m, ckpt, err))) {
        model_free(&g->m);
        return rc;
    }
    rc = model_load_tokenizer(&g->m, ckpt, tok_path, &g->tok, err);
    if (!rc) rc = infer_create_weights(&g->st, &g->m, k_max, weights, err);
    if (rc) {
        gen_model_close(g);
        return rc;
    }
    StrBuf b = {0};
    sb_printf(&b, "{\"temperature\":%g,\"top_k\":%d,\"top_p\":%g,\"max_tokens\":%d", p->temperature,
              p->top_k, p->top_p, p->max_tokens);
    if (p->n_stop) {
        sb_puts(&b, ",\"stop\":[");
        for (int i = 0; i < p->n_stop; i++) {
            sb_puts(&b, i ? ",\"" : "\"");
            for (const char *s = p->stop[i]; *s; s++) {
                if (*s == '\n') sb_puts(&b, "\\n");
                else if (*s == '"' || *s == '\\') sb_printf(&b, "\\%c", *s);
                else if ((unsigned char)*s >= 0x20) sb_append(&b, s, 1);
            }
            sb_puts(&b, "\"");
        }
        sb_puts(&b, "]");
    }
    /* samples of a model other than the checkpoint's (rounded) say so */
    if (infer_uses_bf16(&g->st) && !model_weights_are_bf16(&g->m)) sb_puts(&b, ",\"weights\":\"bf16\"");
    sb_puts(&b, "}");
    snprintf(g->params_json, sizeof g->params_json, "%s", b.s ? b.s : "{}");
    sb_free(&b);
    return RLHF_OK;
}

void gen_model_close(GenModel *g) {
    infer_free(&g->st);
    if (g->tok) tok_free(g->tok);
    model_free(&g->m);
    memset(g, 0, sizeof *g);
}

/* Candidates are answers: the whitespace the template leaves around them is
 * not part of what a labeler judges, and an undertrained model's stray bytes
 * must not make invalid UTF-8 in the store. */
static char *trimmed(const char *s) {
    size_t n = strlen(s);
    s = text_trim(s, &n);
    return utf8_sanitize(s, n);
}

static int model_sample(void *ctx, const char *input, int n, const uint64_t *seeds, GenSample *out,
                        Err *err) {
    GenModel *g = ctx;
    size_t len = strlen(input);
    int cap = tok_encode_cap(len), n_ids = 0;
    int *ids = malloc(sizeof(int) * (size_t)cap);
    SampleResult *res = calloc((size_t)g->k_max, sizeof *res);
    int rc = (!ids || !res) ? err_set(err, RLHF_ENOMEM, "out of memory") : RLHF_OK;
    if (!rc)
        rc = tok_encode_prompt(g->tok, input, len, ids, cap, &n_ids, err);
    if (!rc && n_ids >= g->m.cfg.seq_len)
        rc = err_set(err, RLHF_EINVAL, "prompt is %d tokens, the model's context is %d", n_ids,
                     g->m.cfg.seq_len);
    /* batches of at most k_max streams share one prefill each */
    for (int done = 0; !rc && done < n; done += g->k_max) {
        int b = n - done < g->k_max ? n - done : g->k_max;
        infer_reset(&g->st);
        rc = sample_generate_batch(&g->st, g->tok, ids, n_ids, b, &g->p, seeds + done, res, err);
        if (rc == RLHF_EFORMAT) err_prefix(err, "%s: ", g->path);
        for (int i = 0; i < b; i++) {
            if (!rc) {
                out[done + i].text = trimmed(res[i].text ? res[i].text : "");
                out[done + i].n_tokens = res[i].n_tokens;
                out[done + i].sum_logprob = res[i].logprob;
                out[done + i].finish = res[i].finish;
                /* the ids as sampled, kept for KL and scoring (not the text re-encoded) */
                out[done + i].tokens = res[i].tokens, out[done + i].n_ids = res[i].n_tokens;
                res[i].tokens = NULL;
                if (!out[done + i].text) rc = err_set(err, RLHF_ENOMEM, "out of memory");
            }
            sample_result_free(&res[i]);
        }
    }
    free(ids);
    free(res);
    return rc;
}

GenBackend gen_model_backend(GenModel *g) {
    GenBackend b = {g, model_sample, g->params_json};
    return b;
}
