/* rlhf status: what the project holds, at a glance. */
#include "cli/cli.h"
#include "model/blas_select.h"
#include "db/status.h"

static int exec_status(int argc, char **argv);

const struct cmd_entry cmd_status_entry = {
    "status", "[--json]", "counts of prompts, candidates, rankings, comparisons, models, runs",
    "  --json          one JSON object instead of text\n" CLI_HELP_COMMON, exec_status};

static int exec_status(int argc, char **argv) {
    const char *dbflag;
    int json;
    int done = cli_parse_db_json(&cmd_status_entry, argc, argv, &dbflag, &json);
    if (done >= 0) return done;
    Db *db;
    int rc = cli_open_db(&cmd_status_entry, dbflag, DB_OPEN_READONLY, &db);
    if (rc) return rc;
    DbStatus s;
    Err err = {0};
    rc = db_status(db, &s, &err);
    if (rc) {
        db_close(db);
        return cli_fail(&cmd_status_entry, &err);
    }
    if (json) {
        printf("{\"db\":");
        cli_json_string(stdout, db_path(db));
        printf(",\"schema_version\":%d,\"prompts\":%lld,\"splits\":{", s.schema_version,
               (long long)s.prompts);
        for (int i = 0; i < s.n_splits; i++) {
            if (i) putchar(',');
            cli_json_string(stdout, s.splits[i].name);
            printf(":%lld", (long long)s.splits[i].n);
        }
        printf("},\"candidates\":%lld,\"prompts_with_candidates\":%lld,\"labelers\":%lld,"
               "\"rankings\":%lld,\"skipped\":%lld,\"prompts_ranked\":%lld,\"rankings_by_labeler\":{",
               (long long)s.candidates, (long long)s.prompts_with_candidates, (long long)s.labelers,
               (long long)s.rankings, (long long)s.skipped, (long long)s.prompts_ranked);
        for (int i = 0; i < s.n_labelers; i++) {
            if (i) putchar(',');
            cli_json_string(stdout, s.by_labeler[i].name);
            printf(":%lld", (long long)s.by_labeler[i].n);
        }
        printf("},\"comparisons\":%lld,\"ties\":%lld,\"models\":%lld,\"runs\":%lld,"
               "\"runs_running\":%lld,\"blas\":{\"kernel\":",
               (long long)s.comparisons, (long long)s.ties, (long long)s.models, (long long)s.runs,
               (long long)s.runs_running);
        cli_json_string(stdout, blas_kernel());
        printf(",\"openblas_pick\":");
        cli_json_string(stdout, blas_kernel_openblas_pick());
        printf(",\"reason\":");
        cli_json_string(stdout, blas_kernel_reason());
        printf("}}\n");
    } else {
        printf("project      %s (schema %d)\n", db_path(db), s.schema_version);
        printf("prompts      %lld", (long long)s.prompts);
        for (int i = 0; i < s.n_splits; i++)
            printf("%s%s %lld", i ? ", " : "  (", cli_shown(s.splits[i].name, 0), (long long)s.splits[i].n);
        printf("%s\n", s.n_splits ? ")" : "");
        printf("candidates   %lld  (%lld prompts have some)\n", (long long)s.candidates,
               (long long)s.prompts_with_candidates);
        printf("labelers     %lld\n", (long long)s.labelers);
        printf("rankings     %lld  (%lld prompts ranked, %lld skipped)\n", (long long)s.rankings,
               (long long)s.prompts_ranked, (long long)s.skipped);
        for (int i = 0; i < s.n_labelers; i++)
            printf("  %-20s %lld%s\n", cli_shown(s.by_labeler[i].name, 0), (long long)s.by_labeler[i].n,
                   s.by_labeler[i].extra ? "  (simulated)" : "");
        printf("comparisons  %lld  (%lld ties)\n", (long long)s.comparisons, (long long)s.ties);
        printf("models       %lld\n", (long long)s.models);
        printf("runs         %lld  (%lld running)\n", (long long)s.runs, (long long)s.runs_running);
    }
    db_status_free(&s);
    db_close(db);
    return EXIT_OK;
}
