/* The rules of simulated labelers (see rules.h). The demo task is "answer the
 * instruction": a good answer uses the instruction's key words, is neither a
 * fragment nor a ramble, ends in a full sentence and does not repeat itself. */
#include "annotator/rules.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORDS 512
#define WORD_LEN 32

/* Lower-cased ASCII words of at least min_len letters or digits; other bytes
 * (punctuation, UTF-8) separate words. Returns the count (at most max). */
static int words(const char *s, int min_len, char (*out)[WORD_LEN], int max) {
    int k = 0;
    while (*s && k < max) {
        while (*s && !isalnum((unsigned char)*s)) s++;
        int len = 0;
        char w[WORD_LEN];
        while (*s && isalnum((unsigned char)*s)) {
            if (len < WORD_LEN - 1) w[len++] = (char)tolower((unsigned char)*s);
            s++;
        }
        w[len] = 0;
        if (len >= min_len) memcpy(out[k++], w, WORD_LEN);
    }
    return k;
}

static int is_stopword(const char *w) {
    static const char *const stop[] = {"the", "and", "for", "are", "you", "how", "why", "who",
                                       "was", "its", "can", "did", "not", "but", "any", "all",
                                       "about", "what", "which", "with", "that", "this", "these",
                                       "those", "from", "your", "have", "does", "into", "when",
                                       "where", "would", "could", "should", "there", "their",
                                       "them", "they", "than", "then", "give", "tell", "write",
                                       "explain", "describe", "please", "some", "will", "were"};
    for (size_t i = 0; i < sizeof stop / sizeof stop[0]; i++)
        if (strcmp(w, stop[i]) == 0) return 1;
    return 0;
}

double rule_keyword_score(const char *prompt, const char *answer) {
    char pw[MAX_WORDS][WORD_LEN], aw[MAX_WORDS][WORD_LEN];
    int np = words(prompt, 3, pw, MAX_WORDS), na = words(answer, 3, aw, MAX_WORDS);
    int keys = 0, hit = 0;
    for (int i = 0; i < np; i++) {
        if (is_stopword(pw[i])) continue;
        int dup = 0;
        for (int j = 0; j < i && !dup; j++) dup = strcmp(pw[i], pw[j]) == 0;
        if (dup) continue;
        keys++;
        for (int j = 0; j < na; j++)
            if (strcmp(pw[i], aw[j]) == 0) {
                hit++;
                break;
            }
    }
    return keys ? (double)hit / keys : 0.5;
}

double rule_length_score(const char *prompt, const char *answer) {
    (void)prompt;
    char aw[MAX_WORDS][WORD_LEN];
    int n = words(answer, 1, aw, MAX_WORDS);
    if (n >= 4 && n <= 40) return 1.0;
    if (n < 4) return n / 4.0;
    return n >= 120 ? 0.0 : 1.0 - (n - 40) / 80.0;
}

double rule_fullstop_score(const char *prompt, const char *answer) {
    (void)prompt;
    size_t n = strlen(answer);
    while (n && isspace((unsigned char)answer[n - 1])) n--;
    return n && strchr(".!?", answer[n - 1]) ? 1.0 : 0.0;
}

double rule_variety_score(const char *prompt, const char *answer) {
    (void)prompt;
    char aw[MAX_WORDS][WORD_LEN];
    int n = words(answer, 1, aw, MAX_WORDS), distinct = 0;
    for (int i = 0; i < n; i++) {
        int dup = 0;
        for (int j = 0; j < i && !dup; j++) dup = strcmp(aw[i], aw[j]) == 0;
        distinct += !dup;
    }
    return n ? (double)distinct / n : 0.0;
}

double rule_clean_score(const char *prompt, const char *answer) {
    (void)prompt;
    double s = 1.0;
    /* bytes a model could not turn into text */
    if (strstr(answer, "\xEF\xBF\xBD")) s -= 0.5;
    /* the chat template leaking into the answer: the model ran on into the next turn */
    if (strstr(answer, "Human") || strstr(answer, "Assistant")) s -= 0.4;
    /* run-together sentences ("Paris.The") and a second sentence after the answer */
    int ends = 0, glued = 0;
    for (const char *p = answer; *p; p++) {
        if (!strchr(".!?", *p)) continue;
        if (isalpha((unsigned char)p[1])) glued = 1;
        if (p[1] == '\0' || isspace((unsigned char)p[1])) ends++;
    }
    if (glued) s -= 0.3;
    if (ends > 1) s -= 0.2;
    return s < 0 ? 0 : s;
}

static double demo_score(const char *prompt, const char *answer) {
    return 0.35 * rule_keyword_score(prompt, answer) + 0.15 * rule_length_score(prompt, answer) +
           0.1 * rule_fullstop_score(prompt, answer) + 0.1 * rule_variety_score(prompt, answer) +
           0.3 * rule_clean_score(prompt, answer);
}

static double longer_score(const char *prompt, const char *answer) {
    (void)prompt;
    size_t n = strlen(answer);
    return (double)n / (double)(n + 200);
}

static const Rule rules[] = {
    {"demo", "the demo task: key words of the instruction, clean single sentence of 4-40 words,"
             " a full stop, no repeats",
     demo_score},
    {"keyword", "share of the instruction's key words (3+ letters, not stop words) in the answer",
     rule_keyword_score},
    {"length", "1 for answers of 4-40 words, less for shorter or longer ones", rule_length_score},
    {"fullstop", "1 when the answer ends with '.', '!' or '?'", rule_fullstop_score},
    {"variety", "distinct words / all words (penalises repetition)", rule_variety_score},
    {"clean", "1 for one clean sentence; less for broken bytes, template leaks, run-on text",
     rule_clean_score},
    {"longer", "prefers longer answers (a deliberately biased labeler)", longer_score},
};

const Rule *rule_table(int *n) {
    *n = (int)(sizeof rules / sizeof rules[0]);
    return rules;
}

const Rule *rule_find(const char *name) {
    int n;
    const Rule *t = rule_table(&n);
    for (int i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0) return &t[i];
    return NULL;
}
