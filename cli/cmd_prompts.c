/* rlhf prompts import|list|flag|unflag|tag|untag: bring prompts into the
 * project, look at them, hold back written prompts other labelers find unfit,
 * and tag prompts for what uses them (the safety RM's gate). */
#include "annotator/session.h"
#include "cli/cli.h"
#include "cli/opts.h"
#include "db/demos.h"
#include "db/prompts.h"
#include "db/rankings.h"

#include <stdlib.h>
#include <string.h>

static int exec_prompts(int argc, char **argv);

const struct cmd_entry cmd_prompts_entry = {
    "prompts",
    "import FILE... [--split S] | list [--split S] [--json] | flag ID --as NAME --reason R | "
    "unflag ID | tag ID... --tag T | untag ID... --tag T",
    "import prompts from text or JSONL files; list them; flag written prompts; tag prompts",
    "import FILE...   plain text (one prompt per line) or JSONL objects with \"prompt\"\n"
    "                 (or \"instruction\" / \"text\"), optional \"id\", \"split\", \"source\",\n"
    "                 \"tags\" (a list of names, as prompts tag).\n"
    "                 Duplicates (same text) are skipped and counted. All files are\n"
    "                 imported in one transaction: any error leaves the project as it was.\n"
    "  --split S      put every imported prompt in split S (default: the file's, else train)\n"
    "                 (labelers write prompts in the prompt task of rlhf label)\n"
    "list             one prompt per line: id, split, candidates, rankings, written answers,\n"
    "                 text (a written prompt's kind and author, flags and [tags] before it)\n"
    "  --split S      only this split\n"
    "  --source S     only prompts from this source\n"
    "  --contains T   only prompts containing T\n"
    "  --limit N      at most N prompts\n"
    "  --offset N     skip the first N\n"
    "  --written      only prompts labelers wrote\n"
    "  --flagged      only prompts other labelers flagged\n"
    "  --json         JSON lines instead of a table (kind, author, examples, flags, tags, demos)\n"
    "flag ID...       hold prompts back from every use (writing, ranking, gen, SFT) until a\n"
    "                 reviewer lifts the flag; a labeler may not flag her own prompt\n"
    "  --as NAME      who flags (default: $USER)\n"
    "  --reason R     unclear, unsafe or duplicate\n"
    "  --note TEXT    why, in words\n"
    "unflag ID...     lift every flag on the prompts (a reviewer's decision)\n"
    "tag ID...        give prompts a tag; unlike a flag it holds nothing back. The tag\n"
    "                 safety sends a prompt to the safety RM of a combination (PATH!T in\n"
    "                 --rm: Llama 2's gate; PATH!T@TAG names another tag)\n"
    "  --tag T        the tag (letters, digits, '_', '-')\n"
    "untag ID...      take the tag --tag T off the prompts\n" CLI_HELP_COMMON,
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
        cJSON_AddNumberToObject(j, "demos", (double)r->n_demos);
        if (r->kind) cJSON_AddStringToObject(j, "kind", r->kind);
        if (r->author) cJSON_AddStringToObject(j, "author", r->author);
        if (r->examples) cJSON_AddRawToObject(j, "examples", r->examples);
        if (r->flags) cJSON_AddStringToObject(j, "flags", r->flags);
        if (r->tags) cJSON_AddStringToObject(j, "tags", r->tags);
        cJSON_AddStringToObject(j, "created_at", r->created_at);
        return cli_json_print(j);
    }
    /* one line per prompt: newlines shown as the two characters \n */
    printf("%6lld  %-8s %4lld %4lld %4lld  ", (long long)r->id, cli_shown(r->split, 0),
           (long long)r->n_candidates, (long long)r->n_rankings, (long long)r->n_demos);
    if (r->kind) printf("(%s by %s) ", r->kind, cli_shown(r->author ? r->author : "?", 0));
    if (r->flags) printf("FLAGGED %s: ", r->flags);
    if (r->tags) printf("[%s] ", r->tags);
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
    PromptFilter f = {.with_flagged = 1}; /* a listing shows what is held back too */
    long limit = 0, offset = 0;
    int json = 0;
    const CliOpt opts[] = {CLI_O_DB(&dbflag),
                           CLI_O_STR("split", &f.split),
                           CLI_O_STR("source", &f.source),
                           CLI_O_STR("contains", &f.contains),
                           CLI_O_LONG("limit", &limit, 0, 1L << 40),
                           CLI_O_LONG("offset", &offset, 0, 1L << 40),
                           CLI_O_FLAG("written", &f.written),
                           CLI_O_FLAG("flagged", &f.flagged),
                           CLI_O_FLAG("json", &json),
                           CLI_O_END};
    CliList rest = {0};
    int rc = cli_opts_parse(E, argc, argv, opts, &rest);
    if (rc < 0 && rest.n) rc = cli_usage_error(E, "list: unexpected argument '%s'", rest.v[0]);
    free(rest.v);
    if (rc >= 0) return rc;
    f.limit = limit, f.offset = offset;
    Db *db;
    if ((rc = cli_open_db(E, dbflag, DB_OPEN_READONLY, &db))) return rc;
    Err err = {0};
    if (!json)
        printf("%6s  %-8s %4s %4s %4s  %s\n", "id", "split", "cand", "rank", "demo", "prompt");
    rc = db_prompts_each(db, &f, print_row, &json, &err);
    db_close(db);
    return rc ? cli_fail(E, &err) : EXIT_OK;
}

/* The prompt ids of flag and unflag, each checked. */
static int parse_ids(const CliList *rest, int64_t *ids) {
    if (!rest->n) return cli_usage_error(E, "which prompt? give its ID (rlhf prompts list)");
    for (int i = 0; i < rest->n; i++) {
        char *end;
        long long v = strtoll(rest->v[i], &end, 10);
        if (end == rest->v[i] || *end || v < 1)
            return cli_usage_error(E, "'%s' is not a prompt id", rest->v[i]);
        ids[i] = v;
    }
    return -1;
}

/* flag (reason given) or unflag (reason NULL) every id, in one transaction. */
static int flag_each(Db *db, const int64_t *ids, int n, const char *name, const char *reason,
                     const char *note) {
    Err err = {0};
    int64_t lid = 0, removed = 0;
    int rc = db_begin(db, &err);
    if (!rc && reason) rc = db_labeler_ensure(db, name, 0, NULL, &lid, &err);
    for (int i = 0; !rc && i < n; i++) {
        int64_t r = 0;
        rc = reason ? db_prompt_flag(db, ids[i], lid, reason, note, &err)
                    : db_prompt_unflag(db, ids[i], &r, &err);
        removed += r;
    }
    if (!rc)
        rc = db_commit(db, &err);
    else
        db_rollback(db);
    if (rc) return cli_fail(E, &err);
    if (reason)
        printf("flagged %d prompt%s %s: held back from every use\n", n, n == 1 ? "" : "s", reason);
    else
        printf("lifted %lld flag%s from %d prompt%s\n", (long long)removed, removed == 1 ? "" : "s",
               n, n == 1 ? "" : "s");
    return EXIT_OK;
}

static int flag_cmd(int argc, char **argv, int unflag) {
    const char *dbflag = NULL, *name = NULL, *note = NULL;
    int reason = -1;
    const CliOpt flag_opts[] = {CLI_O_DB(&dbflag), CLI_O_STR("as", &name),
                                CLI_O_WORD("reason", &reason, db_prompt_flag_names),
                                CLI_O_STR("note", &note), CLI_O_END};
    const CliOpt unflag_opts[] = {CLI_O_DB(&dbflag), CLI_O_END};
    CliList rest = {0};
    int rc = cli_opts_parse(E, argc, argv, unflag ? unflag_opts : flag_opts, &rest);
    int64_t *ids = calloc((size_t)rest.n + 1, sizeof *ids);
    if (rc < 0) rc = ids ? parse_ids(&rest, ids) : EXIT_FAIL;
    if (!name) name = getenv("USER");
    Err nerr = {0};
    if (rc < 0 && !unflag && reason < 0)
        rc = cli_usage_error(E, "flag: --reason is required (unclear, unsafe or duplicate)");
    if (rc < 0 && !unflag && (!name || ls_check_name(name, &nerr)))
        rc = cli_usage_error(E, "--as: %s", name ? nerr.msg : "who flags? pass --as NAME");
    Db *db = NULL;
    if (rc < 0) rc = cli_open_db(E, dbflag, DB_OPEN_EXISTING, &db);
    if (db) {
        rc = flag_each(db, ids, rest.n, name, unflag ? NULL : db_prompt_flag_names[reason], note);
        db_close(db);
    }
    free(ids);
    free(rest.v);
    return rc;
}

static int flag(int argc, char **argv) {
    return flag_cmd(argc, argv, 0);
}

static int unflag(int argc, char **argv) {
    return flag_cmd(argc, argv, 1);
}

/* tag or untag every id, in one transaction. */
static int tag_cmd(int argc, char **argv, int on) {
    const char *dbflag = NULL, *tag = NULL;
    const CliOpt opts[] = {CLI_O_DB(&dbflag), CLI_O_STR("tag", &tag), CLI_O_END};
    CliList rest = {0};
    int rc = cli_opts_parse(E, argc, argv, opts, &rest);
    int64_t *ids = calloc((size_t)rest.n + 1, sizeof *ids);
    if (rc < 0) rc = ids ? parse_ids(&rest, ids) : EXIT_FAIL;
    if (rc < 0 && !tag) rc = cli_usage_error(E, "%s: --tag NAME is required", on ? "tag" : "untag");
    if (rc < 0 && !db_valid_split(tag))
        rc = cli_usage_error(E, "--tag: '%s' is not a name (letters, digits, '_', '-')", tag);
    Db *db = NULL;
    Err err = {0};
    if (rc < 0 && !(rc = cli_open_db(E, dbflag, DB_OPEN_EXISTING, &db))) {
        rc = db_begin(db, &err);
        for (int i = 0; !rc && i < rest.n; i++)
            rc = db_prompt_tag(db, ids[i], tag, on, &err);
        if (!rc)
            rc = db_commit(db, &err);
        else
            db_rollback(db);
        db_close(db);
        if (rc)
            rc = cli_fail(E, &err);
        else
            printf("%s %d prompt%s %s\n", on ? "tagged" : "untagged", rest.n,
                   rest.n == 1 ? "" : "s", tag);
    }
    free(ids);
    free(rest.v);
    return rc;
}

static int tag(int argc, char **argv) {
    return tag_cmd(argc, argv, 1);
}

static int untag(int argc, char **argv) {
    return tag_cmd(argc, argv, 0);
}

static int exec_prompts(int argc, char **argv) {
    static const struct cli_sub subs[] = {{"import", import}, {"list", list}, {"flag", flag},
                                          {"unflag", unflag}, {"tag", tag},   {"untag", untag},
                                          {NULL, NULL}};
    return cli_dispatch(E, subs, argc, argv);
}
