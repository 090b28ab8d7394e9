/* Candidate generation: gives each selected prompt k candidates from one model
 * and stores them. The sampler is a backend (the embedded model, or a test
 * double), so the bookkeeping here (which prompts lack candidates, seeds,
 * uniqueness, one short write per prompt after its sampling, interrupt and
 * resume) is the same for all. */
#ifndef RLHF_GEN_H
#define RLHF_GEN_H

#include <stdint.h>

#include "db/db.h"
#include "model/seq.h"
#include "util/progress.h"

/* The chat template used when a model carries none: {prompt} is replaced by
 * the prompt text. Matches samples/corpus.txt. */
#define GEN_DEFAULT_TEMPLATE SEQ_DEFAULT_TEMPLATE

typedef struct GenSample {
    char *text; /* owned by the backend's caller: freed with free() */
    int64_t n_tokens;
    double sum_logprob;
    int *tokens; /* the ids sampled (stop-string tokens and a sampled EOS included);
                    NULL: unknown; owned like text */
    int n_ids;
    int finish; /* SAMPLE_EOS, _STOP, _LENGTH (model/sample.h); 0: unknown */
} GenSample;

/* Frees the texts and token ids of s[0..n) and clears them. */
void gen_samples_free(GenSample *s, int n);

/* Inputs for a backend that samples as a stream (GenBackend.sample_stream). */
typedef struct GenFeed {
    void *ctx;
    /* The next input: *input (the templated prompt), *n draws with seeds
     * seeds[0..n), and *tag to give back with them; *input and seeds stay
     * valid until the next call. Returns 0 when there is none now (asked
     * again after an input is done; none while nothing is in flight ends the
     * stream), else 1. */
    int (*next)(void *ctx, const char **input, int *n, const uint64_t **seeds, int *tag);
    /* Input tag's n draws out[0..n): the callee takes their texts and ids.
     * An error stops the stream. */
    int (*done)(void *ctx, int tag, GenSample *out, Err *err);
} GenFeed;

typedef struct GenBackend {
    void *ctx;
    /* Samples n continuations of `input` (the templated prompt), stream i with
     * seeds[i]; fills out[0..n). Must be deterministic in the seeds. */
    int (*sample)(void *ctx, const char *input, int n, const uint64_t *seeds, GenSample *out,
                  Err *err);
    const char *params_json; /* sampling parameters stored with each candidate */
    /* Optional (NULL: gen samples prompt by prompt): samples the feed's
     * inputs at most max_batch draws at once, taking the next input as soon
     * as there is room for its draws and handing an input's draws to done as
     * soon as they are all finished (continuous batching), each draw what
     * sample gives with its seed. An input at fault (too long, say): no more
     * are taken, those in flight are finished, and its error is returned
     * with *bad its tag (else *bad = -1). */
    int (*sample_stream)(void *ctx, const struct GenFeed *f, int *bad, Err *err);
    int max_batch;
} GenBackend;

typedef struct GenOptions {
    int64_t model_id;     /* registered model the candidates belong to */
    const char *template; /* NULL: GEN_DEFAULT_TEMPLATE */
    int k;                /* candidates wanted per prompt */
    const char *split;    /* NULL: any */
    const int64_t *ids;   /* explicit prompt ids, or NULL */
    int n_ids;
    int64_t limit;        /* at most this many prompts (0: all) */
    int unique;           /* resample until k distinct texts (bounded by max_draws);
                             otherwise k draws (samples), a repeated text counting once
                             per draw in the draws table */
    int max_draws;        /* total samples per prompt with unique (0: 4*k) */
    uint64_t seed;
    int own_config;       /* without unique: only draws made as this run makes them
                             (gen_draw_config) count toward k, as eval wants; otherwise
                             every draw of the model does */
} GenOptions;

typedef struct GenStats {
    int64_t prompts_selected, prompts_done, candidates, duplicates, short_prompts;
    int64_t tokens; /* tokens the backend sampled (every draw's, duplicates included) */
    int interrupted;
} GenStats;

/* Renders the template with the prompt (seq_render); caller frees. NULL on
 * failure: allocation, or a chat template refusing the prompt. */
char *gen_apply_template(const char *template, const char *prompt);
/* The seed of draw j for a prompt: independent of order and of resumption.
 * Draws are numbered per (prompt, model) from the draws already recorded, so
 * gen, eval and best-of-n with the same --seed draw the same samples. */
uint64_t gen_seed(uint64_t base, int64_t prompt_id, int draw);
/* The sampling configuration a draw is recorded under: the backend's
 * parameters (params_json, an object) with the base seed added. eval reuses
 * only the draws of its own configuration (GenOptions.own_config), so a run at
 * another temperature or seed makes its own. Caller frees; NULL when out of
 * memory. */
char *gen_draw_config(const char *params_json, uint64_t seed);

/* Runs generation. Stops cleanly between prompts when sys_interrupted() is
 * set (stats->interrupted), having committed every finished prompt. progress
 * may be NULL. */
int gen_run(Db *db, const GenOptions *o, const GenBackend *b, Progress *progress, GenStats *stats,
            Err *err);

/* Registers checkpoint ckpt as a policy (name: name, else a model registered
 * before with this path, else the file's base name), refusing a name already
 * bound to other weights, and settles the chat template: template, else the
 * model's, else the project's setting gen.template, else the default.
 * *template_out and *name_out (the name registered; may be NULL) are the
 * caller's to free. Call inside a transaction. */
int gen_register_model(Db *db, const char *ckpt, const char *name, const char *template,
                       int64_t *model_id, char **template_out, char **name_out, Err *err);

#endif
