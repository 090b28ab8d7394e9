/* The rules of simulated labelers (see rules.h): generic pieces that judge
 * any answer's form, and the demo task's rules, which know its facts and judge
 * an answer as a careful person would (samples/rules.md). */
#include "annotator/rules.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORDS 512
#define WORD_LEN 32
#define FORM_MAX_WORDS 12 /* longer answers are run-on for this task */

/* Lower-cased ASCII words of at least min_len letters or digits; other bytes
 * (punctuation, UTF-8) separate words. Returns the count (at most max). */
static int words(const char *s, int min_len, char (*out)[WORD_LEN], int max) {
    int k = 0;
    while (*s && k < max) {
        while (*s && !isalnum((unsigned char)*s))
            s++;
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
    static const char *const stop[] = {
        "the",    "and",  "for",  "are",   "you",   "how",   "why",    "who",     "was",
        "its",    "can",  "did",  "not",   "but",   "any",   "all",    "about",   "what",
        "which",  "with", "that", "this",  "these", "those", "from",   "your",    "have",
        "does",   "into", "when", "where", "would", "could", "should", "there",   "their",
        "them",   "they", "than", "then",  "give",  "tell",  "write",  "explain", "describe",
        "please", "some", "will", "were"};
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
        for (int j = 0; j < i && !dup; j++)
            dup = strcmp(pw[i], pw[j]) == 0;
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
    while (n && isspace((unsigned char)answer[n - 1]))
        n--;
    return n && strchr(".!?", answer[n - 1]) ? 1.0 : 0.0;
}

double rule_variety_score(const char *prompt, const char *answer) {
    (void)prompt;
    char aw[MAX_WORDS][WORD_LEN];
    int n = words(answer, 1, aw, MAX_WORDS), distinct = 0;
    for (int i = 0; i < n; i++) {
        int dup = 0;
        for (int j = 0; j < i && !dup; j++)
            dup = strcmp(aw[i], aw[j]) == 0;
        distinct += !dup;
    }
    return n ? (double)distinct / n : 0.0;
}

/* What can go wrong in the text of one sentence. */
typedef struct Faults {
    int broken; /* bytes a model could not turn into text (U+FFFD) */
    int leak;   /* the chat template: the model ran on into the next turn */
    int glued;  /* run-together sentences ("Paris.The") */
    int ends;   /* sentence ends ('.', '!' or '?' before a space or the end) */
} Faults;

static Faults faults(const char *answer) {
    Faults f = {strstr(answer, "\xEF\xBF\xBD") != NULL,
                strstr(answer, "Human") || strstr(answer, "Assistant"), 0, 0};
    for (const char *p = answer; *p; p++) {
        if (!strchr(".!?", *p)) continue;
        if (isalpha((unsigned char)p[1])) f.glued = 1;
        if (p[1] == '\0' || isspace((unsigned char)p[1])) f.ends++;
    }
    return f;
}

double rule_clean_score(const char *prompt, const char *answer) {
    (void)prompt;
    Faults f = faults(answer);
    double s = 1.0;
    if (f.broken) s -= 0.5;
    if (f.leak) s -= 0.4;
    if (f.glued) s -= 0.3;
    if (f.ends > 1) s -= 0.2; /* a second sentence after the answer */
    return s < 0 ? 0 : s;
}

/* The demo task: answer to a small fact (rules.h). The tables mirror
 * samples/make_corpus.py; tests/unit/test_rules.c checks every question of
 * samples/prompts.jsonl against samples/answers.jsonl. */

enum { K_NONE, K_SUM, K_COLOR, K_CAPITAL, K_OPPOSITE, K_ANIMAL, K_PLURAL };

static const char *const NUMBERS[] = {
    "zero",     "one",     "two",     "three",     "four",     "five",     "six",
    "seven",    "eight",   "nine",    "ten",       "eleven",   "twelve",   "thirteen",
    "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"};
#define N_NUMBERS (int)(sizeof NUMBERS / sizeof NUMBERS[0])
static const char *const COLORS[][2] = {
    {"sky", "blue"},     {"grass", "green"}, {"snow", "white"},    {"sun", "yellow"},
    {"coal", "black"},   {"blood", "red"},   {"banana", "yellow"}, {"leaf", "green"},
    {"cloud", "white"},  {"tomato", "red"},  {"crow", "black"},    {"ocean", "blue"},
    {"lemon", "yellow"}, {"cherry", "red"},  {"milk", "white"},    {"frog", "green"}};
static const char *const COLOR_WORDS[] = {"blue", "green", "white",  "yellow", "black", "red",
                                          "pink", "brown", "purple", "grey",   "gray",  "orange"};
static const char *const CAPITALS[][2] = {
    {"france", "paris"},   {"japan", "tokyo"},    {"italy", "rome"},     {"spain", "madrid"},
    {"egypt", "cairo"},    {"germany", "berlin"}, {"canada", "ottawa"},  {"kenya", "nairobi"},
    {"peru", "lima"},      {"norway", "oslo"},    {"greece", "athens"},  {"china", "beijing"},
    {"chile", "santiago"}, {"cuba", "havana"},    {"ireland", "dublin"}, {"russia", "moscow"}};
static const char *const OPPOSITES[][2] = {
    {"hot", "cold"},   {"big", "small"}, {"fast", "slow"}, {"happy", "sad"},
    {"light", "dark"}, {"up", "down"},   {"old", "young"}, {"early", "late"},
    {"full", "empty"}, {"soft", "hard"}, {"wet", "dry"},   {"open", "closed"},
    {"loud", "quiet"}, {"rich", "poor"}, {"high", "low"},  {"strong", "weak"}};
static const char *const ANIMALS[][2] = {
    {"dog", "barks"},  {"cat", "meows"},  {"cow", "moos"},     {"duck", "quacks"},
    {"sheep", "baas"}, {"lion", "roars"}, {"horse", "neighs"}, {"owl", "hoots"},
    {"bee", "buzzes"}, {"pig", "oinks"},  {"snake", "hisses"}, {"wolf", "howls"}};
/* singular, plural, the tempting wrong plural */
static const char *const PLURALS[][3] = {
    {"box", "boxes", "boxs"},     {"child", "children", "childs"}, {"mouse", "mice", "mouses"},
    {"city", "cities", "citys"},  {"foot", "feet", "foots"},       {"tooth", "teeth", "tooths"},
    {"bus", "buses", "buss"},     {"baby", "babies", "babys"},     {"man", "men", "mans"},
    {"woman", "women", "womans"}, {"knife", "knives", "knifes"},   {"goose", "geese", "gooses"},
    {"wife", "wives", "wifes"},   {"person", "people", "persons"}};

/* Words that make an answer impolite (samples/make_corpus.py's RUDE openings). */
static const char *const RUDE[] = {"dumb",  "stupid", "ugh",   "obviously", "whatever", "figure",
                                   "idiot", "duh",    "silly", "annoying",  "shut",     "moron"};

/* One question of the task: its kind, its subject words (for a sum, the two
 * operands) and the word of the right answer. */
typedef struct Task {
    int kind;
    const char *subject[2];
    int n_subject;
    const char *value;
} Task;

static int has_word(char (*w)[WORD_LEN], int n, const char *x) {
    for (int i = 0; i < n; i++)
        if (strcmp(w[i], x) == 0) return 1;
    return 0;
}

static int count_word(char (*w)[WORD_LEN], int n, const char *x) {
    int c = 0;
    for (int i = 0; i < n; i++)
        c += strcmp(w[i], x) == 0;
    return c;
}

/* Tables are read as flat lists of n strings, a row every cols of them: the
 * index of w in column col (counting rows), or -1. */
static int table_find(const char *const *t, int n, int cols, int col, const char *w) {
    for (int i = col; i < n; i += cols)
        if (strcmp(t[i], w) == 0) return i / cols;
    return -1;
}
#define TABLE(t) (const char *const *)(t), (int)(sizeof(t) / sizeof(const char *))
#define COLS(t) (int)(sizeof(t[0]) / sizeof(const char *))

/* The row of the first word of the prompt found in column 0, or -1. */
static int find_subject(const char *const *t, int n, int cols, char (*pw)[WORD_LEN], int np) {
    for (int i = 0; i < np; i++) {
        int r = table_find(t, n, cols, 0, pw[i]);
        if (r >= 0) return r;
    }
    return -1;
}

/* Recognises a question of the demo task; K_NONE for anything else. */
static Task task_parse(const char *prompt) {
    char pw[MAX_WORDS][WORD_LEN];
    int np = words(prompt, 1, pw, MAX_WORDS), r;
    Task t = {K_NONE, {NULL, NULL}, 0, NULL};
    if (has_word(pw, np, "plus") || has_word(pw, np, "add") || has_word(pw, np, "sum")) {
        int x[2], k = 0;
        for (int i = 0; i < np && k < 2; i++)
            if ((x[k] = table_find(TABLE(NUMBERS), 1, 0, pw[i])) >= 0) k++;
        if (k == 2 && x[0] + x[1] < N_NUMBERS)
            t = (Task){K_SUM, {NUMBERS[x[0]], NUMBERS[x[1]]}, 2, NUMBERS[x[0] + x[1]]};
    } else if (has_word(pw, np, "opposite")) {
        /* either word of a pair; the flat index names the word, its partner is the other */
        if ((r = find_subject(TABLE(OPPOSITES), 1, pw, np)) >= 0)
            t = (Task){K_OPPOSITE, {OPPOSITES[r / 2][r % 2], NULL}, 1, OPPOSITES[r / 2][1 - r % 2]};
    } else if (has_word(pw, np, "capital")) {
        if ((r = find_subject(TABLE(CAPITALS), COLS(CAPITALS), pw, np)) >= 0)
            t = (Task){K_CAPITAL, {CAPITALS[r][0], NULL}, 1, CAPITALS[r][1]};
    } else if (has_word(pw, np, "plural") ||
               (has_word(pw, np, "more") && has_word(pw, np, "than"))) {
        if ((r = find_subject(TABLE(PLURALS), COLS(PLURALS), pw, np)) >= 0)
            t = (Task){K_PLURAL, {PLURALS[r][0], NULL}, 1, PLURALS[r][1]};
    } else if (has_word(pw, np, "color") || has_word(pw, np, "colour")) {
        if ((r = find_subject(TABLE(COLORS), COLS(COLORS), pw, np)) >= 0)
            t = (Task){K_COLOR, {COLORS[r][0], NULL}, 1, COLORS[r][1]};
    } else if (has_word(pw, np, "sound") || has_word(pw, np, "say") || has_word(pw, np, "noise")) {
        if ((r = find_subject(TABLE(ANIMALS), COLS(ANIMALS), pw, np)) >= 0)
            t = (Task){K_ANIMAL, {ANIMALS[r][0], NULL}, 1, ANIMALS[r][1]};
    }
    return t;
}

/* Is w an answer (right or wrong) to some question of this kind? */
static int is_value(int kind, const char *w) {
    switch (kind) {
    case K_SUM:
        return table_find(TABLE(NUMBERS), 1, 0, w) >= 0;
    case K_COLOR:
        return table_find(TABLE(COLOR_WORDS), 1, 0, w) >= 0;
    case K_CAPITAL:
        return table_find(TABLE(CAPITALS), 2, 1, w) >= 0;
    case K_OPPOSITE:
        return table_find(TABLE(OPPOSITES), 1, 0, w) >= 0;
    case K_ANIMAL:
        return table_find(TABLE(ANIMALS), 2, 1, w) >= 0;
    case K_PLURAL:
        return table_find(TABLE(PLURALS), 1, 0, w) >= 0; /* any form */
    }
    return 0;
}

const char *rule_demo_expected(const char *prompt) {
    return task_parse(prompt).value;
}

int rule_demo_answer(const char *prompt, char *buf, size_t n) {
    Task t = task_parse(prompt);
    const char *s0 = t.subject[0], *v = t.value;
    int m;
    switch (t.kind) {
    case K_SUM:
        m = snprintf(buf, n, "%s plus %s is %s.", s0, t.subject[1], v);
        break;
    case K_COLOR:
        m = snprintf(buf, n, "The %s is %s.", s0, v);
        break;
    case K_CAPITAL:
        m = snprintf(buf, n, "The capital of %c%s is %c%s.", toupper((unsigned char)s0[0]), s0 + 1,
                     toupper((unsigned char)v[0]), v + 1);
        break;
    case K_OPPOSITE:
        m = snprintf(buf, n, "The opposite of %s is %s.", s0, v);
        break;
    case K_ANIMAL:
        m = snprintf(buf, n, "A %s %s.", s0, v);
        break;
    case K_PLURAL:
        m = snprintf(buf, n, "The plural of %s is %s.", s0, v);
        break;
    default:
        return 0;
    }
    if (m <= 0 || (size_t)m >= n) return 0;
    buf[0] = (char)toupper((unsigned char)buf[0]);
    return 1;
}

/* 1 when the answer names the right value and no other value of the same
 * kind. Words of the prompt do not count ("The opposite of hot is cold."
 * names hot only because the question did): each occurrence in the prompt
 * cancels one in the answer. */
static double task_correct(const Task *t, const char *prompt, const char *answer) {
    char pw[MAX_WORDS][WORD_LEN], aw[MAX_WORDS][WORD_LEN];
    int np = words(prompt, 1, pw, MAX_WORDS), na = words(answer, 1, aw, MAX_WORDS);
    int right = 0;
    for (int i = 0; i < na; i++) {
        if (!is_value(t->kind, aw[i])) continue;
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = strcmp(aw[i], aw[j]) == 0;
        if (seen) continue;
        int extra = count_word(aw, na, aw[i]) - count_word(pw, np, aw[i]);
        if (extra <= 0) continue;
        if (strcmp(aw[i], t->value) == 0)
            right = 1;
        else
            return 0.0;
    }
    return right ? 1.0 : 0.0;
}

double rule_correct_score(const char *prompt, const char *answer) {
    Task t = task_parse(prompt);
    return t.kind ? task_correct(&t, prompt, answer) : 0.0;
}

double rule_polite_score(const char *prompt, const char *answer) {
    (void)prompt;
    char aw[MAX_WORDS][WORD_LEN];
    int na = words(answer, 1, aw, MAX_WORDS);
    for (int i = 0; i < na; i++)
        if (table_find(TABLE(RUDE), 1, 0, aw[i]) >= 0) return 0.0;
    return 1.0;
}

double rule_on_topic_score(const char *prompt, const char *answer) {
    Task t = task_parse(prompt);
    if (!t.kind) return rule_keyword_score(prompt, answer);
    char aw[MAX_WORDS][WORD_LEN];
    int na = words(answer, 1, aw, MAX_WORDS), hit = 0;
    for (int i = 0; i < t.n_subject; i++)
        hit += has_word(aw, na, t.subject[i]);
    return (double)hit / t.n_subject;
}

double rule_form_score(const char *prompt, const char *answer) {
    (void)prompt;
    char aw[MAX_WORDS][WORD_LEN];
    int n = words(answer, 1, aw, MAX_WORDS);
    if (n == 0) return 0.0;
    Faults f = faults(answer);
    double s = 1.0;
    if (f.broken) s -= 0.5;
    if (f.leak) s -= 0.5;
    if (f.glued) s -= 0.3;
    if (f.ends > 1) s -= 0.4;
    if (!rule_fullstop_score(prompt, answer)) s -= 0.4;
    if (n > FORM_MAX_WORDS) s -= 0.5;                       /* a run-on answer */
    if (rule_variety_score(prompt, answer) < 0.6) s -= 0.3; /* "green green green" */
    return s < 0 ? 0 : s;
}

/* What a careful person checks: the fact above all, then manners, staying on
 * the question and one clean sentence. Length earns nothing: every right,
 * polite, on-topic sentence of at most FORM_MAX_WORDS words scores 1. On a
 * prompt outside the task the share of its key words stands in for the fact. */
static double demo_score(const char *prompt, const char *answer) {
    Task t = task_parse(prompt);
    double fact = t.kind ? task_correct(&t, prompt, answer) : rule_keyword_score(prompt, answer);
    return 0.6 * fact + 0.15 * rule_polite_score(prompt, answer) +
           0.1 * rule_on_topic_score(prompt, answer) + 0.15 * rule_form_score(prompt, answer);
}

static double longer_score(const char *prompt, const char *answer) {
    (void)prompt;
    size_t n = strlen(answer);
    return (double)n / (double)(n + 200);
}

/* The opposite bias to longer, in words: 8 / (8 + words), so an empty answer
 * scores 1, 1 word 0.89, 8 words 0.5, 24 words 0.25. With longer it makes two
 * labelers that conflict (the weighted trade-off of two reward models, README). */
static double terse_score(const char *prompt, const char *answer) {
    (void)prompt;
    char aw[MAX_WORDS][WORD_LEN];
    int n = words(answer, 1, aw, MAX_WORDS);
    return 8.0 / (8.0 + n);
}

static const Rule rules[] = {
    {"demo",
     "the demo task as a person judges it: 0.6 right fact + 0.15 polite + 0.1 on topic"
     " + 0.15 one clean short sentence",
     demo_score},
    {"correct", "1 when the answer states the demo task's right fact and no wrong one, else 0",
     rule_correct_score},
    {"polite", "0 when the answer is rude (\"That is a dumb question.\"), else 1",
     rule_polite_score},
    {"on-topic", "share of the question's subject words (the thing, the operands) in the answer",
     rule_on_topic_score},
    {"form", "1 for one clean sentence of at most 12 words ending in '.', '!' or '?'",
     rule_form_score},
    {"keyword", "share of the instruction's key words (3+ letters, not stop words) in the answer",
     rule_keyword_score},
    {"length", "1 for answers of 4-40 words, less for shorter or longer ones", rule_length_score},
    {"fullstop", "1 when the answer ends with '.', '!' or '?'", rule_fullstop_score},
    {"variety", "distinct words / all words (penalises repetition)", rule_variety_score},
    {"clean", "1 for one clean sentence; less for broken bytes, template leaks, run-on text",
     rule_clean_score},
    {"longer", "prefers longer answers (a deliberately biased labeler)", longer_score},
    {"terse", "prefers shorter answers whatever they say: 8 / (8 + words) (longer's opposite)",
     terse_score},
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
