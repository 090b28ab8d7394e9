/* Claims, progress and the other reads of the labeling screen (see assign.h). */
#include "db/assign.h"
#include "db/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define NOW "strftime('%Y-%m-%dT%H:%M:%SZ','now')"

/* A prompt other labelers flagged (unclear, unsafe, duplicate) is held back. */
#define UNFLAGGED " AND NOT EXISTS (SELECT 1 FROM prompt_flags f WHERE f.prompt_id = p.id)"
/* The labeler's own demonstration of prompt p: she knows which answer is hers. */
#define OWN_DEMO                                                                                   \
    " EXISTS (SELECT 1 FROM demonstrations d JOIN candidates c ON c.id = d.candidate_id"           \
    "  WHERE c.prompt_id = p.id AND d.labeler_id = ?1)"

/* Pairs of candidates of prompt X on which two current rankings contradict
 * each other (one ranks a above b, the other b above a; ties contradict nothing). */
#define CONTRA(X)                                                                                  \
    "(SELECT count(*) FROM rankings r1 JOIN rankings r2 ON r2.prompt_id = r1.prompt_id"            \
    "  AND r2.id > r1.id AND r2.is_current AND NOT r2.skipped"                                     \
    " JOIN ranking_items a1 ON a1.ranking_id = r1.id"                                              \
    " JOIN ranking_items b1 ON b1.ranking_id = r1.id AND a1.rank < b1.rank"                        \
    " JOIN ranking_items a2 ON a2.ranking_id = r2.id AND a2.candidate_id = a1.candidate_id"        \
    " JOIN ranking_items b2 ON b2.ranking_id = r2.id AND b2.candidate_id = b1.candidate_id"        \
    "  AND a2.rank > b2.rank"                                                                      \
    " WHERE r1.prompt_id = " X " AND r1.is_current AND NOT r1.skipped)"
/* The rankings prompt X wants: overlap ?3, one more in disagreement order (?7)
 * when its rankings contradict each other. */
#define OVERLAP(X) "(?3 + CASE WHEN ?7 THEN " CONTRA(X) " > 0 ELSE 0 END)"

/* Prompts labeler ?1 may still be given to rank (not gold), split ?2, overlap ?3. */
#define ELIGIBLE                                                                                   \
    " FROM prompts p WHERE (?2 IS NULL OR p.split = ?2)"                                           \
    " AND p.id NOT IN (SELECT prompt_id FROM gold)" UNFLAGGED                                      \
    " AND (SELECT count(*) FROM candidates c WHERE c.prompt_id = p.id) >= 2"                       \
    " AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.prompt_id = p.id AND a.labeler_id = ?1"  \
    "  AND a.task = 'rank')"                                                                       \
    " AND NOT EXISTS (SELECT 1 FROM rankings r WHERE r.prompt_id = p.id AND +r.labeler_id = ?1)"   \
    " AND NOT" OWN_DEMO                                                                            \
    " AND (SELECT count(*) FROM rankings r WHERE r.prompt_id = p.id AND r.is_current"              \
    "      AND NOT r.skipped)"                                                                     \
    "   + (SELECT count(*) FROM assignments a WHERE a.prompt_id = p.id AND a.status = 'claimed'"   \
    "      AND a.task = 'rank' AND a.expires_at > " NOW ") < " OVERLAP("p.id")

/* Prompts labeler ?1 may still be given to answer, split ?2, overlap ?3. */
#define ELIGIBLE_WRITE                                                                             \
    " FROM prompts p WHERE (?2 IS NULL OR p.split = ?2)"                                           \
    " AND p.id NOT IN (SELECT prompt_id FROM gold)" UNFLAGGED                                      \
    " AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.prompt_id = p.id AND a.labeler_id = ?1"  \
    "  AND a.task = 'write')"                                                                      \
    " AND NOT" OWN_DEMO                                                                            \
    " AND (SELECT count(*) FROM demonstrations d JOIN candidates c ON c.id = d.candidate_id"       \
    "      WHERE c.prompt_id = p.id)"                                                              \
    "   + (SELECT count(*) FROM assignments a WHERE a.prompt_id = p.id AND a.status = 'claimed'"   \
    "      AND a.task = 'write' AND a.expires_at > " NOW ") < ?3"

const char *db_assign_task_name(int task) {
    return task == ASSIGN_WRITE ? "write" : "rank";
}

const char *const db_assign_orders[] = {"queue", "random", "uncertain", "disagreement", NULL};

/* Runs a statement that returns at most one integer, with labeler ?1, split
 * ?2, overlap ?3, prompt ?4, seed ?5, RM ?6 and disagreement order ?7 bound
 * where the statement uses them; *out is 0 when there is no row. */
static int query_id(Db *db, const char *sql, int64_t labeler, const AssignOpts *o, int64_t prompt,
                    int64_t *out, Err *err) {
    return db_query_id(db, err, "find a prompt to label", out, sql, "ItiIIIi", labeler,
                       o ? o->split : NULL, o ? o->overlap : 1, prompt,
                       (int64_t)(o ? o->seed & 0x7fffffffu : 0), o ? o->rm_id : 0,
                       o && o->order == ORDER_DISAGREEMENT && o->task == ASSIGN_RANK);
}

/* x ^ (x >> 16) in SQL, which has no xor */
#define XS(x) "((" x " | (" x " >> 16)) - (" x " & (" x " >> 16)))"
/* A 32-bit integer hash of prompt p.id and seed ?5 (the finaliser of a
 * well-known integer hash), so random order is a fixed shuffle per seed. */
#define H0 "((p.id + ?5 * 2654435761) & 4294967295)"
#define H1 "((" XS(H0) " * 73244475) & 4294967295)"
#define H2 "((" XS(H1) " * 73244475) & 4294967295)"
#define HASH XS(H2)
#define MARGIN "(SELECT m.margin FROM prompt_margins m WHERE m.prompt_id = p.id AND m.model_id = ?6)"

/* Step 3's query in each order. */
static const char *const order_sql[] = {
    "SELECT p.id" ELIGIBLE " ORDER BY p.id LIMIT 1",
    "SELECT p.id" ELIGIBLE " ORDER BY " HASH ", p.id LIMIT 1",
    "SELECT p.id" ELIGIBLE " ORDER BY coalesce(" MARGIN ", 1e308), p.id LIMIT 1",
    "SELECT p.id" ELIGIBLE " ORDER BY " CONTRA("p.id") " DESC, p.id LIMIT 1"};

/* Says why prompt pid came now, in the claim's order. */
static int explain(Db *db, const AssignOpts *o, int64_t pid, char *why, size_t n, Err *err) {
    int rc = RLHF_OK;
    why[0] = 0;
    if (o->task != ASSIGN_RANK || o->order == ORDER_QUEUE) return rc;
    if (o->order == ORDER_RANDOM) {
        snprintf(why, n, "random order (seed %llu)", (unsigned long long)(o->seed & 0x7fffffffu));
    } else if (o->order == ORDER_UNCERTAIN) {
        sqlite3_stmt *st = NULL;
        int row = 0;
        rc = db_prepare_bind(db, err, &st,
                             "SELECT m.margin, r.name FROM prompt_margins m JOIN models r ON r.id = m.model_id"
                             " WHERE m.prompt_id = ? AND m.model_id = ?",
                             "II", pid, o->rm_id);
        /* an ensemble keeps its disagreement negated (rm/ensemble.h); a margin is never negative */
        if (!rc && !(rc = db_step(db, st, &row, err, "read margin")) && row)
            snprintf(why, n, "uncertain: %s %.3f (%.40s)",
                     sqlite3_column_double(st, 0) < 0 ? "ensemble disagreement" : "RM margin",
                     fabs(sqlite3_column_double(st, 0)), (const char *)sqlite3_column_text(st, 1));
        else if (!rc)
            snprintf(why, n, "uncertain: the RM has not scored it (queue order)");
        if (st) sqlite3_finalize(st);
    } else {
        int64_t k = 0;
        rc = query_id(db, "SELECT " CONTRA("?4"), 0, o, pid, &k, err);
        if (!rc && k)
            snprintf(why, n, "disagreement: labelers contradict on %lld pair%s, one more labeler",
                     (long long)k, k == 1 ? "" : "s");
        else if (!rc)
            snprintf(why, n, "disagreement: none yet (queue order)");
    }
    return rc;
}

static int exec_claim(Db *db, const char *sql, int64_t labeler, int64_t prompt, int a, Err *err) {
    return db_run(db, err, "update claim", sql, "IIi", labeler, prompt, a);
}

/* Whether prompt ?4 is full for labeler ?1: others' work plus live claims reach overlap ?3. */
static const char *const busy_sql[] = {
    "SELECT (SELECT count(*) FROM gold WHERE prompt_id = ?4) = 0 AND"
    " (SELECT count(*) FROM rankings r WHERE r.prompt_id = ?4 AND r.is_current"
    "  AND NOT r.skipped AND r.labeler_id != ?1)"
    " + (SELECT count(*) FROM assignments a WHERE a.prompt_id = ?4 AND a.task = 'rank'"
    "  AND a.status = 'claimed' AND a.expires_at > " NOW " AND a.labeler_id != ?1)"
    " >= ?3",
    "SELECT (SELECT count(*) FROM demonstrations d JOIN candidates c ON c.id = d.candidate_id"
    "  WHERE c.prompt_id = ?4 AND d.labeler_id != ?1)"
    " + (SELECT count(*) FROM assignments a WHERE a.prompt_id = ?4 AND a.task = 'write'"
    "  AND a.status = 'claimed' AND a.expires_at > " NOW " AND a.labeler_id != ?1)"
    " >= ?3"};

static int claim_in_tx(Db *db, int64_t labeler, const AssignOpts *o, Claim *c, Err *err) {
    int64_t pid = 0, gold = 0;
    int w = o->task == ASSIGN_WRITE;
    /* 1. an unfinished claim of one's own: resume it unless others filled the
     * prompt while it had expired */
    int rc = query_id(
        db,
        w ? "SELECT prompt_id FROM assignments WHERE labeler_id = ?1 AND status = 'claimed'"
            " AND task = 'write'"
            " AND (?2 IS NULL OR prompt_id IN (SELECT id FROM prompts WHERE split = ?2))"
            " ORDER BY claimed_at, id LIMIT 1"
          : "SELECT prompt_id FROM assignments WHERE labeler_id = ?1 AND status = 'claimed'"
            " AND task = 'rank'"
            " AND (?2 IS NULL OR prompt_id IN (SELECT id FROM prompts WHERE split = ?2))"
            " ORDER BY claimed_at, id LIMIT 1",
        labeler, o, 0, &pid, err);
    if (!rc && pid) {
        int64_t busy = 0;
        rc = query_id(db, busy_sql[w], labeler, o, pid, &busy, err);
        if (!rc && busy) {
            rc = exec_claim(db,
                            w ? "DELETE FROM assignments WHERE labeler_id = ?1 AND prompt_id = ?2 "
                                "AND task = 'write'"
                              : "DELETE FROM assignments WHERE labeler_id = ?1 AND prompt_id = ?2 "
                                "AND task = 'rank'",
                            labeler, pid, 0, err);
            if (!rc) return claim_in_tx(db, labeler, o, c, err);
        }
        if (!rc) {
            c->prompt_id = pid;
            c->resumed = 1;
            rc = query_id(
                db, "SELECT max(is_gold) FROM assignments WHERE labeler_id = ?1 AND prompt_id = ?4",
                labeler, o, pid, &gold, err);
            c->is_gold = (int)gold;
            if (!rc) rc = db_assign_renew(db, labeler, pid, o->lease_s, err);
            if (!rc && !gold) rc = explain(db, o, pid, c->why, sizeof c->why, err);
        }
        return rc;
    }
    /* 2. a gold item, when the caller's dice say so */
    if (!rc && o->want_gold && !w) {
        rc = query_id(db,
                      "SELECT g.prompt_id FROM gold g JOIN prompts p ON p.id = g.prompt_id"
                      " WHERE (?2 IS NULL OR p.split = ?2)"
                      " AND (SELECT count(*) FROM candidates c WHERE c.prompt_id = g.prompt_id) >= 2"
                      " AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.prompt_id = g.prompt_id"
                      "  AND a.labeler_id = ?1)"
                      " AND NOT EXISTS (SELECT 1 FROM rankings r WHERE r.prompt_id = g.prompt_id"
                      "  AND +r.labeler_id = ?1)"
                      " ORDER BY g.prompt_id LIMIT 1",
                      labeler, o, 0, &pid, err);
        gold = pid != 0;
    }
    /* 3. the first prompt in the order that still needs rankings */
    if (!rc && !pid)
        rc = query_id(db,
                      w ? "SELECT p.id" ELIGIBLE_WRITE " ORDER BY p.id LIMIT 1"
                        : order_sql[o->order],
                      labeler, o, 0, &pid, err);
    if (rc || !pid) return rc;
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO assignments(prompt_id, labeler_id, is_gold, task, expires_at)"
             " VALUES(?2, ?1, ?3, '%s', strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ','now','%+d seconds'))",
             db_assign_task_name(o->task), o->lease_s);
    rc = exec_claim(db, sql, labeler, pid, (int)gold, err);
    if (!rc) {
        c->prompt_id = pid;
        c->is_gold = (int)gold;
        if (!gold) rc = explain(db, o, pid, c->why, sizeof c->why, err);
    }
    return rc;
}

int db_assign_claim(Db *db, int64_t labeler_id, const AssignOpts *o, Claim *c, Err *err) {
    c->prompt_id = 0;
    c->is_gold = c->resumed = 0;
    c->why[0] = 0;
    if (o->overlap < 1) return err_set(err, RLHF_EINVAL, "overlap must be at least 1");
    if (o->order < ORDER_QUEUE || o->order > ORDER_DISAGREEMENT)
        return err_set(err, RLHF_EINVAL, "unknown labeling order %d", o->order);
    if (o->order == ORDER_UNCERTAIN && o->task == ASSIGN_RANK && o->rm_id <= 0)
        return err_set(err, RLHF_EINVAL, "uncertain order needs a reward model with stored margins");
    int own, rc = db_begin_own(db, &own, err);
    if (rc) return rc;
    rc = db_end_own(db, own, claim_in_tx(db, labeler_id, o, c, err), err);
    if (rc) c->prompt_id = 0;
    return rc;
}

int db_assign_renew(Db *db, int64_t labeler_id, int64_t prompt_id, int lease_s, Err *err) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE assignments SET expires_at = strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ','now','%+d seconds')"
             " WHERE labeler_id = ?1 AND prompt_id = ?2 AND status = 'claimed'",
             lease_s);
    return exec_claim(db, sql, labeler_id, prompt_id, 0, err);
}

int db_assign_overtaken(Db *db, int64_t labeler_id, int64_t prompt_id, const AssignOpts *o,
                        int *taken, Err *err) {
    int64_t v = 0;
    int rc = query_id(
        db,
        "SELECT NOT EXISTS (SELECT 1 FROM assignments WHERE labeler_id = ?1"
        "  AND prompt_id = ?4 AND task = 'rank' AND status = 'claimed' AND expires_at > " NOW ")"
        " AND (SELECT count(*) FROM gold WHERE prompt_id = ?4) = 0 AND"
        " (SELECT count(*) FROM rankings r WHERE r.prompt_id = ?4 AND r.is_current"
        "  AND NOT r.skipped AND r.labeler_id != ?1)"
        " + (SELECT count(*) FROM assignments a WHERE a.prompt_id = ?4 AND a.task = 'rank'"
        "  AND a.status = 'claimed' AND a.expires_at > " NOW " AND a.labeler_id != ?1)"
        " >= " OVERLAP("?4"),
        labeler_id, o, prompt_id, &v, err);
    *taken = v != 0;
    return rc;
}

int db_assign_release(Db *db, int64_t labeler_id, int64_t prompt_id, Err *err) {
    return exec_claim(db,
                      "DELETE FROM assignments WHERE labeler_id = ?1 AND prompt_id = ?2"
                      " AND status = 'claimed'",
                      labeler_id, prompt_id, 0, err);
}

int db_assign_finish(Db *db, int64_t labeler_id, int64_t prompt_id, int task, int skipped,
                     Err *err) {
    return db_run(
        db, err, "finish assignment",
        "INSERT INTO assignments(prompt_id, labeler_id, task, status, done_at)"
        " VALUES(?2, ?1, ?3, ?4, strftime('%Y-%m-%dT%H:%M:%SZ','now'))"
        " ON CONFLICT(prompt_id, labeler_id, task) DO UPDATE SET status = excluded.status,"
        " done_at = excluded.done_at, expires_at = NULL",
        "IItt", labeler_id, prompt_id, db_assign_task_name(task), skipped ? "skipped" : "done");
}

/* Writing: answers written, skips, today's, mean time, and prompts still open. */
static int write_progress(Db *db, int64_t labeler_id, const AssignOpts *o, LabelProgress *p,
                          Err *err) {
    sqlite3_stmt *st;
    int row, rc = db_prepare_bind(
                 db, err, &st,
                 "SELECT count(*), coalesce(sum(created_at >= strftime('%Y-%m-%d','now')), 0),"
                 " avg(time_spent_ms) FROM demonstrations WHERE labeler_id = ?",
                 "I", labeler_id);
    if (rc) return rc;
    if (!(rc = db_step(db, st, &row, err, "read progress")) && row) {
        p->done = sqlite3_column_int64(st, 0);
        p->today = sqlite3_column_int64(st, 1);
        p->mean_s =
            sqlite3_column_type(st, 2) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 2) / 1000.0;
    }
    sqlite3_finalize(st);
    p->gold_n = 0;
    p->gold_acc = NAN;
    p->too_few = 0;
    if (!rc)
        rc = query_id(db,
                      "SELECT count(*) FROM assignments WHERE labeler_id = ?1 AND task = 'write' "
                      "AND status = 'skipped'",
                      labeler_id, o, 0, &p->skipped, err);
    if (!rc)
        rc = query_id(db, "SELECT count(*)" ELIGIBLE_WRITE, labeler_id, o, 0, &p->remaining, err);
    return rc;
}

int db_label_progress(Db *db, int64_t labeler_id, const AssignOpts *o, LabelProgress *p, Err *err) {
    if (o && o->task == ASSIGN_WRITE) return write_progress(db, labeler_id, o, p, err);
    sqlite3_stmt *st;
    int row, rc = db_prepare_bind(db, err, &st,
                                  "SELECT coalesce(sum(NOT skipped), 0), coalesce(sum(skipped), 0),"
                                  " coalesce(sum(created_at >= strftime('%Y-%m-%d','now')), 0),"
                                  " avg(CASE WHEN NOT skipped THEN time_spent_ms END),"
                                  " count(gold_agreement), avg(gold_agreement)"
                                  " FROM rankings WHERE labeler_id = ? AND is_current",
                                  "I", labeler_id);
    if (rc) return rc;
    if (!(rc = db_step(db, st, &row, err, "read progress")) && row) {
        p->done = sqlite3_column_int64(st, 0);
        p->skipped = sqlite3_column_int64(st, 1);
        p->today = sqlite3_column_int64(st, 2);
        p->mean_s = sqlite3_column_type(st, 3) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 3) / 1000.0;
        p->gold_n = sqlite3_column_int64(st, 4);
        p->gold_acc = sqlite3_column_type(st, 5) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 5);
    } else if (!rc) rc = db_fail(db, err, "read progress");
    sqlite3_finalize(st);
    if (!rc) rc = query_id(db, "SELECT count(*)" ELIGIBLE, labeler_id, o, 0, &p->remaining, err);
    if (!rc)
        rc = query_id(db,
                      "SELECT count(*) FROM prompts p WHERE (?2 IS NULL OR p.split = ?2)"
                      " AND (SELECT count(*) FROM candidates c WHERE c.prompt_id = p.id) < 2",
                      labeler_id, o, 0, &p->too_few, err);
    return rc;
}

int db_gold_set(Db *db, int64_t prompt_id, const char *order_expr, const char *note, Err *err) {
    return db_run(db, err, "set gold item",
                  "INSERT INTO gold(prompt_id, order_expr, note) VALUES(?, ?, ?)"
                  " ON CONFLICT(prompt_id) DO UPDATE SET order_expr = excluded.order_expr,"
                  " note = excluded.note",
                  "Itt", prompt_id, order_expr, note);
}

int db_gold_get(Db *db, int64_t prompt_id, char **order_expr, Err *err) {
    sqlite3_stmt *st;
    *order_expr = NULL;
    int row, rc = db_prepare_bind(db, err, &st, "SELECT order_expr FROM gold WHERE prompt_id = ?", "I",
                                  prompt_id);
    if (rc) return rc;
    if (!(rc = db_step(db, st, &row, err, "read gold item")) && row) *order_expr = db_col_strdup(st, 0);
    sqlite3_finalize(st);
    return rc;
}

int db_label_reviewable(Db *db, int64_t labeler_id, int64_t **prompt_ids, int *n, Err *err) {
    sqlite3_stmt *st;
    *prompt_ids = NULL;
    *n = 0;
    int row, cap = 0;
    int rc = db_prepare_bind(db, err, &st,
                             "SELECT prompt_id FROM rankings WHERE labeler_id = ? AND is_current ORDER BY id",
                             "I", labeler_id);
    if (rc) return rc;
    while (!(rc = db_step(db, st, &row, err, "list rankings to review")) && row) {
        if ((rc = db_grow(prompt_ids, *n, &cap, 16, sizeof **prompt_ids, err))) break;
        (*prompt_ids)[(*n)++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (rc) {
        free(*prompt_ids);
        *prompt_ids = NULL;
        *n = 0;
    }
    return rc;
}
