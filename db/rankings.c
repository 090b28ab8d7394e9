/* Labelers, ranking submission and ranking reads. */
#include "db/rankings.h"
#include "db/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int db_labeler_ensure(Db *db, const char *name, int simulated, const char *rule, int64_t *id,
                      Err *err) {
    sqlite3_stmt *st;
    int row, rc = db_prepare_bind(db, err, &st,
                                  "INSERT INTO labelers(name, simulated, rule) VALUES(?1, ?2, ?3)"
                                  " ON CONFLICT(name) DO UPDATE SET rule = coalesce(?3, rule) RETURNING id, simulated",
                                  "tit", name, simulated != 0, rule);
    if (rc) return rc;
    if (!(rc = db_step(db, st, &row, err, "add labeler")) && row) {
        *id = sqlite3_column_int64(st, 0);
        if (sqlite3_column_int(st, 1) != (simulated != 0))
            rc = err_set(err, RLHF_EINVAL, "labeler '%s' already exists as a %s labeler", name,
                         sqlite3_column_int(st, 1) ? "simulated" : "human");
    } else if (!rc) rc = db_fail(db, err, "add labeler");
    sqlite3_finalize(st);
    return rc;
}

/* Ranks must be 1..m with ties: sorted, each rank is 1 or the previous rank or
 * the number of items before it plus one (standard competition ranking) or the
 * previous rank plus one (dense ranking). Both forms are accepted. */
static int check_items(Db *db, const RankingIn *in, Err *err) {
    int ranked = 0;
    for (int i = 0; i < in->n_items; i++) {
        const RankingItemIn *it = &in->items[i];
        if (it->rank < 0 || it->rank > in->n_items)
            return err_set(err, RLHF_EINVAL, "candidate %lld: rank %d out of range 1..%d",
                           (long long)it->candidate_id, it->rank, in->n_items);
        if (it->likert && (it->likert < 1 || it->likert > 7))
            return err_set(err, RLHF_EINVAL, "candidate %lld: score %d out of range 1..7",
                           (long long)it->candidate_id, it->likert);
        if (it->rank) ranked++;
        for (int j = 0; j < i; j++)
            if (in->items[j].candidate_id == it->candidate_id)
                return err_set(err, RLHF_EINVAL, "candidate %lld appears twice", (long long)it->candidate_id);
    }
    if (!in->skipped && !in->none_acceptable && ranked < 2 && in->n_items >= 2)
        return err_set(err, RLHF_EINVAL, "a ranking needs at least two ranked candidates");
    sqlite3_stmt *st;
    int rc = db_prepare(db, "SELECT prompt_id FROM candidates WHERE id = ?", &st, err);
    if (rc) return rc;
    for (int i = 0; i < in->n_items && !rc; i++) {
        sqlite3_reset(st);
        db_bind(st, "I", in->items[i].candidate_id);
        if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int64(st, 0) != in->prompt_id)
            rc = err_set(err, RLHF_EINVAL, "candidate %lld does not belong to prompt %lld",
                         (long long)in->items[i].candidate_id, (long long)in->prompt_id);
    }
    sqlite3_finalize(st);
    return rc;
}

static int submit(Db *db, const RankingIn *in, int64_t *ranking_id, Err *err) {
    sqlite3_stmt *st;
    int64_t prev = 0, version = 1;
    int rc = db_prepare_bind(db, err, &st,
                             "SELECT id, version FROM rankings WHERE prompt_id = ? AND labeler_id = ?"
                             " AND is_current",
                             "II", in->prompt_id, in->labeler_id);
    if (rc) return rc;
    if (sqlite3_step(st) == SQLITE_ROW) {
        prev = sqlite3_column_int64(st, 0);
        version = sqlite3_column_int64(st, 1) + 1;
    }
    sqlite3_finalize(st);
    if (prev && (rc = db_run(db, err, "supersede ranking", "UPDATE rankings SET is_current = 0 WHERE id = ?",
                             "I", prev)))
        return rc;
    rc = db_run(db, err, "insert ranking",
                "INSERT INTO rankings(prompt_id, labeler_id, version, supersedes, simulated,"
                " skipped, skip_reason, none_acceptable, note, shown_order, time_spent_ms,"
                " gold_agreement, source, created_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,"
                " coalesce(?, strftime('%Y-%m-%dT%H:%M:%fZ','now')))",
                "III?Iiititt?I?dtt", in->prompt_id, in->labeler_id, version, prev != 0, prev,
                in->simulated != 0, in->skipped != 0, in->skip_reason, in->none_acceptable != 0,
                in->note, in->shown_order, in->time_spent_ms >= 0, in->time_spent_ms,
                !isnan(in->gold_agreement), in->gold_agreement, in->source, in->created_at);
    if (rc) return rc;
    int64_t rid = sqlite3_last_insert_rowid(db->h);
    rc = db_prepare(db,
                    "INSERT INTO ranking_items(ranking_id, candidate_id, rank, likert, flags, shown_pos)"
                    " VALUES(?,?,?,?,?,?)",
                    &st, err);
    if (rc) return rc;
    for (int i = 0; i < in->n_items && !rc; i++) {
        const RankingItemIn *it = &in->items[i];
        sqlite3_reset(st);
        db_bind(st, "II?i?it?i", rid, it->candidate_id, it->rank > 0, it->rank, it->likert > 0,
                it->likert, it->flags, it->shown_pos >= 0, it->shown_pos);
        if (sqlite3_step(st) != SQLITE_DONE) rc = db_fail(db, err, "insert ranking item");
    }
    sqlite3_finalize(st);
    if (!rc)
        rc = db_run(
            db, err, "finish assignment",
            "UPDATE assignments SET status = ?3, done_at = strftime('%Y-%m-%dT%H:%M:%SZ','now'),"
            " expires_at = NULL WHERE prompt_id = ?1 AND labeler_id = ?2 AND task = 'rank'",
            "IIt", in->prompt_id, in->labeler_id, in->skipped ? "skipped" : "done");
    if (!rc && ranking_id) *ranking_id = rid;
    return rc;
}

int db_ranking_submit(Db *db, const RankingIn *in, int64_t *ranking_id, Err *err) {
    int own, rc = db_begin_own(db, &own, err);
    if (rc) return rc;
    rc = check_items(db, in, err);
    if (!rc) rc = submit(db, in, ranking_id, err);
    return db_end_own(db, own, rc, err);
}

RankingFilter db_ranking_filter_default(void) {
    RankingFilter f = {0};
    f.simulated = -1;
    return f;
}

static void free_items(RankingRow *r) {
    free(r->items);
    r->items = NULL;
    r->n_items = 0;
}

/* Whether ranking r has an item carrying flag F (items keep flags as a JSON array). */
#define FLAGGED(F)                                                                                 \
    "EXISTS (SELECT 1 FROM ranking_items x JOIN json_each(CASE WHEN json_valid(x.flags)"            \
    " THEN x.flags ELSE '[]' END) j WHERE x.ranking_id = r.id AND j.value = " F ")"

int db_rankings_each(Db *db, const RankingFilter *f, int (*fn)(const RankingRow *, void *),
                     void *ctx, Err *err) {
    RankingFilter def = db_ranking_filter_default();
    if (!f) f = &def;
    sqlite3_stmt *st;
    /* one pass over a join: rows of one ranking are consecutive */
    int rc = db_prepare(
        db,
        "SELECT r.id, r.prompt_id, r.labeler_id, r.supersedes, r.time_spent_ms, r.version,"
        " r.is_current, r.simulated, r.skipped, r.none_acceptable, r.gold_agreement,"
        " l.name, p.text, p.split, r.note, r.skip_reason, r.shown_order, r.source, r.created_at,"
        " i.candidate_id, c.model_id, i.rank, i.likert, i.shown_pos, i.flags, c.text, m.name,"
        " c.tokens, c.finish"
        " FROM rankings r JOIN labelers l ON l.id = r.labeler_id JOIN prompts p ON p.id = r.prompt_id"
        " LEFT JOIN ranking_items i ON i.ranking_id = r.id"
        " LEFT JOIN candidates c ON c.id = i.candidate_id LEFT JOIN models m ON m.id = c.model_id"
        " WHERE (?1 IS NULL OR p.split = ?1) AND (?2 IS NULL OR l.name = ?2)"
        "  AND (?3 OR r.is_current) AND (?4 OR NOT r.skipped)"
        "  AND (?5 < 0 OR r.simulated = ?5) AND (?6 IS NULL OR r.created_at >= ?6)"
        "  AND (?7 IS NULL OR r.created_at < ?7) AND (?8 = 0 OR r.prompt_id = ?8)"
        "  AND (?9 IS NULL OR " FLAGGED("?9") ") AND (?10 IS NULL OR NOT " FLAGGED("?10") ")"
        " ORDER BY r.prompt_id, r.id, i.rank IS NULL, i.rank, i.candidate_id",
        &st, err);
    if (rc) return rc;
    db_bind(st, "ttiiittItt", f->split, f->labeler, f->all_versions != 0, f->with_skipped != 0,
            f->simulated, f->since, f->until, f->prompt_id, f->flag, f->no_flag);

    RankingRow row;
    memset(&row, 0, sizeof row);
    int cap = 0, s;
    int64_t cur = 0;
    /* Strings of the ranking-level columns must outlive the following steps,
     * so they are copied into `keep` per ranking. */
    char *keep[8] = {0};
    char **item_strs = NULL;
    for (;;) {
        s = sqlite3_step(st);
        int64_t id = s == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        if (cur && (s != SQLITE_ROW || id != cur)) {
            rc = fn(&row, ctx);
            for (int i = 0; i < row.n_items * 4; i++) free(item_strs[i]);
            row.n_items = 0;
            if (rc) break;
        }
        if (s != SQLITE_ROW) break;
        if (id != cur) {
            cur = id;
            for (int i = 0; i < 8; i++) free(keep[i]);
            RankingItemRow *items = row.items;
            memset(&row, 0, sizeof row);
            row.items = items;
            row.id = id;
            row.prompt_id = sqlite3_column_int64(st, 1);
            row.labeler_id = sqlite3_column_int64(st, 2);
            row.supersedes = sqlite3_column_int64(st, 3);
            row.time_spent_ms = sqlite3_column_type(st, 4) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 4);
            row.version = sqlite3_column_int(st, 5);
            row.is_current = sqlite3_column_int(st, 6);
            row.simulated = sqlite3_column_int(st, 7);
            row.skipped = sqlite3_column_int(st, 8);
            row.none_acceptable = sqlite3_column_int(st, 9);
            row.gold_agreement = sqlite3_column_type(st, 10) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 10);
            for (int i = 0; i < 8; i++) keep[i] = db_col_strdup(st, 11 + i);
            row.labeler = keep[0], row.prompt = keep[1], row.split = keep[2], row.note = keep[3];
            row.skip_reason = keep[4], row.shown_order = keep[5], row.source = keep[6];
            row.created_at = keep[7];
            if (!row.labeler) rc = db_null_column(db, err, "labeler", row.labeler_id, "name");
            else if (!row.prompt) rc = db_null_column(db, err, "prompt", row.prompt_id, "text");
            else if (!row.split) rc = db_null_column(db, err, "prompt", row.prompt_id, "split");
            if (rc) break;
        }
        if (sqlite3_column_type(st, 19) == SQLITE_NULL) continue; /* no items */
        if (row.n_items == cap) {
            cap = cap ? cap * 2 : 8;
            RankingItemRow *p = realloc(row.items, (size_t)cap * sizeof *p);
            char **q = realloc(item_strs, (size_t)cap * 4 * sizeof *q);
            if (p) row.items = p;
            if (q) item_strs = q;
            if (!p || !q) {
                rc = err_set(err, RLHF_ENOMEM, "out of memory");
                break;
            }
        }
        RankingItemRow *it = &row.items[row.n_items];
        it->candidate_id = sqlite3_column_int64(st, 19);
        it->model_id = sqlite3_column_int64(st, 20);
        it->rank = sqlite3_column_type(st, 21) == SQLITE_NULL ? 0 : sqlite3_column_int(st, 21);
        it->likert = sqlite3_column_type(st, 22) == SQLITE_NULL ? 0 : sqlite3_column_int(st, 22);
        it->shown_pos = sqlite3_column_type(st, 23) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 23);
        char **sp = &item_strs[row.n_items * 4];
        sp[0] = db_col_strdup(st, 24);
        sp[1] = db_col_strdup(st, 25);
        sp[2] = db_col_strdup(st, 26);
        sp[3] = db_col_strdup(st, 27);
        it->flags = sp[0], it->text = sp[1], it->model_name = sp[2], it->tokens = sp[3];
        it->finish = db_finish_parse((const char *)sqlite3_column_text(st, 28));
        row.n_items++;
        if (!it->text) rc = db_null_column(db, err, "candidate", it->candidate_id, "text");
        else if (!it->model_name) rc = db_null_column(db, err, "model", it->model_id, "name");
        if (rc) break;
    }
    if (!rc && s != SQLITE_DONE && s != SQLITE_ROW) rc = db_fail(db, err, "read rankings");
    for (int i = 0; i < row.n_items * 4; i++) free(item_strs[i]);
    for (int i = 0; i < 8; i++) free(keep[i]);
    free(item_strs);
    free_items(&row);
    sqlite3_finalize(st);
    return rc;
}
