/* bench_rm: a store whose rankings yield 1,000,000 comparisons (built in
 * /tmp and removed), then the times of `export --format pairs` (the library
 * call), loading the rankings, and the Elo and Bradley–Terry fits on them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/candidates.h"
#include "db/prompts.h"
#include "db/rankings.h"
#include "db/registry.h"
#include "rm/elo.h"
#include "rm/export.h"
#include "util/progress.h"
#include "util/rng.h"

#define K 8
#define N_MODELS 8
#define TARGET 1000000
#define N_LABELERS 64

static int fail(const char *what, const Err *err) {
    fprintf(stderr, "bench_rm: %s: %s\n", what, err->msg);
    return 1;
}

/* Prompts with K candidates from K different models, ranked after noisy model
 * strengths (a tie now and then) by one of N_LABELERS simulated labelers, as
 * a team would share the work. */
static int build(Db *db, int n_prompts, Err *err) {
    static const double strength[N_MODELS] = {1.6, 1.2, 0.9, 0.5, 0.3, 0.0, -0.4, -0.9};
    int64_t models[N_MODELS], labs[N_LABELERS];
    char name[32], text[256];
    Rng rng;
    rng_seed(&rng, 1);
    int rc = db_begin(db, err);
    for (int m = 0; m < N_MODELS && !rc; m++) {
        snprintf(name, sizeof name, "model-%d", m);
        rc = db_model_ensure_external(db, name, &models[m], err);
    }
    for (int l = 0; l < N_LABELERS && !rc; l++) {
        snprintf(name, sizeof name, "bench-%d", l);
        rc = db_labeler_ensure(db, name, 1, "bench", &labs[l], err);
    }
    for (int p = 0; p < n_prompts && !rc; p++) {
        snprintf(text, sizeof text,
                 "Benchmark prompt %d: explain why the sky looks blue in the day "
                 "and red at sunset, in two sentences.",
                 p);
        PromptIn pin = {text, NULL, "bench", NULL};
        int64_t pid;
        rc = db_prompt_insert(db, &pin, &pid, NULL, err);
        RankingItemIn items[K];
        double score[K];
        for (int k = 0; k < K && !rc; k++) {
            snprintf(text, sizeof text,
                     "Answer %d of model %d to prompt %d: sunlight scatters off air "
                     "molecules, blue most; at sunset the light crosses more air.",
                     k, k, p);
            CandidateIn cin = {pid, models[k], text, 40, NAN, NULL, 0, 0};
            rc = db_candidate_insert(db, &cin, &items[k].candidate_id, NULL, err);
            score[k] = strength[k] + rng_normal(&rng);
            if (rng_below(&rng, 20) == 0 && k) score[k] = score[k - 1]; /* a tie */
        }
        for (int k = 0; k < K; k++) {
            int better = 0;
            for (int j = 0; j < K; j++)
                better += score[j] > score[k];
            items[k].rank = better + 1;
            items[k].likert = 0, items[k].flags = NULL, items[k].shown_pos = k;
        }
        RankingIn in = {0};
        in.prompt_id = pid, in.labeler_id = labs[p % N_LABELERS], in.simulated = 1,
        in.time_spent_ms = 1000;
        in.gold_agreement = NAN, in.source = "bench", in.items = items, in.n_items = K;
        if (!rc) rc = db_ranking_submit(db, &in, NULL, err);
    }
    if (!rc)
        rc = db_commit(db, err);
    else
        db_rollback(db);
    return rc;
}

int main(void) {
    char dir[] = "/tmp/rlhf-bench-rm.XXXXXX", path[128], out[128];
    if (!mkdtemp(dir)) return perror("mkdtemp"), 1;
    snprintf(path, sizeof path, "%s/bench.db", dir);
    snprintf(out, sizeof out, "%s/pairs.jsonl", dir);
    int n_prompts = (TARGET + K * (K - 1) / 2 - 1) / (K * (K - 1) / 2);
    Err err = {0};
    Db *db;
    int rc = 1;
    if (db_open(path, DB_OPEN_CREATE, &db, &err)) return fail("open", &err);
    double t0 = now_seconds();
    if (build(db, n_prompts, &err)) {
        fail("build", &err);
        goto done;
    }
    double t_build = now_seconds() - t0;
    printf("rm_build_db_s prompts=%d K=%d rankings=%d labelers=%d value=%.2f\n", n_prompts, K,
           n_prompts, N_LABELERS, t_build);

    ExportOptions eo = {0};
    eo.format = EXPORT_PAIRS;
    eo.filter = db_ranking_filter_default();
    eo.min_agreement = -1;
    FILE *f = fopen(out, "wb");
    if (!f) {
        perror(out);
        goto done;
    }
    ExportStats st;
    t0 = now_seconds();
    if (rm_export(db, &eo, f, NULL, &st, &err)) {
        fclose(f);
        fail("export", &err);
        goto done;
    }
    fclose(f);
    double t_export = now_seconds() - t0;
    struct stat sb;
    stat(out, &sb);
    printf(
        "rm_export_pairs_s comparisons=%lld records=%lld ties_dropped=%lld bytes=%lld value=%.2f\n",
        (long long)st.pairs, (long long)st.records, (long long)st.ties_dropped,
        (long long)sb.st_size, t_export);
    printf("rm_export_pairs_per_s comparisons=%lld value=%.0f\n", (long long)st.pairs,
           st.records / t_export);

    RmSet s;
    t0 = now_seconds();
    if (rm_set_load(db, NULL, &s, &err)) {
        fail("load", &err);
        goto done;
    }
    EloPlayers pl;
    Battle *b = NULL;
    int64_t nb = 0;
    BattleStats bs;
    if (elo_players(db, &s, ELO_BY_MODEL, &pl, &err) || elo_battles(&s, &pl, &b, &nb, &bs, &err)) {
        rm_set_free(&s);
        fail("battles", &err);
        goto done;
    }
    printf("rm_load_battles_s rankings=%lld battles=%lld value=%.2f\n", (long long)s.n_rankings,
           (long long)nb, now_seconds() - t0);

    EloOptions o = elo_options_default();
    EloTable t;
    static const struct {
        int method, boot;
        const char *name;
    } runs[] = {{ELO_BT, 0, "rm_bt_fit_s"},
                {ELO_ONLINE, 0, "rm_elo_online_s"},
                {ELO_BT, 20, "rm_bt_bootstrap_s"},
                {ELO_ONLINE, 20, "rm_elo_bootstrap_s"}};
    rc = 0;
    for (size_t r = 0; r < sizeof runs / sizeof *runs && !rc; r++) {
        o.method = runs[r].method, o.bootstrap = runs[r].boot;
        t0 = now_seconds();
        if (elo_rate(b, nb, pl.n, &o, &t, &err)) {
            rc = fail("rate", &err);
            break;
        }
        double dt = now_seconds() - t0;
        int top = 0;
        for (int i = 1; i < pl.n; i++)
            top = t.rating[i] > t.rating[top] ? i : top;
        printf("%s battles=%lld players=%d bootstrap=%d value=%.3f  (top %s %.1f [%.1f, %.1f])\n",
               runs[r].name, (long long)nb, pl.n, runs[r].boot, dt, pl.name[top], t.rating[top],
               t.lo[top], t.hi[top]);
        elo_table_free(&t);
    }
    free(b);
    elo_players_free(&pl);
    rm_set_free(&s);
done:
    db_close(db);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "bench_rm: could not remove %s\n", dir);
    return rc;
}
