/* The labeling screen's loop: loading prompts, the input modes (expression,
 * note, skip reason, score and flag digits, overlays), submitting, claim
 * renewal and the idle-aware clock. Drawing is tui_draw.c, keys tui_keys.c. */
#include "annotator/editor.h"
#include "annotator/tui_internal.h"
#include "util/sys.h"

#include <curses.h>
#include <langinfo.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IDLE_MS 60000

void tui_message(Tui *t, int is_err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->msg, sizeof t->msg, fmt, ap);
    va_end(ap);
    t->msg_err = is_err;
}

const char *tui_input_utf8(const Tui *t) {
    static char buf[TUI_INPUT_MAX * 4 + 1];
    wchar_t w[TUI_INPUT_MAX + 1];
    wmemcpy(w, t->input, (size_t)t->input_len);
    w[t->input_len] = 0;
    size_t n = wcstombs(buf, w, sizeof buf - 1);
    if (n == (size_t)-1) n = 0;
    buf[n] = 0;
    return buf;
}

void tui_begin_input(Tui *t, int mode, const char *initial) {
    t->mode = mode;
    int n = 0;
    wchar_t *w = tv_widen(initial ? initial : "", &n);
    t->input_len = 0;
    for (int i = 0; w && i < n && t->input_len < TUI_INPUT_MAX - 1; i++)
        if (w[i] != '\n') t->input[t->input_len++] = w[i];
    free(w);
    t->msg[0] = 0;
}

static void free_item(Tui *t) {
    if (!t->have_item) return;
    for (int i = 0; i < t->it.n; i++) {
        free(t->wcand[i]);
        free(t->mark[i]);
        t->wcand[i] = NULL;
        t->mark[i] = NULL;
    }
    free(t->wprompt);
    t->wprompt = NULL;
    rs_free(&t->rs);
    ls_item_free(&t->it);
    t->have_item = 0;
}

/* Wide texts and the diff marks of near-identical candidates. */
static int prepare_item(Tui *t, Err *err) {
    t->wprompt = tv_widen(t->it.prompt, &t->nprompt);
    if (!t->wprompt) return err_set(err, RLHF_ENOMEM, "out of memory");
    for (int pos = 0; pos < t->it.n; pos++) {
        t->wcand[pos] = tv_widen(t->it.cand[t->it.shown[pos]].text, &t->ncand[pos]);
        while (t->wcand[pos] && t->ncand[pos] && wcschr(L" \n", t->wcand[pos][t->ncand[pos] - 1]))
            t->ncand[pos]--; /* trailing blank lines are not worth a line each */
        t->mark[pos] = calloc((size_t)t->ncand[pos] + 1, 1);
        if (!t->wcand[pos] || !t->mark[pos]) return err_set(err, RLHF_ENOMEM, "out of memory");
        t->similar_to[pos] = -1;
    }
    for (int a = 0; a < t->it.n; a++) {
        double best = 0;
        t->same_as[a] = -1;
        for (int b = t->it.n - 1; b >= 0; b--) /* the first exact copy: one key ties them (d) */
            if (b != a && t->ncand[a] == t->ncand[b] && wmemcmp(t->wcand[a], t->wcand[b], (size_t)t->ncand[a]) == 0)
                t->same_as[a] = b;
        for (int b = 0; b < t->it.n; b++) {
            if (a == b) continue;
            double sim = tv_word_diff(t->wcand[a], t->ncand[a], t->wcand[b], t->ncand[b], NULL, NULL);
            if (sim > best && sim >= TV_NEAR_IDENTICAL && sim < 1.0) best = sim, t->similar_to[a] = b;
        }
        int b = t->similar_to[a];
        if (b >= 0) tv_word_diff(t->wcand[a], t->ncand[a], t->wcand[b], t->ncand[b], t->mark[a], NULL);
    }
    t->scroll = 0;
    t->follow = 1;
    t->expanded = 0;
    t->n_digits = t->digit_edits = t->warned_scores = 0;
    t->saved_draft = t->rs.cur;
    t->mode = TUI_NORMAL;
    rs_clock_start(&t->clock, sys_time_ms(), IDLE_MS);
    return RLHF_OK;
}

static void refresh_progress(Tui *t) {
    Err e = {0};
    if (ls_progress(t->s, &t->prog, &e)) tui_message(t, 1, "%s", e.msg);
}

/* Loads the next prompt (or the next ranking to review). */
static int load_next(Tui *t, Err *err) {
    free_item(t);
    int rc;
    if (t->opts->review) {
        t->done_all = 1;
        while (t->review_pos < t->n_review) {
            rc = ls_load_review(t->s, t->review_ids[t->review_pos++], &t->it, &t->rs, err);
            if (rc == RLHF_ENOTFOUND) continue;
            if (rc) return rc;
            t->done_all = 0;
            t->loaded = t->rs.cur;
            break;
        }
    } else {
        rc = ls_next(t->s, &t->it, err);
        if (rc) return rc;
        t->done_all = t->it.prompt_id == 0;
        if (!t->done_all && rs_init(&t->rs, t->it.n)) {
            ls_item_free(&t->it);
            return err_set(err, RLHF_EINVAL, "bad candidate count");
        }
        t->draft = 0;
        if (!t->done_all && t->it.resumed) {
            Err e = {0};
            RankCore c = t->rs.cur;
            if (!ls_draft_load(t->s, t->it.prompt_id, &c, &t->draft, &e) && t->draft) t->rs.cur = c;
            t->saved_draft = t->rs.cur;
            tui_message(t, 0, t->draft ? "resumed prompt %lld where you left it" : "resumed prompt %lld (claimed before)",
                        (long long)t->it.prompt_id);
        }
    }
    char path[1200];
    if (!t->done_all && !tui_answer_draft(t, path, sizeof path) && ed_draft_exists(path))
        tui_message(t, 0, "a draft of your answer to prompt %lld is kept: w opens it",
                    (long long)t->it.prompt_id);
    refresh_progress(t);
    if (t->done_all) return RLHF_OK;
    t->have_item = 1;
    t->last_renew_ms = sys_time_ms();
    return prepare_item(t, err);
}

int tui_unsubmitted(const Tui *t) {
    return t->have_item && !t->opts->review && (t->rs.n_undo > 0 || t->draft);
}

/* Unsubmitted work stays with the claim as a draft, written as it changes
 * (a killed session loses nothing either) and on the way out. */
static void keep_draft(Tui *t, int wait) {
    if (!tui_unsubmitted(t)) return;
    Err e = {0};
    if (!ls_draft_save(t->s, t->it.prompt_id, &t->rs.cur, wait, &e)) t->saved_draft = t->rs.cur;
}

static void save_draft_if_changed(Tui *t) {
    if (!t->have_item || t->opts->review || memcmp(&t->saved_draft, &t->rs.cur, sizeof t->rs.cur) == 0) return;
    if (tui_unsubmitted(t)) {
        keep_draft(t, 0); /* busy: tried again at the next key or tick */
        return;
    }
    Err e = {0}; /* everything undone: no draft */
    if (!ls_draft_clear(t->s, t->it.prompt_id, &e)) t->saved_draft = t->rs.cur;
}

void tui_submit(Tui *t) {
    if (!t->have_item) return;
    const RankCore *c = &t->rs.cur;
    if (!rs_complete(c)) {
        tui_message(t, 1, "rank all %d candidates first (%d ranked), or press 'a' for none acceptable",
                    c->n, rs_n_ranked(c));
        return;
    }
    int a, b;
    if (!c->skipped && !c->none_ok && rs_scores_contradict(c, &a, &b) && !t->warned_scores) {
        t->warned_scores = 1;
        tui_message(t, 1, "scores vs order: [%d]=%d, [%d]=%d; Enter again submits", a, c->score[a - 1], b,
                    c->score[b - 1]);
        return;
    }
    Err err = {0};
    long long now = sys_time_ms();
    int64_t pid = t->it.prompt_id;
    /* in review, a state equal to the stored one (even after edits undone or
     * redone by hand) is no new version */
    int same = t->opts->review && memcmp(&t->rs.cur, &t->loaded, sizeof t->loaded) == 0;
    if (same) {
        t->stats->unchanged++;
    } else {
        double agree;
        rs_clock_key(&t->clock, now);
        /* another writer may hold the lock for seconds: say so before waiting */
        tui_message(t, 0, "saving...");
        tui_draw(t);
        if (ls_submit(t->s, &t->it, c, rs_clock_spent(&t->clock, now), &agree, &err)) {
            /* the state is kept: the labeler can try again */
            tui_message(t, 1, "not saved: %s", err.msg);
            return;
        }
        if (c->skipped) t->stats->skipped++;
        else t->stats->submitted++;
        Err e = {0};
        ls_draft_clear(t->s, pid, &e);
    }
    int skipped = c->skipped, review = t->opts->review, unchanged = same;
    char done[120];
    snprintf(done, sizeof done, "%s prompt %lld",
             unchanged ? "unchanged:"
             : skipped ? "skipped"
             : review  ? "saved a new version of"
                       : "saved",
             (long long)pid);
    tui_next(t, done);
}

void tui_next(Tui *t, const char *done_msg) {
    Err err = {0};
    if (load_next(t, &err)) {
        tui_message(t, 1, "%s", err.msg);
        t->quit = 1;
        return;
    }
    /* a message of the new prompt's own (a kept draft) wins */
    if (!t->msg[0] || !strstr(t->msg, "draft")) tui_message(t, 0, "%s", done_msg);
}

/* Keys while a line of text is being typed. */
static void input_key(Tui *t, int is_fn, wint_t ch) {
    int enter = (!is_fn && (ch == '\n' || ch == '\r')) || (is_fn && ch == KEY_ENTER);
    if ((!is_fn && ch == 27) || (!is_fn && ch == 3)) {
        t->mode = TUI_NORMAL;
        tui_message(t, 0, "cancelled");
        return;
    }
    if ((is_fn && ch == KEY_BACKSPACE) || (!is_fn && (ch == 127 || ch == 8))) {
        if (t->input_len) t->input_len--;
    } else if (!is_fn && ch == 21) { /* ^U clears the line */
        t->input_len = 0;
    } else if (enter) {
        const char *text = tui_input_utf8(t);
        char msg[128] = "";
        if (t->mode == TUI_EXPR) {
            if (rs_apply_expr(&t->rs, text, msg, sizeof msg) < 0) {
                tui_message(t, 1, "%s", msg[0] ? msg : "not a ranking");
                return; /* stay in the input so it can be fixed */
            }
            t->mode = TUI_NORMAL;
            tui_message(t, 0, "order set");
        } else if (t->mode == TUI_NOTE) {
            rs_set_note(&t->rs, text);
            t->mode = TUI_NORMAL;
            tui_message(t, 0, "note %s", text[0] ? "saved" : "cleared");
        } else if (t->mode == TUI_SCORES) {
            unsigned char d[RS_MAX_CAND];
            int k = rs_scores_parse(text, t->it.n, d, msg, sizeof msg);
            if (k != RS_EXPR_ALL) {
                tui_message(t, 1, "%s", k == RS_EXPR_EMPTY ? "one score per candidate, e.g. 7524" : msg);
                return;
            }
            int focus = t->rs.focus;
            for (int pos = 0; pos < t->it.n; pos++) rs_focus_set(&t->rs, pos), rs_score(&t->rs, d[pos]);
            rs_focus_set(&t->rs, focus);
            t->mode = TUI_NORMAL;
            tui_message(t, 0, "scored all %d", t->it.n);
        } else if (t->mode == TUI_SKIP) {
            if (!text[0]) {
                tui_message(t, 1, "a reason is needed to skip (Esc cancels)");
                return;
            }
            t->mode = TUI_NORMAL;
            if (t->opts->write) {
                Err e = {0};
                int64_t pid = t->it.prompt_id;
                if (db_assign_finish(t->s->db, t->s->labeler_id, pid, ASSIGN_WRITE, 1, &e)) {
                    tui_message(t, 1, "not saved: %s", e.msg);
                    return;
                }
                t->stats->skipped++;
                char done[64];
                snprintf(done, sizeof done, "skipped prompt %lld", (long long)pid);
                tui_next(t, done);
                return;
            }
            rs_skip(&t->rs, text);
            tui_submit(t);
        }
        return;
    } else if (!is_fn && ch >= 32 && t->input_len < TUI_INPUT_MAX - 1) {
        t->input[t->input_len++] = (wchar_t)ch;
    }
    if (t->mode == TUI_EXPR || t->mode == TUI_SCORES) t->msg[0] = 0; /* the draw shows live validation */
}

static void overlay_key(Tui *t, int is_fn, wint_t ch) {
    if ((is_fn && (ch == KEY_DOWN || ch == KEY_NPAGE)) || (!is_fn && (ch == 'j' || ch == ' ')))
        t->overlay_scroll += is_fn && ch == KEY_DOWN ? 1 : !is_fn && ch == 'j' ? 1 : 10;
    else if ((is_fn && (ch == KEY_UP || ch == KEY_PPAGE)) || (!is_fn && (ch == 'k' || ch == 'b')))
        t->overlay_scroll -= is_fn && ch == KEY_UP ? 1 : !is_fn && ch == 'k' ? 1 : 10;
    else t->mode = TUI_NORMAL;
    if (t->overlay_scroll < 0) t->overlay_scroll = 0;
}

static void describe_key(int is_fn, wint_t ch, char *buf, size_t n) {
    if (is_fn) snprintf(buf, n, "%s", keyname((int)ch) ? keyname((int)ch) : "?");
    else if (ch < 32) snprintf(buf, n, "Ctrl-%c", (char)('@' + ch));
    else {
        wchar_t w[2] = {(wchar_t)ch, 0};
        if (wcstombs(buf, w, n) == (size_t)-1) snprintf(buf, n, "U+%04X", (unsigned)ch);
    }
}

static void handle_key(Tui *t, int is_fn, wint_t ch) {
    if (is_fn && ch == KEY_RESIZE) return; /* redrawn by the loop */
    if (t->mode == TUI_HELP || t->mode == TUI_GUIDE) {
        overlay_key(t, is_fn, ch);
        return;
    }
    if (t->mode == TUI_EXPR || t->mode == TUI_NOTE || t->mode == TUI_SKIP || t->mode == TUI_SCORES) {
        input_key(t, is_fn, ch);
        return;
    }
    if (t->mode == TUI_QUIT) {
        t->mode = TUI_NORMAL;
        if (!is_fn && (ch == 'y' || ch == 'Y' || ch == 'q' || ch == 3)) t->quit = 1;
        else tui_message(t, 0, "not quitting");
        return;
    }
    if (!t->have_item) { /* nothing left: only help and quit make sense */
        if (!is_fn && (ch == 'q' || ch == 3 || ch == '\n')) t->quit = 1;
        else if (!is_fn && ch == '?') t->mode = TUI_HELP;
        else if (!is_fn && ch == 'g') t->mode = TUI_GUIDE;
        return;
    }
    if (t->mode == TUI_PFLAG) {
        t->mode = TUI_NORMAL;
        int d = !is_fn && ch >= '1' && ch <= '3' ? (int)(ch - '0') : 0;
        if (!d)
            tui_message(t, 1, "a prompt flag is 1 unclear, 2 unsafe or 3 duplicate; cancelled");
        else
            tui_flag_prompt(t, d - 1);
        return;
    }
    if (t->opts->write && !tui_write_key_ok(is_fn, ch)) {
        tui_message(t, 1,
                    "writing: w writes an answer, W starts from the focused one, F flags the "
                    "prompt, S skips (? for keys)");
        return;
    }
    if (t->mode == TUI_SCORE || t->mode == TUI_FLAG) {
        int mode = t->mode;
        t->mode = TUI_NORMAL;
        int d = !is_fn && ch >= '0' && ch <= '9' ? (int)(ch - '0') : -1;
        if (mode == TUI_SCORE) {
            if (d < 0 || d > 7) tui_message(t, 1, "a score is 1-7 (0 clears); cancelled");
            else rs_score(&t->rs, d), tui_message(t, 0, d ? "[%d] scored %d" : "[%d] score cleared", t->rs.focus + 1, d);
        } else {
            if (d < 1 || d > t->s->n_flags) tui_message(t, 1, "no flag %s; cancelled", d < 0 ? "for that key" : "with that number");
            else {
                rs_flag_toggle(&t->rs, d - 1);
                int on = (t->rs.cur.flags[t->rs.focus] >> (d - 1)) & 1;
                tui_message(t, 0, "[%d] %s %s", t->rs.focus + 1, on ? "flagged" : "unflagged", t->s->flags[d - 1]);
            }
        }
        return;
    }
    if (!tui_normal_key(t, is_fn, ch)) {
        char name[32];
        describe_key(is_fn, ch, name, sizeof name);
        tui_message(t, 1, "key '%s' does nothing here; press ? for help", name);
    }
}

static void load_guidelines(Tui *t) {
    Err e = {0};
    char *set = NULL;
    const char *path = t->opts->guidelines;
    if (!path && !db_setting_get(t->s->db, "label.guidelines", &set, &e) && set) path = set;
    char full[2048];
    /* a relative path in the settings is relative to the project's database */
    if (path && set && path[0] != '/') {
        const char *dbp = db_path(t->s->db), *slash = strrchr(dbp, '/');
        snprintf(full, sizeof full, "%.*s%s", slash ? (int)(slash - dbp + 1) : 0, dbp, path);
        path = full;
    }
    size_t len;
    if (!path) {
        t->guidelines = strdup("No guidelines for this project yet.\n\nSet them with:\n"
                               "  rlhf label --set-guidelines FILE\nor pass --guidelines FILE.");
    } else if (sys_read_file(path, &t->guidelines, &len, &e)) {
        char buf[1200];
        snprintf(buf, sizeof buf, "The guidelines could not be read:\n%s", e.msg);
        t->guidelines = strdup(buf);
    }
    free(set);
}

static int start_curses(Tui *t) {
    /* wide characters need a UTF-8 locale; fall back to C.UTF-8 */
    setlocale(LC_ALL, "");
    if (strcmp(nl_langinfo(CODESET), "UTF-8") != 0) setlocale(LC_CTYPE, "C.UTF-8");
    /* newterm, unlike initscr, returns NULL instead of exiting on a bad TERM */
    t->screen = newterm(NULL, stdout, stdin);
    if (!t->screen) return -1;
    set_term(t->screen);
    raw();
    noecho();
    keypad(stdscr, TRUE);
    set_escdelay(25);
    timeout(1000);
    curs_set(0);
    t->colors = has_colors() && getenv("NO_COLOR") == NULL;
    if (t->colors) {
        start_color();
        use_default_colors();
        init_pair(TC_HEADER, COLOR_BLACK, COLOR_CYAN);
        init_pair(TC_FOCUS, COLOR_YELLOW, -1);
        init_pair(TC_DIFF, COLOR_BLACK, COLOR_YELLOW);
        init_pair(TC_OK, COLOR_GREEN, -1);
        init_pair(TC_ERR, COLOR_RED, -1);
        init_pair(TC_DIM, COLOR_BLUE, -1);
        init_pair(TC_RANK, COLOR_MAGENTA, -1);
    }
    return 0;
}

int tui_run(LabelSession *s, const TuiOpts *o, TuiStats *st, Err *err) {
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
        return err_set(err, RLHF_EINVAL, "the labeling screen needs a terminal (use --auto RULE for simulated labeling)");
    Tui t;
    memset(&t, 0, sizeof t);
    memset(st, 0, sizeof *st);
    t.s = s;
    t.opts = o;
    t.stats = st;
    int rc = RLHF_OK;
    if (o->review) rc = db_label_reviewable(s->db, s->labeler_id, &t.review_ids, &t.n_review, err);
    if (rc) return rc;
    load_guidelines(&t);
    if (start_curses(&t)) {
        free(t.guidelines);
        free(t.review_ids);
        return err_set(err, RLHF_EIO, "cannot start the terminal screen (is TERM set?)");
    }
    rc = load_next(&t, err);
    while (!rc && !t.quit) {
        tui_draw(&t);
        wint_t ch;
        int r = get_wch(&ch);
        long long now = sys_time_ms();
        if (r == ERR) { /* a tick: keep the claim alive, redraw the clock */
            if (sys_interrupted()) t.quit = 1;
            save_draft_if_changed(&t);
        } else {
            if (t.have_item) rs_clock_key(&t.clock, now);
            handle_key(&t, r == KEY_CODE_YES, ch);
            save_draft_if_changed(&t);
        }
        /* renew while keys come; an idle labeler's claim runs out and frees the prompt */
        if (t.have_item && r != ERR && now - t.last_renew_ms > (long long)s->opts.lease_s * 1000 / 3) {
            Err e = {0};
            if (db_assign_renew(s->db, s->labeler_id, t.it.prompt_id, s->opts.lease_s, &e))
                tui_message(&t, 1, "could not renew the claim: %s", e.msg);
            t.last_renew_ms = now;
        }
    }
    keep_draft(&t, 1);
    endwin();
    delscreen(t.screen);
    free_item(&t);
    free(t.guidelines);
    free(t.review_ids);
    return rc;
}
