/* SFT and DPO training speed on prompt → answer examples of demo-like
 * lengths (prompt 8–24 tokens, answer 8–72): SFT answer tokens/s with
 * batches grouped by length (the default) and in plain shuffled order (the
 * padding it wastes is printed too), DPO pairs/s (one step: forward and
 * backward over every answer of its groups) for pairs (K = 2, 8 per step)
 * and for ranked groups of K = 4 (4 per step: 24 pairs from 16 answers). Demo and 15m configs,
 * batch 8, one line per figure with its configuration. RLHF_BENCH_QUICK=1 runs fewer steps. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config.h"
#include "rl/dpo.h"
#include "rl/sft.h"
#include "util/progress.h"
#include "util/rng.h"

static void die(const Err *err) {
    fprintf(stderr, "bench_rl_sft_dpo: %s\n", err->msg);
    exit(1);
}

static void example(Rng *r, int V, int max_len, SeqExample *e) {
    int p[32], a[96], np = 9 + (int)rng_below(r, 17), na = 8 + (int)rng_below(r, 65);
    Err err = {0};
    p[0] = 1;
    for (int i = 1; i < np; i++)
        p[i] = 3 + (int)rng_below(r, (uint64_t)V - 3);
    for (int i = 0; i < na; i++)
        a[i] = 3 + (int)rng_below(r, (uint64_t)V - 3);
    a[na - 1] = 2;
    if (seq_join(p, np, a, na, max_len, e, &err)) die(&err);
}

/* A model of config c with random weights (seed 1), and its optimizer. */
static void random_model(Model *m, AdamW *o, const Config *c) {
    Err err = {0};
    if (model_create(m, c, 0, &err) || adamw_create(o, m->n_params, &err)) die(&err);
    model_init_random(m, 1);
}

static void bench_sft(const char *name, const Config *c, int B, int steps, int group) {
    Err err = {0};
    Model m;
    AdamW o;
    SftTrainer tr;
    random_model(&m, &o, c);
    if (sft_trainer_init(&tr, &m, &o, B, 1, &err)) die(&err);
    enum { N = 512 };
    SftSet s = {0};
    s.ex = calloc(N, sizeof *s.ex);
    s.lens = calloc(N, sizeof(int));
    Rng r;
    rng_seed(&r, 7);
    for (int i = 0; i < N; i++) {
        example(&r, c->vocab_size, c->seq_len, &s.ex[i]);
        s.lens[i] = s.ex[i].n;
    }
    s.n = N;
    int perm[N], idx[64];
    double loss, gn, t0 = 0;
    int64_t toks = 0, real = 0, padded = 0;
    for (int st = 0; st < steps + 1; st++) {
        if (st == 1) t0 = now_seconds(), toks = 0; /* the first step warms up */
        int n = rl_batch_at(N, B, s.lens, group ? 50 : 0, 3, st, perm, idx), mx = 0;
        for (int i = 0; i < n; i++) {
            real += s.lens[idx[i]];
            mx = s.lens[idx[i]] > mx ? s.lens[idx[i]] : mx;
        }
        padded += (int64_t)mx * n;
        int64_t t;
        if (sft_step(&tr, &s, idx, n, 1e-4f, &loss, &gn, &t, &err)) die(&err);
        toks += t;
    }
    double dt = now_seconds() - t0;
    printf("sft_answer_tokens_per_s config=%s B=%d batches=%s value=%.0f\n", name, B,
           group ? "grouped" : "shuffled", toks / dt);
    printf("sft_padding_fraction config=%s B=%d batches=%s value=%.3f\n", name, B,
           group ? "grouped" : "shuffled", 1 - (double)real / (double)padded);
    sft_set_free(&s);
    sft_trainer_free(&tr);
    adamw_free(&o);
    model_free(&m);
}

/* G ranked groups of K answers each (all K·(K−1)/2 pairs), B groups per step. */
static void bench_dpo(const char *name, const Config *c, int B, int K, int steps) {
    Err err = {0};
    Model m;
    AdamW o;
    DpoTrainer tr;
    random_model(&m, &o, c);
    if (dpo_trainer_init(&tr, &m, &o, B, K, DPO_SIGMOID, 0.1, 0, 1, &err)) die(&err);
    enum { G = 128 };
    int per = K * (K - 1) / 2;
    DpoSet s = {0};
    s.ex = calloc((size_t)G * K, sizeof *s.ex);
    s.chosen = malloc(sizeof(int) * G * per);
    s.rejected = malloc(sizeof(int) * G * per);
    s.lens = malloc(sizeof(int) * G);
    s.ex_start = malloc(sizeof(int) * (G + 1));
    s.pair_start = malloc(sizeof(int) * (G + 1));
    Rng r;
    rng_seed(&r, 9);
    for (int i = 0; i < G * K; i++)
        example(&r, c->vocab_size, c->seq_len, &s.ex[i]);
    for (int g = 0; g < G; g++) {
        s.ex_start[g] = g * K, s.pair_start[g] = g * per, s.lens[g] = 0;
        for (int i = 0; i < K; i++) {
            if (s.ex[g * K + i].n > s.lens[g]) s.lens[g] = s.ex[g * K + i].n;
            for (int j = i + 1; j < K; j++, s.n_pairs++)
                s.chosen[s.n_pairs] = g * K + i, s.rejected[s.n_pairs] = g * K + j;
        }
    }
    s.ex_start[G] = G * K, s.pair_start[G] = G * per;
    s.n_ex = G * K, s.n_groups = G, s.max_k = K;
    double t0 = now_seconds();
    if (dpo_reference(&tr, &s, &err)) die(&err);
    double ref = now_seconds() - t0;
    int perm[G], idx[64];
    DpoStats st;
    double gn;
    int64_t pairs = 0;
    for (int k = 0; k < steps + 1; k++) {
        if (k == 1) t0 = now_seconds(), pairs = 0;
        int n = rl_batch_at(G, B, s.lens, 0, 3, k, perm, idx);
        if (dpo_step(&tr, &s, idx, n, 1e-5f, &st, &gn, &err)) die(&err);
        pairs += st.n;
    }
    double dt = now_seconds() - t0;
    printf("dpo_pairs_per_s config=%s groups_per_step=%d K=%d loss=sigmoid value=%.1f\n", name, B,
           K, pairs / dt);
    if (K == 2) printf("dpo_reference_answers_per_s config=%s value=%.1f\n", name, G * K / ref);
    dpo_set_free(&s);
    dpo_trainer_free(&tr);
    adamw_free(&o);
    model_free(&m);
}

int main(void) {
    int quick = getenv("RLHF_BENCH_QUICK") != NULL;
    const char *names[] = {"demo", "15m"};
    for (int i = 0; i < 2; i++) {
        Config c;
        Err err = {0};
        if (model_config_named(names[i], &c, &err)) die(&err);
        c.vocab_size = 512;
        int big = i == 1, steps = quick ? 2 : big ? 6 : 20;
        bench_sft(names[i], &c, 8, steps, 1);
        bench_sft(names[i], &c, 8, steps, 0);
        bench_dpo(names[i], &c, 8, 2, quick ? 2 : big ? 4 : 12);
        bench_dpo(names[i], &c, 4, 4, quick ? 2 : big ? 3 : 8);
    }
    return 0;
}
