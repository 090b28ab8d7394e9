/* Vectorised exp and the row reductions built on it (softmax, cross-entropy,
 * SiLU). GCC vector extensions, so plain -O2 emits SIMD code (4 lanes, SSE2
 * on the baseline target); libm's expf is a call per
 * element and the auto-vectoriser will not touch these loops at -O2.
 * exp: Cephes' polynomial with 2^n from the exponent bits, relative error
 * about 2e-7, argument clamped to [-87, 88]. */
#ifndef RLHF_MODEL_FASTMATH_H
#define RLHF_MODEL_FASTMATH_H

#include <stdint.h>
#include <string.h>

typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4f v4_load(const float *p) {
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void v4_store(float *p, v4f v) { memcpy(p, &v, sizeof v); }
static inline v4f v4_set1(float x) { return (v4f){x, x, x, x}; }
static inline v4f v4_select(v4i mask, v4f a, v4f b) { /* mask ? a : b */
    return (v4f)(((v4i)a & mask) | ((v4i)b & ~mask));
}
static inline v4f v4_max(v4f a, v4f b) { return v4_select(a > b, a, b); }
static inline float v4_hsum(v4f v) {
    return (v[0] + v[2]) + (v[1] + v[3]);
}
static inline float v4_hmax(v4f v) {
    float m = v[0];
    for (int i = 1; i < 4; i++) m = v[i] > m ? v[i] : m;
    return m;
}

static inline v4f v4_exp(v4f x) {
    x = v4_select(x < v4_set1(-87.0f), v4_set1(-87.0f), x);
    x = v4_select(x > v4_set1(88.0f), v4_set1(88.0f), x);
    v4f t = x * 1.44269504088896341f;
    v4f fn = (t + 12582912.0f) - 12582912.0f; /* round to nearest */
    v4f r = x - fn * 0.693359375f - fn * -2.12194440e-4f;
    v4f p = v4_set1(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    v4i bits = (__builtin_convertvector(fn, v4i) + 127) << 23;
    return p * (v4f)bits;
}

static inline float fast_expf(float x) {
    v4f v = v4_exp(v4_set1(x));
    return v[0];
}

/* max of x[0..n) (n >= 1) */
static inline float vec_max(const float *x, int n) {
    int i = 0;
    float m = x[0];
    if (n >= 4) {
        v4f mv = v4_load(x);
        for (i = 4; i + 4 <= n; i += 4) mv = v4_max(mv, v4_load(x + i));
        m = v4_hmax(mv);
    }
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* x[i] = exp(x[i] - sub) in place; returns the sum */
static inline float vec_exp_sum(float *x, int n, float sub) {
    int i = 0;
    v4f acc = v4_set1(0.0f), s = v4_set1(sub);
    for (; i + 4 <= n; i += 4) {
        v4f e = v4_exp(v4_load(x + i) - s);
        v4_store(x + i, e);
        acc += e;
    }
    float sum = v4_hsum(acc);
    if (i < n) {
        float tail[4] = {0};
        memcpy(tail, x + i, (size_t)(n - i) * sizeof(float));
        v4f e = v4_exp(v4_load(tail) - s);
        v4_store(tail, e);
        for (int j = 0; j < n - i; j++) sum += tail[j];
        memcpy(x + i, tail, (size_t)(n - i) * sizeof(float));
    }
    return sum;
}

/* Σ exp(x[i] - sub) and Σ exp(x[i] - sub)·x[i], x unchanged */
static inline void vec_exp_stats(const float *x, int n, float sub, float *sum, float *wsum) {
    int i = 0;
    v4f a = v4_set1(0.0f), w = v4_set1(0.0f), s = v4_set1(sub);
    for (; i + 4 <= n; i += 4) {
        v4f xv = v4_load(x + i), e = v4_exp(xv - s);
        a += e;
        w += e * xv;
    }
    float sa = v4_hsum(a), sw = v4_hsum(w);
    for (; i < n; i++) {
        float e = fast_expf(x[i] - sub);
        sa += e;
        sw += e * x[i];
    }
    *sum = sa;
    *wsum = sw;
}

/* Σ a[i]·b[i] */
static inline float vec_dot(const float *a, const float *b, int n) {
    int i = 0;
    v4f acc = v4_set1(0.0f);
    for (; i + 4 <= n; i += 4) acc += v4_load(a + i) * v4_load(b + i);
    float s = v4_hsum(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* x[i] *= a */
static inline void vec_scale(float *x, int n, float a) {
    int i = 0;
    for (; i + 4 <= n; i += 4) v4_store(x + i, v4_load(x + i) * a);
    for (; i < n; i++) x[i] *= a;
}

#endif
