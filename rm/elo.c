/* Online Elo, Bradley–Terry by Newton's method, bootstrap intervals, and the
 * mapping from stored rankings to battles between players. */
#include "rm/elo.h"
#include "db/registry.h"
#include "util/rng.h"
#include "util/text.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

EloOptions elo_options_default(void) {
    EloOptions o = {0};
    o.method = ELO_ONLINE;
    o.k = 4, o.scale = 400, o.base = 10, o.init = 1000;
    o.l2 = 1e-4;
    o.anchor = -1;
    o.ci = 0.95;
    o.seed = 42;
    return o;
}

void elo_online(const Battle *b, int64_t n, int n_players, const EloOptions *o, double *rating) {
    for (int i = 0; i < n_players; i++)
        rating[i] = o->init;
    for (int64_t t = 0; t < n; t++) {
        double ra = rating[b[t].a], rb = rating[b[t].b];
        double ea = 1 / (1 + pow(o->base, (rb - ra) / o->scale));
        double eb = 1 / (1 + pow(o->base, (ra - rb) / o->scale));
        double sa = b[t].score;
        rating[b[t].a] += o->k * (sa - ea);
        rating[b[t].b] += o->k * (1 - sa - eb);
    }
}

/* Battles summed per unordered pair of players: n battles, w = score of the
 * first. The likelihood only depends on these, so a fit is O(pairs). */
typedef struct PairSum {
    int32_t i, j;
    double n, w;
} PairSum;

/* Dense index of pair (i, j), i < j, into the pair list when n_players is small
 * enough for a table; otherwise the caller sorts. */
static int64_t tri_index(int i, int j, int n) {
    return (int64_t)i * n - (int64_t)i * (i + 1) / 2 + (j - i - 1);
}

/* Sums battles (or weights per battle, for the bootstrap) into the upper triangle. */
static void sum_pairs(const Battle *b, int64_t n, const uint32_t *weight, int m, double *cnt,
                      double *win) {
    int64_t np = (int64_t)m * (m - 1) / 2;
    memset(cnt, 0, (size_t)np * sizeof *cnt);
    memset(win, 0, (size_t)np * sizeof *win);
    for (int64_t t = 0; t < n; t++) {
        double w = weight ? weight[t] : 1;
        if (w == 0 || b[t].a == b[t].b) continue;
        int i = b[t].a, j = b[t].b;
        double s = b[t].score;
        if (i > j) {
            int x = i;
            i = j, j = x, s = 1 - s;
        }
        int64_t k = tri_index(i, j, m);
        cnt[k] += w;
        win[k] += w * s;
    }
}

/* Cholesky solve of A x = g in place (A: m×m symmetric positive definite). */
static int chol_solve(double *A, double *g, int m) {
    for (int j = 0; j < m; j++) {
        double d = A[(size_t)j * m + j];
        for (int k = 0; k < j; k++)
            d -= A[(size_t)j * m + k] * A[(size_t)j * m + k];
        if (!(d > 0)) return -1;
        d = sqrt(d);
        A[(size_t)j * m + j] = d;
        for (int i = j + 1; i < m; i++) {
            double s = A[(size_t)i * m + j];
            for (int k = 0; k < j; k++)
                s -= A[(size_t)i * m + k] * A[(size_t)j * m + k];
            A[(size_t)i * m + j] = s / d;
        }
    }
    for (int i = 0; i < m; i++) {
        double s = g[i];
        for (int k = 0; k < i; k++)
            s -= A[(size_t)i * m + k] * g[k];
        g[i] = s / A[(size_t)i * m + i];
    }
    for (int i = m - 1; i >= 0; i--) {
        double s = g[i];
        for (int k = i + 1; k < m; k++)
            s -= A[(size_t)k * m + i] * g[k];
        g[i] = s / A[(size_t)i * m + i];
    }
    return 0;
}

static double log_sigmoid(double x) {
    return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x));
}

/* Penalised log-likelihood of θ (natural-log strengths). */
static double bt_objective(const double *cnt, const double *win, int m, const double *th,
                           double l2) {
    double f = 0;
    int64_t k = 0;
    for (int i = 0; i < m; i++)
        for (int j = i + 1; j < m; j++, k++) {
            if (cnt[k] == 0) continue;
            double d = th[i] - th[j];
            f += win[k] * log_sigmoid(d) + (cnt[k] - win[k]) * log_sigmoid(-d);
        }
    for (int i = 0; i < m; i++)
        f -= 0.5 * l2 * th[i] * th[i];
    return f;
}

/* Newton ascent with step halving; θ starts at 0. */
static int bt_newton(const double *cnt, const double *win, int m, double l2, double *th, Err *err) {
    double *H = malloc((size_t)m * m * sizeof *H), *g = malloc((size_t)m * sizeof *g);
    double *tn = malloc((size_t)m * sizeof *tn);
    if (!H || !g || !tn) {
        free(H), free(g), free(tn);
        return err_set(err, RLHF_ENOMEM, "out of memory (Bradley-Terry, %d players)", m);
    }
    for (int i = 0; i < m; i++)
        th[i] = 0;
    double f = bt_objective(cnt, win, m, th, l2);
    int rc = RLHF_OK;
    for (int it = 0; it < 100; it++) {
        memset(H, 0, (size_t)m * m * sizeof *H);
        for (int i = 0; i < m; i++)
            g[i] = -l2 * th[i], H[(size_t)i * m + i] = l2;
        int64_t k = 0;
        for (int i = 0; i < m; i++)
            for (int j = i + 1; j < m; j++, k++) {
                if (cnt[k] == 0) continue;
                double p = 1 / (1 + exp(th[j] - th[i]));
                double r = win[k] - cnt[k] * p, h = cnt[k] * p * (1 - p);
                g[i] += r, g[j] -= r;
                H[(size_t)i * m + i] += h, H[(size_t)j * m + j] += h;
                H[(size_t)i * m + j] -= h, H[(size_t)j * m + i] -= h;
            }
        double gmax = 0;
        for (int i = 0; i < m; i++)
            gmax = fmax(gmax, fabs(g[i]));
        if (gmax < 1e-9) break;
        if (chol_solve(H, g, m)) {
            rc = err_set(err, RLHF_EINVAL, "Bradley-Terry: singular system");
            break;
        }
        double step = 1, fn = f;
        for (int h = 0; h < 40; h++, step *= 0.5) {
            for (int i = 0; i < m; i++)
                tn[i] = th[i] + step * g[i];
            fn = bt_objective(cnt, win, m, tn, l2);
            if (fn >= f - 1e-12 * fabs(f)) break;
        }
        double moved = 0;
        for (int i = 0; i < m; i++)
            moved = fmax(moved, fabs(tn[i] - th[i])), th[i] = tn[i];
        f = fn;
        if (moved < 1e-10) break;
    }
    free(H), free(g), free(tn);
    return rc;
}

static void anchor(double *rating, int m, const EloOptions *o) {
    if (m == 0) return;
    double ref = 0;
    if (o->anchor >= 0 && o->anchor < m)
        ref = rating[o->anchor];
    else {
        for (int i = 0; i < m; i++)
            ref += rating[i];
        ref /= m;
    }
    for (int i = 0; i < m; i++)
        rating[i] += o->init - ref;
}

static int bt_from_sums(const double *cnt, const double *win, int m, const EloOptions *o,
                        double *rating, Err *err) {
    int rc = bt_newton(cnt, win, m, o->l2, rating, err);
    if (rc) return rc;
    /* θ is in natural-log odds; an Elo point is scale/ln(base) of them */
    for (int i = 0; i < m; i++)
        rating[i] *= o->scale / log(o->base);
    anchor(rating, m, o);
    return RLHF_OK;
}

int elo_bt(const Battle *b, int64_t n, int m, const EloOptions *o, double *rating, Err *err) {
    if (m < 1) return RLHF_OK;
    if (m > ELO_BT_MAX_PLAYERS)
        return err_set(err, RLHF_EINVAL, "Bradley-Terry: %d players, at most %d (use online Elo)",
                       m, ELO_BT_MAX_PLAYERS);
    int64_t np = (int64_t)m * (m - 1) / 2;
    double *cnt = malloc((size_t)(np ? np : 1) * sizeof *cnt);
    double *win = malloc((size_t)(np ? np : 1) * sizeof *win);
    int rc = !cnt || !win ? err_set(err, RLHF_ENOMEM, "out of memory") : RLHF_OK;
    if (!rc) {
        sum_pairs(b, n, NULL, m, cnt, win);
        rc = bt_from_sums(cnt, win, m, o, rating, err);
    }
    free(cnt), free(win);
    return rc;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double quantile(const double *sorted, int n, double q) {
    double pos = q * (n - 1);
    int lo = (int)floor(pos);
    if (lo >= n - 1) return sorted[n - 1];
    return sorted[lo] + (pos - lo) * (sorted[lo + 1] - sorted[lo]);
}

/* Resamples battles with replacement o->bootstrap times (Arena's bootstrap)
 * and takes the central o->ci interval of each player's rating. */
static int bootstrap(const Battle *b, int64_t n, int m, const EloOptions *o, EloTable *t,
                     Err *err) {
    int nb = o->bootstrap;
    int64_t np = (int64_t)m * (m - 1) / 2;
    double *samples = malloc((size_t)nb * m * sizeof *samples),
           *col = malloc((size_t)nb * sizeof *col);
    uint32_t *weight = o->method == ELO_BT ? calloc((size_t)n, sizeof *weight) : NULL;
    Battle *draw = o->method == ELO_ONLINE ? malloc((size_t)n * sizeof *draw) : NULL;
    double *cnt = malloc((size_t)(np ? np : 1) * sizeof *cnt),
           *win = malloc((size_t)(np ? np : 1) * sizeof *win);
    int rc = RLHF_OK;
    if (!samples || !col || !cnt || !win || (o->method == ELO_BT ? !weight : !draw))
        rc = err_set(err, RLHF_ENOMEM, "out of memory (bootstrap)");
    Rng rng;
    rng_seed(&rng, o->seed ^ 0x5eedb007ULL);
    for (int r = 0; r < nb && !rc; r++) {
        double *out = samples + (size_t)r * m;
        if (o->method == ELO_BT) {
            memset(weight, 0, (size_t)n * sizeof *weight);
            for (int64_t k = 0; k < n; k++)
                weight[rng_below(&rng, (uint64_t)n)]++;
            sum_pairs(b, n, weight, m, cnt, win);
            rc = bt_from_sums(cnt, win, m, o, out, err);
        } else {
            for (int64_t k = 0; k < n; k++)
                draw[k] = b[rng_below(&rng, (uint64_t)n)];
            elo_online(draw, n, m, o, out);
            anchor(out, m, o);
        }
    }
    for (int i = 0; i < m && !rc; i++) {
        for (int r = 0; r < nb; r++)
            col[r] = samples[(size_t)r * m + i];
        qsort(col, (size_t)nb, sizeof *col, cmp_double);
        t->lo[i] = quantile(col, nb, (1 - o->ci) / 2);
        t->hi[i] = quantile(col, nb, 1 - (1 - o->ci) / 2);
    }
    free(samples), free(col), free(weight), free(draw), free(cnt), free(win);
    return rc;
}

void elo_table_free(EloTable *t) {
    free(t->rating), free(t->lo), free(t->hi), free(t->battles), free(t->wins), free(t->rank);
    memset(t, 0, sizeof *t);
}

int elo_rate(const Battle *b, int64_t n, int m, const EloOptions *o, EloTable *t, Err *err) {
    memset(t, 0, sizeof *t);
    size_t sz = (size_t)(m ? m : 1);
    t->n = m;
    t->rating = calloc(sz, sizeof *t->rating), t->lo = calloc(sz, sizeof *t->lo);
    t->hi = calloc(sz, sizeof *t->hi), t->battles = calloc(sz, sizeof *t->battles);
    t->wins = calloc(sz, sizeof *t->wins), t->rank = calloc(sz, sizeof *t->rank);
    if (!t->rating || !t->lo || !t->hi || !t->battles || !t->wins || !t->rank) {
        elo_table_free(t);
        return err_set(err, RLHF_ENOMEM, "out of memory");
    }
    for (int64_t k = 0; k < n; k++) {
        t->battles[b[k].a]++, t->battles[b[k].b]++;
        t->wins[b[k].a] += b[k].score, t->wins[b[k].b] += 1 - b[k].score;
    }
    int rc = RLHF_OK;
    if (o->method == ELO_BT)
        rc = elo_bt(b, n, m, o, t->rating, err); /* also checks m */
    else {
        Battle *order = malloc((size_t)(n ? n : 1) * sizeof *order);
        if (!order)
            rc = err_set(err, RLHF_ENOMEM, "out of memory");
        else {
            memcpy(order, b, (size_t)n * sizeof *order);
            Rng rng;
            rng_seed(&rng, o->seed);
            rng_shuffle(&rng, order, (size_t)n, sizeof *order);
            elo_online(order, n, m, o, t->rating);
            anchor(t->rating, m, o);
            free(order);
        }
    }
    if (!rc && o->bootstrap > 0 && n > 0)
        rc = bootstrap(b, n, m, o, t, err);
    else if (!rc)
        for (int i = 0; i < m; i++)
            t->lo[i] = t->hi[i] = t->rating[i];
    if (rc) {
        elo_table_free(t);
        return rc;
    }
    for (int i = 0; i < m; i++) {
        t->rank[i] = 1;
        for (int j = 0; j < m; j++)
            if (j != i && t->battles[j] > 0 && t->lo[j] > t->hi[i]) t->rank[i]++;
    }
    return RLHF_OK;
}

/* ---- players and battles from the store ---------------------------------- */

typedef struct ModelInfo {
    int64_t id, parent_id;
    char *name, *kind;
} ModelInfo;

typedef struct ModelList {
    ModelInfo *m;
    int n;
} ModelList;

static int collect_model(const ModelRow *r, void *ctx) {
    ModelList *l = ctx;
    ModelInfo *p = realloc(l->m, (size_t)(l->n + 1) * sizeof *p);
    if (!p) return RLHF_ENOMEM;
    l->m = p;
    p[l->n].id = r->id, p[l->n].parent_id = r->parent_id;
    p[l->n].name = strdup(r->name), p[l->n].kind = strdup(r->kind);
    l->n++;
    return 0;
}

static const ModelInfo *find_model(const ModelList *l, int64_t id) {
    for (int i = 0; i < l->n; i++)
        if (l->m[i].id == id) return &l->m[i];
    return NULL;
}

static int is_policy_kind(const char *k) {
    return strcmp(k, "base") == 0 || strcmp(k, "sft") == 0 || strcmp(k, "policy") == 0;
}

void elo_players_free(EloPlayers *p) {
    for (int i = 0; i < p->n; i++)
        free(p->name[i]), free(p->lineage[i]);
    free(p->name), free(p->round), free(p->lineage), free(p->of_model);
    memset(p, 0, sizeof *p);
}

int elo_players(Db *db, const RmSet *s, int by, EloPlayers *p, Err *err) {
    memset(p, 0, sizeof *p);
    ModelList ml = {0};
    int rc = db_models_each(db, collect_model, &ml, err);
    if (rc == RLHF_ENOMEM) err_set(err, rc, "out of memory");
    size_t sz = (size_t)(s->n_models ? s->n_models : 1);
    p->n_models = s->n_models;
    p->of_model = malloc(sz * sizeof *p->of_model);
    p->name = calloc(sz, sizeof *p->name), p->lineage = calloc(sz, sizeof *p->lineage);
    p->round = calloc(sz, sizeof *p->round);
    if (!rc && (!p->of_model || !p->name || !p->lineage || !p->round))
        rc = err_set(err, RLHF_ENOMEM, "out of memory");
    for (int i = 0; i < s->n_models && !rc; i++) {
        p->of_model[i] = -1;
        const ModelInfo *mi = find_model(&ml, s->models[i].id);
        if (by == ELO_BY_POLICY && (!mi || !is_policy_kind(mi->kind))) continue;
        /* the lineage, root first; a cycle cannot be made through the API but
         * the walk is bounded anyway */
        const ModelInfo *chain[64];
        int depth = 0;
        for (const ModelInfo *x = mi; x && depth < 64;
             x = x->parent_id ? find_model(&ml, x->parent_id) : NULL)
            chain[depth++] = x;
        StrBuf lin = {0};
        for (int d = depth - 1; d >= 0; d--)
            sb_printf(&lin, "%s%s", d == depth - 1 ? "" : " > ", chain[d]->name);
        int k = p->n++;
        p->name[k] = strdup(s->models[i].name);
        p->lineage[k] = lin.s ? lin.s : strdup(s->models[i].name);
        p->round[k] = depth > 0 ? depth - 1 : 0;
        p->of_model[i] = k;
        if (!p->name[k] || !p->lineage[k]) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    }
    for (int i = 0; i < ml.n; i++)
        free(ml.m[i].name), free(ml.m[i].kind);
    free(ml.m);
    if (rc) elo_players_free(p);
    return rc;
}

int elo_battles(const RmSet *s, const EloPlayers *p, Battle **out, int64_t *n, BattleStats *st,
                Err *err) {
    memset(st, 0, sizeof *st);
    int64_t cap = 0, k = 0;
    Battle *bs = NULL;
    RmPair pairs[64 * 63 / 2];
    int rank[64], player[64];
    int last = -1;
    int64_t last_model = -1;
    for (int64_t r = 0; r < s->n_rankings; r++) {
        const RmRanking *rk = &s->rankings[r];
        const RmItem *it = &s->items[rk->first];
        int ni = rk->n_items > 64 ? 64 : rk->n_items;
        for (int i = 0; i < ni; i++) {
            rank[i] = it[i].rank;
            if (it[i].model_id != last_model)
                last = rm_set_model_index(s, it[i].model_id), last_model = it[i].model_id;
            player[i] = last >= 0 ? p->of_model[last] : -1;
        }
        int np = rm_pairs(rank, ni, pairs);
        if (k + np > cap) {
            cap = (k + np) * 2 + 1024;
            Battle *q = realloc(bs, (size_t)cap * sizeof *q);
            if (!q) {
                free(bs);
                return err_set(err, RLHF_ENOMEM, "out of memory (%lld battles)", (long long)k);
            }
            bs = q;
        }
        for (int j = 0; j < np; j++) {
            const RmPair *pr = &pairs[j];
            st->pairs++;
            st->ties += pr->tie;
            int pa = player[pr->better], pb = player[pr->worse];
            if (pa < 0 || pb < 0) {
                st->left_out++;
                continue;
            }
            if (pa == pb) {
                st->same_player++;
                continue;
            }
            float score = pr->tie ? 0.5f : 1.0f;
            Battle b = {pa, pb, score};
            if (it[pr->worse].cand_id < it[pr->better].cand_id) b = (Battle){pb, pa, 1 - score};
            bs[k++] = b;
        }
    }
    *out = bs;
    *n = k;
    return RLHF_OK;
}
