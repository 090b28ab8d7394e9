/* Reward-model accuracy against rankings (see rm_eval.h). */
#include "rm/rm_eval.h"
#include "rm/agreement.h"

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

static void acc_finish(RmAcc *a) {
    a->acc = a->pairs ? (double)a->correct / a->pairs : NAN;
    rm_wilson(a->correct, a->pairs, 1.96, &a->lo, &a->hi);
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
    for (int g = 0; g < s->n; g++) {
        if (sel && !sel[g]) continue;
        const PrefGroup *p = &s->g[g];
        const float *r = rewards + first[g];
        const int64_t *hit = agree_ids ? bsearch(&p->prompt_id, agree_ids, (size_t)n_agree,
                                                 sizeof *agree_ids, cmp_i64)
                                       : NULL;
        int level = rm_agree_level(hit ? agree_rate[hit - agree_ids] : NAN);
        RmAcc *lab = p->labeler >= 0 ? &out->by_labeler[p->labeler] : NULL;
        out->groups++;
        if (p->prompt_id) out->prompt_ids[out->n_prompt_ids++] = p->prompt_id;
        for (int i = 0; i < p->n; i++)
            for (int j = i + 1; j < p->n; j++) {
                if (p->rank[i] == p->rank[j]) continue;
                int w = p->rank[i] < p->rank[j] ? i : j, l = w == i ? j : i;
                int ok = r[w] > r[l];
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
    acc_finish(&out->all);
    for (int i = 0; i < out->n_labelers; i++)
        acc_finish(&out->by_labeler[i]);
    for (int i = 0; i < RM_AGREE_N; i++)
        acc_finish(&out->by_level[i]);
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
    acc_finish(&out->labelers);
    rm_agreement_free(&ar);
    return RLHF_OK;
}
