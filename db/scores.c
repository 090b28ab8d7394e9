/* The scores table (schema migration 2). */
#include "db/scores.h"
#include "db/internal.h"

#include <stdlib.h>

int db_score_put(Db *db, int64_t cand_id, int64_t rm_id, double score, Err *err) {
    sqlite3_stmt *st;
    int rc = db_prepare(db,
                        "INSERT INTO scores(candidate_id, model_id, score) VALUES(?1, ?2, ?3)"
                        " ON CONFLICT(candidate_id, model_id) DO UPDATE SET score = excluded.score,"
                        " created_at = strftime('%Y-%m-%dT%H:%M:%SZ','now')",
                        &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, cand_id);
    sqlite3_bind_int64(st, 2, rm_id);
    sqlite3_bind_double(st, 3, score);
    if (sqlite3_step(st) != SQLITE_DONE) rc = db_fail(db, err, "store score");
    sqlite3_finalize(st);
    return rc;
}

int db_score_get(Db *db, int64_t cand_id, int64_t rm_id, double *score, int *found, Err *err) {
    sqlite3_stmt *st;
    int rc = db_prepare(db, "SELECT score FROM scores WHERE candidate_id = ? AND model_id = ?", &st,
                        err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, cand_id);
    sqlite3_bind_int64(st, 2, rm_id);
    int s = sqlite3_step(st);
    *found = s == SQLITE_ROW;
    if (*found) *score = sqlite3_column_double(st, 0);
    else if (s != SQLITE_DONE) rc = db_fail(db, err, "read score");
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
                        "SELECT c.id, c.prompt_id, p.text, c.text FROM candidates c"
                        " JOIN prompts p ON p.id = c.prompt_id"
                        " WHERE c.id > ?1 AND (?2 <= 0 OR c.model_id = ?2)"
                        "  AND (?3 IS NULL OR p.split = ?3)"
                        "  AND (?4 <= 0 OR NOT EXISTS (SELECT 1 FROM scores s"
                        "   WHERE s.candidate_id = c.id AND s.model_id = ?4))"
                        " ORDER BY c.id LIMIT ?5",
                        &st, err);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, f->after_id);
    sqlite3_bind_int64(st, 2, f->model_id);
    db_bind_text(st, 3, f->split);
    sqlite3_bind_int64(st, 4, f->unscored_by);
    sqlite3_bind_int(st, 5, f->limit);
    ScoreTodo *r = calloc((size_t)(f->limit > 0 ? f->limit : 1), sizeof *r);
    if (!r) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    int k = 0, s;
    while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
        r[k].cand_id = sqlite3_column_int64(st, 0);
        r[k].prompt_id = sqlite3_column_int64(st, 1);
        r[k].prompt = db_col_strdup(st, 2);
        r[k].text = db_col_strdup(st, 3);
        if (!r[k].prompt || !r[k].text) rc = err_set(err, RLHF_ENOMEM, "out of memory");
        k++;
    }
    if (!rc && s != SQLITE_DONE) rc = db_fail(db, err, "read candidates to score");
    sqlite3_finalize(st);
    if (rc) {
        db_score_todo_free(r, k);
        return rc;
    }
    if (k == 0) free(r), r = NULL;
    *rows = r, *n = k;
    return RLHF_OK;
}
