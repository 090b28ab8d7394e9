/* rlhf eval-rm: how often a reward model prefers the answer labelers ranked
 * higher, on the prompts train-rm held out, beside how often the labelers
 * agree with each other on those prompts. */
#include "annotator/rules.h"
#include "cli/cli.h"
#include "cli/filter.h"
#include "cli/opts.h"
#include "db/registry.h"
#include "rm/agreement.h"
#include "rm/prefs.h"
#include "rm/rm_eval.h"
#include "rm/rm_score.h"
#include "rm/rm_train.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int exec_eval_rm(int argc, char **argv);

const struct cmd_entry cmd_eval_rm_entry = {
    "eval-rm", "--rm RM [--data FILE | filters] [--json]",
    "reward-model accuracy on held-out rankings, beside the labelers' agreement",
    "  --rm RM            the reward model (from `rlhf train-rm`)\n"
    "  --data FILE        accuracy on every pair of a pairs or HH JSONL file instead\n"
    "  --val-frac F       the held-out share train-rm used (default 0.1: the same split)\n"
    "  --all              every ranked prompt, not only the held-out ones\n"
    "  --min-agreement X  only prompts whose labelers agree on at least a share X of pairs\n"
    "  --tokenizer TOK    tokenizer.bin when RM carries none\n"
    "  --template T       chat template (default: RM's in the registry, else the default)\n"
    "  --batch N          answers per forward pass (default 16)\n"
    "  --judge RULE       also the accuracy against a rule without noise (label --list-rules)\n"
    "                     on the same answers: how well the RM learned the task itself\n"
    "  --json             the report as one JSON object\n"
    "Accuracy counts every pair of a ranking the labeler ordered (ties left out); its\n"
    "95% interval is a percentile bootstrap over prompts (2000 resamples of the\n"
    "prompts with replacement, a prompt's pairs kept together, a fixed seed), since\n"
    "the K(K-1)/2 pairs of one prompt are not independent (--json also gives Wilson's\n"
    "interval over pairs). The labelers' agreement has Wilson's interval over pairs.\n"
    CLI_HELP_FILTER CLI_HELP_COMMON,
    exec_eval_rm};

static const struct cmd_entry *E = &cmd_eval_rm_entry;

/* The RM against a rule without noise on the selected groups' answers: every
 * pair of answers of a prompt that the rule scores apart counts once, however
 * many labelers ranked the prompt. */
static void judge_accuracy(const Rule *judge, const PrefSet *s, const int64_t *first,
                           const float *rewards, const unsigned char *sel, RmAcc *out) {
    memset(out, 0, sizeof *out);
    int64_t *seen = malloc(sizeof(int64_t) * (size_t)(s->n ? s->n : 1));
    double *pc = calloc((size_t)(s->n ? s->n : 1), sizeof *pc),
           *pp = calloc((size_t)(s->n ? s->n : 1), sizeof *pp);
    int n_seen = 0, units = 0;
    for (int g = 0; g < s->n; g++) {
        const PrefGroup *pg = &s->g[g];
        if (sel && !sel[g]) continue;
        int dup = 0;
        for (int i = 0; seen && pg->prompt_id && i < n_seen && !dup; i++) dup = seen[i] == pg->prompt_id;
        if (dup) continue;
        if (seen && pg->prompt_id) seen[n_seen++] = pg->prompt_id;
        double sc[64];
        int n = pg->n < 64 ? pg->n : 64, before = (int)out->pairs, ok0 = (int)out->correct;
        for (int i = 0; i < n; i++) sc[i] = judge->score(pg->prompt, pg->answers[i]);
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++) {
                if (fabs(sc[i] - sc[j]) < 1e-9) continue;
                float ri = rewards[first[g] + i], rj = rewards[first[g] + j];
                out->pairs++;
                out->correct += (sc[i] > sc[j]) == (ri > rj) && ri != rj;
            }
        if (pc && pp && out->pairs > before)
            pc[units] = (double)(out->correct - ok0), pp[units++] = (double)(out->pairs - before);
    }
    rm_acc_finish(out);
    if (pc && pp) rm_acc_bootstrap(out, pc, pp, units);
    free(seen), free(pc), free(pp);
}

static cJSON *acc_json(const RmAcc *a) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "pairs", (double)a->pairs);
    cJSON_AddNumberToObject(o, "correct", (double)a->correct);
    if (a->pairs) {
        cJSON_AddNumberToObject(o, "accuracy", a->acc);
        cJSON_AddNumberToObject(o, "ci95_low", a->lo);
        cJSON_AddNumberToObject(o, "ci95_high", a->hi);
        cJSON_AddStringToObject(o, "interval", a->boot ? "bootstrap over prompts" : "wilson");
        cJSON_AddNumberToObject(o, "wilson_low", a->wlo);
        cJSON_AddNumberToObject(o, "wilson_high", a->whi);
    } else
        cJSON_AddNullToObject(o, "accuracy");
    return o;
}

static void acc_line(const char *label, const RmAcc *a, const char *extra) {
    if (!a->pairs) {
        printf("  %-22s no pairs%s\n", label, extra);
        return;
    }
    printf("  %-22s %5.1f%%  [%4.1f, %4.1f]  %6lld pairs%s\n", label, 100 * a->acc, 100 * a->lo,
           100 * a->hi, (long long)a->pairs, extra);
}

static void print_json(const char *rm, const char *source, const RmEvalReport *r, const PrefSet *s,
                       double val_frac, int all, const Rule *judge, const RmAcc *by_rule) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "rm", rm);
    cJSON_AddStringToObject(o, "data", source);
    cJSON_AddStringToObject(o, "prompts_evaluated", all ? "all" : "held-out");
    cJSON_AddNumberToObject(o, "val_frac", val_frac);
    cJSON_AddNumberToObject(o, "prompts", (double)r->prompts);
    cJSON_AddNumberToObject(o, "rankings", (double)r->groups);
    cJSON_AddItemToObject(o, "accuracy", acc_json(&r->all));
    cJSON *bl = cJSON_AddArrayToObject(o, "by_labeler");
    for (int i = 0; i < r->n_labelers; i++) {
        if (!r->by_labeler[i].pairs) continue;
        cJSON *x = acc_json(&r->by_labeler[i]);
        cJSON_AddStringToObject(x, "labeler", s->labelers[i]);
        cJSON_AddItemToArray(bl, x);
    }
    cJSON *ba = cJSON_AddArrayToObject(o, "by_agreement");
    for (int i = 0; i < RM_AGREE_N; i++) {
        if (!r->by_level[i].pairs) continue;
        cJSON *x = acc_json(&r->by_level[i]);
        cJSON_AddStringToObject(x, "level", rm_agree_level_name(i));
        cJSON_AddNumberToObject(x, "prompts", (double)r->prompts_by_level[i]);
        cJSON_AddItemToArray(ba, x);
    }
    cJSON *la = acc_json(&r->labelers);
    cJSON_DeleteItemFromObject(la, "correct");
    cJSON_AddNumberToObject(la, "agreed", (double)r->labelers.correct);
    cJSON_AddItemToObject(o, "labeler_agreement", la);
    if (judge) {
        cJSON *j = acc_json(by_rule);
        cJSON_AddStringToObject(j, "rule", judge->name);
        cJSON_AddItemToObject(o, "judge", j);
    }
    char *txt = cJSON_PrintUnformatted(o);
    if (txt) puts(txt);
    free(txt);
    cJSON_Delete(o);
}

static void print_text(const char *rm, const char *source, const RmEvalReport *r, const PrefSet *s,
                       int all, const Rule *judge, const RmAcc *by_rule) {
    printf("%s on %s: %lld %sprompts, %lld rankings (95%% CI: bootstrap over prompts; the\n"
           "labelers' agreement: Wilson over pairs)\n",
           rm, source, (long long)r->prompts, all ? "" : "held-out ", (long long)r->groups);
    acc_line("accuracy", &r->all, "");
    if (r->labelers.pairs) {
        char extra[80];
        snprintf(extra, sizeof extra, " shared by two labelers");
        acc_line("labelers agree", &r->labelers, extra);
    }
    if (judge) {
        char label[64];
        snprintf(label, sizeof label, "rule %s (no noise)", judge->name);
        acc_line(label, by_rule, " of answers the rule tells apart");
    }
    int any = 0;
    for (int i = 0; i < r->n_labelers; i++) any += r->by_labeler[i].pairs > 0;
    if (any) {
        printf("by labeler (the RM agrees with their rankings):\n");
        for (int i = 0; i < r->n_labelers; i++)
            if (r->by_labeler[i].pairs) acc_line(s->labelers[i], &r->by_labeler[i], "");
    }
    if (r->n_prompt_ids) {
        printf("by labelers' agreement on the prompt:\n");
        for (int i = 0; i < RM_AGREE_N; i++) {
            char extra[64];
            snprintf(extra, sizeof extra, " (%lld prompts)", (long long)r->prompts_by_level[i]);
            if (r->by_level[i].pairs) acc_line(rm_agree_level_name(i), &r->by_level[i], extra);
        }
    }
}

/* What the command line asks for. */
typedef struct EvalRmArgs {
    const char *dbflag, *rm, *data, *tok_path, *template;
    const Rule *judge;
    PrefLoadOptions lo;
    long batch;
    int all, json, filtered;
} EvalRmArgs;

static int take_judge(const struct cmd_entry *e, const CliOpt *o, const char *arg) {
    if (!(*(const Rule **)o->ctx = rule_find(arg)))
        return cli_usage_error(e, "--judge: no rule named '%s' (see rlhf label --list-rules)", arg);
    return 0;
}

/* Options into a; -1 to go on, else the exit status. */
static int parse(int argc, char **argv, EvalRmArgs *a) {
    *a = (EvalRmArgs){.lo = {db_ranking_filter_default(), -1, 0.1}, .batch = 16};
    CliOpt filters[CLI_FILTER_N];
    cli_filter_table(&a->lo.filter, &a->filtered, filters);
    const CliOpt opts[] = {CLI_O_DB(&a->dbflag), CLI_O_TABLE(filters),
                           CLI_O_STR("rm", &a->rm), CLI_O_STR("data", &a->data),
                           CLI_O_DBL("val-frac", &a->lo.val_frac, 0, 0.9),
                           CLI_O_FLAG("all", &a->all),
                           CLI_O_SEEN(&a->filtered, CLI_O_DBL("min-agreement", &a->lo.min_agreement, 0, 1)),
                           CLI_O_STR("tokenizer", &a->tok_path), CLI_O_STR("template", &a->template),
                           CLI_O_LONG("batch", &a->batch, 1, 4096), CLI_O_FLAG("json", &a->json),
                           CLI_O_CALL("judge", take_judge, &a->judge), CLI_O_END};
    int rc = cli_opts_parse(E, argc, argv, opts, NULL);
    if (rc >= 0) return rc;
    if (!a->rm) return cli_usage_error(E, "--rm RM is required");
    if (a->data && a->filtered) return cli_usage_error(E, "--data FILE takes no store filters");
    if (!a->data && !(a->lo.val_frac > 0) && !a->all)
        return cli_usage_error(E, "--val-frac 0 holds nothing out: pass --all to evaluate on every prompt");
    if (a->data) a->all = 1;
    return -1;
}

/* The RM's reward of every answer of the selected groups (the held-out ones,
 * or all): sel[g] says which, rewards[d->first[g] + i] the reward (both
 * calloc'd, caller frees). */
static int score_selected(RmScorer *sc, const PrefSet *set, const RmData *d, const EvalRmArgs *a,
                          unsigned char **sel_out, float **rewards_out, Err *err) {
    int rc = RLHF_OK;
    unsigned char *sel = calloc((size_t)(set->n ? set->n : 1), 1);
    float *rewards = calloc((size_t)(d->n_ex ? d->n_ex : 1), sizeof *rewards);
    SeqExample *ex = malloc(sizeof *ex * (size_t)(d->n_ex ? d->n_ex : 1));
    int64_t *pos = malloc(sizeof *pos * (size_t)(d->n_ex ? d->n_ex : 1));
    if (!sel || !rewards || !ex || !pos) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    int64_t m = 0, groups = 0;
    for (int g = 0; !rc && g < set->n; g++) {
        sel[g] = a->all || set->g[g].val;
        groups += sel[g];
        for (int k = 0; sel[g] && k < set->g[g].n; k++, m++)
            ex[m] = d->ex[d->first[g] + k], pos[m] = d->first[g] + k;
    }
    if (!rc && groups == 0)
        rc = err_set(err, RLHF_EINVAL,
                     "none of the %d ranked prompts falls in the held-out share (--val-frac %g); "
                     "pass --all or a larger --val-frac",
                     set->n, a->lo.val_frac);
    if (!rc) {
        float *out = malloc(sizeof(float) * (size_t)(m ? m : 1));
        if (!out) rc = err_set(err, RLHF_ENOMEM, "out of memory");
        if (!rc) rc = rm_score_examples(sc, ex, (int)m, out, err);
        for (int64_t i = 0; !rc && i < m; i++) rewards[pos[i]] = out[i];
        free(out);
    }
    free(ex), free(pos);
    *sel_out = sel, *rewards_out = rewards;
    return rc;
}

/* The report on the rankings of the store, or of --data, printed. */
static int evaluate(Db *db, RmScorer *sc, const EvalRmArgs *a, Err *err) {
    PrefSet set = {0};
    RmData d = {0};
    RmSet rs = {0};
    RmEvalReport rep = {0};
    int64_t *aid = NULL, na = 0;
    double *arate = NULL;
    float *rewards = NULL;
    unsigned char *sel = NULL;
    int rc = a->data ? prefs_load_file(a->data, a->lo.val_frac, &set, err)
                     : prefs_load_store(db, &a->lo, &set, err);
    if (!rc && !a->data && set.n == 0)
        rc = err_set(err, RLHF_EINVAL, "no rankings to evaluate on%s", a->filtered ? " with these filters" : "");
    if (!rc) rc = rm_data_encode(&d, &set, sc->tok, sc->template, sc->m.cfg.seq_len, err);
    if (!rc) rc = score_selected(sc, &set, &d, a, &sel, &rewards, err);
    if (!rc && !a->data) {
        /* every labeler of the prompt, whatever --labeler says, as export */
        RankingFilter f = a->lo.filter;
        f.labeler = NULL;
        rc = rm_set_load(db, &f, &rs, err);
        if (!rc) rc = rm_prompt_agreement(&rs, &aid, &arate, &na, err);
    }
    if (!rc) rc = rm_eval_report(&set, d.first, rewards, sel, aid, arate, na, &rep, err);
    RmAcc by_rule = {0};
    if (!rc && a->judge) judge_accuracy(a->judge, &set, d.first, rewards, sel, &by_rule);
    if (!rc && !a->data) rc = rm_eval_labeler_agreement(&rs, &rep, err);
    if (!rc) {
        const char *source = a->data ? a->data : "the store's rankings";
        if (a->json)
            print_json(a->rm, source, &rep, &set, a->data ? 0 : a->lo.val_frac, a->all, a->judge, &by_rule);
        else
            print_text(a->rm, source, &rep, &set, a->all, a->judge, &by_rule);
        if (d.cut)
            fprintf(stderr, "eval-rm: %lld answers had their prompt cut from the left to fit the context\n",
                    (long long)d.cut);
    }
    rm_eval_report_free(&rep);
    rm_set_free(&rs);
    free(aid), free(arate), free(rewards), free(sel);
    rm_data_free(&d);
    prefs_free(&set);
    return rc;
}

static int exec_eval_rm(int argc, char **argv) {
    EvalRmArgs a;
    int rc = parse(argc, argv, &a);
    if (rc >= 0) return rc;
    Db *db = NULL;
    Err err = {0};
    if (!a.data || cli_db_path(a.dbflag)) {
        if ((rc = cli_open_db(E, a.dbflag, DB_OPEN_READONLY, &db))) return rc;
    }
    RmScorer sc;
    rc = rm_scorer_open_in(db, &sc, a.rm, a.tok_path, a.template, (int)a.batch, &err);
    if (!rc) {
        rc = evaluate(db, &sc, &a, &err);
        rm_scorer_close(&sc);
    }
    if (db) db_close(db);
    return rc ? cli_fail(E, &err) : EXIT_OK;
}
