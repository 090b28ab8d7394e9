/* Vectorised exp and the row reductions built on it (softmax, cross-entropy,
 * SiLU). GCC vector extensions, so plain -O2 emits SIMD code (8 lanes); libm's expf is a call per
 * element and the auto-vectoriser will not touch these loops at -O2.
 * exp: Cephes' polynomial with 2^n from the exponent bits, relative error
 * about 2e-7, argument clamped to [-87, 88]. */
#ifndef RLHF_MODEL_FASTMATH_H
#define RLHF_MODEL_FASTMATH_H

#include <stdint.h>
#include <string.h>

/* 32-byte vectors: two SSE registers on the baseline target, one AVX register
 * in the functions compiled for AVX2 too (MODEL_SIMD_CLONES). They never cross
 * a call boundary between files, so GCC's note that their ABI differs with and
 * without AVX does not apply; it is silenced for the files that include this
 * header (only model/ internals do). */
#pragma GCC diagnostic ignored "-Wpsabi"

/* Always inlined: each caller (and each of its clones) gets its own copy
 * compiled for its target. */
#define FM_INLINE static inline __attribute__((always_inline))

/* On x86-64, hot loops get an AVX2+FMA clone picked at load time (ifunc). Not
 * under the sanitizers: ThreadSanitizer's instrumented ifunc resolvers crash
 * before its runtime is up. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define MODEL_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MODEL_SIMD_CLONES
#endif

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

FM_INLINE v8f v8_load(const float *p) {
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}
FM_INLINE void v8_store(float *p, v8f v) { memcpy(p, &v, sizeof v); }
FM_INLINE v8f v8_set1(float x) { return (v8f){x, x, x, x, x, x, x, x}; }
FM_INLINE v8f v8_select(v8i mask, v8f a, v8f b) { /* mask ? a : b */
    return (v8f)(((v8i)a & mask) | ((v8i)b & ~mask));
}
FM_INLINE v8f v8_max(v8f a, v8f b) { return v8_select(a > b, a, b); }
FM_INLINE float v8_hsum(v8f v) {
    return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
}
FM_INLINE float v8_hmax(v8f v) {
    float m = v[0];
    for (int i = 1; i < 8; i++) m = v[i] > m ? v[i] : m;
    return m;
}

FM_INLINE v8f v8_exp(v8f x) {
    x = v8_select(x < v8_set1(-87.0f), v8_set1(-87.0f), x);
    x = v8_select(x > v8_set1(88.0f), v8_set1(88.0f), x);
    v8f t = x * 1.44269504088896341f;
    v8f fn = (t + 12582912.0f) - 12582912.0f; /* round to nearest */
    v8f r = x - fn * 0.693359375f - fn * -2.12194440e-4f;
    v8f p = v8_set1(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    v8i bits = (__builtin_convertvector(fn, v8i) + 127) << 23;
    return p * (v8f)bits;
}

FM_INLINE float fast_expf(float x) {
    v8f v = v8_exp(v8_set1(x));
    return v[0];
}

/* max of x[0..n) (n >= 1) */
FM_INLINE float vec_max(const float *x, int n) {
    int i = 0;
    float m = x[0];
    if (n >= 8) {
        v8f mv = v8_load(x);
        for (i = 8; i + 8 <= n; i += 8) mv = v8_max(mv, v8_load(x + i));
        m = v8_hmax(mv);
    }
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* x[i] = exp(x[i] - sub) in place; returns the sum. A tail of n % 8 past
 * 8 is the last eight's exponentials, taken before the loop writes any (the
 * lanes it shares with the loop's last vector get the same values): no copy
 * through a buffer, whose small stores and wide load stall. */
FM_INLINE float vec_exp_sum(float *x, int n, float sub) {
    int i = 0;
    v8f acc = v8_set1(0.0f), s = v8_set1(sub), last = acc;
    if (n > 8 && n % 8) last = v8_exp(v8_load(x + n - 8) - s);
    for (; i + 8 <= n; i += 8) {
        v8f e = v8_exp(v8_load(x + i) - s);
        v8_store(x + i, e);
        acc += e;
    }
    float sum = v8_hsum(acc);
    if (i < n && n > 8) {
        v8_store(x + n - 8, last);
        for (int j = i - (n - 8); j < 8; j++) sum += last[j];
    } else if (i < n) {
        float tail[8] = {0};
        memcpy(tail, x + i, (size_t)(n - i) * sizeof(float));
        v8f e = v8_exp(v8_load(tail) - s);
        v8_store(tail, e);
        for (int j = 0; j < n - i; j++) sum += tail[j];
        memcpy(x + i, tail, (size_t)(n - i) * sizeof(float));
    }
    return sum;
}

/* x[i] = exp(x[i] - sub) in place (vec_exp_sum's values, without the sum) */
FM_INLINE void vec_exp(float *x, int n, float sub) {
    int i = 0;
    v8f s = v8_set1(sub), last = v8_set1(0.0f);
    if (n > 8 && n % 8) last = v8_exp(v8_load(x + n - 8) - s);
    for (; i + 8 <= n; i += 8) v8_store(x + i, v8_exp(v8_load(x + i) - s));
    if (i < n && n > 8) v8_store(x + n - 8, last);
    else if (i < n) {
        float tail[8] = {0};
        memcpy(tail, x + i, (size_t)(n - i) * sizeof(float));
        v8_store(tail, v8_exp(v8_load(tail) - s));
        memcpy(x + i, tail, (size_t)(n - i) * sizeof(float));
    }
}

/* Σ x[i] summed as vec_exp_sum sums its exponentials: after vec_exp(x, n, sub)
 * (in any blocks of multiples of 8), vec_exp_sum(x, n, sub)'s bits */
FM_INLINE float vec_sum_as_exp_sum(const float *x, int n) {
    int i = 0;
    v8f acc = v8_set1(0.0f);
    for (; i + 8 <= n; i += 8) acc += v8_load(x + i);
    float sum = v8_hsum(acc);
    for (; i < n; i++) sum += x[i];
    return sum;
}

/* Σ exp(x[i] - sub) and Σ exp(x[i] - sub)·x[i], x unchanged */
FM_INLINE void vec_exp_stats(const float *x, int n, float sub, float *sum, float *wsum) {
    int i = 0;
    v8f a = v8_set1(0.0f), w = v8_set1(0.0f), s = v8_set1(sub);
    for (; i + 8 <= n; i += 8) {
        v8f xv = v8_load(x + i), e = v8_exp(xv - s);
        a += e;
        w += e * xv;
    }
    float sa = v8_hsum(a), sw = v8_hsum(w);
    for (; i < n; i++) {
        float e = fast_expf(x[i] - sub);
        sa += e;
        sw += e * x[i];
    }
    *sum = sa;
    *wsum = sw;
}

/* Σ a[i]·b[i] */
FM_INLINE float vec_dot(const float *a, const float *b, int n) {
    int i = 0;
    v8f acc = v8_set1(0.0f);
    for (; i + 8 <= n; i += 8) acc += v8_load(a + i) * v8_load(b + i);
    float s = v8_hsum(acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

/* x[i] *= a */
FM_INLINE void vec_scale(float *x, int n, float a) {
    int i = 0;
    for (; i + 8 <= n; i += 8) v8_store(x + i, v8_load(x + i) * a);
    for (; i < n; i++) x[i] *= a;
}

/* softmax of x[0..n) (n >= 1) in place: exp(x - max), times 1 / their sum */
FM_INLINE void vec_softmax(float *x, int n) {
    vec_scale(x, n, 1.0f / vec_exp_sum(x, n, vec_max(x, n)));
}

#endif
