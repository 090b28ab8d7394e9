/* rlhf import: public preference data (TRL pairs, HH-RLHF) into the project. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "db/prompts.h"
#include "rm/import.h"
#include "util/sys.h"

#include <stdlib.h>
#include <string.h>

static int exec_import(int argc, char **argv);

const struct cmd_entry cmd_import_entry = {
    "import", "--format pairs|hh|rankings FILE... [--labeler NAME] [--model NAME] [--split S]",
    "import comparisons (TRL pairs, HH-RLHF) or rankings as prompts, candidates and rankings",
    "  --format pairs     JSONL with \"prompt\", \"chosen\", \"rejected\": strings, or TRL's\n"
    "                     conversational lists of {\"role\", \"content\"} (the answer is the\n"
    "                     last, assistant, message; without \"prompt\", the shared earlier\n"
    "                     turns; a system message first stays one); optional \"labeler\",\n"
    "                     \"simulated\", \"chosen_model\", \"rejected_model\", \"split\",\n"
    "                     \"ranking_id\" (what `rlhf export --format pairs|pairs-chat` writes)\n"
    "  --format hh        JSONL with \"chosen\", \"rejected\" transcripts (\"\\n\\nHuman: ...\n"
    "                     \\n\\nAssistant: ...\"); the prompt is what both share before the\n"
    "                     last Assistant turn (text before the first Human turn: a system\n"
    "                     message)\n"
    "  --format rankings  what `rlhf export --format rankings` writes: every ranking back\n"
    "                     with its ties, scores, flags, note, skip, time and date\n"
    "  --labeler NAME     rank as NAME (default: the record's \"labeler\", else import:FILE)\n"
    "  --model NAME       model of candidates the data does not name (default: import)\n"
    "  --split S          split of new prompts (default: the record's, else train)\n"
    "Pairs of one prompt, labeler and ranking_id that form a complete ranking (as `rlhf\n"
    "export --format pairs` writes them) become that ranking again; others one ranking per\n"
    "pair. All files are imported in one transaction: an error (reported as FILE:LINE)\n"
    "leaves the project as it was.\n" CLI_HELP_COMMON,
    exec_import};

static const struct cmd_entry *E = &cmd_import_entry;

/* The options' checks; -1 to go on, else EXIT_USAGE. */
static int check(ImportOptions *o, const char *format, int n_files) {
    if (!format) return cli_usage_error(E, "--format is required (pairs, hh or rankings)");
    o->format = rm_import_format(format);
    if (o->format < 0)
        return cli_usage_error(E, "--format: unknown format '%s' (pairs, hh or rankings)", format);
    if (n_files == 0) return cli_usage_error(E, "no FILE given");
    if (o->split && !db_valid_split(o->split))
        return cli_usage_error(E, "--split: '%s' is not a split name", o->split);
    if (o->labeler && !*o->labeler) return cli_usage_error(E, "--labeler: empty name");
    if (o->model && !*o->model) return cli_usage_error(E, "--model: empty name");
    return -1;
}

static int exec_import(int argc, char **argv) {
    const char *dbflag = NULL, *format = NULL;
    ImportOptions o = {0};
    CliList files = {0};
    const CliOpt opts[] = {CLI_O_DB(&dbflag), CLI_O_STR("format", &format),
                           CLI_O_STR("labeler", &o.labeler), CLI_O_STR("model", &o.model),
                           CLI_O_STR("split", &o.split), CLI_O_END};
    int rc = cli_opts_parse(E, argc, argv, opts, &files);
    if (rc < 0) rc = check(&o, format, files.n);
    if (rc >= 0) {
        free(files.v);
        return rc;
    }
    Db *db;
    rc = cli_open_db(E, dbflag, DB_OPEN_EXISTING, &db);
    if (rc) {
        free(files.v);
        return rc;
    }
    Err err = {0};
    ImportStats st = {0};
    Progress pg;
    progress_start(&pg, "import", "records", 0, 0);
    o.progress = &pg;
    sys_catch_interrupts();
    rc = db_begin(db, &err);
    for (int i = 0; i < files.n && !rc; i++)
        rc = rm_import_file(db, files.v[i], &o, &st, &err);
    free(files.v);
    if (!rc)
        rc = db_commit(db, &err);
    else
        db_rollback(db);
    db_close(db);
    if (pg.drawn) progress_finish(&pg, NULL);
    if (rc) {
        fprintf(stderr, "rlhf import: %s\nnothing was imported.\n", err.msg);
        return EXIT_FAIL;
    }
    if (o.format == IMPORT_RANKINGS)
        printf("imported %lld rankings (%lld comparisons, %lld new prompts, %lld new candidates",
               (long long)st.rankings, (long long)st.pairs, (long long)st.prompts_new,
               (long long)st.candidates_new);
    else
        printf("imported %lld comparisons as %lld rankings (%lld records, %lld new prompts, %lld "
               "new candidates",
               (long long)st.pairs, (long long)st.rankings, (long long)st.records,
               (long long)st.prompts_new, (long long)st.candidates_new);
    if (st.identical) printf(", %lld with chosen = rejected skipped", (long long)st.identical);
    if (st.groups_split)
        printf(", %lld prompt groups not one ranking: one ranking per pair",
               (long long)st.groups_split);
    printf(")\n");
    return EXIT_OK;
}
