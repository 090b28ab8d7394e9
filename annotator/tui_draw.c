/* Drawing the labeling screen: header with progress, the prompt and the
 * candidates (focused one expanded, long text wrapped and scrollable, words
 * that differ from a near-identical candidate highlighted), the order line,
 * the message/input line and the key hints; the help and guidelines overlays.
 * Works from 40x10 up; colours degrade to bold/reverse/underline. */
#include "annotator/textview.h"
#include "annotator/tui_internal.h"
#include "util/sys.h"

#include <curses.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned tui_attr(const Tui *t, int role) {
    if (t->colors) {
        unsigned a = (unsigned)COLOR_PAIR(role);
        if (role == TC_FOCUS || role == TC_ERR || role == TC_RANK) a |= A_BOLD;
        return a;
    }
    switch (role) {
    case TC_HEADER: return A_REVERSE;
    case TC_FOCUS: return A_BOLD;
    case TC_DIFF: return A_UNDERLINE | A_BOLD;
    case TC_ERR: return A_BOLD;
    case TC_RANK: return A_BOLD;
    case TC_DIM: return A_DIM;
    default: return A_NORMAL;
    }
}

/* Draws s[0..n) from (y, x) within maxw columns; newlines become spaces;
 * marked characters get the diff attribute. Returns the columns used. */
static int put_wide(Tui *t, int y, int x, int maxw, const wchar_t *s, int n, const unsigned char *mark, unsigned attr) {
    int col = 0;
    move(y, x);
    for (int i = 0; i < n; i++) {
        wchar_t c = s[i] == '\n' ? L' ' : s[i];
        int w = tv_char_width(c);
        if (col + w > maxw) break;
        attrset(mark && mark[i] ? tui_attr(t, TC_DIFF) : attr);
        addnwstr(&c, 1);
        col += w;
    }
    attrset(A_NORMAL);
    return col;
}

/* put_wide for UTF-8 text. */
static int put_utf8(Tui *t, int y, int x, int maxw, const char *s, unsigned attr) {
    int n;
    wchar_t *w = tv_widen(s, &n);
    int used = w ? put_wide(t, y, x, maxw, w, n, NULL, attr) : 0;
    free(w);
    return used;
}

/* The body is a list of lines produced twice: once to count (and find the
 * focused candidate), once to draw the visible window. Collapsed (the
 * default), each text gets a line budget so that every candidate stays on
 * screen; expanded (z), the prompt and the focused candidate are whole. */
typedef struct Body {
    Tui *t;
    int y0, h, w;         /* window on screen */
    int line;             /* current virtual line */
    int focus_top, focus_bottom;
    int draw;
    int prompt_max;              /* line budgets; -1: whole */
    int cand_max[RS_MAX_CAND];
} Body;

#define TEXT_MAX_W 100 /* readable lines on wide terminals */

static int body_row(Body *b) {
    int r = b->line - b->t->scroll;
    return b->draw && r >= 0 && r < b->h ? b->y0 + r : -1;
}

static int text_lines(const wchar_t *s, int n, int width) {
    return n ? tv_wrap(s, n, width, NULL, 0) : 1;
}

/* Draws at most max lines (-1: all) of s; a cut text ends with a line saying
 * how much more there is (the line counts against max). */
static void body_text(Body *b, const wchar_t *s, int n, const unsigned char *mark, int indent, unsigned attr,
                      int max, const char *what) {
    int width = b->w - indent;
    if (!n) {
        int y = body_row(b);
        if (y >= 0) put_utf8(b->t, y, indent, width, "(empty)", tui_attr(b->t, TC_DIM));
        b->line++;
        return;
    }
    int need = tv_wrap(s, n, width, NULL, 0);
    TvLine *lines = malloc((size_t)need * sizeof *lines);
    if (!lines) return;
    tv_wrap(s, n, width, lines, need);
    /* one line is a line of text; more end with a line saying what is left */
    int shown = max < 0 || need <= max ? need : max > 1 ? max - 1 : max;
    for (int i = 0; i < shown; i++, b->line++) {
        int y = body_row(b);
        if (y >= 0)
            put_wide(b->t, y, indent, width, s + lines[i].start, lines[i].end - lines[i].start,
                     mark ? mark + lines[i].start : NULL, attr);
    }
    if (shown < need && max > 1) {
        int y = body_row(b);
        char more[120];
        snprintf(more, sizeof more, "... %d more line%s of %s (z: show all)", need - shown, need - shown == 1 ? "" : "s", what);
        if (y >= 0) put_utf8(b->t, y, indent, width, more, tui_attr(b->t, TC_DIM));
        b->line++;
    }
    free(lines);
}

static void candidate_header(Body *b, int pos, int rank) {
    Tui *t = b->t;
    const RankCore *c = &t->rs.cur;
    int focused = pos == t->rs.focus, y = body_row(b);
    if (y < 0) return;
    char head[24], meta[240]; /* head: "> [" + up to 11 digits + "] " */
    snprintf(head, sizeof head, "%s[%d] ", focused ? "> " : "  ", pos + 1);
    int x = put_utf8(t, y, 0, b->w, head, focused ? tui_attr(t, TC_FOCUS) : A_BOLD);
    if (t->opts->write) { /* a candidate to start from, not to rank */
        int nl = t->ncand[pos] ? tv_wrap(t->wcand[pos], t->ncand[pos], b->w - 4, NULL, 0) : 0;
        snprintf(meta, sizeof meta, "(%d line%s)%s", nl, nl == 1 ? "" : "s",
                 focused ? "  W starts from this one" : "");
        put_utf8(t, y, x, b->w - x, meta, A_NORMAL);
        return;
    }
    /* the place a digit gave it (while the order is the digits'), else its rank */
    int place = rs_shown_place(c, pos), clash = rs_place_clash(c, pos);
    (void)rank;
    if (place) snprintf(meta, sizeof meta, "#%d%s", place, clash >= 0 ? " CLASH" : "");
    else snprintf(meta, sizeof meta, "--");
    x += put_utf8(t, y, x, b->w - x, meta, clash >= 0 ? tui_attr(t, TC_ERR) : tui_attr(t, TC_RANK));
    int m = c->score[pos] ? snprintf(meta, sizeof meta, " score %d", c->score[pos])
                          : snprintf(meta, sizeof meta, " score -");
    for (int f = 0; f < t->s->n_flags && m < (int)sizeof meta - 60; f++)
        if (c->flags[pos] & (1u << f)) m += snprintf(meta + m, sizeof meta - (size_t)m, " !%s", t->s->flags[f]);
    if (t->same_as[pos] >= 0) m += snprintf(meta + m, sizeof meta - (size_t)m, " =[%d] identical (d ties)", t->same_as[pos] + 1);
    else if (t->similar_to[pos] >= 0) m += snprintf(meta + m, sizeof meta - (size_t)m, " ~[%d]", t->similar_to[pos] + 1);
    int nl = t->ncand[pos] ? tv_wrap(t->wcand[pos], t->ncand[pos], b->w - 4, NULL, 0) : 0;
    if (nl) snprintf(meta + m, sizeof meta - (size_t)m, "  (%d line%s)", nl, nl == 1 ? "" : "s");
    put_utf8(t, y, x, b->w - x, meta, A_NORMAL);
}

static void body(Body *b) {
    Tui *t = b->t;
    char h[400];
    /* gold items look like any other: the labeler must not know */
    int m = snprintf(h, sizeof h, "Prompt %lld%s%s%s", (long long)t->it.prompt_id,
                     t->it.review ? "  (review: a change is saved as a new version)" : "",
                     t->it.why[0] ? "  -- " : "", t->it.why);
    if (t->it.review && t->rs.cur.skipped)
        snprintf(h + m, sizeof h - (size_t)m, "  SKIPPED: %s (rank it to replace the skip)", t->rs.cur.skip_reason);
    int nh;
    wchar_t *wh = tv_widen(h, &nh); /* wrapped, never cut */
    if (wh) body_text(b, wh, nh, NULL, 0, A_BOLD | A_UNDERLINE, -1, "the heading");
    else b->line++;
    free(wh);
    body_text(b, t->wprompt, t->nprompt, NULL, 2, A_NORMAL, b->prompt_max, "the prompt");
    b->line++;
    int rank[RS_MAX_CAND];
    rs_ranks(&t->rs.cur, rank);
    for (int pos = 0; pos < t->it.n; pos++) {
        int focused = pos == t->rs.focus;
        if (focused) b->focus_top = b->line;
        candidate_header(b, pos, rank[pos]);
        b->line++;
        int max = b->cand_max[pos];
        if (max) body_text(b, t->wcand[pos], t->ncand[pos], t->mark[pos], 4, A_NORMAL, max, "the answer");
        if (focused) b->focus_bottom = b->line;
    }
}

/* Line budgets that keep every candidate on a screen of body_h lines and
 * fill it before folding anything: the prompt and the focused answer first
 * get a few lines, then every other answer a line at a time while there is
 * room, then the focused answer and the prompt what is left. */
static void budget(Body *b) {
    Tui *t = b->t;
    int n = t->it.n, f = t->rs.focus, nc[RS_MAX_CAND], need = 0;
    b->prompt_max = -1;
    if (n == 0) return; /* a prompt to write an answer to: all of it */
    for (int i = 0; i < n; i++) {
        nc[i] = text_lines(t->wcand[i], t->ncand[i], b->w - 4);
        b->cand_max[i] = t->expanded && i != f ? 2 : -1;
        need += nc[i];
    }
    if (t->expanded) return;
    int np = text_lines(t->wprompt, t->nprompt, b->w - 2);
    int left = b->h - 2 - n; /* the prompt's heading, the blank line, the headers */
    if (np + need <= left) return; /* everything whole */
    int pl = np < 2 ? np : 2, fl = nc[f] < 3 ? nc[f] : 3, give[RS_MAX_CAND] = {0};
    left -= pl + fl;
    for (int more = 1; more && left > 0;) {
        more = 0;
        for (int k = 1; k < n && left > 0; k++) {
            int i = (f + k) % n; /* the ones below the focus first */
            if (give[i] < nc[i]) give[i]++, left--, more = 1;
        }
    }
    if (left > 0) {
        int add = nc[f] - fl < left ? nc[f] - fl : left;
        fl += add, left -= add;
    }
    if (left > 0) pl += np - pl < left ? np - pl : left;
    for (int i = 0; i < n; i++) b->cand_max[i] = i == f ? (fl < 1 ? 1 : fl) : give[i];
    b->prompt_max = pl < 1 ? 1 : pl;
}

static void header(Tui *t, int w) {
    attrset(tui_attr(t, TC_HEADER));
    mvhline(0, 0, ' ', w);
    char left[200], right[200];
    snprintf(left, sizeof left, " rlhf label: %s  %s%s", t->s->name,
             t->opts->write ? "task write" : "task rank", t->opts->review ? " (review)" : "");
    const LabelProgress *p = &t->prog;
    /* "open": prompts still free for this labeler now, which others' claims shrink */
    int m = snprintf(right, sizeof right, "%s %lld  open %lld  today %lld",
                     t->opts->write ? "written" : "done", (long long)p->done,
                     (long long)p->remaining, (long long)p->today);
    if (!isnan(p->mean_s)) m += snprintf(right + m, sizeof right - (size_t)m, "  %.1f s/prompt", p->mean_s);
    if (p->gold_n) m += snprintf(right + m, sizeof right - (size_t)m, "  gold %.0f%%", 100 * p->gold_acc);
    if (t->have_item)
        snprintf(right + m, sizeof right - (size_t)m, "  %llds ", rs_clock_spent(&t->clock, sys_time_ms()) / 1000);
    else snprintf(right + m, sizeof right - (size_t)m, " ");
    int rl = (int)strlen(right);
    int lw = put_utf8(t, 0, 0, w, left, tui_attr(t, TC_HEADER));
    if (lw + rl + 1 <= w) put_utf8(t, 0, w - rl, rl, right, tui_attr(t, TC_HEADER));
    else put_utf8(t, 0, lw + 1 < w ? lw + 1 : w, w - lw - 1, right, tui_attr(t, TC_HEADER));
    attrset(A_NORMAL);
}

static void order_line(Tui *t, int y, int w) {
    char expr[RS_MAX_CAND * 4], line[RS_NOTE_MAX + 300];
    if (t->opts->write) {
        if (t->it.n)
            snprintf(line, sizeof line,
                     "Write the answer: w from empty, W from [%d] (the focused one)",
                     t->rs.focus + 1);
        else
            snprintf(line, sizeof line, "Write the answer: w opens your editor");
        put_utf8(t, y, 0, w, line, A_BOLD);
        return;
    }
    rs_format(&t->rs.cur, expr, sizeof expr);
    int m = snprintf(line, sizeof line, "Order: %s", expr[0] ? expr : "(none yet)");
    int n = rs_n_ranked(&t->rs.cur);
    if (n < t->it.n) m += snprintf(line + m, sizeof line - (size_t)m, "  [%d of %d ranked]", n, t->it.n);
    if (t->rs.cur.none_ok) m += snprintf(line + m, sizeof line - (size_t)m, "  NONE ACCEPTABLE");
    if (t->rs.cur.note[0]) snprintf(line + m, sizeof line - (size_t)m, "  note: %s", t->rs.cur.note);
    put_utf8(t, y, 0, w, line, rs_complete(&t->rs.cur) ? tui_attr(t, TC_OK) : A_BOLD);
}

static void input_line(Tui *t, int y, int w) {
    static const char *const label[] = {[TUI_EXPR] = "Ranking: ", [TUI_NOTE] = "Note: ", [TUI_SKIP] = "Skip reason: ",
                                        [TUI_SCORES] = "Scores: "};
    int x = put_utf8(t, y, 0, w, label[t->mode], A_BOLD);
    /* the tail of long input stays visible */
    int start = 0, room = w - x - 30;
    if (room < 10) room = w - x - 1;
    while (start < t->input_len && tv_width(t->input + start, t->input_len - start) > room) start++;
    x += put_wide(t, y, x, w - x, t->input + start, t->input_len - start, NULL, A_NORMAL);
    int cx = x;
    if (t->mode == TUI_EXPR && !t->msg[0]) {
        char msg[128];
        int k = rs_expr_parse(tui_input_utf8(t), t->it.n, NULL, msg, sizeof msg);
        const char *say = k == RS_EXPR_BAD ? msg : k == RS_EXPR_ALL ? "ok: Enter applies"
                          : k == RS_EXPR_SOME ? msg : k == RS_EXPR_OPEN ? "..." : "e.g. 3>1=4>2";
        put_utf8(t, y, x + 2, w - x - 2, say, k == RS_EXPR_BAD ? tui_attr(t, TC_ERR) : k >= RS_EXPR_SOME ? tui_attr(t, TC_OK) : A_NORMAL);
    } else if (t->mode == TUI_SCORES && !t->msg[0]) {
        char msg[128];
        int k = rs_scores_parse(tui_input_utf8(t), t->it.n, NULL, msg, sizeof msg);
        const char *say = k == RS_EXPR_EMPTY ? "1-7 per answer, e.g. 7524" : msg;
        put_utf8(t, y, x + 2, w - x - 2, say, k == RS_EXPR_BAD ? tui_attr(t, TC_ERR) : k == RS_EXPR_ALL ? tui_attr(t, TC_OK) : A_NORMAL);
    } else if (t->msg[0]) {
        put_utf8(t, y, x + 2, w - x - 2, t->msg, t->msg_err ? tui_attr(t, TC_ERR) : A_NORMAL);
    }
    move(y, cx < w ? cx : w - 1);
}

/* The key hints that fit in w columns, whole: the least needed go first
 * (items are in screen order, their rank in keep: lower stays longer). */
static void hints_line(Tui *t, int y, int w, const char *const *item, const int *keep, int n) {
    int on[16], len = -2;
    for (int i = 0; i < n; i++) on[i] = 1, len += (int)strlen(item[i]) + 2;
    for (int drop = n - 1; len > w && drop >= 0; drop--)
        for (int i = 0; i < n; i++)
            if (keep[i] == drop && on[i]) on[i] = 0, len -= (int)strlen(item[i]) + 2;
    char line[300];
    size_t m = 0;
    for (int i = 0; i < n && m < sizeof line; i++)
        if (on[i]) m += (size_t)snprintf(line + m, sizeof line - m, "%s%s", m ? "  " : "", item[i]);
    put_utf8(t, y, 0, w, line, tui_attr(t, TC_DIM));
}

static void draw_overlay(Tui *t, int h, int w) {
    int top = 1, bottom = h - 2, /* over the message line too */ x0 = w > 84 ? (w - 80) / 2 : 0, ww = w > 84 ? 80 : w;
    for (int y = top; y <= bottom; y++) {
        move(y, x0);
        attrset(A_NORMAL);
        hline(' ', ww);
    }
    attrset(A_REVERSE);
    mvhline(top, x0, ' ', ww);
    put_utf8(t, top, x0 + 1, ww - 2, t->mode == TUI_HELP ? "Keys (any other key closes; j/k scroll)" : "Guidelines (j/k/Space scroll; any other key closes)", A_REVERSE);
    int y = top + 1, skip = t->overlay_scroll;
    if (t->mode == TUI_HELP) {
        int n;
        const TuiKeyHelp *k = tui_key_help(&n);
        /* the keys in a column, what they do wrapped beside them */
        for (int i = skip; i < n && y <= bottom; i++) {
            put_utf8(t, y, x0 + 1, 22, k[i].keys, A_BOLD);
            int nw;
            wchar_t *what = tv_widen(k[i].what, &nw);
            if (!what) return;
            int nl = tv_wrap(what, nw, ww - 24, NULL, 0);
            TvLine lines[8];
            tv_wrap(what, nw, ww - 24, lines, nl < 8 ? nl : 8);
            for (int l = 0; l < nl && l < 8 && y <= bottom; l++, y++)
                put_wide(t, y, x0 + 23, ww - 24, what + lines[l].start, lines[l].end - lines[l].start, NULL, A_NORMAL);
            free(what);
        }
        return;
    }
    int n;
    wchar_t *g = tv_widen(t->guidelines ? t->guidelines : "", &n);
    if (!g) return;
    int need = tv_wrap(g, n, ww - 2, NULL, 0);
    TvLine *lines = malloc((size_t)need * sizeof *lines);
    if (lines) {
        tv_wrap(g, n, ww - 2, lines, need);
        if (skip > need - 1) skip = t->overlay_scroll = need - 1 > 0 ? need - 1 : 0;
        for (int i = skip; i < need && y <= bottom; i++, y++)
            put_wide(t, y, x0 + 1, ww - 2, g + lines[i].start, lines[i].end - lines[i].start, NULL, A_NORMAL);
    }
    free(lines);
    free(g);
}

void tui_draw(Tui *t) {
    int h = LINES, w = COLS;
    erase();
    if (h < 10 || w < 40) {
        mvaddstr(0, 0, "window too small");
        mvaddstr(1, 0, "(needs 40x10)");
        refresh();
        return;
    }
    header(t, w);
    int hints = h - 1, msg = h - 2, order = h - 3, body_h = h - 4;
    if (!t->have_item) {
        char why[200];
        if (t->opts->review) snprintf(why, sizeof why, "No more rankings of yours to review.");
        else if (t->prog.too_few)
            snprintf(why, sizeof why, "Nothing left to label: %lld prompt%s fewer than two candidates (add some with rlhf gen or rlhf candidates import).",
                     (long long)t->prog.too_few, t->prog.too_few == 1 ? " has" : "s have");
        else if (t->opts->write)
            snprintf(why, sizeof why, "Nothing left to write: every prompt has its answers.");
        else snprintf(why, sizeof why, "Nothing left to label: every prompt has its rankings.");
        put_utf8(t, 2, 2, w - 4, why, A_BOLD);
        char line[200];
        snprintf(line, sizeof line, "This session: %lld submitted, %lld skipped. Press q to quit.",
                 (long long)t->stats->submitted, (long long)t->stats->skipped);
        put_utf8(t, 4, 2, w - 4, line, A_NORMAL);
    } else {
        /* the last column is the scroll markers' own */
        Body b = {.t = t, .y0 = 1, .h = body_h, .w = w - 1 > TEXT_MAX_W + 4 ? TEXT_MAX_W + 4 : w - 1};
        budget(&b);
        body(&b); /* measure */
        int total = b.line;
        if (t->follow) {
            /* keep the focused candidate's head and first lines in view, but
             * scroll no further than that: the prompt stays on screen when it can */
            int want = b.focus_bottom < b.focus_top + 5 ? b.focus_bottom : b.focus_top + 5;
            if (want > t->scroll + body_h) t->scroll = want - body_h;
            if (b.focus_top < t->scroll) t->scroll = b.focus_top;
        }
        if (t->scroll > total - body_h) t->scroll = total - body_h;
        if (t->scroll < 0) t->scroll = 0;
        b.line = 0;
        b.draw = 1;
        body(&b);
        if (t->scroll > 0) put_utf8(t, 1, w - 1, 1, "^", tui_attr(t, TC_DIM));
        if (t->scroll + body_h < total) put_utf8(t, body_h, w - 1, 1, "v", tui_attr(t, TC_DIM));
        order_line(t, order, w);
    }
    if (t->mode == TUI_HELP || t->mode == TUI_GUIDE) draw_overlay(t, h, w);
    int typing = t->mode == TUI_EXPR || t->mode == TUI_NOTE || t->mode == TUI_SKIP || t->mode == TUI_SCORES;
    curs_set(typing);
    int overlay = t->mode == TUI_HELP || t->mode == TUI_GUIDE;
    if (!typing && !overlay && t->msg[0]) {
        put_utf8(t, msg, 0, w, t->msg, t->msg_err ? tui_attr(t, TC_ERR) : A_NORMAL);
    }
    static const char *const normal[] = {"?:help", "1-9:place", "e:rank", "s/v:score", "z:expand", "n:note", "S:skip", "u:undo", "Enter:submit", "q:quit"};
    static const int normal_keep[] = {0, 4, 3, 6, 8, 9, 7, 5, 1, 2};
    static const char *const input[] = {"Enter:accept", "Esc:cancel", "Backspace:delete", "Ctrl-U:clear"};
    static const int input_keep[] = {0, 1, 3, 2};
    static const char *const writing[] = {"?:help",        "w:write", "W:edit focused", "j/k:focus",
                                          "F:flag prompt", "S:skip",  "q:quit"};
    static const int writing_keep[] = {0, 1, 2, 5, 4, 3, 6};
    if (!typing && t->opts->write)
        hints_line(t, hints, w, writing, writing_keep, 7);
    else if (!typing)
        hints_line(t, hints, w, normal, normal_keep, 10);
    else hints_line(t, hints, w, input, input_keep, 4);
    if (typing) input_line(t, msg, w); /* last, so the cursor ends after the input */
    refresh();
}
