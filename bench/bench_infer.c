/* Inference speed on a random 15m-like model (dim 288, 6 layers, vocab 32000):
 * `rlhf sample --max-tokens 256` itself (the command's whole path, on the
 * model saved as a llama2.c checkpoint with a 32000-piece tokenizer.bin) with
 * f32 and bf16 weights, `rlhf gen` on a project of 8 prompts, and the
 * library's single-stream sampling loop, at 1 and 2 threads, beside a llama2.c
 * run.c-style forward (plain C matrix-vector loops, as run.c's `run` build and
 * with fast-math vectorisation as its `runfast` build), and k-stream batched
 * decoding on a shared prompt against k sequential single-stream runs. */
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench_mem.h"
#include "model/checkpoint.h"
#include "model/infer.h"
#include "model/matvec.h"
#include "model/model.h"
#include "model/sample.h"
#include "model/tokenizer.h"
#include "util/progress.h"

static void die(const Err *e) {
    fprintf(stderr, "bench_infer: %s\n", e->msg);
    exit(1);
}

/* ---- a run.c-style forward: one token, plain loops, its own KV cache -------- */

#define RUNC_MATMUL(name, attrs)                                                                   \
    attrs static void name(float *xout, const float *x, const float *w, int n, int d) {            \
        for (int i = 0; i < d; i++) {                                                              \
            float val = 0.0f;                                                                      \
            for (int j = 0; j < n; j++)                                                            \
                val += w[(size_t)i * n + j] * x[j];                                                \
            xout[i] = val;                                                                         \
        }                                                                                          \
    }
RUNC_MATMUL(matmul_o3, __attribute__((optimize("O3"))))
RUNC_MATMUL(matmul_fast, __attribute__((optimize("O3", "fast-math"), target("avx2,fma"))))

typedef void (*MatmulFn)(float *, const float *, const float *, int, int);

typedef struct {
    float *x, *xb, *xb2, *hb, *hb2, *q, *att, *logits, *kc, *vc;
} RuncState;

static void runc_rmsnorm(float *o, const float *x, const float *w, int n) {
    float ss = 0.0f;
    for (int j = 0; j < n; j++)
        ss += x[j] * x[j];
    ss = 1.0f / sqrtf(ss / n + 1e-5f);
    for (int j = 0; j < n; j++)
        o[j] = w[j] * (ss * x[j]);
}

static void runc_forward(const Model *m, RuncState *s, MatmulFn mm, int token, int pos) {
    const Config *c = &m->cfg;
    int dim = c->dim, kv_dim = model_kv_dim(c), hs = model_head_size(c), H = c->hidden_dim;
    int grp = c->n_heads / c->n_kv_heads, T = c->seq_len;
    memcpy(s->x, m->w.emb + (size_t)token * dim, sizeof(float) * dim);
    for (int l = 0; l < c->n_layers; l++) {
        runc_rmsnorm(s->xb, s->x, m->w.rms_att + (size_t)l * dim, dim);
        float *k = s->kc + ((size_t)l * T + pos) * kv_dim,
              *v = s->vc + ((size_t)l * T + pos) * kv_dim;
        mm(s->q, s->xb, m->w.wq + (size_t)l * dim * dim, dim, dim);
        mm(k, s->xb, m->w.wk + (size_t)l * dim * kv_dim, dim, kv_dim);
        mm(v, s->xb, m->w.wv + (size_t)l * dim * kv_dim, dim, kv_dim);
        for (int i = 0; i < dim; i += 2) {
            float freq = 1.0f / powf(10000.0f, (i % hs) / (float)hs), val = pos * freq;
            float fcr = cosf(val), fci = sinf(val);
            for (int v2 = 0; v2 < (i < kv_dim ? 2 : 1); v2++) {
                float *vec = v2 == 0 ? s->q : k, v0 = vec[i], v1 = vec[i + 1];
                vec[i] = v0 * fcr - v1 * fci;
                vec[i + 1] = v0 * fci + v1 * fcr;
            }
        }
        for (int h = 0; h < c->n_heads; h++) {
            const float *q = s->q + h * hs;
            float *att = s->att + (size_t)h * T;
            for (int t = 0; t <= pos; t++) {
                const float *kt = s->kc + ((size_t)l * T + t) * kv_dim + (h / grp) * hs;
                float score = 0.0f;
                for (int i = 0; i < hs; i++)
                    score += q[i] * kt[i];
                att[t] = score / sqrtf((float)hs);
            }
            float mx = att[0], sum = 0.0f;
            for (int t = 1; t <= pos; t++)
                mx = att[t] > mx ? att[t] : mx;
            for (int t = 0; t <= pos; t++)
                sum += att[t] = expf(att[t] - mx);
            float *xb = s->xb + h * hs;
            memset(xb, 0, sizeof(float) * hs);
            for (int t = 0; t <= pos; t++) {
                const float *vt = s->vc + ((size_t)l * T + t) * kv_dim + (h / grp) * hs;
                for (int i = 0; i < hs; i++)
                    xb[i] += att[t] / sum * vt[i];
            }
        }
        mm(s->xb2, s->xb, m->w.wo + (size_t)l * dim * dim, dim, dim);
        for (int i = 0; i < dim; i++)
            s->x[i] += s->xb2[i];
        runc_rmsnorm(s->xb, s->x, m->w.rms_ffn + (size_t)l * dim, dim);
        mm(s->hb, s->xb, m->w.w1 + (size_t)l * dim * H, dim, H);
        mm(s->hb2, s->xb, m->w.w3 + (size_t)l * dim * H, dim, H);
        for (int i = 0; i < H; i++)
            s->hb[i] = s->hb[i] / (1.0f + expf(-s->hb[i])) * s->hb2[i];
        mm(s->xb, s->hb, m->w.w2 + (size_t)l * dim * H, H, dim);
        for (int i = 0; i < dim; i++)
            s->x[i] += s->xb[i];
    }
    runc_rmsnorm(s->x, s->x, m->w.rms_final, dim);
    mm(s->logits, s->x, m->w.wcls, dim, c->vocab_size);
}

/* tokens/s of run.c's loop: forward, then sample (temperature 1) as it does */
static double runc_speed(const Model *m, MatmulFn mm, int n_tokens) {
    const Config *c = &m->cfg;
    RuncState s;
    size_t kv = (size_t)c->n_layers * c->seq_len * model_kv_dim(c);
    float *mem = calloc((size_t)5 * c->dim + 2 * (size_t)c->hidden_dim +
                            (size_t)c->n_heads * c->seq_len + c->vocab_size + 2 * kv,
                        sizeof(float));
    float *p = mem;
    s.x = p, p += c->dim;
    s.xb = p, p += c->dim;
    s.xb2 = p, p += c->dim;
    s.q = p, p += 2 * c->dim;
    s.hb = p, p += c->hidden_dim;
    s.hb2 = p, p += c->hidden_dim;
    s.att = p, p += (size_t)c->n_heads * c->seq_len;
    s.logits = p, p += c->vocab_size;
    s.kc = p, p += kv;
    s.vc = p;
    Sampler sm;
    Err err = {0};
    if (sampler_create(&sm, c->vocab_size, &err)) die(&err);
    SampleParams sp = sample_params_default();
    Rng r;
    rng_seed(&r, 1);
    int tok = 1;
    double t0 = now_seconds();
    for (int pos = 0; pos < n_tokens; pos++) {
        runc_forward(m, &s, mm, tok, pos);
        tok = sampler_pick(&sm, s.logits, &sp, &r, NULL);
    }
    double el = now_seconds() - t0;
    sampler_free(&sm);
    free(mem);
    return n_tokens / el;
}

/* ---- our paths ------------------------------------------------------------------ */

static Tokenizer *synthetic_tokenizer(int n) {
    char **pieces = calloc((size_t)n, sizeof(char *));
    size_t *lens = calloc((size_t)n, sizeof(size_t));
    float *scores = calloc((size_t)n, sizeof(float));
    if (!pieces || !lens || !scores) exit(1);
    for (int i = 0; i < n; i++) {
        pieces[i] = malloc(16);
        if (i < 3)
            snprintf(pieces[i], 16, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
        else if (i < 259)
            snprintf(pieces[i], 16, "<0x%02X>", i - 3);
        else
            snprintf(pieces[i], 16, " w%d", i);
        lens[i] = strlen(pieces[i]);
        scores[i] = -(float)i;
    }
    Tokenizer *t;
    Err err = {0};
    if (tok_build(n, (const char *const *)pieces, lens, scores, &t, &err)) die(&err);
    for (int i = 0; i < n; i++)
        free(pieces[i]);
    free(pieces);
    free(lens);
    free(scores);
    return t;
}

/* k streams on one 32-token prompt, up to 64 new tokens each (a stream ends
 * at EOS, as in gen), against k single runs with the same seeds (the same
 * tokens); streams_per_step: the batch's mean width, tokens over steps;
 * parts: how a step of all k is shared by the threads (infer_decode_parts:
 * 1 = each product's outputs split, more = the streams split) */
static void bench_batch(const char *name, const Model *m, const Tokenizer *tok, Infer *st,
                        int threads) {
    Err err = {0};
    SampleParams p = sample_params_default();
    int prompt[32], V = m->cfg.vocab_size;
    for (int i = 0; i < 32; i++)
        prompt[i] = i == 0 ? 1 : 3 + (i * 97) % (V - 3);
    p.max_tokens = 64;
    infer_set_threads(threads);
    int ks[3] = {1, 4, 8};
    for (int ki = 0; ki < 3; ki++) {
        int k = ks[ki];
        uint64_t seeds[8];
        SampleResult res[8];
        for (int i = 0; i < k; i++)
            seeds[i] = 100 + i;
        double tb = 1e30, ts = 1e30;
        long nb = 0, ns = 0, steps = 0;
        for (int rep = 0; rep < 3; rep++) {
            double t0 = now_seconds();
            if (sample_generate_batch(st, tok, prompt, 32, k, &p, seeds, res, &err)) die(&err);
            double el = now_seconds() - t0;
            nb = 0, steps = 0;
            for (int i = 0; i < k; i++) {
                nb += res[i].n_tokens;
                steps = res[i].n_tokens > steps ? res[i].n_tokens : steps;
                sample_result_free(&res[i]);
            }
            tb = el < tb ? el : tb;
            t0 = now_seconds();
            ns = 0;
            for (int i = 0; i < k; i++) {
                if (sample_generate(st, tok, prompt, 32, &p, seeds[i], &res[0], &err)) die(&err);
                ns += res[0].n_tokens;
                sample_result_free(&res[0]);
            }
            el = now_seconds() - t0;
            ts = el < ts ? el : ts;
        }
        /* streams end at EOS: the batch is k wide only until the first ends */
        printf("batch_decode_tokens_per_s config=%s k=%d prompt=32 new=64 threads=%d parts=%d "
               "value=%.1f sequential=%.1f speedup=%.2f streams_per_step=%.2f\n",
               name, k, threads, infer_decode_parts(st, k), nb / tb, ns / ts,
               (nb / tb) / (ns / ts), (double)nb / steps);
    }
}

/* k streams that all decode `steps` tokens (EOS does not end one: each picks
 * its next token from its logits and goes on), prefill and fork once, against
 * k single streams doing the same through infer_prefill one token at a time:
 * the batch at its full width, which a gen batch keeps only until a stream
 * ends. Best of 3. */
static void bench_batch_full(const char *name, const Model *m, Infer *st, int k, int threads,
                             double per_token[2]) {
    Err err = {0};
    SampleParams p = sample_params_default();
    int prompt[32], V = m->cfg.vocab_size, steps = 64, next[8];
    for (int i = 0; i < 32; i++)
        prompt[i] = i == 0 ? 1 : 3 + (i * 97) % (V - 3);
    Sampler sm;
    Rng rng[8];
    if (sampler_create(&sm, V, &err)) die(&err);
    infer_set_threads(threads);
    int bound = matvec_bind(); /* as model/sample.c's runs are */
    double tb = 1e30, ts = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now_seconds();
        infer_reset(st);
        if (infer_prefill(st, prompt, 32, &err) || infer_fork(st, k, &err)) die(&err);
        for (int s = 0; s < k; s++)
            rng_seed(&rng[s], 100 + s);
        for (int t = 0; t < steps; t++) {
            for (int s = 0; s < k; s++)
                next[s] = sampler_pick(&sm, infer_logits(st, s), &p, &rng[s], NULL);
            if (infer_decode(st, next, NULL, &err)) die(&err);
        }
        double el = now_seconds() - t0;
        tb = el < tb ? el : tb;
        t0 = now_seconds();
        for (int s = 0; s < k; s++) {
            infer_reset(st);
            if (infer_prefill(st, prompt, 32, &err)) die(&err);
            rng_seed(&rng[0], 100 + s);
            for (int t = 0; t < steps; t++) {
                int tok = sampler_pick(&sm, infer_logits(st, 0), &p, &rng[0], NULL);
                if (infer_prefill(st, &tok, 1, &err)) die(&err);
            }
        }
        el = now_seconds() - t0;
        ts = el < ts ? el : ts;
    }
    matvec_unbind(bound);
    sampler_free(&sm);
    printf("batch_decode_full_width_tokens_per_s config=%s k=%d prompt=32 new=%d threads=%d "
           "parts=%d value=%.1f sequential=%.1f speedup=%.2f\n",
           name, k, steps, threads, infer_decode_parts(st, k), k * steps / tb, k * steps / ts,
           ts / tb);
    per_token[0] = ts / (k * steps), per_token[1] = tb / (k * steps);
}

/* one matrix of the step: row-major (packed NULL) or packed, layer l */
static void step_product(float *out, const float *x, const float *w, const float *packed, int l,
                         int n, int C, int OC) {
    if (packed) matvec_rows_packed(out, x, packed + (size_t)l * matvec_packed_floats(OC, C), n, C, OC);
    else matvec_rows(out, x, w + (size_t)l * OC * C, n, C, OC);
}

/* The matrix products of one decode step alone (every layer's seven and the
 * classifier, through matvec_rows on the Model's row-major weights and
 * through matvec_rows_packed on the Infer's packed copy, which decoding
 * reads, with AVX2 alone and with AVX-512 where the CPU has it, on one
 * thread) for 1 row and for 8: their
 * multiply-adds per second, and how much faster 8 rows are per row, the most
 * a batch of 8 can gain over 8 single streams on the products. per_token:
 * a token's products in seconds, alone and in the batch of 8, on the kernels
 * decoding uses. */
static void bench_products(const char *name, const Model *m, const Infer *st, double per_token[2]) {
    const Config *c = &m->cfg;
    const Weights *w = &m->w;
    const struct InferPacked *pk = &st->packed;
    int C = c->dim, H = c->hidden_dim, KV = model_kv_dim(c), Q = model_q_dim(c), V = c->vocab_size;
    int wide = H > C ? H : C, big;
    wide = Q > wide ? Q : wide;
    big = V > wide ? V : wide;
    float *x = calloc((size_t)8 * wide, sizeof(float));
    float *out = malloc(sizeof(float) * 8 * ((size_t)big + 8));
    if (!x || !out) {
        free(x), free(out);
        return;
    }
    for (int i = 0; i < 8 * C; i++)
        x[i] = (float)((i * 37) % 17) / 17.0f - 0.5f;
    double macs = (double)C * V;
    for (int l = 0; l < c->n_layers; l++)
        macs += (double)C * Q * 2 + (double)C * KV * 2 + (double)C * H * 3;
    matvec_set_threads(1);
    /* row-major; packed with AVX2 alone; packed with AVX-512 (batches of four
     * rows or more) where the CPU has it */
    static const char *isa[] = {"none", "avx2", "avx512"};
    int best_level = matvec_use_simd(MATVEC_SIMD_BEST);
    for (int pass = 0; pass < 3; pass++) {
        int packed = pass > 0;
        int level = pass == 2 || best_level < MATVEC_SIMD_AVX2 ? best_level : MATVEC_SIMD_AVX2;
        if (packed && !st->packed_mem) break;
        if (pass == 2 && best_level < MATVEC_SIMD_AVX512) break;
        matvec_use_simd(level);
        double per_row[2] = {0, 0};
        for (int ri = 0; ri < 2; ri++) {
            int n = ri ? 8 : 1, reps = (int)(4e8 / (macs * n)) + 1;
            double best = 1e30;
            for (int rep = 0; rep < 3; rep++) {
                double t0 = now_seconds();
                for (int it = 0; it < reps; it++) {
                    for (int l = 0; l < c->n_layers; l++) {
                        step_product(out, x, w->wq, packed ? pk->wq : NULL, l, n, C, Q);
                        step_product(out, x, w->wk, packed ? pk->wk : NULL, l, n, C, KV);
                        step_product(out, x, w->wv, packed ? pk->wv : NULL, l, n, C, KV);
                        step_product(out, x, w->wo, packed ? pk->wo : NULL, l, n, Q, C);
                        step_product(out, x, w->w1, packed ? pk->w1 : NULL, l, n, C, H);
                        step_product(out, x, w->w3, packed ? pk->w3 : NULL, l, n, C, H);
                        step_product(out, x, w->w2, packed ? pk->w2 : NULL, l, n, H, C);
                    }
                    step_product(out, x, w->wcls, packed ? pk->wcls : NULL, 0, n, C, V);
                }
                double el = (now_seconds() - t0) / reps;
                best = el < best ? el : best;
            }
            per_row[ri] = best / n;
            printf("decode_products_gmac_per_s config=%s rows=%d threads=1 path=%s simd=%s value=%.1f%s",
                   name, n, packed ? "matvec_rows_packed" : "matvec_rows", isa[level],
                   macs * n / best / 1e9, ri ? "" : "\n");
        }
        printf(" per_row_over_rows1=%.2f\n", per_row[0] / per_row[1]);
        per_token[0] = per_row[0], per_token[1] = per_row[1];
    }
    matvec_use_simd(MATVEC_SIMD_BEST);
    free(x), free(out);
}

/* What share of a decoded token's time (one thread, all k streams decoding,
 * bench_batch_full's, the prompt's prefill included) its matrix products take
 * (bench_products'), alone and in the batch: the rest is what batching the
 * products cannot shorten. */
static void print_products_share(const char *name, const double step[2], const double products[2]) {
    printf("decode_products_share config=%s threads=1 single=%.2f batch8=%.2f "
           "single_us_per_token=%.1f batch8_us_per_token=%.1f\n",
           name, products[0] / step[0], products[1] / step[1], step[0] * 1e6, step[1] * 1e6);
}

/* This core's FMA throughput: twelve independent 8-lane chains, no memory;
 * the ceiling for decode_products_gmac_per_s. */
__attribute__((target("avx2,fma"))) static double fma_peak_gmac(void) {
    __m256 a[12], m = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(0.001f);
    for (int i = 0; i < 12; i++)
        a[i] = _mm256_set1_ps((float)i);
    long n = 20000000;
    double t0 = now_seconds();
    for (long k = 0; k < n; k++)
        _Pragma("GCC unroll 12") for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
    double el = now_seconds() - t0;
    static volatile float sink; /* the chains' results are used: the loop stays */
    for (int i = 0; i < 12; i++)
        sink += a[i][0];
    return (double)n * 12 * 8 / el / 1e9;
}

/* The number after `marker` on the last line of what cmd writes to stdout
 * that holds both `line_has` and it: a rate a command prints (0 when it
 * fails or prints none). */
static double command_rate(const char *cmd, const char *line_has, const char *marker) {
    char line[16384];
    FILE *p = popen(cmd, "r");
    double v = 0;
    while (p && fgets(line, sizeof line, p)) {
        const char *at = strstr(line, marker);
        if (at && strstr(line, line_has)) v = atof(at + strlen(marker));
    }
    if (!p || pclose(p) != 0 || v <= 0) {
        fprintf(stderr, "bench_infer: `%s` failed\n", cmd);
        return 0;
    }
    return v;
}

/* The tokens/s `rlhf sample --max-tokens 256` prints (its stderr line "N
 * prompt tokens, M sampled in S s (R tokens/s, ...)"; 0: it failed). */
static double time_sample(const char *rlhf, const char *mpath, const char *tpath,
                          const char *weights, int threads, int seed) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             "'%s' sample --model %s --tokenizer %s --max-tokens 256 --weights %s --threads %d "
             "--seed %d 'Once upon a time' 2>&1 >/dev/null",
             rlhf, mpath, tpath, weights, threads, seed);
    return command_rate(cmd, " sampled in ", "s (");
}

/* llama.cpp's text generation speed (llama-bench's tg256, one repetition:
 * its mean tokens/s) on gguf (0: it failed). */
static double time_llamacpp(const char *llama, const char *gguf, int threads) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             "'%s/build/bin/llama-bench' -m '%s' -p 0 -n 256 -t %d -r 1 -o jsonl 2>/dev/null", llama,
             gguf, threads);
    return command_rate(cmd, "\"avg_ts\":", "\"avg_ts\":");
}

/* The tokens/s `rlhf gen -k 1 --max-tokens 256 --batch B` (then extra)
 * prints for the project's prompts, as model NAME (a new name: every run
 * samples them all; 0: it failed). Its time includes each prompt's prefill
 * and the project's writes. */
static double time_gen(const char *rlhf, const char *db, const char *mpath, const char *tpath,
                       const char *name, int threads, int batch, int seed, const char *extra) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd,
             "'%s' --db %s gen --model %s --tokenizer %s --name %s -k 1 --max-tokens 256 "
             "--weights f32 --threads %d --batch %d --seed %d %s 2>/dev/null",
             rlhf, db, mpath, tpath, name, threads, batch, seed, extra);
    return command_rate(cmd, " tokens sampled, ", " tokens sampled, ");
}

/* The answers model NAME got: their mean, least and most tokens. */
static void answer_lengths(const char *db, const char *name, double *mean, int *least, int *most) {
    sqlite3 *h = NULL;
    sqlite3_stmt *q = NULL;
    *mean = 0, *least = *most = 0;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h,
                           "select avg(n_tokens), min(n_tokens), max(n_tokens) from candidates "
                           "where model_id = (select id from models where name = ?)",
                           -1, &q, NULL) == SQLITE_OK &&
        sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        *mean = sqlite3_column_double(q, 0), *least = sqlite3_column_int(q, 1),
        *most = sqlite3_column_int(q, 2);
    sqlite3_finalize(q);
    sqlite3_close(h);
}

/* `rlhf gen` on a project of n prompts at 1 and 2 threads, prompt by prompt
 * (--batch 1) and as a batch of 8 streams (the default), the same seed for
 * all four (the same tokens: sampling depends neither on the threads nor on
 * the batch), best of reps runs each, the four alternating. extra: more
 * flags (stop strings that end the answers at different lengths, as a chat
 * model's end at EOS, where the random model's run to the context); label
 * says what they do in the figures' names. */
static void bench_gen(const char *rlhf, const char *dir, const char *mpath, const char *tpath,
                      const Config *c, int n, int reps, const char *extra, const char *label) {
    char db[128], prompts[128], cmd[16384];
    snprintf(db, sizeof db, "%s/project.db", dir);
    snprintf(prompts, sizeof prompts, "%s/prompts.txt", dir);
    FILE *f = fopen(prompts, "w");
    for (int i = 0; f && i < n; i++)
        fprintf(f, "Tell me a story about the number %d\n", i + 1);
    if (!f || fclose(f)) return;
    snprintf(cmd, sizeof cmd, "'%s' init %s >/dev/null && '%s' --db %s prompts import %s >/dev/null",
             rlhf, db, rlhf, db, prompts);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench_infer: `%s` failed: no gen figures\n", cmd);
        return;
    }
    static const int batches[2] = {1, 8};
    double best[2][2] = {{0, 0}, {0, 0}}; /* [batch][threads - 1] */
    for (int rep = 0; rep < reps; rep++)
        for (int b = 0; b < 2; b++)
            for (int threads = 1; threads <= 2; threads++) {
                char name[32];
                snprintf(name, sizeof name, "m%d-%d-%d", rep, b, threads);
                double v = time_gen(rlhf, db, mpath, tpath, name, threads, batches[b], 11, extra);
                if (v <= 0) goto out;
                best[b][threads - 1] = v > best[b][threads - 1] ? v : best[b][threads - 1];
            }
    double mean;
    int least, most;
    answer_lengths(db, "m0-1-1", &mean, &least, &most);
    printf("gen_cmd_answer_tokens config=15m prompts=%d answers=%s mean=%.1f min=%d max=%d\n", n,
           label, mean, least, most);
    for (int b = 0; b < 2; b++) {
        for (int threads = 1; threads <= 2; threads++)
            printf("gen_cmd_tokens_per_s config=15m vocab=%d format=llama2c weights=f32 path=\"rlhf "
                   "gen -k 1 --max-tokens 256 --batch %d%s%s\" prompts=%d answers=%s threads=%d "
                   "value=%.1f\n",
                   c->vocab_size, batches[b], *extra ? " " : "", extra, n, label, threads,
                   best[b][threads - 1]);
        printf("gen_cmd_two_threads_over_one config=15m weights=f32 batch=%d prompts=%d answers=%s "
               "value=%.2f\n", batches[b], n, label, best[b][1] / best[b][0]);
    }
    for (int threads = 1; threads <= 2; threads++)
        printf("gen_cmd_batch_over_prompt_by_prompt config=15m weights=f32 prompts=%d answers=%s "
               "threads=%d value=%.2f\n", n, label, threads,
               best[1][threads - 1] / best[0][threads - 1]);
out:
    unlink(prompts);
    for (int i = 0; i < 4; i++) { /* the project and SQLite's files beside it */
        static const char *const ext[4] = {"", "-wal", "-shm", "-journal"};
        snprintf(cmd, sizeof cmd, "%s%s", db, ext[i]);
        unlink(cmd);
    }
}

/* The bytes a decoded token reads with f32 or bf16 matrices: every matrix
 * once (the embedding one row unless it is also the classifier), the norms'
 * weights in f32 (bf16 decoding keeps them, the embedding rows looked up and
 * the activations in f32). */
static double token_bytes(const Model *m, int bf16) {
    const Config *c = &m->cfg;
    double norms = (2.0 * c->n_layers + 1) * c->dim;
    double mats = (double)m->n_params - norms -
                  (c->shared_classifier ? 0 : (double)c->vocab_size * c->dim - c->dim);
    return (bf16 ? 2.0 : 4.0) * mats + 4.0 * norms;
}

/* How much of the machine's read bandwidth `rlhf sample` uses at 1 and 2
 * threads: the bytes a decoded token reads × its tokens/s, over
 * bench_read_bandwidth (the same probe for both weight types). Decoding one
 * stream is bound by it. */
static void bench_read_share(const Model *m, const double tps[2][2]) {
    static const char *const wname[2] = {"f32", "bf16"};
    for (int threads = 1; threads <= 2; threads++) {
        double bw = 0;
        for (int b = 0; b < 2; b++) {
            if (!(tps[b][threads - 1] > 0)) continue;
            if (bw == 0) bw = bench_read_bandwidth(threads);
            double bytes = token_bytes(m, b), used = bytes * tps[b][threads - 1] / 1e9;
            printf("sample_cmd_read_share config=15m weights=%s threads=%d weight_bytes_per_token=%.0f "
                   "sample_gb_per_s=%.1f memory_read_gb_per_s=%.1f value=%.2f\n",
                   wname[b], threads, bytes, used, bw, used / bw);
        }
    }
    infer_set_threads(1);
}

/* The rlhf binary beside the bench folder, into rlhf; 0 when there is none. */
static int rlhf_beside(const char *argv0, char *rlhf, size_t size) {
    const char *slash = strrchr(argv0, '/');
    snprintf(rlhf, size, "%.*s/../rlhf", slash ? (int)(slash - argv0) : 1, slash ? argv0 : ".");
    if (access(rlhf, X_OK) == 0) return 1;
    fprintf(stderr, "bench_infer: no %s to time `rlhf sample` with\n", rlhf);
    return 0;
}

/* m and tok as llama2.c's model.bin and tokenizer.bin in dir, their paths in
 * mpath and tpath (64 bytes each); 0 when they could not be written. */
static int write_llama2c(const char *dir, const Model *m, const Tokenizer *tok, char *mpath,
                         char *tpath) {
    snprintf(mpath, 64, "%s/model.bin", dir);
    snprintf(tpath, 64, "%s/tokenizer.bin", dir);
    Err err = {0};
    unsigned char *tb = NULL;
    size_t tl = 0;
    FILE *f = NULL;
    int ok = !model_save_llama2c(mpath, m, &err) && !tok_to_bytes(tok, &tb, &tl, &err) &&
             (f = fopen(tpath, "wb")) && fwrite(tb, 1, tl, f) == tl;
    if (f && fclose(f)) ok = 0;
    free(tb);
    return ok;
}

/* `rlhf sample` as a user runs it: the random model as a llama2.c
 * checkpoint and its tokenizer.bin in a temporary folder, the binary next to
 * the bench folder; the tokens/s the command prints, best of 3 runs, with the
 * matrices read as f32 and as bf16 (--weights). With LLAMA_CPP naming a built
 * llama.cpp (build/bin/llama-bench, gguf-py), the same weights as an f32 GGUF
 * and as a bf16 one (bench/llama2c_gguf.py) and llama-bench's tg256 at the
 * same thread counts, the runs of the two alternating. tps[b][t-1]: rlhf's
 * figure for weights b (0 f32, 1 bf16) at t threads. */
static void bench_command(const char *argv0, const Model *m, const Tokenizer *tok,
                          double tps[2][2]) {
    static const char *const wname[2] = {"f32", "bf16"};
    char rlhf[4096], dir[] = "/tmp/bench_infer.XXXXXX", mpath[64], tpath[64], gpath[2][64];
    if (!rlhf_beside(argv0, rlhf, sizeof rlhf) || !mkdtemp(dir)) return;
    for (int b = 0; b < 2; b++)
        snprintf(gpath[b], sizeof gpath[b], "%s/model-%s.gguf", dir, wname[b]);
    int ok = write_llama2c(dir, m, tok, mpath, tpath);
    const char *llama = getenv("LLAMA_CPP");
    int have_gguf[2] = {0, 0};
    for (int b = 0; ok && llama && *llama && b < 2; b++) {
        char cmd[8192];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 bench/llama2c_gguf.py '%s' %s %s %s %s >/dev/null", llama,
                 mpath, tpath, gpath[b], wname[b]);
        have_gguf[b] = system(cmd) == 0;
        if (!have_gguf[b])
            fprintf(stderr, "bench_infer: `%s` failed: no llama.cpp %s figures\n", cmd, wname[b]);
    }
    for (int b = 0; ok && b < 2; b++)
        for (int threads = 1; ok && threads <= 2; threads++) {
            double best = 0, lbest = 0, runs[3] = {0, 0, 0};
            for (int rep = 0; ok && rep < 3; rep++) {
                double v = time_sample(rlhf, mpath, tpath, wname[b], threads, 7 + rep);
                ok = v > 0;
                best = v > best ? v : best;
                runs[rep] = v;
                double l = have_gguf[b] ? time_llamacpp(llama, gpath[b], threads) : 0;
                lbest = l > lbest ? l : lbest;
            }
            if (!ok) break;
            tps[b][threads - 1] = best;
            /* the best of 3, and what the others got: a user runs once */
            double lo = fmin(runs[0], fmin(runs[1], runs[2])),
                   mid = runs[0] + runs[1] + runs[2] - lo - best;
            printf("sample_cmd_tokens_per_s config=15m vocab=%d format=llama2c weights=%s "
                   "path=\"rlhf sample --max-tokens 256\" threads=%d value=%.1f median=%.1f "
                   "worst=%.1f\n",
                   m->cfg.vocab_size, wname[b], threads, best, mid, lo);
            if (lbest > 0)
                printf("llamacpp_tg_tokens_per_s config=15m vocab=%d format=gguf-%s path=\"llama-bench "
                       "-p 0 -n 256\" threads=%d value=%.1f rlhf_over_llamacpp=%.2f\n",
                       m->cfg.vocab_size, wname[b], threads, lbest, best / lbest);
        }
    for (int b = 0; ok && b < 2; b++)
        if (tps[b][0] > 0 && tps[b][1] > 0)
            printf("sample_cmd_two_threads_over_one config=15m vocab=%d weights=%s value=%.2f\n",
                   m->cfg.vocab_size, wname[b], tps[b][1] / tps[b][0]);
    if (ok) bench_gen(rlhf, dir, mpath, tpath, &m->cfg, 8, 3, "", "to_the_context");
    /* answers of many lengths, as a chat model's: the batch is refilled as
     * they end (continuous batching), prompt by prompt is not affected */
    if (ok)
        bench_gen(rlhf, dir, mpath, tpath, &m->cfg, 32, 2,
                  "--stop w123 --stop w456 --stop w789 --stop w234", "end_at_stop_strings");
    unlink(mpath), unlink(tpath), unlink(gpath[0]), unlink(gpath[1]), rmdir(dir);
}

/* `rlhf sample` at 1 and 2 threads on the 15m shape with a 4,096-piece
 * vocabulary: 28.7 MB of f32 weights, which fit a 32 MiB last-level cache,
 * where the 32,000-piece model's 60.8 MB stream from memory each token. The
 * same command, best of 3 each, alternating: how far two threads carry the
 * decode step when memory bandwidth is not what bounds it. */
static void bench_cache_resident(const char *argv0) {
    char rlhf[4096], dir[] = "/tmp/bench_infer.XXXXXX", mpath[64], tpath[64];
    if (!rlhf_beside(argv0, rlhf, sizeof rlhf) || !mkdtemp(dir)) return;
    Config cfg;
    Model m;
    Err err = {0};
    if (model_config_named("15m", &cfg, &err)) die(&err);
    cfg.vocab_size = 4096;
    if (model_create(&m, &cfg, 0, &err)) die(&err);
    model_init_random(&m, 1);
    Tokenizer *tok = synthetic_tokenizer(cfg.vocab_size);
    double best[2] = {0, 0};
    int ok = write_llama2c(dir, &m, tok, mpath, tpath);
    for (int rep = 0; ok && rep < 3; rep++)
        for (int threads = 1; ok && threads <= 2; threads++) {
            double v = time_sample(rlhf, mpath, tpath, "f32", threads, 7 + rep);
            ok = v > 0;
            best[threads - 1] = v > best[threads - 1] ? v : best[threads - 1];
        }
    for (int threads = 1; ok && threads <= 2; threads++)
        printf("sample_cmd_tokens_per_s config=15m vocab=%d format=llama2c weights=f32 "
               "weight_mb=%.1f path=\"rlhf sample --max-tokens 256\" threads=%d value=%.1f\n",
               cfg.vocab_size, token_bytes(&m, 0) / 1e6, threads, best[threads - 1]);
    if (ok)
        printf("sample_cmd_two_threads_over_one config=15m vocab=%d weights=f32 value=%.2f\n",
               cfg.vocab_size, best[1] / best[0]);
    unlink(mpath), unlink(tpath), rmdir(dir);
    tok_free(tok);
    model_free(&m);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    Model m;
    Config cfg;
    Err err = {0};
    if (model_config_named("15m", &cfg, &err) || model_create(&m, &cfg, 0, &err)) die(&err);
    model_init_random(&m, 1);
    Tokenizer *tok = synthetic_tokenizer(cfg.vocab_size);
    Infer st;
    if (infer_create(&st, &m, 8, &err)) die(&err);
    (void)argc;
    double sample_tps[2][2] = {{0, 0}, {0, 0}};
    bench_command(argv[0], &m, tok, sample_tps);
    bench_read_share(&m, sample_tps);
    bench_cache_resident(argv[0]);
    SampleParams p = sample_params_default();
    int bos = 1;

    /* single stream: prompt = BOS, then 200 sampled tokens */
    p.max_tokens = 200;
    for (int threads = 1; threads <= 2; threads++) {
        infer_set_threads(threads);
        SampleResult r;
        double best = 0;
        for (int rep = 0; rep < 3; rep++) {
            double t0 = now_seconds();
            if (sample_generate(&st, tok, &bos, 1, &p, 7 + rep, &r, &err)) die(&err);
            double v = r.n_tokens / (now_seconds() - t0);
            best = v > best ? v : best;
            sample_result_free(&r);
        }
        printf("sample_tokens_per_s config=15m vocab=%d path=sample_generate threads=%d prompt=1 "
               "new=200 value=%.1f\n",
               cfg.vocab_size, threads, best);
    }
    infer_set_threads(1);
    double o3 = 0, fast = 0;
    for (int rep = 0; rep < 2; rep++) {
        double a = runc_speed(&m, matmul_o3, 200), b = 0;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            b = runc_speed(&m, matmul_fast, 200);
        o3 = a > o3 ? a : o3;
        fast = b > fast ? b : fast;
    }
    printf("runc_style_tokens_per_s config=15m threads=1 build=run(-O3) new=200 value=%.1f\n", o3);
    if (fast > 0)
        printf("runc_style_tokens_per_s config=15m threads=1 build=runfast(-Ofast,avx2) new=200 "
               "value=%.1f\n",
               fast);

    for (int threads = 1; threads <= 2; threads++)
        bench_batch("15m", &m, tok, &st, threads);
    double step[2][2], products[2];
    for (int threads = 1; threads <= 2; threads++)
        bench_batch_full("15m", &m, &st, 8, threads, step[threads - 1]);
    bench_products("15m", &m, &st, products);
    print_products_share("15m", step[0], products);
    infer_free(&st);
    tok_free(tok);
    model_free(&m);
    /* the demo's model: small enough that per-step overheads show */
    if (model_config_named("demo", &cfg, &err) || model_create(&m, &cfg, 0, &err)) die(&err);
    model_init_random(&m, 1);
    tok = synthetic_tokenizer(cfg.vocab_size);
    if (infer_create(&st, &m, 8, &err)) die(&err);
    for (int threads = 1; threads <= 2; threads++)
        bench_batch("demo", &m, tok, &st, threads);
    for (int threads = 1; threads <= 2; threads++)
        bench_batch_full("demo", &m, &st, 8, threads, step[threads - 1]);
    bench_products("demo", &m, &st, products);
    print_products_share("demo", step[0], products);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        double peak = 0;
        for (int rep = 0; rep < 3; rep++) {
            double v = fma_peak_gmac();
            peak = v > peak ? v : peak;
        }
        printf("cpu_fma_peak_gmac_per_s threads=1 simd=avx2 chains=12 value=%.1f\n", peak);
    }
    infer_free(&st);
    tok_free(tok);
    model_free(&m);
    return 0;
}
