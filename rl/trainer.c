/* Shared pieces of the rl/ training loops (see trainer.h). */
#include "rl/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/checkpoint.h"
#include "util/rng.h"
#include "util/text.h"

int64_t rl_steps_per_epoch(int n, int B) {
    return n <= 0 ? 1 : ((int64_t)n + B - 1) / B;
}

static const int *g_lens; /* qsort has no context argument in C11 */
static int by_len_desc(const void *a, const void *b) {
    int la = g_lens[*(const int *)a], lb = g_lens[*(const int *)b];
    if (la != lb) return lb - la;
    return *(const int *)a - *(const int *)b;
}

int rl_batch_at(int n, int B, const int *lens, int group, uint64_t seed, int64_t step, int *perm,
                int *idx) {
    if (n <= 0) return 0;
    int64_t spe = rl_steps_per_epoch(n, B), epoch = step / spe, k = step % spe;
    Rng r;
    rng_seed(&r, seed ^ (0x5851f42d4c957f2dULL * (uint64_t)(epoch + 1)));
    for (int i = 0; i < n; i++)
        perm[i] = i;
    rng_shuffle(&r, perm, (size_t)n, sizeof(int));
    if (group > 0 && lens && spe > 1) {
        int64_t run = (int64_t)group * B;
        g_lens = lens;
        for (int64_t s = 0; s < n; s += run)
            qsort(perm + s, (size_t)(s + run <= n ? run : n - s), sizeof(int), by_len_desc);
        /* batch k of the epoch is batch order[k] of the sorted sequence, so
         * long and short batches alternate at random; a short last batch stays last */
        int64_t full = n / B;
        uint64_t *order = malloc(sizeof(uint64_t) * (size_t)spe);
        int64_t pick = k;
        if (order && k < full) {
            for (int64_t i = 0; i < full; i++)
                order[i] = (uint64_t)i;
            rng_shuffle(&r, order, (size_t)full, sizeof(uint64_t));
            pick = (int64_t)order[k];
        }
        free(order);
        k = pick;
    }
    int64_t start = k * B;
    int cnt = (int)(n - start < B ? n - start : B);
    memcpy(idx, perm + start, sizeof(int) * (size_t)cnt);
    return cnt;
}

int rl_batch_create(RlBatch *b, int rows, int T, Err *err) {
    memset(b, 0, sizeof *b);
    b->rows = rows, b->T = T;
    size_t N = (size_t)rows * T;
    b->tokens = malloc(sizeof(int) * N);
    b->targets = malloc(sizeof(int) * N);
    b->lens = malloc(sizeof(int) * (size_t)rows);
    b->n_prompt = malloc(sizeof(int) * (size_t)rows);
    b->ex = malloc(sizeof(SeqExample) * (size_t)rows);
    b->buf = malloc(sizeof(float) * N);
    if (!b->tokens || !b->targets || !b->lens || !b->n_prompt || !b->ex || !b->buf) {
        rl_batch_free(b);
        return err_set(err, RLHF_ENOMEM, "out of memory for a batch of %d x %d", rows, T);
    }
    return RLHF_OK;
}

void rl_batch_free(RlBatch *b) {
    free(b->tokens), free(b->targets), free(b->lens), free(b->n_prompt), free(b->ex), free(b->buf);
    memset(b, 0, sizeof *b);
}

int rl_batch_fill(RlBatch *b, const SeqExample *ex, const int *idx, int n, int *n_targets) {
    for (int i = 0; i < n; i++) {
        b->ex[i] = ex[idx[i]];
        b->n_prompt[i] = ex[idx[i]].n_prompt;
    }
    int T = seq_pack(b->ex, n, b->tokens, b->lens);
    int c = seq_answer_targets(b->tokens, b->lens, b->n_prompt, n, T, b->targets);
    if (n_targets) *n_targets = c;
    return T;
}

int rl_ckpt_save(const char *path, const Model *m, const AdamW *opt, const RlState *st,
                 const void *payload, Err *err) {
    size_t pl = (size_t)st->payload, len = sizeof *st + pl;
    unsigned char *x = malloc(len);
    if (!x) return err_set(err, RLHF_ENOMEM, "out of memory");
    memcpy(x, st, sizeof *st);
    if (pl) memcpy(x + sizeof *st, payload, pl);
    int rc = model_ckpt_save(path, m, opt, x, len, err);
    free(x);
    return rc;
}

int rl_ckpt_load(const char *path, const char magic[8], Model *m, AdamW *opt, RlState *st,
                 void **payload, Err *err) {
    return rl_ckpt_load_onto(path, magic, NULL, NULL, m, opt, st, payload, err);
}

int rl_ckpt_load_onto(const char *path, const char magic[8], const Model *base,
                      const char *base_sha, Model *m, AdamW *opt, RlState *st, void **payload,
                      Err *err) {
    void *x = NULL;
    size_t xl = 0;
    *payload = NULL;
    int rc = base ? model_load_adapter_onto(path, base, base_sha, m, opt, &x, &xl, err)
                  : model_ckpt_load(path, m, opt, &x, &xl, err);
    if (rc) return rc;
    RlState s;
    if (xl < sizeof s || (memcpy(&s, x, sizeof s), memcmp(s.magic, magic, 8) != 0) ||
        s.payload < 0 || (size_t)s.payload != xl - sizeof s || opt->n != model_train_n(m)) {
        free(x);
        return err_set(err, RLHF_EFORMAT, "%s: not a %.8s checkpoint (no training state to resume)",
                       path, magic + 3);
    }
    *st = s;
    if (s.payload) {
        *payload = malloc((size_t)s.payload);
        if (!*payload) {
            free(x);
            return err_set(err, RLHF_ENOMEM, "out of memory");
        }
        memcpy(*payload, (unsigned char *)x + sizeof s, (size_t)s.payload);
    }
    free(x);
    return RLHF_OK;
}

void rl_state_init(RlState *st, const char magic[8], uint64_t seed, int64_t parent_id,
                   int64_t n_train, const char *sha) {
    memset(st, 0, sizeof *st);
    memcpy(st->magic, magic, 8);
    st->version = 1;
    st->seed = seed;
    st->parent_id = parent_id;
    st->n_train = n_train;
    snprintf(st->data_sha, sizeof st->data_sha, "%s", sha);
    st->last_val = NAN;
}

void rl_examples_sha(const SeqExample *ex, int n, const char *settings, char out[65]) {
    Sha256 c;
    sha256_init(&c);
    for (int i = 0; i < n; i++) {
        int h[2] = {ex[i].n, ex[i].n_prompt};
        sha256_update(&c, h, sizeof h);
        sha256_update(&c, ex[i].tokens, sizeof(int) * (size_t)ex[i].n);
    }
    if (settings) sha256_update(&c, settings, strlen(settings));
    unsigned char d[32];
    sha256_final(&c, d);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

int rl_policy_check(Model *m, const char *name, Err *err) {
    int rc = model_require_policy(m, name, err);
    if (!rc && m->heads) rc = model_set_heads(m, 0, err);
    return rc;
}

int rl_policy_load(const char *path, const char *tok_path, Model *m, Tokenizer **tok, Err *err) {
    *tok = NULL;
    int rc = model_load(path, m, err);
    if (!rc) rc = rl_policy_check(m, path, err);
    if (!rc) rc = model_load_tokenizer(m, path, tok_path, tok, err);
    if (!rc && tok_path) {
        unsigned char *tb;
        size_t tl;
        if (!(rc = tok_to_bytes(*tok, &tb, &tl, err))) {
            rc = model_set_tokenizer(m, tb, tl, err);
            free(tb);
        }
    }
    if (rc) {
        tok_free(*tok);
        *tok = NULL;
        model_free(m);
    }
    return rc;
}
