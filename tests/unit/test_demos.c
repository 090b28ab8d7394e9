/* Demonstrations and written prompts: schema 4 -> 5 keeps every claim (the
 * assignments table is rebuilt with a task), storing an answer, the write
 * task's claims, never ranking one's own answer, prompt flags, the edit
 * distance, and the few-shot prompt parser. */
#include <criterion/criterion.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "annotator/prompt_write.h"
#include "db/assign.h"
#include "db/candidates.h"
#include "db/db.h"
#include "db/demos.h"
#include "db/prompts.h"
#include "db/rankings.h"
#include "db/registry.h"
#include "db/scores.h"
#include "tests/unit/project_db.h"
#include "util/text.h"

static char dbpath[64];

static void setup(void) {
    snprintf(dbpath, sizeof dbpath, "/tmp/rlhf-unit-demos-%d.db", getpid());
    unlink(dbpath);
}

static void teardown(void) { unlink_db(dbpath); }

TestSuite(demos, .init = setup, .fini = teardown);

static int64_t count(Db *db, const char *sql) {
    int64_t v = -1;
    (void)db;
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(dbpath, &h), SQLITE_OK);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

Test(demos, schema_4_migrates_keeping_claims) {
    project_at_schema(dbpath, 4,
                      "INSERT INTO prompts(id, text, hash) VALUES(1, 'q', 'h1'), (2, 'r', 'h2');"
                      "INSERT INTO labelers(id, name) VALUES(1, 'ann');"
                      "INSERT INTO assignments(prompt_id, labeler_id, status, expires_at)"
                      " VALUES(1, 1, 'claimed', '2999-01-01T00:00:00Z'), (2, 1, 'done', NULL);");
    Db *db = open_migrated(dbpath, DB_OPEN_EXISTING);
    Err e = {0};
    db_close(db);
    cr_assert_eq(count(NULL, "SELECT count(*) FROM assignments WHERE task = 'rank'"), 2);
    cr_assert_eq(count(NULL, "SELECT status = 'claimed' FROM assignments WHERE prompt_id = 1"), 1);
    /* the same labeler may now hold a write claim on the same prompt */
    cr_assert_eq(db_open(dbpath, DB_OPEN_EXISTING, &db, &e), 0);
    AssignOpts o = {.overlap = 1, .lease_s = 600, .task = ASSIGN_WRITE};
    Claim c;
    cr_assert_eq(db_assign_claim(db, 1, &o, &c, &e), 0, "%s", e.msg);
    cr_assert_eq(c.prompt_id, 1, "the write task's own queue, from the oldest prompt");
    db_close(db);
}

/* 5 -> 6 adds the RM margins; scores already stored stay, and margins come
 * from them when `rlhf score` runs again (and 6 -> 7 the prompts' tags). */
Test(demos, schema_5_migrates_to_margins) {
    project_at_schema(dbpath, 5,
                      "INSERT INTO prompts(id, text, hash) VALUES(1, 'q', 'h1');"
                      "INSERT INTO models(id, name, kind) VALUES(1, 'm', 'external'), (2, 'rm', 'rm');"
                      "INSERT INTO candidates(id, prompt_id, model_id, text, hash)"
                      " VALUES(1, 1, 1, 'a', 'a'), (2, 1, 1, 'b', 'b');"
                      "INSERT INTO scores(candidate_id, model_id, score) VALUES(1, 2, 0.5), (2, 2, 0.25);");
    Db *db = open_migrated(dbpath, DB_OPEN_EXISTING);
    Err e = {0};
    cr_assert_eq(count(NULL, "SELECT count(*) FROM prompt_margins"), 0);
    cr_assert_eq(count(NULL, "SELECT count(*) FROM prompt_tags"), 0,
                 "6 -> 7 adds the prompts' tags");
    int64_t n;
    cr_assert_eq(db_margins_refresh(db, 2, &n, &e), 0, "%s", e.msg);
    cr_assert_eq(n, 1);
    db_close(db);
    cr_assert_eq(count(NULL, "SELECT margin = 0.25 FROM prompt_margins WHERE prompt_id = 1"), 1);
}

static int64_t add_cands(Db *db, int64_t pid, const char *a, const char *b) {
    Err e = {0};
    int64_t m1, m2, id;
    int ins;
    cr_assert_eq(db_model_ensure_external(db, "m1", &m1, &e), 0);
    cr_assert_eq(db_model_ensure_external(db, "m2", &m2, &e), 0);
    CandidateIn c = {pid, m1, a, -1, NAN, NULL, 0, 0, NULL, 0, 0};
    cr_assert_eq(db_candidate_insert(db, &c, &id, &ins, &e), 0, "%s", e.msg);
    c.model_id = m2, c.text = b;
    int64_t id2;
    cr_assert_eq(db_candidate_insert(db, &c, &id2, &ins, &e), 0);
    return id;
}

Test(demos, store_assign_own_answer_and_flags) {
    Db *db;
    Err e = {0};
    cr_assert_eq(db_open(dbpath, DB_OPEN_CREATE, &db, &e), 0, "%s", e.msg);
    int64_t p1, p2, ann, bob;
    PromptIn pa = {"What is 2+2?", NULL, NULL, NULL, NULL},
             pb = {"Name a colour.", NULL, NULL, NULL, NULL};
    cr_assert_eq(db_prompt_insert(db, &pa, &p1, NULL, &e), 0);
    cr_assert_eq(db_prompt_insert(db, &pb, &p2, NULL, &e), 0);
    int64_t c1 = add_cands(db, p1, "Four.", "Five.");
    add_cands(db, p2, "Red.", "Blue.");
    cr_assert_eq(db_labeler_ensure(db, "ann", 0, NULL, &ann, &e), 0);
    cr_assert_eq(db_labeler_ensure(db, "bob", 0, NULL, &bob, &e), 0);
    /* ann writes prompt 1's answer from candidate c1 */
    AssignOpts w = {.overlap = 1, .lease_s = 600, .task = ASSIGN_WRITE}, r = {.overlap = 1, .lease_s = 600, .task = ASSIGN_RANK};
    Claim c;
    cr_assert_eq(db_assign_claim(db, ann, &w, &c, &e), 0);
    cr_assert_eq(c.prompt_id, p1);
    DemoIn d = {p1, ann, "ann", "2 + 2 is 4.", c1, 1500, 9, 0, "tui", 1};
    int64_t cid;
    cr_assert_eq(db_demo_store(db, &d, &cid, &e), 0, "%s", e.msg);
    cr_assert_eq(db_demo_store(db, &d, &cid, &e), RLHF_EINVAL, "the same answer twice");
    DemoIn empty = d;
    empty.text = "";
    cr_assert_eq(db_demo_store(db, &empty, NULL, &e), RLHF_EINVAL);
    DemoIn wrong = d;
    wrong.text = "x", wrong.prompt_id = p2;
    cr_assert_eq(db_demo_store(db, &wrong, NULL, &e), RLHF_EINVAL,
                 "edited from another prompt's candidate");
    cr_assert_eq(
        count(NULL, "SELECT count(*) FROM assignments WHERE task = 'write' AND status = 'done'"),
        1);
    /* overlap 1: prompt 1 has its answer; ann's next write is prompt 2, bob's too */
    cr_assert_eq(db_assign_claim(db, bob, &w, &c, &e), 0);
    cr_assert_eq(c.prompt_id, p2);
    /* ranking: ann never gets prompt 1 (her answer is there); bob does */
    cr_assert_eq(db_assign_claim(db, ann, &r, &c, &e), 0);
    cr_assert_eq(c.prompt_id, p2);
    cr_assert_eq(db_assign_claim(db, bob, &r, &c, &e), 0);
    cr_assert_eq(c.prompt_id, p1);
    cr_assert_eq(count(NULL, "SELECT count(*) FROM demonstrations WHERE edited_from IS NOT NULL "
                             "AND edit_distance = 9 AND time_spent_ms = 1500"),
                 1);
    /* flags: not one's own written prompt; a flag holds the prompt back */
    WrittenPromptIn wp = {"Write a haiku.", "plain", NULL, "train", ann};
    int64_t p3;
    int ins;
    cr_assert_eq(db_prompt_write(db, &wp, &p3, &ins, &e), 0, "%s", e.msg);
    cr_assert_eq(ins, 1);
    cr_assert_eq(db_prompt_write(db, &wp, &p3, &ins, &e), 0);
    cr_assert_eq(ins, 0, "deduplicated by hash");
    wp.kind = "poem";
    cr_assert_eq(db_prompt_write(db, &wp, &p3, &ins, &e), RLHF_EINVAL);
    cr_assert_eq(db_prompt_flag(db, p3, ann, "unsafe", NULL, &e), RLHF_EINVAL, "her own");
    cr_assert_eq(db_prompt_flag(db, p3, bob, "rude", NULL, &e), RLHF_EINVAL);
    cr_assert_eq(db_prompt_flag(db, 99, bob, "unsafe", NULL, &e), RLHF_ENOTFOUND);
    cr_assert_eq(db_prompt_flag(db, p3, bob, "unclear", "what form?", &e), 0, "%s", e.msg);
    char *flags;
    cr_assert_eq(db_prompt_flags(db, p3, &flags, &e), 0);
    cr_assert_str_eq(flags, "unclear");
    free(flags);
    int64_t carl;
    cr_assert_eq(db_labeler_ensure(db, "carl", 0, NULL, &carl, &e), 0);
    AssignOpts w3 = {.overlap = 3, .lease_s = 600, .task = ASSIGN_WRITE};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(db_assign_claim(db, carl, &w3, &c, &e), 0);
        cr_assert_neq(c.prompt_id, p3, "a flagged prompt is not handed out");
        if (!c.prompt_id) break;
        cr_assert_eq(db_assign_finish(db, carl, c.prompt_id, ASSIGN_WRITE, 1, &e), 0);
    }
    int64_t removed;
    cr_assert_eq(db_prompt_unflag(db, p3, &removed, &e), 0);
    cr_assert_eq(removed, 1);
    cr_assert_eq(db_assign_claim(db, carl, &w3, &c, &e), 0);
    cr_assert_eq(c.prompt_id, p3, "unflagged: handed out");
    db_close(db);
}

Test(demos, edit_distance_in_code_points) {
    cr_assert_eq(text_edit_distance("", ""), 0);
    cr_assert_eq(text_edit_distance("kitten", "sitting"), 3);
    cr_assert_eq(text_edit_distance("", "春眠不觉晓"), 5);
    cr_assert_eq(text_edit_distance("春眠不觉晓", "春眠不知晓"), 1,
                 "one CJK character is one edit");
    cr_assert_eq(text_edit_distance("a🌸b", "ab"), 1);
    cr_assert_eq(text_edit_distance("\xff\xfe", "\xff"), 1, "an invalid byte counts as one");
    char *a = malloc(5001), *b = malloc(5001);
    memset(a, 'x', 5000), memset(b, 'x', 5000);
    a[5000] = b[5000] = 0;
    b[2500] = 'y';
    cr_assert_eq(text_edit_distance(a, b), 1);
    free(a), free(b);
}

Test(demos, fewshot_prompt_parsed) {
    char *p, *ex;
    Err e = {0};
    cr_assert_eq(
        pw_parse("fewshot",
                 "Classify.\n### query\nI loved it\n### response\npositive\n### query\nDull.\n", &p,
                 &ex, &e),
        0, "%s", e.msg);
    cr_assert_str_eq(
        p, "Classify.\n\nQuery: I loved it\nResponse: positive\n\nQuery: Dull.\nResponse:");
    cr_assert_str_eq(ex, "[{\"query\":\"I loved it\",\"response\":\"positive\"}]");
    free(p), free(ex);
    cr_assert_eq(pw_parse("fewshot", "Classify.\n### query\nI loved it\n", &p, &ex, &e),
                 RLHF_EINVAL);
    cr_assert(strstr(e.msg, "at least one example"), "%s", e.msg);
    cr_assert_eq(pw_parse("fewshot", "Classify.\n### query\na\n### response\nb\n", &p, &ex, &e),
                 RLHF_EINVAL);
    cr_assert(strstr(e.msg, "last '### query'"), "%s", e.msg);
    cr_assert_eq(pw_parse("fewshot", "### query\na\n### response\nb\n### query\nc", &p, &ex, &e),
                 RLHF_EINVAL);
    cr_assert(strstr(e.msg, "instruction"), "%s", e.msg);
    cr_assert_eq(pw_parse("fewshot", "Do.\n### response\nb\n", &p, &ex, &e), RLHF_EINVAL);
    cr_assert_eq(pw_parse("fewshot", "No examples at all.", &p, &ex, &e), RLHF_EINVAL);
    cr_assert_eq(pw_parse("plain", "  Write a haiku.\n\n", &p, &ex, &e), 0);
    cr_assert_str_eq(p, "Write a haiku.");
    cr_assert_null(ex);
    free(p);
}
