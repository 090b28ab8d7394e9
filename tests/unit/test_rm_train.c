/* Reward-model training (rm/rm_train.h): the K-wise loss and its gradient
 * equal the mean of the naive per-pair losses, finite differences through the
 * reward head and the backbone, passes of any size give the same gradients,
 * a tiny model learns a known synthetic preference to high held-out accuracy,
 * the Wilson interval, normalisation and the policy check. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/optim.h"
#include "model/tokenizer.h"
#include "rm/export.h"
#include "rm/rm_eval.h"
#include "rm/rm_train.h"
#include "util/rng.h"
#include "tests/unit/fixtures.h"

static double naive_pair(double rw, double rl, double m) {
    return log1p(exp(-(rw - rl - m)));
}

Test(rm_train, kwise_loss_is_the_mean_of_pair_losses) {
    float r[5] = {0.3f, -1.2f, 0.7f, 0.7f, 2.0f};
    int rank[5] = {2, 4, 1, 2, 3}, likert[5] = {5, 1, 7, 5, 3};
    RmLossOpts o = {0.1, 0.05};
    float dr[5] = {0};
    RmGroupLoss gl;
    int P = rm_kwise_loss(r, rank, likert, 5, &o, 1, dr, &gl);
    cr_assert_eq(P, 9, "10 pairs, one tie");
    /* naive: every pair on its own (a K = 2 group), averaged */
    double sum = 0, dsum[5] = {0};
    int correct = 0;
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) {
            if (rank[i] >= rank[j]) continue; /* i wins */
            double m = o.margin * (likert[i] - likert[j]);
            double c = (double)r[i] + r[j];
            sum += naive_pair(r[i], r[j], m) + o.center * c * c;
            correct += r[i] > r[j];
            float pr[2] = {r[i], r[j]}, pd[2] = {0};
            int prk[2] = {1, 2}, pl[2] = {likert[i], likert[j]};
            RmGroupLoss g2;
            cr_assert_eq(rm_kwise_loss(pr, prk, pl, 2, &o, 1, pd, &g2), 1);
            dsum[i] += pd[0], dsum[j] += pd[1];
        }
    cr_assert_float_eq(gl.loss, sum / P, 1e-9);
    cr_assert_eq(gl.correct, correct);
    for (int i = 0; i < 5; i++) cr_assert_float_eq(dr[i], dsum[i] / P, 1e-6, "dr[%d]", i);
    /* and the gradient against finite differences of the loss itself */
    for (int i = 0; i < 5; i++) {
        float rp[5], rm[5];
        memcpy(rp, r, sizeof r), memcpy(rm, r, sizeof r);
        rp[i] += 1e-3f, rm[i] -= 1e-3f;
        RmGroupLoss a, b;
        rm_kwise_loss(rp, rank, likert, 5, &o, 1, NULL, &a);
        rm_kwise_loss(rm, rank, likert, 5, &o, 1, NULL, &b);
        double num = (a.loss - b.loss) / (rp[i] - rm[i]);
        cr_assert(fabs(num - dr[i]) < 1e-3, "dr[%d]: numeric %g, analytic %g", i, num, dr[i]);
    }
    /* all ties: nothing */
    int ties[3] = {1, 1, 1};
    float d3[3] = {0};
    cr_assert_eq(rm_kwise_loss(r, ties, NULL, 3, NULL, 1, d3, &gl), 0);
    cr_assert(d3[0] == 0 && d3[1] == 0 && d3[2] == 0);
}

/* A PrefSet the tests own: n groups of k answers. */
static void set_alloc(PrefSet *s, int n, int k) {
    memset(s, 0, sizeof *s);
    s->n = n;
    s->g = calloc((size_t)n, sizeof *s->g);
    for (int g = 0; g < n; g++) {
        PrefGroup *p = &s->g[g];
        p->n = k;
        p->answers = calloc((size_t)k, sizeof(char *));
        p->rank = calloc((size_t)k, sizeof(int));
        p->likert = calloc((size_t)k, sizeof(int));
        p->cand_id = calloc((size_t)k, sizeof(int64_t));
        p->labeler = -1;
    }
}

static Model tiny_rm(int seq, uint64_t seed) {
    Config c = {.dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                .vocab_size = 259, .seq_len = seq, .shared_classifier = 1};
    Model m;
    Err err = {0};
    cr_assert_eq(model_create(&m, &c, MODEL_HEAD_REWARD, &err), 0, "%s", err.msg);
    model_init_random(&m, seed);
    Rng r;
    rng_seed(&r, seed + 3);
    for (size_t i = 0; i < m.n_params; i++) m.params[i] += 0.1f * (float)rng_normal(&r);
    cr_assert_eq(model_grads_alloc(&m, &err), 0);
    return m;
}

/* --margin asks the better answer to win by margin per point of its 1-7 score;
 * when the scores contradict the order (the better ranked one scored lower)
 * the margin is 0, not negative: the order is what the loss learns. */
Test(rm_train, likert_margin_is_never_negative) {
    float r[2] = {0.5f, 0.2f}, dr[2] = {0};
    int rank[2] = {1, 2}, against[2] = {2, 6}, along[2] = {6, 2};
    RmLossOpts o = {1.0, 0};
    RmGroupLoss gl;
    rm_kwise_loss(r, rank, against, 2, &o, 1, dr, &gl);
    cr_assert_float_eq(gl.loss, naive_pair(0.5, 0.2, 0), 1e-6);
    rm_kwise_loss(r, rank, along, 2, &o, 1, dr, &gl);
    cr_assert_float_eq(gl.loss, naive_pair(0.5, 0.2, 4), 1e-6);
}

Test(rm_train, finite_differences_through_head_and_backbone) {
    Tokenizer *tok = byte_tokenizer();
    PrefSet s;
    set_alloc(&s, 2, 3);
    const char *ans[2][3] = {{"ab", "xyz!", "q"}, {"hello", "h", "no way"}};
    int ranks[2][3] = {{1, 2, 2}, {3, 1, 2}};
    for (int g = 0; g < 2; g++) {
        s.g[g].prompt = strdup(g ? "hey" : "p");
        for (int k = 0; k < 3; k++) s.g[g].answers[k] = strdup(ans[g][k]), s.g[g].rank[k] = ranks[g][k];
    }
    Err err = {0};
    Model m = tiny_rm(32, 11);
    RmData d;
    cr_assert_eq(rm_data_encode(&d, &s, tok, "{prompt}:", 32, &err), 0, "%s", err.msg);
    RmTrainer t, t1;
    RmLossOpts lo = {0, 0.1};
    cr_assert_eq(rm_trainer_create(&t, &m, 6, d.max_k, &lo, &err), 0, "%s", err.msg);
    cr_assert_eq(rm_trainer_create(&t1, &m, 1, d.max_k, &lo, &err), 0, "%s", err.msg);
    cr_assert_eq(t1.max_rows, 3, "a pass holds at least one whole group");
    int64_t idx[2] = {0, 1};
    model_zero_grad(&m);
    RmStats st;
    cr_assert_eq(rm_train_groups(&t, &d, idx, 2, 0.5f, &st, &err), 0, "%s", err.msg);
    float *g = malloc(sizeof(float) * m.n_params);
    memcpy(g, m.grads, sizeof(float) * m.n_params);
    /* one group per pass: the same gradients */
    model_zero_grad(&m);
    RmStats st1;
    cr_assert_eq(rm_train_groups(&t1, &d, idx, 2, 0.5f, &st1, &err), 0, "%s", err.msg);
    cr_assert_float_eq(st.loss, st1.loss, 1e-6);
    for (size_t i = 0; i < m.n_params; i++)
        cr_assert(fabsf(g[i] - m.grads[i]) <= 1e-5f + 1e-4f * fabsf(g[i]), "grad %zu: %g vs %g", i, g[i], m.grads[i]);
    /* finite differences on the head (all of it) and a few backbone entries */
    size_t off_head = model_tensor_offset(&m, MODEL_T_REWARD);
    size_t probe[32];
    int np = 0;
    for (int i = 0; i <= m.cfg.dim; i++) probe[np++] = off_head + (size_t)i;
    int tens[4] = {MODEL_T_EMB, MODEL_T_WQ, MODEL_T_W2, MODEL_T_RMS_FINAL};
    for (int k = 0; k < 4; k++) probe[np++] = model_tensor_offset(&m, tens[k]) + 7 * (size_t)(k + 1) + 'a' * (k == 0) * m.cfg.dim;
    for (int i = 0; i < np; i++) {
        size_t p = probe[i];
        float keep = m.params[p];
        RmStats a, b;
        m.params[p] = keep + 1e-2f;
        cr_assert_eq(rm_eval_groups(&t, &d, idx, 2, &a, NULL, &err), 0);
        m.params[p] = keep - 1e-2f;
        cr_assert_eq(rm_eval_groups(&t, &d, idx, 2, &b, NULL, &err), 0);
        m.params[p] = keep;
        double num = (a.loss - b.loss) / 2e-2;
        cr_assert(fabs(num - g[p]) <= 3e-3 + 3e-2 * fabs(g[p]), "param %zu: numeric %g, analytic %g", p, num, g[p]);
    }
    free(g);
    rm_trainer_free(&t), rm_trainer_free(&t1);
    rm_data_free(&d);
    prefs_free(&s);
    model_free(&m);
    tok_free(tok);
}

Test(rm_train, learns_a_synthetic_preference) {
    /* answers of 3 words; labelers prefer those with more "apple"s */
    static const char *words[] = {"pear", "fig", "plum", "kiwi", "lime", "apple"};
    Tokenizer *tok = byte_tokenizer();
    Rng rng;
    rng_seed(&rng, 42);
    int n = 160, K = 4;
    PrefSet s;
    set_alloc(&s, n, K);
    int n_val = 0;
    for (int g = 0; g < n; g++) {
        char prompt[32];
        snprintf(prompt, sizeof prompt, "q%d", g);
        s.g[g].prompt = strdup(prompt);
        s.g[g].val = rm_prompt_in_val(prompt, 0.2);
        n_val += s.g[g].val;
        int apples[4];
        for (int k = 0; k < K; k++) {
            char a[64] = "";
            apples[k] = 0;
            for (int w = 0; w < 3; w++) {
                int x = (int)rng_below(&rng, 6);
                apples[k] += x == 5;
                strcat(a, words[x]);
                if (w < 2) strcat(a, " ");
            }
            s.g[g].answers[k] = strdup(a);
        }
        for (int k = 0; k < K; k++) {
            s.g[g].rank[k] = 1;
            for (int j = 0; j < K; j++) s.g[g].rank[k] += apples[j] > apples[k];
        }
    }
    cr_assert(n_val > 10 && n_val < n);
    Err err = {0};
    Model m = tiny_rm(48, 5);
    Config c = {.dim = 32, .hidden_dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                .vocab_size = 259, .seq_len = 48, .shared_classifier = 1};
    model_free(&m);
    cr_assert_eq(model_create(&m, &c, MODEL_HEAD_REWARD, &err), 0);
    model_init_random(&m, 5);
    cr_assert_eq(model_grads_alloc(&m, &err), 0);
    RmData d;
    cr_assert_eq(rm_data_encode(&d, &s, tok, NULL, 48, &err), 0, "%s", err.msg);
    RmTrainer t;
    cr_assert_eq(rm_trainer_create(&t, &m, 16, K, NULL, &err), 0);
    int64_t *train = malloc(sizeof(int64_t) * n), *val = malloc(sizeof(int64_t) * n), nt = 0, nv = 0;
    for (int g = 0; g < n; g++) {
        if (s.g[g].val) val[nv++] = g;
        else train[nt++] = g;
    }
    AdamW opt;
    cr_assert_eq(adamw_create(&opt, m.n_params, &err), 0);
    opt.weight_decay = 0;
    RmStats before, after, st;
    cr_assert_eq(rm_eval_groups(&t, &d, val, nv, &before, NULL, &err), 0);
    int steps = 0;
    for (int epoch = 0; epoch < 8; epoch++) {
        rng_shuffle(&rng, train, (size_t)nt, sizeof *train);
        for (int64_t i = 0; i < nt; i += 8, steps++) {
            int64_t b = nt - i < 8 ? nt - i : 8;
            model_zero_grad(&m);
            cr_assert_eq(rm_train_groups(&t, &d, train + i, b, 1.0f / (float)b, &st, &err), 0);
            model_grad_clip(&m, 1);
            adamw_step(&opt, &m, lr_schedule(steps, 10, 8 * ((nt + 7) / 8), 3e-3f, 3e-4f));
        }
    }
    cr_assert_eq(rm_eval_groups(&t, &d, val, nv, &after, NULL, &err), 0);
    cr_assert(after.accuracy >= 0.9, "held-out accuracy %.3f (before training %.3f, %lld pairs)",
              after.accuracy, before.accuracy, (long long)after.pairs);
    cr_assert(after.loss < before.loss);
    /* normalisation: the bias moves every reward by the same amount */
    float *r1 = malloc(sizeof(float) * d.n_ex), *r2 = malloc(sizeof(float) * d.n_ex);
    cr_assert_eq(rm_eval_groups(&t, &d, val, nv, &st, r1, &err), 0);
    rm_normalise(&m, st.r_mean);
    cr_assert_eq(rm_eval_groups(&t, &d, val, nv, &st, r2, &err), 0);
    cr_assert(fabs(st.r_mean) < 1e-4, "mean after normalisation %g", st.r_mean);
    cr_assert_float_eq(st.accuracy, after.accuracy, 1e-12);
    free(r1), free(r2), free(train), free(val);
    adamw_free(&opt);
    rm_trainer_free(&t);
    rm_data_free(&d);
    prefs_free(&s);
    model_free(&m);
    tok_free(tok);
}

Test(rm_train, wilson_interval) {
    double lo, hi;
    rm_wilson(72, 100, 1.96, &lo, &hi);
    cr_assert_float_eq(lo, 0.625118, 1e-5);
    cr_assert_float_eq(hi, 0.798604, 1e-5);
    rm_wilson(10, 10, 1.96, &lo, &hi);
    cr_assert_float_eq(hi, 1.0, 1e-12);
    cr_assert(lo > 0.69 && lo < 0.73);
    rm_wilson(0, 0, 1.96, &lo, &hi);
    cr_assert(isnan(lo) && isnan(hi));
}

Test(rm_train, a_reward_model_is_not_a_policy) {
    Model m = tiny_rm(16, 1);
    Err err = {0};
    cr_assert_neq(model_require_policy(&m, "rm.ckpt", &err), 0);
    cr_assert(strstr(err.msg, "rm.ckpt") && strstr(err.msg, "reward model"), "%s", err.msg);
    cr_assert_eq(model_set_heads(&m, 0, &err), 0);
    cr_assert_eq(model_require_policy(&m, "m.ckpt", &err), 0);
    model_free(&m);
}
