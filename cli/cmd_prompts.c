/* rlhf prompts import|list: bring prompts into the project and look at them. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "db/prompts.h"

#include <stdlib.h>
#include <string.h>

static int exec_prompts(int argc, char **argv);

const struct cmd_entry cmd_prompts_entry = {
    "prompts", "import FILE... [--split S] | list [--split S] [--json]",
    "import prompts from text or JSONL files; list them",
    "import FILE...   plain text (one prompt per line) or JSONL objects with \"prompt\"\n"
    "                 (or \"instruction\" / \"text\"), optional \"id\", \"split\", \"source\".\n"
    "                 Duplicates (same text) are skipped and counted. All files are\n"
    "                 imported in one transaction: any error leaves the project as it was.\n"
    "  --split S      put every imported prompt in split S (default: the file's, else train)\n"
    "list             one prompt per line: id, split, candidates, rankings, text\n"
    "  --split S      only this split\n"
    "  --source S     only prompts from this source\n"
    "  --contains T   only prompts containing T\n"
    "  --limit N      at most N prompts\n"
    "  --offset N     skip the first N\n"
    "  --json         JSON lines instead of a table\n" CLI_HELP_COMMON,
    exec_prompts};

static const struct cmd_entry *E = &cmd_prompts_entry;

static int import(int argc, char **argv) {
    const char *dbflag = NULL, *split = NULL;
    const CliOpt opts[] = {CLI_O_DB(&dbflag), CLI_O_STR("split", &split), CLI_O_END};
    CliList files = {0};
    int rc = cli_opts_parse(E, argc, argv, opts, &files);
    if (rc < 0 && files.n == 0) rc = cli_usage_error(E, "import: no FILE given");
    if (rc < 0 && split && !db_valid_split(split))
        rc = cli_usage_error(E, "--split: '%s' is not a split name (letters, digits, '_', '-')", split);
    if (rc >= 0) {
        free(files.v);
        return rc;
    }
    Db *db;
    Err err = {0};
    PromptImportStats st = {0};
    if ((rc = cli_open_db(E, dbflag, DB_OPEN_EXISTING, &db))) {
        free(files.v);
        return rc;
    }
    /* staged: reading and hashing hold no lock; only the final copy writes */
    if (db_prompts_stage_begin(db, &err)) {
        free(files.v);
        db_close(db);
        return cli_fail(E, &err);
    }
    for (int i = 0; i < files.n && !rc; i++) rc = db_prompts_import_file(db, files.v[i], split, &st, &err);
    free(files.v);
    if (!rc) rc = db_prompts_stage_commit(db, &st, &err);
    else db_prompts_stage_abort(db);
    db_close(db);
    if (rc) {
        fprintf(stderr, "rlhf prompts import: %s\nnothing was imported.\n", err.msg);
        return EXIT_FAIL;
    }
    printf("imported %lld prompts (%lld read, %lld duplicates skipped)\n", (long long)st.inserted,
           (long long)st.read, (long long)st.duplicates);
    return EXIT_OK;
}

static int print_row(const PromptRow *r, void *ctx) {
    int json = *(int *)ctx;
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "id", (double)r->id);
        cJSON_AddStringToObject(j, "prompt", r->text);
        cJSON_AddStringToObject(j, "split", r->split);
        if (r->source) cJSON_AddStringToObject(j, "source", r->source);
        if (r->ext_id) cJSON_AddStringToObject(j, "ext_id", r->ext_id);
        cJSON_AddNumberToObject(j, "candidates", (double)r->n_candidates);
        cJSON_AddNumberToObject(j, "rankings", (double)r->n_rankings);
        cJSON_AddStringToObject(j, "created_at", r->created_at);
        return cli_json_print(j);
    }
    /* one line per prompt: newlines shown as the two characters \n */
    printf("%6lld  %-8s %4lld %4lld  ", (long long)r->id, cli_shown(r->split, 0), (long long)r->n_candidates,
           (long long)r->n_rankings);
    /* the first 200 bytes, not cutting a UTF-8 sequence in half */
    char head[216];
    size_t n = 0;
    for (const char *p = r->text; *p && (n < 200 || ((unsigned char)*p & 0xC0) == 0x80) &&
                                  n + 1 < sizeof head;
         p++)
        head[n++] = *p == '\t' || *p == '\r' ? ' ' : *p;
    head[n] = '\0';
    fputs(cli_shown(head, 0), stdout);
    if (r->text[n]) fputs("...", stdout);
    fputc('\n', stdout);
    return 0;
}

static int list(int argc, char **argv) {
    const char *dbflag = NULL;
    PromptFilter f = {0};
    long limit = 0, offset = 0;
    int json = 0;
    const CliOpt opts[] = {CLI_O_DB(&dbflag), CLI_O_STR("split", &f.split),
                           CLI_O_STR("source", &f.source), CLI_O_STR("contains", &f.contains),
                           CLI_O_LONG("limit", &limit, 0, 1L << 40),
                           CLI_O_LONG("offset", &offset, 0, 1L << 40),
                           CLI_O_FLAG("json", &json), CLI_O_END};
    CliList rest = {0};
    int rc = cli_opts_parse(E, argc, argv, opts, &rest);
    if (rc < 0 && rest.n) rc = cli_usage_error(E, "list: unexpected argument '%s'", rest.v[0]);
    free(rest.v);
    if (rc >= 0) return rc;
    f.limit = limit, f.offset = offset;
    Db *db;
    if ((rc = cli_open_db(E, dbflag, DB_OPEN_READONLY, &db))) return rc;
    Err err = {0};
    if (!json) printf("%6s  %-8s %4s %4s  %s\n", "id", "split", "cand", "rank", "prompt");
    rc = db_prompts_each(db, &f, print_row, &json, &err);
    db_close(db);
    return rc ? cli_fail(E, &err) : EXIT_OK;
}

static int exec_prompts(int argc, char **argv) {
    static const struct cli_sub subs[] = {{"import", import}, {"list", list}, {NULL, NULL}};
    return cli_dispatch(E, subs, argc, argv);
}
