/* gen/: selection, idempotence, determinism, --unique, interrupt and resume,
 * with a deterministic stand-in for the model. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/candidates.h"
#include "db/prompts.h"
#include "db/registry.h"
#include "gen/gen.h"
#include "tests/unit/gen_stream.h"
#include "util/sys.h"

struct fake {
    int distinct; /* texts come from seed % distinct */
    int calls, fail_at, interrupt_at;
    char last_input[256];
    /* called inside sample(): what another process does while the model works */
    void (*meanwhile)(struct fake *f, const uint64_t *seeds, int n);
    int meanwhile_rc;
};

static int fake_sample(void *ctx, const char *input, int n, const uint64_t *seeds, GenSample *out,
                       Err *err) {
    struct fake *f = ctx;
    f->calls++;
    snprintf(f->last_input, sizeof f->last_input, "%s", input);
    if (f->fail_at && f->calls == f->fail_at) return err_set(err, RLHF_EIO, "backend broke");
    if (f->interrupt_at && f->calls == f->interrupt_at) raise(SIGINT);
    if (f->meanwhile) f->meanwhile(f, seeds, n);
    for (int i = 0; i < n; i++) {
        char buf[64];
        snprintf(buf, sizeof buf, "answer %llu", (unsigned long long)(seeds[i] % (uint64_t)f->distinct));
        out[i].text = strdup(buf);
        out[i].n_tokens = 2;
        out[i].sum_logprob = -1.5;
    }
    return 0;
}

static char path[64];

static Db *setup_db(int n_prompts, int64_t *model_id) {
    snprintf(path, sizeof path, "/tmp/rlhf-gen-%d.db", getpid());
    unlink(path);
    Db *db;
    Err e = {0};
    cr_assert_eq(db_open(path, DB_OPEN_CREATE, &db, &e), 0, "%s", e.msg);
    for (int i = 0; i < n_prompts; i++) {
        char t[32];
        snprintf(t, sizeof t, "prompt %d", i);
        PromptIn p = {t, i % 2 ? "test" : "train", NULL, NULL, NULL};
        cr_assert_eq(db_prompt_insert(db, &p, NULL, NULL, &e), 0);
    }
    ModelIn m = {"fake", "policy", "/dev/null", 0, NULL, NULL, NULL};
    cr_assert_eq(db_model_upsert(db, &m, model_id, &e), 0);
    return db;
}

static void done_db(Db *db) {
    db_close(db);
    unlink(path);
}

static int64_t count(Db *db, int64_t pid, int64_t mid) {
    int64_t n;
    cr_assert_eq(db_candidates_count(db, pid, mid, &n, NULL), 0);
    return n;
}

Test(gen, template) {
    char *s = gen_apply_template(NULL, "Hi?");
    cr_assert_str_eq(s, "Human: Hi?\nAssistant:");
    free(s);
    s = gen_apply_template("<{prompt}|{prompt}>", "x");
    cr_assert_str_eq(s, "<x|x>");
    free(s);
    s = gen_apply_template("no placeholder", "x");
    cr_assert_str_eq(s, "no placeholder");
    free(s);
}

Test(gen, fills_missing_and_is_idempotent) {
    int64_t mid;
    Db *db = setup_db(5, &mid);
    struct fake f = {.distinct = 1000000};
    GenBackend b = {.ctx = &f, .sample = fake_sample, .params_json = "{\"t\":1}"};
    GenOptions o = {.model_id = mid, .k = 3, .seed = 7};
    GenStats st;
    Err e = {0};
    cr_assert_eq(gen_run(db, &o, &b, NULL, &st, &e), 0, "%s", e.msg);
    cr_assert_eq(st.prompts_done, 5);
    cr_assert_eq(st.candidates, 15);
    cr_assert_str_eq(f.last_input, "Human: prompt 4\nAssistant:");
    cr_assert_eq(gen_run(db, &o, &b, NULL, &st, &e), 0);
    cr_assert_eq(st.prompts_selected, 0, "a rerun finds nothing to do");
    o.k = 4;
    o.split = "test";
    cr_assert_eq(gen_run(db, &o, &b, NULL, &st, &e), 0);
    cr_assert_eq(st.prompts_done, 2);
    cr_assert_eq(count(db, 2, mid), 4);
    cr_assert_eq(count(db, 1, mid), 3);
    int64_t ids[] = {1};
    o.split = NULL, o.ids = ids, o.n_ids = 1;
    cr_assert_eq(gen_run(db, &o, &b, NULL, &st, &e), 0);
    cr_assert_eq(count(db, 1, mid), 4);
    cr_assert_eq(count(db, 3, mid), 3);
    done_db(db);
}

static char *texts_of(Db *db, int64_t pid) {
    CandidateRow *rows;
    int n;
    cr_assert_eq(db_candidates_of_prompt(db, pid, &rows, &n, NULL), 0);
    char *all = calloc(1, 4096);
    for (int i = 0; i < n; i++) strcat(strcat(all, rows[i].text), "|");
    db_candidates_free(rows, n);
    return all;
}

Test(gen, same_seed_same_text_and_resume_after_interrupt) {
    int64_t mid;
    Db *db = setup_db(6, &mid);
    struct fake f = {.distinct = 1000000};
    GenBackend b = {.ctx = &f, .sample = fake_sample, .params_json = NULL};
    GenOptions o = {.model_id = mid, .k = 2, .seed = 99};
    GenStats st;
    Err e = {0};
    cr_assert_eq(gen_run(db, &o, &b, NULL, &st, &e), 0);
    char *want[6];
    for (int i = 0; i < 6; i++) want[i] = texts_of(db, i + 1);
    done_db(db);

    db = setup_db(6, &mid);
    sys_catch_interrupts();
    f.calls = 0;
    f.interrupt_at = 3; /* Ctrl-C while the third prompt is sampled */
    cr_assert_eq(gen_run(db, &o, &b, NULL, &st, &e), 0);
    cr_assert(st.interrupted);
    cr_assert_eq(st.prompts_done, 3, "the prompt in flight finishes, then it stops");
    sys_reset_interrupt();
    signal(SIGINT, SIG_DFL);
    f.interrupt_at = 0;
    cr_assert_eq(gen_run(db, &o, &b, NULL, &st, &e), 0);
    cr_assert_eq(st.prompts_done, 3);
    for (int i = 0; i < 6; i++) {
        char *got = texts_of(db, i + 1);
        cr_assert_str_eq(got, want[i], "prompt %d differs after resume", i + 1);
        free(got);
        free(want[i]);
    }
    done_db(db);
}

Test(gen, unique_resamples_until_bound) {
    int64_t mid;
    Db *db = setup_db(1, &mid);
    struct fake f = {.distinct = 2}; /* only two different answers exist */
    GenBackend b = {.ctx = &f, .sample = fake_sample, .params_json = NULL};
    GenOptions o = {.model_id = mid, .k = 3, .seed = 1};
    GenStats st;
    Err e = {0};
    cr_assert_eq(gen_run(db, &o, &b, NULL, &st, &e), 0);
    cr_assert(count(db, 1, mid) <= 2, "identical candidates are stored once");
    o.unique = 1;
    o.max_draws = 10;
    cr_assert_eq(gen_run(db, &o, &b, NULL, &st, &e), 0);
    cr_assert_eq(count(db, 1, mid), 2);
    cr_assert_eq(st.short_prompts, 1);
    done_db(db);
}

Test(gen, backend_failure_keeps_finished_prompts_only) {
    int64_t mid;
    Db *db = setup_db(4, &mid);
    struct fake f = {.distinct = 1000000, .fail_at = 3};
    GenBackend b = {.ctx = &f, .sample = fake_sample, .params_json = NULL};
    GenOptions o = {.model_id = mid, .k = 2, .seed = 1};
    GenStats st;
    Err e = {0};
    cr_assert_eq(gen_run(db, &o, &b, NULL, &st, &e), RLHF_EIO);
    cr_assert(strstr(e.msg, "prompt 3: backend broke"), "%s", e.msg);
    cr_assert_eq(count(db, 2, mid), 2);
    cr_assert_eq(count(db, 3, mid), 0);
    done_db(db);
}

/* Another writer, on its own connection, while gen samples: it must get the
 * write lock at once, not wait for the sample to finish. */
static void try_write(struct fake *f, const uint64_t *seeds, int n) {
    (void)seeds, (void)n;
    Db *other;
    Err e = {0};
    cr_assert_eq(db_open(path, DB_OPEN_EXISTING, &other, &e), 0, "%s", e.msg);
    f->meanwhile_rc = db_setting_try_set(other, "k", "v", &e);
    db_close(other);
}

Test(gen, no_write_lock_while_sampling) {
    int64_t mid;
    Db *db = setup_db(2, &mid);
    struct fake f = {.distinct = 1000000, .meanwhile = try_write};
    GenBackend b = {.ctx = &f, .sample = fake_sample, .params_json = NULL};
    GenOptions o = {.model_id = mid, .k = 3, .seed = 1};
    GenStats st;
    Err e = {0};
    cr_assert_eq(gen_run(db, &o, &b, NULL, &st, &e), 0, "%s", e.msg);
    cr_assert_eq(f.meanwhile_rc, 0, "another writer was locked out while gen sampled");
    cr_assert_eq(count(db, 1, mid), 3);
    cr_assert_eq(count(db, 2, mid), 3);
    done_db(db);
}

/* Another gen of the same model stores candidates for the prompt being
 * sampled: the texts it drew with the same seeds, and one of its own. */
static void other_gen(struct fake *f, const uint64_t *seeds, int n) {
    Db *other;
    Err e = {0};
    cr_assert_eq(db_open(path, DB_OPEN_EXISTING, &other, &e), 0, "%s", e.msg);
    cr_assert_eq(db_begin(other, &e), 0);
    for (int i = 0; i < n && i < 2; i++) {
        char buf[64];
        if (i == 0)
            snprintf(buf, sizeof buf, "answer %llu", (unsigned long long)(seeds[i] % (uint64_t)f->distinct));
        else
            snprintf(buf, sizeof buf, "another answer");
        CandidateIn c = {1, 1, buf, 2, -1.5, NULL, (int64_t)seeds[i], 1, NULL, 0, 0};
        cr_assert_eq(db_candidate_insert(other, &c, NULL, NULL, &e), 0, "%s", e.msg);
    }
    cr_assert_eq(db_commit(other, &e), 0);
    db_close(other);
    f->meanwhile = NULL;
}

Test(gen, recheck_at_commit_keeps_k) {
    int64_t mid;
    Db *db = setup_db(1, &mid);
    cr_assert_eq(mid, 1);
    struct fake f = {.distinct = 1000000, .meanwhile = other_gen};
    GenBackend b = {.ctx = &f, .sample = fake_sample, .params_json = NULL};
    GenOptions o = {.model_id = mid, .k = 3, .seed = 1};
    GenStats st;
    Err e = {0};
    cr_assert_eq(gen_run(db, &o, &b, NULL, &st, &e), 0, "%s", e.msg);
    /* without --unique k is k draws: ours, whatever another writer stored */
    int64_t drawn, mine;
    char *cfg = gen_draw_config(NULL, 1);
    cr_assert_str_eq(cfg, "{\"seed\":1}");
    cr_assert_eq(db_draws_count(db, 1, mid, cfg, &drawn, &mine, NULL), 0);
    cr_assert_eq(mine, 3, "k draws of this configuration");
    free(cfg);
    cr_assert_eq(drawn, 3, "k draws");
    cr_assert_eq(count(db, 1, mid), 4, "the other's two and two new of ours");
    cr_assert_eq(st.candidates, 2);
    cr_assert_eq(st.duplicates, 1, "the text the other gen stored first");

    /* with --unique too: each text the other gen took is one of its rows */
    db_close(db);
    unlink(path);
    db = setup_db(1, &mid);
    f.meanwhile = other_gen, f.calls = 0;
    o.unique = 1;
    o.k = 4;
    cr_assert_eq(gen_run(db, &o, &b, NULL, &st, &e), 0, "%s", e.msg);
    cr_assert_eq(count(db, 1, mid), 4);
    cr_assert_eq(f.calls, 1, "no sampling again");
    done_db(db);
}

/* one prompt's candidates and draws (seed, candidate) as text */
static char *draws_of(Db *db, int64_t pid, int64_t mid) {
    char *all = texts_of(db, pid);
    int64_t drawn = 0, mine = 0;
    cr_assert_eq(db_draws_count(db, pid, mid, NULL, &drawn, &mine, NULL), 0);
    sprintf(all + strlen(all), "#%lld", (long long)drawn);
    return all;
}

/* gen with a backend that batches prompts stores what prompt by prompt
 * stores (texts, draws), with and without unique, in batches of at most the
 * backend's streams; a prompt the backend refuses fails after those before
 * it are stored, as it does prompt by prompt. */
Test(gen, batches_of_prompts_store_what_prompt_by_prompt_does) {
    for (int unique = 0; unique <= 1; unique++) {
        int64_t mid;
        GenOptions o = {.k = 3, .seed = 5, .unique = unique, .max_draws = 12};
        GenStats st;
        Err e = {0};
        char *want[9];
        struct fake f = {.distinct = unique ? 4 : 1000000};
        FakeStream m = {.sample = fake_sample, .ctx = &f, .streams = 8};
        Db *db = setup_db(9, &mid);
        o.model_id = mid;
        GenBackend one = {.ctx = &f, .sample = fake_sample, .params_json = "{}"};
        cr_assert_eq(gen_run(db, &o, &one, NULL, &st, &e), 0, "%s", e.msg);
        for (int i = 0; i < 9; i++)
            want[i] = draws_of(db, i + 1, mid);
        done_db(db);

        db = setup_db(9, &mid);
        GenBackend many = {.ctx = &m, .sample = fake_stream_sample, .params_json = "{}",
                           .sample_stream = fake_stream, .max_batch = 8};
        cr_assert_eq(gen_run(db, &o, &many, NULL, &st, &e), 0, "%s", e.msg);
        cr_assert_eq(st.prompts_done, 9);
        /* two prompts of 3 draws in 8 streams; unique's further draws are
         * fewer, so more prompts fit */
        cr_assert_eq(m.most_prompts, unique ? 4 : 2, "%d", m.most_prompts);
        cr_assert_eq(m.most_draws, unique ? 8 : 6, "%d", m.most_draws);
        cr_assert_geq(m.refills, 7, "each prompt after the second taken while the first decodes");
        cr_assert_geq(m.taken, 9);
        for (int i = 0; i < 9; i++) {
            char *got = draws_of(db, i + 1, mid);
            cr_assert_str_eq(got, want[i], "unique %d prompt %d", unique, i + 1);
            free(got);
            free(want[i]);
        }
        done_db(db);
    }
    int64_t mid;
    Db *db = setup_db(9, &mid);
    struct fake f = {.distinct = 1000000};
    FakeStream m = {.sample = fake_sample, .ctx = &f, .bad_input = "prompt 5\n", .streams = 8};
    GenBackend many = {.ctx = &m, .sample = fake_stream_sample, .params_json = "{}",
                       .sample_stream = fake_stream, .max_batch = 8};
    GenOptions o = {.model_id = mid, .k = 3, .seed = 5};
    GenStats st;
    Err e = {0};
    /* prompt 6 (text "prompt 5") is taken while prompt 1 is still in flight */
    cr_assert_eq(gen_run(db, &o, &many, NULL, &st, &e), RLHF_EINVAL);
    cr_assert(strstr(e.msg, "prompt 6: prompt too long"), "%s", e.msg);
    cr_assert_eq(st.prompts_done, 5);
    cr_assert_eq(count(db, 5, mid), 3);
    cr_assert_eq(count(db, 6, mid), 0);
    done_db(db);
}
