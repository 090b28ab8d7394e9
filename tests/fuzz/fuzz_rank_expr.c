/* Fuzz target: the ranking-expression parser ("3>1=2>4") for every
 * candidate count the labeling screen allows. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "annotator/rank_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int n = 1 + data[0] % RS_MAX_CAND;
    char *expr = malloc(size);
    if (!expr) return 0;
    memcpy(expr, data + 1, size - 1);
    expr[size - 1] = '\0';
    unsigned char level[RS_MAX_CAND];
    char msg[128];
    int r = rs_expr_parse(expr, n, level, msg, sizeof msg);
    if (r >= RS_EXPR_SOME)
        for (int i = 0; i < n; i++)
            if (level[i] > n) abort(); /* a level beyond the candidates */
    RankState rs;
    if (rs_init(&rs, n) == 0) {
        rs_apply_expr(&rs, expr, msg, sizeof msg);
        rs_free(&rs);
    }
    free(expr);
    return 0;
}
