/* xoshiro256** (Blackman & Vigna), seeded by splitmix64. */
#include "util/rng.h"

#include <math.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void rng_seed(Rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t rng_u64(Rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint32_t rng_u32(Rng *r) {
    return (uint32_t)(rng_u64(r) >> 32);
}

uint64_t rng_below(Rng *r, uint64_t n) {
    /* rejection sampling removes modulo bias */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = rng_u64(r);
    while (x >= limit);
    return x % n;
}

float rng_float(Rng *r) {
    return (float)(rng_u64(r) >> 40) * (1.0f / 16777216.0f);
}

double rng_double(Rng *r) {
    return (double)(rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

double rng_normal(Rng *r) {
    double u1 = rng_double(r), u2 = rng_double(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void rng_shuffle(Rng *r, void *base, size_t n, size_t sz) {
    unsigned char *a = base, tmp[256];
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)rng_below(r, i);
        unsigned char *x = a + (i - 1) * sz, *y = a + j * sz;
        for (size_t off = 0; off < sz; off += sizeof tmp) {
            size_t c = sz - off < sizeof tmp ? sz - off : sizeof tmp;
            memcpy(tmp, x + off, c);
            memcpy(x + off, y + off, c);
            memcpy(y + off, tmp, c);
        }
    }
}

Rng rng_fork(Rng *r, uint64_t stream) {
    Rng out;
    rng_seed(&out, rng_u64(r) ^ (stream * 0xd1342543de82ef95ULL));
    return out;
}
