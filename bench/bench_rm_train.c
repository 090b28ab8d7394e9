/* bench_rm_train: reward-model speed on random weights and synthetic answers
 * (prompt 24 tokens, answers 24-72): comparisons per second in training
 * (K-wise groups of K = 4, 8 groups per step), candidates per second in
 * scoring, for the demo and 15m configs; and on demo the speedup of K-wise
 * batching over naive pairs (each pair its own batch element, so each answer
 * passes K-1 times), which approaches 3x at K = 4. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config.h"
#include "model/model.h"
#include "model/optim.h"
#include "rm/rm_score.h"
#include "rm/rm_train.h"
#include "util/progress.h"
#include "util/rng.h"

#define K 4

static int fail(const char *what, const Err *err) {
    fprintf(stderr, "bench_rm_train: %s: %s\n", what, err->msg);
    return 1;
}

/* n groups of K answers as encoded examples; pairs: each of a group's
 * K(K-1)/2 pairs as its own group of 2 instead. */
static void make_data(PrefSet *s, RmData *d, int n, int V, int pairs, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    int per = pairs ? K * (K - 1) / 2 : 1, gk = pairs ? 2 : K;
    memset(s, 0, sizeof *s);
    memset(d, 0, sizeof *d);
    s->n = n * per;
    s->g = calloc((size_t)s->n, sizeof *s->g);
    d->set = s;
    d->ex = calloc((size_t)s->n * gk, sizeof *d->ex);
    d->first = malloc(sizeof(int64_t) * (size_t)s->n);
    d->max_k = gk;
    int prompt[24];
    for (int g = 0; g < n; g++) {
        prompt[0] = 1;
        for (int t = 1; t < 24; t++) prompt[t] = 3 + (int)rng_below(&rng, (uint64_t)V - 3);
        SeqExample ans[K];
        for (int k = 0; k < K; k++) {
            int len = 24 + (int)rng_below(&rng, 49), a[80];
            for (int t = 0; t < len; t++) a[t] = 3 + (int)rng_below(&rng, (uint64_t)V - 3);
            seq_join(prompt, 24, a, len, 256, &ans[k], NULL);
        }
        int q = 0;
        for (int i = 0; i < K; i++)
            for (int j = i + 1; j < K; j++) {
                if (!pairs && q) break;
                PrefGroup *p = &s->g[g * per + q];
                p->n = gk;
                p->rank = calloc((size_t)gk, sizeof(int));
                d->first[g * per + q] = d->n_ex;
                for (int k = 0; k < gk; k++) {
                    int src = pairs ? (k ? j : i) : k;
                    p->rank[k] = pairs ? k + 1 : src + 1;
                    SeqExample *e = &d->ex[d->n_ex++];
                    *e = ans[src];
                    e->tokens = malloc(sizeof(int) * (size_t)e->n);
                    memcpy(e->tokens, ans[src].tokens, sizeof(int) * (size_t)e->n);
                }
                q++;
            }
        for (int k = 0; k < K; k++) seq_example_free(&ans[k]);
    }
}

static void free_data(PrefSet *s, RmData *d) {
    for (int g = 0; g < s->n; g++) free(s->g[g].rank);
    free(s->g);
    rm_data_free(d);
}

/* Comparisons per second over `steps` optimizer steps of `G` groups. */
static int train_rate(Model *m, int n_groups, int pairs, int G, int steps, double *cps, Err *err) {
    PrefSet s;
    RmData d;
    make_data(&s, &d, n_groups, m->cfg.vocab_size, pairs, 7);
    RmTrainer t;
    AdamW opt;
    int rc = rm_trainer_create(&t, m, 16, d.max_k, NULL, err);
    if (!rc) rc = adamw_create(&opt, m->n_params, err);
    if (rc) return rc;
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)s.n), cmp = 0;
    for (int g = 0; g < s.n; g++) idx[g] = g;
    int per_step = pairs ? G * K * (K - 1) / 2 : G; /* the same comparisons per step */
    double t0 = now_seconds();
    for (int st = 0; st < steps && !rc; st++) {
        RmStats rs;
        model_zero_grad(m);
        rc = rm_train_groups(&t, &d, idx + (int64_t)st * per_step, per_step, 1.0f / per_step, &rs, err);
        model_grad_clip(m, 1);
        adamw_step(&opt, m, 1e-5f);
        cmp += rs.pairs;
    }
    *cps = (double)cmp / (now_seconds() - t0);
    free(idx);
    adamw_free(&opt);
    rm_trainer_free(&t);
    free_data(&s, &d);
    return rc;
}

static int score_rate(Model *m, int n, double *rate, Err *err) {
    PrefSet s;
    RmData d;
    make_data(&s, &d, n / K, m->cfg.vocab_size, 0, 9);
    RmTrainer t;
    int rc = rm_trainer_create(&t, m, 16, K, NULL, err);
    float *out = malloc(sizeof(float) * (size_t)d.n_ex);
    double t0 = now_seconds();
    if (!rc) rc = rm_score_model(m, &t.rs, t.tokens, t.lens, 16, d.ex, (int)d.n_ex, out, err);
    *rate = (double)d.n_ex / (now_seconds() - t0);
    free(out);
    rm_trainer_free(&t);
    free_data(&s, &d);
    return rc;
}

int main(void) {
    static const struct {
        const char *name;
        int steps, G, score_n, naive;
    } cfgs[] = {{"demo", 3, 8, 64, 1}, {"15m", 1, 8, 32, 0}};
    for (int c = 0; c < 2; c++) {
        Err err = {0};
        Config cfg;
        Model m;
        model_config_named(cfgs[c].name, &cfg, &err);
        if (model_create(&m, &cfg, MODEL_HEAD_REWARD, &err) || model_grads_alloc(&m, &err))
            return fail("model", &err);
        model_init_random(&m, 1);
        for (int i = 0; i <= cfg.dim; i++) m.w.reward[i] = 0.01f * (float)(i % 7 - 3);
        double kw, naive, sc;
        int n_groups = cfgs[c].steps * cfgs[c].G;
        if (train_rate(&m, n_groups, 0, cfgs[c].G, cfgs[c].steps, &kw, &err))
            return fail("train", &err);
        printf("rm_train_comparisons_per_s config=%s K=%d groups_per_step=%d steps=%d value=%.1f\n",
               cfgs[c].name, K, cfgs[c].G, cfgs[c].steps, kw);
        if (score_rate(&m, cfgs[c].score_n, &sc, &err)) return fail("score", &err);
        printf("rm_score_candidates_per_s config=%s batch=16 candidates=%d value=%.1f\n",
               cfgs[c].name, cfgs[c].score_n, sc);
        if (cfgs[c].naive) {
            if (train_rate(&m, n_groups, 1, cfgs[c].G, cfgs[c].steps, &naive, &err))
                return fail("train pairs", &err);
            printf("rm_train_naive_pairs_comparisons_per_s config=%s K=%d value=%.1f\n",
                   cfgs[c].name, K, naive);
            printf("rm_kwise_speedup_over_pairs config=%s K=%d value=%.2f (ideal %d)\n",
                   cfgs[c].name, K, kw / naive, K - 1);
        }
        model_free(&m);
    }
    return 0;
}
