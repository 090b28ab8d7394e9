/* Read-only queries behind `rlhf report` and `rlhf watch`: the runs (with the
 * names of their models) and each run's metric curves. Every array returned
 * is owned by the caller and freed with the matching *_free. */
#ifndef RLHF_DB_REPORT_H
#define RLHF_DB_REPORT_H

#include <stdint.h>

#include "db/db.h"

typedef struct RunFilter {
    int64_t run_id;            /* 0: any */
    const char *kind;          /* NULL: any */
    const char *since, *until; /* ISO dates on started_at; NULL: open */
} RunFilter;

typedef struct RunRow {
    int64_t id, input_model_id, output_model_id; /* 0: none */
    char *kind, *config, *status, *note, *started_at, *finished_at;
    char *input_model, *output_model; /* names; NULL: none */
    int64_t n_points, last_step;      /* metric points and the largest step */
} RunRow;

/* Runs matching f, oldest first. */
int db_runs_list(Db *db, const RunFilter *f, RunRow **out, int *n, Err *err);
void db_runs_free(RunRow *r, int n);

/* One run by id (free with db_runs_free(out, 1)); RLHF_ENOTFOUND names it. */
int db_run_get(Db *db, int64_t run_id, RunRow **out, Err *err);

/* The newest run (largest id); with running_only, the newest still running.
 * RLHF_ENOTFOUND when there is none. */
int db_run_newest(Db *db, int running_only, int64_t *run_id, Err *err);

/* The run to follow: the newest running training run (any kind but eval),
 * else the newest running run, else the newest training run, else the
 * newest run. RLHF_ENOTFOUND when there are no runs. */
int db_run_to_follow(Db *db, int64_t *run_id, Err *err);

/* One metric's curve, steps ascending. */
typedef struct MetricSeries {
    char *name;
    int64_t n;
    double *step, *value;
} MetricSeries;

/* Every metric of a run, by name. */
int db_run_series(Db *db, int64_t run_id, MetricSeries **out, int *n, Err *err);
void db_series_free(MetricSeries *s, int n);

#endif
