/* Cross-entropy with a mask, log-probabilities and entropies, and their
 * gradients with respect to the logits. Softmax rows with the max subtracted,
 * exp vectorised (model/fastmath.h); totals summed in double. */
#include "model/loss.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "model/fastmath.h"
#include "model/parallel.h"

/* Arguments of the row loops, shared by the parallel parts; each part sums
 * into its own slot and the slots are added in order (deterministic). */
typedef struct {
    float *x;
    const float *cx, *mask, *a, *e;
    const int *targets;
    int V;
    float scale;
    float *losses, *logp, *entropy;
    double total[PAR_MAX], cnt[PAR_MAX];
} Rows;

static double sum_parts(const double *v, int parts) {
    double s = 0;
    for (int i = 0; i < parts; i++) s += v[i];
    return s;
}

/* rows per part: at least this many, so small batches stay on one thread */
#define ROW_CHUNK(V) (1 + 65536 / (V))

/* Runs a cross-entropy row loop over N rows: the loss total, its weight in *count. */
static double ce_parts(Rows *r, int N, void (*rows)(void *, int64_t, int64_t, int), double *count) {
    int parts = par_for(N, ROW_CHUNK(r->V), rows, r);
    if (count) *count = sum_parts(r->cnt, parts);
    return sum_parts(r->total, parts);
}

/* Row n's weight in a cross-entropy: its mask's, 0 without a target. */
static inline float ce_weight(const float *mask, const int *targets, int64_t n) {
    return targets[n] < 0 ? 0.0f : mask ? mask[n] : 1.0f;
}

MODEL_SIMD_CLONES static void ce_forward_rows(void *ctx, int64_t lo, int64_t hi, int part) {
    Rows *r = ctx;
    const float *logits = r->cx, *mask = r->mask;
    const int *targets = r->targets;
    float *losses = r->losses;
    int V = r->V;
    double total = 0.0, cnt = 0.0;
    for (int64_t n = lo; n < hi; n++) {
        float w = ce_weight(mask, targets, n);
        if (losses) losses[n] = 0.0f;
        if (w == 0.0f) continue;
        const float *x = logits + (size_t)n * V;
        float mx = vec_max(x, V), sum, wsum;
        vec_exp_stats(x, V, mx, &sum, &wsum);
        float l = logf(sum) + mx - x[targets[n]];
        if (losses) losses[n] = l;
        total += (double)w * l;
        cnt += w;
    }
    r->total[part] = total;
    r->cnt[part] = cnt;
}

double loss_ce_forward(const float *logits, const int *targets, const float *mask, int N, int V,
                       float *losses, double *count) {
    Rows r = {.cx = logits, .mask = mask, .targets = targets, .V = V, .losses = losses};
    return ce_parts(&r, N, ce_forward_rows, count);
}

MODEL_SIMD_CLONES static void ce_backward_rows(void *ctx, int64_t lo, int64_t hi, int part) {
    Rows *r = ctx;
    float *logits = r->x, scale = r->scale;
    const float *mask = r->mask;
    const int *targets = r->targets;
    int V = r->V;
    double total = 0.0, cnt = 0.0;
    for (int64_t n = lo; n < hi; n++) {
        float w = ce_weight(mask, targets, n);
        float *x = logits + (size_t)n * V;
        if (w == 0.0f) {
            memset(x, 0, (size_t)V * sizeof(float));
            continue;
        }
        float xt = x[targets[n]], mx = vec_max(x, V);
        float sum = vec_exp_sum(x, V, mx); /* x becomes exp(x - mx) */
        total += (double)w * (logf(sum) + mx - xt);
        cnt += w;
        float s = w * scale;
        vec_scale(x, V, s / sum);
        x[targets[n]] -= s;
    }
    r->total[part] = total;
    r->cnt[part] = cnt;
}

double loss_ce_backward(float *logits, const int *targets, const float *mask, int N, int V,
                        float scale, double *count) {
    Rows r = {.x = logits, .mask = mask, .targets = targets, .V = V, .scale = scale};
    return ce_parts(&r, N, ce_backward_rows, count);
}

/* with off = max + log Σ exp(x - max):  log p_i = x_i - off,
 * H = -Σ p_i (x_i - off) = off - Σ p_i x_i */
MODEL_SIMD_CLONES static void logprob_rows(void *ctx, int64_t lo, int64_t hi, int part) {
    Rows *r = ctx;
    const float *logits = r->cx;
    const int *targets = r->targets;
    float *logp = r->logp, *entropy = r->entropy;
    int V = r->V;
    (void)part;
    for (int64_t n = lo; n < hi; n++) {
        const float *x = logits + (size_t)n * V;
        if (targets[n] < 0) {
            if (logp) logp[n] = 0.0f;
            if (entropy) entropy[n] = 0.0f;
            continue;
        }
        float mx = vec_max(x, V), sum, wsum;
        vec_exp_stats(x, V, mx, &sum, &wsum);
        float off = mx + logf(sum);
        if (logp) logp[n] = x[targets[n]] - off;
        if (entropy) entropy[n] = off - wsum / sum;
    }
}

void loss_logprobs(const float *logits, const int *targets, int N, int V, float *logp,
                   float *entropy) {
    Rows r = {.cx = logits, .targets = targets, .V = V, .logp = logp, .entropy = entropy};
    par_for(N, ROW_CHUNK(V), logprob_rows, &r);
}

/* The double sums of the exact KL: 8 float lanes widened to 4 + 4 doubles. */
typedef double v4d __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));

FM_INLINE void v8_widen(v8f x, v4d *lo, v4d *hi) {
    v4f a, b;
    memcpy(&a, &x, sizeof a);
    memcpy(&b, (const char *)&x + sizeof a, sizeof b);
    *lo = __builtin_convertvector(a, v4d), *hi = __builtin_convertvector(b, v4d);
}

FM_INLINE double v4d_hsum(v4d a, v4d b) {
    v4d s = a + b;
    return (s[0] + s[2]) + (s[1] + s[3]);
}

/* max + log Σ exp(x − max) of a row, the exponentials summed in double */
FM_INLINE float row_lse(const float *x, int V) {
    float mx = vec_max(x, V);
    v4d a = {0}, b = {0};
    v8f s = v8_set1(mx);
    int i = 0;
    for (; i + 8 <= V; i += 8) {
        v4d lo, hi;
        v8_widen(v8_exp(v8_load(x + i) - s), &lo, &hi);
        a += lo, b += hi;
    }
    double sum = v4d_hsum(a, b);
    for (; i < V; i++) sum += fast_expf(x[i] - mx);
    return mx + (float)log(sum);
}

MODEL_SIMD_CLONES static void log_softmax_rows(void *ctx, int64_t lo, int64_t hi, int part) {
    Rows *r = ctx;
    int V = r->V;
    (void)part;
    for (int64_t n = lo; n < hi; n++) {
        const float *x = r->cx + (size_t)n * V;
        float *out = r->x + (size_t)n * V, lse = row_lse(x, V);
        for (int i = 0; i < V; i++) out[i] = x[i] - lse;
    }
}

void loss_log_softmax(const float *logits, int R, int V, float *out) {
    Rows r = {.cx = logits, .x = out, .V = V};
    par_for(R, ROW_CHUNK(V), log_softmax_rows, &r);
}

/* KL = Σ p_i (log p_i − log q_i), p_i = exp(log p_i): the differences and
 * products in double, as the sum */
MODEL_SIMD_CLONES static void kl_rows(void *ctx, int64_t lo, int64_t hi, int part) {
    Rows *r = ctx;
    int V = r->V;
    (void)part;
    for (int64_t n = lo; n < hi; n++) {
        const float *x = r->cx + (size_t)n * V, *lq = r->a + (size_t)n * V;
        float lse = row_lse(x, V);
        v4d a = {0}, b = {0};
        v8f s = v8_set1(lse);
        int i = 0;
        for (; i + 8 <= V; i += 8) {
            v8f lp = v8_load(x + i) - s; /* loss_log_softmax's values */
            v4d p0, p1, l0, l1, q0, q1;
            v8_widen(v8_exp(lp), &p0, &p1);
            v8_widen(lp, &l0, &l1);
            v8_widen(v8_load(lq + i), &q0, &q1);
            a += p0 * (l0 - q0), b += p1 * (l1 - q1);
        }
        double kl = v4d_hsum(a, b);
        for (; i < V; i++) {
            float lp = x[i] - lse;
            kl += (double)fast_expf(lp) * ((double)lp - lq[i]);
        }
        r->losses[n] = kl > 0 ? (float)kl : 0.0f; /* rounding can leave -1e-9 for near-identical rows */
    }
}

void loss_kl_exact(const float *logits, const float *logq, int R, int V, float *kl) {
    Rows r = {.cx = logits, .a = logq, .V = V, .losses = kl};
    par_for(R, ROW_CHUNK(V), kl_rows, &r);
}

/* d logp_t/dx = onehot(t) − p;  dH/dx_i = −p_i (log p_i + H) */
MODEL_SIMD_CLONES static void logprob_backward_rows(void *ctx, int64_t lo, int64_t hi, int part) {
    Rows *r = ctx;
    float *logits = r->x;
    const int *targets = r->targets;
    const float *dlogp = r->a, *dent = r->e;
    int V = r->V;
    (void)part;
    for (int64_t n = lo; n < hi; n++) {
        float *x = logits + (size_t)n * V;
        float a = dlogp ? dlogp[n] : 0.0f, e = dent ? dent[n] : 0.0f;
        if (targets[n] < 0 || (a == 0.0f && e == 0.0f)) {
            memset(x, 0, (size_t)V * sizeof(float));
            continue;
        }
        float mx = vec_max(x, V), sum, wsum;
        vec_exp_stats(x, V, mx, &sum, &wsum);
        float off = mx + logf(sum), h = off - wsum / sum;
        int i = 0;
        v8f vo = v8_set1(off), vna = v8_set1(-a), ve = v8_set1(e), vh = v8_set1(h);
        for (; i + 8 <= V; i += 8) { /* the loop below, 8 lanes at once (the same bits) */
            v8f lp = v8_load(x + i) - vo, p = v8_exp(lp);
            v8_store(x + i, vna * p - ve * p * (lp + vh));
        }
        for (; i < V; i++) {
            float lp = x[i] - off, p = fast_expf(lp);
            x[i] = -a * p - e * p * (lp + h);
        }
        x[targets[n]] += a;
    }
}

void loss_logprobs_backward(float *logits, const int *targets, int N, int V, const float *dlogp,
                            const float *dent) {
    Rows r = {.x = logits, .targets = targets, .V = V, .a = dlogp, .e = dent};
    par_for(N, ROW_CHUNK(V), logprob_backward_rows, &r);
}

int loss_head_ce(void *ctx, float *logits, int row0, int R, int V, Err *err) {
    LossHeadCe *h = ctx;
    const int *tg = h->targets + row0;
    const float *mk = h->mask ? h->mask + row0 : NULL;
    double c;
    (void)err;
    h->total += h->grad ? loss_ce_backward(logits, tg, mk, R, V, h->scale, &c)
                        : loss_ce_forward(logits, tg, mk, R, V, NULL, &c);
    h->count += c;
    return 0;
}

void loss_logits_temper(float *logits, int R, int V, float temperature) {
    if (!(temperature > 0) || temperature == 1.0f) return;
    float inv = 1.0f / temperature;
    for (size_t i = 0; i < (size_t)R * V; i++) logits[i] *= inv;
}

int loss_head_logp(void *ctx, float *logits, int row0, int R, int V, Err *err) {
    LossHeadLogp *h = ctx;
    const int *tg = h->targets + row0;
    (void)err;
    loss_logits_temper(logits, R, V, h->temperature);
    if (h->logp || h->entropy)
        loss_logprobs(logits, tg, R, V, h->logp ? h->logp + row0 : NULL,
                      h->entropy ? h->entropy + row0 : NULL);
    if (h->dlogp || h->dent) {
        loss_logprobs_backward(logits, tg, R, V, h->dlogp ? h->dlogp + row0 : NULL,
                               h->dent ? h->dent + row0 : NULL);
        loss_logits_temper(logits, R, V, h->temperature); /* d/d(x/T) → d/dx */
    }
    return 0;
}
