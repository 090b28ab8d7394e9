/* rlhf label: rank candidates on the labeling screen, review one's rankings,
 * or let a simulated labeler (a rule or an external judge) do it; also the
 * project's labeling settings (flags, guidelines) and gold items. */
#include "annotator/autolabel.h"
#include "annotator/prompt_write.h"
#include "annotator/rules.h"
#include "annotator/session.h"
#include "annotator/tui.h"
#include "cli/cli.h"
#include "cli/opts.h"
#include "db/demos.h"
#include "db/scores.h"
#include "db/prompts.h"
#include "util/sys.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int exec_label(int argc, char **argv);

const struct cmd_entry cmd_label_entry = {
    "label",
    "--as NAME [--task T] [--overlap R] [--review] | --auto RULE|--auto-cmd CMD "
    "--as NAME [--noise X] [--seed S]",
    "rank candidates or write answers and prompts on the labeling screen, or with a simulated "
    "labeler",
    "  --as NAME          the labeler (default: $USER)\n"
    "  --task T           rank (default): order the candidates; write: write each prompt's\n"
    "                     answer in $VISUAL/$EDITOR (a demonstration, model human:NAME);\n"
    "                     prompt: write new prompts in the editor (see --kind)\n"
    "  --kind K           prompts written with --task prompt: plain (default), fewshot, user\n"
    "  --overlap R        rankings (or written answers) wanted per prompt, by different\n"
    "                     labelers (default 1)\n"
    "  --review           revisit your own rankings; a change is stored as a new version\n"
    "  --guidelines FILE  the text shown by 'g' (default: setting label.guidelines)\n"
    "  --gold-rate X      share of gold items mixed into the queue, 0..1 (default 0)\n"
    "  --split S          only prompts of split S (written prompts go to S; default train)\n"
    "  --lease SECS       a claim on a prompt expires after SECS without a key (default 1800)\n"
    "  --order O          which prompt comes next when ranking: queue (default, oldest first),\n"
    "                     random (a shuffle fixed by --seed), uncertain (smallest margin\n"
    "                     between the two best candidates by the RM first, or an ensemble's\n"
    "                     largest disagreement: score --rm A,B,C; needs `rlhf score`),\n"
    "                     disagreement (prompts whose rankings contradict each other first,\n"
    "                     each wanting one labeler more than --overlap)\n"
    "  --rm RM            with --order uncertain: whose margins (default: the newest RM scored)\n"
    "simulated labelers (no terminal needed; rankings are marked simulated):\n"
    "  --auto RULE        rank by a rule (see --list-rules)\n"
    "  --noise X          add X * N(0,1) to each rule score before ranking (default 0)\n"
    "  --seed S           seed of the noise (default 1)\n"
    "  --known-words FILE[,FILE...]  with --auto: the labeler knows the words of these\n"
    "                     files (the training data's text) and marks down an answer with\n"
    "                     any other word (misspelt or invented, \"plusree\"): 0.15 off its\n"
    "                     rule score, a clean sentence's weight in the demo rule\n"
    "  --auto-cmd CMD     rank by an external judge: CMD gets one JSON line per prompt on\n"
    "                     stdin and answers one line {\"scores\":[...]} or {\"order\":\"2>1=3\"}\n"
    "  --timeout SECS     how long the judge may take per prompt (default 30)\n"
    "  --limit N          rank (or write) at most N prompts\n"
    "  with --task write, --auto RULE writes each answer: the best candidate by the rule\n"
    "                     edited into the demo task's clean answer; --noise X is the\n"
    "                     chance of a hasty edit that keeps the candidate's first sentence\n"
    "  --list-rules       list the rules and exit\n"
    "project settings (then exit):\n"
    "  --set-flags LIST   the per-candidate flags, comma-separated\n"
    "  --set-guidelines FILE  the guidelines file (relative paths: to the database)\n"
    "  --add-gold ID:EXPR make prompt ID a gold item whose correct order is EXPR, over its\n"
    "                     candidates numbered 1.. in id order (rlhf candidates "
    "list)\n" CLI_HELP_COMMON
    "keys on the labeling screen (w and W write your own answer): press ? there, or see\n"
    "README.md (Labeling)\n",
    exec_label};

static const struct cmd_entry *E = &cmd_label_entry;

static int list_rules(void) {
    int n;
    const Rule *r = rule_table(&n);
    for (int i = 0; i < n; i++) printf("%-10s %s\n", r[i].name, r[i].summary);
    return EXIT_OK;
}

static int prompt_exists(Db *db, long long id, Err *err) {
    char *text = NULL;
    int rc = db_prompt_text(db, id, &text, err);
    free(text);
    if (rc == RLHF_ENOTFOUND) err_set(err, rc, "--add-gold: there is no prompt %lld (rlhf prompts list)", id);
    return rc;
}

/* A guidelines file that cannot be read is refused now, not found missing
 * later under 'g'; a relative path is to the database's folder, as tui.c reads it. */
static int check_guidelines(Db *db, const char *path, Err *err) {
    char full[2048];
    const char *dbp = db_path(db), *slash = strrchr(dbp, '/');
    if (path[0] != '/' && slash) snprintf(full, sizeof full, "%.*s%s", (int)(slash - dbp + 1), dbp, path);
    else snprintf(full, sizeof full, "%s", path);
    if (access(full, R_OK) == 0) return 0;
    return err_set(err, RLHF_EIO, "--set-guidelines: cannot read '%s'%s%s%s", full,
                   strcmp(full, path) ? " (a relative path is taken from the database's folder; given: " : "",
                   strcmp(full, path) ? path : "", strcmp(full, path) ? ")" : "");
}

/* Settings and gold items: one small transaction each. */
static int settings(Db *db, const char *flags, const char *guidelines, const char *gold) {
    Err err = {0};
    int rc = db_begin(db, &err);
    if (!rc && flags) {
        char *f[LS_MAX_FLAGS];
        int n;
        rc = ls_parse_flags(flags, f, LS_MAX_FLAGS, &n, &err);
        if (!rc) {
            for (int i = 0; i < n; i++) free(f[i]);
            rc = db_setting_set(db, "label.flags", flags, &err);
            if (!rc) printf("flags: %d set\n", n);
        }
    }
    if (!rc && guidelines) rc = check_guidelines(db, guidelines, &err);
    if (!rc && guidelines) {
        rc = db_setting_set(db, "label.guidelines", guidelines, &err);
        if (!rc) printf("guidelines: %s\n", guidelines);
    }
    if (!rc && gold) {
        char *end;
        long long id = strtoll(gold, &end, 10);
        int n = 0;
        CandidateRow *c = NULL;
        if (end == gold || *end != ':' || id < 1) {
            rc = err_set(&err, RLHF_EINVAL, "--add-gold: expected PROMPT_ID:EXPR, e.g. 7:2>1=3");
        } else if (!(rc = prompt_exists(db, id, &err)) && !(rc = db_candidates_of_prompt(db, id, &c, &n, &err))) {
            char msg[128];
            int k = n ? rs_expr_parse(end + 1, n < RS_MAX_CAND ? n : RS_MAX_CAND, NULL, msg, sizeof msg) : RS_EXPR_BAD;
            if (!n) rc = err_set(&err, RLHF_EINVAL, "--add-gold: prompt %lld has no candidates", id);
            else if (k != RS_EXPR_ALL)
                rc = err_set(&err, RLHF_EINVAL, "--add-gold: '%s' is not a complete order of %d candidates%s%s",
                             end + 1, n, msg[0] ? ": " : "", msg);
            else rc = db_gold_set(db, id, end + 1, NULL, &err);
            db_candidates_free(c, n);
            if (!rc) printf("gold: prompt %lld = %s\n", id, end + 1);
        }
    }
    if (!rc) rc = db_commit(db, &err);
    else db_rollback(db);
    return rc ? cli_fail(E, &err) : EXIT_OK;
}

/* --list-rules prints the rules and ends the command there */
static int take_list_rules(const struct cmd_entry *e, const CliOpt *o, const char *arg) {
    (void)e, (void)o, (void)arg;
    list_rules();
    return CLI_OPTS_DONE;
}

/* What the command line asks for. */
typedef struct LabelArgs {
    const char *dbflag, *name, *guidelines, *split, *rule_name, *cmd, *set_flags, *set_guide, *gold;
    const char *kind, *rm, *known_words;
    int order;
    long overlap, lease, seed, timeout, limit;
    double noise, gold_rate;
    int review, seed_given, task, kind_given;
    const Rule *rule;
    WordSet known; /* --known-words */
} LabelArgs;

/* Options into a; -1 to go on, else the exit status. */
static int parse(int argc, char **argv, LabelArgs *a) {
    *a = (LabelArgs){.overlap = 1, .lease = 1800, .seed = 1, .timeout = 30, .kind = "plain"};
    static const char *const tasks[] = {"rank", "write", "prompt", NULL};
    const CliOpt opts[] = {CLI_O_DB(&a->dbflag),
                           CLI_O_STR("as", &a->name),
                           CLI_O_WORD("task", &a->task, tasks),
                           CLI_O_SEEN(&a->kind_given, CLI_O_STR("kind", &a->kind)),
                           CLI_O_LONG("overlap", &a->overlap, 1, 1000),
                           CLI_O_FLAG("review", &a->review),
                           CLI_O_STR("guidelines", &a->guidelines),
                           CLI_O_DBL("gold-rate", &a->gold_rate, 0, 1),
                           CLI_O_STR("split", &a->split),
                           CLI_O_LONG("lease", &a->lease, -1, 7 * 86400),
                           CLI_O_WORD("order", &a->order, db_assign_orders),
                           CLI_O_STR("rm", &a->rm),
                           CLI_O_STR("auto", &a->rule_name),
                           CLI_O_STR("auto-cmd", &a->cmd),
                           CLI_O_DBL("noise", &a->noise, 0, 100),
                           CLI_O_STR("known-words", &a->known_words),
                           CLI_O_SEEN(&a->seed_given, CLI_O_LONG("seed", &a->seed, 0, 0x7fffffffL)),
                           CLI_O_LONG("timeout", &a->timeout, 1, 3600),
                           CLI_O_LONG("limit", &a->limit, 0, 1L << 40),
                           CLI_O_SWITCH("list-rules", take_list_rules, NULL),
                           CLI_O_STR("set-flags", &a->set_flags),
                           CLI_O_STR("set-guidelines", &a->set_guide),
                           CLI_O_STR("add-gold", &a->gold),
                           CLI_O_END};
    int rc = cli_opts_parse(E, argc, argv, opts, NULL);
    if (rc >= 0) return rc;
    if (a->rule_name && a->cmd) return cli_usage_error(E, "--auto and --auto-cmd exclude each other");
    if (a->rule_name && !(a->rule = rule_find(a->rule_name)))
        return cli_usage_error(E, "--auto: no rule '%s' (rlhf label --list-rules lists them)", a->rule_name);
    if (a->review && (a->rule || a->cmd)) return cli_usage_error(E, "--review is for people, not simulated labelers");
    if (a->cmd && !*a->cmd) return cli_usage_error(E, "--auto-cmd: empty command");
    if (a->known_words && !a->rule)
        return cli_usage_error(E, "--known-words is for a simulated labeler's rule (--auto RULE)");
    if (a->known_words && !*a->known_words) return cli_usage_error(E, "--known-words: no file");
    if (a->split && !db_valid_split(a->split)) return cli_usage_error(E, "--split: '%s' is not a split name", a->split);
    if (a->task && a->review) return cli_usage_error(E, "--review is for rankings (--task rank)");
    if (a->task && a->cmd)
        return cli_usage_error(E, "--auto-cmd ranks; a simulated writer is --auto RULE");
    if (a->task == 2 && a->rule)
        return cli_usage_error(
            E, "--task prompt is for people: simulated labelers do not write prompts");
    if (a->task == 1 && a->gold_rate > 0)
        return cli_usage_error(E, "--gold-rate is for rankings (--task rank)");
    if (a->kind_given && a->task != 2) return cli_usage_error(E, "--kind is for --task prompt");
    if (a->order && (a->task || a->review))
        return cli_usage_error(E, "--order is for ranking (--task rank), not --task write/prompt or --review");
    if (a->rm && a->order != ORDER_UNCERTAIN) return cli_usage_error(E, "--rm goes with --order uncertain");
    if (!db_prompt_kind_valid(a->kind))
        return cli_usage_error(E, "--kind: expected plain, fewshot or user, got '%s'", a->kind);
    return -1;
}

/* A labeling session: the simulated labeler's run, or the screen for a person. */
static int run_session(Db *db, LabelArgs *a) {
    const Rule *rule = a->rule;
    const char *name = a->name, *cmd = a->cmd;
    int simulated = rule || cmd;
    /* a person's gold dice differ per session unless a seed is asked for */
    if (!simulated && !a->seed_given) a->seed = (long)(sys_time_ms() ^ getpid()) & 0x7fffffffL;
    char source[300];
    snprintf(source, sizeof source, "%s%s", rule ? "auto:" : cmd ? "auto-cmd:" : "tui",
             rule ? rule->name : cmd ? cmd : "");
    AssignOpts ao = {(int)a->overlap, (int)a->lease, 0, a->split,
                     a->task == 1 ? ASSIGN_WRITE : ASSIGN_RANK, a->order, 0, (uint64_t)a->seed};
    LabelSession s;
    Err err = {0};
    if (a->order == ORDER_UNCERTAIN) {
        if (a->rm ? cli_rm_id(db, a->rm, &ao.rm_id, &err) : db_margins_rm_newest(db, &ao.rm_id, &err))
            return cli_fail(E, &err);
        if (!ao.rm_id) {
            fprintf(stderr, "rlhf label: --order uncertain: no reward model has scored the candidates"
                            " yet (run rlhf score --rm RM first)\n");
            return EXIT_FAIL;
        }
    }
    int rc = ls_open(&s, db, name, simulated, rule ? rule->name : cmd, source, &ao, a->gold_rate,
                     (uint64_t)a->seed, &err);
    if (rc) {
        ls_close(&s);
        return cli_fail(E, &err);
    }
    sys_catch_interrupts();
    if (a->task == 2) {
        PwStats st;
        rc = pw_run(&s, a->kind, a->split ? a->split : "train", a->limit, &st, &err);
        if (rc) fprintf(stderr, "rlhf label: %s\n", err.msg);
        printf("%s: %lld prompts written, %lld duplicates\n", cli_shown(name, 0),
               (long long)st.written, (long long)st.duplicates);
    } else if (simulated && a->task == 1) {
        AutoOpts o = {rule, NULL, 0, a->noise, (uint64_t)a->seed, a->limit, &a->known};
        AutoStats st;
        rc = auto_write(&s, &o, &st, &err);
        printf("%s wrote %lld answers (%lld prompts skipped: not of the demo task) with rule %s in "
               "%.1f s\n",
               cli_shown(name, 0), (long long)st.ranked, (long long)st.gold, rule->name,
               st.seconds);
        if (rc) fprintf(stderr, "rlhf label: %s\n", err.msg);
    } else if (simulated) {
        AutoOpts o = {rule, cmd,      (int)a->timeout * 1000, a->noise, (uint64_t)a->seed,
                      a->limit, &a->known};
        AutoStats st;
        rc = auto_run(&s, &o, &st, &err);
        printf("%s ranked %lld prompts (%lld gold) with %s%s in %.1f s\n", cli_shown(name, 0), (long long)st.ranked,
               (long long)st.gold, rule ? "rule " : "judge ", rule ? rule->name : cli_shown(cmd, 0), st.seconds);
        if (rc) fprintf(stderr, "rlhf label: %s\nnothing of that prompt was stored.\n", err.msg);
    } else {
        TuiOpts o = {a->guidelines, a->review, a->task == 1};
        TuiStats st;
        rc = tui_run(&s, &o, &st, &err);
        if (rc) fprintf(stderr, "rlhf label: %s\n", err.msg);
        else if (a->review)
            printf("%s: %lld new versions, %lld unchanged\n", cli_shown(name, 0), (long long)st.submitted, (long long)st.unchanged);
        else
            printf("%s: %lld %s, %lld skipped this session\n", cli_shown(name, 0),
                   (long long)st.submitted, a->task == 1 ? "answers written" : "ranked",
                   (long long)st.skipped);
    }
    ls_close(&s);
    return rc ? EXIT_FAIL : EXIT_OK;
}

static int exec_label(int argc, char **argv) {
    LabelArgs a;
    int rc = parse(argc, argv, &a);
    if (rc >= 0) return rc;
    Db *db;
    if ((rc = cli_open_db(E, a.dbflag, DB_OPEN_EXISTING, &db))) return rc;
    if (a.set_flags || a.set_guide || a.gold) {
        rc = settings(db, a.set_flags, a.set_guide, a.gold);
        db_close(db);
        return rc;
    }
    if (!a.name) a.name = getenv("USER");
    if (!a.name || !*a.name) {
        db_close(db);
        return cli_usage_error(E, "who is labeling? pass --as NAME");
    }
    Err nerr = {0};
    if (ls_check_name(a.name, &nerr)) {
        db_close(db);
        return cli_usage_error(E, "--as: %s", nerr.msg);
    }
    if (a.known_words && wordset_add_files(&a.known, a.known_words, &nerr)) {
        db_close(db);
        wordset_free(&a.known);
        err_prefix(&nerr, "--known-words: ");
        return cli_fail(E, &nerr);
    }
    rc = run_session(db, &a);
    db_close(db);
    wordset_free(&a.known);
    return rc;
}
