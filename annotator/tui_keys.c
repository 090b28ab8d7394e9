/* The keymap of the labeling screen's normal mode: one table maps keys to
 * actions and gives the help overlay its rows. Actions call the state machine
 * and set the message line; nothing here draws. */
#include "annotator/tui_internal.h"

#include <curses.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

typedef void (*KeyFn)(Tui *t, int arg);

typedef struct KeyBind {
    int is_fn;   /* ch is a KEY_* code */
    wint_t ch;
    KeyFn fn;
    int arg;
    int help_row; /* its row in help_rows (-1: not listed), kept next to the binding */
} KeyBind;

/* -1 invalid, 0 nothing changed, 1 done: a message for the first two */
static void report(Tui *t, int r, const char *what) {
    if (r < 0) tui_message(t, 1, "%s", what);
    else if (r == 0) tui_message(t, 0, "nothing to change");
    else t->msg[0] = 0;
}

static void k_focus(Tui *t, int d) {
    rs_focus_move(&t->rs, d);
    t->follow = 1;
}
static void k_move(Tui *t, int d) {
    report(t, rs_move(&t->rs, d), "cannot move");
}
/* A digit is the focused candidate's final place; the places fill as they
 * are pressed, a clash is named at once. */
static void k_place(Tui *t, int pos) {
    if (t->n_digits < (int)sizeof t->digits - 1) t->digits[t->n_digits++] = (char)('0' + pos);
    if (pos > t->it.n) {
        tui_message(t, 1, "no place %d: there are %d candidates", pos, t->it.n);
        return;
    }
    int f = t->rs.focus, r = rs_place_final(&t->rs, pos);
    t->digit_edits += r > 0;
    int clash = rs_place_clash(&t->rs.cur, f);
    if (clash >= 0)
        tui_message(t, 1, "clash: [%d] and [%d] both at place %d; give one of them another digit", f + 1, clash + 1, pos);
    else tui_message(t, 0, "[%d] at place %d of %d", f + 1, pos, t->it.n);
}
/* Ties the focused candidate with every exact copy of its text. */
static void k_same(Tui *t, int a) {
    (void)a;
    uint32_t mask = 0;
    int f = t->rs.focus, n = 0;
    for (int i = 0; i < t->it.n; i++)
        if (i != f && t->ncand[i] == t->ncand[f] && wmemcmp(t->wcand[i], t->wcand[f], (size_t)t->ncand[f]) == 0)
            mask |= 1u << i, n++;
    if (!n) {
        tui_message(t, 1, "no other candidate has exactly this text");
        return;
    }
    rs_tie_with(&t->rs, mask);
    tui_message(t, 0, "[%d] tied with its %d identical cop%s", f + 1, n, n == 1 ? "y" : "ies");
}
static void k_tie(Tui *t, int a) {
    (void)a;
    report(t, rs_tie_toggle(&t->rs), "nothing above it to tie with (rank it below another first)");
}
static void k_unrank(Tui *t, int a) {
    (void)a;
    report(t, rs_unrank(&t->rs), "");
}
static void k_clear(Tui *t, int a) {
    (void)a;
    report(t, rs_clear_order(&t->rs), "");
}
static void k_expr(Tui *t, int a) {
    (void)a;
    char cur[RS_MAX_CAND * 4];
    rs_format(&t->rs.cur, cur, sizeof cur);
    tui_begin_input(t, TUI_EXPR, cur);
    if (cur[0]) tui_message(t, 0, "the current order is filled in: edit it, or Ctrl-U to start over");
}
static void k_score(Tui *t, int a) {
    (void)a;
    t->mode = TUI_SCORE;
    tui_message(t, 0, "score for [%d]: press 1 (worst) .. 7 (best), 0 to clear", t->rs.focus + 1);
}
static void k_flag(Tui *t, int a) {
    (void)a;
    if (!t->s->n_flags) {
        tui_message(t, 1, "this project has no flags (setting label.flags)");
        return;
    }
    t->mode = TUI_FLAG;
    char list[240];
    size_t len = 0;
    for (int f = 0; f < t->s->n_flags && f < 9 && len < sizeof list; f++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%d %s", f ? "  " : "", f + 1, t->s->flags[f]);
    tui_message(t, 0, "flag [%d]: %s", t->rs.focus + 1, list);
}
static void k_none(Tui *t, int a) {
    (void)a;
    rs_none_toggle(&t->rs);
    tui_message(t, 0, "%s", t->rs.cur.none_ok ? "marked: none of the answers is acceptable" : "unmarked: none acceptable");
}
static void k_note(Tui *t, int a) {
    (void)a;
    tui_begin_input(t, TUI_NOTE, t->rs.cur.note);
}
static void k_skip(Tui *t, int a) {
    (void)a;
    tui_begin_input(t, TUI_SKIP, "");
}
static void k_undo(Tui *t, int a) {
    (void)a;
    if (!rs_undo(&t->rs)) tui_message(t, 0, "nothing to undo");
    else tui_message(t, 0, "undone");
}
static void k_redo(Tui *t, int a) {
    (void)a;
    if (!rs_redo(&t->rs)) tui_message(t, 0, "nothing to redo");
    else tui_message(t, 0, "redone");
}
static void k_submit(Tui *t, int a) {
    (void)a;
    tui_submit(t);
}
static void k_help(Tui *t, int a) {
    (void)a;
    t->mode = TUI_HELP;
    t->overlay_scroll = 0;
}
static void k_guide(Tui *t, int a) {
    (void)a;
    t->mode = TUI_GUIDE;
    t->overlay_scroll = 0;
}
static void k_expand(Tui *t, int a) {
    (void)a;
    t->expanded = !t->expanded;
    t->follow = 1;
    tui_message(t, 0, "%s", t->expanded ? "expanded: the prompt and the focused answer in full (z again: all candidates)"
                                         : "collapsed: every candidate on screen");
}
static void k_scores(Tui *t, int a) {
    (void)a;
    tui_begin_input(t, TUI_SCORES, "");
    tui_message(t, 0, "a score 1-7 per answer in screen order (0/- none), e.g. 7524");
}
static void k_scroll(Tui *t, int d) {
    if (!t->expanded && d > 0) t->expanded = 1; /* paging on means reading on */
    t->scroll += d;
    if (t->scroll < 0) t->scroll = 0;
    t->follow = 0;
}
static void k_dismiss(Tui *t, int a) {
    (void)a;
    t->msg[0] = 0;
}
static void k_quit(Tui *t, int a) {
    (void)a;
    if (!tui_unsubmitted(t)) {
        t->quit = 1;
        return;
    }
    t->mode = TUI_QUIT;
    tui_message(t, 1, "unsubmitted work here: y quits and keeps it as a draft, any other key stays");
}

static void k_write(Tui *t, int from_focus) {
    tui_write(t, from_focus);
}
static void k_pflag(Tui *t, int a) {
    (void)a;
    t->mode = TUI_PFLAG;
    tui_message(t, 0, "flag the prompt itself: 1 unclear  2 unsafe  3 duplicate (any other key cancels)");
}

static const TuiKeyHelp help_rows[] = {
    {"Up/k  Down/j  Tab", "focus previous / next candidate (it gets the most lines)"},
    {"e  /", "type the ranking, e.g. 3>1=4>2 (> better, = tie); or start with a digit and > or ="},
    {"1-9", "the focused candidate's final place (1 best); a clash shows at once"},
    {"K  J  (Shift-Up/Down)", "move the focused candidate up / down one place"},
    {"t  =", "tie it with the one above it (again: untie)"},
    {"x   C", "take it out of the order / clear the whole order"},
    {"s then 1-7", "its overall score (1 worst .. 7 best; 0 clears)"},
    {"f then 1-9", "toggle a flag on it (the list shows after f)"},
    {"a", "mark the whole set as none acceptable"},
    {"n", "write a note"},
    {"S", "skip this prompt (asks for a reason)"},
    {"u   r  Ctrl-R", "undo / redo"},
    {"Enter", "submit and go to the next prompt"},
    {"PgDn Space / PgUp b", "scroll long text"},
    {"g", "show the project's labeling guidelines"},
    {"?", "this help"},
    {"q  Ctrl-C", "quit (asks when work is unsubmitted; it is kept as a draft)"},
    {"d", "tie it with every identical copy (marked =[N] identical)"},
    {"z", "expand the focused answer and the prompt in full / collapse"},
    {"v then 1-7 per answer", "score every candidate at once, e.g. v 7524 Enter"},
    {"w   W", "write your own answer in $VISUAL/$EDITOR: from empty / starting from the focused candidate"},
    {"F then 1-3", "flag the prompt itself: unclear, unsafe, duplicate (it is held back; skips it)"},
};

const TuiKeyHelp *tui_key_help(int *n) {
    *n = (int)(sizeof help_rows / sizeof help_rows[0]);
    return help_rows;
}

static const KeyBind keymap[] = {
    {1, KEY_UP, k_focus, -1, 0},      {0, 'k', k_focus, -1, 0},       {1, KEY_DOWN, k_focus, 1, 0},
    {0, 'j', k_focus, 1, 0},          {0, '\t', k_focus, 1, 0},       {1, KEY_BTAB, k_focus, -1, 0},
    {0, 'e', k_expr, 0, 1},           {0, '/', k_expr, 0, 1},         {0, '1', k_place, 1, 2},
    {0, '2', k_place, 2, 2},          {0, '3', k_place, 3, 2},        {0, '4', k_place, 4, 2},
    {0, '5', k_place, 5, 2},          {0, '6', k_place, 6, 2},        {0, '7', k_place, 7, 2},
    {0, '8', k_place, 8, 2},          {0, '9', k_place, 9, 2},        {0, 'K', k_move, -1, 3},
    {0, 'J', k_move, 1, 3},           {1, KEY_SR, k_move, -1, 3},     {1, KEY_SF, k_move, 1, 3},
    {0, 't', k_tie, 0, 4},            {0, '=', k_tie, 0, 4},          {0, 'x', k_unrank, 0, 5},
    {0, 'C', k_clear, 0, 5},          {0, 's', k_score, 0, 6},        {0, 'f', k_flag, 0, 7},
    {0, 'a', k_none, 0, 8},           {0, 'n', k_note, 0, 9},         {0, 'S', k_skip, 0, 10},
    {0, 'u', k_undo, 0, 11},          {0, 'r', k_redo, 0, 11},        {0, 18 /* ^R */, k_redo, 0, 11},
    {0, '\n', k_submit, 0, 12},       {0, '\r', k_submit, 0, 12},     {1, KEY_ENTER, k_submit, 0, 12},
    {1, KEY_NPAGE, k_scroll, 10, 13}, {0, ' ', k_scroll, 10, 13},     {1, KEY_PPAGE, k_scroll, -10, 13},
    {0, 'b', k_scroll, -10, 13},      {0, 'g', k_guide, 0, 14},       {0, '?', k_help, 0, 15},
    {0, 'q', k_quit, 0, 16},          {0, 3 /* ^C */, k_quit, 0, 16}, {0, 27 /* Esc */, k_dismiss, 0, -1},
    {0, 'z', k_expand, 0, 18},        {0, 'v', k_scores, 0, 19},      {0, 'd', k_same, 0, 17},
    {0, 'w', k_write, 0, 20},         {0, 'W', k_write, 1, 20},       {0, 'F', k_pflag, 0, 21},
};

/* Digits then > or =: the labeler is typing an order (2>1=3>4) straight
 * away; the digits' places are taken back and the expression goes on. */
static int digits_then_op(Tui *t, int is_fn, wint_t ch) {
    if (is_fn || (ch != '>' && ch != '=') || !t->n_digits) return 0;
    for (; t->digit_edits > 0; t->digit_edits--) rs_undo(&t->rs);
    char start[8];
    snprintf(start, sizeof start, "%.*s%c", t->n_digits, t->digits, (char)ch);
    t->n_digits = 0;
    tui_begin_input(t, TUI_EXPR, start);
    return 1;
}

int tui_normal_key(Tui *t, int is_fn, wint_t ch) {
    if (digits_then_op(t, is_fn, ch)) return 1;
    for (size_t i = 0; i < sizeof keymap / sizeof keymap[0]; i++) {
        if (keymap[i].is_fn != is_fn || keymap[i].ch != ch) continue;
        if (keymap[i].fn != k_place) t->n_digits = t->digit_edits = 0;
        keymap[i].fn(t, keymap[i].arg);
        return 1;
    }
    t->n_digits = t->digit_edits = 0;
    return 0;
}

int tui_keymap_check(void) {
    int n_help, bad = 0;
    tui_key_help(&n_help);
    int seen[64] = {0};
    for (size_t i = 0; i < sizeof keymap / sizeof keymap[0]; i++) {
        int r = keymap[i].help_row;
        if (r >= n_help || r < -1) bad++;
        else if (r >= 0 && r < 64) seen[r] = 1;
        for (size_t j = 0; j < i; j++) /* one action per key */
            bad += keymap[j].is_fn == keymap[i].is_fn && keymap[j].ch == keymap[i].ch;
    }
    for (int r = 0; r < n_help && r < 64; r++) bad += !seen[r];
    return bad;
}
