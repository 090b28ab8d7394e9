/* Small-batch matrix products for decoding, and the little thread pool that
 * splits their output rows. Every output is summed in the same order whatever
 * n and the thread count are, so a stream decoded alone or in a batch gets
 * bit-identical logits. */
#include "model/matvec.h"

#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/safetensors.h"

/* ---- kernels ------------------------------------------------------------------- */

static inline float bf16_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#define W_F32(wr, j) (wr)[j]

#define KERN_PLAIN(SUF, WT, WSC)                                                                   \
    static void kern_plain_##SUF(float *out, const float *x, const WT *w, int n, int C, int OC,    \
                                 int o0, int o1) {                                                 \
        for (int o = o0; o < o1; o++) {                                                            \
            const WT *wr = w + (size_t)o * C;                                                      \
            for (int r = 0; r < n; r++) {                                                          \
                const float *xr = x + (size_t)r * C;                                               \
                float s = 0.0f;                                                                    \
                for (int j = 0; j < C; j++)                                                        \
                    s += WSC(wr, j) * xr[j];                                                       \
                out[(size_t)r * OC + o] = s;                                                       \
            }                                                                                      \
        }                                                                                          \
    }
KERN_PLAIN(f32, float, W_F32)

#define LOAD_F32(p) _mm256_loadu_ps(p)

/* The 8 lanes of v summed: (lo + hi), then pairs, then the last two. */
static inline __attribute__((always_inline, target("avx2,fma"))) float hsum8(__m256 v) {
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
    return _mm_cvtss_f32(s4);
}

/* A micro-kernel's end: each (output, row) accumulator summed across its
 * lanes, plus the columns from j on that fill no whole vector, into out. */
#define MICRO_STORE(NG, O, WT, WSC)                                                                \
    _Pragma("GCC unroll 8") for (int b = 0; b < (O); b++) {                                        \
        const WT *wr = w + (size_t)(o + b) * C;                                                    \
        _Pragma("GCC unroll 8") for (int r = 0; r < (NG); r++) {                                   \
            float s = hsum8(acc[b][r]);                                                            \
            for (int jj = j; jj < C; jj++)                                                         \
                s += WSC(wr, jj) * x[(size_t)r * C + jj];                                          \
            out[(size_t)r * OC + o + b] = s;                                                       \
        }                                                                                          \
    }

/* Micro-kernel: outputs o..o+O of rows 0..NG of x, one 8-wide accumulator per
 * (output, row), so each weight vector load serves NG rows and each x load O
 * outputs. NG and O are constants in each instance so acc[][] stays in
 * registers (O * NG <= 12 of the 16 ymm registers). Every output is summed in
 * the same order whatever NG, O and the caller's blocking are. */
#define MICRO(NG, O, SUF, WT, LOAD, WSC)                                                           \
    static inline                                                                                  \
        __attribute__((always_inline, target("avx2,fma"))) void micro_##SUF##_##NG##_##O(          \
            float *out, const float *x, const WT *w, int C, int OC, int o) {                       \
        __m256 acc[O][NG];                                                                         \
        _Pragma("GCC unroll 8") for (int b = 0; b < (O); b++)                                      \
            _Pragma("GCC unroll 8") for (int r = 0; r < (NG); r++) acc[b][r] =                     \
                _mm256_setzero_ps();                                                               \
        int j = 0;                                                                                 \
        for (; j + 8 <= C; j += 8) {                                                               \
            __m256 wv[O];                                                                          \
            _Pragma("GCC unroll 8") for (int b = 0; b < (O); b++) wv[b] =                          \
                LOAD(w + (size_t)(o + b) * C + j);                                                 \
            _Pragma("GCC unroll 8") for (int r = 0; r < (NG); r++) {                               \
                __m256 xv = _mm256_loadu_ps(x + (size_t)r * C + j);                                \
                _Pragma("GCC unroll 8") for (int b = 0; b < (O); b++) acc[b][r] =                  \
                    _mm256_fmadd_ps(wv[b], xv, acc[b][r]);                                         \
            }                                                                                      \
        }                                                                                          \
        MICRO_STORE(NG, O, WT, WSC)                                                                \
    }
#define MICROS(SUF, WT, LOAD, WSC)                                                                 \
    MICRO(1, 1, SUF, WT, LOAD, WSC)                                                                \
    MICRO(2, 1, SUF, WT, LOAD, WSC)                                                                \
    MICRO(3, 1, SUF, WT, LOAD, WSC)                                                                \
    MICRO(4, 1, SUF, WT, LOAD, WSC)                                                                \
    MICRO(1, 3, SUF, WT, LOAD, WSC)                                                                \
    MICRO(2, 3, SUF, WT, LOAD, WSC)                                                                \
    MICRO(1, 6, SUF, WT, LOAD, WSC)                                                                \
    MICRO(2, 4, SUF, WT, LOAD, WSC)                                                                \
    MICRO(3, 3, SUF, WT, LOAD, WSC)                                                                \
    MICRO(4, 3, SUF, WT, LOAD, WSC)
MICROS(f32, float, LOAD_F32, W_F32)

#ifndef PF
#define PF 6
#endif
/* A matrix of at least this many bytes is taken to come from memory in a
 * decode step (larger than a core's L2 here; a model's weights read once per
 * token do not stay in cache); a row of at most STREAM_ROW bytes is short
 * enough for out-of-order execution to overlap its one FMA chain with the
 * next row's (longer rows wait on their chain: 16.5 against 21.5 GB/s for six
 * rows at a time at 19 KB a row, level at 3 KB, ahead at 1-2 KB) */
#ifndef STREAM_BYTES
#define STREAM_BYTES (512u << 10)
#endif
#ifndef STREAM_ROW
#define STREAM_ROW 2048u
#endif

/* rows o..o+rows of W, with elements of esz bytes */
static inline void prefetch_rows(const void *w, size_t esz, int o, int rows, int C) {
    const char *p = (const char *)w + (size_t)o * C * esz;
    for (size_t b = 0; b < (size_t)rows * C * esz; b += 64)
        _mm_prefetch(p + b, _MM_HINT_T0);
}

/* outputs o..o+O of all n rows, in groups of up to 4 rows */
#define ROW_GROUPS(SUF, O)                                                                         \
    for (int r = 0; r < n; r += 4) {                                                               \
        float *ob = out + (size_t)r * OC;                                                          \
        const float *xb = x + (size_t)r * C;                                                       \
        switch (n - r < 4 ? n - r : 4) {                                                           \
        case 1:                                                                                    \
            micro_##SUF##_1_##O(ob, xb, w, C, OC, o);                                              \
            break;                                                                                 \
        case 2:                                                                                    \
            micro_##SUF##_2_##O(ob, xb, w, C, OC, o);                                              \
            break;                                                                                 \
        case 3:                                                                                    \
            micro_##SUF##_3_##O(ob, xb, w, C, OC, o);                                              \
            break;                                                                                 \
        default:                                                                                   \
            micro_##SUF##_4_##O(ob, xb, w, C, OC, o);                                              \
            break;                                                                                 \
        }                                                                                          \
    }

#define KERN_AVX2(SUF, WT)                                                                         \
    __attribute__((target("avx2,fma"))) static void kern_avx2_##SUF(                               \
        float *out, const float *x, const WT *w, int n, int C, int OC, int o0, int o1) {           \
        int o = o0;                                                                                \
        /* one row of a matrix that streams from memory: one output after                         \
         * another, W read front to back (the stream the hardware prefetcher                       \
         * follows best; out-of-order execution overlaps the rows' chains) */                      \
        if (n == 1 && (size_t)C * OC * sizeof(WT) >= STREAM_BYTES &&                               \
            (size_t)C * sizeof(WT) <= STREAM_ROW)                                                  \
            for (; o < o1; o++)                                                                    \
                micro_##SUF##_1_1(out, x, w, C, OC, o);                                            \
        /* one or two rows: more outputs at once, for independent FMA chains */                    \
        if (n == 1)                                                                                \
            for (; o + 6 <= o1; o += 6) {                                                          \
                if (o + 18 <= o1) prefetch_rows(w, sizeof(WT), o + 12, 6, C);                      \
                micro_##SUF##_1_6(out, x, w, C, OC, o);                                            \
            }                                                                                      \
        if (n == 2)                                                                                \
            for (; o + 4 <= o1; o += 4) {                                                          \
                if (o + 12 <= o1) prefetch_rows(w, sizeof(WT), o + 8, 4, C);                       \
                micro_##SUF##_2_4(out, x, w, C, OC, o);                                            \
            }                                                                                      \
        for (; o + 3 <= o1; o += 3) {                                                              \
            if (o + PF + 3 <= o1) prefetch_rows(w, sizeof(WT), o + PF, 3, C);                      \
            ROW_GROUPS(SUF, 3)                                                                     \
        }                                                                                          \
        for (; o < o1; o++)                                                                        \
            ROW_GROUPS(SUF, 1)                                                                     \
    }

/* Rows in groups of up to 4; outputs in blocks of 3 while the 3 weight rows
 * (a few KB) stay in L1 across the groups, so W comes from memory once. The
 * hardware prefetcher alone falls behind once n rows make each weight row slow
 * to consume, so each block fetches the rows a little ahead. */
KERN_AVX2(f32, float)

/* -1: not probed yet; else the MATVEC_SIMD_* level in use. Atomic (relaxed):
 * the pool's threads may probe it at the same time, with the same result. */
static atomic_int simd = -1;

static int simd_level(void) {
    int s = atomic_load_explicit(&simd, memory_order_relaxed);
    if (s < 0) {
        s = !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? MATVEC_SIMD_NONE
            : __builtin_cpu_supports("avx512f")                               ? MATVEC_SIMD_AVX512
                                                                              : MATVEC_SIMD_AVX2;
        atomic_store_explicit(&simd, s, memory_order_relaxed);
    }
    return s;
}

static int have_avx2(void) {
    return simd_level() >= MATVEC_SIMD_AVX2;
}

int matvec_use_simd(int level) {
    atomic_store(&simd, -1);
    if (level < simd_level()) atomic_store(&simd, level < 0 ? 0 : level);
    return atomic_load(&simd);
}

/* ---- packed: eight outputs to a vector ----------------------------------------------- */

/* W (OC, C) as blocks of 8 outputs: block b holds, for each column j, the
 * weights of outputs 8b..8b+8 at column j (zeros past OC). Output o is then
 * one lane of one accumulator, summed by FMAs over j in order: no horizontal
 * sums, and any number of independent blocks for the FMAs to overlap. The
 * blocks are stored in groups of four, interleaved column by column (column
 * j of blocks 4g..4g+4 is 32 consecutive floats), so the four blocks a
 * single row takes at once read W as one stream front to back: on one
 * thread, four streams a block apart read 17.5 GB/s where one read 22. As
 * bf16, each lane of a column pair (j, j+1) is one 32-bit word, column j in
 * its low half (an odd C ends with a pair whose high half is 0): a 256-bit
 * load is two columns of a block, taken apart by a shift and a mask, then
 * the same FMAs in the same order, so bf16 weights give the bits of fp32
 * weights of the same values. */
enum { GROUP = 4 }; /* blocks interleaved */

/* where block b starts in a packed matrix of ce columns (C, or bf16's even
 * C); its column j is then at + j * 32 (a bf16 pair j / 2 at + j * 32 too) */
static inline size_t block_start(int b, size_t ce, int bf16) {
    return (size_t)(b / GROUP) * GROUP * 8 * ce + (size_t)(b % GROUP) * 8 * (bf16 ? 2 : 1);
}

size_t matvec_packed_floats(int OC, int C) {
    return (size_t)((OC + 8 * GROUP - 1) / (8 * GROUP)) * 8 * GROUP * (size_t)C;
}

size_t matvec_packed_bf16_count(int OC, int C) {
    return (size_t)((OC + 8 * GROUP - 1) / (8 * GROUP)) * 8 * GROUP * (size_t)((C + 1) & ~1);
}

void matvec_pack(float *dst, const float *w, int OC, int C) {
    int nb = (OC + 8 * GROUP - 1) / (8 * GROUP) * GROUP;
    for (int b = 0; b < nb; b++) {
        float *d = dst + block_start(b, (size_t)C, 0);
        for (int l = 0; l < 8; l++) {
            int o = b * 8 + l;
            const float *wr = w + (size_t)o * C;
            for (int j = 0; j < C; j++)
                d[(size_t)j * 8 * GROUP + l] = o < OC ? wr[j] : 0.0f;
        }
    }
}

void matvec_pack_bf16(uint16_t *dst, const float *w, int OC, int C) {
    int nb = (OC + 8 * GROUP - 1) / (8 * GROUP) * GROUP, Ce = (C + 1) & ~1;
    for (int b = 0; b < nb; b++) {
        uint16_t *d = dst + block_start(b, (size_t)Ce, 1);
        for (int l = 0; l < 8; l++) {
            int o = b * 8 + l;
            const float *wr = w + (size_t)o * C;
            for (int j = 0; j < Ce; j++) /* pair j/2, lane l, half j % 2 */
                d[(size_t)(j / 2) * 16 * GROUP + 2 * l + (j % 2)] =
                    o < OC && j < C ? st_f32_to_bf16(wr[j]) : 0;
        }
    }
}

/* only the lanes below OC are stored */
static inline __attribute__((always_inline, target("avx2,fma"))) void
packed_store(float *out, __m256 v, int o, int OC) {
    if (o + 8 <= OC) {
        _mm256_storeu_ps(out + o, v);
        return;
    }
    float t[8];
    _mm256_storeu_ps(t, v);
    for (int l = 0; o + l < OC; l++)
        out[o + l] = t[l];
}

/* bf16 columns j and j + 1 of a block at p (its pair j / 2); the last column
 * of an odd C alone */
#define PK2_BF16(p, we, wo)                                                                        \
    do {                                                                                           \
        __m256i v_ = _mm256_loadu_si256((const __m256i *)(p));                                     \
        we = _mm256_castsi256_ps(_mm256_slli_epi32(v_, 16));                                       \
        wo = _mm256_castsi256_ps(_mm256_and_si256(v_, _mm256_set1_epi32((int)0xffff0000u)));      \
    } while (0)
#define PK1_BF16(p)                                                                                \
    _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(p)), 16))

/* Rows 0..R of x against blocks blk..blk+B: one accumulator per (row,
 * block), FMAs over the columns in order. fp32 one column a step; bf16 two
 * (one load), so fewer blocks at once: R * B accumulators, B (fp32) or 2B
 * (bf16) weight vectors and the broadcasts of x must fit the 16 registers. */
#define PACKED_START(R, B, WT, CE, BF)                                                             \
    __m256 acc[R][B];                                                                              \
    _Pragma("GCC unroll 8") for (int r = 0; r < (R); r++)                                          \
        _Pragma("GCC unroll 8") for (int b = 0; b < (B); b++) acc[r][b] = _mm256_setzero_ps();     \
    const WT *wb[B]; /* column j of block blk + b at wb[b] + j * 32 */                             \
    _Pragma("GCC unroll 8") for (int b = 0; b < (B); b++) wb[b] =                                  \
        wp + block_start(blk + b, (size_t)(CE), BF);
#define PACKED_END(R, B)                                                                           \
    _Pragma("GCC unroll 8") for (int r = 0; r < (R); r++)                                          \
        _Pragma("GCC unroll 8") for (int b = 0; b < (B); b++)                                      \
            packed_store(out + (size_t)r * OC, acc[r][b], (blk + b) * 8, OC);
#define PACKED_F32(R, B)                                                                           \
    static inline __attribute__((always_inline, target("avx2,fma"))) void packed_F32_##R##_##B(    \
        float *out, const float *x, const float *wp, int C, int OC, int blk) {                     \
        PACKED_START(R, B, float, C, 0)                                                            \
        for (int j = 0; j < C; j++) {                                                              \
            __m256 wv[B];                                                                          \
            _Pragma("GCC unroll 8") for (int b = 0; b < (B); b++) wv[b] =                          \
                _mm256_loadu_ps(wb[b] + (size_t)j * 8 * GROUP);                                    \
            _Pragma("GCC unroll 8") for (int r = 0; r < (R); r++) {                                \
                __m256 xv = _mm256_broadcast_ss(x + (size_t)r * C + j);                            \
                _Pragma("GCC unroll 8") for (int b = 0; b < (B); b++) acc[r][b] =                  \
                    _mm256_fmadd_ps(wv[b], xv, acc[r][b]);                                         \
            }                                                                                      \
        }                                                                                          \
        PACKED_END(R, B)                                                                           \
    }
#define PACKED_BF16(R, B)                                                                          \
    static inline __attribute__((always_inline, target("avx2,fma"))) void packed_BF16_##R##_##B(   \
        float *out, const float *x, const uint16_t *wp, int C, int OC, int blk) {                  \
        PACKED_START(R, B, uint16_t, (C + 1) & ~1, 1)                                              \
        int j = 0;                                                                                 \
        for (; j + 2 <= C; j += 2) {                                                               \
            __m256 we[B], wo[B];                                                                   \
            _Pragma("GCC unroll 8") for (int b = 0; b < (B); b++)                                  \
                PK2_BF16(wb[b] + (size_t)j * 8 * GROUP, we[b], wo[b]);                             \
            _Pragma("GCC unroll 8") for (int r = 0; r < (R); r++) {                                \
                __m256 xe = _mm256_broadcast_ss(x + (size_t)r * C + j);                            \
                __m256 xo = _mm256_broadcast_ss(x + (size_t)r * C + j + 1);                        \
                _Pragma("GCC unroll 8") for (int b = 0; b < (B); b++) {                            \
                    acc[r][b] = _mm256_fmadd_ps(we[b], xe, acc[r][b]);                             \
                    acc[r][b] = _mm256_fmadd_ps(wo[b], xo, acc[r][b]);                             \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        if (j < C)                                                                                 \
            _Pragma("GCC unroll 8") for (int b = 0; b < (B); b++) {                                \
                __m256 we = PK1_BF16(wb[b] + (size_t)j * 8 * GROUP);                               \
                _Pragma("GCC unroll 8") for (int r = 0; r < (R); r++) acc[r][b] =                  \
                    _mm256_fmadd_ps(we, _mm256_broadcast_ss(x + (size_t)r * C + j), acc[r][b]);    \
            }                                                                                      \
        PACKED_END(R, B)                                                                           \
    }
PACKED_F32(1, 4)
PACKED_F32(2, 4)
PACKED_F32(3, 4)
PACKED_F32(1, 1)
PACKED_F32(2, 1)
PACKED_F32(3, 1)
PACKED_BF16(1, 4)
PACKED_BF16(2, 3)
PACKED_BF16(3, 2)
PACKED_BF16(4, 2)
PACKED_BF16(1, 1)
PACKED_BF16(2, 1)
PACKED_BF16(3, 1)
PACKED_BF16(4, 1)

/* rows 0..R (R <= 4) of xr against blocks b..end into o: BW blocks at once
 * while they last, then one at a time */
#define PACKED_ROWS(SUF, R, BW, end)                                                               \
    for (; b + (BW) <= (end); b += (BW))                                                           \
        packed_##SUF##_##R##_##BW(o, xr, wp, C, OC, b);                                            \
    for (; b < (end); b++)                                                                         \
        packed_##SUF##_##R##_1(o, xr, wp, C, OC, b);

/* Tiles of 12 blocks (96 outputs; 12 is a multiple of every width below),
 * each tile for every group of RG rows: a tile is read from memory by the
 * first row group and from cache by the next. fp32 takes rows three at a
 * time, four blocks wide: a whole group of interleaved blocks, one stream,
 * where four rows three blocks wide (what fits the registers) straddled the
 * groups and ran the 15m shape's eight-row products at 19-21 GMAC/s
 * against 28-30. ROWS4: the kernel for four rows (bf16 only). */
#define KERN_PACKED(SUF, WT, RG, W1, W2, W3, ROWS4)                                                \
    __attribute__((target("avx2,fma"))) static void kern_avx2_packed_##SUF(                        \
        float *out, const float *x, const WT *wp, int n, int C, int OC, int b0, int b1) {          \
        for (int t0 = b0; t0 < b1; t0 += 12) {                                                     \
            int t1 = t0 + 12 < b1 ? t0 + 12 : b1;                                                  \
            for (int r = 0, g; r < n; r += g) {                                                    \
                g = n - r < (RG) ? n - r : (RG);                                                   \
                float *o = out + (size_t)r * OC;                                                   \
                const float *xr = x + (size_t)r * C;                                               \
                int b = t0;                                                                        \
                switch (g) {                                                                       \
                case 1:                                                                            \
                    PACKED_ROWS(SUF, 1, W1, t1)                                                    \
                    break;                                                                         \
                case 2:                                                                            \
                    PACKED_ROWS(SUF, 2, W2, t1)                                                    \
                    break;                                                                         \
                case 3:                                                                            \
                    PACKED_ROWS(SUF, 3, W3, t1)                                                    \
                    break;                                                                         \
                default:                                                                           \
                    ROWS4                                                                          \
                    break;                                                                         \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }
KERN_PACKED(F32, float, 3, 4, 4, 4, )
KERN_PACKED(BF16, uint16_t, 4, 4, 3, 2, PACKED_ROWS(BF16, 4, 2, t1))

/* AVX-512: a whole group of four interleaved blocks is two 16-wide vectors a
 * column (blocks 4g, 4g+1 in the first, lane l output 32g + l), so up to
 * eight rows take it at once in one pass (16 accumulators of the 32
 * registers), where AVX2's sixteen take three rows and read W three times
 * for eight. The same FMA on each lane in the same order: the same bits. */
static inline __attribute__((always_inline, target("avx512f"))) void
store512(float *out, __m512 v, int o, int OC) {
    if (o + 16 <= OC) _mm512_storeu_ps(out + o, v);
    else if (o < OC) _mm512_mask_storeu_ps(out + o, (__mmask16)((1u << (OC - o)) - 1), v);
}
#define P512_START(R)                                                                              \
    __m512 acc[R][2];                                                                              \
    _Pragma("GCC unroll 8") for (int r = 0; r < (R); r++) acc[r][0] = acc[r][1] =                  \
        _mm512_setzero_ps();
#define P512_END(R)                                                                                \
    _Pragma("GCC unroll 8") for (int r = 0; r < (R); r++) {                                        \
        store512(out + (size_t)r * OC, acc[r][0], 32 * g, OC);                                     \
        store512(out + (size_t)r * OC, acc[r][1], 32 * g + 16, OC);                                \
    }
/* column j of the group, its two vectors w0 and w1, into every row's sums */
#define P512_COLUMN(R, w0, w1, j)                                                                  \
    _Pragma("GCC unroll 8") for (int r = 0; r < (R); r++) {                                        \
        __m512 xv = _mm512_set1_ps(x[(size_t)r * C + (j)]);                                        \
        acc[r][0] = _mm512_fmadd_ps(w0, xv, acc[r][0]);                                            \
        acc[r][1] = _mm512_fmadd_ps(w1, xv, acc[r][1]);                                            \
    }
#define P512_F32(R)                                                                                \
    static inline __attribute__((always_inline, target("avx512f"))) void p512_F32_##R(             \
        float *out, const float *x, const float *wp, int C, int OC, int g) {                       \
        P512_START(R)                                                                              \
        const float *wg = wp + (size_t)g * 8 * GROUP * C;                                          \
        for (int j = 0; j < C; j++) {                                                              \
            __m512 w0 = _mm512_loadu_ps(wg + (size_t)j * 8 * GROUP);                               \
            __m512 w1 = _mm512_loadu_ps(wg + (size_t)j * 8 * GROUP + 16);                          \
            P512_COLUMN(R, w0, w1, j)                                                              \
        }                                                                                          \
        P512_END(R)                                                                                \
    }
/* bf16: a column pair of the group is 128 bytes, blocks 4g, 4g+1 in the
 * first 64; even columns by a shift, odd by a mask, as PK2_BF16. Each pair
 * prefetches the one 4 KB ahead: the hardware prefetcher alone left the
 * kernel at 40 GMAC/s on eight rows streaming a matrix from memory (10 GB/s
 * of weights), 53 with it; fp32's was level or slower with it (it reads
 * twice the bytes, near what memory gives). */
#ifndef P512_AHEAD
#define P512_AHEAD 32 /* column pairs: 4 KB */
#endif
#define P512_BF16(R)                                                                               \
    static inline __attribute__((always_inline, target("avx512f"))) void p512_BF16_##R(            \
        float *out, const float *x, const uint16_t *wp, int C, int OC, int g) {                    \
        P512_START(R)                                                                              \
        const uint16_t *wg = wp + (size_t)g * 8 * GROUP * ((C + 1) & ~1);                          \
        const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);                                    \
        int j = 0;                                                                                 \
        for (; j + 2 <= C; j += 2) {                                                               \
            const char *ahead = (const char *)(wg + (size_t)(j + 2 * P512_AHEAD) * 8 * GROUP);     \
            _mm_prefetch(ahead, _MM_HINT_T0);                                                      \
            _mm_prefetch(ahead + 64, _MM_HINT_T0);                                                 \
            __m512i v0 = _mm512_loadu_si512(wg + (size_t)j * 8 * GROUP);                          \
            __m512i v1 = _mm512_loadu_si512(wg + (size_t)j * 8 * GROUP + 32);                      \
            __m512 e0 = _mm512_castsi512_ps(_mm512_slli_epi32(v0, 16));                            \
            __m512 e1 = _mm512_castsi512_ps(_mm512_slli_epi32(v1, 16));                            \
            __m512 o0 = _mm512_castsi512_ps(_mm512_and_si512(v0, hi));                             \
            __m512 o1 = _mm512_castsi512_ps(_mm512_and_si512(v1, hi));                             \
            _Pragma("GCC unroll 8") for (int r = 0; r < (R); r++) {                                \
                __m512 xe = _mm512_set1_ps(x[(size_t)r * C + j]);                                  \
                __m512 xo = _mm512_set1_ps(x[(size_t)r * C + j + 1]);                              \
                acc[r][0] = _mm512_fmadd_ps(o0, xo, _mm512_fmadd_ps(e0, xe, acc[r][0]));           \
                acc[r][1] = _mm512_fmadd_ps(o1, xo, _mm512_fmadd_ps(e1, xe, acc[r][1]));           \
            }                                                                                      \
        }                                                                                          \
        if (j < C) {                                                                               \
            __m512 e0 = _mm512_castsi512_ps(                                                       \
                _mm512_slli_epi32(_mm512_loadu_si512(wg + (size_t)j * 8 * GROUP), 16));            \
            __m512 e1 = _mm512_castsi512_ps(                                                       \
                _mm512_slli_epi32(_mm512_loadu_si512(wg + (size_t)j * 8 * GROUP + 32), 16));       \
            P512_COLUMN(R, e0, e1, j)                                                              \
        }                                                                                          \
        P512_END(R)                                                                                \
    }
#define P512_ALL(SUF) P512_##SUF(1) P512_##SUF(2) P512_##SUF(3) P512_##SUF(4) \
    P512_##SUF(5) P512_##SUF(6) P512_##SUF(7) P512_##SUF(8)
P512_ALL(F32)
P512_ALL(BF16)

/* Groups g0..g1 in tiles of three (12 blocks, as AVX2's), each tile for
 * every eight rows: later passes over a tile read it from cache. */
#define KERN512(SUF, WT)                                                                           \
    __attribute__((target("avx512f"))) static void kern_avx512_packed_##SUF(                       \
        float *out, const float *x, const WT *wp, int n, int C, int OC, int g0, int g1) {          \
        for (int t0 = g0; t0 < g1; t0 += 3) {                                                      \
            int t1 = t0 + 3 < g1 ? t0 + 3 : g1;                                                    \
            for (int r = 0; r < n; r += 8) {                                                       \
                float *o = out + (size_t)r * OC;                                                   \
                const float *xr = x + (size_t)r * C;                                               \
                for (int g = t0; g < t1; g++)                                                      \
                    switch (n - r < 8 ? n - r : 8) {                                               \
                    case 1: p512_##SUF##_1(o, xr, wp, C, OC, g); break;                            \
                    case 2: p512_##SUF##_2(o, xr, wp, C, OC, g); break;                            \
                    case 3: p512_##SUF##_3(o, xr, wp, C, OC, g); break;                            \
                    case 4: p512_##SUF##_4(o, xr, wp, C, OC, g); break;                            \
                    case 5: p512_##SUF##_5(o, xr, wp, C, OC, g); break;                            \
                    case 6: p512_##SUF##_6(o, xr, wp, C, OC, g); break;                            \
                    case 7: p512_##SUF##_7(o, xr, wp, C, OC, g); break;                            \
                    default: p512_##SUF##_8(o, xr, wp, C, OC, g); break;                           \
                    }                                                                              \
            }                                                                                      \
        }                                                                                          \
    }
KERN512(F32, float)
KERN512(BF16, uint16_t)

/* the same sums without AVX2: fmaf rounds as the vector FMA does, so the
 * bits are the AVX2 kernels' */
static void kern_plain_packed(float *out, const float *x, const void *w, int bf16, int n, int C,
                              int OC, int b0, int b1) {
    int Ce = bf16 ? (C + 1) & ~1 : C;
    for (int r = 0; r < n; r++)
        for (int b = b0; b < b1; b++)
            for (int l = 0; l < 8 && b * 8 + l < OC; l++) {
                float s = 0.0f;
                size_t at = block_start(b, (size_t)Ce, bf16);
                for (int j = 0; j < C; j++) {
                    float wj = bf16 ? bf16_f32(((const uint16_t *)w)[at + (size_t)(j / 2) * 16 * GROUP + 2 * l + j % 2])
                                    : ((const float *)w)[at + (size_t)j * 8 * GROUP + l];
                    s = fmaf(wj, x[(size_t)r * C + j], s);
                }
                out[(size_t)r * OC + b * 8 + l] = s;
            }
}

/* What w holds: fp32 rows (W_ROWS), or W packed by matvec_pack (W_PACKED)
 * or matvec_pack_bf16 (W_PACKED_BF16; for both, o0 a multiple of 8) */
enum { W_ROWS, W_PACKED, W_PACKED_BF16 };
/* Batches of at least this many rows take the AVX-512 kernels: four with
 * fp32 weights, two with bf16. bf16's AVX2 kernel converts each weight for
 * at most three rows, so two or three rows are bound by its shifts (14-18
 * GMAC/s streaming SmolLM2's classifier here) where the AVX-512 kernel
 * reaches 25-36; fp32 with two or three rows is bound by memory either way,
 * and slower through AVX-512. */
#ifndef AVX512_ROWS
#define AVX512_ROWS 4
#endif
#ifndef AVX512_ROWS_BF16
#define AVX512_ROWS_BF16 2
#endif
static void run_range(float *out, const float *x, const void *w, int kind, int n, int C, int OC,
                      int o0, int o1) {
    int b0 = o0 / 8, b1 = (o1 + 7) / 8;
    if (kind == W_ROWS && have_avx2())
        kern_avx2_f32(out, x, w, n, C, OC, o0, o1);
    else if (kind == W_ROWS)
        kern_plain_f32(out, x, w, n, C, OC, o0, o1);
    else if (!have_avx2())
        kern_plain_packed(out, x, w, kind == W_PACKED_BF16, n, C, OC, b0, b1);
    else if (n >= (kind == W_PACKED_BF16 ? AVX512_ROWS_BF16 : AVX512_ROWS) &&
             simd_level() >= MATVEC_SIMD_AVX512 && b0 % GROUP == 0) {
        int g0 = b0 / GROUP, g1 = (b1 + GROUP - 1) / GROUP; /* whole groups of blocks */
        if (kind == W_PACKED_BF16) kern_avx512_packed_BF16(out, x, w, n, C, OC, g0, g1);
        else kern_avx512_packed_F32(out, x, w, n, C, OC, g0, g1);
    } else if (kind == W_PACKED_BF16)
        kern_avx2_packed_BF16(out, x, w, n, C, OC, b0, b1);
    else
        kern_avx2_packed_F32(out, x, w, n, C, OC, b0, b1);
}

/* ---- attention pieces ------------------------------------------------------------ */

/* Keys in blocks of MATVEC_KEY_BLOCK positions, each block dimension-major
 * (matvec.h): a vector of one dimension holds that dimension of the block's
 * sixteen keys, so a query's scores for sixteen positions are n FMAs of a
 * broadcast query element into one accumulator, with no horizontal sums,
 * and a block loaded once serves every query of the tile. Each lane is one
 * chain of FMAs over the dimensions in order, then times the scale: the same
 * bits on every SIMD level (fmaf without AVX2), for every tile and query. */
enum { KB = MATVEC_KEY_BLOCK };

size_t matvec_keys_floats(int nt, int n) {
    return (size_t)((nt + KB - 1) / KB) * KB * (size_t)n;
}

/* the lanes of block b (positions b*KB..) inside [t0, t1) */
static inline unsigned block_lanes(int b, int t0, int t1) {
    int lo = t0 - b * KB, hi = t1 - b * KB;
    lo = lo < 0 ? 0 : lo, hi = hi > KB ? KB : hi;
    return ((1u << hi) - 1) & ~((1u << lo) - 1);
}

/* Q queries against NB consecutive blocks from b0 (Q * NB accumulators of
 * 16 lanes: at most 8, enough FMAs in flight to hide their latency; constant
 * at each call, so the loops unroll into registers). */
static inline __attribute__((always_inline, target("avx512f"))) void
scores512_tile(float *const *sc, const float *const *q, const float *keys, int Q, int NB, int b0,
               int t0, int t1, int n, float scale) {
    __m512 acc[8];
    const float *kb = keys + (size_t)b0 * KB * n;
    _Pragma("GCC unroll 8") for (int a = 0; a < Q * NB; a++) acc[a] = _mm512_setzero_ps();
    for (int d = 0; d < n; d++) {
        __m512 qd[8];
        _Pragma("GCC unroll 8") for (int i = 0; i < Q; i++) qd[i] = _mm512_set1_ps(q[i][d]);
        _Pragma("GCC unroll 8") for (int b = 0; b < NB; b++) {
            __m512 kv = _mm512_loadu_ps(kb + ((size_t)b * n + d) * KB);
            _Pragma("GCC unroll 8") for (int i = 0; i < Q; i++) acc[i * NB + b] =
                _mm512_fmadd_ps(qd[i], kv, acc[i * NB + b]);
        }
    }
    __m512 s = _mm512_set1_ps(scale);
    _Pragma("GCC unroll 8") for (int b = 0; b < NB; b++) {
        __mmask16 m = (__mmask16)block_lanes(b0 + b, t0, t1);
        _Pragma("GCC unroll 8") for (int i = 0; i < Q; i++)
            _mm512_mask_storeu_ps(sc[i] + (size_t)(b0 + b) * KB, m, _mm512_mul_ps(acc[i * NB + b], s));
    }
}

/* The same with AVX2: a block is two vectors, so at most 4 tiles' blocks */
static inline __attribute__((always_inline, target("avx2,fma"))) void
scores256_tile(float *const *sc, const float *const *q, const float *keys, int Q, int NB, int b0,
               int t0, int t1, int n, float scale) {
    __m256 acc[8];
    const float *kb = keys + (size_t)b0 * KB * n;
    _Pragma("GCC unroll 8") for (int a = 0; a < 2 * Q * NB; a++) acc[a] = _mm256_setzero_ps();
    for (int d = 0; d < n; d++) {
        __m256 qd[4];
        _Pragma("GCC unroll 4") for (int i = 0; i < Q; i++) qd[i] = _mm256_set1_ps(q[i][d]);
        _Pragma("GCC unroll 4") for (int b = 0; b < NB; b++) {
            const float *kp = kb + ((size_t)b * n + d) * KB;
            __m256 k0 = _mm256_loadu_ps(kp), k1 = _mm256_loadu_ps(kp + 8);
            _Pragma("GCC unroll 4") for (int i = 0; i < Q; i++) {
                acc[2 * (i * NB + b)] = _mm256_fmadd_ps(qd[i], k0, acc[2 * (i * NB + b)]);
                acc[2 * (i * NB + b) + 1] = _mm256_fmadd_ps(qd[i], k1, acc[2 * (i * NB + b) + 1]);
            }
        }
    }
    __m256 s = _mm256_set1_ps(scale);
    _Pragma("GCC unroll 4") for (int b = 0; b < NB; b++) {
        unsigned m = block_lanes(b0 + b, t0, t1);
        __m256i lane = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
        __m256i m0 = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)(m & 255)), lane), lane);
        __m256i m1 = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)(m >> 8)), lane), lane);
        _Pragma("GCC unroll 4") for (int i = 0; i < Q; i++) {
            float *o = sc[i] + (size_t)(b0 + b) * KB;
            _mm256_maskstore_ps(o, m0, _mm256_mul_ps(acc[2 * (i * NB + b)], s));
            _mm256_maskstore_ps(o + 8, m1, _mm256_mul_ps(acc[2 * (i * NB + b) + 1], s));
        }
    }
}

/* Tiles of up to G queries (8 with AVX-512, 4 with AVX2) by as many blocks
 * as keep MAXACC accumulators busy, the blocks left over in one narrower
 * tile; a tile's blocks taken by every group of queries in turn, so they
 * come from L1 after the first. Each (Q, NB) a case of its own, so the
 * tile's loops are constant. */
#define SCORES_TILES(NAME, TILE, CASES, G, MAXACC)                                                 \
    static void NAME(float *const *sc, const float *const *q, int nq, const float *keys, int t0,   \
                     int t1, int n, float scale) {                                                 \
        int bl = (t1 - 1) / KB + 1, wide = (MAXACC) / (nq < (G) ? nq : (G));                        \
        for (int b = t0 / KB; b < bl; b += wide) {                                                 \
            int NB = bl - b < wide ? bl - b : wide;                                                \
            for (int i = 0; i < nq; i += (G)) {                                                    \
                int Q = nq - i < (G) ? nq - i : (G);                                               \
                switch (Q * 16 + NB) {                                                             \
                    CASES(TILE)                                                                    \
                default: __builtin_unreachable();                                                  \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }
#define SCORES_CASE(TILE, Q, NB)                                                                   \
    case (Q) * 16 + (NB): TILE(sc + i, q + i, keys, Q, NB, b, t0, t1, n, scale); break;
/* every (Q, NB) with Q <= 8 and NB <= 8 / Q; Q <= 4 and NB <= 4 / Q */
#define SCORES_CASES8(TILE)                                                                        \
    SCORES_CASE(TILE, 1, 1) SCORES_CASE(TILE, 1, 2) SCORES_CASE(TILE, 1, 3)                        \
    SCORES_CASE(TILE, 1, 4) SCORES_CASE(TILE, 1, 5) SCORES_CASE(TILE, 1, 6)                        \
    SCORES_CASE(TILE, 1, 7) SCORES_CASE(TILE, 1, 8) SCORES_CASE(TILE, 2, 1)                        \
    SCORES_CASE(TILE, 2, 2) SCORES_CASE(TILE, 2, 3) SCORES_CASE(TILE, 2, 4)                        \
    SCORES_CASE(TILE, 3, 1) SCORES_CASE(TILE, 3, 2) SCORES_CASE(TILE, 4, 1)                        \
    SCORES_CASE(TILE, 4, 2) SCORES_CASE(TILE, 5, 1) SCORES_CASE(TILE, 6, 1)                        \
    SCORES_CASE(TILE, 7, 1) SCORES_CASE(TILE, 8, 1)
#define SCORES_CASES4(TILE)                                                                        \
    SCORES_CASE(TILE, 1, 1) SCORES_CASE(TILE, 1, 2) SCORES_CASE(TILE, 1, 3)                        \
    SCORES_CASE(TILE, 1, 4) SCORES_CASE(TILE, 2, 1) SCORES_CASE(TILE, 2, 2)                        \
    SCORES_CASE(TILE, 3, 1) SCORES_CASE(TILE, 4, 1)
__attribute__((target("avx512f"))) SCORES_TILES(scores512, scores512_tile, SCORES_CASES8, 8, 8)
__attribute__((target("avx2,fma"))) SCORES_TILES(scores256, scores256_tile, SCORES_CASES4, 4, 4)

void matvec_scores_multi(float *const *sc, const float *const *q, int nq, const float *keys, int t0,
                         int t1, int n, float scale) {
    if (t1 <= t0 || nq < 1) return;
    if (simd_level() >= MATVEC_SIMD_AVX512) scores512(sc, q, nq, keys, t0, t1, n, scale);
    else if (have_avx2()) scores256(sc, q, nq, keys, t0, t1, n, scale);
    else
        for (int i = 0; i < nq; i++)
            for (int t = t0; t < t1; t++) {
                const float *k = keys + matvec_key_at(t, n);
                float s = 0.0f;
                for (int d = 0; d < n; d++)
                    s = fmaf(q[i][d], k[(size_t)d * KB], s);
                sc[i][t] = s * scale;
            }
}

/* out += Σ_t a[t] v_t: each 8 columns one chain over t in order; up to four
 * such chains side by side (independent FMAs instead of one waiting on the
 * last), which leaves every column's sum as it was */
__attribute__((target("avx2,fma"))) static void
accum_avx2(float *out, const float *a, const float *v, size_t stride, int nt, int n) {
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 c0 = _mm256_loadu_ps(out + i), c1 = _mm256_loadu_ps(out + i + 8);
        __m256 c2 = _mm256_loadu_ps(out + i + 16), c3 = _mm256_loadu_ps(out + i + 24);
        for (int t = 0; t < nt; t++) {
            const float *vt = v + (size_t)t * stride + i;
            __m256 at = _mm256_set1_ps(a[t]);
            c0 = _mm256_fmadd_ps(at, _mm256_loadu_ps(vt), c0);
            c1 = _mm256_fmadd_ps(at, _mm256_loadu_ps(vt + 8), c1);
            c2 = _mm256_fmadd_ps(at, _mm256_loadu_ps(vt + 16), c2);
            c3 = _mm256_fmadd_ps(at, _mm256_loadu_ps(vt + 24), c3);
        }
        _mm256_storeu_ps(out + i, c0), _mm256_storeu_ps(out + i + 8, c1);
        _mm256_storeu_ps(out + i + 16, c2), _mm256_storeu_ps(out + i + 24, c3);
    }
    for (; i + 16 <= n; i += 16) {
        __m256 c0 = _mm256_loadu_ps(out + i), c1 = _mm256_loadu_ps(out + i + 8);
        for (int t = 0; t < nt; t++) {
            const float *vt = v + (size_t)t * stride + i;
            __m256 at = _mm256_set1_ps(a[t]);
            c0 = _mm256_fmadd_ps(at, _mm256_loadu_ps(vt), c0);
            c1 = _mm256_fmadd_ps(at, _mm256_loadu_ps(vt + 8), c1);
        }
        _mm256_storeu_ps(out + i, c0), _mm256_storeu_ps(out + i + 8, c1);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 acc = _mm256_loadu_ps(out + i);
        for (int t = 0; t < nt; t++)
            acc = _mm256_fmadd_ps(_mm256_set1_ps(a[t]), _mm256_loadu_ps(v + (size_t)t * stride + i),
                                  acc);
        _mm256_storeu_ps(out + i, acc);
    }
    for (; i < n; i++)
        for (int t = 0; t < nt; t++)
            out[i] += a[t] * v[(size_t)t * stride + i];
}

/* out[i] (n) += Σ_t a[i][t] v_t for up to eight queries at once, sixteen
 * columns to a vector: each column one chain over t in order, as
 * accum_avx2's (the same bits), each v row loaded once for all. */
#define ACCUM512(Q)                                                                                \
    static inline __attribute__((always_inline, target("avx512f"))) void accum512_##Q(             \
        float *const *out, const float *const *a, const float *v, size_t stride, int nt, int i) {  \
        __m512 c[Q][2];                                                                            \
        _Pragma("GCC unroll 8") for (int q = 0; q < (Q); q++) {                                    \
            c[q][0] = _mm512_loadu_ps(out[q] + i);                                                 \
            c[q][1] = _mm512_loadu_ps(out[q] + i + 16);                                            \
        }                                                                                          \
        for (int t = 0; t < nt; t++) {                                                             \
            __m512 v0 = _mm512_loadu_ps(v + (size_t)t * stride + i);                               \
            __m512 v1 = _mm512_loadu_ps(v + (size_t)t * stride + i + 16);                          \
            _Pragma("GCC unroll 8") for (int q = 0; q < (Q); q++) {                                \
                __m512 at = _mm512_set1_ps(a[q][t]);                                               \
                c[q][0] = _mm512_fmadd_ps(at, v0, c[q][0]);                                        \
                c[q][1] = _mm512_fmadd_ps(at, v1, c[q][1]);                                        \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 8") for (int q = 0; q < (Q); q++) {                                    \
            _mm512_storeu_ps(out[q] + i, c[q][0]);                                                 \
            _mm512_storeu_ps(out[q] + i + 16, c[q][1]);                                            \
        }                                                                                          \
    }
ACCUM512(1)
ACCUM512(2)
ACCUM512(3)
ACCUM512(4)
ACCUM512(5)
ACCUM512(6)
ACCUM512(7)
ACCUM512(8)

/* columns [0, n / 32 * 32) of all nq queries, eight at a time */
__attribute__((target("avx512f"))) static void accum_multi512(float *const *out, const float *const *a,
                                                              int nq, const float *v, size_t stride,
                                                              int nt, int n) {
    for (int q0 = 0; q0 < nq; q0 += 8)
        for (int i = 0; i + 32 <= n; i += 32)
            switch (nq - q0 < 8 ? nq - q0 : 8) {
            case 1: accum512_1(out + q0, a + q0, v, stride, nt, i); break;
            case 2: accum512_2(out + q0, a + q0, v, stride, nt, i); break;
            case 3: accum512_3(out + q0, a + q0, v, stride, nt, i); break;
            case 4: accum512_4(out + q0, a + q0, v, stride, nt, i); break;
            case 5: accum512_5(out + q0, a + q0, v, stride, nt, i); break;
            case 6: accum512_6(out + q0, a + q0, v, stride, nt, i); break;
            case 7: accum512_7(out + q0, a + q0, v, stride, nt, i); break;
            default: accum512_8(out + q0, a + q0, v, stride, nt, i); break;
            }
}

void matvec_accum_multi(float *const *out, const float *const *a, int nq, const float *v,
                        size_t stride, int nt, int n) {
    int done = 0; /* columns [0, done) summed for every query */
    if (simd_level() >= MATVEC_SIMD_AVX512 && n >= 32) {
        accum_multi512(out, a, nq, v, stride, nt, n);
        done = n / 32 * 32;
    }
    if (done < n)
        for (int q = 0; q < nq; q++)
            matvec_accum(out[q] + done, a[q], v + done, stride, nt, n - done);
}

void matvec_accum(float *out, const float *a, const float *v, size_t stride, int nt, int n) {
    if (have_avx2()) {
        accum_avx2(out, a, v, stride, nt, n);
        return;
    }
    for (int t = 0; t < nt; t++)
        for (int i = 0; i < n; i++)
            out[i] += a[t] * v[(size_t)t * stride + i];
}

/* ---- thread pool ------------------------------------------------------------------ */

/* A product is cut into chunks of output rows that any thread claims from an
 * atomic counter, the caller included; the caller only waits for chunks a
 * running worker has claimed. So a worker that is asleep or descheduled (a
 * busy shared machine) costs nothing: the caller does its share. */
enum { MAX_THREADS = MATVEC_MAX_THREADS, SPIN = 2000, CHUNKS_PER_THREAD = 4 };

static struct {
    atomic_int threads; /* workers from id threads on take no chunks */
    int started;
    atomic_int set; /* matvec_set_threads was called */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;
    atomic_int sleepers;
    atomic_flag busy;   /* one product at a time uses the pool; others run alone */
    atomic_ullong next; /* job generation << 32 | chunks not yet claimed */
    atomic_int done;    /* chunks of the current job finished */
    atomic_int ids; /* workers' ids handed out (1, 2, ...; the caller is 0) */
    /* matvec_bind: while on, worker tid keeps to CPU cpu[tid]; each bind and
     * unbind bumps bind_gen, which a worker checks before each job */
    atomic_flag binding;
    atomic_int bind_on, bind_n; /* bound, and the threads it bound */
    atomic_uint bind_gen;
    atomic_int cpu[MAX_THREADS];
    cpu_set_t saved; /* the binder's CPUs before it bound */
    pthread_t binder;
    /* the job: a product, or fn over [0, OC) when fn is set */
    float *out;
    const float *x;
    const void *w;
    int kind, n, C, OC, chunks, chunk_rows;
    void (*fn)(void *ctx, int lo, int hi, int tid);
    void *ctx;
} P = {.threads = 1,
       .mu = PTHREAD_MUTEX_INITIALIZER,
       .cv = PTHREAD_COND_INITIALIZER,
       .busy = ATOMIC_FLAG_INIT,
       .binding = ATOMIC_FLAG_INIT};

/* Claims and runs chunks of job gen until none is left. The claim word holds
 * the generation and the chunks still unclaimed, so whether a chunk is left is
 * decided by the word alone: the job's other fields are read only after a
 * claim succeeds, when the caller is still waiting for that job and cannot be
 * writing the next one. (Reading P.chunks first let a thread that came late
 * to a finished job see the next job's count while the caller was filling it
 * in, claim a chunk that did not exist and count it done: the caller then
 * went on before a chunk of the next product was written, a race seen as
 * rare, timing-dependent samples under the sanitizers.) */
static void run_chunks(unsigned gen, int tid) {
    for (;;) {
        unsigned long long v = atomic_load_explicit(&P.next, memory_order_acquire);
        if ((unsigned)(v >> 32) != gen || (v & 0xffffffffu) == 0) return;
        if (!atomic_compare_exchange_weak_explicit(&P.next, &v, v - 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        int i = P.chunks - (int)(v & 0xffffffffu); /* in order: the first unclaimed */
        int o0 = i * P.chunk_rows, o1 = o0 + P.chunk_rows < P.OC ? o0 + P.chunk_rows : P.OC;
        if (P.fn)
            P.fn(P.ctx, o0, o1, tid);
        else
            run_range(P.out, P.x, P.w, P.kind, P.n, P.C, P.OC, o0, o1);
        atomic_fetch_add_explicit(&P.done, 1, memory_order_release);
    }
}

/* Worker tid to its CPU while the pool is bound, else back to the CPUs it
 * was started with (own). */
static void worker_bind(int tid, const cpu_set_t *own) {
    cpu_set_t one;
    const cpu_set_t *to = own;
    if (atomic_load(&P.bind_on) && tid < atomic_load(&P.bind_n)) {
        CPU_ZERO(&one);
        CPU_SET(atomic_load(&P.cpu[tid]), &one);
        to = &one;
    }
    pthread_setaffinity_np(pthread_self(), sizeof *to, to); /* a refusal leaves it free */
}

static void *worker(void *arg) {
    /* arg: the generation at creation (a job published before this thread
     * first runs must not be missed) */
    unsigned seen = (unsigned)(size_t)arg, bound = 0;
    int tid = atomic_fetch_add(&P.ids, 1) + 1;
    cpu_set_t own;
    int have_own = !pthread_getaffinity_np(pthread_self(), sizeof own, &own);
    for (;;) {
        /* spin a little (while decoding the next product follows within
         * microseconds), then sleep */
        for (int spins = 0; atomic_load(&P.gen) == seen && spins < SPIN; spins++)
            _mm_pause();
        if (atomic_load(&P.gen) == seen) {
            pthread_mutex_lock(&P.mu);
            atomic_fetch_add(&P.sleepers, 1);
            while (atomic_load(&P.gen) == seen)
                pthread_cond_wait(&P.cv, &P.mu);
            atomic_fetch_sub(&P.sleepers, 1);
            pthread_mutex_unlock(&P.mu);
        }
        seen = atomic_load(&P.gen);
        unsigned bg = atomic_load(&P.bind_gen);
        if (bg != bound && have_own) worker_bind(tid, &own);
        bound = bg;
        if (tid < atomic_load(&P.threads)) run_chunks(seen, tid);
    }
    return NULL;
}

int matvec_set_threads(int n) {
    if (n < 1) n = 1;
    if (n > MAX_THREADS) n = MAX_THREADS;
    pthread_mutex_lock(&P.mu);
    pthread_attr_t a;
    matvec_thread_attr(&a);
    while (P.started < n - 1) { /* workers are never stopped; extra ones just idle */
        pthread_t tid;
        if (pthread_create(&tid, &a, worker, (void *)(size_t)atomic_load(&P.gen))) break;
        P.started++;
    }
    pthread_attr_destroy(&a);
    P.threads = P.started + 1 < n ? P.started + 1 : n;
    atomic_store(&P.set, 1);
    pthread_mutex_unlock(&P.mu);
    return P.threads;
}

int matvec_threads(void) {
    /* until set, follow OpenBLAS's count (what --threads sets for the sgemms) */
    if (!atomic_load(&P.set)) matvec_set_threads(openblas_get_num_threads());
    return P.threads;
}

int matvec_bind(void) {
    int n = matvec_threads(), k = 0;
    cpu_set_t all, one;
    if (n < 2 || atomic_flag_test_and_set(&P.binding)) return 0;
    if (pthread_getaffinity_np(pthread_self(), sizeof all, &all) || CPU_COUNT(&all) != n) goto no;
    for (int c = 0; c < CPU_SETSIZE && k < n; c++)
        if (CPU_ISSET(c, &all)) atomic_store(&P.cpu[k++], c);
    CPU_ZERO(&one);
    CPU_SET(atomic_load(&P.cpu[0]), &one);
    if (pthread_setaffinity_np(pthread_self(), sizeof one, &one)) goto no;
    P.saved = all, P.binder = pthread_self();
    atomic_store(&P.bind_n, n);
    atomic_store(&P.bind_on, 1);
    atomic_fetch_add(&P.bind_gen, 1);
    return 1;
no:
    atomic_flag_clear(&P.binding);
    return 0;
}

/* The CPUs the calling thread had before it bound, or has (0; -1 if they
 * cannot be read). */
static int free_cpus(cpu_set_t *cpus) {
    if (atomic_load(&P.bind_on) && pthread_equal(P.binder, pthread_self())) {
        *cpus = P.saved;
        return 0;
    }
    return pthread_getaffinity_np(pthread_self(), sizeof *cpus, cpus) ? -1 : 0;
}

void matvec_thread_attr(pthread_attr_t *a) {
    cpu_set_t cpus;
    pthread_attr_init(a);
    pthread_attr_setdetachstate(a, PTHREAD_CREATE_DETACHED);
    if (!free_cpus(&cpus)) pthread_attr_setaffinity_np(a, sizeof cpus, &cpus);
}

void matvec_unbind(int bound) {
    if (!bound) return;
    /* a refusal (the CPUs taken offline meanwhile) leaves the caller on its one CPU: slower,
     * not wrong */
    pthread_setaffinity_np(pthread_self(), sizeof P.saved, &P.saved);
    atomic_store(&P.bind_on, 0);
    atomic_fetch_add(&P.bind_gen, 1);
    atomic_flag_clear(&P.binding);
}

/* Publishes the job set in P (chunks of chunk_rows over [0, OC)), takes its
 * share and waits for the chunks the workers claimed. Holds P.busy. */
static void run_job(void) {
    atomic_store(&P.done, 0);
    unsigned gen = atomic_load(&P.gen) + 1;
    atomic_store(&P.next, (unsigned long long)gen << 32 | (unsigned)P.chunks); /* publishes the job */
    atomic_store(&P.gen, gen);
    if (atomic_load(&P.sleepers) > 0) {
        pthread_mutex_lock(&P.mu);
        pthread_cond_broadcast(&P.cv);
        pthread_mutex_unlock(&P.mu);
    }
    run_chunks(gen, 0);
    while (atomic_load_explicit(&P.done, memory_order_acquire) < P.chunks)
        _mm_pause();
    atomic_flag_clear(&P.busy);
}

static void rows(float *out, const float *x, const void *w, int kind, int n, int C, int OC) {
    /* small products are not worth waking anyone; a second caller while the
     * pool is busy (another thread decoding) runs in its own thread */
    if (matvec_threads() == 1 || (long long)n * OC * C < MATVEC_PAR_MIN_WORK ||
        atomic_flag_test_and_set(&P.busy)) {
        run_range(out, x, w, kind, n, C, OC, 0, OC);
        return;
    }
    /* chunks of whole 3-row blocks, or of whole groups of four packed blocks */
    int want = P.threads * CHUNKS_PER_THREAD, unit = kind == W_ROWS ? 3 : MATVEC_CHUNK;
    int rows = ((OC + want - 1) / want + unit - 1) / unit * unit;
    P.out = out, P.x = x, P.w = w, P.kind = kind, P.n = n, P.C = C, P.OC = OC;
    P.fn = NULL;
    P.chunk_rows = rows;
    P.chunks = (OC + rows - 1) / rows;
    run_job();
}

void matvec_par(int n, int grain, void (*fn)(void *ctx, int lo, int hi, int tid), void *ctx) {
    if (grain < 1) grain = 1;
    if (n <= grain || matvec_threads() == 1 || atomic_flag_test_and_set(&P.busy)) {
        if (n > 0) fn(ctx, 0, n, 0);
        return;
    }
    P.fn = fn, P.ctx = ctx, P.OC = n;
    P.chunk_rows = grain;
    P.chunks = (n + grain - 1) / grain;
    run_job();
}

void matvec_packed_range(float *out, const float *x, const void *wp, int bf16, int n, int C, int OC,
                         int o0, int o1) {
    run_range(out, x, wp, bf16 ? W_PACKED_BF16 : W_PACKED, n, C, OC, o0, o1);
}

void matvec_rows(float *out, const float *x, const float *w, int n, int C, int OC) {
    rows(out, x, w, W_ROWS, n, C, OC);
}

void matvec_rows_packed(float *out, const float *x, const float *wp, int n, int C, int OC) {
    rows(out, x, wp, W_PACKED, n, C, OC);
}

void matvec_rows_packed_bf16(float *out, const float *x, const uint16_t *wp, int n, int C, int OC) {
    rows(out, x, wp, W_PACKED_BF16, n, C, OC);
}

