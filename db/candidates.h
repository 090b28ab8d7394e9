/* Candidates: the k answers to a prompt, from a registered model or an external
 * system. Identical texts from one model for one prompt are stored once; the
 * draws table records which candidate every sample gave (draw j of a prompt
 * and model), so a text drawn three times counts three times in evaluation. */
#ifndef RLHF_DB_CANDIDATES_H
#define RLHF_DB_CANDIDATES_H

#include <stdint.h>

#include "db/db.h"

typedef struct CandidateIn {
    int64_t prompt_id, model_id;
    const char *text;
    int64_t n_tokens;   /* < 0: unknown */
    double sum_logprob; /* NAN: unknown */
    const char *params; /* sampling parameters as JSON; may be NULL */
    int64_t seed;
    int has_seed;
    const int *tokens; /* the token ids sampled (NULL: unknown), n_ids of them */
    int n_ids;
    int finish; /* CAND_FINISH_* */
} CandidateIn;

/* A candidate's stored token ids (decimal, space-separated, as CandidateRow's
 * and RankingItemRow's come from the store; NULL: none) into a malloc'ed
 * array (*ids NULL for none); -1 out of memory. */
int db_ids_parse(const char *s, int **ids, int *n);

/* How a sampled answer ended: model/sample.h's SAMPLE_EOS, _STOP, _LENGTH. */
enum { CAND_FINISH_UNKNOWN = 0, CAND_FINISH_EOS = 1, CAND_FINISH_STOP = 2, CAND_FINISH_LENGTH = 3 };

/* *inserted says whether the text was new for (prompt, model); *id is the row either way. */
int db_candidate_insert(Db *db, const CandidateIn *c, int64_t *id, int *inserted, Err *err);

typedef struct CandidateRow {
    int64_t id, prompt_id, model_id, n_tokens, seed;
    double sum_logprob; /* NAN when unknown */
    char *model_name, *text, *params;
    int *tokens; /* the sampled ids, NULL when not stored (imported, or sampled before schema 4) */
    int n_ids;
    int finish; /* CAND_FINISH_* */
} CandidateRow;

/* All candidates of a prompt in id order; the caller frees with db_candidates_free. */
int db_candidates_of_prompt(Db *db, int64_t prompt_id, CandidateRow **rows, int *n, Err *err);
void db_candidates_free(CandidateRow *rows, int n);
/* Number of candidates of a prompt from a model (model_id 0: any model). */
int db_candidates_count(Db *db, int64_t prompt_id, int64_t model_id, int64_t *n, Err *err);

/* Records that draw `draw` of (prompt, model), sampled with seed under the
 * sampling configuration config (gen_draw_config; NULL: unknown), gave
 * candidate cand_id; a draw already recorded is left as it is. */
int db_draw_insert(Db *db, int64_t prompt_id, int64_t model_id, int draw, int64_t cand_id,
                   uint64_t seed, const char *config, Err *err);
/* Draws recorded for (prompt, model): *all of them (the next draw's number),
 * *mine those of configuration config. */
int db_draws_count(Db *db, int64_t prompt_id, int64_t model_id, const char *config, int64_t *all,
                   int64_t *mine, Err *err);
/* The candidate of each of the first max draws of (prompt, model) made under
 * config, in draw order: *ids (caller frees) gets *n <= max ids, a repeated
 * id once per draw. */
int db_draws_first(Db *db, int64_t prompt_id, int64_t model_id, const char *config, int max,
                   int64_t **ids, int *n, Err *err);

typedef struct CandidateNeedFilter {
    int64_t model_id;
    int k;              /* prompts with fewer than k candidates (draws) from model_id */
    const char *split;  /* NULL: any */
    const int64_t *ids; /* explicit prompt ids, or NULL for all */
    int n_ids;
    int64_t limit; /* 0: no limit */
    int by_draws;  /* count draws (samples) instead of distinct candidates */
    const char *config; /* with by_draws: only draws of this sampling configuration (NULL: any) */
} CandidateNeedFilter;

/* Calls fn(prompt_id, candidates it has, ctx) in id order for each prompt the
 * filter selects; a non-zero return from fn stops and is returned. */
int db_prompts_needing_candidates(Db *db, const CandidateNeedFilter *f,
                                  int (*fn)(int64_t prompt_id, int64_t have, void *ctx), void *ctx,
                                  Err *err);

typedef struct CandidateImportStats {
    int64_t read, inserted, duplicates, new_prompts;
} CandidateImportStats;

/* Imports JSONL {"prompt", "completion" | "response", "model", optional "split"}:
 * prompts are matched by text or created, models registered as external.
 * Call inside db_begin/db_commit so a failed file changes nothing. */
int db_candidates_import_file(Db *db, const char *path, const char *default_model,
                              CandidateImportStats *stats, Err *err);

#endif
