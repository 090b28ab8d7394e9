/* The model registry and the record of runs (training, generation) with their
 * metric curves. */
#ifndef RLHF_DB_REGISTRY_H
#define RLHF_DB_REGISTRY_H

#include <stdint.h>

#include "db/db.h"

typedef struct ModelIn {
    const char *name;     /* unique */
    const char *kind;     /* base | sft | policy | ref | rm | external */
    const char *path;     /* checkpoint file; NULL for external systems */
    int64_t parent_id;    /* 0: none */
    const char *sha256;   /* of the checkpoint; may be NULL */
    const char *config;   /* JSON; may be NULL */
    const char *template; /* chat template; may be NULL */
} ModelIn;

/* Inserts, or updates path/sha256/config/template of the model with this name. */
int db_model_upsert(Db *db, const ModelIn *m, int64_t *id, Err *err);
/* Before weights sha256 are registered under `name`: when `name` holds other
 * weights that something was made from (candidates, scores, a child model, a
 * run other than run_id that started from it), renames that row to
 * "name@<sha prefix>" so those keep pointing at the weights that made them;
 * *kept_as (caller frees) gets the new name, else NULL. Call inside the
 * registering transaction. */
int db_model_keep_version(Db *db, const char *name, const char *sha256, int64_t run_id,
                          char **kept_as, Err *err);
/* Registers an external model by name if absent (kind "external"). */
int db_model_ensure_external(Db *db, const char *name, int64_t *id, Err *err);

typedef struct ModelRow {
    int64_t id, parent_id;
    char *name, *kind, *path, *sha256, *config, *template, *created_at;
} ModelRow;

/* Looks a model up by name or by path; RLHF_ENOTFOUND when absent. */
/* The newest best-of-n policy (`gen --best-of`: a config naming best_of);
 * *name NULL when there is none (caller frees). */
int db_model_newest_best_of(Db *db, char **name, Err *err);
int db_model_get(Db *db, const char *name_or_path, ModelRow *out, Err *err);
void db_model_row_free(ModelRow *m);
int db_models_each(Db *db, int (*fn)(const ModelRow *, void *), void *ctx, Err *err);
/* The nearest model of this kind with a checkpoint, from model id (itself
 * included) up its parents (e.g. a policy's SFT reference); RLHF_ENOTFOUND
 * when there is none. */
int db_model_ancestor(Db *db, int64_t id, const char *kind, ModelRow *out, Err *err);

int db_run_start(Db *db, const char *kind, const char *config_json, int64_t input_model_id,
                 int64_t *run_id, Err *err);
/* A --resume of run_id: running again, in this process (pid and host are
 * recorded, as db_run_start does, for db_runs_running_each). */
int db_run_resumed(Db *db, int64_t run_id, Err *err);
/* The runs marked running with the process that runs them (pid 0, host NULL:
 * unknown, a run from before schema 3). Strings live for the call only. */
typedef struct DbRunProc {
    int64_t id;
    const char *kind;
    int64_t pid;
    const char *host;
} DbRunProc;
int db_runs_running_each(Db *db, int (*fn)(const DbRunProc *, void *), void *ctx, Err *err);
/* status: done | failed | interrupted. */
int db_run_finish(Db *db, int64_t run_id, const char *status, int64_t output_model_id,
                  const char *note, Err *err);
/* Upserts one metric point (a resumed run may write a step again). */
int db_metric_add(Db *db, int64_t run_id, int64_t step, const char *name, double value, Err *err);

/* Metric points held in memory and written in one transaction with each
 * checkpoint, so a training loop does not write the store every step and a
 * resumed run rewrites (upserts) what it repeats. name must outlive the buffer
 * (a string literal). */
typedef struct MetricBuf {
    struct MetricPoint {
        int64_t step;
        const char *name;
        double value;
    } *pts;
    int n, cap;
} MetricBuf;

/* Drops the point when out of memory: a lost point of a curve is not worth
 * failing a run. */
void db_metricbuf_add(MetricBuf *b, int64_t step, const char *name, double value);
/* Writes and empties the buffer (nothing when db is NULL or the buffer empty). */
int db_metricbuf_flush(Db *db, int64_t run_id, MetricBuf *b, Err *err);
void db_metricbuf_free(MetricBuf *b);

/* The one order in which every command settles a model's chat template:
 * flag; else the template registered with the model (found by its real path,
 * else by the text as a name); else own(model) (the model file's own, such as
 * a Hugging Face directory's chat template; own may be NULL); else the
 * project's gen.template setting; else NULL (seq.h's default). db may be NULL.
 * *model_id (may be NULL) gets the model's id in the store, 0 when it is not
 * registered. *out is the caller's to free. */
int db_template_resolve(Db *db, const char *flag, const char *model,
                        int (*own)(const char *model, char **out, Err *err), char **out,
                        int64_t *model_id, Err *err);

#endif
