/* Who ranks what: claims on prompts for labelers (people and simulated), with
 * overlap, expiry and gold items; the reads the labeling screen needs
 * (progress, prompt text, one's own past rankings for review). A claim is taken
 * inside BEGIN IMMEDIATE, so two labelers on one database never take the same
 * slot; a claim not finished by its expiry frees the slot for others. */
#ifndef RLHF_DB_ASSIGN_H
#define RLHF_DB_ASSIGN_H

#include <stdint.h>

#include "db/db.h"

typedef struct AssignOpts {
    int overlap;       /* rankings wanted per prompt (>= 1) */
    int lease_s;       /* a claim expires this many seconds after it is taken or renewed */
    int want_gold;     /* take a gold prompt if one is left for this labeler */
    const char *split; /* NULL: any split */
    int task;          /* ASSIGN_RANK or ASSIGN_WRITE: the claim's kind of work */
    int order;         /* ORDER_QUEUE (0), ORDER_RANDOM, ORDER_UNCERTAIN, ORDER_DISAGREEMENT */
    int64_t rm_id;     /* ORDER_UNCERTAIN: the RM whose stored margins order the prompts */
    uint64_t seed;     /* ORDER_RANDOM: the same seed gives the same order */
} AssignOpts;

/* In which order prompts that still need rankings are handed out (writing
 * always goes in queue order). queue: oldest first. random: a shuffle fixed by
 * the seed. uncertain: the smallest margin between the two best candidates by
 * the RM first (prompts it has not scored come last, in queue order).
 * disagreement: prompts whose current rankings contradict each other on some
 * pair first (most contradicted pairs first), and such a prompt wants one
 * labeler more than the overlap; then queue order. Claims, leases and overlap
 * are the same in every order. */
enum { ORDER_QUEUE = 0, ORDER_RANDOM, ORDER_UNCERTAIN, ORDER_DISAGREEMENT };
extern const char *const db_assign_orders[]; /* names by ORDER_*, NULL-terminated */

/* Ranking a prompt's candidates, or writing an answer to it (a demonstration).
 * A labeler's claims of one task never touch those of the other; a prompt
 * holding a labeler's own demonstration is never handed to her to rank, and a
 * prompt other labelers flagged is handed out for neither. For writing,
 * overlap counts the demonstrations a prompt should get from different people. */
enum { ASSIGN_RANK = 0, ASSIGN_WRITE = 1 };
const char *db_assign_task_name(int task);

typedef struct Claim {
    int64_t prompt_id;
    int is_gold;
    int resumed; /* the labeler's own unfinished claim, taken up again */
    char why[96]; /* why this prompt came now ("uncertain: RM margin 0.031"); "" in queue order and for gold */
} Claim;

/* Claims the next prompt for the labeler: first its own unfinished claim
 * (resume), else (when want_gold) a gold prompt it has not done, else the
 * first prompt in o->order with at least two candidates that it has never had and that
 * has fewer than `overlap` current rankings plus live claims by others.
 * Writing: the oldest prompt (candidates or none) the labeler has not
 * answered, with fewer than `overlap` demonstrations plus live write claims.
 * Gold prompts are only handed out as gold. c->prompt_id is 0 when nothing is left. */
int db_assign_claim(Db *db, int64_t labeler_id, const AssignOpts *o, Claim *c, Err *err);
/* Pushes the claim's expiry lease_s seconds into the future (the labeler's
 * claims of both tasks on the prompt: she is working on it). */
int db_assign_renew(Db *db, int64_t labeler_id, int64_t prompt_id, int lease_s, Err *err);
/* *taken = 1 when the labeler no longer holds a live claim on the prompt (it
 * expired, or was dropped) and other labelers' current rankings plus live
 * claims have reached the overlap meanwhile: a ranking stored now would be
 * one too many. Gold prompts are never taken. Call inside the submit's
 * transaction so that nobody slips in between. */
int db_assign_overtaken(Db *db, int64_t labeler_id, int64_t prompt_id, const AssignOpts *o,
                        int *taken, Err *err);
/* Gives an unfinished claim back (the prompt becomes free at once; both
 * tasks' claims of the labeler on it). */
int db_assign_release(Db *db, int64_t labeler_id, int64_t prompt_id, Err *err);
/* Ends a write claim (done or skipped) after its demonstration is stored. */
int db_assign_finish(Db *db, int64_t labeler_id, int64_t prompt_id, int task, int skipped,
                     Err *err);

typedef struct LabelProgress {
    int64_t done;      /* prompts ranked (current, not skipped) */
    int64_t skipped;
    int64_t remaining; /* prompts still claimable by this labeler (excluding gold) */
    int64_t today;     /* rankings submitted since UTC midnight */
    double mean_s;     /* mean seconds per ranked prompt; NAN when none */
    int64_t gold_n;    /* gold items ranked */
    double gold_acc;   /* mean agreement on gold; NAN when none */
    int64_t too_few;   /* prompts (of the split) with fewer than two candidates */
} LabelProgress;

int db_label_progress(Db *db, int64_t labeler_id, const AssignOpts *o, LabelProgress *p, Err *err);

/* Gold items: the correct order of a prompt's candidates as an expression over
 * their 1-based positions in id order (db_candidates_of_prompt). */
int db_gold_set(Db *db, int64_t prompt_id, const char *order_expr, const char *note, Err *err);
/* *order_expr NULL when the prompt is not gold; caller frees. */
int db_gold_get(Db *db, int64_t prompt_id, char **order_expr, Err *err);

/* The prompts this labeler has a current ranking of, oldest first (caller frees). */
int db_label_reviewable(Db *db, int64_t labeler_id, int64_t **prompt_ids, int *n, Err *err);

#endif
