/* `rlhf report`: one self-contained HTML page (inline SVG and CSS, nothing
 * fetched) of a project's runs, ratings, labelers and evaluations, drawn from
 * the store with the modules that compute each figure (rm/elo, rm/agreement). */
#ifndef RLHF_VIZ_REPORT_H
#define RLHF_VIZ_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "db/rankings.h"
#include "db/report.h"

typedef struct ReportOptions {
    RunFilter runs;         /* which runs get charts */
    RankingFilter rankings; /* which rankings feed ratings and agreement */
    const char *title;      /* NULL: "rlhf report" */
    const char *project;    /* shown in the header; may be NULL */
    int max_points;         /* per curve after downsampling; 0: 300 min/max pairs */
    int bootstrap;          /* resamples behind the rating intervals; 0: 200 */
    uint64_t seed;
} ReportOptions;

ReportOptions report_options_default(void);

typedef struct ReportStats {
    int runs, charts, eval_runs, labelers;
    int64_t rankings, points;
} ReportStats;

/* Writes the page to f; st (may be NULL) gets what it holds. */
int report_write_html(FILE *f, Db *db, const ReportOptions *o, ReportStats *st, Err *err);

/* Order in which the metric `name` is grouped on a run's charts: the index of
 * its group in the table of known groups (loss, accuracy, reward, KL, ...),
 * or -1 for a metric of its own chart. title (may be NULL) gets the group's. */
int report_metric_group(const char *name, const char **title);

#endif
