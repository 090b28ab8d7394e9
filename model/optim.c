/* AdamW, gradient clipping and the learning-rate schedule. */
#include "model/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int adamw_create(AdamW *o, size_t n, Err *err) {
    memset(o, 0, sizeof *o);
    o->m = calloc(n, sizeof(float));
    o->v = calloc(n, sizeof(float));
    if (!o->m || !o->v) {
        adamw_free(o);
        return err_set(err, RLHF_ENOMEM, "out of memory for optimizer state");
    }
    o->n = n;
    o->beta1 = 0.9f;
    o->beta2 = 0.95f;
    o->eps = 1e-8f;
    o->weight_decay = 0.1f;
    return RLHF_OK;
}

void adamw_free(AdamW *o) {
    free(o->m);
    free(o->v);
    memset(o, 0, sizeof *o);
}

void adamw_step(AdamW *o, Model *m, float lr) {
    o->step++;
    float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    float c1 = 1.0f / (1.0f - powf(b1, (float)o->step));
    float c2 = 1.0f / (1.0f - powf(b2, (float)o->step));
    size_t off = 0;
    for (int t = 0; t < MODEL_NT; t++) {
        size_t n = m->sizes[t];
        float wd = model_tensor_is_matrix(t) ? o->weight_decay : 0.0f;
        float *p = m->params + off, *g = m->grads + off, *mm = o->m + off, *vv = o->v + off;
        for (size_t i = 0; i < n; i++) {
            float gi = g[i];
            float mi = b1 * mm[i] + (1.0f - b1) * gi;
            float vi = b2 * vv[i] + (1.0f - b2) * gi * gi;
            mm[i] = mi;
            vv[i] = vi;
            p[i] -= lr * ((mi * c1) / (sqrtf(vi * c2) + eps) + wd * p[i]);
        }
        off += n;
    }
}

double model_grad_norm(const Model *m) {
    double s = 0.0;
    const float *g = m->grads;
    for (size_t i = 0; i < m->n_params; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

double model_grad_clip(Model *m, double max_norm) {
    double norm = model_grad_norm(m);
    if (max_norm > 0 && norm > max_norm) {
        float s = (float)(max_norm / (norm + 1e-6));
        for (size_t i = 0; i < m->n_params; i++) m->grads[i] *= s;
    }
    return norm;
}

float lr_schedule(int64_t step, int64_t warmup, int64_t total, float lr_max, float lr_min) {
    if (warmup > 0 && step < warmup) return lr_max * (float)(step + 1) / (float)warmup;
    if (step >= total) return lr_min;
    double span = (double)(total - warmup);
    double frac = span > 0 ? (double)(step - warmup) / span : 1.0;
    return lr_min + 0.5f * (lr_max - lr_min) * (float)(1.0 + cos(M_PI * frac));
}
