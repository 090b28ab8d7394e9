/* rlhf elo: ratings of models (or policies across RLHF rounds) from rankings. */
#include "cli/cli.h"
#include "cli/filter.h"
#include "cli/opts.h"
#include "rm/elo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int exec_elo(int argc, char **argv);

const struct cmd_entry cmd_elo_entry = {
    "elo", "[--by model|policy] [--method elo|bt] [--bootstrap N] [--seed S] [--json] [filters]",
    "rate models by the rankings of their candidates (Elo, Bradley-Terry)",
    "Every pair of candidates in a ranking is a battle between their models (ties count\n"
    "half; pairs of one model are left out).\n"
    "  --by model      one rating per model (default)\n"
    "  --by policy     only our own checkpoints (kind base, sft, policy), each with its\n"
    "                  round (depth through the models' parents) and lineage: one policy\n"
    "                  followed across RLHF rounds; external and imported models left out\n"
    "  --method elo    online Elo as Chatbot Arena: K=4, scale 400, base 10, start 1000,\n"
    "                  battles in a shuffled order (default)\n"
    "  --method bt     Bradley-Terry maximum likelihood, in Elo points\n"
    "  --bootstrap N   N resamples of the battles for a 95% interval (default 0: none)\n"
    "  --seed S        seed of the shuffle and the resamples (default 42)\n"
    "  --anchor NAME   pin this model at 1000 (default: the mean is 1000)\n"
    "  --json          one JSON object instead of a table\n"
    "The rank counts only the models whose interval lies wholly above (as the Arena\n"
    "leaderboard does).\n" CLI_HELP_FILTER CLI_HELP_COMMON,
    exec_elo};

static const struct cmd_entry *E = &cmd_elo_entry;

static const EloTable *sort_t;
static char *const *sort_names;

static int cmp_rating(const void *x, const void *y) {
    int a = *(const int *)x, b = *(const int *)y;
    if (sort_t->rating[a] != sort_t->rating[b])
        return sort_t->rating[a] > sort_t->rating[b] ? -1 : 1;
    return strcmp(sort_names[a], sort_names[b]);
}

static int print_json(const EloTable *t, const EloPlayers *p, const int *order,
                      const EloOptions *o, int by, int64_t n_battles, const BattleStats *bs) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "method", o->method == ELO_BT ? "bt" : "elo");
    cJSON_AddStringToObject(j, "by", by == ELO_BY_POLICY ? "policy" : "model");
    cJSON_AddNumberToObject(j, "battles", (double)n_battles);
    cJSON_AddNumberToObject(j, "ties", (double)bs->ties);
    cJSON_AddNumberToObject(j, "same_player", (double)bs->same_player);
    cJSON_AddNumberToObject(j, "left_out", (double)bs->left_out);
    cJSON_AddNumberToObject(j, "bootstrap", o->bootstrap);
    cli_json_u64(j, "seed", (unsigned long long)o->seed);
    cJSON *players = cJSON_AddArrayToObject(j, "players");
    for (int k = 0; k < t->n; k++) {
        int i = order[k];
        cJSON *q = cJSON_CreateObject();
        cJSON_AddItemToArray(players, q);
        cJSON_AddNumberToObject(q, "rank", t->rank[i]);
        cJSON_AddStringToObject(q, "name", p->name[i]);
        cli_json_num(q, "rating", t->rating[i], 2);
        cli_json_num(q, "lo", t->lo[i], 2);
        cli_json_num(q, "hi", t->hi[i], 2);
        cJSON_AddNumberToObject(q, "battles", (double)t->battles[i]);
        cli_json_num(q, "wins", t->wins[i], 1);
        cli_json_num(q, "win_rate", t->battles[i] ? t->wins[i] / (double)t->battles[i] : 0.0, 4);
        if (by == ELO_BY_POLICY) {
            cJSON_AddNumberToObject(q, "round", p->round[i]);
            cJSON_AddStringToObject(q, "lineage", p->lineage[i] ? p->lineage[i] : "");
        }
    }
    return cli_json_print(j);
}

static void print_table(const EloTable *t, const EloPlayers *p, const int *order,
                        const EloOptions *o, int by) {
    int w = 5;
    for (int i = 0; i < t->n; i++)
        w = (int)strlen(p->name[i]) > w ? (int)strlen(p->name[i]) : w;
    if (w > 40) w = 40;
    printf("%4s  %-*s  %8s  %-15s %8s  %6s%s\n", "rank", w,
           by == ELO_BY_POLICY ? "policy" : "model", "rating", o->bootstrap ? "95% CI" : "",
           "battles", "win%", by == ELO_BY_POLICY ? "  round  lineage" : "");
    for (int k = 0; k < t->n; k++) {
        int i = order[k];
        char ci[32] = "";
        if (o->bootstrap)
            snprintf(ci, sizeof ci, "+%.1f/-%.1f", t->hi[i] - t->rating[i],
                     t->rating[i] - t->lo[i]);
        printf("%4d  %-*.*s  %8.1f  %-15s %8lld  %5.1f%%", t->rank[i], w, w, cli_shown(p->name[i], 0),
               t->rating[i], ci, (long long)t->battles[i],
               t->battles[i] ? 100 * t->wins[i] / (double)t->battles[i] : 0.0);
        if (by == ELO_BY_POLICY) printf("  %5d  %s", p->round[i], cli_shown(p->lineage[i], 0));
        putchar('\n');
    }
}

/* What the command line asks for. */
typedef struct EloArgs {
    const char *dbflag, *anchor;
    RankingFilter f;
    EloOptions o;
    int by, json;
} EloArgs;

/* Options into a; -1 to go on, else the exit status. */
static int parse(int argc, char **argv, EloArgs *a) {
    static const char *const bys[] = {"model", "policy", NULL}; /* ELO_BY_* */
    static const char *const methods[] = {"elo", "bt", NULL};   /* ELO_ONLINE, ELO_BT */
    *a = (EloArgs){.f = db_ranking_filter_default(), .o = elo_options_default(), .by = ELO_BY_MODEL};
    long seed = (long)a->o.seed;
    CliOpt filters[CLI_FILTER_N];
    cli_filter_table(&a->f, NULL, filters);
    const CliOpt opts[] = {CLI_O_DB(&a->dbflag),
                           CLI_O_WORD_MSG("by", &a->by, bys, "expected model or policy, not '%s'"),
                           CLI_O_WORD_MSG("method", &a->o.method, methods, "expected elo or bt, not '%s'"),
                           CLI_O_INT("bootstrap", &a->o.bootstrap, 0, 100000),
                           CLI_O_LONG("seed", &seed, 0, 1L << 62),
                           CLI_O_STR("anchor", &a->anchor),
                           CLI_O_FLAG("json", &a->json),
                           CLI_O_TABLE(filters),
                           CLI_O_END};
    int rc = cli_opts_parse(E, argc, argv, opts, NULL);
    a->o.seed = (uint64_t)seed;
    return rc;
}

/* The players' ratings from the battles of the rankings in s. */
static int rate(Db *db, const RmSet *s, EloArgs *a, EloPlayers *p, EloTable *t, Battle **b,
                int64_t *nb, BattleStats *bs, Err *err) {
    int rc = elo_players(db, s, a->by, p, err);
    if (!rc) rc = elo_battles(s, p, b, nb, bs, err);
    if (!rc && a->anchor) {
        for (int i = 0; i < p->n; i++)
            if (strcmp(p->name[i], a->anchor) == 0) a->o.anchor = i;
        if (a->o.anchor < 0)
            rc = err_set(err, RLHF_EINVAL, "--anchor: no rated model named '%s'", a->anchor);
    }
    if (!rc && *nb == 0)
        rc = err_set(err, RLHF_ENOTFOUND,
                     "no battles: %lld rankings matched, %lld pairs (%lld of one %s, %lld left out)",
                     (long long)s->n_rankings, (long long)bs->pairs, (long long)bs->same_player,
                     a->by == ELO_BY_POLICY ? "policy" : "model", (long long)bs->left_out);
    if (!rc) rc = elo_rate(*b, *nb, p->n, &a->o, t, err);
    return rc;
}

/* The players that battled, best first, as JSON or a table. */
static int print_ratings(EloTable *t, const EloPlayers *p, const EloArgs *a, const RmSet *s,
                         int64_t nb, const BattleStats *bs, Err *err) {
    int *order = malloc((size_t)(p->n ? p->n : 1) * sizeof *order);
    if (!order) return err_set(err, RLHF_ENOMEM, "out of memory");
    /* players that never battled (all their pairs were of one model) are not shown */
    int n = 0;
    for (int i = 0; i < p->n; i++)
        if (t->battles[i] > 0) order[n++] = i;
    sort_t = t, sort_names = p->name;
    qsort(order, (size_t)n, sizeof *order, cmp_rating);
    int all = t->n;
    t->n = n;
    if (a->json)
        print_json(t, p, order, &a->o, a->by, nb, bs);
    else {
        print_table(t, p, order, &a->o, a->by);
        fprintf(stderr,
                "%lld battles from %lld rankings (%lld ties; %lld pairs of one %s and %lld of "
                "models left out not counted)\n",
                (long long)nb, (long long)s->n_rankings, (long long)bs->ties,
                (long long)bs->same_player, a->by == ELO_BY_POLICY ? "policy" : "model",
                (long long)bs->left_out);
    }
    t->n = all;
    free(order);
    return RLHF_OK;
}

static int exec_elo(int argc, char **argv) {
    EloArgs a;
    int rc = parse(argc, argv, &a);
    if (rc >= 0) return rc;
    Db *db;
    rc = cli_open_db(E, a.dbflag, DB_OPEN_READONLY, &db);
    if (rc) return rc;
    Err err = {0};
    RmSet s;
    EloPlayers p = {0};
    EloTable t = {0};
    Battle *b = NULL;
    int64_t nb = 0;
    BattleStats bs = {0};
    rc = rm_set_load(db, &a.f, &s, &err);
    if (rc) {
        db_close(db);
        return cli_fail(E, &err);
    }
    rc = rate(db, &s, &a, &p, &t, &b, &nb, &bs, &err);
    db_close(db);
    if (!rc) rc = print_ratings(&t, &p, &a, &s, nb, &bs, &err);
    free(b);
    elo_table_free(&t);
    elo_players_free(&p);
    rm_set_free(&s);
    return rc ? cli_fail(E, &err) : EXIT_OK;
}
