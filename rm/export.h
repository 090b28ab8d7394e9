/* Export of comparisons and rankings in the formats the field uses:
 *   pairs       TRL preference JSONL, standard form: prompt "\n\nHuman: P\n\nAssistant:"
 *               (the HH template on every prompt, see turns.h), chosen/rejected " A"
 *               (TRL's separator on the answer), so prompt + chosen is the HH
 *               transcript; + ids, models, labeler, rank_gap, ranking_id, and
 *               margin (TRL's sense) only when asked
 *   pairs-chat  TRL's conversational form: prompt as {role, content} messages,
 *               chosen/rejected as one assistant message each; same other fields
 *   hh          HH-RLHF: chosen/rejected as "\n\nHuman: P\n\nAssistant: A" transcripts
 *   rankings    one JSON line per ranking, every key in every record: prompt,
 *               completions, ranks, scores, flags, skipped + skip_reason (skips
 *               included), current (the latest version), time_ms, source, note
 *   arena       Chatbot Arena battles, one per line: model_a, model_b, winner
 *               (model_a|model_b|tie|tie (bothbad)), judge, turn, anony, language,
 *               tstamp, dedup_tag, conversation_a/b, + ids; which answer is
 *               model_a is a coin from the pair
 *   arena-json  the same battles as one JSON array, as Arena's notebooks load it
 *   csv         one row per comparison (RFC 4180)
 * Ties are kept in arena, csv and rankings, and dropped (counted) in pairs and
 * hh, which cannot hold them; arena leaves out a model's battles against itself
 * unless asked. Output order is fixed: prompt, ranking, pair. */
#ifndef RLHF_RM_EXPORT_H
#define RLHF_RM_EXPORT_H

#include <stdint.h>
#include <stdio.h>

#include "db/rankings.h"

enum {
    EXPORT_PAIRS,
    EXPORT_HH,
    EXPORT_RANKINGS,
    EXPORT_ARENA,
    EXPORT_CSV,
    EXPORT_PAIRS_CHAT,
    EXPORT_ARENA_JSON,
    EXPORT_SFT,     /* demonstrations: TRL's prompt-completion form */
    EXPORT_SFT_CHAT /* demonstrations: TRL's conversational form, {"messages": [...]} */
};

/* -1 for an unknown name. */
int rm_export_format(const char *name);
const char *rm_export_format_name(int format);

typedef struct ExportOptions {
    int format;
    RankingFilter filter;
    double min_agreement; /* < 0: off; else only prompts two labelers or more ranked
                             whose pairwise agreement is at least this */
    double val_frac;      /* share of prompts sent to the validation output; 0: none */
    double margin;        /* > 0: pairs get TRL's "margin", margin × (score of chosen −
                             score of rejected), 0 without both 1-7 scores; 0: none */
    int keep_same_model;  /* arena: keep battles of a model against itself */
    int all_demos;        /* sft: also demonstrations another labeler flagged (or their prompt) */
    /* By a reward model's stored scores (rlhf score): rm_id > 0 turns these on. */
    int64_t rm_id;
    double min_score;  /* NAN: off; else only comparisons whose chosen answer the RM scored
                          at least this (rankings: whose best-ranked answer did) */
    double max_margin; /* NAN: off; else only prompts whose margin by the RM is at most this */
    int by_margin;     /* prompts in margin order, least sure first (else by prompt id) */
} ExportOptions;

typedef struct ExportStats {
    int64_t rankings, records, pairs, ties, ties_dropped;
    int64_t prompts, val_prompts, val_records;
    int64_t prompts_below_agreement; /* left out by min_agreement */
    int64_t same_model;              /* arena battles of a model against itself, left out */
    int64_t prompts_no_margin;       /* with rm_id: prompts left out for their margin (or none) */
    int64_t below_score;             /* with min_score: records left out for the chosen's score */
} ExportStats;

/* Writes to out (and to val for validation prompts when val_frac > 0). */
int rm_export(Db *db, const ExportOptions *o, FILE *out, FILE *val, ExportStats *st, Err *err);

/* The demonstrations people wrote (rm/export_sft.c), for --format sft and
 * sft-chat, one JSON line each:
 *   sft       prompt ("\n\nHuman: P\n\nAssistant:", as pairs writes it) and
 *             completion (" A"), TRL's prompt-completion form
 *   sft-chat  messages: the prompt's {role, content} messages, then the answer
 *             as the assistant's, TRL's conversational form
 * with prompt_id, candidate_id, author, edited_from (null: written from empty),
 * edit_distance, time_ms, simulated, flagged, split. The filter's split,
 * labeler (the author) and people/simulated choose; flagged answers (by another
 * labeler, or on a flagged prompt) are left out unless all_demos. st->records
 * counts lines, st->prompts the prompts answered. */
int rm_export_sft(Db *db, const ExportOptions *o, FILE *out, FILE *val, ExportStats *st, Err *err);

/* Prompts (ids ascending; the caller frees) ranked by two labelers or more
 * whose pairwise agreement is at least min_agreement, taken over every labeler
 * of the prompt whatever filter->labeler says: export's and train-rm's
 * --min-agreement. */
int rm_agreeing_prompts(Db *db, const RankingFilter *filter, double min_agreement,
                        int64_t **ids, int64_t *n, Err *err);

/* Whether a prompt falls in the validation share: by a hash of its text, so
 * the split is the same in every database and run. */
int rm_prompt_in_val(const char *prompt, double frac);

/* The arena export's side coin for candidates lo < hi: 1 puts hi as model_a. */
int rm_arena_coin(int64_t lo, int64_t hi);

/* Writes s as a JSON string literal (NULL as ""). */
void rm_json_string(FILE *f, const char *s);
/* Writes the n bytes at s JSON-escaped, without quotes. */
void rm_json_span(FILE *f, const char *s, size_t n);
/* Writes s as one RFC 4180 field (quoted when it holds , " CR or LF). */
void rm_csv_field(FILE *f, const char *s);

#endif
