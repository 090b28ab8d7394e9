/* The whole model: gradients of every tensor against finite differences on a
 * tiny config with both heads, a tiny model overfitting one batch, gradient
 * accumulation matching one big batch, and the optimiser's pieces.
 * Finite differences: float forward, eps = 1e-2 on a double-summed objective,
 * |numeric − analytic| <= 3e-3 + 3e-2·|analytic|, 12 entries per tensor. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/loss.h"
#include "model/model.h"
#include "model/optim.h"
#include "util/rng.h"

static Config small_cfg(int kv, int shared) {
    Config c = {.dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = kv,
                .vocab_size = 23, .seq_len = 8, .shared_classifier = shared};
    return c;
}

/* hf_features: the Hugging Face families' features all on (Qwen3-like head size
 * with NH*hs = 24 != dim, Qwen2 biases, q/k norms, Llama 3 theta and scaling
 * with a small original context so every branch of the ramp is used) */
static int hf_features;
static Config net_cfg(int kv, int shared) {
    Config c = small_cfg(kv, shared);
    if (hf_features) {
        c.head_dim = 6, c.qkv_bias = 1, c.qk_norm = 1, c.norm_eps = 1e-6f, c.rope_theta = 500000.0f;
        c.rope_factor = 8.0f, c.rope_low_freq = 1.0f, c.rope_high_freq = 4.0f, c.rope_orig_ctx = 64;
    }
    return c;
}

typedef struct {
    Model m;
    RunState rs;
    int B, T;
    int tok[16], tgt[16];
    float mask[16], ca[16], cb[16];
} Net;

/* J = masked mean CE + Σ ca·reward + Σ cb·value */
static double net_J(Net *n, int backward) {
    Err err = {0};
    cr_assert_eq(model_forward(&n->m, &n->rs, n->tok, n->B, n->T, MODEL_FWD_LOGITS, &err), 0, "%s", err.msg);
    int N = n->B * n->T;
    double cnt, j;
    if (backward) {
        loss_ce_forward(n->rs.logits, n->tgt, n->mask, N, n->m.cfg.vocab_size, NULL, &cnt);
        j = loss_ce_backward(n->rs.logits, n->tgt, n->mask, N, n->m.cfg.vocab_size, (float)(1 / cnt), NULL) / cnt;
    } else {
        j = loss_ce_forward(n->rs.logits, n->tgt, n->mask, N, n->m.cfg.vocab_size, NULL, &cnt) / cnt;
    }
    for (int i = 0; i < N; i++) j += (double)n->ca[i] * n->rs.reward[i] + (double)n->cb[i] * n->rs.value[i];
    if (backward)
        cr_assert_eq(model_backward(&n->m, &n->rs, n->tok, n->rs.logits, n->ca, n->cb, &err), 0, "%s", err.msg);
    return j;
}

static void net_init(Net *n, int kv, int shared, uint64_t seed) {
    Err err = {0};
    Config c = net_cfg(kv, shared);
    memset(n, 0, sizeof *n);
    cr_assert_eq(model_create(&n->m, &c, MODEL_HEAD_REWARD | MODEL_HEAD_VALUE, &err), 0);
    model_init_random(&n->m, seed);
    Rng r;
    rng_seed(&r, seed + 7);
    /* larger weights than the init so the gradients are not all tiny */
    for (size_t i = 0; i < n->m.n_params; i++) n->m.params[i] += 0.2f * (float)rng_normal(&r);
    n->B = 2;
    n->T = 8;
    cr_assert_eq(model_runstate_create(&n->rs, &c, n->B, n->T, &err), 0);
    for (int i = 0; i < 16; i++) {
        n->tok[i] = (int)rng_below(&r, c.vocab_size);
        n->tgt[i] = (int)rng_below(&r, c.vocab_size);
        n->mask[i] = i % 3 ? 1.0f : 0.0f;
        n->ca[i] = 0.5f * (float)rng_normal(&r);
        n->cb[i] = 0.5f * (float)rng_normal(&r);
    }
}

static void whole_model_check(int kv, int shared) {
    Net n;
    net_init(&n, kv, shared, 11 + kv);
    Err err = {0};
    cr_assert_eq(model_grads_alloc(&n.m, &err), 0);
    model_zero_grad(&n.m);
    net_J(&n, 1);
    Rng r;
    rng_seed(&r, 99);
    for (int t = 0; t < MODEL_NT; t++) {
        size_t off = model_tensor_offset(&n.m, t), sz = n.m.sizes[t];
        for (int k = 0; k < 12 && sz; k++) {
            size_t i = off + rng_below(&r, sz);
            float keep = n.m.params[i], eps = 1e-2f;
            n.m.params[i] = keep + eps;
            double jp = net_J(&n, 0);
            n.m.params[i] = keep - eps;
            double jm = net_J(&n, 0);
            n.m.params[i] = keep;
            double num = (jp - jm) / (2 * eps), ana = n.m.grads[i];
            cr_assert(fabs(num - ana) <= 3e-3 + 3e-2 * fabs(ana), "%s[%zu]: numeric %.6g analytic %.6g",
                      model_tensor_name(t), i - off, num, ana);
        }
    }
    model_runstate_free(&n.rs);
    model_free(&n.m);
}

Test(model_train, whole_model_grad_gqa_tied) { whole_model_check(2, 1); }
Test(model_train, whole_model_grad_mha_untied) { whole_model_check(4, 0); }
Test(model_train, whole_model_grad_hf_features) {
    hf_features = 1;
    whole_model_check(2, 0);
    hf_features = 0;
}

Test(model_train, grad_accumulation_equals_big_batch) {
    Net n;
    net_init(&n, 2, 1, 5);
    Err err = {0};
    model_grads_alloc(&n.m, &err);
    for (int i = 0; i < 16; i++) n.mask[i] = 1, n.ca[i] = n.cb[i] = 0;
    model_zero_grad(&n.m);
    net_J(&n, 1); /* B=2 at once: mean over 16 tokens */
    float *big = malloc(n.m.n_params * 4);
    memcpy(big, n.m.grads, n.m.n_params * 4);
    /* two micro-batches of one sequence, each loss scaled by 1/2 */
    model_zero_grad(&n.m);
    for (int b = 0; b < 2; b++) {
        int N = n.T, V = n.m.cfg.vocab_size;
        cr_assert_eq(model_forward(&n.m, &n.rs, n.tok + b * N, 1, n.T, MODEL_FWD_LOGITS, &err), 0);
        loss_ce_backward(n.rs.logits, n.tgt + b * N, NULL, N, V, 0.5f / N, NULL);
        cr_assert_eq(model_backward(&n.m, &n.rs, n.tok + b * N, n.rs.logits, NULL, NULL, &err), 0);
    }
    for (size_t i = 0; i < n.m.n_params; i++)
        cr_assert(fabsf(big[i] - n.m.grads[i]) <= 1e-5f + 1e-3f * fabsf(big[i]), "param %zu: %g vs %g", i,
                  big[i], n.m.grads[i]);
    free(big);
    model_runstate_free(&n.rs);
    model_free(&n.m);
}

Test(model_train, overfits_one_batch) {
    Err err = {0};
    Config c;
    cr_assert_eq(model_config_named("tiny", &c, &err), 0);
    c.vocab_size = 40;
    Model m;
    RunState rs;
    AdamW o;
    cr_assert_eq(model_create(&m, &c, 0, &err), 0);
    model_init_random(&m, 3);
    cr_assert_eq(model_runstate_create(&rs, &c, 2, 16, &err), 0);
    cr_assert_eq(adamw_create(&o, m.n_params, &err), 0);
    o.weight_decay = 0;
    Rng r;
    rng_seed(&r, 4);
    int tok[33];
    for (int i = 0; i < 33; i++) tok[i] = (int)rng_below(&r, c.vocab_size);
    int tgt[32];
    for (int i = 0; i < 32; i++) tgt[i] = tok[i + 1];
    double first = 0, loss = 0;
    for (int step = 0; step < 200; step++) {
        model_zero_grad(&m);
        cr_assert_eq(model_forward(&m, &rs, tok, 2, 16, MODEL_FWD_LOGITS, &err), 0);
        loss = loss_ce_backward(rs.logits, tgt, NULL, 32, c.vocab_size, 1.0f / 32, NULL) / 32;
        if (step == 0) first = loss;
        cr_assert_eq(model_backward(&m, &rs, tok, rs.logits, NULL, NULL, &err), 0);
        model_grad_clip(&m, 1.0);
        adamw_step(&o, &m, lr_schedule(step, 10, 200, 1e-2f, 1e-3f));
    }
    cr_assert(first > 3.0, "initial loss %g should be about log(40)", first);
    cr_assert(loss < 0.05, "loss after 200 steps: %g", loss);
    adamw_free(&o);
    model_runstate_free(&rs);
    model_free(&m);
}

Test(model_train, schedule_and_clipping) {
    cr_assert_float_eq(lr_schedule(0, 10, 100, 1.0f, 0.1f), 0.1f, 1e-6);
    cr_assert_float_eq(lr_schedule(9, 10, 100, 1.0f, 0.1f), 1.0f, 1e-6);
    cr_assert_float_eq(lr_schedule(10, 10, 100, 1.0f, 0.1f), 1.0f, 1e-6);
    cr_assert_float_eq(lr_schedule(55, 10, 100, 1.0f, 0.1f), 0.55f, 1e-5);
    cr_assert_float_eq(lr_schedule(100, 10, 100, 1.0f, 0.1f), 0.1f, 1e-6);
    cr_assert_float_eq(lr_schedule(500, 10, 100, 1.0f, 0.1f), 0.1f, 1e-6);
    Err err = {0};
    Config c;
    model_config_named("tiny", &c, &err);
    Model m;
    model_create(&m, &c, 0, &err);
    model_grads_alloc(&m, &err);
    for (size_t i = 0; i < m.n_params; i++) m.grads[i] = 1.0f;
    double before = model_grad_clip(&m, 2.0);
    cr_assert_float_eq(before, sqrt((double)m.n_params), 1e-3);
    cr_assert_float_eq(model_grad_norm(&m), 2.0, 1e-4);
    model_free(&m);
}

Test(model_train, adamw_decays_matrices_only) {
    Err err = {0};
    Config c;
    model_config_named("tiny", &c, &err);
    Model m;
    AdamW o;
    model_create(&m, &c, MODEL_HEAD_REWARD, &err);
    model_grads_alloc(&m, &err);
    adamw_create(&o, m.n_params, &err);
    for (size_t i = 0; i < m.n_params; i++) m.params[i] = 1.0f; /* zero gradient: only decay moves */
    adamw_step(&o, &m, 0.1f);
    cr_assert_float_eq(m.w.wq[0], 1.0f - 0.1f * 0.1f, 1e-6);
    cr_assert_float_eq(m.w.emb[5], 1.0f - 0.1f * 0.1f, 1e-6);
    cr_assert_eq(m.w.rms_att[0], 1.0f);
    cr_assert_eq(m.w.rms_final[3], 1.0f);
    cr_assert_eq(m.w.reward[c.dim], 1.0f);
    cr_assert_eq(o.step, 1);
    adamw_free(&o);
    model_free(&m);
}

#include <cblas.h>
#include "model/parallel.h"

static void fill_part(void *ctx, int64_t lo, int64_t hi, int part) {
    int *v = ctx;
    for (int64_t i = lo; i < hi; i++) v[i] += 1 + part * 0;
}

Test(model_train, par_for_covers_every_index_once) {
    int saved = openblas_get_num_threads();
    for (int th = 1; th <= 2; th++) {
        openblas_set_num_threads(th);
        for (int n = 0; n < 5000; n += 997) {
            int *v = calloc((size_t)n + 1, sizeof(int));
            int parts = par_for(n, 10, fill_part, v);
            cr_assert(parts >= 1 && parts <= th);
            for (int i = 0; i < n; i++) cr_assert_eq(v[i], 1, "n %d index %d", n, i);
            free(v);
        }
    }
    openblas_set_num_threads(saved);
}

/* The chunked LM head (model_head) against full logits: per-row CE with a
 * mask, log-probs and entropies, and their gradients, in chunks of 3 rows
 * (16 rows: 6 chunks, the last short), two grad walks adding up, with the
 * scalar heads' gradients joining the same d lnf. */
typedef struct {
    const Net *n;
    double ce, cnt;
    float lp[16], ent[16], ca[16], cd[16];
} HeadCtx;

static int head_fn(void *ctx, float *logits, int row0, int R, int V, Err *err) {
    HeadCtx *h = ctx;
    (void)err;
    double c;
    h->ce += loss_ce_backward(logits, h->n->tgt + row0, h->n->mask + row0, R, V, 0.25f, &c);
    h->cnt += c;
    return RLHF_OK;
}

static int head_lp_fn(void *ctx, float *logits, int row0, int R, int V, Err *err) {
    HeadCtx *h = ctx;
    (void)err;
    loss_logprobs(logits, h->n->tgt + row0, R, V, h->lp + row0, h->ent + row0);
    loss_logprobs_backward(logits, h->n->tgt + row0, R, V, h->ca + row0, h->cd + row0);
    return RLHF_OK;
}

static void head_check(int kv, int shared) {
    Net n;
    net_init(&n, kv, shared, 5 + kv);
    Err err = {0};
    int N = n.B * n.T, V = n.m.cfg.vocab_size;
    HeadCtx h = {.n = &n};
    for (int i = 0; i < N; i++) h.ca[i] = 0.3f * (float)(i % 5) - 0.5f, h.cd[i] = 0.1f * (float)(i % 4);
    /* unchunked: full logits, the two losses' gradients summed into them */
    cr_assert_eq(model_grads_alloc(&n.m, &err), 0);
    model_zero_grad(&n.m);
    cr_assert_eq(model_forward(&n.m, &n.rs, n.tok, n.B, n.T, MODEL_FWD_LOGITS, &err), 0);
    float *d2 = malloc((size_t)N * V * sizeof(float));
    float lp[16], ent[16];
    memcpy(d2, n.rs.logits, (size_t)N * V * sizeof(float));
    loss_logprobs(n.rs.logits, n.tgt, N, V, lp, ent);
    double cnt, ce = loss_ce_backward(n.rs.logits, n.tgt, n.mask, N, V, 0.25f, &cnt);
    loss_logprobs_backward(d2, n.tgt, N, V, h.ca, h.cd);
    for (size_t i = 0; i < (size_t)N * V; i++) n.rs.logits[i] += d2[i];
    cr_assert_eq(model_backward(&n.m, &n.rs, n.tok, n.rs.logits, n.ca, n.cb, &err), 0);
    float *g_full = malloc(n.m.n_params * sizeof(float));
    memcpy(g_full, n.m.grads, n.m.n_params * sizeof(float));
    /* chunked: no logits in the forward, two grad walks, then backward */
    model_zero_grad(&n.m);
    n.rs.head_rows = 3;
    cr_assert_eq(model_forward(&n.m, &n.rs, n.tok, n.B, n.T, 0, &err), 0);
    cr_assert_eq(model_head(&n.m, &n.rs, 1, head_fn, &h, &err), 0);
    cr_assert_eq(model_head(&n.m, &n.rs, 1, head_lp_fn, &h, &err), 0);
    cr_assert_eq(model_backward(&n.m, &n.rs, n.tok, NULL, n.ca, n.cb, &err), 0);
    cr_assert_float_eq(h.ce, ce, 1e-5 * fabs(ce));
    cr_assert_eq(h.cnt, cnt);
    for (int i = 0; i < N; i++) {
        cr_assert_float_eq(h.lp[i], lp[i], 1e-5f, "logp row %d", i);
        cr_assert_float_eq(h.ent[i], ent[i], 1e-5f, "entropy row %d", i);
    }
    for (int t = 0; t < MODEL_NT; t++) {
        size_t off = model_tensor_offset(&n.m, t);
        for (size_t i = off; i < off + n.m.sizes[t]; i++)
            cr_assert(fabsf(n.m.grads[i] - g_full[i]) <= 1e-5f + 1e-4f * fabsf(g_full[i]),
                      "%s[%zu]: chunked %.8g full %.8g", model_tensor_name(t), i - off,
                      n.m.grads[i], g_full[i]);
    }
    /* a d lnf left by model_head is not to be mixed with dlogits */
    cr_assert_eq(model_head(&n.m, &n.rs, 1, head_fn, &h, &err), 0);
    cr_assert_neq(model_backward(&n.m, &n.rs, n.tok, n.rs.logits, NULL, NULL, &err), 0);
    free(d2), free(g_full);
    model_runstate_free(&n.rs);
    model_free(&n.m);
}

Test(model_train, chunked_head_equals_full_logits_tied) { head_check(2, 1); }
Test(model_train, chunked_head_equals_full_logits_untied) { head_check(4, 0); }
Test(model_train, chunked_head_equals_full_logits_hf_features) {
    hf_features = 1;
    head_check(2, 0);
    hf_features = 0;
}
