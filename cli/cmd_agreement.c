/* rlhf agreement: how much labelers agree, overall and per labeler. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "rm/agreement.h"
#include "rm/demo_agree.h"

#include <math.h>
#include <string.h>

static int exec_agreement(int argc, char **argv);

const struct cmd_entry cmd_agreement_entry = {
    "agreement", "[--json] [filters]",
    "agreement between labelers: pairwise rate, Kendall's tau, Krippendorff's alpha",
    "On prompts ranked by two labelers or more:\n"
    "  pairwise agreement  share of candidate pairs both ranked on which two labelers\n"
    "                      prefer the same one (a tie agrees only with a tie), as in InstructGPT\n"
    "  Kendall's tau-b     between two labelers' rankings of a prompt (ties allowed), mean\n"
    "  Krippendorff alpha  of the 1-7 scores per candidate, ordinal metric (and interval)\n"
    "Per labeler: rankings, mean time per ranking, agreement and tau with the others,\n"
    "agreement with gold items (when there are any); then each two labelers.\n"
    "Written answers (the write task of rlhf label), where two people or more answered one\n"
    "prompt: how alike two authors' answers are (1 - edit distance / the longer length)\n"
    "and how often identical, overall and per author with answers and time per answer.\n"
    "  --json          one JSON object instead of text\n" CLI_HELP_FILTER CLI_HELP_COMMON,
    exec_agreement};

static const struct cmd_entry *E = &cmd_agreement_entry;

#define NUM(o, k, v) cJSON_AddNumberToObject(o, k, (double)(v))

static void demos_json(cJSON *j, const DemoAgreement *d) {
    cJSON *o = cJSON_AddObjectToObject(j, "demonstrations");
    NUM(o, "answers", d->demos);
    NUM(o, "prompts", d->prompts);
    NUM(o, "prompts_shared", d->prompts_shared);
    NUM(o, "pairs", d->pairs);
    NUM(o, "identical", d->identical);
    cli_json_g(o, "similarity", d->similarity);
    cJSON *ws = cJSON_AddArrayToObject(o, "writers");
    for (int i = 0; i < d->n_writers; i++) {
        const WriterAgreement *w = &d->writers[i];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddItemToArray(ws, x);
        cJSON_AddStringToObject(x, "name", w->name);
        cJSON_AddBoolToObject(x, "simulated", w->simulated);
        NUM(x, "answers", w->answers);
        cli_json_g(x, "mean_time_s", w->mean_time_s);
        NUM(x, "pairs", w->pairs);
        cli_json_g(x, "similarity", w->similarity);
    }
}

static void print_json(const AgreementReport *r, const DemoAgreement *d) {
    cJSON *j = cJSON_CreateObject();
    demos_json(j, d);
    NUM(j, "prompts", r->prompts);
    NUM(j, "prompts_shared", r->prompts_shared);
    NUM(j, "pairs_compared", r->compared);
    NUM(j, "pairs_agreed", r->agreed);
    cli_json_g(j, "agreement", r->agreement);
    cli_json_g(j, "agreement_se", r->agreement_se);
    cli_json_g(j, "kendall_tau_b", r->tau);
    NUM(j, "tau_pairs", r->tau_n);
    cli_json_g(j, "alpha_ordinal", r->alpha_ordinal);
    cli_json_g(j, "alpha_interval", r->alpha_interval);
    NUM(j, "alpha_units", r->alpha_units);
    NUM(j, "alpha_scores", r->alpha_values);
    cJSON *labelers = cJSON_AddArrayToObject(j, "labelers");
    for (int i = 0; i < r->n_labelers; i++) {
        const LabelerAgreement *l = &r->labelers[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(labelers, o);
        cJSON_AddStringToObject(o, "name", l->name ? l->name : "");
        cJSON_AddBoolToObject(o, "simulated", l->simulated);
        NUM(o, "rankings", l->rankings);
        cli_json_g(o, "mean_time_s", l->mean_time_s);
        NUM(o, "pairs_compared", l->compared);
        NUM(o, "pairs_agreed", l->agreed);
        cli_json_g(o, "agreement", l->agreement);
        cli_json_g(o, "kendall_tau_b", l->tau);
        cli_json_g(o, "gold_agreement", l->gold);
        NUM(o, "gold_rankings", l->gold_n);
    }
    cJSON *pairs = cJSON_AddArrayToObject(j, "labeler_pairs");
    for (int i = 0; i < r->n_pairs; i++) {
        const PairAgreement *p = &r->pairs[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(pairs, o);
        cJSON_AddStringToObject(o, "a", r->labelers[p->a].name);
        cJSON_AddStringToObject(o, "b", r->labelers[p->b].name);
        NUM(o, "rankings", p->prompts);
        NUM(o, "pairs_compared", p->compared);
        NUM(o, "pairs_agreed", p->agreed);
        cli_json_g(o, "agreement", p->compared ? (double)p->agreed / (double)p->compared : NAN);
        cli_json_g(o, "kendall_tau_b", p->tau);
    }
    cli_json_print(j);
}

static void pct(char *buf, size_t n, double v) {
    if (isnan(v))
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%.1f%%", 100 * v);
}

static void num(char *buf, size_t n, double v, const char *fmt) {
    if (isnan(v))
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, fmt, v);
}

static void demos_text(const DemoAgreement *d) {
    char a[32], b[32];
    pct(a, sizeof a, d->similarity);
    printf("\nwritten answers: %lld to %lld prompts, by two authors or more: %lld\n",
           (long long)d->demos, (long long)d->prompts, (long long)d->prompts_shared);
    printf("similarity of two authors' answers: %s (%lld pairs, %lld identical)\n", a,
           (long long)d->pairs, (long long)d->identical);
    printf("%-20s  %-9s  %7s  %9s  %10s  %6s\n", "author", "kind", "answers", "mean time",
           "similarity", "pairs");
    for (int i = 0; i < d->n_writers; i++) {
        const WriterAgreement *w = &d->writers[i];
        num(a, sizeof a, w->mean_time_s, "%.1fs");
        pct(b, sizeof b, w->similarity);
        printf("%-20.20s  %-9s  %7lld  %9s  %10s  %6lld\n", cli_shown(w->name, 0),
               w->simulated ? "simulated" : "human", (long long)w->answers, a, b,
               (long long)w->pairs);
    }
}

static void print_text(const AgreementReport *r) {
    char a[32], b[32], c[32];
    printf("prompts ranked: %lld, by two labelers or more: %lld\n", (long long)r->prompts,
           (long long)r->prompts_shared);
    pct(a, sizeof a, r->agreement);
    if (!isnan(r->agreement_se))
        snprintf(b, sizeof b, " ± %.1f%%", 100 * r->agreement_se);
    else
        b[0] = '\0';
    printf("pairwise agreement: %s%s (%lld of %lld shared pairs)\n", a, b, (long long)r->agreed,
           (long long)r->compared);
    num(a, sizeof a, r->tau, "%.3f");
    printf("Kendall's tau-b: %s (mean over %lld pairs of rankings)\n", a, (long long)r->tau_n);
    num(a, sizeof a, r->alpha_ordinal, "%.3f");
    num(b, sizeof b, r->alpha_interval, "%.3f");
    printf("Krippendorff's alpha, 1-7 scores: ordinal %s, interval %s (%lld candidates scored "
           "twice or "
           "more, %lld scores)\n",
           a, b, (long long)r->alpha_units, (long long)r->alpha_values);
    int w = 7;
    for (int i = 0; i < r->n_labelers; i++)
        if ((int)strlen(r->labelers[i].name) > w) w = (int)strlen(r->labelers[i].name);
    if (w > 40) w = 40;
    int gold = 0;
    for (int i = 0; i < r->n_labelers; i++)
        gold |= r->labelers[i].gold_n > 0;
    printf("\n%-*s  %-9s  %8s  %9s  %9s  %8s  %6s%s\n", w, "labeler", "kind", "rankings",
           "mean time", "agreement", "pairs", "tau", gold ? "   gold" : "");
    for (int i = 0; i < r->n_labelers; i++) {
        const LabelerAgreement *l = &r->labelers[i];
        char d[32] = "";
        num(a, sizeof a, l->mean_time_s, "%.1fs");
        pct(b, sizeof b, l->agreement);
        num(c, sizeof c, l->tau, "%.3f");
        if (gold) pct(d, sizeof d, l->gold);
        printf("%-*.*s  %-9s  %8lld  %9s  %9s  %8lld  %6s%s%6s\n", w, w, cli_shown(l->name, 0),
               l->simulated ? "simulated" : "human", (long long)l->rankings, a, b,
               (long long)l->compared, c, gold ? " " : "", d);
    }
    if (r->n_pairs == 0) return;
    printf("\n%-*s  %-*s  %8s  %9s  %8s  %6s\n", w, "labeler", w, "with", "rankings", "agreement",
           "pairs", "tau");
    for (int i = 0; i < r->n_pairs; i++) {
        const PairAgreement *p = &r->pairs[i];
        pct(b, sizeof b, p->compared ? (double)p->agreed / (double)p->compared : NAN);
        num(c, sizeof c, p->tau, "%.3f");
        printf("%-*.*s  %-*.*s  %8lld  %9s  %8lld  %6s\n", w, w, cli_shown(r->labelers[p->a].name, 0),
               w, w, cli_shown(r->labelers[p->b].name, 0), (long long)p->prompts, b, (long long)p->compared, c);
    }
}

static int exec_agreement(int argc, char **argv) {
    const char *dbflag = NULL;
    RankingFilter f = db_ranking_filter_default();
    int json = 0;
    CliOpt filters[CLI_FILTER_N];
    cli_filter_table(&f, NULL, filters);
    const CliOpt opts[] = {CLI_O_DB(&dbflag), CLI_O_FLAG("json", &json), CLI_O_TABLE(filters),
                           CLI_O_END};
    int rc = cli_opts_parse(E, argc, argv, opts, NULL);
    if (rc >= 0) return rc;
    Db *db;
    rc = cli_open_db(E, dbflag, DB_OPEN_READONLY, &db);
    if (rc) return rc;
    Err err = {0};
    RmSet s;
    AgreementReport r;
    DemoAgreement d;
    rc = rm_set_load(db, &f, &s, &err);
    if (!rc && (rc = rm_demo_agreement(db, &f, &d, &err))) rm_set_free(&s);
    db_close(db);
    if (rc) return cli_fail(E, &err);
    rc = rm_agreement(&s, &r, &err);
    if (!rc) {
        if (json)
            print_json(&r, &d);
        else
            print_text(&r);
        if (!json && d.demos) demos_text(&d);
        rm_agreement_free(&r);
    }
    rm_demo_agreement_free(&d);
    rm_set_free(&s);
    return rc ? cli_fail(E, &err) : EXIT_OK;
}
