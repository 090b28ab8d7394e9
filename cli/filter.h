/* The help text of the ranking filter options every command that takes
 * them shares (parsed by cli_filter_table, opts.h). */
#ifndef RLHF_CLI_FILTER_H
#define RLHF_CLI_FILTER_H

#include "cli/cli.h"
#include "db/rankings.h"

#define CLI_HELP_FILTER                                                                            \
    "  --split S       only prompts of split S\n"                                                  \
    "  --labeler NAME  only this labeler's rankings\n"                                             \
    "  --since DATE    only rankings made on or after DATE (YYYY-MM-DD[THH:MM:SS], UTC)\n"         \
    "  --until DATE    only rankings made before DATE\n"                                           \
    "  --human         only people's rankings\n"                                                   \
    "  --simulated     only simulated labelers' rankings\n"                                        \
    "  --all-versions  every version of a reviewed ranking (default: the current one)\n"          \
    "  --flag NAME     only rankings in which a labeler gave some answer flag NAME (e.g. a\n"     \
    "                  safety RM on the rankings flagged harmful)\n"                             \
    "  --no-flag NAME  only rankings in which no answer has flag NAME\n"

#endif
