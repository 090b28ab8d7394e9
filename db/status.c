/* Counts across the project for `rlhf status`. */
#include "db/status.h"
#include "db/internal.h"

#include <stdlib.h>
#include <string.h>

static int collect(Db *db, const char *sql, StatusCount **out, int *n, Err *err) {
    sqlite3_stmt *st;
    *out = NULL;
    *n = 0;
    int rc = db_prepare(db, sql, &st, err), row, cap = 0;
    if (rc) return rc;
    while (!(rc = db_step(db, st, &row, err, "status")) && row) {
        if ((rc = db_grow(out, *n, &cap, 8, sizeof **out, err))) break;
        StatusCount *c = &(*out)[(*n)++];
        c->name = db_col_strdup(st, 0);
        c->n = sqlite3_column_int64(st, 1);
        c->extra = sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    return rc;
}

int db_status(Db *db, DbStatus *s, Err *err) {
    memset(s, 0, sizeof *s);
    struct {
        const char *sql;
        int64_t *out;
    } q[] = {
        {"SELECT count(*) FROM prompts", &s->prompts},
        {"SELECT count(*) FROM candidates", &s->candidates},
        {"SELECT count(*) FROM labelers", &s->labelers},
        {"SELECT count(*) FROM rankings WHERE is_current AND NOT skipped", &s->rankings},
        {"SELECT count(*) FROM rankings WHERE is_current AND skipped", &s->skipped},
        {"SELECT count(*) FROM models", &s->models},
        {"SELECT count(*) FROM runs", &s->runs},
        {"SELECT count(*) FROM runs WHERE status = 'running'", &s->runs_running},
        {"SELECT count(DISTINCT prompt_id) FROM candidates", &s->prompts_with_candidates},
        {"SELECT count(DISTINCT prompt_id) FROM rankings WHERE is_current AND NOT skipped",
         &s->prompts_ranked},
        {"SELECT count(*) FROM ranking_items a JOIN ranking_items b"
         " ON a.ranking_id = b.ranking_id AND a.candidate_id < b.candidate_id"
         " JOIN rankings r ON r.id = a.ranking_id"
         " WHERE r.is_current AND NOT r.skipped AND a.rank IS NOT NULL AND b.rank IS NOT NULL",
         &s->comparisons},
        {"SELECT count(*) FROM ranking_items a JOIN ranking_items b"
         " ON a.ranking_id = b.ranking_id AND a.candidate_id < b.candidate_id"
         " JOIN rankings r ON r.id = a.ranking_id"
         " WHERE r.is_current AND NOT r.skipped AND a.rank = b.rank",
         &s->ties},
        {"SELECT count(*) FROM demonstrations", &s->demos},
        {"SELECT count(DISTINCT c.prompt_id) FROM demonstrations d JOIN candidates c ON c.id = "
         "d.candidate_id",
         &s->demo_prompts},
        {"SELECT count(*) FROM prompts WHERE author_id IS NOT NULL", &s->written_prompts},
        {"SELECT count(DISTINCT prompt_id) FROM prompt_flags", &s->flagged_prompts},
    };
    /* one read transaction: one snapshot, so the counts agree with each other
     * (the total with the sum by labeler) while labelers commit */
    int rc = db_exec(db, "BEGIN", err);
    if (!rc) rc = db_schema_version(db, &s->schema_version, err);
    for (size_t i = 0; !rc && i < sizeof q / sizeof q[0]; i++) rc = db_query_int(db, q[i].sql, q[i].out, err);
    if (!rc)
        rc = collect(db, "SELECT split, count(*), 0 FROM prompts GROUP BY split ORDER BY split",
                     &s->splits, &s->n_splits, err);
    if (!rc)
        rc = collect(db,
                     "SELECT l.name, count(r.id), l.simulated FROM labelers l"
                     " LEFT JOIN rankings r ON r.labeler_id = l.id AND r.is_current AND NOT r.skipped"
                     " GROUP BY l.id ORDER BY l.name",
                     &s->by_labeler, &s->n_labelers, err);
    if (!rc)
        rc = collect(
            db,
            "SELECT l.name, count(*), coalesce(CAST(round(avg(d.time_spent_ms)) AS INTEGER), -1)"
            " FROM demonstrations d JOIN labelers l ON l.id = d.labeler_id GROUP BY l.id ORDER BY "
            "l.name",
            &s->by_writer, &s->n_writers, err);
    if (!rc) rc = db_exec(db, "COMMIT", err);
    if (rc) {
        db_rollback(db);
        db_status_free(s);
    }
    return rc;
}

void db_status_free(DbStatus *s) {
    for (int i = 0; i < s->n_splits; i++) free(s->splits[i].name);
    for (int i = 0; i < s->n_labelers; i++) free(s->by_labeler[i].name);
    for (int i = 0; i < s->n_writers; i++)
        free(s->by_writer[i].name);
    free(s->splits);
    free(s->by_labeler);
    free(s->by_writer);
    s->splits = s->by_labeler = s->by_writer = NULL;
    s->n_splits = s->n_labelers = s->n_writers = 0;
}
