/* Training arithmetic on a Model's flat gradient array: AdamW (decoupled
 * weight decay on matrices only), clipping by global norm, the warm-up +
 * cosine learning-rate schedule. Gradient accumulation: zero the gradients,
 * run forward/backward on each micro-batch with the loss scaled by 1/accum
 * (backward adds), then clip and step once. */
#ifndef RLHF_MODEL_OPTIM_H
#define RLHF_MODEL_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "util/err.h"

typedef struct AdamW {
    size_t n;       /* == model n_params */
    float *m, *v;   /* first and second moments, owned */
    int64_t step;   /* updates done; the bias correction uses it */
    float beta1, beta2, eps, weight_decay;
} AdamW;

/* Zeroed moments for n parameters; betas 0.9/0.95, eps 1e-8, weight decay 0.1. */
int adamw_create(AdamW *o, size_t n, Err *err);
void adamw_free(AdamW *o);
/* One update of m->params from m->grads with learning rate lr. */
void adamw_step(AdamW *o, Model *m, float lr);

/* Global L2 norm of the gradients. */
double model_grad_norm(const Model *m);
/* Scales the gradients so their global norm is at most max_norm (<= 0: no
 * clipping); returns the norm before clipping. */
double model_grad_clip(Model *m, double max_norm);
/* Linear warm-up from 0 to lr_max over `warmup` steps, then cosine decay to
 * lr_min at step `total` (and lr_min after). step counts from 0. */
float lr_schedule(int64_t step, int64_t warmup, int64_t total, float lr_max, float lr_min);

#endif
