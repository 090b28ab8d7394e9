/* The command table: every cli/cmd_<name>.c exports one `const struct cmd_entry
 * cmd_<name>_entry`; the build collects them into main.c's table, so adding a
 * subcommand is adding a file. Only cli/ prints results or decides exit codes. */
#ifndef RLHF_CLI_H
#define RLHF_CLI_H

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include "db/db.h"
#include "util/err.h"

#define RLHF_VERSION "0.1.0"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct cmd_entry {
    const char *name;
    const char *usage;   /* "FILE... [--split S]" */
    const char *summary; /* one line for `rlhf --help` */
    const char *help;    /* options, one per line, for `rlhf CMD --help` */
    int (*exec)(int argc, char **argv); /* argv[0] is the command name */
};

/* Prints the command's usage and help to stdout; returns EXIT_OK. */
int cli_help(const struct cmd_entry *e);
/* Reports the bad option at getopt's position (unknown flag or missing value)
 * on stderr; returns EXIT_USAGE. */
int cli_bad_option(const struct cmd_entry *e, char **argv, int c);
/* "rlhf CMD: message" on stderr plus a pointer to --help; returns EXIT_USAGE. */
int cli_usage_error(const struct cmd_entry *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Checks a --template value (seq_template_check); prints the usage error and
 * returns EXIT_USAGE when it is neither a {prompt} nor a chat template, else 0. */
int cli_check_template(const struct cmd_entry *e, const char *template);
/* --weights f32|bf16|auto into *w (an int holding an InferWeights); 0, or the
 * usage error's exit status. */
int cli_parse_weights(const struct cmd_entry *e, const char *s, int *w);
/* Prints "rlhf CMD: message" for err on stderr; returns EXIT_FAIL. */
int cli_fail(const struct cmd_entry *e, const Err *err);
/* The --db flag, else $RLHF_DB, else NULL. */
const char *cli_db_path(const char *flag);
/* Opens the project database (mode as db_open); prints the error and returns
 * EXIT_FAIL or EXIT_USAGE (no path given) on failure, EXIT_OK on success. */
int cli_open_db(const struct cmd_entry *e, const char *flag, int mode, Db **db);
/* Parses an integer/float flag value; prints a usage error naming the flag. */
int cli_parse_long(const struct cmd_entry *e, const char *flag, const char *s, long min, long max,
                   long *out);
int cli_parse_double(const struct cmd_entry *e, const char *flag, const char *s, double min,
                     double max, double *out);
/* Parses the options of a command that takes only --db, --json and --help and
 * no arguments, and opens the store read-only into *db. Returns -1 to go on
 * (*db open), else the exit code to return. */
int cli_open_db_json(const struct cmd_entry *e, int argc, char **argv, Db **db, int *json);

/* The registry entry of a checkpoint given on the command line: by its real
 * path (as train_register_checkpoint stores it), else by the text as a name or
 * path. RLHF_ENOTFOUND when absent. */
struct ModelRow;
int cli_model_find(Db *db, const char *path_or_name, struct ModelRow *out, Err *err);
/* The id of the reward model named (a registered name or a checkpoint path):
 * RLHF_ENOTFOUND when none is registered, RLHF_EINVAL when it is not an RM. */
int cli_rm_id(Db *db, const char *path_or_name, int64_t *id, Err *err);

/* A command with subcommands ("prompts import"): runs the one named in argv[1]
 * with argv shifted, or reports a usage error listing the names. */
struct cli_sub {
    const char *name;
    int (*exec)(int argc, char **argv);
};
int cli_dispatch(const struct cmd_entry *e, const struct cli_sub *subs, int argc, char **argv);
/* Resets getopt for a fresh parse of a subcommand's argv. */
void cli_getopt_reset(void);
/* Text from the store as it may reach a terminal in plain-text output: C0
 * controls, DEL and C1 controls are shown as \xNN / \u00NN (\n as the two
 * characters \n unless keep_newlines, which keeps newlines and tabs), so an
 * escape sequence in a prompt or a name never acts on the terminal. Returns s
 * itself when nothing needs showing, else one of 8 rotating buffers. */
const char *cli_shown(const char *s, int keep_newlines);
/* --json output: prints j on one line to stdout and frees it (EXIT_OK, or
 * EXIT_FAIL when out of memory); every command's --json goes through here. */
int cli_json_print(cJSON *j);
/* Adds x rounded to digits decimals (as the tables show it). */
cJSON *cli_json_num(cJSON *obj, const char *key, double x, int digits);
/* Adds x to 6 significant digits; null when it is NaN or infinite. */
cJSON *cli_json_g(cJSON *obj, const char *key, double x);
/* Adds an unsigned 64-bit integer exactly (a seed, a hash). */
cJSON *cli_json_u64(cJSON *obj, const char *key, unsigned long long v);

/* Options every command takes, for its struct option table. */
#define CLI_OPT_DB {"db", required_argument, NULL, 'D'}
#define CLI_OPT_HELP {"help", no_argument, NULL, 'h'}
#define CLI_OPT_END {NULL, 0, NULL, 0}

/* For help texts. */
#define CLI_HELP_COMMON                                                                            \
    "  --db PATH       project database (default: $RLHF_DB)\n"                                     \
    "  --context N     tokens of context for a Hugging Face model (default: its\n"                \
    "                  max_position_embeddings, at most 2048; or $RLHF_CONTEXT)\n"              \
    "  -h, --help      show this help\n"

#endif
