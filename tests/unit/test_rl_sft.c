/* rl/sft and rl/trainer: the loss is the answer tokens' alone (checked by
 * hand on the logits), training lowers it, a run saved and resumed midway
 * ends bit-identical to one that never stopped, every epoch visits every
 * example once (grouping by length pads less), and demonstrations are read
 * from JSONL, chat messages and the store's rankings with clear errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/candidates.h"
#include "db/prompts.h"
#include "db/rankings.h"
#include "db/registry.h"
#include "model/checkpoint.h"
#include "model/loss.h"
#include "rl/sft.h"
#include "rl/sft_data.h"
#include "rl/trainer.h"
#include "util/rng.h"
#include "tests/unit/files.h"
#include "tests/unit/project_db.h"
#include "tests/unit/fixtures.h"

/* n examples: <s> p p (2..4 prompt tokens), then an answer that is a
 * function of the prompt (so it can be learned), then </s>. */
static void toy_set(SftSet *s, int n, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    memset(s, 0, sizeof *s);
    s->ex = calloc((size_t)n, sizeof *s->ex);
    s->lens = calloc((size_t)n, sizeof *s->lens);
    Err err = {0};
    for (int i = 0; i < n; i++) {
        int np = 2 + (int)rng_below(&r, 3), na = 1 + (int)rng_below(&r, 4), p[6] = {1}, a[8];
        for (int k = 1; k <= np; k++)
            p[k] = 3 + (int)rng_below(&r, 10);
        for (int k = 0; k < na; k++)
            a[k] = 13 + (p[1] + k) % 10;
        a[na] = 2;
        cr_assert_eq(seq_join(p, np + 1, a, na + 1, 16, &s->ex[i], &err), 0, "%s", err.msg);
        s->lens[i] = s->ex[i].n;
        s->n_tokens += na + 1;
        s->n++;
    }
}

/* A tiny model from seed with its optimizer and an SFT trainer of batch B. */
typedef struct Fix {
    Model m;
    AdamW opt;
    SftTrainer tr;
} Fix;

static void fix_init(Fix *f, uint64_t seed, int B) {
    Err err = {0};
    tiny_model(&f->m, seed);
    cr_assert_eq(adamw_create(&f->opt, f->m.n_params, &err), 0);
    cr_assert_eq(sft_trainer_init(&f->tr, &f->m, &f->opt, B, 1, &err), 0, "%s", err.msg);
}

static void fix_free(Fix *f) {
    sft_trainer_free(&f->tr);
    adamw_free(&f->opt);
    model_free(&f->m);
}

Test(rl_sft, loss_covers_answer_tokens_only) {
    Fix f;
    fix_init(&f, 3, 4);
    Err err = {0};
    /* prompt <s> 5 6 7, answer 8 </s>: the loss is -log p(8 | <s>567) - log p(</s> | <s>5678) / 2
     */
    int p[4] = {1, 5, 6, 7}, a[2] = {8, 2};
    SftSet s = {0};
    s.ex = calloc(1, sizeof *s.ex);
    s.lens = calloc(1, sizeof(int));
    cr_assert_eq(seq_join(p, 4, a, 2, 16, &s.ex[0], &err), 0);
    s.n = 1, s.lens[0] = 6;
    double loss;
    cr_assert_eq(sft_eval(&f.tr, &s, &loss, &err), 0, "%s", err.msg);
    RunState rs;
    int toks[6] = {1, 5, 6, 7, 8, 2};
    cr_assert_eq(model_runstate_create(&rs, &f.m.cfg, 1, 6, &err), 0);
    cr_assert_eq(model_forward(&f.m, &rs, toks, 1, 6, MODEL_FWD_LOGITS, &err), 0);
    double want = 0;
    for (int t = 3; t <= 4; t++) {
        const float *z = rs.logits + (size_t)t * 23;
        double mx = z[0], sum = 0;
        for (int v = 1; v < 23; v++)
            mx = z[v] > mx ? z[v] : mx;
        for (int v = 0; v < 23; v++)
            sum += exp(z[v] - mx);
        want += -(z[toks[t + 1]] - mx - log(sum));
    }
    want /= 2;
    cr_assert_float_eq(loss, want, 1e-5, "sft loss %g, by hand over the answer %g", loss, want);
    /* a different prompt changes the loss only through the answer's context:
     * the prompt tokens themselves are never predicted (a loss over every
     * token would be 5 terms, not 2) */
    double all;
    int tg[6] = {5, 6, 7, 8, 2, -1};
    all = loss_ce_forward(rs.logits, tg, NULL, 6, 23, NULL, NULL) / 5;
    cr_assert(fabs(all - loss) > 1e-4, "the loss equals the every-token loss");
    model_runstate_free(&rs);
    sft_set_free(&s);
    fix_free(&f);
}

/* Trains `steps` steps from step `from` on set; the order comes from rl_batch_at. */
static void train(SftTrainer *tr, const SftSet *set, int from, int steps, int B, double *last) {
    int perm[64], idx[16];
    Err err = {0};
    for (int s = from; s < from + steps; s++) {
        int n = rl_batch_at(set->n, B, set->lens, 2, 9, s, perm, idx);
        double gn;
        cr_assert_eq(sft_step(tr, set, idx, n, 3e-3f, last, &gn, NULL, &err), 0, "%s", err.msg);
    }
}

Test(rl_sft, training_lowers_the_loss) {
    Fix f;
    fix_init(&f, 4, 4);
    Err err = {0};
    SftSet s;
    toy_set(&s, 40, 1);
    double before, after, last;
    cr_assert_eq(sft_eval(&f.tr, &s, &before, &err), 0);
    train(&f.tr, &s, 0, 60, 8, &last);
    cr_assert_eq(sft_eval(&f.tr, &s, &after, &err), 0);
    cr_assert(after < before - 0.5, "loss %g -> %g", before, after);
    sft_set_free(&s);
    fix_free(&f);
}

Test(rl_sft, resumed_run_equals_uninterrupted) {
    Err err = {0};
    SftSet s;
    toy_set(&s, 30, 2);
    Fix a, b;
    double last;
    fix_init(&a, 5, 3);
    train(&a.tr, &s, 0, 10, 6, &last);
    /* the same, stopped at step 4 through a checkpoint */
    fix_init(&b, 5, 3);
    train(&b.tr, &s, 0, 4, 6, &last);
    char path[] = "/tmp/rlhf-unit-sft-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    RlState st = {0}, st2;
    memcpy(st.magic, "RL-SFT\0\0", 8);
    st.step = 4;
    cr_assert_eq(rl_ckpt_save(path, &b.m, &b.opt, &st, NULL, &err), 0, "%s", err.msg);
    fix_free(&b);
    void *pl;
    cr_assert_eq(rl_ckpt_load(path, "RL-SFT\0\0", &b.m, &b.opt, &st2, &pl, &err), 0, "%s", err.msg);
    cr_assert_eq(st2.step, 4);
    cr_assert_null(pl);
    /* another trainer's checkpoint is refused */
    Model c;
    AdamW oc;
    cr_assert_eq(rl_ckpt_load(path, "RL-DPO\0\0", &c, &oc, &st2, &pl, &err), RLHF_EFORMAT);
    cr_assert(strstr(err.msg, "not a DPO checkpoint"), "%s", err.msg);
    model_free(&c);
    adamw_free(&oc);
    cr_assert_eq(sft_trainer_init(&b.tr, &b.m, &b.opt, 3, 1, &err), 0);
    train(&b.tr, &s, 4, 6, 6, &last);
    cr_assert_eq(memcmp(a.m.params, b.m.params, sizeof(float) * a.m.n_params), 0,
                 "resumed weights differ");
    cr_assert_eq(a.opt.step, b.opt.step);
    unlink(path);
    fix_free(&a), fix_free(&b);
    sft_set_free(&s);
}

Test(rl_trainer, each_epoch_visits_every_example_once_and_grouping_pads_less) {
    enum { N = 203, B = 8 };
    int lens[N], perm[N], idx[B], seen[N];
    Rng r;
    rng_seed(&r, 1);
    for (int i = 0; i < N; i++)
        lens[i] = 5 + (int)rng_below(&r, 120);
    int64_t spe = rl_steps_per_epoch(N, B);
    cr_assert_eq(spe, 26);
    long padded[2] = {0, 0};
    for (int group = 0; group <= 1; group++)
        for (int e = 0; e < 2; e++) {
            memset(seen, 0, sizeof seen);
            for (int64_t s = e * spe; s < (e + 1) * spe; s++) {
                int n = rl_batch_at(N, B, lens, group ? 50 : 0, 7, s, perm, idx);
                cr_assert_eq(n, s == (e + 1) * spe - 1 ? N % B : B);
                int mx = 0;
                for (int i = 0; i < n; i++)
                    seen[idx[i]]++, mx = lens[idx[i]] > mx ? lens[idx[i]] : mx;
                padded[group] += (long)mx * n;
            }
            for (int i = 0; i < N; i++)
                cr_assert_eq(seen[i], 1, "example %d seen %d times", i, seen[i]);
        }
    long real = 0;
    for (int i = 0; i < N; i++)
        real += 2 * lens[i];
    /* random lengths 5..124 in batches of 8: plain shuffling pads ~70%, grouping a few % */
    cr_assert(padded[1] < real * 1.15, "grouped: %ld padded for %ld real", padded[1], real);
    cr_assert(padded[0] > real * 1.3, "plain: %ld padded for %ld real", padded[0], real);
    /* the same step gives the same batch */
    int idx2[B];
    rl_batch_at(N, B, lens, 50, 7, 31, perm, idx);
    rl_batch_at(N, B, lens, 50, 7, 31, perm, idx2);
    cr_assert_eq(memcmp(idx, idx2, sizeof idx), 0);
}

Test(rl_sft_data, jsonl_and_chat_messages) {
    const char *path = "/tmp/rlhf-unit-sft-data.jsonl";
    write_file(
        path,
        "{\"prompt\":\"Hi?\",\"completion\":\"Hello.\"}\n"
        "\n"
        "{\"instruction\":\"Sum 1+1\",\"response\":\"2\"}\n"
        "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"user\",\"content\":\"Capital of France?\"},"
        "{\"role\":\"assistant\",\"content\":\"Paris.\"}]}\n"
        "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":"
        "\"b\"},"
        "{\"role\":\"user\",\"content\":\"c\"},{\"role\":\"assistant\",\"content\":\"d\"}]}\n");
    SftData d = {0};
    Err err = {0};
    cr_assert_eq(sft_data_load_file(path, NULL, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.n, 4);
    cr_assert_str_eq(d.p[0].prompt, "Hi?");
    cr_assert_str_eq(d.p[0].answer, "Hello.");
    cr_assert_str_eq(d.p[1].answer, "2");
    cr_assert_str_eq(d.p[2].prompt, "Be brief.\n\nCapital of France?");
    cr_assert_eq(d.p[2].rendered, 0);
    cr_assert_str_eq(d.p[3].prompt, "Human: a\nAssistant: b\nHuman: c\nAssistant:");
    cr_assert_eq(d.p[3].rendered, 1);
    cr_assert_str_eq(d.p[3].answer, "d");
    sft_data_free(&d);
    /* bad records name the line and the field */
    const char *bad[][2] = {
        {"{\"prompt\":\"x\"}\n", ":1: missing field \"completion\" or \"response\""},
        {"{\"prompt\":\"x\",\"completion\":\"y\"}\n{\"prompt\":\"x\",\"completion\":3}\n",
         ":2: field \"completion\" must be a string"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}\n",
         ":1: \"messages\" must end with an assistant turn"},
        {"{\"messages\":[{\"role\":\"bot\",\"content\":\"x\"}]}\n", "unknown role \"bot\""},
        {"{\"messages\":{}}\n", "must be an array"},
        {"not json\n", ":1:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, bad[i][0]);
        memset(&d, 0, sizeof d);
        cr_assert_neq(sft_data_load_file(path, NULL, &d, &err), 0, "case %zu accepted", i);
        cr_assert(strstr(err.msg, bad[i][1]) && strstr(err.msg, path), "case %zu: %s", i, err.msg);
        sft_data_free(&d);
    }
    unlink(path);
}

static void ranked(Db *db, const char *prompt, const char *labeler, const int *rank, int n,
                   int none_ok) {
    fixture_ranked(db, prompt, labeler, rank, n, none_ok, 0);
}

Test(rl_sft_data, store_top_ranked_and_named_model) {
    char path[] = "/tmp/rlhf-unit-sftdb-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    unlink(path);
    Db *db;
    Err err = {0};
    cr_assert_eq(db_open(path, DB_OPEN_CREATE, &db, &err), 0, "%s", err.msg);
    int r1[] = {2, 1, 3}, r2[] = {1, 1, 2}, r3[] = {1, 2, 3}, r4a[] = {1, 2, 3}, r4b[] = {3, 1, 2};
    ranked(db, "P1", "ann", r1, 3, 0); /* best: answer 1 */
    ranked(db, "P2", "ann", r2, 3, 0); /* tied top of different texts: skipped */
    ranked(db, "P3", "ann", r3, 3, 1); /* none acceptable: skipped */
    ranked(db, "P4", "ann", r4a, 3, 0);
    ranked(db, "P4", "bob", r4b, 3, 0); /* mean ranks 2, 1.5, 2.5: answer 1 */
    SftStoreOptions so = {db_ranking_filter_default(), NULL, SFT_DEMOS_UNFLAGGED, 0, 0};
    SftData d = {0};
    cr_assert_eq(sft_data_load_store(db, &so, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.n, 2);
    cr_assert_str_eq(d.p[0].prompt, "P1");
    cr_assert_str_eq(d.p[0].answer, "P1 answer 1");
    cr_assert_str_eq(d.p[1].prompt, "P4");
    cr_assert_str_eq(d.p[1].answer, "P4 answer 1");
    cr_assert_eq(d.skipped, 2);
    sft_data_free(&d);
    /* one labeler's view */
    so.filter.labeler = "ann";
    cr_assert_eq(sft_data_load_store(db, &so, &d, &err), 0);
    cr_assert_eq(d.n, 2);
    cr_assert_str_eq(d.p[1].answer, "P4 answer 0");
    sft_data_free(&d);
    /* every candidate of a named model */
    so.filter.labeler = NULL;
    so.from_model = "m";
    cr_assert_eq(sft_data_load_store(db, &so, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.n, 12);
    sft_data_free(&d);
    so.from_model = "nobody";
    cr_assert_eq(sft_data_load_store(db, &so, &d, &err), RLHF_ENOTFOUND);
    cr_assert(strstr(err.msg, "nobody"), "%s", err.msg);
    /* rejection sampling: exactly the answers best-of-n kept, of the newest best-of policy */
    so.from_model = NULL;
    so.best_of = 1;
    cr_assert_eq(sft_data_load_store(db, &so, &d, &err), RLHF_ENOTFOUND, "no best-of policy yet");
    cr_assert(strstr(err.msg, "gen --best-of"), "%s", err.msg);
    int64_t pid[2], bo;
    for (int k = 0; k < 2; k++) {
        PromptIn pin = {k ? "Q2" : "Q1", NULL, NULL, NULL, NULL};
        cr_assert_eq(db_prompt_insert(db, &pin, &pid[k], NULL, &err), 0, "%s", err.msg);
    }
    ModelIn mi = {"m+bo4", "policy", NULL, 0, NULL, "{\"best_of\":4,\"rm\":\"rm.ckpt\"}", NULL};
    cr_assert_eq(db_model_upsert(db, &mi, &bo, &err), 0, "%s", err.msg);
    const char *kept[] = {"Q1 kept", "Q2 kept", "Q2 kept again"};
    for (int k = 0; k < 3; k++) {
        CandidateIn cin = {pid[k > 0], bo, kept[k], -1, NAN, NULL, 0, 0, NULL, 0, 0};
        int64_t cid;
        cr_assert_eq(db_candidate_insert(db, &cin, &cid, NULL, &err), 0, "%s", err.msg);
    }
    cr_assert_eq(sft_data_load_store(db, &so, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.n, 3);
    for (int k = 0; k < 3; k++) {
        cr_assert_str_eq(d.p[k].prompt, k ? "Q2" : "Q1");
        cr_assert_str_eq(d.p[k].answer, kept[k]);
    }
    sft_data_free(&d);
    so.from_model = "m"; /* not a best-of policy */
    cr_assert_eq(sft_data_load_store(db, &so, &d, &err), RLHF_EINVAL);
    cr_assert(strstr(err.msg, "not a best-of policy"), "%s", err.msg);
    db_close(db);
    unlink_db(path);
}

Test(rl_trainer, a_reward_model_is_refused_as_a_policy) {
    Model m, got;
    Err err = {0};
    Config c = {.dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 4,
                .vocab_size = 23, .seq_len = 16, .shared_classifier = 1};
    cr_assert_eq(model_create(&m, &c, MODEL_HEAD_REWARD, &err), 0);
    char path[] = "/tmp/rlhf-unit-rm-XXXXXX";
    close(mkstemp(path));
    cr_assert_eq(model_save(path, &m, &err), 0, "%s", err.msg);
    Tokenizer *tok = (Tokenizer *)&m; /* must come back NULL */
    cr_assert_eq(rl_policy_load(path, NULL, &got, &tok, &err), RLHF_EINVAL);
    cr_assert(strstr(err.msg, "reward model") && strstr(err.msg, path), "%s", err.msg);
    cr_assert_null(tok);
    unlink(path);
    model_free(&m);
}
