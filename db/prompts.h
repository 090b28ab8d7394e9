/* Prompts: insert (deduplicated by content hash), import from text or JSONL
 * files, listing. Import runs inside the caller's transaction so a whole
 * multi-file import is all-or-nothing. */
#ifndef RLHF_DB_PROMPTS_H
#define RLHF_DB_PROMPTS_H

#include <stdint.h>

#include "db/db.h"

typedef struct PromptIn {
    const char *text;
    const char *split;  /* NULL: "train" */
    const char *source; /* file name or dataset; may be NULL */
    const char *ext_id; /* the id the source gave it; may be NULL */
    const char *tags;   /* its tags as a JSON array of names, added to the prompt (an
                         * existing one too); NULL: none */
} PromptIn;

/* Inserts unless a prompt with the same text exists; *id gets the row either way.
 * *inserted (may be NULL) says which. */
int db_prompt_insert(Db *db, const PromptIn *p, int64_t *id, int *inserted, Err *err);
/* Finds a prompt by exact text; *id is 0 when absent. */
int db_prompt_find(Db *db, const char *text, int64_t *id, Err *err);

/* The text of prompt id (caller frees); RLHF_ENOTFOUND when absent. */
int db_prompt_text(Db *db, int64_t id, char **text, Err *err);

typedef struct PromptImportStats {
    int64_t read, inserted, duplicates;
} PromptImportStats;

/* Imports one file: JSONL (by .jsonl/.json extension or a first line starting
 * with '{') with "prompt" | "instruction" | "text" and optional "id", "split",
 * "source"; otherwise plain text, one prompt per line. split_override, when not
 * NULL, wins over the file's "split". Call inside db_begin/db_commit. */
int db_prompts_import_file(Db *db, const char *path, const char *split_override,
                           PromptImportStats *stats, Err *err);

/* A long import without starving labelers: db_prompts_stage_begin opens a
 * staging table private to this connection (TEMP: no lock on the project is
 * taken while files are read, parsed and hashed), db_prompts_import_file then
 * fills it instead of the project, and db_prompts_stage_commit moves what is
 * new into the project in one short INSERT ... SELECT transaction, so the
 * import stays all or nothing while labelers keep writing meanwhile.
 * db_prompts_stage_abort drops the staged rows (after an error). The stats'
 * inserted and duplicates are counted at commit. */
int db_prompts_stage_begin(Db *db, Err *err);
int db_prompts_stage_commit(Db *db, PromptImportStats *stats, Err *err);
void db_prompts_stage_abort(Db *db);

/* Tags a prompt carries for what uses it ("safety": the prompts the safety
 * RM of a combination judges, rm/rm_score.h); unlike a flag (db/demos.h) a
 * tag holds nothing back. A tag is a name as a split is. on: add, else
 * remove; RLHF_ENOTFOUND for no such prompt. */
int db_prompt_tag(Db *db, int64_t prompt_id, const char *tag, int on, Err *err);
/* The texts of the prompts tagged tag, in id order (*texts and each text the
 * caller's to free; *n 0 and *texts NULL when none). */
int db_prompts_tagged(Db *db, const char *tag, char ***texts, int *n, Err *err);

/* A split name: 1-32 letters, digits, '_' or '-'. */
int db_valid_split(const char *s);

typedef struct PromptRow {
    int64_t id;
    const char *text, *split, *source, *ext_id, *created_at;
    int64_t n_candidates, n_rankings;
    const char *kind, *author, *examples; /* written prompts (db/demos.h); NULL when imported */
    const char *flags;                    /* "unclear,unsafe": other labelers' flags, or NULL */
    int64_t n_demos;                      /* answers labelers wrote */
    const char *tags;                     /* "safety,x": its tags (db_prompt_tag), or NULL */
} PromptRow;

typedef struct PromptFilter {
    const char *split;    /* NULL: any */
    const char *source;   /* NULL: any */
    const char *contains; /* substring; NULL: any */
    int64_t limit;        /* 0: no limit */
    int64_t offset;
    int written; /* only prompts labelers wrote */
    int flagged; /* only prompts other labelers flagged */
    int with_flagged; /* also flagged prompts, held back otherwise (from PPO's and eval's prompts) */
} PromptFilter;

/* Calls fn for each matching prompt in id order; a non-zero return from fn stops
 * the walk and is returned. Row strings are valid only during the call. */
int db_prompts_each(Db *db, const PromptFilter *f, int (*fn)(const PromptRow *, void *),
                    void *ctx, Err *err);

#endif
