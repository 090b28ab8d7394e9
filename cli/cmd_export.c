/* rlhf export: rankings out as comparisons or rankings in the field's formats. */
#include "cli/cli.h"
#include "cli/opts.h"
#include "db/scores.h"
#include "rm/export.h"
#include "util/sys.h"

#include <errno.h>
#include <math.h>
#include <string.h>

static int exec_export(int argc, char **argv);

const struct cmd_entry cmd_export_entry = {
    "export",
    "--format pairs|pairs-chat|hh|rankings|arena|arena-json|csv|sft|sft-chat [--out FILE] "
    "[filters]",
    "export comparisons, rankings and demonstrations for training and for other tools",
    "  --format F        pairs       TRL preference JSONL, standard form: the HH template on\n"
    "                                every prompt, \"\\n\\nHuman: P\\n\\nAssistant:\", and TRL's\n"
    "                                separator on the answers, \" A\" (prompt + chosen is the\n"
    "                                HH transcript); prompt_id, chosen_id, rejected_id,\n"
    "                                chosen_model, rejected_model, labeler, simulated,\n"
    "                                rank_gap (places apart), ranking_id\n"
    "                    pairs-chat  TRL conversational: prompt as [{\"role\", \"content\"}, ...]\n"
    "                                (system, user, assistant), chosen and rejected as one\n"
    "                                assistant message each; the same other fields\n"
    "                    hh          HH-RLHF: chosen, rejected as \"\\n\\nHuman: P\\n\\nAssistant: "
    "A\"\n"
    "                    rankings    one line per ranking, every key in every line: prompt,\n"
    "                                completions, ranks, scores, flags, note, time_ms, ...\n"
    "                                (`rlhf import --format rankings` reads it back whole)\n"
    "                    arena       Chatbot Arena battles, one per line: model_a, model_b,\n"
    "                                winner (model_a|model_b|tie|tie (bothbad)), judge, turn,\n"
    "                                anony, language, tstamp, dedup_tag, conversation_a/b\n"
    "                    arena-json  the same as one JSON array, as Arena's notebooks load it\n"
    "                    csv         one row per comparison, RFC 4180, with a header\n"
    "                    sft         the demonstrations labelers wrote, TRL's SFT prompt-\n"
    "                                completion form: prompt (the HH template, as pairs),\n"
    "                                completion (\" A\"); prompt_id, candidate_id, author,\n"
    "                                edited_from, edit_distance, time_ms, simulated,\n"
    "                                flagged, split\n"
    "                    sft-chat    the same as TRL's conversational form: messages, a list\n"
    "                                of {\"role\", \"content\"} ending with the answer\n"
    "                    A ranking of K candidates gives K(K-1)/2 comparisons; ties are kept\n"
    "                    in arena and csv (tie=1) and dropped (and counted) in pairs and hh.\n"
    "  --margin X        pairs: add TRL's \"margin\" column (its RewardTrainer subtracts it\n"
    "                    in the loss), X x (chosen's 1-7 score - rejected's), 0 without both\n"
    "                    scores, as train-rm --margin X counts it\n"
    "  --keep-same-model arena: keep battles of a model against itself (left out by default)\n"
    "  --all-demos       sft: also answers another labeler flagged in a ranking, and answers\n"
    "                    to flagged prompts (left out by default; see the flagged field)\n"
    "  --out FILE        write FILE (atomically) instead of stdout\n"
    "  --val-frac F      send a share F of the prompts (chosen by a hash of the prompt text)\n"
    "                    to --val-out; no prompt is in both outputs\n"
    "  --val-out FILE    the validation output (needed with --val-frac)\n"
    "  --min-agreement X only prompts ranked by two labelers or more who agree on at least\n"
    "                    a share X of their shared pairs\n"
    "by a reward model's stored scores (rlhf score --rm RM first):\n"
    "  --rm NAME         the reward model whose scores and margins the options below use\n"
    "  --max-margin X    only prompts whose margin (best score - second best) is at most X:\n"
    "                    where the RM is least sure, to relabel\n"
    "  --min-score X     only comparisons whose chosen answer scored at least X (rankings:\n"
    "                    whose best-ranked answer did)\n"
    "  --sort S          prompt (default: by prompt id) or margin (least sure first; prompts\n"
    "                    without a margin are left out)\n" CLI_HELP_FILTER CLI_HELP_COMMON,
    exec_export};

static const struct cmd_entry *E = &cmd_export_entry;

typedef struct Args {
    const char *dbflag, *out_path, *val_path, *rm;
    ExportOptions o;
} Args;

/* The options and their checks; -1 to go on, else the exit status. */
static int parse(int argc, char **argv, Args *a) {
    ExportOptions *o = &a->o;
    const char *format = NULL;
    int margin_given = 0, minsc_given = 0, maxm_given = 0;
    static const char *const sorts[] = {"prompt", "margin", NULL};
    o->filter = db_ranking_filter_default();
    o->min_agreement = -1;
    o->min_score = o->max_margin = NAN;
    CliOpt filters[CLI_FILTER_N];
    cli_filter_table(&o->filter, NULL, filters);
    const CliOpt opts[] = {CLI_O_DB(&a->dbflag),
                           CLI_O_STR("format", &format),
                           CLI_O_SHORT('o', CLI_O_STR("out", &a->out_path)),
                           CLI_O_DBL("val-frac", &o->val_frac, 0, 1),
                           CLI_O_STR("val-out", &a->val_path),
                           CLI_O_DBL("min-agreement", &o->min_agreement, 0, 1),
                           CLI_O_SEEN(&margin_given, CLI_O_DBL("margin", &o->margin, 0, 100)),
                           CLI_O_FLAG("keep-same-model", &o->keep_same_model),
                           CLI_O_FLAG("all-demos", &o->all_demos),
                           CLI_O_STR("rm", &a->rm),
                           CLI_O_SEEN(&minsc_given, CLI_O_DBL("min-score", &o->min_score, -1e9, 1e9)),
                           CLI_O_SEEN(&maxm_given, CLI_O_DBL("max-margin", &o->max_margin, 0, 1e9)),
                           CLI_O_WORD("sort", &o->by_margin, sorts),
                           CLI_O_TABLE(filters),
                           CLI_O_END};
    int rc = cli_opts_parse(E, argc, argv, opts, NULL);
    if (rc >= 0) return rc;
    static const char names[] =
        "pairs, pairs-chat, hh, rankings, arena, arena-json, csv, sft or sft-chat";
    if (!format) return cli_usage_error(E, "--format is required (%s)", names);
    o->format = rm_export_format(format);
    if (o->format < 0) return cli_usage_error(E, "--format: unknown format '%s' (%s)", format, names);
    if (margin_given && o->margin == 0)
        return cli_usage_error(E, "--margin: X must be above 0");
    if (o->margin > 0 && o->format != EXPORT_PAIRS && o->format != EXPORT_PAIRS_CHAT)
        return cli_usage_error(E, "--margin is for --format pairs or pairs-chat");
    int arena = o->format == EXPORT_ARENA || o->format == EXPORT_ARENA_JSON;
    if (o->keep_same_model && !arena)
        return cli_usage_error(E, "--keep-same-model is for --format arena or arena-json");
    int sft = o->format == EXPORT_SFT || o->format == EXPORT_SFT_CHAT;
    if (o->all_demos && !sft)
        return cli_usage_error(E, "--all-demos is for --format sft or sft-chat");
    if (sft &&
        (o->min_agreement >= 0 || o->filter.since || o->filter.until || o->filter.all_versions))
        return cli_usage_error(
            E,
            "--format %s takes --split, --labeler (the author) and --human/--simulated; "
            "--min-agreement, --since, --until and --all-versions are for rankings",
            format);
    int by_rm = minsc_given || maxm_given || o->by_margin;
    if (by_rm && !a->rm) return cli_usage_error(E, "--min-score, --max-margin and --sort margin need --rm NAME");
    if (a->rm && !by_rm) return cli_usage_error(E, "--rm goes with --min-score, --max-margin or --sort margin");
    if (a->rm && sft)
        return cli_usage_error(E, "--rm and its filters are for comparisons and rankings, not --format %s", format);
    if (o->val_frac > 0 && !a->val_path) return cli_usage_error(E, "--val-frac needs --val-out FILE");
    if (a->val_path && !(o->val_frac > 0))
        return cli_usage_error(E, "--val-out needs --val-frac F (F > 0)");
    if (a->val_path && a->out_path && strcmp(a->val_path, a->out_path) == 0)
        return cli_usage_error(E, "--out and --val-out name the same file");
    return -1;
}

/* What was exported and what was left out, on stderr. */
static void summary(const ExportOptions *o, const ExportStats *st, const char *val_path, const char *rm) {
    if (o->format == EXPORT_SFT || o->format == EXPORT_SFT_CHAT) {
        fprintf(stderr, "exported %lld demonstrations of %lld prompts%s\n", (long long)st->records,
                (long long)st->prompts,
                o->all_demos ? "" : " (flagged ones left out; --all-demos keeps them)");
        if (o->val_frac > 0)
            fprintf(stderr,
                    "validation: %lld records from %lld prompts in %s; training: %lld records\n",
                    (long long)st->val_records, (long long)st->val_prompts, val_path,
                    (long long)(st->records - st->val_records));
        return;
    }
    fprintf(stderr, "exported %lld %s from %lld rankings of %lld prompts", (long long)st->records,
            o->format == EXPORT_RANKINGS ? "rankings" : "comparisons", (long long)st->rankings,
            (long long)st->prompts);
    if (o->format != EXPORT_RANKINGS)
        fprintf(stderr, " (%lld pairs, %lld ties%s)", (long long)st->pairs, (long long)st->ties,
                st->ties_dropped ? " dropped: the format cannot hold them" : " kept");
    fputc('\n', stderr);
    if (st->same_model)
        fprintf(stderr, "left out %lld battles of a model against itself (--keep-same-model keeps "
                        "them)\n",
                (long long)st->same_model);
    if (o->val_frac > 0)
        fprintf(stderr,
                "validation: %lld records from %lld prompts in %s; training: %lld records\n",
                (long long)st->val_records, (long long)st->val_prompts, val_path,
                (long long)(st->records - st->val_records));
    if (o->rm_id && (!isnan(o->max_margin) || o->by_margin))
        fprintf(stderr, "left out %lld prompts whose margin by %s is above %g or unknown\n",
                (long long)st->prompts_no_margin, rm, isnan(o->max_margin) ? INFINITY : o->max_margin);
    if (o->rm_id && !isnan(o->min_score))
        fprintf(stderr, "left out %lld %s whose chosen answer %s scored below %g (or not at all)\n",
                (long long)st->below_score, o->format == EXPORT_RANKINGS ? "rankings" : "comparisons",
                rm, o->min_score);
    if (o->min_agreement >= 0)
        fprintf(stderr, "left out %lld prompts below agreement %.2f (or ranked by one labeler)\n",
                (long long)st->prompts_below_agreement, o->min_agreement);
}

static int exec_export(int argc, char **argv) {
    Args a = {0};
    int rc = parse(argc, argv, &a);
    if (rc >= 0) return rc;
    const char *out_path = a.out_path, *val_path = a.val_path;
    ExportOptions o = a.o;
    Db *db;
    rc = cli_open_db(E, a.dbflag, DB_OPEN_READONLY, &db);
    if (rc) return rc;
    Err err = {0};
    if (a.rm && !(rc = cli_rm_id(db, a.rm, &o.rm_id, &err))) {
        int64_t n = 0;
        if (!(rc = db_query_scored(db, o.rm_id, &n, &err)) && !n)
            rc = err_set(&err, RLHF_ENOTFOUND, "%s has scored nothing yet (run rlhf score --rm %s first)", a.rm, a.rm);
    }
    if (rc) {
        db_close(db);
        return cli_fail(E, &err);
    }
    AtomicFile out = {0}, val = {0};
    FILE *fout = stdout, *fval = NULL;
    if (out_path) {
        rc = atomic_open(&out, out_path, &err);
        fout = out.f;
    }
    if (!rc && val_path) {
        rc = atomic_open(&val, val_path, &err);
        fval = val.f;
    }
    ExportStats st;
    if (!rc && (rc = rm_export(db, &o, fout, fval, &st, &err)) == RLHF_EIO)
        err_prefix(&err, "%s%s: ", out_path ? out_path : "standard output",
                   val_path ? " or --val" : "");
    if (!rc && !out_path && (fflush(stdout) || ferror(stdout)))
        rc = err_set(&err, RLHF_EIO, "writing to standard output failed: %s",
                     strerror(errno ? errno : EIO));
    if (!rc && out_path) rc = atomic_commit(&out, &err);
    if (!rc && val_path) rc = atomic_commit(&val, &err);
    if (rc) {
        if (out.f) atomic_abort(&out);
        if (val.f) atomic_abort(&val);
    }
    db_close(db);
    if (rc) return cli_fail(E, &err);
    summary(&o, &st, val_path, a.rm);
    return EXIT_OK;
}
