/* db_template_resolve (registry.h): the chat template a model is used with. */
#include "db/registry.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

int db_template_resolve(Db *db, const char *flag, const char *model,
                        int (*own)(const char *model, char **out, Err *err), char **out,
                        int64_t *model_id, Err *err) {
    char *t = NULL, real[PATH_MAX];
    int rc = RLHF_OK;
    *out = NULL;
    if (model_id) *model_id = 0;
    if (db) {
        ModelRow row;
        int got = db_model_get(db, realpath(model, real) ? real : model, &row, err);
        if (got == RLHF_ENOTFOUND) err_clear(err), got = db_model_get(db, model, &row, err);
        if (got == RLHF_ENOTFOUND) err_clear(err);
        else if (got) rc = got;
        else {
            if (model_id) *model_id = row.id;
            if (row.template && !flag && !(t = strdup(row.template)))
                rc = err_set(err, RLHF_ENOMEM, "out of memory");
            db_model_row_free(&row);
        }
    }
    if (!rc && !t && !flag && own) rc = own(model, &t, err);
    if (!rc && !t && !flag && db) rc = db_setting_get(db, "gen.template", &t, err);
    if (!rc && !t && flag && !(t = strdup(flag))) rc = err_set(err, RLHF_ENOMEM, "out of memory");
    if (rc) free(t);
    else *out = t;
    return rc;
}
