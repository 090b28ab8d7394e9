/* Rankings → comparisons. A ranking of K candidates gives its K·(K−1)/2 pairs,
 * ties included and marked; each consumer keeps or drops them. RmSet holds the
 * rankings of a filter compactly (no texts) for ratings and agreement; it owns
 * all its arrays (rm_set_free). */
#ifndef RLHF_RM_COMPARE_H
#define RLHF_RM_COMPARE_H

#include <stdint.h>

#include "db/rankings.h"

/* One pair of a ranking: item `better` is ranked above item `worse`, or level
 * with it when tie is set (then the lower index comes first). margin is the
 * number of places between them (rank(worse) − rank(better), 0 for a tie). */
typedef struct RmPair {
    int better, worse;
    int tie;
    int margin;
} RmPair;

/* Pairs of the ranked items (rank > 0) of one ranking, in item order (i < j);
 * out holds at least n·(n−1)/2. Returns the number written. */
int rm_pairs(const int *rank, int n, RmPair *out);
/* The same straight from a RankingRow (at most 64 items; more is refused by n < 0). */
int rm_pairs_of_row(const RankingRow *r, RmPair *out, int cap);

typedef struct RmItem {
    int64_t cand_id, model_id;
    int rank;   /* 0: not ranked */
    int likert; /* 0: none */
} RmItem;

typedef struct RmRanking {
    int64_t id, prompt_id;
    int64_t time_ms; /* < 0: unknown */
    double gold;     /* agreement with a gold item's order; NAN when not gold */
    int labeler;     /* index into RmSet.labelers */
    int simulated;
    int64_t first; /* index of the first item in RmSet.items */
    int n_items;
} RmRanking;

typedef struct RmName {
    int64_t id;
    char *name;
} RmName;

typedef struct RmSet {
    RmRanking *rankings; /* ordered by prompt, then ranking id */
    int64_t n_rankings;
    RmItem *items;
    int64_t n_items;
    RmName *labelers; /* in order of first appearance */
    int n_labelers;
    RmName *models;
    int n_models;
} RmSet;

/* Loads the rankings db_rankings_each returns for f (NULL: current, not skipped). */
int rm_set_load(Db *db, const RankingFilter *f, RmSet *out, Err *err);
void rm_set_free(RmSet *s);
/* Index of a model id in s->models, -1 when absent. */
int rm_set_model_index(const RmSet *s, int64_t model_id);

#endif
