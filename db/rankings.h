/* Labelers and their rankings. A submit is one transaction holding the order,
 * ties, Likert scores, flags, note, the order shown and the time spent; a new
 * ranking of the same prompt by the same labeler becomes the current version
 * and keeps the old one (review). */
#ifndef RLHF_DB_RANKINGS_H
#define RLHF_DB_RANKINGS_H

#include <stdint.h>

#include "db/db.h"

/* Finds or creates a labeler; a simulated labeler records its rule. */
int db_labeler_ensure(Db *db, const char *name, int simulated, const char *rule, int64_t *id,
                      Err *err);

typedef struct RankingItemIn {
    int64_t candidate_id;
    int rank;          /* 1 = best; equal ranks are ties; 0 = not ranked (skipped) */
    int likert;        /* 1..7; 0 = none */
    const char *flags; /* JSON array of flag names, or NULL */
    int shown_pos;     /* 0-based position on screen; -1 unknown */
} RankingItemIn;

typedef struct RankingIn {
    int64_t prompt_id, labeler_id;
    int simulated, skipped, none_acceptable;
    const char *skip_reason, *note;
    const char *shown_order; /* JSON array of candidate ids in the order shown */
    int64_t time_spent_ms;   /* < 0: unknown */
    double gold_agreement;   /* NAN unless the prompt is a gold item */
    const char *source;      /* "tui", "auto:RULE", "import:FILE", ... */
    const char *created_at;  /* "YYYY-MM-DDTHH:MM:SS[.fff]Z" kept from an import; NULL: now */
    const RankingItemIn *items;
    int n_items;
} RankingIn;

/* Validates (candidates belong to the prompt, ranks 1..n with ties, Likert 1..7),
 * supersedes the labeler's current ranking of the prompt, marks the assignment
 * done, all in one transaction (its own, or the caller's if one is open). */
int db_ranking_submit(Db *db, const RankingIn *in, int64_t *ranking_id, Err *err);

typedef struct RankingItemRow {
    int64_t candidate_id, model_id;
    int rank; /* 0 when not ranked */
    int likert;
    int shown_pos;
    const char *flags, *text, *model_name;
    const char *tokens; /* the candidate's sampled token ids as stored ("3 17 2"; NULL: not
                         * stored), for db_ids_parse */
    int finish;         /* CAND_FINISH_* */
} RankingItemRow;

typedef struct RankingRow {
    int64_t id, prompt_id, labeler_id, supersedes, time_spent_ms;
    int version, is_current, simulated, skipped, none_acceptable;
    double gold_agreement;
    const char *labeler, *prompt, *split, *note, *skip_reason, *shown_order, *source, *created_at;
    RankingItemRow *items; /* sorted by rank, unranked last */
    int n_items;
} RankingRow;

typedef struct RankingFilter {
    const char *split;   /* NULL: any */
    const char *labeler; /* NULL: any */
    int all_versions;    /* 0: current versions only */
    int with_skipped;    /* 0: skipped rankings left out */
    int simulated;       /* -1: any, 0: people only, 1: simulated only */
    const char *since, *until; /* ISO dates (created_at >= since, < until); NULL: open */
    int64_t prompt_id;   /* 0: any */
    const char *flag;    /* non-NULL: only rankings in which some item carries this flag */
    const char *no_flag; /* non-NULL: only rankings in which no item carries this flag */
} RankingFilter;

/* A filter with the defaults above. */
RankingFilter db_ranking_filter_default(void);

/* Calls fn for each ranking (ordered by prompt, then id) with its items; rows
 * are valid only during the call; a non-zero return from fn stops and is returned. */
int db_rankings_each(Db *db, const RankingFilter *f, int (*fn)(const RankingRow *, void *),
                     void *ctx, Err *err);

#endif
