/* Simulated labelers: rank prompts by a rule (rules.h) plus Gaussian noise, or
 * by an external judge program, through the same session path as a person.
 *
 * The judge protocol (--auto-cmd): the program is started once; for each prompt
 * it reads one JSON line on stdin,
 *   {"prompt_id": 7, "prompt": "...", "candidates": [{"id": 12, "model": "m", "text": "..."}, ...]}
 * and answers with one JSON line on stdout, either
 *   {"scores": [0.3, 0.9, ...]}        one number per candidate, higher is better
 * or
 *   {"order": "2>1=3"}  /  {"order": [2, 1, 3]}   1-based positions in "candidates"
 * optionally with "likert": [1..7 per candidate]. A judge that exits, does not
 * answer within the timeout, or answers anything else stops the run with an
 * error; the prompt it was judging is released and nothing of it is stored. */
#ifndef RLHF_AUTOLABEL_H
#define RLHF_AUTOLABEL_H

#include <stdint.h>

#include "annotator/rules.h"
#include "annotator/session.h"
#include "util/rng.h"
#include "util/words.h"

/* What a simulated labeler who knows the language takes off an answer's rule
 * score when the answer has a word none of its known words is (a misspelt or
 * invented word, "plusree"), as a careful person marks such an answer down:
 * the weight the demo rule gives one clean sentence. */
#define AUTO_UNKNOWN_WORD_COST 0.15
/* The most texts auto_rank_rule ranks at once: a ranking's RS_MAX_CAND, or both
 * sides of an evaluation (eval judges up to 32 distinct answers a side). */
#define AUTO_MAX_TEXTS (2 * RS_MAX_CAND)

/* Ranks n <= AUTO_MAX_TEXTS texts by rule score + noise * N(0, 1): level[i] (1 = best; equal
 * noisy scores tie) and a Likert score from the clean rule score. With known
 * words (NULL: none), a text with a word outside them loses
 * AUTO_UNKNOWN_WORD_COST of its rule score first. */
void auto_rank_rule(const Rule *r, const WordSet *known, const char *prompt,
                    const char *const *texts, int n, double noise, Rng *rng, unsigned char *level,
                    unsigned char *likert);

typedef struct Judge Judge;
int judge_start(const char *cmd, int timeout_ms, Judge **out, Err *err);
/* Asks the judge about one shown item; fills level and likert (0 = none) per shown position. */
int judge_rank(Judge *j, const LabelItem *it, unsigned char *level, unsigned char *likert, Err *err);
/* Closes the judge's stdin, waits briefly, then kills it. */
void judge_stop(Judge *j);

typedef struct AutoOpts {
    const Rule *rule;    /* or */
    const char *cmd;     /* an external judge */
    int timeout_ms;      /* per answer of the judge */
    double noise;
    uint64_t seed;
    int64_t limit;          /* at most this many prompts; 0: all */
    const WordSet *known;   /* with a rule: the words the labeler knows (NULL: any) */
} AutoOpts;

typedef struct AutoStats {
    int64_t ranked, gold; /* writers: answers written, and prompts skipped */
    double seconds;
} AutoStats;

/* Labels prompts until none is left, the limit is reached or an interrupt
 * (sys_interrupted) arrives. Each prompt is submitted on its own. */
int auto_run(LabelSession *s, const AutoOpts *o, AutoStats *st, Err *err);

/* A simulated writer (the session's task is ASSIGN_WRITE): for each prompt it
 * claims, it starts from the candidate its rule scores best (plus noise) and
 * edits it into the clean answer of the demo task (rule_demo_answer), stored
 * as its demonstration with the edit distance; with probability `noise` it
 * slips and only trims that candidate to its first sentence, wrong fact and
 * all. A prompt the task does not know is skipped. */
int auto_write(LabelSession *s, const AutoOpts *o, AutoStats *st, Err *err);

#endif
