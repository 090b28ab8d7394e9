/* rl/dpo: the three losses and their gradients by hand and against finite
 * differences; the gradient of the whole step (log-probabilities through the
 * model) against finite differences of the held-out loss; training raises
 * the chosen-over-rejected margin on a toy set; pairs come from each group's
 * non-tie ranks; a run resumed from its checkpoint (with the kept reference
 * log-probabilities) ends bit-identical to one that never stopped. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rl/dpo.h"
#include "util/rng.h"
#include "tests/unit/fixtures.h"

Test(rl_dpo, losses_by_hand) {
    double dc, dr, l;
    /* h = (−1 − −2) − (−1.5 − −1.5) = 1 */
    l = dpo_pair_loss(DPO_SIGMOID, 0.1, 0, -1, -2, -1.5, -1.5, &dc, &dr);
    cr_assert_float_eq(l, 0.6443966600735709, 1e-12); /* log(1 + e^−0.1) */
    cr_assert_float_eq(dc, -0.1 * 0.47502081252106, 1e-12);
    cr_assert_float_eq(dr, -dc, 1e-15);
    /* label smoothing 0.1: 0.9·log(1+e^−0.1) + 0.1·log(1+e^0.1) */
    l = dpo_pair_loss(DPO_SIGMOID, 0.1, 0.1, -1, -2, -1.5, -1.5, &dc, &dr);
    cr_assert_float_eq(l, 0.9 * 0.6443966600735709 + 0.1 * 0.7443966600735709, 1e-12);
    cr_assert_float_eq(dc, 0.1 * (-0.9 * 0.47502081252106 + 0.1 * 0.52497918747894), 1e-12);
    /* ipo: (1 − 1/0.2)² = 16, d = 2·(−4) */
    l = dpo_pair_loss(DPO_IPO, 0.1, 0, -1, -2, -1.5, -1.5, &dc, &dr);
    cr_assert_float_eq(l, 16, 1e-12);
    cr_assert_float_eq(dc, -8, 1e-12);
    cr_assert_float_eq(dr, 8, 1e-12);
    /* hinge: 1 − 0.1 = 0.9 with slope −β; none past the margin */
    l = dpo_pair_loss(DPO_HINGE, 0.1, 0, -1, -2, -1.5, -1.5, &dc, &dr);
    cr_assert_float_eq(l, 0.9, 1e-12);
    cr_assert_float_eq(dc, -0.1, 1e-12);
    l = dpo_pair_loss(DPO_HINGE, 2, 0, -1, -2, -1.5, -1.5, &dc, &dr);
    cr_assert_float_eq(l, 0, 1e-12);
    cr_assert_float_eq(dc, 0, 1e-12);
    /* a huge margin neither overflows nor loses the gradient's sign */
    l = dpo_pair_loss(DPO_SIGMOID, 1, 0, 0, -2000, 0, 0, &dc, &dr);
    cr_assert(isfinite(l) && l >= 0 && l < 1e-300 + 1e-12 && dc <= 0);
    l = dpo_pair_loss(DPO_SIGMOID, 1, 0, -2000, 0, 0, 0, &dc, &dr);
    cr_assert_float_eq(l, 2000, 1e-9);
    cr_assert_float_eq(dc, -1, 1e-12);
    cr_assert_eq(dpo_loss_type("ipo"), DPO_IPO);
    cr_assert_eq(dpo_loss_type("kto"), -1);
}

Test(rl_dpo, loss_gradients_match_finite_differences) {
    Rng r;
    rng_seed(&r, 3);
    for (int type = 0; type < 3; type++)
        for (int k = 0; k < 20; k++) {
            double x[4], d[2], beta = 0.05 + rng_double(&r), eps = type ? 0 : 0.2 * rng_double(&r);
            for (int i = 0; i < 4; i++)
                x[i] = -10 * rng_double(&r);
            dpo_pair_loss(type, beta, eps, x[0], x[1], x[2], x[3], &d[0], &d[1]);
            for (int i = 0; i < 2; i++) {
                double h = 1e-6, xp[4], xm[4], t0, t1;
                memcpy(xp, x, sizeof x), memcpy(xm, x, sizeof x);
                xp[i] += h, xm[i] -= h;
                double lp = dpo_pair_loss(type, beta, eps, xp[0], xp[1], xp[2], xp[3], &t0, &t1);
                double lm = dpo_pair_loss(type, beta, eps, xm[0], xm[1], xm[2], xm[3], &t0, &t1);
                double num = (lp - lm) / (2 * h);
                cr_assert(fabs(num - d[i]) < 1e-6 + 1e-5 * fabs(num), "%s: d/dx%d %g vs numeric %g",
                          dpo_loss_name(type), i, d[i], num);
            }
        }
}

/* n pairs: a prompt <s> p q, chosen = tokens from 13.., rejected = from 3.. */
static void toy_pairs(DpoSet *s, int n, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    memset(s, 0, sizeof *s);
    s->ex = calloc(2 * (size_t)n, sizeof *s->ex);
    s->chosen = malloc(sizeof(int) * (size_t)n);
    s->rejected = malloc(sizeof(int) * (size_t)n);
    s->lens = malloc(sizeof(int) * (size_t)n);
    s->ex_start = malloc(sizeof(int) * (size_t)(n + 1));
    s->pair_start = malloc(sizeof(int) * (size_t)(n + 1));
    Err err = {0};
    for (int i = 0; i < n; i++) {
        int p[3] = {1, 3 + (int)rng_below(&r, 20), 3 + (int)rng_below(&r, 20)}, a[6], b[6];
        int na = 1 + (int)rng_below(&r, 4), nb = 1 + (int)rng_below(&r, 4);
        for (int k = 0; k < na; k++)
            a[k] = 13 + (int)rng_below(&r, 10);
        for (int k = 0; k < nb; k++)
            b[k] = 3 + (int)rng_below(&r, 10);
        a[na] = b[nb] = 2;
        cr_assert_eq(seq_join(p, 3, a, na + 1, 16, &s->ex[2 * i], &err), 0);
        cr_assert_eq(seq_join(p, 3, b, nb + 1, 16, &s->ex[2 * i + 1], &err), 0);
        s->chosen[i] = 2 * i, s->rejected[i] = 2 * i + 1;
        s->lens[i] = 4 + (na > nb ? na : nb);
        s->ex_start[i] = 2 * i, s->pair_start[i] = i;
    }
    s->ex_start[n] = 2 * n, s->pair_start[n] = n;
    s->n_ex = 2 * n, s->n_pairs = s->n_groups = n, s->max_k = 2;
}

typedef struct Fix {
    Model m;
    AdamW opt;
    DpoTrainer tr;
    DpoSet set;
} Fix;

static void fix_init(Fix *f, int type, double beta, int pairs, uint64_t seed) {
    Err err = {0};
    tiny_model(&f->m, seed);
    cr_assert_eq(adamw_create(&f->opt, f->m.n_params, &err), 0);
    cr_assert_eq(dpo_trainer_init(&f->tr, &f->m, &f->opt, 3, 2, type, beta, 0, 0, &err), 0, "%s",
                 err.msg);
    toy_pairs(&f->set, pairs, seed + 1);
    cr_assert_eq(dpo_reference(&f->tr, &f->set, &err), 0, "%s", err.msg);
}

static void fix_free(Fix *f) {
    dpo_set_free(&f->set);
    dpo_trainer_free(&f->tr);
    adamw_free(&f->opt);
    model_free(&f->m);
}

/* The gradient dpo_step computes (at lr 0, no clipping) against finite
 * differences of the mean loss over the same pairs, for each loss, and for
 * sigmoid with RPO's NLL term (case 3), whose loss is the plain one plus
 * α times the chosen answers' mean NLL per token, and with the token-level
 * KL (case 4): plus γ times the answers' mean KL per token to the reference's
 * distributions, 0 where the model is the reference. */
Test(rl_dpo, step_gradient_matches_finite_differences) {
    for (int c = 0; c < 5; c++) {
        int type = c < 3 ? c : DPO_SIGMOID;
        Fix f;
        fix_init(&f, type, type == DPO_HINGE ? 0.5 : 1.0, 5, 11);
        f.tr.rpo = c == 3 ? 0.7 : 0;
        Err err = {0};
        if (c == 4) {
            f.tr.token_kl = 0.8;
            cr_assert_eq(dpo_reference_dist(&f.tr, NULL, &f.set, &err), 0, "%s", err.msg);
            DpoStats at_ref;
            cr_assert_eq(dpo_eval(&f.tr, &f.set, &at_ref, &err), 0);
            cr_assert_float_eq(at_ref.token_kl, 0, 1e-6, "the reference has no KL to itself");
        }
        Rng r;
        rng_seed(&r, 5);
        /* move away from the reference so h != 0 and the losses are not at a kink */
        for (size_t i = 0; i < f.m.n_params; i++)
            f.m.params[i] += 0.3f * (float)rng_normal(&r);
        int idx[5] = {0, 1, 2, 3, 4};
        DpoStats st;
        double gn;
        cr_assert_eq(dpo_step(&f.tr, &f.set, idx, 5, 0.0f, &st, &gn, &err), 0, "%s", err.msg);
        float *g = malloc(sizeof(float) * f.m.n_params);
        memcpy(g, f.m.grads, sizeof(float) * f.m.n_params);
        int checked = 0;
        for (int k = 0; k < 30; k++) {
            size_t i = (size_t)rng_below(&r, f.m.n_params);
            float keep = f.m.params[i];
            DpoStats sp, sm;
            f.m.params[i] = keep + 1e-2f;
            cr_assert_eq(dpo_eval(&f.tr, &f.set, &sp, &err), 0);
            f.m.params[i] = keep - 1e-2f;
            cr_assert_eq(dpo_eval(&f.tr, &f.set, &sm, &err), 0);
            f.m.params[i] = keep;
            double num = (sp.loss - sm.loss) / 2e-2;
            cr_assert(fabs(num - g[i]) <= 3e-3 + 5e-2 * fabs(g[i]),
                      "%s param %zu: %g vs numeric %g", dpo_loss_name(type), i, (double)g[i], num);
            checked += fabs(g[i]) > 1e-3;
        }
        cr_assert(checked > 5, "%s: too few non-zero gradients checked", dpo_loss_name(type));
        if (c == 4) {
            DpoStats tkl, plain;
            cr_assert_eq(dpo_eval(&f.tr, &f.set, &tkl, &err), 0);
            cr_assert(tkl.token_kl > 1e-3, "moved away: %g", tkl.token_kl);
            f.tr.token_kl = 0;
            cr_assert_eq(dpo_eval(&f.tr, &f.set, &plain, &err), 0);
            cr_assert_float_eq(tkl.loss, plain.loss + 0.8 * tkl.token_kl, 1e-9);
            /* the moved model as the reference: every row's KL to itself is 0 (a
             * row read for the wrong position or answer would not be) */
            cr_assert_eq(dpo_reference_dist(&f.tr, NULL, &f.set, &err), 0);
            cr_assert_eq(dpo_eval(&f.tr, &f.set, &plain, &err), 0);
            cr_assert_float_eq(plain.token_kl, 0, 1e-6, "%g", plain.token_kl);
        }
        if (c == 3) {
            DpoStats plain, rpo;
            cr_assert_eq(dpo_eval(&f.tr, &f.set, &rpo, &err), 0);
            f.tr.rpo = 0;
            cr_assert_eq(dpo_eval(&f.tr, &f.set, &plain, &err), 0);
            cr_assert(rpo.nll > 0 && fabs(rpo.nll - plain.nll) < 1e-12);
            cr_assert_float_eq(rpo.loss, plain.loss + 0.7 * plain.nll, 1e-9);
            /* the NLL by hand: minus each chosen answer's log-probability sum under
             * the moved model (a reference pass now) per answer token, over pairs */
            cr_assert_eq(dpo_reference(&f.tr, &f.set, &err), 0);
            double nll = 0;
            for (int p = 0; p < f.set.n_pairs; p++) {
                const SeqExample *e = &f.set.ex[f.set.chosen[p]];
                nll -= f.set.ref[f.set.chosen[p]] / (e->n - e->n_prompt);
            }
            cr_assert_float_eq(rpo.nll, nll / f.set.n_pairs, 1e-9, "%g vs %g", rpo.nll,
                               nll / f.set.n_pairs);
        }
        free(g);
        fix_free(&f);
    }
}

Test(rl_dpo, training_raises_the_margin) {
    for (int type = 0; type < 3; type++) {
        Fix f;
        fix_init(&f, type, 0.5, 12, 21);
        Err err = {0};
        DpoStats before, after, st;
        cr_assert_eq(dpo_eval(&f.tr, &f.set, &before, &err), 0);
        cr_assert_float_eq(before.margin, 0, 1e-9, "the policy is its own reference at the start");
        int perm[12], idx[6];
        for (int s = 0; s < 40; s++) {
            int n = rl_batch_at(12, 6, f.set.lens, 0, 1, s, perm, idx);
            double gn;
            cr_assert_eq(dpo_step(&f.tr, &f.set, idx, n, 1e-2f, &st, &gn, &err), 0);
        }
        cr_assert_eq(dpo_eval(&f.tr, &f.set, &after, &err), 0);
        /* IPO stops at h = 1/(2β) on mean log-probabilities: a margin of β·h = 0.5 */
        double want = type == DPO_IPO ? 0.4 : 1.0;
        cr_assert(after.margin > want && after.accuracy > 0.99 && after.loss < before.loss,
                  "%s: margin %g, accuracy %g, loss %g -> %g", dpo_loss_name(type), after.margin,
                  after.accuracy, before.loss, after.loss);
        cr_assert(after.chosen > 0 && after.rejected < 0, "%s: rewards %g / %g",
                  dpo_loss_name(type), after.chosen, after.rejected);
        fix_free(&f);
    }
}

Test(rl_dpo, pairs_from_ranked_groups) {
    const char *text = "a bb c d q r";
    size_t tl = strlen(text);
    Tokenizer *t = NULL;
    Err err = {0};
    cr_assert_eq(tok_train(&text, &tl, 1, 262, NULL, NULL, &t, &err), 0, "%s", err.msg);
    char *ans[4] = {"a", "bb", "c", "d"};
    int rank[4] = {2, 1, 2, 3}, likert[4] = {0};
    int64_t ids[4] = {0};
    PrefGroup g[2] = {{"q", 4, ans, rank, likert, ids, 0, 0, -1, 0, NULL, NULL, NULL},
                      {"r", 2, ans, rank, likert, ids, 0, 0, -1, 1, NULL, NULL, NULL}};
    PrefSet ps = {g, 2, NULL, 0, 0, 0};
    DpoSet tr, va;
    cr_assert_eq(dpo_build(&ps, t, NULL, 64, &tr, &va, &err), 0, "%s", err.msg);
    /* group 1: ranks 2 1 2 3: pairs (1,0) (1,2) (1,3) (0,3) (2,3); the tie 0~2 is not a pair */
    cr_assert_eq(tr.n_ex, 4);
    cr_assert_eq(tr.n_pairs, 5);
    cr_assert_eq(tr.n_groups, 1);
    cr_assert_eq(tr.max_k, 4);
    cr_assert_eq(tr.pair_start[1], 5);
    cr_assert_eq(tr.ex_start[1], 4);
    for (int p = 0; p < 5; p++)
        cr_assert(rank[tr.chosen[p]] < rank[tr.rejected[p]]);
    cr_assert_eq(va.n_ex, 2);
    cr_assert_eq(va.n_pairs, 1);
    cr_assert_eq(va.chosen[0], 1);
    dpo_set_free(&tr);
    dpo_set_free(&va);
    tok_free(t);
}

Test(rl_dpo, resumed_run_equals_uninterrupted) {
    Fix a, b;
    Err err = {0};
    fix_init(&a, DPO_SIGMOID, 0.1, 10, 31);
    fix_init(&b, DPO_SIGMOID, 0.1, 10, 31);
    int perm[10], idx[4];
    DpoStats st;
    double gn;
    for (int s = 0; s < 8; s++) {
        int n = rl_batch_at(10, 4, a.set.lens, 2, 3, s, perm, idx);
        cr_assert_eq(dpo_step(&a.tr, &a.set, idx, n, 5e-3f, &st, &gn, &err), 0);
    }
    for (int s = 0; s < 3; s++) {
        int n = rl_batch_at(10, 4, b.set.lens, 2, 3, s, perm, idx);
        cr_assert_eq(dpo_step(&b.tr, &b.set, idx, n, 5e-3f, &st, &gn, &err), 0);
    }
    char path[] = "/tmp/rlhf-unit-dpo-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    RlState rs = {0}, rs2;
    memcpy(rs.magic, "RL-DPO\0\0", 8);
    rs.step = 3;
    rs.payload = (int64_t)(sizeof(double) * (size_t)b.set.n_ex);
    cr_assert_eq(rl_ckpt_save(path, &b.m, &b.opt, &rs, b.set.ref, &err), 0, "%s", err.msg);
    /* the resumed run has no reference model: its reference comes from the file */
    dpo_trainer_free(&b.tr);
    adamw_free(&b.opt);
    model_free(&b.m);
    free(b.set.ref);
    void *pl;
    cr_assert_eq(rl_ckpt_load(path, "RL-DPO\0\0", &b.m, &b.opt, &rs2, &pl, &err), 0, "%s", err.msg);
    b.set.ref = pl;
    cr_assert_eq(dpo_trainer_init(&b.tr, &b.m, &b.opt, 3, 2, DPO_SIGMOID, 0.1, 0, 0, &err), 0);
    for (int s = 3; s < 8; s++) {
        int n = rl_batch_at(10, 4, b.set.lens, 2, 3, s, perm, idx);
        cr_assert_eq(dpo_step(&b.tr, &b.set, idx, n, 5e-3f, &st, &gn, &err), 0);
    }
    cr_assert_eq(memcmp(a.m.params, b.m.params, sizeof(float) * a.m.n_params), 0,
                 "resumed weights differ");
    unlink(path);
    fix_free(&a);
    fix_free(&b);
}

/* A group of K = 4 ranked answers trains each answer once for its 6 pairs:
 * the same gradient and statistics as the 6 pairs as groups of their own. */
Test(rl_dpo, a_group_equals_its_pairs_apart) {
    Err err = {0};
    int prompt[3] = {1, 7, 9}, ans[4][4] = {{13, 14, 15, 2}, {16, 2}, {3, 4, 5, 6}, {8, 2}};
    int alen[4] = {4, 2, 4, 2};
    DpoSet g = {0}, p = {0};
    g.ex = calloc(4, sizeof *g.ex);
    g.chosen = malloc(6 * sizeof(int)), g.rejected = malloc(6 * sizeof(int));
    g.ex_start = malloc(2 * sizeof(int)), g.pair_start = malloc(2 * sizeof(int));
    g.lens = malloc(sizeof(int));
    p.ex = calloc(12, sizeof *p.ex);
    p.chosen = malloc(6 * sizeof(int)), p.rejected = malloc(6 * sizeof(int));
    p.ex_start = malloc(7 * sizeof(int)), p.pair_start = malloc(7 * sizeof(int));
    p.lens = malloc(6 * sizeof(int));
    for (int i = 0; i < 4; i++)
        cr_assert_eq(seq_join(prompt, 3, ans[i], alen[i], 16, &g.ex[i], &err), 0);
    int k = 0;
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++, k++) {
            g.chosen[k] = i, g.rejected[k] = j;
            cr_assert_eq(seq_join(prompt, 3, ans[i], alen[i], 16, &p.ex[2 * k], &err), 0);
            cr_assert_eq(seq_join(prompt, 3, ans[j], alen[j], 16, &p.ex[2 * k + 1], &err), 0);
            p.chosen[k] = 2 * k, p.rejected[k] = 2 * k + 1;
            p.ex_start[k] = 2 * k, p.pair_start[k] = k, p.lens[k] = 7;
        }
    p.ex_start[6] = 12, p.pair_start[6] = 6;
    p.n_ex = 12, p.n_pairs = 6, p.n_groups = 6, p.max_k = 2;
    g.ex_start[0] = 0, g.ex_start[1] = 4, g.pair_start[0] = 0, g.pair_start[1] = 6, g.lens[0] = 7;
    g.n_ex = 4, g.n_pairs = 6, g.n_groups = 1, g.max_k = 4;
    Model m;
    tiny_model(&m, 41);
    AdamW opt;
    DpoTrainer tr;
    cr_assert_eq(adamw_create(&opt, m.n_params, &err), 0);
    /* one pair's worth of rows per pass: the 6 pairs apart take 6 passes, the group 1 */
    cr_assert_eq(dpo_trainer_init(&tr, &m, &opt, 1, 4, DPO_SIGMOID, 0.5, 0, 0, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(dpo_reference(&tr, &g, &err), 0);
    cr_assert_eq(dpo_reference(&tr, &p, &err), 0);
    Rng r;
    rng_seed(&r, 2);
    for (size_t i = 0; i < m.n_params; i++)
        m.params[i] += 0.2f * (float)rng_normal(&r);
    int all[6] = {0, 1, 2, 3, 4, 5};
    DpoStats sg, sp;
    double gn;
    cr_assert_eq(dpo_step(&tr, &g, all, 1, 0, &sg, &gn, &err), 0);
    float *gg = malloc(sizeof(float) * m.n_params);
    memcpy(gg, m.grads, sizeof(float) * m.n_params);
    cr_assert_eq(dpo_step(&tr, &p, all, 6, 0, &sp, &gn, &err), 0);
    cr_assert_eq(sg.n, 6);
    cr_assert_eq(sp.n, 6);
    cr_assert_float_eq(sg.loss, sp.loss, 1e-6);
    cr_assert_float_eq(sg.margin, sp.margin, 1e-6);
    cr_assert(fabs(sg.margin) > 1e-3, "the policy moved, so the margin is not 0");
    for (size_t i = 0; i < m.n_params; i++)
        cr_assert(fabs(gg[i] - m.grads[i]) <= 1e-6 + 1e-4 * fabs(gg[i]), "grad %zu: %g vs %g", i,
                  (double)gg[i], (double)m.grads[i]);
    free(gg);
    dpo_set_free(&g), dpo_set_free(&p);
    dpo_trainer_free(&tr);
    adamw_free(&opt);
    model_free(&m);
}
