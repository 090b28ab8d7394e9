/* Writing text in the labeler's own editor, as git does: $VISUAL, then
 * $EDITOR, then Debian's sensible-editor (editor, nano, vi after it). The
 * file is a draft in the project's folder (DB.drafts/), written before the
 * editor starts, so an editor that crashes or is killed leaves the text
 * there; the next edit of the same thing starts from it. Everything below a
 * scissors line is context (the prompt, how to write) and is dropped. */
#ifndef RLHF_EDITOR_H
#define RLHF_EDITOR_H

#include <stdint.h>

#include "util/err.h"

#define ED_SCISSORS "# ------------------------ >8 ------------------------"

/* The editor command (a shell word list, as git runs core.editor). */
void ed_command(char *buf, size_t n);

/* DB.drafts/NAME (the folder is made when missing). */
int ed_draft_path(const char *db_path, const char *name, char *buf, size_t n, Err *err);
/* Whether a draft exists at path. */
int ed_draft_exists(const char *path);

typedef struct EdResult {
    int status; /* ED_OK, ED_FAILED (exit code in code), ED_KILLED (signal in code) */
    int code;
    int recovered; /* the file was a draft left by an earlier edit */
    char *text;    /* what is above the scissors, trailing blanks cut (owned; NULL unless ED_OK) */
    char *meta;    /* the value of a "# rlhf: KEY" line below the scissors, if asked (owned) */
    long long ms;  /* how long the editor ran */
} EdResult;
enum { ED_OK = 0, ED_FAILED = 1, ED_KILLED = 2 };

/* Edits the draft at path: when none exists, it is written first as initial,
 * the scissors line, then context (each line shown as a comment) and
 * "# rlhf: META" when meta is given. Then the editor runs on the terminal
 * (the caller leaves curses first). meta_key, when given, reads back the
 * draft's META line (a recovered draft says what it was started from).
 * Returns RLHF_EIO when the draft cannot be written or read. */
int ed_edit(const char *path, const char *initial, const char *context, const char *meta,
            EdResult *r, Err *err);
void ed_result_free(EdResult *r);
/* The draft is done with: stored, or cancelled by the labeler. */
void ed_draft_remove(const char *path);

#endif
