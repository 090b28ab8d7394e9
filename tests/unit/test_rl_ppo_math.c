/* PPO's arithmetic against values worked out by hand: GAE, the clipped policy
 * and value losses with their gradients, the KL controller, whitening,
 * explained variance, the exact KL. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "model/loss.h"
#include "rl/ppo_math.h"
#include "util/rng.h"

#define NEAR(a, b) cr_assert(fabs((double)(a) - (double)(b)) < 1e-5, "%s = %.7f, want %.7f", #a, (double)(a), (double)(b))

Test(ppo_math, gae_by_hand) {
    /* r = (0, 0, 1), v = (0.5, 0.2, 0.4), gamma 0.9, lambda 0.5
     * delta2 = 1 - 0.4 = 0.6;            A2 = 0.6
     * delta1 = 0 + 0.9*0.4 - 0.2 = 0.16; A1 = 0.16 + 0.45*0.6 = 0.43
     * delta0 = 0 + 0.9*0.2 - 0.5 = -0.32; A0 = -0.32 + 0.45*0.43 = -0.1265 */
    float r[3] = {0, 0, 1}, v[3] = {0.5f, 0.2f, 0.4f}, a[3], ret[3];
    ppo_gae(r, v, 3, 0.9f, 0.5f, a, ret);
    NEAR(a[2], 0.6); NEAR(a[1], 0.43); NEAR(a[0], -0.1265);
    NEAR(ret[0], -0.1265 + 0.5); NEAR(ret[1], 0.63); NEAR(ret[2], 1.0);
    /* gamma = lambda = 1 without values: every advantage is the sum of what follows */
    float z[3] = {0, 0, 0};
    ppo_gae(r, z, 3, 1, 1, a, ret);
    NEAR(a[0], 1); NEAR(a[1], 1); NEAR(a[2], 1);
}

Test(ppo_math, clipped_policy_loss_by_hand) {
    /* token 0: ratio e^0.1 = 1.10517 inside [0.8, 1.2], A = 2: loss -2.21034, grad -2.21034
     * token 1: ratio e^0.3 = 1.34986 > 1.2 with A = 1: clipped, loss -1.2, grad 0
     * token 2: ratio e^0.3 with A = -1: unclipped (the pessimistic side), loss 1.34986
     * token 3: ratio e^-0.5 = 0.60653 < 0.8 with A = -1: clipped, loss 0.8, grad 0 */
    float lp[4] = {0.1f, 0.3f, 0.3f, -0.5f}, old[4] = {0, 0, 0, 0}, adv[4] = {2, 1, -1, -1}, d[4];
    PpoLossStats s = {0};
    ppo_policy_loss(lp, old, adv, 4, 0.2f, 0.5f, d, &s);
    NEAR(d[0], 0.5 * -2 * exp(0.1)); NEAR(d[1], 0); NEAR(d[2], 0.5 * exp(0.3)); NEAR(d[3], 0);
    NEAR(s.loss, -2 * exp(0.1) - 1.2 + exp(0.3) + 0.8);
    NEAR(s.clipped, 2); NEAR(s.count, 4);
    NEAR(s.approxkl, 0.5 * (0.01 + 0.09 + 0.09 + 0.25));
    /* the gradient matches a finite difference of the loss */
    for (int i = 0; i < 4; i++) {
        float up[4], dn[4];
        for (int j = 0; j < 4; j++) up[j] = dn[j] = lp[j];
        up[i] += 1e-3f, dn[i] -= 1e-3f;
        PpoLossStats a = {0}, b = {0};
        ppo_policy_loss(up, old, adv, 4, 0.2f, 1, NULL, &a);
        ppo_policy_loss(dn, old, adv, 4, 0.2f, 1, NULL, &b);
        cr_assert(fabs((a.loss - b.loss) / 2e-3 - 2 * d[i]) < 1e-2, "token %d", i);
    }
}

Test(ppo_math, clipped_value_loss_by_hand) {
    /* v moved 0.5 from old 0 with eps 0.2, return 1: unclipped (0.5-1)^2 = 0.25,
     * clipped (0.2-1)^2 = 0.64 is larger: loss 0.32, gradient 0 (outside the region).
     * v = 0.1 (inside), return 1: both terms 0.81: loss 0.405, gradient -0.9.
     * v = -0.5 from old 0, return -1: unclipped 0.25, clipped (-0.2+1)^2 = 0.64: loss 0.32. */
    float v[3] = {0.5f, 0.1f, -0.5f}, old[3] = {0, 0, 0}, ret[3] = {1, 1, -1}, d[3];
    PpoLossStats s = {0};
    ppo_value_loss(v, old, ret, 3, 0.2f, 1, d, &s);
    NEAR(s.loss, 0.32 + 0.405 + 0.32);
    NEAR(d[0], 0); NEAR(d[1], -0.9); NEAR(d[2], 0);
    NEAR(s.clipped, 2);
    /* moving past the return is not clipped when that is the larger error:
     * v = 0.5, old 0, return -1: unclipped 2.25 > clipped 1.44: gradient 1.5 */
    float r2 = -1;
    PpoLossStats s2 = {0};
    ppo_value_loss(v, old, &r2, 1, 0.2f, 1, d, &s2);
    NEAR(s2.loss, 1.125); NEAR(d[0], 1.5); NEAR(s2.clipped, 0);
}

Test(ppo_math, adaptive_kl_controller_by_hand) {
    PpoKlCtl k = {0.1, 6, 10000};
    ppo_kl_update(&k, 12, 256); /* err = clip(1, 0.2) = 0.2: beta * (1 + 0.2*256/10000) */
    NEAR(k.beta, 0.1 * 1.00512);
    k.beta = 0.1;
    ppo_kl_update(&k, 5.4, 100); /* err = -0.1: beta * (1 - 0.001) */
    NEAR(k.beta, 0.0999);
    k.beta = 0.1;
    ppo_kl_update(&k, 0, 1000); /* err = -1 clipped to -0.2: beta * 0.98 */
    NEAR(k.beta, 0.098);
    PpoKlCtl fixed = {0.02, 0, 10000};
    ppo_kl_update(&fixed, 100, 1000);
    NEAR(fixed.beta, 0.02);
}

Test(ppo_math, whitening_and_explained_variance) {
    float x[4] = {1, 2, 3, 4};
    ppo_whiten(x, 4, 0); /* mean 2.5, unbiased var 5/3 */
    double sd = sqrt(5.0 / 3);
    NEAR(x[0], -1.5 / sd); NEAR(x[3], 1.5 / sd);
    float y[4] = {1, 2, 3, 4};
    ppo_whiten(y, 4, 1);
    NEAR(y[0], -1.5 / sd + 2.5);
    float ret[4] = {1, 2, 3, 4}, v[4] = {1, 2, 3, 4}, v0[4] = {0, 0, 0, 0}, vm[4] = {2.5f, 2.5f, 2.5f, 2.5f};
    NEAR(ppo_explained_variance(v, ret, 4), 1);
    NEAR(ppo_explained_variance(vm, ret, 4), 0);
    NEAR(ppo_explained_variance(v0, ret, 4), 0); /* a constant offset explains nothing */
}

Test(ppo_math, exact_kl) {
    float a[3] = {1, 2, 3}, b[3] = {0, 0, 0}, la[3], lb[3], kl;
    loss_log_softmax(a, 1, 3, la);
    loss_log_softmax(b, 1, 3, lb);
    loss_kl_exact(a, la, 1, 3, &kl);
    cr_assert_eq(kl, 0.0f); /* identical rows: exactly 0 */
    double want = 0;
    for (int i = 0; i < 3; i++) want += exp(la[i]) * (la[i] - log(1.0 / 3));
    loss_kl_exact(a, lb, 1, 3, &kl);
    NEAR(kl, want);
}

/* The vectorised log-softmax and exact KL of full-size rows (8 lanes and a
 * tail) against the same done one element at a time in double (the float
 * log-softmax rows as before; the KL of them summed in double): within float
 * round-off of it */
Test(ppo_math, exact_kl_wide_rows_match_double) {
    enum { R = 6, V = 32003 };
    float *p = malloc(sizeof(float) * R * V), *q = malloc(sizeof(float) * R * V);
    float *lq = malloc(sizeof(float) * R * V), *wp = malloc(sizeof(float) * V), *wq = malloc(sizeof(float) * V);
    float kl[R];
    Rng r;
    rng_seed(&r, 11);
    for (int i = 0; i < R * V; i++) { /* row 0 q itself, then further from it (KL 1e-6 to 1e-2) */
        q[i] = 4 * (float)rng_normal(&r);
        p[i] = q[i] + (float)((i / V) * (i / V)) * 0.002f * (float)rng_normal(&r);
    }
    loss_log_softmax(q, R, V, lq);
    loss_kl_exact(p, lq, R, V, kl);
    for (int n = 0; n < R; n++) {
        const float *xs[2] = {p + (size_t)n * V, q + (size_t)n * V};
        float *ws[2] = {wp, wq};
        for (int k = 0; k < 2; k++) {
            double mx = -1e30, sum = 0;
            for (int i = 0; i < V; i++) mx = fmax(mx, xs[k][i]);
            for (int i = 0; i < V; i++) sum += exp(xs[k][i] - mx);
            float lse = (float)mx + (float)log(sum);
            for (int i = 0; i < V; i++) ws[k][i] = xs[k][i] - lse;
        }
        double want = 0;
        for (int i = 0; i < V; i++) {
            float got = lq[(size_t)n * V + i];
            cr_assert(fabsf(got - wq[i]) <= 4e-7f * fmaxf(1, fabsf(wq[i])), "row %d, %d: %g against %g", n, i, got, wq[i]);
            want += exp((double)wp[i]) * ((double)wp[i] - wq[i]);
        }
        if (n == 0) cr_assert_eq(kl[n], 0.0f, "row 0 is q itself: %g", kl[n]);
        else cr_assert(fabs(kl[n] - want) <= 2e-5 * want, "row %d: KL %.9g against %.9g", n, kl[n], want);
    }
    free(p), free(q), free(lq), free(wp), free(wq);
}

Test(ppo_math, rloo_advantages_by_hand) {
    /* two prompts, three answers each: r = (1, 2, 6) and (0, 0, 3)
     * A0 = 1 − (2+6)/2 = −3, A1 = 2 − (1+6)/2 = −1.5, A2 = 6 − 1.5 = 4.5
     * A3 = 0 − 1.5 = −1.5, A4 = −1.5, A5 = 3 − 0 = 3 */
    float r[6] = {1, 2, 6, 0, 0, 3}, a[6];
    ppo_rloo_advantages(r, 2, 3, a);
    NEAR(a[0], -3); NEAR(a[1], -1.5); NEAR(a[2], 4.5);
    NEAR(a[3], -1.5); NEAR(a[4], -1.5); NEAR(a[5], 3);
    /* one answer alone has no baseline: 0 */
    ppo_rloo_advantages(r, 1, 1, a);
    NEAR(a[0], 0);
}

Test(ppo_math, grpo_advantages_by_hand) {
    /* r = (1, 2, 6): mean 3, sample std sqrt(((4 + 1 + 9) / 2)) = sqrt(7) = 2.6457513
     * A = (−2, −1, 3) / (2.6457513 + 1e-4) */
    float r[6] = {1, 2, 6, 5, 5, 5}, a[6];
    ppo_grpo_advantages(r, 2, 3, a);
    double sd = sqrt(7.0) + 1e-4;
    NEAR(a[0], -2 / sd); NEAR(a[1], -1 / sd); NEAR(a[2], 3 / sd);
    /* equal rewards: no signal, not a division by zero */
    NEAR(a[3], 0); NEAR(a[4], 0); NEAR(a[5], 0);
}

Test(ppo_math, k3_kl_and_its_gradient) {
    /* d = ref − logp; kl = e^d − d − 1: d = 0 → 0; d = 0.5 → 0.1487213; d = −1 → 0.3678794 */
    float logp[3] = {-1.0f, -2.0f, -0.5f}, ref[3] = {-1.0f, -1.5f, -1.5f}, g[3] = {0, 0, 0};
    double kl = ppo_kl_k3(logp, ref, 3, 0.5f, 2.0f, g);
    NEAR(kl, 0 + (exp(0.5) - 1.5) + (exp(-1.0)));
    /* d kl / d logp = 1 − e^d, times beta·scale = 1 */
    NEAR(g[0], 0); NEAR(g[1], 1 - exp(0.5)); NEAR(g[2], 1 - exp(-1.0));
    /* against a central difference */
    float l2[3], z[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        memcpy(l2, logp, sizeof l2);
        l2[i] += 1e-3f;
        double up = ppo_kl_k3(l2, ref, 3, 0, 0, z);
        l2[i] -= 2e-3f;
        double dn = ppo_kl_k3(l2, ref, 3, 0, 0, z);
        cr_assert(fabs((up - dn) / 2e-3 - g[i]) < 1e-3, "gradient %d: %g vs %g", i, (up - dn) / 2e-3, g[i]);
    }
}
