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
#define NUM(o, k, v) cJSON_AddNumberToObject(o, k, (double)(v))
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "db", db_path(db));
        NUM(j, "schema_version", s.schema_version);
        NUM(j, "prompts", s.prompts);
        cJSON *splits = cJSON_AddObjectToObject(j, "splits");
        for (int i = 0; i < s.n_splits; i++) NUM(splits, s.splits[i].name, s.splits[i].n);
        NUM(j, "candidates", s.candidates);
        NUM(j, "prompts_with_candidates", s.prompts_with_candidates);
        NUM(j, "labelers", s.labelers);
        NUM(j, "rankings", s.rankings);
        NUM(j, "skipped", s.skipped);
        NUM(j, "prompts_ranked", s.prompts_ranked);
        cJSON *by = cJSON_AddObjectToObject(j, "rankings_by_labeler");
        for (int i = 0; i < s.n_labelers; i++) NUM(by, s.by_labeler[i].name, s.by_labeler[i].n);
        NUM(j, "comparisons", s.comparisons);
        NUM(j, "ties", s.ties);
        NUM(j, "models", s.models);
        NUM(j, "runs", s.runs);
        NUM(j, "runs_running", s.runs_running);
        cJSON *blas = cJSON_AddObjectToObject(j, "blas");
        cJSON_AddStringToObject(blas, "kernel", blas_kernel());
        cJSON_AddStringToObject(blas, "openblas_pick", blas_kernel_openblas_pick());
        cJSON_AddStringToObject(blas, "reason", blas_kernel_reason());
        cli_json_print(j);
#undef NUM
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
