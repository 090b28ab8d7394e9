/* rlhf candidates import|list: answers from any system, ready to rank. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "db/candidates.h"
#include "db/prompts.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int exec_candidates(int argc, char **argv);

const struct cmd_entry cmd_candidates_entry = {
    "candidates", "import FILE... [--model NAME] | list --prompt ID [--json]",
    "import candidate answers from JSONL; list a prompt's candidates",
    "import FILE...   JSONL objects {\"prompt\", \"completion\" (or \"response\"), \"model\"}\n"
    "                 with optional \"split\". Prompts are matched by text or created;\n"
    "                 models are registered as external. Identical answers of one model\n"
    "                 to one prompt are stored once. All files go in one transaction:\n"
    "                 any error leaves the project as it was.\n"
    "  --model NAME   model name for records without \"model\"\n"
    "list             the candidates of one prompt\n"
    "  --prompt ID    the prompt's id (see rlhf prompts list)\n"
    "  --json         JSON lines instead of text\n" CLI_HELP_COMMON,
    exec_candidates};

static const struct cmd_entry *E = &cmd_candidates_entry;

static int import(int argc, char **argv) {
    const char *dbflag = NULL, *model = NULL;
    const CliOpt opts[] = {CLI_O_DB(&dbflag), CLI_O_STR("model", &model), CLI_O_END};
    CliList files = {0};
    int rc = cli_opts_parse(E, argc, argv, opts, &files);
    if (rc < 0 && files.n == 0) rc = cli_usage_error(E, "import: no FILE given");
    if (rc < 0 && model && !*model) rc = cli_usage_error(E, "--model: empty name");
    if (rc >= 0) {
        free(files.v);
        return rc;
    }
    Db *db;
    if ((rc = cli_open_db(E, dbflag, DB_OPEN_EXISTING, &db))) {
        free(files.v);
        return rc;
    }
    Err err = {0};
    CandidateImportStats st = {0};
    rc = db_begin(db, &err);
    for (int i = 0; i < files.n && !rc; i++) rc = db_candidates_import_file(db, files.v[i], model, &st, &err);
    free(files.v);
    if (!rc) rc = db_commit(db, &err);
    else db_rollback(db);
    db_close(db);
    if (rc) {
        fprintf(stderr, "rlhf candidates import: %s\nnothing was imported.\n", err.msg);
        return EXIT_FAIL;
    }
    printf("imported %lld candidates (%lld read, %lld duplicates skipped, %lld new prompts)\n",
           (long long)st.inserted, (long long)st.read, (long long)st.duplicates,
           (long long)st.new_prompts);
    return EXIT_OK;
}

static int list(int argc, char **argv) {
    const char *dbflag = NULL;
    long pid = 0;
    int json = 0;
    const CliOpt opts[] = {CLI_O_DB(&dbflag), CLI_O_LONG("prompt", &pid, 1, 1L << 62),
                           CLI_O_FLAG("json", &json), CLI_O_END};
    CliList rest = {0};
    int rc = cli_opts_parse(E, argc, argv, opts, &rest);
    if (rc < 0 && !pid) rc = cli_usage_error(E, "list: --prompt ID is required");
    if (rc < 0 && rest.n) rc = cli_usage_error(E, "list: unexpected argument '%s'", rest.v[0]);
    free(rest.v);
    if (rc >= 0) return rc;
    Db *db;
    if ((rc = cli_open_db(E, dbflag, DB_OPEN_READONLY, &db))) return rc;
    Err err = {0};
    CandidateRow *rows;
    int n;
    char *text = NULL;
    /* an id with no prompt is an error, not an empty list */
    rc = db_prompt_text(db, pid, &text, &err);
    free(text);
    if (!rc) rc = db_candidates_of_prompt(db, pid, &rows, &n, &err);
    db_close(db);
    if (rc) return cli_fail(E, &err);
    if (!n) fprintf(stderr, "rlhf candidates list: prompt %ld has no candidates yet (rlhf gen or candidates import)\n", pid);
    for (int i = 0; i < n; i++) {
        CandidateRow *r = &rows[i];
        if (json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddNumberToObject(j, "id", (double)r->id);
            cJSON_AddNumberToObject(j, "prompt_id", (double)r->prompt_id);
            cJSON_AddStringToObject(j, "model", r->model_name);
            cJSON_AddStringToObject(j, "completion", r->text);
            if (r->n_tokens >= 0) cJSON_AddNumberToObject(j, "n_tokens", (double)r->n_tokens);
            if (!isnan(r->sum_logprob)) cli_json_g(j, "sum_logprob", r->sum_logprob);
            cli_json_print(j);
        } else {
            printf("--- candidate %lld (model %s)\n%s\n", (long long)r->id, cli_shown(r->model_name, 0),
                   cli_shown(r->text, 1));
        }
    }
    db_candidates_free(rows, n);
    return EXIT_OK;
}

static int exec_candidates(int argc, char **argv) {
    static const struct cli_sub subs[] = {{"import", import}, {"list", list}, {NULL, NULL}};
    return cli_dispatch(E, subs, argc, argv);
}
