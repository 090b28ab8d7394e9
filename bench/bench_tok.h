/* For the benches: a tokenizer of a model's vocabulary size, <unk> <s> </s>,
 * the 256 bytes, then filler pieces " tN" (random models need only the ids). */
#ifndef RLHF_BENCH_TOK_H
#define RLHF_BENCH_TOK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/tokenizer.h"

static inline int bench_tokenizer(int V, Tokenizer **tok, Err *err) {
    const char **pieces = calloc((size_t)V, sizeof *pieces);
    size_t *lens = calloc((size_t)V, sizeof *lens);
    float *scores = calloc((size_t)V, sizeof *scores);
    char(*names)[16] = calloc((size_t)V, 16);
    int rc = pieces && lens && scores && names ? RLHF_OK : err_set(err, RLHF_ENOMEM, "out of memory");
    for (int i = 0; !rc && i < V; i++) {
        snprintf(names[i], 16, i == 0 ? "<unk>" : i == 1 ? "\n<s>\n" : i == 2 ? "\n</s>\n" : " t%d", i);
        if (i >= 3 && i < 259) snprintf(names[i], 16, "<0x%02X>", i - 3);
        pieces[i] = names[i], lens[i] = strlen(names[i]), scores[i] = -(float)i;
    }
    if (!rc) rc = tok_build(V, pieces, lens, scores, tok, err);
    free(pieces), free(lens), free(scores), free(names);
    return rc;
}

#endif
