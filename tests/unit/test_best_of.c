/* gen/best_of: the kept answer is the highest-scoring of n, every score is
 * reported, sample 0 is the plain policy's, only the kept one is stored, and
 * the derived model is registered once per (policy, n, RM). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/candidates.h"
#include "db/prompts.h"
#include "db/registry.h"
#include "gen/best_of.h"
#include "model/sample.h"
#include "tests/unit/fixtures.h"
#include "tests/unit/gen_stream.h"

/* texts "answer S" with S = seed % 1000; the score of a text is S */
static int fake_sample(void *ctx, const char *input, int n, const uint64_t *seeds, GenSample *out,
                       Err *err) {
    (void)ctx, (void)input, (void)err;
    for (int i = 0; i < n; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "answer %llu", (unsigned long long)(seeds[i] % 1000));
        out[i].text = strdup(buf);
        out[i].n_tokens = 2;
        out[i].sum_logprob = -1;
        out[i].finish = seeds[i] % 2 ? SAMPLE_LENGTH : SAMPLE_STOP; /* odd: cut at max tokens */
    }
    return 0;
}

struct scorer {
    int calls, n_cut;
    char prompt[64];
};

static int fake_score(void *ctx, const char *prompt, const char *const *answers,
                      const unsigned char *cut, int n, float *out, Err *err) {
    (void)err;
    struct scorer *s = ctx;
    s->calls++;
    snprintf(s->prompt, sizeof s->prompt, "%s", prompt);
    for (int i = 0; i < n; i++) {
        out[i] = (float)atoi(answers[i] + 7);
        /* the flag says which samples ran out of tokens (odd ones here) */
        cr_assert_eq(cut != NULL && cut[i], atoi(answers[i] + 7) % 2 == 1, "%s", answers[i]);
        s->n_cut += cut[i];
    }
    return 0;
}

struct seen {
    int calls, n, kept;
    float scores[16];
    uint64_t seeds[16];
};

static void report(void *ctx, const char *prompt, const GenSample *s, const uint64_t *seeds,
                   const float *scores, int n, int kept) {
    (void)prompt, (void)s;
    struct seen *r = ctx;
    r->calls++, r->n = n, r->kept = kept;
    memcpy(r->scores, scores, sizeof(float) * (size_t)n);
    memcpy(r->seeds, seeds, sizeof(uint64_t) * (size_t)n);
}

Test(best_of, pick_takes_the_highest_and_never_nan) {
    float a[] = {0.1f, 0.7f, 0.7f, -2};
    cr_assert_eq(best_of_pick(a, 4), 1);
    float b[] = {NAN, -5, NAN};
    cr_assert_eq(best_of_pick(b, 3), 1);
    float c[] = {3};
    cr_assert_eq(best_of_pick(c, 1), 0);
}

Test(best_of, sample_zero_is_the_plain_seed) {
    cr_assert_eq(best_of_seed(42, 0), 42);
    cr_assert_neq(best_of_seed(42, 1), 42);
    cr_assert_neq(best_of_seed(42, 1), best_of_seed(42, 2));
    cr_assert_neq(best_of_seed(42, 1), best_of_seed(43, 1));
}

Test(best_of, prompt_is_recovered_from_the_template) {
    char *p = best_of_prompt(NULL, "Human: What is two?\nAssistant:");
    cr_assert_str_eq(p, "What is two?");
    free(p);
    p = best_of_prompt("<{prompt}|{prompt}>", "<ab|ab>");
    cr_assert_str_eq(p, "ab");
    free(p);
    cr_assert_null(best_of_prompt("<{prompt}|{prompt}>", "<ab|ac>"));
    cr_assert_null(best_of_prompt(NULL, "Q: hi"));
    cr_assert_null(best_of_prompt("no placeholder", "no placeholder"));
    p = best_of_prompt("{prompt}", "");
    cr_assert_str_eq(p, "");
    free(p);
}

Test(best_of, keeps_the_highest_and_reports_all) {
    GenBackend inner = {.sample = fake_sample, .params_json = "{\"temperature\":1}"};
    struct scorer sc = {0};
    struct seen seen = {0};
    BestOf b;
    Err err = {0};
    cr_assert_eq(best_of_init(&b, &inner, 5, NULL, fake_score, &sc, "rm.ckpt", &err), 0, "%s",
                 err.msg);
    cr_assert(strstr(b.params_json, "\"best_of\":5"), "%s", b.params_json);
    cr_assert(strstr(b.params_json, "\"temperature\":1"), "%s", b.params_json);
    b.report = report, b.report_ctx = &seen;
    GenBackend g = best_of_backend(&b);
    uint64_t seeds[2] = {7, 11};
    GenSample out[2] = {{0}};
    cr_assert_eq(g.sample(g.ctx, "Human: hi\nAssistant:", 2, seeds, out, &err), 0, "%s", err.msg);
    cr_assert_str_eq(sc.prompt, "hi", "the scorer gets the prompt, not the templated input");
    cr_assert_eq(seen.calls, 2);
    cr_assert_eq(seen.n, 5);
    cr_assert_eq(seen.seeds[0], 11, "sample 0 uses the answer's own seed");
    /* the last answer: its kept text is the highest score among the five */
    float best = -1;
    for (int i = 0; i < 5; i++)
        best = seen.scores[i] > best ? seen.scores[i] : best;
    cr_assert_float_eq(seen.scores[seen.kept], best, 0);
    char want[64];
    snprintf(want, sizeof want, "answer %d", (int)best);
    cr_assert_str_eq(out[1].text, want);
    cr_assert_eq(b.st.answers, 2);
    cr_assert_eq(b.st.samples, 10);
    cr_assert_geq(b.st.sum_kept, b.st.sum_all / 5);
    cr_assert_geq(b.st.sum_kept, b.st.sum_first);
    cr_assert_gt(sc.n_cut, 0, "an answer cut at max tokens reaches the scorer as cut");
    free(out[0].text), free(out[1].text);
    /* an input that is not the template's is refused */
    cr_assert_eq(g.sample(g.ctx, "Q: hi", 1, seeds, out, &err), RLHF_EINVAL);
    best_of_free(&b);
}

static char dbpath[64], rm1[64], rm2[64];

/* a project with three test prompts, and two "reward models" (any two files
 * differ by their sha256, all best_of_register reads of them) */
static Db *setup(void) {
    snprintf(rm1, sizeof rm1, "/tmp/rlhf-bo-%d.rm1", getpid());
    snprintf(rm2, sizeof rm2, "/tmp/rlhf-bo-%d.rm2", getpid());
    FILE *f = fopen(rm1, "w");
    fputs("one", f), fclose(f);
    f = fopen(rm2, "w");
    fputs("two", f), fclose(f);
    Db *db = tmp_db(dbpath);
    Err e = {0};
    for (int i = 0; i < 3; i++) {
        char t[32];
        snprintf(t, sizeof t, "prompt %d", i);
        PromptIn p = {t, "test", NULL, NULL, NULL};
        cr_assert_eq(db_prompt_insert(db, &p, NULL, NULL, &e), 0);
    }
    return db;
}

static void teardown(Db *db) {
    rm_db(db, dbpath);
    unlink(rm1), unlink(rm2);
}

Test(best_of, registers_its_own_policy_and_stores_only_the_kept) {
    Db *db = setup();
    Err e = {0};
    int64_t pid, bid, again;
    ModelIn m = {"sft", "sft", "/dev/null", 0, NULL, NULL, NULL};
    cr_assert_eq(db_model_upsert(db, &m, &pid, &e), 0);
    char *name = NULL;
    cr_assert_eq(best_of_register(db, pid, "sft", NULL, 4, rm1, NULL, &bid, &name, &e), 0, "%s",
                 e.msg);
    cr_assert_str_eq(name, "sft+bo4");
    free(name);
    ModelRow row;
    cr_assert_eq(db_model_get(db, "sft+bo4", &row, &e), 0);
    cr_assert_str_eq(row.kind, "policy");
    cr_assert_eq(row.parent_id, pid);
    cr_assert_null(row.path, "a path would make lookups of the policy's file find it");
    cr_assert(strstr(row.config, "\"best_of\":4"), "%s", row.config);
    db_model_row_free(&row);
    /* the same again is the same model; another RM or n under the name is refused */
    cr_assert_eq(best_of_register(db, pid, "sft", NULL, 4, rm1, NULL, &again, &name, &e), 0, "%s",
                 e.msg);
    cr_assert_eq(again, bid);
    free(name);
    cr_assert_eq(best_of_register(db, pid, "sft", NULL, 4, rm2, NULL, &again, &name, &e),
                 RLHF_EINVAL);
    cr_assert(strstr(e.msg, "another name"), "%s", e.msg);
    cr_assert_eq(best_of_register(db, pid, "sft", "sft+bo4", 8, rm1, NULL, &again, &name, &e),
                 RLHF_EINVAL);

    /* through gen_run: k answers per prompt, each the best of 3 */
    GenBackend inner = {.sample = fake_sample, .params_json = "{}"};
    struct scorer sc = {0};
    BestOf b;
    cr_assert_eq(best_of_init(&b, &inner, 3, NULL, fake_score, &sc, rm1, &e), 0);
    GenBackend g = best_of_backend(&b);
    GenOptions o = {0};
    o.model_id = bid, o.k = 2, o.seed = 9;
    GenStats st;
    cr_assert_eq(gen_run(db, &o, &g, NULL, &st, &e), 0, "%s", e.msg);
    cr_assert_eq(b.st.samples, 3 * b.st.answers);
    CandidateRow *c;
    int nc;
    cr_assert_eq(db_candidates_of_prompt(db, 1, &c, &nc, &e), 0);
    cr_assert_leq(nc, 2, "the other samples are not stored");
    cr_assert_geq(nc, 1);
    cr_assert(strstr(c[0].params, "\"best_of\":3"), "%s", c[0].params);
    /* the kept one beats the plain policy's answer (sample 0) of the same seed */
    char plain[64];
    snprintf(plain, sizeof plain, "answer %llu", (unsigned long long)(gen_seed(9, 1, 0) % 1000));
    cr_assert_geq(atoi(c[0].text + 7), atoi(plain + 7));
    db_candidates_free(c, nc);
    best_of_free(&b);
    teardown(db);
}

/* texts of prompt pid's candidates, in seed order */
static char *texts_of(Db *db, int64_t pid) {
    CandidateRow *c;
    int nc;
    Err e = {0};
    cr_assert_eq(db_candidates_of_prompt(db, pid, &c, &nc, &e), 0);
    char *all = calloc(1, 4096);
    for (int i = 0; i < nc; i++)
        sprintf(all + strlen(all), "%s/%llu|", c[i].text, (unsigned long long)c[i].seed);
    db_candidates_free(c, nc);
    return all;
}

/* Over an inner backend that samples a stream, best-of-n takes several
 * prompts' answers at once (inner.max_batch / n of them) and stores what it
 * stores prompt by prompt: the same kept answers, the same statistics and
 * reports; an input the template does not match fails after those before it. */
Test(best_of, as_a_stream_stores_what_prompt_by_prompt_does) {
    char *want[3];
    BestOfStats first;
    struct seen r1 = {0}, r2 = {0};
    for (int streamed = 0; streamed < 2; streamed++) {
        Db *db = setup();
        Err e = {0};
        int64_t pid, bid;
        ModelIn m = {"sft", "sft", "/dev/null", 0, NULL, NULL, NULL};
        cr_assert_eq(db_model_upsert(db, &m, &pid, &e), 0);
        char *name = NULL;
        cr_assert_eq(best_of_register(db, pid, "sft", NULL, 3, rm1, NULL, &bid, &name, &e), 0);
        free(name);
        FakeStream fs = {.sample = fake_sample, .streams = 12};
        GenBackend inner = {.ctx = &fs, .sample = fake_stream_sample, .params_json = "{}"};
        if (streamed) inner.sample_stream = fake_stream, inner.max_batch = 12;
        struct scorer sc = {0};
        BestOf b;
        cr_assert_eq(best_of_init(&b, &inner, 3, NULL, fake_score, &sc, rm1, &e), 0);
        b.report = report, b.report_ctx = streamed ? &r2 : &r1;
        GenBackend g = best_of_backend(&b);
        cr_assert_eq(g.sample_stream != NULL, streamed);
        if (streamed) cr_assert_eq(g.max_batch, 4, "12 inner streams, 3 samples an answer");
        GenOptions o = {0};
        o.model_id = bid, o.k = 2, o.seed = 9;
        GenStats st;
        cr_assert_eq(gen_run(db, &o, &g, NULL, &st, &e), 0, "%s", e.msg);
        cr_assert_eq(st.prompts_done, 3);
        if (streamed) {
            cr_assert_eq(fs.most_prompts, 2, "two prompts' 2 x 3 samples in 12 streams");
            cr_assert_eq(fs.most_draws, 12);
            cr_assert_geq(fs.refills, 1);
        }
        for (int i = 0; i < 3; i++) {
            char *got = texts_of(db, i + 1);
            if (!streamed) want[i] = got;
            else {
                cr_assert_str_eq(got, want[i], "prompt %d", i + 1);
                free(got), free(want[i]);
            }
        }
        if (!streamed) first = b.st;
        else {
            cr_assert_eq(b.st.answers, first.answers);
            cr_assert_eq(b.st.samples, first.samples);
            cr_assert_eq(b.st.sum_kept, first.sum_kept);
            cr_assert_eq(b.st.sum_all, first.sum_all);
            cr_assert_eq(b.st.sum_first, first.sum_first);
            cr_assert_eq(r2.calls, r1.calls);
        }
        best_of_free(&b);
        teardown(db);
    }
    /* a template the inputs do not match: refused, naming the first prompt */
    Db *db = setup();
    Err e = {0};
    int64_t pid;
    ModelIn m = {"sft", "sft", "/dev/null", 0, NULL, NULL, NULL};
    cr_assert_eq(db_model_upsert(db, &m, &pid, &e), 0);
    FakeStream fs = {.sample = fake_sample, .streams = 12};
    GenBackend inner = {.ctx = &fs, .sample = fake_stream_sample, .params_json = "{}",
                        .sample_stream = fake_stream, .max_batch = 12};
    struct scorer sc = {0};
    BestOf b;
    cr_assert_eq(best_of_init(&b, &inner, 3, "Q: {prompt}\nA:", fake_score, &sc, rm1, &e), 0);
    GenBackend g = best_of_backend(&b);
    GenOptions o = {0};
    o.model_id = pid, o.k = 1, o.seed = 9, o.template = "X {prompt}";
    GenStats st;
    cr_assert_eq(gen_run(db, &o, &g, NULL, &st, &e), RLHF_EINVAL);
    cr_assert(strstr(e.msg, "prompt 1: best-of: the input does not match the template"), "%s",
              e.msg);
    cr_assert_eq(st.prompts_done, 0);
    best_of_free(&b);
    teardown(db);
}
