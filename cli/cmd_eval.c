/* rlhf eval: two policies on held-out prompts, judged by a simulated labeler
 * and a reward model (the engine is rl/eval.h). */
#include "cli/cli.h"
#include "cli/opts.h"
#include "cli/sampling.h"
#include "db/prompts.h"
#include "annotator/rank_state.h"
#include "rl/eval.h"
#include "util/sys.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int exec_eval(int argc, char **argv);

const struct cmd_entry cmd_eval_entry = {
    "eval", "--a POLICY --b POLICY [--judge RULE | --judge-cmd CMD] [--rm RM] [options]",
    "compare two policies on held-out prompts: win rates, reward, KL, length",
    "POLICY is a checkpoint or the name of a registered model. Each side answers each\n"
    "prompt through `rlhf gen`'s path: N samples (draws) per prompt, each stored as a\n"
    "draw of a candidate of the side's model (identical answers are one candidate\n"
    "drawn several times) and reused when eval runs again (the first N draws a model\n"
    "has for a prompt count, whatever settings made them). Every figure counts the N\n"
    "samples, not the distinct answers: an answer drawn 3 times weighs 3. The judge\n"
    "(a simulated labeler) ranks, per prompt, the distinct answers of every policy\n"
    "evaluated on it so far, and that ranking is stored,\n"
    "so `rlhf elo --by policy` rates every policy of every round. The summary is kept\n"
    "as a run of kind eval with metrics a.win_rate, b.kl, ... (for reports).\n\n"
    "  --a POLICY, --b POLICY  the two sides (the table reports A against B)\n"
    "  --a-best-of N, --b-best-of N  the side is best-of-N of its policy by --rm,\n"
    "                  registered as its own policy \"<policy>+boN\"\n"
    "  --split S       held-out prompts of split S (default test; \"\" for all)\n"
    "  --limit N       the first N prompts of the split (default: all)\n"
    "  --samples N     samples per prompt per side (default 1, at most 32; --n N is\n"
    "                  the same); a prompt with more distinct answers than a ranking\n"
    "                  holds (32) is judged by the rule without storing its ranking\n"
    "                  (an external judge cannot: the run fails)\n"
    "  --judge RULE    the simulated labeler's rule (default demo; see label --list-rules)\n"
    "  --judge-cmd CMD an external judge, as label --auto-cmd\n"
    "  --judge-name NAME  the judge's labeler name (default judge:RULE, judge:cmd:PROGRAM)\n"
    "  --noise X       the judge's noise, as label --noise (default 0: the rule itself)\n"
    "  --timeout SECS  how long an external judge may take per prompt (default 30)\n"
    "  --rm RM         reward model: RM win rate and mean reward (needed for best-of)\n"
    "  --ref CKPT      reference for the KL (default: each side's nearest ancestor of\n"
    "                  kind sft in the registry, itself included; none: no KL)\n"
    "  --tokenizer TOK tokenizer.bin (default: the one inside each checkpoint)\n"
    "sampling, shared by both sides (the defaults are gen's, so gen's candidates with\n"
    "the same seed are the same answers):\n"
    "  --temperature T (default 1.0)  --top-k K (default 0: off)  --top-p P (default 1)\n"
    "  --max-tokens N  (default 64)   --seed S (default 1)\n"
    "                  (a rerun reuses the draws made with the same sampling and seed;\n"
    "                  other settings draw their own)\n"
    "  --batch N       examples per forward pass for the RM and the KL (default 8)\n"
    "  --known-words FILE[,FILE...]  the training data's text: report the share of\n"
    "                  samples with a word (a run of letters, any case) none of the\n"
    "                  files has, such as a garbled one\n"
    "  --json          one JSON object instead of the table\n"
    "  --row           one tab-separated line instead: B's name, judge win rate, its\n"
    "                  95% interval (low, high), B's mean reward, B's KL, A's and B's\n"
    "                  judge scores, A's and B's distinct answers per prompt, shares\n"
    "                  of samples with template text, and with unknown words (for\n"
    "                  scripts; - for a figure not known)\n"
    "  --progress      show progress even when stderr is not a terminal\n"
    "A win rate is the mean over prompts of the share of the N x N sample pairs won,\n"
    "ties half; its 95% interval is a percentile bootstrap over prompts (2000\n"
    "resamples of the prompts with replacement, fixed seed: reproducible); --json\n"
    "also gives Wilson's interval over prompts. KL is the sampled estimate: the mean\n"
    "over prompts and samples of log pi(y) - log pi_ref(y) on the token ids the policy\n"
    "sampled (stop-string tokens included, </s> only when sampled), both at the\n"
    "sampling temperature (logits / T, as PPO); a best-of-N side adds\n"
    "log N - (N-1)/N, the bound on KL(best-of-N || pi). The RM scores an answer cut at\n"
    "--max-tokens as unfinished (no </s>), as PPO does. Template text: a line of\n"
    "the side's chat template around {prompt}, blanks trimmed (\"Human:\",\n"
    "\"Assistant:\", \"<|im_end|>\"), inside an answer: the model ran on into a turn.\n" CLI_HELP_COMMON,
    exec_eval};

static const struct cmd_entry *E = &cmd_eval_entry;

static void cell(char *buf, size_t n, const char *fmt, double v) {
    if (isnan(v))
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, fmt, v);
}

static void print_row(const EvalResult *r) {
    const EvalSide *a = &r->side[0], *b = &r->side[1];
    double v[13] = {b->win,         b->win_lo,       b->win_hi,
                    b->reward,      b->kl,           a->judge_score,
                    b->judge_score, a->distinct_per_prompt, b->distinct_per_prompt,
                    a->leak,        b->leak,         a->unknown,
                    b->unknown};
    printf("%s", b->name);
    for (int i = 0; i < 13; i++) {
        char c[32];
        cell(c, sizeof c, "%.4f", v[i]);
        printf("\t%s", c);
    }
    printf("\n");
}

static void print_table(const EvalResult *r, const EvalOptions *o) {
    printf("eval on %lld prompts%s%s, %d sample%s per prompt per side (temperature %g, top-k %d, "
           "top-p %g, max %d tokens, seed %llu)\n",
           (long long)r->prompts, o->split ? " of split " : "", o->split ? o->split : "", o->n,
           o->n == 1 ? "" : "s", o->sp.temperature, o->sp.top_k, o->sp.top_p, o->sp.max_tokens,
           (unsigned long long)o->seed);
    int w = 6;
    for (int k = 0; k < 2; k++)
        w = (int)strlen(r->side[k].name) > w ? (int)strlen(r->side[k].name) : w;
    if (w > 40) w = 40;
    printf("side  %-*s  %-22s  %-22s  %8s  %8s  %7s  %6s\n", w, "policy", "judge win [95% CI]",
           "RM win [95% CI]", "reward", "KL", "length", "judge");
    for (int k = 0; k < 2; k++) {
        const EvalSide *s = &r->side[k];
        char win[48], rmw[48], rew[24], kl[24], len[24], js[24];
        snprintf(win, sizeof win, "%.3f [%.3f, %.3f]", s->win, s->win_lo, s->win_hi);
        if (isnan(s->rm_win))
            snprintf(rmw, sizeof rmw, "-");
        else
            snprintf(rmw, sizeof rmw, "%.3f [%.3f, %.3f]", s->rm_win, s->rm_lo, s->rm_hi);
        cell(rew, sizeof rew, "%.4f", s->reward);
        cell(kl, sizeof kl, "%.3f", s->kl);
        cell(len, sizeof len, "%.1f", s->length);
        cell(js, sizeof js, "%.3f", s->judge_score);
        printf("%-4s  %-*.*s  %-22s  %-22s  %8s  %8s  %7s  %6s\n", k ? "B" : "A", w, w, s->name,
               win, rmw, rew, kl, len, js);
    }
    printf("over every sample (A: %lld samples, %lld distinct; B: %lld, %lld distinct); "
           "95%% CI: bootstrap over prompts\n",
           (long long)r->side[0].answers, (long long)r->side[0].distinct,
           (long long)r->side[1].answers, (long long)r->side[1].distinct);
    for (int k = 0; k < 2; k++) {
        const EvalSide *s = &r->side[k];
        printf("%s: %.2f distinct answers per prompt, %.1f%% of samples with chat template text",
               s->name, s->distinct_per_prompt, 100 * s->leak);
        if (!isnan(s->unknown))
            printf(", %.1f%% with a word the known words lack", 100 * s->unknown);
        printf("\n");
    }
    printf("judge %s: %.1f%% of sample pairs tied", r->judge, 100 * r->judge_ties);
    if (r->rm) printf("; RM %s: %.1f%% tied", r->rm, 100 * r->rm_ties);
    printf("\n");
    for (int k = 0; k < 2; k++) {
        const EvalSide *s = &r->side[k];
        if (s->ref)
            printf("KL of %s from %s: %.3f sampled%s", s->name, s->ref, s->kl_policy,
                   s->best_of ? "" : "\n");
        else
            printf("KL of %s: no reference (give --ref)\n", s->name);
        if (s->ref && s->best_of) printf(" + %.3f for best-of-%d\n", s->kl_best_of, s->best_of);
    }
}

static void add_num(cJSON *o, const char *k, double v) {
    if (isnan(v))
        cJSON_AddNullToObject(o, k);
    else
        cJSON_AddNumberToObject(o, k, v);
}

static void add_ci(cJSON *o, const char *k, double lo, double hi) {
    if (isnan(lo)) {
        cJSON_AddNullToObject(o, k);
        return;
    }
    cJSON *ci = cJSON_AddArrayToObject(o, k);
    cJSON_AddItemToArray(ci, cJSON_CreateNumber(lo));
    cJSON_AddItemToArray(ci, cJSON_CreateNumber(hi));
}

/* The result as one JSON object (caller frees); NULL when out of memory. */
static char *result_json(const EvalResult *r, const EvalOptions *o) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "prompts", (double)r->prompts);
    if (o->split)
        cJSON_AddStringToObject(j, "split", o->split);
    else
        cJSON_AddNullToObject(j, "split");
    cJSON_AddNumberToObject(j, "answers_per_prompt", o->n);
    cJSON_AddNumberToObject(j, "samples_per_prompt", o->n);
    cJSON *sp = cJSON_AddObjectToObject(j, "sampling");
    cJSON_AddNumberToObject(sp, "temperature", o->sp.temperature);
    cJSON_AddNumberToObject(sp, "top_k", o->sp.top_k);
    cJSON_AddNumberToObject(sp, "top_p", o->sp.top_p);
    cJSON_AddNumberToObject(sp, "max_tokens", o->sp.max_tokens);
    cJSON_AddNumberToObject(sp, "seed", (double)o->seed);
    cJSON_AddStringToObject(j, "judge", r->judge);
    cJSON_AddNumberToObject(j, "judge_noise", o->noise);
    cJSON_AddNumberToObject(j, "judge_ties", r->judge_ties);
    if (r->rm)
        cJSON_AddStringToObject(j, "rm", r->rm);
    else
        cJSON_AddNullToObject(j, "rm");
    add_num(j, "rm_ties", r->rm_ties);
    cJSON_AddStringToObject(j, "interval", "bootstrap95 over prompts");
    cJSON_AddNumberToObject(j, "bootstrap_resamples", o->bootstrap);
    cJSON_AddNumberToObject(j, "rankings_stored", (double)r->rankings_new);
    cJSON_AddNumberToObject(j, "prompts_judged_unstored", (double)r->prompts_unstored);
    cJSON_AddNumberToObject(j, "seconds", r->seconds);
    cJSON *sides = cJSON_AddArrayToObject(j, "sides");
    for (int k = 0; k < 2; k++) {
        const EvalSide *s = &r->side[k];
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "side", k ? "b" : "a");
        cJSON_AddStringToObject(x, "model", s->name);
        cJSON_AddStringToObject(x, "checkpoint", s->policy);
        cJSON_AddNumberToObject(x, "best_of", s->best_of);
        cJSON_AddNumberToObject(x, "answers", (double)s->answers);
        cJSON_AddNumberToObject(x, "distinct_answers", (double)s->distinct);
        cJSON_AddNumberToObject(x, "new_answers", (double)s->new_answers);
        cJSON_AddNumberToObject(x, "win_rate", s->win);
        add_ci(x, "win_ci", s->win_lo, s->win_hi);
        add_ci(x, "win_wilson_ci", s->wilson_lo, s->wilson_hi);
        add_num(x, "rm_win_rate", s->rm_win);
        add_ci(x, "rm_win_ci", s->rm_lo, s->rm_hi);
        add_num(x, "mean_reward", s->reward);
        if (s->ref)
            cJSON_AddStringToObject(x, "ref", s->ref);
        else
            cJSON_AddNullToObject(x, "ref");
        add_num(x, "kl", s->kl);
        add_num(x, "kl_policy", s->kl_policy);
        cJSON_AddNumberToObject(x, "kl_best_of", s->kl_best_of);
        add_num(x, "mean_length", s->length);
        add_num(x, "judge_score", s->judge_score);
        add_num(x, "distinct_per_prompt", s->distinct_per_prompt);
        add_num(x, "template_leaks", s->leak);
        add_num(x, "unknown_words", s->unknown);
        cJSON_AddItemToArray(sides, x);
    }
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return text;
}

/* The checks that relate one option to another (and name the judge's rule). */
static int check(EvalOptions *o, const char *rule_name) {
    if (!o->side[0].policy || !o->side[1].policy)
        return cli_usage_error(E, "--a POLICY and --b POLICY are required");
    if (rule_name && o->judge_cmd)
        return cli_usage_error(E, "--judge and --judge-cmd exclude each other");
    if (o->judge_cmd && !*o->judge_cmd) return cli_usage_error(E, "--judge-cmd: empty command");
    if (o->judge_cmd && o->noise > 0) return cli_usage_error(E, "--noise is for --judge RULE");
    if (!o->judge_cmd && !(o->rule = rule_find(rule_name ? rule_name : "demo")))
        return cli_usage_error(E, "--judge: no rule '%s' (rlhf label --list-rules lists them)",
                               rule_name);
    if (o->split && !db_valid_split(o->split))
        return cli_usage_error(E, "--split: '%s' is not a split name", o->split);
    if ((o->side[0].best_of || o->side[1].best_of) && !o->rm)
        return cli_usage_error(E, "--a-best-of/--b-best-of need a reward model (--rm RM)");
    if (o->judge_name && !*o->judge_name) return cli_usage_error(E, "--judge-name: empty name");
    if (o->known_words && !*o->known_words) return cli_usage_error(E, "--known-words: no file");
    return -1;
}

/* Options into *o (and *dbflag, *json: 1 JSON, 2 the row); -1 to go on, else the exit status. */
static int parse(int argc, char **argv, EvalOptions *o, const char **dbflag, int *json) {
    const char *rule_name = NULL;
    long limit = 0, timeout = 0, seed;
    *o = eval_options_default();
    seed = (long)o->seed;
    CliOpt sampling[CLI_S_N + 1];
    cli_sampling_table(&o->sp, &seed, sampling);
    const CliOpt opts[] = {CLI_O_DB(dbflag),
                           CLI_O_STR("a", &o->side[0].policy),
                           CLI_O_STR("b", &o->side[1].policy),
                           CLI_O_INT("a-best-of", &o->side[0].best_of, 2, 64),
                           CLI_O_INT("b-best-of", &o->side[1].best_of, 2, 64),
                           CLI_O_STR("split", &o->split),
                           CLI_O_LONG("limit", &limit, 1, 1L << 40),
                           CLI_O_INT("samples", &o->n, 1, 32),
                           CLI_O_INT("n", &o->n, 1, 32),
                           CLI_O_STR("judge", &rule_name),
                           CLI_O_STR("judge-cmd", &o->judge_cmd),
                           CLI_O_STR("judge-name", &o->judge_name),
                           CLI_O_DBL("noise", &o->noise, 0, 100),
                           CLI_O_LONG("timeout", &timeout, 1, 3600),
                           CLI_O_STR("rm", &o->rm),
                           CLI_O_STR("ref", &o->ref),
                           CLI_O_STR("tokenizer", &o->tok_path),
                           CLI_O_TABLE(sampling),
                           CLI_O_INT("batch", &o->batch, 1, 256),
                           CLI_O_STR("known-words", &o->known_words),
                           CLI_O_SET("json", json, 1),
                           CLI_O_SET("row", json, 2),
                           CLI_O_FLAG("progress", &o->progress),
                           CLI_O_END};
    *json = 0;
    int rc = cli_opts_parse(E, argc, argv, opts, NULL);
    if (rc >= 0) return rc;
    if (o->split && !*o->split) o->split = NULL; /* "": every split */
    if (limit) o->limit = limit;
    if (timeout) o->judge_timeout_ms = (int)timeout * 1000;
    o->seed = (uint64_t)seed;
    return check(o, rule_name);
}

static int exec_eval(int argc, char **argv) {
    EvalOptions o;
    const char *dbflag = NULL;
    int json;
    int rc = parse(argc, argv, &o, &dbflag, &json);
    if (rc >= 0) return rc;
    Db *db;
    rc = cli_open_db(E, dbflag, DB_OPEN_EXISTING, &db);
    if (rc) return rc;
    Err err = {0};
    EvalResult r;
    sys_catch_interrupts();
    rc = eval_run(db, &o, &r, &err);
    char *text = rc ? NULL : result_json(&r, &o);
    if (!rc && !text) rc = err_set(&err, RLHF_ENOMEM, "out of memory");
    /* the summary is kept as a run of kind eval, for reports */
    if (!rc) rc = eval_record(db, &r, text, &err);
    db_close(db);
    if (rc) {
        free(text);
        eval_result_free(&r);
        fprintf(stderr, "rlhf eval: %s\n", err.msg);
        if (rc == RLHF_EINTR)
            fprintf(stderr,
                    "(answers and judged prompts stored so far are kept; run again to go on)\n");
        return EXIT_FAIL;
    }
    if (json == 2)
        print_row(&r);
    else if (json)
        printf("%s\n", text);
    else
        print_table(&r, &o);
    free(text);
    fprintf(stderr, "eval: %lld + %lld new answers, %lld judge rankings stored, in %.1fs\n",
            (long long)r.side[0].new_answers, (long long)r.side[1].new_answers,
            (long long)r.rankings_new, r.seconds);
    if (r.prompts_unstored)
        fprintf(stderr,
                "eval: %lld prompts had more distinct answers than a ranking holds (%d): the rule "
                "judged them all and no ranking of them was stored (elo --by policy leaves them "
                "out)\n",
                (long long)r.prompts_unstored, RS_MAX_CAND);
    eval_result_free(&r);
    return EXIT_OK;
}
