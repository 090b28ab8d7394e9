/* Pair extraction and the compact in-memory copy of a filter's rankings. */
#include "rm/compare.h"

#include <stdlib.h>
#include <string.h>

int rm_pairs(const int *rank, int n, RmPair *out) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (rank[i] <= 0) continue;
        for (int j = i + 1; j < n; j++) {
            if (rank[j] <= 0) continue;
            RmPair p;
            if (rank[i] <= rank[j])
                p.better = i, p.worse = j;
            else
                p.better = j, p.worse = i;
            p.tie = rank[i] == rank[j];
            p.margin = abs(rank[i] - rank[j]);
            out[k++] = p;
        }
    }
    return k;
}

int rm_pairs_of_row(const RankingRow *r, RmPair *out, int cap) {
    int rank[64];
    if (r->n_items > 64 || r->n_items * (r->n_items - 1) / 2 > cap) return -1;
    for (int i = 0; i < r->n_items; i++)
        rank[i] = r->items[i].rank;
    return rm_pairs(rank, r->n_items, out);
}

/* Names are few (labelers, models), so a linear search from the last hit is enough. */
static int name_index(RmName **names, int *n, int64_t id, const char *name, int *last) {
    if (*last >= 0 && *last < *n && (*names)[*last].id == id) return *last;
    for (int i = 0; i < *n; i++)
        if ((*names)[i].id == id) return *last = i;
    RmName *p = realloc(*names, (size_t)(*n + 1) * sizeof *p);
    if (!p) return -1;
    *names = p;
    p[*n].id = id;
    p[*n].name = strdup(name ? name : "?");
    if (!p[*n].name) return -1;
    return *last = (*n)++;
}

typedef struct LoadCtx {
    RmSet *s;
    int64_t cap_r, cap_i;
    int last_labeler, last_model;
} LoadCtx;

static int load_one(const RankingRow *r, void *vctx) {
    LoadCtx *c = vctx;
    RmSet *s = c->s;
    if (s->n_rankings == c->cap_r) {
        c->cap_r = c->cap_r ? c->cap_r * 2 : 256;
        RmRanking *p = realloc(s->rankings, (size_t)c->cap_r * sizeof *p);
        if (!p) return RLHF_ENOMEM;
        s->rankings = p;
    }
    while (s->n_items + r->n_items > c->cap_i) {
        c->cap_i = c->cap_i ? c->cap_i * 2 : 1024;
        RmItem *p = realloc(s->items, (size_t)c->cap_i * sizeof *p);
        if (!p) return RLHF_ENOMEM;
        s->items = p;
    }
    RmRanking *k = &s->rankings[s->n_rankings];
    k->id = r->id;
    k->prompt_id = r->prompt_id;
    k->time_ms = r->time_spent_ms;
    k->gold = r->gold_agreement;
    k->simulated = r->simulated;
    k->labeler =
        name_index(&s->labelers, &s->n_labelers, r->labeler_id, r->labeler, &c->last_labeler);
    if (k->labeler < 0) return RLHF_ENOMEM;
    k->first = s->n_items;
    k->n_items = r->n_items;
    for (int i = 0; i < r->n_items; i++) {
        const RankingItemRow *it = &r->items[i];
        RmItem *o = &s->items[s->n_items++];
        o->cand_id = it->candidate_id;
        o->model_id = it->model_id;
        o->rank = it->rank;
        o->likert = it->likert;
        if (name_index(&s->models, &s->n_models, it->model_id, it->model_name, &c->last_model) < 0)
            return RLHF_ENOMEM;
    }
    s->n_rankings++;
    return 0;
}

int rm_set_load(Db *db, const RankingFilter *f, RmSet *out, Err *err) {
    memset(out, 0, sizeof *out);
    LoadCtx c = {out, 0, 0, -1, -1};
    int rc = db_rankings_each(db, f, load_one, &c, err);
    if (rc == RLHF_ENOMEM) err_set(err, rc, "out of memory loading rankings");
    if (rc) rm_set_free(out);
    return rc;
}

void rm_set_free(RmSet *s) {
    for (int i = 0; i < s->n_labelers; i++)
        free(s->labelers[i].name);
    for (int i = 0; i < s->n_models; i++)
        free(s->models[i].name);
    free(s->labelers), free(s->models), free(s->rankings), free(s->items);
    memset(s, 0, sizeof *s);
}

int rm_set_model_index(const RmSet *s, int64_t model_id) {
    for (int i = 0; i < s->n_models; i++)
        if (s->models[i].id == model_id) return i;
    return -1;
}
