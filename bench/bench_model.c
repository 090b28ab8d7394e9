/* Training speed of the embedded transformer: tokens/s and achieved GFLOP/s
 * (6·params·tokens + attention, see model_train_flops) for the 15m and demo
 * configs, beside OpenBLAS sgemm GFLOP/s measured in the same run on the
 * matrix shapes of the same training step (the machine's practical limit),
 * best of several alternating repetitions; peak memory of 15m training; at 1 and 2 BLAS threads.
 * sgemm_gflops is OpenBLAS threading its own products; training splits them
 * over rlhf's threads instead (sgemm_split_gflops: the same products that way),
 * and its attention computes only the causal blocks while the count assumes
 * all of T×T, so a fraction can exceed 1 on small configs.
 * RLHF_BENCH_QUICK=1 runs fewer steps. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "model/layers.h"
#include "model/loss.h"
#include "model/model.h"
#include "model/optim.h"
#include "util/progress.h"
#include "util/rng.h"

static double step_once(Model *m, RunState *rs, AdamW *o, const int *tok, const int *tgt, int B,
                        int T) {
    Err err = {0};
    model_zero_grad(m);
    if (model_forward(m, rs, tok, B, T, MODEL_FWD_LOGITS, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
    double cnt;
    double loss = loss_ce_backward(rs->logits, tgt, NULL, B * T, m->cfg.vocab_size,
                                   1.0f / (B * T), &cnt);
    if (model_backward(m, rs, tok, rs->logits, NULL, NULL, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
    model_grad_clip(m, 1.0);
    adamw_step(o, m, 1e-4f);
    return loss / cnt;
}

/* Seconds for the matmuls of one training step of this config: each forward
 * product out = in·W^T and its two backward products, one after the other. */
typedef struct {
    float *a, *w, *out, *d, *dw; /* input, weights, output, d input, d weights */
} Bufs;
static double sgemm_step_seconds(const Config *c, int B, int T, Bufs *bf, double *flops, int split) {
    int N = B * T, C = c->dim, H = c->hidden_dim, KV = model_kv_dim(c), V = c->vocab_size;
    int shapes[][3] = {{C, C, 2 * c->n_layers}, {KV, C, 2 * c->n_layers}, {H, C, 2 * c->n_layers},
                       {C, H, c->n_layers},     {V, C, 1}};
    double secs = 0;
    *flops = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int OC = shapes[s][0], IC = shapes[s][1], mult = shapes[s][2];
        double t0 = now_seconds();
        if (split) { /* the same products through rlhf's threads (model/layers.c) */
            matmul_forward(bf->out, bf->a, bf->w, N, IC, OC);
            matmul_backward(bf->d, bf->dw, bf->out, bf->a, bf->w, N, IC, OC, 0);
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1, bf->a, IC, bf->w, IC, 0, bf->out, OC);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, 1, bf->out, OC, bf->w, IC, 0, bf->d, IC);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, 1, bf->out, OC, bf->a, IC, 1, bf->dw, IC);
        }
        secs += (now_seconds() - t0) * mult;
        *flops += 3.0 * 2.0 * N * OC * IC * mult;
    }
    return secs;
}

static void bench_config(const char *name, const Config *c, int B, int T, int threads, int steps,
                         int report_mem) {
    Err err = {0};
    Model m;
    RunState rs;
    AdamW o;
    openblas_set_num_threads(threads);
    if (model_create(&m, c, 0, &err) || model_grads_alloc(&m, &err) ||
        model_runstate_create(&rs, c, B, T, &err) || adamw_create(&o, m.n_params, &err)) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
    model_init_random(&m, 1);
    Rng r;
    rng_seed(&r, 2);
    int N = B * T;
    int *tok = malloc(2 * N * sizeof(int));
    for (int i = 0; i < 2 * N; i++) tok[i] = (int)rng_below(&r, c->vocab_size);
    /* warm-up (page-in, BLAS buffers), then alternate one training step and
     * the same step's matmuls alone; the best of each: the machine is shared,
     * and the fastest repetition is the one least disturbed */
    step_once(&m, &rs, &o, tok, tok + N, B, T);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru); /* training's peak, before the sgemm buffers below */
    double rss_mib = ru.ru_maxrss / 1024.0;
    size_t mx = (size_t)N * (c->vocab_size > c->hidden_dim ? c->vocab_size : c->hidden_dim);
    size_t mw = (size_t)c->vocab_size * c->dim + (size_t)c->hidden_dim * c->dim;
    Bufs bf = {calloc(mx, 4), calloc(mw, 4), calloc(mx, 4), calloc(mx, 4), calloc(mw, 4)};
    for (size_t i = 0; i < mx; i++) bf.a[i] = 0.01f * (float)(i % 97);
    for (size_t i = 0; i < mw; i++) bf.w[i] = 0.001f * (float)(i % 89);
    double fl, best_step = 1e30, best_sg = 1e30, best_split = 1e30;
    sgemm_step_seconds(c, B, T, &bf, &fl, 0);
    sgemm_step_seconds(c, B, T, &bf, &fl, 1);
    for (int s = 0; s < steps; s++) {
        double t0 = now_seconds();
        step_once(&m, &rs, &o, tok, tok + N, B, T);
        double dt = now_seconds() - t0;
        best_step = dt < best_step ? dt : best_step;
        double sg = sgemm_step_seconds(c, B, T, &bf, &fl, 0);
        best_sg = sg < best_sg ? sg : best_sg;
        sg = sgemm_step_seconds(c, B, T, &bf, &fl, 1);
        best_split = sg < best_split ? sg : best_split;
    }
    free(bf.a);
    free(bf.w);
    free(bf.out);
    free(bf.d);
    free(bf.dw);
    double dt = best_step;
    double gf = model_train_flops(&m, B, T) / dt / 1e9;
    double sg = fl / best_sg / 1e9, sp = fl / best_split / 1e9;
    printf("train_tokens_per_s config=%s B=%d T=%d threads=%d value=%.1f\n", name, B, T, threads, N / dt);
    printf("train_gflops config=%s B=%d T=%d threads=%d value=%.1f\n", name, B, T, threads, gf);
    printf("sgemm_gflops_same_shapes config=%s B=%d T=%d threads=%d value=%.1f\n", name, B, T,
           threads, sg);
    printf("train_fraction_of_sgemm config=%s B=%d T=%d threads=%d value=%.2f\n", name, B, T,
           threads, gf / sg);
    printf("sgemm_split_gflops_same_shapes config=%s B=%d T=%d threads=%d value=%.1f\n", name, B, T,
           threads, sp);
    printf("train_fraction_of_best_sgemm config=%s B=%d T=%d threads=%d value=%.2f\n", name, B, T,
           threads, gf / (sp > sg ? sp : sg));
    if (report_mem) printf("train_peak_rss_mib config=%s B=%d T=%d value=%.0f\n", name, B, T, rss_mib);
    fflush(stdout);
    free(tok);
    adamw_free(&o);
    model_runstate_free(&rs);
    model_free(&m);
}

int main(void) {
    int quick = getenv("RLHF_BENCH_QUICK") != NULL;
    Err err = {0};
    Config c15, cdemo;
    model_config_named("15m", &c15, &err);
    model_config_named("demo", &cdemo, &err);
    /* 15m first so the peak RSS is its own */
    bench_config("15m", &c15, 8, 256, 2, quick ? 2 : 6, 1);
    bench_config("15m", &c15, 8, 256, 1, quick ? 2 : 4, 0);
    bench_config("demo", &cdemo, 8, 256, 2, quick ? 3 : 10, 0);
    bench_config("demo", &cdemo, 8, 256, 1, quick ? 2 : 5, 0);
    return 0;
}
