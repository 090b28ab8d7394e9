/* annotator/rank_state: the ranking state machine, expressions, agreement,
 * the idle-aware clock; annotator/textview: widths, wrapping, word diff. */
#include <criterion/criterion.h>
#include <locale.h>
#include <math.h>
#include <string.h>

#include "annotator/rank_state.h"
#include "annotator/textview.h"
#include "annotator/tui_internal.h"

static char fmt_buf[256];
static const char *fmt(const RankState *s) {
    rs_format(&s->cur, fmt_buf, sizeof fmt_buf);
    return fmt_buf;
}

Test(rank_expr, parse_valid_and_partial) {
    unsigned char lv[RS_MAX_CAND];
    char msg[128];
    cr_assert_eq(rs_expr_parse("3>1=4>2", 4, lv, msg, sizeof msg), RS_EXPR_ALL);
    cr_assert_eq(lv[2], 1);
    cr_assert_eq(lv[0], 2);
    cr_assert_eq(lv[3], 2);
    cr_assert_eq(lv[1], 3);
    cr_assert_eq(rs_expr_parse(" 3 > 1 ", 4, lv, msg, sizeof msg), RS_EXPR_SOME);
    cr_assert_str_eq(msg, "2 of 4 ranked");
    cr_assert_eq(rs_expr_parse("3>", 4, NULL, msg, sizeof msg), RS_EXPR_OPEN);
    cr_assert_eq(rs_expr_parse("3=", 4, NULL, msg, sizeof msg), RS_EXPR_OPEN);
    cr_assert_eq(rs_expr_parse("", 4, NULL, msg, sizeof msg), RS_EXPR_EMPTY);
    cr_assert_eq(rs_expr_parse("   ", 4, NULL, msg, sizeof msg), RS_EXPR_EMPTY);
}

Test(rank_expr, parse_errors_say_why) {
    char msg[128];
    cr_assert_eq(rs_expr_parse("5>1", 4, NULL, msg, sizeof msg), RS_EXPR_BAD);
    cr_assert_str_eq(msg, "no candidate 5 (there are 1-4)");
    cr_assert_eq(rs_expr_parse("1>1", 4, NULL, msg, sizeof msg), RS_EXPR_BAD);
    cr_assert_str_eq(msg, "candidate 1 appears twice");
    cr_assert_eq(rs_expr_parse(">1", 4, NULL, msg, sizeof msg), RS_EXPR_BAD);
    cr_assert_eq(rs_expr_parse("1>>2", 4, NULL, msg, sizeof msg), RS_EXPR_BAD);
    cr_assert_eq(rs_expr_parse("1 2", 4, NULL, msg, sizeof msg), RS_EXPR_BAD);
    cr_assert_str_eq(msg, "put > or = between two numbers");
    cr_assert_eq(rs_expr_parse("1<2", 4, NULL, msg, sizeof msg), RS_EXPR_BAD);
    cr_assert(strstr(msg, "unexpected '<'"));
    cr_assert_eq(rs_expr_parse("0", 4, NULL, msg, sizeof msg), RS_EXPR_BAD);
    cr_assert_eq(rs_expr_parse("1>2>3>4>", 4, NULL, msg, sizeof msg), RS_EXPR_BAD);
    cr_assert_eq(rs_expr_parse("99999999999999", 4, NULL, msg, sizeof msg), RS_EXPR_BAD);
}

Test(rank_expr, multi_digit_numbers_while_typing) {
    unsigned char lv[RS_MAX_CAND];
    /* with 12 candidates "1" is complete but also the start of 10, 11, 12 */
    cr_assert_eq(rs_expr_parse("12>1", 12, lv, NULL, 0), RS_EXPR_SOME);
    cr_assert_eq(lv[11], 1);
    cr_assert_eq(rs_expr_parse("1>1", 12, NULL, NULL, 0), RS_EXPR_OPEN); /* may become 1>10 */
    cr_assert_eq(rs_expr_parse("1>10", 12, NULL, NULL, 0), RS_EXPR_SOME);
    cr_assert_eq(rs_expr_parse("13", 12, NULL, NULL, 0), RS_EXPR_BAD);
}

Test(rank_state, format_roundtrip_and_apply) {
    RankState s;
    cr_assert_eq(rs_init(&s, 4), 0);
    char msg[128];
    cr_assert_eq(rs_apply_expr(&s, "3>4=1>2", msg, sizeof msg), 1);
    cr_assert_str_eq(fmt(&s), "3>1=4>2"); /* tied ones in screen order */
    int rank[4];
    rs_ranks(&s.cur, rank);
    cr_assert_eq(rank[2], 1);
    cr_assert_eq(rank[0], 2);
    cr_assert_eq(rank[3], 2);
    cr_assert_eq(rank[1], 4); /* competition ranking */
    cr_assert(rs_complete(&s.cur));
    cr_assert_eq(rs_apply_expr(&s, "3>", msg, sizeof msg), -1);
    cr_assert_str_eq(fmt(&s), "3>1=4>2");
    cr_assert_eq(rs_apply_expr(&s, "3>9", msg, sizeof msg), -1);
    cr_assert_eq(rs_apply_expr(&s, "3>1=4>2", msg, sizeof msg), 0); /* no change */
    rs_free(&s);
    /* no candidates: a prompt to write an answer to (the write task) */
    cr_assert_eq(rs_init(&s, 0), 0);
    cr_assert_eq(s.cur.n, 0);
    rs_free(&s);
    cr_assert_eq(rs_init(&s, -1), -1);
    cr_assert_eq(rs_init(&s, RS_MAX_CAND + 1), -1);
}

Test(rank_state, step_by_step_moves) {
    RankState s;
    rs_init(&s, 4);
    rs_focus_set(&s, 1);
    cr_assert_eq(rs_move(&s, -1), 1); /* unranked: appended */
    cr_assert_str_eq(fmt(&s), "2");
    rs_focus_set(&s, 3);
    rs_move(&s, 1);
    cr_assert_str_eq(fmt(&s), "2>4");
    cr_assert_eq(rs_move(&s, 1), 0); /* already last */
    cr_assert_eq(rs_move(&s, -1), 1);
    cr_assert_str_eq(fmt(&s), "4>2");
    cr_assert_eq(rs_move(&s, -1), 0); /* already first */
    rs_focus_set(&s, 0);
    cr_assert_eq(rs_place(&s, 1), 1);
    cr_assert_str_eq(fmt(&s), "1>4>2");
    rs_focus_set(&s, 2);
    cr_assert_eq(rs_place(&s, 9), -1); /* no 9th place among 4 */
    cr_assert_str_eq(fmt(&s), "1>4>2");
    cr_assert_eq(rs_place(&s, 4), 1); /* past the ranked ones: last */
    cr_assert_str_eq(fmt(&s), "1>4>2>3");
    cr_assert_eq(rs_place(&s, 2), 1);
    cr_assert_str_eq(fmt(&s), "1>3>4>2");
    cr_assert_eq(rs_place(&s, 0), -1);
    rs_focus_move(&s, 10);
    cr_assert_eq(s.focus, 3);
    rs_focus_move(&s, -10);
    cr_assert_eq(s.focus, 0);
    rs_free(&s);
}

Test(rank_state, ties) {
    RankState s;
    rs_init(&s, 4);
    rs_apply_expr(&s, "1>2>3>4", NULL, 0);
    rs_focus_set(&s, 0);
    cr_assert_eq(rs_tie_toggle(&s), -1); /* best and alone: nothing above */
    rs_focus_set(&s, 2);
    cr_assert_eq(rs_tie_toggle(&s), 1);
    cr_assert_str_eq(fmt(&s), "1>2=3>4");
    cr_assert_eq(rs_groups(&s.cur), 3);
    /* a tied candidate moving down leaves its group first */
    cr_assert_eq(rs_move(&s, 1), 1);
    cr_assert_str_eq(fmt(&s), "1>2>3>4");
    rs_tie_toggle(&s);
    cr_assert_eq(rs_tie_toggle(&s), 1); /* untie: own group just below */
    cr_assert_str_eq(fmt(&s), "1>2>3>4");
    rs_tie_toggle(&s);
    rs_focus_set(&s, 1);
    cr_assert_eq(rs_move(&s, -1), 1); /* tied, moving up: own group above */
    cr_assert_str_eq(fmt(&s), "1>2>3>4");
    rs_focus_set(&s, 3);
    rs_tie_toggle(&s);
    rs_focus_set(&s, 0);
    cr_assert_eq(rs_move(&s, 1), 1); /* untied: swaps with the next group */
    cr_assert_str_eq(fmt(&s), "2>1>3=4");
    /* an unranked candidate ties with the last group */
    rs_clear_order(&s);
    rs_apply_expr(&s, "2>1", NULL, 0);
    rs_focus_set(&s, 3);
    cr_assert_eq(rs_tie_toggle(&s), 1);
    cr_assert_str_eq(fmt(&s), "2>1=4");
    rs_clear_order(&s);
    cr_assert_eq(rs_tie_toggle(&s), -1); /* nothing ranked */
    rs_free(&s);
}

Test(rank_state, unrank_closes_gaps) {
    RankState s;
    rs_init(&s, 4);
    rs_apply_expr(&s, "4>1>2=3", NULL, 0);
    rs_focus_set(&s, 0);
    cr_assert_eq(rs_unrank(&s), 1);
    cr_assert_str_eq(fmt(&s), "4>2=3");
    cr_assert_eq(rs_groups(&s.cur), 2);
    cr_assert_eq(rs_unrank(&s), 0);
    cr_assert(!rs_complete(&s.cur));
    cr_assert_eq(rs_n_ranked(&s.cur), 3);
    unsigned char gaps[4] = {7, 0, 3, 3};
    rs_set_levels(&s, gaps);
    cr_assert_str_eq(fmt(&s), "3=4>1");
    rs_free(&s);
}

Test(rank_state, scores_flags_note_none_skip) {
    RankState s;
    rs_init(&s, 3);
    rs_focus_set(&s, 1);
    cr_assert_eq(rs_score(&s, 5), 1);
    cr_assert_eq(rs_score(&s, 8), -1);
    cr_assert_eq(rs_score(&s, -1), -1);
    cr_assert_eq(s.cur.score[1], 5);
    cr_assert_eq(rs_flag_toggle(&s, 2), 1);
    cr_assert_eq(s.cur.flags[1], 4u);
    cr_assert_eq(rs_flag_toggle(&s, 32), -1);
    cr_assert_eq(rs_set_note(&s, "too long 很长"), 1);
    cr_assert_str_eq(s.cur.note, "too long 很长");
    cr_assert_eq(rs_set_note(&s, "too long 很长"), 0);
    cr_assert(!rs_complete(&s.cur));
    cr_assert_eq(rs_none_toggle(&s), 1);
    cr_assert(rs_complete(&s.cur));
    rs_none_toggle(&s);
    cr_assert_eq(rs_skip(&s, ""), -1);
    cr_assert_eq(rs_skip(&s, NULL), -1);
    cr_assert_eq(rs_skip(&s, "off topic"), 1);
    cr_assert(rs_complete(&s.cur));
    cr_assert_str_eq(s.cur.skip_reason, "off topic");
    char big[RS_NOTE_MAX * 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    rs_set_note(&s, big); /* truncated, not overflowed */
    cr_assert_eq(strlen(s.cur.note), RS_NOTE_MAX - 1);
    rs_free(&s);
}

Test(rank_state, undo_redo) {
    RankState s;
    rs_init(&s, 3);
    cr_assert_eq(rs_undo(&s), 0);
    rs_apply_expr(&s, "1>2>3", NULL, 0);
    rs_focus_set(&s, 0);
    rs_score(&s, 7);
    rs_set_note(&s, "n");
    cr_assert_eq(rs_undo(&s), 1);
    cr_assert_str_eq(s.cur.note, "");
    cr_assert_eq(rs_undo(&s), 1);
    cr_assert_eq(s.cur.score[0], 0);
    cr_assert_eq(rs_redo(&s), 1);
    cr_assert_eq(s.cur.score[0], 7);
    cr_assert_eq(rs_undo(&s), 1);
    cr_assert_eq(rs_undo(&s), 1);
    cr_assert_str_eq(fmt(&s), "");
    cr_assert_eq(rs_undo(&s), 0);
    cr_assert_eq(rs_redo(&s), 1);
    cr_assert_str_eq(fmt(&s), "1>2>3");
    rs_focus_set(&s, 2);
    rs_score(&s, 1); /* a new edit forgets the redo steps */
    cr_assert_eq(rs_redo(&s), 0);
    /* no-op edits do not fill the undo stack */
    int before = s.n_undo;
    rs_score(&s, 1);
    rs_move(&s, 1);
    cr_assert_eq(s.n_undo, before);
    /* the stack is bounded: the oldest steps are forgotten */
    for (int i = 0; i < RS_UNDO_MAX + 50; i++) rs_score(&s, 2 - i % 2);
    cr_assert_eq(s.n_undo, RS_UNDO_MAX);
    rs_free(&s);
}

Test(rank_state, agreement_with_gold) {
    int gold[4] = {1, 2, 3, 4};
    int same[4] = {1, 2, 3, 4}, rev[4] = {4, 3, 2, 1}, tied[4] = {1, 1, 3, 4}, part[4] = {1, 2, 0, 0};
    cr_assert_float_eq(rs_agreement(same, gold, 4), 1.0, 1e-9);
    cr_assert_float_eq(rs_agreement(rev, gold, 4), 0.0, 1e-9);
    cr_assert_float_eq(rs_agreement(tied, gold, 4), 5.0 / 6, 1e-9);
    cr_assert_float_eq(rs_agreement(part, gold, 4), 1.0 / 6, 1e-9);
    int gtie[2] = {1, 1}, any[2] = {1, 2};
    cr_assert(isnan(rs_agreement(any, gtie, 2)));
}

Test(rank_state, clock_excludes_idle) {
    RankClock k;
    rs_clock_start(&k, 1000, 60000);
    rs_clock_key(&k, 3000);   /* 2 s */
    rs_clock_key(&k, 100000); /* 97 s idle: not counted */
    rs_clock_key(&k, 105000); /* 5 s */
    cr_assert_eq(k.spent_ms, 7000);
    cr_assert_eq(rs_clock_spent(&k, 106000), 8000);
    cr_assert_eq(rs_clock_spent(&k, 500000), 7000); /* idle now */
    rs_clock_key(&k, 104000);                        /* clock going backwards counts nothing */
    cr_assert_eq(k.spent_ms, 7000);
}

static void utf8_locale(void) {
    cr_assert(setlocale(LC_CTYPE, "C.UTF-8") || setlocale(LC_CTYPE, "en_US.UTF-8"));
}

Test(textview, widen_and_widths, .init = utf8_locale) {
    int n;
    wchar_t *w = tv_widen("a\t春🌸\x01\xff", &n);
    cr_assert_eq(n, 12); /* the tab runs to the tab stop at column 8 */
    cr_assert_eq(w[1], L' ');
    cr_assert_eq(w[7], L' ');
    cr_assert_eq(w[10], L'?');
    cr_assert_eq(w[11], 0xFFFD);
    cr_assert_eq(tv_width(w, 10), 8 + 2 + 2);
    free(w);
    w = tv_widen("\tif (x)\n\t\treturn;\n春\tz", &n); /* code indentation keeps its stops */
    cr_assert(wcsncmp(w, L"        if (x)\n                return;\n春      z", (size_t)n) == 0);
    free(w);
    w = tv_widen("\xe6\x98", &n); /* cut sequence */
    cr_assert_eq(n, 2);
    cr_assert_eq(w[0], 0xFFFD);
    free(w);
    w = tv_widen("\xc0\xaf", &n); /* overlong */
    cr_assert_eq(w[0], 0xFFFD);
    free(w);
}

Test(textview, wrap_by_columns, .init = utf8_locale) {
    int n;
    TvLine l[16];
    wchar_t *w = tv_widen("the quick brown fox", &n);
    int k = tv_wrap(w, n, 10, l, 16);
    cr_assert_eq(k, 2);
    cr_assert_eq(l[0].end - l[0].start, 9); /* "the quick" */
    cr_assert_eq(l[1].start, 10);
    free(w);
    w = tv_widen("春眠不觉晓处处闻啼鸟", &n); /* 10 wide characters, 20 columns */
    k = tv_wrap(w, n, 7, l, 16);
    cr_assert_eq(k, 4); /* 3 + 3 + 3 + 1: a wide character never straddles the edge */
    for (int i = 0; i < k; i++) cr_assert_leq(tv_width(w + l[i].start, l[i].end - l[i].start), 7);
    free(w);
    w = tv_widen("a\n\nb\n", &n);
    k = tv_wrap(w, n, 10, l, 16);
    cr_assert_eq(k, 4);
    cr_assert_eq(l[1].end - l[1].start, 0);
    free(w);
    w = tv_widen("", &n);
    cr_assert_eq(tv_wrap(w, n, 10, l, 16), 1);
    free(w);
    w = tv_widen("abcdefghijklmnop", &n); /* one long word is cut */
    cr_assert_eq(tv_wrap(w, n, 5, l, 2), 4); /* counts beyond max */
    free(w);
}

Test(textview, word_diff_marks_changed_words, .init = utf8_locale) {
    int na, nb;
    wchar_t *a = tv_widen("Paris is the capital of France.", &na);
    wchar_t *b = tv_widen("Lyon is the capital of France.", &nb);
    unsigned char ma[64], mb[64];
    double sim = tv_word_diff(a, na, b, nb, ma, mb);
    cr_assert_float_eq(sim, 10.0 / 12, 1e-9);
    for (int i = 0; i < na; i++) cr_assert_eq(ma[i], i < 5, "char %d", i);
    for (int i = 0; i < nb; i++) cr_assert_eq(mb[i], i < 4, "char %d", i);
    cr_assert_float_eq(tv_word_diff(a, na, a, na, ma, NULL), 1.0, 1e-9);
    for (int i = 0; i < na; i++) cr_assert_eq(ma[i], 0);
    wchar_t *c = tv_widen("something else entirely", &nb);
    cr_assert_lt(tv_word_diff(a, na, c, nb, NULL, NULL), TV_NEAR_IDENTICAL);
    free(a);
    free(b);
    free(c);
}

Test(tui_keys, help_lists_every_key_and_no_key_is_bound_twice) {
    cr_assert_eq(tui_keymap_check(), 0);
    int n;
    const TuiKeyHelp *h = tui_key_help(&n);
    cr_assert_gt(n, 10);
    for (int i = 0; i < n; i++) cr_assert(h[i].keys[0] && h[i].what[0]);
}

Test(rank_state, ranking_a_skipped_state_replaces_the_skip) {
    RankState s;
    rs_init(&s, 3);
    cr_assert_eq(rs_skip(&s, "unclear"), 1);
    cr_assert_eq(rs_skip(&s, "unclear"), 0); /* the same skip again is no change */
    rs_focus_set(&s, 1);
    cr_assert_eq(rs_place(&s, 1), 1);
    cr_assert_eq(s.cur.skipped, 0);
    cr_assert_str_eq(s.cur.skip_reason, "");
    cr_assert_eq(rs_undo(&s), 1);
    cr_assert_eq(s.cur.skipped, 1);
    rs_free(&s);
}

/* Digits are final places: pressing 3, 2, 1, 4 going down the list gives
 * 3>2>1>4 read as places, i.e. the order [3]>[2]>[1]>[4]. */
Test(rank_place, digits_are_final_places) {
    RankState s;
    cr_assert_eq(rs_init(&s, 4), 0);
    int keys[] = {3, 2, 1, 4};
    for (int i = 0; i < 4; i++) {
        rs_focus_set(&s, i);
        cr_assert_eq(rs_place_final(&s, keys[i]), 1);
        cr_assert_eq(rs_shown_place(&s.cur, i), keys[i]);
    }
    cr_assert_str_eq(fmt(&s), "3>2>1>4");
    rs_free(&s);
    cr_assert_eq(rs_init(&s, 4), 0);
    int rev[] = {4, 3, 2, 1};
    for (int i = 0; i < 4; i++) rs_focus_set(&s, i), rs_place_final(&s, rev[i]);
    cr_assert_str_eq(fmt(&s), "4>3>2>1");
    rs_free(&s);
}

Test(rank_place, partial_places_and_a_clash) {
    RankState s;
    rs_init(&s, 4);
    rs_focus_set(&s, 0);
    rs_place_final(&s, 3); /* alone: ranked, shown at place 3 */
    cr_assert_eq(rs_shown_place(&s.cur, 0), 3);
    rs_focus_set(&s, 1);
    rs_place_final(&s, 1);
    cr_assert_str_eq(fmt(&s), "2>1");
    rs_focus_set(&s, 2);
    rs_place_final(&s, 3); /* clashes with [1] */
    cr_assert_eq(rs_place_clash(&s.cur, 2), 0);
    cr_assert_eq(rs_place_clash(&s.cur, 0), 2);
    cr_assert_str_eq(fmt(&s), "2>1=3");
    rs_place_final(&s, 2); /* resolved */
    cr_assert_eq(rs_place_clash(&s.cur, 2), -1);
    cr_assert_str_eq(fmt(&s), "2>3>1");
    cr_assert_eq(rs_place_final(&s, 5), -1);
    cr_assert_eq(rs_place_final(&s, 0), -1);
    /* another edit: places follow the order's ranks from then on */
    rs_apply_expr(&s, "4>1>2>3", NULL, 0);
    cr_assert_eq(rs_shown_place(&s.cur, 3), 1);
    rs_focus_set(&s, 3);
    rs_place_final(&s, 4); /* [3] holds place 4 already */
    cr_assert_str_eq(fmt(&s), "1>2>3=4");
    cr_assert_eq(rs_place_clash(&s.cur, 3), 2);
    rs_undo(&s);
    cr_assert_str_eq(fmt(&s), "4>1>2>3");
    rs_free(&s);
}

Test(rank_place, tie_with_copies_and_contradicting_scores) {
    RankState s;
    rs_init(&s, 4);
    rs_apply_expr(&s, "1>2>3", NULL, 0);
    rs_focus_set(&s, 1);
    cr_assert_eq(rs_tie_with(&s, 1u << 3), 1);
    cr_assert_str_eq(fmt(&s), "1>2=4>3");
    int a, b;
    cr_assert_eq(rs_scores_contradict(&s.cur, &a, &b), 0);
    rs_focus_set(&s, 1), rs_score(&s, 3);
    rs_focus_set(&s, 3), rs_score(&s, 7);
    cr_assert_eq(rs_scores_contradict(&s.cur, &a, &b), 1);
    cr_assert(a == 2 && b == 4);
    rs_score(&s, 4);
    cr_assert_eq(rs_scores_contradict(&s.cur, &a, &b), 0);
    rs_focus_set(&s, 0), rs_score(&s, 2); /* best, scored below [2] */
    cr_assert_eq(rs_scores_contradict(&s.cur, &a, &b), 1);
    cr_assert(a == 1 && b == 2);
    rs_free(&s);
}

Test(rank_place, scores_checked_as_typed) {
    unsigned char sc[RS_MAX_CAND];
    char msg[128];
    cr_assert_eq(rs_scores_parse("", 4, sc, msg, sizeof msg), RS_EXPR_EMPTY);
    cr_assert_eq(rs_scores_parse("75", 4, sc, msg, sizeof msg), RS_EXPR_SOME);
    cr_assert_str_eq(msg, "2 of 4: [3] next");
    cr_assert_eq(rs_scores_parse("758", 4, sc, msg, sizeof msg), RS_EXPR_BAD);
    cr_assert(strstr(msg, "'8' is not a score"));
    cr_assert_eq(rs_scores_parse("7-24", 4, sc, msg, sizeof msg), RS_EXPR_ALL);
    cr_assert(sc[0] == 7 && sc[1] == 0 && sc[3] == 4);
    cr_assert_eq(rs_scores_parse("75241", 4, sc, msg, sizeof msg), RS_EXPR_BAD);
}
