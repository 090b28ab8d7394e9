/* The shared ranking filter options (cli_filter_table, opts.h). */
#include "cli/opts.h"
#include "db/prompts.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* YYYY-MM-DD, optionally followed by THH:MM[:SS...]: compared as text with
 * the stored ISO times, so the shape is checked, and the day must exist (a
 * 2026-02-30 would compare as a real date and silently select everything). */
static int valid_date(const char *s) {
    static const char shape[] = "dddd-dd-dd";
    size_t n = strlen(s);
    if (n < 10) return 0;
    for (int i = 0; i < 10; i++)
        if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != shape[i]) return 0;
    int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1) return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > days[m - 1] + (m == 2 && leap)) return 0;
    if (n == 10) return 1;
    if (s[10] != 'T' && s[10] != ' ') return 0;
    /* HH:MM at least, in range */
    if (n < 16 || !isdigit((unsigned char)s[11]) || !isdigit((unsigned char)s[12]) || s[13] != ':' ||
        !isdigit((unsigned char)s[14]) || !isdigit((unsigned char)s[15]))
        return 0;
    return atoi(s + 11) < 24 && atoi(s + 14) < 60;
}

static int take_split(const struct cmd_entry *e, const CliOpt *o, const char *arg) {
    if (!db_valid_split(arg)) return cli_usage_error(e, "--split: '%s' is not a split name", arg);
    ((RankingFilter *)o->ctx)->split = arg;
    return 0;
}

static int take_date(const struct cmd_entry *e, const CliOpt *o, const char *arg) {
    RankingFilter *f = o->ctx;
    if (!valid_date(arg))
        return cli_usage_error(e, "--%s: '%s' is not a date (YYYY-MM-DD, a day that exists)",
                               o->name, arg);
    *(strcmp(o->name, "since") ? &f->until : &f->since) = arg;
    return 0;
}

/* --human or --simulated (o->name), not both */
static int take_who(const struct cmd_entry *e, const CliOpt *o, const char *arg) {
    RankingFilter *f = o->ctx;
    int sim = !strcmp(o->name, "simulated");
    (void)arg;
    if (f->simulated >= 0 && f->simulated != sim)
        return cli_usage_error(e, "--human and --simulated exclude each other");
    f->simulated = sim;
    return 0;
}

void cli_filter_table(RankingFilter *f, int *given, CliOpt t[CLI_FILTER_N]) {
    const CliOpt v[CLI_FILTER_N] = {
        {.name = "split", .kind = CLI_OPT_CALL, .call = take_split, .ctx = f, .seen = given},
        {.name = "labeler", .kind = CLI_OPT_STR, .dst = &f->labeler, .seen = given},
        {.name = "since", .kind = CLI_OPT_CALL, .call = take_date, .ctx = f, .seen = given},
        {.name = "until", .kind = CLI_OPT_CALL, .call = take_date, .ctx = f, .seen = given},
        {.name = "human", .kind = CLI_OPT_SWITCH, .call = take_who, .ctx = f, .seen = given},
        {.name = "simulated", .kind = CLI_OPT_SWITCH, .call = take_who, .ctx = f, .seen = given},
        {.name = "all-versions", .kind = CLI_OPT_FLAG, .dst = &f->all_versions, .lo = 1,
         .seen = given},
        {.name = "flag", .kind = CLI_OPT_STR, .dst = &f->flag, .seen = given},
        {.name = "no-flag", .kind = CLI_OPT_STR, .dst = &f->no_flag, .seen = given},
        CLI_O_END};
    memcpy(t, v, sizeof v);
}
