/* Ensemble disagreement per prompt from the members' stored scores (see ensemble.h). */
#include "rm/ensemble.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/scores.h"

int rm_spec_is_ensemble(const char *spec) {
    return strchr(spec, ',') && access(spec, F_OK) != 0;
}

double rm_ensemble_disagreement(const double *z, int m, int k) {
    double sum = 0;
    int64_t pairs = 0;
    for (int a = 0; a < m; a++)
        for (int b = a + 1; b < m; b++, pairs++) {
            double s = 0, s2 = 0;
            for (int j = 0; j < k; j++) {
                double d = z[a * k + j] - z[b * k + j];
                s += d, s2 += d * d;
            }
            double mean = s / k, var = s2 / k - mean * mean;
            sum += var > 0 ? sqrt(var) : 0;
        }
    return pairs ? sum / (double)pairs : 0;
}

/* Candidates every member scored, in (prompt, candidate) order: prompt[c],
 * z[c * k + j]. */
static int align(ScoreRow **rows, const int64_t *nr, const double (*st)[3], int k, int64_t **prompt,
                 double **z, int64_t *n, Err *err) {
    int64_t cap = nr[0], *at = calloc((size_t)k, sizeof *at);
    *prompt = malloc(sizeof **prompt * (size_t)(cap ? cap : 1));
    *z = malloc(sizeof **z * (size_t)(cap ? cap : 1) * (size_t)k);
    *n = 0;
    if (!at || !*prompt || !*z) {
        free(at), free(*prompt), free(*z);
        *prompt = NULL, *z = NULL;
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    for (int64_t i = 0; i < nr[0]; i++) {
        const ScoreRow *r0 = &rows[0][i];
        int all = 1;
        for (int j = 1; j < k && all; j++) {
            while (at[j] < nr[j] && (rows[j][at[j]].prompt_id < r0->prompt_id ||
                                     (rows[j][at[j]].prompt_id == r0->prompt_id &&
                                      rows[j][at[j]].cand_id < r0->cand_id)))
                at[j]++;
            all = at[j] < nr[j] && rows[j][at[j]].cand_id == r0->cand_id;
        }
        if (!all) continue;
        (*prompt)[*n] = r0->prompt_id;
        for (int j = 0; j < k; j++) {
            double s = j ? rows[j][at[j]].score : r0->score;
            (*z)[*n * k + j] = (s - st[j][1]) / st[j][2];
        }
        ++*n;
    }
    free(at);
    return RLHF_OK;
}

int rm_ensemble_store(Db *db, int64_t ens_id, const int64_t *members, const char *const *names,
                      int k, int64_t *n, Err *err) {
    ScoreRow **rows = calloc((size_t)k, sizeof *rows);
    int64_t *nr = calloc((size_t)k, sizeof *nr), *prompt = NULL, *pid = NULL, *cnt = NULL, m = 0,
            np = 0;
    double(*st)[3] = calloc((size_t)k, sizeof *st), *z = NULL, *dis = NULL;
    int rc = rows && nr && st ? RLHF_OK : err_set(err, RLHF_ENOMEM, "out of memory");
    *n = 0;
    for (int j = 0; j < k && !rc; j++) {
        rc = db_score_stats(db, members[j], st[j], err);
        if (!rc && (st[j][0] < 2 || !(st[j][2] > 0)))
            rc = err_set(err, RLHF_ENOTFOUND,
                         "%s: an ensemble member needs its scores of the project's "
                         "candidates (two or more, not all equal)",
                         names[j]);
        if (!rc) rc = db_scores_list(db, members[j], &rows[j], &nr[j], err);
    }
    if (!rc) rc = align(rows, nr, (const double(*)[3])st, k, &prompt, &z, &m, err);
    if (!rc && m) {
        pid = malloc(sizeof *pid * (size_t)m), cnt = malloc(sizeof *cnt * (size_t)m);
        dis = malloc(sizeof *dis * (size_t)m);
        if (!pid || !cnt || !dis) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    }
    for (int64_t a = 0, b; !rc && a < m; a = b) {
        for (b = a + 1; b < m && prompt[b] == prompt[a]; b++)
            ;
        if (b - a < 2) continue;
        pid[np] = prompt[a], cnt[np] = b - a;
        dis[np++] = -rm_ensemble_disagreement(z + a * k, (int)(b - a), k);
    }
    if (!rc) rc = db_margins_put(db, ens_id, pid, dis, cnt, np, err);
    if (!rc) *n = np;
    for (int j = 0; rows && j < k; j++)
        free(rows[j]);
    free(rows), free(nr), free(st), free(prompt), free(z), free(pid), free(cnt), free(dis);
    return rc;
}
