/* Queries for reports and the live charts: runs and their metric curves. */
#include "db/report.h"

#include <stdlib.h>
#include <string.h>

#include "db/internal.h"

void db_runs_free(RunRow *r, int n) {
    for (int i = 0; r && i < n; i++) {
        free(r[i].kind), free(r[i].config), free(r[i].status), free(r[i].note);
        free(r[i].started_at), free(r[i].finished_at), free(r[i].input_model);
        free(r[i].output_model);
    }
    free(r);
}

int db_runs_list(Db *db, const RunFilter *f, RunRow **out, int *n, Err *err) {
    static const RunFilter none = {0};
    if (!f) f = &none;
    *out = NULL, *n = 0;
    sqlite3_stmt *st;
    int rc =
        db_prepare(db,
                   "SELECT r.id, r.kind, r.config, r.status, r.note, r.started_at,"
                   "  r.finished_at, r.input_model_id, r.output_model_id, mi.name, mo.name,"
                   "  (SELECT count(*) FROM metrics WHERE run_id = r.id),"
                   "  (SELECT max(step) FROM metrics WHERE run_id = r.id)"
                   " FROM runs r LEFT JOIN models mi ON mi.id = r.input_model_id"
                   "  LEFT JOIN models mo ON mo.id = r.output_model_id"
                   " WHERE (?1 = 0 OR r.id = ?1) AND (?2 IS NULL OR r.kind = ?2)"
                   "  AND (?3 IS NULL OR r.started_at >= ?3) AND (?4 IS NULL OR r.started_at < ?4)"
                   " ORDER BY r.id",
                   &st, err);
    if (rc) return rc;
    db_bind(st, "Ittt", f->run_id, f->kind, f->since, f->until);
    RunRow *v = NULL;
    int cnt = 0, cap = 0, row;
    while (!(rc = db_step(db, st, &row, err, "list runs")) && row) {
        if ((rc = db_grow(&v, cnt, &cap, 16, sizeof *v, NULL))) {
            err_set(err, rc, "out of memory listing runs");
            break;
        }
        RunRow *r = &v[cnt++];
        r->id = sqlite3_column_int64(st, 0);
        r->kind = db_col_strdup(st, 1);
        r->config = db_col_strdup(st, 2);
        r->status = db_col_strdup(st, 3);
        r->note = db_col_strdup(st, 4);
        r->started_at = db_col_strdup(st, 5);
        r->finished_at = db_col_strdup(st, 6);
        r->input_model_id = sqlite3_column_int64(st, 7);
        r->output_model_id = sqlite3_column_int64(st, 8);
        r->input_model = db_col_strdup(st, 9);
        r->output_model = db_col_strdup(st, 10);
        r->n_points = sqlite3_column_int64(st, 11);
        r->last_step = sqlite3_column_int64(st, 12);
    }
    sqlite3_finalize(st);
    if (rc) {
        db_runs_free(v, cnt);
        return rc;
    }
    *out = v, *n = cnt;
    return RLHF_OK;
}

int db_run_get(Db *db, int64_t run_id, RunRow **out, Err *err) {
    RunFilter f = {.run_id = run_id};
    int n, rc = db_runs_list(db, &f, out, &n, err);
    if (!rc && n == 0) {
        db_runs_free(*out, 0);
        *out = NULL;
        rc = err_set(err, RLHF_ENOTFOUND, "run %lld: no such run", (long long)run_id);
    }
    return rc;
}

int db_run_newest(Db *db, int running_only, int64_t *run_id, Err *err) {
    int64_t id;
    int rc = db_query_id(db, err, "find the newest run", &id,
                         "SELECT id FROM runs WHERE (?1 = 0 OR status = 'running')"
                         " ORDER BY id DESC LIMIT 1",
                         "i", running_only);
    if (!rc && !id) rc = err_set(err, RLHF_ENOTFOUND, running_only ? "no run is running" : "no runs yet");
    if (!rc) *run_id = id;
    return rc;
}

int db_run_to_follow(Db *db, int64_t *run_id, Err *err) {
    int64_t id;
    int rc = db_query_id(db, err, "find the run to follow", &id,
                         "SELECT id FROM runs ORDER BY status = 'running' DESC, kind != 'eval' DESC,"
                         " id DESC LIMIT 1",
                         "");
    if (!rc && !id) rc = err_set(err, RLHF_ENOTFOUND, "no runs yet");
    if (!rc) *run_id = id;
    return rc;
}

void db_series_free(MetricSeries *s, int n) {
    for (int i = 0; s && i < n; i++)
        free(s[i].name), free(s[i].step), free(s[i].value);
    free(s);
}

static int series_push(MetricSeries *m, int64_t *cap, double step, double value) {
    if (m->n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        double *a = realloc(m->step, (size_t)*cap * sizeof *a);
        if (!a) return RLHF_ENOMEM;
        m->step = a;
        double *b = realloc(m->value, (size_t)*cap * sizeof *b);
        if (!b) return RLHF_ENOMEM;
        m->value = b;
    }
    m->step[m->n] = step, m->value[m->n] = value, m->n++;
    return RLHF_OK;
}

int db_run_series(Db *db, int64_t run_id, MetricSeries **out, int *n, Err *err) {
    *out = NULL, *n = 0;
    sqlite3_stmt *st;
    /* the primary key (run_id, name, step) hands the rows over in this order */
    int rc = db_prepare_bind(db, err, &st,
                             "SELECT name, step, value FROM metrics WHERE run_id = ? ORDER BY name, step",
                             "I", run_id);
    if (rc) return rc;
    MetricSeries *v = NULL;
    int cnt = 0, cap = 0, s;
    int64_t pcap = 0;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (!cnt || strcmp(v[cnt - 1].name, name) != 0) {
            if ((rc = db_grow(&v, cnt, &cap, 16, sizeof *v, NULL))) break;
            memset(&v[cnt], 0, sizeof v[cnt]);
            v[cnt].name = strdup(name);
            pcap = 0;
            if (!v[cnt++].name) {
                rc = RLHF_ENOMEM;
                break;
            }
        }
        if ((rc = series_push(&v[cnt - 1], &pcap, (double)sqlite3_column_int64(st, 1),
                              sqlite3_column_double(st, 2))))
            break;
    }
    if (rc == RLHF_ENOMEM)
        err_set(err, rc, "out of memory reading the metrics of run %lld", (long long)run_id);
    else if (s != SQLITE_DONE)
        rc = db_fail(db, err, "read metrics");
    sqlite3_finalize(st);
    if (rc) {
        db_series_free(v, cnt);
        return rc;
    }
    *out = v, *n = cnt;
    return RLHF_OK;
}
