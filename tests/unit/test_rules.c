/* The demo task's rules against its data: for every question of
 * samples/prompts.jsonl, samples/answers.jsonl (written by make_corpus.py)
 * holds the canonical answer and answers of every bad kind; the rule must
 * know the fact, judge the canonical answer right and best, and every bad
 * answer worse. Also: held-out questions stay out of the training data, and
 * the rule does not pay for length. */
#include "annotator/rules.h"

#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A file of samples/, read whole (the tests run from the repository root;
 * else found next to this source file). Caller frees. */
static char *read_sample(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "samples/%s", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        const char *src = __FILE__, *cut = strstr(src, "tests/unit/");
        snprintf(path, sizeof path, "%.*ssamples/%s", cut ? (int)(cut - src) : 0, src, name);
        f = fopen(path, "rb");
    }
    cr_assert_not_null(f, "cannot open samples/%s", name);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

/* Calls fn on each JSON line of a sample file; returns the number of lines. */
static int each_line(const char *name, void (*fn)(const cJSON *, void *), void *arg) {
    char *text = read_sample(name), *save = NULL;
    int n = 0;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(line);
        cr_assert_not_null(o, "%s: line %d is not JSON", name, n + 1);
        fn(o, arg);
        cJSON_Delete(o);
        n++;
    }
    free(text);
    return n;
}

static const char *str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    cr_assert(cJSON_IsString(v), "no string '%s'", key);
    return v->valuestring;
}

static double demo(const char *p, const char *a) {
    return rule_find("demo")->score(p, a);
}

/* Every answer in the array under key: correct as expected, demo below best. */
static void check_bad(const char *p, const cJSON *o, const char *key, double want_correct,
                      double best) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, key), *a;
    cr_assert(cJSON_IsArray(arr) && cJSON_GetArraySize(arr) > 0, "%s: no '%s' answers", p, key);
    cJSON_ArrayForEach(a, arr) {
        const char *t = a->valuestring;
        cr_assert_eq(rule_correct_score(p, t), want_correct, "%s -> %s (%s): correct %g", p, t, key,
                     rule_correct_score(p, t));
        double d = demo(p, t);
        cr_assert(d >= 0 && d < best - 0.05, "%s -> %s (%s): demo %g, canonical %g", p, t, key, d,
                  best);
        if (want_correct == 0) cr_assert(d <= 0.45, "%s -> %s: a wrong answer scores %g", p, t, d);
    }
}

static void check_question(const cJSON *o, void *arg) {
    int *n_test = arg;
    const char *p = str(o, "prompt"), *good = str(o, "answer"), *value = str(o, "value");
    char want[64];
    size_t i = 0;
    for (; value[i] && i < sizeof want - 1; i++)
        want[i] = (char)tolower((unsigned char)value[i]);
    want[i] = 0;
    const char *got = rule_demo_expected(p);
    cr_assert_not_null(got, "%s: the rule does not know this question", p);
    cr_assert_str_eq(got, want, "%s: expects %s, the data says %s", p, got, want);
    cr_assert_eq(rule_correct_score(p, good), 1.0, "%s -> %s: not correct", p, good);
    cr_assert_eq(demo(p, good), 1.0, "%s -> %s: demo %g", p, good, demo(p, good));
    /* the bare value is right too, but a sentence that names the subject is better */
    cr_assert_eq(rule_correct_score(p, value), 1.0, "%s -> %s", p, value);
    cr_assert_lt(demo(p, value), 1.0);
    check_bad(p, o, "wrong", 0, 1.0);
    check_bad(p, o, "hedge", 0, 1.0);
    check_bad(p, o, "offtopic", 0, 1.0);
    check_bad(p, o, "rude", 1, 1.0);
    check_bad(p, o, "runon", 1, 1.0);
    /* right and wrong at once is wrong */
    const cJSON *wrong = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "wrong"), 0);
    char both[512];
    snprintf(both, sizeof both, "%s Or %s", good, wrong->valuestring);
    cr_assert_eq(rule_correct_score(p, both), 0.0, "%s -> %s", p, both);
    *n_test += strcmp(str(o, "split"), "test") == 0;
}

Test(rules, every_question_of_the_demo_task) {
    int n_test = 0;
    int n = each_line("answers.jsonl", check_question, &n_test);
    cr_assert_geq(n, 200);
    cr_assert(n_test >= 40 && n_test <= 60, "%d held-out questions", n_test);
}

typedef struct Split {
    const char *corpus, *sft;
    int n_train, n_test;
} Split;

static void check_prompt(const cJSON *o, void *arg) {
    Split *s = arg;
    const char *p = str(o, "prompt"), *split = str(o, "split");
    cr_assert_not_null(rule_demo_expected(p), "%s: not a question of the task", p);
    char needle[512];
    if (strcmp(split, "test") == 0) {
        s->n_test++;
        snprintf(needle, sizeof needle, "Human: %s\n", p);
        cr_assert_null(strstr(s->corpus, needle), "held-out %s is in corpus.txt", p);
        snprintf(needle, sizeof needle, "\"prompt\": \"%s\"", p);
        cr_assert_null(strstr(s->sft, needle), "held-out %s is in sft.jsonl", p);
    } else {
        cr_assert_str_eq(split, "train");
        s->n_train++;
        snprintf(needle, sizeof needle, "Human: %s\n", p);
        cr_assert_not_null(strstr(s->corpus, needle), "%s is not in corpus.txt", p);
    }
}

/* The SFT demonstrations: train questions only, and right answers for each. */
static void check_sft(const cJSON *o, void *arg) {
    int *right = arg;
    const char *p = str(o, "prompt"), *a = str(o, "completion");
    cr_assert_not_null(rule_demo_expected(p), "%s", p);
    *right += rule_correct_score(p, a) == 1.0;
}

Test(rules, held_out_questions_stay_out_of_the_training_data) {
    Split s = {read_sample("corpus.txt"), read_sample("sft.jsonl"), 0, 0};
    each_line("prompts.jsonl", check_prompt, &s);
    cr_assert(s.n_train >= 180 && s.n_test >= 40, "%d train, %d test", s.n_train, s.n_test);
    int right = 0, n = each_line("sft.jsonl", check_sft, &right);
    /* mixed quality: right about half the time, not always */
    cr_assert(right > n * 0.4 && right < n * 0.75, "%d of %d SFT answers right", right, n);
    free((char *)s.corpus);
    free((char *)s.sft);
}

Test(rules, demo_rule_judges_like_a_person) {
    const char *p = "What is three plus three?";
    cr_assert_str_eq(rule_demo_expected(p), "six");
    cr_assert_eq(rule_correct_score(p, "Three plus three is six."), 1.0);
    cr_assert_eq(rule_correct_score(p, "Three plus three is seven."), 0.0);
    cr_assert_eq(rule_correct_score(p, "Three plus three is three."), 0.0);
    cr_assert_eq(rule_correct_score(p, "I do not know."), 0.0);
    cr_assert_eq(rule_correct_score("Add two and five.", "Two plus five is seven."), 1.0);
    cr_assert_eq(rule_correct_score("What is the opposite of hot?", "The opposite of hot is hot."),
                 0.0);
    cr_assert_eq(rule_correct_score("What is the opposite of hot?", "The opposite of hot is cold."),
                 1.0);
    cr_assert_eq(
        rule_correct_score("What is the plural of mouse?", "The plural of mouse is mouses."), 0.0);
    cr_assert_eq(rule_correct_score("What is the capital of Peru?", "It is LIMA!"), 1.0);
    /* the order of what matters: a right rude or rambling answer beats a wrong polite one,
     * which beats saying nothing useful */
    const char *q = "What color is the sky?";
    double good = demo(q, "The sky is blue."),
           rude = demo(q, "That is a dumb question. The sky is blue.");
    double ramble =
        demo(q, "The sky is blue, and I could tell you a lot more about it if you had the time.");
    double wrong = demo(q, "The sky is green."), hedge = demo(q, "I am not sure.");
    cr_assert_eq(good, 1.0);
    cr_assert(good > rude && good > ramble && rude > wrong && ramble > wrong && wrong > hedge,
              "%g %g %g %g %g", good, rude, ramble, wrong, hedge);
    /* length earns nothing: padding a right answer never helps, and the biased rule does prefer it
     */
    cr_assert_geq(demo(q, "The sky is blue."),
                  demo(q, "The sky is blue, as anyone can see on a clear day."));
    cr_assert_lt(
        rule_find("longer")->score(q, "The sky is blue."),
        rule_find("longer")->score(q, "The sky is blue, as anyone can see on a clear day."));
    /* terse is longer's opposite, by words: fewer words score more */
    const Rule *terse = rule_find("terse");
    cr_assert_not_null(terse);
    cr_assert_gt(terse->score(q, "The sky is blue."),
                 terse->score(q, "The sky is blue, as anyone can see on a clear day."));
    cr_assert_float_eq(terse->score(q, "Blue."), 8.0 / 9.0, 1e-12);
    cr_assert_float_eq(terse->score(q, "The sky is blue, as anyone can see."), 0.5, 1e-12);
    cr_assert_eq(terse->score(q, ""), 1.0);
    cr_assert_eq(terse->score(q, " ... "), 1.0);
    /* a broken sample of an undertrained model */
    cr_assert_lt(demo(q, "The sky is blue.Human: What"), good);
    cr_assert_lt(demo(q, "The sky is \xEF\xBF\xBD blue."), good);
    cr_assert_lt(demo(q, "The sky is blue"), good);
    /* outside the task: no fact known, never "correct", the form still counts */
    const char *x = "Why do cats purr?";
    cr_assert_null(rule_demo_expected(x));
    cr_assert_eq(rule_correct_score(x, "Cats purr when they are happy."), 0.0);
    cr_assert_gt(demo(x, "Cats purr when they are happy."), demo(x, "I like trains"));
    cr_assert_null(rule_demo_expected("What is nine plus fifteen?")); /* past the number words */
}

Test(rules, every_rule_is_total) {
    int n;
    const Rule *t = rule_table(&n);
    const char *odd[] = {"",
                         " ",
                         "...",
                         "\xEF\xBF\xBD",
                         "plus plus",
                         "What is the opposite of?",
                         "colour colour colour sky sky"};
    for (int i = 0; i < n; i++)
        for (size_t a = 0; a < sizeof odd / sizeof odd[0]; a++)
            for (size_t b = 0; b < sizeof odd / sizeof odd[0]; b++) {
                double v = t[i].score(odd[a], odd[b]);
                cr_assert(v >= 0 && v <= 1, "%s('%s', '%s') = %g", t[i].name, odd[a], odd[b], v);
            }
    cr_assert_not_null(rule_find("correct"));
    cr_assert_not_null(rule_find("longer"));
}
