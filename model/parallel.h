/* A small pool of worker threads for the elementwise loops between matrix
 * products (cross-entropy rows, SwiGLU, AdamW, the gradient norm): OpenBLAS
 * parallelises the sgemms, this the rest, with the same thread count
 * (openblas_get_num_threads, so --threads governs both). Work is split into
 * one contiguous range per thread, so results do not depend on timing. */
#ifndef RLHF_MODEL_PARALLEL_H
#define RLHF_MODEL_PARALLEL_H

#include <stdint.h>

/* fn(ctx, lo, hi, part) for parts of [0, n): at most par_threads() parts, none
 * smaller than min_chunk (below that the loop runs in the caller's thread).
 * Calls from several threads at once are safe: a busy pool runs the caller's
 * loop serially. Returns the number of parts used. */
int par_for(int64_t n, int64_t min_chunk, void (*fn)(void *ctx, int64_t lo, int64_t hi, int part),
            void *ctx);
/* The same with an explicit thread count (for loops whose parts call
 * OpenBLAS with its own threads turned down to one). */
int par_for_threads(int threads, int64_t n, int64_t min_chunk,
                    void (*fn)(void *ctx, int64_t lo, int64_t hi, int part), void *ctx);
/* The thread count par_for uses (>= 1, at most PAR_MAX). */
int par_threads(void);

/* Between par_enter and par_leave this thread splits the work itself: OpenBLAS
 * is set to one thread (its own pool would busy-wait between the many
 * products of a step and compete with ours), and par_threads() keeps the
 * count from before. Nests; other threads' BLAS calls run single-threaded in
 * the meantime (slower, never wrong). */
typedef struct ParScope {
    int threads, active;
} ParScope;
void par_enter(ParScope *s);
void par_leave(ParScope *s);
#define PAR_MAX 16

#endif
