/* Parsing of the shared ranking filter options. */
#include "cli/filter.h"
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

int cli_filter_opt(const struct cmd_entry *e, int c, const char *arg, RankingFilter *f) {
    switch (c) {
    case CLI_F_SPLIT:
        if (!db_valid_split(arg))
            return cli_usage_error(e, "--split: '%s' is not a split name", arg);
        f->split = arg;
        return 1;
    case CLI_F_LABELER:
        f->labeler = arg;
        return 1;
    case CLI_F_SINCE:
    case CLI_F_UNTIL:
        if (!valid_date(arg))
            return cli_usage_error(e, "%s: '%s' is not a date (YYYY-MM-DD, a day that exists)",
                                   c == CLI_F_SINCE ? "--since" : "--until", arg);
        if (c == CLI_F_SINCE)
            f->since = arg;
        else
            f->until = arg;
        return 1;
    case CLI_F_HUMAN:
    case CLI_F_SIMULATED:
        if (f->simulated >= 0 && f->simulated != (c == CLI_F_SIMULATED))
            return cli_usage_error(e, "--human and --simulated exclude each other");
        f->simulated = c == CLI_F_SIMULATED;
        return 1;
    case CLI_F_ALL_VERSIONS:
        f->all_versions = 1;
        return 1;
    }
    return 0;
}
