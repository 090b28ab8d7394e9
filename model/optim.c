/* AdamW, gradient clipping and the learning-rate schedule. */
#include "model/optim.h"

#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "model/lora.h"
#include "model/parallel.h"
#include "util/sys.h"

int adamw_create(AdamW *o, size_t n, Err *err) {
    memset(o, 0, sizeof *o);
    o->m = sys_alloc_big(n * sizeof(float));
    o->v = sys_alloc_big(n * sizeof(float));
    if (!o->m || !o->v) {
        adamw_free(o);
        return err_set(err, RLHF_ENOMEM, "out of memory for optimizer state");
    }
    o->n = n;
    o->beta1 = 0.9f;
    o->beta2 = 0.95f;
    o->eps = 1e-8f;
    o->weight_decay = 0.1f;
    return RLHF_OK;
}

void adamw_free(AdamW *o) {
    sys_free_big(o->m);
    sys_free_big(o->v);
    memset(o, 0, sizeof *o);
}

typedef struct {
    AdamW *o;
    Model *m;
    float lr, c1, c2, scale;
    double part_sum[PAR_MAX];
} Upd;

typedef struct {
    float b1, b2, eps, lr, c1, c2, wd;
} AdamRun;

/* The update of n params, 8 at a time with AVX where the CPU has it: the
 * same operations in the same order as the scalar loop, without FMA, so every
 * parameter gets the same bits (sqrt and division are exact in both); the
 * scalar loop spent the step's time on one sqrt and one division each. */
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) static size_t adamw_avx(const AdamRun *r, float *p, const float *g,
                                                         float *mm, float *vv, size_t n) {
    __m256 b1 = _mm256_set1_ps(r->b1), b2 = _mm256_set1_ps(r->b2), eps = _mm256_set1_ps(r->eps);
    __m256 o1 = _mm256_set1_ps(1.0f - r->b1), o2 = _mm256_set1_ps(1.0f - r->b2);
    __m256 lr = _mm256_set1_ps(r->lr), c1 = _mm256_set1_ps(r->c1), c2 = _mm256_set1_ps(r->c2);
    __m256 wd = _mm256_set1_ps(r->wd);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 gi = _mm256_loadu_ps(g + i), pi = _mm256_loadu_ps(p + i);
        __m256 mi = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(mm + i)), _mm256_mul_ps(o1, gi));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(vv + i)),
                                  _mm256_mul_ps(_mm256_mul_ps(o2, gi), gi));
        _mm256_storeu_ps(mm + i, mi);
        _mm256_storeu_ps(vv + i, vi);
        __m256 den = _mm256_add_ps(_mm256_sqrt_ps(_mm256_mul_ps(vi, c2)), eps);
        __m256 u = _mm256_add_ps(_mm256_div_ps(_mm256_mul_ps(mi, c1), den), _mm256_mul_ps(wd, pi));
        _mm256_storeu_ps(p + i, _mm256_sub_ps(pi, _mm256_mul_ps(lr, u)));
    }
    return i;
}
#endif

static void adamw_run(const AdamRun *r, float *p, const float *g, float *mm, float *vv, size_t n) {
    float b1 = r->b1, b2 = r->b2, eps = r->eps, lr = r->lr, c1 = r->c1, c2 = r->c2, wd = r->wd;
    size_t i = 0;
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx2")) i = adamw_avx(r, p, g, mm, vv, n);
#endif
    for (; i < n; i++) {
        float gi = g[i];
        float mi = b1 * mm[i] + (1.0f - b1) * gi;
        float vi = b2 * vv[i] + (1.0f - b2) * gi * gi;
        mm[i] = mi;
        vv[i] = vi;
        p[i] -= lr * ((mi * c1) / (sqrtf(vi * c2) + eps) + wd * p[i]);
    }
}

/* The update of params [lo, hi), tensor by tensor for the decay flag. */
static void adamw_part(void *ctx, int64_t lo, int64_t hi, int part) {
    Upd *u = ctx;
    AdamW *o = u->o;
    Model *m = u->m;
    float b1 = o->beta1, b2 = o->beta2, eps = o->eps, lr = u->lr, c1 = u->c1, c2 = u->c2;
    size_t off = 0;
    (void)part;
    /* the trainable array in runs of one decay flag: tensors, or with LoRA the
     * adapters (decayed) then the heads */
    size_t nrun = m->lora ? 2 : MODEL_NT;
    for (size_t t = 0; t < nrun; t++) {
        size_t len = m->lora ? (t ? m->lora->n - m->lora->off_head[0] : m->lora->off_head[0])
                             : m->sizes[t];
        size_t a = off > (size_t)lo ? off : (size_t)lo;
        size_t e = off + len < (size_t)hi ? off + len : (size_t)hi;
        off += len;
        if (a >= e) continue;
        float wd = model_train_decays(m, a) ? o->weight_decay : 0.0f;
        AdamRun r = {b1, b2, eps, lr, c1, c2, wd};
        adamw_run(&r, model_train_params(m) + a, model_train_grads(m) + a, o->m + a, o->v + a, e - a);
    }
}

void adamw_step(AdamW *o, Model *m, float lr) {
    o->step++;
    Upd u = {.o = o, .m = m, .lr = lr};
    u.c1 = 1.0f / (1.0f - powf(o->beta1, (float)o->step));
    u.c2 = 1.0f / (1.0f - powf(o->beta2, (float)o->step));
    par_for((int64_t)model_train_n(m), 1 << 16, adamw_part, &u);
}

static void sumsq_part(void *ctx, int64_t lo, int64_t hi, int part) {
    Upd *u = ctx;
    const float *g = model_train_grads(u->m);
    /* four float partial sums per block of 4096, then double: accurate and vectorisable */
    double s = 0.0;
    for (int64_t b = lo; b < hi; b += 4096) {
        int64_t e = b + 4096 < hi ? b + 4096 : hi;
        float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        int64_t i = b;
        for (; i + 4 <= e; i += 4) {
            a0 += g[i] * g[i];
            a1 += g[i + 1] * g[i + 1];
            a2 += g[i + 2] * g[i + 2];
            a3 += g[i + 3] * g[i + 3];
        }
        for (; i < e; i++) a0 += g[i] * g[i];
        s += (double)a0 + a1 + a2 + a3;
    }
    u->part_sum[part] = s;
}

double model_grad_norm(const Model *m) {
    Upd u = {.m = (Model *)m};
    int parts = par_for((int64_t)model_train_n(m), 1 << 16, sumsq_part, &u);
    double s = 0.0;
    for (int i = 0; i < parts; i++) s += u.part_sum[i];
    return sqrt(s);
}

static void scale_part(void *ctx, int64_t lo, int64_t hi, int part) {
    Upd *u = ctx;
    float *g = model_train_grads(u->m), s = u->scale;
    (void)part;
    for (int64_t i = lo; i < hi; i++) g[i] *= s;
}

double model_grad_clip(Model *m, double max_norm) {
    double norm = model_grad_norm(m);
    if (max_norm > 0 && norm > max_norm) {
        Upd u = {.m = m, .scale = (float)(max_norm / (norm + 1e-6))};
        par_for((int64_t)model_train_n(m), 1 << 16, scale_part, &u);
    }
    return norm;
}

float lr_schedule(int64_t step, int64_t warmup, int64_t total, float lr_max, float lr_min) {
    if (warmup > 0 && step < warmup) return lr_max * (float)(step + 1) / (float)warmup;
    if (step >= total) return lr_min;
    double span = (double)(total - warmup);
    double frac = span > 0 ? (double)(step - warmup) / span : 1.0;
    return lr_min + 0.5f * (lr_max - lr_min) * (float)(1.0 + cos(M_PI * frac));
}
