/* Shared pieces of the reward-model commands (see rm_cli.h). */
#include "cli/rm_cli.h"
#include "cli/cli.h"
#include "db/registry.h"

#include <stdlib.h>

int cli_rm_scorer_open(Db *db, const char *rm, const char *tok_path, const char *template,
                       int max_batch, RmScorer *sc, Err *err) {
    ModelRow row = {0};
    int found = db && !template && cli_model_find(db, rm, &row, NULL) == RLHF_OK;
    int rc = rm_scorer_open(sc, rm, tok_path, found ? row.template : template, max_batch, err);
    if (found) db_model_row_free(&row);
    return rc;
}
