/* PPO for language models (Ziegler et al. 2019; InstructGPT, Ouyang et al.
 * 2022): one ppo_step is a rollout batch (prompts × samples decoded through
 * sample_generate_batch, the prompt prefilled once), a score per answer from
 * the caller's reward callback (an RM in the CLI, a known rule in tests),
 * per-token rewards score − β·(log π − log π_ref), GAE, then several epochs of
 * clipped policy and value updates on minibatches, optionally mixed with the
 * pretraining loss (PPO-ptx).
 *
 * Ownership: Ppo borrows the policy, the reference, the value model (when
 * separate), the tokenizer and the prompts; they must outlive it. It owns the
 * optimizers, the sampler and its scratch. Nothing here prints. */
#ifndef RLHF_RL_PPO_H
#define RLHF_RL_PPO_H

#include <stddef.h>
#include <stdint.h>

#include "model/infer.h"
#include "model/model.h"
#include "model/optim.h"
#include "model/sample.h"
#include "model/seq.h"
#include "model/tokenizer.h"
#include "rl/ppo_math.h"
#include "util/err.h"
#include "util/rng.h"

enum { PPO_VALUE_HEAD = 0, PPO_VALUE_MODEL = 1 };
/* How advantages are estimated: GAE on a learned value (PPO), or from the
 * other answers to the same prompt without a critic (RLOO: leave-one-out
 * baseline, KL in the reward; GRPO: group-normalised, KL as a loss term). */
enum { PPO_ADV_GAE = 0, PPO_ADV_RLOO = 1, PPO_ADV_GRPO = 2 };

typedef struct PpoConfig {
    int prompts;     /* prompts per rollout batch (8) */
    int samples;     /* answers per prompt, decoded as one batch (4) */
    int max_new;     /* answer tokens at most (32) */
    float temperature; /* sampling temperature (1) */
    int epochs;      /* passes over the rollout batch (4) */
    int minibatch;   /* answers per minibatch (16) */
    float lr, value_lr, grad_clip; /* 1e-4, 1e-4, 1 */
    float cliprange, cliprange_value; /* 0.2, 0.2 */
    float gamma, lambda;              /* 1, 0.95 */
    float vf_coef;   /* value loss weight with a value head on the policy (0.1) */
    double beta, kl_target, kl_horizon; /* 0.02; target 0: fixed β; horizon 10000 */
    float length_penalty; /* subtracted from the score of an answer cut at max_new (1) */
    int whiten_scores;    /* whiten the batch's scores (0) */
    float score_clip;     /* clip scores to ±x after whitening (0: off) */
    int whiten_adv;       /* whiten advantages over the batch (1) */
    float ptx_coef;       /* PPO-ptx: weight of the next-token loss on the corpus (0: off) */
    int ptx_batch;        /* corpus windows per minibatch (4) */
    int ptx_len;          /* tokens per window (64, at most the context) */
    int value_mode;       /* PPO_VALUE_HEAD or PPO_VALUE_MODEL */
    int full_kl;          /* also the exact full-vocabulary KL per token (1) */
    int advantage;        /* PPO_ADV_GAE (default), PPO_ADV_RLOO or PPO_ADV_GRPO */
} PpoConfig;

/* InstructGPT-like defaults (the numbers in the comments above). */
void ppo_config_default(PpoConfig *c);
int ppo_config_check(const PpoConfig *c, Err *err);

/* One prompt of the training set: ids from <s> on (the templated prompt). */
typedef struct PpoPrompt {
    int *ids;
    int n;
} PpoPrompt;

/* Scores n answers (ex[i]: prompt + answer as trained on; res[i]: the sample,
 * with its text and finish reason) into scores[i]. */
typedef int (*PpoRewardFn)(void *ctx, const SeqExample *ex, const SampleResult *res, int n,
                           float *scores, Err *err);

/* One step's figures (TRL's names in the comments; per-answer sums are
 * averaged over the batch). */
typedef struct PpoStats {
    int64_t step;
    double score;       /* objective/scores: the raw reward (before penalties) */
    double rlhf_reward; /* objective/rlhf_reward: score − β·kl (after the length penalty) */
    double kl;          /* objective/kl: Σ_t (log π − log π_ref), sampled estimate */
    double kl_full;     /* objective/kl_full: Σ_t KL(π(·|t) ‖ π_ref(·|t)) over the vocabulary */
    double entropy;     /* objective/entropy: Σ_t entropy of π(·|t) */
    double entropy_tok; /* per token */
    double beta;        /* β used for this batch */
    double pg_loss, pg_clipfrac, approxkl; /* loss/policy_avg, policy/clipfrac_avg, policy/approxkl_avg */
    double vf_loss, vf_clipfrac, explained_var; /* loss/value_avg, val/clipfrac_avg, val/explained_variance */
    double ptx_loss;    /* loss/ptx_avg (NAN when off) */
    double len_mean;    /* answer tokens */
    double eos_frac;    /* share of answers that end (</s> or a stop string), not cut at max_new */
    double dup_frac;    /* share of answers equal to an earlier answer in the batch */
    double adv_mean;    /* before whitening */
    double t_rollout, t_score, t_update; /* seconds */
    int64_t rollout_tokens, update_tokens;
    int updates; /* minibatch updates of the policy applied */
    int skipped; /* minibatch updates skipped for a non-finite gradient norm */
    int warn;           /* PPO_WARN_* bits */
} PpoStats;

enum {
    PPO_WARN_ENTROPY = 1, /* per-token entropy below a fifth of the first step's */
    PPO_WARN_KL = 2,      /* KL above twice its target (adaptive β) */
    PPO_WARN_LENGTH = 4,  /* mean length doubled or halved since the first step */
    PPO_WARN_SAME = 8,    /* over half the answers repeat another answer of the batch */
    PPO_WARN_NOISE = 16,  /* per-token entropy above twice the first step's */
};
/* A sentence for one warning bit. */
const char *ppo_warn_text(int bit);

/* What resumes a run (saved inside the policy checkpoint's extra bytes, with
 * the value model's weights and moments after it when there is one). */
typedef struct PpoState {
    char magic[8];
    uint32_t version, value_mode;
    int64_t step, run_id;
    double beta, ent0, len0;
    uint64_t rng[4];
    uint64_t prompts_hash; /* of the prompts' token ids */
    char ref_sha[65];      /* the reference checkpoint */
    char pad[7];
    uint64_t value_params; /* floats of the value model that follow (0 with a head) */
    int64_t value_opt_step;
} PpoState;

typedef struct Ppo {
    PpoConfig c;
    Model *policy, *ref, *value; /* borrowed; value NULL with a value head */
    const Tokenizer *tok;
    const PpoPrompt *prompts;
    int n_prompts;
    const int *ptx; /* corpus tokens for PPO-ptx (borrowed), NULL when off */
    int64_t n_ptx;
    AdamW opt, vopt;
    PpoKlCtl kl;
    Rng rng;
    PpoState st;
    Infer inf;      /* samples the policy from its own copy of the matrices, */
    int inf_stale;  /* refreshed before the first sample after an update */
    RunState rs, rs_ref, rs_val; /* rs_ref / rs_val only when the config differs */
    int T;                       /* longest rollout: longest prompt + max_new, <= context */
    /* one rollout batch (N = prompts × samples answers) */
    int N;
    SeqExample *ex;
    SampleResult *res;
    float *scores;
    int *tokens, *lens, *nprompt, *targets; /* (N, T) packed; targets per seq.h */
    float *old_logp, *ref_logp, *old_v, *adv, *ret, *ent, *klf, *rew; /* (N, T) */
    float *flat, *flat2; /* (N·T) answer tokens gathered */
    /* minibatch scratch */
    int *mb_tokens, *mb_targets, *order;
    float *mb_dv, *lsm;
    int kept; /* rows of the minibatch whose forward passes evaluate_rows kept (0: none) */
    /* a batch's answer positions (its rows where targets >= 0), the only ones
     * whose logits are computed, and what the head needs of them, gathered */
    int *arow, *g_tg;
    float *g_lp, *g_ent, *g_klf, *g_old, *g_adv, *g_ref, *g_dlogp;
    uint64_t *seeds; /* (N) the step's answers' */
    int *pick;       /* (prompts) the step's prompts */
    int *ptx_x, *ptx_y;
} Ppo;

/* Prepares a run. opt: the policy's optimizer state to continue (moved into
 * Ppo; NULL or n == 0: fresh). state: a saved PpoState with the value model's
 * blob after it (NULL: a fresh run seeded by seed). Checks the models agree
 * (vocabulary, value head or model present) and that there are prompts. */
int ppo_init(Ppo *p, const PpoConfig *c, Model *policy, Model *ref, Model *value,
             const Tokenizer *tok, const PpoPrompt *prompts, int n_prompts, AdamW *opt,
             const void *state, size_t state_len, uint64_t seed, Err *err);
void ppo_free(Ppo *p);
/* Sets the PPO-ptx corpus (tokens borrowed; needs ptx_coef > 0 and > ptx_len tokens). */
int ppo_set_ptx(Ppo *p, const int *tokens, int64_t n, Err *err);

/* The samples answers of one rollout prompt, stream k with seeds[k], decoded
 * by the contract every command shares (sample_params_chat at the config's
 * temperature and max_new): what ppo_step samples. */
int ppo_sample(Ppo *p, const PpoPrompt *pr, const uint64_t *seeds, SampleResult *res, Err *err);
/* One rollout batch and its updates; fills *s. */
int ppo_step(Ppo *p, PpoRewardFn reward, void *ctx, PpoStats *s, Err *err);

/* The bytes to save as the checkpoint's extra (malloc'd; caller frees). */
int ppo_state_bytes(const Ppo *p, void **out, size_t *len, Err *err);

/* Turns a reward model into a value model (InstructGPT): the value head starts
 * as the reward head, which is then dropped. */
int ppo_value_from_rm(Model *m, Err *err);

/* A hash of the prompts' token ids (a resumed run must see the same prompts). */
uint64_t ppo_prompts_hash(const PpoPrompt *p, int n);

#endif
