/* Rules for simulated labelers. A rule scores one candidate answer to a
 * prompt with a number in [0, 1] (higher is better); a simulated labeler ranks
 * a prompt's candidates by their scores plus noise. Rules are pure functions
 * kept in one table by name; to add one, write a RuleFn in rules.c and add a
 * row to the table (samples/rules.md shows how). */
#ifndef RLHF_RULES_H
#define RLHF_RULES_H

#include <stddef.h>

typedef double (*RuleFn)(const char *prompt, const char *answer);

typedef struct Rule {
    const char *name;
    const char *summary; /* one line for --list-rules */
    RuleFn score;
} Rule;

/* The rule named name, or NULL. */
const Rule *rule_find(const char *name);
/* The whole table; *n gets its length. */
const Rule *rule_table(int *n);

/* The pieces the demo rule is made of, exported for tests and for new rules. */
double rule_keyword_score(const char *prompt, const char *answer); /* share of key words answered */
double rule_length_score(const char *prompt, const char *answer);  /* 1 for 4..40 words */
double rule_fullstop_score(const char *prompt, const char *answer); /* ends a sentence */
double rule_variety_score(const char *prompt, const char *answer);  /* distinct / all words */
double rule_clean_score(const char *prompt, const char *answer);    /* one clean sentence */

/* The demo task (samples/make_corpus.py): questions with one right answer
 * (sums, colours, capitals, opposites, animal sounds, plurals). The rule
 * "demo" mixes these; "correct" is rule_correct_score alone. */
double rule_correct_score(const char *prompt,
                          const char *answer); /* right fact, no wrong one: 1/0 */
double rule_polite_score(const char *prompt, const char *answer); /* 0 when rude */
double rule_on_topic_score(const char *prompt,
                           const char *answer);                 /* names the question's subject */
double rule_form_score(const char *prompt, const char *answer); /* one clean short sentence */
/* The word the right answer must contain (a static string, lower case), or
 * NULL when the prompt is not a question of the demo task. */
const char *rule_demo_expected(const char *prompt);
/* A clean answer to a question of the demo task, as a careful person writes
 * it ("The capital of Japan is Tokyo."): 1, or 0 when the prompt is not one. */
int rule_demo_answer(const char *prompt, char *buf, size_t n);

#endif
