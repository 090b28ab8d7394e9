/* The K-wise ranking loss and the batched passes of reward-model training
 * (see rm_train.h). */
#include "rm/rm_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/dist.h"

/* log σ(x) without overflow: −softplus(−x). */
static double log_sigmoid(double x) {
    return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x));
}

int rm_kwise_loss(const float *r, const int *rank, const int *likert, int n, const RmLossOpts *o,
                  float scale, float *dr, RmGroupLoss *out) {
    int P = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            P += rank[i] != rank[j];
    memset(out, 0, sizeof *out);
    out->pairs = P;
    if (!P) return 0;
    double inv = 1.0 / P, loss = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            if (rank[i] == rank[j]) continue;
            int w = rank[i] < rank[j] ? i : j, l = w == i ? j : i;
            double m = 0;
            /* scores that contradict the order ask for no margin, not a negative one */
            if (o && o->margin > 0 && likert && likert[w] > likert[l] && likert[l] > 0)
                m = o->margin * (likert[w] - likert[l]);
            double diff = (double)r[w] - r[l], d = diff - m;
            loss -= log_sigmoid(d);
            out->correct += diff > 0;
            out->margin_sum += diff;
            double sum = (double)r[w] + r[l], c = o ? o->center : 0;
            loss += c * sum * sum;
            if (dr) {
                /* d/dd −log σ(d) = σ(d) − 1 = −σ(−d) */
                double g = -1.0 / (1.0 + exp(d)) * inv, gc = 2 * c * sum * inv;
                dr[w] += (float)(scale * (g + gc));
                dr[l] += (float)(scale * (-g + gc));
                out->dbias += scale * 2 * gc;
            }
        }
    out->loss = loss * inv;
    return P;
}

void rm_data_free(RmData *d) {
    for (int64_t i = 0; d->ex && i < d->n_ex; i++)
        seq_example_free(&d->ex[i]);
    free(d->ex);
    free(d->first);
    memset(d, 0, sizeof *d);
}

int rm_data_encode(RmData *d, const PrefSet *s, const Tokenizer *tok, const char *template,
                   int max_len, Err *err) {
    memset(d, 0, sizeof *d);
    d->set = s;
    size_t total = 0;
    for (int g = 0; g < s->n; g++) {
        total += (size_t)s->g[g].n;
        if (s->g[g].n > d->max_k) d->max_k = s->g[g].n;
    }
    d->ex = calloc(total ? total : 1, sizeof *d->ex);
    d->first = malloc((size_t)(s->n ? s->n : 1) * sizeof *d->first);
    if (!d->ex || !d->first) {
        rm_data_free(d);
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    for (int g = 0; g < s->n; g++) {
        d->first[g] = d->n_ex;
        for (int k = 0; k < s->g[g].n; k++) {
            SeqExample *e = &d->ex[d->n_ex];
            int ids = 0;
            int rc = prefs_encode_answer(&s->g[g], k, tok, template, max_len, e, &ids, err);
            d->sampled_ids += ids;
            if (rc) {
                rm_data_free(d);
                return rc;
            }
            d->n_ex++;
            d->cut += e->cut > 0;
            d->cut_answer += e->cut_answer > 0;
        }
    }
    return RLHF_OK;
}

void rm_trainer_free(RmTrainer *t) {
    model_runstate_free(&t->rs);
    free(t->tokens), free(t->lens), free(t->r), free(t->dr), free(t->dreward);
    memset(t, 0, sizeof *t);
}

int rm_trainer_create(RmTrainer *t, Model *m, int max_rows, int max_k, const RmLossOpts *lo,
                      Err *err) {
    memset(t, 0, sizeof *t);
    if (!(m->heads & MODEL_HEAD_REWARD))
        return err_set(err, RLHF_EINVAL, "the model has no reward head");
    t->m = m;
    t->max_rows = max_rows > max_k ? max_rows : max_k;
    if (t->max_rows < 1) t->max_rows = 1;
    if (lo) t->loss = *lo;
    int B = t->max_rows, T = m->cfg.seq_len;
    int rc = model_runstate_create(&t->rs, &m->cfg, B, T, err);
    if (rc) return rc;
    t->tokens = malloc(sizeof(int) * (size_t)B * T);
    t->lens = malloc(sizeof(int) * (size_t)B);
    t->r = malloc(sizeof(float) * (size_t)B);
    t->dr = malloc(sizeof(float) * (size_t)B);
    t->dreward = malloc(sizeof(float) * (size_t)B * T);
    if (!t->tokens || !t->lens || !t->r || !t->dr || !t->dreward) {
        rm_trainer_free(t);
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    return RLHF_OK;
}

/* Packs the answers of groups idx[0..n) into t->tokens (rows T apart). */
static int pack(RmTrainer *t, const RmData *d, const int64_t *idx, int64_t n, int rows) {
    int T = 1;
    for (int64_t i = 0; i < n; i++) {
        const SeqExample *e = &d->ex[d->first[idx[i]]];
        for (int k = 0; k < d->set->g[idx[i]].n; k++)
            if (e[k].n > T) T = e[k].n;
    }
    int b = 0;
    for (int64_t i = 0; i < n; i++) {
        const SeqExample *e = &d->ex[d->first[idx[i]]];
        for (int k = 0; k < d->set->g[idx[i]].n; k++, b++)
            seq_pack(&e[k], 1, t->tokens + (size_t)b * T, t->lens + b);
    }
    /* seq_pack of one row pads to that row's length: pad the rest to T */
    for (b = 0; b < rows; b++)
        for (int p = t->lens[b]; p < T; p++)
            t->tokens[(size_t)b * T + p] = TOK_EOS;
    return T;
}

typedef struct LenIdx {
    int len;
    int64_t g;
} LenIdx;

static int cmp_len(const void *x, const void *y) {
    const LenIdx *a = x, *b = y;
    if (a->len != b->len) return b->len - a->len;
    return (a->g > b->g) - (a->g < b->g);
}

/* Groups in order of their longest answer, so each pass pads little. */
static int64_t *by_length(const RmData *d, const int64_t *idx, int64_t n) {
    LenIdx *li = malloc(sizeof *li * (size_t)(n ? n : 1));
    int64_t *out = malloc(sizeof *out * (size_t)(n ? n : 1));
    if (!li || !out) {
        free(li), free(out);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        const SeqExample *e = &d->ex[d->first[idx[i]]];
        li[i] = (LenIdx){0, idx[i]};
        for (int k = 0; k < d->set->g[idx[i]].n; k++)
            if (e[k].n > li[i].len) li[i].len = e[k].n;
    }
    qsort(li, (size_t)n, sizeof *li, cmp_len);
    for (int64_t i = 0; i < n; i++) out[i] = li[i].g;
    free(li);
    return out;
}

/* Under MPI each rank takes its share of the groups and the figures are
 * summed over ranks (rewards then holds only this rank's answers). */
static int pass(RmTrainer *t, const RmData *d, const int64_t *idx_in, int64_t n, int train,
                float scale, RmStats *st, float *rewards, Err *err) {
    int lo, hi;
    dist_slice((int)n, &lo, &hi);
    idx_in += lo, n = hi - lo;
    int64_t *idx = by_length(d, idx_in, n);
    if (!idx) return err_set(err, RLHF_ENOMEM, "out of memory");
    int rc = RLHF_OK;
    double loss = 0, sr = 0, sr2 = 0, msum = 0;
    int64_t groups = 0, pairs = 0, correct = 0, nr = 0;
    for (int64_t i = 0; i < n && !rc;) {
        double dbias = 0;
        int rows = 0;
        int64_t j = i;
        while (j < n && rows + d->set->g[idx[j]].n <= t->max_rows)
            rows += d->set->g[idx[j++]].n;
        int T = pack(t, d, idx + i, j - i, rows);
        rc = model_forward(t->m, &t->rs, t->tokens, rows, T, 0, err);
        if (rc) break;
        seq_last_rewards(&t->rs, t->lens, rows, T, t->r);
        if (train) memset(t->dr, 0, sizeof(float) * (size_t)rows);
        int row = 0;
        for (int64_t k = i; k < j; k++) {
            const PrefGroup *g = &d->set->g[idx[k]];
            RmGroupLoss gl;
            if (rm_kwise_loss(t->r + row, g->rank, g->likert, g->n, &t->loss, scale,
                              train ? t->dr + row : NULL, &gl)) {
                loss += gl.loss;
                dbias += gl.dbias;
                groups++;
                pairs += gl.pairs, correct += gl.correct, msum += gl.margin_sum;
            }
            for (int a = 0; a < g->n; a++) {
                double r = t->r[row + a];
                sr += r, sr2 += r * r, nr++;
                if (rewards) rewards[d->first[idx[k]] + a] = (float)r;
            }
            row += g->n;
        }
        if (train) {
            memset(t->dreward, 0, sizeof(float) * (size_t)rows * T);
            for (int b = 0; b < rows; b++)
                t->dreward[(size_t)b * T + t->lens[b] - 1] = t->dr[b];
            /* the bias's gradient as the loss has it, not the float sum of the
             * rows' terms: with no centring it is exactly 0, where roundoff
             * (different for every split of a batch over ranks) would move
             * the bias by AdamW's whole step */
            float *gb = t->m->grads ? &t->m->g.reward[t->m->cfg.dim] : NULL, before = gb ? *gb : 0;
            rc = model_backward(t->m, &t->rs, t->tokens, NULL, t->dreward, NULL, err);
            if (!rc) t->m->g.reward[t->m->cfg.dim] = before + (float)dbias;
        }
        i = j;
    }
    free(idx);
    if (rc) return rc;
    if (dist_size() > 1) {
        double v[8] = {loss, sr, sr2, msum, (double)groups, (double)pairs, (double)correct, (double)nr};
        if (dist_allreduce_double(v, 8)) return err_set(err, RLHF_EIO, "MPI all-reduce failed");
        loss = v[0], sr = v[1], sr2 = v[2], msum = v[3];
        groups = (int64_t)v[4], pairs = (int64_t)v[5], correct = (int64_t)v[6], nr = (int64_t)v[7];
    }
    if (st) {
        memset(st, 0, sizeof *st);
        st->groups = groups, st->pairs = pairs, st->correct = correct;
        st->loss = groups ? loss / groups : NAN;
        st->accuracy = pairs ? (double)correct / pairs : NAN;
        st->margin = pairs ? msum / pairs : NAN;
        st->r_mean = nr ? sr / nr : NAN;
        double var = nr ? sr2 / nr - st->r_mean * st->r_mean : NAN;
        st->r_std = var > 0 ? sqrt(var) : 0;
    }
    return RLHF_OK;
}

int rm_train_groups(RmTrainer *t, const RmData *d, const int64_t *idx, int64_t n, float scale,
                    RmStats *st, Err *err) {
    int rc = pass(t, d, idx, n, 1, scale, st, NULL, err);
    if (!rc && dist_size() > 1 && dist_allreduce_sum(model_train_grads(t->m), model_train_n(t->m)))
        rc = err_set(err, RLHF_EIO, "MPI all-reduce failed");
    return rc;
}

int rm_eval_groups(RmTrainer *t, const RmData *d, const int64_t *idx, int64_t n, RmStats *st,
                   float *rewards, Err *err) {
    return pass(t, d, idx, n, 0, 0, st, rewards, err);
}

double rm_normalise(Model *m, double mean) {
    float *bias = &m->w.reward[m->cfg.dim];
    *bias -= (float)mean;
    return *bias;
}
