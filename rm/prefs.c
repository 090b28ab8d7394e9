/* Preference groups for training (see prefs.h): one group per current ranking
 * in the store, or one per record of a pairs / HH file. */
#include "rm/prefs.h"
#include "db/candidates.h"
#include "rm/export.h"
#include "rm/import.h"
#include "util/lines.h"

#include <stdlib.h>
#include <string.h>

static void group_free(PrefGroup *g) {
    free(g->prompt);
    for (int i = 0; g->answers && i < g->n; i++)
        free(g->answers[i]);
    for (int i = 0; g->ids && i < g->n; i++)
        free(g->ids[i]);
    free(g->answers), free(g->rank), free(g->likert), free(g->cand_id);
    free(g->ids), free(g->n_ids), free(g->finish);
    memset(g, 0, sizeof *g);
}

void prefs_free(PrefSet *s) {
    for (int i = 0; i < s->n; i++)
        group_free(&s->g[i]);
    for (int i = 0; i < s->n_labelers; i++)
        free(s->labelers[i]);
    free(s->g), free(s->labelers);
    memset(s, 0, sizeof *s);
}

/* A new, zeroed group at the end of s with room for n answers. */
static PrefGroup *group_add(PrefSet *s, int n, int *cap, Err *err) {
    if (s->n == *cap) {
        int nc = *cap ? *cap * 2 : 64;
        PrefGroup *p = realloc(s->g, (size_t)nc * sizeof *p);
        if (!p) return err_set(err, RLHF_ENOMEM, "out of memory"), NULL;
        s->g = p, *cap = nc;
    }
    PrefGroup *g = &s->g[s->n];
    memset(g, 0, sizeof *g);
    g->answers = calloc((size_t)n, sizeof *g->answers);
    g->rank = calloc((size_t)n, sizeof *g->rank);
    g->likert = calloc((size_t)n, sizeof *g->likert);
    g->cand_id = calloc((size_t)n, sizeof *g->cand_id);
    g->ids = calloc((size_t)n, sizeof *g->ids);
    g->n_ids = calloc((size_t)n, sizeof *g->n_ids);
    g->finish = calloc((size_t)n, sizeof *g->finish);
    g->labeler = -1;
    s->n++; /* counted at once so prefs_free frees a half-filled group */
    if (!g->answers || !g->rank || !g->likert || !g->cand_id || !g->ids || !g->n_ids || !g->finish)
        return err_set(err, RLHF_ENOMEM, "out of memory"), NULL;
    return g;
}

/* Index of a labeler name in s->labelers, added when new; -1 out of memory. */
static int labeler_index(PrefSet *s, const char *name) {
    for (int i = s->n_labelers - 1; i >= 0; i--)
        if (strcmp(s->labelers[i], name) == 0) return i;
    char **p = realloc(s->labelers, (size_t)(s->n_labelers + 1) * sizeof *p);
    if (!p) return -1;
    s->labelers = p;
    if (!(p[s->n_labelers] = strdup(name))) return -1;
    return s->n_labelers++;
}

static int cmp_i64(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

typedef struct StoreCtx {
    PrefSet *s;
    const PrefLoadOptions *o;
    int cap;
    int64_t *allowed, n_allowed; /* min_agreement's prompts; NULL: all */
    Err *err;
} StoreCtx;

static int store_one(const RankingRow *r, void *vctx) {
    StoreCtx *c = vctx;
    PrefSet *s = c->s;
    if (c->allowed && !bsearch(&r->prompt_id, c->allowed, (size_t)c->n_allowed,
                               sizeof *c->allowed, cmp_i64))
        return 0;
    /* items come sorted by rank, unranked last */
    int n = 0, distinct = 0;
    while (n < r->n_items && r->items[n].rank > 0) {
        if (n == 0 || r->items[n].rank != r->items[n - 1].rank) distinct++;
        n++;
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            s->ties_dropped += r->items[i].rank == r->items[j].rank;
    if (n < 2 || distinct < 2) {
        s->skipped++;
        return 0;
    }
    PrefGroup *g = group_add(s, n, &c->cap, c->err);
    if (!g) return RLHF_ENOMEM;
    g->n = n;
    g->prompt = strdup(r->prompt ? r->prompt : "");
    for (int i = 0; i < n; i++) {
        const RankingItemRow *it = &r->items[i];
        g->answers[i] = strdup(it->text ? it->text : "");
        g->rank[i] = it->rank;
        g->likert[i] = it->likert;
        g->cand_id[i] = it->candidate_id;
        g->finish[i] = it->finish;
        if (db_ids_parse(it->tokens, &g->ids[i], &g->n_ids[i]))
            return err_set(c->err, RLHF_ENOMEM, "out of memory");
        if (!g->answers[i]) return err_set(c->err, RLHF_ENOMEM, "out of memory");
    }
    g->prompt_id = r->prompt_id;
    g->ranking_id = r->id;
    g->labeler = labeler_index(s, r->labeler ? r->labeler : "?");
    g->val = rm_prompt_in_val(g->prompt, c->o->val_frac);
    if (!g->prompt || g->labeler < 0) return err_set(c->err, RLHF_ENOMEM, "out of memory");
    return 0;
}

int prefs_encode_answer(const PrefGroup *g, int k, const Tokenizer *tok, const char *template,
                        int max_len, SeqExample *out, int *used_ids, Err *err) {
    /* an answer cut at a stop string is scored as its text ended with </s>,
     * not as the ids sampled (they hold the stop string) */
    int stop = g->finish && g->finish[k] == CAND_FINISH_STOP;
    const int *ids = g->ids && !stop ? g->ids[k] : NULL;
    int add_eos = !(g->finish && g->finish[k] == CAND_FINISH_LENGTH);
    return seq_encode_sampled(tok, template, g->prompt, g->answers[k], ids, ids ? g->n_ids[k] : 0,
                              add_eos, max_len, out, used_ids, err);
}

int prefs_load_store(Db *db, const PrefLoadOptions *o, PrefSet *out, Err *err) {
    memset(out, 0, sizeof *out);
    StoreCtx c = {out, o, 0, NULL, 0, err};
    int rc = RLHF_OK;
    if (o->min_agreement >= 0)
        rc = rm_agreeing_prompts(db, &o->filter, o->min_agreement, &c.allowed, &c.n_allowed, err);
    if (!rc) rc = db_rankings_each(db, &o->filter, store_one, &c, err);
    free(c.allowed);
    if (rc) prefs_free(out);
    return rc;
}

int prefs_load_file(const char *path, double val_frac, PrefSet *out, Err *err) {
    memset(out, 0, sizeof *out);
    LineReader lr;
    int rc = lines_open(&lr, path, err);
    if (rc) return rc;
    int cap = 0;
    cJSON *obj;
    while (!(rc = jsonl_next(&lr, &obj, err)) && obj) {
        char *prompt, *chosen, *rejected, *labeler;
        rc = rm_import_read_pair(&lr, obj, rm_import_detect(obj), &prompt, &chosen, &rejected,
                                 &labeler, err);
        cJSON_Delete(obj);
        if (rc) break;
        if (strcmp(chosen, rejected) == 0) {
            out->skipped++; /* nothing to learn */
            free(prompt), free(chosen), free(rejected), free(labeler);
            continue;
        }
        PrefGroup *g = group_add(out, 2, &cap, err);
        if (!g) {
            free(prompt), free(chosen), free(rejected), free(labeler);
            rc = RLHF_ENOMEM;
            break;
        }
        g->n = 2;
        g->prompt = prompt;
        g->answers[0] = chosen, g->answers[1] = rejected;
        g->rank[0] = 1, g->rank[1] = 2;
        g->val = rm_prompt_in_val(prompt, val_frac);
        if (labeler) {
            g->labeler = labeler_index(out, labeler);
            free(labeler);
            if (g->labeler < 0) {
                rc = err_set(err, RLHF_ENOMEM, "out of memory");
                break;
            }
        }
    }
    if (!rc && out->n == 0 && out->skipped == 0)
        rc = err_set(err, RLHF_EFORMAT, "%s: no records in file", lr.path);
    lines_close(&lr);
    if (rc) prefs_free(out);
    return rc;
}
