/* DPO: pairs from ranked groups, the losses and their gradients, reference
 * log-probabilities and the training step (dpo.h). */
#include "rl/dpo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/loss.h"

static const char *const NAMES[] = {"sigmoid", "ipo", "hinge"};

int dpo_loss_type(const char *name) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, NAMES[i])) return i;
    return -1;
}

const char *dpo_loss_name(int type) { return type >= 0 && type < 3 ? NAMES[type] : "?"; }

/* log σ(x) without overflow */
static double log_sigmoid(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }
static double sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }

double dpo_pair_loss(int type, double beta, double smoothing, double pc, double pr, double rc,
                     double rr, double *dc, double *dr) {
    double h = (pc - pr) - (rc - rr), loss, dh;
    switch (type) {
    case DPO_IPO: {
        double d = h - 1 / (2 * beta);
        loss = d * d;
        dh = 2 * d;
        break;
    }
    case DPO_HINGE:
        loss = 1 - beta * h > 0 ? 1 - beta * h : 0;
        dh = 1 - beta * h > 0 ? -beta : 0;
        break;
    default: {
        double z = beta * h;
        loss = -(1 - smoothing) * log_sigmoid(z) - smoothing * log_sigmoid(-z);
        dh = beta * (-(1 - smoothing) * sigmoid(-z) + smoothing * sigmoid(z));
    }
    }
    *dc = dh, *dr = -dh;
    return loss;
}

void dpo_set_free(DpoSet *s) {
    for (int i = 0; i < s->n_ex; i++) seq_example_free(&s->ex[i]);
    free(s->ex), free(s->chosen), free(s->rejected), free(s->lens), free(s->ref);
    memset(s, 0, sizeof *s);
}

static int set_alloc(DpoSet *s, int n_ex, int64_t n_pairs, Err *err) {
    memset(s, 0, sizeof *s);
    s->ex = calloc((size_t)n_ex + 1, sizeof *s->ex);
    s->chosen = malloc(sizeof(int) * (size_t)(n_pairs + 1));
    s->rejected = malloc(sizeof(int) * (size_t)(n_pairs + 1));
    s->lens = malloc(sizeof(int) * (size_t)(n_pairs + 1));
    if (!s->ex || !s->chosen || !s->rejected || !s->lens)
        return err_set(err, RLHF_ENOMEM, "out of memory");
    return RLHF_OK;
}

int dpo_build(const PrefSet *s, const Tokenizer *t, const char *template, int max_len,
              DpoSet *train, DpoSet *val, Err *err) {
    int n_ex = 0;
    int64_t n_pairs = 0;
    for (int g = 0; g < s->n; g++) {
        n_ex += s->g[g].n;
        n_pairs += (int64_t)s->g[g].n * (s->g[g].n - 1) / 2;
    }
    int rc = set_alloc(train, n_ex, n_pairs, err);
    if (!rc) rc = set_alloc(val, n_ex, n_pairs, err);
    for (int gi = 0; gi < s->n && !rc; gi++) {
        const PrefGroup *g = &s->g[gi];
        DpoSet *d = g->val ? val : train;
        int base = d->n_ex;
        for (int i = 0; i < g->n && !rc; i++) {
            SeqExample *e = &d->ex[d->n_ex];
            rc = seq_encode(t, template, g->prompt, g->answers[i], 1, max_len, e, err);
            if (rc) {
                err_prefix(err, "preference group %d, answer %d: ", gi + 1, i + 1);
                break;
            }
            d->cut += e->cut || e->cut_answer;
            d->n_ex++;
        }
        for (int i = 0; i < g->n && !rc; i++)
            for (int j = 0; j < g->n; j++) {
                if (!(g->rank[i] > 0 && g->rank[j] > 0 && g->rank[i] < g->rank[j])) continue;
                const SeqExample *a = &d->ex[base + i], *b = &d->ex[base + j];
                d->chosen[d->n_pairs] = base + i;
                d->rejected[d->n_pairs] = base + j;
                d->lens[d->n_pairs] = a->n > b->n ? a->n : b->n;
                d->n_pairs++;
            }
    }
    if (rc) dpo_set_free(train), dpo_set_free(val);
    return rc;
}

int dpo_trainer_init(DpoTrainer *tr, Model *m, AdamW *opt, int micro, int type, double beta,
                     double smoothing, double clip, Err *err) {
    memset(tr, 0, sizeof *tr);
    tr->m = m, tr->opt = opt, tr->micro = micro, tr->type = type;
    tr->beta = beta, tr->smoothing = smoothing, tr->clip = clip;
    int T = m->cfg.seq_len, rc = RLHF_OK;
    tr->sums = malloc(sizeof(double) * 2 * (size_t)micro);
    tr->rows = malloc(sizeof(int) * 2 * (size_t)micro);
    if (!tr->sums || !tr->rows) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    if (!rc) rc = model_runstate_create(&tr->rs, &m->cfg, 2 * micro, T, err);
    if (!rc) rc = rl_batch_create(&tr->batch, 2 * micro, T, err);
    if (!rc && !m->grads) rc = model_grads_alloc(m, err);
    if (rc) dpo_trainer_free(tr);
    return rc;
}

void dpo_trainer_free(DpoTrainer *tr) {
    model_runstate_free(&tr->rs);
    rl_batch_free(&tr->batch);
    free(tr->sums), free(tr->rows);
    tr->sums = NULL, tr->rows = NULL;
}

/* Forward over examples rows[0..n) (log-probability sums into tr->sums). */
static int forward(DpoTrainer *tr, const SeqExample *ex, int n, int *T, Err *err) {
    *T = rl_batch_fill(&tr->batch, ex, tr->rows, n, NULL);
    int rc = model_forward(tr->m, &tr->rs, tr->batch.tokens, n, *T, MODEL_FWD_LOGITS, err);
    if (rc) return rc;
    loss_logprobs(tr->rs.logits, tr->batch.targets, n * *T, tr->m->cfg.vocab_size, tr->batch.buf,
                  NULL);
    seq_row_sums(tr->batch.buf, tr->batch.targets, n, *T, tr->sums);
    return RLHF_OK;
}

int dpo_reference(DpoTrainer *tr, DpoSet *set, Err *err) {
    free(set->ref);
    set->ref = malloc(sizeof(double) * (size_t)(set->n_ex + 1));
    if (!set->ref) return err_set(err, RLHF_ENOMEM, "out of memory");
    for (int s = 0, b; s < set->n_ex; s += b) {
        b = set->n_ex - s < 2 * tr->micro ? set->n_ex - s : 2 * tr->micro;
        for (int i = 0; i < b; i++) tr->rows[i] = s + i;
        int T, rc = forward(tr, set->ex, b, &T, err);
        if (rc) return rc;
        memcpy(set->ref + s, tr->sums, sizeof(double) * (size_t)b);
    }
    return RLHF_OK;
}

static double answer_len(const SeqExample *e) { return e->n - e->n_prompt > 0 ? e->n - e->n_prompt : 1; }

/* The pairs idx[0..n) in micro-batches; with scale > 0 also the backward
 * pass of scale·Σ loss (gradients accumulate). */
static int pass(DpoTrainer *tr, const DpoSet *set, const int *idx, int n, double scale,
                DpoStats *st, Err *err) {
    int V = tr->m->cfg.vocab_size, ipo = tr->type == DPO_IPO;
    for (int s = 0, b; s < n; s += b) {
        b = n - s < tr->micro ? n - s : tr->micro;
        for (int i = 0; i < b; i++) {
            int p = idx ? idx[s + i] : s + i;
            tr->rows[2 * i] = set->chosen[p];
            tr->rows[2 * i + 1] = set->rejected[p];
        }
        int T, rc = forward(tr, set->ex, 2 * b, &T, err);
        if (rc) return rc;
        double w[2 * 1024 + 2], *wp = w;
        if (2 * b > 2 * 1024 && !(wp = malloc(sizeof(double) * 2 * (size_t)b)))
            return err_set(err, RLHF_ENOMEM, "out of memory");
        for (int i = 0; i < b; i++) {
            int c = tr->rows[2 * i], r = tr->rows[2 * i + 1];
            double lc = ipo ? answer_len(&set->ex[c]) : 1, lr = ipo ? answer_len(&set->ex[r]) : 1;
            double pc = tr->sums[2 * i] / lc, pr = tr->sums[2 * i + 1] / lr;
            double rc_ = set->ref[c] / lc, rr = set->ref[r] / lr, dc, dr;
            double loss = dpo_pair_loss(tr->type, tr->beta, tr->smoothing, pc, pr, rc_, rr, &dc, &dr);
            double rw_c = tr->beta * (pc - rc_), rw_r = tr->beta * (pr - rr);
            st->loss += loss;
            st->chosen += rw_c;
            st->rejected += rw_r;
            st->margin += rw_c - rw_r;
            st->accuracy += rw_c > rw_r;
            st->logp_chosen += pc;
            st->logp_rejected += pr;
            st->n++;
            wp[2 * i] = scale * dc / lc;
            wp[2 * i + 1] = scale * dr / lr;
        }
        if (scale > 0) {
            float *g = tr->batch.buf; /* per-token weights d loss / d log p */
            for (int r = 0; r < 2 * b; r++)
                for (int t = 0; t < T; t++)
                    g[(size_t)r * T + t] = tr->batch.targets[(size_t)r * T + t] >= 0 ? (float)wp[r] : 0;
            loss_logprobs_backward(tr->rs.logits, tr->batch.targets, 2 * b * T, V, g, NULL);
            rc = model_backward(tr->m, &tr->rs, tr->batch.tokens, tr->rs.logits, NULL, NULL, err);
        }
        if (wp != w) free(wp);
        if (rc) return rc;
    }
    return RLHF_OK;
}

static void stats_mean(DpoStats *st) {
    if (!st->n) return;
    double k = 1.0 / st->n;
    st->loss *= k, st->chosen *= k, st->rejected *= k, st->margin *= k, st->accuracy *= k;
    st->logp_chosen *= k, st->logp_rejected *= k;
}

int dpo_step(DpoTrainer *tr, const DpoSet *set, const int *idx, int n, float lr, DpoStats *st,
             double *gnorm, Err *err) {
    memset(st, 0, sizeof *st);
    model_zero_grad(tr->m);
    int rc = pass(tr, set, idx, n, 1.0 / n, st, err);
    if (rc) return rc;
    *gnorm = model_grad_clip(tr->m, tr->clip);
    adamw_step(tr->opt, tr->m, lr);
    stats_mean(st);
    return RLHF_OK;
}

int dpo_eval(DpoTrainer *tr, const DpoSet *set, DpoStats *st, Err *err) {
    memset(st, 0, sizeof *st);
    int rc = pass(tr, set, NULL, set->n_pairs, 0, st, err);
    stats_mean(st);
    if (!st->n) st->loss = st->chosen = st->rejected = st->margin = st->accuracy = NAN;
    return rc;
}
