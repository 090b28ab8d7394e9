/* Forward/backward pairs of the Llama block's layers (see layers.h for shapes).
 * Matrix products go to OpenBLAS sgemm; elementwise loops are fused, one pass
 * over memory where the math allows. */
#include "model/layers.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "model/config.h"
#include "model/fastmath.h"
#include "model/parallel.h"

void embedding_forward(float *out, const int *tokens, const float *emb, int N, int C) {
    for (int n = 0; n < N; n++) memcpy(out + (size_t)n * C, emb + (size_t)tokens[n] * C, C * sizeof(float));
}

void embedding_backward(float *demb, const float *dout, const int *tokens, int N, int C) {
    for (int n = 0; n < N; n++) {
        float *d = demb + (size_t)tokens[n] * C;
        const float *g = dout + (size_t)n * C;
        for (int i = 0; i < C; i++) d[i] += g[i];
    }
}

typedef struct {
    float *out, *rstd, *x;
    const float *inp, *w, *a, *b, *cos_t, *sin_t;
    int C, T, nh, hs;
    float sign, eps;
} Rows;

MODEL_SIMD_CLONES static void rmsnorm_forward_part(void *ctx, int64_t lo, int64_t hi, int part) {
    Rows *R = ctx;
    float *out = R->out, *rstd = R->rstd;
    const float *inp = R->inp, *w = R->w;
    int C = R->C;
    (void)part;
    for (int64_t n = lo; n < hi; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float r = 1.0f / sqrtf(vec_dot(x, x, C) / C + R->eps);
        int i = 0;
        for (; i + 8 <= C; i += 8) v8_store(o + i, v8_load(w + i) * (r * v8_load(x + i)));
        for (; i < C; i++) o[i] = w[i] * (r * x[i]);
        rstd[n] = r;
    }
}

void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C,
                     float eps) {
    Rows r = {.out = out, .rstd = rstd, .inp = inp, .w = w, .C = C, .eps = eps};
    par_for(N, 1 + 16384 / C, rmsnorm_forward_part, &r);
}

/* y = w ⊙ x·r, r = (mean x² + eps)^-1/2:
 * dx = r·(w⊙dy) − x·r³/C·Σ(w⊙dy⊙x),  dw = Σ_n dy⊙x·r */
MODEL_SIMD_CLONES void rmsnorm_backward(float *dinp, float *dw, const float *dout,
                                        const float *inp, const float *w, const float *rstd, int N,
                                        int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        float *dx = dinp + (size_t)n * C;
        float r = rstd[n];
        v8f acc = v8_set1(0.0f);
        int i = 0;
        for (; i + 8 <= C; i += 8) {
            v8f xv = v8_load(x + i), g = v8_load(dy + i);
            acc += v8_load(w + i) * g * xv;
            if (dw) v8_store(dw + i, v8_load(dw + i) + g * xv * r);
        }
        float dot = v8_hsum(acc);
        for (; i < C; i++) {
            dot += w[i] * dy[i] * x[i];
            if (dw) dw[i] += dy[i] * x[i] * r;
        }
        float c = dot * r * r * r / C;
        for (i = 0; i + 8 <= C; i += 8)
            v8_store(dx + i, v8_load(dx + i) + r * v8_load(w + i) * v8_load(dy + i) - c * v8_load(x + i));
        for (; i < C; i++) dx[i] += r * w[i] * dy[i] - c * x[i];
    }
}

/* Matrix products split over the worker threads by output rows (forward,
 * dinp) or output-weight rows (dw), each part one single-threaded sgemm, so a
 * product's parts never write the same memory. Rows per part: at least 64. */
typedef struct {
    float *out, *dinp, *dw;
    const float *inp, *w, *dout;
    int N, C, OC;
    float beta;
} Mm;

static void mm_forward_part(void *ctx, int64_t lo, int64_t hi, int part) {
    Mm *m = ctx;
    (void)part;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(hi - lo), m->OC, m->C, 1.0f,
                m->inp + lo * m->C, m->C, m->w, m->C, 0.0f, m->out + lo * m->OC, m->OC);
}

void matmul_forward(float *out, const float *inp, const float *w, int N, int C, int OC) {
    ParScope ps;
    Mm m = {.out = out, .inp = inp, .w = w, .N = N, .C = C, .OC = OC};
    par_enter(&ps);
    par_for(N, 64, mm_forward_part, &m);
    par_leave(&ps);
}

/* dinp[lo:hi] (rows of N) = dout[lo:hi] · W */
static void mm_dinp_part(void *ctx, int64_t lo, int64_t hi, int part) {
    Mm *m = ctx;
    (void)part;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(hi - lo), m->C, m->OC, 1.0f,
                m->dout + lo * m->OC, m->OC, m->w, m->C, m->beta, m->dinp + lo * m->C, m->C);
}

/* dw[lo:hi] (rows of OC) += dout[:, lo:hi]^T · inp */
static void mm_dw_part(void *ctx, int64_t lo, int64_t hi, int part) {
    Mm *m = ctx;
    (void)part;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(hi - lo), m->C, m->N, 1.0f,
                m->dout + lo, m->OC, m->inp, m->C, 1.0f, m->dw + lo * m->C, m->C);
}

void matmul_backward(float *dinp, float *dw, const float *dout, const float *inp,
                     const float *w, int N, int C, int OC, int accumulate_dinp) {
    ParScope ps;
    Mm m = {.dinp = dinp, .dw = dw, .inp = inp, .w = w, .dout = dout, .N = N, .C = C, .OC = OC,
            .beta = accumulate_dinp ? 1.0f : 0.0f};
    par_enter(&ps);
    if (dinp) par_for(N, 64, mm_dinp_part, &m);
    if (dw) par_for(OC, 64, mm_dw_part, &m);
    par_leave(&ps);
}

/* Inverse frequencies theta^(-2i/hs), with Llama 3.1's rescaling when the
 * config asks for it (as transformers' _compute_llama3_parameters: long
 * wavelengths slowed by the factor, short ones kept, a smooth ramp between). */
static double rope_inv_freq(const Config *c, int i, int hs) {
    double f = 1.0 / pow((double)model_rope_theta(c), (2.0 * i) / hs);
    if (c->rope_factor <= 0) return f;
    double factor = c->rope_factor, lo = c->rope_low_freq, hi = c->rope_high_freq;
    double orig = c->rope_orig_ctx, wavelen = 2.0 * M_PI / f;
    if (wavelen < orig / hi) return f;
    if (wavelen > orig / lo) return f / factor;
    double smooth = (orig / wavelen - lo) / (hi - lo);
    return (1.0 - smooth) * f / factor + smooth * f;
}

void rope_tables(float *cos_t, float *sin_t, int T, const Config *c) {
    int hs = model_head_size(c), h2 = hs / 2;
    for (int i = 0; i < h2; i++) {
        /* in double: at position 100k a float angle would be off by ~1e-2 rad */
        double f = rope_inv_freq(c, i, hs);
        for (int t = 0; t < T; t++) {
            double val = t * f;
            cos_t[(size_t)t * h2 + i] = (float)cos(val);
            sin_t[(size_t)t * h2 + i] = (float)sin(val);
        }
    }
}

/* rows [lo, hi) of x (B·T rows of nh·hs). Four pairs a vector: (v0, v1)
 * and its swap (v1, v0) times (c, c) and (-s, s), added: each element the
 * products and the sum (or difference) of the scalar loop, so its bits. */
MODEL_SIMD_CLONES static void rope_part(void *ctx, int64_t lo, int64_t hi, int part) {
    Rows *R = ctx;
    int h2 = R->hs / 2, nh = R->nh, hs = R->hs;
    (void)part;
    for (int64_t r = lo; r < hi; r++) {
        int t = (int)(r % R->T);
        const float *c = R->cos_t + t * h2, *s = R->sin_t + t * h2;
        float *row = R->x + r * nh * hs;
        for (int h = 0; h < nh; h++) {
            float *v = row + h * hs;
            int i = 0;
            for (; i + 4 <= h2; i += 4) {
                float s0 = R->sign * s[i], s1 = R->sign * s[i + 1], s2 = R->sign * s[i + 2],
                      s3 = R->sign * s[i + 3];
                v8f cc = {c[i], c[i], c[i + 1], c[i + 1], c[i + 2], c[i + 2], c[i + 3], c[i + 3]};
                v8f ss = {-s0, s0, -s1, s1, -s2, s2, -s3, s3};
                v8f x = v8_load(v + 2 * i);
                v8f sw = __builtin_shufflevector(x, x, 1, 0, 3, 2, 5, 4, 7, 6);
                v8_store(v + 2 * i, x * cc + sw * ss);
            }
            for (; i < h2; i++) {
                float v0 = v[2 * i], v1 = v[2 * i + 1], si = R->sign * s[i];
                v[2 * i] = v0 * c[i] - v1 * si;
                v[2 * i + 1] = v0 * si + v1 * c[i];
            }
        }
    }
}

static void rope_apply(float *x, const float *cos_t, const float *sin_t, int B, int T, int nh,
                       int hs, float sign) {
    Rows r = {.x = x, .cos_t = cos_t, .sin_t = sin_t, .T = T, .nh = nh, .hs = hs, .sign = sign};
    par_for((int64_t)B * T, 1 + 16384 / (nh * hs), rope_part, &r);
}

void rope_forward(float *x, const float *cos_t, const float *sin_t, int B, int T, int nh, int hs) {
    rope_apply(x, cos_t, sin_t, B, T, nh, hs, 1.0f);
}

/* The rotation is orthogonal: its transpose is the rotation by -angle. */
void rope_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T, int nh,
                   int hs) {
    rope_apply(dx, cos_t, sin_t, B, T, nh, hs, -1.0f);
}

/* Causal attention skips the blocks above the diagonal: rows are taken in
 * blocks of ATT_BLOCK, and block [r0, r1) only meets keys [0, r1). For T=256
 * that is 10/16 of the full T×T products. */
#define ATT_BLOCK 64

typedef struct {
    float *out, *att, *dq, *dk, *dv, *scratch;
    const float *q, *k, *v, *dout, *attc;
    int B, T, NH, NKV, hs;
} Att;

/* Heads are independent: the (batch, kv group) pairs are split over the
 * worker threads, each running its sgemms with OpenBLAS at one thread (many
 * small products parallelise better this way than inside OpenBLAS). A part
 * takes whole kv groups so the dk/dv sums of grouped heads stay in one thread. */
static void attention_threaded(void (*part)(void *, int64_t, int64_t, int), Att *a) {
    ParScope ps;
    par_enter(&ps);
    par_for((int64_t)a->B * a->NKV, 1, part, a);
    par_leave(&ps);
}

MODEL_SIMD_CLONES static void attention_forward_part(void *ctx, int64_t lo, int64_t hi, int part) {
    Att *A = ctx;
    int T = A->T, NH = A->NH, NKV = A->NKV, hs = A->hs;
    int C = NH * hs, KV = NKV * hs, grp = NH / NKV;
    float scale = 1.0f / sqrtf((float)hs);
    (void)part;
    for (int64_t item = lo; item < hi; item++)
        for (int h = (int)(item % NKV) * grp; h < (int)(item % NKV + 1) * grp; h++) {
            int b = (int)(item / NKV);
            const float *qb = A->q + (size_t)b * T * C + h * hs;
            const float *kb = A->k + (size_t)b * T * KV + (h / grp) * hs;
            const float *vb = A->v + (size_t)b * T * KV + (h / grp) * hs;
            float *a = A->att + ((size_t)b * NH + h) * T * T, *ob = A->out + (size_t)b * T * C + h * hs;
            for (int r0 = 0; r0 < T; r0 += ATT_BLOCK) {
                int r1 = r0 + ATT_BLOCK < T ? r0 + ATT_BLOCK : T, nr = r1 - r0;
                float *ab = a + (size_t)r0 * T;
                /* a[r0:r1, 0:r1] = scale · q[r0:r1] (nr,hs) · k[0:r1]^T */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, r1, hs, scale,
                            qb + (size_t)r0 * C, C, kb, KV, 0.0f, ab, T);
                for (int t = r0; t < r1; t++) {
                    float *row = a + (size_t)t * T;
                    vec_softmax(row, t + 1);
                    memset(row + t + 1, 0, (size_t)(T - t - 1) * sizeof(float));
                }
                /* out[r0:r1] (nr,hs) = a[r0:r1, 0:r1] · v[0:r1] */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, hs, r1, 1.0f, ab, T, vb,
                            KV, 0.0f, ob + (size_t)r0 * C, C);
            }
        }
}

void attention_forward(float *out, float *att, const float *q, const float *k, const float *v,
                       int B, int T, int NH, int NKV, int hs) {
    Att a = {.out = out, .att = att, .q = q, .k = k, .v = v, .B = B, .T = T, .NH = NH, .NKV = NKV, .hs = hs};
    attention_threaded(attention_forward_part, &a);
}

MODEL_SIMD_CLONES static void attention_backward_part(void *ctx, int64_t lo, int64_t hi, int part) {
    Att *A = ctx;
    int T = A->T, NH = A->NH, NKV = A->NKV, hs = A->hs;
    int C = NH * hs, KV = NKV * hs, grp = NH / NKV;
    float scale = 1.0f / sqrtf((float)hs);
    float *da = A->scratch + (size_t)part * T * T; /* (nr, r1) with row stride T */
    for (int64_t item = lo; item < hi; item++) {
        int b = (int)(item / NKV), g = (int)(item % NKV);
        size_t ko = (size_t)b * T * KV + g * hs;
        for (int i = 0; i < T; i++) {
            memset(A->dk + ko + (size_t)i * KV, 0, hs * sizeof(float));
            memset(A->dv + ko + (size_t)i * KV, 0, hs * sizeof(float));
        }
        for (int h = g * grp; h < (g + 1) * grp; h++) {
            size_t qo = (size_t)b * T * C + h * hs;
            const float *a = A->attc + ((size_t)b * NH + h) * T * T;
            for (int r0 = 0; r0 < T; r0 += ATT_BLOCK) {
                int r1 = r0 + ATT_BLOCK < T ? r0 + ATT_BLOCK : T, nr = r1 - r0;
                const float *ab = a + (size_t)r0 * T, *dob = A->dout + qo + (size_t)r0 * C;
                /* da = dout[r0:r1] · v[0:r1]^T */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, r1, hs, 1.0f, dob, C,
                            A->v + ko, KV, 0.0f, da, T);
                /* dv[0:r1] (r1,hs) += a[r0:r1, 0:r1]^T · dout[r0:r1] */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1, hs, nr, 1.0f, ab, T, dob,
                            C, 1.0f, A->dv + ko, KV);
                /* softmax backward: ds = a ⊙ (da − Σ_j a·da); zero right of the diagonal */
                for (int t = r0; t < r1; t++) {
                    const float *ar = a + (size_t)t * T;
                    float *dr = da + (size_t)(t - r0) * T;
                    float dot = vec_dot(ar, dr, t + 1);
                    for (int j = 0; j <= t; j++) dr[j] = ar[j] * (dr[j] - dot);
                    memset(dr + t + 1, 0, (size_t)(r1 - t - 1) * sizeof(float));
                }
                /* dq[r0:r1] = scale · ds · k[0:r1];  dk[0:r1] += scale · ds^T · q[r0:r1] */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nr, hs, r1, scale, da, T,
                            A->k + ko, KV, 0.0f, A->dq + qo + (size_t)r0 * C, C);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1, hs, nr, scale, da, T,
                            A->q + qo + (size_t)r0 * C, C, 1.0f, A->dk + ko, KV);
            }
        }
    }
}

void attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                        const float *att, const float *q, const float *k, const float *v, int B,
                        int T, int NH, int NKV, int hs) {
    Att a = {.dq = dq, .dk = dk, .dv = dv, .scratch = scratch, .dout = dout, .attc = att, .q = q,
             .k = k, .v = v, .B = B, .T = T, .NH = NH, .NKV = NKV, .hs = hs};
    attention_threaded(attention_backward_part, &a);
}

typedef struct {
    float *out, *dh1, *dh3;
    const float *h1, *h3, *dout;
} Swi;

/* silu(x) = x·σ(x), σ(x) = 1/(1 + e^-x); 8 lanes at a time, then the tail */
MODEL_SIMD_CLONES static void swiglu_forward_part(void *ctx, int64_t lo, int64_t hi, int part) {
    Swi *w = ctx;
    float *out = w->out;
    const float *h1 = w->h1, *h3 = w->h3;
    int64_t i = lo;
    (void)part;
    for (; i + 8 <= hi; i += 8) {
        v8f x = v8_load(h1 + i);
        v8_store(out + i, x / (1.0f + v8_exp(-x)) * v8_load(h3 + i));
    }
    for (; i < hi; i++) out[i] = h1[i] / (1.0f + fast_expf(-h1[i])) * h3[i];
}

void swiglu_forward(float *out, const float *h1, const float *h3, int n) {
    Swi w = {.out = out, .h1 = h1, .h3 = h3};
    par_for(n, 1 << 15, swiglu_forward_part, &w);
}

/* d silu/dx = σ(x)·(1 + x·(1 − σ(x))) */
MODEL_SIMD_CLONES static void swiglu_backward_part(void *ctx, int64_t lo, int64_t hi, int part) {
    Swi *w = ctx;
    float *dh1 = w->dh1, *dh3 = w->dh3;
    const float *h1 = w->h1, *h3 = w->h3, *dout = w->dout;
    int64_t i = lo;
    (void)part;
    for (; i + 8 <= hi; i += 8) {
        v8f x = v8_load(h1 + i), d = v8_load(dout + i), s = 1.0f / (1.0f + v8_exp(-x));
        v8_store(dh3 + i, d * x * s);
        v8_store(dh1 + i, d * v8_load(h3 + i) * s * (1.0f + x * (1.0f - s)));
    }
    for (; i < hi; i++) {
        float x = h1[i], s = 1.0f / (1.0f + fast_expf(-x));
        dh3[i] = dout[i] * x * s;
        dh1[i] = dout[i] * h3[i] * s * (1.0f + x * (1.0f - s));
    }
}

void swiglu_backward(float *dh1, float *dh3, const float *dout, const float *h1, const float *h3,
                     int n) {
    Swi w = {.dh1 = dh1, .dh3 = dh3, .h1 = h1, .h3 = h3, .dout = dout};
    par_for(n, 1 << 15, swiglu_backward_part, &w);
}

void bias_forward(float *out, const float *b, int N, int OC) {
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * OC;
        for (int i = 0; i < OC; i++) o[i] += b[i];
    }
}

void bias_backward(float *db, const float *dout, int N, int OC) {
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * OC;
        for (int i = 0; i < OC; i++) db[i] += d[i];
    }
}

MODEL_SIMD_CLONES static void residual_part(void *ctx, int64_t lo, int64_t hi, int part) {
    Rows *R = ctx;
    (void)part;
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8) v8_store(R->out + i, v8_load(R->a + i) + v8_load(R->b + i));
    for (; i < hi; i++) R->out[i] = R->a[i] + R->b[i];
}

void residual_forward(float *out, const float *a, const float *b, int n) {
    Rows r = {.out = out, .a = a, .b = b};
    par_for(n, 1 << 15, residual_part, &r);
}
