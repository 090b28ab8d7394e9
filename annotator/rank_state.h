/* The ranking of one prompt's candidates as a pure state machine: focus, the
 * order with ties, 1-7 scores, flags, a note, "none acceptable", skip, and
 * undo/redo. No I/O and no curses: the TUI and the simulated labelers drive it,
 * the unit tests check it. Candidates are named by their position on screen,
 * 0-based here and 1-based in ranking expressions ("3>1=4>2").
 *
 * The order is kept as a level per candidate: 0 = not ranked, 1 = best group,
 * 2 = next group, ... with no gaps; candidates sharing a level are tied. */
#ifndef RLHF_RANK_STATE_H
#define RLHF_RANK_STATE_H

#include <stddef.h>
#include <stdint.h>

#define RS_MAX_CAND 32
#define RS_NOTE_MAX 1024
#define RS_REASON_MAX 256
#define RS_UNDO_MAX 512

/* Everything undo restores. Plain data: copied by value. */
typedef struct RankCore {
    int n;
    unsigned char level[RS_MAX_CAND]; /* 0 unranked; 1..groups */
    unsigned char score[RS_MAX_CAND]; /* 0 none; 1..7 */
    unsigned char place[RS_MAX_CAND]; /* final places typed as digits (0 none); they
                                       * hold only while the levels are theirs */
    uint32_t flags[RS_MAX_CAND];      /* bit f: flag f of the project's list */
    int none_ok;                      /* the whole set is not acceptable */
    int skipped;
    char note[RS_NOTE_MAX];
    char skip_reason[RS_REASON_MAX];
} RankCore;

typedef struct RankState {
    RankCore cur;
    int focus;             /* 0..n-1; not undone (navigation is not an edit) */
    RankCore *undo, *redo; /* owned stacks, most recent last */
    int n_undo, n_redo;
} RankState;

/* n candidates, 1 <= n <= RS_MAX_CAND; returns 0, or -1 when n is out of range. */
int rs_init(RankState *s, int n);
void rs_free(RankState *s);

/* Every edit below returns 1 when it changed the state (and pushed an undo
 * step), 0 when there was nothing to do, -1 when the request was invalid. */
void rs_focus_move(RankState *s, int delta); /* clamps */
void rs_focus_set(RankState *s, int i);

/* Moves the focused candidate one rank level down (+1, worse) or up (-1,
 * better). A tied candidate first leaves its group (placed just below or above
 * it); an untied one swaps places with the neighbouring group. An unranked
 * candidate is appended as the new last group. */
int rs_move(RankState *s, int delta);
/* Puts the focused candidate alone at group position pos (1 = best), pushing
 * the others down; pos past the ranked ones makes it last; pos beyond the
 * number of candidates is refused (-1). */
int rs_place(RankState *s, int pos);
/* A digit as people mean it: the focused candidate's final place is pos
 * (1 = best, up to n), whatever is ranked yet. The places typed so far fill a
 * permutation; the order is theirs (candidates wanting the same place are
 * tied until one of them is given another). When the order was last changed
 * some other way, the places start from its ranks. -1 when pos is out of range. */
int rs_place_final(RankState *s, int pos);
/* The place shown beside candidate i: the typed one while the places hold,
 * else its rank (0: none). */
int rs_shown_place(const RankCore *c, int i);
/* Another candidate typed at i's place (a clash), or -1. */
int rs_place_clash(const RankCore *c, int i);
/* Ties every candidate of mask (bit i: candidate i) with the focused one
 * (which, unranked, first becomes the last group). */
int rs_tie_with(RankState *s, uint32_t mask);
/* Scores against the order: a pair ranked one above the other whose scores
 * say the opposite, or a tied pair scored 2 or more apart. 1 and the pair
 * (1-based screen positions) in *a, *b when there is one. */
int rs_scores_contradict(const RankCore *c, int *a, int *b);
/* Ties the focused candidate with the group above it, or unties it if it is
 * tied (it then becomes its own group just below). An unranked one joins the
 * last group. Invalid for the best untied candidate. */
int rs_tie_toggle(RankState *s);
int rs_unrank(RankState *s); /* removes the focused candidate from the order */
int rs_clear_order(RankState *s);
int rs_score(RankState *s, int value);    /* 1..7, 0 clears; focused candidate */
int rs_flag_toggle(RankState *s, int f);  /* 0..31 */
int rs_none_toggle(RankState *s);
int rs_set_note(RankState *s, const char *note);
int rs_skip(RankState *s, const char *reason); /* reason required (non-empty) */
/* Replaces the order by a parsed expression (see rs_expr_parse); -1 with msg
 * filled when the expression is not applicable. */
int rs_apply_expr(RankState *s, const char *expr, char *msg, size_t msgn);
/* Replaces the order by given levels (0..n); used for loading and simulated labelers. */
int rs_set_levels(RankState *s, const unsigned char *level);

int rs_undo(RankState *s); /* 1 done, 0 nothing to undo */
int rs_redo(RankState *s);

/* Queries. */
int rs_groups(const RankCore *c);  /* number of rank levels in use */
int rs_n_ranked(const RankCore *c);
/* Ready to submit: every candidate ranked (at least 2), or none acceptable, or skipped. */
int rs_complete(const RankCore *c);
/* Competition ranks (1 = best; ties share; 0 = unranked) per candidate. */
void rs_ranks(const RankCore *c, int *rank);
/* The order as an expression, e.g. "3>1=4>2" (1-based); "" when nothing is ranked. */
void rs_format(const RankCore *c, char *buf, size_t n);

/* Parsing ranking expressions: numbers 1..n separated by '>' (better than) or
 * '=' (tied), spaces ignored, each number at most once. */
enum {
    RS_EXPR_BAD = -1,  /* cannot become valid by typing more; msg says why */
    RS_EXPR_EMPTY = 0, /* nothing typed */
    RS_EXPR_OPEN = 1,  /* a valid beginning that ends in an operator */
    RS_EXPR_SOME = 2,  /* valid, some candidates left out */
    RS_EXPR_ALL = 3,   /* valid and complete */
};
/* level (may be NULL) gets the levels of a SOME/ALL expression. */
int rs_expr_parse(const char *expr, int n, unsigned char *level, char *msg, size_t msgn);
/* Every candidate's score at once, in screen order ("7524"; 0 or - leaves one
 * unscored; spaces and commas ignored), checked as it is typed: the same codes
 * (SOME: fewer than n so far, msg says how many). score (may be NULL) gets them. */
int rs_scores_parse(const char *text, int n, unsigned char *score, char *msg, size_t msgn);

/* Pairwise agreement of two rankings given as competition ranks (0 = unranked,
 * ignored): over pairs strictly ordered in gold, the fraction the labeler orders
 * the same way (a tie counts as a miss). Returns NAN when gold orders no pair. */
double rs_agreement(const int *rank, const int *gold_rank, int n);

/* Time spent on a screen without idle stretches: each gap between two keys
 * counts, except gaps longer than idle_ms, which count nothing. */
typedef struct RankClock {
    long long last_ms, spent_ms, idle_ms;
} RankClock;
void rs_clock_start(RankClock *k, long long now_ms, long long idle_ms);
void rs_clock_key(RankClock *k, long long now_ms); /* call on every key */
long long rs_clock_spent(const RankClock *k, long long now_ms);

#endif
