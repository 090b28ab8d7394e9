/* PPO's arithmetic (see ppo_math.h). */
#include "rl/ppo_math.h"

#include <math.h>
#include <stddef.h>

void ppo_gae(const float *rewards, const float *values, int n, float gamma, float lambda,
             float *adv, float *ret) {
    double next_v = 0, next_a = 0;
    for (int t = n - 1; t >= 0; t--) {
        double delta = rewards[t] + gamma * next_v - values[t];
        next_a = delta + (double)gamma * lambda * next_a;
        adv[t] = (float)next_a;
        ret[t] = (float)(next_a + values[t]);
        next_v = values[t];
    }
}

void ppo_policy_loss(const float *logp, const float *old_logp, const float *adv, int n, float eps,
                     float scale, float *dlogp, PpoLossStats *s) {
    for (int i = 0; i < n; i++) {
        double d = (double)logp[i] - old_logp[i], ratio = exp(d);
        double rc = ratio < 1 - eps ? 1 - eps : ratio > 1 + eps ? 1 + eps : ratio;
        double l1 = -adv[i] * ratio, l2 = -adv[i] * rc;
        int clipped = l2 > l1;
        if (dlogp) dlogp[i] = clipped ? 0.0f : (float)(scale * -adv[i] * ratio);
        s->loss += clipped ? l2 : l1;
        s->clipped += clipped;
        s->approxkl += 0.5 * d * d;
        s->count += 1;
    }
}

void ppo_value_loss(const float *v, const float *old_v, const float *ret, int n, float eps,
                    float scale, float *dv, PpoLossStats *s) {
    for (int i = 0; i < n; i++) {
        double diff = (double)v[i] - old_v[i], vc = v[i];
        int inside = 1;
        if (eps > 0 && (diff > eps || diff < -eps)) {
            vc = old_v[i] + (diff > 0 ? eps : -eps);
            inside = 0;
        }
        double e1 = (double)v[i] - ret[i], e2 = vc - ret[i], l1 = e1 * e1, l2 = e2 * e2;
        int clipped = l2 > l1;
        /* the clipped term is constant in v outside the trust region */
        double g = clipped ? (inside ? e2 : 0.0) : e1;
        if (dv) dv[i] = (float)(scale * g);
        s->loss += 0.5 * (clipped ? l2 : l1);
        s->clipped += clipped;
        s->count += 1;
    }
}

void ppo_kl_update(PpoKlCtl *k, double kl, int n_steps) {
    if (k->target <= 0 || k->horizon <= 0) return;
    double e = kl / k->target - 1;
    if (e > 0.2) e = 0.2;
    if (e < -0.2) e = -0.2;
    k->beta *= 1 + e * n_steps / k->horizon;
}

void ppo_rloo_advantages(const float *r, int n_groups, int k, float *adv) {
    for (int g = 0; g < n_groups; g++) {
        const float *x = r + (size_t)g * k;
        double sum = 0;
        for (int i = 0; i < k; i++) sum += x[i];
        for (int i = 0; i < k; i++)
            adv[(size_t)g * k + i] = k > 1 ? (float)(x[i] - (sum - x[i]) / (k - 1)) : 0.0f;
    }
}

void ppo_grpo_advantages(const float *r, int n_groups, int k, float *adv) {
    for (int g = 0; g < n_groups; g++) {
        const float *x = r + (size_t)g * k;
        double mean = 0, var = 0;
        for (int i = 0; i < k; i++) mean += x[i];
        mean /= k;
        for (int i = 0; i < k; i++) var += (x[i] - mean) * (x[i] - mean);
        double sd = k > 1 ? sqrt(var / (k - 1)) : 0; /* torch's std, as TRL */
        for (int i = 0; i < k; i++)
            adv[(size_t)g * k + i] = k > 1 ? (float)((x[i] - mean) / (sd + 1e-4)) : 0.0f;
    }
}

double ppo_kl_k3(const float *logp, const float *ref_logp, int n, float beta, float scale,
                 float *dlogp) {
    double sum = 0;
    for (int i = 0; i < n; i++) {
        double d = (double)ref_logp[i] - logp[i], e = exp(d);
        sum += e - d - 1;
        dlogp[i] += (float)(beta * scale * (1 - e)); /* d/dlogp of e^d − d − 1 */
    }
    return sum;
}

void ppo_whiten(float *x, int n, int keep_mean) {
    if (n < 2) return;
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += x[i];
    mean /= n;
    for (int i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= n - 1; /* unbiased, as TRL's masked_var */
    double inv = 1 / sqrt(var + 1e-8);
    for (int i = 0; i < n; i++) x[i] = (float)((x[i] - mean) * inv + (keep_mean ? mean : 0));
}

double ppo_explained_variance(const float *v, const float *ret, int n) {
    if (n < 1) return NAN;
    double mr = 0, md = 0;
    for (int i = 0; i < n; i++) mr += ret[i], md += ret[i] - v[i];
    mr /= n, md /= n;
    double vr = 0, vd = 0;
    for (int i = 0; i < n; i++) {
        double a = ret[i] - mr, b = ret[i] - v[i] - md;
        vr += a * a, vd += b * b;
    }
    return vr > 0 ? 1 - vd / vr : NAN;
}
