/* db/: open/migrate/refuse, prompts import all-or-nothing, candidates, rankings. */
#include <criterion/criterion.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "db/candidates.h"
#include "db/db.h"
#include "db/prompts.h"
#include "db/rankings.h"
#include "db/registry.h"
#include "db/status.h"
#include "tests/unit/files.h"
#include "tests/unit/project_db.h"

static char dbpath[64];

static void setup(void) {
    snprintf(dbpath, sizeof dbpath, "/tmp/rlhf-unit-db-%d.db", getpid());
    unlink(dbpath);
}

static void teardown(void) { unlink_db(dbpath); }

static Db *fresh(void) {
    Db *db;
    Err e = {0};
    cr_assert_eq(db_open(dbpath, DB_OPEN_CREATE, &db, &e), 0, "%s", e.msg);
    return db;
}

TestSuite(db, .init = setup, .fini = teardown);

Test(db, create_then_open_existing) {
    Db *db = fresh();
    int v;
    cr_assert_eq(db_schema_version(db, &v, NULL), 0);
    cr_assert_eq(v, DB_SCHEMA_VERSION);
    db_close(db);
    Err e = {0};
    cr_assert_eq(db_open(dbpath, DB_OPEN_EXISTING, &db, &e), 0, "%s", e.msg);
    db_close(db);
}

Test(db, missing_file_is_not_created) {
    Db *db;
    Err e = {0};
    cr_assert_eq(db_open(dbpath, DB_OPEN_EXISTING, &db, &e), RLHF_ENOTFOUND);
    cr_assert(strstr(e.msg, "rlhf init"), "%s", e.msg);
    cr_assert_eq(access(dbpath, F_OK), -1);
}

Test(db, newer_schema_refused) {
    Db *db = fresh();
    db_close(db);
    sqlite3 *h;
    sqlite3_open(dbpath, &h);
    sqlite3_exec(h, "PRAGMA user_version = 99", NULL, NULL, NULL);
    sqlite3_close(h);
    Err e = {0};
    cr_assert_eq(db_open(dbpath, DB_OPEN_EXISTING, &db, &e), RLHF_EVERSION);
    cr_assert(strstr(e.msg, "newer"), "%s", e.msg);
}


/* A schema-3 project (candidates stored once per text, no draws) migrates to
 * 4: each sampled candidate counts as one draw, in id order; imported ones
 * (no seed) as none; later inserts keep their ids and finish. */
Test(db, schema_3_migrates_to_draws) {
    project_at_schema(dbpath, 3,
                      "INSERT INTO prompts(id, text, hash) VALUES(1, 'q', 'h1');"
                      "INSERT INTO models(id, name, kind) VALUES(1, 'm', 'policy'), (2, 'x', 'external');"
                      "INSERT INTO candidates(prompt_id, model_id, text, hash, seed) VALUES"
                      " (1, 1, 'a', 'ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb', 11), (1, 1, 'b', 'hb', 12), (1, 2, 'c', 'hc', NULL);");
    Db *db;
    Err e = {0};
    cr_assert_eq(db_open(dbpath, DB_OPEN_EXISTING, &db, &e), 0, "%s", e.msg);
    int64_t n, *ids;
    int nd;
    int64_t mine;
    cr_assert_eq(db_draws_count(db, 1, 1, NULL, &n, &mine, &e), 0, "%s", e.msg);
    cr_assert_eq(n, 2);
    cr_assert_eq(mine, 2, "migrated draws: configuration unknown");
    cr_assert_eq(db_draws_count(db, 1, 1, "{\"seed\":1}", &n, &mine, &e), 0, "%s", e.msg);
    cr_assert(n == 2 && mine == 0, "a draw of unknown configuration is nobody's");
    cr_assert_eq(db_draws_count(db, 1, 2, NULL, &n, &mine, &e), 0);
    cr_assert_eq(n, 0, "an imported answer was never drawn");
    cr_assert_eq(db_draws_first(db, 1, 1, NULL, 8, &ids, &nd, &e), 0);
    cr_assert_eq(nd, 2);
    cr_assert(ids[0] < ids[1]);
    free(ids);
    int toks[] = {5, 6, 2};
    CandidateIn c = {1, 1, "a", 3, NAN, NULL, 13, 1, toks, 3, CAND_FINISH_EOS};
    int64_t id;
    int inserted;
    cr_assert_eq(db_candidate_insert(db, &c, &id, &inserted, &e), 0, "%s", e.msg);
    cr_assert_eq(inserted, 0, "the same text is the same candidate");
    cr_assert_eq(db_draw_insert(db, 1, 1, 2, id, 13, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(db_draw_insert(db, 1, 1, 3, id, 14, "{\"seed\":2}", &e), 0, "%s", e.msg);
    cr_assert_eq(db_draws_first(db, 1, 1, "{\"seed\":2}", 8, &ids, &nd, &e), 0);
    cr_assert(nd == 1 && ids[0] == id, "only the draws of a configuration");
    free(ids);
    cr_assert_eq(db_draws_first(db, 1, 1, NULL, 8, &ids, &nd, &e), 0);
    cr_assert_eq(nd, 3);
    cr_assert_eq(ids[2], ids[0], "a repeated text: one candidate, two draws");
    free(ids);
    c.text = "d";
    cr_assert_eq(db_candidate_insert(db, &c, &id, &inserted, &e), 0, "%s", e.msg);
    CandidateRow *rows;
    int nr;
    cr_assert_eq(db_candidates_of_prompt(db, 1, &rows, &nr, &e), 0);
    cr_assert_eq(nr, 4);
    cr_assert_null(rows[0].tokens, "stored before: no ids");
    cr_assert_eq(rows[3].n_ids, 3);
    cr_assert_eq(rows[3].tokens[2], 2);
    cr_assert_eq(rows[3].finish, CAND_FINISH_EOS);
    db_candidates_free(rows, nr);
    db_close(db);
}

Test(db, foreign_sqlite_and_garbage_refused) {
    sqlite3 *h;
    sqlite3_open(dbpath, &h);
    sqlite3_exec(h, "CREATE TABLE x(a); PRAGMA user_version = 1;", NULL, NULL, NULL);
    sqlite3_close(h);
    Db *db;
    Err e = {0};
    cr_assert_eq(db_open(dbpath, DB_OPEN_EXISTING, &db, &e), RLHF_EFORMAT);
    cr_assert(strstr(e.msg, "not an rlhf project"), "%s", e.msg);
    teardown();
    write_file(dbpath, "this is not a database at all, just some text that goes on and on\n");
    cr_assert_eq(db_open(dbpath, DB_OPEN_EXISTING, &db, &e), RLHF_EFORMAT);
}

Test(db, prompts_import_dedup_and_all_or_nothing) {
    Db *db = fresh();
    char good[80], bad[80];
    snprintf(good, sizeof good, "%s.good.jsonl", dbpath);
    snprintf(bad, sizeof bad, "%s.bad.jsonl", dbpath);
    write_file(good, "{\"prompt\":\"a\",\"split\":\"test\"}\n{\"instruction\":\"b\",\"id\":7}\n{\"text\":\"a\"}\n");
    write_file(bad, "{\"prompt\":\"c\"}\n{\"prompt\": 5}\n");
    Err e = {0};
    PromptImportStats st = {0};
    cr_assert_eq(db_begin(db, &e), 0);
    cr_assert_eq(db_prompts_import_file(db, good, NULL, &st, &e), 0, "%s", e.msg);
    cr_assert_eq(st.inserted, 2);
    cr_assert_eq(st.duplicates, 1);
    int rc = db_prompts_import_file(db, bad, NULL, &st, &e);
    cr_assert_eq(rc, RLHF_EFORMAT);
    cr_assert(strstr(e.msg, ".bad.jsonl:2: field \"prompt\" must be a string"), "%s", e.msg);
    db_rollback(db);
    DbStatus s;
    cr_assert_eq(db_status(db, &s, &e), 0);
    cr_assert_eq(s.prompts, 0, "rollback must leave nothing");
    db_status_free(&s);
    unlink(good);
    unlink(bad);
    db_close(db);
}

static int n_tagged(Db *db, const char *tag) {
    char **texts;
    int n;
    Err e = {0};
    cr_assert_eq(db_prompts_tagged(db, tag, &texts, &n, &e), 0, "%s", e.msg);
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
    return n;
}

/* "tags" in a prompts file: an array of names or one name, added to new and
 * existing prompts alike, row by row and staged; a bad tag names its line
 * and the staged import leaves nothing. */
Test(db, prompts_import_tags) {
    Db *db = fresh();
    char good[80], bad[80];
    snprintf(good, sizeof good, "%s.good.jsonl", dbpath);
    snprintf(bad, sizeof bad, "%s.bad.jsonl", dbpath);
    write_file(good, "{\"prompt\":\"a\",\"tags\":[\"safety\",\"redteam\"]}\n{\"prompt\":\"b\",\"tags\":\"safety\"}\n"
                     "{\"prompt\":\"c\",\"tags\":[]}\n{\"prompt\":\"a\",\"tags\":[\"late\"]}\n");
    write_file(bad, "{\"prompt\":\"d\",\"tags\":[\"safety\"]}\n{\"prompt\":\"e\",\"tags\":[\"no way\"]}\n");
    Err e = {0};
    PromptImportStats st = {0};
    cr_assert_eq(db_prompts_import_file(db, good, NULL, &st, &e), 0, "%s", e.msg);
    cr_assert_eq(st.inserted, 3);
    cr_assert_eq(n_tagged(db, "safety"), 2);
    cr_assert_eq(n_tagged(db, "redteam"), 1);
    cr_assert_eq(n_tagged(db, "late"), 1, "a duplicate prompt's tags go to the prompt stored");
    cr_assert_eq(db_prompts_stage_begin(db, &e), 0, "%s", e.msg);
    int rc = db_prompts_import_file(db, bad, NULL, &st, &e);
    cr_assert_eq(rc, RLHF_EFORMAT);
    cr_assert(strstr(e.msg, ".bad.jsonl:2: field \"tags\""), "%s", e.msg);
    db_prompts_stage_abort(db);
    cr_assert_eq(n_tagged(db, "safety"), 2, "the failed import tagged nothing");
    write_file(bad, "{\"prompt\":\"d\",\"tags\":[\"safety\"]}\n{\"prompt\":\"b\",\"tags\":[\"late\"]}\n");
    PromptImportStats st2 = {0};
    cr_assert_eq(db_prompts_stage_begin(db, &e), 0, "%s", e.msg);
    cr_assert_eq(db_prompts_import_file(db, bad, NULL, &st2, &e), 0, "%s", e.msg);
    cr_assert_eq(db_prompts_stage_commit(db, &st2, &e), 0, "%s", e.msg);
    cr_assert_eq(st2.inserted, 1);
    cr_assert_eq(n_tagged(db, "safety"), 3, "staged: the new prompt's tags");
    cr_assert_eq(n_tagged(db, "late"), 2, "staged: the existing prompt's");
    write_file(bad, "{\"prompt\":\"f\",\"tags\":7}\n");
    cr_assert_eq(db_prompts_import_file(db, bad, NULL, &st, &e), RLHF_EFORMAT);
    cr_assert(strstr(e.msg, ":1: field \"tags\" must be"), "%s", e.msg);
    unlink(good);
    unlink(bad);
    db_close(db);
}

static int64_t add_prompt(Db *db, const char *text) {
    int64_t id;
    PromptIn in = {text, NULL, NULL, NULL, NULL};
    cr_assert_eq(db_prompt_insert(db, &in, &id, NULL, NULL), 0);
    return id;
}

static int64_t add_cand(Db *db, int64_t pid, int64_t mid, const char *text) {
    int64_t id;
    CandidateIn c = {pid, mid, text, -1, NAN, NULL, 0, 0, NULL, 0, 0};
    cr_assert_eq(db_candidate_insert(db, &c, &id, NULL, NULL), 0);
    return id;
}

struct seen {
    int n, versions[8], current[8], nitems[8];
};

static int collect(const RankingRow *r, void *ctx) {
    struct seen *s = ctx;
    s->versions[s->n] = r->version;
    s->current[s->n] = r->is_current;
    s->nitems[s->n] = r->n_items;
    cr_assert(r->n_items < 2 || r->items[0].rank <= r->items[1].rank);
    s->n++;
    return 0;
}

Test(db, rankings_submit_versions_and_read) {
    Db *db = fresh();
    Err e = {0};
    int64_t pid = add_prompt(db, "p"), mid, lid;
    cr_assert_eq(db_model_ensure_external(db, "m", &mid, &e), 0);
    int64_t c1 = add_cand(db, pid, mid, "one"), c2 = add_cand(db, pid, mid, "two");
    int ins = 1;
    CandidateIn dup = {pid, mid, "one", -1, NAN, NULL, 0, 0, NULL, 0, 0};
    int64_t dupid;
    cr_assert_eq(db_candidate_insert(db, &dup, &dupid, &ins, &e), 0);
    cr_assert_eq(ins, 0);
    cr_assert_eq(dupid, c1);
    cr_assert_eq(db_labeler_ensure(db, "ann", 0, NULL, &lid, &e), 0);
    RankingItemIn items[2] = {{c2, 1, 6, "[\"harmful\"]", 0}, {c1, 2, 3, NULL, 1}};
    RankingIn in = {.prompt_id = pid, .labeler_id = lid, .items = items, .n_items = 2,
                    .time_spent_ms = 1200, .gold_agreement = NAN, .source = "test"};
    int64_t r1, r2;
    cr_assert_eq(db_ranking_submit(db, &in, &r1, &e), 0, "%s", e.msg);
    items[0].rank = 2, items[1].rank = 1;
    cr_assert_eq(db_ranking_submit(db, &in, &r2, &e), 0, "%s", e.msg);
    RankingFilter f = db_ranking_filter_default();
    struct seen s = {0};
    cr_assert_eq(db_rankings_each(db, &f, collect, &s, &e), 0);
    cr_assert_eq(s.n, 1);
    cr_assert_eq(s.versions[0], 2);
    f.all_versions = 1;
    memset(&s, 0, sizeof s);
    cr_assert_eq(db_rankings_each(db, &f, collect, &s, &e), 0);
    cr_assert_eq(s.n, 2);
    cr_assert_eq(s.current[0], 0);
    cr_assert_eq(s.nitems[1], 2);
    /* bad input: a candidate of another prompt, a score out of range */
    int64_t other = add_prompt(db, "q");
    int64_t c3 = add_cand(db, other, mid, "three");
    items[1].candidate_id = c3;
    cr_assert_eq(db_ranking_submit(db, &in, NULL, &e), RLHF_EINVAL);
    cr_assert(strstr(e.msg, "does not belong"), "%s", e.msg);
    items[1].candidate_id = c1;
    items[1].likert = 9;
    cr_assert_eq(db_ranking_submit(db, &in, NULL, &e), RLHF_EINVAL);
    DbStatus st;
    cr_assert_eq(db_status(db, &st, &e), 0);
    cr_assert_eq(st.rankings, 1);
    cr_assert_eq(st.comparisons, 1);
    db_status_free(&st);
    db_close(db);
}

Test(db, registry_runs_metrics) {
    Db *db = fresh();
    Err e = {0};
    int64_t id, id2, run;
    ModelIn m = {"base", "base", "/tmp/x.bin", 0, "abc", "{\"dim\":8}", NULL};
    cr_assert_eq(db_model_upsert(db, &m, &id, &e), 0, "%s", e.msg);
    m.sha256 = "def";
    cr_assert_eq(db_model_upsert(db, &m, &id2, &e), 0);
    cr_assert_eq(id, id2);
    ModelRow row;
    cr_assert_eq(db_model_get(db, "/tmp/x.bin", &row, &e), 0);
    cr_assert_str_eq(row.sha256, "def");
    db_model_row_free(&row);
    cr_assert_eq(db_model_get(db, "nope", &row, &e), RLHF_ENOTFOUND);
    cr_assert_eq(db_run_start(db, "pretrain", "{}", id, &run, &e), 0);
    cr_assert_eq(db_metric_add(db, run, 1, "loss", 2.5, &e), 0);
    cr_assert_eq(db_metric_add(db, run, 1, "loss", 2.4, &e), 0);
    cr_assert_eq(db_run_finish(db, run, "done", id, NULL, &e), 0);
    db_close(db);
}

Test(db, two_connections_write_without_loss) {
    Db *a = fresh(), *b;
    Err e = {0};
    cr_assert_eq(db_open(dbpath, DB_OPEN_EXISTING, &b, &e), 0);
    cr_assert_eq(db_begin(a, &e), 0);
    add_prompt(a, "from a");
    cr_assert_eq(db_commit(a, &e), 0);
    cr_assert_eq(db_begin(b, &e), 0);
    add_prompt(b, "from b");
    cr_assert_eq(db_commit(b, &e), 0);
    DbStatus s;
    cr_assert_eq(db_status(a, &s, &e), 0);
    cr_assert_eq(s.prompts, 2);
    db_status_free(&s);
    db_close(a);
    db_close(b);
}

/* A reading command on a project an older rlhf made (schema 1 here) sees the
 * current tables: the read-only open migrates it first; a file it cannot
 * write gets an error that says how to upgrade it, and stays as it was. */
Test(db, readonly_open_migrates_an_older_project) {
    project_at_schema(dbpath, 1, NULL);
    Db *db;
    Err e = {0};
    if (geteuid() != 0) { /* root writes whatever the mode says */
        cr_assert_eq(chmod(dbpath, 0444), 0);
        cr_assert_eq(db_open(dbpath, DB_OPEN_READONLY, &db, &e), RLHF_EVERSION);
        cr_assert(strstr(e.msg, "older than this rlhf") && strstr(e.msg, "write access"), "%s", e.msg);
        cr_assert_eq(chmod(dbpath, 0644), 0);
    }
    db = open_migrated(dbpath, DB_OPEN_READONLY);
    int64_t n = -1, mine = -1;
    cr_assert_eq(db_draws_count(db, 1, 1, NULL, &n, &mine, &e), 0, "%s", e.msg); /* reads the draws table */
    cr_assert_eq(n, 0);
    db_close(db);
}
