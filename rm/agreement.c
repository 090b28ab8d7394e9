/* Pairwise agreement, Kendall's tau-b, Krippendorff's alpha and per-labeler figures. */
#include "rm/agreement.h"
#include "util/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int sign(int v) {
    return (v > 0) - (v < 0);
}

double rm_kendall_tau_b(const int *x, const int *y, int n) {
    int64_t nc = 0, nd = 0, tx = 0, ty = 0, n0 = (int64_t)n * (n - 1) / 2;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            int a = sign(x[i] - x[j]), b = sign(y[i] - y[j]);
            if (a == 0) tx++;
            if (b == 0) ty++;
            if (a * b > 0)
                nc++;
            else if (a * b < 0)
                nd++;
        }
    double den = sqrt((double)(n0 - tx) * (double)(n0 - ty));
    return den > 0 ? (double)(nc - nd) / den : NAN;
}

typedef struct Obs {
    int64_t unit;
    int value;
} Obs;

static int cmp_obs(const void *x, const void *y) {
    const Obs *a = x, *b = y;
    if (a->unit != b->unit) return a->unit < b->unit ? -1 : 1;
    return a->value - b->value;
}

double rm_kripp_alpha(const int64_t *unit, const int *value, int64_t n, int V, int metric) {
    Obs *o = malloc((size_t)(n ? n : 1) * sizeof *o);
    double *co = calloc((size_t)V * V, sizeof *co), *nc = calloc((size_t)V, sizeof *nc);
    double alpha = NAN;
    if (!o || !co || !nc) goto out;
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (value[i] >= 1 && value[i] <= V) o[m++] = (Obs){unit[i], value[i] - 1};
    qsort(o, (size_t)m, sizeof *o, cmp_obs);
    /* coincidences: each ordered pair of values within a unit of m_u values
     * counts 1/(m_u - 1) */
    for (int64_t s = 0, e; s < m; s = e) {
        for (e = s; e < m && o[e].unit == o[s].unit; e++) {
        }
        int64_t mu = e - s;
        if (mu < 2) continue;
        for (int64_t i = s; i < e; i++)
            for (int64_t j = s; j < e; j++)
                if (i != j) co[o[i].value * V + o[j].value] += 1.0 / (double)(mu - 1);
    }
    double tot = 0;
    for (int c = 0; c < V; c++) {
        for (int k = 0; k < V; k++)
            nc[c] += co[c * V + k];
        tot += nc[c];
    }
    if (tot < 2) goto out;
    double dobs = 0, dexp = 0;
    for (int c = 0; c < V; c++)
        for (int k = 0; k < V; k++) {
            double d2;
            if (metric == ALPHA_INTERVAL)
                d2 = (double)(c - k) * (c - k);
            else {
                int lo = c < k ? c : k, hi = c < k ? k : c;
                double g = 0;
                for (int x = lo; x <= hi; x++)
                    g += nc[x];
                g -= (nc[c] + nc[k]) / 2;
                d2 = g * g;
            }
            dobs += co[c * V + k] * d2;
            dexp += nc[c] * nc[k] * d2;
        }
    if (dexp > 0) alpha = 1 - (tot - 1) * dobs / dexp;
out:
    free(o), free(co), free(nc);
    return alpha;
}

/* Agreement of two rankings of one prompt over the candidates both ranked. */
static void compare_two(const RmItem *a, int na, const RmItem *b, int nb, int64_t *compared,
                        int64_t *agreed, double *tau) {
    int ra[64], rb[64], n = 0;
    for (int i = 0; i < na && n < 64; i++) {
        if (a[i].rank <= 0) continue;
        for (int j = 0; j < nb; j++)
            if (b[j].cand_id == a[i].cand_id && b[j].rank > 0) {
                ra[n] = a[i].rank, rb[n] = b[j].rank, n++;
                break;
            }
    }
    *compared = *agreed = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            (*compared)++;
            if (sign(ra[i] - ra[j]) == sign(rb[i] - rb[j])) (*agreed)++;
        }
    *tau = n >= 2 ? rm_kendall_tau_b(ra, rb, n) : NAN;
}

/* Walks the prompts; for every pair of rankings of one prompt by different
 * labelers calls back with its figures. */
typedef void (*pair_fn)(void *ctx, const RmSet *s, int64_t ra, int64_t rb, int64_t compared,
                        int64_t agreed, double tau);

static void each_pair(const RmSet *s, pair_fn fn, void *ctx,
                      void (*prompt_done)(void *, int64_t, int)) {
    for (int64_t st = 0, en; st < s->n_rankings; st = en) {
        int64_t pid = s->rankings[st].prompt_id;
        for (en = st; en < s->n_rankings && s->rankings[en].prompt_id == pid; en++) {
        }
        int shared = 0;
        for (int64_t i = st; i < en; i++)
            for (int64_t j = i + 1; j < en; j++) {
                const RmRanking *a = &s->rankings[i], *b = &s->rankings[j];
                if (a->labeler == b->labeler) continue;
                shared = 1;
                int64_t c, g;
                double tau;
                compare_two(&s->items[a->first], a->n_items, &s->items[b->first], b->n_items, &c,
                            &g, &tau);
                fn(ctx, s, i, j, c, g, tau);
            }
        if (prompt_done) prompt_done(ctx, pid, shared);
    }
}

typedef struct Totals {
    AgreementReport *r;
    double tau_sum;
    double *lab_tau_sum;
    PairAgreement *grid; /* n_labelers x n_labelers, used for a < b */
    double *grid_tau;
    int64_t *grid_tau_n;
    int64_t cur_c, cur_g;      /* the prompt being walked */
    int64_t *pc, *pg, np, cap; /* per shared prompt, for the standard error */
    int oom;
} Totals;

static void add_pair(void *vctx, const RmSet *s, int64_t ia, int64_t ib, int64_t c, int64_t g,
                     double tau) {
    Totals *t = vctx;
    AgreementReport *r = t->r;
    int la = s->rankings[ia].labeler, lb = s->rankings[ib].labeler;
    r->compared += c, r->agreed += g;
    t->cur_c += c, t->cur_g += g;
    r->labelers[la].compared += c, r->labelers[la].agreed += g;
    r->labelers[lb].compared += c, r->labelers[lb].agreed += g;
    if (!isnan(tau)) {
        t->tau_sum += tau, r->tau_n++;
        t->lab_tau_sum[la] += tau, r->labelers[la].tau_n++;
        t->lab_tau_sum[lb] += tau, r->labelers[lb].tau_n++;
    }
    if (t->grid) {
        int a = la < lb ? la : lb, b = la < lb ? lb : la;
        int64_t k = (int64_t)a * r->n_labelers + b;
        PairAgreement *pa = &t->grid[k];
        pa->a = a, pa->b = b;
        pa->prompts++;
        pa->compared += c, pa->agreed += g;
        if (!isnan(tau)) t->grid_tau[k] += tau, t->grid_tau_n[k]++;
    }
}

static void count_prompt(void *vctx, int64_t pid, int shared) {
    (void)pid;
    Totals *t = vctx;
    t->r->prompts++;
    t->r->prompts_shared += shared;
    if (t->cur_c && !t->oom) {
        if (t->np == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 256;
            int64_t *a = realloc(t->pc, (size_t)t->cap * sizeof *a);
            if (a) t->pc = a;
            int64_t *b = realloc(t->pg, (size_t)t->cap * sizeof *b);
            if (b) t->pg = b;
            t->oom = !a || !b;
        }
        if (!t->oom) t->pc[t->np] = t->cur_c, t->pg[t->np++] = t->cur_g;
    }
    t->cur_c = t->cur_g = 0;
}

/* Standard error of the agreement rate by resampling prompts (pairs within a
 * prompt are not independent, so the binomial formula would be too small). */
static double agreement_se(const int64_t *pc, const int64_t *pg, int64_t n) {
    enum { B = 200 };
    if (n < 2) return NAN;
    Rng rng;
    rng_seed(&rng, 1);
    double sum = 0, sum2 = 0;
    for (int b = 0; b < B; b++) {
        int64_t c = 0, g = 0;
        for (int64_t i = 0; i < n; i++) {
            uint64_t k = rng_below(&rng, (uint64_t)n);
            c += pc[k], g += pg[k];
        }
        double p = c ? (double)g / (double)c : 0;
        sum += p, sum2 += p * p;
    }
    double var = (sum2 - sum * sum / B) / (B - 1);
    return var > 0 ? sqrt(var) : 0;
}

int rm_agreement(const RmSet *s, AgreementReport *r, Err *err) {
    memset(r, 0, sizeof *r);
    r->n_labelers = s->n_labelers;
    r->labelers = calloc((size_t)(s->n_labelers ? s->n_labelers : 1), sizeof *r->labelers);
    double *lab_tau = calloc((size_t)(s->n_labelers ? s->n_labelers : 1), sizeof *lab_tau);
    double *time_sum = calloc((size_t)(s->n_labelers ? s->n_labelers : 1), sizeof *time_sum);
    int64_t *time_n = calloc((size_t)(s->n_labelers ? s->n_labelers : 1), sizeof *time_n);
    int64_t *units = calloc((size_t)(s->n_items ? s->n_items : 1), sizeof *units);
    int *values = calloc((size_t)(s->n_items ? s->n_items : 1), sizeof *values);
    if (!r->labelers || !lab_tau || !time_sum || !time_n || !units || !values) {
        free(lab_tau), free(time_sum), free(time_n), free(units), free(values);
        rm_agreement_free(r);
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    for (int i = 0; i < s->n_labelers; i++)
        r->labelers[i].name = s->labelers[i].name;
    for (int64_t i = 0; i < s->n_rankings; i++) {
        const RmRanking *k = &s->rankings[i];
        LabelerAgreement *l = &r->labelers[k->labeler];
        l->rankings++;
        l->simulated = k->simulated;
        if (k->time_ms >= 0) time_sum[k->labeler] += k->time_ms / 1000.0, time_n[k->labeler]++;
        if (!isnan(k->gold)) l->gold += k->gold, l->gold_n++;
    }
    Totals t = {0};
    t.r = r, t.lab_tau_sum = lab_tau;
    /* the labeler-by-labeler table is for teams, not for thousands of labelers */
    size_t nl = (size_t)s->n_labelers;
    if (nl > 0 && nl <= 1000) {
        t.grid = calloc(nl * nl, sizeof *t.grid);
        t.grid_tau = calloc(nl * nl, sizeof *t.grid_tau);
        t.grid_tau_n = calloc(nl * nl, sizeof *t.grid_tau_n);
        if (!t.grid || !t.grid_tau || !t.grid_tau_n) {
            free(t.grid), free(t.grid_tau), free(t.grid_tau_n);
            t.grid = NULL, t.grid_tau = NULL, t.grid_tau_n = NULL;
        }
    }
    each_pair(s, add_pair, &t, count_prompt);
    if (t.grid) {
        for (size_t k = 0; k < nl * nl; k++)
            if (t.grid[k].prompts) r->n_pairs++;
        r->pairs = calloc((size_t)(r->n_pairs ? r->n_pairs : 1), sizeof *r->pairs);
        int m = 0;
        for (size_t k = 0; k < nl * nl && r->pairs; k++)
            if (t.grid[k].prompts) {
                r->pairs[m] = t.grid[k];
                r->pairs[m++].tau = t.grid_tau_n[k] ? t.grid_tau[k] / (double)t.grid_tau_n[k] : NAN;
            }
        if (!r->pairs) r->n_pairs = 0;
        free(t.grid), free(t.grid_tau), free(t.grid_tau_n);
    }
    r->agreement = r->compared ? (double)r->agreed / (double)r->compared : NAN;
    r->agreement_se = t.oom ? NAN : agreement_se(t.pc, t.pg, t.np);
    free(t.pc), free(t.pg);
    r->tau = r->tau_n ? t.tau_sum / (double)r->tau_n : NAN;
    for (int i = 0; i < s->n_labelers; i++) {
        LabelerAgreement *l = &r->labelers[i];
        l->agreement = l->compared ? (double)l->agreed / (double)l->compared : NAN;
        l->tau = l->tau_n ? lab_tau[i] / (double)l->tau_n : NAN;
        l->mean_time_s = time_n[i] ? time_sum[i] / (double)time_n[i] : NAN;
        l->gold = l->gold_n ? l->gold / (double)l->gold_n : NAN;
    }
    /* a unit is one candidate (candidate ids are unique across prompts) */
    int64_t m = 0;
    for (int64_t i = 0; i < s->n_items; i++)
        if (s->items[i].likert > 0)
            units[m] = s->items[i].cand_id, values[m++] = s->items[i].likert;
    r->alpha_values = m;
    r->alpha_ordinal = rm_kripp_alpha(units, values, m, 7, ALPHA_ORDINAL);
    r->alpha_interval = rm_kripp_alpha(units, values, m, 7, ALPHA_INTERVAL);
    /* units holding two values or more */
    Obs *o = malloc((size_t)(m ? m : 1) * sizeof *o);
    if (o) {
        int64_t *u = units;
        for (int64_t i = 0; i < m; i++)
            o[i] = (Obs){u[i], 0};
        qsort(o, (size_t)m, sizeof *o, cmp_obs);
        for (int64_t st = 0, en; st < m; st = en) {
            for (en = st; en < m && o[en].unit == o[st].unit; en++) {
            }
            if (en - st >= 2) r->alpha_units++;
        }
        free(o);
    }
    free(lab_tau), free(time_sum), free(time_n), free(units), free(values);
    return RLHF_OK;
}

void rm_agreement_free(AgreementReport *r) {
    free(r->labelers);
    free(r->pairs);
    memset(r, 0, sizeof *r);
}

typedef struct PerPrompt {
    int64_t *ids, n, cap;
    double *rate;
    int64_t c, g;
    int oom;
} PerPrompt;

static void pp_pair(void *vctx, const RmSet *s, int64_t ia, int64_t ib, int64_t c, int64_t g,
                    double tau) {
    (void)s, (void)ia, (void)ib, (void)tau;
    PerPrompt *p = vctx;
    p->c += c, p->g += g;
}

static void pp_prompt(void *vctx, int64_t pid, int shared) {
    PerPrompt *p = vctx;
    if (shared && !p->oom) {
        if (p->n == p->cap) {
            p->cap = p->cap ? p->cap * 2 : 256;
            int64_t *a = realloc(p->ids, (size_t)p->cap * sizeof *a);
            if (a) p->ids = a;
            double *b = realloc(p->rate, (size_t)p->cap * sizeof *b);
            if (b) p->rate = b;
            if (!a || !b) p->oom = 1;
        }
        if (!p->oom) {
            p->ids[p->n] = pid;
            p->rate[p->n++] = p->c ? (double)p->g / (double)p->c : NAN;
        }
    }
    p->c = p->g = 0;
}

int rm_prompt_agreement(const RmSet *s, int64_t **prompt_ids, double **rate, int64_t *n, Err *err) {
    PerPrompt p = {0};
    each_pair(s, pp_pair, &p, pp_prompt);
    if (p.oom) {
        free(p.ids), free(p.rate);
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    *prompt_ids = p.ids, *rate = p.rate, *n = p.n;
    return RLHF_OK;
}
