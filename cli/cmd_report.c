/* rlhf report: one self-contained HTML page of the project's curves, ratings,
 * labelers and final table (viz/report.c draws it). */
#include "cli/cli.h"
#include "cli/filter.h"
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
    "round, the labelers' agreement matrix, time per prompt and flag counts, and the\n"
    "reward model's held-out accuracy beside the labelers' agreement.\n"
    "  --out FILE      where to write the page ('-': stdout); written atomically\n"
    "  --run ID        only this run's curves\n"
    "  --kind K        only runs of this kind (pretrain, sft, rm, ppo, dpo, eval, ...)\n"
    "  --since/--until also limit the runs, by their start\n"
    "  --title TEXT    the page's title (default: rlhf report)\n"
    "  --max-points N  a curve keeps each of N buckets' lowest and highest point (default 300)\n"
    "  --bootstrap N   resamples behind the rating intervals (default 200)\n"
    "  --seed S        seed of the resamples (default 42)\n" CLI_HELP_FILTER CLI_HELP_COMMON,
    exec_report};

static const struct cmd_entry *E = &cmd_report_entry;

static int exec_report(int argc, char **argv) {
    enum { O_RUN = 400, O_KIND, O_TITLE, O_MAXP, O_BOOT, O_SEED };
    static const struct option opts[] = {CLI_OPT_DB,
                                         CLI_OPT_HELP,
                                         {"out", required_argument, NULL, 'o'},
                                         {"run", required_argument, NULL, O_RUN},
                                         {"kind", required_argument, NULL, O_KIND},
                                         {"title", required_argument, NULL, O_TITLE},
                                         {"max-points", required_argument, NULL, O_MAXP},
                                         {"bootstrap", required_argument, NULL, O_BOOT},
                                         {"seed", required_argument, NULL, O_SEED},
                                         CLI_FILTER_OPTS,
                                         CLI_OPT_END};
    const char *dbflag = NULL, *out = NULL;
    ReportOptions o = report_options_default();
    long v;
    int c;
    while ((c = getopt_long(argc, argv, "+:ho:", opts, NULL)) != -1) {
        int fr = cli_filter_opt(E, c, optarg, &o.rankings);
        if (fr == 1) continue;
        if (fr) return fr;
        switch (c) {
        case 'D':
            dbflag = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case O_RUN:
            if (cli_parse_long(E, "--run", optarg, 1, 1L << 62, &v)) return EXIT_USAGE;
            o.runs.run_id = v;
            break;
        case O_KIND:
            o.runs.kind = optarg;
            break;
        case O_TITLE:
            o.title = optarg;
            break;
        case O_MAXP:
            if (cli_parse_long(E, "--max-points", optarg, 2, 100000, &v)) return EXIT_USAGE;
            o.max_points = (int)v;
            break;
        case O_BOOT:
            if (cli_parse_long(E, "--bootstrap", optarg, 1, 100000, &v)) return EXIT_USAGE;
            o.bootstrap = (int)v;
            break;
        case O_SEED:
            if (cli_parse_long(E, "--seed", optarg, 0, 1L << 62, &v)) return EXIT_USAGE;
            o.seed = (uint64_t)v;
            break;
        case 'h':
            return cli_help(E);
        default:
            return cli_bad_option(E, argv, c);
        }
    }
    if (optind < argc) return cli_usage_error(E, "unexpected argument '%s'", argv[optind]);
    if (!out) return cli_usage_error(E, "--out FILE.html is required ('-' for stdout)");
    o.runs.since = o.rankings.since, o.runs.until = o.rankings.until;
    Db *db;
    int rc = cli_open_db(E, dbflag, DB_OPEN_READONLY, &db);
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
