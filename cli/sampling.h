/* The sampling options gen, eval and sample share (--temperature, --top-k,
 * --top-p, --max-tokens, --seed, --stop, --weights) as entries of an options
 * table (cli/opts.h), with gen's ranges and messages. */
#ifndef RLHF_CLI_SAMPLING_H
#define RLHF_CLI_SAMPLING_H

#include "cli/opts.h"
#include "model/sample.h"

/* Indexes into cli_sampling_table's entries, for a command that narrows one. */
enum { CLI_S_TEMPERATURE, CLI_S_TOP_K, CLI_S_TOP_P, CLI_S_MAX_TOKENS, CLI_S_SEED, CLI_S_N };

/* --temperature, --top-k, --top-p (in (0, 1]), --max-tokens into *p and --seed
 * into *seed; t gets CLI_S_N entries and the end (include it with CLI_O_TABLE). */
void cli_sampling_table(SampleParams *p, long *seed, CliOpt t[CLI_S_N + 1]);

/* --stop strings into v[0..max) (ctx: a CliStops), none empty. */
typedef struct CliStops {
    const char **v;
    int n, max;
} CliStops;
int cli_take_stop(const struct cmd_entry *e, const CliOpt *o, const char *arg);

/* --weights f32|bf16|auto into the int ctx points at (cli_parse_weights). */
int cli_take_weights(const struct cmd_entry *e, const CliOpt *o, const char *arg);

#endif
