/* rlhf report: one self-contained HTML page of the project's curves, ratings,
 * labelers and final table (viz/report.c draws it). */
#include "cli/cli.h"
#include "cli/filter.h"
#include "cli/opts.h"
#include "util/sys.h"
#include "viz/report.h"

#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int exec_report(int argc, char **argv);

const struct cmd_entry cmd_report_entry = {
    "report", "--out FILE.html [--run ID] [--kind K] [--since DATE] [filters]",
    "a self-contained HTML report: training curves, ratings, agreement, final table",
    "One HTML file with everything inline (SVG charts, CSS; nothing fetched), readable\n"
    "on a phone and printed: the final table (eval runs against their baseline), the loss,\n"
    "accuracy and every other metric of each run over steps (PPO's reward, KL with its\n"
    "target, entropy, clip fraction, answer length grouped; new metrics get a chart of\n"
    "their own), Bradley-Terry ratings with bootstrap intervals by model and by policy\n"
    "round, the labelers' agreement matrix, time per prompt and flag counts, the\n"
    "reward model's held-out accuracy beside the labelers' agreement, and the label-\n"
    "efficiency curves (RM accuracy against ranked prompts by labeling order, with\n"
    "their spread) where samples/label_efficiency.sh stored its runs. --since and\n"
    "--until (below) limit the runs, by their start, as well as the rankings.\n"
    "  --out FILE      where to write the page ('-': stdout); written atomically\n"
    "  --run ID        only this run's curves\n"
    "  --kind K        only runs of this kind (pretrain, sft, rm, ppo, dpo, eval, ...)\n"
    "  --title TEXT    the page's title (default: rlhf report)\n"
    "  --max-points N  a curve keeps each of N buckets' lowest and highest point (default 300)\n"
    "  --bootstrap N   resamples behind the rating intervals (default 200)\n"
    "  --seed S        seed of the resamples (default 42)\n" CLI_HELP_FILTER CLI_HELP_COMMON,
    exec_report};

static const struct cmd_entry *E = &cmd_report_entry;

/* A kind no run has is a typo more often than a wish for an empty page: name
 * the kinds there are. */
static int check_kind(Db *db, const char *kind, Err *err) {
    RunRow *r;
    int n;
    RunFilter f = {0};
    int rc = db_runs_list(db, &f, &r, &n, err);
    if (rc) return rc;
    char kinds[400] = "";
    size_t len = 0;
    int found = 0;
    for (int i = 0; i < n; i++) {
        found |= strcmp(r[i].kind, kind) == 0;
        char word[64];
        snprintf(word, sizeof word, " %s,", r[i].kind);
        if (!strstr(kinds, word) && len + strlen(word) < sizeof kinds) len += (size_t)snprintf(kinds + len, sizeof kinds - len, "%s", word);
    }
    db_runs_free(r, n);
    if (found) return 0;
    if (len) kinds[len - 1] = 0;
    return err_set(err, RLHF_ENOTFOUND, "--kind: no run of kind '%s' in this project (kinds here:%s)", kind,
                   len ? kinds : " none, no runs yet");
}

static int exec_report(int argc, char **argv) {
    const char *dbflag = NULL, *out = NULL;
    ReportOptions o = report_options_default();
    long run = 0, seed = (long)o.seed;
    CliOpt filters[CLI_FILTER_N];
    cli_filter_table(&o.rankings, NULL, filters);
    const CliOpt opts[] = {CLI_O_DB(&dbflag),
                           CLI_O_SHORT('o', CLI_O_STR("out", &out)),
                           CLI_O_LONG("run", &run, 1, 1L << 62),
                           CLI_O_STR("kind", &o.runs.kind),
                           CLI_O_STR("title", &o.title),
                           CLI_O_INT("max-points", &o.max_points, 2, 100000),
                           CLI_O_INT("bootstrap", &o.bootstrap, 1, 100000),
                           CLI_O_LONG("seed", &seed, 0, 1L << 62),
                           CLI_O_TABLE(filters),
                           CLI_O_END};
    int rc = cli_opts_parse(E, argc, argv, opts, NULL);
    if (rc >= 0) return rc;
    if (run) o.runs.run_id = run;
    o.seed = (uint64_t)seed;
    if (!out) return cli_usage_error(E, "--out FILE.html is required ('-' for stdout)");
    o.runs.since = o.rankings.since, o.runs.until = o.rankings.until;
    Db *db;
    rc = cli_open_db(E, dbflag, DB_OPEN_READONLY, &db);
    if (rc) return rc;
    o.project = cli_db_path(dbflag);
    Err err = {0};
    ReportStats st = {0};
    if (o.runs.run_id) {
        /* a run that is not there is a mistake worth naming, not an empty page */
        RunRow *r;
        rc = db_run_get(db, o.runs.run_id, &r, &err);
        if (!rc) db_runs_free(r, 1);
    }
    if (!rc && o.runs.kind) rc = check_kind(db, o.runs.kind, &err);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!rc && strcmp(out, "-") == 0) {
        rc = report_write_html(stdout, db, &o, &st, &err);
    } else if (!rc) {
        AtomicFile a;
        atomic_remove_stale(out);
        rc = atomic_open(&a, out, &err);
        if (!rc) {
            rc = report_write_html(a.f, db, &o, &st, &err);
            if (rc)
                atomic_abort(&a);
            else
                rc = atomic_commit(&a, &err);
        }
    }
    db_close(db);
    if (rc) return cli_fail(E, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (strcmp(out, "-") != 0) {
        struct stat sb;
        long long size = stat(out, &sb) == 0 ? (long long)sb.st_size : -1;
        printf("wrote %s: %d runs, %d charts, %lld metric points, %lld rankings, %d evaluations, "
               "%lld bytes in %.2fs\n",
               out, st.runs, st.charts, (long long)st.points, (long long)st.rankings, st.eval_runs,
               size, secs);
    }
    return EXIT_OK;
}
