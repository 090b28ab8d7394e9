/* Cross-entropy with a mask, log-probabilities and entropies, and their
 * gradients with respect to the logits. Softmax in float with the max
 * subtracted; sums in double where they feed a reported value. */
#include "model/loss.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

/* max and log Σ exp(x - max) of one row */
static void row_lse(const float *x, int V, float *mx, float *lse) {
    float m = x[0];
    for (int i = 1; i < V; i++) m = x[i] > m ? x[i] : m;
    float s = 0.0f;
    for (int i = 0; i < V; i++) s += expf(x[i] - m);
    *mx = m;
    *lse = logf(s);
}

double loss_ce_forward(const float *logits, const int *targets, const float *mask, int N, int V,
                       float *losses, double *count) {
    double total = 0.0, cnt = 0.0;
    for (int n = 0; n < N; n++) {
        float w = mask ? mask[n] : 1.0f;
        if (targets[n] < 0) w = 0.0f;
        if (losses) losses[n] = 0.0f;
        if (w == 0.0f) continue;
        const float *x = logits + (size_t)n * V;
        float mx, lse;
        row_lse(x, V, &mx, &lse);
        float l = lse + mx - x[targets[n]];
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
        float mx, lse;
        row_lse(x, V, &mx, &lse);
        total += (double)w * (lse + mx - x[targets[n]]);
        cnt += w;
        float off = mx + lse, s = w * scale;
        for (int i = 0; i < V; i++) x[i] = s * expf(x[i] - off);
        x[targets[n]] -= s;
    }
    if (count) *count = cnt;
    return total;
}

void loss_logprobs(const float *logits, const int *targets, int N, int V, float *logp,
                   float *entropy) {
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float mx, lse;
        row_lse(x, V, &mx, &lse);
        float off = mx + lse;
        if (logp) logp[n] = targets[n] >= 0 ? x[targets[n]] - off : 0.0f;
        if (entropy) {
            /* H = -Σ p log p with log p = x - off */
            float h = 0.0f;
            for (int i = 0; i < V; i++) {
                float lp = x[i] - off;
                h -= expf(lp) * lp;
            }
            entropy[n] = targets[n] >= 0 ? h : 0.0f;
        }
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
        float mx, lse;
        row_lse(x, V, &mx, &lse);
        float off = mx + lse, h = 0.0f;
        if (e != 0.0f)
            for (int i = 0; i < V; i++) {
                float lp = x[i] - off;
                h -= expf(lp) * lp;
            }
        for (int i = 0; i < V; i++) {
            float lp = x[i] - off, p = expf(lp);
            x[i] = -a * p - e * p * (lp + h);
        }
        x[targets[n]] += a;
    }
}
