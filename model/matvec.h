/* Matrix products for inference: out (n, OC) = x (n, C) · W^T, W (OC, C)
 * row-major (matvec_rows, the reference the benches compare with) or packed
 * once for decoding (matvec_rows_packed, below: what model/infer.h uses).
 * Each weight row is read once and used for all n rows straight from
 * memory, without the packing copy sgemm makes of W, so a decode step of k
 * streams costs about what one stream's costs while W is larger than the
 * cache, and a prompt of tens of rows runs about as fast as sgemm. AVX2+FMA
 * when the CPU has it (AVX-512 for packed batches of four rows or more where
 * it has that), plain C otherwise; the output range is split over the thread
 * pool (matvec_set_threads); callers in several threads at once are safe (one
 * uses the pool, the others run alone). */
#ifndef RLHF_MODEL_MATVEC_H
#define RLHF_MODEL_MATVEC_H

#include <stddef.h>
#include <stdint.h>

void matvec_rows(float *out, const float *x, const float *w, int n, int C, int OC);
/* W packed eight outputs to a vector (matvec_pack: block b holds, column by
 * column, the weights of outputs 8b..8b+8, zeros past OC; blocks in groups
 * of four interleaved column by column, so a row reads W as one stream;
 * matvec_packed_floats(OC, C) floats, OC rounded up to 32). Each output is one lane of an FMA
 * chain over the columns in order, so no horizontal sums and any number of
 * independent chains: the fastest kernels here, for one row streaming W from
 * memory and for a batch alike. The sums are in another order than
 * matvec_rows's (results equal up to rounding); like it, a row gets the same
 * bits whatever n, the threads and the CPU (the plain C path uses fmaf). */
size_t matvec_packed_floats(int OC, int C);
void matvec_pack(float *dst, const float *w, int OC, int C);
void matvec_rows_packed(float *out, const float *x, const float *wp, int n, int C, int OC);
/* The same with the weights rounded to bf16 (nearest even) as they are packed,
 * each lane holding a pair of columns: matvec_packed_bf16_count(OC, C)
 * values. Half the bytes; the results are matvec_rows_packed's on the
 * rounded weights, bit for bit. */
size_t matvec_packed_bf16_count(int OC, int C);
void matvec_pack_bf16(uint16_t *dst, const float *w, int OC, int C);
void matvec_rows_packed_bf16(float *out, const float *x, const uint16_t *wp, int n, int C, int OC);
/* Output columns o0..o1 of matvec_rows_packed (bf16: of matvec_rows_packed_bf16)
 * in the caller's thread, for callers that cut several products into one job
 * on the pool (matvec_par); o0 a multiple of MATVEC_CHUNK. The same bits as
 * the whole product. */
#define MATVEC_CHUNK 32
void matvec_packed_range(float *out, const float *x, const void *wp, int bf16, int n, int C, int OC,
                         int o0, int o1);
/* Attention over nt cached positions t (rows k + t*stride, n floats):
 * sc[t] = scale * q·k_t, and out (n) += Σ_t a[t] v_t. */
void matvec_scores(float *sc, const float *q, const float *k, size_t stride, int nt, int n,
                   float scale);
void matvec_accum(float *out, const float *a, const float *v, size_t stride, int nt, int n);
/* The same for nq queries over the same positions (query i at q[i], its
 * scores at sc[i]; its weights a[i], its sum out[i]), each position's row
 * read once for several queries (scores two at a time with AVX2, sums up to
 * eight at a time with AVX-512; one at a time otherwise): each query's bits
 * are those of matvec_scores and matvec_accum alone. */
void matvec_scores_multi(float *const *sc, const float *const *q, int nq, const float *k,
                         size_t stride, int nt, int n, float scale);
void matvec_accum_multi(float *const *out, const float *const *a, int nq, const float *v,
                        size_t stride, int nt, int n);
/* fn(ctx, lo, hi, tid) over [0, n) in chunks of grain items, on the same
 * pool (threads that spin briefly between jobs, so the many small steps of a
 * decode step cost little to hand out); tid < MATVEC_MAX_THREADS names the
 * thread (0: the caller), for per-thread scratch. Which thread runs which
 * chunk depends on timing: fn's results must not. A busy pool (a call from
 * inside a job, or from another thread) runs fn(ctx, 0, n, 0) in the caller. */
#define MATVEC_MAX_THREADS 16
/* multiply-adds below which a product runs in the caller alone (waking a
 * thread costs more than it saves) */
#define MATVEC_PAR_MIN_WORK 32768
void matvec_par(int n, int grain, void (*fn)(void *ctx, int lo, int hi, int tid), void *ctx);
/* The kernels used: plain C, AVX2+FMA, or AVX-512 for the packed batches,
 * at most the level given and what the CPU has (MATVEC_SIMD_BEST, the
 * default: all it has); returns the level now in use. For tests of each
 * path (they give the same bits). Not thread-safe: call before decoding. */
enum { MATVEC_SIMD_NONE, MATVEC_SIMD_AVX2, MATVEC_SIMD_AVX512, MATVEC_SIMD_BEST = MATVEC_SIMD_AVX512 };
int matvec_use_simd(int level);
/* Threads used by matvec_rows (1 = the caller only); returns the number set.
 * Until it is called, matvec_rows follows openblas_get_num_threads(). */
int matvec_set_threads(int n);
int matvec_threads(void);

#endif
