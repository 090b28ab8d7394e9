/* The one seeded random-number generator (xoshiro256**) every random choice in the
 * project uses, so a run with the same seed repeats exactly. Seeded through
 * splitmix64; Rng is a plain value the caller owns. */
#ifndef RLHF_RNG_H
#define RLHF_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct Rng {
    uint64_t s[4];
} Rng;

void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_u64(Rng *r);
uint32_t rng_u32(Rng *r);
/* Uniform in [0, n), unbiased; n > 0. */
uint64_t rng_below(Rng *r, uint64_t n);
/* Uniform float in [0, 1). */
float rng_float(Rng *r);
double rng_double(Rng *r);
/* Standard normal (Box-Muller). */
double rng_normal(Rng *r);
/* Fisher-Yates shuffle of n elements of size sz. */
void rng_shuffle(Rng *r, void *base, size_t n, size_t sz);
/* Derives an independent stream (for per-prompt or per-thread use). */
Rng rng_fork(Rng *r, uint64_t stream);

#endif
