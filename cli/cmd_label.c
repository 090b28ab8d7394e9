/* rlhf label: rank candidates on the labeling screen, review one's rankings,
 * or let a simulated labeler (a rule or an external judge) do it; also the
 * project's labeling settings (flags, guidelines) and gold items. */
#include "annotator/autolabel.h"
#include "annotator/rules.h"
#include "annotator/session.h"
#include "annotator/tui.h"
#include "cli/cli.h"
#include "db/prompts.h"
#include "util/sys.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int exec_label(int argc, char **argv);

const struct cmd_entry cmd_label_entry = {
    "label", "--as NAME [--overlap R] [--review] | --auto RULE|--auto-cmd CMD --as NAME [--noise X] [--seed S]",
    "rank candidates on the labeling screen, or with a simulated labeler",
    "  --as NAME          the labeler (default: $USER)\n"
    "  --overlap R        rankings wanted per prompt, by different labelers (default 1)\n"
    "  --review           revisit your own rankings; a change is stored as a new version\n"
    "  --guidelines FILE  the text shown by 'g' (default: setting label.guidelines)\n"
    "  --gold-rate X      share of gold items mixed into the queue, 0..1 (default 0)\n"
    "  --split S          only prompts of split S\n"
    "  --lease SECS       a claim on a prompt expires after SECS without a key (default 1800)\n"
    "simulated labelers (no terminal needed; rankings are marked simulated):\n"
    "  --auto RULE        rank by a rule (see --list-rules)\n"
    "  --noise X          add X * N(0,1) to each rule score before ranking (default 0)\n"
    "  --seed S           seed of the noise (default 1)\n"
    "  --auto-cmd CMD     rank by an external judge: CMD gets one JSON line per prompt on\n"
    "                     stdin and answers one line {\"scores\":[...]} or {\"order\":\"2>1=3\"}\n"
    "  --timeout SECS     how long the judge may take per prompt (default 30)\n"
    "  --limit N          rank at most N prompts\n"
    "  --list-rules       list the rules and exit\n"
    "project settings (then exit):\n"
    "  --set-flags LIST   the per-candidate flags, comma-separated\n"
    "  --set-guidelines FILE  the guidelines file (relative paths: to the database)\n"
    "  --add-gold ID:EXPR make prompt ID a gold item whose correct order is EXPR, over its\n"
    "                     candidates numbered 1.. in id order (rlhf candidates list)\n" CLI_HELP_COMMON
    "keys on the labeling screen: press ? there, or see README.md (Labeling)\n",
    exec_label};

static const struct cmd_entry *E = &cmd_label_entry;

static int list_rules(void) {
    int n;
    const Rule *r = rule_table(&n);
    for (int i = 0; i < n; i++) printf("%-10s %s\n", r[i].name, r[i].summary);
    return EXIT_OK;
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
        } else if (!(rc = db_candidates_of_prompt(db, id, &c, &n, &err))) {
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

static int exec_label(int argc, char **argv) {
    static const struct option opts[] = {CLI_OPT_DB,
                                         CLI_OPT_HELP,
                                         {"as", required_argument, NULL, 'a'},
                                         {"overlap", required_argument, NULL, 'o'},
                                         {"review", no_argument, NULL, 'r'},
                                         {"guidelines", required_argument, NULL, 'g'},
                                         {"gold-rate", required_argument, NULL, 'G'},
                                         {"split", required_argument, NULL, 's'},
                                         {"lease", required_argument, NULL, 'L'},
                                         {"auto", required_argument, NULL, 'A'},
                                         {"auto-cmd", required_argument, NULL, 'c'},
                                         {"noise", required_argument, NULL, 'n'},
                                         {"seed", required_argument, NULL, 'S'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"limit", required_argument, NULL, 'l'},
                                         {"list-rules", no_argument, NULL, 'R'},
                                         {"set-flags", required_argument, NULL, 'F'},
                                         {"set-guidelines", required_argument, NULL, 'P'},
                                         {"add-gold", required_argument, NULL, 'X'},
                                         CLI_OPT_END};
    const char *dbflag = NULL, *name = NULL, *guidelines = NULL, *split = NULL, *rule_name = NULL,
               *cmd = NULL, *set_flags = NULL, *set_guide = NULL, *gold = NULL;
    long overlap = 1, lease = 1800, seed = 1, timeout = 30, limit = 0;
    double noise = 0, gold_rate = 0;
    int review = 0, seed_given = 0, c;
    cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'D': dbflag = optarg; break;
        case 'a': name = optarg; break;
        case 'o':
            if (cli_parse_long(E, "--overlap", optarg, 1, 1000, &overlap)) return EXIT_USAGE;
            break;
        case 'r': review = 1; break;
        case 'g': guidelines = optarg; break;
        case 'G':
            if (cli_parse_double(E, "--gold-rate", optarg, 0, 1, &gold_rate)) return EXIT_USAGE;
            break;
        case 's': split = optarg; break;
        case 'L':
            if (cli_parse_long(E, "--lease", optarg, -1, 7 * 86400, &lease)) return EXIT_USAGE;
            break;
        case 'A': rule_name = optarg; break;
        case 'c': cmd = optarg; break;
        case 'n':
            if (cli_parse_double(E, "--noise", optarg, 0, 100, &noise)) return EXIT_USAGE;
            break;
        case 'S':
            if (cli_parse_long(E, "--seed", optarg, 0, 0x7fffffffL, &seed)) return EXIT_USAGE;
            seed_given = 1;
            break;
        case 't':
            if (cli_parse_long(E, "--timeout", optarg, 1, 3600, &timeout)) return EXIT_USAGE;
            break;
        case 'l':
            if (cli_parse_long(E, "--limit", optarg, 0, 1L << 40, &limit)) return EXIT_USAGE;
            break;
        case 'R': return list_rules();
        case 'F': set_flags = optarg; break;
        case 'P': set_guide = optarg; break;
        case 'X': gold = optarg; break;
        case 'h': return cli_help(E);
        default: return cli_bad_option(E, argv, c);
        }
    }
    if (optind < argc) return cli_usage_error(E, "unexpected argument '%s'", argv[optind]);
    const Rule *rule = NULL;
    if (rule_name && cmd) return cli_usage_error(E, "--auto and --auto-cmd exclude each other");
    if (rule_name && !(rule = rule_find(rule_name)))
        return cli_usage_error(E, "--auto: no rule '%s' (rlhf label --list-rules lists them)", rule_name);
    if (review && (rule || cmd)) return cli_usage_error(E, "--review is for people, not simulated labelers");
    if (cmd && !*cmd) return cli_usage_error(E, "--auto-cmd: empty command");
    if (split && !db_valid_split(split)) return cli_usage_error(E, "--split: '%s' is not a split name", split);
    Db *db;
    int rc = cli_open_db(E, dbflag, DB_OPEN_EXISTING, &db);
    if (rc) return rc;
    if (set_flags || set_guide || gold) {
        rc = settings(db, set_flags, set_guide, gold);
        db_close(db);
        return rc;
    }
    if (!name) name = getenv("USER");
    if (!name || !*name) {
        db_close(db);
        return cli_usage_error(E, "who is labeling? pass --as NAME");
    }
    Err nerr = {0};
    if (ls_check_name(name, &nerr)) {
        db_close(db);
        return cli_usage_error(E, "--as: %s", nerr.msg);
    }
    int simulated = rule || cmd;
    /* a person's gold dice differ per session unless a seed is asked for */
    if (!simulated && !seed_given) seed = (long)(sys_time_ms() ^ getpid()) & 0x7fffffffL;
    char source[300];
    snprintf(source, sizeof source, "%s%s", rule ? "auto:" : cmd ? "auto-cmd:" : "tui",
             rule ? rule->name : cmd ? cmd : "");
    AssignOpts ao = {(int)overlap, (int)lease, 0, split};
    LabelSession s;
    Err err = {0};
    rc = ls_open(&s, db, name, simulated, rule ? rule->name : cmd, source, &ao, gold_rate, (uint64_t)seed, &err);
    if (rc) {
        ls_close(&s);
        db_close(db);
        return cli_fail(E, &err);
    }
    sys_catch_interrupts();
    if (simulated) {
        AutoOpts o = {rule, cmd, (int)timeout * 1000, noise, (uint64_t)seed, limit};
        AutoStats st;
        rc = auto_run(&s, &o, &st, &err);
        printf("%s ranked %lld prompts (%lld gold) with %s%s in %.1f s\n", cli_shown(name, 0), (long long)st.ranked,
               (long long)st.gold, rule ? "rule " : "judge ", rule ? rule->name : cli_shown(cmd, 0), st.seconds);
        if (rc) fprintf(stderr, "rlhf label: %s\nnothing of that prompt was stored.\n", err.msg);
    } else {
        TuiOpts o = {guidelines, review};
        TuiStats st;
        rc = tui_run(&s, &o, &st, &err);
        if (rc) fprintf(stderr, "rlhf label: %s\n", err.msg);
        else if (review)
            printf("%s: %lld new versions, %lld unchanged\n", cli_shown(name, 0), (long long)st.submitted, (long long)st.unchanged);
        else printf("%s: %lld ranked, %lld skipped this session\n", cli_shown(name, 0), (long long)st.submitted, (long long)st.skipped);
    }
    ls_close(&s);
    db_close(db);
    return rc ? EXIT_FAIL : EXIT_OK;
}
