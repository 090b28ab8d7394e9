/* Cross-entropy with a mask, log-probabilities and entropies, and their
 * gradients with respect to the logits. Softmax rows with the max subtracted,
 * exp vectorised (model/fastmath.h); totals summed in double. */
#include "model/loss.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "model/fastmath.h"

double loss_ce_forward(const float *logits, const int *targets, const float *mask, int N, int V,
                       float *losses, double *count) {
    double total = 0.0, cnt = 0.0;
    for (int n = 0; n < N; n++) {
        float w = mask ? mask[n] : 1.0f;
        if (targets[n] < 0) w = 0.0f;
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
    if (count) *count = cnt;
    return total;
}

double loss_ce_backward(float *logits, const int *targets, const float *mask, int N, int V,
                        float scale, double *count) {
    double total = 0.0, cnt = 0.0;
    for (int n = 0; n < N; n++) {
        float w = mask ? mask[n] : 1.0f;
        if (targets[n] < 0) w = 0.0f;
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
    if (count) *count = cnt;
    return total;
}

/* with off = max + log Σ exp(x - max):  log p_i = x_i - off,
 * H = -Σ p_i (x_i - off) = off - Σ p_i x_i */
void loss_logprobs(const float *logits, const int *targets, int N, int V, float *logp,
                   float *entropy) {
    for (int n = 0; n < N; n++) {
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

/* d logp_t/dx = onehot(t) − p;  dH/dx_i = −p_i (log p_i + H) */
void loss_logprobs_backward(float *logits, const int *targets, int N, int V, const float *dlogp,
                            const float *dent) {
    for (int n = 0; n < N; n++) {
        float *x = logits + (size_t)n * V;
        float a = dlogp ? dlogp[n] : 0.0f, e = dent ? dent[n] : 0.0f;
        if (targets[n] < 0 || (a == 0.0f && e == 0.0f)) {
            memset(x, 0, (size_t)V * sizeof(float));
            continue;
        }
        float mx = vec_max(x, V), sum, wsum;
        vec_exp_stats(x, V, mx, &sum, &wsum);
        float off = mx + logf(sum), h = off - wsum / sum;
        for (int i = 0; i < V; i++) {
            float lp = x[i] - off, p = fast_expf(lp);
            x[i] = -a * p - e * p * (lp + h);
        }
        x[targets[n]] += a;
    }
}
