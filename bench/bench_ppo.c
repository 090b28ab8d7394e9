/* bench_ppo: PPO on random weights with a reward model, a separate value
 * model and the reference all loaded (InstructGPT's four models; demo and
 * 15m), and on 15m with the default critic (a value head on the policy):
 * rollout tokens/s (batched decode), update tokens/s, plain training's
 * tokens/s on the same minibatch shape and the update's ratio to it, the
 * share of a step spent in rollout, scoring and update, and the process's
 * peak RSS so far.
 * Tokens are counted alike both ways: every position of a minibatch's
 * packed rows (prompt, answer and padding: B·T) once per training pass
 * (forward and backward) over it, so a PPO step of E epochs counts E·N·T.
 * The update's time includes the reference's and the old policy's
 * evaluation passes and the value model's update, which count no tokens.
 * Both figures are the best of 3 after one uncounted warm-up: PPO's of 3
 * steps, plain training's of 3 passes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "model/checkpoint.h"
#include "model/loss.h"
#include "model/optim.h"
#include "util/progress.h"
#include "rl/ppo.h"
#include "rm/rm_score.h"

static int fail(const char *what, const Err *err) {
    fprintf(stderr, "bench_ppo: %s: %s\n", what, err->msg);
    return 1;
}

/* <unk> <s> </s>, 256 bytes, then filler pieces up to V */
static int make_tokenizer(int V, Tokenizer **out, Err *err) {
    const char **pieces = calloc((size_t)V, sizeof *pieces);
    size_t *lens = calloc((size_t)V, sizeof *lens);
    float *scores = calloc((size_t)V, sizeof *scores);
    char (*names)[16] = calloc((size_t)V, 16);
    int rc = !pieces || !lens || !scores || !names ? err_set(err, RLHF_ENOMEM, "out of memory") : 0;
    for (int i = 0; !rc && i < V; i++) {
        if (i == 0) snprintf(names[i], 16, "<unk>");
        else if (i == 1) snprintf(names[i], 16, "\n<s>\n");
        else if (i == 2) snprintf(names[i], 16, "\n</s>\n");
        else if (i < 259) snprintf(names[i], 16, "<0x%02X>", i - 3);
        else snprintf(names[i], 16, " w%d", i);
        pieces[i] = names[i], lens[i] = strlen(names[i]), scores[i] = -(float)i;
    }
    if (!rc) rc = tok_build(V, pieces, lens, scores, out, err);
    free(pieces), free(lens), free(scores), free(names);
    return rc;
}

static int rm_cb(void *ctx, const SeqExample *ex, const SampleResult *res, int n, float *scores, Err *err) {
    (void)res;
    return rm_score_examples(ctx, ex, n, scores, err);
}

/* tokens/s of plain training (the SFT/pretraining step: forward, LM head
 * with the next-token loss, backward, clipping, AdamW) of the policy on
 * batches of B x T tokens, counted as B·T per step as PPO's update counts its
 * minibatches (padding included); the best of 3 after a warm-up */
static double plain_train_tps(Model *m, RunState *rs, int B, int T, Err *err) {
    AdamW o;
    int N = B * T, rc = adamw_create(&o, model_train_n(m), err);
    int *tok = malloc(sizeof(int) * (size_t)N * 2);
    if (rc || !tok) return free(tok), -1;
    Rng r;
    rng_seed(&r, 5);
    for (int i = 0; i < 2 * N; i++) tok[i] = (int)rng_below(&r, (uint64_t)m->cfg.vocab_size);
    double best = 1e30;
    for (int s = 0; s < 4 && !rc; s++) { /* the first is a warm-up; the best of the rest */
        double t0 = now_seconds();
        LossHeadCe ce = {.targets = tok + N, .scale = 1.0f / N, .grad = 1};
        model_zero_grad(m);
        rc = model_forward(m, rs, tok, B, T, 0, err);
        if (!rc) rc = model_head(m, rs, 1, loss_head_ce, &ce, err);
        if (!rc) rc = model_backward(m, rs, tok, NULL, NULL, NULL, err);
        if (!rc) model_grad_clip(m, 1.0), adamw_step(&o, m, 1e-5f);
        double dt = now_seconds() - t0;
        if (s > 0 && dt < best) best = dt;
    }
    adamw_free(&o);
    free(tok);
    return rc ? -1 : N / best;
}

static int bench(const char *cfg_name, int P, int K, int max_new, int epochs, int steps, int critic_model) {
    Err err = {0};
    Config c;
    Model pol = {0}, ref = {0}, val = {0};
    Tokenizer *tok = NULL;
    RmScorer rm = {0};
    Ppo p;
    int ready = 0, rc = model_config_named(cfg_name, &c, &err);
    char path[64];
    snprintf(path, sizeof path, "/tmp/bench_ppo_rm.%d.ckpt", (int)getpid());
    if (!rc) rc = make_tokenizer(c.vocab_size, &tok, &err);
    if (!rc) rc = model_create(&pol, &c, 0, &err);
    if (!rc) model_init_random(&pol, 1), rc = model_create(&ref, &c, 0, &err);
    if (!rc) memcpy(ref.params, pol.params, sizeof(float) * pol.n_params);
    /* the RM (a file, as the CLI opens it) and the value model made from it */
    if (!rc) rc = model_create(&val, &c, MODEL_HEAD_REWARD, &err);
    if (!rc) {
        model_init_random(&val, 2);
        for (int i = 0; i < c.dim; i++) val.w.reward[i] = 0.01f * (float)((i % 5) - 2);
        unsigned char *tb;
        size_t tl;
        rc = tok_to_bytes(tok, &tb, &tl, &err);
        if (!rc) rc = model_set_tokenizer(&val, tb, tl, &err), free(tb);
    }
    if (!rc) rc = model_save(path, &val, &err);
    if (!rc) rc = rm_scorer_open(&rm, path, NULL, NULL, 16, &err);
    unlink(path);
    if (!rc) rc = ppo_value_from_rm(&val, &err);
    /* 64 prompts of 20 tokens */
    static PpoPrompt prompts[64];
    static int ids[64][20];
    Rng rng;
    rng_seed(&rng, 3);
    for (int i = 0; i < 64; i++) {
        ids[i][0] = TOK_BOS;
        for (int j = 1; j < 20; j++) ids[i][j] = 3 + (int)rng_below(&rng, (uint64_t)c.vocab_size - 3);
        prompts[i].ids = ids[i], prompts[i].n = 20;
    }
    PpoConfig pc;
    ppo_config_default(&pc);
    pc.prompts = P, pc.samples = K, pc.max_new = max_new, pc.epochs = epochs;
    pc.value_mode = critic_model ? PPO_VALUE_MODEL : PPO_VALUE_HEAD, pc.length_penalty = 0;
    if (!rc) rc = ppo_init(&p, &pc, &pol, &ref, &val, tok, prompts, 64, NULL, NULL, 0, 1, &err);
    ready = !rc;
    PpoStats s, sum = {0};
    double best_up = 0; /* the update's tokens/s, the best step's */
    /* a first step uncounted, as plain training's first pass below: it
     * touches the optimizers' moments, the gradients and the run state for
     * the first time (page faults that were most of a single counted step) */
    for (int i = -1; i < steps && !rc; i++) {
        rc = ppo_step(&p, rm_cb, &rm, &s, &err);
        if (i < 0) continue;
        sum.t_rollout += s.t_rollout, sum.t_score += s.t_score, sum.t_update += s.t_update;
        sum.rollout_tokens += s.rollout_tokens, sum.update_tokens += s.update_tokens;
        if (s.update_tokens / s.t_update > best_up) best_up = s.update_tokens / s.t_update;
    }
    if (!rc) {
        struct rusage u;
        getrusage(RUSAGE_SELF, &u);
        double tt = sum.t_rollout + sum.t_score + sum.t_update;
        /* one line per figure, each with its configuration, as every bench prints */
        char cfg[160];
        snprintf(cfg, sizeof cfg, "config=%s prompts=%d answers=%d new=%d epochs=%d critic=%s", cfg_name,
                 P, K, max_new, epochs, critic_model ? "model" : "head");
        printf("ppo_rollout_tokens_per_s %s steps=%d value=%.0f\n", cfg, steps, sum.rollout_tokens / sum.t_rollout);
        printf("ppo_update_tokens_per_s %s tokens=B*T_per_minibatch_pass best_of=%d_steps value=%.0f\n", cfg,
               steps, best_up);
        printf("ppo_step_s %s value=%.2f\n", cfg, tt / steps);
        printf("ppo_step_share %s part=rollout value=%.3f\n", cfg, sum.t_rollout / tt);
        printf("ppo_step_share %s part=scoring value=%.3f\n", cfg, sum.t_score / tt);
        printf("ppo_step_share %s part=update value=%.3f\n", cfg, sum.t_update / tt);
        /* plain training of the policy on PPO's minibatch shape (the last
         * step's packed length T), for the same tokens counted the same way */
        int B = p.c.minibatch, T = 0;
        for (int b = 0; b < p.N; b++) T = p.lens[b] > T ? p.lens[b] : T;
        double tr = plain_train_tps(&pol, &p.rs, B, T, &err);
        if (tr > 0) {
            printf("train_tokens_per_s config=%s B=%d T=%d (PPO's minibatch shape) tokens=B*T_per_pass best_of=3 value=%.0f\n",
                   cfg_name, B, T, tr);
            printf("ppo_update_over_train %s B=%d T=%d value=%.2f\n", cfg, B, T, best_up / tr);
        }
        printf("ppo_peak_rss_mib %s models=policy,ref,rm%s value=%ld\n", cfg, critic_model ? ",value" : "",
               u.ru_maxrss / 1024);
    }
    if (ready) ppo_free(&p);
    rm_scorer_close(&rm);
    model_free(&pol), model_free(&ref), model_free(&val);
    if (tok) tok_free(tok);
    return rc ? fail(cfg_name, &err) : 0;
}

int main(void) {
    int rc = bench("demo", 8, 4, 32, 4, 3, 1);
    rc |= bench("15m", 2, 4, 16, 1, 3, 1);
    /* the default critic (a value head on the policy: one backbone pass for
     * both) with the default 4 epochs per rollout */
    rc |= bench("15m", 2, 4, 16, 4, 3, 0);
    return rc;
}
