/* The ranking filter options shared by export, elo and agreement. */
#ifndef RLHF_CLI_FILTER_H
#define RLHF_CLI_FILTER_H

#include "cli/cli.h"
#include "db/rankings.h"

enum {
    CLI_F_SPLIT = 300,
    CLI_F_LABELER,
    CLI_F_SINCE,
    CLI_F_UNTIL,
    CLI_F_HUMAN,
    CLI_F_SIMULATED,
    CLI_F_ALL_VERSIONS,
};

#define CLI_FILTER_OPTS                                                                            \
    {"split", required_argument, NULL, CLI_F_SPLIT},                                               \
        {"labeler", required_argument, NULL, CLI_F_LABELER},                                       \
        {"since", required_argument, NULL, CLI_F_SINCE},                                           \
        {"until", required_argument, NULL, CLI_F_UNTIL},                                           \
        {"human", no_argument, NULL, CLI_F_HUMAN},                                                 \
        {"simulated", no_argument, NULL, CLI_F_SIMULATED}, {                                       \
        "all-versions", no_argument, NULL, CLI_F_ALL_VERSIONS                                      \
    }

#define CLI_HELP_FILTER                                                                            \
    "  --split S       only prompts of split S\n"                                                  \
    "  --labeler NAME  only this labeler's rankings\n"                                             \
    "  --since DATE    only rankings made on or after DATE (YYYY-MM-DD[THH:MM:SS], UTC)\n"         \
    "  --until DATE    only rankings made before DATE\n"                                           \
    "  --human         only people's rankings\n"                                                   \
    "  --simulated     only simulated labelers' rankings\n"                                        \
    "  --all-versions  every version of a reviewed ranking (default: the current one)\n"

/* 1: c was a filter option and is applied; 0: not a filter option;
 * EXIT_USAGE (printed) for a bad value. */
int cli_filter_opt(const struct cmd_entry *e, int c, const char *arg, RankingFilter *f);

#endif
