/* The arithmetic of PPO as pure functions on plain arrays, so each piece can be
 * checked against hand-computed values: GAE, the clipped policy and value
 * losses with their gradients, the KL controller of Ziegler et al. (2019),
 * whitening, explained variance and the exact KL between two next-token
 * distributions. Nothing here allocates. */
#ifndef RLHF_RL_PPO_MATH_H
#define RLHF_RL_PPO_MATH_H

/* Generalised advantage estimation over one answer of n tokens:
 * delta_t = r_t + gamma·v_{t+1} − v_t (v_n = 0: the episode ends),
 * A_t = delta_t + gamma·lambda·A_{t+1}; ret_t = A_t + v_t. */
void ppo_gae(const float *rewards, const float *values, int n, float gamma, float lambda,
             float *adv, float *ret);

/* Sums over the tokens of a minibatch, for the logged averages. */
typedef struct PpoLossStats {
    double loss;     /* Σ per-token loss */
    double clipped;  /* tokens where the clipped term was chosen */
    double approxkl; /* Σ 0.5·(logp − old)² */
    double count;    /* tokens */
} PpoLossStats;

/* Clipped surrogate per token: ratio = exp(logp − old),
 * loss = max(−A·ratio, −A·clip(ratio, 1−eps, 1+eps)).
 * dlogp[i] = scale · d loss_i / d logp_i (0 where the clipped term is chosen).
 * Adds to *s. */
void ppo_policy_loss(const float *logp, const float *old_logp, const float *adv, int n, float eps,
                     float scale, float *dlogp, PpoLossStats *s);

/* Clipped value loss per token: vc = old + clip(v − old, ±eps),
 * loss = 0.5·max((v − ret)², (vc − ret)²); eps <= 0: unclipped.
 * dv[i] = scale · d loss_i / d v_i. Adds to *s (approxkl unused). */
void ppo_value_loss(const float *v, const float *old_v, const float *ret, int n, float eps,
                    float scale, float *dv, PpoLossStats *s);

/* β: fixed when target <= 0; else Ziegler et al.'s proportional controller:
 * err = clip(kl/target − 1, ±0.2), β ← β·(1 + err·n_steps/horizon). */
typedef struct PpoKlCtl {
    double beta, target, horizon;
} PpoKlCtl;
void ppo_kl_update(PpoKlCtl *k, double kl, int n_steps);

/* x ← (x − mean)/std over n values (+ mean back when keep_mean); n < 2: unchanged. */
void ppo_whiten(float *x, int n, int keep_mean);
/* 1 − Var(ret − v)/Var(ret); NAN when Var(ret) is 0. */
double ppo_explained_variance(const float *v, const float *ret, int n);

/* Critic-free advantages over groups of k answers to one prompt (answers
 * g·k .. g·k+k−1 of r): RLOO (Ahmadian et al. 2024, TRL's RLOOTrainer),
 * A_i = r_i − mean of the group's other k−1 rewards; GRPO (Shao et al.
 * 2024, TRL's GRPOTrainer), A_i = (r_i − mean) / (std + 1e-4) with the
 * group's sample std (n − 1, torch's default); 0 for a group of one. */
void ppo_rloo_advantages(const float *r, int n_groups, int k, float *adv);
void ppo_grpo_advantages(const float *r, int n_groups, int k, float *adv);

/* GRPO's KL term per token, the k3 estimator of KL(π‖π_ref) (Schulman's
 * approximation, as TRL): kl = exp(ref − logp) − (ref − logp) − 1 >= 0;
 * adds beta·scale·d kl / d logp to dlogp[i] and returns Σ kl. */
double ppo_kl_k3(const float *logp, const float *ref_logp, int n, float beta, float scale,
                 float *dlogp);

#endif
