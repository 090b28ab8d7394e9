/* rl/eval: Wilson and bootstrap intervals, log-probabilities independent of
 * batching, every draw weighed (a collapsed policy counted N times), KL on the
 * sampled ids at the sampling temperature, a cut answer scored unfinished, and
 * whole runs on tiny random models: answers and judge rankings stored (a rerun
 * adds nothing), every evaluated policy ranked together per prompt, best-of-n
 * never below its policy by the RM, KL zero against itself, bad input writing
 * nothing; the answers' health (distinct, template text, unknown words). */
#include <criterion/criterion.h>
#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/scores.h"
#include "db/candidates.h"
#include "db/prompts.h"
#include "db/rankings.h"
#include "db/registry.h"
#include "gen/gen.h"
#include "gen/model_backend.h"
#include "model/checkpoint.h"
#include "model/sample.h"
#include "model/seq.h"
#include "rl/eval.h"
#include "rm/rm_eval.h"
#include "tests/unit/files.h"
#include "tests/unit/fixtures.h"

static char dir[64];

/* A tiny random model with the byte tokenizer inside; reward: a reward head. */
/* with_tok: the byte tokenizer inside (vocab 259, 1) */
static void make_model(const char *name, uint64_t seed, int reward, int vocab, int with_tok) {
    Config c = {.dim = 32, .hidden_dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                .vocab_size = vocab, .seq_len = 96, .shared_classifier = 1};
    Model m;
    Err e = {0};
    cr_assert_eq(model_create(&m, &c, reward ? MODEL_HEAD_REWARD : 0, &e), 0, "%s", e.msg);
    model_init_random(&m, seed);
    if (reward)
        for (int i = 0; i < c.dim; i++)
            m.w.reward[i] = (float)((i * 7919 % 13) - 6) / 6.0f;
    Tokenizer *t = byte_tokenizer();
    unsigned char *b;
    size_t len;
    cr_assert_eq(tok_to_bytes(t, &b, &len, &e), 0);
    if (with_tok) cr_assert_eq(model_set_tokenizer(&m, b, len, &e), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cr_assert_eq(model_save(path, &m, &e), 0, "%s", e.msg);
    free(b);
    tok_free(t);
    model_free(&m);
}

static char *at(const char *name) {
    static char buf[4][128];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static Db *setup(void) {
    snprintf(dir, sizeof dir, "/tmp/rlhf-eval-%d", getpid());
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    cr_assert_eq(system(cmd), 0);
    make_model("a.ckpt", 1, 0, 259, 1);
    make_model("b.ckpt", 2, 0, 259, 1);
    make_model("rm.ckpt", 3, 1, 259, 1);
    make_model("big.ckpt", 4, 0, 300, 0);
    make_model("a-bare.ckpt", 1, 0, 259, 0);
    Db *db;
    Err e = {0};
    cr_assert_eq(db_open(at("p.db"), DB_OPEN_CREATE, &db, &e), 0, "%s", e.msg);
    const char *q[] = {"What color is the sky?", "Name a fruit.",
                       "What is two plus two?",  "Say hello.",
                       "Name an animal.",        "What is ice?"};
    for (int i = 0; i < 6; i++) {
        PromptIn p = {q[i], "test", NULL, NULL, NULL};
        cr_assert_eq(db_prompt_insert(db, &p, NULL, NULL, &e), 0);
    }
    PromptIn p = {"A training prompt.", "train", NULL, NULL, NULL};
    cr_assert_eq(db_prompt_insert(db, &p, NULL, NULL, &e), 0);
    return db;
}

static void teardown(Db *db) {
    db_close(db);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static int64_t count_candidates(Db *db) {
    int64_t n = 0;
    for (int64_t pid = 1; pid <= 7; pid++) {
        int64_t c;
        cr_assert_eq(db_candidates_count(db, pid, 0, &c, NULL), 0);
        n += c;
    }
    return n;
}

struct judged {
    int rankings, max_items;
};

static int count_ranking(const RankingRow *r, void *ctx) {
    struct judged *j = ctx;
    j->rankings++;
    if (r->n_items > j->max_items) j->max_items = r->n_items;
    cr_assert(r->simulated);
    return 0;
}

static EvalOptions options(void) {
    static const char *stops[] = {"\n\n"};
    EvalOptions o = eval_options_default();
    o.side[0].policy = at("a.ckpt");
    o.side[1].policy = at("b.ckpt");
    o.sp.max_tokens = 10;
    o.sp.stop = stops, o.sp.n_stop = 1;
    o.rule = rule_find("demo");
    return o;
}

Test(rl_eval, logprobs_do_not_depend_on_the_batch) {
    Db *db = setup();
    Model m;
    Tokenizer *t;
    Err e = {0};
    cr_assert_eq(model_load(at("a.ckpt"), &m, &e), 0, "%s", e.msg);
    cr_assert_eq(model_load_tokenizer(&m, at("a.ckpt"), NULL, &t, &e), 0, "%s", e.msg);
    const char *p[] = {"Hi?", "A longer prompt here.", "x"};
    const char *a[] = {"yes", "", "a much longer answer than the others"};
    double one[3], all[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(eval_logprobs(&m, t, NULL, &p[i], &a[i], 1, 1, &one[i], &e), 0, "%s", e.msg);
    cr_assert_eq(eval_logprobs(&m, t, NULL, p, a, 3, 2, all, &e), 0, "%s", e.msg);
    for (int i = 0; i < 3; i++) {
        cr_assert_lt(one[i], 0);
        cr_assert_float_eq(one[i], all[i], 1e-3 * fabs(one[i]));
    }
    /* the longer answer is less likely under a near-uniform random model */
    cr_assert_lt(one[2], one[0]);
    cr_assert_lt(one[0], one[1]);
    tok_free(t);
    model_free(&m);
    teardown(db);
}

Test(rl_eval, runs_stores_and_reruns_the_same) {
    Db *db = setup();
    Err e = {0};
    EvalOptions o = options();
    o.rm = at("rm.ckpt");
    EvalResult r;
    cr_assert_eq(eval_run(db, &o, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.prompts, 6, "the test split only");
    cr_assert_eq(r.side[0].answers, 6);
    cr_assert_eq(r.side[0].new_answers, 6);
    cr_assert_eq(r.rankings_new, 6);
    cr_assert_float_eq(r.side[0].win + r.side[1].win, 1, 1e-9);
    cr_assert_float_eq(r.side[0].rm_win + r.side[1].rm_win, 1, 1e-9);
    for (int k = 0; k < 2; k++) {
        cr_assert(r.side[k].win_lo <= r.side[k].win && r.side[k].win <= r.side[k].win_hi);
        cr_assert(isfinite(r.side[k].reward));
        cr_assert(r.side[k].judge_score >= 0 && r.side[k].judge_score <= 1);
        cr_assert_gt(r.side[k].length, 0);
        cr_assert(isnan(r.side[k].kl), "no sft model in the registry: no reference");
    }
    cr_assert_str_eq(r.judge, "judge:demo");
    cr_assert_eq(count_candidates(db), 12);
    struct judged j = {0};
    RankingFilter f = db_ranking_filter_default();
    f.labeler = "judge:demo";
    cr_assert_eq(db_rankings_each(db, &f, count_ranking, &j, &e), 0);
    cr_assert_eq(j.rankings, 6);
    cr_assert_eq(j.max_items, 2);
    double win = r.side[0].win, reward = r.side[1].reward;
    eval_result_free(&r);

    /* again: nothing new, the same figures */
    cr_assert_eq(eval_run(db, &o, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.side[0].new_answers + r.side[1].new_answers, 0);
    cr_assert_eq(r.rankings_new, 0);
    cr_assert_float_eq(r.side[0].win, win, 1e-12);
    cr_assert_float_eq(r.side[1].reward, reward, 1e-6);
    eval_result_free(&r);

    /* a third policy: best-of-3 of a; the judge now ranks a, b and a+bo3 together */
    o.side[1].best_of = 3;
    o.side[1].policy = at("a.ckpt");
    o.ref = at("a.ckpt");
    cr_assert_eq(eval_run(db, &o, &r, &e), 0, "%s", e.msg);
    cr_assert_str_eq(r.side[1].name, "a.ckpt+bo3");
    cr_assert_eq(r.rankings_new, 6);
    cr_assert_geq(r.side[1].rm_win, 0.5, "sample 0 of best-of is a's own answer");
    cr_assert_geq(r.side[1].reward, r.side[0].reward - 1e-6);
    cr_assert_float_eq(r.side[0].kl, 0, 1e-12);
    cr_assert_float_eq(r.side[1].kl_best_of, log(3.0) - 2.0 / 3, 1e-9);
    cr_assert(isfinite(r.side[1].kl));
    eval_result_free(&r);
    memset(&j, 0, sizeof j);
    cr_assert_eq(db_rankings_each(db, &f, count_ranking, &j, &e), 0);
    cr_assert_eq(j.rankings, 6, "one current ranking per prompt");
    cr_assert_eq(j.max_items, 3);
    teardown(db);
}

Test(rl_eval, kl_from_the_sft_ancestor) {
    Db *db = setup();
    Err e = {0};
    int64_t sft, pol;
    char real[4096];
    cr_assert(realpath(at("a.ckpt"), real));
    ModelIn a = {"sft", "sft", real, 0, NULL, NULL, NULL};
    cr_assert_eq(db_model_upsert(db, &a, &sft, &e), 0);
    cr_assert(realpath(at("b.ckpt"), real));
    ModelIn b = {"ppo", "policy", real, sft, NULL, NULL, NULL};
    cr_assert_eq(db_model_upsert(db, &b, &pol, &e), 0);
    EvalOptions o = options();
    o.side[0].policy = "sft";
    o.side[1].policy = "ppo";
    EvalResult r;
    cr_assert_eq(eval_run(db, &o, &r, &e), 0, "%s", e.msg);
    cr_assert_str_eq(r.side[1].name, "ppo");
    cr_assert_float_eq(r.side[0].kl, 0, 1e-12, "sft against itself");
    cr_assert(isfinite(r.side[1].kl) && r.side[1].kl != 0);
    cr_assert(isnan(r.side[0].reward), "no RM, no reward");
    double kl = r.side[1].kl;
    eval_result_free(&r);
    /* the same weights as the sft model, without a tokenizer: the same KL, computed */
    o.ref = at("a-bare.ckpt");
    cr_assert_eq(eval_run(db, &o, &r, &e), 0, "%s", e.msg);
    cr_assert_float_eq(r.side[0].kl, 0, 1e-9, "identical weights, computed: %g", r.side[0].kl);
    cr_assert_float_eq(r.side[1].kl, kl, 1e-9);
    eval_result_free(&r);
    teardown(db);
}

Test(rl_eval, bad_input_writes_nothing) {
    Db *db = setup();
    Err e = {0};
    EvalResult r;
    EvalOptions o = options();
    o.side[1].policy = at("missing.ckpt");
    cr_assert_neq(eval_run(db, &o, &r, &e), 0);
    cr_assert(strstr(e.msg, "--b"), "%s", e.msg);
    o = options();
    o.rm = at("a.ckpt");
    cr_assert_neq(eval_run(db, &o, &r, &e), 0);
    cr_assert(strstr(e.msg, "not a reward model"), "%s", e.msg);
    o = options();
    o.side[1].policy = at("a.ckpt");
    cr_assert_eq(eval_run(db, &o, &r, &e), RLHF_EINVAL);
    cr_assert(strstr(e.msg, "same model"), "%s", e.msg);
    o = options();
    o.side[1].best_of = 4;
    cr_assert_eq(eval_run(db, &o, &r, &e), RLHF_EINVAL);
    o = options();
    o.ref = at("big.ckpt");
    cr_assert_eq(eval_run(db, &o, &r, &e), RLHF_EINVAL);
    cr_assert(strstr(e.msg, "vocabulary"), "%s", e.msg);
    o = options();
    o.split = "nosuch";
    cr_assert_eq(eval_run(db, &o, &r, &e), RLHF_EINVAL);
    ModelRow m;
    cr_assert_eq(db_model_get(db, "a.ckpt", &m, &e), RLHF_ENOTFOUND, "nothing registered");
    cr_assert_eq(count_candidates(db), 0);
    teardown(db);
}

Test(rl_eval, the_rm_reads_the_project_template) {
    Db *db = setup();
    Err e = {0};
    RmScorer s;
    cr_assert_eq(rm_scorer_open_in(db, &s, at("rm.ckpt"), NULL, NULL, 2, &e), 0, "%s", e.msg);
    cr_assert_null(s.template, "no template anywhere: the default");
    rm_scorer_close(&s);
    cr_assert_eq(db_setting_set(db, "gen.template", "Q: {prompt}\nA:", &e), 0);
    cr_assert_eq(rm_scorer_open_in(db, &s, at("rm.ckpt"), NULL, NULL, 2, &e), 0, "%s", e.msg);
    cr_assert_str_eq(s.template, "Q: {prompt}\nA:");
    rm_scorer_close(&s);
    teardown(db);
}

/* Registers ckpt as gen does and stores, for prompts 1..6, the draws texts[d]
 * (draw d of the prompt) as candidates of it, made as eval with options()
 * would make them (its sampling configuration); returns the model id. */
static int64_t store_draws(Db *db, const char *ckpt, const char *const *texts, const int *len,
                           int n) {
    Err e = {0};
    int64_t mid;
    char *tmpl = NULL;
    EvalOptions o = options();
    GenModel g;
    cr_assert_eq(gen_model_open(&g, ckpt, NULL, &o.sp, 1, 0, INFER_WEIGHTS_F32, &e), 0, "%s",
                 e.msg);
    char *cfg = gen_draw_config(g.params_json, o.seed);
    gen_model_close(&g);
    cr_assert_eq(db_begin(db, &e), 0);
    cr_assert_eq(gen_register_model(db, ckpt, NULL, NULL, &mid, &tmpl, NULL, &e), 0, "%s", e.msg);
    for (int64_t pid = 1; pid <= 6; pid++)
        for (int d = 0; d < n; d++) {
            CandidateIn c = {pid, mid, texts[d], len[d], NAN, "{\"temperature\":1}", d, 1,
                             NULL, 0, CAND_FINISH_STOP};
            int64_t id;
            cr_assert_eq(db_candidate_insert(db, &c, &id, NULL, &e), 0, "%s", e.msg);
            cr_assert_eq(db_draw_insert(db, pid, mid, d, id, (uint64_t)d, cfg, &e), 0, "%s", e.msg);
        }
    cr_assert_eq(db_commit(db, &e), 0);
    free(tmpl);
    free(cfg);
    return mid;
}

/* A policy that always gives the same answer, against one that gives x three
 * times and y once: every figure is over the 4 x 4 draws, as if each draw
 * were a row of its own (the old count over distinct answers said 0.5). */
Test(rl_eval, a_collapsed_policy_counts_every_draw) {
    Db *db = setup();
    const char *a[] = {"a medium answer.", "a medium answer.", "a medium answer.",
                       "a medium answer."};
    const char *b[] = {"a much longer answer than that one.", "no",
                       "a much longer answer than that one.",
                       "a much longer answer than that one."};
    int la[] = {4, 4, 4, 4}, lb[] = {10, 2, 10, 10};
    store_draws(db, at("a.ckpt"), a, la, 4);
    store_draws(db, at("b.ckpt"), b, lb, 4);
    EvalOptions o = options();
    o.rule = rule_find("longer");
    o.n = 4;
    EvalResult r;
    Err e = {0};
    cr_assert_eq(eval_run(db, &o, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.side[0].new_answers + r.side[1].new_answers, 0, "every draw was stored");
    /* every draw its own row: A's 4 draws beat y (1 of B's 4 draws), lose to x */
    double expect = 0;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            expect += strlen(a[i]) > strlen(b[j]) ? 1 : strlen(a[i]) == strlen(b[j]) ? 0.5 : 0;
    expect /= 16;
    cr_assert_float_eq(expect, 0.25, 1e-12);
    cr_assert_float_eq(r.side[0].win, expect, 1e-12, "win %g", r.side[0].win);
    cr_assert_float_eq(r.side[1].win, 1 - expect, 1e-12);
    cr_assert_eq(r.side[0].answers, 24, "6 prompts x 4 samples");
    cr_assert_eq(r.side[0].distinct, 6);
    cr_assert_eq(r.side[1].answers, 24);
    cr_assert_eq(r.side[1].distinct, 12);
    cr_assert_float_eq(r.side[1].length, (3 * 10 + 2) / 4.0, 1e-12, "length over draws");
    /* every prompt alike: the bootstrap over prompts has nothing to vary */
    cr_assert_float_eq(r.side[0].win_lo, 0.25, 1e-12);
    cr_assert_float_eq(r.side[0].win_hi, 0.25, 1e-12);
    eval_result_free(&r);
    /* fewer samples: the first 2 draws (x, y) */
    o.n = 2;
    cr_assert_eq(eval_run(db, &o, &r, &e), 0, "%s", e.msg);
    cr_assert_float_eq(r.side[0].win, 0.5, 1e-12);
    cr_assert_eq(r.side[1].answers, 12);
    eval_result_free(&r);
    teardown(db);
}

/* More distinct answers than a ranking holds (20 + 20 > 32): the rule judges
 * them all, every pair counts, and no ranking is stored for those prompts. */
Test(rl_eval, more_distinct_answers_than_a_ranking_holds) {
    Db *db = setup();
    enum { N = 20 };
    char abuf[N][32], bbuf[N][48];
    const char *a[N], *b[N];
    int la[N], lb[N];
    for (int i = 0; i < N; i++) {
        snprintf(abuf[i], sizeof abuf[i], "short %d.", i);
        snprintf(bbuf[i], sizeof bbuf[i], "a much longer answer, number %d.", i);
        a[i] = abuf[i], b[i] = bbuf[i], la[i] = 2, lb[i] = 6;
    }
    store_draws(db, at("a.ckpt"), a, la, N);
    store_draws(db, at("b.ckpt"), b, lb, N);
    EvalOptions o = options();
    o.rule = rule_find("longer");
    o.n = N;
    EvalResult r;
    Err e = {0};
    cr_assert_eq(eval_run(db, &o, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.prompts_unstored, 6);
    cr_assert_eq(r.rankings_new, 0);
    cr_assert_eq(r.side[1].answers, 6 * N);
    cr_assert_float_eq(r.side[1].win, 1.0, 1e-12, "every longer answer beats every shorter one");
    eval_result_free(&r);
    teardown(db);
}

/* The answers' health over every draw: distinct answers per prompt, the share
 * of samples holding a line of the chat template ("Human:" of the default),
 * and with a word the --known-words files lack; a missing file fails first. */
Test(rl_eval, answer_health_over_every_draw) {
    Db *db = setup();
    const char *a[] = {"the cat.", "the cat.", "the cat.", "the cat."};
    const char *b[] = {"the cat.", "Human: more", "xqzt cat.", "the cat."};
    int la[] = {3, 3, 3, 3}, lb[] = {3, 3, 3, 3};
    store_draws(db, at("a.ckpt"), a, la, 4);
    store_draws(db, at("b.ckpt"), b, lb, 4);
    write_file(at("known.txt"), "The cat;");
    write_file(at("known2.txt"), "human MORE 12");
    EvalOptions o = options();
    o.n = 4;
    char known[300];
    snprintf(known, sizeof known, "%s,%s", at("known.txt"), at("known2.txt"));
    o.known_words = known;
    EvalResult r;
    Err e = {0};
    cr_assert_eq(eval_run(db, &o, &r, &e), 0, "%s", e.msg);
    cr_assert_float_eq(r.side[0].distinct_per_prompt, 1, 1e-12);
    cr_assert_float_eq(r.side[1].distinct_per_prompt, 3, 1e-12);
    cr_assert_float_eq(r.side[0].leak, 0, 1e-12);
    cr_assert_float_eq(r.side[1].leak, 0.25, 1e-12, "one draw of four: %g", r.side[1].leak);
    cr_assert_float_eq(r.side[0].unknown, 0, 1e-12);
    cr_assert_float_eq(r.side[1].unknown, 0.25, 1e-12, "xqzt: %g", r.side[1].unknown);
    eval_result_free(&r);
    /* without known words: no figure */
    o.known_words = NULL;
    cr_assert_eq(eval_run(db, &o, &r, &e), 0, "%s", e.msg);
    cr_assert(isnan(r.side[1].unknown));
    eval_result_free(&r);
    /* a missing file names itself, and nothing was written */
    snprintf(known, sizeof known, "%s,%s", at("known.txt"), at("none.txt"));
    o.known_words = known;
    int64_t before = count_candidates(db);
    cr_assert_neq(eval_run(db, &o, &r, &e), 0);
    cr_assert(strstr(e.msg, "--known-words") && strstr(e.msg, "none.txt"), "%s", e.msg);
    cr_assert_eq(count_candidates(db), before);
    teardown(db);
}

/* Template text in an answer: the lines of the template around {prompt}, a
 * stored chat template as it renders (ChatML's markers), nothing for a bare
 * {prompt}; the role word alone, without its colon, is no leak. */
Test(rl_eval, template_leaks) {
    cr_assert(eval_template_leak(NULL, "Paris.\nAssistant: Rome."));
    cr_assert(eval_template_leak(NULL, "Paris. Human: and you?"));
    cr_assert_not(eval_template_leak(NULL, "The assistant said Paris."));
    cr_assert_not(eval_template_leak(NULL, "Paris."));
    cr_assert(eval_template_leak("chat:chatml", "Paris.<|im_end|>"));
    cr_assert(eval_template_leak("chat:chatml", "Paris.\n<|im_start|>user\nmore"));
    cr_assert_not(eval_template_leak("chat:chatml", "Paris. Human: hi"));
    cr_assert(eval_template_leak("Q: {prompt}\nA:", "B. A: C."));
    cr_assert_not(eval_template_leak("{prompt}", "Human: Assistant: anything"));
}

/* log p(ids | prompt) at temperature T, by hand: one forward pass of the
 * whole sequence, log-softmax of logits / T at each answer position. */
static double logp_by_hand(const Model *m, const int *seq, int n, int n_prompt, float T) {
    RunState rs;
    Err e = {0};
    cr_assert_eq(model_runstate_create(&rs, &m->cfg, 1, n, &e), 0, "%s", e.msg);
    cr_assert_eq(model_forward(m, &rs, seq, 1, n, MODEL_FWD_LOGITS, &e), 0, "%s", e.msg);
    int V = m->cfg.vocab_size;
    double lp = 0;
    for (int t = n_prompt - 1; t < n - 1; t++) {
        const float *z = rs.logits + (size_t)t * V;
        double mx = -INFINITY, sum = 0;
        for (int v = 0; v < V; v++)
            mx = fmax(mx, z[v] / T);
        for (int v = 0; v < V; v++)
            sum += exp(z[v] / T - mx);
        lp += z[seq[t + 1]] / T - mx - log(sum);
    }
    model_runstate_free(&rs);
    return lp;
}

/* One text value of a query on the project, read beside eval as another
 * process would (caller frees). */
static char *draws_sql_text(const char *fmt, long long arg) {
    char sql[512];
    snprintf(sql, sizeof sql, fmt, arg);
    char path[600];
    snprintf(path, sizeof path, "%s/p.db", dir); /* not at(): its buffers hold the options' paths */
    sqlite3 *h;
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_open(path, &h), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(h));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sql);
    const unsigned char *t = sqlite3_column_text(st, 0);
    char *out = strdup(t ? (const char *)t : "");
    sqlite3_finalize(st);
    sqlite3_close(h);
    return out;
}

static long long draws_of(int64_t model_id) {
    char *s = draws_sql_text("SELECT count(*) FROM draws WHERE model_id = %lld", (long long)model_id);
    long long n = atoll(s);
    free(s);
    return n;
}

/* A rerun reuses only the draws made as it would make them: the same sampling
 * and seed reuse every one (the same figures), another temperature or seed
 * draws its own instead of judging the old ones under its name. */
Test(rl_eval, draws_reused_only_under_the_same_sampling) {
    Db *db = setup();
    EvalOptions o = options();
    o.n = 2;
    EvalResult r;
    Err e = {0};
    ModelRow mr;
    cr_assert_eq(eval_run(db, &o, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(db_model_get(db, "a.ckpt", &mr, &e), 0);
    long long n1 = draws_of(mr.id);
    cr_assert_eq(n1, 2 * r.prompts);
    double win1 = r.side[1].win;
    eval_result_free(&r);
    cr_assert_eq(eval_run(db, &o, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(draws_of(mr.id), n1, "the same sampling: every draw reused");
    cr_assert_eq(r.side[1].win, win1);
    eval_result_free(&r);
    o.sp.temperature = 0.7f;
    cr_assert_eq(eval_run(db, &o, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(draws_of(mr.id), 2 * n1, "another temperature: its own draws");
    char *cfg = draws_sql_text("SELECT config FROM draws WHERE model_id = %lld ORDER BY draw DESC"
                               " LIMIT 1", (long long)mr.id);
    cr_assert(strstr(cfg, "\"temperature\":0.7"), "%s", cfg);
    free(cfg);
    eval_result_free(&r);
    o.seed = 2;
    cr_assert_eq(eval_run(db, &o, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(draws_of(mr.id), 3 * n1, "another seed: its own draws");
    eval_result_free(&r);
    cr_assert_eq(eval_run(db, &o, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(draws_of(mr.id), 3 * n1);
    eval_result_free(&r);
    db_model_row_free(&mr);
    db_close(db);
}

/* Eval's KL is over the ids the policy sampled (a stop string's tokens in,
 * </s> only when sampled), at the sampling temperature: computed here by hand
 * from the stored ids and draws. */
Test(rl_eval, kl_on_the_sampled_ids_at_the_temperature) {
    Db *db = setup();
    static const char *stops[] = {"e"};
    EvalOptions o = options();
    o.sp.temperature = 0.7f;
    o.sp.stop = stops, o.sp.n_stop = 1;
    o.sp.max_tokens = 8;
    o.n = 3;
    o.ref = at("b.ckpt");
    EvalResult r;
    Err e = {0};
    cr_assert_eq(eval_run(db, &o, &r, &e), 0, "%s", e.msg);
    Model ma, mb;
    Tokenizer *tok;
    cr_assert_eq(model_load(at("a.ckpt"), &ma, &e), 0);
    cr_assert_eq(model_load(at("b.ckpt"), &mb, &e), 0);
    cr_assert_eq(model_load_tokenizer(&ma, at("a.ckpt"), NULL, &tok, &e), 0);
    ModelRow mr;
    cr_assert_eq(db_model_get(db, "a.ckpt", &mr, &e), 0);
    double kl = 0;
    int stopped = 0, eos = 0;
    for (int64_t pid = 1; pid <= 6; pid++) {
        CandidateRow *rows;
        int nr, nd;
        int64_t *ids;
        char *text = NULL, *input = NULL;
        cr_assert_eq(db_prompt_text(db, pid, &text, &e), 0);
        cr_assert_eq(seq_render(NULL, text, &input, &e), 0);
        int prompt[512], np = 0;
        cr_assert_eq(tok_encode_prompt(tok, input, strlen(input), prompt, 512, &np, &e), 0);
        cr_assert_eq(db_candidates_of_prompt(db, pid, &rows, &nr, &e), 0);
        char *cfg = draws_sql_text("SELECT config FROM draws WHERE model_id = %lld LIMIT 1",
                                   (long long)mr.id);
        cr_assert(strstr(cfg, "\"temperature\":0.7") && strstr(cfg, "\"seed\":1}"), "%s", cfg);
        cr_assert_eq(db_draws_first(db, pid, mr.id, cfg, 3, &ids, &nd, &e), 0);
        free(cfg);
        cr_assert_eq(nd, 3);
        double s = 0;
        for (int d = 0; d < nd; d++) {
            const CandidateRow *c = NULL;
            for (int j = 0; j < nr; j++)
                if (rows[j].id == ids[d]) c = &rows[j];
            cr_assert_not_null(c);
            cr_assert_not_null(c->tokens, "the sampled ids are stored");
            int last = c->tokens[c->n_ids - 1];
            cr_assert_eq(last == tok_eos(tok), c->finish == CAND_FINISH_EOS,
                         "</s> in the ids only when it was sampled");
            stopped += c->finish == CAND_FINISH_STOP, eos += c->finish == CAND_FINISH_EOS;
            int seq[600];
            memcpy(seq, prompt, sizeof(int) * (size_t)np);
            memcpy(seq + np, c->tokens, sizeof(int) * (size_t)c->n_ids);
            s += logp_by_hand(&ma, seq, np + c->n_ids, np, 0.7f) -
                 logp_by_hand(&mb, seq, np + c->n_ids, np, 0.7f);
        }
        kl += s / nd;
        free(ids), free(text), free(input);
        db_candidates_free(rows, nr);
    }
    kl /= 6;
    cr_assert_gt(stopped, 0, "some answers end at the stop string");
    cr_assert_float_eq(r.side[0].kl_policy, kl, 1e-4 * fabs(kl) + 1e-5, "eval %g, by hand %g",
                       r.side[0].kl_policy, kl);
    db_model_row_free(&mr);
    tok_free(tok);
    model_free(&ma), model_free(&mb);
    eval_result_free(&r);
    teardown(db);
}

/* An answer cut at max tokens is scored as PPO scores it: without </s>. */
Test(rl_eval, a_cut_answer_is_scored_unfinished) {
    Db *db = setup();
    Err e = {0};
    RmScorer s;
    cr_assert_eq(rm_scorer_open(&s, at("rm.ckpt"), NULL, NULL, 4, &e), 0, "%s", e.msg);
    const char *answers[] = {"an answer", "an answer"};
    unsigned char cut[] = {0, 1};
    float sc[2], plain;
    cr_assert_eq(eval_rm_score(&s, "Hi?", answers, cut, 2, sc, &e), 0, "%s", e.msg);
    SeqExample ex;
    cr_assert_eq(seq_encode(s.tok, NULL, "Hi?", "an answer", 0, s.m.cfg.seq_len, &ex, &e), 0);
    cr_assert_eq(rm_score_examples(&s, &ex, 1, &plain, &e), 0);
    seq_example_free(&ex);
    cr_assert_float_eq(sc[1], plain, 1e-5, "no </s> appended");
    cr_assert(fabsf(sc[0] - sc[1]) > 1e-6, "the finished one ends with </s>");
    rm_scorer_close(&s);
    teardown(db);
}

/* The interval is over prompts: reproducible, and wider than Wilson's over
 * pairs when a prompt's pairs go together. */
Test(rl_eval, bootstrap_over_prompts) {
    double c[10], p[10], lo, hi, lo2, hi2;
    for (int i = 0; i < 10; i++)
        c[i] = i < 5 ? 6 : 0, p[i] = 6; /* K = 4: 6 pairs a prompt, all right or all wrong */
    rm_bootstrap(c, p, 10, 2000, 7, &lo, &hi);
    rm_bootstrap(c, p, 10, 2000, 7, &lo2, &hi2);
    cr_assert(lo == lo2 && hi == hi2, "a fixed seed");
    cr_assert(lo < 0.5 && 0.5 < hi);
    double wlo, whi;
    rm_wilson(30, 60, 1.96, &wlo, &whi);
    cr_assert_gt(hi - lo, 1.5 * (whi - wlo), "bootstrap [%g, %g], Wilson [%g, %g]", lo, hi, wlo,
                 whi);
    rm_bootstrap(c, p, 0, 2000, 7, &lo, &hi);
    cr_assert(isnan(lo) && isnan(hi));
}

/* eval-rm's interval resamples prompts, a prompt's pairs together: 10 prompts
 * of K = 4 (6 pairs each, two labelers on each), the RM right on every pair of
 * half of them and wrong on the rest, is 50% with a wide interval, wider than
 * Wilson's over the 120 pairs taken as independent. */
Test(rl_eval, rm_accuracy_interval_is_over_prompts) {
    PrefGroup g[20];
    char *answers[4] = {"a", "b", "c", "d"};
    int rank[4] = {1, 2, 3, 4};
    int64_t first[20];
    float rewards[80];
    for (int i = 0; i < 20; i++) {
        g[i] = (PrefGroup){.prompt = "q", .n = 4, .answers = answers, .rank = rank,
                           .prompt_id = 1 + i / 2, .labeler = i % 2};
        first[i] = 4 * i;
        for (int a = 0; a < 4; a++)
            rewards[4 * i + a] = (float)(i / 2 < 5 ? 4 - a : a); /* right, or reversed */
    }
    char *labelers[2] = {"l1", "l2"};
    PrefSet s = {.g = g, .n = 20, .labelers = labelers, .n_labelers = 2};
    RmEvalReport r;
    Err e = {0};
    cr_assert_eq(rm_eval_report(&s, first, rewards, NULL, NULL, NULL, 0, &r, &e), 0, "%s", e.msg);
    cr_assert_eq(r.all.pairs, 120);
    cr_assert_float_eq(r.all.acc, 0.5, 1e-12);
    cr_assert(r.all.boot, "the bootstrap's interval");
    cr_assert(r.all.lo < 0.5 && r.all.hi > 0.5);
    cr_assert_gt(r.all.hi - r.all.lo, 1.5 * (r.all.whi - r.all.wlo), "[%g, %g] vs Wilson [%g, %g]",
                 r.all.lo, r.all.hi, r.all.wlo, r.all.whi);
    cr_assert(r.by_labeler[0].boot && r.by_labeler[0].hi - r.by_labeler[0].lo > 0.3);
    rm_eval_report_free(&r);
}

/* Several reward models: the weighted sum of normalised rewards and Llama 2's
 * safety gate equal the hand computation from each RM's own scores. */
Test(rl_eval, combined_rewards_equal_the_hand_computation) {
    Db *db = setup();
    make_model("rm2.ckpt", 5, 1, 259, 1);
    Err e = {0};
    const char *p[] = {"Name a fruit.", "Say hello.", "What is ice?", "Name an animal."};
    const char *a[] = {"An apple.", "Hello there, friend!", "Frozen water.", "A cat"};
    float r[2][4];
    const char *rm[2] = {"rm.ckpt", "rm2.ckpt"};
    for (int k = 0; k < 2; k++) {
        RmScorer s;
        cr_assert_eq(rm_scorer_open(&s, at(rm[k]), NULL, NULL, 4, &e), 0, "%s", e.msg);
        cr_assert_eq(rm_score_texts(&s, p, a, 4, r[k], &e), 0, "%s", e.msg);
        rm_scorer_close(&s);
    }
    char spec[300];
    snprintf(spec, sizeof spec, "%s*0.7+%s*0.3", at("rm.ckpt"), at("rm2.ckpt"));
    RmScorer s;
    cr_assert_neq(rm_scorer_open_in(NULL, &s, spec, NULL, NULL, 4, &e), 0, "a combination needs the project");
    cr_assert_eq(rm_scorer_open_in(db, &s, spec, NULL, NULL, 4, &e), RLHF_ENOTFOUND, "unscored RMs");
    cr_assert(strstr(e.msg, "rlhf score"), "%s", e.msg);
    /* each RM's stored scores: rm 1, 2, 3, 4 (mean 2.5, sd sqrt(1.25)); rm2 0, 0, 2, 2 (mean 1, sd 1) */
    int64_t mid, cid[4], rid[2];
    cr_assert_eq(db_model_ensure_external(db, "m", &mid, &e), 0);
    for (int i = 0; i < 4; i++) {
        CandidateIn c = {1, mid, a[i], -1, NAN, NULL, 0, 0, NULL, 0, 0};
        cr_assert_eq(db_candidate_insert(db, &c, &cid[i], NULL, &e), 0, "%s", e.msg);
    }
    double st[2][4] = {{1, 2, 3, 4}, {0, 0, 2, 2}};
    for (int k = 0; k < 2; k++) {
        char real[PATH_MAX];
        cr_assert(realpath(at(rm[k]), real));
        ModelIn mi = {real, "rm", real, 0, NULL, NULL, NULL};
        cr_assert_eq(db_model_upsert(db, &mi, &rid[k], &e), 0, "%s", e.msg);
        for (int i = 0; i < 4; i++) cr_assert_eq(db_score_put(db, cid[i], rid[k], st[k][i], &e), 0);
    }
    double m[2] = {2.5, 1}, sd[2] = {sqrt(1.25), 1};
    cr_assert_eq(rm_scorer_open_in(db, &s, spec, NULL, NULL, 4, &e), 0, "%s", e.msg);
    float out[4];
    cr_assert_eq(rm_score_texts(&s, p, a, 4, out, &e), 0, "%s", e.msg);
    rm_scorer_close(&s);
    for (int i = 0; i < 4; i++) {
        double want = 0.7 * (r[0][i] - m[0]) / sd[0] + 0.3 * (r[1][i] - m[1]) / sd[1];
        cr_assert(fabs(out[i] - want) < 1e-4, "sum %d: %g, by hand %g", i, out[i], want);
    }
    /* the gate: rm2's z when below the threshold, rm's otherwise */
    double z2[4], thr = 0;
    for (int i = 0; i < 4; i++) z2[i] = (r[1][i] - m[1]) / sd[1], thr += z2[i] / 4;
    snprintf(spec, sizeof spec, "%s+%s!%.9g", at("rm.ckpt"), at("rm2.ckpt"), thr);
    cr_assert_eq(rm_scorer_open_in(db, &s, spec, NULL, NULL, 4, &e), 0, "%s", e.msg);
    cr_assert_eq(rm_score_texts(&s, p, a, 4, out, &e), 0, "%s", e.msg);
    rm_scorer_close(&s);
    int gated = 0;
    for (int i = 0; i < 4; i++) {
        double want = z2[i] < (float)thr ? z2[i] : (r[0][i] - m[0]) / sd[0];
        gated += z2[i] < (float)thr;
        cr_assert(fabs(out[i] - want) < 1e-4, "gate %d: %g, by hand %g", i, out[i], want);
    }
    cr_assert(gated > 0 && gated < 4, "both sides of the gate are tried (%d gated)", gated);
    /* the gate by the prompt's tag: with a threshold no score reaches, a prompt
     * tagged "safety" (or the spec's @TAG) gets rm2's z, the others rm's */
    int64_t hello = 0, ice = 0;
    cr_assert_eq(db_prompt_find(db, "Say hello.", &hello, &e), 0);
    cr_assert_eq(db_prompt_find(db, "What is ice?", &ice, &e), 0);
    cr_assert_eq(db_prompt_tag(db, hello, "safety", 1, &e), 0, "%s", e.msg);
    cr_assert_eq(db_prompt_tag(db, ice, "redteam", 1, &e), 0, "%s", e.msg);
    cr_assert_eq(db_prompt_tag(db, 999, "safety", 1, &e), RLHF_ENOTFOUND);
    cr_assert_eq(db_prompt_tag(db, hello, "no tag", 1, &e), RLHF_EINVAL);
    cr_assert_eq(db_prompt_tag(db, hello, "redteam", 0, &e), RLHF_ENOTFOUND,
                 "untag what is not there");
    cr_assert(strstr(e.msg, "has no tag 'redteam'"), "%s", e.msg);
    const char *tags[] = {"", "@redteam"};
    const char *want_tagged[] = {"Say hello.", "What is ice?"};
    for (int v = 0; v < 2; v++) {
        snprintf(spec, sizeof spec, "%s+%s!-1e30%s", at("rm.ckpt"), at("rm2.ckpt"), tags[v]);
        cr_assert_eq(rm_scorer_open_in(db, &s, spec, NULL, NULL, 4, &e), 0, "%s", e.msg);
        cr_assert_eq(s.n_gated, 1);
        cr_assert_eq(rm_score_texts(&s, p, a, 4, out, &e), 0, "%s", e.msg);
        for (int i = 0; i < 4; i++) {
            int tagged = strcmp(p[i], want_tagged[v]) == 0;
            double want = tagged ? z2[i] : (r[0][i] - m[0]) / sd[0];
            cr_assert(fabs(out[i] - want) < 1e-4, "tag %s, %d: %g, by hand %g", tags[v], i, out[i],
                      want);
            cr_assert(fabs(z2[i] - (r[0][i] - m[0]) / sd[0]) > 1e-3,
                      "the two RMs tell the branches apart");
        }
        /* as examples (a trainer's rollouts) the prompt is known by its ids; cut from
         * the left to fit, it is not (its tail may be another prompt's) */
        SeqExample ex;
        const char *tp = want_tagged[v];
        int ai = v ? 2 : 1;
        float ex_out, part_r[2];
        cr_assert_eq(seq_encode(s.tok, s.template, tp, a[ai], 1, s.m.cfg.seq_len, &ex, &e), 0);
        cr_assert_eq(ex.cut, 0);
        int full = ex.n, np = ex.n_prompt;
        cr_assert_eq(rm_score_examples(&s, &ex, 1, &ex_out, &e), 0, "%s", e.msg);
        cr_assert(fabs(ex_out - z2[ai]) < 1e-4, "by ids: %g vs %g", ex_out, z2[ai]);
        seq_example_free(&ex);
        cr_assert_eq(seq_encode(s.tok, s.template, tp, a[ai], 1, full - np / 2, &ex, &e), 0);
        cr_assert_gt(ex.cut, 0);
        cr_assert_eq(rm_score_examples(&s, &ex, 1, &ex_out, &e), 0, "%s", e.msg);
        for (int k = 0; k < 2; k++) {
            RmScorer *part = k ? &s.more[0] : &s;
            cr_assert_eq(rm_score_model(&part->m, &part->rs, part->tokens, part->lens, 1, &ex, 1,
                                        &part_r[k], &e),
                         0);
        }
        cr_assert(fabs(ex_out - (part_r[0] - m[0]) / sd[0]) < 1e-4, "cut: %g vs %g", ex_out,
                  (part_r[0] - m[0]) / sd[0]);
        seq_example_free(&ex);
        rm_scorer_close(&s);
    }
    snprintf(spec, sizeof spec, "%s+%s!0@nobody", at("rm.ckpt"), at("rm2.ckpt"));
    cr_assert_eq(rm_scorer_open_in(db, &s, spec, NULL, NULL, 4, &e), RLHF_ENOTFOUND,
                 "a tag no prompt has");
    cr_assert(strstr(e.msg, "no prompt is tagged 'nobody'"), "%s", e.msg);
    snprintf(spec, sizeof spec, "%s+%s!0@bad tag", at("rm.ckpt"), at("rm2.ckpt"));
    cr_assert_eq(rm_scorer_open_in(db, &s, spec, NULL, NULL, 4, &e), RLHF_EINVAL);
    cr_assert(strstr(e.msg, "not a tag name"), "%s", e.msg);
    /* bad specs name what is wrong */
    snprintf(spec, sizeof spec, "%s*x+%s", at("rm.ckpt"), at("rm2.ckpt"));
    cr_assert_eq(rm_scorer_open_in(db, &s, spec, NULL, NULL, 4, &e), RLHF_EINVAL);
    cr_assert(strstr(e.msg, "'x' is not a number"), "%s", e.msg);
    snprintf(spec, sizeof spec, "%s+", at("rm.ckpt"));
    cr_assert_eq(rm_scorer_open_in(db, &s, spec, NULL, NULL, 4, &e), RLHF_EINVAL);
    cr_assert(strstr(e.msg, "empty part"), "%s", e.msg);
    teardown(db);
}
