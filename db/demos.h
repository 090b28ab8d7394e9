/* What people write: demonstrations (answers a labeler wrote or edited from a
 * candidate, stored as candidates of the model human:NAME), prompts written
 * by labelers (with a kind and few-shot examples), and other labelers' flags
 * on written prompts, which hold a prompt back from every use. */
#ifndef RLHF_DB_DEMOS_H
#define RLHF_DB_DEMOS_H

#include <stdint.h>

#include "db/db.h"

typedef struct DemoIn {
    int64_t prompt_id, labeler_id;
    const char *labeler;   /* the name: the candidate's model is "human:NAME" */
    const char *text;      /* the answer, non-empty */
    int64_t edited_from;   /* the candidate it started from; 0: written from empty */
    int64_t time_spent_ms; /* < 0: unknown */
    int64_t edit_distance; /* code points inserted, deleted or replaced; < 0: unknown */
    int simulated;
    const char *source; /* "tui", "auto:demo", ... */
    int finish_claim;   /* also end the labeler's write claim on the prompt */
} DemoIn;

/* Stores the answer as a candidate of human:NAME and its demonstration row,
 * in one transaction (the caller's, when it holds one). The same labeler
 * writing the very same text to the same prompt again: RLHF_EINVAL. */
int db_demo_store(Db *db, const DemoIn *d, int64_t *candidate_id, Err *err);

/* The prompt kinds of InstructGPT's labeler-written prompts. */
extern const char *const db_prompt_kinds[]; /* "plain", "fewshot", "user", NULL */
int db_prompt_kind_valid(const char *kind);

typedef struct WrittenPromptIn {
    const char *text;     /* the whole prompt as a model sees it (examples included) */
    const char *kind;     /* a db_prompt_kinds name */
    const char *examples; /* JSON [{"query","response"}...] or NULL */
    const char *split;    /* NULL: train */
    int64_t author_id;
} WrittenPromptIn;

/* Stores a written prompt, deduplicated by its hash as imports are: when the
 * text exists already, *inserted is 0 and *id is that prompt. */
int db_prompt_write(Db *db, const WrittenPromptIn *p, int64_t *id, int *inserted, Err *err);

/* The flags other labelers may put on a written (or any) prompt. */
extern const char *const db_prompt_flag_names[]; /* "unclear", "unsafe", "duplicate", NULL */
/* Flags prompt_id; the prompt's own author may not (RLHF_EINVAL), an
 * unknown prompt is RLHF_ENOTFOUND. Flagging twice the same way is one flag. */
int db_prompt_flag(Db *db, int64_t prompt_id, int64_t labeler_id, const char *flag,
                   const char *note, Err *err);
/* Lifts every flag on a prompt (a reviewer's decision): *removed gets how many. */
int db_prompt_unflag(Db *db, int64_t prompt_id, int64_t *removed, Err *err);
/* The flags on a prompt as "unclear,unsafe" (caller frees; NULL when none). */
int db_prompt_flags(Db *db, int64_t prompt_id, char **flags, Err *err);
/* The kind and author's name of a written prompt (NULLs when imported; caller frees). */
int db_prompt_origin(Db *db, int64_t prompt_id, char **kind, char **author, Err *err);

typedef struct DemoRow {
    int64_t candidate_id, prompt_id, edited_from, time_spent_ms, edit_distance;
    const char *prompt, *split, *text, *author, *source, *created_at;
    int simulated;
    int flagged; /* another labeler flagged the answer in a ranking, or the prompt */
} DemoRow;

typedef struct DemoFilter {
    const char *split;   /* NULL: any */
    const char *labeler; /* NULL: any author */
    int unflagged;       /* only answers no other labeler flagged (nor their prompt) */
    int simulated;       /* -1: any writer, 0: people only, 1: simulated writers only */
} DemoFilter;

/* Calls fn for each demonstration in (prompt, candidate) order; a non-zero
 * return from fn stops the walk and is returned. Strings live during the call. */
int db_demos_each(Db *db, const DemoFilter *f, int (*fn)(const DemoRow *, void *), void *ctx,
                  Err *err);

#endif
