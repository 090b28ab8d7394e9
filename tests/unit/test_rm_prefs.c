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

/* The byte tokenizer with pieces "y", "o" and their merge "yo" (259): " yo"
 * encodes as ' ', "yo"; "o" alone is piece 261. */
static Tokenizer *merge_tokenizer(void) {
    const char *pieces[262];
    size_t lens[262];
    float scores[262];
    static char bytes[256][8];
    pieces[0] = "<unk>", pieces[1] = "\n<s>\n", pieces[2] = "\n</s>\n";
    pieces[259] = "yo", pieces[260] = "y", pieces[261] = "o";
    for (int i = 0; i < 256; i++) {
        snprintf(bytes[i], sizeof bytes[i], "<0x%02X>", i);
        pieces[3 + i] = bytes[i];
    }
    for (int i = 0; i < 262; i++) lens[i] = strlen(pieces[i]), scores[i] = i == 259;
    Tokenizer *t = NULL;
    Err err = {0};
    cr_assert_eq(tok_build(262, pieces, lens, scores, &t, &err), 0, "%s", err.msg);
    return t;
}

#define B(c) (3 + (c))

/* What train-rm and DPO train on is what PPO scores: an answer's sampled ids
 * (even a spelling the tokenizer would not choose), </s> only when it was
 * sampled; the text re-encoded when it was cut at a stop string, has no ids,
 * or its ids spell another text. */
Test(rm_prefs, answers_are_encoded_as_sampled) {
    char path[64];
    Db *db = tmp_db(path);
    Err err = {0};
    int64_t pid, lab, mid;
    ModelIn m = {"m", "base", NULL, 0, NULL, NULL, NULL};
    cr_assert_eq(db_model_upsert(db, &m, &mid, &err), 0, "%s", err.msg);
    PromptIn pin = {"hi", NULL, NULL, NULL, NULL};
    cr_assert_eq(db_prompt_insert(db, &pin, &pid, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(db_labeler_ensure(db, "ann", 0, NULL, &lab, &err), 0);
    int yo[] = {B(' '), B('y'), B('o'), TOK_EOS};      /* unmerged spelling, ended at </s> */
    int ok[] = {B(' '), B('o'), B('k')};                /* ran out of tokens */
    int no[] = {B(' '), B('n'), B('o'), B('\n'), B('\n')}; /* cut at the stop "\n\n" */
    int zq[] = {B(' '), B('z'), B('q'), TOK_EOS};      /* spells "zq", stored as "zz" */
    struct {
        const char *text;
        const int *ids;
        int n, finish;
    } a[] = {{"yo", yo, 4, CAND_FINISH_EOS},
             {"ok", ok, 3, CAND_FINISH_LENGTH},
             {"no", no, 5, CAND_FINISH_STOP},
             {"zz", zq, 4, CAND_FINISH_EOS},
             {"ab", NULL, 0, CAND_FINISH_LENGTH}};
    RankingItemIn items[5];
    for (int i = 0; i < 5; i++) {
        CandidateIn c = {pid, mid, a[i].text, -1, NAN, NULL, 0, 0, a[i].ids, a[i].n, a[i].finish};
        cr_assert_eq(db_candidate_insert(db, &c, &items[i].candidate_id, NULL, &err), 0, "%s", err.msg);
        items[i] = (RankingItemIn){items[i].candidate_id, i + 1, 0, NULL, -1};
    }
    RankingIn in = {0};
    in.prompt_id = pid, in.labeler_id = lab, in.time_spent_ms = -1, in.gold_agreement = NAN;
    in.items = items, in.n_items = 5;
    cr_assert_eq(db_ranking_submit(db, &in, NULL, &err), 0, "%s", err.msg);

    PrefLoadOptions o = {db_ranking_filter_default(), -1, 0};
    PrefSet s;
    cr_assert_eq(prefs_load_store(db, &o, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.n, 1);
    const PrefGroup *g = &s.g[0];
    cr_assert_eq(g->n, 5);
    Tokenizer *t = merge_tokenizer();
    int prompt[16], np;
    cr_assert_eq(tok_encode(t, "<hi>", 4, 1, 0, prompt, 16, &np, &err), 0);
    int want_ok_text[] = {B(' '), B('o'), B('k')}; /* no </s>: cut at max tokens */
    int want_no[] = {B(' '), B('n'), 261, TOK_EOS};
    int want_zz[] = {B(' '), B('z'), B('z'), TOK_EOS};
    int want_ab[] = {B(' '), B('a'), B('b')};
    struct {
        const int *want;
        int n, ids;
    } w[] = {{yo, 4, 1}, {want_ok_text, 3, 1}, {want_no, 4, 0}, {want_zz, 4, 0}, {want_ab, 3, 0}};
    for (int k = 0; k < 5; k++) {
        cr_assert_str_eq(g->answers[k], a[k].text);
        SeqExample e;
        int used = -1;
        cr_assert_eq(prefs_encode_answer(g, k, t, "<{prompt}>", 64, &e, &used, &err), 0, "%s",
                     err.msg);
        cr_assert_eq(used, w[k].ids, "answer %d: ids used %d", k, used);
        cr_assert_eq(e.n_prompt, np, "answer %d", k);
        cr_assert_eq(memcmp(e.tokens, prompt, sizeof(int) * (size_t)np), 0, "answer %d", k);
        cr_assert_eq(e.n - e.n_prompt, w[k].n, "answer %d: %d tokens", k, e.n - e.n_prompt);
        cr_assert_eq(memcmp(e.tokens + np, w[k].want, sizeof(int) * (size_t)w[k].n), 0, "answer %d", k);
        seq_example_free(&e);
    }
    /* the text re-encoded is the canonical spelling: the merge */
    SeqExample e;
    cr_assert_eq(seq_encode(t, "<{prompt}>", "hi", "yo", 1, 64, &e, &err), 0);
    cr_assert_eq(e.n - e.n_prompt, 3, "' ', \"yo\", </s>");
    cr_assert_eq(e.tokens[e.n_prompt + 1], 259);
    seq_example_free(&e);
    tok_free(t);
    prefs_free(&s);
    rm_db(db, path);
}
