/* Writing on the labeling screen: the prompt's answer in the labeler's own
 * editor (empty, or starting from the focused candidate), stored as a
 * demonstration of human:NAME; and flags on the prompt itself. The screen
 * leaves curses while the editor runs and comes back after it. */
#include "annotator/editor.h"
#include "annotator/tui_internal.h"
#include "db/demos.h"
#include "util/sys.h"
#include "util/text.h"

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tui_answer_draft(const Tui *t, char *path, size_t n) {
    char name[96];
    snprintf(name, sizeof name, "answer-%lld-%lld.txt", (long long)t->s->labeler_id,
             (long long)t->it.prompt_id);
    Err e = {0};
    return ed_draft_path(db_path(t->s->db), name, path, n, &e);
}

int tui_write_key_ok(int is_fn, wint_t ch) {
    if (is_fn)
        return ch == KEY_UP || ch == KEY_DOWN || ch == KEY_NPAGE || ch == KEY_PPAGE ||
               ch == KEY_BTAB;
    return (ch && strchr("wWFSjkzgq? b\t", (int)ch) != NULL) || ch == 3 || ch == 27;
}

/* The prompt as the editor's context, and what the answer starts from. */
static void context_of(const Tui *t, StrBuf *b) {
    sb_printf(b,
              "Write your answer above the scissors as %s; an answer left as it started cancels "
              "too.\n\nPrompt %lld:\n\n%s\n",
              t->s->name, (long long)t->it.prompt_id, t->it.prompt);
}

/* The text an answer was started from, by the candidate id a draft names. */
static const char *origin_text(const Tui *t, int64_t id) {
    for (int i = 0; i < t->it.n_cand; i++)
        if (t->it.cand[i].id == id) return t->it.cand[i].text;
    return NULL;
}

static void store(Tui *t, const char *text, int64_t from, long long ms, const char *path, int recovered) {
    const char *orig = from ? origin_text(t, from) : "";
    long dist = text_edit_distance(orig ? orig : "", text);
    DemoIn d = {t->it.prompt_id, t->s->labeler_id, t->s->name,    text, from, ms, dist,
                t->s->simulated, t->s->source,     t->opts->write};
    int64_t cid;
    Err e = {0};
    tui_message(t, 0, "saving...");
    tui_draw(t);
    if (db_demo_store(t->s->db, &d, &cid, &e)) {
        tui_message(t, 1, "not saved (your text is kept in %s): %s", path, e.msg);
        return;
    }
    ed_draft_remove(path);
    char done[400];
    snprintf(done, sizeof done,
             "saved your answer to prompt %lld as candidate %lld (human:%s, %ld edits%s)",
             (long long)t->it.prompt_id, (long long)cid, t->s->name, dist, recovered ? ", from your kept draft" : "");
    if (!t->opts->write) {
        tui_message(t, 0, "%s", done);
        return;
    }
    t->stats->submitted++;
    tui_next(t, done);
}

void tui_write(Tui *t, int from_focus) {
    if (!t->have_item) return;
    if (from_focus && t->it.n == 0) {
        tui_message(t, 1, "no candidate to start from: w writes from empty");
        return;
    }
    char path[1200];
    if (tui_answer_draft(t, path, sizeof path)) {
        tui_message(t, 1, "cannot make the drafts folder next to %s", db_path(t->s->db));
        return;
    }
    const CandidateRow *c = from_focus ? &t->it.cand[t->it.shown[t->rs.focus]] : NULL;
    char meta[64];
    snprintf(meta, sizeof meta, "edited-from %lld", c ? (long long)c->id : 0LL);
    StrBuf ctx = {0};
    context_of(t, &ctx);
    EdResult r;
    Err e = {0};
    long long screen = rs_clock_spent(&t->clock, sys_time_ms());
    def_prog_mode();
    endwin();
    int rc = ed_edit(path, c ? c->text : "", ctx.s ? ctx.s : "", meta, &r, &e);
    reset_prog_mode();
    clearok(stdscr, TRUE);
    refresh();
    sb_free(&ctx);
    rs_clock_start(&t->clock, sys_time_ms(), 60000);
    if (rc) {
        tui_message(t, 1, "editor: %s", e.msg);
        return;
    }
    if (r.status != ED_OK) {
        char cmd[200];
        ed_command(cmd, sizeof cmd);
        tui_message(t, 1, "the editor %s %d%s%s%s: your text is kept in %s and comes back with w",
                    r.status == ED_KILLED ? "was killed by signal" : "exited with status", r.code,
                    r.code == 127 && r.status == ED_FAILED ? " (no such editor? '" : "",
                    r.code == 127 && r.status == ED_FAILED ? cmd : "",
                    r.code == 127 && r.status == ED_FAILED ? "': set $VISUAL or $EDITOR)" : "", path);
        ed_result_free(&r);
        return;
    }
    long long from =
        r.meta ? strtoll(r.meta + (strncmp(r.meta, "edited-from ", 12) ? 0 : 12), NULL, 10) : 0;
    const char *orig = from ? origin_text(t, from) : "";
    size_t ol = orig ? strlen(orig) : 0;
    while (ol && strchr(" \t\r\n", orig[ol - 1]))
        ol--;
    if (!r.text[0] || (orig && strlen(r.text) == ol && strncmp(r.text, orig, ol) == 0)) {
        ed_draft_remove(path);
        tui_message(t, 0, "cancelled: %s answer", r.text[0] ? "an unchanged" : "an empty");
    } else {
        /* the time ranking on the ranking screen is the ranking's, not the answer's */
        store(t, r.text, from > 0 && orig ? from : 0, (t->opts->write ? screen : 0) + r.ms, path,
              r.recovered);
    }
    ed_result_free(&r);
}

void tui_flag_prompt(Tui *t, int flag) {
    Err e = {0};
    int64_t pid = t->it.prompt_id;
    const char *name = db_prompt_flag_names[flag];
    int rc = db_begin(t->s->db, &e);
    if (!rc) rc = db_prompt_flag(t->s->db, pid, t->s->labeler_id, name, NULL, &e);
    if (!rc && t->opts->write)
        rc = db_assign_finish(t->s->db, t->s->labeler_id, pid, ASSIGN_WRITE, 1, &e);
    if (!rc)
        rc = db_commit(t->s->db, &e);
    else
        db_rollback(t->s->db);
    if (rc) {
        tui_message(t, 1, "not flagged: %s", e.msg);
        return;
    }
    char done[120];
    snprintf(done, sizeof done, "flagged prompt %lld %s: held back from every use", (long long)pid,
             name);
    if (t->opts->write) {
        t->stats->skipped++;
        tui_next(t, done);
        return;
    }
    /* ranking a prompt one has just flagged: it is skipped with the flag as the reason */
    char why[64];
    snprintf(why, sizeof why, "flagged prompt: %s", name);
    rs_skip(&t->rs, why);
    tui_submit(t);
}
