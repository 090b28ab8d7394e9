/* Token sampling and the generation loops (single stream = a batch of one). */
#include "model/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/fastmath.h"
#include "model/matvec.h"
#include "util/text.h"

SampleParams sample_params_default(void) {
    SampleParams p = {1.0f, 0, 1.0f, 256, NULL, 0};
    return p;
}

const char *const SAMPLE_CHAT_STOPS[SAMPLE_CHAT_N_STOPS] = {"\n\n", "Human:", "Assistant:"};

SampleParams sample_params_chat(void) {
    SampleParams p = {1.0f, 0, 1.0f, 64, SAMPLE_CHAT_STOPS, SAMPLE_CHAT_N_STOPS};
    return p;
}

int sample_params_check(const SampleParams *p, Err *err) {
    if (!(p->temperature >= 0.0f) || p->temperature > 100.0f)
        return err_set(err, RLHF_EINVAL, "temperature %g is outside 0..100",
                       (double)p->temperature);
    if (p->top_k < 0) return err_set(err, RLHF_EINVAL, "top-k %d is negative", p->top_k);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return err_set(err, RLHF_EINVAL, "top-p %g is outside (0, 1]", (double)p->top_p);
    if (p->max_tokens < 1) return err_set(err, RLHF_EINVAL, "max tokens %d < 1", p->max_tokens);
    for (int i = 0; i < p->n_stop; i++)
        if (!p->stop[i] || !p->stop[i][0]) return err_set(err, RLHF_EINVAL, "empty stop string");
    return RLHF_OK;
}

void sample_result_free(SampleResult *r) {
    free(r->tokens);
    free(r->text);
    memset(r, 0, sizeof *r);
}

const char *sample_finish_name(int finish) {
    switch (finish) {
    case SAMPLE_EOS:
        return "eos";
    case SAMPLE_STOP:
        return "stop";
    case SAMPLE_LENGTH:
        return "length";
    default:
        return "none";
    }
}

int sampler_create(Sampler *s, int V, Err *err) {
    memset(s, 0, sizeof *s);
    s->V = V;
    s->nb = (V + SAMPLE_BLOCK - 1) / SAMPLE_BLOCK;
    s->probs = malloc(sizeof(float) * (size_t)V);
    s->idx = malloc(sizeof(int) * (size_t)V);
    s->bmax = malloc(sizeof(float) * (size_t)s->nb);
    s->barg = malloc(sizeof(int) * (size_t)s->nb);
    s->bbad = malloc((size_t)s->nb);
    if (!s->probs || !s->idx || !s->bmax || !s->barg || !s->bbad) {
        sampler_free(s);
        return err_set(err, RLHF_ENOMEM, "sampler: out of memory");
    }
    return RLHF_OK;
}

void sampler_free(Sampler *s) {
    free(s->probs);
    free(s->idx);
    free(s->bmax);
    free(s->barg);
    free(s->bbad);
    memset(s, 0, sizeof *s);
}

/* ---- the passes over the vocabulary, in blocks ------------------------------------- */

/* One pick's passes: blocks of SAMPLE_BLOCK logits, each block's results in
 * its own slot, so the blocks may run on several threads and the results do
 * not depend on which. */
typedef struct {
    Sampler *s;
    const float *logits;
    float inv, sub; /* probs = exp(logits * inv - sub) */
} Pass;

static inline int block_end(const Sampler *s, int b) {
    return b + 1 == s->nb ? s->V : (b + 1) * SAMPLE_BLOCK;
}

/* per block: its max, the first id holding it, whether a NaN or +Inf is in it */
MODEL_SIMD_CLONES static void scan_blocks(void *ctx, int lo, int hi, int tid) {
    const Pass *ps = ctx;
    Sampler *s = ps->s;
    (void)tid;
    for (int b = lo; b < hi; b++) {
        const float *x = ps->logits;
        int i0 = b * SAMPLE_BLOCK, i1 = block_end(s, b), bad = 0;
        float m = vec_max(x + i0, i1 - i0);
        int i = i0;
        v8i acc = {0};
        for (; i + 8 <= i1; i += 8) {
            v8f v = v8_load(x + i);
            acc |= (v != v) | (v == v8_set1(INFINITY));
        }
        for (int k = 0; k < 8; k++) bad |= acc[k] != 0;
        for (; i < i1; i++)
            bad |= (x[i] != x[i]) | (x[i] == INFINITY);
        int arg = i0;
        while (arg < i1 - 1 && !(x[arg] == m)) arg++;
        s->bmax[b] = m, s->barg[b] = arg, s->bbad[b] = (unsigned char)bad;
    }
}

/* per block: probs = exp(logits · inv − sub) */
MODEL_SIMD_CLONES static void exp_blocks(void *ctx, int lo, int hi, int tid) {
    const Pass *ps = ctx;
    Sampler *s = ps->s;
    (void)tid;
    for (int b = lo; b < hi; b++) {
        int i0 = b * SAMPLE_BLOCK, n = block_end(s, b) - i0;
        float *pr = s->probs + i0;
        if (ps->inv == 1.0f)
            memcpy(pr, ps->logits + i0, sizeof(float) * (size_t)n);
        else
            for (int i = 0; i < n; i++) pr[i] = ps->logits[i0 + i] * ps->inv;
        vec_exp(pr, n, ps->sub);
    }
}

/* The blocks of a pass, on the decode pool when there are several (one pick
 * among several streams' runs in the caller: the pool is theirs). */
static void blocks(Sampler *s, Pass *ps, void (*fn)(void *, int, int, int)) {
    matvec_par(s->nb, 1, fn, ps);
}

/* Candidate order: likelier first, then lower id, a total order so that the
 * same logits always give the same token for the same draw. */
static int before(int a, int b, const float *p) {
    return p[a] > p[b] || (p[a] == p[b] && a < b);
}
static int cmp_idx(const void *x, const void *y, void *probs) {
    int a = *(const int *)x, b = *(const int *)y;
    return before(a, b, probs) ? -1 : before(b, a, probs) ? 1 : 0;
}

/* ix[0..k) = the k best ids, in order; a min-heap keeps the worst at the root. */
static void top_k_select(int *ix, const float *p, int V, int k) {
    int n = 0;
    for (int i = 0; i < V; i++) {
        if (n < k) {
            int j = n++;
            while (j > 0 && before(ix[(j - 1) / 2], i, p)) {
                ix[j] = ix[(j - 1) / 2];
                j = (j - 1) / 2;
            }
            ix[j] = i;
        } else if (before(i, ix[0], p)) {
            int j = 0;
            for (;;) {
                int c = 2 * j + 1;
                if (c >= k) break;
                if (c + 1 < k && before(ix[c], ix[c + 1], p)) c++;
                if (!before(i, ix[c], p)) break;
                ix[j] = ix[c];
                j = c;
            }
            ix[j] = i;
        }
    }
    qsort_r(ix, (size_t)k, sizeof(int), cmp_idx, (void *)p);
}

int sampler_pick(Sampler *s, const float *logits, const SampleParams *p, Rng *rng, float *logprob) {
    int V = s->V, best = 0;
    float lse = NAN; /* log Σ exp(logits), for the log-probability */
    Pass ps = {s, logits, 1.0f, 0.0f};
    blocks(s, &ps, scan_blocks);
    /* NaN or +Inf anywhere (or nothing above -Inf) leaves no distribution to
     * draw from; a broken model must not turn into a token */
    for (int b = 0; b < s->nb; b++) {
        if (s->bbad[b]) return -1;
        if (b == 0 || s->bmax[b] > s->bmax[best]) best = b; /* the first block with the max */
    }
    float mx = s->bmax[best];
    best = s->barg[best];
    if (!isfinite(mx)) return -1;
    int tok = best;
    if (p->temperature > 0.0f) {
        float inv = 1.0f / p->temperature, *pr = s->probs;
        ps.inv = p->temperature == 1.0f ? 1.0f : inv, ps.sub = mx * inv;
        blocks(s, &ps, exp_blocks);
        float total = vec_sum_as_exp_sum(pr, V); /* the draw's bits whatever the blocks */
        if (p->temperature == 1.0f) lse = mx + logf(total);
        int *ix = s->idx, n = V, sorted = 0;
        float mass = total;
        if (p->top_k > 0 && p->top_k < V) {
            top_k_select(ix, pr, V, p->top_k);
            n = p->top_k;
            sorted = 1;
            mass = 0.0f;
            for (int j = 0; j < n; j++)
                mass += pr[ix[j]];
        } else if (p->top_p < 1.0f) {
            /* a token below (1-p)/(V-1) of the mass cannot be in the nucleus */
            float cut = (1.0f - p->top_p) / (float)(V - 1) * total;
            n = 0;
            for (int i = 0; i < V; i++)
                if (pr[i] >= cut) ix[n++] = i;
            qsort_r(ix, (size_t)n, sizeof(int), cmp_idx, pr);
            sorted = 1;
        }
        if (p->top_p < 1.0f) {
            float target = p->top_p * mass, cum = 0.0f;
            for (int j = 0; j < n; j++) {
                cum += pr[ix[j]];
                if (cum >= target) {
                    n = j + 1;
                    break;
                }
            }
            mass = 0.0f;
            for (int j = 0; j < n; j++)
                mass += pr[ix[j]];
        }
        float u = rng_float(rng) * mass, cum = 0.0f;
        tok = sorted ? ix[n - 1] : V - 1;
        for (int j = 0; j < n; j++) {
            int id = sorted ? ix[j] : j;
            cum += pr[id];
            if (u < cum) {
                tok = id;
                break;
            }
        }
    }
    if (logprob) {
        if (isnan(lse)) {
            float sum, wsum;
            vec_exp_stats(logits, V, mx, &sum, &wsum);
            lse = mx + logf(sum);
        }
        *logprob = logits[tok] - lse;
    }
    return tok;
}

/* ---- generation ------------------------------------------------------------------ */

typedef struct {
    Rng rng;
    int prev, active;
    StrBuf text;
} Stream;

/* Takes token tok into stream g / result r; returns 1 while the stream goes on. */
static int accept(const Tokenizer *tok, const SampleParams *p, Stream *g, SampleResult *r, int t,
                  float lp) {
    r->tokens[r->n_tokens++] = t;
    r->logprob += lp;
    /* EOS and the end-of-turn tokens end a sample; so does BOS, as in llama2.c's
     * run.c, for models whose documents only start with it */
    if (tok_is_stop(tok, t) || (t == tok_bos(tok) && t >= 0)) {
        r->finish = SAMPLE_EOS;
        return 0;
    }
    size_t len, old = g->text.len;
    const char *piece = tok_piece(tok, g->prev, t, &len);
    g->prev = t;
    if (len && sb_append(&g->text, piece, len)) return -1;
    for (int i = 0; i < p->n_stop; i++) {
        size_t sl = strlen(p->stop[i]);
        size_t from = old + 1 > sl ? old + 1 - sl : 0;
        if (g->text.len < sl) continue;
        const char *hit = memmem(g->text.s + from, g->text.len - from, p->stop[i], sl);
        if (hit) {
            g->text.len = (size_t)(hit - g->text.s);
            g->text.s[g->text.len] = '\0';
            r->finish = SAMPLE_STOP;
            return 0;
        }
    }
    if (r->n_tokens >= p->max_tokens) {
        r->finish = SAMPLE_LENGTH;
        return 0;
    }
    return 1;
}

/* One decode step's picks, a stream per item on the decode pool: each stream
 * draws from its own rng with its thread's sampler, so what it picks does not
 * depend on the threads. next[s] = -2 when a sampler could not be had. */
typedef struct {
    Infer *st;
    const SampleParams *p;
    Stream *g;
    Sampler *sm; /* MATVEC_MAX_THREADS, made on first use by their thread */
    int *next;
    float *lp;
} PickJob;

static void pick_items(void *ctx, int lo, int hi, int tid) {
    PickJob *j = ctx;
    Sampler *sm = &j->sm[tid];
    Err err = {0};
    for (int s = lo; s < hi; s++) {
        if (!j->g[s].active) continue;
        if (!sm->probs && sampler_create(sm, j->st->m->cfg.vocab_size, &err)) {
            j->next[s] = -2;
            continue;
        }
        j->next[s] = sampler_pick(sm, infer_logits(j->st, s), j->p, &j->g[s].rng, &j->lp[s]);
    }
}

/* Samples the k streams the Infer has (each with its logits after its
 * prompt, last[s] that prompt's last token) until each ends. */
static int decode_streams(Infer *st, const Tokenizer *tok, int k, const int *last,
                          const SampleParams *p, const uint64_t *seeds, SampleResult *out,
                          Err *err) {
    const Config *c = &st->m->cfg;
    int rc = RLHF_OK;
    Stream *g = calloc((size_t)k, sizeof(Stream));
    int *next = calloc((size_t)k, sizeof(int));
    float *lps = calloc((size_t)k, sizeof(float));
    unsigned char *act = calloc((size_t)k, 1);
    Sampler sm[MATVEC_MAX_THREADS] = {{0}};
    PickJob pj = {st, p, g, sm, next, lps};
    if (!g || !next || !lps || !act || sampler_create(&sm[0], c->vocab_size, err)) {
        rc = err_set(err, RLHF_ENOMEM, "sampling: out of memory");
        goto done;
    }
    for (int s = 0; s < k; s++) {
        rng_seed(&g[s].rng, seeds[s]);
        g[s].prev = last[s];
        g[s].active = 1;
        out[s].tokens = malloc(sizeof(int) * (size_t)(p->max_tokens + 1));
        if (!out[s].tokens || sb_append(&g[s].text, "", 0)) {
            rc = err_set(err, RLHF_ENOMEM, "sampling: out of memory");
            goto done;
        }
    }
    for (int live = k; live > 0;) {
        matvec_par(k, 1, pick_items, &pj);
        for (int s = 0; s < k; s++) {
            act[s] = 0;
            if (!g[s].active) continue;
            float lp = lps[s];
            if (next[s] == -2) {
                rc = err_set(err, RLHF_ENOMEM, "sampling: out of memory");
                goto done;
            }
            if (next[s] < 0) {
                rc = err_set(err, RLHF_EFORMAT,
                             "the model's logits are not finite (NaN or Inf): broken weights?");
                goto done;
            }
            int on = accept(tok, p, &g[s], &out[s], next[s], lp);
            if (on < 0) {
                rc = err_set(err, RLHF_ENOMEM, "sampling: out of memory");
                goto done;
            }
            if (on && infer_pos(st, s) >= c->seq_len) {
                out[s].finish = SAMPLE_LENGTH; /* the context is full */
                on = 0;
            }
            if (!on) {
                g[s].active = 0;
                live--;
            }
            act[s] = (unsigned char)on;
        }
        if (live > 0 && (rc = infer_decode(st, next, act, err))) goto done;
    }
done:
    for (int s = 0; g && s < k; s++) {
        if (!rc) {
            out[s].text = g[s].text.s;
            out[s].text_len = g[s].text.len;
        } else {
            sb_free(&g[s].text);
            sample_result_free(&out[s]);
        }
    }
    for (int i = 0; i < MATVEC_MAX_THREADS; i++) sampler_free(&sm[i]);
    free(g);
    free(next);
    free(lps);
    free(act);
    return rc;
}

/* The parameters, the vocabulary and k streams for the Infer. */
static int check_call(const Infer *st, const Tokenizer *tok, int k, const SampleParams *p,
                      Err *err) {
    int rc = sample_params_check(p, err);
    if (!rc) rc = tok_check_vocab(tok, st->m->cfg.vocab_size, err);
    if (!rc && (k < 1 || k > st->max_streams))
        rc = err_set(err, RLHF_EINVAL, "%d samples asked, the state holds %d", k, st->max_streams);
    return rc;
}

int sample_generate_batch(Infer *st, const Tokenizer *tok, const int *prompt, int n_prompt, int k,
                          const SampleParams *p, const uint64_t *seeds, SampleResult *out,
                          Err *err) {
    int rc = check_call(st, tok, k, p, err);
    if (rc) return rc;
    if (n_prompt < 1) return err_set(err, RLHF_EINVAL, "empty prompt (start it with BOS)");
    memset(out, 0, sizeof(SampleResult) * (size_t)k);
    int *last = malloc(sizeof(int) * (size_t)k);
    if (!last) return err_set(err, RLHF_ENOMEM, "sampling: out of memory");
    for (int s = 0; s < k; s++)
        last[s] = prompt[n_prompt - 1];
    infer_reset(st);
    if (!(rc = infer_prefill(st, prompt, n_prompt, err)) && !(rc = infer_fork(st, k, err)))
        rc = decode_streams(st, tok, k, last, p, seeds, out, err);
    free(last);
    return rc;
}

int sample_generate_prompts(Infer *st, const Tokenizer *tok, const SamplePrompt *pr, int n,
                            const SampleParams *p, const uint64_t *seeds, SampleResult *out,
                            int *bad, Err *err) {
    int k = 0, rc = RLHF_OK;
    *bad = -1;
    for (int i = 0; i < n; i++) {
        if (pr[i].k < 1)
            return err_set(err, RLHF_EINVAL, "prompt %d: %d samples asked", i, pr[i].k);
        k += pr[i].k;
    }
    if ((rc = check_call(st, tok, k, p, err))) return rc;
    memset(out, 0, sizeof(SampleResult) * (size_t)k);
    int *last = malloc(sizeof(int) * (size_t)k);
    if (!last) return err_set(err, RLHF_ENOMEM, "sampling: out of memory");
    infer_reset(st);
    rc = infer_fork(st, k, err);
    /* each prompt fed to its first stream, that stream copied to the rest */
    for (int i = 0, s = 0; !rc && i < n; s += pr[i++].k) {
        if (pr[i].n < 1) rc = err_set(err, RLHF_EINVAL, "empty prompt (start it with BOS)");
        if (!rc) rc = infer_feed(st, s, pr[i].ids, pr[i].n, err);
        if (rc) {
            *bad = i;
            break;
        }
        for (int j = 0; j < pr[i].k; j++) {
            if (j) infer_copy_stream(st, s + j, s);
            last[s + j] = pr[i].ids[pr[i].n - 1];
        }
    }
    if (!rc) rc = decode_streams(st, tok, k, last, p, seeds, out, err);
    free(last);
    return rc;
}

int sample_generate(Infer *st, const Tokenizer *tok, const int *prompt, int n_prompt,
                    const SampleParams *p, uint64_t seed, SampleResult *out, Err *err) {
    return sample_generate_batch(st, tok, prompt, n_prompt, 1, p, &seed, out, err);
}
