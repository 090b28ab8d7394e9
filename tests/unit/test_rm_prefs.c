/* rm/prefs: rankings from the store become groups (ties counted, all-tie
 * rankings skipped, the held-out split by prompt text), and pairs / HH files
 * read without importing, with errors that name the line. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/candidates.h"
#include "db/prompts.h"
#include "db/rankings.h"
#include "db/registry.h"
#include "rm/export.h"
#include "rm/prefs.h"
#include "tests/unit/files.h"
#include "tests/unit/fixtures.h"

static void ranked(Db *db, const char *prompt, const char *labeler, const int *rank, int n) {
    fixture_ranked(db, prompt, labeler, rank, n, 0, 1);
}

Test(rm_prefs, store_groups_ties_and_split) {
    char path[64];
    Db *db = tmp_db(path);
    int r4[4] = {2, 1, 2, 3}, tie[2] = {1, 1}, r3[3] = {1, 2, 0};
    ranked(db, "p1", "ann", r4, 4);
    ranked(db, "p2", "bob", tie, 2);
    ranked(db, "p3", "ann", r3, 3);
    char prompt[32];
    for (int i = 0; i < 40; i++) {
        snprintf(prompt, sizeof prompt, "extra %d", i);
        int r2[2] = {1, 2};
        ranked(db, prompt, "cy", r2, 2);
    }
    PrefLoadOptions o = {db_ranking_filter_default(), -1, 0.3};
    PrefSet s;
    Err err = {0};
    cr_assert_eq(prefs_load_store(db, &o, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.n, 42, "the all-tie ranking is skipped");
    cr_assert_eq(s.skipped, 1);
    cr_assert_eq(s.ties_dropped, 2, "one tie in p1, one in p2");
    cr_assert_eq(s.n_labelers, 2);
    const PrefGroup *g = &s.g[0];
    cr_assert_str_eq(g->prompt, "p1");
    cr_assert_eq(g->n, 4);
    cr_assert_str_eq(g->answers[0], "p1 answer 1", "sorted by rank");
    cr_assert_eq(g->rank[0], 1);
    cr_assert_eq(g->rank[3], 3);
    cr_assert_eq(g->likert[0], 7);
    cr_assert(g->cand_id[0] > 0 && g->ranking_id > 0 && g->prompt_id > 0);
    cr_assert_str_eq(s.labelers[g->labeler], "ann");
    cr_assert_eq(s.g[1].n, 2, "the unranked candidate is left out");
    int nval = 0;
    for (int i = 0; i < s.n; i++) {
        cr_assert_eq(s.g[i].val, rm_prompt_in_val(s.g[i].prompt, 0.3));
        nval += s.g[i].val;
    }
    cr_assert(nval > 0 && nval < s.n);
    prefs_free(&s);

    o.filter.labeler = "ann";
    cr_assert_eq(prefs_load_store(db, &o, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.n, 2);
    prefs_free(&s);
    rm_db(db, path);
}

Test(rm_prefs, file_pairs_and_hh) {
    char path[] = "/tmp/rlhf-unit-prefs-file-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    write_file(path, "{\"prompt\":\"hi\",\"chosen\":\"good\",\"rejected\":\"bad\",\"labeler\":\"x\"}\n"
                     "{\"chosen\":\"\\n\\nHuman: a\\n\\nAssistant: b\\n\\nHuman: c\\n\\nAssistant: "
                     "yes\",\"rejected\":\"\\n\\nHuman: a\\n\\nAssistant: b\\n\\nHuman: "
                     "c\\n\\nAssistant: no\"}\n"
                     "{\"prompt\":\"same\",\"chosen\":\"s\",\"rejected\":\"s\"}\n");
    PrefSet s;
    Err err = {0};
    cr_assert_eq(prefs_load_file(path, 0, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.n, 2);
    cr_assert_eq(s.skipped, 1, "chosen == rejected holds nothing to learn");
    cr_assert_str_eq(s.g[0].prompt, "hi");
    cr_assert_str_eq(s.g[0].answers[0], "good");
    cr_assert_str_eq(s.labelers[s.g[0].labeler], "x");
    cr_assert_str_eq(s.g[1].prompt, "a\n\nAssistant: b\n\nHuman: c", "a multi-turn HH prompt");
    cr_assert_str_eq(s.g[1].answers[0], "yes");
    cr_assert_str_eq(s.g[1].answers[1], "no");
    cr_assert_eq(s.g[1].labeler, -1);
    cr_assert_eq(s.g[1].rank[0], 1);
    cr_assert_eq(s.g[1].rank[1], 2);
    prefs_free(&s);

    write_file(path, "{\"prompt\":\"hi\",\"chosen\":\"good\",\"rejected\":\"bad\"}\n"
                     "{\"prompt\":\"hi\",\"chosen\":\"good\"}\n");
    cr_assert_neq(prefs_load_file(path, 0, &s, &err), 0);
    cr_assert(strstr(err.msg, ":2:") && strstr(err.msg, "rejected"), "%s", err.msg);
    cr_assert_eq(s.n, 0);
    unlink(path);
}
