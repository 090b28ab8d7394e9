/* The ncurses labeling screen: `rlhf label --as NAME` (and --review). It only
 * draws and maps keys; ranking logic is rank_state.h, storage session.h. */
#ifndef RLHF_TUI_H
#define RLHF_TUI_H

#include <stdint.h>

#include "annotator/session.h"

typedef struct TuiOpts {
    const char *guidelines; /* path of the guidelines text file, or NULL */
    int review;             /* revisit one's own rankings instead of new prompts */
    int write;              /* the write task: answer prompts in the editor instead of ranking */
} TuiOpts;

typedef struct TuiStats {
    int64_t submitted, skipped, unchanged;
} TuiStats;

/* Runs the screen on the terminal until the labeler quits or nothing is left.
 * Needs a terminal on stdin/stdout and a UTF-8 capable locale. */
int tui_run(LabelSession *s, const TuiOpts *o, TuiStats *st, Err *err);

/* One row of the keymap; the help overlay is made from this table. */
typedef struct TuiKeyHelp {
    const char *keys, *what;
} TuiKeyHelp;
/* The key help rows (for the README and tests); *n gets the count. */
const TuiKeyHelp *tui_key_help(int *n);

#endif
