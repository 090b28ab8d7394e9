/* Sampling candidates from the embedded model for gen_run. */
#include "gen/model_backend.h"
#include "util/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gen_model_open(GenModel *g, const char *ckpt, const char *tok_path, const SampleParams *p,
                   int k_max, int batch, InferWeights weights, Err *err) {
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
    if (!rc)
        rc = infer_create_weights(
            &g->st, &g->m,
            infer_batch_streams(&g->m.cfg, k_max, batch > 0 ? batch : GEN_BATCH_STREAMS), weights,
            err);
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

/* A sampled result as a candidate: its text trimmed, its ids kept (for KL
 * and scoring: not the text re-encoded). */
static int take_result(GenSample *out, SampleResult *r, Err *err) {
    out->text = trimmed(r->text ? r->text : "");
    out->n_tokens = r->n_tokens;
    out->sum_logprob = r->logprob;
    out->finish = r->finish;
    out->tokens = r->tokens, out->n_ids = r->n_tokens;
    r->tokens = NULL;
    return out->text ? RLHF_OK : err_set(err, RLHF_ENOMEM, "out of memory");
}

/* res[0..k) as candidates out[0..k) while rc is 0; every result freed. */
static int take_results(GenSample *out, SampleResult *res, int k, int rc, Err *err) {
    for (int i = 0; i < k; i++) {
        if (!rc) rc = take_result(&out[i], &res[i], err);
        sample_result_free(&res[i]);
    }
    return rc;
}

/* input's tokens into *ids (caller frees), refusing one the context cannot hold */
static int encode(GenModel *g, const char *input, int **ids, int *n, Err *err) {
    size_t len = strlen(input);
    int cap = tok_encode_cap(len);
    if (!(*ids = malloc(sizeof(int) * (size_t)cap)))
        return err_set(err, RLHF_ENOMEM, "out of memory");
    int rc = tok_encode_prompt(g->tok, input, len, *ids, cap, n, err);
    if (!rc && *n >= g->m.cfg.seq_len)
        rc = err_set(err, RLHF_EINVAL, "prompt is %d tokens, the model's context is %d", *n,
                     g->m.cfg.seq_len);
    return rc;
}

static int model_sample(void *ctx, const char *input, int n, const uint64_t *seeds, GenSample *out,
                        Err *err) {
    GenModel *g = ctx;
    int n_ids = 0, *ids = NULL;
    SampleResult *res = calloc((size_t)g->k_max, sizeof *res);
    int rc = res ? encode(g, input, &ids, &n_ids, err) : err_set(err, RLHF_ENOMEM, "out of memory");
    /* batches of at most k_max streams share one prefill each */
    for (int done = 0; !rc && done < n; done += g->k_max) {
        int b = n - done < g->k_max ? n - done : g->k_max;
        infer_reset(&g->st);
        rc = sample_generate_batch(&g->st, g->tok, ids, n_ids, b, &g->p, seeds + done, res, err);
        if (rc == RLHF_EFORMAT) err_prefix(err, "%s: ", g->path);
        rc = take_results(out + done, res, b, rc, err);
    }
    free(ids);
    free(res);
    return rc;
}

/* gen's feed as the sampler's (sample_generate_feed): each input encoded as
 * it is taken, its draws made candidates as they are done. */
typedef struct {
    GenModel *g;
    const GenFeed *f;
    int *ids; /* the last input's tokens */
} Stream;

static int stream_next(void *ctx, SamplePrompt *pr, const uint64_t **seeds, int *tag, Err *err) {
    Stream *c = ctx;
    const char *input;
    int n, n_ids = 0;
    free(c->ids);
    c->ids = NULL;
    if (!c->f->next(c->f->ctx, &input, &n, seeds, tag)) return RLHF_OK;
    int rc = encode(c->g, input, &c->ids, &n_ids, err);
    if (!rc) *pr = (SamplePrompt){c->ids, n_ids, n};
    return rc;
}

static int stream_done(void *ctx, int tag, SampleResult *res, int k, Err *err) {
    Stream *c = ctx;
    GenSample *s = calloc((size_t)k, sizeof *s);
    int rc = take_results(s, res, k, s ? RLHF_OK : err_set(err, RLHF_ENOMEM, "out of memory"), err);
    if (!rc) rc = c->f->done(c->f->ctx, tag, s, err);
    if (s) gen_samples_free(s, k);
    free(s);
    return rc;
}

/* The feed's inputs through all the Infer's streams, refilled as answers end:
 * what model_sample gives each, bit for bit. */
static int model_sample_stream(void *ctx, const GenFeed *f, int *bad, Err *err) {
    GenModel *g = ctx;
    Stream c = {g, f, NULL};
    SampleFeed sf = {&c, stream_next, stream_done};
    int rc = sample_generate_feed(&g->st, g->tok, &g->p, &sf, bad, err);
    if (rc == RLHF_EFORMAT) err_prefix(err, "%s: ", g->path);
    free(c.ids);
    return rc;
}

GenBackend gen_model_backend(GenModel *g) {
    GenBackend b = {.ctx = g, .sample = model_sample, .params_json = g->params_json,
                    .sample_stream = model_sample_stream, .max_batch = g->st.max_streams};
    return b;
}
