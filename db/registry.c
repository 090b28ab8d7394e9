/* Models, runs and metrics. */
#include "db/registry.h"
#include "db/internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int db_model_upsert(Db *db, const ModelIn *m, int64_t *id, Err *err) {
    int64_t got;
    int rc = db_query_id(db, err, "register model", &got,
                         "INSERT INTO models(name, kind, path, parent_id, sha256, config, template)"
                         " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                         " ON CONFLICT(name) DO UPDATE SET kind = ?2, path = ?3,"
                         "  parent_id = coalesce(?4, parent_id), sha256 = ?5,"
                         "  config = coalesce(?6, config), template = coalesce(?7, template)"
                         " RETURNING id",
                         "ttt?Ittt", m->name, m->kind, m->path, m->parent_id > 0, m->parent_id, m->sha256,
                         m->config, m->template);
    if (!rc && !got) rc = db_fail(db, err, "register model");
    if (!rc && id) *id = got;
    return rc;
}

/* Something was made from model `id`: candidates drawn from it, scores it
 * gave, a model derived from it, a run (other than run_id) that started from
 * it. A run that only wrote it does not count: an interrupted run and its
 * --resume, or a --force rerun, write one checkpoint in turn. */
static int model_in_use(Db *db, int64_t id, int64_t run_id, int *used, Err *err) {
    int64_t v;
    int rc = db_query_id(db, err, "look up model", &v,
                         "SELECT EXISTS(SELECT 1 FROM candidates WHERE model_id = ?1)"
                         " OR EXISTS(SELECT 1 FROM scores WHERE model_id = ?1)"
                         " OR EXISTS(SELECT 1 FROM models WHERE parent_id = ?1)"
                         " OR EXISTS(SELECT 1 FROM runs WHERE id <> ?2 AND input_model_id = ?1)",
                         "II", id, run_id);
    if (!rc) *used = (int)v;
    return rc;
}

int db_model_keep_version(Db *db, const char *name, const char *sha256, int64_t run_id,
                          char **kept_as, Err *err) {
    *kept_as = NULL;
    ModelRow row;
    int rc = db_model_get(db, name, &row, NULL);
    if (rc == RLHF_ENOTFOUND) return RLHF_OK;
    if (rc) return db_model_get(db, name, &row, err);
    int used = 0;
    /* same weights, another name's row found by path, or nothing drawn from
     * the old weights: the row may simply be updated */
    if (strcmp(row.name, name) != 0 || !row.sha256 || !sha256 || !strcmp(row.sha256, sha256) ||
        (rc = model_in_use(db, row.id, run_id, &used, err)) || !used) {
        db_model_row_free(&row);
        return rc;
    }
    sqlite3_stmt *st;
    rc = db_prepare(db, "UPDATE models SET name = ?2 WHERE id = ?1", &st, err);
    for (int attempt = 0; !rc; attempt++) {
        char *nn = attempt == 0 ? sqlite3_mprintf("%s@%.12s", name, row.sha256)
                                : sqlite3_mprintf("%s@%.12s#%lld", name, row.sha256, (long long)row.id);
        if (!nn) {
            rc = err_set(err, RLHF_ENOMEM, "out of memory");
            break;
        }
        sqlite3_reset(st);
        db_bind(st, "It", row.id, nn);
        int s = sqlite3_step(st);
        if (s == SQLITE_DONE) {
            if (!(*kept_as = strdup(nn))) rc = err_set(err, RLHF_ENOMEM, "out of memory");
        } else if (attempt > 0 || sqlite3_extended_errcode(db->h) != SQLITE_CONSTRAINT_UNIQUE)
            rc = db_fail(db, err, "keep the model's earlier version");
        sqlite3_free(nn);
        if (*kept_as) break;
    }
    sqlite3_finalize(st);
    db_model_row_free(&row);
    return rc;
}

int db_model_ensure_external(Db *db, const char *name, int64_t *id, Err *err) {
    int rc = db_query_id(db, err, "register model", id,
                         "INSERT INTO models(name, kind) VALUES(?1, 'external')"
                         " ON CONFLICT(name) DO UPDATE SET name = name RETURNING id",
                         "t", name);
    if (!rc && !*id) rc = db_fail(db, err, "register model");
    return rc;
}

static int fill_model(Db *db, sqlite3_stmt *st, ModelRow *m, Err *err) {
    m->id = sqlite3_column_int64(st, 0);
    m->name = db_col_strdup(st, 1);
    m->kind = db_col_strdup(st, 2);
    m->path = db_col_strdup(st, 3);
    m->parent_id = sqlite3_column_int64(st, 4);
    m->sha256 = db_col_strdup(st, 5);
    m->config = db_col_strdup(st, 6);
    m->template = db_col_strdup(st, 7);
    m->created_at = db_col_strdup(st, 8);
    const char *missing = !m->name ? "name" : !m->kind ? "kind" : !m->created_at ? "created_at" : NULL;
    if (!missing) return RLHF_OK;
    db_model_row_free(m);
    return db_null_column(db, err, "model", sqlite3_column_int64(st, 0), missing);
}

#define MODEL_COLS "id, name, kind, path, parent_id, sha256, config, template, created_at"

int db_model_get(Db *db, const char *key, ModelRow *out, Err *err) {
    sqlite3_stmt *st;
    memset(out, 0, sizeof *out);
    int row, rc = db_prepare_bind(db, err, &st,
                                  "SELECT " MODEL_COLS " FROM models WHERE name = ?1 OR path = ?1"
                                  " ORDER BY name = ?1 DESC, id DESC LIMIT 1",
                                  "t", key);
    if (rc) return rc;
    if (!(rc = db_step(db, st, &row, err, "look up model")))
        rc = row ? fill_model(db, st, out, err)
                 : err_set(err, RLHF_ENOTFOUND, "no model named '%s' in %s", key, db_path(db));
    sqlite3_finalize(st);
    return rc;
}

void db_model_row_free(ModelRow *m) {
    free(m->name), free(m->kind), free(m->path), free(m->sha256);
    free(m->config), free(m->template), free(m->created_at);
    memset(m, 0, sizeof *m);
}

int db_models_each(Db *db, int (*fn)(const ModelRow *, void *), void *ctx, Err *err) {
    sqlite3_stmt *st;
    int rc = db_prepare(db, "SELECT " MODEL_COLS " FROM models ORDER BY id", &st, err);
    if (rc) return rc;
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        ModelRow m;
        if ((rc = fill_model(db, st, &m, err))) break;
        rc = fn(&m, ctx);
        db_model_row_free(&m);
        if (rc) break;
    }
    if (!rc && s != SQLITE_DONE) rc = db_fail(db, err, "list models");
    sqlite3_finalize(st);
    return rc;
}

int db_model_ancestor(Db *db, int64_t id, const char *kind, ModelRow *out, Err *err) {
    sqlite3_stmt *st;
    memset(out, 0, sizeof *out);
    /* the walk is bounded: a cycle cannot be made through the API, but a hand-edited store might hold one */
    int row, rc = db_prepare_bind(
                 db, err, &st,
                 "WITH RECURSIVE up(mid, depth) AS (SELECT ?1, 0 UNION ALL"
                 "  SELECT m.parent_id, up.depth + 1 FROM models m JOIN up ON m.id = up.mid"
                 "  WHERE m.parent_id IS NOT NULL AND up.depth < 64)"
                 " SELECT m.id, m.name, m.kind, m.path, m.parent_id, m.sha256, m.config, m.template,"
                 "  m.created_at FROM models m JOIN up ON m.id = up.mid"
                 " WHERE m.kind = ?2 AND m.path IS NOT NULL ORDER BY up.depth LIMIT 1",
                 "It", id, kind);
    if (rc) return rc;
    if (!(rc = db_step(db, st, &row, err, "look up an ancestor model")))
        rc = row ? fill_model(db, st, out, err)
                 : err_set(err, RLHF_ENOTFOUND, "no model of kind %s above model %lld", kind, (long long)id);
    sqlite3_finalize(st);
    return rc;
}

static const char *this_host(char *buf, size_t n) {
    if (gethostname(buf, n - 1) != 0) return NULL;
    buf[n - 1] = 0;
    return buf;
}

int db_run_resumed(Db *db, int64_t run_id, Err *err) {
    char host[256];
    return db_run(db, err, "resume run",
                  "UPDATE runs SET status = 'running', finished_at = NULL, pid = ?2, host = ?3"
                  " WHERE id = ?1",
                  "IIt", run_id, (int64_t)getpid(), this_host(host, sizeof host));
}

int db_runs_running_each(Db *db, int (*fn)(const DbRunProc *, void *), void *ctx, Err *err) {
    sqlite3_stmt *st;
    int64_t ver = 0;
    /* a read-only open leaves an older file unmigrated: no pid, host columns */
    int rc = db_query_int(db, "PRAGMA user_version", &ver, err);
    if (!rc)
        rc = db_prepare(db,
                        ver >= 3 ? "SELECT id, kind, pid, host FROM runs WHERE status = 'running' ORDER BY id"
                                 : "SELECT id, kind, NULL, NULL FROM runs WHERE status = 'running' ORDER BY id",
                        &st, err);
    if (rc) return rc;
    int s;
    while (!rc && (s = sqlite3_step(st)) == SQLITE_ROW) {
        DbRunProc p = {sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
                       sqlite3_column_int64(st, 2), (const char *)sqlite3_column_text(st, 3)};
        if (!p.kind) p.kind = "";
        rc = fn(&p, ctx);
    }
    if (!rc && s != SQLITE_DONE) rc = db_fail(db, err, "list running runs");
    sqlite3_finalize(st);
    return rc;
}

int db_run_start(Db *db, const char *kind, const char *config_json, int64_t input_model_id,
                 int64_t *run_id, Err *err) {
    char host[256];
    int rc = db_run(db, err, "start run",
                    "INSERT INTO runs(kind, config, input_model_id, pid, host) VALUES(?, ?, ?, ?, ?)",
                    "tt?IIt", kind, config_json, input_model_id > 0, input_model_id, (int64_t)getpid(),
                    this_host(host, sizeof host));
    if (!rc) *run_id = sqlite3_last_insert_rowid(db->h);
    return rc;
}

int db_run_finish(Db *db, int64_t run_id, const char *status, int64_t output_model_id,
                  const char *note, Err *err) {
    return db_run(db, err, "finish run",
                  "UPDATE runs SET status = ?2, output_model_id = ?3, note = ?4,"
                  " finished_at = strftime('%Y-%m-%dT%H:%M:%SZ','now') WHERE id = ?1",
                  "It?It", run_id, status, output_model_id > 0, output_model_id, note);
}

int db_metric_add(Db *db, int64_t run_id, int64_t step, const char *name, double value, Err *err) {
    return db_run(db, err, "add metric",
                  "INSERT INTO metrics(run_id, step, name, value) VALUES(?, ?, ?, ?)"
                  " ON CONFLICT(run_id, name, step) DO UPDATE SET value = excluded.value",
                  "IItd", run_id, step, name, value);
}

void db_metricbuf_add(MetricBuf *b, int64_t step, const char *name, double value) {
    if (b->n == b->cap) {
        int nc = b->cap ? b->cap * 2 : 256;
        void *p = realloc(b->pts, (size_t)nc * sizeof *b->pts);
        if (!p) return;
        b->pts = p;
        b->cap = nc;
    }
    b->pts[b->n].step = step;
    b->pts[b->n].name = name;
    b->pts[b->n++].value = value;
}

int db_metricbuf_flush(Db *db, int64_t run_id, MetricBuf *b, Err *err) {
    if (!db || !b->n) return RLHF_OK;
    int rc = db_begin(db, err);
    for (int i = 0; i < b->n && !rc; i++)
        rc = db_metric_add(db, run_id, b->pts[i].step, b->pts[i].name, b->pts[i].value, err);
    if (!rc) rc = db_commit(db, err);
    else db_rollback(db);
    if (!rc) b->n = 0;
    return rc;
}

void db_metricbuf_free(MetricBuf *b) {
    free(b->pts);
    memset(b, 0, sizeof *b);
}

int db_model_newest_best_of(Db *db, char **name, Err *err) {
    sqlite3_stmt *st;
    *name = NULL;
    int row, rc = db_prepare_bind(db, err, &st,
                                  "SELECT name FROM models WHERE kind = 'policy' AND json_valid(config)"
                                  " AND json_extract(config, '$.best_of') IS NOT NULL ORDER BY id DESC LIMIT 1",
                                  "");
    if (rc) return rc;
    if (!(rc = db_step(db, st, &row, err, "find the best-of policy")) && row) {
        *name = db_col_strdup(st, 0);
        if (!*name) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    }
    sqlite3_finalize(st);
    return rc;
}
