/* Rules for simulated labelers. A rule scores one candidate answer to a
 * prompt with a number in [0, 1] (higher is better); a simulated labeler ranks
 * a prompt's candidates by their scores plus noise. Rules are pure functions
 * kept in one table by name; to add one, write a RuleFn in rules.c and add a
 * row to the table (samples/rules.md shows how). */
#ifndef RLHF_RULES_H
#define RLHF_RULES_H

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
double rule_variety_score(const char *prompt, const char *answer); /* distinct / all words */
double rule_clean_score(const char *prompt, const char *answer);   /* one clean sentence */

#endif
