/* Sampling: turning logits into tokens (temperature, top-k, top-p), and the
 * generation loops on top of model/infer.h: one stream, or k streams sharing a
 * prompt's KV cache and decoding as one batch. Every random choice comes from
 * a util/rng.h stream seeded per sample, so stream i of a batch with seed s
 * gives exactly what a single-stream run with seed s gives.
 *
 * Results own their tokens and text (free with sample_result_free). */
#ifndef RLHF_MODEL_SAMPLE_H
#define RLHF_MODEL_SAMPLE_H

#include <stdint.h>

#include "model/infer.h"
#include "model/tokenizer.h"
#include "util/rng.h"

typedef struct SampleParams {
    float temperature;       /* 0: greedy (argmax) */
    int top_k;               /* 0: off */
    float top_p;             /* 1: off; keeps the smallest set of likeliest tokens reaching p */
    int max_tokens;          /* new tokens at most (also bounded by the context) */
    const char *const *stop; /* stop strings (the text is cut before the first one) */
    int n_stop;
} SampleParams;

/* Defaults: temperature 1, top-k off, top-p 1, 256 tokens, no stop strings. */
SampleParams sample_params_default(void);
/* The decoding contract: how every command that answers a prompt for the
 * project decodes (gen's candidates, eval's answers, best-of-n, PPO's
 * rollouts, train-rm's normalisation samples): temperature 1, no top-k or
 * top-p, at most 64 new tokens, and the answer ends at EOS (or an end-of-turn
 * token) or where the text reaches a stop string: a blank line, "Human:" or
 * "Assistant:" (the model running on into a turn of the template). Commands
 * may change the temperature and the length; they start from this. */
enum { SAMPLE_CHAT_N_STOPS = 3 };
extern const char *const SAMPLE_CHAT_STOPS[SAMPLE_CHAT_N_STOPS];
SampleParams sample_params_chat(void);
/* RLHF_EINVAL with a message for out-of-range parameters. */
int sample_params_check(const SampleParams *p, Err *err);

enum { SAMPLE_EOS = 1, SAMPLE_STOP = 2, SAMPLE_LENGTH = 3 };

typedef struct SampleResult {
    int *tokens; /* the generated tokens (EOS included when it ended the sample) */
    int n_tokens;
    char *text; /* their text, NUL-terminated, without EOS and without the stop string */
    size_t text_len;
    double logprob; /* sum over tokens of log p(token) under the model (temperature 1,
                       no truncation): the policy's log-probability of the sample */
    int finish;     /* SAMPLE_EOS, SAMPLE_STOP or SAMPLE_LENGTH */
} SampleResult;

void sample_result_free(SampleResult *r);
const char *sample_finish_name(int finish);

/* Scratch for picking tokens from a vocabulary of V. */
/* The vocabulary's passes (max and argmax, the NaN check, the exponentials)
 * run in blocks of SAMPLE_BLOCK ids, on the decode pool when it has several
 * threads; the sums and the draw stay in one order, so a pick's bits do not
 * depend on the threads. */
enum { SAMPLE_BLOCK = 4096 };
typedef struct Sampler {
    int V, nb; /* nb blocks */
    float *probs;
    int *idx;
    float *bmax; /* (nb) each block's max, */
    int *barg;   /* the first id holding it, */
    unsigned char *bbad; /* whether a NaN or +Inf is in it */
} Sampler;

int sampler_create(Sampler *s, int V, Err *err);
void sampler_free(Sampler *s);
/* Picks a token from logits (V) under p, drawing from rng (no draw when greedy);
 * *logprob (may be NULL) gets log softmax(logits)[token]. Returns -1 when a
 * logit is NaN or +Inf or all are -Inf (no distribution to draw from). */
int sampler_pick(Sampler *s, const float *logits, const SampleParams *p, Rng *rng, float *logprob);

/* One stream: prefills prompt (n_prompt >= 1 tokens, usually starting with BOS)
 * and samples until EOS, a stop string, max_tokens or the context end. */
int sample_generate(Infer *st, const Tokenizer *tok, const int *prompt, int n_prompt,
                    const SampleParams *p, uint64_t seed, SampleResult *out, Err *err);
/* k streams on one prompt: the prompt is prefilled once, its cache shared, and
 * the k continuations decoded as a batch. seeds[i] seeds stream i; out[k]. */
int sample_generate_batch(Infer *st, const Tokenizer *tok, const int *prompt, int n_prompt, int k,
                          const SampleParams *p, const uint64_t *seeds, SampleResult *out,
                          Err *err);

/* A prompt of a batch: its tokens, and the samples wanted (k streams). */
typedef struct SamplePrompt {
    const int *ids;
    int n, k;
} SamplePrompt;

/* Prompts taken as the batch has room (continuous batching): a prompt's k
 * streams start as soon as k of the Infer's streams are free, so a batch
 * does not wait for its longest answer, and its results go to done as soon
 * as its last stream ends. Each prompt is fed to one stream of its own
 * (infer_feed) and copied to its others, so what a stream samples is what
 * sample_generate_batch gives the same prompt and seed, bit for bit,
 * whatever else is in the batch and whichever slot it has. */
typedef struct SampleFeed {
    void *ctx;
    /* The next prompt into *pr, its pr->k seeds into *seeds and the
     * caller's tag for it into *tag; pr->ids and the seeds stay valid until
     * the next call. pr->k == 0: none now (asked again after a prompt is
     * done; none while nothing is in flight ends the run). An error (with
     * *tag set) means that prompt cannot be had: nothing more is taken, the
     * prompts in flight are finished, then the error is returned. */
    int (*next)(void *ctx, SamplePrompt *pr, const uint64_t **seeds, int *tag, Err *err);
    /* Prompt tag's k results res[0..k), in the order of its seeds, now the
     * callee's (sample_result_free). An error stops the run. */
    int (*done)(void *ctx, int tag, SampleResult *res, int k, Err *err);
} SampleFeed;
/* Runs the feed on all the Infer's streams until it has no more and every
 * prompt taken is done. *bad: the tag of the prompt at fault when the error
 * is one prompt's (too long for the context, a token outside the
 * vocabulary, or next's), else -1; the prompts before it are done. */
int sample_generate_feed(Infer *st, const Tokenizer *tok, const SampleParams *p,
                         const SampleFeed *f, int *bad, Err *err);

#endif
