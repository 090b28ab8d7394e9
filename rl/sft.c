/* SFT: encoding demonstrations, one optimizer step, the held-out loss (sft.h). */
#include "rl/sft.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/dist.h"
#include "model/loss.h"
#include "rm/export.h"

void sft_set_free(SftSet *s) {
    for (int i = 0; i < s->n; i++)
        seq_example_free(&s->ex[i]);
    free(s->ex);
    free(s->lens);
    memset(s, 0, sizeof *s);
}

static int set_alloc(SftSet *s, int n, Err *err) {
    memset(s, 0, sizeof *s);
    s->ex = calloc((size_t)n + 1, sizeof *s->ex);
    s->lens = calloc((size_t)n + 1, sizeof *s->lens);
    if (!s->ex || !s->lens) return err_set(err, RLHF_ENOMEM, "out of memory");
    return RLHF_OK;
}

int sft_encode(const SftData *d, const Tokenizer *t, const char *template, int max_len,
               double val_frac, SftSet *train, SftSet *val, Err *err) {
    int rc = set_alloc(train, d->n, err);
    if (!rc) rc = set_alloc(val, d->n, err);
    for (int i = 0; i < d->n && !rc; i++) {
        const SftPair *p = &d->p[i];
        SftSet *s = rm_prompt_in_val(p->prompt, val_frac) ? val : train;
        SeqExample *e = &s->ex[s->n];
        rc = seq_encode(t, p->rendered ? "{prompt}" : template, p->prompt, p->answer, 1, max_len, e,
                        err);
        if (rc) {
            err_prefix(err, "example %d: ", i + 1);
            break;
        }
        if (e->n - e->n_prompt < 1) {
            seq_example_free(e);
            continue;
        }
        s->cut += e->cut || e->cut_answer;
        s->n_tokens += e->n - e->n_prompt;
        s->lens[s->n++] = e->n;
    }
    if (rc) sft_set_free(train), sft_set_free(val);
    return rc;
}

int sft_trainer_init(SftTrainer *tr, Model *m, AdamW *opt, int micro, double clip, Err *err) {
    memset(tr, 0, sizeof *tr);
    tr->m = m, tr->opt = opt, tr->micro = micro, tr->clip = clip;
    int T = m->cfg.seq_len;
    int rc = model_runstate_create(&tr->rs, &m->cfg, micro, T, err);
    if (!rc) rc = rl_batch_create(&tr->batch, micro, T, err);
    if (!rc && !m->grads) rc = model_grads_alloc(m, err);
    if (rc) sft_trainer_free(tr);
    return rc;
}

void sft_trainer_free(SftTrainer *tr) {
    model_runstate_free(&tr->rs);
    rl_batch_free(&tr->batch);
}

int sft_grads(SftTrainer *tr, const SftSet *set, const int *idx, int n, double *loss,
              int64_t *tokens, Err *err) {
    int64_t count = 0;
    for (int i = 0; i < n; i++)
        count += set->ex[idx[i]].n - set->ex[idx[i]].n_prompt;
    double total = 0;
    /* under MPI this rank's share of the examples; count stays global, so
     * the summed gradients are those of one process */
    int lo, hi;
    dist_slice(n, &lo, &hi);
    for (int s = lo; s < hi; s += tr->micro) {
        int b = hi - s < tr->micro ? hi - s : tr->micro, nt;
        int T = rl_batch_fill(&tr->batch, set->ex, idx + s, b, &nt);
        LossHeadCe ce = {.targets = tr->batch.targets, .scale = (float)(1.0 / (double)count),
                         .grad = 1};
        int rc = model_forward(tr->m, &tr->rs, tr->batch.tokens, b, T, 0, err);
        if (!rc) rc = model_head(tr->m, &tr->rs, 1, loss_head_ce, &ce, err);
        if (!rc) rc = model_backward(tr->m, &tr->rs, tr->batch.tokens, NULL, NULL, NULL, err);
        if (rc) return rc;
        total += ce.total;
    }
    if (dist_size() > 1 && (dist_allreduce_sum(model_train_grads(tr->m), model_train_n(tr->m)) ||
                            dist_allreduce_double(&total, 1)))
        return err_set(err, RLHF_EIO, "MPI all-reduce failed");
    *loss = total / (double)count;
    if (tokens) *tokens = count;
    return RLHF_OK;
}

int sft_step(SftTrainer *tr, const SftSet *set, const int *idx, int n, float lr, double *loss,
             double *gnorm, int64_t *tokens, Err *err) {
    model_zero_grad(tr->m);
    int rc = sft_grads(tr, set, idx, n, loss, tokens, err);
    if (rc) return rc;
    *gnorm = model_grad_clip(tr->m, tr->clip);
    adamw_step(tr->opt, tr->m, lr);
    return RLHF_OK;
}

int sft_eval(SftTrainer *tr, const SftSet *set, double *loss, Err *err) {
    double total = 0, count = 0;
    int idx[1024], lo, hi;
    dist_slice(set->n, &lo, &hi);
    for (int s = lo, b; s < hi; s += b) {
        b = hi - s < tr->micro ? hi - s : tr->micro;
        if (b > 1024) b = 1024;
        for (int i = 0; i < b; i++)
            idx[i] = s + i;
        int T = rl_batch_fill(&tr->batch, set->ex, idx, b, NULL);
        LossHeadCe ce = {.targets = tr->batch.targets};
        int rc = model_forward(tr->m, &tr->rs, tr->batch.tokens, b, T, MODEL_FWD_NOGRAD, err);
        if (!rc) rc = model_head(tr->m, &tr->rs, 0, loss_head_ce, &ce, err);
        if (rc) return rc;
        total += ce.total;
        count += ce.count;
    }
    double red[2] = {total, count};
    if (dist_size() > 1 && dist_allreduce_double(red, 2))
        return err_set(err, RLHF_EIO, "MPI all-reduce failed");
    total = red[0], count = red[1];
    *loss = count > 0 ? total / count : NAN;
    return RLHF_OK;
}
