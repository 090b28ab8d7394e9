/* The LM head in chunks of positions (model.h, model_head): logits of a few
 * rows at a time, handed to the trainer's loss, and their gradient folded
 * into d lnf and d wcls before the next chunk overwrites them. */
#include "model/layers.h"
#include "model/model.h"
#include "model/parallel.h"

int model_head(const Model *m, RunState *rs, int grad, ModelHeadFn fn, void *ctx, Err *err) {
    if (rs->b <= 0) return err_set(err, RLHF_EINVAL, "LM head without a forward pass");
    if (grad && !model_train_grads(m)) return err_set(err, RLHF_EINVAL, "LM head gradient without gradients");
    int N = rs->b * rs->t, C = m->cfg.dim, V = m->cfg.vocab_size, rc = RLHF_OK;
    /* a later walk adds to the d lnf an earlier one left */
    int acc = rs->have_dlnf;
    ParScope ps;
    par_enter(&ps);
    for (int r0 = 0; r0 < N && !rc; r0 += rs->head_rows) {
        int R = N - r0 < rs->head_rows ? N - r0 : rs->head_rows;
        const float *x = rs->lnf + (size_t)r0 * C;
        matmul_forward(rs->head, x, m->w.wcls, R, C, V);
        rc = fn(ctx, rs->head, r0, R, V, err);
        if (rc || !grad) continue;
        matmul_backward(rs->dln + (size_t)r0 * C, m->g.wcls, rs->head, x, m->w.wcls, R, C, V, acc);
    }
    par_leave(&ps);
    if (!rc && grad) rs->have_dlnf = 1;
    return rc;
}
