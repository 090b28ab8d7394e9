/* Import of preference data so public comparisons can train the reward model:
 *   pairs     TRL preference JSONL: "prompt", "chosen", "rejected" as strings, or
 *             TRL's conversational form (lists of {"role", "content"}; the answer
 *             is the last, assistant, message; without "prompt" the prompt is
 *             what both conversations share; a system message first is kept as
 *             one, see turns.h); optional "labeler", "simulated", "chosen_model",
 *             "rejected_model", "split", "ranking_id"; a prompt string in
 *             transcript form "\n\nHuman: P\n\nAssistant:" is stored as HH's P
 *   hh        HH-RLHF: "chosen" and "rejected" transcripts sharing everything up
 *             to the last "\n\nAssistant:"; the prompt is that shared part
 *   rankings  `export --format rankings` lines: each becomes its prompt,
 *             candidates and ranking again (ties, scores, flags, note, skip,
 *             time, date), in file order (import_rankings.c)
 * Comparisons are not stored as such: each becomes prompt + candidates + a
 * ranking by a labeler ("import:FILE" unless the data names one). The pairs of
 * one prompt, labeler and ranking_id that together form a complete ranking (as
 * an export of one ranking does) become that one ranking again, ties included;
 * any other group becomes one 2-item ranking per pair by labelers NAME,
 * NAME#2, ... A record whose chosen and rejected are the same answer (text and
 * model) is skipped; the same text from two models is two candidates.
 * The caller wraps all files in one transaction: all or nothing. */
#ifndef RLHF_RM_IMPORT_H
#define RLHF_RM_IMPORT_H

#include <stdint.h>

#include "db/db.h"
#include "util/lines.h"
#include "util/progress.h"

enum { IMPORT_PAIRS, IMPORT_HH, IMPORT_RANKINGS };

int rm_import_format(const char *name); /* -1 for an unknown name */

typedef struct ImportOptions {
    int format;
    const char *labeler; /* overrides the data's and the default "import:FILE" */
    const char *model;   /* model of candidates the data does not name; "import" */
    const char *split;   /* split of new prompts; NULL: the record's, else train */
    Progress *progress;  /* records written so far; may be NULL */
} ImportOptions;

typedef struct ImportStats {
    int64_t records, rankings, pairs, prompts_new, candidates_new;
    int64_t identical;    /* chosen == rejected (text and model): nothing to learn, skipped */
    int64_t groups_split; /* prompt+labeler groups that were not one ranking */
} ImportStats;

/* Reads one file and writes its rankings; errors name "file:line: ...".
 * Must run inside db_begin/db_commit. Stops with RLHF_EINTR on an interrupt
 * (sys_interrupted), for the caller to roll back. */
int rm_import_file(Db *db, const char *path, const ImportOptions *o, ImportStats *st, Err *err);
/* rm_import_file for the rankings format. */
int rm_import_rankings_file(Db *db, const char *path, const ImportOptions *o, ImportStats *st,
                            Err *err);

/* The format one record looks like: HH when it has no "prompt" and its
 * "chosen" is a transcript string with an Assistant turn; else pairs. */
int rm_import_detect(const cJSON *obj);
/* Reads one record of the format as import does (prompt, answers, optional
 * labeler: four strings the caller frees, labeler NULL when absent), for
 * trainers that read a file without importing it. Errors name r's place. */
int rm_import_read_pair(LineReader *r, const cJSON *obj, int format, char **prompt, char **chosen,
                        char **rejected, char **labeler, Err *err);

/* Splits an HH transcript pair into the prompt and the two answers (three
 * strings the caller frees); exposed for tests. */
int rm_hh_split(const char *chosen, const char *rejected, char **prompt, char **a_chosen,
                char **a_rejected, Err *err);

#endif
