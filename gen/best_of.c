/* Best-of-n sampling over an inner backend (see best_of.h). */
#include "gen/best_of.h"
#include "db/registry.h"
#include "model/chat.h"
#include "model/checkpoint.h"
#include "model/sample.h"
#include "util/text.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

uint64_t best_of_seed(uint64_t seed, int i) {
    return i == 0 ? seed : gen_seed(seed, -1, i);
}

int best_of_pick(const float *scores, int n) {
    int best = -1;
    for (int i = 0; i < n; i++)
        if (!isnan(scores[i]) && (best < 0 || scores[i] > scores[best])) best = i;
    return best < 0 ? 0 : best;
}

static int count_placeholders(const char *t) {
    int k = 0;
    for (const char *p = t; (p = strstr(p, "{prompt}")); p += 8)
        k++;
    return k;
}

char *best_of_prompt(const char *template, const char *input) {
    if (!template) template = GEN_DEFAULT_TEMPLATE;
    if (chat_is_template(template)) return chat_prompt_of(template, input);
    int k = count_placeholders(template);
    size_t lt = strlen(template), li = strlen(input);
    if (k == 0) return NULL;
    /* every placeholder holds the same prompt: len(input) = len(template) - 8k + k·len(prompt) */
    if (li + 8 * (size_t)k < lt || (li + 8 * (size_t)k - lt) % (size_t)k) return NULL;
    size_t lp = (li + 8 * (size_t)k - lt) / (size_t)k;
    size_t at = (size_t)(strstr(template, "{prompt}") - template);
    char *p = malloc(lp + 1);
    if (!p) return NULL;
    memcpy(p, input + at, lp);
    p[lp] = 0;
    char *again = gen_apply_template(template, p);
    int ok = again && strcmp(again, input) == 0;
    free(again);
    if (!ok) free(p);
    return ok ? p : NULL;
}

/* One answer: the best of its N samples s (seeded sub) by the scorer, moved
 * into *out; every score reported and counted. */
static int choose(BestOf *b, const char *prompt, GenSample *s, const uint64_t *sub, GenSample *out,
                  Err *err) {
    float *score = calloc((size_t)b->n, sizeof *score);
    const char **texts = calloc((size_t)b->n, sizeof *texts);
    unsigned char *cut = calloc((size_t)b->n, 1);
    int rc = (!score || !texts || !cut) ? err_set(err, RLHF_ENOMEM, "out of memory") : 0;
    for (int i = 0; i < b->n && !rc; i++)
        texts[i] = s[i].text ? s[i].text : "", cut[i] = s[i].finish == SAMPLE_LENGTH;
    if (!rc) rc = b->score(b->score_ctx, prompt, texts, cut, b->n, score, err);
    if (!rc) {
        int kept = best_of_pick(score, b->n);
        if (b->report) b->report(b->report_ctx, prompt, s, sub, score, b->n, kept);
        b->st.answers++, b->st.samples += b->n;
        b->st.sum_kept += score[kept], b->st.sum_first += score[0];
        for (int i = 0; i < b->n; i++)
            b->st.sum_all += score[i];
        *out = s[kept];
        s[kept].text = NULL, s[kept].tokens = NULL;
    }
    free(score), free(texts), free(cut);
    return rc;
}

/* answer a's N seeds into sub[a * N ..] */
static void sub_seeds(const BestOf *b, const uint64_t *seeds, int n, uint64_t *sub) {
    for (int a = 0; a < n; a++)
        for (int i = 0; i < b->n; i++)
            sub[a * b->n + i] = best_of_seed(seeds[a], i);
}

static int best_of_sample(void *ctx, const char *input, int n, const uint64_t *seeds,
                          GenSample *out, Err *err) {
    BestOf *b = ctx;
    char *prompt = best_of_prompt(b->template, input);
    if (!prompt) return err_set(err, RLHF_EINVAL, "best-of: the input does not match the template");
    GenSample *s = calloc((size_t)b->n, sizeof *s);
    uint64_t *sub = calloc((size_t)b->n, sizeof *sub);
    int rc = (!s || !sub) ? err_set(err, RLHF_ENOMEM, "out of memory") : 0;
    for (int a = 0; a < n && !rc; a++) {
        sub_seeds(b, seeds + a, 1, sub);
        memset(s, 0, (size_t)b->n * sizeof *s);
        rc = b->inner.sample(b->inner.ctx, input, b->n, sub, s, err);
        if (!rc) rc = choose(b, prompt, s, sub, &out[a], err);
        gen_samples_free(s, b->n);
    }
    if (rc) gen_samples_free(out, n);
    free(prompt), free(s), free(sub);
    return rc;
}

/* Best-of-n as a stream over the inner backend's: each input's n answers are
 * one inner input of n × N samples (answer a's sample i seeded
 * best_of_seed(seeds[a], i), as best_of_sample draws them), and when those
 * are in each answer keeps its best. An input the template does not match
 * stops the stream: those in flight are finished, then its error. */
typedef struct {
    int tag, n;    /* the outer input's tag and answers; sub NULL: a free slot */
    char *prompt;  /* for the scorer */
    uint64_t *sub; /* n × N seeds */
} Ask;

typedef struct {
    BestOf *b;
    const GenFeed *f;
    Ask *ask;
    int n_ask, rc, bad; /* rc, bad: the input that did not match */
    Err err;
} Stream;

static int stream_next(void *ctx, const char **input, int *n, const uint64_t **seeds, int *tag) {
    Stream *s = ctx;
    const char *in;
    const uint64_t *sd;
    int na, t, i = 0;
    if (s->rc || !s->f->next(s->f->ctx, &in, &na, &sd, &t)) return 0;
    while (i < s->n_ask && s->ask[i].sub)
        i++;
    if (i == s->n_ask) {
        Ask *more = realloc(s->ask, sizeof *more * (size_t)(s->n_ask + 1));
        if (!more) {
            s->rc = err_set(&s->err, RLHF_ENOMEM, "out of memory"), s->bad = -1;
            return 0;
        }
        s->ask = more, s->ask[s->n_ask++] = (Ask){0};
    }
    Ask *a = &s->ask[i];
    a->prompt = best_of_prompt(s->b->template, in);
    a->sub = malloc(sizeof(uint64_t) * (size_t)na * (size_t)s->b->n);
    if (!a->prompt || !a->sub) {
        s->rc = a->sub ? err_set(&s->err, RLHF_EINVAL, "best-of: the input does not match the template")
                       : err_set(&s->err, RLHF_ENOMEM, "out of memory");
        s->bad = a->sub ? t : -1;
        free(a->prompt), free(a->sub);
        *a = (Ask){0};
        return 0;
    }
    sub_seeds(s->b, sd, na, a->sub);
    a->tag = t, a->n = na;
    *input = in, *n = na * s->b->n, *seeds = a->sub, *tag = i;
    return 1;
}

static int stream_done(void *ctx, int tag, GenSample *out, Err *err) {
    Stream *s = ctx;
    Ask *a = &s->ask[tag];
    GenSample *kept = calloc((size_t)a->n, sizeof *kept);
    int rc = kept ? RLHF_OK : err_set(err, RLHF_ENOMEM, "out of memory");
    for (int j = 0; j < a->n && !rc; j++)
        rc = choose(s->b, a->prompt, out + j * s->b->n, a->sub + j * s->b->n, &kept[j], err);
    if (!rc) rc = s->f->done(s->f->ctx, a->tag, kept, err);
    if (kept) gen_samples_free(kept, a->n);
    free(kept), free(a->prompt), free(a->sub);
    *a = (Ask){0};
    return rc;
}

static int best_of_stream(void *ctx, const GenFeed *f, int *bad, Err *err) {
    BestOf *b = ctx;
    Stream s = {.b = b, .f = f, .bad = -1};
    GenFeed inner = {&s, stream_next, stream_done};
    int ibad = -1, rc = b->inner.sample_stream(b->inner.ctx, &inner, &ibad, err);
    *bad = rc && ibad >= 0 ? s.ask[ibad].tag : -1;
    if (!rc && s.rc) rc = s.rc, *err = s.err, *bad = s.bad;
    for (int i = 0; i < s.n_ask; i++)
        free(s.ask[i].prompt), free(s.ask[i].sub);
    free(s.ask);
    return rc;
}

int best_of_init(BestOf *b, const GenBackend *inner, int n, const char *template,
                 BestOfScoreFn score, void *score_ctx, const char *rm_label, Err *err) {
    memset(b, 0, sizeof *b);
    if (n < 1) return err_set(err, RLHF_EINVAL, "best-of: n must be at least 1");
    b->inner = *inner;
    b->n = n;
    b->score = score, b->score_ctx = score_ctx;
    b->template = strdup(template ? template : GEN_DEFAULT_TEMPLATE);
    /* the inner parameters with best_of and rm added */
    cJSON *p = cJSON_Parse(inner->params_json ? inner->params_json : "{}");
    if (!cJSON_IsObject(p)) cJSON_Delete(p), p = cJSON_CreateObject();
    if (p) {
        cJSON_AddNumberToObject(p, "best_of", n);
        cJSON_AddStringToObject(p, "rm", rm_label ? rm_label : "");
        b->params_json = cJSON_PrintUnformatted(p);
        cJSON_Delete(p);
    }
    if (!b->template || !b->params_json) {
        best_of_free(b);
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    return RLHF_OK;
}

void best_of_free(BestOf *b) {
    free(b->template);
    free(b->params_json);
    memset(b, 0, sizeof *b);
}

GenBackend best_of_backend(BestOf *b) {
    GenBackend g = {.ctx = b, .sample = best_of_sample, .params_json = b->params_json};
    /* answers of several prompts at once where the inner backend takes a stream */
    if (b->inner.sample_stream && b->inner.max_batch / b->n >= 1)
        g.sample_stream = best_of_stream, g.max_batch = b->inner.max_batch / b->n;
    return g;
}

int best_of_register(Db *db, int64_t policy_id, const char *policy_name, const char *name, int n,
                     const char *rm_path, const char *template, int64_t *id, char **name_out,
                     Err *err) {
    *name_out = NULL;
    char sha[65], real[PATH_MAX], derived[512];
    /* several RMs combined (rm_spec_is_combined; gen stays below rm): the spec
     * names them (their weights are not hashed) */
    int rc = RLHF_OK, combined = strchr(rm_path, '+') && access(rm_path, F_OK) != 0;
    if (combined) sha256_hex(rm_path, strlen(rm_path), sha);
    else rc = model_file_sha256(rm_path, sha, err);
    if (rc) return rc;
    const char *rm = !combined && realpath(rm_path, real) ? real : rm_path;
    if (!name) {
        snprintf(derived, sizeof derived, "%s+bo%d", policy_name, n);
        name = derived;
    }
    ModelRow row;
    rc = db_model_get(db, name, &row, err);
    if (rc == RLHF_OK) {
        /* the store keeps one model per name: answers picked by another RM or n
         * under this name would be mixed with these */
        cJSON *c = cJSON_Parse(row.config ? row.config : "");
        const cJSON *bo = cJSON_GetObjectItemCaseSensitive(c, "best_of");
        const cJSON *rs = cJSON_GetObjectItemCaseSensitive(c, "rm_sha256");
        int same = strcmp(row.name, name) == 0 && row.parent_id == policy_id &&
                   cJSON_IsNumber(bo) && bo->valueint == n && cJSON_IsString(rs) &&
                   strcmp(rs->valuestring, sha) == 0;
        cJSON_Delete(c);
        if (!same)
            rc = err_set(err, RLHF_EINVAL,
                         "the model '%s' in the project is not best-of-%d of '%s' by this reward "
                         "model (sha256 %.12s...); give the best-of model another name",
                         name, n, policy_name, sha);
        db_model_row_free(&row);
        if (rc) return rc;
    } else if (rc != RLHF_ENOTFOUND) {
        return rc;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "best_of", n);
    cJSON_AddStringToObject(o, "policy", policy_name);
    cJSON_AddStringToObject(o, "rm", rm);
    cJSON_AddStringToObject(o, "rm_sha256", sha);
    char *config = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!config) return err_set(err, RLHF_ENOMEM, "out of memory");
    /* no path: the weights are the policy's, and a path would make a lookup of
     * the policy's checkpoint find this model */
    ModelIn m = {name, "policy", NULL, policy_id, NULL, config, template};
    rc = db_model_upsert(db, &m, id, err);
    free(config);
    if (!rc && !(*name_out = strdup(name))) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    return rc;
}
