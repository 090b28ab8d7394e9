/* rm/compare and rm/agreement: pairs with ties, Kendall's tau-b and
 * Krippendorff's alpha against hand computations. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "rm/agreement.h"
#include "rm/compare.h"

Test(rm_compare, pairs_with_ties) {
    /* ranks A=1, B=2, C=2, D=4 (competition ranking), E unranked */
    int rank[5] = {1, 2, 2, 4, 0};
    RmPair p[10];
    int n = rm_pairs(rank, 5, p);
    cr_assert_eq(n, 6, "4 ranked items give 4*3/2 pairs, the unranked one none");
    int ties = 0;
    for (int i = 0; i < n; i++)
        ties += p[i].tie;
    cr_assert_eq(ties, 1);
    /* order is (0,1) (0,2) (0,3) (1,2) (1,3) (2,3) */
    cr_assert(p[0].better == 0 && p[0].worse == 1 && p[0].margin == 1 && !p[0].tie);
    cr_assert(p[2].better == 0 && p[2].worse == 3 && p[2].margin == 3);
    cr_assert(p[3].tie && p[3].better == 1 && p[3].worse == 2 && p[3].margin == 0);
    /* a worse item listed first comes out second */
    int r2[2] = {2, 1};
    cr_assert_eq(rm_pairs(r2, 2, p), 1);
    cr_assert(p[0].better == 1 && p[0].worse == 0);
}

Test(rm_agreement, kendall_tau_b_by_hand) {
    /* one swapped pair of six: (5 - 1) / 6 */
    int x[4] = {1, 2, 3, 4}, y[4] = {1, 3, 2, 4};
    cr_assert_float_eq(rm_kendall_tau_b(x, y, 4), 4.0 / 6, 1e-12);
    /* ties: x ties items 0,1; y ties items 1,2: nc = 4, nd = 0, n0 = 6,
     * n1 = n2 = 1, so 4 / sqrt(5 * 5) = 0.8 */
    int a[4] = {1, 1, 2, 3}, b[4] = {1, 2, 2, 3};
    cr_assert_float_eq(rm_kendall_tau_b(a, b, 4), 0.8, 1e-12);
    int r[3] = {3, 2, 1}, f[3] = {1, 2, 3};
    cr_assert_float_eq(rm_kendall_tau_b(f, r, 3), -1, 1e-12);
    int t[3] = {1, 1, 1};
    cr_assert(isnan(rm_kendall_tau_b(t, f, 3)));
}

Test(rm_agreement, krippendorff_alpha_by_hand) {
    /* units (1,1) (2,2) (3,1): coincidences o11 = 2, o22 = 2, o13 = o31 = 1;
     * n1 = 3, n2 = 2, n3 = 1, n = 6.
     * interval: sum o d2 = 8, sum nc nk d2 = 2(6*1 + 3*4 + 2*1) = 40,
     *   alpha = 1 - 5 * 8 / 40 = 0.
     * ordinal: d2(1,2) = 2.5^2, d2(2,3) = 1.5^2, d2(1,3) = (6 - 2)^2 = 16;
     *   sum o d2 = 32, sum nc nk d2 = 2(37.5 + 48 + 4.5) = 180,
     *   alpha = 1 - 5 * 32 / 180 = 1/9. */
    int64_t u[6] = {1, 1, 2, 2, 3, 3};
    int v[6] = {1, 1, 2, 2, 3, 1};
    cr_assert_float_eq(rm_kripp_alpha(u, v, 6, 7, ALPHA_INTERVAL), 0, 1e-12);
    cr_assert_float_eq(rm_kripp_alpha(u, v, 6, 7, ALPHA_ORDINAL), 1.0 / 9, 1e-12);
    /* perfect agreement with variation is 1; a lone value per unit adds nothing */
    int64_t u2[5] = {1, 1, 2, 2, 9};
    int v2[5] = {2, 2, 6, 6, 1};
    cr_assert_float_eq(rm_kripp_alpha(u2, v2, 5, 7, ALPHA_INTERVAL), 1, 1e-12);
    /* no variation at all: undefined */
    int v3[4] = {4, 4, 4, 4};
    cr_assert(isnan(rm_kripp_alpha(u2, v3, 4, 7, ALPHA_ORDINAL)));
}

Test(rm_agreement, labelers_on_shared_prompts) {
    /* prompt 1: alice A>B>C, bob A>C>B (agree on 2 of 3 pairs);
     * prompt 2: alice only. Likert: alice 7,4,1 and bob 6,1,4 on prompt 1. */
    RmItem items[] = {
        {1, 1, 1, 7}, {2, 1, 2, 4}, {3, 1, 3, 1}, /* alice, prompt 1 */
        {1, 1, 1, 6}, {2, 1, 3, 1}, {3, 1, 2, 4}, /* bob, prompt 1 */
        {4, 1, 1, 0}, {5, 1, 2, 0},               /* alice, prompt 2 */
    };
    /* bob's ranking was a gold item he got half right */
    RmRanking rk[] = {{10, 1, 2000, NAN, 0, 0, 0, 3},
                      {11, 1, 4000, 0.5, 1, 1, 3, 3},
                      {12, 2, -1, NAN, 0, 0, 6, 2}};
    RmName labs[] = {{1, "alice"}, {2, "bob"}};
    RmSet s = {rk, 3, items, 8, labs, 2, NULL, 0};
    AgreementReport r;
    Err err = {0};
    cr_assert_eq(rm_agreement(&s, &r, &err), 0);
    cr_assert_eq(r.prompts, 2);
    cr_assert_eq(r.prompts_shared, 1);
    cr_assert_eq(r.compared, 3);
    cr_assert_eq(r.agreed, 2);
    cr_assert(isnan(r.agreement_se), "one shared prompt has no standard error");
    cr_assert_float_eq(r.tau, 1.0 / 3, 1e-12);
    cr_assert_eq(r.labelers[0].rankings, 2);
    cr_assert_float_eq(r.labelers[0].mean_time_s, 2.0, 1e-12);
    cr_assert_float_eq(r.labelers[1].mean_time_s, 4.0, 1e-12);
    cr_assert(r.labelers[1].simulated);
    cr_assert_float_eq(r.labelers[1].agreement, 2.0 / 3, 1e-12);
    cr_assert_eq(r.alpha_units, 3);
    cr_assert(!isnan(r.alpha_ordinal) && r.alpha_ordinal < 1);
    cr_assert(isnan(r.labelers[0].gold));
    cr_assert_float_eq(r.labelers[1].gold, 0.5, 1e-12);
    cr_assert_eq(r.n_pairs, 1);
    cr_assert(r.pairs[0].a == 0 && r.pairs[0].b == 1 && r.pairs[0].prompts == 1);
    cr_assert(r.pairs[0].compared == 3 && r.pairs[0].agreed == 2);
    cr_assert_float_eq(r.pairs[0].tau, 1.0 / 3, 1e-12);
    rm_agreement_free(&r);
    int64_t *ids;
    double *rate;
    int64_t n;
    cr_assert_eq(rm_prompt_agreement(&s, &ids, &rate, &n, &err), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(ids[0], 1);
    cr_assert_float_eq(rate[0], 2.0 / 3, 1e-12);
    free(ids), free(rate);
}
