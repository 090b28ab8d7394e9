/* A command's options as a table: each entry names a flag and where its value
 * goes, checked on the way (integers and numbers in a range, a fixed set of
 * words, a repeatable list), so a command's parse is its table and the checks
 * that relate one option to another. cli_opts_parse also answers --help, a
 * bad or unknown flag and an unexpected argument the same way everywhere.
 *
 *     long steps = 100;
 *     const char *out = NULL, *dbflag = NULL;
 *     const CliOpt opts[] = {
 *         CLI_O_DB(&dbflag),
 *         CLI_O_STR("out", &out),
 *         CLI_O_LONG("steps", &steps, 1, 1L << 40),
 *         CLI_O_END};
 *     int rc = cli_opts_parse(E, argc, argv, opts, NULL);
 *     if (rc >= 0) return rc;   // help printed, or a usage error
 */
#ifndef RLHF_CLI_OPTS_H
#define RLHF_CLI_OPTS_H

#include "cli/cli.h"
#include "cli/filter.h"
#include "db/rankings.h"

typedef enum CliOptKind {
    CLI_OPT_STR,   /* const char ** */
    CLI_OPT_LONG,  /* long *, in [lo, hi] */
    CLI_OPT_INT,   /* int *, in [lo, hi] */
    CLI_OPT_DBL,   /* double *, in [lo, hi] */
    CLI_OPT_FLOAT, /* float *, in [lo, hi] */
    CLI_OPT_FLAG,  /* int *: set to (int)lo when given */
    CLI_OPT_LIST,  /* CliList *: every value of a repeatable flag, in order */
    CLI_OPT_WORD,  /* int *: the index of the value in words (a NULL-ended list); msg,
                    * when set, is the error after "--name: ", with %s for the value */
    CLI_OPT_CALL,  /* call(e, opt, arg): 0, the usage error's exit status, or
                    * CLI_OPTS_DONE to stop parsing with EXIT_OK (--list-rules) */
    CLI_OPT_SWITCH, /* as CALL for a flag without a value (arg NULL) */
    CLI_OPT_TABLE, /* the entries of another table (sub: CliOpt *), e.g. the filters */
} CliOptKind;

/* Values of a repeatable flag (and, with cli_opts_parse's rest, the
 * arguments after the options); v is malloc'd, the strings are argv's. */
typedef struct CliList {
    const char **v;
    int n;
} CliList;

/* A call's answer: stop here, the command has done its work (exit 0). */
enum { CLI_OPTS_DONE = -2 };

typedef struct CliOpt {
    const char *name; /* without the dashes; NULL ends the table; "" with short_name: a
                       * flag with only the one-letter form (-k) */
    char short_name;  /* 0, or a one-letter form (-t) */
    CliOptKind kind;
    void *dst;
    double lo, hi;
    int *seen; /* may be NULL: set to 1 when the flag is given */
    const char *const *words;
    int (*call)(const struct cmd_entry *e, const struct CliOpt *opt, const char *arg);
    void *ctx;
    const struct CliOpt *sub;
    const char *msg;
} CliOpt;

#define CLI_O_STR(n, d) {.name = (n), .kind = CLI_OPT_STR, .dst = (d)}
#define CLI_O_LONG(n, d, l, h) {.name = (n), .kind = CLI_OPT_LONG, .dst = (d), .lo = (l), .hi = (h)}
#define CLI_O_INT(n, d, l, h) {.name = (n), .kind = CLI_OPT_INT, .dst = (d), .lo = (l), .hi = (h)}
#define CLI_O_DBL(n, d, l, h) {.name = (n), .kind = CLI_OPT_DBL, .dst = (d), .lo = (l), .hi = (h)}
#define CLI_O_FLOAT(n, d, l, h) {.name = (n), .kind = CLI_OPT_FLOAT, .dst = (d), .lo = (l), .hi = (h)}
#define CLI_O_FLAG(n, d) {.name = (n), .kind = CLI_OPT_FLAG, .dst = (d), .lo = 1}
#define CLI_O_SET(n, d, v) {.name = (n), .kind = CLI_OPT_FLAG, .dst = (d), .lo = (v)}
#define CLI_O_LIST(n, d) {.name = (n), .kind = CLI_OPT_LIST, .dst = (d)}
#define CLI_O_WORD(n, d, w) {.name = (n), .kind = CLI_OPT_WORD, .dst = (d), .words = (w)}
#define CLI_O_WORD_MSG(n, d, w, m) {.name = (n), .kind = CLI_OPT_WORD, .dst = (d), .words = (w), .msg = (m)}
#define CLI_O_CALL(n, f, c) {.name = (n), .kind = CLI_OPT_CALL, .call = (f), .ctx = (c)}
#define CLI_O_SWITCH(n, f, c) {.name = (n), .kind = CLI_OPT_SWITCH, .call = (f), .ctx = (c)}
#define CLI_O_TABLE(t) {.name = "", .kind = CLI_OPT_TABLE, .sub = (t)}
#define CLI_O_DB(d) CLI_O_STR("db", d)
#define CLI_O_END {.name = NULL}
/* An entry with a one-letter form too: CLI_O_SHORT('k', CLI_O_LONG("num", ...)). */
#define CLI_O_SHORT(c, o) cli_opt_short((c), (CliOpt)o)
/* The same with a seen flag: set to 1 when the option is given. */
#define CLI_O_SEEN(s, o) cli_opt_seen((s), (CliOpt)o)

static inline CliOpt cli_opt_short(char c, CliOpt o) {
    o.short_name = c;
    return o;
}
static inline CliOpt cli_opt_seen(int *seen, CliOpt o) {
    o.seen = seen;
    return o;
}

/* Parses argv[1..] (argv[0] is the command) by the table. rest: where the
 * arguments that are not options go (NULL: an argument is a usage error).
 * Returns -1 to go on, else the exit status to return (EXIT_OK after --help,
 * EXIT_USAGE after an error, printed). Resets getopt first. */
int cli_opts_parse(const struct cmd_entry *e, int argc, char **argv, const CliOpt *opts,
                   CliList *rest);

/* The ranking filters (CLI_HELP_FILTER) into *f, a table to include with
 * CLI_O_TABLE; *given is set when any of them is. Fills t (8 entries). */
#define CLI_FILTER_N 10 /* the filter options and the end mark */
void cli_filter_table(RankingFilter *f, int *given, CliOpt t[CLI_FILTER_N]);

#endif
