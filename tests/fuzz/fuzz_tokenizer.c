/* Fuzz target: the tokenizer.bin reader (llama2.c's format), then a round
 * trip of encode and decode through whatever it accepted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Tokenizer *t = NULL;
    Err err = {0};
    if (tok_load_mem(data, size, &t, &err) != RLHF_OK) return 0;
    const char *text = "Hello, world! \xc3\xa9\xe4\xb8\xad 123\n";
    size_t len = strlen(text);
    int cap = tok_encode_cap(len), n = 0;
    int *ids = malloc(sizeof(int) * (size_t)cap);
    if (ids && tok_encode(t, text, len, 1, 1, ids, cap, &n, &err) == RLHF_OK) {
        char *out = NULL;
        size_t out_len = 0;
        if (tok_decode(t, ids, n, &out, &out_len, &err) == RLHF_OK) free(out);
    }
    free(ids);
    tok_free(t);
    return 0;
}
