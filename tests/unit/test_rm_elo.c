/* rm/elo: online Elo and Bradley–Terry against hand computations, and BT
 * recovering known strengths from synthetic battles. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "rm/elo.h"
#include "util/rng.h"

Test(rm_elo, online_by_hand) {
    EloOptions o = elo_options_default();
    double r[3];
    /* A beats B at equal ratings: expected 0.5, so ±K/2 */
    Battle b1[] = {{0, 1, 1}};
    elo_online(b1, 1, 2, &o, r);
    cr_assert_float_eq(r[0], 1002, 1e-9);
    cr_assert_float_eq(r[1], 998, 1e-9);
    /* then B beats A: E_A = 1/(1+10^((998-1002)/400)) = 0.505756...
     * A: 1002 - 4*0.505756 = 999.976976, B: 998 + 4*(1-0.494244) = 1000.023024 */
    Battle b2[] = {{0, 1, 1}, {0, 1, 0}};
    elo_online(b2, 2, 2, &o, r);
    double ea = 1 / (1 + pow(10, -4.0 / 400));
    cr_assert_float_eq(ea, 0.5057561, 1e-6);
    cr_assert_float_eq(r[0], 1002 - 4 * ea, 1e-9);
    cr_assert_float_eq(r[1], 998 + 4 * ea, 1e-9);
    cr_assert_float_eq(r[0], 999.976976, 1e-5);
    /* a tie between A (1002) and C (1000) after A beat B: A gives back
     * 4*(0.5-E) with E = 1/(1+10^(-2/400)) = 0.502878 */
    Battle b3[] = {{0, 1, 1}, {2, 0, 0.5f}};
    elo_online(b3, 2, 3, &o, r);
    double e = 1 / (1 + pow(10, -2.0 / 400));
    cr_assert_float_eq(r[0], 1002 + 4 * (0.5 - e), 1e-9);
    cr_assert_float_eq(r[2], 1000 + 4 * (0.5 - (1 - e)), 1e-9);
    cr_assert_float_eq(r[1], 998, 1e-9);
    /* zero sum: the mean stays at 1000 */
    cr_assert_float_eq(r[0] + r[1] + r[2], 3000, 1e-9);
}

Test(rm_elo, bt_by_hand) {
    EloOptions o = elo_options_default();
    o.method = ELO_BT;
    double r[3];
    Err err = {0};
    /* A beats B 3 times of 4: the MLE has P(A) = 3/4, so the gap is
     * 400*log10(3) = 190.85 points, centred on 1000 */
    Battle b[] = {{0, 1, 1}, {0, 1, 1}, {1, 0, 0}, {0, 1, 0}};
    cr_assert_eq(elo_bt(b, 4, 2, &o, r, &err), 0, "%s", err.msg);
    double gap = 400 * log10(3);
    cr_assert_float_eq(r[0], 1000 + gap / 2, 0.05, "A %f", r[0]);
    cr_assert_float_eq(r[1], 1000 - gap / 2, 0.05, "B %f", r[1]);
    /* ties count half: A beats B once and ties twice = 2 of 3, gap 400*log10(2) */
    Battle t[] = {{0, 1, 1}, {0, 1, 0.5f}, {1, 0, 0.5f}};
    cr_assert_eq(elo_bt(t, 3, 2, &o, r, &err), 0);
    cr_assert_float_eq(r[0] - r[1], 400 * log10(2), 0.05);
    /* a chain: A 2:1 over B and B 2:1 over C, no A-C games; by symmetry the
     * MLE has gaps of 400*log10(2) each */
    Battle c[] = {{0, 1, 1}, {0, 1, 1}, {0, 1, 0}, {1, 2, 1}, {1, 2, 1}, {1, 2, 0}};
    cr_assert_eq(elo_bt(c, 6, 3, &o, r, &err), 0);
    cr_assert_float_eq(r[0] - r[1], 400 * log10(2), 0.05);
    cr_assert_float_eq(r[1] - r[2], 400 * log10(2), 0.05);
    cr_assert_float_eq(r[1], 1000, 1e-6);
    /* anchoring pins a player at 1000 */
    o.anchor = 2;
    cr_assert_eq(elo_bt(c, 6, 3, &o, r, &err), 0);
    cr_assert_float_eq(r[2], 1000, 1e-9);
}

Test(rm_elo, bt_undefeated_player_stays_finite) {
    EloOptions o = elo_options_default();
    o.method = ELO_BT;
    Battle b[] = {{0, 1, 1}, {0, 1, 1}};
    double r[2];
    Err err = {0};
    cr_assert_eq(elo_bt(b, 2, 2, &o, r, &err), 0);
    cr_assert(isfinite(r[0]) && isfinite(r[1]) && r[0] > r[1]);
}

/* Battles drawn from known ratings with the Elo formula. */
static Battle *synthetic(const double *truth, int m, int64_t n, uint64_t seed) {
    Battle *b = malloc((size_t)n * sizeof *b);
    Rng rng;
    rng_seed(&rng, seed);
    for (int64_t k = 0; k < n; k++) {
        int i = (int)rng_below(&rng, (uint64_t)m), j;
        do
            j = (int)rng_below(&rng, (uint64_t)m);
        while (j == i);
        double p = 1 / (1 + pow(10, (truth[j] - truth[i]) / 400));
        b[k] = (Battle){i, j, rng_double(&rng) < p ? 1.0f : 0.0f};
    }
    return b;
}

Test(rm_elo, bt_recovers_known_strengths) {
    double truth[5] = {1200, 1100, 1000, 950, 750}; /* mean 1000 */
    int64_t n = 40000;
    Battle *b = synthetic(truth, 5, n, 7);
    EloOptions o = elo_options_default();
    o.method = ELO_BT;
    o.bootstrap = 40;
    EloTable t;
    Err err = {0};
    cr_assert_eq(elo_rate(b, n, 5, &o, &t, &err), 0, "%s", err.msg);
    for (int i = 0; i < 5; i++) {
        cr_assert(fabs(t.rating[i] - truth[i]) < 15, "player %d: %f vs %f", i, t.rating[i],
                  truth[i]);
        cr_assert(t.lo[i] <= t.rating[i] && t.rating[i] <= t.hi[i]);
        cr_assert(t.hi[i] - t.lo[i] < 40, "interval %f..%f", t.lo[i], t.hi[i]);
    }
    /* intervals here do not overlap, so the ranks are 1..5 */
    for (int i = 0; i < 5; i++)
        cr_assert_eq(t.rank[i], i + 1, "rank of %d: %d", i, t.rank[i]);
    elo_table_free(&t);
    /* online Elo gets the order right too (it is noisier) */
    o.method = ELO_ONLINE;
    o.bootstrap = 0;
    cr_assert_eq(elo_rate(b, n, 5, &o, &t, &err), 0);
    for (int i = 0; i + 1 < 5; i++)
        cr_assert(t.rating[i] > t.rating[i + 1]);
    cr_assert_eq(t.battles[0] + t.battles[1] + t.battles[2] + t.battles[3] + t.battles[4], 2 * n);
    elo_table_free(&t);
    free(b);
}

Test(rm_elo, rank_counts_only_intervals_wholly_above) {
    /* A and B are close (intervals overlap), C far below both */
    double truth[3] = {1100, 1090, 800};
    Battle *b = synthetic(truth, 3, 3000, 11);
    EloOptions o = elo_options_default();
    o.method = ELO_BT;
    o.bootstrap = 50;
    EloTable t;
    Err err = {0};
    cr_assert_eq(elo_rate(b, 3000, 3, &o, &t, &err), 0);
    cr_assert_eq(t.rank[0], 1);
    cr_assert_eq(t.rank[1], 1, "B's interval overlaps A's: rank %d", t.rank[1]);
    cr_assert_eq(t.rank[2], 3);
    elo_table_free(&t);
    free(b);
}

Test(rm_elo, seeded_shuffle_repeats) {
    double truth[3] = {1000, 1000, 1000};
    Battle *b = synthetic(truth, 3, 500, 3);
    EloOptions o = elo_options_default();
    EloTable t1, t2;
    Err err = {0};
    cr_assert_eq(elo_rate(b, 500, 3, &o, &t1, &err), 0);
    cr_assert_eq(elo_rate(b, 500, 3, &o, &t2, &err), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(t1.rating[i], t2.rating[i]);
    elo_table_free(&t1);
    elo_table_free(&t2);
    free(b);
}
