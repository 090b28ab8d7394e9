/* DPO: pairs from ranked groups, the losses and their gradients, reference
 * log-probabilities and the training step (dpo.h). */
#include "rl/dpo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/dist.h"
#include "model/loss.h"

static const char *const NAMES[] = {"sigmoid", "ipo", "hinge"};

int dpo_loss_type(const char *name) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, NAMES[i])) return i;
    return -1;
}

const char *dpo_loss_name(int type) {
    return type >= 0 && type < 3 ? NAMES[type] : "?";
}

/* log σ(x) without overflow */
static double log_sigmoid(double x) {
    return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x));
}
static double sigmoid(double x) {
    return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
}

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
    for (int i = 0; i < s->n_ex; i++)
        seq_example_free(&s->ex[i]);
    free(s->ex), free(s->chosen), free(s->rejected), free(s->lens), free(s->ref);
    free(s->ex_start), free(s->pair_start), free(s->ref_dist), free(s->dist_off);
    memset(s, 0, sizeof *s);
}

static int set_alloc(DpoSet *s, int n_ex, int64_t n_pairs, int n_groups, Err *err) {
    memset(s, 0, sizeof *s);
    s->ex = calloc((size_t)n_ex + 1, sizeof *s->ex);
    s->chosen = malloc(sizeof(int) * (size_t)(n_pairs + 1));
    s->rejected = malloc(sizeof(int) * (size_t)(n_pairs + 1));
    s->lens = malloc(sizeof(int) * (size_t)(n_groups + 1));
    s->ex_start = calloc((size_t)n_groups + 2, sizeof(int));
    s->pair_start = calloc((size_t)n_groups + 2, sizeof(int));
    if (!s->ex || !s->chosen || !s->rejected || !s->lens || !s->ex_start || !s->pair_start)
        return err_set(err, RLHF_ENOMEM, "out of memory");
    return RLHF_OK;
}

/* Appends group g's answers and non-tie pairs to d (nothing when it has no pair). */
static int add_group(DpoSet *d, const PrefGroup *g, int gi, const Tokenizer *t,
                     const char *template, int max_len, Err *err) {
    int base = d->n_ex, pairs = 0;
    for (int i = 0; i < g->n; i++)
        for (int j = 0; j < g->n; j++)
            pairs += g->rank[i] > 0 && g->rank[j] > 0 && g->rank[i] < g->rank[j];
    if (!pairs) return RLHF_OK;
    int longest = 0;
    for (int i = 0; i < g->n; i++) {
        SeqExample *e = &d->ex[d->n_ex];
        int rc = prefs_encode_answer(g, i, t, template, max_len, e, NULL, err);
        if (rc) return err_prefix(err, "preference group %d, answer %d: ", gi + 1, i + 1), rc;
        d->cut += e->cut || e->cut_answer;
        longest = e->n > longest ? e->n : longest;
        d->n_ex++;
    }
    for (int i = 0; i < g->n; i++)
        for (int j = 0; j < g->n; j++) {
            if (!(g->rank[i] > 0 && g->rank[j] > 0 && g->rank[i] < g->rank[j])) continue;
            d->chosen[d->n_pairs] = base + i;
            d->rejected[d->n_pairs] = base + j;
            d->n_pairs++;
        }
    d->lens[d->n_groups] = longest;
    d->n_groups++;
    d->ex_start[d->n_groups] = d->n_ex;
    d->pair_start[d->n_groups] = d->n_pairs;
    if (g->n > d->max_k) d->max_k = g->n;
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
    int rc = set_alloc(train, n_ex, n_pairs, s->n, err);
    if (!rc) rc = set_alloc(val, n_ex, n_pairs, s->n, err);
    for (int gi = 0; gi < s->n && !rc; gi++)
        rc = add_group(s->g[gi].val ? val : train, &s->g[gi], gi, t, template, max_len, err);
    if (rc) dpo_set_free(train), dpo_set_free(val);
    return rc;
}

int dpo_trainer_init(DpoTrainer *tr, Model *m, AdamW *opt, int micro, int max_k, int type,
                     double beta, double smoothing, double clip, Err *err) {
    memset(tr, 0, sizeof *tr);
    tr->m = m, tr->opt = opt, tr->type = type;
    tr->rows = 2 * micro > max_k ? 2 * micro : max_k;
    tr->beta = beta, tr->smoothing = smoothing, tr->clip = clip;
    int T = m->cfg.seq_len, rc = RLHF_OK;
    tr->sums = malloc(sizeof(double) * (size_t)tr->rows);
    tr->w = malloc(sizeof(double) * (size_t)tr->rows);
    tr->kl = malloc(sizeof(double) * (size_t)tr->rows);
    tr->kw = malloc(sizeof(double) * (size_t)tr->rows);
    tr->idx = malloc(sizeof(int) * (size_t)tr->rows);
    if (!tr->sums || !tr->w || !tr->kl || !tr->kw || !tr->idx)
        rc = err_set(err, RLHF_ENOMEM, "out of memory");
    if (!rc) rc = model_runstate_create(&tr->rs, &m->cfg, tr->rows, T, err);
    if (!rc) rc = rl_batch_create(&tr->batch, tr->rows, T, err);
    if (!rc && !m->grads) rc = model_grads_alloc(m, err);
    if (rc) dpo_trainer_free(tr);
    return rc;
}

void dpo_trainer_free(DpoTrainer *tr) {
    model_runstate_free(&tr->rs);
    rl_batch_free(&tr->batch);
    free(tr->sums), free(tr->w), free(tr->kl), free(tr->kw), free(tr->idx);
    tr->sums = tr->w = tr->kl = tr->kw = NULL, tr->idx = NULL;
}

/* What a pass's LM head does besides DPO's own log-probabilities (or their
 * gradient): nothing, store the reference's log-softmax of each answer
 * position, add each row's KL from it, or add the KL's gradient. */
enum { HEAD_DPO, HEAD_STORE, HEAD_KL, HEAD_KL_GRAD };

typedef struct {
    LossHeadLogp h; /* DPO's head */
    DpoTrainer *tr;
    const DpoSet *set; /* whose ref_dist the rows read or write */
    int T, mode;
} KlHead;

/* log Σ exp of a row of V logits, in double */
static double row_lse(const float *x, int V) {
    float mx = -INFINITY;
    for (int v = 0; v < V; v++)
        mx = x[v] > mx ? x[v] : mx;
    double s = 0;
    for (int v = 0; v < V; v++)
        s += exp((double)x[v] - mx);
    return mx + log(s);
}

/* The batch row's answer positions: its targets >= 0, one run from *first. */
static int answer_run(const int *tg, int T, int *first) {
    int n = 0;
    *first = T;
    for (int t = 0; t < T; t++)
        if (tg[t] >= 0) {
            if (!n) *first = t;
            n++;
        }
    return n;
}

/* The reference row of batch row b's answer position t. */
static const float *dist_row(const KlHead *k, int b, int t, int V) {
    int first;
    answer_run(k->h.targets + (size_t)b * k->T, k->T, &first);
    int64_t e = k->tr->idx[b];
    return k->set->ref_dist + (size_t)(k->set->dist_off[e] + (t - first)) * (size_t)V;
}

/* KL(p ‖ q) of one row, p = softmax(x), log q = lq; with g, also the gradient
 * of w × KL with respect to x: w p (log p − log q − KL). */
static double row_kl(const float *x, const float *lq, int V, double w, float *g) {
    double lse = row_lse(x, V), kl = 0;
    for (int v = 0; v < V; v++) {
        double lp = x[v] - lse;
        kl += exp(lp) * (lp - lq[v]);
    }
    if (g)
        for (int v = 0; v < V; v++) {
            double lp = x[v] - lse;
            g[v] = (float)(w * exp(lp) * (lp - lq[v] - kl));
        }
    return kl;
}

static int kl_head(void *ctx, float *logits, int row0, int R, int V, Err *err) {
    KlHead *k = ctx;
    const int *tg = k->h.targets;
    float *g = NULL;
    if (k->mode == HEAD_KL_GRAD && !(g = calloc((size_t)R * V, sizeof *g)))
        return err_set(err, RLHF_ENOMEM, "out of memory");
    for (int i = 0; k->mode != HEAD_DPO && i < R; i++) {
        int row = row0 + i, b = row / k->T, t = row % k->T, first;
        if (tg[row] < 0) continue;
        const float *x = logits + (size_t)i * V;
        if (k->mode == HEAD_STORE) {
            float *q = (float *)dist_row(k, b, t, V);
            double lse = row_lse(x, V);
            for (int v = 0; v < V; v++)
                q[v] = (float)(x[v] - lse);
            continue;
        }
        int len = answer_run(tg + (size_t)b * k->T, k->T, &first);
        double w = k->mode == HEAD_KL_GRAD ? k->tr->kw[b] / len : 0;
        double kl = row_kl(x, dist_row(k, b, t, V), V, w, g ? g + (size_t)i * V : NULL);
        if (k->mode == HEAD_KL) k->tr->kl[b] += kl;
    }
    int rc = loss_head_logp(&k->h, logits, row0, R, V, err);
    if (g) {
        for (size_t j = 0; !rc && j < (size_t)R * V; j++)
            logits[j] += g[j];
        free(g);
    }
    return rc;
}

/* Forward over examples tr->idx[0..n) through m (log-probability sums into
 * tr->sums); mode HEAD_STORE or HEAD_KL also as kl_head says, for set. */
static int forward(DpoTrainer *tr, Model *m, const DpoSet *set, const SeqExample *ex, int n,
                   int *T, int flags, int mode, Err *err) {
    *T = rl_batch_fill(&tr->batch, ex, tr->idx, n, NULL);
    KlHead k = {{.targets = tr->batch.targets, .logp = tr->batch.buf}, tr, set, *T, mode};
    if (mode == HEAD_KL) memset(tr->kl, 0, sizeof(double) * (size_t)n);
    int rc = model_forward(m, &tr->rs, tr->batch.tokens, n, *T, flags, err);
    if (!rc) rc = model_head(m, &tr->rs, 0, kl_head, &k, err);
    if (rc) return rc;
    seq_row_sums(tr->batch.buf, tr->batch.targets, n, *T, tr->sums);
    return RLHF_OK;
}

/* Runs ref (the trainer's model, LoRA adapter off, when NULL) over every
 * example of set, a pass of tr->rows at a time; each pass's sums go to
 * set->ref unless mode is HEAD_STORE. */
static int reference_passes(DpoTrainer *tr, Model *ref, DpoSet *set, int mode, Err *err) {
    Model *m = ref ? ref : tr->m;
    int off = m->lora_off, rc = RLHF_OK;
    m->lora_off = 1;
    for (int s = 0, b; s < set->n_ex && !rc; s += b) {
        b = set->n_ex - s < tr->rows ? set->n_ex - s : tr->rows;
        for (int i = 0; i < b; i++)
            tr->idx[i] = s + i;
        int T;
        rc = forward(tr, m, set, set->ex, b, &T, MODEL_FWD_NOGRAD, mode, err);
        if (!rc && mode != HEAD_STORE) memcpy(set->ref + s, tr->sums, sizeof(double) * (size_t)b);
    }
    m->lora_off = off;
    return rc;
}

int dpo_reference(DpoTrainer *tr, DpoSet *set, Err *err) {
    free(set->ref);
    set->ref = malloc(sizeof(double) * (size_t)(set->n_ex + 1));
    if (!set->ref) return err_set(err, RLHF_ENOMEM, "out of memory");
    /* with LoRA the reference is the base: the adapter off (no second model) */
    return reference_passes(tr, NULL, set, HEAD_DPO, err);
}

int dpo_reference_dist(DpoTrainer *tr, Model *ref, DpoSet *set, Err *err) {
    free(set->ref_dist), free(set->dist_off);
    set->ref_dist = NULL;
    if (!(set->dist_off = malloc(sizeof(int64_t) * (size_t)(set->n_ex + 1))))
        return err_set(err, RLHF_ENOMEM, "out of memory");
    set->dist_off[0] = 0;
    for (int e = 0; e < set->n_ex; e++) {
        int L = set->ex[e].n - set->ex[e].n_prompt;
        set->dist_off[e + 1] = set->dist_off[e] + (L > 0 ? L : 0);
    }
    size_t V = (size_t)tr->m->cfg.vocab_size, rows = (size_t)set->dist_off[set->n_ex];
    if (rows * V * sizeof(float) > DPO_DIST_MAX_BYTES)
        return err_set(err, RLHF_ENOMEM,
                       "the token-level KL keeps the reference's distribution at every answer "
                       "token: %zu tokens x %zu entries = %.1f GiB, over the %.0f GiB allowed; "
                       "train on fewer pairs or drop --token-kl",
                       rows, V, (double)(rows * V * sizeof(float)) / (1 << 30),
                       (double)DPO_DIST_MAX_BYTES / (1 << 30));
    if (!(set->ref_dist = malloc(sizeof(float) * (rows * V + 1))))
        return err_set(err, RLHF_ENOMEM, "out of memory for the reference's distributions");
    return reference_passes(tr, ref, set, HEAD_STORE, err);
}

static double answer_len(const SeqExample *e) {
    return e->n - e->n_prompt > 0 ? e->n - e->n_prompt : 1;
}

/* The losses of the pairs of groups gs[0..n): the groups go through the model
 * a pass at a time, as many whole groups as fit in tr->rows sequences; with
 * scale > 0 also the backward pass of scale·Σ loss (gradients accumulate). */
static int pass(DpoTrainer *tr, const DpoSet *set, const int *gs, int n, double scale, DpoStats *st,
                Err *err) {
    int ipo = tr->type == DPO_IPO;
    for (int s = 0, b; s < n; s += b) {
        int rows = 0;
        for (b = 0; s + b < n; b++) {
            int g = gs ? gs[s + b] : s + b, k = set->ex_start[g + 1] - set->ex_start[g];
            if (b && rows + k > tr->rows) break;
            for (int i = 0; i < k; i++)
                tr->idx[rows++] = set->ex_start[g] + i;
        }
        int tkl = set->ref_dist != NULL, T;
        int rc = forward(tr, tr->m, set, set->ex, rows, &T, 0, tkl ? HEAD_KL : HEAD_DPO, err);
        if (rc) return rc;
        memset(tr->w, 0, sizeof(double) * (size_t)rows);
        memset(tr->kw, 0, sizeof(double) * (size_t)rows);
        for (int r = 0, q = 0; q < b; q++) {
            int g = gs ? gs[s + q] : s + q, e0 = set->ex_start[g];
            for (int p = set->pair_start[g]; p < set->pair_start[g + 1]; p++) {
                int c = set->chosen[p], j = set->rejected[p], rc_row = r + c - e0,
                    rj_row = r + j - e0;
                double lc = ipo ? answer_len(&set->ex[c]) : 1,
                       lj = ipo ? answer_len(&set->ex[j]) : 1;
                double pc = tr->sums[rc_row] / lc, pr = tr->sums[rj_row] / lj;
                double refc = set->ref[c] / lc, refr = set->ref[j] / lj, dc, dr;
                double loss =
                    dpo_pair_loss(tr->type, tr->beta, tr->smoothing, pc, pr, refc, refr, &dc, &dr);
                double rw_c = tr->beta * (pc - refc), rw_r = tr->beta * (pr - refr);
                st->loss += loss;
                st->chosen += rw_c;
                st->rejected += rw_r;
                st->margin += rw_c - rw_r;
                st->accuracy += rw_c > rw_r;
                st->logp_chosen += pc;
                st->logp_rejected += pr;
                st->n++;
                tr->w[rc_row] += scale * dc / lc;
                tr->w[rj_row] += scale * dr / lj;
                double len = answer_len(&set->ex[c]), nll = -tr->sums[rc_row] / len;
                st->nll += nll;
                if (tr->rpo > 0) {
                    st->loss += tr->rpo * nll;
                    tr->w[rc_row] -= scale * tr->rpo / len;
                }
                if (tkl) { /* the mean KL per token of each answer, half each */
                    double kc = tr->kl[rc_row] / len, kr = tr->kl[rj_row] / answer_len(&set->ex[j]);
                    st->token_kl += (kc + kr) / 2;
                    st->loss += tr->token_kl * (kc + kr) / 2;
                    tr->kw[rc_row] += scale * tr->token_kl / 2;
                    tr->kw[rj_row] += scale * tr->token_kl / 2;
                }
            }
            r += set->ex_start[g + 1] - e0;
        }
        if (scale > 0) {
            float *gr = tr->batch.buf; /* per-token weights d loss / d log p */
            for (int r = 0; r < rows; r++)
                for (int t = 0; t < T; t++)
                    gr[(size_t)r * T + t] =
                        tr->batch.targets[(size_t)r * T + t] >= 0 ? (float)tr->w[r] : 0;
            /* the weights needed every row's log-probs first, so the head's
             * logits are computed again, a chunk at a time, for the gradient */
            KlHead k = {{.targets = tr->batch.targets, .dlogp = gr}, tr, set, T,
                        tkl && tr->token_kl > 0 ? HEAD_KL_GRAD : HEAD_DPO};
            rc = model_head(tr->m, &tr->rs, 1, kl_head, &k, err);
            if (!rc) rc = model_backward(tr->m, &tr->rs, tr->batch.tokens, NULL, NULL, NULL, err);
            if (rc) return rc;
        }
    }
    return RLHF_OK;
}

/* Sums the statistics over MPI ranks (each had its share of the groups). */
static int stats_reduce(DpoStats *st) {
    if (dist_size() == 1) return 0;
    double v[10] = {st->loss,     st->chosen,      st->rejected,      st->margin,   st->accuracy,
                    st->logp_chosen, st->logp_rejected, st->n, st->nll, st->token_kl};
    if (dist_allreduce_double(v, 10)) return -1;
    st->loss = v[0], st->chosen = v[1], st->rejected = v[2], st->margin = v[3];
    st->accuracy = v[4], st->logp_chosen = v[5], st->logp_rejected = v[6], st->n = (int)v[7];
    st->nll = v[8], st->token_kl = v[9];
    return 0;
}

static void stats_mean(DpoStats *st) {
    if (!st->n) return;
    double k = 1.0 / st->n;
    st->loss *= k, st->chosen *= k, st->rejected *= k, st->margin *= k, st->accuracy *= k;
    st->logp_chosen *= k, st->logp_rejected *= k, st->nll *= k, st->token_kl *= k;
}

int dpo_grads(DpoTrainer *tr, const DpoSet *set, const int *idx, int n, DpoStats *st, Err *err) {
    memset(st, 0, sizeof *st);
    int pairs = 0;
    for (int i = 0; i < n; i++)
        pairs += set->pair_start[idx[i] + 1] - set->pair_start[idx[i]];
    /* under MPI this rank's share of the groups; the scale stays global */
    int lo, hi;
    dist_slice(n, &lo, &hi);
    int rc = pairs ? pass(tr, set, idx + lo, hi - lo, 1.0 / pairs, st, err) : RLHF_OK;
    if (rc) return rc;
    if (dist_size() > 1 && (dist_allreduce_sum(model_train_grads(tr->m), model_train_n(tr->m)) || stats_reduce(st)))
        return err_set(err, RLHF_EIO, "MPI all-reduce failed");
    stats_mean(st);
    if (!set->ref_dist) st->token_kl = NAN;
    return RLHF_OK;
}

int dpo_step(DpoTrainer *tr, const DpoSet *set, const int *idx, int n, float lr, DpoStats *st,
             double *gnorm, Err *err) {
    model_zero_grad(tr->m);
    int rc = dpo_grads(tr, set, idx, n, st, err);
    if (rc) return rc;
    *gnorm = model_grad_clip(tr->m, tr->clip);
    adamw_step(tr->opt, tr->m, lr);
    return RLHF_OK;
}

int dpo_eval(DpoTrainer *tr, const DpoSet *set, DpoStats *st, Err *err) {
    memset(st, 0, sizeof *st);
    int lo, hi;
    dist_slice(set->n_groups, &lo, &hi);
    int *gs = malloc(sizeof(int) * (size_t)(hi - lo + 1));
    if (!gs) return err_set(err, RLHF_ENOMEM, "out of memory");
    for (int g = lo; g < hi; g++)
        gs[g - lo] = g;
    int rc = pass(tr, set, gs, hi - lo, 0, st, err);
    free(gs);
    if (!rc && stats_reduce(st)) rc = err_set(err, RLHF_EIO, "MPI all-reduce failed");
    stats_mean(st);
    if (!st->n) st->loss = st->chosen = st->rejected = st->margin = st->accuracy = st->nll = NAN;
    if (!st->n || !set->ref_dist) st->token_kl = NAN;
    return rc;
}
