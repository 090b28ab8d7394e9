/* The run engine (rl/run.h) with a toy trainer: a non-finite loss skips the
 * update and three in a row stop the run with finite checkpoints; a run
 * interrupted mid-way and resumed ends byte for byte as one that never
 * stopped; a resume on other data is refused. */
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures.h"
#include "model/checkpoint.h"
#include "rl/run.h"
#include "tmpdir.h"
#include "util/sys.h"

typedef struct ToyOpts {
    TrainOpts t;
    int nan_at[4];   /* steps (from 1) whose loss is NaN */
    int stop_after;  /* raise SIGINT during this step (0: never) */
    const char *sha; /* what a resume must match */
} ToyOpts;

static int prepare(TrainRun *r, Err *err) {
    const ToyOpts *o = r->opts;
    (void)err;
    tiny_model(&r->m, 7);
    snprintf(r->sha, sizeof r->sha, "%s", o->sha);
    r->n_train = 1;
    return RLHF_OK;
}

static int setup(TrainRun *r, Err *err) {
    (void)err;
    r->total = r->o->steps;
    return RLHF_OK;
}

static int grads(TrainRun *r, Err *err) {
    const ToyOpts *o = r->opts;
    (void)err;
    for (size_t i = 0; i < r->m.n_params; i++) r->m.grads[i] = 0.01f * (float)((i % 7) + 1);
    r->loss = 1.0 / (double)r->at;
    for (int k = 0; k < 4; k++)
        if (o->nan_at[k] == r->at) r->loss = NAN;
    if (o->stop_after == r->at) raise(SIGINT);
    return RLHF_OK;
}

static void report(TrainRun *r, char *note, size_t nn, char *line, size_t nl) {
    snprintf(note, nn, "step %lld", (long long)r->st.step);
    snprintf(line, nl, "trained %lld steps", (long long)r->st.step);
}

static const Trainer TOY = {.who = "toy", .label = "toy", .magic = "RL-TOY\0\0", .kind = "base",
                            .run_kind = "pretrain", .changed = "the toy data",
                            .prepare = prepare, .setup = setup, .grads = grads, .report = report,
};

static ToyOpts toy_opts(const char *out, long steps) {
    ToyOpts o = {.sha = "a"};
    train_opts_init(&o.t, 1, 1e-2);
    o.t.out = out, o.t.steps = steps, o.t.save_every = 1, o.t.min_lr = 1e-3;
    return o;
}

static char *slurp(const char *path, size_t *n) {
    char *s;
    Err err = {0};
    cr_assert_eq(sys_read_file(path, &s, n, &err), 0, "%s", err.msg);
    return s;
}

TestSuite(run, .init = tmpdir_setup, .fini = tmpdir_teardown);

Test(run, nonfinite_loss_skips_the_update) {
    ToyOpts o = toy_opts(tmp_path("a.ckpt"), 5);
    o.nan_at[0] = 3;
    int stopped;
    char line[128];
    Err err = {0};
    cr_assert_eq(train_run(&TOY, &o, &stopped, line, sizeof line, &err), 0, "%s", err.msg);
    cr_assert_not(stopped);
    cr_assert_str_eq(line, "trained 5 steps");
    Model m;
    cr_assert_eq(model_load(o.t.out, &m, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < m.n_params; i++) cr_assert(isfinite(m.params[i]));
    /* the same run without the bad step moves further: one more update */
    ToyOpts clean = toy_opts(tmp_path("b.ckpt"), 5);
    cr_assert_eq(train_run(&TOY, &clean, &stopped, line, sizeof line, &err), 0, "%s", err.msg);
    Model b;
    cr_assert_eq(model_load(clean.t.out, &b, &err), 0, "%s", err.msg);
    cr_assert_neq(memcmp(m.params, b.params, sizeof(float) * m.n_params), 0);
    model_free(&m), model_free(&b);
}

Test(run, three_nonfinite_steps_stop_with_finite_checkpoints) {
    ToyOpts o = toy_opts(tmp_path("c.ckpt"), 8);
    o.nan_at[0] = 3, o.nan_at[1] = 4, o.nan_at[2] = 5;
    int stopped;
    char line[128];
    Err err = {0};
    cr_assert_neq(train_run(&TOY, &o, &stopped, line, sizeof line, &err), 0);
    cr_assert(strstr(err.msg, "3 steps in a row"), "%s", err.msg);
    cr_assert(strstr(err.msg, "step 5"), "%s", err.msg);
    Model m;
    cr_assert_eq(model_load(o.t.out, &m, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < m.n_params; i++) cr_assert(isfinite(m.params[i]));
    model_free(&m);
}

Test(run, interrupted_and_resumed_equals_uninterrupted) {
    ToyOpts full = toy_opts(tmp_path("full.ckpt"), 6);
    ToyOpts part = toy_opts(tmp_path("part.ckpt"), 6);
    part.stop_after = 3;
    int stopped;
    char line[128];
    Err err = {0};
    cr_assert_eq(train_run(&TOY, &full, &stopped, line, sizeof line, &err), 0, "%s", err.msg);
    cr_assert_eq(train_run(&TOY, &part, &stopped, line, sizeof line, &err), 0, "%s", err.msg);
    cr_assert(stopped, "the run did not stop at the interrupt");
    cr_assert_str_eq(line, "");
    sys_reset_interrupt();
    part.stop_after = 0, part.t.resume = 1;
    cr_assert_eq(train_run(&TOY, &part, &stopped, line, sizeof line, &err), 0, "%s", err.msg);
    cr_assert_not(stopped);
    size_t na, nb;
    char *a = slurp(full.t.out, &na), *b = slurp(part.t.out, &nb);
    cr_assert_eq(na, nb);
    cr_assert_eq(memcmp(a, b, na), 0, "the resumed run's checkpoint differs");
    free(a), free(b);
}

Test(run, resume_refuses_other_data_and_existing_out) {
    ToyOpts o = toy_opts(tmp_path("d.ckpt"), 2);
    int stopped;
    char line[128];
    Err err = {0};
    cr_assert_eq(train_run(&TOY, &o, &stopped, line, sizeof line, &err), 0, "%s", err.msg);
    cr_assert_neq(train_run(&TOY, &o, &stopped, line, sizeof line, &err), 0);
    cr_assert(strstr(err.msg, "--resume"), "%s", err.msg);
    o.t.resume = 1, o.sha = "b";
    cr_assert_neq(train_run(&TOY, &o, &stopped, line, sizeof line, &err), 0);
    cr_assert(strstr(err.msg, "the toy data changed"), "%s", err.msg);
}
