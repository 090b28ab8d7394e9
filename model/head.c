/* The LM head in chunks of positions (model.h, model_head): logits of a few
 * rows at a time, handed to the trainer's loss, and their gradient folded
 * into d lnf and d wcls before the next chunk overwrites them. */
#include <string.h>

#include "model/layers.h"
#include "model/model.h"
#include "model/parallel.h"

/* rows NULL: all N rows in place; else the listed ones, gathered per chunk */
static int head_walk(const Model *m, RunState *rs, int grad, const int *rows, int n,
                     ModelHeadFn fn, void *ctx, Err *err) {
    if (rs->b <= 0) return err_set(err, RLHF_EINVAL, "LM head without a forward pass");
    if (grad && !model_train_grads(m)) return err_set(err, RLHF_EINVAL, "LM head gradient without gradients");
    int N = rs->b * rs->t, C = m->cfg.dim, V = m->cfg.vocab_size, rc = RLHF_OK;
    for (int i = 0; rows && i < n; i++)
        if (rows[i] < 0 || rows[i] >= N)
            return err_set(err, RLHF_EINVAL, "LM head row %d is outside the batch (%d rows)", rows[i], N);
    /* a later walk adds to the d lnf an earlier one left; rows not listed get none */
    int acc = rs->have_dlnf;
    if (grad && rows && !acc) memset(rs->dln, 0, sizeof(float) * (size_t)N * C);
    float *gx = rs->head_x, *gdx = rs->head_x + (size_t)rs->head_rows * C;
    ParScope ps;
    par_enter(&ps);
    for (int r0 = 0; r0 < n && !rc; r0 += rs->head_rows) {
        int R = n - r0 < rs->head_rows ? n - r0 : rs->head_rows;
        const float *x = rs->lnf + (size_t)r0 * C;
        if (rows) {
            for (int i = 0; i < R; i++)
                memcpy(gx + (size_t)i * C, rs->lnf + (size_t)rows[r0 + i] * C, sizeof(float) * C);
            x = gx;
        }
        matmul_forward(rs->head, x, m->w.wcls, R, C, V);
        rc = fn(ctx, rs->head, r0, R, V, err);
        if (rc || !grad) continue;
        if (!rows) {
            matmul_backward(rs->dln + (size_t)r0 * C, m->g.wcls, rs->head, x, m->w.wcls, R, C, V, acc);
            continue;
        }
        matmul_backward(gdx, m->g.wcls, rs->head, x, m->w.wcls, R, C, V, 0);
        for (int i = 0; i < R; i++) {
            float *d = rs->dln + (size_t)rows[r0 + i] * C;
            const float *s = gdx + (size_t)i * C;
            for (int j = 0; j < C; j++) d[j] += s[j];
        }
    }
    par_leave(&ps);
    if (!rc && grad) rs->have_dlnf = 1;
    return rc;
}

int model_head(const Model *m, RunState *rs, int grad, ModelHeadFn fn, void *ctx, Err *err) {
    return head_walk(m, rs, grad, NULL, rs->b * rs->t, fn, ctx, err);
}

int model_head_rows(const Model *m, RunState *rs, int grad, const int *rows, int n, ModelHeadFn fn,
                    void *ctx, Err *err) {
    return head_walk(m, rs, grad, rows, n, fn, ctx, err);
}
