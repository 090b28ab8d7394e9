/* rlhf status: what the project holds, at a glance. */
#include "cli/cli.h"
#include "model/blas_select.h"
#include "db/status.h"

#include "db/registry.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int exec_status(int argc, char **argv);

/* The running runs whose process is gone: a run killed with -9, or whose MPI
 * job was taken down with a rank, never got to mark itself failed; only this
 * host's processes can be checked. */
typedef struct Gone {
    char host[256];
    int n, cap;
    DbRunProc *runs;
} Gone;

static int check_run(const DbRunProc *p, void *ctx) {
    Gone *g = ctx;
    if (p->pid <= 0 || !p->host || strcmp(p->host, g->host) != 0) return RLHF_OK;
    if (kill((pid_t)p->pid, 0) == 0 || errno != ESRCH) return RLHF_OK;
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 8;
        DbRunProc *r = realloc(g->runs, sizeof *r * (size_t)cap);
        if (!r) return RLHF_OK; /* a shorter list, not a failed status */
        g->runs = r, g->cap = cap;
    }
    g->runs[g->n++] = (DbRunProc){p->id, NULL, p->pid, NULL};
    return RLHF_OK;
}

/* The counts as text, one line a kind. */
static void print_text(Db *db, const DbStatus *s, const Gone *gone) {
    printf("project      %s (schema %d)\n", db_path(db), s->schema_version);
    printf("prompts      %lld", (long long)s->prompts);
    for (int i = 0; i < s->n_splits; i++)
        printf("%s%s %lld", i ? ", " : "  (", cli_shown(s->splits[i].name, 0),
               (long long)s->splits[i].n);
    printf("%s\n", s->n_splits ? ")" : "");
    printf("candidates   %lld  (%lld prompts have some)\n", (long long)s->candidates,
           (long long)s->prompts_with_candidates);
    printf("labelers     %lld\n", (long long)s->labelers);
    printf("rankings     %lld  (%lld prompts ranked, %lld skipped)\n", (long long)s->rankings,
           (long long)s->prompts_ranked, (long long)s->skipped);
    for (int i = 0; i < s->n_labelers; i++)
        printf("  %-20s %lld%s\n", cli_shown(s->by_labeler[i].name, 0),
               (long long)s->by_labeler[i].n, s->by_labeler[i].extra ? "  (simulated)" : "");
    printf("comparisons  %lld  (%lld ties)\n", (long long)s->comparisons, (long long)s->ties);
    printf("models       %lld\n", (long long)s->models);
    printf("runs         %lld  (%lld running", (long long)s->runs, (long long)s->runs_running);
    if (gone->n) printf(", %d of them with no process left", gone->n);
    printf(")\n");
    for (int i = 0; i < gone->n; i++)
        printf("  run %lld: marked running but its process %lld is gone (killed?); "
               "--resume it or start over\n",
               (long long)gone->runs[i].id, (long long)gone->runs[i].pid);
    if (s->demos || s->written_prompts) {
        printf("demonstrations %lld  (%lld prompts answered by labelers)\n", (long long)s->demos,
               (long long)s->demo_prompts);
        for (int i = 0; i < s->n_writers; i++) {
            printf("  %-20s %lld", cli_shown(s->by_writer[i].name, 0),
                   (long long)s->by_writer[i].n);
            if (s->by_writer[i].extra >= 0)
                printf("  (%.1f s per answer)", s->by_writer[i].extra / 1000.0);
            printf("\n");
        }
        printf("written prompts %lld  (%lld prompts flagged)\n", (long long)s->written_prompts,
               (long long)s->flagged_prompts);
    }
}

const struct cmd_entry cmd_status_entry = {
    "status", "[--json]", "counts of prompts, candidates, rankings, comparisons, models, runs",
    "  --json          one JSON object instead of text\n" CLI_HELP_COMMON, exec_status};

static int exec_status(int argc, char **argv) {
    Db *db;
    int json;
    int rc = cli_open_db_json(&cmd_status_entry, argc, argv, &db, &json);
    if (rc >= 0) return rc;
    DbStatus s;
    Err err = {0};
    rc = db_status(db, &s, &err);
    Gone gone = {{0}, 0, 0, NULL};
    if (gethostname(gone.host, sizeof gone.host - 1) != 0) gone.host[0] = 0;
    if (!rc) rc = db_runs_running_each(db, check_run, &gone, &err);
    if (rc) {
        free(gone.runs);
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
        /* the counts in this order, the labelers' after prompts_ranked */
        const struct {
            const char *key;
            double v;
        } counts[] = {{"candidates", (double)s.candidates},
                      {"prompts_with_candidates", (double)s.prompts_with_candidates},
                      {"labelers", (double)s.labelers}, {"rankings", (double)s.rankings},
                      {"skipped", (double)s.skipped}, {"prompts_ranked", (double)s.prompts_ranked},
                      {NULL, 0}, {"comparisons", (double)s.comparisons}, {"ties", (double)s.ties},
                      {"models", (double)s.models}, {"runs", (double)s.runs},
                      {"runs_running", (double)s.runs_running}};
        for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
            if (counts[c].key) {
                NUM(j, counts[c].key, counts[c].v);
                continue;
            }
            cJSON *by = cJSON_AddObjectToObject(j, "rankings_by_labeler");
            for (int i = 0; i < s.n_labelers; i++) NUM(by, s.by_labeler[i].name, s.by_labeler[i].n);
        }
        NUM(j, "demonstrations", s.demos);
        NUM(j, "prompts_with_demonstrations", s.demo_prompts);
        cJSON *bw = cJSON_AddObjectToObject(j, "demonstrations_by_labeler");
        for (int i = 0; i < s.n_writers; i++)
            NUM(bw, s.by_writer[i].name, s.by_writer[i].n);
        NUM(j, "written_prompts", s.written_prompts);
        NUM(j, "flagged_prompts", s.flagged_prompts);
        cJSON *ga = cJSON_AddArrayToObject(j, "runs_process_gone");
        for (int i = 0; i < gone.n; i++) cJSON_AddItemToArray(ga, cJSON_CreateNumber((double)gone.runs[i].id));
        cJSON *blas = cJSON_AddObjectToObject(j, "blas");
        cJSON_AddStringToObject(blas, "kernel", blas_kernel());
        cJSON_AddStringToObject(blas, "openblas_pick", blas_kernel_openblas_pick());
        cJSON_AddStringToObject(blas, "reason", blas_kernel_reason());
        cli_json_print(j);
#undef NUM
    } else {
        print_text(db, &s, &gone);
    }
    free(gone.runs);
    db_status_free(&s);
    db_close(db);
    return EXIT_OK;
}
