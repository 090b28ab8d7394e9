/* Training speed of the embedded transformer: tokens/s and achieved GFLOP/s
 * (6·params·tokens + attention, see model_train_flops) for the 15m and demo
 * configs, beside OpenBLAS sgemm GFLOP/s measured in the same run on the
 * matrix shapes of the same training step (the machine's practical limit);
 * peak memory of 15m training; at 1 and 2 BLAS threads.
 * RLHF_BENCH_QUICK=1 runs fewer steps. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

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

/* sgemm GFLOP/s over the matmuls of one training step of this config: each
 * forward product out = in·W^T and its two backward products, timed alone. */
static double sgemm_gflops(const Config *c, int B, int T, int reps) {
    int N = B * T, C = c->dim, H = c->hidden_dim, KV = model_kv_dim(c), V = c->vocab_size;
    int shapes[][3] = {{C, C, 2 * c->n_layers}, {KV, C, 2 * c->n_layers}, {H, C, 2 * c->n_layers},
                       {C, H, c->n_layers},     {V, C, 1}};
    size_t mx = (size_t)N * (V > H ? V : H);
    float *a = calloc(mx, 4), *w = calloc((size_t)V * C + (size_t)H * C, 4), *out = calloc(mx, 4);
    for (size_t i = 0; i < mx; i++) a[i] = 0.01f * (float)(i % 97);
    double flops = 0, secs = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int OC = shapes[s][0], IC = shapes[s][1], mult = shapes[s][2];
        /* warm up once, then time */
        for (int r = -1; r < reps; r++) {
            double t0 = now_seconds();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1, a, IC, w, IC, 0, out, OC);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, 1, out, OC, w, IC, 0, a, IC);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, 1, out, OC, a, IC, 1, w, IC);
            double dt = now_seconds() - t0;
            if (r >= 0) {
                secs += dt * mult;
                flops += 3.0 * 2.0 * N * OC * IC * mult;
            }
        }
    }
    free(a);
    free(w);
    free(out);
    return flops / secs / 1e9;
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
    step_once(&m, &rs, &o, tok, tok + N, B, T); /* warm-up: page in, BLAS buffers */
    double t0 = now_seconds();
    for (int s = 0; s < steps; s++) step_once(&m, &rs, &o, tok, tok + N, B, T);
    double dt = (now_seconds() - t0) / steps;
    double gf = model_train_flops(&m, B, T) / dt / 1e9;
    double sg = sgemm_gflops(c, B, T, 2);
    printf("train_tokens_per_s config=%s B=%d T=%d threads=%d value=%.1f\n", name, B, T, threads, N / dt);
    printf("train_gflops config=%s B=%d T=%d threads=%d value=%.1f\n", name, B, T, threads, gf);
    printf("sgemm_gflops_same_shapes config=%s B=%d T=%d threads=%d value=%.1f\n", name, B, T,
           threads, sg);
    printf("train_fraction_of_sgemm config=%s B=%d T=%d threads=%d value=%.2f\n", name, B, T,
           threads, gf / sg);
    if (report_mem) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("train_peak_rss_mib config=%s B=%d T=%d value=%.0f\n", name, B, T, ru.ru_maxrss / 1024.0);
    }
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
    bench_config("15m", &c15, 8, 256, 2, quick ? 2 : 5, 1);
    bench_config("15m", &c15, 8, 256, 1, quick ? 1 : 3, 0);
    bench_config("demo", &cdemo, 8, 256, 2, quick ? 3 : 10, 0);
    bench_config("demo", &cdemo, 8, 256, 1, quick ? 2 : 5, 0);
    return 0;
}
