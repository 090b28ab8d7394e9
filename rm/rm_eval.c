/* Reward-model accuracy against rankings (see rm_eval.h). */
#include "rm/rm_eval.h"
#include "rm/agreement.h"
#include "util/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void rm_wilson(double k, double n, double z, double *lo, double *hi) {
    if (n <= 0) {
        *lo = *hi = NAN;
        return;
    }
    double p = k / n, z2 = z * z, den = 1 + z2 / n;
    double mid = (p + z2 / (2.0 * n)) / den;
    double half = z / den * sqrt(p * (1 - p) / n + z2 / (4.0 * n * n));
    *lo = mid - half < 0 ? 0 : mid - half;
    *hi = mid + half > 1 ? 1 : mid + half;
}

static int cmp_dbl(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

void rm_bootstrap(const double *num, const double *den, int64_t n, int B, uint64_t seed,
                  double *lo, double *hi) {
    *lo = *hi = NAN;
    if (n <= 0 || B < 1) return;
    double *v = malloc(sizeof(double) * (size_t)B);
    if (!v) return;
    Rng g;
    rng_seed(&g, seed);
    int m = 0;
    for (int b = 0; b < B; b++) {
        double sn = 0, sd = 0;
        for (int64_t i = 0; i < n; i++) {
            uint64_t j = rng_below(&g, (uint64_t)n);
            sn += num[j], sd += den ? den[j] : 1;
        }
        if (sd > 0) v[m++] = sn / sd;
    }
    if (m) {
        qsort(v, (size_t)m, sizeof *v, cmp_dbl);
        *lo = v[(int)floor(0.025 * (m - 1) + 0.5)];
        *hi = v[(int)floor(0.975 * (m - 1) + 0.5)];
    }
    free(v);
}

void rm_acc_finish(RmAcc *a) {
    a->acc = a->pairs ? (double)a->correct / a->pairs : NAN;
    rm_wilson(a->correct, a->pairs, 1.96, &a->wlo, &a->whi);
    a->lo = a->wlo, a->hi = a->whi, a->boot = 0;
}

void rm_acc_bootstrap(RmAcc *a, const double *correct, const double *pairs, int64_t n) {
    if (!a->pairs || n < 1) return;
    double lo, hi;
    rm_bootstrap(correct, pairs, n, 2000, 0x5eedb007u, &lo, &hi);
    if (!isnan(lo)) a->lo = lo, a->hi = hi, a->boot = 1;
}

/* One ranking's pairs: its prompt (the unit resampled), labeler and level. */
typedef struct GroupAcc {
    int64_t key;
    int labeler, level;
    double correct, pairs;
} GroupAcc;

static int cmp_group(const void *x, const void *y) {
    int64_t a = ((const GroupAcc *)x)->key, b = ((const GroupAcc *)y)->key;
    return (a > b) - (a < b);
}

/* The bootstrap interval of the groups that kind/val select (0: all, 1: the
 * labeler val, 2: the agreement level val), merged by prompt (gs sorted by key). */
static void acc_by_prompt(const GroupAcc *gs, int n, int kind, int val, double *c, double *p,
                          RmAcc *a) {
    int64_t m = 0, last = 0;
    for (int i = 0; i < n; i++) {
        if ((kind == 1 && gs[i].labeler != val) || (kind == 2 && gs[i].level != val)) continue;
        if (!m || gs[i].key != last) c[m] = p[m] = 0, m++;
        c[m - 1] += gs[i].correct, p[m - 1] += gs[i].pairs, last = gs[i].key;
    }
    rm_acc_bootstrap(a, c, p, m);
}

static const char *const level_names[RM_AGREE_N] = {"one labeler", "below 0.5", "0.5 to 0.75",
                                                    "0.75 to 1", "full (1.0)"};

const char *rm_agree_level_name(int level) {
    return level >= 0 && level < RM_AGREE_N ? level_names[level] : "?";
}

int rm_agree_level(double rate) {
    if (isnan(rate)) return RM_AGREE_ONE;
    if (rate >= 1 - 1e-9) return RM_AGREE_FULL;
    if (rate >= 0.75) return RM_AGREE_HIGH;
    return rate >= 0.5 ? RM_AGREE_MID : RM_AGREE_LOW;
}

static int cmp_i64(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

void rm_eval_report_free(RmEvalReport *r) {
    free(r->by_labeler);
    free(r->prompt_ids);
    memset(r, 0, sizeof *r);
}

int rm_eval_report(const PrefSet *s, const int64_t *first, const float *rewards,
                   const unsigned char *sel, const int64_t *agree_ids, const double *agree_rate,
                   int64_t n_agree, RmEvalReport *out, Err *err) {
    memset(out, 0, sizeof *out);
    out->n_labelers = s->n_labelers;
    out->by_labeler = calloc((size_t)(s->n_labelers ? s->n_labelers : 1), sizeof *out->by_labeler);
    out->prompt_ids = malloc(sizeof(int64_t) * (size_t)(s->n ? s->n : 1));
    if (!out->by_labeler || !out->prompt_ids) {
        rm_eval_report_free(out);
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    GroupAcc *gs = malloc(sizeof *gs * (size_t)(s->n ? s->n : 1));
    double *bc = malloc(sizeof(double) * (size_t)(s->n ? s->n : 1)),
           *bp = malloc(sizeof(double) * (size_t)(s->n ? s->n : 1));
    if (!gs || !bc || !bp) {
        free(gs), free(bc), free(bp);
        rm_eval_report_free(out);
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    int ng = 0;
    for (int g = 0; g < s->n; g++) {
        if (sel && !sel[g]) continue;
        const PrefGroup *p = &s->g[g];
        /* a file's groups without a stored prompt are each their own prompt */
        GroupAcc *ga = &gs[ng++];
        *ga = (GroupAcc){p->prompt_id ? p->prompt_id : -(int64_t)g - 1, p->labeler, 0, 0, 0};
        const float *r = rewards + first[g];
        const int64_t *hit = agree_ids ? bsearch(&p->prompt_id, agree_ids, (size_t)n_agree,
                                                 sizeof *agree_ids, cmp_i64)
                                       : NULL;
        int level = rm_agree_level(hit ? agree_rate[hit - agree_ids] : NAN);
        ga->level = level;
        RmAcc *lab = p->labeler >= 0 ? &out->by_labeler[p->labeler] : NULL;
        out->groups++;
        if (p->prompt_id) out->prompt_ids[out->n_prompt_ids++] = p->prompt_id;
        for (int i = 0; i < p->n; i++)
            for (int j = i + 1; j < p->n; j++) {
                if (p->rank[i] == p->rank[j]) continue;
                int w = p->rank[i] < p->rank[j] ? i : j, l = w == i ? j : i;
                int ok = r[w] > r[l];
                ga->pairs++, ga->correct += ok;
                out->all.pairs++, out->all.correct += ok;
                out->by_level[level].pairs++, out->by_level[level].correct += ok;
                if (lab) lab->pairs++, lab->correct += ok;
            }
    }
    /* distinct prompts, and prompts per level */
    qsort(out->prompt_ids, (size_t)out->n_prompt_ids, sizeof *out->prompt_ids, cmp_i64);
    int64_t k = 0;
    for (int64_t i = 0; i < out->n_prompt_ids; i++)
        if (!k || out->prompt_ids[i] != out->prompt_ids[k - 1]) {
            out->prompt_ids[k++] = out->prompt_ids[i];
            const int64_t *hit = agree_ids ? bsearch(&out->prompt_ids[i], agree_ids,
                                                     (size_t)n_agree, sizeof *agree_ids, cmp_i64)
                                           : NULL;
            out->prompts_by_level[rm_agree_level(hit ? agree_rate[hit - agree_ids] : NAN)]++;
        }
    out->n_prompt_ids = k;
    out->prompts = k ? k : out->groups;
    rm_acc_finish(&out->all);
    for (int i = 0; i < out->n_labelers; i++)
        rm_acc_finish(&out->by_labeler[i]);
    for (int i = 0; i < RM_AGREE_N; i++)
        rm_acc_finish(&out->by_level[i]);
    /* the intervals: bootstrap over prompts, a prompt's pairs resampled together */
    qsort(gs, (size_t)ng, sizeof *gs, cmp_group);
    acc_by_prompt(gs, ng, 0, 0, bc, bp, &out->all);
    for (int i = 0; i < out->n_labelers; i++)
        acc_by_prompt(gs, ng, 1, i, bc, bp, &out->by_labeler[i]);
    for (int i = 0; i < RM_AGREE_N; i++)
        acc_by_prompt(gs, ng, 2, i, bc, bp, &out->by_level[i]);
    free(gs), free(bc), free(bp);
    out->labelers.acc = out->labelers.lo = out->labelers.hi = NAN;
    return RLHF_OK;
}

int rm_eval_labeler_agreement(const RmSet *rs, RmEvalReport *out, Err *err) {
    /* a shallow subset of rs: the rankings of the evaluated prompts */
    RmSet sub = *rs;
    sub.rankings = malloc(sizeof *sub.rankings * (size_t)(rs->n_rankings ? rs->n_rankings : 1));
    if (!sub.rankings) return err_set(err, RLHF_ENOMEM, "out of memory");
    sub.n_rankings = 0;
    for (int64_t i = 0; i < rs->n_rankings; i++)
        if (bsearch(&rs->rankings[i].prompt_id, out->prompt_ids, (size_t)out->n_prompt_ids,
                    sizeof *out->prompt_ids, cmp_i64))
            sub.rankings[sub.n_rankings++] = rs->rankings[i];
    AgreementReport ar;
    int rc = rm_agreement(&sub, &ar, err);
    free(sub.rankings);
    if (rc) return rc;
    out->labelers.pairs = ar.compared;
    out->labelers.correct = ar.agreed;
    rm_acc_finish(&out->labelers);
    rm_agreement_free(&ar);
    return RLHF_OK;
}
