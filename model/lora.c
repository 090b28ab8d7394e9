/* LoRA adapters (lora.h): their layout, initialisation, the forward and
 * backward of one adapted projection, and the merge into the base weights. */
#include "model/lora.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/rng.h"
#include "util/sys.h"

static const char *names[LORA_NT] = {"q", "k", "v", "o", "gate", "up", "down"};
static const char *peft_names[LORA_NT] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                          "gate_proj", "up_proj", "down_proj"};

const char *lora_target_name(int t) { return t >= 0 && t < LORA_NT ? peft_names[t] : "?"; }

int lora_parse_targets(const char *s, int *targets, Err *err) {
    *targets = 0;
    if (!strcmp(s, "all") || !strcmp(s, "all-linear")) {
        *targets = LORA_ALL;
        return RLHF_OK;
    }
    const char *p = s;
    while (*p) {
        size_t n = strcspn(p, ",");
        int found = -1;
        for (int t = 0; t < LORA_NT; t++)
            if ((strlen(names[t]) == n && !strncmp(p, names[t], n)) ||
                (strlen(peft_names[t]) == n && !strncmp(p, peft_names[t], n)))
                found = t;
        if (found < 0)
            return err_set(err, RLHF_EINVAL,
                           "--lora-targets: unknown projection '%.*s' (q, k, v, o, gate, up, down, all)",
                           (int)n, p);
        *targets |= 1 << found;
        p += n;
        if (*p == ',') p++;
    }
    if (!*targets) return err_set(err, RLHF_EINVAL, "--lora-targets: no projection named");
    return RLHF_OK;
}

void lora_targets_str(int targets, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = 0;
    for (int t = 0; t < LORA_NT; t++)
        if (targets & (1 << t) && k < n)
            k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? "," : "", names[t]);
}

int lora_config_check(LoraConfig *c, Err *err) {
    if (c->rank < 1 || c->rank > 4096)
        return err_set(err, RLHF_EINVAL, "--lora: rank %d is not in 1..4096", c->rank);
    if (c->alpha == 0) c->alpha = 2.0f * (float)c->rank;
    if (!(c->alpha > 0) || !isfinite(c->alpha))
        return err_set(err, RLHF_EINVAL, "--lora-alpha: %g is not a positive number", c->alpha);
    if (!(c->dropout >= 0 && c->dropout < 1))
        return err_set(err, RLHF_EINVAL, "--lora-dropout: %g is not in [0, 1)", c->dropout);
    if (!c->targets) c->targets = LORA_DEFAULT_TARGETS;
    if (c->targets & ~LORA_ALL) return err_set(err, RLHF_EINVAL, "--lora-targets: bad set");
    return RLHF_OK;
}

int lora_create(Lora *lo, const LoraConfig *c, const Config *mc, uint64_t seed, Err *err) {
    memset(lo, 0, sizeof *lo);
    lo->c = *c;
    int rc = lora_config_check(&lo->c, err);
    if (rc) return rc;
    int C = mc->dim, H = mc->hidden_dim, Q = model_q_dim(mc), KV = model_kv_dim(mc);
    int R = lo->c.rank;
    int in[LORA_NT] = {C, C, C, Q, C, C, H}, out[LORA_NT] = {Q, KV, KV, C, H, H, C};
    lo->L = mc->n_layers;
    lo->scale = lo->c.alpha / (float)R;
    size_t off = 0;
    for (int t = 0; t < LORA_NT; t++) {
        lo->in[t] = in[t], lo->out[t] = out[t];
        if (!(lo->c.targets & (1 << t))) continue;
        lo->off_a[t] = off;
        off += (size_t)lo->L * R * in[t];
        lo->off_b[t] = off;
        off += (size_t)lo->L * out[t] * R;
    }
    lo->off_head[0] = off, lo->off_head[1] = off + (size_t)C + 1;
    lo->n = off + 2 * ((size_t)C + 1);
    lo->params = sys_alloc_big(lo->n * sizeof(float));
    if (!lo->params) return err_set(err, RLHF_ENOMEM, "out of memory for the LoRA adapters");
    /* PEFT: kaiming_uniform_(a=sqrt(5)) on A, a bound of 1/sqrt(in); B = 0 */
    Rng r;
    rng_seed(&r, seed ^ 0x10ad10ad10ad10adULL);
    for (int t = 0; t < LORA_NT; t++) {
        if (!(lo->c.targets & (1 << t))) continue;
        float bound = 1.0f / sqrtf((float)in[t]), *a = lo->params + lo->off_a[t];
        for (size_t i = 0; i < (size_t)lo->L * R * in[t]; i++)
            a[i] = bound * (float)(2.0 * rng_double(&r) - 1.0);
    }
    return RLHF_OK;
}

void lora_free(Lora *lo) {
    if (!lo) return;
    sys_free_big(lo->params);
    sys_free_big(lo->grads);
    free(lo->u), free(lo->xd), free(lo->du);
    free(lo->base_path);
    memset(lo, 0, sizeof *lo);
}

int lora_grads_alloc(Lora *lo, Err *err) {
    if (lo->grads) return RLHF_OK;
    lo->grads = sys_alloc_big(lo->n * sizeof(float));
    if (!lo->grads) return err_set(err, RLHF_ENOMEM, "out of memory for the LoRA gradients");
    return RLHF_OK;
}

int lora_reserve(Lora *lo, int N, int max_in, Err *err) {
    size_t R = (size_t)lo->c.rank, nu = (size_t)lo->L * LORA_NT * N * R;
    size_t nx = lo->c.dropout > 0 ? (size_t)N * max_in : 0;
    if (nu > lo->u_cap) {
        float *u = realloc(lo->u, nu * sizeof(float)), *du = u ? realloc(lo->du, (size_t)N * R * sizeof(float)) : NULL;
        if (u) lo->u = u;
        if (du) lo->du = du;
        if (!u || !du) return err_set(err, RLHF_ENOMEM, "out of memory for LoRA activations");
        lo->u_cap = nu;
    }
    if (nx > lo->xd_cap) {
        float *x = realloc(lo->xd, nx * sizeof(float));
        if (!x) return err_set(err, RLHF_ENOMEM, "out of memory for LoRA dropout");
        lo->xd = x, lo->xd_cap = nx;
    }
    lo->N = N;
    return RLHF_OK;
}

float *lora_a(const Lora *lo, int t, int l) {
    return lo->params + lo->off_a[t] + (size_t)l * lo->c.rank * lo->in[t];
}
float *lora_b(const Lora *lo, int t, int l) {
    return lo->params + lo->off_b[t] + (size_t)l * lo->out[t] * lo->c.rank;
}

static int dropping(const Lora *lo) { return lo->training && lo->c.dropout > 0; }

/* Dropout's mask: a hash of the pass, layer, target and position, so the
 * backward pass redraws the forward's mask instead of storing it. */
static uint64_t mask_base(const Lora *lo, int t, int l) {
    return lo->drop_seed ^ (lo->drop_pass * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)(l * LORA_NT + t) << 40);
}

static int kept(uint64_t base, size_t i, uint64_t thr) {
    uint64_t z = base + (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (z ^ (z >> 31)) >= thr;
}

static uint64_t drop_threshold(const Lora *lo) {
    return (uint64_t)((double)lo->c.dropout * 18446744073709551615.0);
}

/* The input as the adapter sees it: x itself, or x with dropout. */
static const float *adapter_input(Lora *lo, int t, int l, const float *in, int N) {
    if (!dropping(lo)) return in;
    float inv = 1.0f / (1.0f - lo->c.dropout);
    uint64_t base = mask_base(lo, t, l), thr = drop_threshold(lo);
    for (size_t i = 0; i < (size_t)N * lo->in[t]; i++)
        lo->xd[i] = kept(base, i, thr) ? in[i] * inv : 0.0f;
    return lo->xd;
}

static float *act(const Lora *lo, int t, int l) {
    return lo->u + ((size_t)l * LORA_NT + t) * (size_t)lo->N * lo->c.rank;
}

void lora_forward(Lora *lo, int t, int l, float *out, const float *in, int N) {
    if (!(lo->c.targets & (1 << t))) return;
    int R = lo->c.rank, Ni = lo->in[t], No = lo->out[t];
    const float *x = adapter_input(lo, t, l, in, N);
    float *u = act(lo, t, l);
    /* u (N,R) = x A^T; out (N,No) += s · u B^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, R, Ni, 1.0f, x, Ni, lora_a(lo, t, l), Ni,
                0.0f, u, R);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, No, R, lo->scale, u, R, lora_b(lo, t, l),
                R, 1.0f, out, No);
}

void lora_backward(Lora *lo, int t, int l, float *din, const float *dout, const float *in, int N) {
    if (!(lo->c.targets & (1 << t))) return;
    int R = lo->c.rank, Ni = lo->in[t], No = lo->out[t];
    size_t ga = lo->off_a[t] + (size_t)l * R * Ni, gb = lo->off_b[t] + (size_t)l * No * R;
    const float *u = act(lo, t, l), *x = adapter_input(lo, t, l, in, N);
    /* dB (No,R) += s · dout^T u;  du (N,R) = s · dout B;  dA (R,Ni) += du^T x */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, No, R, N, lo->scale, dout, No, u, R, 1.0f,
                lo->grads + gb, R);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, R, No, lo->scale, dout, No,
                lora_b(lo, t, l), R, 0.0f, lo->du, R);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, R, Ni, N, 1.0f, lo->du, R, x, Ni, 1.0f,
                lo->grads + ga, Ni);
    if (!din) return;
    if (!dropping(lo)) { /* din += du A */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, Ni, R, 1.0f, lo->du, R,
                    lora_a(lo, t, l), Ni, 1.0f, din, Ni);
        return;
    }
    /* through the mask, redrawn; x's buffer is free again */
    float *dx = lo->xd, inv = 1.0f / (1.0f - lo->c.dropout);
    uint64_t base = mask_base(lo, t, l), thr = drop_threshold(lo);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, Ni, R, 1.0f, lo->du, R,
                lora_a(lo, t, l), Ni, 0.0f, dx, Ni);
    for (size_t i = 0; i < (size_t)N * Ni; i++)
        if (kept(base, i, thr)) din[i] += dx[i] * inv;
}

void lora_merge_into(const Lora *lo, float *w, int t, int l) {
    if (!(lo->c.targets & (1 << t))) return;
    int R = lo->c.rank, Ni = lo->in[t], No = lo->out[t];
    /* W (No,Ni) += s · B (No,R) A (R,Ni) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, No, Ni, R, lo->scale, lora_b(lo, t, l), R,
                lora_a(lo, t, l), Ni, 1.0f, w, Ni);
}

void lora_apply(const Lora *lo, int t, int l, float *out, const float *in, int N) {
    if (!(lo->c.targets & (1 << t))) return;
    int R = lo->c.rank, Ni = lo->in[t], No = lo->out[t];
    float u[4096]; /* rows in chunks that fit: R <= 4096 */
    int rows = 4096 / R;
    for (int r0 = 0; r0 < N; r0 += rows) {
        int n = N - r0 < rows ? N - r0 : rows;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, R, Ni, 1.0f, in + (size_t)r0 * Ni, Ni,
                    lora_a(lo, t, l), Ni, 0.0f, u, R);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, No, R, lo->scale, u, R,
                    lora_b(lo, t, l), R, 1.0f, out + (size_t)r0 * No, No);
    }
}

size_t lora_param_count(const LoraConfig *c, const Config *mc) {
    size_t C = mc->dim, H = mc->hidden_dim, Q = model_q_dim(mc), KV = model_kv_dim(mc);
    size_t in[LORA_NT] = {C, C, C, Q, C, C, H}, out[LORA_NT] = {Q, KV, KV, C, H, H, C}, n = 0;
    for (int t = 0; t < LORA_NT; t++)
        if (c->targets & (1 << t)) n += (size_t)mc->n_layers * c->rank * (in[t] + out[t]);
    return n + 2 * (C + 1);
}
