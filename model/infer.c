/* KV-cache inference: a pass over n rows (prompt positions, or one token of
 * each of n streams) runs every matrix product once over all the rows
 * (model/matvec.h), then attends each row over its own history: the shared
 * prefix cache, then the row's stream cache. Same layers as the training
 * forward (model/layers.h), so the logits agree with it. A decode step of a
 * small model is split by streams over the threads (infer_decode_parts). */
#include "model/infer.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/fastmath.h"
#include "model/layers.h"
#include "model/lora.h"
#include "model/matvec.h"
#include "model/parallel.h"
#include "model/safetensors.h"

/* rows a prefill pass takes; queries an attention group takes at most */
enum { PREFILL_ROWS = 64, ATT_Q = 8 };

void infer_set_threads(int n) {
    if (n < 1) return;
    openblas_set_num_threads(n);
    matvec_set_threads(n);
}

/* The matrices a pass multiplies by, in one order for the three copies. */
enum { IM_Q, IM_K, IM_V, IM_O, IM_1, IM_2, IM_3, IM_CLS, IM_N };

/* matrix i's (OC, C) and how many there are (one per layer; one classifier) */
static int mat_shape(const Config *c, int i, int *OC, int *C) {
    int D = c->dim, Q = model_q_dim(c), KV = model_kv_dim(c), H = c->hidden_dim;
    static const int in_is[IM_N] = {0, 0, 0, 1, 0, 2, 0, 0}; /* 0: dim, 1: Q, 2: H */
    int outs[IM_N] = {Q, KV, KV, D, H, D, H, c->vocab_size};
    *OC = outs[i];
    *C = in_is[i] == 0 ? D : in_is[i] == 1 ? Q : H;
    return i == IM_CLS ? 1 : c->n_layers;
}

static const float *model_matrix(const Model *m, int i) {
    const Weights *w = &m->w;
    const float *src[IM_N] = {w->wq, w->wk, w->wv, w->wo, w->w1, w->w2, w->w3, w->wcls};
    return src[i];
}

/* where matrix i's copy starts: packed fp32 or packed bf16 */
static void *copy_slot(Infer *st, int i, int bf16) {
    struct InferPacked *p = &st->packed;
    struct InferBf16 *q = &st->bf16;
    float **f[IM_N] = {&p->wq, &p->wk, &p->wv, &p->wo, &p->w1, &p->w2, &p->w3, &p->wcls};
    uint16_t **h[IM_N] = {&q->wq, &q->wk, &q->wv, &q->wo, &q->w1, &q->w2, &q->w3, &q->wcls};
    return bf16 ? (void *)h[i] : (void *)f[i];
}

/* elements of one (OC, C) matrix's copy */
static size_t copy_count(int OC, int C, int bf16) {
    return bf16 ? matvec_packed_bf16_count(OC, C) : matvec_packed_floats(OC, C);
}

/* bytes of matrix i's copy, every layer's (i < 0: of all the matrices) */
static size_t copy_bytes(const Config *c, int i, int bf16) {
    if (i < 0) {
        size_t total = 0;
        for (int k = 0; k < IM_N; k++)
            total += copy_bytes(c, k, bf16);
        return total;
    }
    int OC, C, count = mat_shape(c, i, &OC, &C);
    return (size_t)count * copy_count(OC, C, bf16) * (bf16 ? sizeof(uint16_t) : sizeof(float));
}

/* Matrix i of layer l in the Infer's copy (packed fp32, or packed bf16 when
 * *bf16 is set: an Infer has one of the two), and its shape. */
static void *copy_at(const Infer *st, int i, int l, int *bf16, int *OC, int *C) {
    mat_shape(&st->m->cfg, i, OC, C);
    *bf16 = infer_uses_bf16(st);
    void *slot = copy_slot((Infer *)st, i, *bf16);
    size_t at = (size_t)l * copy_count(*OC, *C, *bf16);
    return *bf16 ? (void *)(*(uint16_t **)slot + at) : (void *)(*(float **)slot + at);
}

/* Packs (matrix, layer) items lo..hi into the copy the Infer has: item k <
 * IM_CLS * L is matrix k / L, layer k % L; the last is the classifier. */
static void pack_part(void *ctx, int64_t lo, int64_t hi, int part) {
    Infer *st = ctx;
    const Config *c = &st->m->cfg;
    int L = c->n_layers, OC, C, bf16;
    (void)part;
    for (int64_t k = lo; k < hi; k++) {
        int i = k < (int64_t)IM_CLS * L ? (int)(k / L) : IM_CLS, l = i == IM_CLS ? 0 : (int)(k % L);
        void *dst = copy_at(st, i, l, &bf16, &OC, &C);
        const float *src = model_matrix(st->m, i) + (size_t)l * OC * C;
        if (bf16) matvec_pack_bf16(dst, src, OC, C);
        else matvec_pack(dst, src, OC, C);
    }
}

/* The packed copies of the matrices (fp32, or rounded to bf16), in one array. */
static int make_copy(Infer *st, const Model *m, int bf16, Err *err) {
    size_t total = copy_bytes(&m->cfg, -1, bf16);
    /* plain pages: sys_alloc_big's huge ones took 3x as long to fill (1 GB
     * for a 0.5B model; the kernel compacts memory to find them) */
    char *p = malloc(total);
    if (!p)
        return err_set(err, RLHF_ENOMEM, "infer: out of memory for %.1f MB of %s weights",
                       (double)total / 1e6, bf16 ? "bf16" : "packed");
    if (bf16) st->bf16_mem = (uint16_t *)p;
    else st->packed_mem = (float *)p;
    for (int i = 0; i < IM_N; i++) {
        if (bf16) *(uint16_t **)copy_slot(st, i, 1) = (uint16_t *)p;
        else *(float **)copy_slot(st, i, 0) = (float *)p;
        p += copy_bytes(&m->cfg, i, bf16);
    }
    par_for((int64_t)IM_CLS * m->cfg.n_layers + 1, 1, pack_part, st);
    return RLHF_OK;
}

int infer_batch_streams(const Config *c, int k_min, int want) {
    double stream = 2.0 * sizeof(float) * c->n_layers * c->seq_len * model_kv_dim(c);
    int fit = (int)((double)(2u << 30) / stream), n = want < fit ? want : fit;
    return n > k_min ? n : k_min;
}

int infer_create(Infer *st, const Model *m, int max_streams, Err *err) {
    return infer_create_weights(st, m, max_streams, INFER_WEIGHTS_F32, err);
}

int infer_create_weights(Infer *st, const Model *m, int max_streams, InferWeights wt, Err *err) {
    memset(st, 0, sizeof *st);
    const Config *c = &m->cfg;
    if (max_streams < 1 || max_streams > 4096)
        return err_set(err, RLHF_EINVAL, "infer: %d streams (need 1..4096)", max_streams);
    int C = c->dim, H = c->hidden_dim, KV = model_kv_dim(c), T = c->seq_len, V = c->vocab_size;
    int Q = model_q_dim(c); /* q and the attention output xb2 are Q wide */
    int R = max_streams > PREFILL_ROWS ? max_streams : PREFILL_ROWS;
    size_t L = (size_t)c->n_layers, hs = (size_t)model_head_size(c);
    size_t KF = (size_t)c->n_kv_heads * matvec_keys_floats(T, (int)hs); /* a layer's keys */
    size_t sizes[] = {
        L * KF,
        L * T * KV, /* prefix k, v */
        L * max_streams * KF,
        L * max_streams * T * KV, /* stream k, v */
        (size_t)max_streams * V,  /* logits */
        (size_t)R * C,
        (size_t)R * C,
        (size_t)R * Q,
        (size_t)R * Q, /* x xb xb2 q */
        (size_t)R * KV,
        (size_t)R * KV, /* k v */
        (size_t)R * H,
        (size_t)R * H,              /* hb hb2 */
        (size_t)MATVEC_MAX_THREADS * ATT_Q * T + (size_t)R * (c->n_heads + 1), /* scores per thread + rstd (rows, heads) */
        (size_t)T * hs / 2,
        (size_t)T * hs / 2,      /* rope */
        (size_t)max_streams * V, /* lrow */
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        total += sizes[i];
    st->mem = calloc(total, sizeof(float));
    st->pos = calloc((size_t)max_streams, sizeof(int));
    if (!st->mem || !st->pos) {
        infer_free(st);
        return err_set(err, RLHF_ENOMEM, "infer: out of memory for %.1f MB of KV cache",
                       total * 4.0 / 1e6);
    }
    float **ptrs[] = {
        &st->key_prefix, &st->val_prefix, &st->key_stream, &st->val_stream, &st->logits, &st->x,
        &st->xb,         &st->xb2,        &st->q,          &st->k,          &st->v,      &st->hb,
        &st->hb2,        &st->att,        &st->rope_cos,   &st->rope_sin,   &st->lrow};
    float *p = st->mem;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        *ptrs[i] = p;
        p += sizes[i];
    }
    st->m = m;
    st->max_streams = max_streams;
    st->max_rows = R;
    rope_tables(st->rope_cos, st->rope_sin, T, c);
    int rc = make_copy(st, m,
                       wt == INFER_WEIGHTS_BF16 || (wt == INFER_WEIGHTS_AUTO && model_weights_are_bf16(m)),
                       err);
    if (rc) infer_free(st);
    return rc;
}

void infer_refresh(Infer *st) {
    if (st->packed_mem || st->bf16_mem) par_for((int64_t)IM_CLS * st->m->cfg.n_layers + 1, 1, pack_part, st);
}

void infer_free(Infer *st) {
    free(st->mem);
    free(st->bf16_mem);
    free(st->packed_mem);
    free(st->pos);
    memset(st, 0, sizeof *st);
}

void infer_reset(Infer *st) {
    st->prefix_len = 0;
    st->n_streams = 0;
}

/* out (n, OC) = in (n, C) · W^T with W (OC, C) matrix i of layer l, from the
 * Infer's packed or bf16 copy, through model/matvec.h: it reads W from memory
 * once for all rows, without sgemm's packing copy, which on these shapes (a prompt is tens
 * of rows) is as fast as sgemm and much faster for the few rows of a decode
 * step; and it gives every row the same bits whatever the batch, so a prompt
 * prefilled at once equals one fed token by token. */
static void product(const Infer *st, int i, int l, float *out, const float *in, int n) {
    int OC, C, bf16;
    const void *w = copy_at(st, i, l, &bf16, &OC, &C);
    if (bf16)
        matvec_rows_packed_bf16(out, in, w, n, C, OC);
    else
        matvec_rows_packed(out, in, w, n, C, OC);
}

/* Products of a layer that read the same input, as one job on the pool: one
 * wait instead of one a product, and small ones (a batch's q, k and v on a
 * small model) shared out too. Item j is chunk j of the products laid end to
 * end; with gate (the gate and up projections, 0 and 1), an item is the same
 * chunk of both, then SwiGLU on those columns of every row. The same bits as
 * product() on each (and swiglu_forward after). */
typedef struct {
    const float *in;
    float *out[3];
    const void *w[3];
    int n, C, bf16, gate, rows, OC[3], first[4];
} Fused;

static void fused_items(void *ctx, int lo, int hi, int tid) {
    const Fused *f = ctx;
    (void)tid;
    for (int j = lo, p = 0; j < hi; j++) {
        while (j >= f->first[p + 1])
            p++;
        int o0 = (j - f->first[p]) * f->rows;
        int o1 = o0 + f->rows < f->OC[p] ? o0 + f->rows : f->OC[p];
        matvec_packed_range(f->out[p], f->in, f->w[p], f->bf16, f->n, f->C, f->OC[p], o0, o1);
        if (!f->gate) continue;
        matvec_packed_range(f->out[1], f->in, f->w[1], f->bf16, f->n, f->C, f->OC[1], o0, o1);
        for (int r = 0; r < f->n; r++) {
            float *g = f->out[0] + (size_t)r * f->OC[0] + o0;
            swiglu_forward(g, g, f->out[1] + (size_t)r * f->OC[0] + o0, o1 - o0);
        }
    }
}

static void products(const Infer *st, int l, const float *in, int n, int count, const int *mats,
                     float *const *outs, int gate) {
    Fused f = {.in = in, .n = n, .gate = gate};
    long long work = 0;
    int total = 0, parts = gate ? 1 : count;
    for (int p = 0; p < count; p++) {
        f.w[p] = copy_at(st, mats[p], l, &f.bf16, &f.OC[p], &f.C);
        f.out[p] = outs[p];
        work += (long long)n * f.OC[p] * f.C;
        if (p < parts) total += f.OC[p];
    }
    int want = 4 * matvec_threads();
    f.rows = ((total + want - 1) / want + MATVEC_CHUNK - 1) / MATVEC_CHUNK * MATVEC_CHUNK;
    for (int p = 0; p < parts; p++)
        f.first[p + 1] = f.first[p] + (f.OC[p] + f.rows - 1) / f.rows;
    int items = f.first[parts];
    /* too little work to wake anyone: all in the caller */
    matvec_par(items, work < MATVEC_PAR_MIN_WORK ? items : 1, fused_items, &f);
}

/* The value cache of kv head h of layer l for stream s (-1: the prefix) at
 * position t. Each head's positions lie one after another, hs floats apart
 * (head-major), so attention reads a head's values (and keys, keys_at) front
 * to back instead of a slice of every position's row: on a batch of streams
 * whose caches do not stay in L3, the strided slices left the hardware
 * prefetcher behind. */
static float *cache_at(const Infer *st, float *prefix, float *stream, int l, int s, int h, int t) {
    const Config *c = &st->m->cfg;
    size_t hs = (size_t)model_head_size(c), NKV = (size_t)c->n_kv_heads, T = (size_t)c->seq_len;
    if (s < 0 || t < st->prefix_len) return prefix + (((size_t)l * NKV + h) * T + t) * hs;
    return stream + ((((size_t)l * st->max_streams + s) * NKV + h) * T + t) * hs;
}

/* The key cache of kv head h of layer l for stream s (-1: the prefix), its
 * positions in matvec.h's blocks of sixteen (dimension-major inside a block,
 * so the scores of sixteen positions are one vector, with no horizontal
 * sums): position t at block t / 16 of the part that holds it (a stream's
 * from prefix_len on; its blocks before that go unused). */
static float *keys_at(const Infer *st, int l, int s, int h) {
    const Config *c = &st->m->cfg;
    size_t KF = matvec_keys_floats(c->seq_len, model_head_size(c)), NKV = (size_t)c->n_kv_heads;
    if (s < 0) return st->key_prefix + ((size_t)l * NKV + h) * KF;
    return st->key_stream + (((size_t)l * st->max_streams + s) * NKV + h) * KF;
}

/* The per-row buffers of a pass from row r0 on, and its scratch for
 * attention scores (ATT_Q rows of seq_len for each pool thread from att).
 * Part p of a decode step split by streams (infer_decode_parts) has the
 * rows from its first and thread slot p's scratch (the pool is busy with the
 * parts, so its calls on the pool run in its own thread, as thread 0). */
typedef struct {
    float *x, *xb, *xb2, *q, *k, *v, *hb, *hb2, *rstd, *att;
} Rows;

static Rows rows_at(const Infer *st, int r0, int slot) {
    const Config *c = &st->m->cfg;
    size_t C = (size_t)c->dim, Q = (size_t)model_q_dim(c), KV = (size_t)model_kv_dim(c),
           H = (size_t)c->hidden_dim, r = (size_t)r0, T = (size_t)c->seq_len;
    float *rstd = st->att + (size_t)MATVEC_MAX_THREADS * ATT_Q * T; /* (n) or (n, NH) */
    return (Rows){st->x + r * C,   st->xb + r * C,  st->xb2 + r * Q, st->q + r * Q,
                  st->k + r * KV,  st->v + r * KV,  st->hb + r * H,  st->hb2 + r * H,
                  rstd + r * (size_t)(c->n_heads + 1), st->att + (size_t)slot * ATT_Q * T};
}

/* Attention of a group of queries that share a kv head: heads h0..h1 (of
 * kv head (h0 / grp)) of rows r0..r1, at most ATT_Q of them. Row r attends
 * positions 0..pos[r] of its stream: the shared prefix's rows, then the
 * stream's own. Rows past the prefix (decoding) share the prefix segment:
 * its keys and values are read once for all the group's queries; a prefill
 * row comes alone (each has its own length). Each query's scores, softmax
 * and sums are those of one head alone, bit for bit. sc: ATT_Q rows of
 * seq_len scores. */
FM_INLINE void attend_group(const Infer *st, const Rows *b, const int *streams, const int *pos,
                            int l, int h0, int h1, int r0, int r1, float *sc) {
    const Config *c = &st->m->cfg;
    int hs = model_head_size(c), grp = c->n_heads / c->n_kv_heads, Q = model_q_dim(c);
    int T = c->seq_len, kvh = h0 / grp, nh = h1 - h0;
    float scale = 1.0f / sqrtf((float)hs);
    float *scp[ATT_Q], *outp[ATT_Q];
    const float *qp[ATT_Q];
    for (int r = r0, i = 0; r < r1; r++)
        for (int h = h0; h < h1; h++, i++) {
            qp[i] = b->q + (size_t)r * Q + (size_t)h * hs;
            outp[i] = b->xb2 + (size_t)r * Q + (size_t)h * hs;
            scp[i] = sc + (size_t)i * T;
            memset(outp[i], 0, sizeof(float) * hs);
        }
    /* segment 0: prefix positions [0, n0), the same for every row here;
     * segment 1: row r's stream positions [n0, pos[r]] */
    int s0 = streams[r0], p0 = pos[r0];
    int n0 = s0 < 0 || p0 < st->prefix_len ? p0 + 1 : st->prefix_len, nq = nh * (r1 - r0);
    const float *v0 = cache_at(st, st->val_prefix, st->val_stream, l, -1, kvh, 0);
    matvec_scores_multi(scp, qp, nq, keys_at(st, l, -1, kvh), 0, n0, hs, scale);
    for (int r = r0; r < r1; r++) {
        int i = (r - r0) * nh;
        matvec_scores_multi(scp + i, qp + i, nh, keys_at(st, l, streams[r], kvh), n0, pos[r] + 1, hs,
                            scale);
        for (int j = 0; j < nh; j++)
            vec_softmax(scp[i + j], pos[r] + 1);
    }
    matvec_accum_multi(outp, (const float *const *)scp, nq, v0, (size_t)hs, n0, hs);
    for (int r = r0; r < r1; r++) {
        int i = (r - r0) * nh, n1 = pos[r] + 1 - n0;
        if (!n1) continue;
        const float *a1[ATT_Q];
        for (int j = 0; j < nh; j++)
            a1[j] = scp[i + j] + n0;
        matvec_accum_multi(outp + i, a1, nh,
                           cache_at(st, st->val_prefix, st->val_stream, l, streams[r], kvh, n0),
                           (size_t)hs, n1, hs);
    }
}

/* Attention of layer l for n rows on the decode pool, one group of queries
 * (attend_group) per item: item i is kv head i % NKV's chunk (i / NKV) % hc
 * of heads, rows chunk i / (NKV * hc); each writes its own slice of xb2, with
 * the scores in its thread's slot of att. */
typedef struct {
    const Infer *st;
    const Rows *b;
    const int *streams, *pos;
    int l, n, heads, rows, hc; /* heads and rows a chunk, head chunks a kv head */
} AttendJob;

/* (a SIMD clone: the softmax of the scores inlined from fastmath.h is a good
 * part of attention's time on small heads) */
MODEL_SIMD_CLONES static void attend_items(void *ctx, int lo, int hi, int tid) {
    const AttendJob *j = ctx;
    const Config *c = &j->st->m->cfg;
    int NKV = c->n_kv_heads, grp = c->n_heads / NKV;
    float *sc = j->b->att + (size_t)tid * ATT_Q * c->seq_len;
    for (int i = lo; i < hi; i++) {
        int kh = i % NKV, hc = (i / NKV) % j->hc, rc = i / (NKV * j->hc);
        int h0 = kh * grp + hc * j->heads, h1 = h0 + j->heads < (kh + 1) * grp ? h0 + j->heads : (kh + 1) * grp;
        int r0 = rc * j->rows, r1 = r0 + j->rows < j->n ? r0 + j->rows : j->n;
        attend_group(j->st, j->b, j->streams, j->pos, j->l, h0, h1, r0, r1, sc);
    }
}

/* The items of layer l's attention: rows past the prefix (every row of a
 * decode step) go ATT_Q queries a group, a prefill's one row at a time. */
static void attend_layer(const Infer *st, const Rows *b, const int *streams, const int *pos, int l,
                         int n) {
    const Config *c = &st->m->cfg;
    int grp = c->n_heads / c->n_kv_heads, shared = 1;
    for (int r = 0; r < n; r++)
        shared &= streams[r] >= 0 && pos[r] >= st->prefix_len;
    AttendJob aj = {st, b, streams, pos, l, n, grp < ATT_Q ? grp : ATT_Q, 1, 0};
    aj.hc = (grp + aj.heads - 1) / aj.heads;
    if (shared) aj.rows = ATT_Q / aj.heads;
    int items = c->n_kv_heads * aj.hc * ((n + aj.rows - 1) / aj.rows);
    int grain = items / (4 * matvec_threads());
    matvec_par(items, grain < 1 ? 1 : grain, attend_items, &aj);
}

/* One pass over n rows: row r is token tokens[r] of stream streams[r] (-1 for
 * the prefix) at position pos[r], in the buffers of b. Leaves the final
 * hidden states in b->x. */
static void forward_rows(Infer *st, const Rows *b, const int *tokens, const int *streams,
                         const int *pos, int n) {
    const Model *m = st->m;
    const Config *c = &m->cfg;
    int C = c->dim, H = c->hidden_dim, KV = model_kv_dim(c), NH = c->n_heads, NKV = c->n_kv_heads;
    int hs = model_head_size(c), h2 = hs / 2, Q = model_q_dim(c);
    float eps = model_norm_eps(c);
    float *x = b->x, *xb = b->xb, *xb2 = b->xb2, *q = b->q, *k = b->k, *v = b->v, *hb = b->hb,
          *hb2 = b->hb2, *rstd = b->rstd;
    const Lora *lo = m->lora && !m->lora_off ? m->lora : NULL;
    embedding_forward(x, tokens, m->w.emb, n, C);
    for (int l = 0; l < c->n_layers; l++) {
        rmsnorm_forward(xb, rstd, x, m->w.rms_att + (size_t)l * C, n, C, eps);
        static const int qkv[3] = {IM_Q, IM_K, IM_V};
        products(st, l, xb, n, 3, qkv, (float *const[]){q, k, v}, 0);
        if (lo) {
            lora_apply(lo, LORA_Q, l, q, xb, n);
            lora_apply(lo, LORA_K, l, k, xb, n);
            lora_apply(lo, LORA_V, l, v, xb, n);
        }
        if (m->w.bq) {
            bias_forward(q, m->w.bq + (size_t)l * Q, n, Q);
            bias_forward(k, m->w.bk + (size_t)l * KV, n, KV);
            bias_forward(v, m->w.bv + (size_t)l * KV, n, KV);
        }
        if (c->qk_norm) { /* in place: nothing here needs the values before the norm */
            rmsnorm_forward(q, rstd, q, m->w.q_norm + (size_t)l * hs, n * NH, hs, eps);
            rmsnorm_forward(k, rstd, k, m->w.k_norm + (size_t)l * hs, n * NKV, hs, eps);
        }
        for (int r = 0; r < n; r++) {
            const float *cs = st->rope_cos + (size_t)pos[r] * h2,
                        *sn = st->rope_sin + (size_t)pos[r] * h2;
            rope_forward(q + (size_t)r * Q, cs, sn, 1, 1, NH, hs);
            rope_forward(k + (size_t)r * KV, cs, sn, 1, 1, NKV, hs);
            int part = streams[r] < 0 || pos[r] < st->prefix_len ? -1 : streams[r];
            for (int h = 0; h < NKV; h++) {
                matvec_key_put(keys_at(st, l, part, h), pos[r], k + (size_t)r * KV + (size_t)h * hs, hs);
                memcpy(cache_at(st, st->val_prefix, st->val_stream, l, streams[r], h, pos[r]),
                       v + (size_t)r * KV + (size_t)h * hs, sizeof(float) * hs);
            }
        }
        /* all rows' keys are in the cache before any row attends (prefill is causal) */
        attend_layer(st, b, streams, pos, l, n);
        product(st, IM_O, l, xb, xb2, n);
        if (lo) lora_apply(lo, LORA_O, l, xb, xb2, n);
        residual_forward(x, x, xb, n * C);
        rmsnorm_forward(xb, rstd, x, m->w.rms_ffn + (size_t)l * C, n, C, eps);
        /* SwiGLU inside the job, unless LoRA's terms come first */
        static const int gate_up[2] = {IM_1, IM_3};
        products(st, l, xb, n, 2, gate_up, (float *const[]){hb, hb2}, !lo);
        if (lo) {
            lora_apply(lo, LORA_GATE, l, hb, xb, n);
            lora_apply(lo, LORA_UP, l, hb2, xb, n);
            swiglu_forward(hb, hb, hb2, n * H);
        }
        product(st, IM_2, l, xb, hb, n);
        if (lo) lora_apply(lo, LORA_DOWN, l, xb, hb, n);
        residual_forward(x, x, xb, n * C);
    }
    rmsnorm_forward(x, rstd, x, m->w.rms_final, n, C, eps);
}

int infer_fork(Infer *st, int k, Err *err) {
    if (k < 1 || k > st->max_streams)
        return err_set(err, RLHF_EINVAL, "infer: %d streams asked, room for %d", k,
                       st->max_streams);
    size_t V = (size_t)st->m->cfg.vocab_size;
    for (int s = 0; s < k; s++) {
        st->pos[s] = st->prefix_len;
        if (s && st->prefix_len) memcpy(st->logits + s * V, st->logits, sizeof(float) * V);
    }
    st->n_streams = k;
    return RLHF_OK;
}

/* Tokens outside the vocabulary, or past the context from position at. */
static int check_tokens(const Infer *st, const int *tokens, int n, int at, Err *err) {
    const Config *c = &st->m->cfg;
    if (n < 1) return err_set(err, RLHF_EINVAL, "infer: nothing to prefill");
    if (at + n > c->seq_len)
        return err_set(err, RLHF_EINVAL, "prompt of %d tokens does not fit the context of %d",
                       at + n, c->seq_len);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return err_set(err, RLHF_EINVAL, "token %d is outside the vocabulary (%d)", tokens[i],
                           c->vocab_size);
    return RLHF_OK;
}

/* tokens[0..n) of stream s (-1: the prefix) from position at, in passes of
 * up to PREFILL_ROWS rows; the logits after the last one into row lrow. */
static void prefill_rows(Infer *st, int s, const int *tokens, int n, int at, int lrow) {
    int streams[PREFILL_ROWS], pos[PREFILL_ROWS];
    for (int i = 0; i < PREFILL_ROWS; i++)
        streams[i] = s;
    Rows b = rows_at(st, 0, 0);
    for (int done = 0; done < n;) {
        int r = n - done < PREFILL_ROWS ? n - done : PREFILL_ROWS;
        for (int i = 0; i < r; i++)
            pos[i] = at + done + i;
        forward_rows(st, &b, tokens + done, streams, pos, r);
        done += r;
        if (done == n) /* logits only for the last position */
            product(st, IM_CLS, 0, infer_logits(st, lrow),
                    b.x + (size_t)(r - 1) * st->m->cfg.dim, 1);
    }
}

int infer_prefill(Infer *st, const int *tokens, int n, Err *err) {
    if (st->n_streams)
        return err_set(err, RLHF_EINVAL,
                       "infer: cannot extend the prefix after a fork (reset first)");
    int rc = check_tokens(st, tokens, n, st->prefix_len, err);
    if (rc) return rc;
    prefill_rows(st, -1, tokens, n, st->prefix_len, 0);
    st->prefix_len += n;
    return RLHF_OK;
}

int infer_feed(Infer *st, int s, const int *tokens, int n, Err *err) {
    if (s < 0 || s >= st->n_streams)
        return err_set(err, RLHF_EINVAL, "infer: stream %d of %d", s, st->n_streams);
    int rc = check_tokens(st, tokens, n, st->pos[s], err);
    if (rc) return rc;
    prefill_rows(st, s, tokens, n, st->pos[s], s);
    st->pos[s] += n;
    return RLHF_OK;
}

void infer_rewind(Infer *st, int s) {
    if (s >= 0 && s < st->n_streams) st->pos[s] = st->prefix_len;
}

void infer_copy_stream(Infer *st, int dst, int src) {
    const Config *c = &st->m->cfg;
    int hs = model_head_size(c), p = st->prefix_len, n1 = st->pos[src] - p;
    size_t n = (size_t)n1 * (size_t)hs;
    /* the key blocks that hold positions p..pos[src] (and lanes before p the
     * stream never reads) */
    size_t k0 = matvec_keys_floats(p / MATVEC_KEY_BLOCK * MATVEC_KEY_BLOCK, hs),
           kn = n1 ? matvec_keys_floats(st->pos[src], hs) - k0 : 0;
    for (int l = 0; l < c->n_layers; l++)
        for (int h = 0; h < c->n_kv_heads; h++) {
            memcpy(keys_at(st, l, dst, h) + k0, keys_at(st, l, src, h) + k0, sizeof(float) * kn);
            memcpy(cache_at(st, NULL, st->val_stream, l, dst, h, st->prefix_len),
                   cache_at(st, NULL, st->val_stream, l, src, h, st->prefix_len), sizeof(float) * n);
        }
    st->pos[dst] = st->pos[src];
    memcpy(infer_logits(st, dst), infer_logits(st, src), sizeof(float) * (size_t)c->vocab_size);
}

/* A decode step's streams are independent (each reads the shared prefix and
 * its own cache). Split by outputs, a pass hands its rows from thread to
 * thread at every product: on a small model that costs more than a product
 * of a few rows. Split by streams, the threads share nothing until the
 * logits; each reads all the weights, which is cheap only while they stay
 * in cache, hence the size limit, and each runs its rows through the
 * kernels alone, which pays from three rows a thread: with fewer, the
 * narrow kernels over all the weights cost more than the hand-overs. The
 * demo model on two bound threads (matvec_bind), µs a token by streams
 * against by outputs: 30.0 / 26.7 for 2 streams, 18.1 / 18.1 for 4, 18.3 /
 * 17.1 for 5, 15.4 / 16.7 for 6, 13.0 / 16.0 for 8. */
#define SPLIT_MAX_BYTES (8u << 20)
enum { SPLIT_MIN_ROWS = 3 };

int infer_decode_parts(const Infer *st, int n) {
    const Model *m = st->m;
    int t = matvec_threads();
    if (m->lora && !m->lora_off) return 1; /* LoRA's sgemms stay on the caller's thread */
    size_t read = copy_bytes(&m->cfg, -1, infer_uses_bf16(st)); /* the weights a pass reads */
    return t > 1 && n >= SPLIT_MIN_ROWS * t && read <= SPLIT_MAX_BYTES ? t : 1;
}

typedef struct {
    Infer *st;
    const int *toks, *rows, *pos;
    float *out;
    int n, parts;
} DecodeJob;

static void decode_items(void *ctx, int lo, int hi, int tid) {
    const DecodeJob *j = ctx;
    size_t V = (size_t)j->st->m->cfg.vocab_size;
    (void)tid;
    for (int p = lo; p < hi; p++) {
        int r0 = j->n * p / j->parts, r1 = j->n * (p + 1) / j->parts;
        Rows b = rows_at(j->st, r0, p);
        forward_rows(j->st, &b, j->toks + r0, j->rows + r0, j->pos + r0, r1 - r0);
        product(j->st, IM_CLS, 0, j->out + (size_t)r0 * V, b.x, r1 - r0);
    }
}

int infer_decode(Infer *st, const int *tokens, const unsigned char *active, Err *err) {
    const Config *c = &st->m->cfg;
    if (!st->n_streams) return err_set(err, RLHF_EINVAL, "infer: decode before infer_fork");
    int rows[4096], toks[4096], pos[4096], n = 0;
    for (int s = 0; s < st->n_streams; s++) {
        if (active && !active[s]) continue;
        if (st->pos[s] >= c->seq_len)
            return err_set(err, RLHF_EINVAL, "infer: stream %d is at the context limit (%d)", s,
                           c->seq_len);
        if (tokens[s] < 0 || tokens[s] >= c->vocab_size)
            return err_set(err, RLHF_EINVAL, "token %d is outside the vocabulary (%d)", tokens[s],
                           c->vocab_size);
        rows[n] = s;
        toks[n] = tokens[s];
        pos[n] = st->pos[s];
        n++;
    }
    if (n == 0) return RLHF_OK;
    size_t V = (size_t)c->vocab_size;
    int all = n == st->n_streams; /* rows are streams 0..n-1: write logits in place */
    float *out = all ? st->logits : st->lrow;
    int parts = infer_decode_parts(st, n);
    if (parts > 1) {
        DecodeJob dj = {st, toks, rows, pos, out, n, parts};
        matvec_par(parts, 1, decode_items, &dj);
    } else {
        Rows b = rows_at(st, 0, 0);
        forward_rows(st, &b, toks, rows, pos, n);
        product(st, IM_CLS, 0, out, b.x, n);
    }
    for (int r = 0; r < n; r++) {
        if (!all) memcpy(st->logits + rows[r] * V, st->lrow + r * V, sizeof(float) * V);
        st->pos[rows[r]]++;
    }
    return RLHF_OK;
}
