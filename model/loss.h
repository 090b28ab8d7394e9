/* Losses and per-token statistics on the logits of a forward pass.
 * Functions named _backward turn logits rows IN PLACE into d loss/d logits
 * (the buffer model_backward reads), so call the forward statistics first. */
#ifndef RLHF_MODEL_LOSS_H
#define RLHF_MODEL_LOSS_H

#include "util/err.h"

/* Cross-entropy of targets (N) under logits (N,V) with a per-token mask
 * (NULL = all ones; weights are allowed, not just 0/1). Returns the sum of
 * mask·loss; *count (may be NULL) gets the sum of mask. losses (N, may be NULL)
 * receives each token's loss. Targets < 0 are skipped like mask 0. */
double loss_ce_forward(const float *logits, const int *targets, const float *mask, int N, int V,
                       float *losses, double *count);
/* Same as loss_ce_forward, and rewrites logits into the gradient of
 * scale·Σ mask·loss (scale is typically 1/count/accum). Rows with mask 0 become 0. */
double loss_ce_backward(float *logits, const int *targets, const float *mask, int N, int V,
                        float scale, double *count);

/* Per-token log p(target) and entropy of the distribution (either output may
 * be NULL). Row n's target is targets[n]; rows with target < 0 give 0. */
void loss_logprobs(const float *logits, const int *targets, int N, int V, float *logp,
                   float *entropy);
/* logits[R][V] /= temperature in place (nothing for 0 or 1): the sampling
 * distribution at that temperature, whose log-probs, entropy and KL belong
 * to the policy that sampled. */
void loss_logits_temper(float *logits, int R, int V, float temperature);
/* Rewrites logits into d/d logits of Σ_n dlogp[n]·logp[n] + dent[n]·entropy[n]
 * (either weight array may be NULL). */
void loss_logprobs_backward(float *logits, const int *targets, int N, int V, const float *dlogp,
                            const float *dent);

/* out = log softmax of R rows of V logits: x − (max + log Σ exp(x − max)),
 * the exponentials summed in double. */
void loss_log_softmax(const float *logits, int R, int V, float *out);
/* kl[n] = KL(p‖q) = Σ_i p_i (log p_i − log q_i) of R rows, p = softmax of the
 * logits (log p as loss_log_softmax gives it), log q rows of logq (a
 * loss_log_softmax output): summed in double, at least 0, and exactly 0 for
 * the logits q was made from. */
void loss_kl_exact(const float *logits, const float *logq, int R, int V, float *kl);

/* Ready-made callbacks for model_head (model.h) whose ctx is the struct
 * before them; row arrays are over the whole batch (N), and each chunk
 * reads and writes its rows from row0. */

/* Cross-entropy: adds Σ mask·loss to total and Σ mask to count; with grad the
 * chunk becomes the gradient of scale·Σ mask·loss (loss_ce_backward). */
typedef struct LossHeadCe {
    const int *targets;
    const float *mask; /* NULL: all ones */
    float scale;
    int grad;
    double total, count;
} LossHeadCe;
int loss_head_ce(void *ctx, float *logits, int row0, int R, int V, Err *err);

/* Log p(target) and entropy per row into logp and entropy (either may be
 * NULL); with dlogp or dent the chunk becomes d/d logits of
 * Σ dlogp·logp + dent·entropy (loss_logprobs_backward). */
typedef struct LossHeadLogp {
    const int *targets;
    float *logp, *entropy;
    const float *dlogp, *dent;
    float temperature; /* of the distribution (0 or 1: the logits as they are) */
} LossHeadLogp;
int loss_head_logp(void *ctx, float *logits, int row0, int R, int V, Err *err);

#endif
