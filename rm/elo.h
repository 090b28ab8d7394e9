/* Ratings from comparisons: online Elo exactly as Chatbot Arena computes it
 * (K = 4, scale 400, base 10, initial 1000, battles in a seeded shuffled
 * order) and Bradley–Terry maximum likelihood (logistic regression on pair
 * outcomes, ties counting half, Newton's method with a tiny L2 term so the
 * fit exists when a player never loses), both with bootstrap intervals.
 * Players are small integers 0..n_players-1; the caller names them. */
#ifndef RLHF_RM_ELO_H
#define RLHF_RM_ELO_H

#include <stdint.h>

#include "db/db.h"
#include "rm/compare.h"

typedef struct Battle {
    int32_t a, b;
    float score; /* for a: 1 a won, 0 b won, 0.5 tie */
} Battle;

enum { ELO_ONLINE = 0, ELO_BT = 1 };

typedef struct EloOptions {
    int method;                  /* ELO_ONLINE or ELO_BT */
    double k, scale, base, init; /* 4, 400, 10, 1000 */
    double l2;                   /* BT: penalty on θ (natural-log units); 1e-4 */
    int anchor;                  /* player pinned at `init`; -1: the mean is `init` */
    int bootstrap;               /* resamples for the interval; 0: none */
    double ci;                   /* interval mass, 0.95 */
    uint64_t seed;
} EloOptions;

EloOptions elo_options_default(void);

/* Arena's update, battles taken in the given order; rating[n_players] out. */
void elo_online(const Battle *b, int64_t n, int n_players, const EloOptions *o, double *rating);
/* Newton's method solves a dense n×n system per step: fine for the models of a
 * project (tens), refused past this many. */
#define ELO_BT_MAX_PLAYERS 2000

/* Bradley–Terry fit; rating[n_players] out, anchored as o->anchor says. */
int elo_bt(const Battle *b, int64_t n, int n_players, const EloOptions *o, double *rating,
           Err *err);

typedef struct EloTable {
    int n;
    double *rating, *lo, *hi; /* lo = hi = rating without bootstrap */
    int64_t *battles;
    double *wins; /* ties count half */
    int *rank;    /* 1 + players whose interval lies wholly above */
} EloTable;

/* Point estimate (online Elo on one seeded shuffle, or the BT fit), bootstrap
 * interval and the counts. The caller frees with elo_table_free. */
int elo_rate(const Battle *b, int64_t n, int n_players, const EloOptions *o, EloTable *t, Err *err);
void elo_table_free(EloTable *t);

/* Who the players are when rating from the store. */
enum { ELO_BY_MODEL = 0, ELO_BY_POLICY = 1 };

typedef struct EloPlayers {
    int n;
    char **name;
    int *round;     /* ancestors through models.parent_id (0 for a root) */
    char **lineage; /* "base > sft > ppo-1" */
    int *of_model;  /* per RmSet model index: player or -1 (left out) */
    int n_models;
} EloPlayers;

/* --by model: every model whose candidates were ranked is a player.
 * --by policy: only our own checkpoints (kind base, sft or policy) take part,
 * each shown with its round (depth in the parent chain) and lineage, so the
 * table follows one policy across RLHF rounds; external and imported models
 * are left out. */
int elo_players(Db *db, const RmSet *s, int by, EloPlayers *p, Err *err);
void elo_players_free(EloPlayers *p);

typedef struct BattleStats {
    int64_t pairs, ties, same_player, left_out;
} BattleStats;

/* One battle per pair of candidates of different players in every ranking;
 * model_a is the candidate with the smaller id, so the side says nothing
 * about the outcome. *out is malloc'd (caller frees). */
int elo_battles(const RmSet *s, const EloPlayers *p, Battle **out, int64_t *n, BattleStats *st,
                Err *err);

#endif
