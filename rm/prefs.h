/* Preference data for training: groups of one prompt and K ranked answers,
 * from the store's rankings (with export's filters) or from a pairs / HH-RLHF
 * JSONL file read without importing it (each record is a group of K = 2).
 * The reward model trains on whole groups (all K·(K−1)/2 pairs in one batch
 * element); DPO takes the pairs of each group. PrefSet owns every string.
 *
 * (Contract written before the code: the RM work implements it in prefs.c.) */
#ifndef RLHF_RM_PREFS_H
#define RLHF_RM_PREFS_H

#include <stdint.h>

#include "db/db.h"
#include "db/rankings.h"
#include "model/seq.h"
#include "model/tokenizer.h"

typedef struct PrefGroup {
    char *prompt;     /* the prompt text (for HH: the dialogue before the last answer) */
    int n;            /* answers, >= 2 */
    char **answers;   /* n texts */
    int *rank;        /* n; 1 = best, equal ranks tie */
    int *likert;      /* n; 1..7, 0 = none */
    int64_t *cand_id; /* n; 0 for file data */
    int64_t prompt_id, ranking_id; /* 0 for file data */
    int labeler;      /* index into PrefSet.labelers, -1 unknown */
    int val;          /* 1: held out (rm_prompt_in_val on the prompt text) */
    int **ids;        /* n; each answer's sampled token ids (NULL: not stored, or file data) */
    int *n_ids;       /* n */
    int *finish;      /* n; CAND_FINISH_* (0: unknown, file data) */
} PrefGroup;

typedef struct PrefSet {
    PrefGroup *g;
    int n;
    char **labelers;
    int n_labelers;
    int64_t ties_dropped; /* pairs that were ties (never trained on) */
    int64_t skipped;      /* groups left out: fewer than 2 distinct ranks, ... */
} PrefSet;

typedef struct PrefLoadOptions {
    RankingFilter filter;
    double min_agreement; /* < 0: off (as export) */
    double val_frac;      /* share of prompts held out by text hash (0: none) */
} PrefLoadOptions;

int prefs_load_store(Db *db, const PrefLoadOptions *o, PrefSet *out, Err *err);
/* Auto-detects pairs ({"prompt","chosen","rejected"}) or HH ({"chosen","rejected"}
 * transcripts); errors name FILE:LINE: field. */
int prefs_load_file(const char *path, double val_frac, PrefSet *out, Err *err);
void prefs_free(PrefSet *s);
/* Answer k of g as the model sees it in training: as PPO scores it (its
 * sampled ids, or its text ended with </s> unless it was cut at max tokens;
 * seq_encode_sampled). *used_ids (may be NULL) says whether the ids were used. */
int prefs_encode_answer(const PrefGroup *g, int k, const Tokenizer *tok, const char *template,
                        int max_len, SeqExample *out, int *used_ids, Err *err);

#endif
