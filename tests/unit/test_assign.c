/* db/assign and annotator/session: claims under concurrency (two processes,
 * two connections), overlap, expiry, never the same prompt twice, gold mixing,
 * progress, submit contents, review versions; rules and simulated ranking. */
#include <criterion/criterion.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "annotator/autolabel.h"
#include "annotator/rules.h"
#include "annotator/session.h"
#include "db/assign.h"
#include "db/candidates.h"
#include "db/prompts.h"
#include "db/rankings.h"
#include "db/registry.h"
#include "db/scores.h"

static char test_db[64];

/* A project with n_prompts prompts of k candidates each (prompt 1 has only one
 * candidate when one_short, so it is never handed out). */
static Db *make_db(int n_prompts, int k, int one_short) {
    snprintf(test_db, sizeof test_db, "/tmp/rlhf-assign-%d.db", (int)getpid());
    unlink(test_db);
    Db *db;
    Err e = {0};
    cr_assert_eq(db_open(test_db, DB_OPEN_CREATE, &db, &e), 0, "%s", e.msg);
    cr_assert_eq(db_begin(db, &e), 0);
    int64_t mid;
    cr_assert_eq(db_model_ensure_external(db, "m", &mid, &e), 0, "%s", e.msg);
    for (int p = 0; p < n_prompts; p++) {
        char text[64];
        snprintf(text, sizeof text, "Explain topic number %d please.", p);
        PromptIn pin = {text, NULL, NULL, NULL, NULL};
        int64_t pid, cid;
        cr_assert_eq(db_prompt_insert(db, &pin, &pid, NULL, &e), 0);
        for (int c = 0; c < (one_short && p == 0 ? 1 : k); c++) {
            char ans[64];
            snprintf(ans, sizeof ans, "Answer %d about topic number %d.", c, p);
            CandidateIn cin = {pid, mid, ans, -1, NAN, NULL, 0, 0, NULL, 0, 0};
            cr_assert_eq(db_candidate_insert(db, &cin, &cid, NULL, &e), 0);
        }
    }
    cr_assert_eq(db_commit(db, &e), 0);
    return db;
}

static void drop_db(Db *db) {
    db_close(db);
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[80];
        snprintf(p, sizeof p, "%s%s", test_db, suffix[i]);
        unlink(p);
    }
}

static int64_t count(Db *db, const char *sql) {
    (void)db;
    /* a fresh connection sees what every process committed */
    sqlite3 *h;
    cr_assert_eq(sqlite3_open_v2(test_db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

static int64_t labeler(Db *db, const char *name) {
    int64_t id;
    Err e = {0};
    cr_assert_eq(db_labeler_ensure(db, name, 0, NULL, &id, &e), 0, "%s", e.msg);
    return id;
}

/* Submits a trivial complete ranking of the claimed prompt. */
static void finish(LabelSession *s, const LabelItem *it) {
    RankState rs;
    rs_init(&rs, it->n);
    unsigned char lv[RS_MAX_CAND];
    for (int i = 0; i < it->n; i++) lv[i] = (unsigned char)(i + 1);
    rs_set_levels(&rs, lv);
    Err e = {0};
    cr_assert_eq(ls_submit(s, it, &rs.cur, 1000, NULL, &e), 0, "%s", e.msg);
    rs_free(&rs);
}

static AssignOpts opts(int overlap, int lease) {
    AssignOpts o = {.overlap = overlap, .lease_s = lease, .task = ASSIGN_RANK};
    return o;
}

Test(assign, claims_skip_prompts_without_two_candidates_and_never_repeat) {
    Db *db = make_db(3, 2, 1);
    int64_t a = labeler(db, "a");
    AssignOpts o = opts(2, 600);
    Claim c;
    Err e = {0};
    cr_assert_eq(db_assign_claim(db, a, &o, &c, &e), 0, "%s", e.msg);
    cr_assert_eq(c.prompt_id, 2); /* prompt 1 has a single candidate */
    cr_assert_eq(c.resumed, 0);
    /* asking again resumes the same unfinished claim */
    cr_assert_eq(db_assign_claim(db, a, &o, &c, &e), 0);
    cr_assert_eq(c.prompt_id, 2);
    cr_assert_eq(c.resumed, 1);
    LabelSession s;
    cr_assert_eq(ls_open(&s, db, "a", 0, NULL, "test", &o, 0, 1, &e), 0, "%s", e.msg);
    LabelItem it;
    cr_assert_eq(ls_next(&s, &it, &e), 0);
    cr_assert_eq(it.prompt_id, 2);
    finish(&s, &it);
    ls_item_free(&it);
    cr_assert_eq(ls_next(&s, &it, &e), 0);
    cr_assert_eq(it.prompt_id, 3);
    finish(&s, &it);
    ls_item_free(&it);
    cr_assert_eq(ls_next(&s, &it, &e), 0);
    cr_assert_eq(it.prompt_id, 0, "a labeler never gets a prompt twice");
    LabelProgress p;
    cr_assert_eq(ls_progress(&s, &p, &e), 0);
    cr_assert_eq(p.done, 2);
    cr_assert_eq(p.remaining, 0);
    cr_assert_eq(p.today, 2);
    cr_assert_float_eq(p.mean_s, 1.0, 1e-9);
    ls_close(&s);
    o.overlap = 0;
    cr_assert_neq(db_assign_claim(db, a, &o, &c, &e), 0);
    drop_db(db);
}

Test(assign, overlap_and_expiry) {
    Db *db = make_db(1, 3, 0);
    int64_t a = labeler(db, "a"), b = labeler(db, "b"), c3 = labeler(db, "c");
    AssignOpts o = opts(2, 600);
    Claim c;
    Err e = {0};
    db_assign_claim(db, a, &o, &c, &e);
    cr_assert_eq(c.prompt_id, 1);
    db_assign_claim(db, b, &o, &c, &e);
    cr_assert_eq(c.prompt_id, 1); /* overlap 2: a second labeler */
    db_assign_claim(db, c3, &o, &c, &e);
    cr_assert_eq(c.prompt_id, 0); /* full */
    /* b's claim runs out: c may take the slot */
    cr_assert_eq(db_assign_renew(db, b, 1, -10, &e), 0);
    db_assign_claim(db, c3, &o, &c, &e);
    cr_assert_eq(c.prompt_id, 1);
    /* b comes back: its expired claim is gone because the prompt is full */
    db_assign_claim(db, b, &o, &c, &e);
    cr_assert_eq(c.prompt_id, 0);
    cr_assert_eq(count(db, "SELECT count(*) FROM assignments WHERE labeler_id = 2"), 0);
    /* a gives its claim back: the slot is free again */
    cr_assert_eq(db_assign_release(db, a, 1, &e), 0);
    db_assign_claim(db, b, &o, &c, &e);
    cr_assert_eq(c.prompt_id, 1);
    drop_db(db);
}

/* a's claim runs out while it ranks; b takes the prompt and fills it: a's
 * late submit is refused (it would exceed the overlap), a skip still goes */
Test(assign, late_submit_after_others_filled_the_prompt_is_refused) {
    Db *db = make_db(1, 3, 0);
    AssignOpts o = opts(1, 600);
    LabelSession a, b;
    Err e = {0};
    cr_assert_eq(ls_open(&a, db, "a", 0, NULL, "test", &o, 0, 1, &e), 0, "%s", e.msg);
    cr_assert_eq(ls_open(&b, db, "b", 0, NULL, "test", &o, 0, 1, &e), 0, "%s", e.msg);
    LabelItem ia, ib;
    cr_assert_eq(ls_next(&a, &ia, &e), 0, "%s", e.msg);
    cr_assert_eq(ia.prompt_id, 1);
    cr_assert_eq(db_assign_renew(db, a.labeler_id, 1, -10, &e), 0);
    cr_assert_eq(ls_next(&b, &ib, &e), 0, "%s", e.msg);
    cr_assert_eq(ib.prompt_id, 1);
    finish(&b, &ib);
    RankState rs;
    rs_init(&rs, ia.n);
    unsigned char lv[RS_MAX_CAND];
    for (int i = 0; i < ia.n; i++) lv[i] = (unsigned char)(i + 1);
    rs_set_levels(&rs, lv);
    cr_assert_eq(ls_submit(&a, &ia, &rs.cur, 1000, NULL, &e), RLHF_EBUSY);
    cr_assert(strstr(e.msg, "one too many"), "%s", e.msg);
    cr_assert_eq(count(db, "SELECT count(*) FROM rankings WHERE NOT skipped"), 1);
    rs.cur.skipped = 1;
    cr_assert_eq(ls_submit(&a, &ia, &rs.cur, 1000, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(count(db, "SELECT count(*) FROM rankings WHERE NOT skipped"), 1);
    rs_free(&rs);
    ls_item_free(&ia);
    ls_item_free(&ib);
    ls_close(&a);
    ls_close(&b);
    drop_db(db);
}

Test(assign, expired_own_claim_is_resumed_when_room) {
    Db *db = make_db(2, 2, 0);
    int64_t a = labeler(db, "a");
    AssignOpts o = opts(1, -5); /* expired at once */
    Claim c;
    Err e = {0};
    db_assign_claim(db, a, &o, &c, &e);
    cr_assert_eq(c.prompt_id, 1);
    db_assign_claim(db, a, &o, &c, &e);
    cr_assert_eq(c.prompt_id, 1);
    cr_assert(c.resumed);
    drop_db(db);
}

/* The order the children label in (uncertain: by RM child_rm). */
static int child_order;
static int64_t child_rm;

/* Each child opens its own connection and labels until nothing is left. */
static void child_labels(const char *name, int overlap) {
    Db *db;
    Err e = {0};
    if (db_open(test_db, DB_OPEN_EXISTING, &db, &e)) _exit(2);
    LabelSession s;
    AssignOpts o = opts(overlap, 600);
    o.order = child_order, o.rm_id = child_rm, o.seed = 3;
    if (ls_open(&s, db, name, 0, NULL, "test", &o, 0, 1, &e)) _exit(3);
    for (;;) {
        LabelItem it;
        if (ls_next(&s, &it, &e)) _exit(4);
        if (!it.prompt_id) break;
        RankState rs;
        rs_init(&rs, it.n);
        unsigned char lv[RS_MAX_CAND] = {1, 2, 3};
        rs_set_levels(&rs, lv);
        if (ls_submit(&s, &it, &rs.cur, 5, NULL, &e)) _exit(5);
        rs_free(&rs);
        ls_item_free(&it);
    }
    ls_close(&s);
    db_close(db);
    _exit(0);
}

static void run_children(int n, int overlap) {
    static const char *names[] = {"p1", "p2", "p3"};
    pid_t pid[3];
    for (int i = 0; i < n; i++) {
        pid[i] = fork();
        cr_assert(pid[i] >= 0);
        if (pid[i] == 0) child_labels(names[i], overlap);
    }
    for (int i = 0; i < n; i++) {
        int st;
        waitpid(pid[i], &st, 0);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d failed: %d", i, st);
    }
}

/* n labeler processes at once (run_children) on a new project of `prompts`
 * prompts with 3 candidates each. */
static void label_at_once(int prompts, int n, int overlap) {
    db_close(make_db(prompts, 3, 0));
    run_children(n, overlap);
}

Test(assign, two_processes_never_double_assign) {
    label_at_once(40, 2, 1);
    cr_assert_eq(count(NULL, "SELECT count(*) FROM rankings"), 40);
    cr_assert_eq(count(NULL, "SELECT count(*) FROM (SELECT prompt_id FROM rankings GROUP BY prompt_id HAVING count(*) > 1)"), 0);
    cr_assert_eq(count(NULL, "SELECT count(DISTINCT prompt_id) FROM rankings"), 40);
    cr_assert_eq(count(NULL, "SELECT count(*) FROM assignments WHERE status != 'done'"), 0);
    unlink(test_db);
}

Test(assign, three_processes_with_overlap_two) {
    label_at_once(20, 3, 2);
    cr_assert_eq(count(NULL, "SELECT count(*) FROM rankings"), 40);
    cr_assert_eq(count(NULL, "SELECT count(*) FROM (SELECT prompt_id FROM rankings GROUP BY prompt_id HAVING count(*) != 2)"), 0);
    cr_assert_eq(count(NULL, "SELECT count(*) FROM (SELECT 1 FROM rankings GROUP BY prompt_id, labeler_id HAVING count(*) > 1)"), 0);
    unlink(test_db);
}

Test(assign, gold_mixing_and_agreement) {
    Db *db = make_db(4, 3, 0);
    Err e = {0};
    cr_assert_eq(db_gold_set(db, 2, "1>2>3", NULL, &e), 0);
    AssignOpts o = opts(1, 600);
    LabelSession s;
    cr_assert_eq(ls_open(&s, db, "g", 0, NULL, "test", &o, 1.0, 7, &e), 0);
    LabelItem it;
    cr_assert_eq(ls_next(&s, &it, &e), 0);
    cr_assert_eq(it.prompt_id, 2);
    cr_assert(it.is_gold);
    cr_assert_str_eq(it.gold_expr, "1>2>3");
    /* rank in the true order: translate id order to screen positions */
    RankState rs;
    rs_init(&rs, it.n);
    unsigned char lv[RS_MAX_CAND];
    for (int pos = 0; pos < it.n; pos++) lv[pos] = (unsigned char)(it.shown[pos] + 1);
    rs_set_levels(&rs, lv);
    double agree;
    cr_assert_eq(ls_submit(&s, &it, &rs.cur, 10, &agree, &e), 0, "%s", e.msg);
    cr_assert_float_eq(agree, 1.0, 1e-9);
    rs_free(&rs);
    ls_item_free(&it);
    /* no gold left: normal prompts, and gold ones never come as normal work */
    cr_assert_eq(ls_next(&s, &it, &e), 0);
    cr_assert_eq(it.prompt_id, 1);
    cr_assert(!it.is_gold);
    ls_item_free(&it);
    LabelProgress p;
    ls_progress(&s, &p, &e);
    cr_assert_eq(p.gold_n, 1);
    cr_assert_float_eq(p.gold_acc, 1.0, 1e-9);
    cr_assert_eq(p.remaining, 2); /* prompts 3, 4 (1 is claimed, 2 is gold) */
    ls_close(&s);
    cr_assert_eq(count(db, "SELECT gold_agreement FROM rankings WHERE prompt_id = 2"), 1);
    drop_db(db);
}

Test(session, submit_stores_everything_and_review_makes_versions) {
    Db *db = make_db(1, 3, 0);
    Err e = {0};
    cr_assert_eq(db_setting_set(db, "label.flags", "[\"off-topic\", \"rude\"]", &e), 0);
    AssignOpts o = opts(1, 600);
    LabelSession s;
    cr_assert_eq(ls_open(&s, db, "r", 0, NULL, "tui", &o, 0, 1, &e), 0);
    cr_assert_eq(s.n_flags, 2);
    LabelItem it;
    ls_next(&s, &it, &e);
    RankState rs;
    rs_init(&rs, it.n);
    rs_apply_expr(&rs, "2>1=3", NULL, 0);
    rs_focus_set(&rs, 1);
    rs_score(&rs, 6);
    rs_flag_toggle(&rs, 1);
    rs_set_note(&rs, "looks fine");
    LabelItem incomplete = it;
    RankState part;
    rs_init(&part, it.n);
    cr_assert_neq(ls_submit(&s, &incomplete, &part.cur, 1, NULL, &e), 0);
    cr_assert(strstr(e.msg, "rank every candidate"));
    rs_free(&part);
    cr_assert_eq(ls_submit(&s, &it, &rs.cur, 4321, NULL, &e), 0, "%s", e.msg);
    char want[64];
    snprintf(want, sizeof want, "SELECT shown_order = '[%lld,%lld,%lld]' FROM rankings", (long long)it.cand[it.shown[0]].id,
             (long long)it.cand[it.shown[1]].id, (long long)it.cand[it.shown[2]].id);
    cr_assert_eq(count(db, want), 1);
    cr_assert_eq(count(db, "SELECT time_spent_ms FROM rankings"), 4321);
    cr_assert_eq(count(db, "SELECT count(*) FROM ranking_items WHERE flags = '[\"rude\"]' AND likert = 6 AND rank = 1 AND shown_pos = 1"), 1);
    cr_assert_eq(count(db, "SELECT count(*) FROM ranking_items WHERE rank = 2"), 2);
    cr_assert_eq(count(db, "SELECT note = 'looks fine' AND simulated = 0 AND source = 'tui' FROM rankings"), 1);
    rs_free(&rs);
    int64_t *ids;
    int n;
    cr_assert_eq(db_label_reviewable(db, s.labeler_id, &ids, &n, &e), 0);
    cr_assert_eq(n, 1);
    LabelItem rv;
    cr_assert_eq(ls_load_review(&s, ids[0], &rv, &rs, &e), 0, "%s", e.msg);
    for (int i = 0; i < 3; i++) cr_assert_eq(rv.shown[i], it.shown[i], "review shows the stored order");
    char f[32];
    rs_format(&rs.cur, f, sizeof f);
    cr_assert_str_eq(f, "2>1=3");
    cr_assert_eq(rs.cur.score[1], 6);
    cr_assert_eq(rs.cur.flags[1], 2u);
    cr_assert_str_eq(rs.cur.note, "looks fine");
    cr_assert_eq(rs.n_undo, 0);
    rs_apply_expr(&rs, "1>2>3", NULL, 0);
    cr_assert_eq(ls_submit(&s, &rv, &rs.cur, 50, NULL, &e), 0, "%s", e.msg);
    cr_assert_eq(count(db, "SELECT count(*) FROM rankings"), 2);
    cr_assert_eq(count(db, "SELECT version FROM rankings WHERE is_current"), 2);
    cr_assert_eq(count(db, "SELECT supersedes FROM rankings WHERE is_current"), 1);
    rs_free(&rs);
    ls_item_free(&rv);
    ls_item_free(&it);
    free(ids);
    ls_close(&s);
    drop_db(db);
}

Test(session, flag_lists) {
    char *f[LS_MAX_FLAGS];
    int n;
    Err e = {0};
    cr_assert_eq(ls_parse_flags(" a , b c,,d ", f, LS_MAX_FLAGS, &n, &e), 0);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(f[1], "b c");
    for (int i = 0; i < n; i++) free(f[i]);
    cr_assert_neq(ls_parse_flags("[1,2]", f, LS_MAX_FLAGS, &n, &e), 0);
    cr_assert_neq(ls_parse_flags("[\"a\"", f, LS_MAX_FLAGS, &n, &e), 0);
    cr_assert_eq(ls_parse_flags("", f, LS_MAX_FLAGS, &n, &e), 0);
    cr_assert_eq(n, 0);
}

Test(rules, demo_prefers_answers_that_answer) {
    const Rule *r = rule_find("demo");
    cr_assert_not_null(r);
    cr_assert_null(rule_find("nope"));
    const char *p = "What color is the grass in summer?";
    double good = r->score(p, "The grass is green in summer, because of the chlorophyll in its leaves.");
    double off = r->score(p, "I like trains and I like them a lot");
    double rep = r->score(p, "grass grass grass grass grass grass grass grass grass");
    cr_assert_gt(good, off);
    cr_assert_gt(good, rep);
    /* an undertrained model's output: broken bytes, the template leaking, run-on text */
    double clean = r->score("What is the capital of Italy?", "The capital of Italy is Rome.");
    cr_assert_gt(clean, r->score("What is the capital of Italy?", "The capital of Italy is Rome.Human: What"));
    cr_assert_gt(clean, r->score("What is the capital of Italy?", "The capital \xEF\xBF\xBD of Italy is Rome."));
    cr_assert_gt(clean, r->score("What is the capital of Italy?", "The capital of Italy is Rome. Italy is big."));
    int n;
    const Rule *t = rule_table(&n);
    for (int i = 0; i < n; i++) {
        double v = t[i].score(p, "");
        cr_assert(v >= 0 && v <= 1, "%s on empty: %f", t[i].name, v);
        v = t[i].score("", "Some answer.");
        cr_assert(v >= 0 && v <= 1, "%s on empty prompt: %f", t[i].name, v);
    }
}

Test(rules, simulated_ranking_noise_and_seed) {
    const Rule *r = rule_find("longer");
    const char *texts[4] = {"a", "a bit longer", "much much much longer than that", "a bit longer"};
    unsigned char lv[4], lk[4];
    Rng g;
    rng_seed(&g, 1);
    auto_rank_rule(r, NULL, "p", texts, 4, 0, &g, lv, lk);
    cr_assert_eq(lv[2], 1);
    cr_assert_eq(lv[1], 2);
    cr_assert_eq(lv[3], 2); /* equal texts tie without noise */
    cr_assert_eq(lv[0], 3);
    cr_assert(lk[2] >= lk[1] && lk[1] >= lk[0] && lk[0] >= 1 && lk[2] <= 7);
    /* with noise: the same seed repeats, other seeds differ somewhere */
    unsigned char a[4], b[4];
    int differs = 0;
    for (uint64_t seed = 1; seed < 40; seed++) {
        rng_seed(&g, seed);
        auto_rank_rule(r, NULL, "p", texts, 4, 2.0, &g, a, lk);
        rng_seed(&g, seed);
        auto_rank_rule(r, NULL, "p", texts, 4, 2.0, &g, b, lk);
        cr_assert_eq(memcmp(a, b, 4), 0);
        differs |= memcmp(a, lv, 4) != 0;
    }
    cr_assert(differs);
}

/* A labeler who knows the language marks down an invented word: two answers the
 * rule scores alike no longer tie, the Likert score drops, and a right fact
 * garbled elsewhere still beats a clean wrong one. */
Test(rules, known_words_mark_down_invented_words) {
    const Rule *lr = rule_find("longer"), *demo = rule_find("demo");
    WordSet known = {0};
    const char *data = "the capital of france is paris rome a bit longer";
    cr_assert_eq(wordset_add_text(&known, data, strlen(data)), 0);
    const char *texts[3] = {"a bit longer", "a bit lomger", "a bit longer"};
    unsigned char lv[3], lk[3], lk0[3];
    Rng g;
    rng_seed(&g, 1);
    auto_rank_rule(lr, NULL, "p", texts, 3, 0, &g, lv, lk0);
    cr_assert(lv[0] == 1 && lv[1] == 1 && lv[2] == 1, "without known words all tie");
    auto_rank_rule(lr, &known, "p", texts, 3, 0, &g, lv, lk);
    cr_assert(lv[0] == 1 && lv[2] == 1 && lv[1] == 2, "%d %d %d", lv[0], lv[1], lv[2]);
    const char *q = "What is the capital of France?";
    const char *facts[3] = {"The capital of France is Paris plusree.",
                            "The capital of France is Rome.", "The capital of France isrome."};
    auto_rank_rule(demo, NULL, q, facts, 3, 0, &g, lv, lk0);
    auto_rank_rule(demo, &known, q, facts, 3, 0, &g, lv, lk);
    cr_assert(lv[0] == 1 && lv[1] == 2 && lv[2] == 3, "%d %d %d", lv[0], lv[1], lv[2]);
    cr_assert(lk[0] < lk0[0] && lk[1] == lk0[1] && lk[2] <= lk0[2], "Likert %d/%d %d/%d %d/%d",
              lk[0], lk0[0], lk[1], lk0[1], lk[2], lk0[2]);
    /* an empty set knows no language: nothing is marked down */
    WordSet none = {0};
    auto_rank_rule(lr, &none, "p", texts, 3, 0, &g, lv, lk);
    cr_assert(lv[1] == 1);
    wordset_free(&known);
}

/* Registers an RM "rm" and stores its scores of prompt p's candidates
 * (sc[p][c], candidates in id order; NAN: unscored), then its margins. */
static int64_t score_all(Db *db, int n_prompts, int k, double sc[][3]) {
    Err e = {0};
    ModelIn mi = {"rm", "rm", NULL, 0, NULL, NULL, NULL};
    int64_t rm;
    cr_assert_eq(db_model_upsert(db, &mi, &rm, &e), 0, "%s", e.msg);
    for (int p = 0; p < n_prompts; p++)
        for (int c = 0; c < k; c++)
            if (!isnan(sc[p][c]))
                cr_assert_eq(db_score_put(db, (int64_t)(p * k + c + 1), rm, sc[p][c], &e), 0, "%s", e.msg);
    int64_t n;
    cr_assert_eq(db_margins_refresh(db, rm, &n, &e), 0, "%s", e.msg);
    return rm;
}

/* The prompts labeler `name` is handed in order o, each ranked at once. */
static int claim_order(Db *db, const char *name, AssignOpts o, int64_t *out, char why[][96], int max) {
    Err e = {0};
    int64_t who = labeler(db, name);
    int n = 0;
    for (;;) {
        Claim c;
        cr_assert_eq(db_assign_claim(db, who, &o, &c, &e), 0, "%s", e.msg);
        if (!c.prompt_id) break;
        cr_assert(n < max);
        if (why) memcpy(why[n], c.why, sizeof c.why);
        out[n++] = c.prompt_id;
        cr_assert_eq(db_assign_finish(db, who, c.prompt_id, ASSIGN_RANK, 0, &e), 0);
    }
    return n;
}

Test(assign, margins_are_best_minus_second_and_skip_single_scores) {
    Db *db = make_db(4, 3, 0);
    double sc[4][3] = {{0.9, 0.1, 0.5}, {0.2, 0.2, -1}, {0.3, NAN, NAN}, {NAN, NAN, NAN}};
    int64_t rm = score_all(db, 4, 3, sc);
    Err e = {0};
    double m;
    int found;
    cr_assert_eq(db_margin_get(db, 1, rm, &m, &found, &e), 0);
    cr_assert(found && fabs(m - 0.4) < 1e-9, "margin %g", m);
    cr_assert_eq(db_margin_get(db, 2, rm, &m, &found, &e), 0);
    cr_assert(found && fabs(m) < 1e-12, "a tie at the top is margin 0, got %g", m);
    cr_assert_eq(db_margin_get(db, 3, rm, &m, &found, &e), 0);
    cr_assert(!found, "one scored candidate gives no margin");
    int64_t latest;
    cr_assert_eq(db_margins_rm_newest(db, &latest, &e), 0);
    cr_assert_eq(latest, rm);
    drop_db(db);
}

Test(assign, uncertain_order_hands_out_small_margins_first) {
    Db *db = make_db(5, 3, 0);
    /* margins: p1 0.8, p2 0.05, p3 unscored, p4 0.3, p5 0.01 */
    double sc[5][3] = {{1, 0.2, 0}, {0.5, 0.45, 0}, {NAN, NAN, NAN}, {0.3, 0, -1}, {0.11, 0.1, 0}};
    AssignOpts o = opts(1, 600);
    o.order = ORDER_UNCERTAIN;
    Err e = {0};
    Claim c;
    cr_assert_neq(db_assign_claim(db, labeler(db, "x"), &o, &c, &e), 0, "uncertain order without an RM is refused");
    o.rm_id = score_all(db, 5, 3, sc);
    int64_t got[8];
    char why[8][96];
    int n = claim_order(db, "ann", o, got, why, 8);
    int64_t want[5] = {5, 2, 4, 1, 3};
    cr_assert_eq(n, 5);
    for (int i = 0; i < 5; i++) cr_assert_eq(got[i], want[i], "place %d: prompt %lld", i, (long long)got[i]);
    cr_assert(strstr(why[0], "uncertain: RM margin 0.010"), "%s", why[0]);
    cr_assert(strstr(why[4], "not scored"), "%s", why[4]);
    drop_db(db);
}

Test(assign, random_order_is_a_fixed_shuffle_per_seed) {
    int64_t a[32], b[32], q[32];
    for (int run = 0; run < 3; run++) {
        Db *db = make_db(30, 2, 0);
        AssignOpts o = opts(1, 600);
        o.order = ORDER_RANDOM;
        o.seed = run == 2 ? 8 : 7;
        int n = claim_order(db, "ann", o, run == 0 ? a : run == 1 ? b : q, NULL, 32);
        cr_assert_eq(n, 30);
        drop_db(db);
    }
    int same_seed = 1, other_seed = 1, in_queue = 1;
    uint64_t seen = 0;
    for (int i = 0; i < 30; i++) {
        same_seed &= a[i] == b[i], other_seed &= a[i] == q[i], in_queue &= a[i] == i + 1;
        seen |= 1ull << a[i];
    }
    cr_assert(same_seed, "the same seed gives the same order");
    cr_assert(!other_seed, "another seed gives another order");
    cr_assert(!in_queue, "random order is not the queue");
    cr_assert_eq(seen, ((1ull << 31) - 2), "every prompt exactly once");
}

Test(assign, disagreement_order_gives_contradicted_prompts_one_more_labeler) {
    Db *db = make_db(3, 3, 0);
    Err e = {0};
    /* ann and bob rank every prompt; on prompt 2 they contradict each other */
    for (int who = 0; who < 2; who++) {
        LabelSession s;
        AssignOpts o = opts(2, 600);
        cr_assert_eq(ls_open(&s, db, who ? "bob" : "ann", 0, NULL, "test", &o, 0, 1, &e), 0, "%s", e.msg);
        for (;;) {
            LabelItem it;
            cr_assert_eq(ls_next(&s, &it, &e), 0, "%s", e.msg);
            if (!it.prompt_id) break;
            RankState rs;
            rs_init(&rs, it.n);
            unsigned char lv[RS_MAX_CAND];
            /* levels by candidate id, so the screen's shuffle does not matter */
            for (int i = 0; i < it.n; i++) {
                int rank = (int)(it.cand[it.shown[i]].id - (it.prompt_id - 1) * 3); /* 1..3 */
                lv[i] = (unsigned char)(who && it.prompt_id == 2 ? 4 - rank : rank);
            }
            rs_set_levels(&rs, lv);
            cr_assert_eq(ls_submit(&s, &it, &rs.cur, 5, NULL, &e), 0, "%s", e.msg);
            rs_free(&rs);
            ls_item_free(&it);
        }
        ls_close(&s);
    }
    AssignOpts o = opts(2, 600);
    int64_t got[4];
    char why[4][96];
    cr_assert_eq(claim_order(db, "carl", o, got, why, 4), 0, "queue order: every prompt is full");
    o.order = ORDER_DISAGREEMENT;
    int n = claim_order(db, "dan", o, got, why, 4);
    cr_assert_eq(n, 1, "only the contradicted prompt wants one labeler more");
    cr_assert_eq(got[0], 2);
    cr_assert(strstr(why[0], "contradict on 3 pairs"), "%s", why[0]);
    drop_db(db);
}

Test(assign, three_processes_with_overlap_two_in_uncertain_order) {
    Db *db = make_db(20, 3, 0);
    double sc[20][3];
    for (int p = 0; p < 20; p++)
        for (int c = 0; c < 3; c++) sc[p][c] = p < 15 ? (double)((p * 7 + c * 3) % 11) / (c + 1) : NAN;
    child_rm = score_all(db, 20, 3, sc);
    child_order = ORDER_UNCERTAIN;
    db_close(db);
    run_children(3, 2);
    child_order = 0, child_rm = 0;
    cr_assert_eq(count(NULL, "SELECT count(*) FROM rankings"), 40);
    cr_assert_eq(count(NULL, "SELECT count(*) FROM (SELECT prompt_id FROM rankings GROUP BY prompt_id HAVING count(*) != 2)"), 0);
    cr_assert_eq(count(NULL, "SELECT count(*) FROM (SELECT 1 FROM rankings GROUP BY prompt_id, labeler_id HAVING count(*) > 1)"), 0);
    cr_assert_eq(count(NULL, "SELECT count(*) FROM assignments WHERE status = 'claimed'"), 0);
    unlink(test_db);
}

static int count_rows(const RankingRow *r, void *ctx) {
    (void)r;
    ++*(int *)ctx;
    return 0;
}

/* Subsets of the rankings by flag, for an RM per subset (a safety RM on what
 * labelers flagged harmful, a helpfulness RM on the rest). */
Test(assign, rankings_filtered_by_flag) {
    Db *db = make_db(3, 3, 0);
    for (int i = 0; i < 3; i++) {
        LabelSession s;
        AssignOpts o = opts(1, 600);
        Err e = {0};
        cr_assert_eq(ls_open(&s, db, i ? "bob" : "ann", 0, NULL, "test", &o, 0, 1, &e), 0);
        LabelItem it;
        cr_assert_eq(ls_next(&s, &it, &e), 0);
        if (it.prompt_id) finish(&s, &it), ls_item_free(&it);
        if (i == 2) {
            cr_assert_eq(ls_next(&s, &it, &e), 0);
            if (it.prompt_id) finish(&s, &it), ls_item_free(&it);
        }
        ls_close(&s);
    }
    sqlite3 *h;
    cr_assert_eq(sqlite3_open(test_db, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(h,
                              "UPDATE ranking_items SET flags = '[\"harmful\",\"rude\"]' WHERE ranking_id = 1"
                              " AND rank = 1; UPDATE ranking_items SET flags = 'not json' WHERE ranking_id = 2",
                              NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(h));
    sqlite3_close(h);
    RankingFilter f = db_ranking_filter_default();
    Err e = {0};
    int n = 0;
    cr_assert_eq(db_rankings_each(db, &f, count_rows, &n, &e), 0);
    cr_assert_eq(n, 3);
    f.flag = "harmful", n = 0;
    cr_assert_eq(db_rankings_each(db, &f, count_rows, &n, &e), 0, "%s", e.msg);
    cr_assert_eq(n, 1);
    f.flag = "harm", n = 0;
    cr_assert_eq(db_rankings_each(db, &f, count_rows, &n, &e), 0);
    cr_assert_eq(n, 0, "a flag is a whole name");
    f.flag = NULL, f.no_flag = "harmful", n = 0;
    cr_assert_eq(db_rankings_each(db, &f, count_rows, &n, &e), 0);
    cr_assert_eq(n, 2);
    drop_db(db);
}
