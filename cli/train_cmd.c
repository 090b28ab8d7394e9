/* The bookkeeping rlhf sft and rlhf dpo share (train_cmd.h). */
#include "cli/train_cmd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/progress.h"
#include "util/sys.h"

int train_cmd_check_out(TrainCmd *c, int resume, int force) {
    atomic_remove_stale(c->out);
    c->exists = access(c->out, F_OK) == 0;
    if (c->exists && !resume && !force) {
        fprintf(stderr, "rlhf %s: %s exists; pass --resume to continue it or --force to start over\n",
                c->e->name, c->out);
        return EXIT_FAIL;
    }
    return -1;
}

int train_cmd_state(TrainCmd *c, int resume, const char magic[8], const char *sha,
                    const char *changed, uint64_t seed, int64_t parent_id, int64_t n_train,
                    Err *err) {
    c->loss = NAN;
    if (resume && c->exists) {
        int rc = rl_ckpt_resume(c->out, magic, sha, changed, &c->m, &c->opt, &c->st, &c->payload, err);
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
    if (c->resumed) fprintf(stderr, "%s: resumed %s at step %lld\n", c->e->name, c->out, (long long)c->st.step);
    if (!c->db || (c->resumed && c->st.run_id > 0)) return RLHF_OK;
    return db_run_start(c->db, run_kind, config_json, c->st.parent_id, &c->st.run_id, err);
}

int train_cmd_save(TrainCmd *c, Err *err) {
    int rc = rl_ckpt_save(c->out, &c->m, &c->opt, &c->st, c->payload, err);
    if (!rc) rc = db_metricbuf_flush(c->db, c->st.run_id, &c->metrics, err);
    return rc;
}

int train_cmd_loop(TrainCmd *c, int *stopped, Err *err) {
    sys_catch_interrupts();
    Progress pg;
    progress_start(&pg, c->e->name, "steps", c->total, 0);
    char text[256];
    int rc = RLHF_OK;
    while (c->st.step < c->total && !sys_interrupted()) {
        float lr = lr_schedule(c->st.step, c->warmup, c->total, (float)c->lr, (float)c->min_lr);
        if ((rc = c->step(c, lr, err))) break;
        if (!isfinite(c->loss)) {
            rc = err_set(err, RLHF_EINVAL, "loss became %g at step %lld; try a lower --lr", c->loss,
                         (long long)c->st.step + 1);
            break;
        }
        c->st.step++;
        db_metricbuf_add(&c->metrics, c->st.step, "lr", lr);
        if (c->st.step % c->eval_every == 0 || c->st.step == c->total) {
            if ((rc = c->eval(c, err))) break;
            if (!pg.enabled) {
                c->status(c, text, sizeof text, 1);
                fprintf(stderr, "step %lld/%lld: %s\n", (long long)c->st.step, (long long)c->total, text);
            }
        }
        if (c->st.step % c->save_every == 0 || c->st.step == c->total)
            if ((rc = train_cmd_save(c, err))) break;
        c->status(c, text, sizeof text, 0);
        progress_update(&pg, c->st.step, text);
    }
    progress_finish(&pg, NULL);
    *stopped = sys_interrupted();
    if (rc) return rc;
    if (*stopped || c->st.step == 0 || (c->st.step % c->save_every && c->st.step != c->total))
        rc = train_cmd_save(c, err);
    return rc;
}

int train_cmd_register(TrainCmd *c, int stopped, const char *note, Err *err) {
    if (stopped)
        fprintf(stderr, "%s: interrupted at step %lld; checkpoint saved to %s (rerun with --resume)\n",
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
