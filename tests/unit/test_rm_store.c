/* rm/ on a real store: players by policy across rounds, HH transcript
 * splitting, and an in-process export/import round trip with ties. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <unistd.h>

#include "db/candidates.h"
#include "db/prompts.h"
#include "db/rankings.h"
#include "db/registry.h"
#include "rm/elo.h"
#include "rm/export.h"
#include "rm/import.h"
#include "tests/unit/fixtures.h"
#include "util/text.h"

static int64_t model(Db *db, const char *name, const char *kind, int64_t parent) {
    ModelIn m = {name, kind, NULL, parent, NULL, NULL, NULL};
    int64_t id;
    Err err = {0};
    cr_assert_eq(db_model_upsert(db, &m, &id, &err), 0, "%s", err.msg);
    return id;
}

Test(rm_store, players_by_policy_follow_rounds) {
    char path[64];
    Db *db = tmp_db(path);
    Err err = {0};
    int64_t base = model(db, "base", "base", 0), sft = model(db, "sft", "sft", base);
    int64_t ppo = model(db, "ppo-1", "policy", sft), ext = model(db, "ext", "external", 0);
    int64_t ms[4] = {ppo, sft, base, ext}, pid, lab;
    PromptIn pin = {"a prompt", NULL, NULL, NULL, NULL};
    cr_assert_eq(db_prompt_insert(db, &pin, &pid, NULL, &err), 0);
    cr_assert_eq(db_labeler_ensure(db, "ann", 0, NULL, &lab, &err), 0);
    RankingItemIn items[4];
    for (int i = 0; i < 4; i++) {
        char text[32];
        snprintf(text, sizeof text, "answer %d", i);
        CandidateIn c = {pid, ms[i], text, -1, NAN, NULL, 0, 0, NULL, 0, 0};
        cr_assert_eq(db_candidate_insert(db, &c, &items[i].candidate_id, NULL, &err), 0);
        items[i] = (RankingItemIn){items[i].candidate_id, i + 1, 0, NULL, -1};
    }
    RankingIn in = {0};
    in.prompt_id = pid, in.labeler_id = lab, in.time_spent_ms = -1, in.gold_agreement = NAN;
    in.items = items, in.n_items = 4;
    cr_assert_eq(db_ranking_submit(db, &in, NULL, &err), 0, "%s", err.msg);

    RmSet s;
    cr_assert_eq(rm_set_load(db, NULL, &s, &err), 0);
    EloPlayers p;
    cr_assert_eq(elo_players(db, &s, ELO_BY_POLICY, &p, &err), 0, "%s", err.msg);
    cr_assert_eq(p.n, 3, "the external model is left out");
    int found = 0;
    for (int i = 0; i < p.n; i++)
        if (strcmp(p.name[i], "ppo-1") == 0) {
            found = 1;
            cr_assert_eq(p.round[i], 2);
            cr_assert_str_eq(p.lineage[i], "base > sft > ppo-1");
        } else if (strcmp(p.name[i], "base") == 0)
            cr_assert_eq(p.round[i], 0);
    cr_assert(found);
    Battle *b;
    int64_t nb;
    BattleStats bs;
    cr_assert_eq(elo_battles(&s, &p, &b, &nb, &bs, &err), 0);
    cr_assert_eq(bs.pairs, 6);
    cr_assert_eq(nb, 3);
    cr_assert_eq(bs.left_out, 3);
    free(b);
    elo_players_free(&p);
    cr_assert_eq(elo_players(db, &s, ELO_BY_MODEL, &p, &err), 0);
    cr_assert_eq(p.n, 4);
    elo_players_free(&p);
    rm_set_free(&s);
    rm_db(db, path);
}

Test(rm_store, hh_split) {
    char *p, *a, *b;
    Err err = {0};
    cr_assert_eq(rm_hh_split("\n\nHuman: Hi\n\nAssistant: Hello there",
                             "\n\nHuman: Hi\n\nAssistant: Hey", &p, &a, &b, &err),
                 0);
    cr_assert_str_eq(p, "Hi");
    cr_assert_str_eq(a, "Hello there");
    cr_assert_str_eq(b, "Hey");
    free(p), free(a), free(b);
    /* multi-turn: the prompt keeps the earlier turns; an answer may itself
     * hold the Assistant marker */
    const char *c = "\n\nHuman: A\n\nAssistant: B\n\nHuman: C\n\nAssistant: D\n\nAssistant: E";
    const char *r = "\n\nHuman: A\n\nAssistant: B\n\nHuman: C\n\nAssistant: F";
    cr_assert_eq(rm_hh_split(c, r, &p, &a, &b, &err), 0, "%s", err.msg);
    cr_assert_str_eq(p, "A\n\nAssistant: B\n\nHuman: C");
    cr_assert_str_eq(a, "D\n\nAssistant: E");
    cr_assert_str_eq(b, "F");
    free(p), free(a), free(b);
    cr_assert_neq(rm_hh_split("\n\nHuman: A\n\nAssistant: x", "no turns", &p, &a, &b, &err), 0);
    cr_assert(strstr(err.msg, "rejected"), "%s", err.msg);
    cr_assert_neq(rm_hh_split("\n\nHuman: A\n\nAssistant: x", "\n\nHuman: B\n\nAssistant: y", &p,
                              &a, &b, &err),
                  0);
}

Test(rm_store, import_rebuilds_ties_and_splits_other_groups) {
    char path[64], file[64] = "/tmp/rlhf-unit-rm-in-XXXXXX";
    Db *db = tmp_db(path);
    int fd = mkstemp(file);
    /* one complete weak order A = B > C (the tie is the missing pair), then a
     * group that is no single ranking (X > Y twice) */
    const char *data = "{\"prompt\":\"P\",\"chosen\":\"A\",\"rejected\":\"C\"}\n"
                       "{\"prompt\":\"P\",\"chosen\":\"B\",\"rejected\":\"C\"}\n"
                       "{\"prompt\":\"Q\",\"chosen\":\"X\",\"rejected\":\"Y\"}\n"
                       "{\"prompt\":\"Q\",\"chosen\":\"X\",\"rejected\":\"Y\"}\n"
                       "{\"prompt\":\"Q\",\"chosen\":\"X\",\"rejected\":\"X\"}\n";
    cr_assert(write(fd, data, strlen(data)) == (ssize_t)strlen(data));
    close(fd);
    Err err = {0};
    ImportOptions o = {IMPORT_PAIRS, NULL, NULL, NULL, NULL};
    ImportStats st = {0};
    cr_assert_eq(db_begin(db, &err), 0);
    cr_assert_eq(rm_import_file(db, file, &o, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(db_commit(db, &err), 0);
    cr_assert_eq(st.records, 5);
    cr_assert_eq(st.identical, 1);
    cr_assert_eq(st.rankings, 3);
    cr_assert_eq(st.groups_split, 1);
    cr_assert_eq(st.pairs, 4);
    /* arena keeps the tie */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    /* the imported answers have no model: every battle is "import" against itself */
    ExportOptions eo = {.format = EXPORT_ARENA, .filter = db_ranking_filter_default(),
                        .min_agreement = -1, .keep_same_model = 1};
    ExportStats es;
    cr_assert_eq(rm_export(db, &eo, f, NULL, &es, &err), 0, "%s", err.msg);
    fclose(f);
    cr_assert_eq(es.pairs, 5);
    cr_assert_eq(es.ties, 1);
    cr_assert(strstr(buf, "\"winner\":\"tie\""), "%s", buf);
    free(buf);
    unlink(file);
    rm_db(db, path);
}

static char *export_to_string(Db *db, int format, RankingFilter f) {
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    ExportOptions eo = {.format = format, .filter = f, .min_agreement = -1, .keep_same_model = 1};
    ExportStats es;
    Err err = {0};
    cr_assert_eq(rm_export(db, &eo, out, NULL, &es, &err), 0, "%s", err.msg);
    fclose(out);
    return buf;
}

static void import_string(Db *db, const char *data, ImportStats *st) {
    char file[64] = "/tmp/rlhf-unit-rm-in-XXXXXX";
    int fd = mkstemp(file);
    cr_assert(write(fd, data, strlen(data)) == (ssize_t)strlen(data));
    close(fd);
    Err err = {0};
    ImportOptions o = {IMPORT_PAIRS, NULL, NULL, NULL, NULL};
    cr_assert_eq(db_begin(db, &err), 0);
    cr_assert_eq(rm_import_file(db, file, &o, st, &err), 0, "%s", err.msg);
    cr_assert_eq(db_commit(db, &err), 0);
    unlink(file);
}

static int64_t count_rows(const char *dbpath, const char *table) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    sqlite3 *h;
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_open(dbpath, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

/* Prompt "P" with candidates "x" and "y" of model "m". */
static int64_t prompt_xy(Db *db, int64_t *c1, int64_t *c2) {
    Err err = {0};
    PromptIn pin = {"P", NULL, NULL, NULL, NULL};
    int64_t pid, mid = model(db, "m", "policy", 0);
    int ins;
    cr_assert_eq(db_prompt_insert(db, &pin, &pid, &ins, &err), 0, "%s", err.msg);
    CandidateIn c = {pid, mid, "x", -1, NAN, NULL, 0, 0, NULL, 0, 0};
    cr_assert_eq(db_candidate_insert(db, &c, c1, &ins, &err), 0, "%s", err.msg);
    c.text = "y";
    cr_assert_eq(db_candidate_insert(db, &c, c2, &ins, &err), 0, "%s", err.msg);
    return pid;
}

Test(rm_store, identical_pair_leaves_nothing_behind) {
    char path[64];
    Db *db = tmp_db(path);
    ImportStats st = {0};
    import_string(db, "{\"prompt\":\"Z\",\"chosen\":\"same\",\"rejected\":\"same\"}\n", &st);
    cr_assert_eq(st.identical, 1);
    cr_assert_eq(count_rows(path, "prompts"), 0);
    cr_assert_eq(count_rows(path, "candidates"), 0);
    cr_assert_eq(count_rows(path, "rankings"), 0);
    rm_db(db, path);
}

Test(rm_store, arena_sides_do_not_follow_the_outcome) {
    char path[64];
    Db *db = tmp_db(path);
    /* every chosen answer is stored first, so it has the smaller id */
    StrBuf b = {0};
    for (int i = 0; i < 200; i++)
        sb_printf(&b, "{\"prompt\":\"P%d\",\"chosen\":\"good\",\"rejected\":\"bad\"}\n", i);
    ImportStats st = {0};
    import_string(db, b.s, &st);
    sb_free(&b);
    char *out = export_to_string(db, EXPORT_ARENA, db_ranking_filter_default());
    int a = 0, n = 0;
    for (char *p = out; (p = strstr(p, "\"winner\":")); p++, n++)
        a += strncmp(p, "\"winner\":\"model_a\"", 18) == 0;
    cr_assert_eq(n, 200);
    cr_assert(a > 60 && a < 140, "model_a won %d of 200", a);
    /* tstamp is epoch seconds, a number */
    char *t = strstr(out, "\"tstamp\":");
    cr_assert(t && t[9] >= '1' && t[9] <= '9' && atof(t + 9) > 1.7e9, "%s", t);
    free(out);
    rm_db(db, path);
}

Test(rm_store, arena_none_acceptable_tie_is_bothbad) {
    char path[64];
    Db *db = tmp_db(path);
    Err err = {0};
    int64_t c1, c2, lid, pid = prompt_xy(db, &c1, &c2);
    cr_assert_eq(db_labeler_ensure(db, "ann", 0, NULL, &lid, &err), 0, "%s", err.msg);
    RankingItemIn items[2] = {{c1, 1, 0, NULL, 0}, {c2, 1, 0, NULL, 1}};
    RankingIn in = {0};
    in.prompt_id = pid, in.labeler_id = lid, in.none_acceptable = 1;
    in.time_spent_ms = -1, in.gold_agreement = NAN, in.items = items, in.n_items = 2;
    cr_assert_eq(db_ranking_submit(db, &in, NULL, &err), 0, "%s", err.msg);
    char *out = export_to_string(db, EXPORT_ARENA, db_ranking_filter_default());
    cr_assert(strstr(out, "\"winner\":\"tie (bothbad)\""), "%s", out);
    free(out);
    rm_db(db, path);
}

Test(rm_store, hh_dialogue_pairs_prompt_plus_answer_is_the_transcript) {
    char path[64];
    Db *db = tmp_db(path);
    const char *chosen = "\n\nHuman: Hi\n\nAssistant: Hello.\n\nHuman: Sum 2+2?\n\nAssistant: 4";
    char file[64] = "/tmp/rlhf-unit-rm-in-XXXXXX";
    int fd = mkstemp(file);
    const char *data = "{\"chosen\":\"\\n\\nHuman: Hi\\n\\nAssistant: Hello.\\n\\nHuman: Sum "
                       "2+2?\\n\\nAssistant: 4\",\"rejected\":\"\\n\\nHuman: Hi\\n\\nAssistant: "
                       "Hello.\\n\\nHuman: Sum 2+2?\\n\\nAssistant: 5\"}\n";
    cr_assert(write(fd, data, strlen(data)) == (ssize_t)strlen(data));
    close(fd);
    Err err = {0};
    ImportOptions o = {IMPORT_HH, NULL, NULL, NULL, NULL};
    ImportStats st = {0};
    cr_assert_eq(db_begin(db, &err), 0);
    cr_assert_eq(rm_import_file(db, file, &o, &st, &err), 0, "%s", err.msg);
    cr_assert_eq(db_commit(db, &err), 0);
    unlink(file);
    char *out = export_to_string(db, EXPORT_PAIRS, db_ranking_filter_default());
    cJSON *j = cJSON_Parse(out);
    cr_assert_not_null(j, "%s", out);
    StrBuf b = {0};
    sb_puts(&b, cJSON_GetObjectItem(j, "prompt")->valuestring);
    sb_puts(&b, cJSON_GetObjectItem(j, "chosen")->valuestring);
    cr_assert_str_eq(b.s, chosen);
    sb_free(&b);
    cJSON_Delete(j);
    /* and the pairs come back to the same prompt: no second one */
    ImportStats st2 = {0};
    import_string(db, out, &st2);
    cr_assert_eq(st2.prompts_new, 0);
    cr_assert_eq(count_rows(path, "prompts"), 1);
    free(out);
    /* TRL's HH pairs ("...Assistant:" then " answer") land on the same prompt and answers */
    import_string(db,
                  "{\"prompt\":\"\\n\\nHuman: Hi\\n\\nAssistant: Hello.\\n\\nHuman: Sum "
                  "2+2?\\n\\nAssistant:\",\"chosen\":\" 4\",\"rejected\":\" 5\"}\n",
                  &st2);
    cr_assert_eq(count_rows(path, "prompts"), 1);
    cr_assert_eq(count_rows(path, "candidates"), 2);
    rm_db(db, path);
}

Test(rm_store, rankings_export_has_note_skips_and_current) {
    char path[64];
    Db *db = tmp_db(path);
    Err err = {0};
    int64_t c1, c2, ann, bob, pid = prompt_xy(db, &c1, &c2);
    cr_assert_eq(db_labeler_ensure(db, "ann", 0, NULL, &ann, &err), 0, "%s", err.msg);
    cr_assert_eq(db_labeler_ensure(db, "bob", 0, NULL, &bob, &err), 0, "%s", err.msg);
    RankingItemIn items[2] = {{c1, 1, 0, NULL, 0}, {c2, 2, 0, NULL, 1}};
    RankingIn in = {0};
    in.prompt_id = pid, in.labeler_id = ann;
    in.time_spent_ms = -1, in.gold_agreement = NAN, in.items = items, in.n_items = 2;
    cr_assert_eq(db_ranking_submit(db, &in, NULL, &err), 0, "%s", err.msg);
    items[0].rank = 2, items[1].rank = 1;
    cr_assert_eq(db_ranking_submit(db, &in, NULL, &err), 0, "%s", err.msg); /* version 2 */
    RankingItemIn none[2] = {{c1, 0, 0, NULL, 0}, {c2, 0, 0, NULL, 1}};
    in.labeler_id = bob, in.skipped = 1, in.skip_reason = "unclear prompt", in.items = none;
    cr_assert_eq(db_ranking_submit(db, &in, NULL, &err), 0, "%s", err.msg);
    RankingFilter f = db_ranking_filter_default();
    f.all_versions = 1;
    char *out = export_to_string(db, EXPORT_RANKINGS, f);
    int n = 0, current = 0, skipped = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"), n++) {
        cJSON *j = cJSON_Parse(line);
        cr_assert_not_null(j, "%s", line);
        cr_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "note")), "%s", line);
        current += cJSON_IsTrue(cJSON_GetObjectItem(j, "current"));
        if (cJSON_IsTrue(cJSON_GetObjectItem(j, "skipped"))) {
            skipped++;
            cr_assert_str_eq(cJSON_GetObjectItem(j, "skip_reason")->valuestring,
                             "unclear prompt");
        }
        cJSON_Delete(j);
    }
    cr_assert_eq(n, 3);
    cr_assert_eq(current, 2);
    cr_assert_eq(skipped, 1);
    free(out);
    rm_db(db, path);
}
