/* State shared by the files of the labeling screen (tui.c: loop and modes,
 * tui_draw.c: drawing, tui_keys.c: the keymap). Nothing outside annotator/tui_*.c
 * includes this. */
#ifndef RLHF_TUI_INTERNAL_H
#define RLHF_TUI_INTERNAL_H

#include <wchar.h>

#include "annotator/rank_state.h"
#include "annotator/textview.h"
#include "annotator/session.h"
#include "annotator/tui.h"

enum {
    TUI_NORMAL,
    TUI_EXPR,  /* typing a ranking expression */
    TUI_NOTE,  /* typing the note */
    TUI_SKIP,  /* typing a skip reason */
    TUI_SCORE, /* waiting for the 1-7 after 's' */
    TUI_FLAG,  /* waiting for the flag number after 'f' */
    TUI_HELP,
    TUI_GUIDE,
    TUI_SCORES, /* typing every candidate's score at once */
    TUI_QUIT,   /* asked whether to quit with unsubmitted work */
    TUI_PFLAG,  /* waiting for the prompt flag's number after 'F' */
};

#define TUI_INPUT_MAX 512

typedef struct Tui {
    LabelSession *s;
    const TuiOpts *opts;
    TuiStats *stats;
    LabelItem it;
    int have_item, done_all;
    RankState rs;
    RankClock clock;
    wchar_t *wprompt;
    int nprompt;
    wchar_t *wcand[RS_MAX_CAND];
    int ncand[RS_MAX_CAND];
    unsigned char *mark[RS_MAX_CAND]; /* words differing from a near-identical other */
    int similar_to[RS_MAX_CAND];      /* that other's position, or -1 */
    int scroll, follow, overlay_scroll;
    int expanded; /* z: the prompt and the focused candidate whole, scrolling */
    int draft;    /* the state came from a draft (not yet submitted) */
    RankCore loaded; /* review: the stored state, to tell a real change */
    RankCore saved_draft; /* the draft as last written */
    int mode;
    char digits[4];   /* digits just pressed: with > or = after them, an expression */
    int n_digits, digit_edits; /* how many, and the edits they made (undone then) */
    int same_as[RS_MAX_CAND]; /* the first other candidate with the very same text, or -1 */
    int warned_scores;        /* Enter was told once that the scores contradict the order */
    wchar_t input[TUI_INPUT_MAX];
    int input_len;
    char msg[300];
    int msg_err;
    LabelProgress prog;
    char *guidelines; /* the text, or a line saying why there is none */
    int colors, quit;
    struct screen *screen; /* the curses screen (SCREEN) */
    long long last_renew_ms;
    int64_t *review_ids;
    int n_review, review_pos;
} Tui;

/* Colour pairs (or monochrome attributes) by role. */
enum { TC_HEADER = 1, TC_FOCUS, TC_DIFF, TC_OK, TC_ERR, TC_DIM, TC_RANK };
unsigned tui_attr(const Tui *t, int role);

void tui_draw(Tui *t);
void tui_message(Tui *t, int is_err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Normal-mode keys: returns 1 when the key is in the keymap. */
int tui_normal_key(Tui *t, int is_fn, wint_t ch);
/* Counts problems in the keymap: a key bound twice, a help row no key has,
 * a binding pointing at no help row. 0 when the help overlay lists every key. */
int tui_keymap_check(void);
/* Actions the keymap calls that live in tui.c. */
void tui_submit(Tui *t);
/* Loads the next prompt; on failure says so and quits. */
void tui_next(Tui *t, const char *done_msg);
/* tui_write.c: the focused prompt's answer in the labeler's editor (from
 * the focused candidate, or empty), stored as a demonstration; and flags on
 * the prompt itself (F then 1-3). */
void tui_write(Tui *t, int from_focus);
void tui_flag_prompt(Tui *t, int flag);
/* The draft file of this labeler's answer to the prompt on screen. */
int tui_answer_draft(const Tui *t, char *path, size_t n);
/* Whether a key may be used on the write task's screen. */
int tui_write_key_ok(int is_fn, wint_t ch);
/* Whether the screen holds a ranking, score, flag or note not yet submitted. */
int tui_unsubmitted(const Tui *t);
void tui_begin_input(Tui *t, int mode, const char *initial);
/* Wide input buffer to UTF-8 (static buffer, valid until the next call). */
const char *tui_input_utf8(const Tui *t);

#endif
