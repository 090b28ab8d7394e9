/* rlhf prompts import|list: bring prompts into the project and look at them. */
#include "cli/cli.h"
#include "db/prompts.h"

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
    static const struct option opts[] = {CLI_OPT_DB, CLI_OPT_HELP,
                                         {"split", required_argument, NULL, 's'}, CLI_OPT_END};
    const char *dbflag = NULL, *split = NULL;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'D': dbflag = optarg; break;
        case 's': split = optarg; break;
        case 'h': return cli_help(E);
        default: return cli_bad_option(E, argv, c);
        }
    }
    if (optind >= argc) return cli_usage_error(E, "import: no FILE given");
    if (split && !db_valid_split(split))
        return cli_usage_error(E, "--split: '%s' is not a split name (letters, digits, '_', '-')", split);
    Db *db;
    int rc = cli_open_db(E, dbflag, DB_OPEN_EXISTING, &db);
    if (rc) return rc;
    Err err = {0};
    PromptImportStats st = {0};
    /* staged: reading and hashing hold no lock; only the final copy writes */
    if (db_prompts_stage_begin(db, &err)) {
        db_close(db);
        return cli_fail(E, &err);
    }
    for (int i = optind; i < argc && !rc; i++) rc = db_prompts_import_file(db, argv[i], split, &st, &err);
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
    static const struct option opts[] = {CLI_OPT_DB,
                                         CLI_OPT_HELP,
                                         {"split", required_argument, NULL, 's'},
                                         {"source", required_argument, NULL, 'S'},
                                         {"contains", required_argument, NULL, 'c'},
                                         {"limit", required_argument, NULL, 'l'},
                                         {"offset", required_argument, NULL, 'o'},
                                         {"json", no_argument, NULL, 'j'},
                                         CLI_OPT_END};
    const char *dbflag = NULL;
    PromptFilter f = {0};
    int json = 0, c;
    long v;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'D': dbflag = optarg; break;
        case 's': f.split = optarg; break;
        case 'S': f.source = optarg; break;
        case 'c': f.contains = optarg; break;
        case 'l':
            if (cli_parse_long(E, "--limit", optarg, 0, 1L << 40, &v)) return EXIT_USAGE;
            f.limit = v;
            break;
        case 'o':
            if (cli_parse_long(E, "--offset", optarg, 0, 1L << 40, &v)) return EXIT_USAGE;
            f.offset = v;
            break;
        case 'j': json = 1; break;
        case 'h': return cli_help(E);
        default: return cli_bad_option(E, argv, c);
        }
    }
    if (optind < argc) return cli_usage_error(E, "list: unexpected argument '%s'", argv[optind]);
    Db *db;
    int rc = cli_open_db(E, dbflag, DB_OPEN_READONLY, &db);
    if (rc) return rc;
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
