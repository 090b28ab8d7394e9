/* model/infer and model/sample: KV-cache logits against the training forward,
 * batched k-stream decoding against k single streams, sampling determinism and
 * the edge cases of temperature, top-k, top-p, stop strings and limits. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/infer.h"
#include "model/matvec.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "model/sample.h"
#include "model/tokenizer.h"
#include "util/progress.h"
#include "util/rng.h"

/* 1: make_model turns on every Hugging Face family feature (head size 12 so
 * NH*hs = 48 != dim, q/k/v biases, q/k norms, eps, theta, llama3 scaling) */
static int hf_features;
/* 1: make_model gives the classifier its own matrix */
static int untied;
/* set: make_model's heads, kv heads and head size instead of 4, 2 and 8 */
static int layout[3];

/* A small model with grouped KV heads and a context longer than one prefill pass. */
static void make_model(Model *m, int seq_len, int vocab) {
    Config c = {.dim = 32, .hidden_dim = 64, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                .vocab_size = vocab, .seq_len = seq_len, .shared_classifier = !untied};
    if (hf_features) {
        c.head_dim = 12, c.qkv_bias = 1, c.qk_norm = 1, c.norm_eps = 1e-6f, c.rope_theta = 500000.0f;
        c.rope_factor = 8.0f, c.rope_low_freq = 1.0f, c.rope_high_freq = 4.0f, c.rope_orig_ctx = 32;
    }
    if (layout[0]) c.n_heads = layout[0], c.n_kv_heads = layout[1], c.head_dim = layout[2];
    Err err = {0};
    cr_assert_eq(model_create(m, &c, 0, &err), 0, "%s", err.msg);
    model_init_random(m, 1234);
    /* larger weights than the 0.02 init so logits are not nearly flat */
    for (size_t i = 0; i < m->n_params; i++)
        m->params[i] *= 8.0f;
    size_t off = model_tensor_offset(m, MODEL_T_RMS_ATT);
    for (size_t i = 0; i < m->sizes[MODEL_T_RMS_ATT]; i++)
        m->params[off + i] = 1.0f;
    /* the init leaves biases at 0 and q/k norm gains at 1: make them matter */
    Rng r;
    rng_seed(&r, 77);
    for (int t = MODEL_T_BQ; t <= MODEL_T_KNORM; t++) {
        float *p = m->params + model_tensor_offset(m, t), base = t >= MODEL_T_QNORM ? 1.0f : 0.0f;
        for (size_t i = 0; i < m->sizes[t]; i++)
            p[i] = base + 0.5f * (float)rng_normal(&r);
    }
}

/* A tokenizer with exactly n tokens: control, bytes, then letter pairs. */
static Tokenizer *make_tokenizer(int n) {
    const char *pieces[1024];
    size_t lens[1024];
    float scores[1024];
    static char store[1024][8];
    for (int i = 0; i < n; i++) {
        if (i == 0)
            strcpy(store[i], "<unk>");
        else if (i == 1)
            strcpy(store[i], "<s>");
        else if (i == 2)
            strcpy(store[i], "</s>");
        else if (i < 259)
            snprintf(store[i], 8, "<0x%02X>", i - 3);
        else if (i < 259 + 26)
            snprintf(store[i], 8, "%c", 'a' + (i - 259));
        else if (i == 285)
            strcpy(store[i], " ");
        else
            snprintf(store[i], 8, "%c%c", 'a' + (i - 286) % 26, 'a' + (i - 286) / 26);
        pieces[i] = store[i];
        lens[i] = strlen(store[i]);
        scores[i] = -(float)i;
    }
    Tokenizer *t;
    Err err = {0};
    cr_assert_eq(tok_build(n, pieces, lens, scores, &t, &err), 0, "%s", err.msg);
    return t;
}

static void kv_cache_check(void) {
    Model m;
    int T = 100, V = 300;
    make_model(&m, T, V);
    int tokens[100];
    for (int t = 0; t < T; t++)
        tokens[t] = (t * 37 + 11) % V;
    RunState rs;
    Err err = {0};
    cr_assert_eq(model_runstate_create(&rs, &m.cfg, 1, T, &err), 0, "%s", err.msg);
    cr_assert_eq(model_forward(&m, &rs, tokens, 1, T, MODEL_FWD_LOGITS, &err), 0, "%s", err.msg);
    Infer st;
    cr_assert_eq(infer_create(&st, &m, 3, &err), 0, "%s", err.msg);
    float maxdiff = 0.0f, *step = malloc(sizeof(float) * V);
    for (int t = 0; t < T; t++) { /* one token at a time: the single-stream path */
        cr_assert_eq(infer_prefill(&st, &tokens[t], 1, &err), 0, "%s", err.msg);
        const float *a = infer_logits(&st, 0), *b = rs.logits + (size_t)t * V;
        for (int i = 0; i < V; i++)
            maxdiff = fmaxf(maxdiff, fabsf(a[i] - b[i]));
        if (t == T - 4) memcpy(step, a, sizeof(float) * V);
    }
    cr_assert_lt(maxdiff, 1e-4f, "max |logit difference| %g", (double)maxdiff);
    /* one prefill of all but the last 3 tokens (two passes), then 3 streams that
     * all decode the same tokens: every stream must match the training forward */
    infer_reset(&st);
    cr_assert_eq(infer_prefill(&st, tokens, T - 3, &err), 0);
    const float *b = rs.logits + (size_t)(T - 4) * V;
    for (int i = 0; i < V; i++)
        cr_assert_lt(fabsf(infer_logits(&st, 0)[i] - b[i]), 1e-4f);
    /* and bit for bit what feeding the tokens one by one gave */
    cr_assert(memcmp(infer_logits(&st, 0), step, sizeof(float) * V) == 0);
    free(step);
    cr_assert_eq(infer_fork(&st, 3, &err), 0);
    unsigned char act[3] = {1, 0, 1}; /* stream 1 sits out a step, then catches up */
    for (int t = T - 3; t < T; t++) {
        int toks[3] = {tokens[t], tokens[t], tokens[t]};
        cr_assert_eq(infer_decode(&st, toks, t == T - 3 ? act : NULL, &err), 0, "%s", err.msg);
        if (t == T - 3) {
            int one[3] = {0, tokens[t], 0};
            unsigned char only1[3] = {0, 1, 0};
            cr_assert_eq(infer_decode(&st, one, only1, &err), 0);
        }
        for (int s = 0; s < 3; s++) {
            const float *a = infer_logits(&st, s);
            b = rs.logits + (size_t)t * V;
            for (int i = 0; i < V; i++)
                cr_assert_lt(fabsf(a[i] - b[i]), 1e-4f, "stream %d pos %d logit %d", s, t, i);
        }
    }
    /* the context is full now */
    int toks[3] = {1, 1, 1};
    cr_assert_eq(infer_decode(&st, toks, NULL, &err), RLHF_EINVAL);
    /* greedy decoding through the cache picks what the batched forward's
     * argmax picks at every position of the sequence it wrote */
    int seq[100], P = 5;
    memcpy(seq, tokens, sizeof(int) * P);
    infer_reset(&st);
    cr_assert_eq(infer_prefill(&st, seq, P, &err), 0);
    cr_assert_eq(infer_fork(&st, 1, &err), 0);
    for (int t = P; t < T; t++) {
        const float *l = infer_logits(&st, 0);
        int best = 0;
        for (int i = 1; i < V; i++)
            if (l[i] > l[best]) best = i;
        seq[t] = best;
        if (t + 1 < T) cr_assert_eq(infer_decode(&st, &seq[t], NULL, &err), 0, "%s", err.msg);
    }
    cr_assert_eq(model_forward(&m, &rs, seq, 1, T, MODEL_FWD_LOGITS, &err), 0, "%s", err.msg);
    for (int t = P - 1; t < T - 1; t++) {
        const float *l = rs.logits + (size_t)t * V;
        int best = 0;
        for (int i = 1; i < V; i++)
            if (l[i] > l[best]) best = i;
        cr_assert_eq(best, seq[t + 1], "position %d: forward argmax %d, decoded %d", t, best, seq[t + 1]);
    }
    infer_free(&st);
    model_runstate_free(&rs);
    model_free(&m);
}

Test(infer, kv_cache_logits_match_training_forward) { kv_cache_check(); }
Test(infer, kv_cache_with_hf_features_matches_training_forward) {
    hf_features = 1;
    kv_cache_check();
    hf_features = 0;
}

/* Attention takes the queries of a kv head in groups of up to eight (the
 * same heads of several streams in a decode step): groups of 1, 3, 7, 12
 * (split in two) and 8 queries a kv head, head sizes 8 and 16, match the
 * training forward one token at a time and in a 3-stream decode. */
Test(infer, kv_cache_matches_training_forward_for_head_groupings) {
    int layouts[][3] = {{3, 3, 8}, {6, 2, 8}, {7, 1, 8}, {12, 1, 8}, {16, 2, 16}};
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
        memcpy(layout, layouts[i], sizeof layout);
        kv_cache_check();
    }
    memset(layout, 0, sizeof layout);
}

/* Logits of every stream after each of 6 decode steps of 12 streams from a
 * 5-token prompt, some steps with only 9 of them (the rest idle), on the
 * given number of threads; parts: how 1, 3 × threads - 1 and 12 streams
 * would be split. */
static float *split_run(Infer *st, int threads, int parts[3]) {
    int V = st->m->cfg.vocab_size, prompt[] = {1, 7, 30, 200, 299};
    float *out = malloc(sizeof(float) * 6 * 12 * (size_t)V);
    Err err = {0};
    matvec_set_threads(threads);
    parts[0] = infer_decode_parts(st, 1), parts[1] = infer_decode_parts(st, 3 * threads - 1);
    parts[2] = infer_decode_parts(st, 12);
    infer_reset(st);
    cr_assert_eq(infer_prefill(st, prompt, 5, &err), 0, "%s", err.msg);
    cr_assert_eq(infer_fork(st, 12, &err), 0, "%s", err.msg);
    for (int step = 0; step < 6; step++) {
        int toks[12];
        unsigned char active[12];
        for (int s = 0; s < 12; s++)
            toks[s] = (step * 37 + s * 11) % V, active[s] = step % 2 == 0 || s % 4 != 3;
        cr_assert_eq(infer_decode(st, toks, step % 2 ? active : NULL, &err), 0, "%s", err.msg);
        for (int s = 0; s < 12; s++)
            memcpy(out + ((size_t)step * 12 + s) * V, infer_logits(st, s), sizeof(float) * V);
    }
    matvec_set_threads(1);
    return out;
}

/* A decode step of a small model with three streams or more a thread is
 * split by streams over the threads (each part through the whole pass): the
 * logits are those of one pass on one thread, bit for bit, with fp32 and
 * bf16 weights, with biases and q/k norms (their per-row scratch), with
 * some streams idle. */
Test(infer, decode_split_by_streams_equals_one_pass) {
    for (int f = 0; f < 4; f++) {
        hf_features = f % 2;
        Model m;
        make_model(&m, 64, 300);
        Infer st;
        Err err = {0};
        cr_assert_eq(infer_create_weights(&st, &m, 12, f < 2 ? INFER_WEIGHTS_F32 : INFER_WEIGHTS_BF16,
                                          &err),
                     0, "%s", err.msg);
        int parts[3];
        float *one = split_run(&st, 1, parts);
        cr_assert_eq(parts[2], 1);
        for (int threads = 2; threads <= 3; threads++) {
            float *split = split_run(&st, threads, parts);
            cr_assert(parts[0] == 1 && parts[1] == 1 && parts[2] == threads,
                      "%d threads: 1, %d, 12 streams in %d, %d, %d parts", threads, 3 * threads - 1,
                      parts[0], parts[1], parts[2]);
            for (size_t i = 0; i < 6 * 12 * 300; i++)
                cr_assert(memcmp(&one[i], &split[i], sizeof(float)) == 0,
                          "case %d, %d threads: step %zu stream %zu logit %zu: %.9g vs %.9g", f,
                          threads, i / 3600, i / 300 % 12, i % 300, one[i], split[i]);
            free(split);
        }
        free(one);
        infer_free(&st);
        model_free(&m);
    }
    hf_features = 0;
}

/* A model over the split's 8 MiB (29 MB of fp32 weights) decodes one pass
 * a step, each product's outputs split over the threads, q, k and v as one
 * job and the gate and up projections (SwiGLU on each chunk) as another:
 * the logits are those of one thread, bit for bit. */
Test(infer, decode_split_by_outputs_equals_one_thread) {
    Config c = {.dim = 512, .hidden_dim = 1536, .n_layers = 2, .n_heads = 8, .n_kv_heads = 4,
                .vocab_size = 300, .seq_len = 32, .shared_classifier = 1};
    for (int f = 0; f < 2; f++) {
        c.qkv_bias = f, c.qk_norm = f;
        Model m;
        Err err = {0};
        cr_assert_eq(model_create(&m, &c, 0, &err), 0, "%s", err.msg);
        model_init_random(&m, 77);
        Infer st;
        cr_assert_eq(infer_create(&st, &m, 12, &err), 0, "%s", err.msg);
        int parts[3];
        float *one = split_run(&st, 1, parts);
        float *two = split_run(&st, 2, parts);
        cr_assert(parts[0] == 1 && parts[1] == 1 && parts[2] == 1, "split by streams: %d %d %d",
                  parts[0], parts[1], parts[2]);
        for (size_t i = 0; i < 6 * 12 * 300; i++)
            cr_assert(memcmp(&one[i], &two[i], sizeof(float)) == 0,
                      "case %d: step %zu stream %zu logit %zu: %.9g vs %.9g", f, i / 3600,
                      i / 300 % 12, i % 300, one[i], two[i]);
        free(one);
        free(two);
        infer_free(&st);
        model_free(&m);
    }
}

Test(infer, bad_calls_are_refused) {
    Model m;
    make_model(&m, 16, 300);
    Infer st;
    Err err = {0};
    cr_assert_eq(infer_create(&st, &m, 2, &err), 0);
    int big[17] = {0}, bad = 300;
    cr_assert_eq(infer_decode(&st, big, NULL, &err), RLHF_EINVAL);
    cr_assert_eq(infer_feed(&st, 0, big, 1, &err), RLHF_EINVAL); /* no stream yet */
    cr_assert_eq(infer_prefill(&st, big, 17, &err), RLHF_EINVAL);
    cr_assert(strstr(err.msg, "context"), "%s", err.msg);
    cr_assert_eq(infer_prefill(&st, &bad, 1, &err), RLHF_EINVAL);
    cr_assert_eq(infer_prefill(&st, big, 4, &err), 0);
    cr_assert_eq(infer_fork(&st, 3, &err), RLHF_EINVAL);
    cr_assert_eq(infer_fork(&st, 2, &err), 0);
    cr_assert_eq(infer_prefill(&st, big, 1, &err), RLHF_EINVAL);
    /* a stream's own prompt: in range, in the vocabulary, within the context */
    cr_assert_eq(infer_feed(&st, 2, big, 1, &err), RLHF_EINVAL);
    cr_assert_eq(infer_feed(&st, 1, &bad, 1, &err), RLHF_EINVAL);
    cr_assert_eq(infer_feed(&st, 1, big, 13, &err), RLHF_EINVAL);
    cr_assert(strstr(err.msg, "context"), "%s", err.msg);
    cr_assert_eq(infer_feed(&st, 1, big, 12, &err), 0);
    cr_assert_eq(infer_pos(&st, 1), 16);
    cr_assert_eq(infer_feed(&st, 0, big, 0, &err), RLHF_EINVAL);
    /* with no prefix the streams start empty */
    infer_reset(&st);
    cr_assert_eq(infer_fork(&st, 2, &err), 0);
    cr_assert_eq(infer_pos(&st, 1), 0);
    infer_free(&st);
    model_free(&m);
}

static void same_result(const SampleResult *a, const SampleResult *b, int i) {
    cr_assert_eq(a->n_tokens, b->n_tokens, "stream %d: %d vs %d tokens", i, a->n_tokens,
                 b->n_tokens);
    for (int t = 0; t < a->n_tokens; t++)
        cr_assert_eq(a->tokens[t], b->tokens[t], "stream %d token %d", i, t);
    cr_assert_eq(a->text_len, b->text_len);
    cr_assert(memcmp(a->text, b->text, a->text_len) == 0);
    cr_assert_eq(a->finish, b->finish);
    cr_assert_lt(fabs(a->logprob - b->logprob), 1e-3 * (1 + fabs(a->logprob)));
}

/* A feed over an array that records what the run does: prompts taken,
 * prompts done (in order), the most in flight, and refills: a prompt asked
 * for right after one was done while two others were still in flight (one
 * of them decoding: only one can wait for room), where a batch that waited
 * for its longest answer would only go on decoding. */
typedef struct {
    const SamplePrompt *pr;
    const uint64_t *seeds;
    const int *first;
    SampleResult *out;
    int n, at, in_flight, most, refills, n_done, order[16], left_at_done;
} Recorder;

static int rec_next(void *ctx, SamplePrompt *pr, const uint64_t **seeds, int *tag, Err *err) {
    Recorder *r = ctx;
    (void)err;
    if (r->at == r->n) return RLHF_OK;
    *tag = r->at;
    *pr = r->pr[r->at];
    *seeds = r->seeds + r->first[r->at++];
    r->refills += r->left_at_done >= 2;
    r->left_at_done = 0;
    r->most = ++r->in_flight > r->most ? r->in_flight : r->most;
    return RLHF_OK;
}

static int rec_done(void *ctx, int tag, SampleResult *res, int k, Err *err) {
    Recorder *r = ctx;
    (void)err;
    cr_assert_eq(k, r->pr[tag].k);
    memcpy(r->out + r->first[tag], res, sizeof *res * (size_t)k);
    r->order[r->n_done++] = tag;
    r->left_at_done = --r->in_flight;
    return RLHF_OK;
}

/* Prompts of 7, 3 and 70 tokens (two feed passes) with 2, 1 and 3 samples,
 * decoded as one batch (sample_generate_feed, 8 streams) with no shared
 * prefix: each stream the tokens, text and log-probability (exactly) of its
 * prompt sampled alone, on 1 and 2 threads (split by streams), f32 and
 * bf16, with and without biases and q/k norms. A prompt past the context is
 * named, after the prompts before it are done. */
Test(infer, batch_of_prompts_equals_each_prompt_alone) {
    int ids[70];
    for (int i = 0; i < 70; i++)
        ids[i] = i ? 3 + (i * 37) % 290 : 1;
    int p0[] = {1, 285, 259, 260, 261, 299, 290}, p1[] = {1, 7, 9};
    SamplePrompt pr[3] = {{p0, 7, 2}, {p1, 3, 1}, {ids, 70, 3}};
    uint64_t seeds[6] = {11, 12, 13, 14, 15, 16};
    SampleParams p = sample_params_default();
    p.max_tokens = 40;
    Tokenizer *tok = make_tokenizer(300);
    Err err = {0};
    for (int v = 0; v < 8; v++) {
        hf_features = v & 1;
        Model m;
        make_model(&m, 128, 300);
        infer_set_threads(1 + (v >> 1 & 1));
        InferWeights w = v & 4 ? INFER_WEIGHTS_BF16 : INFER_WEIGHTS_F32;
        Infer batch, alone;
        cr_assert_eq(infer_create_weights(&batch, &m, 8, w, &err), 0, "%s", err.msg);
        cr_assert_eq(infer_create_weights(&alone, &m, 3, w, &err), 0, "%s", err.msg);
        SampleResult rb[6], ra[3];
        int bad = 0, first[4] = {0, 2, 3, 6};
        Recorder r = {.pr = pr, .seeds = seeds, .first = first, .out = rb, .n = 3};
        SampleFeed f = {&r, rec_next, rec_done};
        cr_assert_eq(sample_generate_feed(&batch, tok, &p, &f, &bad, &err), 0, "%s", err.msg);
        cr_assert_eq(bad, -1);
        cr_assert_eq(r.most, 3, "the three prompts decode at once");
        for (int i = 0, s = 0; i < 3; s += pr[i++].k) {
            cr_assert_eq(sample_generate_batch(&alone, tok, pr[i].ids, pr[i].n, pr[i].k, &p,
                                               seeds + s, ra, &err), 0, "%s", err.msg);
            for (int j = 0; j < pr[i].k; j++) {
                same_result(&rb[s + j], &ra[j], s + j);
                cr_assert(rb[s + j].logprob == ra[j].logprob, "variant %d stream %d", v, s + j);
                sample_result_free(&ra[j]);
            }
        }
        for (int i = 0; i < 6; i++)
            sample_result_free(&rb[i]);
        /* the third prompt past the context of 128 */
        int *longer = malloc(sizeof(int) * 130);
        for (int i = 0; i < 130; i++)
            longer[i] = ids[i % 70];
        SamplePrompt over[3] = {pr[0], pr[1], {longer, 130, 3}};
        Recorder r2 = {.pr = over, .seeds = seeds, .first = first, .out = rb, .n = 3};
        SampleFeed f2 = {&r2, rec_next, rec_done};
        cr_assert_eq(sample_generate_feed(&batch, tok, &p, &f2, &bad, &err), RLHF_EINVAL);
        cr_assert_eq(bad, 2);
        cr_assert(strstr(err.msg, "context"), "%s", err.msg);
        cr_assert_eq(r2.n_done, 2, "the prompts before it are done");
        for (int i = 0; i < first[2]; i++)
            sample_result_free(&rb[i]);
        free(longer);
        infer_free(&batch);
        infer_free(&alone);
        model_free(&m);
    }
    hf_features = 0;
    infer_set_threads(1);
    tok_free(tok);
}

Test(infer, batch_equals_single_streams) {
    Model m;
    make_model(&m, 64, 300);
    Tokenizer *tok = make_tokenizer(300);
    Infer batch, single;
    Err err = {0};
    cr_assert_eq(infer_create(&batch, &m, 8, &err), 0);
    cr_assert_eq(infer_create(&single, &m, 1, &err), 0);
    int prompt[] = {1, 285, 259, 260, 261, 300 - 1, 290};
    SampleParams p = sample_params_default();
    p.max_tokens = 40;
    uint64_t seeds[8] = {1, 2, 3, 4, 5, 6, 7, 99};
    float temps[] = {1.0f, 0.7f, 0.0f};
    for (int ti = 0; ti < 3; ti++) {
        p.temperature = temps[ti];
        p.top_k = ti == 1 ? 20 : 0;
        p.top_p = ti == 1 ? 0.9f : 1.0f;
        SampleResult rb[8];
        cr_assert_eq(sample_generate_batch(&batch, tok, prompt, 7, 8, &p, seeds, rb, &err), 0, "%s",
                     err.msg);
        for (int i = 0; i < 8; i++) {
            SampleResult rs;
            cr_assert_eq(sample_generate(&single, tok, prompt, 7, &p, seeds[i], &rs, &err), 0);
            same_result(&rb[i], &rs, i);
            cr_assert_gt(rb[i].n_tokens, 0);
            cr_assert_leq(rb[i].n_tokens, 40);
            cr_assert_lt(rb[i].logprob, 0.0);
            sample_result_free(&rs);
        }
        if (ti == 0) { /* different seeds give different samples */
            int differ = 0;
            for (int i = 1; i < 8; i++)
                differ += rb[i].n_tokens != rb[0].n_tokens ||
                          memcmp(rb[i].tokens, rb[0].tokens, sizeof(int) * rb[0].n_tokens) != 0;
            cr_assert_gt(differ, 4);
        }
        if (ti == 2) /* greedy: every stream is the same */
            for (int i = 1; i < 8; i++)
                same_result(&rb[i], &rb[0], i);
        for (int i = 0; i < 8; i++)
            sample_result_free(&rb[i]);
    }
    /* same seed, same result, run after run */
    p = sample_params_default();
    p.max_tokens = 30;
    SampleResult a, b;
    cr_assert_eq(sample_generate(&single, tok, prompt, 7, &p, 42, &a, &err), 0);
    cr_assert_eq(sample_generate(&batch, tok, prompt, 7, &p, 42, &b, &err), 0);
    same_result(&a, &b, 0);
    sample_result_free(&a);
    sample_result_free(&b);
    infer_free(&batch);
    infer_free(&single);
    tok_free(tok);
    model_free(&m);
}

Test(infer, stop_strings_eos_and_limits) {
    Model m;
    make_model(&m, 32, 300);
    Tokenizer *tok = make_tokenizer(300);
    Infer st;
    Err err = {0};
    cr_assert_eq(infer_create(&st, &m, 2, &err), 0);
    int prompt[] = {1, 285, 262};
    SampleParams p = sample_params_default();
    p.max_tokens = 25;
    SampleResult full;
    uint64_t seed = 5;
    /* find a seed whose sample has some text to cut */
    for (;; seed++) {
        cr_assert_eq(sample_generate(&st, tok, prompt, 3, &p, seed, &full, &err), 0);
        if (full.text_len >= 6 && full.text[full.text_len / 2] && full.text[full.text_len / 2 + 1])
            break;
        sample_result_free(&full);
        cr_assert_lt(seed, 200);
    }
    char stop[3] = {full.text[full.text_len / 2], full.text[full.text_len / 2 + 1], 0};
    const char *stops[] = {"no such stop", stop};
    p.stop = stops;
    p.n_stop = 2;
    SampleResult cut;
    cr_assert_eq(sample_generate(&st, tok, prompt, 3, &p, seed, &cut, &err), 0);
    const char *first = memmem(full.text, full.text_len, stop, 2);
    cr_assert_eq(cut.finish, SAMPLE_STOP);
    cr_assert_eq(cut.text_len, (size_t)(first - full.text));
    cr_assert(memcmp(cut.text, full.text, cut.text_len) == 0);
    cr_assert_leq(cut.n_tokens, full.n_tokens);
    for (int i = 0; i < cut.n_tokens; i++)
        cr_assert_eq(cut.tokens[i], full.tokens[i]);
    if (full.finish == SAMPLE_EOS)
        cr_assert_eq(full.tokens[full.n_tokens - 1], 2);
    else
        cr_assert_eq(full.finish, SAMPLE_LENGTH);
    sample_result_free(&cut);
    sample_result_free(&full);
    /* the context bounds the sample: 32 positions, 3 used by the prompt */
    p = sample_params_default();
    p.max_tokens = 1000;
    p.temperature = 0.0f;
    SampleResult lim;
    cr_assert_eq(sample_generate(&st, tok, prompt, 3, &p, 1, &lim, &err), 0);
    if (lim.finish == SAMPLE_LENGTH) cr_assert_eq(lim.n_tokens, 32 - 3 + 1);
    cr_assert_leq(lim.n_tokens, 30);
    sample_result_free(&lim);
    /* bad parameters and a tokenizer of the wrong size */
    p.top_p = 0.0f;
    cr_assert_eq(sample_generate(&st, tok, prompt, 3, &p, 1, &lim, &err), RLHF_EINVAL);
    p = sample_params_default();
    p.temperature = -1;
    cr_assert_eq(sample_generate(&st, tok, prompt, 3, &p, 1, &lim, &err), RLHF_EINVAL);
    p = sample_params_default();
    Tokenizer *small = make_tokenizer(290);
    cr_assert_eq(sample_generate(&st, small, prompt, 3, &p, 1, &lim, &err), RLHF_EINVAL);
    cr_assert(strstr(err.msg, "tokenizer"), "%s", err.msg);
    tok_free(small);
    infer_free(&st);
    tok_free(tok);
    model_free(&m);
}

Test(sample, pick_edge_cases) {
    Sampler s;
    Err err = {0};
    cr_assert_eq(sampler_create(&s, 5, &err), 0);
    /* probabilities 0.4 0.3 0.2 0.1 0.0(ish) */
    float logits[5] = {logf(0.4f), logf(0.3f), logf(0.2f), logf(0.1f), -30.0f};
    SampleParams p = sample_params_default();
    Rng r;
    rng_seed(&r, 1);
    int counts[5] = {0};
    float lp;
    for (int i = 0; i < 20000; i++)
        counts[sampler_pick(&s, logits, &p, &r, &lp)]++;
    cr_assert(counts[0] > 7600 && counts[0] < 8400, "%d", counts[0]);
    cr_assert(counts[3] > 1700 && counts[3] < 2300, "%d", counts[3]);
    /* logprob is log softmax at temperature 1 */
    p.temperature = 0.0f;
    Rng before = r;
    cr_assert_eq(sampler_pick(&s, logits, &p, &r, &lp), 0);
    cr_assert_lt(fabsf(lp - logf(0.4f)), 1e-5f);
    cr_assert(memcmp(&before, &r, sizeof r) == 0, "greedy must not draw");
    /* top-k 1 and a tiny top-p are greedy whatever the temperature */
    p.temperature = 5.0f;
    p.top_k = 1;
    for (int i = 0; i < 100; i++)
        cr_assert_eq(sampler_pick(&s, logits, &p, &r, NULL), 0);
    p.top_k = 0;
    p.top_p = 1e-6f;
    for (int i = 0; i < 100; i++)
        cr_assert_eq(sampler_pick(&s, logits, &p, &r, NULL), 0);
    /* top-k 2 keeps tokens 0 and 1; top-p 0.5 keeps {0, 1} (0.4 < 0.5 <= 0.7) */
    p.temperature = 1.0f;
    p.top_p = 1.0f;
    p.top_k = 2;
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < 5000; i++)
        counts[sampler_pick(&s, logits, &p, &r, NULL)]++;
    cr_assert(counts[2] == 0 && counts[3] == 0 && counts[4] == 0);
    cr_assert(counts[0] > 2650 && counts[0] < 3050, "%d", counts[0]); /* 4/7 of 5000 */
    p.top_k = 0;
    p.top_p = 0.5f;
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < 5000; i++)
        counts[sampler_pick(&s, logits, &p, &r, NULL)]++;
    cr_assert(counts[2] == 0 && counts[3] == 0 && counts[4] == 0 && counts[1] > 0);
    /* top-k >= V is no top-k; top-k + top-p combine (renormalised over the k) */
    p.top_k = 5;
    p.top_p = 1.0f;
    Rng r1, r2;
    rng_seed(&r1, 9);
    rng_seed(&r2, 9);
    SampleParams q = sample_params_default();
    for (int i = 0; i < 200; i++)
        cr_assert_eq(sampler_pick(&s, logits, &p, &r1, NULL),
                     sampler_pick(&s, logits, &q, &r2, NULL));
    p.top_k = 3;
    p.top_p = 0.75f; /* over 0.4/0.9, 0.3/0.9 = 0.78 >= 0.75: {0, 1} */
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < 3000; i++)
        counts[sampler_pick(&s, logits, &p, &r, NULL)]++;
    cr_assert(counts[2] == 0 && counts[1] > 0);
    /* ties: greedy takes the lowest id */
    float flat[5] = {1, 3, 3, 0, 3};
    p = sample_params_default();
    p.temperature = 0;
    cr_assert_eq(sampler_pick(&s, flat, &p, &r, NULL), 1);
    sampler_free(&s);
}

/* NaN or +Inf logits (a checkpoint of NaNs) are no distribution: -1, never a
 * token, whatever the truncation (top-p < 1 once read ix[-1]) */
Test(sample, pick_non_finite_logits) {
    Sampler s;
    Err err = {0};
    cr_assert_eq(sampler_create(&s, 4, &err), 0);
    float nan4[4] = {NAN, NAN, NAN, NAN}, one_nan[4] = {0.1f, NAN, 0.3f, 0.2f},
          inf4[4] = {0, INFINITY, 0, 0}, neg4[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    const float *bad[4] = {nan4, one_nan, inf4, neg4};
    float temps[3] = {0.0f, 1.0f, 0.7f}, tops[2] = {1.0f, 0.9f};
    Rng r;
    rng_seed(&r, 3);
    for (int b = 0; b < 4; b++)
        for (int t = 0; t < 3; t++)
            for (int q = 0; q < 2; q++)
                for (int k = 0; k < 3; k += 2) {
                    SampleParams p = sample_params_default();
                    p.temperature = temps[t];
                    p.top_p = tops[q];
                    p.top_k = k;
                    float lp = 0;
                    cr_assert_eq(sampler_pick(&s, bad[b], &p, &r, &lp), -1, "case %d %d %d %d", b,
                                 t, q, k);
                }
    /* -Inf among finite logits is a masked token, not an error */
    float masked[4] = {-INFINITY, 0.5f, 0.2f, -INFINITY};
    SampleParams p = sample_params_default();
    p.top_p = 0.9f;
    for (int i = 0; i < 50; i++) {
        int t = sampler_pick(&s, masked, &p, &r, NULL);
        cr_assert(t == 1 || t == 2, "%d", t);
    }
    sampler_free(&s);
}

Test(matvec, rows_threads_and_attention_pieces) {
    int C = 260, OC = 301; /* not multiples of 8 or 3: the tails run too */
    float *w = malloc(sizeof(float) * C * OC), *x = malloc(sizeof(float) * 16 * C);
    float *ref = malloc(sizeof(float) * 16 * OC), *a = malloc(sizeof(float) * 16 * OC);
    float *b = malloc(sizeof(float) * OC);
    Rng r;
    rng_seed(&r, 5);
    for (int i = 0; i < C * OC; i++)
        w[i] = (float)rng_normal(&r);
    for (int i = 0; i < 16 * C; i++)
        x[i] = (float)rng_normal(&r);
    for (int n = 0; n < 16; n++)
        for (int o = 0; o < OC; o++) {
            double s = 0;
            for (int j = 0; j < C; j++)
                s += (double)w[o * C + j] * x[n * C + j];
            ref[n * OC + o] = (float)s;
        }
    for (int mode = 0; mode < 4; mode++) { /* threads 1..3 with SIMD, 1 without */
        int threads = mode < 3 ? mode + 1 : 1;
        matvec_use_simd(mode < 3 ? MATVEC_SIMD_BEST : MATVEC_SIMD_NONE);
        matvec_set_threads(threads);
        for (int rep = 0; rep < 200; rep++) {
            int n = 1 + rep % 16;
            matvec_rows(a, x, w, n, C, OC);
            for (int row = 0; row < n; row++) {
                /* each row alone gives the very same bits as inside the batch */
                matvec_rows(b, x + row * C, w, 1, C, OC);
                for (int o = 0; o < OC; o++) {
                    cr_assert_eq(a[row * OC + o], b[o], "n=%d row %d out %d", n, row, o);
                    cr_assert_lt(fabsf(a[row * OC + o] - ref[row * OC + o]), 1e-3f);
                }
            }
        }
    }
    matvec_set_threads(1);
    /* attention pieces against plain loops, on every SIMD level */
    for (int simd = MATVEC_SIMD_NONE; simd <= MATVEC_SIMD_BEST; simd++) {
        matvec_use_simd(simd);
        float sc[7], out[13] = {0}, want[13] = {0}, keys[16 * 13];
        for (int t = 0; t < 7; t++)
            matvec_key_put(keys, t, w + t * 20, 13);
        matvec_scores_multi((float *const[]){sc}, (const float *const[]){x}, 1, keys, 0, 7, 13, 0.5f);
        for (int t = 0; t < 7; t++) {
            float d = 0;
            for (int i = 0; i < 13; i++)
                d += x[i] * w[t * 20 + i];
            cr_assert_lt(fabsf(sc[t] - d * 0.5f), 1e-4f);
            for (int i = 0; i < 13; i++)
                want[i] += sc[t] * w[t * 20 + i];
        }
        matvec_accum(out, sc, w, 20, 7, 13);
        for (int i = 0; i < 13; i++)
            cr_assert_lt(fabsf(out[i] - want[i]), 1e-3f);
    }
    matvec_use_simd(MATVEC_SIMD_BEST);
    free(w), free(x), free(ref), free(a), free(b);
}

/* A score as the cached-key kernels must give it on every SIMD level: one
 * chain of FMAs over the dimensions in order, then times the scale. */
static float score_chain(const float *q, const float *k, int n, float scale) {
    float s = 0.0f;
    for (int d = 0; d < n; d++)
        s = fmaf(q[d], k[d], s);
    return s * scale;
}

/* Several queries against cached keys at once (matvec_scores_multi: tiles of
 * up to eight queries by up to eight key blocks, and the narrower tiles left
 * over) give every query and position the bits of score_chain, whatever
 * the range (starting and ending inside a block or on its edge) and on
 * every SIMD level, and write nothing outside the range; matvec_accum_multi
 * gives each query the sums it gets alone. 1..11 queries, head sizes with
 * and without whole vectors of 8 and 32. */
Test(matvec, attention_of_several_queries_equals_each_alone) {
    enum { NT = 150, STRIDE = 72, NQ = 11 };
    static float k[NT * STRIDE], keys[(NT + 16) * STRIDE], sc[NQ][NT + 16];
    float q[NQ][STRIDE], a[NQ][NT], out[NQ][STRIDE], want[STRIDE];
    Rng r;
    rng_seed(&r, 14);
    for (int i = 0; i < NT * STRIDE; i++)
        k[i] = (float)rng_normal(&r);
    for (int j = 0; j < NQ; j++) {
        for (int i = 0; i < STRIDE; i++)
            q[j][i] = (float)rng_normal(&r);
        for (int t = 0; t < NT; t++)
            a[j][t] = rng_float(&r);
    }
    float *scp[NQ], *outp[NQ];
    const float *qp[NQ], *ap[NQ];
    for (int j = 0; j < NQ; j++)
        scp[j] = sc[j], outp[j] = out[j], qp[j] = q[j], ap[j] = a[j];
    int ns[] = {8, 13, 20, 32, 48, 64, 72};
    int ranges[][2] = {{0, 1}, {0, 16}, {0, 21}, {5, 6}, {3, 37}, {16, 150}, {31, 150}, {0, 150}, {17, 129}};
    for (int level = MATVEC_SIMD_NONE; level <= MATVEC_SIMD_BEST; level++) {
        matvec_use_simd(level);
        for (size_t h = 0; h < sizeof ns / sizeof ns[0]; h++) {
            int n = ns[h];
            for (int t = 0; t < NT; t++)
                matvec_key_put(keys, t, k + (size_t)t * STRIDE, n);
            for (int nq = 1; nq <= NQ; nq++)
                for (size_t g = 0; g < sizeof ranges / sizeof ranges[0]; g++) {
                    int t0 = ranges[g][0], t1 = ranges[g][1];
                    for (int j = 0; j < NQ; j++)
                        for (int t = 0; t < NT + 16; t++)
                            sc[j][t] = -7.0f;
                    matvec_scores_multi(scp, qp, nq, keys, t0, t1, n, 0.125f);
                    for (int j = 0; j < NQ; j++)
                        for (int t = 0; t < NT + 16; t++) {
                            float want_s = j < nq && t >= t0 && t < t1
                                               ? score_chain(q[j], k + (size_t)t * STRIDE, n, 0.125f)
                                               : -7.0f;
                            cr_assert(memcmp(&want_s, &sc[j][t], sizeof(float)) == 0,
                                      "scores: level %d n=%d nq=%d [%d, %d) query %d position %d: "
                                      "%g, want %g",
                                      level, n, nq, t0, t1, j, t, sc[j][t], want_s);
                        }
                }
            for (int nq = 1; nq <= NQ; nq++)
                for (int nt = 1; nt <= 21; nt += 1 + nt / 4) {
                    for (int j = 0; j < NQ; j++)
                        for (int i = 0; i < n; i++)
                            out[j][i] = q[j][i];
                    matvec_accum_multi(outp, ap, nq, k, STRIDE, nt, n);
                    for (int j = 0; j < nq; j++) {
                        memcpy(want, q[j], sizeof(float) * n);
                        matvec_accum(want, a[j], k, STRIDE, nt, n);
                        cr_assert(memcmp(want, out[j], sizeof(float) * n) == 0,
                                  "sums: level %d n=%d nq=%d nt=%d query %d", level, n, nq, nt, j);
                    }
                }
        }
    }
    matvec_use_simd(MATVEC_SIMD_BEST);
}

/* Attention's sums over several column blocks at once give the bits of one
 * block at a time (head sizes 16..56 in steps of 8, and 20 with a scalar
 * tail). */
Test(matvec, attention_sums_in_blocks_equal_one_at_a_time) {
    enum { NT = 21, STRIDE = 64 };
    float k[NT * STRIDE], q[STRIDE], a[NT], out[STRIDE], want[STRIDE];
    Rng r;
    rng_seed(&r, 13);
    for (int i = 0; i < NT * STRIDE; i++)
        k[i] = (float)rng_normal(&r);
    for (int i = 0; i < STRIDE; i++)
        q[i] = (float)rng_normal(&r);
    for (int t = 0; t < NT; t++)
        a[t] = rng_float(&r);
    int ns[] = {16, 20, 24, 32, 40, 48, 56};
    for (size_t h = 0; h < sizeof ns / sizeof ns[0]; h++) {
        int n = ns[h];
        for (int i = 0; i < n; i++)
            out[i] = want[i] = q[i];
        matvec_accum(out, a, k, STRIDE, NT, n);
        for (int i = 0; i < n; i += 8) /* one block of 8 (or the tail) alone */
            matvec_accum(want + i, a, k + i, STRIDE, NT, n - i < 8 ? n - i : 8);
        for (int i = 0; i < n; i++)
            cr_assert_eq(out[i], want[i], "n=%d column %d", n, i);
    }
}

typedef struct {
    const float *w, *x;
    float *out;
    int C, OC, reps;
} MvJob;

static void *mv_thread(void *arg) {
    MvJob *j = arg;
    for (int i = 0; i < j->reps; i++)
        matvec_rows(j->out, j->x, j->w, 1 + i % 8, j->C, j->OC);
    return NULL;
}

Test(matvec, concurrent_callers) {
    int C = 256, OC = 520;
    float *w = malloc(sizeof(float) * C * OC), *x = malloc(sizeof(float) * 8 * C);
    float *want = malloc(sizeof(float) * 8 * OC), *got[2];
    for (int i = 0; i < C * OC; i++)
        w[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    for (int i = 0; i < 8 * C; i++)
        x[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
    matvec_set_threads(1);
    matvec_rows(want, x, w, 8, C, OC);
    matvec_set_threads(2);
    pthread_t t[2];
    MvJob jobs[2];
    for (int k = 0; k < 2; k++) {
        got[k] = calloc((size_t)8 * OC, sizeof(float));
        jobs[k] = (MvJob){w, x, got[k], C, OC, 400};
        cr_assert_eq(pthread_create(&t[k], NULL, mv_thread, &jobs[k]), 0);
    }
    for (int k = 0; k < 2; k++)
        pthread_join(t[k], NULL);
    matvec_set_threads(1);
    /* the last call of each thread had n = 8 (400 % 8 == 0 -> i = 399 -> n = 8) */
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 8 * OC; i++)
            cr_assert_eq(got[k][i], want[i], "thread %d out %d", k, i);
        free(got[k]);
    }
    free(w), free(x), free(want);
}

/* What each item of a pool job saw: the thread, its CPU, how many CPUs it
 * may run on. */
typedef struct {
    int tid, cpu, allowed;
} Seen;

static void where_items(void *ctx, int lo, int hi, int tid) {
    Seen *seen = ctx;
    for (int i = lo; i < hi; i++) {
        cpu_set_t cs;
        cr_assert_eq(pthread_getaffinity_np(pthread_self(), sizeof cs, &cs), 0);
        seen[i] = (Seen){tid, sched_getcpu(), CPU_COUNT(&cs)};
        for (double t0 = now_seconds(); now_seconds() - t0 < 20e-6;) /* work to share */
            ;
    }
}

/* matvec_bind, with as many threads as the process's CPUs, keeps the caller
 * on the first of them and each worker on one of the others for the jobs
 * between it and matvec_unbind, which gives every thread its CPUs back; with
 * another count of threads it does nothing. */
Test(matvec, bind_keeps_threads_apart_and_gives_back_the_cpus) {
    cpu_set_t all, now;
    cr_assert_eq(pthread_getaffinity_np(pthread_self(), sizeof all, &all), 0);
    int m = CPU_COUNT(&all), first = 0;
    while (!CPU_ISSET(first, &all))
        first++;
    matvec_set_threads(1);
    cr_assert_eq(matvec_bind(), 0, "one thread: nothing to keep apart");
    if (m + 1 <= MATVEC_MAX_THREADS) {
        matvec_set_threads(m + 1);
        cr_assert_eq(matvec_bind(), 0, "more threads than CPUs");
    }
    if (m < 2 || m > MATVEC_MAX_THREADS) {
        matvec_set_threads(1);
        cr_skip_test("%d CPUs: a pool of that many threads cannot be bound here", m);
    }
    matvec_set_threads(m);
    int n = 64 * m, bound = matvec_bind(), workers_ran = 0;
    cr_assert_eq(bound, 1);
    cr_assert_eq(matvec_bind(), 0, "one binder at a time");
    cr_assert_eq(pthread_getaffinity_np(pthread_self(), sizeof now, &now), 0);
    cr_assert(CPU_COUNT(&now) == 1 && CPU_ISSET(first, &now), "the caller on the first CPU");
    pthread_attr_t attr;
    matvec_thread_attr(&attr);
    cr_assert_eq(pthread_attr_getaffinity_np(&attr, sizeof now, &now), 0);
    cr_assert(CPU_EQUAL(&now, &all), "the CPUs a thread started now gets");
    pthread_attr_destroy(&attr);
    Seen *seen = calloc((size_t)n, sizeof *seen);
    int cpu_of[MATVEC_MAX_THREADS];
    for (int t = 0; t < m; t++)
        cpu_of[t] = -1;
    /* jobs until every worker has run an item (a worker wakes in microseconds) */
    for (int job = 0; job < 400 && workers_ran < m - 1; job++) {
        matvec_par(n, 1, where_items, seen);
        for (int i = 0; i < n; i++) {
            Seen s = seen[i];
            cr_assert(s.tid >= 0 && s.tid < m, "item %d: thread %d", i, s.tid);
            cr_assert_eq(s.allowed, 1, "item %d: thread %d may run on %d CPUs", i, s.tid,
                         s.allowed);
            cr_assert(CPU_ISSET(s.cpu, &all), "item %d on CPU %d", i, s.cpu);
            if (cpu_of[s.tid] < 0) workers_ran += s.tid > 0, cpu_of[s.tid] = s.cpu;
            cr_assert_eq(s.cpu, cpu_of[s.tid], "thread %d moved from CPU %d to %d", s.tid,
                         cpu_of[s.tid], s.cpu);
        }
    }
    cr_assert_eq(workers_ran, m - 1, "every worker took items");
    cr_assert_eq(cpu_of[0], first);
    for (int a = 0; a < m; a++)
        for (int b = a + 1; b < m; b++)
            cr_assert_neq(cpu_of[a], cpu_of[b], "threads %d and %d share CPU %d", a, b, cpu_of[a]);
    matvec_unbind(bound);
    cr_assert_eq(pthread_getaffinity_np(pthread_self(), sizeof now, &now), 0);
    cr_assert(CPU_EQUAL(&now, &all), "the caller's CPUs given back");
    /* a worker frees itself before its next job */
    for (int job = 0; job < 20; job++) {
        matvec_par(n, 1, where_items, seen);
        for (int i = 0; i < n; i++)
            cr_assert_eq(seen[i].allowed, m, "item %d: thread %d may run on %d CPUs", i,
                         seen[i].tid, seen[i].allowed);
    }
    cr_assert_eq(matvec_bind(), 1, "bound again after unbind");
    matvec_unbind(1);
    matvec_set_threads(1);
    free(seen);
}

/* ---- bf16 weights ------------------------------------------------------------------ */

static float bf16_value(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* The packed bf16 kernel gives what the packed fp32 one gives on the rounded
 * values bit for bit, and matvec_rows's results up to summation order, on
 * every path: SIMD with 1..3 threads and plain C, n = 1..13 rows, C odd, not
 * a multiple of 8 and C < 16; each row alone gives the very bits it gets in
 * a batch. */
Test(matvec, bf16_equals_fp32_on_rounded_weights) {
    int shapes[][2] = {{260, 301}, {7, 50}, {64, 9}, {1030, 97}}; /* (C, OC) */
    int ns[] = {1, 2, 3, 4, 5, 8, 13};
    Rng r;
    rng_seed(&r, 9);
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
        int C = shapes[sh][0], OC = shapes[sh][1];
        uint16_t *wb = malloc(sizeof(uint16_t) * matvec_packed_bf16_count(OC, C));
        float *w = malloc(sizeof(float) * C * OC), *x = malloc(sizeof(float) * 13 * C);
        float *wp = malloc(sizeof(float) * matvec_packed_floats(OC, C));
        float *a = malloc(sizeof(float) * 13 * OC), *b = malloc(sizeof(float) * 13 * OC);
        float *c = malloc(sizeof(float) * 13 * OC), *one = malloc(sizeof(float) * OC);
        for (int i = 0; i < C * OC; i++)
            w[i] = bf16_value(st_f32_to_bf16((float)rng_normal(&r)));
        matvec_pack(wp, w, OC, C);
        matvec_pack_bf16(wb, w, OC, C);
        for (int i = 0; i < 13 * C; i++)
            x[i] = (float)rng_normal(&r); /* full fp32: activations are not rounded */
        for (int mode = 0; mode < 5; mode++) { /* best SIMD on 1..3 threads, plain C, AVX2 alone */
            matvec_use_simd(mode < 3 ? MATVEC_SIMD_BEST : mode == 3 ? MATVEC_SIMD_NONE : MATVEC_SIMD_AVX2);
            matvec_set_threads(mode < 3 ? mode + 1 : 1);
            for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
                int n = ns[k];
                matvec_rows(a, x, w, n, C, OC);
                matvec_rows_packed_bf16(b, x, wb, n, C, OC);
                matvec_rows_packed(c, x, wp, n, C, OC);
                for (int i = 0; i < n * OC; i++) {
                    /* float rounding of a sum of C products: relative to Σ|w x| */
                    double s = 0, mag = 0;
                    for (int j = 0; j < C; j++) {
                        double p = (double)w[(i % OC) * C + j] * x[(i / OC) * C + j];
                        s += p, mag += fabs(p);
                    }
                    cr_assert_leq(fabs(b[i] - a[i]), 2e-6 * mag, "C=%d OC=%d n=%d mode %d out %d: %g vs %g",
                                  C, OC, n, mode, i, (double)a[i], (double)b[i]);
                    cr_assert_leq(fabs(b[i] - s), 2e-6 * mag);
                    cr_assert_eq(c[i], b[i], "C=%d n=%d mode %d out %d: not fp32's bits", C, n, mode, i);
                }
                for (int row = 0; row < n; row++) {
                    matvec_rows_packed_bf16(one, x + (size_t)row * C, wb, 1, C, OC);
                    cr_assert(memcmp(one, b + (size_t)row * OC, sizeof(float) * OC) == 0,
                              "C=%d n=%d row %d: alone differs from the batch", C, n, row);
                }
            }
        }
        free(wb), free(w), free(wp), free(x), free(a), free(b), free(c), free(one);
    }
    matvec_use_simd(MATVEC_SIMD_BEST);
    matvec_set_threads(1);
}

/* A matrix large enough to stream from memory (over 512 KB even as bf16: a
 * row alone reads it one output after another, a batch in blocks) gives every
 * row the same bits alone and in a batch of any size, on 1 and 2 threads, for
 * fp32 rows and packed bf16; C = 300 leaves a tail of 4 columns. */
Test(matvec, streamed_matrix_row_alone_equals_batch) {
    int C = 300, OC = 1100;
    float *w = malloc(sizeof(float) * C * OC), *x = malloc(sizeof(float) * 9 * C);
    uint16_t *wb = malloc(sizeof(uint16_t) * matvec_packed_bf16_count(OC, C));
    float *a = malloc(sizeof(float) * 9 * OC), *one = malloc(sizeof(float) * OC);
    Rng r;
    rng_seed(&r, 11);
    for (int i = 0; i < C * OC; i++)
        w[i] = bf16_value(st_f32_to_bf16((float)rng_normal(&r)));
    matvec_pack_bf16(wb, w, OC, C);
    for (int i = 0; i < 9 * C; i++)
        x[i] = (float)rng_normal(&r);
    for (int threads = 1; threads <= 2; threads++) {
        matvec_set_threads(threads);
        for (int bf = 0; bf < 2; bf++)
            for (int n = 1; n <= 9; n++) {
                if (bf) matvec_rows_packed_bf16(a, x, wb, n, C, OC);
                else matvec_rows(a, x, w, n, C, OC);
                for (int row = 0; row < n; row++) {
                    if (bf) matvec_rows_packed_bf16(one, x + (size_t)row * C, wb, 1, C, OC);
                    else matvec_rows(one, x + (size_t)row * C, w, 1, C, OC);
                    for (int o = 0; o < OC; o++) {
                        cr_assert_eq(one[o], a[(size_t)row * OC + o],
                                     "bf16 %d threads %d n=%d row %d out %d", bf, threads, n, row, o);
                        double s = 0, mag = 0;
                        for (int j = 0; j < C; j++) {
                            double p = (double)w[(size_t)o * C + j] * x[(size_t)row * C + j];
                            s += p, mag += fabs(p);
                        }
                        cr_assert_leq(fabs(one[o] - s), 2e-6 * mag, "bf16 %d out %d", bf, o);
                    }
                }
            }
    }
    matvec_set_threads(1);
    free(w), free(x), free(wb), free(a), free(one);
}

/* Packed weights (matvec_pack, matvec_rows_packed; _bf16): the sum of
 * products to within rounding, every row the same bits alone and in a batch
 * of any size (1-17 rows: AVX2's groups of three, AVX-512's passes of eight
 * and the rest), on 1 and 2 threads, with AVX2 alone and with AVX-512 where
 * the CPU has it, the plain C path (fmaf) the same bits, and bf16 the bits
 * of fp32 on the rounded weights; OC not a multiple of 8 (the lanes past OC
 * are never written), an odd C (bf16's last pair half empty) and a matrix
 * large enough to go to the pool. */
Test(matvec, packed_rows_alone_equal_batch_and_plain_c) {
    int shapes[3][2] = {{37, 7}, {301, 1100}, {128, 64}}; /* C, OC */
    for (int si = 0; si < 3; si++)
        for (int bf = 0; bf < 2; bf++) {
            int C = shapes[si][0], OC = shapes[si][1];
            float *w = malloc(sizeof(float) * C * OC), *x = malloc(sizeof(float) * 17 * C);
            float *wr = malloc(sizeof(float) * C * OC); /* the weights the products use */
            float *wp = malloc(sizeof(float) * matvec_packed_floats(OC, C));
            uint16_t *wb = malloc(sizeof(uint16_t) * matvec_packed_bf16_count(OC, C));
            float *a = malloc(sizeof(float) * (17 * OC + 8)), *one = malloc(sizeof(float) * (OC + 8));
            float *plain = malloc(sizeof(float) * 17 * OC), *ref = malloc(sizeof(float) * 17 * OC);
            Rng r;
            rng_seed(&r, 12 + si);
            for (int i = 0; i < C * OC; i++) {
                w[i] = (float)rng_normal(&r);
                wr[i] = bf ? bf16_value(st_f32_to_bf16(w[i])) : w[i];
            }
            for (int i = 0; i < 17 * C; i++)
                x[i] = (float)rng_normal(&r);
            matvec_pack(wp, wr, OC, C);
            matvec_pack_bf16(wb, w, OC, C);
#define PRODUCT(o, xx, n)                                                                          \
    (bf ? matvec_rows_packed_bf16(o, xx, wb, n, C, OC) : matvec_rows_packed(o, xx, wp, n, C, OC))
            matvec_rows_packed(ref, x, wp, 17, C, OC); /* fp32 on the weights used */
            matvec_use_simd(MATVEC_SIMD_NONE);
            PRODUCT(plain, x, 17);
            for (int mode = 0; mode < 4; mode++) {
                int threads = 1 + mode % 2;
                matvec_use_simd(mode < 2 ? MATVEC_SIMD_AVX2 : MATVEC_SIMD_BEST);
                matvec_set_threads(threads);
                for (int n = 1; n <= 17; n++) {
                    a[(size_t)n * OC] = 12345.0f; /* the row after the last: never written */
                    PRODUCT(a, x, n);
                    cr_assert_eq(a[(size_t)n * OC], 12345.0f, "C=%d OC=%d n=%d: wrote past the rows", C,
                                 OC, n);
                    for (int row = 0; row < n; row++) {
                        one[OC] = 12345.0f;
                        PRODUCT(one, x + (size_t)row * C, 1);
                        cr_assert_eq(one[OC], 12345.0f);
                        for (int o = 0; o < OC; o++) {
                            float v = a[(size_t)row * OC + o];
                            cr_assert_eq(one[o], v, "bf16 %d C=%d OC=%d mode %d n=%d row %d out %d", bf,
                                         C, OC, mode, n, row, o);
                            cr_assert_eq(plain[(size_t)row * OC + o], v, "bf16 %d: plain C differs: out %d",
                                         bf, o);
                            cr_assert_eq(ref[(size_t)row * OC + o], v, "bf16 %d: not fp32's bits: out %d",
                                         bf, o);
                            double s = 0, mag = 0;
                            for (int j = 0; j < C; j++) {
                                double p = (double)wr[(size_t)o * C + j] * x[(size_t)row * C + j];
                                s += p, mag += fabs(p);
                            }
                            cr_assert_leq(fabs(v - s), 2e-6 * mag, "C=%d OC=%d out %d: %g vs %g", C, OC,
                                          o, (double)v, s);
                        }
                    }
                }
            }
#undef PRODUCT
            matvec_use_simd(MATVEC_SIMD_BEST);
            matvec_set_threads(1);
            free(w), free(wr), free(x), free(wp), free(wb), free(a), free(one), free(plain), free(ref);
        }
}

/* Rounds every matrix of m to bf16 in place, as a model loaded from BF16 safetensors. */
static void round_matrices(Model *m) {
    for (int t = 0; t < MODEL_NT; t++) {
        if (!model_tensor_is_matrix(t)) continue;
        float *p = m->params + model_tensor_offset(m, t);
        for (size_t i = 0; i < m->sizes[t]; i++)
            p[i] = bf16_value(st_f32_to_bf16(p[i]));
    }
}

static float max_rel_diff(const float *a, const float *b, int n) {
    float scale = 0, d = 0;
    for (int i = 0; i < n; i++) {
        scale = fmaxf(scale, fabsf(b[i]));
        d = fmaxf(d, fabsf(a[i] - b[i]));
    }
    return d / (scale > 0 ? scale : 1);
}

/* logits of fp32 and bf16 Infers on the same model: prefill in passes, token by
 * token, and k streams decoding as one batch; greedy samples the same tokens */
static void bf16_infer_check(const Model *m32, const Model *mb, InferWeights wt) {
    int T = 100, V = m32->cfg.vocab_size, tokens[100];
    for (int t = 0; t < T; t++)
        tokens[t] = (t * 37 + 11) % V;
    Infer a, b;
    Err err = {0};
    cr_assert_eq(infer_create(&a, m32, 3, &err), 0, "%s", err.msg);
    cr_assert_eq(infer_create_weights(&b, mb, 3, wt, &err), 0, "%s", err.msg);
    cr_assert(!infer_uses_bf16(&a));
    cr_assert(infer_uses_bf16(&b));
    cr_assert_eq(infer_prefill(&a, tokens, 70, &err), 0);
    cr_assert_eq(infer_prefill(&b, tokens, 70, &err), 0);
    float d = max_rel_diff(infer_logits(&b, 0), infer_logits(&a, 0), V);
    cr_assert_lt(d, 1e-4f, "prefill: relative difference %g", (double)d);
    /* one model: the packed bf16 copy sums as the packed fp32 one, so bit for bit */
    if (m32 == mb) cr_assert_eq(d, 0.0f, "prefill: relative difference %g", (double)d);
    for (int t = 70; t < 80; t++) {
        cr_assert_eq(infer_prefill(&a, &tokens[t], 1, &err), 0);
        cr_assert_eq(infer_prefill(&b, &tokens[t], 1, &err), 0);
        d = max_rel_diff(infer_logits(&b, 0), infer_logits(&a, 0), V);
        cr_assert_lt(d, 1e-4f, "position %d: relative difference %g", t, (double)d);
        if (m32 == mb) cr_assert_eq(d, 0.0f, "position %d: relative difference %g", t, (double)d);
    }
    cr_assert_eq(infer_fork(&a, 3, &err), 0);
    cr_assert_eq(infer_fork(&b, 3, &err), 0);
    for (int t = 80; t < 90; t++) {
        int toks[3] = {tokens[t], tokens[t + 1], tokens[t + 2]};
        cr_assert_eq(infer_decode(&a, toks, NULL, &err), 0);
        cr_assert_eq(infer_decode(&b, toks, NULL, &err), 0);
        for (int s = 0; s < 3; s++) {
            d = max_rel_diff(infer_logits(&b, s), infer_logits(&a, s), V);
            cr_assert_lt(d, 1e-4f, "stream %d step %d: relative difference %g", s, t, (double)d);
            if (m32 == mb) cr_assert_eq(d, 0.0f, "stream %d step %d", s, t);
        }
    }
    Tokenizer *tok = make_tokenizer(V);
    SampleParams p = sample_params_default();
    p.temperature = 0, p.max_tokens = 15;
    uint64_t seeds[3] = {1, 2, 3};
    SampleResult ra[3], rb[3];
    cr_assert_eq(sample_generate_batch(&a, tok, tokens, 7, 3, &p, seeds, ra, &err), 0, "%s", err.msg);
    cr_assert_eq(sample_generate_batch(&b, tok, tokens, 7, 3, &p, seeds, rb, &err), 0, "%s", err.msg);
    for (int i = 0; i < 3; i++) {
        same_result(&ra[i], &rb[i], i);
        sample_result_free(&ra[i]), sample_result_free(&rb[i]);
    }
    tok_free(tok);
    infer_free(&a);
    infer_free(&b);
}

Test(infer, bf16_weights_equal_fp32_on_a_bf16_model) {
    for (int f = 0; f < 3; f++) { /* plain, HF features, an untied classifier */
        hf_features = f == 1, untied = f == 2;
        Model m;
        make_model(&m, 100, 300);
        cr_assert(!model_weights_are_bf16(&m));
        round_matrices(&m);
        cr_assert(model_weights_are_bf16(&m));
        /* auto picks bf16 here: the copy is lossless */
        bf16_infer_check(&m, &m, INFER_WEIGHTS_AUTO);
        bf16_infer_check(&m, &m, INFER_WEIGHTS_BF16);
        model_free(&m);
    }
    hf_features = 0, untied = 0;
}

Test(infer, bf16_on_fp32_weights_is_the_rounded_model) {
    Model m, r;
    Err err = {0};
    make_model(&m, 100, 300);
    make_model(&r, 100, 300);
    round_matrices(&r);
    /* the embedding lookup reads fp32 rows: give m the rounded ones, so only
     * the copy's rounding of the other matrices is left to compare */
    float *emb = m.params + model_tensor_offset(&m, MODEL_T_EMB);
    for (size_t i = 0; i < m.sizes[MODEL_T_EMB]; i++)
        emb[i] = bf16_value(st_f32_to_bf16(emb[i]));
    /* auto keeps fp32 weights that bf16 would round */
    Infer st;
    cr_assert_eq(infer_create_weights(&st, &m, 1, INFER_WEIGHTS_AUTO, &err), 0);
    cr_assert(!infer_uses_bf16(&st));
    infer_free(&st);
    cr_assert_eq(infer_create_weights(&st, &m, 1, INFER_WEIGHTS_F32, &err), 0);
    cr_assert(!infer_uses_bf16(&st));
    infer_free(&st);
    /* the copy rounds as st_f32_to_bf16 does: to nearest even, NaN quiet */
    float saved[4], odd[4] = {bf16_value(0x3f81) + 0x1p-8f, bf16_value(0x3f80) + 0x1p-8f,
                              -NAN, 1e-40f}; /* ties both ways, NaN, a subnormal */
    memcpy(saved, m.w.wq, sizeof saved), memcpy(m.w.wq, odd, sizeof odd);
    cr_assert_eq(infer_create_weights(&st, &m, 1, INFER_WEIGHTS_BF16, &err), 0);
    const float *src[] = {m.w.wq, m.w.wk, m.w.wv, m.w.wo, m.w.w1, m.w.w2, m.w.w3, m.w.wcls};
    const uint16_t *cp[] = {st.bf16.wq, st.bf16.wk, st.bf16.wv, st.bf16.wo,
                            st.bf16.w1, st.bf16.w2, st.bf16.w3, st.bf16.wcls};
    /* each (OC, C) matrix of each layer packed: lane o % 8 of block o / 8,
     * column pair j / 2, half j % 2 */
    const Config *c = &m.cfg;
    int D = c->dim, Q = model_q_dim(c), KV = model_kv_dim(c), H = c->hidden_dim;
    int shape[8][3] = {{Q, D, c->n_layers},  {KV, D, c->n_layers}, {KV, D, c->n_layers},
                       {D, Q, c->n_layers},  {H, D, c->n_layers},  {D, H, c->n_layers},
                       {H, D, c->n_layers},  {c->vocab_size, D, 1}};
    for (int t = 0; t < 8; t++) {
        int OC = shape[t][0], C = shape[t][1], Ce = (C + 1) & ~1;
        for (int l = 0; l < shape[t][2]; l++)
            for (int o = 0; o < OC; o++)
                for (int j = 0; j < C; j++) {
                    /* blocks of 8 outputs in groups of four, interleaved by column pair */
                    size_t at = (size_t)l * matvec_packed_bf16_count(OC, C) +
                                (size_t)(o / 32) * 32 * Ce + (size_t)(o / 8 % 4) * 16 +
                                (size_t)(j / 2) * 64 + (o % 8) * 2 + j % 2;
                    cr_assert_eq(cp[t][at], st_f32_to_bf16(src[t][((size_t)l * OC + o) * C + j]),
                                 "matrix %d layer %d element (%d, %d)", t, l, o, j);
                }
    }
    cr_assert_eq(st.bf16.wq[0], 0x3f82);
    cr_assert_eq(st.bf16.wq[1], 0x3f80);
    infer_free(&st);
    memcpy(m.w.wq, saved, sizeof saved);
    /* forced: the Infer rounds its copy, the Model is untouched */
    bf16_infer_check(&r, &m, INFER_WEIGHTS_BF16);
    cr_assert(!model_weights_are_bf16(&m));
    model_free(&m), model_free(&r);
}

/* Ten prompts (17 samples) through 4 streams, the answers ending at a stop
 * string after a few tokens or at the context: prompts are taken as streams
 * come free (some while others decode, and done out of order), and each
 * sample is what its prompt and seed give alone, bit for bit, on 1 and 2
 * threads. A prompt past the context stops the feed: those before it are
 * done, none after it is taken, and it is named. */
Test(infer, a_feed_refills_streams_as_answers_end) {
    enum { N = 10 };
    static const int ks[N] = {1, 2, 3, 1, 2, 1, 3, 1, 1, 2}, lens[N] = {5, 90, 3, 12, 100, 7,
                                                                           40, 2, 110, 9};
    static int ids[N][120];
    SamplePrompt pr[N];
    int first[N + 1] = {0};
    uint64_t seeds[32];
    for (int i = 0; i < N; i++) {
        for (int t = 0; t < lens[i]; t++)
            ids[i][t] = t ? 3 + (t * 37 + i * 11) % 296 : 1;
        pr[i] = (SamplePrompt){ids[i], lens[i], ks[i]};
        first[i + 1] = first[i] + ks[i];
    }
    for (int j = 0; j < 32; j++)
        seeds[j] = 100 + (uint64_t)j;
    const char *stop[1] = {"a"};
    SampleParams p = sample_params_default();
    p.max_tokens = 40, p.stop = stop, p.n_stop = 1;
    Tokenizer *tok = make_tokenizer(300);
    Err err = {0};
    Model m;
    make_model(&m, 128, 300);
    for (int threads = 1; threads <= 2; threads++) {
        infer_set_threads(threads);
        Infer four, alone;
        cr_assert_eq(infer_create(&four, &m, 4, &err), 0, "%s", err.msg);
        cr_assert_eq(infer_create(&alone, &m, 3, &err), 0, "%s", err.msg);
        SampleResult out[32], ra[3];
        memset(out, 0, sizeof out);
        Recorder r = {.pr = pr, .seeds = seeds, .first = first, .out = out, .n = N};
        SampleFeed f = {&r, rec_next, rec_done};
        int bad = 0, lengths = 0, sorted = 1;
        cr_assert_eq(sample_generate_feed(&four, tok, &p, &f, &bad, &err), 0, "%s", err.msg);
        cr_assert_eq(bad, -1);
        cr_assert_eq(r.n_done, N);
        cr_assert_leq(r.most, 5, "4 decoding and one waiting for room at most");
        cr_assert_geq(r.refills, 3, "%d prompts taken while others decoded", r.refills);
        for (int i = 1; i < N; i++)
            sorted &= r.order[i] > r.order[i - 1];
        cr_assert(!sorted, "a short answer's prompt is done before a longer one taken first");
        for (int i = 0; i < N; i++) {
            cr_assert_eq(sample_generate_batch(&alone, tok, pr[i].ids, pr[i].n, pr[i].k, &p,
                                               seeds + first[i], ra, &err), 0, "%s", err.msg);
            for (int j = 0; j < pr[i].k; j++) {
                same_result(&out[first[i] + j], &ra[j], first[i] + j);
                cr_assert(out[first[i] + j].logprob == ra[j].logprob, "prompt %d sample %d", i, j);
                lengths |= 1 << (ra[j].n_tokens < 40 ? ra[j].n_tokens % 30 : 30);
                sample_result_free(&ra[j]);
                sample_result_free(&out[first[i] + j]);
            }
        }
        cr_assert_geq(__builtin_popcount((unsigned)lengths), 5, "answers of many lengths");
        /* prompt 6 past the context of 128: 0-5 done, 7-9 never taken */
        static int longer[130];
        for (int t = 0; t < 130; t++)
            longer[t] = ids[6][t % 40];
        SamplePrompt over[N];
        memcpy(over, pr, sizeof over);
        over[6] = (SamplePrompt){longer, 130, 3};
        Recorder r2 = {.pr = over, .seeds = seeds, .first = first, .out = out, .n = N};
        SampleFeed f2 = {&r2, rec_next, rec_done};
        cr_assert_eq(sample_generate_feed(&four, tok, &p, &f2, &bad, &err), RLHF_EINVAL);
        cr_assert_eq(bad, 6);
        cr_assert(strstr(err.msg, "context"), "%s", err.msg);
        cr_assert_eq(r2.n_done, 6);
        cr_assert_eq(r2.at, 7);
        for (int j = 0; j < first[6]; j++)
            sample_result_free(&out[j]);
        infer_free(&four);
        infer_free(&alone);
    }
    infer_set_threads(1);
    model_free(&m);
    tok_free(tok);
}
