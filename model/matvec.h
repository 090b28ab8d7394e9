/* Matrix products for inference: out (n, OC) = x (n, C) · W^T, W (OC, C)
 * row-major (matvec_rows, the reference the benches compare with) or packed
 * once for decoding (matvec_rows_packed, below: what model/infer.h uses).
 * Each weight row is read once and used for all n rows straight from
 * memory, without the packing copy sgemm makes of W, so a decode step of k
 * streams costs about what one stream's costs while W is larger than the
 * cache, and a prompt of tens of rows runs about as fast as sgemm. AVX2+FMA
 * when the CPU has it (AVX-512 for packed batches of four rows or more, two with bf16, where
 * it has that), plain C otherwise; the output range is split over the thread
 * pool (matvec_set_threads); callers in several threads at once are safe (one
 * uses the pool, the others run alone). */
#ifndef RLHF_MODEL_MATVEC_H
#define RLHF_MODEL_MATVEC_H

#include <pthread.h>
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
/* Attention's keys are cached in blocks of MATVEC_KEY_BLOCK positions, each
 * block dimension-major: element d of position t's key (n floats) at
 * keys[matvec_key_at(t, n) + d * MATVEC_KEY_BLOCK]. matvec_keys_floats: the
 * floats nt positions take (whole blocks); matvec_key_put stores position
 * t's key. */
#define MATVEC_KEY_BLOCK 16
size_t matvec_keys_floats(int nt, int n);
static inline size_t matvec_key_at(int t, int n) {
    return (size_t)(t / MATVEC_KEY_BLOCK) * MATVEC_KEY_BLOCK * n + t % MATVEC_KEY_BLOCK;
}
static inline void matvec_key_put(float *keys, int t, const float *k, int n) {
    float *b = keys + matvec_key_at(t, n);
    for (int d = 0; d < n; d++)
        b[(size_t)d * MATVEC_KEY_BLOCK] = k[d];
}
/* Scores of nq queries (query i at q[i], n floats) against the cached keys
 * of positions t0..t1: sc[i][t] = scale * q_i·k_t for t in [t0, t1) (sc[i]
 * indexed by position; nothing else of it is written). Each key block is
 * read once for up to eight queries (four with AVX2). Each score is one
 * chain of FMAs over the dimensions in order, times scale: the same bits
 * for any nq, range or SIMD level. */
void matvec_scores_multi(float *const *sc, const float *const *q, int nq, const float *keys, int t0,
                         int t1, int n, float scale);
/* out (n) += Σ_t a[t] v_t over nt value rows (v + t*stride, n floats); the
 * same for nq queries over the same rows (query i's weights a[i], its sum
 * out[i]), each row read once for up to eight queries with AVX-512: each
 * query's bits are those of matvec_accum alone. */
void matvec_accum(float *out, const float *a, const float *v, size_t stride, int nt, int n);
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
/* Keeps the calling thread on one CPU and each of the pool's workers on
 * another, until matvec_unbind(what it returned), when the pool's threads
 * are as many as the CPUs the caller may run on (2 or more; else it does
 * nothing and returns 0). Left free, the scheduler at times puts a worker
 * and the caller on one CPU, where the two spin in turn for tens of
 * milliseconds: a decode step then takes twice as long as when they are
 * apart, and longer than on one thread.
 * For a decoding run (model/sample.h's), not for a call: each costs a
 * system call or two. One thread binds at a time (another gets 0). A
 * thread started while bound would inherit its starter's one CPU:
 * matvec_thread_attr initialises a (detached, the starter's CPUs as they
 * were before it bound) for the threads of the pools. */
int matvec_bind(void);
void matvec_unbind(int bound);
void matvec_thread_attr(pthread_attr_t *a);

#endif
