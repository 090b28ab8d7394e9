/* Reward-model scores of candidates: one score per (candidate, reward model),
 * so any command can sort and filter candidates by a registered RM. */
#ifndef RLHF_DB_SCORES_H
#define RLHF_DB_SCORES_H

#include <stdint.h>

#include "db/db.h"

/* Stores (or replaces) the score of candidate cand_id by RM rm_id. */
int db_score_put(Db *db, int64_t cand_id, int64_t rm_id, double score, Err *err);
/* *found is 0 when the candidate has no score by that RM. */
int db_score_get(Db *db, int64_t cand_id, int64_t rm_id, double *score, int *found, Err *err);

typedef struct ScoreTodoFilter {
    int64_t unscored_by; /* > 0: only candidates without a score by this RM */
    int64_t model_id;    /* > 0: only this model's candidates */
    const char *split;   /* NULL: any */
    int64_t after_id;    /* candidate ids above this (keyset paging) */
    int limit;           /* rows at most, > 0 */
} ScoreTodoFilter;

typedef struct ScoreTodo {
    int64_t cand_id, prompt_id;
    char *prompt, *text;
    int cut; /* the sample ran out of tokens without ending (finish "length") */
} ScoreTodo;

/* Candidates with their prompt text in id order; free with db_score_todo_free
 * (*rows is NULL when there are none). */
int db_score_todo(Db *db, const ScoreTodoFilter *f, ScoreTodo **rows, int *n, Err *err);
void db_score_todo_free(ScoreTodo *rows, int n);

/* Recomputes RM rm_id's margin of every prompt with two scored candidates or
 * more (the best score minus the second best; table prompt_margins) in one
 * transaction; *n gets the number of prompts. */
int db_margins_refresh(Db *db, int64_t rm_id, int64_t *n, Err *err);
/* The newest RM with stored margins (what labeling in uncertain order uses
 * unless told otherwise); *rm_id is 0 when there are none. */
int db_margins_rm_newest(Db *db, int64_t *rm_id, Err *err);
/* RM rm_id's margins, least sure first (margin, then prompt id); at most
 * max_margin unless that is NAN. Caller frees both arrays (NULL when none). */
int db_margins_list(Db *db, int64_t rm_id, double max_margin, int64_t **prompt_ids, double **margins,
                    int64_t *n, Err *err);
/* RM rm_id's scores: st[0] how many, st[1] their mean, st[2] their standard deviation. */
int db_score_stats(Db *db, int64_t rm_id, double st[3], Err *err);
/* How many candidates RM rm_id scored. */
int db_query_scored(Db *db, int64_t rm_id, int64_t *n, Err *err);
typedef struct ScoreRow {
    int64_t prompt_id, cand_id;
    double score;
} ScoreRow;
/* Every score of RM rm_id by prompt, then candidate id (*rows the caller's
 * to free; NULL when none). */
int db_scores_list(Db *db, int64_t rm_id, ScoreRow **rows, int64_t *n, Err *err);
/* Replaces RM rm_id's margins with these n (prompt, margin, candidates
 * scored), in one transaction: what an ensemble's disagreement stores. */
int db_margins_put(Db *db, int64_t rm_id, const int64_t *prompt_ids, const double *margins,
                   const int64_t *n_scored, int64_t n, Err *err);
/* RM rm_id's margin of a prompt; *found 0 when it has none. */
int db_margin_get(Db *db, int64_t prompt_id, int64_t rm_id, double *margin, int *found, Err *err);

#endif
