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
    int flight, draw; /* the prompt it samples for (-1: a free slot), which of its draws */
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

/* A prompt in flight: its k draws, those still decoding, their results. */
typedef struct {
    int tag, k, left;
    SampleResult *res; /* k: the run's, or the caller's out (owned 0) */
    int owned;
} Flight;

/* The streams of the Infer, the prompts they sample for, and where more
 * prompts come from (f; NULL: only the flight set up before the run). */
typedef struct {
    Infer *st;
    const Tokenizer *tok;
    const SampleParams *p;
    const SampleFeed *f;
    int width, live, free;
    Stream *g;  /* width */
    Flight *fl; /* width: a flight has a stream at least */
    int *next;
    float *lp;
    unsigned char *act;
    Sampler sm[MATVEC_MAX_THREADS];
} Run;

static int run_open(Run *r, Infer *st, const Tokenizer *tok, const SampleParams *p,
                    const SampleFeed *f, Err *err) {
    memset(r, 0, sizeof *r);
    r->st = st, r->tok = tok, r->p = p, r->f = f;
    r->width = r->free = st->n_streams;
    size_t w = (size_t)r->width;
    r->g = calloc(w, sizeof *r->g);
    r->fl = calloc(w, sizeof *r->fl);
    r->next = calloc(w, sizeof *r->next);
    r->lp = calloc(w, sizeof *r->lp);
    r->act = calloc(w, 1);
    if (!r->g || !r->fl || !r->next || !r->lp || !r->act ||
        sampler_create(&r->sm[0], st->m->cfg.vocab_size, err))
        return err_set(err, RLHF_ENOMEM, "sampling: out of memory");
    for (int s = 0; s < r->width; s++)
        r->g[s].flight = -1;
    return RLHF_OK;
}

/* Frees what the run still holds: the results of prompts not handed over
 * (the caller's out included: a failed run leaves it empty). */
static void run_close(Run *r) {
    for (int i = 0; r->fl && i < r->width; i++) {
        Flight *fl = &r->fl[i];
        for (int j = 0; fl->res && j < fl->k; j++)
            sample_result_free(&fl->res[j]);
        if (fl->owned) free(fl->res);
    }
    for (int s = 0; r->g && s < r->width; s++)
        sb_free(&r->g[s].text);
    for (int i = 0; i < MATVEC_MAX_THREADS; i++)
        sampler_free(&r->sm[i]);
    free(r->g), free(r->fl), free(r->next), free(r->lp), free(r->act);
}

/* A flight for prompt tag's k draws into res (NULL: the run's own). */
static int flight_new(Run *r, int tag, int k, SampleResult *res, Err *err) {
    int i = 0;
    while (r->fl[i].k) /* a free one exists: each flight holds a stream */
        i++;
    Flight *fl = &r->fl[i];
    fl->owned = !res;
    fl->res = res ? res : calloc((size_t)k, sizeof *res);
    if (!fl->res) return -err_set(err, RLHF_ENOMEM, "sampling: out of memory");
    memset(fl->res, 0, sizeof *res * (size_t)k);
    fl->tag = tag, fl->k = fl->left = k;
    return i;
}

/* Stream s starts draw j of flight fi, its logits those after the prompt
 * (whose last token is last). */
static int stream_start(Run *r, int s, int fi, int j, uint64_t seed, int last, Err *err) {
    Stream *g = &r->g[s];
    SampleResult *out = &r->fl[fi].res[j];
    rng_seed(&g->rng, seed);
    g->prev = last, g->active = 1, g->flight = fi, g->draw = j;
    g->text.len = 0;
    out->tokens = malloc(sizeof(int) * (size_t)(r->p->max_tokens + 1));
    r->free--, r->live++;
    if (!out->tokens || sb_append(&g->text, "", 0))
        return err_set(err, RLHF_ENOMEM, "sampling: out of memory");
    return RLHF_OK;
}

/* Stream s has ended: its text into its result, its slot free. Returns the
 * flight when that was its last draw, else -1. */
static int stream_end(Run *r, int s) {
    Stream *g = &r->g[s];
    Flight *fl = &r->fl[g->flight];
    SampleResult *out = &fl->res[g->draw];
    out->text = g->text.s, out->text_len = g->text.len;
    g->text = (StrBuf){0};
    int fi = g->flight;
    g->active = 0, g->flight = -1;
    r->free++, r->live--;
    return --fl->left == 0 ? fi : -1;
}

/* Hands flight fi's results to the feed (they are its now; without a feed
 * they are already in the caller's out) and frees it. */
static int flight_done(Run *r, int fi, Err *err) {
    Flight *fl = &r->fl[fi];
    int rc = r->f ? r->f->done(r->f->ctx, fl->tag, fl->res, fl->k, err) : RLHF_OK;
    if (fl->owned) free(fl->res);
    *fl = (Flight){0};
    return rc;
}

/* Prompt pr (its seeds, tag) on pr->k free streams: fed to the first (from
 * the end of the shared prefix), copied to the others. Errors of the prompt
 * (too long, a token outside the vocabulary) are positive; the run's (out
 * of memory) negative. */
static int start_prompt(Run *r, const SamplePrompt *pr, const uint64_t *seeds, int tag, Err *err) {
    if (pr->n < 1) return err_set(err, RLHF_EINVAL, "empty prompt (start it with BOS)");
    int first = 0;
    while (r->g[first].flight >= 0)
        first++;
    infer_rewind(r->st, first);
    int rc = infer_feed(r->st, first, pr->ids, pr->n, err);
    if (rc) return rc;
    int fi = flight_new(r, tag, pr->k, NULL, err);
    if (fi < 0) return fi;
    for (int j = 0, s = first; j < pr->k; j++, s++) {
        while (r->g[s].flight >= 0)
            s++;
        if (s != first) infer_copy_stream(r->st, s, first);
        if ((rc = stream_start(r, s, fi, j, seeds[j], pr->ids[pr->n - 1], err))) return -rc;
    }
    return RLHF_OK;
}

/* Takes prompts from the feed while streams are free: the first that cannot
 * be had or started stops the feed (*late, *bad). Returns a run error. */
static int refill(Run *r, SamplePrompt *pr, const uint64_t **seeds, int *tag, int *pending,
                  int *ended, int *late, Err *late_err, int *bad, Err *err) {
    while (!*ended) {
        if (!*pending) {
            *pr = (SamplePrompt){0};
            int rc = r->f->next(r->f->ctx, pr, seeds, tag, err);
            if (!rc && pr->k > r->width)
                rc = err_set(err, RLHF_EINVAL, "%d samples asked, the state holds %d", pr->k,
                             r->width);
            if (rc) {
                *late = rc, *late_err = *err, *bad = *tag, *ended = 1;
                return RLHF_OK;
            }
            if (pr->k < 1) { /* none now: more may follow what is in flight */
                *ended = r->live == 0;
                return RLHF_OK;
            }
            *pending = 1;
        }
        if (r->free < pr->k) return RLHF_OK;
        *pending = 0;
        int rc = start_prompt(r, pr, *seeds, *tag, err);
        if (rc < 0) return -rc;
        if (rc) *late = rc, *late_err = *err, *bad = *tag, *ended = 1;
    }
    return RLHF_OK;
}

/* Decodes the run's streams until each ends, starting the feed's prompts as
 * streams come free (continuous batching: a batch does not wait for its
 * longest answer). A stream's samples depend only on its prompt and seed:
 * a product row, a position's scores and a pick do not depend on the other
 * streams, nor on which slot it has. */
static int run_streams(Run *r, int *bad, Err *err) {
    Infer *st = r->st;
    const Config *c = &st->m->cfg;
    PickJob pj = {st, r->p, r->g, r->sm, r->next, r->lp};
    SamplePrompt pr = {0};
    const uint64_t *seeds = NULL;
    int rc = RLHF_OK, late = RLHF_OK, pending = 0, ended = !r->f, tag = -1;
    Err late_err = {0};
    *bad = -1;
    for (;;) {
        if (!ended &&
            (rc = refill(r, &pr, &seeds, &tag, &pending, &ended, &late, &late_err, bad, err)))
            break;
        if (r->live == 0) break;
        matvec_par(r->width, 1, pick_items, &pj);
        for (int s = 0; s < r->width; s++) {
            Stream *g = &r->g[s];
            r->act[s] = 0;
            if (!g->active) continue;
            if (r->next[s] == -2) {
                rc = err_set(err, RLHF_ENOMEM, "sampling: out of memory");
                goto out;
            }
            if (r->next[s] < 0) {
                rc = err_set(err, RLHF_EFORMAT,
                             "the model's logits are not finite (NaN or Inf): broken weights?");
                goto out;
            }
            SampleResult *res = &r->fl[g->flight].res[g->draw];
            int on = accept(r->tok, r->p, g, res, r->next[s], r->lp[s]);
            if (on < 0) {
                rc = err_set(err, RLHF_ENOMEM, "sampling: out of memory");
                goto out;
            }
            if (on && infer_pos(st, s) >= c->seq_len) {
                res->finish = SAMPLE_LENGTH; /* the context is full */
                on = 0;
            }
            r->act[s] = (unsigned char)on;
            int fi = on ? -1 : stream_end(r, s);
            if (fi >= 0 && (rc = flight_done(r, fi, err))) goto out;
        }
        if (r->live > 0 && (rc = infer_decode(st, r->next, r->act, err))) goto out;
    }
out:
    if (rc) *bad = -1;
    else if (late) rc = late, *err = late_err;
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
    int rc = check_call(st, tok, k, p, err), bad;
    if (rc) return rc;
    if (n_prompt < 1) return err_set(err, RLHF_EINVAL, "empty prompt (start it with BOS)");
    memset(out, 0, sizeof(SampleResult) * (size_t)k);
    int bound = matvec_bind();
    infer_reset(st);
    Run r = {0};
    if ((rc = infer_prefill(st, prompt, n_prompt, err)) || (rc = infer_fork(st, k, err))) goto out;
    /* the k streams share the prompt's cache: one flight, into out */
    if (!(rc = run_open(&r, st, tok, p, NULL, err))) {
        int fi = flight_new(&r, 0, k, out, err);
        if (fi < 0) rc = -fi;
        for (int s = 0; !rc && s < k; s++)
            rc = stream_start(&r, s, fi, s, seeds[s], prompt[n_prompt - 1], err);
        if (!rc) rc = run_streams(&r, &bad, err);
    }
    run_close(&r);
out:
    matvec_unbind(bound);
    return rc;
}

int sample_generate_feed(Infer *st, const Tokenizer *tok, const SampleParams *p,
                         const SampleFeed *f, int *bad, Err *err) {
    *bad = -1;
    int rc = check_call(st, tok, 1, p, err);
    if (rc) return rc;
    int bound = matvec_bind();
    infer_reset(st);
    Run r;
    if (!(rc = infer_fork(st, st->max_streams, err))) {
        if (!(rc = run_open(&r, st, tok, p, f, err))) rc = run_streams(&r, bad, err);
        run_close(&r);
    }
    matvec_unbind(bound);
    return rc;
}

int sample_generate(Infer *st, const Tokenizer *tok, const int *prompt, int n_prompt,
                    const SampleParams *p, uint64_t seed, SampleResult *out, Err *err) {
    return sample_generate_batch(st, tok, prompt, n_prompt, 1, p, &seed, out, err);
}
