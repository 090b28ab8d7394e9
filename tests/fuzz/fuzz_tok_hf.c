/* Fuzz target: the tokenizer.json reader (model/tok_hf*.c), then encoding
 * (with special tokens recognised) and decoding of a fixed text and of the
 * input's own bytes through whatever it accepted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/tok_hf.h"
#include "model/tokenizer.h"

static void round_trip(const TokHF *h, const char *text, size_t len) {
    int *ids = NULL, n = 0;
    Err err = {0};
    if (tokhf_encode(h, text, len, TOK_ADD_BOS | TOK_ADD_EOS | TOK_SPECIAL, &ids, &n, &err)) return;
    char *out = NULL;
    size_t out_len = 0, pl;
    if (tokhf_decode(h, ids, n, &out, &out_len, &err) == RLHF_OK) free(out);
    for (int i = 0; i < n; i++)
        tokhf_piece(h, i ? ids[i - 1] : -1, ids[i], &pl);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    TokHF *h = NULL;
    Err err = {0};
    if (tokhf_load_mem((const char *)data, size, "tokenizer.json", NULL, NULL, NULL, &h, &err))
        return 0;
    static const char text[] = "Hello, world! \xc3\xa9\xe4\xb8\xad 123\n\n<|im_end|>\xff  x";
    round_trip(h, text, sizeof text - 1);
    round_trip(h, (const char *)data, size < 512 ? size : 512);
    tokhf_free(h);
    return 0;
}
