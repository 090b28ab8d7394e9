/* A labeling session: the one path by which people (the TUI) and simulated
 * labelers (rules, external judges) take prompts and store rankings. It claims
 * the next prompt, shuffles its candidates per labeler (the order shown is
 * stored), mixes in gold items, and submits a RankState in one transaction. */
#ifndef RLHF_SESSION_H
#define RLHF_SESSION_H

#include <stdint.h>

#include "annotator/rank_state.h"
#include "db/assign.h"
#include "db/candidates.h"
#include "db/db.h"
#include "util/rng.h"

#define LS_MAX_FLAGS 32

typedef struct LabelItem {
    int64_t prompt_id;           /* 0: nothing left */
    char *prompt;                /* owned */
    CandidateRow *cand;          /* owned, in id order */
    int n_cand;                  /* all of the prompt's candidates */
    int n;                       /* shown (at most RS_MAX_CAND) */
    int shown[RS_MAX_CAND];      /* shown[pos] = index into cand */
    int is_gold, resumed, review;
    char *gold_expr;             /* owned; NULL unless gold */
    char why[96];                /* why the prompt came now (the claim's order); "" in queue order */
} LabelItem;

typedef struct LabelSession {
    Db *db;                      /* borrowed */
    int64_t labeler_id;
    char name[128];
    int simulated;
    char source[192];            /* stored with each ranking: "tui", "auto:demo", ... */
    AssignOpts opts;
    double gold_rate;            /* share of gold items mixed in, 0..1 */
    Rng rng;                     /* the gold dice */
    char *flags[LS_MAX_FLAGS];   /* the project's flag names, owned */
    int n_flags;
    int64_t *done; /* prompts submitted this session (owned): none may come back */
    int n_done, cap_done;
} LabelSession;

/* Labeler names show in tables and reports: 1..LS_NAME_MAX bytes of valid
 * UTF-8 without control characters (newlines, escapes). RLHF_EINVAL otherwise. */
#define LS_NAME_MAX 64
int ls_check_name(const char *name, Err *err);

/* Registers the labeler (a simulated one records rule) and reads the flag list
 * (setting "label.flags": a JSON array or a comma-separated list). */
int ls_open(LabelSession *s, Db *db, const char *name, int simulated, const char *rule,
            const char *source, const AssignOpts *o, double gold_rate, uint64_t seed, Err *err);
void ls_close(LabelSession *s);

/* The default flags when a project sets none. */
extern const char *const ls_default_flags[];

/* Parses a flag list (JSON array or comma-separated) into out (owned strings). */
int ls_parse_flags(const char *text, char **out, int max, int *n, Err *err);

/* Claims and loads the next prompt; it->prompt_id is 0 when none is left. */
int ls_next(LabelSession *s, LabelItem *it, Err *err);
/* Loads a prompt this labeler ranked before, with the state of that ranking
 * in rs (initialised here; the load is not an undo step). */
int ls_load_review(LabelSession *s, int64_t prompt_id, LabelItem *it, RankState *rs, Err *err);
void ls_item_free(LabelItem *it);

/* Stores the state as this labeler's ranking of the item (one transaction);
 * *agreement (may be NULL) gets the gold agreement, NAN for non-gold. */
int ls_submit(LabelSession *s, const LabelItem *it, const RankCore *c, long long time_ms,
              double *agreement, Err *err);

int ls_progress(LabelSession *s, LabelProgress *p, Err *err);

/* A draft: the unsubmitted state of a claimed prompt, kept when the labeler
 * quits so that the resumed screen shows it again (order, scores, flags,
 * note, none acceptable). Save without wait gives RLHF_EBUSY rather than
 * wait for another writer. Load sets *found and fills c (n must match). */
int ls_draft_save(LabelSession *s, int64_t prompt_id, const RankCore *c, int wait, Err *err);
int ls_draft_load(LabelSession *s, int64_t prompt_id, RankCore *c, int *found, Err *err);
int ls_draft_clear(LabelSession *s, int64_t prompt_id, Err *err);

#endif
