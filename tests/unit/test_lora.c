/* LoRA (model/lora.h) inside the model: a fresh adapter and the adapter
 * switched off give the base's outputs exactly; the merge gives the adapted
 * ones; the gradients with dropout on (the PyTorch test runs dropout off)
 * against finite differences under the same mask; the frozen base gets no
 * gradient; a forward without gradients (MODEL_FWD_NOGRAD) computes what the
 * full one does and refuses a backward. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/infer.h"
#include "model/loss.h"
#include "model/lora.h"
#include "model/model.h"
#include "util/rng.h"

enum { B = 2, T = 6, N = B * T };

static void tiny(Model *m, int heads) {
    Config c = {.dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                .vocab_size = 23, .seq_len = 8, .shared_classifier = 1, .qkv_bias = 1};
    Err err = {0};
    cr_assert_eq(model_create(m, &c, heads, &err), 0, "%s", err.msg);
    model_init_random(m, 3);
    for (size_t i = 0; i < m->sizes[MODEL_T_EMB]; i++) m->w.emb[i] *= 20;
    if (m->w.reward)
        for (int i = 0; i <= c.dim; i++) m->w.reward[i] = 0.1f * (float)(i % 3 - 1);
}

static void randomise_b(Model *m, uint64_t seed) {
    Lora *lo = m->lora;
    Rng r;
    rng_seed(&r, seed);
    for (int t = 0; t < LORA_NT; t++)
        if (lo->c.targets & (1 << t))
            for (size_t i = 0; i < (size_t)lo->L * lo->out[t] * lo->c.rank; i++)
                lo->params[lo->off_b[t] + i] = 0.2f * (float)rng_normal(&r);
}

static const int tokens[N] = {1, 5, 9, 3, 22, 7, 1, 2, 4, 8, 16, 11};

static void logits(Model *m, RunState *rs, int flags, float *out) {
    Err err = {0};
    cr_assert_eq(model_forward(m, rs, tokens, B, T, MODEL_FWD_LOGITS | flags, &err), 0, "%s", err.msg);
    memcpy(out, rs->logits, sizeof(float) * N * m->cfg.vocab_size);
}

static double maxdiff(const float *a, const float *b, int n) {
    double d = 0;
    for (int i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

Test(lora, fresh_off_merged_and_nograd) {
    Model m;
    RunState rs;
    Err err = {0};
    tiny(&m, 0);
    int V = m.cfg.vocab_size;
    cr_assert_eq(model_runstate_create(&rs, &m.cfg, B, T, &err), 0);
    float *base = malloc(sizeof(float) * N * V), *x = malloc(sizeof(float) * N * V);
    logits(&m, &rs, 0, base);
    LoraConfig lc = {4, 0, 0, LORA_ALL};
    cr_assert_eq(model_lora_attach(&m, &lc, 7, "b", NULL, &err), 0, "%s", err.msg);
    cr_assert_float_eq(m.lora->scale, 2.0f, 1e-7, "alpha defaults to 2R");
    logits(&m, &rs, 0, x);
    cr_assert_eq(maxdiff(base, x, N * V), 0.0, "a fresh adapter (B = 0) changes nothing");
    randomise_b(&m, 1);
    float *adapted = malloc(sizeof(float) * N * V);
    logits(&m, &rs, 0, adapted);
    cr_assert(maxdiff(base, adapted, N * V) > 1e-2, "the adapter changes the logits");
    m.lora_off = 1;
    logits(&m, &rs, 0, x);
    cr_assert_eq(maxdiff(base, x, N * V), 0.0, "the adapter off is the base");
    cr_assert_neq(model_backward(&m, &rs, tokens, rs.logits, NULL, NULL, &err), 0);
    m.lora_off = 0;
    /* a forward without gradients: the same outputs, one layer's buffers, no backward */
    logits(&m, &rs, MODEL_FWD_NOGRAD, x);
    cr_assert_eq(maxdiff(adapted, x, N * V), 0.0, "NOGRAD computes the same");
    cr_assert_neq(model_backward(&m, &rs, tokens, rs.logits, NULL, NULL, &err), 0);
    cr_assert(strstr(err.msg, "without gradients"), "%s", err.msg);
    cr_assert_eq(model_lora_merge(&m, &err), 0, "%s", err.msg);
    cr_assert(m.lora == NULL);
    logits(&m, &rs, 0, x);
    cr_assert(maxdiff(adapted, x, N * V) < 1e-5, "merged: %g", maxdiff(adapted, x, N * V));
    free(base), free(x), free(adapted);
    model_runstate_free(&rs);
    model_free(&m);
}

/* J = mean CE + Σ c·reward, with dropout on at a fixed mask */
static double J(Model *m, RunState *rs, int backward, uint64_t pass) {
    Err err = {0};
    int V = m->cfg.vocab_size, tgt[N];
    float mask[N], c[N];
    for (int i = 0; i < N; i++) tgt[i] = (tokens[i] * 7 + 3) % V, mask[i] = 1, c[i] = 0.3f * (float)(i % 4 - 1.5);
    m->lora->drop_pass = pass - 1; /* the forward draws pass's masks */
    cr_assert_eq(model_forward(m, rs, tokens, B, T, MODEL_FWD_LOGITS, &err), 0, "%s", err.msg);
    double cnt, j;
    if (backward) j = loss_ce_backward(rs->logits, tgt, mask, N, V, (float)(1.0 / N), &cnt) / N;
    else j = loss_ce_forward(rs->logits, tgt, mask, N, V, NULL, &cnt) / N;
    for (int i = 0; i < N; i++) j += (double)c[i] * rs->reward[i];
    if (backward) cr_assert_eq(model_backward(m, rs, tokens, rs->logits, c, NULL, &err), 0, "%s", err.msg);
    return j;
}

Test(lora, gradients_with_dropout_against_finite_differences) {
    Model m;
    RunState rs;
    Err err = {0};
    tiny(&m, MODEL_HEAD_REWARD);
    cr_assert_eq(model_runstate_create(&rs, &m.cfg, B, T, &err), 0);
    LoraConfig lc = {3, 5, 0.3f, LORA_ALL};
    cr_assert_eq(model_lora_attach(&m, &lc, 7, "b", NULL, &err), 0, "%s", err.msg);
    randomise_b(&m, 2);
    m.lora->training = 1, m.lora->drop_seed = 99;
    cr_assert_eq(model_grads_alloc(&m, &err), 0);
    cr_assert(m.grads == NULL, "no gradient array for the frozen base");
    model_zero_grad(&m);
    J(&m, &rs, 1, 5);
    Lora *lo = m.lora;
    float *g = malloc(sizeof(float) * lo->n);
    memcpy(g, lo->grads, sizeof(float) * lo->n);
    /* the mask matters: another pass draws another and gives another J */
    double j5 = J(&m, &rs, 0, 5), j6 = J(&m, &rs, 0, 6);
    cr_assert(fabs(j5 - j6) > 1e-6, "dropout changes nothing: %g %g", j5, j6);
    Rng r;
    rng_seed(&r, 4);
    int bad = 0, checked = 0;
    for (int k = 0; k < 80; k++) {
        size_t i = (size_t)rng_below(&r, lo->off_head[0] + (size_t)m.cfg.dim + 1);
        float keep = lo->params[i];
        double eps = 1e-2;
        lo->params[i] = keep + (float)eps;
        double jp = J(&m, &rs, 0, 5);
        lo->params[i] = keep - (float)eps;
        double jm = J(&m, &rs, 0, 5);
        lo->params[i] = keep;
        double num = (jp - jm) / (2 * eps);
        checked++;
        if (fabs(num - g[i]) > 3e-3 + 3e-2 * fabs(g[i])) {
            bad++;
            cr_log_error("float %zu: numeric %.6g, analytic %.6g", i, num, (double)g[i]);
        }
    }
    cr_assert_eq(bad, 0, "%d of %d gradients off", bad, checked);
    free(g);
    model_runstate_free(&rs);
    model_free(&m);
}

/* Decoding (infer.c, what gen, sample and PPO's rollouts run) applies the
 * adapter as the training forward does: the last position's logits agree. */
Test(lora, decoding_applies_the_adapter) {
    Model m;
    RunState rs;
    Err err = {0};
    tiny(&m, 0);
    int V = m.cfg.vocab_size;
    LoraConfig lc = {4, 8, 0.2f, LORA_ALL};
    cr_assert_eq(model_lora_attach(&m, &lc, 7, "b", NULL, &err), 0, "%s", err.msg);
    randomise_b(&m, 3);
    cr_assert_eq(model_runstate_create(&rs, &m.cfg, 1, T, &err), 0);
    cr_assert_eq(model_forward(&m, &rs, tokens, 1, T, MODEL_FWD_LOGITS, &err), 0, "%s", err.msg);
    Infer st;
    cr_assert_eq(infer_create(&st, &m, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(infer_prefill(&st, tokens, T, &err), 0, "%s", err.msg);
    double d = maxdiff(st.logits, rs.logits + (size_t)(T - 1) * V, V);
    cr_assert(d < 1e-4, "decoding and training forward differ by %g", d);
    m.lora_off = 1; /* and off, the base's */
    infer_reset(&st);
    cr_assert_eq(infer_prefill(&st, tokens, T, &err), 0, "%s", err.msg);
    cr_assert(maxdiff(st.logits, rs.logits + (size_t)(T - 1) * V, V) > 1e-3, "the adapter did nothing");
    infer_free(&st);
    model_runstate_free(&rs);
    model_free(&m);
}

Test(lora, targets_parse_and_bad_settings) {
    int t;
    Err err = {0};
    cr_assert_eq(lora_parse_targets("q,v", &t, &err), 0);
    cr_assert_eq(t, LORA_DEFAULT_TARGETS);
    cr_assert_eq(lora_parse_targets("all", &t, &err), 0);
    cr_assert_eq(t, LORA_ALL);
    cr_assert_eq(lora_parse_targets("q_proj,down", &t, &err), 0);
    cr_assert_eq(t, (1 << LORA_Q) | (1 << LORA_DOWN));
    cr_assert_neq(lora_parse_targets("q,,", &t, &err), 0);
    cr_assert_neq(lora_parse_targets("qq", &t, &err), 0);
    cr_assert(strstr(err.msg, "qq"), "%s", err.msg);
    LoraConfig c = {0, 0, 0, 0};
    cr_assert_neq(lora_config_check(&c, &err), 0);
    c = (LoraConfig){4, 0, 1.0f, 0};
    cr_assert_neq(lora_config_check(&c, &err), 0);
    c = (LoraConfig){4, 0, 0.1f, 0};
    cr_assert_eq(lora_config_check(&c, &err), 0);
    cr_assert_eq(c.targets, LORA_DEFAULT_TARGETS);
    cr_assert_float_eq(c.alpha, 8.0f, 0);
}
