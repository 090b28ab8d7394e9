/* rlhf eval-rm: how often a reward model prefers the answer labelers ranked
 * higher, on the prompts train-rm held out, beside how often the labelers
 * agree with each other on those prompts. */
#include "annotator/rules.h"
#include "cli/cli.h"
#include "cli/filter.h"
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
    "  --json             the report as one JSON object\n" CLI_HELP_FILTER CLI_HELP_COMMON,
    exec_eval_rm};

static const struct cmd_entry *E = &cmd_eval_rm_entry;

/* The RM against a rule without noise on the selected groups' answers: every
 * pair of answers of a prompt that the rule scores apart counts once, however
 * many labelers ranked the prompt. */
static void judge_accuracy(const Rule *judge, const PrefSet *s, const int64_t *first,
                           const float *rewards, const unsigned char *sel, RmAcc *out) {
    memset(out, 0, sizeof *out);
    int64_t *seen = malloc(sizeof(int64_t) * (size_t)(s->n ? s->n : 1));
    int n_seen = 0;
    for (int g = 0; g < s->n; g++) {
        const PrefGroup *pg = &s->g[g];
        if (sel && !sel[g]) continue;
        int dup = 0;
        for (int i = 0; seen && pg->prompt_id && i < n_seen && !dup; i++) dup = seen[i] == pg->prompt_id;
        if (dup) continue;
        if (seen && pg->prompt_id) seen[n_seen++] = pg->prompt_id;
        double sc[64];
        int n = pg->n < 64 ? pg->n : 64;
        for (int i = 0; i < n; i++) sc[i] = judge->score(pg->prompt, pg->answers[i]);
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++) {
                if (fabs(sc[i] - sc[j]) < 1e-9) continue;
                float ri = rewards[first[g] + i], rj = rewards[first[g] + j];
                out->pairs++;
                out->correct += (sc[i] > sc[j]) == (ri > rj) && ri != rj;
            }
    }
    free(seen);
    out->acc = out->pairs ? (double)out->correct / out->pairs : NAN;
    rm_wilson((double)out->correct, (double)out->pairs, 1.96, &out->lo, &out->hi);
}

static cJSON *acc_json(const RmAcc *a) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "pairs", (double)a->pairs);
    cJSON_AddNumberToObject(o, "correct", (double)a->correct);
    if (a->pairs) {
        cJSON_AddNumberToObject(o, "accuracy", a->acc);
        cJSON_AddNumberToObject(o, "ci95_low", a->lo);
        cJSON_AddNumberToObject(o, "ci95_high", a->hi);
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
    printf("%s on %s: %lld %sprompts, %lld rankings\n", rm, source, (long long)r->prompts,
           all ? "" : "held-out ", (long long)r->groups);
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

static int exec_eval_rm(int argc, char **argv) {
    static const struct option opts[] = {
        CLI_OPT_DB, CLI_OPT_HELP, CLI_FILTER_OPTS,
        {"rm", required_argument, NULL, 'r'}, {"data", required_argument, NULL, 'd'},
        {"val-frac", required_argument, NULL, 'v'}, {"all", no_argument, NULL, 'a'},
        {"min-agreement", required_argument, NULL, 'A'}, {"tokenizer", required_argument, NULL, 'k'},
        {"template", required_argument, NULL, 'T'}, {"batch", required_argument, NULL, 'b'},
        {"json", no_argument, NULL, 'j'}, {"judge", required_argument, NULL, 'J'}, CLI_OPT_END};
    const Rule *judge = NULL;
    const char *dbflag = NULL, *rm = NULL, *data = NULL, *tok_path = NULL, *template = NULL;
    PrefLoadOptions lo = {db_ranking_filter_default(), -1, 0.1};
    long batch = 16;
    int all = 0, json = 0, filtered = 0, c;
    while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        int fr = cli_filter_opt(E, c, optarg, &lo.filter);
        if (fr == 1) {
            filtered = 1;
            continue;
        }
        if (fr) return fr;
        switch (c) {
        case 'D': dbflag = optarg; break;
        case 'r': rm = optarg; break;
        case 'd': data = optarg; break;
        case 'k': tok_path = optarg; break;
        case 'T': template = optarg; break;
        case 'a': all = 1; break;
        case 'j': json = 1; break;
        case 'J':
            if (!(judge = rule_find(optarg)))
                return cli_usage_error(E, "--judge: no rule named '%s' (see rlhf label --list-rules)", optarg);
            break;
        case 'v': if (cli_parse_double(E, "--val-frac", optarg, 0, 0.9, &lo.val_frac)) return EXIT_USAGE; break;
        case 'A':
            if (cli_parse_double(E, "--min-agreement", optarg, 0, 1, &lo.min_agreement)) return EXIT_USAGE;
            filtered = 1;
            break;
        case 'b': if (cli_parse_long(E, "--batch", optarg, 1, 4096, &batch)) return EXIT_USAGE; break;
        case 'h': return cli_help(E);
        default: return cli_bad_option(E, argv, c);
        }
    }
    if (optind < argc) return cli_usage_error(E, "unexpected argument '%s'", argv[optind]);
    if (!rm) return cli_usage_error(E, "--rm RM is required");
    if (data && filtered) return cli_usage_error(E, "--data FILE takes no store filters");
    if (!data && !(lo.val_frac > 0) && !all)
        return cli_usage_error(E, "--val-frac 0 holds nothing out: pass --all to evaluate on every prompt");
    if (data) all = 1;
    Db *db = NULL;
    Err err = {0};
    int rc;
    if (!data || cli_db_path(dbflag)) {
        if ((rc = cli_open_db(E, dbflag, DB_OPEN_READONLY, &db))) return rc;
    }
    RmScorer sc;
    PrefSet set = {0};
    RmData d = {0};
    RmSet rs = {0};
    RmEvalReport rep = {0};
    int64_t *aid = NULL, na = 0;
    double *arate = NULL;
    float *rewards = NULL;
    unsigned char *sel = NULL;
    SeqExample *ex = NULL;
    int64_t *pos = NULL;
    rc = rm_scorer_open_in(db, &sc, rm, tok_path, template, (int)batch, &err);
    if (rc) goto out_noscorer;
    rc = data ? prefs_load_file(data, lo.val_frac, &set, &err) : prefs_load_store(db, &lo, &set, &err);
    if (!rc && !data && set.n == 0)
        rc = err_set(&err, RLHF_EINVAL, "no rankings to evaluate on%s", filtered ? " with these filters" : "");
    if (!rc) rc = rm_data_encode(&d, &set, sc.tok, sc.template, sc.m.cfg.seq_len, &err);
    if (!rc) {
        sel = calloc((size_t)(set.n ? set.n : 1), 1);
        rewards = calloc((size_t)(d.n_ex ? d.n_ex : 1), sizeof *rewards);
        ex = malloc(sizeof *ex * (size_t)(d.n_ex ? d.n_ex : 1));
        pos = malloc(sizeof *pos * (size_t)(d.n_ex ? d.n_ex : 1));
        if (!sel || !rewards || !ex || !pos) rc = err_set(&err, RLHF_ENOMEM, "out of memory");
    }
    int64_t m = 0, groups = 0;
    for (int g = 0; !rc && g < set.n; g++) {
        sel[g] = all || set.g[g].val;
        groups += sel[g];
        for (int k = 0; sel[g] && k < set.g[g].n; k++, m++)
            ex[m] = d.ex[d.first[g] + k], pos[m] = d.first[g] + k;
    }
    if (!rc && groups == 0)
        rc = err_set(&err, RLHF_EINVAL,
                     "none of the %d ranked prompts falls in the held-out share (--val-frac %g); "
                     "pass --all or a larger --val-frac",
                     set.n, lo.val_frac);
    if (!rc) {
        float *out = malloc(sizeof(float) * (size_t)(m ? m : 1));
        if (!out) rc = err_set(&err, RLHF_ENOMEM, "out of memory");
        if (!rc) rc = rm_score_examples(&sc, ex, (int)m, out, &err);
        for (int64_t i = 0; !rc && i < m; i++) rewards[pos[i]] = out[i];
        free(out);
    }
    if (!rc && !data) {
        /* every labeler of the prompt, whatever --labeler says, as export */
        RankingFilter f = lo.filter;
        f.labeler = NULL;
        rc = rm_set_load(db, &f, &rs, &err);
        if (!rc) rc = rm_prompt_agreement(&rs, &aid, &arate, &na, &err);
    }
    if (!rc) rc = rm_eval_report(&set, d.first, rewards, sel, aid, arate, na, &rep, &err);
    RmAcc by_rule = {0};
    if (!rc && judge) judge_accuracy(judge, &set, d.first, rewards, sel, &by_rule);
    if (!rc && !data) rc = rm_eval_labeler_agreement(&rs, &rep, &err);
    if (!rc) {
        const char *source = data ? data : "the store's rankings";
        if (json)
            print_json(rm, source, &rep, &set, data ? 0 : lo.val_frac, all, judge, &by_rule);
        else
            print_text(rm, source, &rep, &set, all, judge, &by_rule);
        if (d.cut)
            fprintf(stderr, "eval-rm: %lld answers had their prompt cut from the left to fit the context\n",
                    (long long)d.cut);
    }
    rm_eval_report_free(&rep);
    rm_set_free(&rs);
    free(aid), free(arate), free(rewards), free(sel), free(ex), free(pos);
    rm_data_free(&d);
    prefs_free(&set);
    rm_scorer_close(&sc);
out_noscorer:
    if (db) db_close(db);
    return rc ? cli_fail(E, &err) : EXIT_OK;
}
