/* The PPO loop on a tiny random model with a known reward: the sampler's
 * log-probabilities equal the training forward's, KL is exactly 0 at step 0,
 * PPO raises the reward while the adaptive β keeps KL near its target, the
 * state round-trips for resumption, and bad setups are refused. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gen/gen.h"
#include "gen/model_backend.h"
#include "model/checkpoint.h"
#include "model/lora.h"
#include "model/loss.h"
#include "rl/ppo.h"

#define CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ."

/* <unk> <s> </s> and one piece per character of CHARS */
static Tokenizer *char_tokenizer(void) {
    enum { NC = sizeof CHARS - 1 };
    const char *pieces[3 + NC];
    size_t lens[3 + NC];
    float scores[3 + NC];
    static char one[NC][2];
    pieces[0] = "<unk>", pieces[1] = "\n<s>\n", pieces[2] = "\n</s>\n";
    for (int i = 0; i < NC; i++) one[i][0] = CHARS[i], pieces[3 + i] = one[i];
    for (int i = 0; i < 3 + NC; i++) lens[i] = strlen(pieces[i]), scores[i] = 0;
    Tokenizer *t = NULL;
    Err err = {0};
    cr_assert_eq(tok_build(3 + NC, pieces, lens, scores, &t, &err), 0, "%s", err.msg);
    return t;
}

static void tiny_model(Model *m, int V, uint64_t seed) {
    Config c;
    Err err = {0};
    cr_assert_eq(model_config_named("tiny", &c, &err), 0);
    c.vocab_size = V;
    cr_assert_eq(model_create(m, &c, 0, &err), 0, "%s", err.msg);
    model_init_random(m, seed);
}

static void copy_model(Model *dst, const Model *src) {
    Err err = {0};
    cr_assert_eq(model_create(dst, &src->cfg, src->heads, &err), 0);
    memcpy(dst->params, src->params, sizeof(float) * src->n_params);
}

/* The known reward: the share of answer tokens among the first eight letters. */
static int letters_reward(void *ctx, const SeqExample *ex, const SampleResult *res, int n,
                          float *scores, Err *err) {
    (void)ctx, (void)ex, (void)err;
    for (int i = 0; i < n; i++) {
        int hit = 0, cnt = 0;
        for (int t = 0; t < res[i].n_tokens; t++) {
            int id = res[i].tokens[t];
            if (id == TOK_EOS) continue;
            cnt++;
            hit += id >= 3 && id < 3 + 8;
        }
        scores[i] = cnt ? (float)hit / cnt : 0;
    }
    return RLHF_OK;
}

static PpoPrompt prompts[4];
static int prompt_ids[4][4] = {{1, 3, 4, 5}, {1, 30, 31, 32}, {1, 40, 41, 42}, {1, 50, 51, 52}};
static void set_prompts(void) {
    for (int i = 0; i < 4; i++) prompts[i].ids = prompt_ids[i], prompts[i].n = 4;
}

static void small_config(PpoConfig *c) {
    ppo_config_default(c);
    c->prompts = 4, c->samples = 4, c->max_new = 8, c->minibatch = 8, c->epochs = 4;
    c->lr = 3e-3f, c->length_penalty = 0;
}

Test(rl_ppo, sampler_logprobs_equal_training_forward) {
    Tokenizer *tok = char_tokenizer();
    int V = tok_vocab_size(tok);
    Model m;
    tiny_model(&m, V, 7);
    /* sharper than a fresh init so the log-probabilities vary */
    for (size_t i = 0; i < m.sizes[MODEL_T_EMB]; i++) m.w.emb[i] *= 5;
    Infer st;
    Err err = {0};
    cr_assert_eq(infer_create(&st, &m, 4, &err), 0, "%s", err.msg);
    SampleParams sp = sample_params_default();
    sp.max_tokens = 20;
    uint64_t seeds[4] = {1, 2, 3, 4};
    SampleResult res[4];
    int prompt[5] = {1, 10, 11, 12, 13};
    cr_assert_eq(sample_generate_batch(&st, tok, prompt, 5, 4, &sp, seeds, res, &err), 0, "%s", err.msg);
    SeqExample ex[4];
    for (int i = 0; i < 4; i++) cr_assert_eq(seq_join(prompt, 5, res[i].tokens, res[i].n_tokens, 64, &ex[i], &err), 0);
    int tokens[4 * 64], lens[4], np[4], targets[4 * 64];
    int T = seq_pack(ex, 4, tokens, lens);
    for (int i = 0; i < 4; i++) np[i] = ex[i].n_prompt;
    seq_answer_targets(tokens, lens, np, 4, T, targets);
    RunState rs;
    cr_assert_eq(model_runstate_create(&rs, &m.cfg, 4, T, &err), 0);
    cr_assert_eq(model_forward(&m, &rs, tokens, 4, T, MODEL_FWD_LOGITS, &err), 0);
    float lp[4 * 64];
    double sums[4];
    loss_logprobs(rs.logits, targets, 4 * T, V, lp, NULL);
    seq_row_sums(lp, targets, 4, T, sums);
    for (int i = 0; i < 4; i++) {
        cr_assert(res[i].n_tokens > 0);
        cr_assert(fabs(sums[i] - res[i].logprob) < 1e-4 * res[i].n_tokens,
                  "stream %d: training %.6f, sampler %.6f", i, sums[i], res[i].logprob);
        cr_assert(res[i].logprob < -0.5, "a trivial sample: %g", res[i].logprob);
        sample_result_free(&res[i]);
        seq_example_free(&ex[i]);
    }
    model_runstate_free(&rs);
    infer_free(&st);
    model_free(&m);
    tok_free(tok);
}

/* A run with a value head whose reference is the policy as it starts. */
typedef struct Run {
    Tokenizer *tok;
    Model pol, ref;
    Ppo p;
} Run;

static void start(Run *r, const PpoConfig *c, uint64_t seed) {
    r->tok = char_tokenizer();
    tiny_model(&r->pol, tok_vocab_size(r->tok), seed);
    copy_model(&r->ref, &r->pol);
    set_prompts();
    Err err = {0};
    cr_assert_eq(ppo_init(&r->p, c, &r->pol, &r->ref, NULL, r->tok, prompts, 4, NULL, NULL, 0, 1, &err), 0,
                 "%s", err.msg);
}

static void finish(Run *r) {
    ppo_free(&r->p);
    model_free(&r->pol), model_free(&r->ref);
    tok_free(r->tok);
}

Test(rl_ppo, kl_is_exactly_zero_at_step_zero) {
    Run r;
    PpoConfig c;
    small_config(&c);
    Err err = {0};
    start(&r, &c, 3);
    PpoStats s;
    cr_assert_eq(ppo_step(&r.p, letters_reward, NULL, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.kl, 0.0, "step 0 KL %g", s.kl);
    cr_assert_eq(s.kl_full, 0.0, "step 0 full KL %g", s.kl_full);
    cr_assert(s.entropy_tok > 3, "a fresh model is near uniform: %g", s.entropy_tok);
    cr_assert_eq(s.step, 1);
    /* after an update the policy has moved: both KLs are positive */
    cr_assert_eq(ppo_step(&r.p, letters_reward, NULL, &s, &err), 0, "%s", err.msg);
    cr_assert(s.kl_full > 0, "full KL %g", s.kl_full);
    finish(&r);
}

/* At temperature 0.7 the log-probs PPO uses are those of softmax(logits /
 * 0.7), the distribution it sampled from: the reference's by hand, and the
 * first minibatch's ratio exactly 1 (its old and new log-probs agree). */
Test(rl_ppo, logprobs_at_the_sampling_temperature) {
    Run r;
    PpoConfig c;
    small_config(&c);
    c.temperature = 0.7f, c.epochs = 1, c.minibatch = 16;
    Err err = {0};
    start(&r, &c, 3);
    PpoStats s;
    cr_assert_eq(ppo_step(&r.p, letters_reward, NULL, &s, &err), 0, "%s", err.msg);
    cr_assert(s.approxkl < 1e-10, "the first minibatch's ratio is not 1: approx KL %g", s.approxkl);
    cr_assert_eq(s.pg_clipfrac, 0.0);
    const Ppo *p = &r.p;
    int T = 0, V = r.ref.cfg.vocab_size;
    for (int b = 0; b < p->N; b++) T = p->lens[b] > T ? p->lens[b] : T;
    RunState rs;
    cr_assert_eq(model_runstate_create(&rs, &r.ref.cfg, 1, T, &err), 0);
    cr_assert_eq(model_forward(&r.ref, &rs, p->tokens, 1, T, MODEL_FWD_LOGITS, &err), 0);
    int checked = 0;
    for (int t = 0; t < T; t++) {
        int y = p->targets[t];
        if (y < 0) continue;
        const float *x = rs.logits + (size_t)t * V;
        double mx = -INFINITY, z = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, x[v] / 0.7);
        for (int v = 0; v < V; v++) z += exp(x[v] / 0.7 - mx);
        double want = x[y] / 0.7 - mx - log(z);
        cr_assert(fabs(p->ref_logp[t] - want) < 1e-4, "token %d: %g, by hand %g", t, p->ref_logp[t], want);
        checked++;
    }
    cr_assert(checked > 0);
    model_runstate_free(&rs);
    finish(&r);
}

/* The first minibatch of epoch 0 starts from the evaluation's forward passes
 * (kept, not run again): with one minibatch of the whole rollout its ratio is
 * exactly 1 and its values are exactly the old ones, so the value loss is the
 * one of the old values against the returns, with a value head and with a
 * value model alike (a pass of other rows, or one run again, would miss it). */
Test(rl_ppo, first_minibatch_starts_from_the_evaluation) {
    for (int mode = 0; mode < 2; mode++) {
        Run r;
        PpoConfig c;
        small_config(&c);
        c.epochs = 1, c.minibatch = 16, c.cliprange_value = 0.2f;
        Err err = {0};
        Model val = {0};
        if (mode == 0) {
            start(&r, &c, 5);
        } else {
            c.value_mode = PPO_VALUE_MODEL;
            r.tok = char_tokenizer();
            tiny_model(&r.pol, tok_vocab_size(r.tok), 5);
            copy_model(&r.ref, &r.pol);
            tiny_model(&val, tok_vocab_size(r.tok), 6);
            cr_assert_eq(model_set_heads(&val, MODEL_HEAD_REWARD, &err), 0);
            for (int i = 0; i <= val.cfg.dim; i++) val.w.reward[i] = 0.05f * (float)(i % 5 - 2);
            cr_assert_eq(ppo_value_from_rm(&val, &err), 0, "%s", err.msg);
            set_prompts();
            cr_assert_eq(ppo_init(&r.p, &c, &r.pol, &r.ref, &val, r.tok, prompts, 4, NULL, NULL, 0, 1, &err), 0,
                         "%s", err.msg);
        }
        PpoStats s;
        for (int step = 0; step < 2; step++) { /* the second after an update: old ≠ reference */
            cr_assert_eq(ppo_step(&r.p, letters_reward, NULL, &s, &err), 0, "%s", err.msg);
            cr_assert_eq(s.updates, 1);
            cr_assert_eq(s.approxkl, 0.0, "mode %d step %d: the ratio is not 1 (approx KL %g)", mode, step, s.approxkl);
            cr_assert_eq(s.pg_clipfrac, 0.0);
            const Ppo *p = &r.p;
            int T = 0;
            for (int b = 0; b < p->N; b++) T = p->lens[b] > T ? p->lens[b] : T;
            PpoLossStats want = {0};
            for (int i = 0; i < p->N; i++) { /* in the minibatch's order, as the update sums */
                int b = p->order[i], s0 = p->nprompt[b] - 1;
                size_t o = (size_t)b * T + s0;
                ppo_value_loss(p->old_v + o, p->old_v + o, p->ret + o, p->lens[b] - p->nprompt[b],
                               c.cliprange_value, 1, NULL, &want);
            }
            cr_assert(want.count > 0 && want.loss > 0);
            cr_assert_eq(s.vf_loss, want.loss / want.count, "mode %d step %d: value loss %.9g, of the old values %.9g",
                         mode, step, s.vf_loss, want.loss / want.count);
        }
        finish(&r);
        if (mode == 1) model_free(&val);
    }
}

/* RLOO and GRPO run without a critic: no value loss, no explained variance,
 * and GRPO's KL penalty as a loss term still leaves step 0's KL at 0. */
Test(rl_ppo, rloo_and_grpo_without_a_critic) {
    for (int a = PPO_ADV_RLOO; a <= PPO_ADV_GRPO; a++) {
        Run r;
        PpoConfig c;
        small_config(&c);
        c.advantage = a;
        Err err = {0};
        start(&r, &c, 5);
        PpoStats s;
        cr_assert_eq(ppo_step(&r.p, letters_reward, NULL, &s, &err), 0, "%s", err.msg);
        cr_assert_eq(s.kl, 0.0);
        cr_assert_eq(s.vf_loss, 0.0);
        cr_assert(isnan(s.explained_var));
        cr_assert(s.updates > 0 && s.skipped == 0);
        /* advantages are per answer and sum to 0 within each prompt's answers (RLOO) */
        if (a == PPO_ADV_RLOO) {
            const Ppo *p = &r.p;
            int T = 0;
            for (int b = 0; b < p->N; b++) T = p->lens[b] > T ? p->lens[b] : T;
            for (int g = 0; g < c.prompts; g++) {
                double sum = 0;
                for (int k = 0; k < c.samples; k++) {
                    int b = g * c.samples + k;
                    sum += p->adv[(size_t)b * T + p->nprompt[b] - 1];
                }
                cr_assert(fabs(sum) < 1e-4, "group %d: advantages sum to %g", g, sum);
            }
        }
        finish(&r);
    }
}

/* One decoding contract: a PPO rollout and a gen candidate of the same
 * policy, prompt and seeds, at temperature 0.7, are the same tokens (gen's
 * backend is what eval and best-of-n sample with too). */
/* ppo_sample's answers to "abc" are gen's, token for token, from the policy
 * as it is now (saved to path for gen). */
static void rollout_equals_gen(Run *r, const char *path) {
    Err err = {0};
    cr_assert_eq(model_save(path, &r->pol, &err), 0, "%s", err.msg);
    /* the prompt's ids as gen encodes them (PPO's prompts are encoded the same way) */
    const char *text = "abc";
    int ids[16], n = 0;
    cr_assert_eq(tok_encode_prompt(r->tok, text, strlen(text), ids, 16, &n, &err), 0, "%s", err.msg);
    PpoPrompt pr = {ids, n};
    uint64_t seeds[4] = {gen_seed(1, 7, 0), gen_seed(1, 7, 1), gen_seed(1, 7, 2), gen_seed(1, 7, 3)};
    SampleResult res[4];
    cr_assert_eq(ppo_sample(&r->p, &pr, seeds, res, &err), 0, "%s", err.msg);
    SampleParams sp = sample_params_chat();
    sp.temperature = r->p.c.temperature, sp.max_tokens = r->p.c.max_new;
    GenModel g;
    cr_assert_eq(gen_model_open(&g, path, NULL, &sp, 4, 1, INFER_WEIGHTS_F32, &err), 0, "%s",
                 err.msg);
    GenBackend b = gen_model_backend(&g);
    GenSample out[4];
    cr_assert_eq(b.sample(b.ctx, text, 4, seeds, out, &err), 0, "%s", err.msg);
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(out[k].n_tokens, res[k].n_tokens, "stream %d", k);
        cr_assert_eq(out[k].sum_logprob, res[k].logprob, "stream %d: gen %.9g '%s', ppo %.9g '%s'", k,
                     out[k].sum_logprob, out[k].text, res[k].logprob, res[k].text);
        cr_assert_str_eq(out[k].text, res[k].text, "stream %d", k);
        cr_assert_eq(out[k].n_ids, res[k].n_tokens, "stream %d", k);
        cr_assert_eq(memcmp(out[k].tokens, res[k].tokens, sizeof(int) * (size_t)res[k].n_tokens), 0,
                     "stream %d: other token ids", k);
        cr_assert_eq(out[k].finish, res[k].finish, "stream %d", k);
        sample_result_free(&res[k]);
    }
    gen_samples_free(out, 4);
    gen_model_close(&g);
}

/* At the start and after updates (the rollouts sample from a copy of the
 * policy's matrices, which must follow them). */
Test(rl_ppo, a_rollout_is_what_gen_samples) {
    Run r;
    PpoConfig c;
    small_config(&c);
    c.temperature = 0.7f, c.max_new = 12;
    Err err = {0};
    start(&r, &c, 9);
    unsigned char *tb;
    size_t tl;
    cr_assert_eq(tok_to_bytes(r.tok, &tb, &tl, &err), 0);
    cr_assert_eq(model_set_tokenizer(&r.pol, tb, tl, &err), 0);
    free(tb);
    char path[] = "/tmp/rlhf-ppo-gen-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    rollout_equals_gen(&r, path);
    float before = r.pol.w.wq[0];
    for (int i = 0; i < 2; i++) {
        PpoStats s;
        cr_assert_eq(ppo_step(&r.p, letters_reward, NULL, &s, &err), 0, "%s", err.msg);
    }
    cr_assert_neq(r.pol.w.wq[0], before, "the policy did not move");
    rollout_equals_gen(&r, path);
    unlink(path);
    finish(&r);
}

Test(rl_ppo, raises_a_known_reward_with_kl_near_target) {
    Run r;
    PpoConfig c;
    small_config(&c);
    c.kl_target = 3, c.kl_horizon = 64, c.beta = 0.05;
    Err err = {0};
    start(&r, &c, 5);
    PpoStats s;
    double first = 0, last = 0, kl_last = 0;
    int steps = 40;
    for (int i = 0; i < steps; i++) {
        cr_assert_eq(ppo_step(&r.p, letters_reward, NULL, &s, &err), 0, "%s", err.msg);
        if (i < 3) first += s.score / 3;
        if (i >= steps - 5) last += s.score / 5, kl_last += s.kl / 5;
    }
    cr_assert(last > first + 0.2, "reward %.3f -> %.3f", first, last);
    cr_assert(kl_last < 3 * c.kl_target, "KL %.3f ran away from its target %.1f", kl_last, c.kl_target);
    cr_assert(r.p.kl.beta != c.beta, "the controller never moved beta");
    finish(&r);
}

/* A run saved after 3 steps and resumed gives the same 4th step as a run never
 * stopped; the separate value model (--value rm) rides along in the state. */
Test(rl_ppo, state_resumes_the_same_run_with_a_value_model) {
    Tokenizer *tok = char_tokenizer();
    int V = tok_vocab_size(tok);
    Model pol, ref, val;
    tiny_model(&pol, V, 9);
    copy_model(&ref, &pol);
    tiny_model(&val, V, 11);
    Err err = {0};
    cr_assert_eq(model_set_heads(&val, MODEL_HEAD_REWARD, &err), 0);
    for (int i = 0; i <= val.cfg.dim; i++) val.w.reward[i] = 0.01f * (float)(i % 7);
    cr_assert_eq(ppo_value_from_rm(&val, &err), 0, "%s", err.msg);
    cr_assert(val.heads == MODEL_HEAD_VALUE);
    cr_assert_eq(val.w.value[3], 0.03f);
    Model pol0, val0;
    copy_model(&pol0, &pol);
    copy_model(&val0, &val);
    set_prompts();
    PpoConfig c;
    small_config(&c);
    c.value_mode = PPO_VALUE_MODEL;
    Ppo p;
    cr_assert_eq(ppo_init(&p, &c, &pol, &ref, &val, tok, prompts, 4, NULL, NULL, 0, 1, &err), 0, "%s", err.msg);
    cr_assert(!(pol.heads & MODEL_HEAD_VALUE), "no value head on the policy with a value model");
    PpoStats s;
    for (int i = 0; i < 3; i++) cr_assert_eq(ppo_step(&p, letters_reward, NULL, &s, &err), 0, "%s", err.msg);
    void *state;
    size_t len;
    cr_assert_eq(ppo_state_bytes(&p, &state, &len, &err), 0);
    Model pol3, val_fresh;
    copy_model(&pol3, &pol);
    AdamW opt3;
    cr_assert_eq(adamw_create(&opt3, pol.n_params, &err), 0);
    memcpy(opt3.m, p.opt.m, sizeof(float) * pol.n_params);
    memcpy(opt3.v, p.opt.v, sizeof(float) * pol.n_params);
    opt3.step = p.opt.step;
    cr_assert_eq(ppo_step(&p, letters_reward, NULL, &s, &err), 0, "%s", err.msg);
    /* the resumed run starts from the value model as first given: the state restores it */
    copy_model(&val_fresh, &val0);
    Ppo q;
    cr_assert_eq(ppo_init(&q, &c, &pol3, &ref, &val_fresh, tok, prompts, 4, &opt3, state, len, 999, &err), 0, "%s", err.msg);
    PpoStats s2;
    cr_assert_eq(ppo_step(&q, letters_reward, NULL, &s2, &err), 0, "%s", err.msg);
    cr_assert_eq(s2.step, 4);
    cr_assert_eq(s2.score, s.score);
    cr_assert_eq(s2.kl, s.kl);
    cr_assert_eq(s2.vf_loss, s.vf_loss);
    cr_assert_eq(memcmp(pol3.params, pol.params, sizeof(float) * pol.n_params), 0, "policies differ");
    cr_assert_eq(memcmp(val_fresh.params, val.params, sizeof(float) * val.n_params), 0, "value models differ");
    /* other prompts: refused */
    Ppo r;
    cr_assert_neq(ppo_init(&r, &c, &pol3, &ref, &val_fresh, tok, prompts, 3, NULL, state, len, 1, &err), 0);
    cr_assert(strstr(err.msg, "prompts changed"), "%s", err.msg);
    free(state);
    ppo_free(&p), ppo_free(&q);
    model_free(&pol), model_free(&ref), model_free(&val), model_free(&pol0), model_free(&val0);
    model_free(&pol3), model_free(&val_fresh);
    tok_free(tok);
}

Test(rl_ppo, bad_setups_are_refused) {
    Tokenizer *tok = char_tokenizer();
    int V = tok_vocab_size(tok);
    Model pol, ref, rm, other;
    tiny_model(&pol, V, 1);
    copy_model(&ref, &pol);
    copy_model(&rm, &pol);
    tiny_model(&other, V + 1, 1);
    Err err = {0};
    cr_assert_eq(model_set_heads(&rm, MODEL_HEAD_REWARD, &err), 0);
    set_prompts();
    PpoConfig c;
    small_config(&c);
    Ppo p;
    cr_assert_eq(ppo_init(&p, &c, &rm, &ref, NULL, tok, prompts, 4, NULL, NULL, 0, 1, &err), RLHF_EINVAL);
    cr_assert(strstr(err.msg, "reward model"), "%s", err.msg);
    cr_assert_eq(ppo_init(&p, &c, &pol, &other, NULL, tok, prompts, 4, NULL, NULL, 0, 1, &err), RLHF_EINVAL);
    cr_assert(strstr(err.msg, "vocabulary"), "%s", err.msg);
    cr_assert_eq(ppo_init(&p, &c, &pol, &ref, NULL, tok, prompts, 0, NULL, NULL, 0, 1, &err), RLHF_EINVAL);
    cr_assert(strstr(err.msg, "no training prompts"), "%s", err.msg);
    c.value_mode = PPO_VALUE_MODEL;
    cr_assert_eq(ppo_init(&p, &c, &pol, &ref, NULL, tok, prompts, 4, NULL, NULL, 0, 1, &err), RLHF_EINVAL);
    c.value_mode = PPO_VALUE_HEAD;
    c.cliprange = 0;
    cr_assert_eq(ppo_init(&p, &c, &pol, &ref, NULL, tok, prompts, 4, NULL, NULL, 0, 1, &err), RLHF_EINVAL);
    model_free(&pol), model_free(&ref), model_free(&rm), model_free(&other);
    tok_free(tok);
}

static int constant_reward(void *ctx, const SeqExample *ex, const SampleResult *res, int n,
                           float *scores, Err *err) {
    (void)ex, (void)res, (void)err;
    for (int i = 0; i < n; i++) scores[i] = *(const float *)ctx;
    return RLHF_OK;
}

/* At step 0 (KL 0) the reward the policy sees is the score after the length
 * penalty and the clipping: checkable exactly. */
Test(rl_ppo, length_penalty_and_score_clipping) {
    Run r;
    PpoConfig c;
    small_config(&c);
    c.max_new = 2, c.length_penalty = 5, c.score_clip = 4;
    Err err = {0};
    start(&r, &c, 13);
    float three = 3;
    PpoStats s;
    cr_assert_eq(ppo_step(&r.p, constant_reward, &three, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.score, 3.0, "the raw score is logged before penalties");
    cr_assert(s.eos_frac < 0.5, "a fresh model rarely ends within 2 tokens");
    /* cut answers: 3 - 5 = -2; ended ones: 3 */
    double want = 3 * s.eos_frac + -2 * (1 - s.eos_frac);
    cr_assert(fabs(s.rlhf_reward - want) < 1e-6, "rlhf reward %g, want %g", s.rlhf_reward, want);
    finish(&r);
    /* clipping: a score of 9 counts as 4 */
    c.length_penalty = 0;
    start(&r, &c, 13);
    float nine = 9;
    cr_assert_eq(ppo_step(&r.p, constant_reward, &nine, &s, &err), 0, "%s", err.msg);
    cr_assert(fabs(s.rlhf_reward - 4) < 1e-6, "clipped reward %g", s.rlhf_reward);
    finish(&r);
}

/* PPO-ptx: the corpus loss is computed and logged (a fresh model: about log V);
 * a corpus shorter than a window is refused. */
Test(rl_ppo, ptx_mixes_in_the_corpus_loss) {
    Run r;
    PpoConfig c;
    small_config(&c);
    c.ptx_coef = 1, c.ptx_len = 16;
    Err err = {0};
    start(&r, &c, 17);
    int corpus[200];
    for (int i = 0; i < 200; i++) corpus[i] = 3 + (i * 7) % 60;
    cr_assert_eq(ppo_set_ptx(&r.p, corpus, 10, &err), RLHF_EINVAL);
    cr_assert_eq(ppo_set_ptx(&r.p, corpus, 200, &err), 0, "%s", err.msg);
    PpoStats s;
    float zero = 0;
    cr_assert_eq(ppo_step(&r.p, constant_reward, &zero, &s, &err), 0, "%s", err.msg);
    cr_assert(fabs(s.ptx_loss - log(tok_vocab_size(r.tok))) < 0.5, "ptx loss %g", s.ptx_loss);
    finish(&r);
}

/* LoRA (model/lora.h): the policy trains only its adapter and value head on a
 * frozen base, the reference is the same base with the adapter off (a view:
 * no second copy); KL starts at exactly 0, the known reward rises as in the
 * full fine-tuning test above, and the base's weights never change. */
Test(rl_ppo, lora_raises_a_known_reward_with_the_base_as_reference) {
    Tokenizer *tok = char_tokenizer();
    Model pol, ref;
    Err err = {0};
    tiny_model(&pol, tok_vocab_size(tok), 5);
    /* a base whose frozen (tied) unembedding can say something: sharper than a fresh init */
    for (size_t i = 0; i < pol.sizes[MODEL_T_EMB]; i++) pol.w.emb[i] *= 10;
    LoraConfig lc = {4, 8, 0, LORA_ALL};
    cr_assert_eq(model_lora_attach(&pol, &lc, 1, "base", NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(model_set_heads(&pol, MODEL_HEAD_VALUE, &err), 0, "%s", err.msg);
    cr_assert_eq(model_view(&ref, &pol, NULL, 0, &err), 0, "%s", err.msg);
    cr_assert_eq(ref.params, pol.params, "the reference shares the policy's weights");
    float *base = malloc(sizeof(float) * pol.n_params);
    memcpy(base, pol.params, sizeof(float) * pol.n_params);
    PpoConfig c;
    small_config(&c);
    c.kl_target = 3, c.kl_horizon = 64, c.beta = 0.05, c.lr = 1e-2f;
    set_prompts();
    Ppo p;
    cr_assert_eq(ppo_init(&p, &c, &pol, &ref, NULL, tok, prompts, 4, NULL, NULL, 0, 1, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(p.opt.n, pol.lora->n, "AdamW over the adapter and heads only");
    PpoStats s;
    double first = 0, last = 0;
    int steps = 40;
    for (int i = 0; i < steps; i++) {
        cr_assert_eq(ppo_step(&p, letters_reward, NULL, &s, &err), 0, "%s", err.msg);
        if (i == 0) cr_assert_eq(s.kl_full, 0.0, "step 0: the adapter starts at zero (KL %g)", s.kl_full);
        if (i < 3) first += s.score / 3;
        if (i >= steps - 5) last += s.score / 5;
    }
    cr_assert(last > first + 0.2, "reward %.3f -> %.3f", first, last);
    cr_assert(s.kl_full > 0, "the policy moved away from the base (KL %g)", s.kl_full);
    cr_assert(pol.grads == NULL, "no gradients for the frozen base");
    cr_assert_eq(memcmp(base, pol.params, sizeof(float) * pol.n_params), 0, "the base changed");
    ppo_free(&p);
    free(base);
    model_free(&ref);
    model_free(&pol);
    tok_free(tok);
}

/* A step's rollout decodes its prompts' answers as one batch (the Infer
 * holds them all) refilled as answers end, and each answer is what
 * ppo_sample gives its prompt and seeds alone, bit for bit (lr 0: the
 * update leaves the policy as it sampled). */
Test(rl_ppo, rollout_batch_equals_each_prompt_alone) {
    Run r;
    PpoConfig c;
    small_config(&c);
    c.prompts = 5, c.samples = 3, c.max_new = 24, c.minibatch = 15, c.lr = 0;
    c.temperature = 1.5f;
    Err err = {0};
    start(&r, &c, 11);
    cr_assert_geq(r.p.inf.max_streams, 15);
    PpoStats s;
    cr_assert_eq(ppo_step(&r.p, letters_reward, NULL, &s, &err), 0, "%s", err.msg);
    int lengths = 0;
    for (int i = 0; i < c.prompts; i++) {
        SampleResult alone[3];
        cr_assert_eq(ppo_sample(&r.p, &prompts[r.p.pick[i]], r.p.seeds + i * c.samples, alone, &err),
                     0, "%s", err.msg);
        for (int k = 0; k < c.samples; k++) {
            const SampleResult *got = &r.p.res[i * c.samples + k];
            cr_assert_eq(got->n_tokens, alone[k].n_tokens, "prompt %d answer %d", i, k);
            cr_assert_eq(memcmp(got->tokens, alone[k].tokens, sizeof(int) * (size_t)got->n_tokens), 0);
            cr_assert_eq(got->logprob, alone[k].logprob, "prompt %d answer %d", i, k);
            lengths |= 1 << (got->n_tokens % 24);
            sample_result_free(&alone[k]);
        }
    }
    cr_assert_geq(__builtin_popcount((unsigned)lengths), 3, "answers of several lengths");
    finish(&r);
}
