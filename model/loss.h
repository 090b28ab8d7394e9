/* Losses and per-token statistics on the logits of a forward pass.
 * Functions named _backward turn logits rows IN PLACE into d loss/d logits
 * (the buffer model_backward reads), so call the forward statistics first. */
#ifndef RLHF_MODEL_LOSS_H
#define RLHF_MODEL_LOSS_H

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
/* Rewrites logits into d/d logits of Σ_n dlogp[n]·logp[n] + dent[n]·entropy[n]
 * (either weight array may be NULL). */
void loss_logprobs_backward(float *logits, const int *targets, int N, int V, const float *dlogp,
                            const float *dent);

#endif
