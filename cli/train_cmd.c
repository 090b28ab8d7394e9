/* The bookkeeping rlhf sft and rlhf dpo share (train_cmd.h). Under MPI every
 * rank reads the project (read-only beyond rank 0) to build the same data,
 * then only rank 0 keeps it: it alone writes the store and the checkpoint. */
#include "cli/train_cmd.h"

#include <cblas.h>
#include <stdio.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/checkpoint.h"
#include "model/dist.h"
#include "util/progress.h"
#include "util/sys.h"

void train_opts_init(TrainOpts *o, long epochs, double lr) {
    memset(o, 0, sizeof *o);
    o->epochs = epochs, o->batch = 8, o->accum = 1, o->warmup = -1, o->seed = 1;
    o->lr = lr, o->min_lr = -1, o->clip = 1, o->val_frac = 0.05;
}

int train_opts_take(const struct cmd_entry *e, TrainOpts *o, int c, const char *arg) {
    int bad = 0;
    switch (c) {
    case 'D':
        o->dbflag = arg;
        break;
    case 'd':
        o->data = arg;
        break;
    case 'k':
        o->tok_path = arg;
        break;
    case 'T':
        o->template = arg;
        break;
    case 'o':
        o->out = arg;
        break;
    case 'n':
        o->name = arg;
        break;
    case 'E':
        bad = cli_parse_long(e, "--epochs", arg, 1, 1 << 20, &o->epochs);
        break;
    case 's':
        bad = cli_parse_long(e, "--steps", arg, 1, 1L << 40, &o->steps);
        break;
    case 'b':
        bad = cli_parse_long(e, "--batch", arg, 1, 1024, &o->batch);
        break;
    case 'a':
        bad = cli_parse_long(e, "--accum", arg, 1, 4096, &o->accum);
        break;
    case 'l':
        bad = cli_parse_double(e, "--lr", arg, 0, 10, &o->lr);
        break;
    case 'L':
        bad = cli_parse_double(e, "--min-lr", arg, 0, 10, &o->min_lr);
        break;
    case 'w':
        bad = cli_parse_long(e, "--warmup", arg, 0, 1L << 40, &o->warmup);
        break;
    case 'W':
        bad = cli_parse_double(e, "--weight-decay", arg, 0, 10, &o->wd);
        break;
    case 'g':
        bad = cli_parse_double(e, "--clip", arg, 0, 1e9, &o->clip);
        break;
    case 'v':
        bad = cli_parse_double(e, "--val-frac", arg, 0, 0.5, &o->val_frac);
        break;
    case 'e':
        bad = cli_parse_long(e, "--eval-every", arg, 1, 1L << 40, &o->eval_every);
        break;
    case 'S':
        bad = cli_parse_long(e, "--save-every", arg, 1, 1L << 40, &o->save_every);
        break;
    case 'x':
        bad = cli_parse_long(e, "--seed", arg, 0, LONG_MAX, &o->seed);
        break;
    case 't':
        bad = cli_parse_long(e, "--threads", arg, 1, 256, &o->threads);
        break;
    case 'G':
        o->group = 1;
        break;
    case 'r':
        o->resume = 1;
        break;
    case 'f':
        o->force = 1;
        break;
    default:
        return -1;
    }
    return bad ? EXIT_USAGE : 0;
}

int train_opts_finish(const struct cmd_entry *e, TrainOpts *o, const char *init,
                      const char *init_flag) {
    if (!init) return cli_usage_error(e, "%s CKPT is required", init_flag);
    if (!o->data) return cli_usage_error(e, "--data is required");
    if (!o->out) return cli_usage_error(e, "--out CKPT is required");
    if (o->template && cli_check_template(e, o->template)) return EXIT_USAGE;
    if (o->resume && o->force)
        return cli_usage_error(e, "--resume and --force contradict each other");
    if (!strcmp(init, o->out)) return cli_usage_error(e, "--out must differ from %s", init_flag);
    if (o->min_lr < 0) o->min_lr = o->lr / 10;
    if (o->threads) openblas_set_num_threads((int)o->threads);
    return -1;
}

void train_cmd_init(TrainCmd *c, const struct cmd_entry *e, const TrainOpts *o, const char *kind,
                    void *ctx) {
    memset(c, 0, sizeof *c);
    c->e = e, c->out = o->out, c->name = o->name, c->kind = kind, c->ctx = ctx;
    c->warmup = o->warmup, c->eval_every = o->eval_every, c->save_every = o->save_every;
    c->lr = o->lr, c->min_lr = o->min_lr;
    c->loss = NAN;
}

int train_cmd_open(TrainCmd *c, const TrainOpts *o, const char *init, Tokenizer **tok,
                   int64_t *parent_id, Err *err) {
    const char *dbpath = cli_db_path(o->dbflag);
    int rc = dbpath ? db_open(dbpath, dist_rank() ? DB_OPEN_READONLY : DB_OPEN_EXISTING, &c->db, err)
                    : RLHF_OK;
    if (!rc) rc = rl_policy_load(init, o->tok_path, &c->m, tok, err);
    if (!rc) rc = rl_resolve_template(c->db, o->template, init, &c->template, parent_id, err);
    return rc;
}

int train_cmd_data_sha(const char *init, const SeqExample *ex, int n, const char *settings,
                       char sha[65], Err *err) {
    char init_sha[65], *all = NULL;
    int rc = model_file_sha256(init, init_sha, err);
    if (rc) return rc;
    if (asprintf(&all, "%s %s", init_sha, settings) < 0)
        return err_set(err, RLHF_ENOMEM, "out of memory");
    rl_examples_sha(ex, n, all, sha);
    free(all);
    return RLHF_OK;
}

int64_t train_cmd_plan(TrainCmd *c, const TrainOpts *o, int n) {
    int64_t per_step = o->batch * o->accum;
    c->total = o->steps ? o->steps : o->epochs * rl_steps_per_epoch(n, (int)per_step);
    c->st.batch = (uint32_t)per_step;
    train_cmd_schedule(c, o->wd);
    return per_step;
}

int train_cmd_check_out(TrainCmd *c, int resume, int force) {
    if (dist_rank() == 0) atomic_remove_stale(c->out);
    c->exists = access(c->out, F_OK) == 0;
    if (c->exists && !resume && !force) {
        fprintf(stderr,
                "rlhf %s: %s exists; pass --resume to continue it or --force to start over\n",
                c->e->name, c->out);
        return EXIT_FAIL;
    }
    return -1;
}

int train_cmd_state(TrainCmd *c, int resume, const char magic[8], const char *sha,
                    const char *changed, uint64_t seed, int64_t parent_id, int64_t n_train,
                    Err *err) {
    c->loss = NAN;
    /* the data is read: from here on rank 0 alone touches the store */
    if (dist_rank() != 0 && c->db) {
        db_close(c->db);
        c->db = NULL;
    }
    if (resume && c->exists) {
        int rc =
            rl_ckpt_resume(c->out, magic, sha, changed, &c->m, &c->opt, &c->st, &c->payload, err);
        if (!rc) c->resumed = 1;
        return rc;
    }
    rl_state_init(&c->st, magic, seed, parent_id, n_train, sha);
    return adamw_create(&c->opt, c->m.n_params, err);
}

void train_cmd_schedule(TrainCmd *c, double weight_decay) {
    c->st.total_steps = c->total;
    c->opt.weight_decay = (float)weight_decay;
    if (c->warmup < 0) c->warmup = (long)(c->total / 20);
    if (!c->eval_every) c->eval_every = c->total / 10 > 0 ? (long)(c->total / 10) : 1;
    if (!c->save_every) c->save_every = c->eval_every;
}

int train_cmd_run_start(TrainCmd *c, const char *run_kind, const char *config_json, Err *err) {
    if (c->resumed && dist_rank() == 0)
        fprintf(stderr, "%s: resumed %s at step %lld\n", c->e->name, c->out, (long long)c->st.step);
    if (!c->db) return RLHF_OK;
    if (c->resumed && c->st.run_id > 0) return db_run_resumed(c->db, c->st.run_id, err);
    return db_run_start(c->db, run_kind, config_json, c->st.parent_id, &c->st.run_id, err);
}

static int write_ckpt(void *ctx, Err *err) {
    TrainCmd *c = ctx;
    return rl_ckpt_save(c->out, &c->m, &c->opt, &c->st, c->payload, err);
}

int train_cmd_save(TrainCmd *c, int final, Err *err) {
    if (dist_rank() != 0) return RLHF_OK;
    return cli_save_checkpoint(c->e->name, c->db, c->st.run_id, &c->metrics, final,
                               &c->metrics_warned, write_ckpt, c, err);
}

int train_cmd_loop(TrainCmd *c, int *stopped, Err *err) {
    sys_catch_interrupts();
    Progress pg;
    progress_start(&pg, c->e->name, "steps", c->total, 0);
    if (dist_rank() != 0) pg.enabled = 0;
    char text[256];
    int rc = RLHF_OK, stop = 0;
    while (c->st.step < c->total && !stop) {
        stop = sys_interrupted();
        if (dist_size() == 1 && stop) break;
        float lr = lr_schedule(c->st.step, c->warmup, c->total, (float)c->lr, (float)c->min_lr);
        if ((rc = c->step(c, lr, err))) break;
        if (!isfinite(c->loss)) {
            rc = err_set(err, RLHF_EINVAL, "loss became %g at step %lld; try a lower --lr", c->loss,
                         (long long)c->st.step + 1);
            break;
        }
        c->st.step++;
        if (dist_stop_together(&stop)) {
            rc = err_set(err, RLHF_EIO, "MPI all-reduce failed");
            break;
        }
        db_metricbuf_add(&c->metrics, c->st.step, "lr", lr);
        if (c->st.step % c->eval_every == 0 || c->st.step == c->total) {
            if ((rc = c->eval(c, err))) break;
            if (!pg.enabled && dist_rank() == 0) {
                c->status(c, text, sizeof text, 1);
                fprintf(stderr, "step %lld/%lld: %s\n", (long long)c->st.step, (long long)c->total,
                        text);
            }
        }
        if (c->st.step % c->save_every == 0 || c->st.step == c->total)
            if ((rc = train_cmd_save(c, c->st.step == c->total, err))) break;
        c->status(c, text, sizeof text, 0);
        progress_update(&pg, c->st.step, text);
    }
    progress_finish(&pg, NULL);
    *stopped = stop || sys_interrupted();
    if (rc) return rc;
    if (*stopped || c->st.step == 0 || (c->st.step % c->save_every && c->st.step != c->total))
        rc = train_cmd_save(c, 1, err);
    return rc;
}

int train_cmd_register(TrainCmd *c, int stopped, const char *note, Err *err) {
    if (stopped && dist_rank() == 0)
        fprintf(stderr,
                "%s: interrupted at step %lld; checkpoint saved to %s (rerun with --resume)\n",
                c->e->name, (long long)c->st.step, c->out);
    if (!c->db) return RLHF_OK;
    int rc = db_metricbuf_flush(c->db, c->st.run_id, &c->metrics, err);
    if (!rc)
        rc = cli_register_checkpoint(c->db, c->out, c->name, c->kind, c->st.parent_id, &c->m.cfg,
                                     c->template, c->st.run_id, stopped ? "interrupted" : "done",
                                     note, NULL, err);
    return rc;
}

int train_cmd_fail(TrainCmd *c, const Err *err) {
    if (c->db && c->st.run_id > 0) {
        Err e2 = {0};
        db_metricbuf_flush(c->db, c->st.run_id, &c->metrics, &e2);
        db_run_finish(c->db, c->st.run_id, "failed", 0, err->msg, &e2);
    }
    train_cmd_free(c);
    return cli_fail(c->e, err);
}

void train_cmd_free(TrainCmd *c) {
    db_metricbuf_free(&c->metrics);
    adamw_free(&c->opt);
    model_free(&c->m);
    free(c->template);
    free(c->payload);
    c->template = NULL, c->payload = NULL;
    if (c->db) db_close(c->db);
    c->db = NULL;
}
