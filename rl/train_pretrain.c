/* rlhf pretrain on the run engine: next-token training of a fresh model on
 * text files. The corpus is one token stream (documents split at blank
 * lines, each <s> document </s>) whose tail is held out; each step draws
 * random windows from the rest with an RNG whose state rides in the
 * checkpoint, so a resumed run draws what an uninterrupted one would. Under
 * MPI every rank draws all windows and trains on its slice of the batch. */
#include "rl/trainers.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/dist.h"
#include "model/loss.h"
#include "model/tokenizer.h"
#include "util/progress.h"
#include "util/rng.h"
#include "util/sys.h"
#include "util/text.h"

typedef struct Pretrain {
    const PretrainOpts *o;
    Tokenizer *tok;
    int *data;
    int64_t n, n_train; /* training tokens: [0, n_train), held out: [n_train, n) */
    RunState rs;
    Rng rng;
    int B, T;
    int *xbuf, *ybuf;
    int64_t tok0;
    double t0;
} Pretrain;

/* Appends the documents of one file (split at blank lines) to the stream. */
static int load_file(Pretrain *p, const char *path, int64_t *cap, Err *err) {
    char *text;
    size_t len;
    int rc = sys_read_file(path, &text, &len, err);
    if (rc) return rc;
    for (size_t i = 0; !rc && i < len;) {
        while (i < len && (text[i] == '\n' || text[i] == '\r')) i++;
        if (i >= len) break;
        size_t j = i;
        while (j < len && !(text[j] == '\n' && j + 1 < len &&
                            (text[j + 1] == '\n' ||
                             (text[j + 1] == '\r' && j + 2 < len && text[j + 2] == '\n'))))
            j++;
        if (j - i > INT_MAX / 2) {
            rc = err_set(err, RLHF_EINVAL, "%s: a document over 1 GiB", path);
            break;
        }
        int need = tok_encode_cap(j - i), got;
        while (!rc && p->n + need > *cap) {
            int *q = realloc(p->data, (size_t)*cap * 2 * sizeof(int));
            if (!q) rc = err_set(err, RLHF_ENOMEM, "out of memory for the token stream");
            else p->data = q, *cap *= 2;
        }
        if (!rc && (rc = tok_encode(p->tok, text + i, j - i, 1, 1, p->data + p->n, need, &got, err)))
            err_prefix(err, "%s: ", path);
        if (!rc) p->n += got;
        i = j;
    }
    free(text);
    return rc;
}

int pretrain_config(const PretrainOpts *o, int vocab, Config *c, Err *err) {
    int rc = model_config_named(o->config, c, err);
    if (rc) return rc;
    int *f[6] = {&c->dim, &c->n_layers, &c->n_heads, &c->n_kv_heads, &c->hidden_dim, &c->seq_len};
    for (int i = 0; i < 6; i++)
        if (o->over[i]) *f[i] = (int)o->over[i];
    /* --heads alone on a config with kv == heads keeps plain multi-head attention */
    if (o->over[2] && !o->over[3] && c->n_kv_heads > c->n_heads) c->n_kv_heads = c->n_heads;
    c->vocab_size = vocab;
    return model_config_validate(c, err);
}

static int prepare(TrainRun *r, Err *err) {
    Pretrain *p = r->ctx;
    const PretrainOpts *o = p->o = r->opts;
    if (dist_size() > o->t.batch)
        return err_set(err, RLHF_EINVAL, "--batch %ld is smaller than the %d MPI ranks", o->t.batch,
                       dist_size());
    int rc = tok_load(o->t.tok_path, &p->tok, err);
    int64_t cap = 1 << 16;
    if (!rc && !(p->data = malloc((size_t)cap * sizeof(int))))
        rc = err_set(err, RLHF_ENOMEM, "out of memory");
    for (int f = 0; !rc && f < o->n_corpus; f++) rc = load_file(p, o->corpus[f], &cap, err);
    if (rc) return rc;
    sha256_hex(p->data, (size_t)p->n * sizeof(int), r->sha);
    Config cfg;
    if ((rc = pretrain_config(o, tok_vocab_size(p->tok), &cfg, err)) ||
        (rc = model_create(&r->m, &cfg, 0, err)))
        return rc;
    model_init_random(&r->m, (uint64_t)o->t.seed);
    unsigned char *tb;
    size_t tl;
    if ((rc = tok_to_bytes(p->tok, &tb, &tl, err))) return rc;
    rc = model_set_tokenizer(&r->m, tb, tl, err);
    free(tb);
    p->B = (int)o->t.batch, p->T = cfg.seq_len;
    p->n_train = p->n - (int64_t)(o->t.val_frac * (double)p->n);
    r->n_train = p->n;
    if (!rc && p->n_train < p->T + 2)
        rc = err_set(err, RLHF_EINVAL,
                     "the corpus has %lld tokens (%lld for training): too few for sequences of %d; "
                     "give more text or a smaller --seq",
                     (long long)p->n, (long long)p->n_train, p->T);
    return rc;
}

static int setup(TrainRun *r, Err *err) {
    Pretrain *p = r->ctx;
    const Config *c = &r->m.cfg;
    r->total = p->o->t.steps;
    r->st.batch = (uint32_t)p->B;
    if (r->resumed && r->st.payload != (int64_t)sizeof p->rng.s)
        return err_set(err, RLHF_EFORMAT, "%s: its training state has no data order", r->o->out);
    if (r->resumed) memcpy(p->rng.s, r->payload, sizeof p->rng.s);
    else rng_seed(&p->rng, (uint64_t)p->o->t.seed ^ 0x9e3779b97f4a7c15ULL);
    if (!r->payload && !(r->payload = malloc(sizeof p->rng.s)))
        return err_set(err, RLHF_ENOMEM, "out of memory");
    r->st.payload = sizeof p->rng.s;
    r->rate_unit = "tokens";
    p->t0 = now_seconds(), p->tok0 = r->st.tokens_seen;
    p->xbuf = malloc((size_t)p->B * p->T * sizeof(int));
    p->ybuf = malloc((size_t)p->B * p->T * sizeof(int));
    if (!p->xbuf || !p->ybuf) return err_set(err, RLHF_ENOMEM, "out of memory");
    if (dist_rank() == 0)
        fprintf(stderr,
                "pretrain: %zu parameters (dim %d, layers %d, heads %d/%d kv, hidden %d, vocab %d, "
                "seq %d); corpus %lld tokens (%lld held out)\n",
                r->m.n_params, c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->hidden_dim,
                c->vocab_size, c->seq_len, (long long)p->n, (long long)(p->n - p->n_train));
    return model_runstate_create(&p->rs, c, p->B, p->T, err);
}

static int save_state(TrainRun *r, void **bytes, size_t *len, Err *err) {
    Pretrain *p = r->ctx;
    (void)err;
    memcpy(r->payload, p->rng.s, sizeof p->rng.s);
    *bytes = r->payload, *len = sizeof p->rng.s;
    return RLHF_OK;
}

/* The gradients of accum micro-batches of random windows. Every rank draws
 * all B windows (the same RNG stream) and keeps rows [lo, hi); the loss is
 * scaled by the global count, so the summed gradients are one process's. */
static int grads(TrainRun *r, Err *err) {
    Pretrain *p = r->ctx;
    long accum = p->o->t.accum;
    int B = p->B, T = p->T, N = B * T, lo, hi;
    dist_slice(B, &lo, &hi);
    double total = 0;
    for (long a = 0; a < accum; a++) {
        for (int b = 0; b < B; b++) {
            int64_t off = (int64_t)rng_below(&p->rng, (uint64_t)(p->n_train - T));
            if (b < lo || b >= hi) continue;
            memcpy(p->xbuf + (b - lo) * T, p->data + off, T * sizeof(int));
            memcpy(p->ybuf + (b - lo) * T, p->data + off + 1, T * sizeof(int));
        }
        LossHeadCe ce = {.targets = p->ybuf, .scale = 1.0f / (N * (float)accum), .grad = 1};
        int rc = model_forward(&r->m, &p->rs, p->xbuf, hi - lo, T, 0, err);
        if (!rc) rc = model_head(&r->m, &p->rs, 1, loss_head_ce, &ce, err);
        if (!rc) rc = model_backward(&r->m, &p->rs, p->xbuf, NULL, NULL, NULL, err);
        if (rc) return rc;
        total += ce.total;
    }
    if (dist_size() > 1 &&
        (dist_allreduce_sum(r->m.grads, r->m.n_params) || dist_allreduce_double(&total, 1)))
        return err_set(err, RLHF_EIO, "MPI all-reduce failed");
    r->st.tokens_seen += (int64_t)N * accum;
    r->loss = total / ((double)N * accum);
    r->rate = (double)(r->st.tokens_seen - p->tok0) / (now_seconds() - p->t0 + 1e-9);
    train_metric(r, "train_loss", r->loss);
    return RLHF_OK;
}

/* Mean loss over up to 8 batches of consecutive windows of the held-out tail
 * (rank 0's: the others have no store to log it in). */
static int eval(TrainRun *r, Err *err) {
    Pretrain *p = r->ctx;
    if (dist_rank() != 0) return RLHF_OK;
    train_metric(r, "tokens_per_s", r->rate);
    int64_t vn = p->n - p->n_train;
    int T = p->T;
    if (vn < 2) return r->st.last_val = NAN, RLHF_OK;
    if (vn < T + 1) T = (int)(vn - 1);
    int64_t windows = (vn - 1) / T;
    if (windows > 8L * p->B) windows = 8L * p->B;
    double total = 0, count = 0;
    for (int64_t w0 = 0; w0 < windows; w0 += p->B) {
        int b = (int)(windows - w0 < p->B ? windows - w0 : p->B);
        for (int i = 0; i < b; i++) {
            const int *src = p->data + p->n_train + (w0 + i) * T;
            memcpy(p->xbuf + i * T, src, T * sizeof(int));
            memcpy(p->ybuf + i * T, src + 1, T * sizeof(int));
        }
        LossHeadCe ce = {.targets = p->ybuf};
        int rc = model_forward(&r->m, &p->rs, p->xbuf, b, T, 0, err);
        if (!rc) rc = model_head(&r->m, &p->rs, 0, loss_head_ce, &ce, err);
        if (rc) return rc;
        total += ce.total;
        count += ce.count;
    }
    r->st.last_val = total / count;
    train_metric(r, "val_loss", r->st.last_val);
    return RLHF_OK;
}

static void config(TrainRun *r, cJSON *j) {
    Pretrain *p = r->ctx;
    cJSON_AddNumberToObject(j, "batch", p->B);
    cJSON_AddNumberToObject(j, "accum", (double)p->o->t.accum);
    cJSON_AddNumberToObject(j, "tokens", (double)p->n);
}

static void report(TrainRun *r, char *note, size_t nn, char *line, size_t nl) {
    double val = r->st.last_val;
    long long step = (long long)r->st.step;
    snprintf(note, nn, "step %lld, val loss %.4f", step, val);
    if (isnan(r->loss)) /* a resumed run that had nothing left to do */
        snprintf(line, nl, "already trained %lld steps: val loss %.4f; %s is up to date", step,
                 val, r->o->out);
    else
        snprintf(line, nl, "trained %lld steps: train loss %.4f, val loss %.4f; wrote %s", step,
                 r->loss, val, r->o->out);
}

static void release(TrainRun *r) {
    Pretrain *p = r->ctx;
    model_runstate_free(&p->rs);
    free(p->data), free(p->xbuf), free(p->ybuf);
    tok_free(p->tok);
}

const Trainer TRAIN_PRETRAIN = {
    .who = "pretrain", .label = "pretraining", .magic = "RL-LM\0\0\0", .kind = "base",
    .run_kind = "pretrain", .changed = "the corpus or the tokenizer", .prepare = prepare,
    .setup = setup, .grads = grads, .eval = eval, .save_state = save_state, .config = config,
    .report = report, .ctx_size = sizeof(Pretrain), .release = release};
