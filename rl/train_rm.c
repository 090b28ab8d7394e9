/* rlhf train-rm on the run engine: the reward model, InstructGPT's step 2.
 * Each prompt ranked over K answers is one batch element (rm/rm_train.h);
 * held-out prompts come from export's deterministic split; the order of the
 * groups is a function of the seed, so a resumed run equals an uninterrupted
 * one. After the last step the reward head's bias is set so that the init
 * model's own answers score 0 on average (the normalisation rides in the
 * checkpoint's payload, so a run stopped in it resumes into it). */
#include "rl/trainers.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "db/scores.h"
#include "model/chat.h"
#include "model/checkpoint.h"
#include "model/dist.h"
#include "model/infer.h"
#include "model/sample.h"
#include "rm/rm_score.h"
#include "util/progress.h"
#include "util/rng.h"
#include "util/sys.h"
#include "util/text.h"

/* The trainer's bytes in the checkpoint. */
typedef struct NormState {
    int32_t done, pad;
    double mean; /* subtracted from the bias when done */
} NormState;

typedef struct Rm {
    const RmTrainOpts *o;
    Tokenizer *tok;
    PrefSet set;
    RmData data;
    RmTrainer tr;
    int64_t *train, *val, n_val, *order, n_order;
    NormState norm;
    int normalised; /* in this process */
    RmStats st;
    int64_t cmp, cmp0;
    double t0, val_acc, cps;
} Rm;

/* A fingerprint of the training data, the template and the split, so a resume
 * on other data is refused instead of mixing two runs. */
static void data_sha(const Rm *m, const char *template, char out[65]) {
    Sha256 c;
    sha256_init(&c);
    const char *t = template ? template : "";
    sha256_update(&c, t, strlen(t) + 1);
    for (int g = 0; g < m->set.n; g++) {
        const PrefGroup *p = &m->set.g[g];
        sha256_update(&c, p->prompt, strlen(p->prompt) + 1);
        sha256_update(&c, &p->val, sizeof p->val);
        for (int k = 0; k < p->n; k++) {
            sha256_update(&c, p->answers[k], strlen(p->answers[k]) + 1);
            sha256_update(&c, &p->rank[k], sizeof p->rank[k]);
            sha256_update(&c, &p->likert[k], sizeof p->likert[k]);
        }
    }
    unsigned char d[32];
    sha256_final(&c, d);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The backbone from the init checkpoint with a reward head (a new one drawn
 * small, like a linear layer's default), its tokenizer and template. */
static int load_init(TrainRun *r, Rm *m, Err *err) {
    const TrainOpts *t = &m->o->t;
    int rc = db_template_resolve(r->db, t->template, t->init, chat_template_find, &r->template,
                                 &r->parent_id, err);
    if (!rc && r->template && seq_template_check(r->template, err))
        return err_prefix(err, "template '%s': ", r->template);
    if (!rc) rc = model_load(t->init, &r->m, err);
    if (!rc) rc = model_load_tokenizer(&r->m, t->init, t->tok_path, &m->tok, err);
    if (rc) return rc;
    int had = r->m.heads & MODEL_HEAD_REWARD;
    if ((rc = model_set_heads(&r->m, MODEL_HEAD_REWARD, err))) return rc;
    if (!had) {
        Rng rng;
        rng_seed(&rng, (uint64_t)t->seed ^ 0x5eedULL);
        int C = r->m.cfg.dim;
        for (int i = 0; i < C; i++) r->m.w.reward[i] = (float)(rng_normal(&rng) / sqrt((double)C));
        r->m.w.reward[C] = 0;
    }
    if (r->m.tokenizer && !t->tok_path) return RLHF_OK;
    unsigned char *tb;
    size_t tl;
    if ((rc = tok_to_bytes(m->tok, &tb, &tl, err))) return rc;
    rc = model_set_tokenizer(&r->m, tb, tl, err);
    free(tb);
    return rc;
}

static int load_data(TrainRun *r, Rm *m, Err *err) {
    const RmTrainOpts *o = m->o;
    const char *data = o->t.data;
    PrefLoadOptions lo = o->load;
    lo.val_frac = o->t.val_frac;
    int rc = data ? prefs_load_file(data, lo.val_frac, &m->set, err)
                  : prefs_load_store(r->db, &lo, &m->set, err);
    if (rc) return rc;
    if (m->set.n == 0) {
        if (data)
            return err_set(err, RLHF_EINVAL,
                           "%s: no pair to train on (%lld records had chosen == rejected)", data,
                           (long long)m->set.skipped);
        if (m->set.skipped)
            return err_set(err, RLHF_EINVAL,
                           "no rankings to train on: the %lld rankings the filters select rank "
                           "every answer level (ties only)",
                           (long long)m->set.skipped);
        return err_set(err, RLHF_EINVAL,
                       "no rankings to train on%s (rank candidates with `rlhf label` or "
                       "`rlhf import` comparisons, or pass --data FILE)",
                       o->filtered ? " with these filters" : "");
    }
    m->train = malloc(sizeof(int64_t) * (size_t)m->set.n);
    m->val = malloc(sizeof(int64_t) * (size_t)m->set.n);
    if (!m->train || !m->val) return err_set(err, RLHF_ENOMEM, "out of memory");
    for (int g = 0; g < m->set.n; g++) {
        if (m->set.g[g].val) m->val[m->n_val++] = g;
        else m->train[r->n_train++] = g;
    }
    if (r->n_train == 0)
        return err_set(err, RLHF_EINVAL,
                       "all %d ranked prompts fall in the held-out share (--val-frac %g): nothing "
                       "to train on",
                       m->set.n, lo.val_frac);
    if (o->bootstrap > 0) { /* a bootstrap member of an ensemble: n draws with replacement */
        int64_t *pick = malloc(sizeof *pick * (size_t)r->n_train);
        if (!pick) return err_set(err, RLHF_ENOMEM, "out of memory");
        Rng rng;
        rng_seed(&rng, (uint64_t)o->bootstrap * 0x9e3779b97f4a7c15ULL);
        for (int64_t i = 0; i < r->n_train; i++)
            pick[i] = m->train[rng_below(&rng, (uint64_t)r->n_train)];
        memcpy(m->train, pick, sizeof *pick * (size_t)r->n_train);
        free(pick);
    }
    return rm_data_encode(&m->data, &m->set, m->tok, r->template, r->m.cfg.seq_len, err);
}

/* The order of training groups over all epochs: each epoch a permutation
 * drawn from the seed and the epoch number alone, so any step can be redone. */
static int make_order(TrainRun *r, Rm *m, Err *err) {
    int64_t n = r->n_train;
    long epochs = m->o->t.epochs;
    m->n_order = n * epochs;
    m->order = malloc(sizeof(int64_t) * (size_t)m->n_order);
    if (!m->order) return err_set(err, RLHF_ENOMEM, "out of memory");
    for (long e = 0; e < epochs; e++) {
        int64_t *p = m->order + e * n;
        memcpy(p, m->train, sizeof(int64_t) * (size_t)n);
        Rng rng;
        rng_seed(&rng, (uint64_t)m->o->t.seed * 1000003u + (uint64_t)e);
        rng_shuffle(&rng, p, (size_t)n, sizeof *p);
    }
    r->total = (m->n_order + m->o->t.batch - 1) / m->o->t.batch;
    return RLHF_OK;
}

static int prepare(TrainRun *r, Err *err) {
    Rm *m = r->ctx;
    m->o = r->opts;
    int rc = load_init(r, m, err);
    if (!rc) rc = load_data(r, m, err);
    if (!rc) rc = make_order(r, m, err);
    if (!rc) data_sha(m, r->template, r->sha);
    return rc;
}

static void print_data(const TrainRun *r, const Rm *m) {
    const RmTrainOpts *o = m->o;
    int64_t pairs = 0;
    for (int g = 0; g < m->set.n; g++)
        for (int i = 0; i < m->set.g[g].n; i++)
            for (int j = i + 1; j < m->set.g[g].n; j++)
                pairs += m->set.g[g].rank[i] != m->set.g[g].rank[j];
    fprintf(stderr,
            "train-rm: %d ranked prompts from %s (%lld pairs; %lld ties and %lld rankings without "
            "an order left out): %lld for training, %lld held out (--val-frac %g)\n",
            m->set.n, o->t.data ? o->t.data : "the store", (long long)pairs,
            (long long)m->set.ties_dropped, (long long)m->set.skipped, (long long)r->n_train,
            (long long)m->n_val, o->t.val_frac);
    if (!o->t.data)
        fprintf(stderr,
                "train-rm: %lld of %lld answers as their sampled token ids, the rest (imported, "
                "cut at a stop string, or spelled otherwise by this tokenizer) re-encoded\n",
                (long long)m->data.sampled_ids, (long long)m->data.n_ex);
    if (m->data.cut)
        fprintf(stderr,
                "train-rm: %lld of %lld answers had their prompt cut from the left to fit the "
                "context of %d tokens%s\n",
                (long long)m->data.cut, (long long)m->data.n_ex, r->m.cfg.seq_len,
                m->data.cut_answer ? "" : " (every answer kept whole)");
    if (m->data.cut_answer)
        fprintf(stderr, "train-rm: %lld answers alone exceed the context and lost their end\n",
                (long long)m->data.cut_answer);
    fprintf(stderr, "train-rm: %lld steps of %ld prompts (%ld epoch%s), %zu parameters%s\n",
            (long long)r->total, o->t.batch, o->t.epochs, o->t.epochs > 1 ? "s" : "",
            r->m.n_params, r->resumed ? "; resumed" : "");
}

static int setup(TrainRun *r, Err *err) {
    Rm *m = r->ctx;
    const RmTrainOpts *o = m->o;
    if (r->resumed && (r->st.batch != (uint32_t)o->t.batch || r->st.seed != (uint64_t)o->t.seed))
        return err_set(err, RLHF_EINVAL,
                       "%s was trained with --batch %u --seed %lld; resume with the same (or start "
                       "over with --force)",
                       o->t.out, r->st.batch, (long long)r->st.seed);
    if (r->resumed && r->st.payload != (int64_t)sizeof m->norm)
        return err_set(err, RLHF_EFORMAT, "%s: its training state has no normalisation", o->t.out);
    if (r->resumed) memcpy(&m->norm, r->payload, sizeof m->norm);
    if (m->norm.done && r->st.step < r->total) {
        rm_normalise(&r->m, -m->norm.mean); /* train on: the shift is set again at the end */
        m->norm.done = 0;
    }
    r->st.batch = (uint32_t)o->t.batch;
    if (r->warmup < 0) r->warmup = (long)(r->total / 10);
    if (!r->eval_every) r->eval_every = r->total / 5 > 0 ? (long)(r->total / 5) : 1;
    m->val_acc = r->st.last_val;
    m->st.loss = NAN;
    m->t0 = now_seconds();
    if (dist_rank() == 0) print_data(r, m);
    return rm_trainer_create(&m->tr, &r->m, (int)o->micro, m->data.max_k, &o->loss, err);
}

static int save_state(TrainRun *r, void **bytes, size_t *len, Err *err) {
    Rm *m = r->ctx;
    NormState *n = malloc(sizeof *n);
    if (!n) return err_set(err, RLHF_ENOMEM, "out of memory");
    *n = m->norm;
    *bytes = n, *len = sizeof *n;
    return RLHF_OK;
}

static int grads(TrainRun *r, Err *err) {
    Rm *m = r->ctx;
    int64_t B = m->o->t.batch, a = r->st.step * B, b = a + B < m->n_order ? a + B : m->n_order;
    int rc = rm_train_groups(&m->tr, &m->data, m->order + a, b - a, 1.0f / (float)(b - a), &m->st,
                             err);
    if (rc) return rc;
    r->loss = m->st.loss;
    m->cmp += m->st.pairs;
    train_metric(r, "train_loss", m->st.loss);
    train_metric(r, "train_accuracy", m->st.accuracy);
    train_metric(r, "reward_mean", m->st.r_mean);
    train_metric(r, "reward_std", m->st.r_std);
    train_metric(r, "reward_margin", m->st.margin);
    return RLHF_OK;
}

static int eval(TrainRun *r, Err *err) {
    Rm *m = r->ctx;
    m->cps = (double)(m->cmp - m->cmp0) / (now_seconds() - m->t0 + 1e-9);
    train_metric(r, "comparisons_per_s", m->cps);
    m->val_acc = NAN;
    if (!m->n_val) return RLHF_OK;
    RmStats st;
    int rc = rm_eval_groups(&m->tr, &m->data, m->val, m->n_val, &st, NULL, err);
    if (rc) return rc;
    m->val_acc = r->st.last_val = st.accuracy;
    train_metric(r, "val_accuracy", st.accuracy);
    train_metric(r, "val_loss", st.loss);
    return RLHF_OK;
}

static void status(TrainRun *r, char *buf, size_t n, int line) {
    Rm *m = r->ctx;
    if (line)
        snprintf(buf, n, "loss %.4f, accuracy %.3f, held-out accuracy %.3f, %.0f comparisons/s",
                 m->st.loss, m->st.accuracy, m->val_acc, m->cps);
    else
        snprintf(buf, n, "loss %.4f  acc %.2f  val %.3f  lr %.1e", m->st.loss, m->st.accuracy,
                 m->val_acc, r->lr);
}

/* Encodes the init model's answers in the store into *ex (*cnt of them). */
static int store_answers(TrainRun *r, Rm *m, SeqExample **ex, int64_t *cnt, Err *err) {
    ScoreTodoFilter f = {0, r->parent_id, NULL, 0, 4096};
    ScoreTodo *rows;
    int nr;
    int rc = db_score_todo(r->db, &f, &rows, &nr, err);
    if (rc) return rc;
    *ex = calloc((size_t)(nr ? nr : 1), sizeof **ex);
    if (!*ex) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    for (int i = 0; !rc && i < nr; i++, (*cnt)++) /* a cut answer without </s>, as scored */
        rc = seq_encode(m->tok, r->template, rows[i].prompt, rows[i].text, !rows[i].cut,
                        r->m.cfg.seq_len, &(*ex)[i], err);
    db_score_todo_free(rows, nr);
    return rc;
}

/* Samples n answers of the init model to the training prompts into *ex. */
static int fresh_answers(TrainRun *r, Rm *m, int64_t n, SeqExample **ex, int64_t *cnt, Err *err) {
    Model init;
    Infer inf;
    int rc = model_load(m->o->t.init, &init, err);
    if (rc) return rc;
    rc = infer_create(&inf, &init, 1, err);
    *ex = calloc((size_t)n, sizeof **ex);
    if (!rc && !*ex) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    SampleParams sp = sample_params_chat(); /* the answers gen would give */
    if (sp.max_tokens > r->m.cfg.seq_len / 2) sp.max_tokens = r->m.cfg.seq_len / 2;
    for (int64_t i = 0; !rc && i < n; i++) {
        if (sys_interrupted()) {
            rc = err_set(err, RLHF_EINTR, "interrupted during the normalisation");
            break;
        }
        const char *prompt = m->set.g[m->train[i % r->n_train]].prompt;
        SeqExample pe;
        SampleResult res;
        /* the prompt as gen prefills it: the template's tokens from <s> on */
        rc = seq_encode(m->tok, r->template, prompt, "", 0, r->m.cfg.seq_len - 1, &pe, err);
        if (rc) break;
        infer_reset(&inf);
        rc = sample_generate(&inf, m->tok, pe.tokens, pe.n_prompt, &sp,
                             (uint64_t)m->o->t.seed * 7919u + (uint64_t)i, &res, err);
        seq_example_free(&pe);
        if (!rc) {
            rc = seq_encode(m->tok, r->template, prompt, res.text, 1, r->m.cfg.seq_len, &(*ex)[i],
                            err);
            sample_result_free(&res);
        }
        if (!rc) (*cnt)++;
    }
    infer_free(&inf);
    model_free(&init);
    return rc;
}

/* Mean reward of the init model's own answers: those in the store, else
 * norm_samples fresh ones. *n = 0 when there are none. RLHF_EINTR on
 * Ctrl-C: sampling can take minutes, and the checkpoint before it (norm
 * not done) resumes into it, drawing the same samples again. */
static int norm_mean(TrainRun *r, Rm *m, double *mean, int64_t *n, const char **what, Err *err) {
    *n = 0, *mean = 0;
    SeqExample *ex = NULL;
    int64_t cnt = 0;
    int rc = RLHF_OK;
    if (r->db && r->parent_id > 0) {
        rc = store_answers(r, m, &ex, &cnt, err);
        *what = "answers of the init model in the store";
    }
    if (!rc && cnt == 0 && m->o->norm_samples > 0) {
        free(ex);
        ex = NULL;
        rc = fresh_answers(r, m, m->o->norm_samples, &ex, &cnt, err);
        *what = "fresh samples from the init model";
    }
    if (!rc && sys_interrupted()) rc = err_set(err, RLHF_EINTR, "interrupted during the normalisation");
    if (!rc && cnt > 0) {
        float *out = malloc(sizeof(float) * (size_t)cnt);
        if (!out) rc = err_set(err, RLHF_ENOMEM, "out of memory");
        if (!rc)
            rc = rm_score_model(&r->m, &m->tr.rs, m->tr.tokens, m->tr.lens, m->tr.max_rows, ex,
                                (int)cnt, out, err);
        double s = 0;
        for (int64_t i = 0; !rc && i < cnt; i++) s += out[i];
        if (!rc) *mean = s / (double)cnt, *n = cnt;
        free(out);
    }
    for (int64_t i = 0; ex && i < cnt; i++) seq_example_free(&ex[i]);
    free(ex);
    return rc;
}

/* Sets the reward bias and saves the run's last checkpoint (rank 0's work). */
static int finish(TrainRun *r, Err *err) {
    Rm *m = r->ctx;
    if (dist_rank() != 0 || m->norm.done) return RLHF_OK;
    double mean;
    int64_t n;
    const char *what = "";
    r->at = r->st.step;
    int rc = norm_mean(r, m, &mean, &n, &what, err);
    if (rc) return rc;
    if (n > 0) {
        double bias = rm_normalise(&r->m, mean);
        m->norm.mean = mean;
        train_metric(r, "norm_bias", bias);
        fprintf(stderr,
                "train-rm: normalisation: %lld %s scored %.4f on average; reward bias set to %.4f\n",
                (long long)n, what, mean, bias);
    } else {
        fprintf(stderr, "train-rm: no answers of the init model to normalise on (--norm-samples 0); "
                        "bias left as trained\n");
    }
    m->norm.done = 1, m->normalised = 1;
    return train_save(r, 1, err);
}

static void config(TrainRun *r, cJSON *j) {
    Rm *m = r->ctx;
    const RmTrainOpts *o = m->o;
    if (!o->t.data) cJSON_AddStringToObject(j, "data", "store");
    cJSON_AddNumberToObject(j, "groups", m->set.n);
    cJSON_AddNumberToObject(j, "val_frac", o->t.val_frac);
    cJSON_AddNumberToObject(j, "epochs", (double)o->t.epochs);
    cJSON_AddNumberToObject(j, "batch", (double)o->t.batch);
    cJSON_AddNumberToObject(j, "margin", o->loss.margin);
    cJSON_AddNumberToObject(j, "center", o->loss.center);
    if (o->bootstrap > 0) cJSON_AddNumberToObject(j, "bootstrap", (double)o->bootstrap);
}

static void report(TrainRun *r, char *note, size_t nn, char *line, size_t nl) {
    Rm *m = r->ctx;
    long long step = (long long)r->st.step;
    double bias = r->m.w.reward[r->m.cfg.dim], val = r->st.last_val;
    char acc[64] = "no held-out prompts"; /* not "nan": nothing was measured */
    if (m->n_val > 0 && !isnan(val)) snprintf(acc, sizeof acc, "held-out accuracy %.4f", val);
    snprintf(note, nn, "step %lld, %s, bias %.4f", step, acc, bias);
    if (r->st.step == r->step0 && !m->normalised)
        snprintf(line, nl, "already trained %lld steps: held-out accuracy %.4f; %s is up to date",
                 step, val, r->o->out);
    else if (r->st.step == r->step0) /* resumed into the normalisation: no step, no train loss */
        snprintf(line, nl,
                 "trained %lld steps: held-out accuracy %.4f over %lld prompts; reward bias %.4f; "
                 "wrote %s",
                 step, val, (long long)m->n_val, bias, r->o->out);
    else
        snprintf(line, nl,
                 "trained %lld steps: train loss %.4f, held-out accuracy %.4f over %lld prompts; "
                 "reward bias %.4f; wrote %s",
                 step, m->st.loss, val, (long long)m->n_val, bias, r->o->out);
}

static void release(TrainRun *r) {
    Rm *m = r->ctx;
    rm_trainer_free(&m->tr);
    rm_data_free(&m->data);
    prefs_free(&m->set);
    free(m->train), free(m->val), free(m->order);
    tok_free(m->tok);
}

const Trainer TRAIN_RM = {
    .who = "train-rm", .label = "train-rm", .magic = "RL-RM\0\0\0", .kind = "rm",
    .run_kind = "rm", .changed = "the rankings, the split or the template",
    .prepare = prepare, .setup = setup, .grads = grads, .eval = eval, .status = status,
    .save_state = save_state, .finish = finish, .config = config, .report = report,
    .ctx_size = sizeof(Rm), .release = release};

/* ---- --dump: the first step for the PyTorch reference ------------------------------ */

static int write_file(const char *dir, const char *name, const void *p, size_t n, Err *err) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return err_set(err, RLHF_EIO, "%s: cannot write", path);
    int bad = fwrite(p, 1, n, f) != n;
    bad |= fclose(f) != 0;
    return bad ? err_set(err, RLHF_EIO, "%s: write failed", path) : RLHF_OK;
}

/* The first step's groups in one pass: the model (llama2.c format +
 * heads.bin), the packed tokens, each group's ranks and the rows' lengths
 * (rm.txt), rewards and loss (rm_out.bin), gradients. */
static int dump_step(TrainRun *r, Rm *m, const char *dir, Err *err) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return err_set(err, RLHF_EIO, "%s: cannot create the folder: %s", dir, strerror(errno));
    int64_t G = m->o->t.batch < r->n_train ? m->o->t.batch : r->n_train;
    int rows = 0;
    for (int64_t i = 0; i < G; i++) rows += m->set.g[m->order[i]].n;
    RmTrainer t;
    int rc = rm_trainer_create(&t, &r->m, rows, m->data.max_k, &m->o->loss, err);
    if (rc) return rc;
    RmStats st;
    model_zero_grad(&r->m);
    rc = rm_train_groups(&t, &m->data, m->order, G, 1.0f / (float)G, &st, err);
    int C = r->m.cfg.dim, T = t.rs.t;
    Config *c = &r->m.cfg;
    char path[1200];
    snprintf(path, sizeof path, "%s/model.bin", dir);
    if (!rc) rc = model_save_llama2c(path, &r->m, err);
    float *heads = calloc(2 * (size_t)(C + 1), sizeof *heads);
    float *outv = malloc(sizeof(float) * (size_t)(rows + 1));
    StrBuf txt = {0}, meta = {0};
    if (!rc && (!heads || !outv)) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    if (!rc) {
        memcpy(heads, r->m.w.reward, sizeof(float) * (size_t)(C + 1));
        for (int b = 0; b < rows; b++) outv[b] = t.r[b];
        outv[rows] = (float)st.loss;
        sb_printf(&txt, "center %.9g\n", m->o->loss.center);
        for (int64_t i = 0; i < G; i++) {
            const PrefGroup *g = &m->set.g[m->order[i]];
            for (int k = 0; k < g->n; k++) sb_printf(&txt, "%d%c", g->rank[k], k + 1 < g->n ? ' ' : '\n');
        }
        sb_puts(&txt, "lens");
        for (int b = 0; b < rows; b++) sb_printf(&txt, " %d", t.lens[b]);
        sb_puts(&txt, "\n");
        sb_printf(&meta, "%d %d %d %d %d %d %d %d %d %d\n", c->dim, c->hidden_dim, c->n_layers,
                  c->n_heads, c->n_kv_heads, c->vocab_size, c->seq_len, c->shared_classifier, rows, T);
        rc = write_file(dir, "heads.bin", heads, sizeof(float) * 2 * (size_t)(C + 1), err);
    }
    if (!rc) rc = write_file(dir, "inputs.bin", t.tokens, sizeof(int) * (size_t)rows * T, err);
    if (!rc) rc = write_file(dir, "rm_out.bin", outv, sizeof(float) * (size_t)(rows + 1), err);
    if (!rc) rc = write_file(dir, "grads.bin", r->m.grads, sizeof(float) * r->m.n_params, err);
    if (!rc) rc = write_file(dir, "rm.txt", txt.s, txt.len, err);
    if (!rc) rc = write_file(dir, "meta.txt", meta.s, meta.len, err);
    if (!rc) printf("wrote %s: %lld groups, %d rows of %d tokens, loss %.6f\n", dir, (long long)G, rows, T, st.loss);
    sb_free(&txt), sb_free(&meta);
    free(heads), free(outv);
    rm_trainer_free(&t);
    return rc;
}

int train_rm_dump(const RmTrainOpts *o, const char *dir, Err *err) {
    if (dist_size() > 1) return err_set(err, RLHF_EINVAL, "--dump runs on one process (not under mpirun)");
    Rm m;
    TrainRun r;
    memset(&m, 0, sizeof m);
    memset(&r, 0, sizeof r);
    r.t = &TRAIN_RM, r.o = &o->t, r.opts = o, r.ctx = &m;
    int rc = o->t.db ? db_open(o->t.db, DB_OPEN_READONLY, &r.db, err) : RLHF_OK;
    if (!rc) rc = prepare(&r, err);
    if (!rc) rc = model_grads_alloc(&r.m, err);
    if (!rc) rc = dump_step(&r, &m, dir, err);
    release(&r);
    model_free(&r.m);
    free(r.template);
    if (r.db) db_close(r.db);
    return rc;
}
