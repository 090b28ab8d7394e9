/* model/layers.c and model/loss.c: every backward against central finite
 * differences of its forward. The objective is J = Σ g ⊙ f(x) with a random
 * g, summed in double. Tolerance, with float forwards and eps = 1e-2 (or 1e-3
 * where noted): |numeric − analytic| <= 2e-3 + 2e-2·|analytic| per element. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/layers.h"
#include "model/loss.h"
#include "model/parallel.h"
#include "util/rng.h"

/* Every buffer a test takes is freed when it ends, so the sanitizer run
 * reports only real leaks. */
static void *bufs[256];
static int nbufs;
static void *keep(void *p) {
    if (p && nbufs < 256) bufs[nbufs++] = p;
    return p;
}
static void free_bufs(void) {
    while (nbufs) free(bufs[--nbufs]);
}
#define malloc(n) keep(malloc(n))
#define calloc(n, s) keep(calloc(n, s))
TestSuite(model_layers, .fini = free_bufs);

#define ATOL 2e-3
#define RTOL 2e-2

static Rng R;

static float *rnd(int n, float sd) {
    float *p = malloc((size_t)n * sizeof(float));
    for (int i = 0; i < n; i++) p[i] = sd * (float)rng_normal(&R);
    return p;
}

static double dotd(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* checks analytic gradient `ana` of J(x) over the n entries of x */
static void check_grad(const char *what, float *x, int n, const float *ana, double (*J)(void *),
                       void *ctx, float eps) {
    for (int i = 0; i < n; i++) {
        float keep = x[i];
        x[i] = keep + eps;
        double jp = J(ctx);
        x[i] = keep - eps;
        double jm = J(ctx);
        x[i] = keep;
        double num = (jp - jm) / (2.0 * eps);
        cr_assert(fabs(num - ana[i]) <= ATOL + RTOL * fabs(ana[i]),
                  "%s[%d]: numeric %.6g analytic %.6g", what, i, num, ana[i]);
    }
}

/* ---- rmsnorm ---- */
typedef struct { float *x, *w, *g, *out, *rstd; int N, C; float eps; } NormCtx;
static double norm_J(void *p) {
    NormCtx *c = p;
    rmsnorm_forward(c->out, c->rstd, c->x, c->w, c->N, c->C, c->eps);
    return dotd(c->out, c->g, c->N * c->C);
}
Test(model_layers, rmsnorm_grad) {
    rng_seed(&R, 1);
    /* C = 13: one 8-lane block and a scalar tail */
    enum { N = 3, C = 13 };
    NormCtx c = {rnd(N * C, 1), rnd(C, 1), rnd(N * C, 1), rnd(N * C, 1), rnd(N, 1), N, C, 1e-5f};
    float *dx = calloc(N * C, 4), *dw = calloc(C, 4);
    norm_J(&c);
    rmsnorm_backward(dx, dw, c.g, c.x, c.w, c.rstd, N, C);
    check_grad("rmsnorm dx", c.x, N * C, dx, norm_J, &c, 1e-2f);
    check_grad("rmsnorm dw", c.w, C, dw, norm_J, &c, 1e-2f);
    /* forward against the formula */
    norm_J(&c);
    for (int n = 0; n < N; n++) {
        double ss = 0;
        for (int i = 0; i < C; i++) ss += (double)c.x[n * C + i] * c.x[n * C + i];
        double r = 1 / sqrt(ss / C + 1e-5);
        for (int i = 0; i < C; i++) cr_assert_float_eq(c.out[n * C + i], c.w[i] * c.x[n * C + i] * r, 1e-5);
    }
    /* the eps is the caller's (Qwen uses 1e-6): a large one shows it is used */
    c.eps = 0.5f;
    norm_J(&c);
    double ss = 0;
    for (int i = 0; i < C; i++) ss += (double)c.x[i] * c.x[i];
    cr_assert_float_eq(c.out[0], c.w[0] * c.x[0] / sqrt(ss / C + 0.5), 1e-5);
}

/* ---- matmul ---- */
typedef struct { float *x, *w, *g, *out; int N, C, OC; } MmCtx;
static double mm_J(void *p) {
    MmCtx *c = p;
    matmul_forward(c->out, c->x, c->w, c->N, c->C, c->OC);
    return dotd(c->out, c->g, c->N * c->OC);
}
Test(model_layers, matmul_grad_and_accumulate) {
    rng_seed(&R, 2);
    MmCtx c = {rnd(5 * 7, 1), rnd(6 * 7, 1), rnd(5 * 6, 1), rnd(5 * 6, 1), 5, 7, 6};
    float *dx = calloc(35, 4), *dw = calloc(42, 4);
    matmul_backward(dx, dw, c.g, c.x, c.w, 5, 7, 6, 0);
    check_grad("matmul dx", c.x, 35, dx, mm_J, &c, 1e-2f);
    check_grad("matmul dw", c.w, 42, dw, mm_J, &c, 1e-2f);
    /* a second backward accumulates */
    float *dx2 = malloc(35 * 4), *dw2 = malloc(42 * 4);
    memcpy(dx2, dx, 35 * 4);
    memcpy(dw2, dw, 42 * 4);
    matmul_backward(dx2, dw2, c.g, c.x, c.w, 5, 7, 6, 1);
    for (int i = 0; i < 35; i++) cr_assert_float_eq(dx2[i], 2 * dx[i], 1e-5);
    for (int i = 0; i < 42; i++) cr_assert_float_eq(dw2[i], 2 * dw[i], 1e-5);
}

/* ---- rope ---- */
typedef struct { float *x, *y, *g, *cs, *sn; int B, T, nh, hs; } RopeCtx;
static double rope_J(void *p) {
    RopeCtx *c = p;
    int n = c->B * c->T * c->nh * c->hs;
    memcpy(c->y, c->x, n * 4);
    rope_forward(c->y, c->cs, c->sn, c->B, c->T, c->nh, c->hs);
    return dotd(c->y, c->g, n);
}
Test(model_layers, rope_grad_and_position_zero) {
    rng_seed(&R, 3);
    int B = 2, T = 5, nh = 2, hs = 6, n = B * T * nh * hs;
    RopeCtx c = {rnd(n, 1), rnd(n, 1), rnd(n, 1), malloc(T * 3 * 4), malloc(T * 3 * 4), B, T, nh, hs};
    Config cfg = {.dim = nh * hs, .n_heads = nh};
    rope_tables(c.cs, c.sn, T, &cfg);
    rope_J(&c);
    for (int i = 0; i < nh * hs; i++) cr_assert_float_eq(c.y[i], c.x[i], 1e-6); /* pos 0: identity */
    float *dx = malloc(n * 4);
    memcpy(dx, c.g, n * 4);
    rope_backward(dx, c.cs, c.sn, B, T, nh, hs);
    check_grad("rope dx", c.x, n, dx, rope_J, &c, 1e-2f);
}

/* theta and llama3 scaling against transformers' _compute_llama3_parameters
 * written out in double: high frequencies kept, low ones divided by the
 * factor, a smooth ramp between (this hs and orig put pairs in all three) */
Test(model_layers, rope_tables_theta_and_llama3) {
    enum { T = 7, hs = 32 };
    Config c = {.dim = 64, .n_heads = 2, .rope_theta = 500000.0f, .rope_factor = 8.0f,
                .rope_low_freq = 1.0f, .rope_high_freq = 4.0f, .rope_orig_ctx = 64};
    float cs[T * hs / 2], sn[T * hs / 2];
    rope_tables(cs, sn, T, &c);
    int kinds[3] = {0};
    for (int i = 0; i < hs / 2; i++) {
        double f = 1.0 / pow(500000.0, 2.0 * i / hs), wl = 2 * M_PI / f, g;
        if (wl < 64 / 4.0) g = f, kinds[0]++;
        else if (wl > 64 / 1.0) g = f / 8, kinds[2]++;
        else {
            double sm = (64 / wl - 1) / (4 - 1);
            g = (1 - sm) * f / 8 + sm * f, kinds[1]++;
        }
        for (int t = 0; t < T; t++) {
            cr_assert_float_eq(cs[t * hs / 2 + i], cos(t * g), 1e-6, "pair %d pos %d", i, t);
            cr_assert_float_eq(sn[t * hs / 2 + i], sin(t * g), 1e-6, "pair %d pos %d", i, t);
        }
    }
    cr_assert(kinds[0] && kinds[1] && kinds[2], "kept %d smoothed %d scaled %d", kinds[0], kinds[1],
              kinds[2]);
    /* no theta, no scaling: llama2.c's 10000^(-2i/hs) */
    Config d = {.dim = 64, .n_heads = 2};
    rope_tables(cs, sn, T, &d);
    cr_assert_float_eq(cs[3 * hs / 2 + 5], cos(3 / pow(10000.0, 10.0 / hs)), 1e-6);
}

/* ---- attention ---- */
typedef struct { float *q, *k, *v, *g, *out, *att; int B, T, NH, NKV, hs; } AttCtx;
static double att_J(void *p) {
    AttCtx *c = p;
    attention_forward(c->out, c->att, c->q, c->k, c->v, c->B, c->T, c->NH, c->NKV, c->hs);
    return dotd(c->out, c->g, c->B * c->T * c->NH * c->hs);
}
static void attention_case(int NH, int NKV, int B, int T) {
    rng_seed(&R, 4 + NKV);
    int hs = 4, nq = B * T * NH * hs, nk = B * T * NKV * hs;
    AttCtx c = {rnd(nq, 1), rnd(nk, 1), rnd(nk, 1), rnd(nq, 1), rnd(nq, 1), rnd(B * NH * T * T, 1),
                B, T, NH, NKV, hs};
    att_J(&c);
    /* rows are probability distributions over the causal prefix */
    for (int r = 0; r < B * NH * T; r++) {
        int t = r % T;
        double s = 0;
        for (int j = 0; j < T; j++) {
            float a = c.att[(size_t)r * T + j];
            if (j > t) cr_assert_eq(a, 0.0f);
            s += a;
        }
        cr_assert_float_eq(s, 1.0, 1e-5);
    }
    float *dq = malloc(nq * 4), *dk = malloc(nk * 4), *dv = malloc(nk * 4), *scr = malloc((size_t)PAR_MAX * T * T * 4);
    attention_backward(dq, dk, dv, scr, c.g, c.att, c.q, c.k, c.v, B, T, NH, NKV, hs);
    check_grad("attention dq", c.q, nq, dq, att_J, &c, 1e-2f);
    check_grad("attention dk", c.k, nk, dk, att_J, &c, 1e-2f);
    check_grad("attention dv", c.v, nk, dv, att_J, &c, 1e-2f);
}
Test(model_layers, attention_grad_mha) { attention_case(2, 2, 2, 6); }
Test(model_layers, attention_grad_gqa) { attention_case(4, 2, 2, 6); }
Test(model_layers, attention_grad_mqa) { attention_case(3, 1, 2, 6); }
/* longer than one causal block (ATT_BLOCK = 64 rows), not a multiple of it */
Test(model_layers, attention_grad_blocks) { attention_case(2, 1, 1, 70); }

/* ---- swiglu ---- */
typedef struct { float *a, *b, *g, *out; int n; } SwCtx;
static double sw_J(void *p) {
    SwCtx *c = p;
    swiglu_forward(c->out, c->a, c->b, c->n);
    return dotd(c->out, c->g, c->n);
}
Test(model_layers, swiglu_grad) {
    rng_seed(&R, 5);
    int n = 23; /* not a multiple of the vector width: the tail path too */
    SwCtx c = {rnd(n, 2), rnd(n, 1), rnd(n, 1), rnd(n, 1), n};
    float *d1 = malloc(n * 4), *d3 = malloc(n * 4);
    swiglu_backward(d1, d3, c.g, c.a, c.b, n);
    check_grad("swiglu dh1", c.a, n, d1, sw_J, &c, 1e-2f);
    check_grad("swiglu dh3", c.b, n, d3, sw_J, &c, 1e-2f);
}

Test(model_layers, embedding_scatter) {
    float emb[3 * 2] = {1, 2, 3, 4, 5, 6}, out[4 * 2], demb[6] = {0};
    int tok[4] = {2, 0, 2, 1};
    embedding_forward(out, tok, emb, 4, 2);
    cr_assert_eq(out[0], 5);
    cr_assert_eq(out[7], 4);
    float g[8] = {1, 1, 2, 2, 3, 3, 4, 4};
    embedding_backward(demb, g, tok, 4, 2);
    cr_assert_eq(demb[0], 2);
    cr_assert_eq(demb[2], 4);
    cr_assert_eq(demb[4], 4); /* token 2 twice: 1 + 3 */
}

/* ---- losses ---- */
typedef struct { float *x, *tmp, *mask, *ca, *cd; int *tgt; int N, V; int kind; } LossCtx;
static double loss_J(void *p) {
    LossCtx *c = p;
    if (c->kind == 0) {
        double cnt;
        return loss_ce_forward(c->x, c->tgt, c->mask, c->N, c->V, NULL, &cnt) / cnt;
    }
    loss_logprobs(c->x, c->tgt, c->N, c->V, c->tmp, c->tmp + c->N);
    return dotd(c->tmp, c->ca, c->N) + dotd(c->tmp + c->N, c->cd, c->N);
}
Test(model_layers, cross_entropy_masked_grad) {
    rng_seed(&R, 6);
    int N = 5, V = 11, tgt[5] = {3, 0, 10, 7, -1};
    float mask[5] = {1, 0, 1, 0.5f, 1};
    LossCtx c = {rnd(N * V, 2), NULL, mask, NULL, NULL, tgt, N, V, 0};
    double cnt;
    double l = loss_ce_forward(c.x, tgt, mask, N, V, NULL, &cnt);
    cr_assert_float_eq(cnt, 2.5, 1e-9); /* target -1 counts as masked */
    float *d = malloc(N * V * 4);
    memcpy(d, c.x, N * V * 4);
    double l2 = loss_ce_backward(d, tgt, mask, N, V, (float)(1.0 / cnt), NULL);
    cr_assert_float_eq(l, l2, 1e-5);
    for (int i = V; i < 2 * V; i++) cr_assert_eq(d[i], 0.0f); /* masked row: no gradient */
    check_grad("ce dlogits", c.x, N * V, d, loss_J, &c, 1e-2f);
    /* uniform logits: loss = log V */
    float z[11] = {0};
    int t0 = 4;
    cr_assert_float_eq(loss_ce_forward(z, &t0, NULL, 1, 11, NULL, NULL), log(11.0), 1e-5);
}
Test(model_layers, logprob_entropy_grad) {
    rng_seed(&R, 7);
    int N = 4, V = 9, tgt[4] = {1, 8, 0, 5};
    LossCtx c = {rnd(N * V, 2), malloc(2 * N * 4), NULL, rnd(N, 1), rnd(N, 1), tgt, N, V, 1};
    float lp[4], ent[4];
    loss_logprobs(c.x, tgt, N, V, lp, ent);
    for (int n = 0; n < N; n++) {
        double m = -1e30, s = 0, h = 0;
        for (int i = 0; i < V; i++) m = fmax(m, c.x[n * V + i]);
        for (int i = 0; i < V; i++) s += exp(c.x[n * V + i] - m);
        for (int i = 0; i < V; i++) {
            double q = exp(c.x[n * V + i] - m) / s;
            h -= q * log(q);
        }
        cr_assert_float_eq(lp[n], c.x[n * V + tgt[n]] - m - log(s), 1e-5);
        cr_assert_float_eq(ent[n], h, 1e-5);
    }
    float *d = malloc(N * V * 4);
    memcpy(d, c.x, N * V * 4);
    loss_logprobs_backward(d, tgt, N, V, c.ca, c.cd);
    check_grad("logprob/entropy dlogits", c.x, N * V, d, loss_J, &c, 1e-2f);
}
