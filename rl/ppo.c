/* The PPO loop (see ppo.h): rollout, scoring, per-token rewards and GAE, then
 * epochs of clipped minibatch updates. The arithmetic lives in ppo_math.c.
 * Under MPI (model/dist.h) each rank samples and scores its share of the
 * step's prompts and evaluates its share of the answers; the rollout is then
 * shared, so advantages, whitening and the KL controller see the whole batch
 * on every rank; each minibatch is split over the ranks and its gradients
 * summed. */
#include "rl/ppo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/dist.h"
#include "model/loss.h"
#include "util/progress.h"

#define PPO_MAGIC "PPOSTATE"
#define PPO_VERSION 1

void ppo_config_default(PpoConfig *c) {
    memset(c, 0, sizeof *c);
    SampleParams chat = sample_params_chat(); /* the decoding contract's length and temperature */
    c->prompts = 8, c->samples = 4, c->max_new = chat.max_tokens, c->temperature = chat.temperature;
    c->epochs = 4, c->minibatch = 16;
    c->lr = 1e-4f, c->value_lr = 1e-4f, c->grad_clip = 1.0f;
    c->cliprange = 0.2f, c->cliprange_value = 0.2f, c->gamma = 1.0f, c->lambda = 0.95f;
    c->vf_coef = 0.1f;
    c->beta = 0.02, c->kl_target = 0, c->kl_horizon = 10000;
    c->length_penalty = 1.0f, c->whiten_adv = 1;
    c->ptx_batch = 4, c->ptx_len = 64;
    c->value_mode = PPO_VALUE_HEAD, c->full_kl = 1;
}

int ppo_config_check(const PpoConfig *c, Err *err) {
    if (c->prompts < 1 || c->samples < 1 || c->max_new < 1 || c->epochs < 1 || c->minibatch < 1)
        return err_set(err, RLHF_EINVAL, "prompts, samples, max-new, epochs and minibatch must be >= 1");
    if (!(c->temperature > 0)) return err_set(err, RLHF_EINVAL, "temperature must be > 0");
    if (c->cliprange <= 0 || c->gamma < 0 || c->gamma > 1 || c->lambda < 0 || c->lambda > 1)
        return err_set(err, RLHF_EINVAL, "need clip > 0 and gamma, lambda in [0, 1]");
    if (c->beta < 0 || c->kl_target < 0 || c->kl_horizon <= 0)
        return err_set(err, RLHF_EINVAL, "need beta >= 0, kl target >= 0, kl horizon > 0");
    if (c->ptx_coef < 0 || c->ptx_batch < 1 || c->ptx_len < 2)
        return err_set(err, RLHF_EINVAL, "need ptx coef >= 0, ptx batch >= 1, ptx len >= 2");
    if (c->advantage < PPO_ADV_GAE || c->advantage > PPO_ADV_GRPO)
        return err_set(err, RLHF_EINVAL, "unknown advantage estimator %d", c->advantage);
    if (c->advantage != PPO_ADV_GAE && c->samples < 2)
        return err_set(err, RLHF_EINVAL, "RLOO and GRPO compare the answers to one prompt: need samples >= 2");
    if (c->value_mode != PPO_VALUE_HEAD && c->value_mode != PPO_VALUE_MODEL)
        return err_set(err, RLHF_EINVAL, "unknown value mode %d", c->value_mode);
    return RLHF_OK;
}

const char *ppo_warn_text(int bit) {
    switch (bit) {
    case PPO_WARN_ENTROPY: return "entropy collapsed below a fifth of its start: the policy is becoming deterministic";
    case PPO_WARN_KL: return "KL is over twice its target: beta cannot hold the policy near the reference";
    case PPO_WARN_LENGTH: return "mean answer length has doubled or halved since the start: the reward may favour length";
    case PPO_WARN_SAME: return "over half the answers repeat another answer of the batch: mode collapse";
    case PPO_WARN_NOISE: return "entropy has more than doubled since the start: the policy drifts toward noise (reward hacking? lower --lr)";
    default: return "unknown warning";
    }
}

uint64_t ppo_prompts_hash(const PpoPrompt *p, int n) {
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < n; i++)
        for (int j = -1; j < p[i].n; j++) {
            h ^= (uint64_t)(uint32_t)(j < 0 ? p[i].n : p[i].ids[j]);
            h *= 1099511628211ULL;
        }
    return h;
}

int ppo_value_from_rm(Model *m, Err *err) {
    if (!(m->heads & MODEL_HEAD_REWARD))
        return err_set(err, RLHF_EINVAL, "a value model is made from a reward model (reward head missing)");
    int rc = model_set_heads(m, m->heads | MODEL_HEAD_VALUE, err);
    if (rc) return rc;
    memcpy(m->w.value, m->w.reward, sizeof(float) * (size_t)(m->cfg.dim + 1));
    return model_set_heads(m, MODEL_HEAD_VALUE, err);
}

static int same_shape(const Config *a, const Config *b) { return memcmp(a, b, sizeof *a) == 0; }

void ppo_free(Ppo *p) {
    adamw_free(&p->opt);
    adamw_free(&p->vopt);
    infer_free(&p->inf);
    model_runstate_free(&p->rs);
    model_runstate_free(&p->rs_ref);
    model_runstate_free(&p->rs_val);
    for (int i = 0; p->ex && i < p->N; i++) seq_example_free(&p->ex[i]);
    for (int i = 0; p->res && i < p->N; i++) sample_result_free(&p->res[i]);
    void *bufs[] = {p->ex, p->res, p->scores, p->tokens, p->lens, p->nprompt, p->targets,
                    p->old_logp, p->ref_logp, p->old_v, p->adv, p->ret, p->ent, p->klf,
                    p->rew, p->flat, p->flat2, p->mb_tokens, p->mb_targets, p->order,
                    p->mb_dv, p->lsm, p->seeds, p->pick,
                    p->ptx_x, p->ptx_y, p->arow, p->g_tg, p->g_lp, p->g_ent, p->g_klf,
                    p->g_old, p->g_adv, p->g_ref, p->g_dlogp};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    memset(p, 0, sizeof *p);
}

static int restore(Ppo *p, const void *state, size_t len, Err *err) {
    PpoState st;
    if (len < sizeof st) return err_set(err, RLHF_EFORMAT, "no PPO state to resume (%zu bytes)", len);
    memcpy(&st, state, sizeof st);
    if (memcmp(st.magic, PPO_MAGIC, 8) != 0) return err_set(err, RLHF_EFORMAT, "not a PPO checkpoint (no PPO state to resume)");
    if (st.version != PPO_VERSION)
        return err_set(err, RLHF_EVERSION, "PPO state version %u, this program reads %u", st.version, PPO_VERSION);
    if ((int)st.value_mode != p->c.value_mode)
        return err_set(err, RLHF_EINVAL, "the run used --value %s; resume it with the same",
                       st.value_mode == PPO_VALUE_MODEL ? "rm" : "head");
    if (st.prompts_hash != ppo_prompts_hash(p->prompts, p->n_prompts))
        return err_set(err, RLHF_EINVAL,
                       "the training prompts changed since this run started (split, store or template); "
                       "start a new run with --force");
    size_t nv = p->value ? model_train_n(p->value) : 0;
    if (st.value_params != nv || len != sizeof st + nv * 3 * sizeof(float))
        return err_set(err, RLHF_EFORMAT, "the saved value model does not match (%llu floats, %zu expected)",
                       (unsigned long long)st.value_params, nv);
    if (nv) {
        const float *f = (const float *)((const char *)state + sizeof st);
        memcpy(model_train_params(p->value), f, nv * sizeof(float));
        memcpy(p->vopt.m, f + nv, nv * sizeof(float));
        memcpy(p->vopt.v, f + 2 * nv, nv * sizeof(float));
        p->vopt.step = st.value_opt_step;
    }
    p->st = st;
    memcpy(p->rng.s, st.rng, sizeof st.rng);
    p->kl.beta = st.beta;
    return RLHF_OK;
}

int ppo_init(Ppo *p, const PpoConfig *c, Model *policy, Model *ref, Model *value,
             const Tokenizer *tok, const PpoPrompt *prompts, int n_prompts, AdamW *opt,
             const void *state, size_t state_len, uint64_t seed, Err *err) {
    memset(p, 0, sizeof *p);
    int rc = ppo_config_check(c, err);
    if (rc) return rc;
    p->c = *c;
    p->policy = policy, p->ref = ref, p->tok = tok, p->prompts = prompts, p->n_prompts = n_prompts;
    p->value = c->value_mode == PPO_VALUE_MODEL ? value : NULL;
    const Config *pc = &policy->cfg;
    int V = pc->vocab_size;
    rc = model_require_policy(policy, "the policy", err);
    if (rc) return rc;
    if (ref->cfg.vocab_size != V)
        return err_set(err, RLHF_EINVAL, "the reference's vocabulary (%d) differs from the policy's (%d)",
                       ref->cfg.vocab_size, V);
    if ((rc = tok_check_vocab(tok, V, err))) return rc;
    if (c->value_mode == PPO_VALUE_MODEL) {
        if (!value || !(value->heads & MODEL_HEAD_VALUE))
            return err_set(err, RLHF_EINVAL, "--value rm needs a value model (an RM with a value head)");
        if (value->cfg.vocab_size != V)
            return err_set(err, RLHF_EINVAL, "the value model's vocabulary (%d) differs from the policy's (%d)",
                           value->cfg.vocab_size, V);
    } else if (!(policy->heads & MODEL_HEAD_VALUE) &&
               (rc = model_set_heads(policy, policy->heads | MODEL_HEAD_VALUE, err))) {
        return rc;
    }
    if (n_prompts < 1) return err_set(err, RLHF_EINVAL, "no training prompts");
    int maxp = 0;
    for (int i = 0; i < n_prompts; i++) {
        if (prompts[i].n < 1 || prompts[i].n >= pc->seq_len)
            return err_set(err, RLHF_EINVAL, "prompt %d is %d tokens; the context holds %d", i,
                           prompts[i].n, pc->seq_len);
        if (prompts[i].n > maxp) maxp = prompts[i].n;
    }
    p->T = maxp + c->max_new + 1 < pc->seq_len ? maxp + c->max_new + 1 : pc->seq_len;
    p->N = c->prompts * c->samples;
    int N = p->N, T = p->T, MB = c->minibatch < N ? c->minibatch : N;
    p->c.minibatch = MB;
    if (c->ptx_len > pc->seq_len) p->c.ptx_len = pc->seq_len;
    /* optimizers */
    if (opt && opt->n) {
        if (opt->n != model_train_n(policy))
            return err_set(err, RLHF_EFORMAT, "the optimizer state does not match the policy");
        p->opt = *opt;
        memset(opt, 0, sizeof *opt);
    } else if ((rc = adamw_create(&p->opt, model_train_n(policy), err))) {
        goto fail;
    }
    p->opt.weight_decay = 0; /* decay would pull the policy off the reference for no reason */
    if ((rc = model_grads_alloc(policy, err))) goto fail;
    if (p->value) {
        if ((rc = adamw_create(&p->vopt, model_train_n(p->value), err)) || (rc = model_grads_alloc(p->value, err)))
            goto fail;
        p->vopt.weight_decay = 0;
    }
    /* state */
    p->kl.beta = c->beta, p->kl.target = c->kl_target, p->kl.horizon = c->kl_horizon;
    if (state) {
        if ((rc = restore(p, state, state_len, err))) goto fail;
    } else {
        memcpy(p->st.magic, PPO_MAGIC, 8);
        p->st.version = PPO_VERSION;
        p->st.value_mode = (uint32_t)c->value_mode;
        p->st.prompts_hash = ppo_prompts_hash(prompts, n_prompts);
        rng_seed(&p->rng, seed ^ 0x5050f00dULL);
    }
    /* activations: one RunState per distinct shape, and the value model's */
    int RB = MB > c->ptx_batch ? MB : c->ptx_batch, RT = T > p->c.ptx_len ? T : p->c.ptx_len;
    if ((rc = model_runstate_create(&p->rs, pc, RB, RT, err))) goto fail;
    if (!same_shape(&ref->cfg, pc) && (rc = model_runstate_create(&p->rs_ref, &ref->cfg, MB, T, err))) goto fail;
    /* the value model's own (its evaluation pass is kept beside the policy's) */
    if (p->value && (rc = model_runstate_create(&p->rs_val, &p->value->cfg, MB, T, err))) goto fail;
    /* the rollout's answers decode as one batch, refilled as they end, as
     * many at once as the step has (the most this rank can have) */
    int share = (c->prompts + dist_size() - 1) / dist_size() * c->samples;
    if ((rc = infer_create(&p->inf, policy, infer_batch_streams(pc, c->samples, share), err)))
        goto fail;
    size_t NT = (size_t)N * T, MT = (size_t)MB * T;
    p->ex = calloc((size_t)N, sizeof *p->ex);
    p->res = calloc((size_t)N, sizeof *p->res);
    p->scores = malloc(sizeof(float) * (size_t)N);
    p->tokens = malloc(sizeof(int) * NT), p->targets = malloc(sizeof(int) * NT);
    p->lens = malloc(sizeof(int) * (size_t)N), p->nprompt = malloc(sizeof(int) * (size_t)N);
    float **f[] = {&p->old_logp, &p->ref_logp, &p->old_v, &p->adv, &p->ret, &p->ent, &p->klf,
                   &p->rew, &p->flat, &p->flat2};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) *f[i] = calloc(NT, sizeof(float));
    p->mb_tokens = malloc(sizeof(int) * MT), p->mb_targets = malloc(sizeof(int) * MT);
    p->order = malloc(sizeof(int) * (size_t)N);
    p->mb_dv = malloc(sizeof(float) * MT);
    p->arow = malloc(sizeof(int) * MT), p->g_tg = malloc(sizeof(int) * MT);
    float **g[] = {&p->g_lp, &p->g_ent, &p->g_klf, &p->g_old, &p->g_adv, &p->g_ref, &p->g_dlogp};
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) *g[i] = malloc(sizeof(float) * MT);
    p->seeds = malloc(sizeof(uint64_t) * (size_t)N);
    p->pick = malloc(sizeof(int) * (size_t)c->prompts);
    if (c->full_kl) p->lsm = malloc(sizeof(float) * (size_t)MB * c->max_new * V);
    if (!p->ex || !p->res || !p->scores || !p->tokens || !p->targets || !p->lens || !p->nprompt ||
        !p->rew || !p->flat2 || !p->old_logp || !p->ref_logp || !p->old_v || !p->adv || !p->ret ||
        !p->ent || !p->klf || !p->flat || !p->mb_tokens || !p->mb_targets || !p->order ||
        !p->mb_dv || !p->seeds || !p->pick || !p->arow ||
        !p->g_tg || !p->g_lp || !p->g_ent || !p->g_klf || !p->g_old || !p->g_adv || !p->g_ref ||
        !p->g_dlogp ||
        (c->full_kl && !p->lsm)) {
        rc = err_set(err, RLHF_ENOMEM, "PPO: out of memory for the rollout buffers");
        goto fail;
    }
    return RLHF_OK;
fail:
    ppo_free(p);
    return rc;
}

int ppo_set_ptx(Ppo *p, const int *tokens, int64_t n, Err *err) {
    if (p->c.ptx_coef <= 0) return err_set(err, RLHF_EINVAL, "a ptx corpus needs ptx coef > 0");
    if (n <= p->c.ptx_len + 1)
        return err_set(err, RLHF_EINVAL, "the ptx corpus has %lld tokens; windows need %d",
                       (long long)n, p->c.ptx_len + 2);
    size_t sz = sizeof(int) * (size_t)p->c.ptx_batch * p->c.ptx_len;
    free(p->ptx_x), free(p->ptx_y);
    p->ptx_x = malloc(sz), p->ptx_y = malloc(sz);
    if (!p->ptx_x || !p->ptx_y) return err_set(err, RLHF_ENOMEM, "out of memory");
    p->ptx = tokens, p->n_ptx = n;
    return RLHF_OK;
}

int ppo_state_bytes(const Ppo *p, void **out, size_t *len, Err *err) {
    size_t nv = p->value ? model_train_n(p->value) : 0;
    *len = sizeof(PpoState) + nv * 3 * sizeof(float);
    char *b = malloc(*len);
    if (!b) return err_set(err, RLHF_ENOMEM, "out of memory");
    PpoState st = p->st;
    memcpy(st.rng, p->rng.s, sizeof st.rng);
    st.beta = p->kl.beta;
    st.value_params = nv;
    st.value_opt_step = nv ? p->vopt.step : 0;
    memcpy(b, &st, sizeof st);
    if (nv) {
        float *f = (float *)(b + sizeof st);
        memcpy(f, model_train_params(p->value), nv * sizeof(float));
        memcpy(f + nv, p->vopt.m, nv * sizeof(float));
        memcpy(f + 2 * nv, p->vopt.v, nv * sizeof(float));
    }
    *out = b;
    return RLHF_OK;
}

/* ---- one step --------------------------------------------------------------------- */

/* The decoding contract every command shares (sample_params_chat at the
 * config's temperature and max_new), on the policy's current weights. */
static SampleParams rollout_params(Ppo *p) {
    if (p->inf_stale) { /* the decoding copy of the policy's matrices, as updated */
        infer_refresh(&p->inf);
        p->inf_stale = 0;
    }
    SampleParams sp = sample_params_chat(); /* gen's stops: the answer ends where gen's would */
    sp.temperature = p->c.temperature;
    sp.max_tokens = p->c.max_new;
    return sp;
}

int ppo_sample(Ppo *p, const PpoPrompt *pr, const uint64_t *seeds, SampleResult *res, Err *err) {
    SampleParams sp = rollout_params(p);
    return sample_generate_batch(&p->inf, p->tok, pr->ids, pr->n, p->c.samples, &sp, seeds, res, err);
}

/* This rank's prompts of the step [at, hi) as a feed: prompt i's answers go
 * to res and ex from i * samples on, each joined with its prompt as soon as
 * its answers are in. */
typedef struct {
    Ppo *p;
    PpoStats *s;
    int at, hi;
} Rollout;

static int rollout_next(void *ctx, SamplePrompt *sp, const uint64_t **seeds, int *tag, Err *err) {
    Rollout *r = ctx;
    (void)err;
    if (r->at == r->hi) return RLHF_OK;
    const PpoPrompt *pr = &r->p->prompts[r->p->pick[r->at]];
    *sp = (SamplePrompt){pr->ids, pr->n, r->p->c.samples};
    *seeds = r->p->seeds + (size_t)r->at * r->p->c.samples;
    *tag = r->at++;
    return RLHF_OK;
}

static int rollout_done(void *ctx, int i, SampleResult *res, int k, Err *err) {
    Rollout *r = ctx;
    Ppo *p = r->p;
    const PpoPrompt *pr = &p->prompts[p->pick[i]];
    memcpy(p->res + (size_t)i * k, res, sizeof *res * (size_t)k);
    int rc = RLHF_OK;
    for (int j = 0; j < k && !rc; j++) {
        rc = seq_join(pr->ids, pr->n, res[j].tokens, res[j].n_tokens, p->T, &p->ex[i * k + j], err);
        r->s->rollout_tokens += res[j].n_tokens;
    }
    return rc;
}

/* Samples prompts × samples answers and joins each with its prompt: every
 * rank draws every prompt and seed (the streams stay equal), then decodes
 * its own prompts' answers as one batch refilled as answers end, each answer
 * what ppo_sample gives its prompt and seed. */
static int rollout(Ppo *p, PpoStats *s, Err *err) {
    const PpoConfig *c = &p->c;
    for (int i = 0; i < p->N; i++) {
        seq_example_free(&p->ex[i]);
        sample_result_free(&p->res[i]);
    }
    for (int i = 0; i < c->prompts; i++) {
        p->pick[i] = (int)rng_below(&p->rng, (uint64_t)p->n_prompts);
        for (int k = 0; k < c->samples; k++) p->seeds[i * c->samples + k] = rng_u64(&p->rng);
    }
    int lo, hi, bad;
    dist_slice(c->prompts, &lo, &hi);
    SampleParams sp = rollout_params(p);
    Rollout r = {p, s, lo, hi};
    SampleFeed f = {&r, rollout_next, rollout_done};
    return sample_generate_feed(&p->inf, p->tok, &sp, &f, &bad, err);
}

/* Under MPI: answers [a0, a1) were sampled and scored here; afterwards every
 * rank holds every answer (tokens, finish, score). Each piece is summed over
 * ranks with zeros in the others' places, which moves it exactly. */
static int share_rollout(Ppo *p, int a0, int a1, Err *err) {
    int N = p->N;
    enum { H = 5 };
    double *h = calloc((size_t)N * H, sizeof(double)), *tk = NULL;
    if (!h) return err_set(err, RLHF_ENOMEM, "out of memory");
    for (int i = a0; i < a1; i++) {
        double *x = h + (size_t)i * H;
        x[0] = p->ex[i].n, x[1] = p->ex[i].n_prompt, x[2] = p->res[i].n_tokens;
        x[3] = p->res[i].finish, x[4] = p->scores[i];
    }
    int rc = RLHF_OK;
    if (dist_allreduce_double(h, (size_t)N * H)) rc = err_set(err, RLHF_EIO, "MPI all-reduce failed");
    size_t total = 0;
    for (int i = 0; i < N && !rc; i++) total += (size_t)h[i * H] + (size_t)h[i * H + 2];
    if (!rc && !(tk = calloc(total + 1, sizeof(double)))) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    size_t o = 0;
    for (int i = 0; i < N && !rc; i++) {
        int n = (int)h[i * H], nt = (int)h[i * H + 2];
        if (i >= a0 && i < a1) {
            for (int t = 0; t < n; t++) tk[o + t] = p->ex[i].tokens[t];
            for (int t = 0; t < nt; t++) tk[o + n + t] = p->res[i].tokens[t];
        }
        o += (size_t)n + nt;
    }
    if (!rc && dist_allreduce_double(tk, total)) rc = err_set(err, RLHF_EIO, "MPI all-reduce failed");
    o = 0;
    for (int i = 0; i < N && !rc; i++) {
        int n = (int)h[i * H], nt = (int)h[i * H + 2];
        if (i < a0 || i >= a1) {
            SeqExample *e = &p->ex[i];
            SampleResult *r = &p->res[i];
            e->tokens = malloc(sizeof(int) * (size_t)(n ? n : 1));
            r->tokens = malloc(sizeof(int) * (size_t)(nt ? nt : 1));
            if (!e->tokens || !r->tokens) {
                rc = err_set(err, RLHF_ENOMEM, "out of memory");
                break;
            }
            for (int t = 0; t < n; t++) e->tokens[t] = (int)tk[o + t];
            for (int t = 0; t < nt; t++) r->tokens[t] = (int)tk[o + n + t];
            e->n = n, e->n_prompt = (int)h[i * H + 1];
            r->n_tokens = nt, r->finish = (int)h[i * H + 3];
            p->scores[i] = (float)h[i * H + 4];
        }
        o += (size_t)n + nt;
    }
    free(h);
    free(tk);
    return rc;
}

/* Sums the rows of the per-token arrays each rank filled for its answers
 * [a0, a1) (the others' rows zeroed first), so every rank has them all. */
static int share_rows(Ppo *p, int T, int a0, int a1, Err *err) {
    float *arr[] = {p->old_logp, p->ref_logp, p->old_v, p->ent, p->klf};
    for (size_t k = 0; k < sizeof arr / sizeof arr[0]; k++) {
        memset(arr[k], 0, sizeof(float) * (size_t)a0 * T);
        memset(arr[k] + (size_t)a1 * T, 0, sizeof(float) * (size_t)(p->N - a1) * T);
        if (dist_allreduce_sum(arr[k], (size_t)p->N * T)) return err_set(err, RLHF_EIO, "MPI all-reduce failed");
    }
    return RLHF_OK;
}

/* The rows of one LM-head chunk in evaluate_batch: log-probs (and entropies)
 * of the targets, and for the exact KL the reference's log-softmax of each
 * row or the policy's KL against it. The rows are the answer positions
 * (p->arow), so row k of the walk is the minibatch's k-th answer row, its
 * row in p->lsm. */
typedef struct {
    Ppo *p;
    const int *tg;
    float *logp, *ent, *klf; /* klf NULL: the reference's pass */
} EvalHead;

static int eval_rows(void *ctx, float *logits, int row0, int R, int V, Err *err) {
    EvalHead *h = ctx;
    Ppo *p = h->p;
    (void)err;
    loss_logits_temper(logits, R, V, p->c.temperature);
    if (!p->c.full_kl) {
        if (h->klf) memset(h->klf + row0, 0, sizeof(float) * (size_t)R);
    } else if (!h->klf) {
        loss_log_softmax(logits, R, V, p->lsm + (size_t)row0 * V);
    } else {
        loss_kl_exact(logits, p->lsm + (size_t)row0 * V, R, V, h->klf + row0);
    }
    loss_logprobs(logits, h->tg + row0, R, V, h->logp + row0, h->ent ? h->ent + row0 : NULL);
    return RLHF_OK;
}

/* The answer positions of n rows of targets (those >= 0) into p->arow, their
 * targets into p->g_tg; returns how many. */
static int answer_rows(Ppo *p, const int *tg, int n) {
    int k = 0;
    for (int r = 0; r < n; r++)
        if (tg[r] >= 0) p->arow[k] = r, p->g_tg[k++] = tg[r];
    return k;
}

/* The minibatch of rows rows[0..b), gathered in that order into mb_tokens
 * and mb_targets (b rows of T). */
static void gather_rows(Ppo *p, const int *rows, int b, int T) {
    for (int i = 0; i < b; i++) {
        memcpy(p->mb_tokens + (size_t)i * T, p->tokens + (size_t)rows[i] * T, sizeof(int) * (size_t)T);
        memcpy(p->mb_targets + (size_t)i * T, p->targets + (size_t)rows[i] * T, sizeof(int) * (size_t)T);
    }
}

/* The position in the (N, T) arrays of gathered answer position k. */
static inline size_t row_pos(const Ppo *p, const int *rows, int T, int k) {
    return (size_t)rows[p->arow[k] / T] * T + (size_t)(p->arow[k] % T);
}

/* to[row_pos(k)] = from[k]: a gathered output back to its positions */
static void scatter(const Ppo *p, const int *rows, int T, int n, const float *from, float *to) {
    for (int k = 0; k < n; k++) to[row_pos(p, rows, T, k)] = from[k];
}

/* Old log-probs, entropies and values under the policy, log-probs under the
 * reference, and the exact KL per token, by the training forward pass, for
 * the minibatch of rows rows[0..b). The LM head runs on the answer positions
 * only (the others' log-probs, entropies and KL are 0, as for a target of
 * -1). With keep, the policy's pass (in rs) and the value model's (in
 * rs_val) keep what a backward needs: the update of the same rows in the
 * same order starts from them (update_minibatch), as nothing changes the
 * weights in between. */
static int evaluate_rows(Ppo *p, const int *rows, int b, int T, int keep, Err *err) {
    int rc, fl = keep ? 0 : MODEL_FWD_NOGRAD;
    RunState *rsr = p->rs_ref.mem ? &p->rs_ref : &p->rs, *rsv = p->value ? &p->rs_val : &p->rs;
    gather_rows(p, rows, b, T);
    const int *tok = p->mb_tokens;
    int n = answer_rows(p, p->mb_targets, b * T);
    float *outs[] = {p->ref_logp, p->old_logp, p->ent, p->klf};
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++)
        for (int r = 0; r < b; r++) memset(outs[i] + (size_t)rows[r] * T, 0, sizeof(float) * (size_t)T);
    EvalHead ref = {.p = p, .tg = p->g_tg, .logp = p->g_lp};
    if ((rc = model_forward(p->ref, rsr, tok, b, T, MODEL_FWD_NOGRAD, err))) return rc;
    if ((rc = model_head_rows(p->ref, rsr, 0, p->arow, n, eval_rows, &ref, err))) return rc;
    scatter(p, rows, T, n, p->g_lp, p->ref_logp);
    EvalHead pol = {.p = p, .tg = p->g_tg, .logp = p->g_lp, .ent = p->g_ent, .klf = p->g_klf};
    if ((rc = model_forward(p->policy, &p->rs, tok, b, T, fl, err))) return rc;
    if ((rc = model_head_rows(p->policy, &p->rs, 0, p->arow, n, eval_rows, &pol, err))) return rc;
    scatter(p, rows, T, n, p->g_lp, p->old_logp);
    scatter(p, rows, T, n, p->g_ent, p->ent);
    scatter(p, rows, T, n, p->g_klf, p->klf);
    if (p->value && (rc = model_forward(p->value, rsv, tok, b, T, fl, err))) return rc;
    for (int r = 0; r < b; r++)
        memcpy(p->old_v + (size_t)rows[r] * T, rsv->value + (size_t)r * T, sizeof(float) * (size_t)T);
    p->kept = keep ? b : 0;
    return RLHF_OK;
}

/* evaluate_rows for the answers order[a0..a1), a minibatch at a time; with
 * keep, the first minibatch last, its passes kept. */
static int evaluate_batch(Ppo *p, int T, int a0, int a1, int keep, Err *err) {
    int MB = p->c.minibatch, rc = RLHF_OK;
    for (int c0 = keep ? a0 + MB : a0; c0 < a1 && !rc; c0 += MB)
        rc = evaluate_rows(p, p->order + c0, a1 - c0 < MB ? a1 - c0 : MB, T, 0, err);
    if (!rc && keep && a1 > a0) rc = evaluate_rows(p, p->order + a0, a1 - a0 < MB ? a1 - a0 : MB, T, 1, err);
    return rc;
}

/* First answer row (the logits row predicting the first answer token) and count. */
static inline int ans_start(const Ppo *p, int b) { return p->nprompt[b] - 1; }
static inline int ans_len(const Ppo *p, int b) { return p->lens[b] - p->nprompt[b]; }

/* Scores → per-token rewards → GAE; fills the rollout statistics. */
static void advantages(Ppo *p, int T, PpoStats *s) {
    const PpoConfig *c = &p->c;
    int N = p->N;
    double beta = p->kl.beta, sum_score = 0, kl = 0, klf = 0, ent = 0, ntok = 0, len = 0, eos = 0, rr = 0;
    for (int b = 0; b < N; b++) sum_score += p->scores[b];
    for (int b = 0; b < N; b++)
        if (p->res[b].finish == SAMPLE_LENGTH) p->scores[b] -= c->length_penalty;
    if (c->whiten_scores) ppo_whiten(p->scores, N, 0);
    if (c->score_clip > 0)
        for (int b = 0; b < N; b++)
            p->scores[b] = fmaxf(-c->score_clip, fminf(c->score_clip, p->scores[b]));
    int n_flat = 0;
    double adv_sum = 0;
    for (int b = 0; b < N; b++) {
        int s0 = ans_start(p, b), na = ans_len(p, b);
        size_t o = (size_t)b * T + s0;
        double rowkl = 0;
        for (int t = 0; t < na; t++) {
            double d = (double)p->old_logp[o + t] - p->ref_logp[o + t];
            rowkl += d;
            klf += p->klf[o + t];
            ent += p->ent[o + t];
            p->rew[o + t] = (float)(-beta * d);
        }
        if (na > 0) p->rew[o + na - 1] += p->scores[b];
        if (c->advantage == PPO_ADV_GAE)
            ppo_gae(p->rew + o, p->old_v + o, na, c->gamma, c->lambda, p->adv + o, p->ret + o);
        /* RLOO's reward: the score less β·KL of the whole answer; GRPO's: the score */
        p->flat2[b] = (float)(p->scores[b] - (c->advantage == PPO_ADV_RLOO ? beta * rowkl : 0));
        kl += rowkl;
        rr += p->scores[b] - beta * rowkl;
        ntok += na;
        len += p->res[b].n_tokens;
        eos += p->res[b].finish != SAMPLE_LENGTH;
        n_flat += na;
    }
    if (c->advantage != PPO_ADV_GAE) {
        /* one advantage per answer, from its group's rewards, on every token */
        if (c->advantage == PPO_ADV_RLOO) ppo_rloo_advantages(p->flat2, N / c->samples, c->samples, p->flat);
        else ppo_grpo_advantages(p->flat2, N / c->samples, c->samples, p->flat);
        for (int b = 0; b < N; b++)
            for (int t = 0; t < ans_len(p, b); t++) {
                size_t o = (size_t)b * T + ans_start(p, b) + t;
                p->adv[o] = p->flat[b], p->ret[o] = 0;
                adv_sum += p->flat[b];
            }
        s->explained_var = NAN;
        goto stats;
    }
    for (int b = 0; b < N; b++)
        for (int t = 0; t < ans_len(p, b); t++) adv_sum += p->adv[(size_t)b * T + ans_start(p, b) + t];
    /* explained variance of the values for the returns, then whitening */
    int k = 0;
    for (int b = 0; b < N; b++)
        for (int t = 0; t < ans_len(p, b); t++) {
            size_t o = (size_t)b * T + ans_start(p, b) + t;
            p->flat[k] = p->old_v[o], p->flat2[k++] = p->ret[o];
        }
    s->explained_var = ppo_explained_variance(p->flat, p->flat2, n_flat);
    if (c->whiten_adv) {
        k = 0;
        for (int b = 0; b < N; b++)
            for (int t = 0; t < ans_len(p, b); t++) p->flat[k++] = p->adv[(size_t)b * T + ans_start(p, b) + t];
        ppo_whiten(p->flat, n_flat, 0);
        k = 0;
        for (int b = 0; b < N; b++)
            for (int t = 0; t < ans_len(p, b); t++) p->adv[(size_t)b * T + ans_start(p, b) + t] = p->flat[k++];
    }
stats:
    s->score = sum_score / N;
    s->kl = kl / N;
    s->kl_full = klf / N;
    s->entropy = ent / N;
    s->entropy_tok = ntok > 0 ? ent / ntok : 0;
    s->rlhf_reward = rr / N;
    s->beta = beta;
    s->len_mean = len / N;
    s->eos_frac = eos / N;
    s->adv_mean = n_flat ? adv_sum / n_flat : 0;
}

static double dup_share(const Ppo *p) {
    int dup = 0;
    for (int i = 1; i < p->N; i++)
        for (int j = 0; j < i; j++)
            if (p->res[i].n_tokens == p->res[j].n_tokens &&
                !memcmp(p->res[i].tokens, p->res[j].tokens, sizeof(int) * (size_t)p->res[i].n_tokens)) {
                dup++;
                break;
            }
    return (double)dup / p->N;
}

/* The PPO-ptx term: next-token loss on random corpus windows, added to the gradients. */
static int ptx_backward(Ppo *p, double *loss, Err *err) {
    int B = p->c.ptx_batch, L = p->c.ptx_len, lo, hi;
    dist_slice(B, &lo, &hi); /* under MPI this rank's windows; every rank draws them all */
    for (int b = 0; b < B; b++) {
        int64_t off = (int64_t)rng_below(&p->rng, (uint64_t)(p->n_ptx - L - 1));
        if (b < lo || b >= hi) continue;
        memcpy(p->ptx_x + (size_t)(b - lo) * L, p->ptx + off, sizeof(int) * (size_t)L);
        memcpy(p->ptx_y + (size_t)(b - lo) * L, p->ptx + off + 1, sizeof(int) * (size_t)L);
    }
    if (hi == lo) return RLHF_OK;
    LossHeadCe ce = {.targets = p->ptx_y, .scale = p->c.ptx_coef / (float)(B * L), .grad = 1};
    int rc = model_forward(p->policy, &p->rs, p->ptx_x, hi - lo, L, 0, err);
    if (!rc) rc = model_head(p->policy, &p->rs, 1, loss_head_ce, &ce, err);
    if (rc) return rc;
    *loss += ce.total / (B * L);
    return model_backward(p->policy, &p->rs, p->ptx_x, NULL, NULL, NULL, err);
}

static void add_stats(PpoLossStats *to, const PpoLossStats *s) {
    to->loss += s->loss, to->clipped += s->clipped, to->approxkl += s->approxkl, to->count += s->count;
}

/* The clipped value loss of minibatch rows rows[0..b) on values v (rows T
 * apart), its gradient (times coef / ntok) into mb_dv. */
static void value_losses(Ppo *p, const int *rows, int b, int T, const float *v, float coef,
                         PpoLossStats *vf) {
    for (int i = 0; i < b; i++) {
        int r = rows[i], s0 = ans_start(p, r), na = ans_len(p, r);
        size_t mo = (size_t)i * T + s0, ro = (size_t)r * T + s0;
        ppo_value_loss(v + mo, p->old_v + ro, p->ret + ro, na, p->c.cliprange_value, coef,
                       p->mb_dv + mo, vf);
    }
}

/* One chunk of the policy's head in an update: log-probs of the answer
 * positions k0..k0+R (p->arow), their clipped policy loss (and GRPO's KL
 * term), and d loss/d logits in place. */
typedef struct {
    Ppo *p;
    float scale;
    PpoLossStats *pg;
} UpdateHead;

static int update_rows(void *ctx, float *logits, int k0, int R, int V, Err *err) {
    UpdateHead *u = ctx;
    Ppo *p = u->p;
    const PpoConfig *c = &p->c;
    (void)err;
    loss_logits_temper(logits, R, V, c->temperature);
    loss_logprobs(logits, p->g_tg + k0, R, V, p->g_lp + k0, NULL);
    for (int k = k0; k < k0 + R; k++) {
        ppo_policy_loss(p->g_lp + k, p->g_old + k, p->g_adv + k, 1, c->cliprange, u->scale,
                        p->g_dlogp + k, u->pg);
        if (c->advantage == PPO_ADV_GRPO) /* GRPO: β·KL as a loss term, not in the reward */
            u->pg->loss += p->kl.beta * ppo_kl_k3(p->g_lp + k, p->g_ref + k, 1, (float)p->kl.beta,
                                                  u->scale, p->g_dlogp + k);
    }
    loss_logprobs_backward(logits, p->g_tg + k0, R, V, p->g_dlogp + k0, NULL);
    loss_logits_temper(logits, R, V, c->temperature); /* d/d(x/T) → d/dx */
    return RLHF_OK;
}

/* One minibatch of rows order[0..b): policy (and value head) update, then the
 * separate value model's. Under MPI this rank takes rows [lo, hi) of it; the
 * scale stays the whole minibatch's and the gradients are summed. The
 * forward passes evaluate_rows kept for these rows (p->kept) are used, not
 * run again. */
static int update_minibatch(Ppo *p, const int *rows, int b, int T, PpoLossStats *pg,
                            PpoLossStats *vf, double *ptx_loss, PpoStats *s, Err *err) {
    const PpoConfig *c = &p->c;
    int rc, lo, hi, kept = p->kept == b; /* evaluate_rows left these rows' passes (one process) */
    p->kept = 0;
    int ntok = 0;
    for (int i = 0; i < b; i++) ntok += ans_len(p, rows[i]);
    if (ntok == 0) return RLHF_OK;
    dist_slice(b, &lo, &hi);
    rows += lo, b = hi - lo;
    size_t MT = (size_t)b * T;
    gather_rows(p, rows, b, T);
    float scale = 1.0f / ntok;
    /* the answer positions, with what the loss needs of each */
    int n = answer_rows(p, p->mb_targets, (int)MT);
    for (int k = 0; k < n; k++) {
        size_t o = row_pos(p, rows, T, k);
        p->g_old[k] = p->old_logp[o], p->g_adv[k] = p->adv[o], p->g_ref[k] = p->ref_logp[o];
    }
    model_zero_grad(p->policy);
    if (b > 0 && !kept && (rc = model_forward(p->policy, &p->rs, p->mb_tokens, b, T, 0, err))) return rc;
    memset(p->mb_dv, 0, sizeof(float) * MT);
    PpoLossStats mpg = {0}, mvf = {0};
    int critic = c->advantage == PPO_ADV_GAE;
    if (!p->value && critic) value_losses(p, rows, b, T, p->rs.value, c->vf_coef * scale, &mvf);
    /* one walk of the head: each chunk's log-probs, the losses on them and
     * their gradient at once */
    UpdateHead u = {.p = p, .scale = scale, .pg = &mpg};
    if (b > 0 && ((rc = model_head_rows(p->policy, &p->rs, 1, p->arow, n, update_rows, &u, err)) ||
                  (rc = model_backward(p->policy, &p->rs, p->mb_tokens, NULL, NULL,
                                       p->value ? NULL : p->mb_dv, err))))
        return rc;
    s->update_tokens += (int64_t)MT;
    if (p->ptx) {
        if ((rc = ptx_backward(p, ptx_loss, err))) return rc;
        s->update_tokens += (int64_t)c->ptx_batch * c->ptx_len;
    }
    if (dist_size() > 1 && dist_allreduce_sum(model_train_grads(p->policy), model_train_n(p->policy)))
        return err_set(err, RLHF_EIO, "MPI all-reduce failed");
    /* the global norm decides on every rank alike: a non-finite one skips the update */
    if (!isfinite(model_grad_clip(p->policy, c->grad_clip))) {
        s->skipped++;
        return RLHF_OK;
    }
    adamw_step(&p->opt, p->policy, c->lr);
    s->updates++;
    add_stats(pg, &mpg), add_stats(vf, &mvf);
    if (!p->value || !critic) return RLHF_OK;
    RunState *rsv = &p->rs_val;
    model_zero_grad(p->value);
    if (b > 0) {
        if (!kept && (rc = model_forward(p->value, rsv, p->mb_tokens, b, T, 0, err))) return rc;
        memset(p->mb_dv, 0, sizeof(float) * MT);
        mvf = (PpoLossStats){0};
        value_losses(p, rows, b, T, rsv->value, scale, &mvf);
        if ((rc = model_backward(p->value, rsv, p->mb_tokens, NULL, NULL, p->mb_dv, err))) return rc;
    }
    if (dist_size() > 1 && dist_allreduce_sum(model_train_grads(p->value), model_train_n(p->value)))
        return err_set(err, RLHF_EIO, "MPI all-reduce failed");
    if (!isfinite(model_grad_clip(p->value, c->grad_clip))) {
        s->skipped++;
        return RLHF_OK;
    }
    adamw_step(&p->vopt, p->value, c->value_lr);
    add_stats(vf, &mvf);
    return RLHF_OK;
}

int ppo_step(Ppo *p, PpoRewardFn reward, void *ctx, PpoStats *s, Err *err) {
    const PpoConfig *c = &p->c;
    memset(s, 0, sizeof *s);
    double t0 = now_seconds();
    int rc = rollout(p, s, err);
    if (rc) return rc;
    double t1 = now_seconds();
    /* this rank's answers: those of its prompts (all of them on one process) */
    int a0, a1;
    dist_slice(c->prompts, &a0, &a1);
    a0 *= c->samples, a1 *= c->samples;
    if (a1 > a0 && (rc = reward(ctx, p->ex + a0, p->res + a0, a1 - a0, p->scores + a0, err))) return rc;
    for (int b = a0; b < a1; b++)
        if (!isfinite(p->scores[b])) return err_set(err, RLHF_EINVAL, "the reward of answer %d is %g", b, p->scores[b]);
    if (dist_size() > 1 && (rc = share_rollout(p, a0, a1, err))) return rc;
    double t2 = now_seconds();
    int T = seq_pack(p->ex, p->N, p->tokens, p->lens);
    for (int b = 0; b < p->N; b++) p->nprompt[b] = p->ex[b].n_prompt;
    seq_answer_targets(p->tokens, p->lens, p->nprompt, p->N, T, p->targets);
    if (dist_size() > 1) dist_slice(p->N, &a0, &a1); /* evaluation: a share of the answers */
    /* epoch 0's order drawn first (nothing between draws from the RNG): the
     * evaluation leaves its first minibatch's passes for the update */
    int keep = dist_size() == 1;
    for (int i = 0; i < p->N; i++) p->order[i] = i;
    if (keep) rng_shuffle(&p->rng, p->order, (size_t)p->N, sizeof(int));
    if ((rc = evaluate_batch(p, T, a0, a1, keep, err))) return rc;
    if (dist_size() > 1 && (rc = share_rows(p, T, a0, a1, err))) return rc;
    advantages(p, T, s);
    s->dup_frac = dup_share(p);
    /* epochs of shuffled minibatches */
    PpoLossStats pg = {0}, vf = {0};
    double ptx_loss = 0;
    int n_mb = 0;
    for (int e = 0; e < c->epochs; e++) {
        if (e > 0 || !keep) rng_shuffle(&p->rng, p->order, (size_t)p->N, sizeof(int));
        for (int c0 = 0; c0 < p->N; c0 += c->minibatch) {
            int b = p->N - c0 < c->minibatch ? p->N - c0 : c->minibatch;
            if ((rc = update_minibatch(p, p->order + c0, b, T, &pg, &vf, &ptx_loss, s, err))) return rc;
            n_mb++;
        }
    }
    if (dist_size() > 1) {
        double v[11] = {pg.loss, pg.clipped, pg.approxkl, pg.count, vf.loss, vf.clipped, vf.approxkl,
                        vf.count, ptx_loss, (double)s->rollout_tokens, (double)s->update_tokens};
        if (dist_allreduce_double(v, 11)) return err_set(err, RLHF_EIO, "MPI all-reduce failed");
        pg = (PpoLossStats){v[0], v[1], v[2], v[3]}, vf = (PpoLossStats){v[4], v[5], v[6], v[7]};
        ptx_loss = v[8], s->rollout_tokens = (int64_t)v[9], s->update_tokens = (int64_t)v[10];
    }
    s->pg_loss = pg.count ? pg.loss / pg.count : 0;
    s->pg_clipfrac = pg.count ? pg.clipped / pg.count : 0;
    s->approxkl = pg.count ? pg.approxkl / pg.count : 0;
    s->vf_loss = vf.count ? vf.loss / vf.count : 0;
    s->vf_clipfrac = vf.count ? vf.clipped / vf.count : 0;
    s->ptx_loss = p->ptx ? ptx_loss / n_mb : NAN;
    ppo_kl_update(&p->kl, s->kl, p->N);
    p->inf_stale = 1; /* the policy moved */
    double t3 = now_seconds();
    s->t_rollout = t1 - t0, s->t_score = t2 - t1, s->t_update = t3 - t2;
    /* the known failure signs, against the first step */
    if (p->st.step == 0) p->st.ent0 = s->entropy_tok, p->st.len0 = s->len_mean;
    if (p->st.ent0 > 0 && s->entropy_tok < 0.2 * p->st.ent0) s->warn |= PPO_WARN_ENTROPY;
    if (c->kl_target > 0 && s->kl > 2 * c->kl_target) s->warn |= PPO_WARN_KL;
    if (p->st.len0 > 0 && (s->len_mean > 2 * p->st.len0 || s->len_mean < 0.5 * p->st.len0))
        s->warn |= PPO_WARN_LENGTH;
    if (s->dup_frac > 0.5) s->warn |= PPO_WARN_SAME;
    if (p->st.ent0 > 0 && s->entropy_tok > 2 * p->st.ent0) s->warn |= PPO_WARN_NOISE;
    s->step = ++p->st.step;
    return RLHF_OK;
}
