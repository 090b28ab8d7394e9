/* What the reward-model commands (score, eval-rm, and best-of-n) share on
 * the command line: opening --rm with the chat template the registry holds
 * for it. */
#ifndef RLHF_CLI_RM_CLI_H
#define RLHF_CLI_RM_CLI_H

#include "db/db.h"
#include "rm/rm_score.h"

/* rm_scorer_open with template, else the template registered for rm in db
 * (db may be NULL), else the default. */
int cli_rm_scorer_open(Db *db, const char *rm, const char *tok_path, const char *template,
                       int max_batch, RmScorer *sc, Err *err);

#endif
