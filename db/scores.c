/* The scores table (schema migration 2) and the per-prompt margins computed
 * from it (migration 6). */
#include "db/scores.h"
#include "db/internal.h"

#include <math.h>
#include <stdlib.h>

int db_score_put(Db *db, int64_t cand_id, int64_t rm_id, double score, Err *err) {
    return db_run(db, err, "store score",
                  "INSERT INTO scores(candidate_id, model_id, score) VALUES(?1, ?2, ?3)"
                  " ON CONFLICT(candidate_id, model_id) DO UPDATE SET score = excluded.score,"
                  " created_at = strftime('%Y-%m-%dT%H:%M:%SZ','now')",
                  "IId", cand_id, rm_id, score);
}

int db_score_get(Db *db, int64_t cand_id, int64_t rm_id, double *score, int *found, Err *err) {
    sqlite3_stmt *st;
    int rc = db_prepare_bind(db, err, &st, "SELECT score FROM scores WHERE candidate_id = ? AND model_id = ?",
                             "II", cand_id, rm_id);
    if (rc) return rc;
    if (!(rc = db_step(db, st, found, err, "read score")) && *found) *score = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return rc;
}

void db_score_todo_free(ScoreTodo *rows, int n) {
    for (int i = 0; rows && i < n; i++)
        free(rows[i].prompt), free(rows[i].text);
    free(rows);
}

int db_score_todo(Db *db, const ScoreTodoFilter *f, ScoreTodo **rows, int *n, Err *err) {
    *rows = NULL, *n = 0;
    sqlite3_stmt *st;
    int rc = db_prepare(db,
                        "SELECT c.id, c.prompt_id, p.text, c.text, c.finish = 'length' FROM candidates c"
                        " JOIN prompts p ON p.id = c.prompt_id"
                        " WHERE c.id > ?1 AND (?2 <= 0 OR c.model_id = ?2)"
                        "  AND (?3 IS NULL OR p.split = ?3)"
                        "  AND (?4 <= 0 OR NOT EXISTS (SELECT 1 FROM scores s"
                        "   WHERE s.candidate_id = c.id AND s.model_id = ?4))"
                        " ORDER BY c.id LIMIT ?5",
                        &st, err);
    if (rc) return rc;
    db_bind(st, "IItIi", f->after_id, f->model_id, f->split, f->unscored_by, f->limit);
    ScoreTodo *r = calloc((size_t)(f->limit > 0 ? f->limit : 1), sizeof *r);
    if (!r) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    int k = 0, row;
    while (!rc && !(rc = db_step(db, st, &row, err, "read candidates to score")) && row) {
        r[k].cand_id = sqlite3_column_int64(st, 0);
        r[k].prompt_id = sqlite3_column_int64(st, 1);
        r[k].prompt = db_col_strdup(st, 2);
        r[k].text = db_col_strdup(st, 3);
        r[k].cut = sqlite3_column_int(st, 4);
        if (!r[k].prompt || !r[k].text) rc = err_set(err, RLHF_ENOMEM, "out of memory");
        k++;
    }
    sqlite3_finalize(st);
    if (rc) {
        db_score_todo_free(r, k);
        return rc;
    }
    if (k == 0) free(r), r = NULL;
    *rows = r, *n = k;
    return RLHF_OK;
}

int db_margins_refresh(Db *db, int64_t rm_id, int64_t *n, Err *err) {
    int own, rc = db_begin_own(db, &own, err);
    if (rc) return rc;
    rc = db_run(db, err, "clear margins", "DELETE FROM prompt_margins WHERE model_id = ?1", "I", rm_id);
    /* a candidate id breaks ties so that equal scores give margin 0, not NULL */
    if (!rc)
        rc = db_run(db, err, "store margins",
                    "INSERT INTO prompt_margins(prompt_id, model_id, margin, n_scored)"
                    " SELECT prompt_id, ?1, max(CASE WHEN rn = 1 THEN score END)"
                    "  - max(CASE WHEN rn = 2 THEN score END), count(*)"
                    " FROM (SELECT c.prompt_id, s.score, row_number() OVER"
                    "  (PARTITION BY c.prompt_id ORDER BY s.score DESC, c.id) AS rn"
                    "  FROM scores s JOIN candidates c ON c.id = s.candidate_id WHERE s.model_id = ?1)"
                    " GROUP BY prompt_id HAVING count(*) >= 2",
                    "I", rm_id);
    if (!rc && n)
        rc = db_query_id(db, err, "count margins", n,
                         "SELECT count(*) FROM prompt_margins WHERE model_id = ?1", "I", rm_id);
    return db_end_own(db, own, rc, err);
}

int db_margins_rm_newest(Db *db, int64_t *rm_id, Err *err) {
    return db_query_id(db, err, "find the newest RM with margins", rm_id,
                       "SELECT max(model_id) FROM prompt_margins", "");
}

int db_margin_get(Db *db, int64_t prompt_id, int64_t rm_id, double *margin, int *found, Err *err) {
    sqlite3_stmt *st;
    int rc = db_prepare_bind(db, err, &st,
                             "SELECT margin FROM prompt_margins WHERE prompt_id = ? AND model_id = ?", "II",
                             prompt_id, rm_id);
    if (rc) return rc;
    if (!(rc = db_step(db, st, found, err, "read margin")) && *found) *margin = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    return rc;
}

int db_margins_list(Db *db, int64_t rm_id, double max_margin, int64_t **prompt_ids, double **margins,
                    int64_t *n, Err *err) {
    *prompt_ids = NULL, *margins = NULL, *n = 0;
    sqlite3_stmt *st;
    int rc = db_prepare_bind(db, err, &st,
                             "SELECT prompt_id, margin FROM prompt_margins WHERE model_id = ?1"
                             " AND (?2 IS NULL OR margin <= ?2) ORDER BY margin, prompt_id",
                             "I?d", rm_id, !isnan(max_margin), max_margin);
    if (rc) return rc;
    int row, cap = 0, k = 0;
    while (!(rc = db_step(db, st, &row, err, "read margins")) && row) {
        int c2 = cap;
        if ((rc = db_grow(prompt_ids, k, &cap, 64, sizeof **prompt_ids, err)) ||
            (rc = db_grow(margins, k, &c2, 64, sizeof **margins, err)))
            break;
        (*prompt_ids)[k] = sqlite3_column_int64(st, 0);
        (*margins)[k++] = sqlite3_column_double(st, 1);
    }
    sqlite3_finalize(st);
    if (rc) {
        free(*prompt_ids), free(*margins);
        *prompt_ids = NULL, *margins = NULL;
        return rc;
    }
    *n = k;
    return RLHF_OK;
}

int db_query_scored(Db *db, int64_t rm_id, int64_t *n, Err *err) {
    return db_query_id(db, err, "count scores", n, "SELECT count(*) FROM scores WHERE model_id = ?1", "I",
                       rm_id);
}

int db_score_stats(Db *db, int64_t rm_id, double st[3], Err *err) {
    sqlite3_stmt *q;
    st[0] = st[1] = st[2] = 0;
    int row, rc = db_prepare_bind(db, err, &q,
                                  "SELECT count(*), avg(score), avg(score * score) FROM scores WHERE model_id = ?",
                                  "I", rm_id);
    if (rc) return rc;
    if (!(rc = db_step(db, q, &row, err, "read score statistics")) && row && sqlite3_column_int64(q, 0)) {
        st[0] = (double)sqlite3_column_int64(q, 0);
        st[1] = sqlite3_column_double(q, 1);
        double var = sqlite3_column_double(q, 2) - st[1] * st[1];
        st[2] = var > 0 ? sqrt(var) : 0;
    }
    sqlite3_finalize(q);
    return rc;
}

int db_scores_list(Db *db, int64_t rm_id, ScoreRow **rows, int64_t *n, Err *err) {
    sqlite3_stmt *st = NULL;
    *rows = NULL, *n = 0;
    int cap = 0, row = 1,
        rc = db_prepare_bind(db, err, &st,
                             "SELECT c.prompt_id, s.candidate_id, s.score FROM scores s"
                             " JOIN candidates c ON c.id = s.candidate_id WHERE s.model_id = ?"
                             " ORDER BY c.prompt_id, s.candidate_id",
                             "I", rm_id);
    while (!rc && !(rc = db_step(db, st, &row, err, "read scores")) && row) {
        if (*n >= INT32_MAX) {
            rc = err_set(err, RLHF_ENOMEM, "too many scores");
            break;
        }
        if ((rc = db_grow(rows, (int)*n, &cap, 256, sizeof **rows, err))) break;
        (*rows)[*n] = (ScoreRow){sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                                 sqlite3_column_double(st, 2)};
        ++*n;
    }
    sqlite3_finalize(st);
    if (rc) free(*rows), *rows = NULL, *n = 0;
    return rc;
}

int db_margins_put(Db *db, int64_t rm_id, const int64_t *prompt_ids, const double *margins,
                   const int64_t *n_scored, int64_t n, Err *err) {
    int own, rc = db_begin_own(db, &own, err);
    if (rc) return rc;
    rc = db_run(db, err, "clear margins", "DELETE FROM prompt_margins WHERE model_id = ?1", "I",
                rm_id);
    for (int64_t i = 0; i < n && !rc; i++)
        rc = db_run(
            db, err, "store margin",
            "INSERT INTO prompt_margins(prompt_id, model_id, margin, n_scored) VALUES(?, ?, ?, ?)",
            "IIdI", prompt_ids[i], rm_id, margins[i], n_scored[i]);
    return db_end_own(db, own, rc, err);
}
