/* For the benches: the machine's read bandwidth, the bound on decoding one
 * stream (every weight is read once a step). */
#ifndef RLHF_BENCH_MEM_H
#define RLHF_BENCH_MEM_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "model/infer.h"
#include "model/parallel.h"
#include "util/progress.h"

/* GB/s of reading a 1 GiB array with t threads (the decode loop's access
 * pattern: every weight read once per step): 256-bit loads XORed together,
 * so the loads, not the arithmetic, set the pace */
typedef struct {
    const uint64_t *a;
    uint64_t *sums;
} Bw;

#if defined(__x86_64__)
#include <immintrin.h>
/* four independent 256-bit XOR chains: loads, not arithmetic, set the pace */
__attribute__((target("avx2"))) static inline uint64_t bw_xor(const uint64_t *a, int64_t lo, int64_t hi) {
    __m256i x0 = _mm256_setzero_si256(), x1 = x0, x2 = x0, x3 = x0;
    int64_t i = lo;
    for (; i + 16 <= hi; i += 16) {
        x0 = _mm256_xor_si256(x0, _mm256_loadu_si256((const __m256i *)(a + i)));
        x1 = _mm256_xor_si256(x1, _mm256_loadu_si256((const __m256i *)(a + i + 4)));
        x2 = _mm256_xor_si256(x2, _mm256_loadu_si256((const __m256i *)(a + i + 8)));
        x3 = _mm256_xor_si256(x3, _mm256_loadu_si256((const __m256i *)(a + i + 12)));
    }
    x0 = _mm256_xor_si256(_mm256_xor_si256(x0, x1), _mm256_xor_si256(x2, x3));
    uint64_t x = (uint64_t)_mm256_extract_epi64(x0, 0) ^ (uint64_t)_mm256_extract_epi64(x0, 1) ^
                 (uint64_t)_mm256_extract_epi64(x0, 2) ^ (uint64_t)_mm256_extract_epi64(x0, 3);
    for (; i < hi; i++) x ^= a[i];
    return x;
}
#else
static inline uint64_t bw_xor(const uint64_t *a, int64_t lo, int64_t hi) {
    uint64_t x = 0;
    for (int64_t i = lo; i < hi; i++) x ^= a[i];
    return x;
}
#endif

static inline void bw_part(void *ctx, int64_t lo, int64_t hi, int part) {
    Bw *b = ctx;
    b->sums[part] ^= bw_xor(b->a, lo, hi);
}

static inline double bench_read_bandwidth(int threads) {
    size_t n = (size_t)1 << 27; /* 64-bit words: 1 GiB */
    uint64_t *a = malloc(n * sizeof *a);
    if (!a) return 0;
    for (size_t i = 0; i < n; i++) a[i] = i;
    uint64_t sums[PAR_MAX] = {0};
    double best = 0;
    Bw b = {a, sums};
    infer_set_threads(threads);
    for (int r = 0; r < 5; r++) {
        double t0 = now_seconds();
        par_for((int64_t)n, 1 << 20, bw_part, &b);
        double gbs = n * sizeof *a / (now_seconds() - t0) / 1e9;
        best = gbs > best ? gbs : best;
    }
    free(a);
    if (sums[0] == 12345) printf("#\n"); /* keep the reads alive */
    return best;
}

#endif
