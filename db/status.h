/* Project-wide counts for `rlhf status`. */
#ifndef RLHF_DB_STATUS_H
#define RLHF_DB_STATUS_H

#include <stdint.h>

#include "db/db.h"

typedef struct StatusCount {
    char *name; /* split, labeler name, ... */
    int64_t n;
    int64_t extra; /* rankings: simulated flag; otherwise 0 */
} StatusCount;

typedef struct DbStatus {
    int schema_version;
    int64_t prompts, candidates, labelers, rankings, skipped;
    int64_t comparisons, ties; /* pairs inside current rankings; ties among them */
    int64_t models, runs, runs_running;
    int64_t prompts_with_candidates, prompts_ranked;
    StatusCount *splits;
    int n_splits;
    StatusCount *by_labeler; /* current, non-skipped rankings per labeler */
    int n_labelers;
    int64_t demos, demo_prompts, written_prompts, flagged_prompts;
    StatusCount *by_writer; /* demonstrations per author; extra: mean ms per answer (-1: unknown) */
    int n_writers;
} DbStatus;

int db_status(Db *db, DbStatus *out, Err *err);
void db_status_free(DbStatus *s);

#endif
