/* Model parameters (one array, one size table), RunState arena, and the
 * batched forward and backward passes of the whole network. */
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "model/layers.h"
#include "model/lora.h"
#include "model/parallel.h"
#include "util/rng.h"
#include "util/sys.h"

static const char *tensor_names[MODEL_NT] = {"token_embedding", "rms_att", "wq", "wk", "wv",
                                             "wo", "rms_ffn", "w1", "w2", "w3", "rms_final",
                                             "wcls", "bq", "bk", "bv", "q_norm", "k_norm",
                                             "reward_head", "value_head"};

const char *model_tensor_name(int t) { return t >= 0 && t < MODEL_NT ? tensor_names[t] : "?"; }

int model_tensor_is_matrix(int t) {
    return t == MODEL_T_EMB || t == MODEL_T_WQ || t == MODEL_T_WK || t == MODEL_T_WV ||
           t == MODEL_T_WO || t == MODEL_T_W1 || t == MODEL_T_W2 || t == MODEL_T_W3 ||
           t == MODEL_T_WCLS;
}

int model_weights_are_bf16(const Model *m) {
    for (int t = 0; t < MODEL_NT; t++) {
        if (!model_tensor_is_matrix(t)) continue;
        const float *p = m->params + model_tensor_offset(m, t);
        uint32_t low = 0, u;
        /* in blocks, so an fp32 model is told apart in its first block */
        for (size_t i = 0; i < m->sizes[t]; i += 4096) {
            size_t e = i + 4096 < m->sizes[t] ? i + 4096 : m->sizes[t];
            for (size_t j = i; j < e; j++) {
                memcpy(&u, p + j, 4);
                low |= u & 0xffffu;
            }
            if (low) return 0;
        }
    }
    return 1;
}

static void fill_sizes(size_t *s, const Config *c, int heads) {
    size_t C = c->dim, H = c->hidden_dim, L = c->n_layers, V = c->vocab_size;
    size_t KV = model_kv_dim(c), Q = model_q_dim(c), hs = model_head_size(c);
    s[MODEL_T_EMB] = V * C;
    s[MODEL_T_RMS_ATT] = L * C;
    s[MODEL_T_WQ] = L * Q * C;
    s[MODEL_T_WK] = L * KV * C;
    s[MODEL_T_WV] = L * KV * C;
    s[MODEL_T_WO] = L * C * Q;
    s[MODEL_T_RMS_FFN] = L * C;
    s[MODEL_T_W1] = L * H * C;
    s[MODEL_T_W2] = L * C * H;
    s[MODEL_T_W3] = L * H * C;
    s[MODEL_T_RMS_FINAL] = C;
    s[MODEL_T_WCLS] = c->shared_classifier ? 0 : V * C;
    s[MODEL_T_BQ] = c->qkv_bias ? L * Q : 0;
    s[MODEL_T_BK] = c->qkv_bias ? L * KV : 0;
    s[MODEL_T_BV] = c->qkv_bias ? L * KV : 0;
    s[MODEL_T_QNORM] = c->qk_norm ? L * hs : 0;
    s[MODEL_T_KNORM] = c->qk_norm ? L * hs : 0;
    s[MODEL_T_REWARD] = (heads & MODEL_HEAD_REWARD) ? C + 1 : 0;
    s[MODEL_T_VALUE] = (heads & MODEL_HEAD_VALUE) ? C + 1 : 0;
}

size_t model_tensor_offset(const Model *m, int t) {
    size_t off = 0;
    for (int i = 0; i < t; i++) off += m->sizes[i];
    return off;
}

static void point_weights(Weights *w, float *base, const Model *m) {
    float **ptrs[MODEL_NT] = {&w->emb, &w->rms_att, &w->wq, &w->wk, &w->wv, &w->wo, &w->rms_ffn,
                              &w->w1, &w->w2, &w->w3, &w->rms_final, &w->wcls, &w->bq, &w->bk,
                              &w->bv, &w->q_norm, &w->k_norm, &w->reward, &w->value};
    float *p = base;
    for (int i = 0; i < MODEL_NT; i++) {
        *ptrs[i] = m->sizes[i] ? p : NULL;
        p += m->sizes[i];
    }
    if (m->cfg.shared_classifier) w->wcls = w->emb;
}

int model_create(Model *m, const Config *cfg, int heads, Err *err) {
    memset(m, 0, sizeof *m);
    int rc = model_config_validate(cfg, err);
    if (rc) return rc;
    m->cfg = *cfg;
    m->heads = heads & (MODEL_HEAD_REWARD | MODEL_HEAD_VALUE);
    fill_sizes(m->sizes, cfg, m->heads);
    for (int i = 0; i < MODEL_NT; i++) m->n_params += m->sizes[i];
    m->params = sys_alloc_big(m->n_params * sizeof(float));
    if (!m->params) return err_set(err, RLHF_ENOMEM, "out of memory for %zu parameters", m->n_params);
    point_weights(&m->w, m->params, m);
    return RLHF_OK;
}

size_t model_param_count(const Config *cfg, int heads) {
    size_t sizes[MODEL_NT], n = 0;
    fill_sizes(sizes, cfg, heads & (MODEL_HEAD_REWARD | MODEL_HEAD_VALUE));
    for (int i = 0; i < MODEL_NT; i++) n += sizes[i];
    return n;
}

void model_free(Model *m) {
    if (!(m->borrowed & 1)) sys_free_big(m->params);
    sys_free_big(m->grads);
    if (m->lora) lora_free(m->lora);
    free(m->lora);
    if (m->borrowed & 2) m->tokenizer = NULL; /* the base's */
    free(m->tokenizer);
    memset(m, 0, sizeof *m);
}

/* With an adapter: the heads are the adapter's slots, the base has no gradients. */
static void lora_bind(Model *m) {
    Lora *lo = m->lora;
    memset(&m->g, 0, sizeof m->g);
    m->w.reward = (m->heads & MODEL_HEAD_REWARD) ? lo->params + lo->off_head[0] : NULL;
    m->w.value = (m->heads & MODEL_HEAD_VALUE) ? lo->params + lo->off_head[1] : NULL;
    if (lo->grads) {
        m->g.reward = m->w.reward ? lo->grads + lo->off_head[0] : NULL;
        m->g.value = m->w.value ? lo->grads + lo->off_head[1] : NULL;
    }
}

int model_grads_alloc(Model *m, Err *err) {
    if (m->lora) {
        int rc = lora_grads_alloc(m->lora, err);
        if (!rc) lora_bind(m);
        return rc;
    }
    if (m->grads) return RLHF_OK;
    m->grads = sys_alloc_big(m->n_params * sizeof(float));
    if (!m->grads) return err_set(err, RLHF_ENOMEM, "out of memory for gradients");
    point_weights(&m->g, m->grads, m);
    return RLHF_OK;
}

void model_zero_grad(Model *m) {
    if (m->lora && m->lora->grads) memset(m->lora->grads, 0, m->lora->n * sizeof(float));
    else if (m->grads) memset(m->grads, 0, m->n_params * sizeof(float));
}

int model_set_tokenizer(Model *m, const void *bytes, size_t len, Err *err) {
    free(m->tokenizer);
    m->tokenizer = NULL;
    m->tokenizer_len = 0;
    if (!bytes || !len) return RLHF_OK;
    m->tokenizer = malloc(len);
    if (!m->tokenizer) return err_set(err, RLHF_ENOMEM, "out of memory for tokenizer");
    memcpy(m->tokenizer, bytes, len);
    m->tokenizer_len = len;
    return RLHF_OK;
}

/* The heads are the last tensors of the array: changing them resizes its
 * tail in place (sys_realloc_big moves the pages, never copies the weights). */
int model_set_heads(Model *m, int heads, Err *err) {
    heads &= MODEL_HEAD_REWARD | MODEL_HEAD_VALUE;
    if (heads == m->heads) return RLHF_OK;
    if ((m->borrowed & 1) && m->lora) { /* a view: its heads are its adapter's alone */
        size_t C1 = (size_t)m->cfg.dim + 1;
        for (int hd = 0; hd < 2; hd++)
            if ((heads & (1 << hd)) && !(m->heads & (1 << hd)))
                memset(m->lora->params + m->lora->off_head[hd], 0, C1 * sizeof(float));
        m->heads = heads;
        lora_bind(m);
        return RLHF_OK;
    }
    if (m->borrowed & 1) return err_set(err, RLHF_EINVAL, "cannot change the heads of shared weights");
    size_t C1 = (size_t)m->cfg.dim + 1, old_n = m->n_params;
    float keep[2][C1]; /* the heads' values, by kind */
    for (int hd = 0; hd < 2; hd++) {
        const float *src = hd ? m->w.value : m->w.reward;
        if (src && !m->lora) memcpy(keep[hd], src, C1 * sizeof(float));
        else memset(keep[hd], 0, C1 * sizeof(float));
    }
    size_t sizes[MODEL_NT], n = 0;
    fill_sizes(sizes, &m->cfg, heads);
    for (int i = 0; i < MODEL_NT; i++) n += sizes[i];
    float *p = sys_realloc_big(m->params, old_n * sizeof(float), n * sizeof(float));
    if (!p) return err_set(err, RLHF_ENOMEM, "out of memory for %zu parameters", n);
    m->params = p;
    if (m->grads) {
        float *g = sys_realloc_big(m->grads, old_n * sizeof(float), n * sizeof(float));
        if (!g) return err_set(err, RLHF_ENOMEM, "out of memory for gradients");
        m->grads = g;
    }
    int had = m->heads;
    memcpy(m->sizes, sizes, sizeof sizes);
    m->n_params = n, m->heads = heads;
    for (int hd = 0; hd < 2; hd++) {
        if (!(heads & (1 << hd))) continue;
        size_t off = model_tensor_offset(m, hd ? MODEL_T_VALUE : MODEL_T_REWARD);
        memcpy(m->params + off, keep[hd], C1 * sizeof(float));
        if (m->grads) memset(m->grads + off, 0, C1 * sizeof(float));
    }
    point_weights(&m->w, m->params, m);
    if (m->grads) point_weights(&m->g, m->grads, m);
    if (m->lora) { /* the heads live in the adapter: a new one starts at 0 */
        Lora *lo = m->lora;
        for (int hd = 0; hd < 2; hd++)
            if ((heads & (1 << hd)) && !(had & (1 << hd)))
                memset(lo->params + lo->off_head[hd], 0, C1 * sizeof(float));
        lora_bind(m);
    }
    return RLHF_OK;
}

float *model_train_params(const Model *m) { return m->lora ? m->lora->params : m->params; }
float *model_train_grads(const Model *m) { return m->lora ? m->lora->grads : m->grads; }
size_t model_train_n(const Model *m) { return m->lora ? m->lora->n : m->n_params; }

int model_train_decays(const Model *m, size_t i) {
    if (m->lora) return i < m->lora->off_head[0];
    for (int t = 0; t < MODEL_NT; t++) {
        if (i < m->sizes[t]) return model_tensor_is_matrix(t);
        i -= m->sizes[t];
    }
    return 0;
}

int model_lora_attach(Model *m, const LoraConfig *c, uint64_t seed, const char *base_path,
                      const char *base_sha, Err *err) {
    if (m->lora) return err_set(err, RLHF_EINVAL, "the model already has a LoRA adapter");
    Lora *lo = calloc(1, sizeof *lo);
    if (!lo) return err_set(err, RLHF_ENOMEM, "out of memory");
    int rc = lora_create(lo, c, &m->cfg, seed, err);
    if (!rc && base_path && !(lo->base_path = strdup(base_path)))
        rc = err_set(err, RLHF_ENOMEM, "out of memory");
    if (rc) {
        lora_free(lo);
        free(lo);
        return rc;
    }
    if (base_sha) snprintf(lo->base_sha, sizeof lo->base_sha, "%s", base_sha);
    size_t C1 = (size_t)m->cfg.dim + 1;
    if (m->w.reward) memcpy(lo->params + lo->off_head[0], m->w.reward, C1 * sizeof(float));
    if (m->w.value) memcpy(lo->params + lo->off_head[1], m->w.value, C1 * sizeof(float));
    sys_free_big(m->grads);
    m->grads = NULL;
    m->lora = lo;
    lora_bind(m);
    return RLHF_OK;
}

int model_lora_merge(Model *m, Err *err) {
    Lora *lo = m->lora;
    if (!lo) return RLHF_OK;
    if (m->borrowed) return err_set(err, RLHF_EINVAL, "cannot merge an adapter into shared weights");
    const Config *c = &m->cfg;
    size_t C = c->dim, H = c->hidden_dim, Q = model_q_dim(c), KV = model_kv_dim(c);
    float *base[LORA_NT] = {m->w.wq, m->w.wk, m->w.wv, m->w.wo, m->w.w1, m->w.w3, m->w.w2};
    size_t per[LORA_NT] = {Q * C, KV * C, KV * C, C * Q, H * C, H * C, C * H};
    for (int t = 0; t < LORA_NT; t++)
        for (int l = 0; l < c->n_layers; l++) lora_merge_into(lo, base[t] + (size_t)l * per[t], t, l);
    size_t C1 = C + 1;
    float *own[2] = {m->params + model_tensor_offset(m, MODEL_T_REWARD),
                     m->params + model_tensor_offset(m, MODEL_T_VALUE)};
    for (int hd = 0; hd < 2; hd++)
        if (m->heads & (1 << hd)) memcpy(own[hd], lo->params + lo->off_head[hd], C1 * sizeof(float));
    lora_free(lo);
    free(lo);
    m->lora = NULL;
    m->lora_off = 0;
    point_weights(&m->w, m->params, m);
    return RLHF_OK;
}

int model_lora_adopt(Model *m, Model *view, Err *err) {
    if (!view->lora || view->params != m->params || m->lora)
        return err_set(err, RLHF_EINVAL, "not an adapter view of this model");
    int rc = model_set_heads(m, view->heads, err);
    if (rc) return rc;
    m->lora = view->lora;
    view->lora = NULL;
    sys_free_big(m->grads);
    m->grads = NULL;
    lora_bind(m);
    model_free(view);
    return RLHF_OK;
}

int model_view(Model *v, const Model *base, Lora *lora, int heads, Err *err) {
    heads &= MODEL_HEAD_REWARD | MODEL_HEAD_VALUE;
    if (heads && !lora) return err_set(err, RLHF_EINVAL, "a view's heads live in its adapter");
    *v = *base;
    v->borrowed = 3; /* the weights and the tokenizer are the base's */
    v->grads = NULL, v->lora_off = 0;
    memset(&v->g, 0, sizeof v->g);
    v->heads = heads;
    v->lora = lora;
    if (lora) lora_bind(v);
    else v->w.reward = v->w.value = NULL;
    return RLHF_OK;
}

void model_init_random(Model *m, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    float resid_scale = 1.0f / sqrtf(2.0f * m->cfg.n_layers);
    for (int t = 0; t < MODEL_NT; t++) {
        float *p = m->params + model_tensor_offset(m, t);
        size_t n = m->sizes[t];
        if (t == MODEL_T_RMS_ATT || t == MODEL_T_RMS_FFN || t == MODEL_T_RMS_FINAL ||
            t == MODEL_T_QNORM || t == MODEL_T_KNORM) {
            for (size_t i = 0; i < n; i++) p[i] = 1.0f;
        } else if (t == MODEL_T_REWARD || t == MODEL_T_VALUE || t == MODEL_T_BQ || t == MODEL_T_BK ||
                   t == MODEL_T_BV) {
            memset(p, 0, n * sizeof(float));
        } else {
            float sd = 0.02f * ((t == MODEL_T_WO || t == MODEL_T_W2) ? resid_scale : 1.0f);
            for (size_t i = 0; i < n; i++) p[i] = sd * (float)rng_normal(&r);
        }
    }
}

/* Floats per chunk of model_head. Each chunk streams wcls (and, with grad,
 * wcls and d wcls again) from memory, so its rows set the arithmetic
 * intensity of the head: 8M floats (32 MB) keeps it compute-bound at C = 256
 * while staying a small share of a step's memory (55 rows at V = 151936). */
#define HEAD_FLOATS ((size_t)1 << 23)

/* Zeroed pages reserved, not committed (a page costs memory once touched),
 * so a run state sized for seq_len costs what its batches use. */
static float *map_floats(size_t n) {
    void *p = mmap(NULL, n * sizeof(float), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void unmap_floats(float *p, size_t n) {
    if (p) munmap(p, n * sizeof(float));
}

int model_runstate_create(RunState *rs, const Config *c, int B, int T, Err *err) {
    memset(rs, 0, sizeof *rs);
    if (B <= 0 || T <= 0 || T > c->seq_len)
        return err_set(err, RLHF_EINVAL, "batch %d x %d does not fit the model (seq_len %d)", B, T,
                       c->seq_len);
    size_t N = (size_t)B * T, C = c->dim, H = c->hidden_dim, L = c->n_layers, V = c->vocab_size;
    size_t KV = model_kv_dim(c), NH = c->n_heads, hs = model_head_size(c), Q = model_q_dim(c);
    size_t qkn = c->qk_norm ? 1 : 0, NKV = c->n_kv_heads;
    size_t R = HEAD_FLOATS / V;
    if (R < 1) R = 1;
    if (R > N) R = N;
    struct {
        float **p;
        size_t n;
    } t[] = {
        {&rs->resid, (L + 1) * N * C}, {&rs->resid_mid, L * N * C}, {&rs->ln1, L * N * C},
        {&rs->ln1_rstd, L * N},        {&rs->q, L * N * Q},         {&rs->k, L * N * KV},
        {&rs->v, L * N * KV},          {&rs->att, L * B * NH * T * T}, {&rs->atty, L * N * Q},
        {&rs->q_pre, qkn * L * N * Q}, {&rs->k_pre, qkn * L * N * KV},
        {&rs->q_rstd, qkn * L * N * NH}, {&rs->k_rstd, qkn * L * N * NKV},
        {&rs->dk_pre, qkn * N * KV},
        {&rs->ln2, L * N * C},         {&rs->ln2_rstd, L * N},      {&rs->h1, L * N * H},
        {&rs->h3, L * N * H},          {&rs->hg, L * N * H},        {&rs->lnf, N * C},
        {&rs->lnf_rstd, N},            {&rs->head, R * V},          {&rs->head_x, 2 * R * C},
        {&rs->reward, N},
        {&rs->value, N},               {&rs->rope_cos, T * hs / 2}, {&rs->rope_sin, T * hs / 2},
        {&rs->dresid, N * C},          {&rs->dln, N * C},           {&rs->datty, N * Q},
        {&rs->dq, N * Q},              {&rs->dk, N * KV},           {&rs->dv, N * KV},
        {&rs->datt, (size_t)PAR_MAX * T * T},    {&rs->dh1, N * H},           {&rs->dh3, N * H},
        {&rs->dhg, N * H},
    };
    size_t total = 0, nt = sizeof t / sizeof t[0];
    /* each piece starts 64 bytes after the last */
    for (size_t i = 0; i < nt; i++) total += (t[i].n + 15) & ~(size_t)15;
    rs->mem = map_floats(total);
    if (!rs->mem)
        return err_set(err, RLHF_ENOMEM, "out of memory for activations (%zu MiB)",
                       total * sizeof(float) >> 20);
    float *p = rs->mem;
    for (size_t i = 0; i < nt; i++) {
        *t[i].p = t[i].n ? p : NULL;
        p += (t[i].n + 15) & ~(size_t)15;
    }
    rs->n_floats = total;
    rs->B = B;
    rs->T = T;
    rs->head_rows = (int)R;
    rope_tables(rs->rope_cos, rs->rope_sin, T, c);
    return RLHF_OK;
}

void model_runstate_free(RunState *rs) {
    unmap_floats(rs->mem, rs->n_floats);
    unmap_floats(rs->logits, rs->n_logits);
    memset(rs, 0, sizeof *rs);
}

int model_forward(const Model *m, RunState *rs, const int *tokens, int B, int T, int flags,
                  Err *err) {
    const Config *c = &m->cfg;
    if (B <= 0 || T <= 0 || T > rs->T || (size_t)B * T > (size_t)rs->B * rs->T)
        return err_set(err, RLHF_EINVAL, "batch %d x %d exceeds the run state's %d x %d", B, T,
                       rs->B, rs->T);
    int N = B * T, C = c->dim, H = c->hidden_dim, KV = model_kv_dim(c), NH = c->n_heads;
    int NKV = c->n_kv_heads, hs = model_head_size(c), V = c->vocab_size, Q = model_q_dim(c);
    float eps = model_norm_eps(c);
    for (int n = 0; n < N; n++)
        if (tokens[n] < 0 || tokens[n] >= V)
            return err_set(err, RLHF_EINVAL, "token %d at position %d is outside the vocabulary (%d)",
                           tokens[n], n, V);
    if ((flags & MODEL_FWD_LOGITS) && !rs->logits) {
        size_t n = (size_t)rs->B * rs->T * V;
        if (!(rs->logits = map_floats(n)))
            return err_set(err, RLHF_ENOMEM, "out of memory for logits (%zu MiB)",
                           n * sizeof(float) >> 20);
        rs->n_logits = n;
    }
    Lora *lo = m->lora && !m->lora_off ? m->lora : NULL;
    if (lo) {
        int mx = C > H ? C : H;
        int rc = lora_reserve(lo, N, mx > Q ? mx : Q, err);
        if (rc) return rc;
        if (lo->training) lo->drop_pass++;
    }
    rs->b = B;
    rs->t = T;
    rs->have_dlnf = 0;
    size_t NC = (size_t)N * C, NK = (size_t)N * KV, NHd = (size_t)N * H, NQ = (size_t)N * Q;
    ParScope ps;
    par_enter(&ps); /* one switch of OpenBLAS's threads for the whole pass */
    embedding_forward(rs->resid, tokens, m->w.emb, N, C);
    /* without a backward to come, every layer reuses layer 0's buffers (and
     * two residual slots in turn): a forward-only pass touches 1/L of them */
    int ng = (flags & MODEL_FWD_NOGRAD) != 0;
    rs->nograd = ng;
    for (int l = 0; l < c->n_layers; l++) {
        size_t a = ng ? 0 : (size_t)l; /* the layer's slot */
        size_t r0 = ng ? (size_t)(l & 1) : (size_t)l, r1 = ng ? (size_t)((l + 1) & 1) : (size_t)l + 1;
        float *x = rs->resid + r0 * NC, *xm = rs->resid_mid + a * NC;
        float *ln1 = rs->ln1 + a * NC, *q = rs->q + a * NQ, *k = rs->k + a * NK, *v = rs->v + a * NK;
        float *att = rs->att + a * B * NH * T * T, *atty = rs->atty + a * NQ;
        float *ln2 = rs->ln2 + a * NC, *h1 = rs->h1 + a * NHd, *h3 = rs->h3 + a * NHd;
        float *hg = rs->hg + a * NHd, *xo = rs->resid + r1 * NC;
        rmsnorm_forward(ln1, rs->ln1_rstd + a * N, x, m->w.rms_att + (size_t)l * C, N, C, eps);
        /* with q/k norms the projections land in q_pre/k_pre, kept for backward */
        float *qp = c->qk_norm ? rs->q_pre + a * NQ : q, *kp = c->qk_norm ? rs->k_pre + a * NK : k;
        matmul_forward(qp, ln1, m->w.wq + (size_t)l * Q * C, N, C, Q);
        matmul_forward(kp, ln1, m->w.wk + (size_t)l * KV * C, N, C, KV);
        matmul_forward(v, ln1, m->w.wv + (size_t)l * KV * C, N, C, KV);
        if (lo) {
            lora_forward(lo, LORA_Q, l, qp, ln1, N);
            lora_forward(lo, LORA_K, l, kp, ln1, N);
            lora_forward(lo, LORA_V, l, v, ln1, N);
        }
        if (m->w.bq) {
            bias_forward(qp, m->w.bq + (size_t)l * Q, N, Q);
            bias_forward(kp, m->w.bk + (size_t)l * KV, N, KV);
            bias_forward(v, m->w.bv + (size_t)l * KV, N, KV);
        }
        if (c->qk_norm) { /* each head's hs values normed on their own, before RoPE */
            size_t hl = (size_t)l * hs;
            rmsnorm_forward(q, rs->q_rstd + a * N * NH, qp, m->w.q_norm + hl, N * NH, hs, eps);
            rmsnorm_forward(k, rs->k_rstd + a * N * NKV, kp, m->w.k_norm + hl, N * NKV, hs, eps);
        }
        rope_forward(q, rs->rope_cos, rs->rope_sin, B, T, NH, hs);
        rope_forward(k, rs->rope_cos, rs->rope_sin, B, T, NKV, hs);
        attention_forward(atty, att, q, k, v, B, T, NH, NKV, hs);
        /* xm = x + wo·atty: the projection lands straight in xm, then x is added */
        matmul_forward(xm, atty, m->w.wo + (size_t)l * C * Q, N, Q, C);
        if (lo) lora_forward(lo, LORA_O, l, xm, atty, N);
        residual_forward(xm, xm, x, (int)NC);
        rmsnorm_forward(ln2, rs->ln2_rstd + a * N, xm, m->w.rms_ffn + (size_t)l * C, N, C, eps);
        matmul_forward(h1, ln2, m->w.w1 + (size_t)l * H * C, N, C, H);
        matmul_forward(h3, ln2, m->w.w3 + (size_t)l * H * C, N, C, H);
        if (lo) {
            lora_forward(lo, LORA_GATE, l, h1, ln2, N);
            lora_forward(lo, LORA_UP, l, h3, ln2, N);
        }
        swiglu_forward(hg, h1, h3, (int)NHd);
        matmul_forward(xo, hg, m->w.w2 + (size_t)l * C * H, N, H, C);
        if (lo) lora_forward(lo, LORA_DOWN, l, xo, hg, N);
        residual_forward(xo, xo, xm, (int)NC);
    }
    size_t last = ng ? (size_t)(c->n_layers & 1) : (size_t)c->n_layers;
    rmsnorm_forward(rs->lnf, rs->lnf_rstd, rs->resid + last * NC, m->w.rms_final, N, C, eps);
    if (flags & MODEL_FWD_LOGITS) matmul_forward(rs->logits, rs->lnf, m->w.wcls, N, C, V);
    const float *heads[2] = {m->w.reward, m->w.value};
    float *outs[2] = {rs->reward, rs->value};
    for (int hd = 0; hd < 2; hd++) {
        if (!heads[hd]) continue;
        /* out (N) = lnf (N,C) · w + bias */
        for (int n = 0; n < N; n++) {
            const float *h = rs->lnf + (size_t)n * C;
            float s = heads[hd][C];
            for (int i = 0; i < C; i++) s += h[i] * heads[hd][i];
            outs[hd][n] = s;
        }
    }
    par_leave(&ps);
    return RLHF_OK;
}

/* A gradient tensor at an offset, or NULL when it is frozen (LoRA). */
#define GP(p, off) ((p) ? (p) + (off) : NULL)

int model_backward(Model *m, RunState *rs, const int *tokens, const float *dlogits,
                   const float *dreward, const float *dvalue, Err *err) {
    const Config *c = &m->cfg;
    int rc = model_grads_alloc(m, err);
    if (rc) return rc;
    int B = rs->b, T = rs->t;
    if (B <= 0) return err_set(err, RLHF_EINVAL, "backward without a forward pass");
    if (rs->nograd) return err_set(err, RLHF_EINVAL, "backward after a forward without gradients");
    int N = B * T, C = c->dim, H = c->hidden_dim, KV = model_kv_dim(c), NH = c->n_heads;
    int NKV = c->n_kv_heads, hs = model_head_size(c), V = c->vocab_size, L = c->n_layers;
    int Q = model_q_dim(c);
    size_t NC = (size_t)N * C, NK = (size_t)N * KV, NHd = (size_t)N * H, NQ = (size_t)N * Q;
    Weights *w = &m->w, *g = &m->g;
    /* with an adapter the base is frozen: its gradients are NULL, skipped below */
    Lora *lo = m->lora && !m->lora_off ? m->lora : NULL;
    if (m->lora && m->lora_off)
        return err_set(err, RLHF_EINVAL, "backward with the adapter switched off");
    float *dlnf = rs->dln;
    ParScope ps;
    par_enter(&ps);
    /* classifier and heads -> d lnf */
    if (rs->have_dlnf) {
        if (dlogits) {
            par_leave(&ps);
            return err_set(err, RLHF_EINVAL, "dlogits given after model_head's gradient");
        }
        rs->have_dlnf = 0; /* consumed: d lnf is already in dln */
    } else if (dlogits) {
        matmul_backward(dlnf, g->wcls, dlogits, rs->lnf, w->wcls, N, C, V, 0);
    } else {
        memset(dlnf, 0, NC * sizeof(float));
    }
    const float *dh[2] = {dreward, dvalue};
    float *hw[2] = {w->reward, w->value}, *hg_[2] = {g->reward, g->value};
    for (int hd = 0; hd < 2; hd++) {
        if (!dh[hd]) continue;
        if (!hw[hd]) {
            par_leave(&ps);
            return err_set(err, RLHF_EINVAL, "backward through a head the model lacks");
        }
        for (int n = 0; n < N; n++) {
            float d = dh[hd][n];
            if (d == 0.0f) continue;
            const float *h = rs->lnf + (size_t)n * C;
            float *dl = dlnf + (size_t)n * C;
            for (int i = 0; i < C; i++) {
                dl[i] += d * hw[hd][i];
                hg_[hd][i] += d * h[i];
            }
            hg_[hd][C] += d;
        }
    }
    float *dres = rs->dresid;
    memset(dres, 0, NC * sizeof(float));
    rmsnorm_backward(dres, g->rms_final, dlnf, rs->resid + (size_t)L * NC, w->rms_final,
                     rs->lnf_rstd, N, C);
    for (int l = L - 1; l >= 0; l--) {
        float *x = rs->resid + l * NC, *xm = rs->resid_mid + l * NC;
        float *ln1 = rs->ln1 + l * NC, *q = rs->q + l * NQ, *k = rs->k + l * NK, *v = rs->v + l * NK;
        float *att = rs->att + (size_t)l * B * NH * T * T, *atty = rs->atty + l * NQ;
        float *ln2 = rs->ln2 + l * NC, *h1 = rs->h1 + l * NHd, *h3 = rs->h3 + l * NHd;
        float *hg = rs->hg + l * NHd;
        size_t lC = (size_t)l * C, lQ = (size_t)l * Q * C, lK = (size_t)l * KV * C;
        /* MLP: xo = xm + w2·hg; dres flows to xm unchanged */
        matmul_backward(rs->dhg, GP(g->w2, lC * H), dres, hg, w->w2 + lC * H, N, H, C, 0);
        if (lo) lora_backward(lo, LORA_DOWN, l, rs->dhg, dres, hg, N);
        swiglu_backward(rs->dh1, rs->dh3, rs->dhg, h1, h3, (int)NHd);
        matmul_backward(rs->dln, GP(g->w1, lC * H), rs->dh1, ln2, w->w1 + lC * H, N, C, H, 0);
        matmul_backward(rs->dln, GP(g->w3, lC * H), rs->dh3, ln2, w->w3 + lC * H, N, C, H, 1);
        if (lo) {
            lora_backward(lo, LORA_GATE, l, rs->dln, rs->dh1, ln2, N);
            lora_backward(lo, LORA_UP, l, rs->dln, rs->dh3, ln2, N);
        }
        rmsnorm_backward(dres, GP(g->rms_ffn, lC), rs->dln, xm, w->rms_ffn + lC,
                         rs->ln2_rstd + (size_t)l * N, N, C);
        /* attention: xm = x + wo·atty */
        matmul_backward(rs->datty, GP(g->wo, lQ), dres, atty, w->wo + lQ, N, Q, C, 0);
        if (lo) lora_backward(lo, LORA_O, l, rs->datty, dres, atty, N);
        attention_backward(rs->dq, rs->dk, rs->dv, rs->datt, rs->datty, att, q, k, v, B, T, NH,
                           NKV, hs);
        rope_backward(rs->dq, rs->rope_cos, rs->rope_sin, B, T, NH, hs);
        rope_backward(rs->dk, rs->rope_cos, rs->rope_sin, B, T, NKV, hs);
        float *dq = rs->dq, *dk = rs->dk;
        if (c->qk_norm) { /* back through the per-head norms; datty is free again */
            size_t hl = (size_t)l * hs;
            dq = rs->datty, dk = rs->dk_pre;
            memset(dq, 0, NQ * sizeof(float));
            memset(dk, 0, NK * sizeof(float));
            rmsnorm_backward(dq, GP(g->q_norm, hl), rs->dq, rs->q_pre + l * NQ, w->q_norm + hl,
                             rs->q_rstd + (size_t)l * N * NH, N * NH, hs);
            rmsnorm_backward(dk, GP(g->k_norm, hl), rs->dk, rs->k_pre + l * NK, w->k_norm + hl,
                             rs->k_rstd + (size_t)l * N * NKV, N * NKV, hs);
        }
        if (g->bq) {
            bias_backward(g->bq + (size_t)l * Q, dq, N, Q);
            bias_backward(g->bk + (size_t)l * KV, dk, N, KV);
            bias_backward(g->bv + (size_t)l * KV, rs->dv, N, KV);
        }
        matmul_backward(rs->dln, GP(g->wq, lQ), dq, ln1, w->wq + lQ, N, C, Q, 0);
        matmul_backward(rs->dln, GP(g->wk, lK), dk, ln1, w->wk + lK, N, C, KV, 1);
        matmul_backward(rs->dln, GP(g->wv, lK), rs->dv, ln1, w->wv + lK, N, C, KV, 1);
        if (lo) {
            lora_backward(lo, LORA_Q, l, rs->dln, dq, ln1, N);
            lora_backward(lo, LORA_K, l, rs->dln, dk, ln1, N);
            lora_backward(lo, LORA_V, l, rs->dln, rs->dv, ln1, N);
        }
        rmsnorm_backward(dres, GP(g->rms_att, lC), rs->dln, x, w->rms_att + lC,
                         rs->ln1_rstd + (size_t)l * N, N, C);
    }
    if (g->emb) embedding_backward(g->emb, dres, tokens, N, C);
    par_leave(&ps);
    return RLHF_OK;
}

double model_train_flops(const Model *m, int B, int T) {
    const Config *c = &m->cfg;
    double p = 0;
    for (int t = MODEL_T_RMS_ATT; t < MODEL_NT; t++) p += (double)m->sizes[t];
    p += (double)c->vocab_size * c->dim; /* the classifier: tied or its own matrix */
    if (!c->shared_classifier) p -= (double)m->sizes[MODEL_T_WCLS];
    double tokens = (double)B * T;
    return 6.0 * p * tokens + 12.0 * c->n_layers * model_q_dim(c) * (double)T * tokens;
}

int model_require_policy(const Model *m, const char *path, Err *err) {
    if (!(m->heads & MODEL_HEAD_REWARD)) return RLHF_OK;
    return err_set(err, RLHF_EINVAL,
                   "%s is a reward model (it has a reward head), not a policy; pass it as --rm",
                   path ? path : "the checkpoint");
}
